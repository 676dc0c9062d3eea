//! Schedules the departments apply to their equipment — a lighting scenario sent to a street's
//! lamps each night, an irrigation plan sent to a zone's valves — and the log of every command
//! sent for them, kept in the catalog's database. What a schedule means is its service's
//! business (`body`); this keeps it and the log.

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::{Error, Result};

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ServiceSchedule))]
pub struct Schedule {
    /// Identifier.
    pub id: i64,
    /// `lighting` or `irrigation`.
    pub service: String,
    /// The commune of what it drives (INSEE code); absent: several.
    pub commune: Option<String>,
    /// Its name.
    pub name: String,
    /// The service's settings.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: serde_json::Value,
    /// Whether it runs.
    pub active: bool,
    /// Who made it.
    pub created_by: String,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// A command sent for a schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ServiceCommand))]
pub struct Command {
    /// The schedule.
    pub schedule_id: i64,
    /// The device it went to.
    pub device: String,
    /// The MQTT topic.
    pub topic: String,
    /// What was sent.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: serde_json::Value,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// The publisher's answer (`delivered …`) or why it failed (`failed: …`).
    pub outcome: String,
}

/// Where schedules and their commands are kept.
#[async_trait]
pub trait ScheduleStore: Send + Sync + std::fmt::Debug {
    /// Keep a new schedule; its id.
    async fn add(&self, s: &Schedule) -> Result<i64>;
    /// Every schedule, oldest first.
    async fn list(&self) -> Result<Vec<Schedule>>;
    /// Start or stop one; whether it existed.
    async fn set_active(&self, id: i64, active: bool) -> Result<bool>;
    /// Remove one and its log; whether it existed.
    async fn delete(&self, id: i64) -> Result<bool>;
    /// Log a command.
    async fn log(&self, c: &Command) -> Result<()>;
    /// A schedule's commands, newest first, at most `limit`.
    async fn commands(&self, schedule_id: i64, limit: u32) -> Result<Vec<Command>>;
}

/// Schedules in SQLite, in the catalog's database.
#[derive(Debug, Clone)]
pub struct SqliteScheduleStore {
    pool: SqlitePool,
}

impl SqliteScheduleStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn json(r: &sqlx::sqlite::SqliteRow, col: &str) -> Result<serde_json::Value> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| Error::Internal(format!("schedules: {col}: {e}")))
}

#[async_trait]
impl ScheduleStore for SqliteScheduleStore {
    async fn add(&self, s: &Schedule) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO service_schedules (service, commune, name, body, active, created_by, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.service)
        .bind(&s.commune)
        .bind(&s.name)
        .bind(s.body.to_string())
        .bind(s.active)
        .bind(&s.created_by)
        .bind(s.created_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn list(&self) -> Result<Vec<Schedule>> {
        let rows = sqlx::query("SELECT * FROM service_schedules ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Schedule {
                    id: r.try_get("id")?,
                    service: r.try_get("service")?,
                    commune: r.try_get("commune")?,
                    name: r.try_get("name")?,
                    body: json(r, "body")?,
                    active: r.try_get("active")?,
                    created_by: r.try_get("created_by")?,
                    created_at: Timestamp::from_nanos(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn set_active(&self, id: i64, active: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE service_schedules SET active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete(&self, id: i64) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM service_commands WHERE schedule_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM service_schedules WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn log(&self, c: &Command) -> Result<()> {
        sqlx::query(
            "INSERT INTO service_commands (schedule_id, device, topic, payload, at, outcome) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(c.schedule_id)
        .bind(&c.device)
        .bind(&c.topic)
        .bind(c.payload.to_string())
        .bind(c.at.as_nanos())
        .bind(&c.outcome)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn commands(&self, schedule_id: i64, limit: u32) -> Result<Vec<Command>> {
        let rows = sqlx::query(
            "SELECT * FROM service_commands WHERE schedule_id = ? ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(schedule_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Command {
                    schedule_id: r.try_get("schedule_id")?,
                    device: r.try_get("device")?,
                    topic: r.try_get("topic")?,
                    payload: json(r, "payload")?,
                    at: Timestamp::from_nanos(r.try_get("at")?),
                    outcome: r.try_get("outcome")?,
                })
            })
            .collect()
    }
}
