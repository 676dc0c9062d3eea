//! The open-data datasets operators define, kept in the catalog's database: what a dataset holds
//! (a theme's measurements at a place or in a commune at a resolution, or the catalogue of places
//! or devices), its metadata (title, licence, publisher, contact) and whether it is published.
//! What may be published (no device internals, footfall never finer than hourly) is checked by
//! `agora-opendata` before a definition is stored; this keeps it.

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// What a dataset's records are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DatasetKind {
    /// One record per device and period: the theme's properties, averaged over the period.
    Measurements,
    /// One record per place: name, commune, position, what is measured there.
    Places,
    /// One record per device: kind, place, position, what it measures (never its internals).
    Devices,
    /// One record per place and month: the well-being index, its dimensions, the share of the
    /// weights measured and the definition's version.
    Wellbeing,
    /// One record per populated square (or address) of the 15-minute city: its population and
    /// the walk to the nearest facility of each theme.
    Accessibility,
    /// One record per citizens' report: its category, place, state, dates and time to
    /// resolution — nothing personal (no text, no address, a position to about 100 m).
    Reports,
    /// One record per point of interest: its kind, names and descriptions in French and
    /// English, opening hours, accessibility, position.
    PointsOfInterest,
    /// One record per stop of each discovery tour: the tour, the stop's order and point, the
    /// tour's length and duration.
    Tours,
}

/// A theme: which devices and properties a measurements dataset covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Theme {
    /// Air quality (particles, NO2, O3).
    Air,
    /// Noise (sound levels).
    Noise,
    /// Weather and heat (temperature, humidity, wind…).
    Weather,
    /// Pedestrian footfall.
    Footfall,
    /// Street lighting.
    Lighting,
    /// Waste containers' fill levels.
    Bins,
    /// Soil moisture of green spaces.
    Soil,
    /// The catalogue of places and devices.
    Equipment,
}

impl Theme {
    /// Every theme, in the order pages list them.
    pub const ALL: [Theme; 8] = [
        Theme::Air,
        Theme::Noise,
        Theme::Weather,
        Theme::Footfall,
        Theme::Lighting,
        Theme::Bins,
        Theme::Soil,
        Theme::Equipment,
    ];

    /// Its name in definitions and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Air => "air",
            Theme::Noise => "noise",
            Theme::Weather => "weather",
            Theme::Footfall => "footfall",
            Theme::Lighting => "lighting",
            Theme::Bins => "bins",
            Theme::Soil => "soil",
            Theme::Equipment => "equipment",
        }
    }
}

/// How finely a measurements dataset is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Resolution {
    /// Every reading as received.
    #[serde(rename = "raw")]
    Raw,
    /// Means over quarters of an hour (UTC).
    #[serde(rename = "15min")]
    QuarterHour,
    /// Hourly means (UTC hours).
    #[serde(rename = "hourly")]
    Hourly,
    /// Daily means over local days (Europe/Paris).
    #[serde(rename = "daily")]
    Daily,
}

impl Resolution {
    /// Its name in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Raw => "raw",
            Resolution::QuarterHour => "15min",
            Resolution::Hourly => "hourly",
            Resolution::Daily => "daily",
        }
    }
}

/// A dataset as an operator defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Identifier, a slug (`qualite-air-hotel-de-ville-horaire`): the Explore API's `dataset_id`.
    pub id: String,
    /// What its records are.
    pub kind: DatasetKind,
    /// Title for people (French first).
    pub title: String,
    /// What it holds, how it is measured, what to mind.
    pub description: String,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Its theme.
    pub theme: Theme,
    /// Only this commune (INSEE code); absent: every commune.
    #[serde(default)]
    pub commune: Option<String>,
    /// Only this place; absent: every place in scope.
    #[serde(default)]
    pub site: Option<String>,
    /// Measurements: the properties published; empty: every public property of the theme.
    #[serde(default)]
    pub properties: Vec<String>,
    /// Measurements: how finely.
    #[serde(default = "hourly")]
    pub resolution: Resolution,
    /// Measurements: hours after which data becomes public (0: as soon as a period is complete).
    #[serde(default)]
    pub embargo_hours: u32,
    /// Licence: `etalab-2.0` (Licence Ouverte 2.0, the default) or `odbl-1.0`.
    #[serde(default = "etalab")]
    pub licence: String,
    /// Publisher's name; absent: the deployment's.
    #[serde(default)]
    pub publisher: Option<String>,
    /// Contact e-mail; absent: the deployment's.
    #[serde(default)]
    pub contact_email: Option<String>,
    /// Whether it is public.
    #[serde(default)]
    pub published: bool,
    /// When it was first stored (set by the store).
    #[serde(default = "epoch")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When its definition last changed (set by the store).
    #[serde(default = "epoch")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub modified_at: Timestamp,
}

fn hourly() -> Resolution {
    Resolution::Hourly
}

fn epoch() -> Timestamp {
    Timestamp::from_nanos(0)
}

fn etalab() -> String {
    "etalab-2.0".into()
}

/// Where dataset definitions are kept.
#[async_trait]
pub trait DatasetStore: Send + Sync + std::fmt::Debug {
    /// Store a definition (new or replacing one with its id), stamping its times; returns it as
    /// stored.
    async fn put(&self, d: Dataset, now: Timestamp) -> Result<Dataset>;
    /// Every definition, by id.
    async fn list(&self) -> Result<Vec<Dataset>>;
    /// One definition.
    async fn get(&self, id: &str) -> Result<Option<Dataset>>;
    /// Remove one; whether it existed.
    async fn delete(&self, id: &str) -> Result<bool>;
}

/// The definitions in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteDatasetStore {
    pool: SqlitePool,
}

impl SqliteDatasetStore {
    /// On the catalog's pool (its migrations created the table).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn decode(r: &sqlx::sqlite::SqliteRow) -> Result<Dataset> {
    let json: String = r.try_get("definition")?;
    let mut d: Dataset = serde_json::from_str(&json)
        .map_err(|e| Error::Internal(format!("open dataset definition unreadable: {e}")))?;
    d.published = r.try_get::<i64, _>("published")? != 0;
    d.created_at = Timestamp::from_nanos(r.try_get("created_at")?);
    d.modified_at = Timestamp::from_nanos(r.try_get("modified_at")?);
    Ok(d)
}

#[async_trait]
impl DatasetStore for SqliteDatasetStore {
    async fn put(&self, mut d: Dataset, now: Timestamp) -> Result<Dataset> {
        let created: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM open_datasets WHERE id = ?")
                .bind(&d.id)
                .fetch_optional(&self.pool)
                .await?;
        d.created_at = Timestamp::from_nanos(created.unwrap_or(now.as_nanos()));
        d.modified_at = now;
        let json = serde_json::to_string(&d)
            .map_err(|e| Error::Internal(format!("open dataset definition: {e}")))?;
        sqlx::query(
            "INSERT INTO open_datasets (id, published, definition, created_at, modified_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET published = excluded.published, \
             definition = excluded.definition, modified_at = excluded.modified_at",
        )
        .bind(&d.id)
        .bind(d.published as i64)
        .bind(json)
        .bind(d.created_at.as_nanos())
        .bind(d.modified_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(d)
    }

    async fn list(&self) -> Result<Vec<Dataset>> {
        let rows =
            sqlx::query("SELECT * FROM open_datasets ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(decode).collect()
    }

    async fn get(&self, id: &str) -> Result<Option<Dataset>> {
        let row = sqlx::query("SELECT * FROM open_datasets WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    async fn delete(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM open_datasets WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteCatalog;

    fn dataset(id: &str) -> Dataset {
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": "measurements", "title": "Qualité de l'air",
            "description": "Moyennes horaires", "theme": "air", "site": "hotel-de-ville",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn definitions_are_kept_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(dir.path()).await.unwrap();
        let store = SqliteDatasetStore::new(cat.pool());
        let d = dataset("air-hdv");
        assert_eq!(d.resolution, Resolution::Hourly, "hourly by default");
        assert_eq!(d.licence, "etalab-2.0", "Licence Ouverte by default");
        let t1 = Timestamp::from_nanos(1_000);
        let stored = store.put(d.clone(), t1).await.unwrap();
        assert_eq!(stored.created_at, t1);
        let mut changed = stored.clone();
        changed.published = true;
        changed.title = "Air".into();
        let t2 = Timestamp::from_nanos(2_000);
        store.put(changed, t2).await.unwrap();
        let back = store.get("air-hdv").await.unwrap().unwrap();
        assert!(back.published);
        assert_eq!(back.title, "Air");
        assert_eq!((back.created_at, back.modified_at), (t1, t2), "created once, modified after");
        store.put(dataset("air-all"), t2).await.unwrap();
        let ids: Vec<String> = store.list().await.unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["air-all", "air-hdv"]);
        assert!(store.delete("air-all").await.unwrap());
        assert!(!store.delete("air-all").await.unwrap());
        assert!(store.get("air-all").await.unwrap().is_none());
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        let bad = serde_json::json!({"id": "x", "kind": "measurements", "title": "t",
            "description": "d", "theme": "air", "resoluton": "raw"});
        assert!(
            serde_json::from_value::<Dataset>(bad).unwrap_err().to_string().contains("resoluton")
        );
        let bad = serde_json::json!({"id": "x", "kind": "measurements", "title": "t",
            "description": "d", "theme": "air", "resolution": "5min"});
        assert!(serde_json::from_value::<Dataset>(bad).is_err());
    }
}
