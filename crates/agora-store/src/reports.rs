//! Citizens' reports (signalements) kept in the catalog's database: the report and its ticket's
//! state, the events of its life (filed, supported by a duplicate, acknowledged, in progress,
//! resolved, rejected, reopened — who and when), and the reporters' email addresses, kept apart
//! so that they are erased alone when their time is up. What a category means, who may see a
//! report and which changes are allowed is the API's business: this keeps rows.

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ReportStatus))]
pub enum Status {
    /// Filed, nobody has looked at it yet.
    New,
    /// An operator has seen it.
    Acknowledged,
    /// Someone is on it.
    InProgress,
    /// Fixed.
    Resolved,
    /// Not a problem the city will fix, with the reason.
    Rejected,
}

impl Status {
    /// Every status, in the ticket's order.
    pub const ALL: [Status; 5] =
        [Status::New, Status::Acknowledged, Status::InProgress, Status::Resolved, Status::Rejected];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Rejected => "rejected",
        }
    }

    /// The status of a name, or an error naming those that exist.
    pub fn parse(s: &str) -> std::result::Result<Status, String> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Status::ALL.iter().map(|x| x.as_str()).collect();
            format!("unknown status {s:?}: one of {}", all.join(", "))
        })
    }

    /// Whether the ticket is still to be handled.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Rejected)
    }
}

/// A report and its ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CitizenReport))]
pub struct Report {
    /// The ticket's number.
    pub id: i64,
    /// The reporter's follow-up key (never shown to operators or the public).
    #[serde(skip)]
    pub follow: String,
    /// The commune it is in.
    pub commune: String,
    /// The place it is at, when one is near.
    pub site: Option<String>,
    /// Its category (`street_light`, `bin`…).
    pub category: String,
    /// Latitude (WGS 84).
    pub lat: f64,
    /// Longitude (WGS 84).
    pub lon: f64,
    /// What the reporter wrote (shown to operators; to the public only when published).
    pub description: String,
    /// Where it was filed: `web`, `kiosk` or `api`.
    pub channel: String,
    /// Where the ticket stands.
    pub status: Status,
    /// How it was resolved, or why it was rejected.
    pub reason: Option<String>,
    /// What operators publish about it.
    pub public_note: Option<String>,
    /// Whether operators published the reporter's text.
    pub description_public: bool,
    /// How many people reported it (duplicates merged into it, itself included).
    pub supporters: i64,
    /// The open alert it joined, if any.
    pub alert_id: Option<i64>,
    /// Devices of its category near it.
    pub devices: Vec<String>,
    /// Email addresses kept to tell reporters it was handled.
    pub contacts: i64,
    /// Filed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// Last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
    /// Resolved or rejected.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub closed_at: Option<Timestamp>,
}

/// Something that happened to a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = CitizenReportEvent))]
pub struct Event {
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// `created`, `supported`, a status, or `reopened`.
    pub event: String,
    /// `citizen`, or the operator.
    pub actor: String,
    /// What they wrote.
    pub note: Option<String>,
}

/// A reporter's address, given with their consent to be told when the report is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The address.
    pub email: String,
    /// `fr` or `en`.
    pub lang: String,
}

/// A report to file.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The follow-up key.
    pub follow: String,
    /// Commune.
    pub commune: String,
    /// Place.
    pub site: Option<String>,
    /// Category.
    pub category: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Text.
    pub description: String,
    /// `web`, `kiosk` or `api`.
    pub channel: String,
    /// The open alert it joins.
    pub alert_id: Option<i64>,
    /// Devices near it.
    pub devices: Vec<String>,
    /// The reporter's address, with consent.
    pub contact: Option<Contact>,
    /// When.
    pub at: Timestamp,
}

/// Which reports to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// These statuses only.
    pub statuses: Vec<Status>,
    /// These categories only.
    pub categories: Vec<String>,
    /// This commune only.
    pub commune: Option<String>,
    /// This place only.
    pub site: Option<String>,
    /// Filed at or after.
    pub since: Option<Timestamp>,
    /// Filed before.
    pub until: Option<Timestamp>,
    /// Within `[south, west, north, east]`.
    pub within: Option<[f64; 4]>,
    /// Closed at or after (open ones pass).
    pub open_or_closed_since: Option<Timestamp>,
    /// At most this many, newest first (0: all).
    pub limit: u32,
}

/// A change to a ticket.
#[derive(Debug, Clone)]
pub struct Change {
    /// The status it is expected to have now (someone else's change in between is refused).
    pub from: Status,
    /// The new status (the same one: only the notes change).
    pub status: Status,
    /// The event recorded (`acknowledged`, `reopened`…).
    pub event: String,
    /// Who.
    pub actor: String,
    /// How it was resolved, why it was rejected (kept in `reason` when closing).
    pub note: Option<String>,
    /// A new published note (`Some(None)`: withdrawn).
    pub public_note: Option<Option<String>>,
    /// Publish or withdraw the reporter's text.
    pub description_public: Option<bool>,
    /// When.
    pub at: Timestamp,
}

/// Where reports are kept.
#[async_trait]
pub trait ReportStore: Send + Sync + std::fmt::Debug {
    /// File a report (with its `created` event and its contact, in one transaction).
    async fn create(&self, r: &NewReport) -> Result<Report>;
    /// Merge a duplicate into a report: one more supporter, a `supported` event, their own
    /// follow-up key, their contact.
    async fn support(
        &self,
        id: i64,
        follow: &str,
        contact: Option<&Contact>,
        at: Timestamp,
    ) -> Result<Report>;
    /// A report by number.
    async fn report(&self, id: i64) -> Result<Option<Report>>;
    /// A report by its follow-up key.
    async fn by_follow(&self, key: &str) -> Result<Option<Report>>;
    /// Reports, newest first.
    async fn list(&self, f: &Filter) -> Result<Vec<Report>>;
    /// A report's events, oldest first.
    async fn events(&self, id: i64) -> Result<Vec<Event>>;
    /// Change a ticket (its status, notes) and record the event.
    async fn change(&self, id: i64, c: &Change) -> Result<Report>;
    /// The addresses to tell about a report.
    async fn contacts(&self, id: i64) -> Result<Vec<Contact>>;
    /// Note that a report's reporters were told.
    async fn contacted(&self, id: i64, at: Timestamp) -> Result<()>;
    /// Name someone otherwise in the tickets' histories (a person erased); how many events.
    async fn rename_actor(&self, from: &str, to: &str) -> Result<u64>;
    /// Erase the addresses of reports closed before `closed_before`, and any given before
    /// `given_before` (a report never closed does not keep them forever); how many.
    async fn erase_contacts(
        &self,
        closed_before: Timestamp,
        given_before: Timestamp,
    ) -> Result<u64>;
}

/// Reports in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteReportStore {
    pool: SqlitePool,
}

impl SqliteReportStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

const COLUMNS: &str = "r.*, (SELECT COUNT(*) FROM report_contacts c WHERE c.report_id = r.id) \
                       AS contacts";

fn row(r: &sqlx::sqlite::SqliteRow) -> Result<Report> {
    let status: String = r.try_get("status")?;
    let devices: String = r.try_get("devices")?;
    Ok(Report {
        id: r.try_get("id")?,
        follow: r.try_get("follow")?,
        commune: r.try_get("commune")?,
        site: r.try_get("site")?,
        category: r.try_get("category")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        description: r.try_get("description")?,
        channel: r.try_get("channel")?,
        status: Status::parse(&status).map_err(Error::Internal)?,
        reason: r.try_get("reason")?,
        public_note: r.try_get("public_note")?,
        description_public: r.try_get::<i64, _>("description_public")? != 0,
        supporters: r.try_get("supporters")?,
        alert_id: r.try_get("alert_id")?,
        devices: serde_json::from_str(&devices)
            .map_err(|e| Error::Internal(format!("report devices: {e}")))?,
        contacts: r.try_get("contacts")?,
        created_at: Timestamp::from_nanos(r.try_get("created_at")?),
        updated_at: Timestamp::from_nanos(r.try_get("updated_at")?),
        closed_at: r.try_get::<Option<i64>, _>("closed_at")?.map(Timestamp::from_nanos),
    })
}

impl SqliteReportStore {
    async fn one(&self, id: i64) -> Result<Report> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM reports r WHERE r.id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match r {
            Some(r) => row(&r),
            None => Err(Error::NotFound { what: "report", id: id.to_string() }),
        }
    }
}

#[async_trait]
impl ReportStore for SqliteReportStore {
    async fn create(&self, n: &NewReport) -> Result<Report> {
        let mut tx = self.pool.begin().await?;
        let at = n.at.as_nanos();
        let id = sqlx::query(
            "INSERT INTO reports (follow, commune, site, category, lat, lon, description, channel, \
             status, alert_id, devices, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?)",
        )
        .bind(&n.follow)
        .bind(&n.commune)
        .bind(&n.site)
        .bind(&n.category)
        .bind(n.lat)
        .bind(n.lon)
        .bind(&n.description)
        .bind(&n.channel)
        .bind(n.alert_id)
        .bind(serde_json::to_string(&n.devices).unwrap_or_else(|_| "[]".into()))
        .bind(at)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .last_insert_rowid();
        sqlx::query(
            "INSERT INTO report_events (report_id, at, event, actor) VALUES (?, ?, 'created', 'citizen')",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if let Some(c) = &n.contact {
            sqlx::query(
                "INSERT OR IGNORE INTO report_contacts (report_id, email, lang, consent_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&c.email)
            .bind(&c.lang)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.one(id).await
    }

    async fn support(
        &self,
        id: i64,
        follow: &str,
        contact: Option<&Contact>,
        at: Timestamp,
    ) -> Result<Report> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE reports SET supporters = supporters + 1, updated_at = ? WHERE id = ?",
        )
        .bind(at.as_nanos())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::NotFound { what: "report", id: id.to_string() });
        }
        sqlx::query(
            "INSERT INTO report_events (report_id, at, event, actor) VALUES (?, ?, 'supported', 'citizen')",
        )
        .bind(id)
        .bind(at.as_nanos())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO report_follows (key, report_id) VALUES (?, ?)")
            .bind(follow)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some(c) = contact {
            // At most 50 addresses a report: closing it sends one message each.
            sqlx::query(
                "INSERT OR IGNORE INTO report_contacts (report_id, email, lang, consent_at) \
                 SELECT ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM report_contacts WHERE report_id = ?) < 50",
            )
            .bind(id)
            .bind(&c.email)
            .bind(&c.lang)
            .bind(at.as_nanos())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.one(id).await
    }

    async fn report(&self, id: i64) -> Result<Option<Report>> {
        match self.one(id).await {
            Ok(r) => Ok(Some(r)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn by_follow(&self, key: &str) -> Result<Option<Report>> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reports r WHERE r.follow = ? OR r.id = \
             (SELECT report_id FROM report_follows WHERE key = ?)"
        ))
        .bind(key)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(row).transpose()
    }

    async fn list(&self, f: &Filter) -> Result<Vec<Report>> {
        let mut sql = format!("SELECT {COLUMNS} FROM reports r WHERE 1 = 1");
        if !f.statuses.is_empty() {
            let marks = vec!["?"; f.statuses.len()].join(", ");
            sql.push_str(&format!(" AND r.status IN ({marks})"));
        }
        if !f.categories.is_empty() {
            let marks = vec!["?"; f.categories.len()].join(", ");
            sql.push_str(&format!(" AND r.category IN ({marks})"));
        }
        if f.commune.is_some() {
            sql.push_str(" AND r.commune = ?");
        }
        if f.site.is_some() {
            sql.push_str(" AND r.site = ?");
        }
        if f.since.is_some() {
            sql.push_str(" AND r.created_at >= ?");
        }
        if f.until.is_some() {
            sql.push_str(" AND r.created_at < ?");
        }
        if f.within.is_some() {
            sql.push_str(" AND r.lat BETWEEN ? AND ? AND r.lon BETWEEN ? AND ?");
        }
        if f.open_or_closed_since.is_some() {
            sql.push_str(" AND (r.closed_at IS NULL OR r.closed_at >= ?)");
        }
        sql.push_str(" ORDER BY r.created_at DESC, r.id DESC");
        if f.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", f.limit));
        }
        let mut q = sqlx::query(&sql);
        for s in &f.statuses {
            q = q.bind(s.as_str());
        }
        for c in &f.categories {
            q = q.bind(c);
        }
        if let Some(c) = &f.commune {
            q = q.bind(c);
        }
        if let Some(x) = &f.site {
            q = q.bind(x);
        }
        if let Some(t) = f.since {
            q = q.bind(t.as_nanos());
        }
        if let Some(t) = f.until {
            q = q.bind(t.as_nanos());
        }
        if let Some([s, w, n, e]) = f.within {
            q = q.bind(s).bind(n).bind(w).bind(e);
        }
        if let Some(t) = f.open_or_closed_since {
            q = q.bind(t.as_nanos());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(row).collect()
    }

    async fn events(&self, id: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT at, event, actor, note FROM report_events WHERE report_id = ? ORDER BY at, rowid",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    at: Timestamp::from_nanos(r.try_get("at")?),
                    event: r.try_get("event")?,
                    actor: r.try_get("actor")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    async fn change(&self, id: i64, c: &Change) -> Result<Report> {
        let mut tx = self.pool.begin().await?;
        let at = c.at.as_nanos();
        let closing = !c.status.is_open();
        let n = sqlx::query(
            "UPDATE reports SET status = ?, updated_at = ?, \
             closed_at = CASE WHEN ? THEN COALESCE(closed_at, ?) ELSE NULL END, \
             reason = CASE WHEN ? THEN COALESCE(?, reason) ELSE reason END \
             WHERE id = ? AND status = ?",
        )
        .bind(c.status.as_str())
        .bind(at)
        .bind(closing)
        .bind(at)
        .bind(closing)
        .bind(&c.note)
        .bind(id)
        .bind(c.from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            drop(tx);
            return match self.report(id).await? {
                None => Err(Error::NotFound { what: "report", id: id.to_string() }),
                Some(r) => Err(Error::Conflict(format!(
                    "report {id} is {} now, not {}: someone changed it meanwhile",
                    r.status.as_str(),
                    c.from.as_str()
                ))),
            };
        }
        if let Some(p) = &c.public_note {
            sqlx::query("UPDATE reports SET public_note = ? WHERE id = ?")
                .bind(p)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(p) = c.description_public {
            sqlx::query("UPDATE reports SET description_public = ? WHERE id = ?")
                .bind(p)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO report_events (report_id, at, event, actor, note) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(at)
        .bind(&c.event)
        .bind(&c.actor)
        .bind(&c.note)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.one(id).await
    }

    async fn rename_actor(&self, from: &str, to: &str) -> Result<u64> {
        let r = sqlx::query("UPDATE report_events SET actor = ? WHERE actor = ?")
            .bind(to)
            .bind(from)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn contacts(&self, id: i64) -> Result<Vec<Contact>> {
        let rows = sqlx::query(
            "SELECT email, lang FROM report_contacts WHERE report_id = ? ORDER BY consent_at",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(Contact { email: r.try_get("email")?, lang: r.try_get("lang")? }))
            .collect()
    }

    async fn contacted(&self, id: i64, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE report_contacts SET notified_at = ? WHERE report_id = ?")
            .bind(at.as_nanos())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn erase_contacts(
        &self,
        closed_before: Timestamp,
        given_before: Timestamp,
    ) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM report_contacts WHERE consent_at < ? OR report_id IN \
             (SELECT id FROM reports WHERE closed_at IS NOT NULL AND closed_at < ?)",
        )
        .bind(given_before.as_nanos())
        .bind(closed_before.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
