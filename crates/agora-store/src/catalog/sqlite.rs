//! The catalog on SQLite (embedded default), through `sqlx` with embedded migrations. The SQL is
//! portable so that a PostgreSQL pool can run it for the scaled-out deployment.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use agora_model::{
    DeviceId, DeviceKind, InseeCode, PropertyName, SeriesId, SiteId, Timestamp, ValueKind,
};
use async_trait::async_trait;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    AttributeScope, Attributes, Catalog, Commune, Device, DeviceFilter, Domain, Grant,
    LoginRefusal, MAX_ATTRIBUTES, MAX_REJECT_BYTES, MAX_REJECT_RAW, MAX_REJECTS, NewPerson,
    NewReject, NewSeries, Person, Reject, Role, Scope, SeriesInfo, Site, TokenInfo, people,
};
use crate::error::{Error, Result};

fn migrator() -> Migrator {
    let m = |v, d: &'static str, sql: &'static str| {
        Migration::new(v, Cow::Borrowed(d), MigrationType::Simple, Cow::Borrowed(sql), false)
    };
    Migrator {
        migrations: Cow::Owned(vec![
            m(1, "catalog", include_str!("../../migrations/0001_catalog.sql")),
            m(2, "reject replay", include_str!("../../migrations/0002_reject_replay.sql")),
            m(3, "alerts", include_str!("../../migrations/0003_alerts.sql")),
            m(4, "reject bounds", include_str!("../../migrations/0004_reject_bounds.sql")),
            m(5, "device attributes", include_str!("../../migrations/0005_device_attributes.sql")),
            m(6, "sites to review", include_str!("../../migrations/0006_sites_to_review.sql")),
            m(7, "audit log", include_str!("../../migrations/0007_audit_log.sql")),
            m(8, "token expiry", include_str!("../../migrations/0008_token_expiry.sql")),
            m(9, "tenancy and people", include_str!("../../migrations/0009_tenancy_people.sql")),
            m(10, "reject commune", include_str!("../../migrations/0010_reject_commune.sql")),
            m(11, "commerce calendar", include_str!("../../migrations/0011_commerce_calendar.sql")),
            m(12, "open datasets", include_str!("../../migrations/0012_open_datasets.sql")),
            m(13, "runtime state", include_str!("../../migrations/0013_runtime_state.sql")),
            m(
                14,
                "ngsi subscriptions",
                include_str!("../../migrations/0014_ngsi_subscriptions.sql"),
            ),
            m(15, "service schedules", include_str!("../../migrations/0015_service_schedules.sql")),
            m(16, "decision makers", include_str!("../../migrations/0016_decision_makers.sql")),
            m(17, "citizen reports", include_str!("../../migrations/0017_citizen_reports.sql")),
            m(18, "visitors", include_str!("../../migrations/0018_visitors.sql")),
        ]),
        ..Migrator::DEFAULT
    }
}

#[derive(Debug, Default)]
struct State {
    communes: BTreeMap<String, Commune>,
    sites: BTreeMap<String, Site>,
    devices: HashMap<String, Device>,
    /// device → property → series.
    device_series: HashMap<String, HashMap<String, SeriesId>>,
    series: HashMap<u32, SeriesInfo>,
    next_series: u32,
    /// SHA-256 of the secret → token.
    tokens: HashMap<String, TokenInfo>,
    /// People by id, with their password hash (Argon2id PHC string).
    people: BTreeMap<String, (Person, Option<String>)>,
    dirty_seen: HashSet<String>,
}

/// The SQLite catalog.
#[derive(Debug)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    state: RwLock<State>,
    /// Serializes catalog writes so that concurrent auto-registrations create each row once.
    write: tokio::sync::Mutex<()>,
    /// Bumped by each device written.
    devices_version: std::sync::atomic::AtomicU64,
    /// The database file.
    path: std::path::PathBuf,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the operating system provides randomness");
    hex::encode(b)
}

fn now() -> Timestamp {
    agora_model::Clock::now(&agora_model::SystemClock)
}

fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("catalog holds an invalid {what}: {e}"))
}

/// Argon2 hashes under way at most: each takes 19 MiB and a core for tens of milliseconds, so a
/// flood of logins waits here instead of exhausting memory.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

async fn hash_blocking(password: &str) -> Result<String> {
    let _permit = HASHING.acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || people::hash_password(&pw))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

async fn verify_blocking(password: &str, hash: Option<String>) -> Result<bool> {
    let _permit = HASHING.acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
    let pw = password.chars().take(people::MAX_PASSWORD).collect::<String>();
    tokio::task::spawn_blocking(move || {
        people::verify_password(&pw, hash.as_deref().unwrap_or_else(|| people::dummy_hash()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

/// The grant stored in a row's `role`, `commune` and `domain` columns.
fn grant_of_row(r: &sqlx::sqlite::SqliteRow, what: &str) -> Result<Option<Grant>> {
    let Some(role) = r.try_get::<Option<String>, _>("role")? else { return Ok(None) };
    let role = Role::parse_named(&role).map_err(|e| bad(what, e))?;
    let commune = r
        .try_get::<Option<String>, _>("commune")?
        .map(|c| InseeCode::parse(&c))
        .transpose()
        .map_err(|e| bad(what, e))?;
    let domain = r
        .try_get::<Option<String>, _>("domain")?
        .map(|d| Domain::parse_named(&d))
        .transpose()
        .map_err(|e| bad(what, e))?;
    Grant::new(role, commune, domain).map(Some).map_err(|e| bad(what, e))
}

fn person_of_row(r: &sqlx::sqlite::SqliteRow) -> Result<(Person, Option<String>)> {
    let hash: Option<String> = r.try_get("password_hash")?;
    let p = Person {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        grant: grant_of_row(r, "person")?.ok_or_else(|| bad("person", "no role"))?,
        has_password: hash.is_some(),
        subject: r.try_get("subject")?,
        failed_logins: r.try_get("failed_logins")?,
        locked_until: r.try_get::<Option<i64>, _>("locked_until")?.map(Timestamp::from_nanos),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: Timestamp::from_nanos(r.try_get("created_at")?),
        last_login: r.try_get::<Option<i64>, _>("last_login")?.map(Timestamp::from_nanos),
    };
    Ok((p, hash))
}

const PERSON_COLUMNS: &str = "id, email, name, role, commune, domain, password_hash, subject, \
     failed_logins, locked_until, disabled, created_at, last_login";

fn json_opt(s: Option<String>) -> Option<serde_json::Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

impl SqliteCatalog {
    /// The connection pool, for the stores that share the catalog's database (alerts).
    pub fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// Write a site (its commune must exist), the caller holding the write lock.
    async fn write_site(&self, s: Site) -> Result<()> {
        if !self.state.read().communes.contains_key(s.commune.as_str()) {
            return Err(Error::NotFound { what: "commune", id: s.commune.to_string() });
        }
        sqlx::query(
            "INSERT INTO sites (id, commune, name, lat, lon, geometry, to_review) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET commune = excluded.commune, name = excluded.name, \
             lat = excluded.lat, lon = excluded.lon, geometry = excluded.geometry, to_review = excluded.to_review",
        )
        .bind(s.id.as_str())
        .bind(s.commune.as_str())
        .bind(&s.name)
        .bind(s.lat)
        .bind(s.lon)
        .bind(s.geometry.as_ref().map(|g| g.to_string()))
        .bind(i64::from(s.to_review))
        .execute(&self.pool)
        .await?;
        self.state.write().sites.insert(s.id.to_string(), s);
        Ok(())
    }

    /// Open (or create) `catalog.db` in `dir`, run migrations, load everything into memory.
    pub async fn open(dir: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("catalog.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        migrator().run(&pool).await?;
        let cat = Self {
            pool,
            state: RwLock::new(State::default()),
            write: tokio::sync::Mutex::new(()),
            devices_version: std::sync::atomic::AtomicU64::new(0),
            path: dir.join("catalog.db"),
        };
        cat.load().await?;
        Ok(cat)
    }

    async fn load(&self) -> Result<()> {
        let mut st = State::default();
        for r in
            sqlx::query("SELECT insee, name, boundary FROM communes").fetch_all(&self.pool).await?
        {
            let insee: String = r.try_get("insee")?;
            let c = Commune {
                insee: InseeCode::parse(&insee).map_err(|e| bad("commune", e))?,
                name: r.try_get("name")?,
                boundary: json_opt(r.try_get("boundary")?),
            };
            st.communes.insert(insee, c);
        }
        for r in sqlx::query("SELECT id, commune, name, lat, lon, geometry, to_review FROM sites")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = r.try_get("id")?;
            let commune: String = r.try_get("commune")?;
            let s = Site {
                id: SiteId::parse(&id).map_err(|e| bad("site", e))?,
                commune: InseeCode::parse(&commune).map_err(|e| bad("site", e))?,
                name: r.try_get("name")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                geometry: json_opt(r.try_get("geometry")?),
                to_review: r.try_get::<i64, _>("to_review")? != 0,
            };
            st.sites.insert(id, s);
        }
        let rows = sqlx::query("SELECT id, kind, name, site, commune, lat, lon, metadata, created_at, last_seen FROM devices")
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let id: String = r.try_get("id")?;
            let site: Option<String> = r.try_get("site")?;
            let commune: Option<String> = r.try_get("commune")?;
            let meta: String = r.try_get("metadata")?;
            let d = Device {
                id: DeviceId::parse(&id).map_err(|e| bad("device", e))?,
                kind: DeviceKind::parse(&r.try_get::<String, _>("kind")?)
                    .map_err(|e| bad("device", e))?,
                name: r.try_get("name")?,
                site: site.map(|s| SiteId::parse(&s)).transpose().map_err(|e| bad("device", e))?,
                commune: commune
                    .map(|s| InseeCode::parse(&s))
                    .transpose()
                    .map_err(|e| bad("device", e))?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                metadata: serde_json::from_str(&meta).unwrap_or_default(),
                created_at: Timestamp::from_nanos(r.try_get("created_at")?),
                last_seen: r.try_get::<Option<i64>, _>("last_seen")?.map(Timestamp::from_nanos),
            };
            st.devices.insert(id, d);
        }
        let rows =
            sqlx::query("SELECT id, device, property, value_kind, unit, source_unit FROM series")
                .fetch_all(&self.pool)
                .await?;
        for r in rows {
            let id = SeriesId(r.try_get::<i64, _>("id")? as u32);
            let device: String = r.try_get("device")?;
            let property: String = r.try_get("property")?;
            let kind: String = r.try_get("value_kind")?;
            let info = SeriesInfo {
                id,
                device: DeviceId::parse(&device).map_err(|e| bad("series", e))?,
                property: PropertyName::parse(&property).map_err(|e| bad("series", e))?,
                kind: ValueKind::from_name(&kind).ok_or_else(|| bad("series", &kind))?,
                unit: r.try_get("unit")?,
                source_unit: r.try_get("source_unit")?,
            };
            st.next_series = st.next_series.max(id.0 + 1);
            st.device_series.entry(device).or_default().insert(property, id);
            st.series.insert(id.0, info);
        }
        st.next_series = st.next_series.max(1);
        let rows = sqlx::query(
            "SELECT id, name, hash, scope, role, commune, domain, device, created_at, expires_at \
             FROM tokens WHERE revoked_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let scope: String = r.try_get("scope")?;
            let device: Option<String> = r.try_get("device")?;
            let scope = Scope::from_name(&scope).ok_or_else(|| bad("token", &scope))?;
            let t = TokenInfo {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                scope,
                grant: grant_of_row(&r, "token")?.unwrap_or_else(|| scope.grant()),
                device: device
                    .map(|d| DeviceId::parse(&d))
                    .transpose()
                    .map_err(|e| bad("token", e))?,
                created_at: Timestamp::from_nanos(r.try_get("created_at")?),
                expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(Timestamp::from_nanos),
            };
            st.tokens.insert(r.try_get("hash")?, t);
        }
        let rows = sqlx::query(&format!("SELECT {PERSON_COLUMNS} FROM people"))
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let (p, hash) = person_of_row(&r)?;
            st.people.insert(p.id.clone(), (p, hash));
        }
        *self.state.write() = st;
        Ok(())
    }

    async fn insert_token(
        &self,
        name: &str,
        grant: Grant,
        device: Option<DeviceId>,
        secret: &str,
    ) -> Result<TokenInfo> {
        let _w = self.write.lock().await;
        if let Some(c) = grant.commune()
            && !self.state.read().communes.contains_key(c.as_str())
        {
            return Err(Error::Invalid(format!("commune {c} is not in the catalog")));
        }
        if device.is_some() && grant.role() != Role::Device {
            return Err(Error::Invalid(format!(
                "only a device token is bound to a device, not a {}",
                grant.role()
            )));
        }
        let scope = Scope::of_role(grant.role());
        let h = hash(secret);
        if self.state.read().tokens.contains_key(&h) {
            return Err(Error::Conflict("a token with this secret already exists".into()));
        }
        let t = TokenInfo {
            id: random_hex(8),
            name: name.to_owned(),
            scope,
            grant,
            device,
            created_at: now(),
            expires_at: None,
        };
        sqlx::query(
            "INSERT INTO tokens (id, name, hash, scope, role, commune, domain, device, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&h)
        .bind(scope.as_str())
        .bind(t.grant.role().as_str())
        .bind(t.grant.commune().map(|c| c.to_string()))
        .bind(t.grant.domain().map(Domain::as_str))
        .bind(t.device.as_ref().map(|d| d.as_str()))
        .bind(t.created_at.as_nanos())
        .execute(&self.pool)
        .await?;
        self.state.write().tokens.insert(h, t.clone());
        Ok(t)
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn backup_into(&self, path: &std::path::Path) -> Result<()> {
        // VACUUM INTO: SQLite writes a consistent copy from one read transaction, while writers
        // go on (WAL mode); the copy is compact and complete in itself.
        let target = path.to_str().ok_or_else(|| {
            crate::Error::Invalid(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await?;
        Ok(())
    }
    async fn upsert_commune(&self, c: Commune) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO communes (insee, name, boundary) VALUES (?, ?, ?) \
             ON CONFLICT (insee) DO UPDATE SET name = excluded.name, boundary = excluded.boundary",
        )
        .bind(c.insee.as_str())
        .bind(&c.name)
        .bind(c.boundary.as_ref().map(|b| b.to_string()))
        .execute(&self.pool)
        .await?;
        self.state.write().communes.insert(c.insee.to_string(), c);
        Ok(())
    }

    fn communes(&self) -> Vec<Commune> {
        self.state.read().communes.values().cloned().collect()
    }

    async fn upsert_site(&self, s: Site) -> Result<()> {
        let _w = self.write.lock().await;
        self.write_site(s).await
    }

    async fn insert_site(&self, s: Site) -> Result<bool> {
        let _w = self.write.lock().await;
        // Under the write lock, a site not in memory is not in the database either.
        if self.state.read().sites.contains_key(s.id.as_str()) {
            return Ok(false);
        }
        self.write_site(s).await?;
        Ok(true)
    }

    fn sites(&self) -> Vec<Site> {
        self.state.read().sites.values().cloned().collect()
    }

    fn devices_version(&self) -> u64 {
        self.devices_version.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn upsert_device(&self, d: Device) -> Result<()> {
        self.upsert_devices(vec![d]).await
    }

    fn device(&self, id: &str) -> Option<Device> {
        self.state.read().devices.get(id).cloned()
    }

    fn device_commune(&self, id: &str) -> Option<Option<InseeCode>> {
        self.state.read().devices.get(id).map(|d| d.commune.clone())
    }

    fn devices(&self, f: &DeviceFilter) -> Vec<Device> {
        let mut v: Vec<Device> =
            self.state.read().devices.values().filter(|d| f.matches(d)).cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    fn lookup_series(&self, keys: &[(&str, &str)]) -> Vec<Option<SeriesId>> {
        let st = self.state.read();
        keys.iter()
            .map(|(d, p)| st.device_series.get(*d).and_then(|m| m.get(*p)).copied())
            .collect()
    }

    async fn create_series(
        &self,
        device: &DeviceId,
        property: &PropertyName,
        kind: ValueKind,
        unit: &str,
        source_unit: Option<&str>,
    ) -> Result<SeriesInfo> {
        let new = NewSeries {
            device: device.clone(),
            property: property.clone(),
            kind,
            unit: unit.to_owned(),
            source_unit: source_unit.map(str::to_owned),
        };
        let mut made = self.create_series_many(std::slice::from_ref(&new)).await?;
        Ok(made.pop().expect("one series asked, one given"))
    }

    async fn create_series_many(&self, new: &[NewSeries]) -> Result<Vec<SeriesInfo>> {
        let _w = self.write.lock().await;
        // Existing series are returned as they are; the others get the next ids, in order.
        let mut out: Vec<Result<SeriesInfo, usize>> = Vec::with_capacity(new.len());
        let mut next = {
            let st = self.state.read();
            for (i, n) in new.iter().enumerate() {
                match st
                    .device_series
                    .get(n.device.as_str())
                    .and_then(|m| m.get(n.property.as_str()))
                {
                    Some(id) => out.push(Ok(st.series[&id.0].clone())),
                    None if !st.devices.contains_key(n.device.as_str()) => {
                        return Err(Error::NotFound { what: "device", id: n.device.to_string() });
                    }
                    None => out.push(Err(i)),
                }
            }
            st.next_series
        };
        let created_at = now().as_nanos();
        let mut made: Vec<SeriesInfo> = Vec::new();
        let mut seen: HashMap<(&str, &str), SeriesId> = HashMap::new();
        let mut tx = self.pool.begin().await?;
        for slot in &mut out {
            let Err(i) = *slot else { continue };
            let n = &new[i];
            // The same pair asked twice gets one series.
            if let Some(id) = seen.get(&(n.device.as_str(), n.property.as_str())) {
                *slot = Ok(made.iter().find(|m| m.id == *id).expect("made above").clone());
                continue;
            }
            let id = SeriesId(next);
            next += 1;
            sqlx::query(
                "INSERT INTO series (id, device, property, value_kind, unit, source_unit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(i64::from(id.0))
            .bind(n.device.as_str())
            .bind(n.property.as_str())
            .bind(n.kind.as_str())
            .bind(&n.unit)
            .bind(&n.source_unit)
            .bind(created_at)
            .execute(&mut *tx)
            .await?;
            seen.insert((n.device.as_str(), n.property.as_str()), id);
            let info = SeriesInfo {
                id,
                device: n.device.clone(),
                property: n.property.clone(),
                kind: n.kind,
                unit: n.unit.clone(),
                source_unit: n.source_unit.clone(),
            };
            made.push(info.clone());
            *slot = Ok(info);
        }
        tx.commit().await?;
        let mut st = self.state.write();
        st.next_series = next;
        for info in made {
            st.device_series
                .entry(info.device.to_string())
                .or_default()
                .insert(info.property.to_string(), info.id);
            st.series.insert(info.id.0, info);
        }
        Ok(out.into_iter().map(|r| r.expect("every slot filled")).collect())
    }

    async fn upsert_devices(&self, devices: Vec<Device>) -> Result<()> {
        let _w = self.write.lock().await;
        {
            let st = self.state.read();
            for d in &devices {
                if let Some(s) = &d.site
                    && !st.sites.contains_key(s.as_str())
                {
                    return Err(Error::NotFound { what: "site", id: s.to_string() });
                }
                if let Some(c) = &d.commune
                    && !st.communes.contains_key(c.as_str())
                {
                    return Err(Error::NotFound { what: "commune", id: c.to_string() });
                }
            }
        }
        let mut tx = self.pool.begin().await?;
        for d in &devices {
            upsert_device_row(&mut tx, d).await?;
        }
        tx.commit().await?;
        let mut st = self.state.write();
        for mut d in devices {
            if let Some(old) = st.devices.get(d.id.as_str()) {
                d.created_at = old.created_at;
                d.last_seen = d.last_seen.max(old.last_seen);
            }
            st.devices.insert(d.id.to_string(), d);
        }
        self.devices_version.fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn series_info(&self, id: SeriesId) -> Option<SeriesInfo> {
        self.state.read().series.get(&id.0).cloned()
    }

    fn device_series(&self, device: &str) -> Vec<SeriesInfo> {
        let st = self.state.read();
        let mut v: Vec<SeriesInfo> = st
            .device_series
            .get(device)
            .map(|m| m.values().filter_map(|id| st.series.get(&id.0).cloned()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.property.cmp(&b.property));
        v
    }

    fn all_series(&self) -> Vec<SeriesInfo> {
        let mut v: Vec<SeriesInfo> = self.state.read().series.values().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    fn touch(&self, seen: &[(DeviceId, Timestamp)]) {
        let mut st = self.state.write();
        for (d, t) in seen {
            if let Some(dev) = st.devices.get_mut(d.as_str())
                && dev.last_seen.is_none_or(|l| *t > l)
            {
                dev.last_seen = Some(*t);
                if !st.dirty_seen.contains(d.as_str()) {
                    st.dirty_seen.insert(d.to_string());
                }
            }
        }
    }

    async fn save_runtime_state(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO runtime_state (name, value, saved_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
        )
        .bind(name)
        .bind(value)
        .bind(now().as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn runtime_state(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM runtime_state WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn close(&self) -> Result<()> {
        self.persist().await?;
        self.pool.close().await;
        // SQLite folds its write-ahead log into the database and removes it when the last
        // connection closes, but a pool's connections closing side by side may each leave that
        // to another. One connection opened alone afterwards does it for sure (waiting for any
        // straggler to let go of the file).
        let opts = SqliteConnectOptions::new()
            .filename(&self.path)
            .busy_timeout(std::time::Duration::from_secs(30));
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
        sqlx::Connection::close(conn).await?;
        let wal = self.path.with_extension("db-wal");
        if wal.exists() {
            tracing::warn!(path = %wal.display(), "the catalog's write-ahead log is still there after closing (another process has the database open?); SQLite folds it in at the next start");
        }
        Ok(())
    }

    async fn persist(&self) -> Result<()> {
        let _w = self.write.lock().await;
        let dirty: Vec<(String, i64)> = {
            let mut st = self.state.write();
            let ids: Vec<String> = st.dirty_seen.drain().collect();
            ids.into_iter()
                .filter_map(|id| {
                    st.devices.get(&id).and_then(|d| d.last_seen).map(|t| (id, t.as_nanos()))
                })
                .collect()
        };
        if dirty.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id, t) in dirty {
            sqlx::query("UPDATE devices SET last_seen = ? WHERE id = ?")
                .bind(t)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)> {
        self.create_token_granted(name, scope.grant(), device).await
    }

    async fn create_token_granted(
        &self,
        name: &str,
        grant: Grant,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)> {
        let secret = format!("agora_{}", random_hex(24));
        let t = self.insert_token(name, grant, device, &secret).await?;
        Ok((t, secret))
    }

    async fn create_token_with_secret(
        &self,
        name: &str,
        scope: Scope,
        secret: &str,
    ) -> Result<Option<TokenInfo>> {
        if secret.len() < 16 {
            return Err(Error::Invalid(
                "a token secret must be at least 16 characters long".into(),
            ));
        }
        if let Some(t) = self.authenticate(secret) {
            return Ok(Some(t));
        }
        // Live tokens are all in memory; a row with this hash is a revoked one.
        let revoked = sqlx::query("SELECT id FROM tokens WHERE hash = ?")
            .bind(hash(secret))
            .fetch_optional(&self.pool)
            .await?;
        if revoked.is_some() {
            return Ok(None);
        }
        self.insert_token(name, scope.grant(), None, secret).await.map(Some)
    }

    fn authenticate(&self, secret: &str) -> Option<TokenInfo> {
        // An expired token authenticates nothing (it stays listed until revoked).
        let now = now();
        self.state
            .read()
            .tokens
            .get(&hash(secret))
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .cloned()
    }

    async fn set_token_expiry(&self, id: &str, at: Option<Timestamp>) -> Result<TokenInfo> {
        let _w = self.write.lock().await;
        let key = self
            .state
            .read()
            .tokens
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(k, _)| k.clone())
            .ok_or_else(|| Error::NotFound { what: "token", id: id.to_owned() })?;
        sqlx::query("UPDATE tokens SET expires_at = ? WHERE id = ?")
            .bind(at.map(Timestamp::as_nanos))
            .bind(id)
            .execute(&self.pool)
            .await?;
        let mut st = self.state.write();
        let t = st.tokens.get_mut(&key).expect("found under the write lock");
        t.expires_at = at;
        Ok(t.clone())
    }

    fn tokens(&self) -> Vec<TokenInfo> {
        let mut v: Vec<TokenInfo> = self.state.read().tokens.values().cloned().collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    async fn set_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let _w = self.write.lock().await;
        if !self.state.read().devices.contains_key(device.as_str()) {
            return Err(Error::NotFound { what: "device", id: device.to_string() });
        }
        // Read before the transaction: a transaction that reads then writes cannot wait for
        // another connection's write (SQLite's WAL answers "busy" at once), one that only writes
        // waits its turn. The catalog's write lock keeps the count true meanwhile.
        let known: HashSet<String> =
            sqlx::query_scalar("SELECT key FROM device_attributes WHERE device = ? AND scope = ?")
                .bind(device.as_str())
                .bind(scope.as_str())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        let existing = known.len() as i64;
        let new_keys = values.keys().filter(|k| !known.contains(*k)).count() as i64;
        if existing + new_keys > MAX_ATTRIBUTES as i64 {
            return Err(Error::Invalid(format!(
                "device {device} would have more than {MAX_ATTRIBUTES} {} attributes",
                scope.as_str()
            )));
        }
        let t = now().as_nanos();
        let mut tx = self.pool.begin().await?;
        for (k, v) in values {
            sqlx::query(
                "INSERT INTO device_attributes (device, scope, key, value, updated_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (device, scope, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(device.as_str())
            .bind(scope.as_str())
            .bind(k)
            .bind(v.to_string())
            .bind(t)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        keys: &[String],
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        for k in keys {
            sqlx::query("DELETE FROM device_attributes WHERE device = ? AND scope = ? AND key = ?")
                .bind(device.as_str())
                .bind(scope.as_str())
                .bind(k)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn attributes(&self, device: &DeviceId) -> Result<Attributes> {
        let rows = sqlx::query(
            "SELECT scope, key, value FROM device_attributes WHERE device = ? ORDER BY scope, key",
        )
        .bind(device.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Attributes::default();
        for r in rows {
            let scope: String = r.try_get("scope")?;
            let key: String = r.try_get("key")?;
            let value: String = r.try_get("value")?;
            let value = serde_json::from_str(&value).map_err(|e| bad("attribute", e))?;
            match scope.as_str() {
                "client" => out.client.insert(key, value),
                _ => out.shared.insert(key, value),
            };
        }
        Ok(out)
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        let _w = self.write.lock().await;
        let r = sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now().as_nanos())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound { what: "token", id: id.to_owned() });
        }
        self.state.write().tokens.retain(|_, t| t.id != id);
        Ok(())
    }

    async fn create_person(&self, p: NewPerson) -> Result<Person> {
        let email = people::email(&p.email)?;
        let name = people::name(&p.name)?;
        let hash = match &p.password {
            Some(pw) => {
                people::check_password(pw, &email)?;
                Some(hash_blocking(pw).await?)
            }
            None => None,
        };
        let _w = self.write.lock().await;
        {
            let st = self.state.read();
            if let Some(c) = p.grant.commune()
                && !st.communes.contains_key(c.as_str())
            {
                return Err(Error::Invalid(format!("commune {c} is not in the catalog")));
            }
            if p.grant.role() == Role::Device {
                return Err(Error::Invalid("a person cannot have the device role".into()));
            }
            if st.people.values().any(|(q, _)| q.email == email) {
                return Err(Error::Conflict(format!("a person with email {email} exists")));
            }
        }
        let person = Person {
            id: format!("p_{}", random_hex(8)),
            email,
            name,
            grant: p.grant,
            has_password: hash.is_some(),
            subject: p.subject,
            failed_logins: 0,
            locked_until: None,
            disabled: false,
            created_at: now(),
            last_login: None,
        };
        sqlx::query(
            "INSERT INTO people (id, email, name, role, commune, domain, password_hash, subject, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&person.id)
        .bind(&person.email)
        .bind(&person.name)
        .bind(person.grant.role().as_str())
        .bind(person.grant.commune().map(|c| c.to_string()))
        .bind(person.grant.domain().map(Domain::as_str))
        .bind(&hash)
        .bind(&person.subject)
        .bind(person.created_at.as_nanos())
        .execute(&self.pool)
        .await?;
        self.state.write().people.insert(person.id.clone(), (person.clone(), hash));
        Ok(person)
    }

    fn people(&self) -> Vec<Person> {
        let mut v: Vec<Person> =
            self.state.read().people.values().map(|(p, _)| p.clone()).collect();
        v.sort_by(|a, b| a.email.cmp(&b.email));
        v
    }

    fn person(&self, id: &str) -> Option<Person> {
        self.state.read().people.get(id).map(|(p, _)| p.clone())
    }

    fn person_by_subject(&self, subject: &str) -> Option<Person> {
        let st = self.state.read();
        st.people
            .values()
            .find(|(p, _)| p.subject.as_deref() == Some(subject))
            .map(|(p, _)| p.clone())
    }

    fn person_by_email(&self, email: &str) -> Option<Person> {
        let email = email.trim().to_lowercase();
        let st = self.state.read();
        st.people.values().find(|(p, _)| p.email == email).map(|(p, _)| p.clone())
    }

    async fn update_person(
        &self,
        id: &str,
        name: Option<String>,
        grant: Option<Grant>,
        disabled: Option<bool>,
    ) -> Result<Person> {
        let name = name.as_deref().map(people::name).transpose()?;
        let _w = self.write.lock().await;
        let mut p =
            self.person(id).ok_or_else(|| Error::NotFound { what: "person", id: id.into() })?;
        if let Some(g) = grant {
            if let Some(c) = g.commune()
                && !self.state.read().communes.contains_key(c.as_str())
            {
                return Err(Error::Invalid(format!("commune {c} is not in the catalog")));
            }
            if g.role() == Role::Device {
                return Err(Error::Invalid("a person cannot have the device role".into()));
            }
            p.grant = g;
        }
        if let Some(n) = name {
            p.name = n;
        }
        if let Some(d) = disabled {
            p.disabled = d;
        }
        sqlx::query(
            "UPDATE people SET name = ?, role = ?, commune = ?, domain = ?, disabled = ? WHERE id = ?",
        )
        .bind(&p.name)
        .bind(p.grant.role().as_str())
        .bind(p.grant.commune().map(|c| c.to_string()))
        .bind(p.grant.domain().map(Domain::as_str))
        .bind(i64::from(p.disabled))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if let Some(e) = self.state.write().people.get_mut(id) {
            e.0 = p.clone();
        }
        Ok(p)
    }

    async fn set_password(&self, id: &str, password: &str) -> Result<()> {
        let p = self.person(id).ok_or_else(|| Error::NotFound { what: "person", id: id.into() })?;
        people::check_password(password, &p.email)?;
        let hash = hash_blocking(password).await?;
        let _w = self.write.lock().await;
        sqlx::query(
            "UPDATE people SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE id = ?",
        )
        .bind(&hash)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if let Some(e) = self.state.write().people.get_mut(id) {
            e.0.has_password = true;
            e.0.failed_logins = 0;
            e.0.locked_until = None;
            e.1 = Some(hash);
        }
        Ok(())
    }

    async fn link_subject(&self, id: &str, subject: &str) -> Result<()> {
        let _w = self.write.lock().await;
        if self.person_by_subject(subject).is_some_and(|p| p.id != id) {
            return Err(Error::Conflict(format!(
                "identity {subject:?} is linked to another person"
            )));
        }
        let r = sqlx::query("UPDATE people SET subject = ? WHERE id = ?")
            .bind(subject)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound { what: "person", id: id.into() });
        }
        if let Some(e) = self.state.write().people.get_mut(id) {
            e.0.subject = Some(subject.to_owned());
        }
        Ok(())
    }

    async fn delete_person(&self, id: &str) -> Result<()> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM people WHERE id = ?").bind(id).execute(&self.pool).await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound { what: "person", id: id.into() });
        }
        self.state.write().people.remove(id);
        Ok(())
    }

    async fn password_login(
        &self,
        email: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Person, LoginRefusal>> {
        let found = {
            let email = email.trim().to_lowercase();
            let st = self.state.read();
            st.people.values().find(|(p, _)| p.email == email).cloned()
        };
        // Unknown email, or no password: the same work as a wrong password (no discovery by time).
        let hash = found.as_ref().and_then(|(_, h)| h.clone());
        let ok = verify_blocking(password, hash).await?;
        let Some((p, Some(_))) = found else { return Ok(Err(LoginRefusal::Wrong)) };
        // Counted under the write lock from the count as it is now: concurrent guesses each
        // count.
        let _w = self.write.lock().await;
        let Some(p) = self.state.read().people.get(&p.id).map(|(q, _)| q.clone()) else {
            return Ok(Err(LoginRefusal::Wrong));
        };
        if p.disabled {
            return Ok(Err(LoginRefusal::Disabled));
        }
        if let Some(until) = p.locked_until.filter(|u| *u > now) {
            return Ok(Err(LoginRefusal::Locked(until)));
        }
        let (failed, locked, last) = if ok {
            (0, None, Some(now))
        } else {
            let failed = p.failed_logins + 1;
            let locked = (failed >= people::LOCK_AFTER)
                .then(|| Timestamp::from_nanos(now.as_nanos() + people::LOCK_SECS * 1_000_000_000));
            (if locked.is_some() { 0 } else { failed }, locked, p.last_login)
        };
        sqlx::query(
            "UPDATE people SET failed_logins = ?, locked_until = ?, last_login = ? WHERE id = ?",
        )
        .bind(failed)
        .bind(locked.map(Timestamp::as_nanos))
        .bind(last.map(Timestamp::as_nanos))
        .bind(&p.id)
        .execute(&self.pool)
        .await?;
        let mut st = self.state.write();
        let Some(e) = st.people.get_mut(&p.id) else { return Ok(Err(LoginRefusal::Wrong)) };
        e.0.failed_logins = failed;
        e.0.locked_until = locked;
        e.0.last_login = last;
        Ok(match (ok, locked) {
            (true, _) => Ok(e.0.clone()),
            (false, Some(until)) => Err(LoginRefusal::Locked(until)),
            (false, None) => Err(LoginRefusal::Wrong),
        })
    }

    async fn add_rejects(&self, rejects: Vec<NewReject>) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let t = now().as_nanos();
        let mut tx = self.pool.begin().await?;
        for r in rejects {
            let mut raw = r.raw;
            let truncated = raw.len() > MAX_REJECT_RAW;
            if truncated {
                let mut end = MAX_REJECT_RAW;
                while !raw.is_char_boundary(end) {
                    end -= 1;
                }
                raw.truncate(end);
            }
            let size = (raw.len() + r.reason.len()) as i64;
            sqlx::query(
                "INSERT INTO rejects (received_at, source, line, reason, raw, format, truncated, token_device, size, token_commune) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(t)
            .bind(&r.source)
            .bind(r.line.map(i64::from))
            .bind(&r.reason)
            .bind(raw)
            .bind(&r.format)
            .bind(i64::from(truncated))
            .bind(r.token_device.as_ref().map(|d| d.as_str()))
            .bind(size)
            .bind(r.token_commune.as_ref().map(|c| c.as_str()))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM rejects WHERE id <= (SELECT MAX(id) FROM rejects) - ?")
            .bind(MAX_REJECTS)
            .execute(&mut *tx)
            .await?;
        // Keep the newest dead letters that fit in the byte budget: drop every one whose size,
        // added to all newer ones, exceeds it (sizes are read from the index, not the rows).
        sqlx::query(
            "DELETE FROM rejects WHERE id <= (SELECT MAX(id) FROM (SELECT id, SUM(size) OVER (ORDER BY id DESC) AS newer FROM rejects) AS r WHERE newer > ?)",
        )
        .bind(MAX_REJECT_BYTES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rejects(&self, limit: u32) -> Result<Vec<Reject>> {
        let rows = sqlx::query(
            "SELECT id, received_at, source, line, reason, raw, format, truncated, token_device, token_commune FROM rejects ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(reject_of).collect()
    }

    async fn rejects_by_id(&self, ids: &[i64]) -> Result<Vec<Reject>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(
                "SELECT id, received_at, source, line, reason, raw, format, truncated, token_device, token_commune FROM rejects WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                out.push(reject_of(&r)?);
            }
        }
        Ok(out)
    }

    async fn delete_rejects(&self, ids: &[i64]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM rejects WHERE id = ?").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_reject_reason(&self, id: i64, reason: &str) -> Result<()> {
        sqlx::query("UPDATE rejects SET reason = ? WHERE id = ?")
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn reject_of(r: &sqlx::sqlite::SqliteRow) -> Result<Reject> {
    Ok(Reject {
        id: r.try_get("id")?,
        received_at: Timestamp::from_nanos(r.try_get("received_at")?),
        source: r.try_get("source")?,
        line: r.try_get::<Option<i64>, _>("line")?.map(|l| l as u32),
        reason: r.try_get("reason")?,
        raw: r.try_get("raw")?,
        format: r.try_get("format")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
        token_device: r
            .try_get::<Option<String>, _>("token_device")?
            .map(|d| DeviceId::parse(&d).map_err(|e| bad("dead letter's device", e)))
            .transpose()?,
        token_commune: r
            .try_get::<Option<String>, _>("token_commune")?
            .map(|c| InseeCode::parse(&c).map_err(|e| bad("dead letter's commune", e)))
            .transpose()?,
    })
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Scope::from_name(s).ok_or_else(|| format!("unknown scope {s:?}: use ingest, read or admin"))
    }
}

/// Write one device's row (created, or updated but for its creation and last-seen times).
async fn upsert_device_row(conn: &mut sqlx::SqliteConnection, d: &Device) -> Result<()> {
    sqlx::query(
        "INSERT INTO devices (id, kind, name, site, commune, lat, lon, metadata, created_at, last_seen) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, site = excluded.site, \
         commune = excluded.commune, lat = excluded.lat, lon = excluded.lon, metadata = excluded.metadata",
    )
    .bind(d.id.as_str())
    .bind(d.kind.as_str())
    .bind(&d.name)
    .bind(d.site.as_ref().map(|s| s.as_str()))
    .bind(d.commune.as_ref().map(|c| c.as_str()))
    .bind(d.lat)
    .bind(d.lon)
    .bind(d.metadata.to_string())
    .bind(d.created_at.as_nanos())
    .bind(d.last_seen.map(Timestamp::as_nanos))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commune the tests' devices stand in.
    fn aix() -> Commune {
        Commune { insee: "13001".parse().unwrap(), name: "Aix-en-Provence".into(), boundary: None }
    }

    fn device(id: &str, site: Option<&str>) -> Device {
        Device {
            id: id.parse().unwrap(),
            kind: "noise".parse().unwrap(),
            name: None,
            site: site.map(|s| s.parse().unwrap()),
            commune: Some("13001".parse().unwrap()),
            lat: None,
            lon: None,
            metadata: serde_json::json!({}),
            created_at: now(),
            last_seen: None,
        }
    }

    fn new_series(device: &str, property: &str) -> NewSeries {
        NewSeries {
            device: device.parse().unwrap(),
            property: property.parse().unwrap(),
            kind: ValueKind::Float,
            unit: "dB".into(),
            source_unit: None,
        }
    }

    /// A fleet's first contact: devices and series registered in one transaction each, kept
    /// at reopening; a pair asked twice or already known gets its one series; a batch with a
    /// device on an unknown place writes nothing.
    #[tokio::test]
    async fn devices_and_series_are_registered_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (ids, known) = {
            let c = SqliteCatalog::open(dir.path()).await.unwrap();
            c.upsert_commune(aix()).await.unwrap();
            let err = c
                .upsert_devices(vec![device("n-1", None), device("n-2", Some("nowhere"))])
                .await
                .unwrap_err();
            assert!(err.to_string().contains("nowhere"), "{err}");
            assert!(c.device("n-1").is_none(), "nothing of a refused batch is written");
            c.upsert_devices((0..300).map(|i| device(&format!("n-{i}"), None)).collect())
                .await
                .unwrap();
            assert_eq!(c.devices(&DeviceFilter::default()).len(), 300);
            let known = c
                .create_series(
                    &"n-7".parse().unwrap(),
                    &"lamax".parse().unwrap(),
                    ValueKind::Float,
                    "dB",
                    None,
                )
                .await
                .unwrap();
            let mut asked: Vec<NewSeries> =
                (0..300).map(|i| new_series(&format!("n-{i}"), "laeq")).collect();
            asked.push(new_series("n-3", "laeq"));
            asked.push(new_series("n-7", "lamax"));
            let made = c.create_series_many(&asked).await.unwrap();
            assert_eq!(made.len(), 302);
            assert_eq!(made[300].id, made[3].id, "a pair asked twice gets one series");
            assert_eq!(made[301].id, known.id, "a known pair keeps its series");
            let distinct: HashSet<u32> = made.iter().map(|s| s.id.0).collect();
            assert_eq!(distinct.len(), 301);
            let err = c.create_series_many(&[new_series("ghost", "laeq")]).await.unwrap_err();
            assert!(err.to_string().contains("ghost"), "{err}");
            (made.iter().map(|s| s.id).collect::<Vec<_>>(), known.id)
        };
        let c = SqliteCatalog::open(dir.path()).await.unwrap();
        assert_eq!(c.devices(&DeviceFilter::default()).len(), 300);
        assert_eq!(
            c.lookup_series(&[("n-0", "laeq"), ("n-299", "laeq")]),
            vec![Some(ids[0]), Some(ids[299])]
        );
        assert_eq!(c.lookup_series(&[("n-7", "lamax")]), vec![Some(known)]);
        let next = c
            .create_series(
                &"n-1".parse().unwrap(),
                &"lamin".parse().unwrap(),
                ValueKind::Float,
                "dB",
                None,
            )
            .await
            .unwrap();
        assert!(ids.iter().all(|i| *i != next.id), "ids go on after the batch");
    }

    #[tokio::test]
    async fn catalog_persists_devices_series_and_hashed_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, sid) = {
            let c = SqliteCatalog::open(dir.path()).await.unwrap();
            c.upsert_commune(aix()).await.unwrap();
            let d = Device {
                id: "aq-1".parse().unwrap(),
                kind: "air_quality".parse().unwrap(),
                name: None,
                site: None,
                commune: Some("13001".parse().unwrap()),
                lat: Some(43.53),
                lon: Some(5.447),
                metadata: serde_json::json!({}),
                created_at: now(),
                last_seen: None,
            };
            c.upsert_device(d).await.unwrap();
            let s = c
                .create_series(
                    &"aq-1".parse().unwrap(),
                    &"no2".parse().unwrap(),
                    ValueKind::Float,
                    "ug/m3",
                    Some("ppb"),
                )
                .await
                .unwrap();
            let again = c
                .create_series(
                    &"aq-1".parse().unwrap(),
                    &"no2".parse().unwrap(),
                    ValueKind::Float,
                    "ug/m3",
                    None,
                )
                .await
                .unwrap();
            assert_eq!(s.id, again.id);
            let (t, secret) = c.create_token("gateway", Scope::Ingest, None).await.unwrap();
            assert_eq!(c.authenticate(&secret).unwrap().id, t.id);
            (secret, s.id)
        };
        let c = SqliteCatalog::open(dir.path()).await.unwrap();
        assert_eq!(c.lookup_series(&[("aq-1", "no2"), ("aq-1", "o3")]), vec![Some(sid), None]);
        assert_eq!(c.series_info(sid).unwrap().source_unit.as_deref(), Some("ppb"));
        let t = c.authenticate(&secret).unwrap();
        assert!(c.authenticate("agora_wrong").is_none());
        c.revoke_token(&t.id).await.unwrap();
        assert!(c.authenticate(&secret).is_none());
        // The secret is never stored in clear.
        let raw = std::fs::read(dir.path().join("catalog.db")).unwrap();
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    #[tokio::test]
    async fn a_revoked_secret_is_not_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "bootstrap-secret-0123456789";
        let c = SqliteCatalog::open(dir.path()).await.unwrap();
        let t = c.create_token_with_secret("admin", Scope::Admin, secret).await.unwrap().unwrap();
        let again = c.create_token_with_secret("admin", Scope::Admin, secret).await.unwrap();
        assert_eq!(again.unwrap().id, t.id, "a live token is returned, not duplicated");
        c.revoke_token(&t.id).await.unwrap();
        drop(c);
        // As at a restart with the same AGORA_ADMIN_TOKEN: this used to fail on tokens.hash.
        let c = SqliteCatalog::open(dir.path()).await.unwrap();
        assert!(c.create_token_with_secret("admin", Scope::Admin, secret).await.unwrap().is_none());
        assert!(c.authenticate(secret).is_none());
        assert!(c.tokens().is_empty());
    }

    #[tokio::test]
    async fn the_dead_letter_log_is_bounded_in_bytes_and_keeps_the_binding() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(dir.path()).await.unwrap();
        let bound: DeviceId = "aq-1".parse().unwrap();
        let big = |i: usize| NewReject {
            source: "test".into(),
            line: Some(i as u32),
            reason: format!("refusal {i}"),
            raw: "x".repeat(MAX_REJECT_RAW),
            format: Some("json".into()),
            token_device: Some(bound.clone()),
            token_commune: None,
        };
        // Twice the byte budget, in batches.
        let n = 2 * (MAX_REJECT_BYTES as usize) / MAX_REJECT_RAW;
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            c.add_rejects(chunk.iter().map(|&i| big(i)).collect()).await.unwrap();
        }
        let kept = c.rejects(MAX_REJECTS as u32).await.unwrap();
        let bytes: usize = kept.iter().map(|r| r.raw.len() + r.reason.len()).sum();
        assert!(bytes as i64 <= MAX_REJECT_BYTES, "{bytes} bytes kept");
        assert!(kept.len() * 2 >= n - 2, "the newest that fit are kept: {}", kept.len());
        assert_eq!(kept[0].line, Some(n as u32 - 1), "newest first");
        assert_eq!(kept[0].token_device.as_ref(), Some(&bound));
        // An input longer than the limit is cut and marked.
        let mut r = big(0);
        r.raw.push('y');
        r.token_device = None;
        c.add_rejects(vec![r]).await.unwrap();
        let last = &c.rejects(1).await.unwrap()[0];
        assert!(last.truncated && last.raw.len() == MAX_REJECT_RAW && last.token_device.is_none());
    }
}
