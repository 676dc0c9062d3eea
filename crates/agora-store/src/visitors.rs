//! What visitors are shown, kept in the catalog's database: points of interest and discovery
//! tours. A point's or a tour's texts (names, descriptions, opening hours, accessibility notes,
//! in French, English and any other language) are JSON the API checks; this keeps rows, and an
//! import of many points all or none.

use agora_model::Timestamp;
use async_trait::async_trait;
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// A point of interest as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoi {
    /// Identifier.
    pub id: String,
    /// The commune's INSEE code.
    pub commune: String,
    /// Its kind (`fountain`…).
    pub kind: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Texts by language, hours, accessibility (JSON).
    pub body: serde_json::Value,
    /// Who last changed it.
    pub updated_by: String,
    /// When.
    pub updated_at: Timestamp,
}

/// A tour as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTour {
    /// Identifier.
    pub id: String,
    /// The commune's INSEE code.
    pub commune: String,
    /// Titles, descriptions, stops (JSON).
    pub body: serde_json::Value,
    /// Who last changed it.
    pub updated_by: String,
    /// When.
    pub updated_at: Timestamp,
}

/// Where points and tours are kept.
#[async_trait]
pub trait VisitorStore: Send + Sync + std::fmt::Debug {
    /// Keep points (new or replaced), all or none.
    async fn put_pois(&self, pois: &[StoredPoi]) -> Result<()>;
    /// Every point, by id.
    async fn pois(&self) -> Result<Vec<StoredPoi>>;
    /// Remove a point; whether it existed.
    async fn delete_poi(&self, id: &str) -> Result<bool>;
    /// Keep a tour (new or replaced).
    async fn put_tour(&self, t: &StoredTour) -> Result<()>;
    /// Every tour, by id.
    async fn tours(&self) -> Result<Vec<StoredTour>>;
    /// Remove a tour; whether it existed.
    async fn delete_tour(&self, id: &str) -> Result<bool>;
    /// Name someone otherwise as the last editor of points and tours (a person erased); how
    /// many rows.
    async fn rename_editor(&self, from: &str, to: &str) -> Result<u64>;
}

/// Points and tours in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteVisitorStore {
    pool: SqlitePool,
}

impl SqliteVisitorStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn json(s: &str, what: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| Error::Internal(format!("{what}: {e}")))
}

#[async_trait]
impl VisitorStore for SqliteVisitorStore {
    async fn put_pois(&self, pois: &[StoredPoi]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for p in pois {
            sqlx::query(
                "INSERT OR REPLACE INTO pois (id, commune, kind, lat, lon, body, updated_by, \
                 updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&p.id)
            .bind(&p.commune)
            .bind(&p.kind)
            .bind(p.lat)
            .bind(p.lon)
            .bind(p.body.to_string())
            .bind(&p.updated_by)
            .bind(p.updated_at.as_nanos())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pois(&self) -> Result<Vec<StoredPoi>> {
        let rows = sqlx::query("SELECT * FROM pois ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(StoredPoi {
                    id: r.try_get("id")?,
                    commune: r.try_get("commune")?,
                    kind: r.try_get("kind")?,
                    lat: r.try_get("lat")?,
                    lon: r.try_get("lon")?,
                    body: json(&body, "point of interest")?,
                    updated_by: r.try_get("updated_by")?,
                    updated_at: Timestamp::from_nanos(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn delete_poi(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM pois WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    async fn put_tour(&self, t: &StoredTour) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO tours (id, commune, body, updated_by, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.commune)
        .bind(t.body.to_string())
        .bind(&t.updated_by)
        .bind(t.updated_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tours(&self) -> Result<Vec<StoredTour>> {
        let rows = sqlx::query("SELECT * FROM tours ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(StoredTour {
                    id: r.try_get("id")?,
                    commune: r.try_get("commune")?,
                    body: json(&body, "tour")?,
                    updated_by: r.try_get("updated_by")?,
                    updated_at: Timestamp::from_nanos(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn rename_editor(&self, from: &str, to: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for table in ["pois", "tours"] {
            n += sqlx::query(&format!("UPDATE {table} SET updated_by = ? WHERE updated_by = ?"))
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn delete_tour(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM tours WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }
}
