//! What operators declare for the commerce observatory, kept in the catalog's database: market
//! days and events (the calendar footfall is read against), interventions whose impact on footfall
//! is studied, and the school-holiday calendar an operator loaded in place of the one agora ships.
//! Checking what is declared (dates, places, controls) is the API's job; this keeps it.

use agora_model::Timestamp;
use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// The weekdays' names as events store them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A market day or an event, declared by an operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CalendarEvent {
    /// Identifier.
    pub id: i64,
    /// Its commune (INSEE code).
    pub commune: String,
    /// Its place; absent: the whole commune.
    pub site: Option<String>,
    /// `market` (a weekly market: on `weekdays`) or `event`.
    pub kind: String,
    /// Its name (`Marché de Noël`).
    pub name: String,
    /// Its first day (Europe/Paris).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub first_day: NaiveDate,
    /// Its last day (inclusive).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub last_day: NaiveDate,
    /// The weekdays it happens on (`tue`, `thu`, `sat`); empty: every day from first to last.
    pub weekdays: Vec<String>,
    /// Who declared it (shown to those who may read the platform's data, not to the public).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

impl CalendarEvent {
    /// Whether it happens on a day.
    pub fn on(&self, date: NaiveDate) -> bool {
        self.first_day <= date
            && date <= self.last_day
            && (self.weekdays.is_empty()
                || self
                    .weekdays
                    .iter()
                    .any(|w| *w == WEEKDAYS[date.weekday().num_days_from_monday() as usize]))
    }

    /// Whether it concerns a place of a commune: it is the place's, or the whole commune's.
    pub fn concerns(&self, commune: &str, site: Option<&str>) -> bool {
        self.commune == commune && (self.site.is_none() || self.site.as_deref() == site)
    }
}

/// An intervention whose effect on footfall is studied (`Piétonnisation de la rue X`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Intervention {
    /// Identifier.
    pub id: i64,
    /// Its commune (INSEE code).
    pub commune: String,
    /// The place it changed.
    pub site: String,
    /// Its name.
    pub name: String,
    /// What was done.
    pub description: String,
    /// Its first day (Europe/Paris).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub start_day: NaiveDate,
    /// Places it did not touch, compared with.
    pub controls: Vec<String>,
    /// Who declared it (shown to those who may read the platform's data, not to the public).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A school-holiday calendar an operator loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadedCalendar {
    /// What it is (`zone A`, `académie de Corse`).
    pub name: String,
    /// The calendar, as `agora_indicators::calendar::SchoolHolidays::parse_csv` reads it.
    pub csv: String,
    /// Who loaded it.
    pub loaded_by: String,
    /// When.
    pub loaded_at: Timestamp,
}

/// Where the declarations are kept.
#[async_trait]
pub trait CommerceStore: Send + Sync + std::fmt::Debug {
    /// Keep an event (its `id` is ignored); its id.
    async fn add_event(&self, e: &CalendarEvent) -> Result<i64>;
    /// Every event, by first day.
    async fn events(&self) -> Result<Vec<CalendarEvent>>;
    /// Forget an event; whether it was there.
    async fn delete_event(&self, id: i64) -> Result<bool>;
    /// Keep an intervention (its `id` is ignored); its id.
    async fn add_intervention(&self, i: &Intervention) -> Result<i64>;
    /// Every intervention, by start day.
    async fn interventions(&self) -> Result<Vec<Intervention>>;
    /// Forget an intervention; whether it was there.
    async fn delete_intervention(&self, id: i64) -> Result<bool>;
    /// The school-holiday calendar loaded, if any (otherwise agora's own).
    async fn school_calendar(&self) -> Result<Option<LoadedCalendar>>;
    /// Load one, or go back to agora's own (`None`).
    async fn set_school_calendar(&self, c: Option<&LoadedCalendar>) -> Result<()>;
}

/// The declarations in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteCommerceStore {
    pool: SqlitePool,
}

impl SqliteCommerceStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn day(r: &sqlx::sqlite::SqliteRow, col: &str) -> Result<NaiveDate> {
    let s: String = r.try_get(col)?;
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|_| Error::Internal(format!("commerce calendar: {col} `{s}` is not a date")))
}

#[async_trait]
impl CommerceStore for SqliteCommerceStore {
    async fn add_event(&self, e: &CalendarEvent) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO commerce_events (commune, site, kind, name, first_day, last_day, weekdays, \
             created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&e.commune)
        .bind(&e.site)
        .bind(&e.kind)
        .bind(&e.name)
        .bind(e.first_day.to_string())
        .bind(e.last_day.to_string())
        .bind(e.weekdays.join(","))
        .bind(&e.created_by)
        .bind(e.created_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn events(&self) -> Result<Vec<CalendarEvent>> {
        let rows = sqlx::query("SELECT * FROM commerce_events ORDER BY first_day, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let weekdays: String = r.try_get("weekdays")?;
                Ok(CalendarEvent {
                    id: r.try_get("id")?,
                    commune: r.try_get("commune")?,
                    site: r.try_get("site")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    first_day: day(r, "first_day")?,
                    last_day: day(r, "last_day")?,
                    weekdays: weekdays
                        .split(',')
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    created_by: r.try_get("created_by")?,
                    created_at: Timestamp::from_nanos(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn delete_event(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM commerce_events WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn add_intervention(&self, i: &Intervention) -> Result<i64> {
        let controls = serde_json::to_string(&i.controls)
            .map_err(|e| Error::Internal(format!("controls: {e}")))?;
        let r = sqlx::query(
            "INSERT INTO commerce_interventions (commune, site, name, description, start_day, \
             controls, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&i.commune)
        .bind(&i.site)
        .bind(&i.name)
        .bind(&i.description)
        .bind(i.start_day.to_string())
        .bind(controls)
        .bind(&i.created_by)
        .bind(i.created_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn interventions(&self) -> Result<Vec<Intervention>> {
        let rows = sqlx::query("SELECT * FROM commerce_interventions ORDER BY start_day, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let controls: String = r.try_get("controls")?;
                Ok(Intervention {
                    id: r.try_get("id")?,
                    commune: r.try_get("commune")?,
                    site: r.try_get("site")?,
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    start_day: day(r, "start_day")?,
                    controls: serde_json::from_str(&controls).map_err(|e| {
                        Error::Internal(format!("intervention controls `{controls}`: {e}"))
                    })?,
                    created_by: r.try_get("created_by")?,
                    created_at: Timestamp::from_nanos(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn delete_intervention(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM commerce_interventions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn school_calendar(&self) -> Result<Option<LoadedCalendar>> {
        let row = sqlx::query(
            "SELECT name, csv, loaded_by, loaded_at FROM school_holiday_calendar WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LoadedCalendar {
                name: r.try_get("name")?,
                csv: r.try_get("csv")?,
                loaded_by: r.try_get("loaded_by")?,
                loaded_at: Timestamp::from_nanos(r.try_get("loaded_at")?),
            })
        })
        .transpose()
    }

    async fn set_school_calendar(&self, c: Option<&LoadedCalendar>) -> Result<()> {
        match c {
            None => {
                sqlx::query("DELETE FROM school_holiday_calendar").execute(&self.pool).await?;
            }
            Some(c) => {
                sqlx::query(
                    "INSERT INTO school_holiday_calendar (id, name, csv, loaded_by, loaded_at) \
                     VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     csv = excluded.csv, loaded_by = excluded.loaded_by, \
                     loaded_at = excluded.loaded_at",
                )
                .bind(&c.name)
                .bind(&c.csv)
                .bind(&c.loaded_by)
                .bind(c.loaded_at.as_nanos())
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteCatalog;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[tokio::test]
    async fn declarations_are_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(dir.path()).await.unwrap();
        let store = SqliteCommerceStore::new(cat.pool());
        let market = CalendarEvent {
            id: 0,
            commune: "13001".into(),
            site: None,
            kind: "market".into(),
            name: "Marché".into(),
            first_day: d("2026-01-01"),
            last_day: d("2026-12-31"),
            weekdays: vec!["tue".into(), "sat".into()],
            created_by: "person:1".into(),
            created_at: Timestamp::from_nanos(7),
        };
        let id = store.add_event(&market).await.unwrap();
        let got = store.events().await.unwrap();
        assert_eq!(got, vec![CalendarEvent { id, ..market.clone() }]);
        // 2026-11-28 is a Saturday, the 27th a Friday.
        assert!(got[0].on(d("2026-11-28")) && !got[0].on(d("2026-11-27")));
        assert!(!got[0].on(d("2027-01-02")), "after its last day");
        assert!(got[0].concerns("13001", Some("la-rotonde")) && !got[0].concerns("13109", None));

        let i = Intervention {
            id: 0,
            commune: "13001".into(),
            site: "hotel-de-ville".into(),
            name: "Piétonnisation".into(),
            description: String::new(),
            start_day: d("2026-08-01"),
            controls: vec!["la-rotonde".into(), "pole-culturel".into()],
            created_by: "person:1".into(),
            created_at: Timestamp::from_nanos(8),
        };
        let iid = store.add_intervention(&i).await.unwrap();
        assert_eq!(store.interventions().await.unwrap(), vec![Intervention { id: iid, ..i }]);
        assert!(store.delete_intervention(iid).await.unwrap());
        assert!(!store.delete_intervention(iid).await.unwrap());
        assert!(store.delete_event(id).await.unwrap());
        assert!(store.events().await.unwrap().is_empty());

        assert_eq!(store.school_calendar().await.unwrap(), None);
        let c = LoadedCalendar {
            name: "zone A".into(),
            csv: "name,first_day,last_day\n".into(),
            loaded_by: "person:1".into(),
            loaded_at: Timestamp::from_nanos(9),
        };
        store.set_school_calendar(Some(&c)).await.unwrap();
        store.set_school_calendar(Some(&c)).await.unwrap();
        assert_eq!(store.school_calendar().await.unwrap(), Some(c));
        store.set_school_calendar(None).await.unwrap();
        assert_eq!(store.school_calendar().await.unwrap(), None);
    }
}
