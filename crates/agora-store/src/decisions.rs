//! What the decision makers' figures are built from, kept in the catalog's database: the
//! 15-minute city's imports per commune (walking network, facilities, population,
//! neighbourhoods — each replaced whole by its next import, in one statement, so that an import
//! is never half there), the well-being index's definitions (every version kept: a figure of
//! last year is computed again with the weights it was published with), and survey results.
//! What a layer or a definition means is the query layer's business: this keeps bytes and JSON.

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// An imported layer of a commune.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProximityLayer))]
pub struct Layer {
    /// The commune's INSEE code.
    pub commune: String,
    /// `network`, `facilities`, `population` or `areas`.
    pub layer: String,
    /// The dataset's name (facilities may come from several: `bpe`, `parks`).
    pub name: String,
    /// Segments, facilities, squares or areas.
    pub items: i64,
    /// What the import read and left out.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub summary: serde_json::Value,
    /// Who imported it.
    pub imported_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub imported_at: Timestamp,
    /// The layer itself (not listed).
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// A version of the well-being index's definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WellbeingVersion))]
pub struct Definition {
    /// Its version, from 1.
    pub version: i64,
    /// Indicators, ranges, directions and weights.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: serde_json::Value,
    /// Why it was changed.
    pub reason: String,
    /// Who changed it.
    pub changed_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub changed_at: Timestamp,
}

/// One survey result: a place's score on a question at a date.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SurveyResult {
    /// The place's id.
    pub place: String,
    /// The survey's date (`YYYY-MM-DD`).
    pub date: String,
    /// The indicator it feeds (`survey_satisfaction`).
    pub question: String,
    /// The score.
    pub score: f64,
    /// How many answered, when known.
    pub respondents: Option<i64>,
}

/// Where the decision makers' data are kept.
#[async_trait]
pub trait DecisionStore: Send + Sync + std::fmt::Debug {
    /// Keep a layer, replacing the commune's layer of that name.
    async fn put_layer(&self, l: &Layer) -> Result<()>;
    /// A commune's layers, without their content.
    async fn layers(&self, commune: &str) -> Result<Vec<Layer>>;
    /// A commune's layers of a kind, with their content.
    async fn layer_contents(&self, commune: &str, layer: &str) -> Result<Vec<Layer>>;
    /// Remove a layer; whether it existed.
    async fn delete_layer(&self, commune: &str, layer: &str, name: &str) -> Result<bool>;
    /// The communes with any layer.
    async fn communes(&self) -> Result<Vec<String>>;
    /// Keep a new version of the definition; its number.
    async fn add_definition(
        &self,
        body: &serde_json::Value,
        reason: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<i64>;
    /// Every version, oldest first.
    async fn definitions(&self) -> Result<Vec<Definition>>;
    /// Keep survey results, all or none (a result for the same place, date and question is
    /// replaced).
    async fn put_surveys(&self, results: &[SurveyResult], by: &str, at: Timestamp) -> Result<()>;
    /// Every survey result.
    async fn surveys(&self) -> Result<Vec<SurveyResult>>;
}

/// The decision makers' data in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteDecisionStore {
    pool: SqlitePool,
}

impl SqliteDecisionStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn layer(r: &sqlx::sqlite::SqliteRow, content: bool) -> Result<Layer> {
    let summary: String = r.try_get("summary")?;
    Ok(Layer {
        commune: r.try_get("commune")?,
        layer: r.try_get("layer")?,
        name: r.try_get("name")?,
        items: r.try_get("items")?,
        summary: serde_json::from_str(&summary)
            .map_err(|e| Error::Internal(format!("proximity layer summary: {e}")))?,
        imported_by: r.try_get("imported_by")?,
        imported_at: Timestamp::from_nanos(r.try_get("imported_at")?),
        content: if content { r.try_get("content")? } else { Vec::new() },
    })
}

#[async_trait]
impl DecisionStore for SqliteDecisionStore {
    async fn put_layer(&self, l: &Layer) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO proximity_layers (commune, layer, name, content, items, summary, \
             imported_by, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&l.commune)
        .bind(&l.layer)
        .bind(&l.name)
        .bind(&l.content)
        .bind(l.items)
        .bind(l.summary.to_string())
        .bind(&l.imported_by)
        .bind(l.imported_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn layers(&self, commune: &str) -> Result<Vec<Layer>> {
        let rows = sqlx::query(
            "SELECT commune, layer, name, items, summary, imported_by, imported_at FROM proximity_layers \
             WHERE commune = ? ORDER BY layer, name",
        )
        .bind(commune)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| layer(r, false)).collect()
    }

    async fn layer_contents(&self, commune: &str, kind: &str) -> Result<Vec<Layer>> {
        let rows = sqlx::query(
            "SELECT * FROM proximity_layers WHERE commune = ? AND layer = ? ORDER BY name",
        )
        .bind(commune)
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| layer(r, true)).collect()
    }

    async fn delete_layer(&self, commune: &str, kind: &str, name: &str) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM proximity_layers WHERE commune = ? AND layer = ? AND name = ?",
        )
        .bind(commune)
        .bind(kind)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn communes(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT commune FROM proximity_layers ORDER BY commune")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("commune")?)).collect()
    }

    async fn add_definition(
        &self,
        body: &serde_json::Value,
        reason: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO wellbeing_definitions (body, reason, changed_by, changed_at) VALUES (?, ?, ?, ?)",
        )
        .bind(body.to_string())
        .bind(reason)
        .bind(by)
        .bind(at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn definitions(&self) -> Result<Vec<Definition>> {
        let rows = sqlx::query("SELECT * FROM wellbeing_definitions ORDER BY version")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(Definition {
                    version: r.try_get("version")?,
                    body: serde_json::from_str(&body)
                        .map_err(|e| Error::Internal(format!("well-being definition: {e}")))?,
                    reason: r.try_get("reason")?,
                    changed_by: r.try_get("changed_by")?,
                    changed_at: Timestamp::from_nanos(r.try_get("changed_at")?),
                })
            })
            .collect()
    }

    async fn put_surveys(&self, results: &[SurveyResult], by: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for s in results {
            sqlx::query(
                "INSERT OR REPLACE INTO wellbeing_surveys (place, date, question, score, respondents, \
                 imported_by, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.place)
            .bind(&s.date)
            .bind(&s.question)
            .bind(s.score)
            .bind(s.respondents)
            .bind(by)
            .bind(at.as_nanos())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn surveys(&self) -> Result<Vec<SurveyResult>> {
        let rows = sqlx::query("SELECT * FROM wellbeing_surveys ORDER BY place, date, question")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SurveyResult {
                    place: r.try_get("place")?,
                    date: r.try_get("date")?,
                    question: r.try_get("question")?,
                    score: r.try_get("score")?,
                    respondents: r.try_get("respondents")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn layers_replace_whole_and_definitions_keep_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::SqliteCatalog::open(dir.path()).await.unwrap();
        let s = SqliteDecisionStore::new(cat.pool());
        let mut l = Layer {
            commune: "13001".into(),
            layer: "facilities".into(),
            name: "bpe".into(),
            items: 2,
            summary: serde_json::json!({"ignored": 1}),
            imported_by: "person:ana".into(),
            imported_at: Timestamp::from_nanos(1),
            content: b"[1,2]".to_vec(),
        };
        s.put_layer(&l).await.unwrap();
        l.items = 3;
        l.content = b"[1,2,3]".to_vec();
        s.put_layer(&l).await.unwrap();
        let got = s.layer_contents("13001", "facilities").await.unwrap();
        assert_eq!((got.len(), got[0].items, got[0].content.clone()), (1, 3, b"[1,2,3]".to_vec()));
        assert_eq!(s.layers("13001").await.unwrap()[0].content, Vec::<u8>::new());
        assert_eq!(s.communes().await.unwrap(), vec!["13001".to_string()]);
        assert!(s.delete_layer("13001", "facilities", "bpe").await.unwrap());
        assert!(s.layers("13001").await.unwrap().is_empty());

        let v1 = s
            .add_definition(&serde_json::json!({"w": 1}), "first", "a", Timestamp::from_nanos(1))
            .await
            .unwrap();
        let v2 = s
            .add_definition(&serde_json::json!({"w": 2}), "second", "b", Timestamp::from_nanos(2))
            .await
            .unwrap();
        assert_eq!((v1, v2), (1, 2));
        let defs = s.definitions().await.unwrap();
        assert_eq!(
            (defs[0].body["w"].clone(), defs[1].changed_by.as_str()),
            (serde_json::json!(1), "b")
        );
    }
}
