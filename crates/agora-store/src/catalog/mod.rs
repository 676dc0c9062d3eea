//! The catalog: communes, sites, devices, series, tokens and dead letters. Held in memory for the
//! hot path (series resolution, token checks) and persisted in SQL.

pub mod people;
mod sqlite;
pub mod tenant;

use std::fmt::Debug;

pub use agora_model::permissions::{Domain, Grant, Role};
use agora_model::{
    DeviceId, DeviceKind, InseeCode, PropertyName, SeriesId, SiteId, Timestamp, ValueKind,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use sqlite::SqliteCatalog;

use crate::Result;

/// Dead letters kept at most; older ones are dropped first.
pub const MAX_REJECTS: i64 = 10_000;
/// Bytes of dead letters (their input and reason) kept at most; older ones are dropped first.
pub const MAX_REJECT_BYTES: i64 = 32 << 20;
/// Bytes of an offending input kept in a dead letter; a longer one is cut and not replayable.
pub const MAX_REJECT_RAW: usize = 64 << 10;

/// A municipality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commune {
    /// INSEE code, e.g. `13001`.
    pub insee: InseeCode,
    /// Name, e.g. `Aix-en-Provence`.
    pub name: String,
    /// Optional boundary as a GeoJSON geometry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub boundary: Option<serde_json::Value>,
}

/// A place: a public square or street section equipped with sensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Site {
    /// Identifier, e.g. `hotel-de-ville`.
    pub id: SiteId,
    /// The commune it belongs to.
    pub commune: InseeCode,
    /// Name for people.
    pub name: String,
    /// Latitude of its centre (WGS 84).
    pub lat: Option<f64>,
    /// Longitude of its centre (WGS 84).
    pub lon: Option<f64>,
    /// Optional outline as a GeoJSON geometry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub geometry: Option<serde_json::Value>,
    /// Created from a device's site tag on first sight (`[ingest] create_unknown_sites`): its
    /// name, commune and position are to be checked. Declaring the place again clears it.
    #[serde(default)]
    pub to_review: bool,
}

/// A connected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    /// Identifier.
    pub id: DeviceId,
    /// Kind (`air_quality`, `noise`, `streetlight`, …).
    pub kind: DeviceKind,
    /// Name for people.
    #[serde(default)]
    pub name: Option<String>,
    /// The site it stands on.
    #[serde(default)]
    pub site: Option<SiteId>,
    /// The commune it stands in.
    #[serde(default)]
    pub commune: Option<InseeCode>,
    /// Latitude (WGS 84).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude (WGS 84).
    #[serde(default)]
    pub lon: Option<f64>,
    /// Free metadata (model, vendor, expected period…).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last sent data.
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
}

/// A series to create: a device's property, its value kind and unit (and the unit its readings
/// arrive in, when the source converts).
#[derive(Debug, Clone)]
pub struct NewSeries {
    /// The device.
    pub device: DeviceId,
    /// The property.
    pub property: PropertyName,
    /// Kind of its values.
    pub kind: ValueKind,
    /// Canonical unit.
    pub unit: String,
    /// Unit of the source, when converted.
    pub source_unit: Option<String>,
}

/// A series: one property measured by one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesInfo {
    /// Engine handle.
    pub id: SeriesId,
    /// The device.
    pub device: DeviceId,
    /// The property.
    pub property: PropertyName,
    /// Value kind.
    pub kind: ValueKind,
    /// Canonical unit of stored values.
    pub unit: String,
    /// The unit the source sent, when it differed and was converted.
    pub source_unit: Option<String>,
}

/// What a token may do. `Admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Write data (optionally only for one device).
    Ingest,
    /// Read data.
    Read,
    /// Everything, including managing tokens.
    Admin,
}

impl Scope {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
    /// Inverse of [`Scope::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "ingest" => Self::Ingest,
            "read" => Self::Read,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
    /// What a token of this scope made before roles existed is: the Métropole's administrator, a
    /// viewer of the Métropole, or a device.
    pub fn grant(self) -> Grant {
        let role = match self {
            Self::Admin => return Grant::metropole_admin(),
            Self::Read => Role::Viewer,
            Self::Ingest => Role::Device,
        };
        Grant::new(role, None, None).expect("a role of no commune and no domain")
    }
    /// The scope of a role's tokens (for the MQTT broker and clients that know only scopes):
    /// devices ingest, the Métropole's administrator does everything, every other role reads.
    pub fn of_role(role: Role) -> Self {
        match role {
            Role::Device => Self::Ingest,
            Role::MetropoleAdmin => Self::Admin,
            _ => Self::Read,
        }
    }
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// Identifier (public).
    pub id: String,
    /// Name for people.
    pub name: String,
    /// What it may do, coarsely (see `role`).
    pub scope: Scope,
    /// Its role, commune (absent: the Métropole) and domain.
    #[serde(flatten)]
    pub grant: Grant,
    /// The one device an ingest token is bound to.
    pub device: Option<DeviceId>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops authenticating (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// A person with an account (never their password).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Person {
    /// Identifier (public).
    pub id: String,
    /// Email, lower-case: what they log in with.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role, commune (absent: the Métropole) and domain.
    #[serde(flatten)]
    pub grant: Grant,
    /// Whether they have a password (else they log in through single sign-on only).
    pub has_password: bool,
    /// Their identity at the single sign-on provider (`issuer` + space + `sub`), once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Failed logins in a row.
    pub failed_logins: i64,
    /// Locked until then after repeated failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Timestamp>,
    /// Disabled by an administrator: logs in no more.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: Timestamp,
    /// Their last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
}

/// A person to create.
#[derive(Debug, Clone)]
pub struct NewPerson {
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role, commune and domain.
    pub grant: Grant,
    /// Password (checked against the policy); none: single sign-on only.
    pub password: Option<String>,
    /// Identity at the single sign-on provider.
    pub subject: Option<String>,
}

/// Why a password login was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginRefusal {
    /// Unknown email or wrong password (the two are not told apart).
    Wrong,
    /// Locked after repeated failures, until then.
    Locked(Timestamp),
    /// Disabled by an administrator.
    Disabled,
}

/// Input rejected by a parser or validator, kept so nothing received is silently lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reject {
    /// Identifier (increasing).
    pub id: i64,
    /// When it arrived.
    pub received_at: Timestamp,
    /// Where it came from (`http /write`, `http /api/v1/senml`, …).
    pub source: String,
    /// Line or record number in the payload, 1-based.
    pub line: Option<u32>,
    /// Why it was refused.
    pub reason: String,
    /// The offending input (truncated to 64 KiB).
    pub raw: String,
    /// How to decode `raw` again (see `agora_ingest::replay`), when it can be replayed.
    pub format: Option<String>,
    /// Whether `raw` was cut to fit, which makes it not replayable.
    pub truncated: bool,
    /// The device the sending token was bound to: a replay may write for it only.
    pub token_device: Option<DeviceId>,
    /// The commune of the token that sent it (absent: the Métropole's): a replay writes only
    /// for that commune's devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub token_commune: Option<InseeCode>,
}

/// A reject to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReject {
    /// Where it came from.
    pub source: String,
    /// Line or record number, 1-based.
    pub line: Option<u32>,
    /// Why it was refused.
    pub reason: String,
    /// The offending input.
    pub raw: String,
    /// How to decode `raw` again, when it can be replayed.
    pub format: Option<String>,
    /// The device the sending token was bound to, if any.
    pub token_device: Option<DeviceId>,
    /// The commune of the token that sent it (absent: the Métropole's): a replay writes only
    /// for that commune's devices.
    pub token_commune: Option<InseeCode>,
}

/// Which devices to list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Only this commune.
    pub commune: Option<InseeCode>,
    /// Only this site.
    pub site: Option<SiteId>,
    /// Only this kind.
    pub kind: Option<DeviceKind>,
    /// Only inside `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: Option<[f64; 4]>,
}

impl DeviceFilter {
    /// Whether the filter lets every device pass.
    pub fn is_empty(&self) -> bool {
        self.commune.is_none() && self.site.is_none() && self.kind.is_none() && self.bbox.is_none()
    }

    /// Whether a device passes the filter.
    pub fn matches(&self, d: &Device) -> bool {
        self.commune.as_ref().is_none_or(|c| d.commune.as_ref() == Some(c))
            && self.site.as_ref().is_none_or(|s| d.site.as_ref() == Some(s))
            && self.kind.as_ref().is_none_or(|k| &d.kind == k)
            && self.bbox.is_none_or(|[x0, y0, x1, y1]| match (d.lon, d.lat) {
                (Some(x), Some(y)) => x >= x0 && x <= x1 && y >= y0 && y <= y1,
                _ => false,
            })
    }
}

/// Attributes a device may have in each scope, at most.
pub const MAX_ATTRIBUTES: usize = 256;

/// Who sets a device attribute (ThingsBoard's scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeScope {
    /// Reported by the device itself (model, firmware, configuration it runs with).
    Client,
    /// Set by operators and pushed to the device (a target, a schedule, a threshold).
    Shared,
}

impl AttributeScope {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeScope::Client => "client",
            AttributeScope::Shared => "shared",
        }
    }
}

/// A device's attributes, by scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attributes {
    /// Reported by the device.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub client: serde_json::Map<String, serde_json::Value>,
    /// Set by operators.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub shared: serde_json::Map<String, serde_json::Value>,
}

/// The catalog seam. Reads are synchronous (served from memory); writes are persisted first.
#[async_trait]
pub trait Catalog: Send + Sync + Debug {
    /// Write a consistent copy of the catalog (and what shares its database) to `path`, a new
    /// file, while it is in use.
    async fn backup_into(&self, path: &std::path::Path) -> Result<()> {
        Err(crate::Error::Invalid(format!(
            "this catalog cannot copy itself into {}",
            path.display()
        )))
    }
    /// Create or update a commune.
    async fn upsert_commune(&self, c: Commune) -> Result<()>;
    /// All communes.
    fn communes(&self) -> Vec<Commune>;
    /// Create or update a site (its commune must exist).
    async fn upsert_site(&self, s: Site) -> Result<()>;
    /// Create a site unless one with its id exists (never replacing what an operator declared
    /// meanwhile); whether it was created.
    async fn insert_site(&self, s: Site) -> Result<bool>;
    /// All sites.
    fn sites(&self) -> Vec<Site>;
    /// Create or update a device (its site and commune must exist).
    async fn upsert_device(&self, d: Device) -> Result<()>;
    /// One device.
    fn device(&self, id: &str) -> Option<Device>;
    /// The commune of a device (`Some(None)`: a device in no commune; `None`: no such device),
    /// without copying the whole device: asked for every device of a batch a commune's token
    /// sends, and of every series a commune's query reads.
    fn device_commune(&self, id: &str) -> Option<Option<InseeCode>> {
        self.device(id).map(|d| d.commune)
    }
    /// A number that changes each time a device is created or changed (so that a reader
    /// caching devices knows when to look again).
    fn devices_version(&self) -> u64;
    /// Devices passing a filter, sorted by id.
    fn devices(&self, f: &DeviceFilter) -> Vec<Device>;
    /// Series ids of `(device, property)` pairs, looked up under one lock.
    fn lookup_series(&self, keys: &[(&str, &str)]) -> Vec<Option<SeriesId>>;
    /// Create a series (or return the existing one).
    async fn create_series(
        &self,
        device: &DeviceId,
        property: &PropertyName,
        kind: ValueKind,
        unit: &str,
        source_unit: Option<&str>,
    ) -> Result<SeriesInfo>;
    /// Create series (or return the existing ones), in the order given: a fleet's first contact
    /// registers thousands at once. The SQLite catalog writes them in one transaction; this
    /// default, one by one.
    async fn create_series_many(&self, new: &[NewSeries]) -> Result<Vec<SeriesInfo>> {
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            out.push(
                self.create_series(
                    &n.device,
                    &n.property,
                    n.kind,
                    &n.unit,
                    n.source_unit.as_deref(),
                )
                .await?,
            );
        }
        Ok(out)
    }
    /// Create or update devices (each one's site and commune must exist). The SQLite catalog
    /// writes them in one transaction, nothing when one of them cannot be; this default, one by
    /// one, up to the first that cannot be.
    async fn upsert_devices(&self, devices: Vec<Device>) -> Result<()> {
        for d in devices {
            self.upsert_device(d).await?;
        }
        Ok(())
    }
    /// One series.
    fn series_info(&self, id: SeriesId) -> Option<SeriesInfo>;
    /// All series of a device.
    fn device_series(&self, device: &str) -> Vec<SeriesInfo>;
    /// All series, sorted by id.
    fn all_series(&self) -> Vec<SeriesInfo>;
    /// Record that devices sent data (kept in memory; persisted by [`Catalog::persist`]).
    fn touch(&self, seen: &[(DeviceId, Timestamp)]);
    /// Persist in-memory state (last-seen times).
    async fn persist(&self) -> Result<()>;
    /// Save a piece of the running server's state (JSON) under `name`, replacing the last.
    async fn save_runtime_state(&self, name: &str, value: &str) -> Result<()>;
    /// The state last saved under `name`.
    async fn runtime_state(&self, name: &str) -> Result<Option<String>>;
    /// Persist, then close for good at shutdown: the database is left whole in its file (no
    /// write-ahead log beside it). Nothing may use the catalog afterwards.
    async fn close(&self) -> Result<()> {
        self.persist().await
    }
    /// Create a token; returns its description and, once, its secret.
    async fn create_token(
        &self,
        name: &str,
        scope: Scope,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)>;
    /// Create a token with a role in a commune (checked: the commune exists, a device binding
    /// is for a device role); returns it and its secret (shown once).
    async fn create_token_granted(
        &self,
        name: &str,
        grant: Grant,
        device: Option<DeviceId>,
    ) -> Result<(TokenInfo, String)>;
    /// Create a token with a given secret (the first admin token from `AGORA_ADMIN_TOKEN`), or
    /// return the live token that has it already. `None` when the secret belongs to a revoked
    /// token: a revoked secret is never brought back.
    async fn create_token_with_secret(
        &self,
        name: &str,
        scope: Scope,
        secret: &str,
    ) -> Result<Option<TokenInfo>>;
    /// The token a secret belongs to, unless unknown or revoked.
    fn authenticate(&self, secret: &str) -> Option<TokenInfo>;
    /// Set (or clear) a live token's expiry.
    async fn set_token_expiry(&self, id: &str, at: Option<Timestamp>) -> Result<TokenInfo>;
    /// Live tokens.
    fn tokens(&self) -> Vec<TokenInfo>;
    /// Revoke a token.
    async fn revoke_token(&self, id: &str) -> Result<()>;
    /// Create a person's account (checked: email, name, password policy, the commune exists).
    async fn create_person(&self, p: NewPerson) -> Result<Person>;
    /// Every person, by email.
    fn people(&self) -> Vec<Person>;
    /// One person.
    fn person(&self, id: &str) -> Option<Person>;
    /// The person linked to a single sign-on identity.
    fn person_by_subject(&self, subject: &str) -> Option<Person>;
    /// The person of an email.
    fn person_by_email(&self, email: &str) -> Option<Person>;
    /// Change a person's name, grant or disabled flag; `None` leaves it as it is.
    async fn update_person(
        &self,
        id: &str,
        name: Option<String>,
        grant: Option<Grant>,
        disabled: Option<bool>,
    ) -> Result<Person>;
    /// Set a person's password (checked against the policy) and unlock the account.
    async fn set_password(&self, id: &str, password: &str) -> Result<()>;
    /// Link a person to a single sign-on identity.
    async fn link_subject(&self, id: &str, subject: &str) -> Result<()>;
    /// Erase a person's account.
    async fn delete_person(&self, id: &str) -> Result<()>;
    /// Check an email and password at `now`: the person, or why not. Counts failures, locks the
    /// account after [`people::LOCK_AFTER`] in a row, and records the login.
    async fn password_login(
        &self,
        email: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Person, LoginRefusal>>;
    /// Set some attributes of a device (at most [`MAX_ATTRIBUTES`] per scope).
    async fn set_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        values: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()>;
    /// Remove some attributes of a device.
    async fn delete_attributes(
        &self,
        device: &DeviceId,
        scope: AttributeScope,
        keys: &[String],
    ) -> Result<()>;
    /// All attributes of a device.
    async fn attributes(&self, device: &DeviceId) -> Result<Attributes>;
    /// Keep rejected input (bounded: the oldest are dropped beyond [`MAX_REJECTS`] dead letters
    /// or [`MAX_REJECT_BYTES`]; each input is cut at [`MAX_REJECT_RAW`]).
    async fn add_rejects(&self, r: Vec<NewReject>) -> Result<()>;
    /// The most recent rejects, newest first.
    async fn rejects(&self, limit: u32) -> Result<Vec<Reject>>;
    /// Some rejects by id.
    async fn rejects_by_id(&self, ids: &[i64]) -> Result<Vec<Reject>>;
    /// Forget rejects (replayed successfully).
    async fn delete_rejects(&self, ids: &[i64]) -> Result<()>;
    /// Record a new reason for a reject that failed again.
    async fn update_reject_reason(&self, id: i64, reason: &str) -> Result<()>;
}
