//! Where alerting keeps its records: rules (as JSON, the alerts crate knows their shape), alerts
//! with their lifecycle, every action attempt, and the evaluation state that must survive a
//! restart. On SQLite, in the catalog's database.

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::Serialize;
use sqlx::{Row, SqlitePool};

use crate::Result;

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRule {
    /// Identifier.
    pub id: String,
    /// The rule, as JSON.
    pub body: serde_json::Value,
    /// `api` or `config`.
    pub origin: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertState {
    /// The condition holds and nobody has taken it in hand.
    Open,
    /// Someone has taken it in hand.
    Acknowledged,
    /// Over: the condition cleared, or someone closed it.
    Resolved,
}

impl AlertState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parse a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "acknowledged" => Some(Self::Acknowledged),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRecord {
    /// Identifier.
    pub id: i64,
    /// The rule that raised it.
    pub rule: String,
    /// What it is about within the rule: a device id, or the rule's whole scope.
    pub scope_key: String,
    /// The device, when about one.
    pub device: Option<String>,
    /// The device's site.
    pub site: Option<String>,
    /// The device's commune.
    pub commune: Option<String>,
    /// The property the condition is on (the first one for combinations).
    pub property: Option<String>,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Where it is in its life.
    pub state: AlertState,
    /// For people.
    pub message: String,
    /// The value that triggered it.
    pub value: Option<f64>,
    /// When the condition started to hold (data time).
    pub opened_at: Timestamp,
    /// When someone took it in hand.
    pub acknowledged_at: Option<Timestamp>,
    /// Who.
    pub acknowledged_by: Option<String>,
    /// What they said.
    pub ack_comment: Option<String>,
    /// When it ended.
    pub resolved_at: Option<Timestamp>,
    /// `auto` when the condition cleared, else who closed it.
    pub resolved_by: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only in this state.
    pub state: Option<AlertState>,
    /// Only of this rule.
    pub rule: Option<String>,
    /// Only on this site.
    pub site: Option<String>,
    /// Only about this device.
    pub device: Option<String>,
    /// Opened at or after.
    pub from: Option<Timestamp>,
    /// Opened before.
    pub to: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// A stored NGSI-LD subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSubscription {
    /// Its id (a URI).
    pub id: String,
    /// The subscription as made, with its context (the API's own shape).
    pub body: serde_json::Value,
    /// Who made it: `token:ID` or `person:ID`.
    pub owner: String,
    /// Its counters (the API's own shape).
    pub status: serde_json::Value,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One attempt of one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Identifier.
    pub id: i64,
    /// The alert.
    pub alert_id: i64,
    /// `opened`, `acknowledged` or `resolved`.
    pub event: String,
    /// `webhook`, `mqtt` or `email`.
    pub action: String,
    /// URL (credentials masked), topic or address.
    pub target: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// Whether it went through.
    pub ok: bool,
    /// Status or error.
    pub detail: String,
    /// When.
    pub at: Timestamp,
}

/// The alerting seam.
#[async_trait]
pub trait AlertStore: Send + Sync + std::fmt::Debug {
    /// Create or replace a rule.
    async fn put_rule(&self, r: &StoredRule) -> Result<()>;
    /// Delete a rule; false when there was none.
    async fn delete_rule(&self, id: &str) -> Result<bool>;
    /// Every rule.
    async fn rules(&self) -> Result<Vec<StoredRule>>;
    /// Insert a new alert (its `id` is ignored); returns the id. Fails when the rule and scope
    /// already have an alert not resolved.
    async fn insert_alert(&self, a: &AlertRecord) -> Result<i64>;
    /// Save an alert's changes.
    async fn update_alert(&self, a: &AlertRecord) -> Result<()>;
    /// One alert.
    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>>;
    /// Alerts matching a filter, newest first.
    async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>>;
    /// Alerts not resolved.
    async fn unresolved(&self) -> Result<Vec<AlertRecord>>;
    /// Log an action attempt.
    async fn add_delivery(&self, d: &Delivery) -> Result<()>;
    /// Attempts for an alert (or the latest ones), oldest first.
    async fn deliveries(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>>;
    /// Save evaluation states (rule, scope key, JSON) and forget others (rule, scope key).
    async fn save_states(
        &self,
        states: &[(String, String, String)],
        forget: &[(String, String)],
    ) -> Result<()>;
    /// Forget the evaluation states of a rule.
    async fn delete_states(&self, rule: &str) -> Result<()>;
    /// Every saved evaluation state.
    async fn states(&self) -> Result<Vec<(String, String, String)>>;
    /// Replace who acknowledged or resolved alerts (`from`, exactly) by `to`: the erasure of a
    /// person. Returns how many alerts changed.
    async fn rename_handler(&self, from: &str, to: &str) -> Result<u64>;
    /// Forget alerts resolved before `before` and every action attempt made before it (they
    /// name people: who handled an alert, whom it was sent to). Returns (alerts, attempts)
    /// removed.
    async fn prune_history(&self, before: Timestamp) -> Result<(u64, u64)>;
    /// Create or replace an NGSI-LD subscription.
    async fn put_subscription(&self, s: &StoredSubscription) -> Result<()>;
    /// Save the counters of subscriptions (id, status).
    async fn save_subscription_status(&self, status: &[(String, serde_json::Value)]) -> Result<()>;
    /// Delete an NGSI-LD subscription; false when there was none.
    async fn delete_subscription(&self, id: &str) -> Result<bool>;
    /// Every NGSI-LD subscription.
    async fn subscriptions(&self) -> Result<Vec<StoredSubscription>>;
}

/// Alerts on SQLite, sharing the catalog's pool.
#[derive(Debug, Clone)]
pub struct SqliteAlertStore {
    pool: SqlitePool,
}

impl SqliteAlertStore {
    /// On the catalog's pool (its migrations created the tables).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_nanos)
}

fn alert_of(r: &sqlx::sqlite::SqliteRow) -> Result<AlertRecord> {
    let state: String = r.try_get("state")?;
    Ok(AlertRecord {
        id: r.try_get("id")?,
        rule: r.try_get("rule")?,
        scope_key: r.try_get("scope_key")?,
        device: r.try_get("device")?,
        site: r.try_get("site")?,
        commune: r.try_get("commune")?,
        property: r.try_get("property")?,
        severity: r.try_get("severity")?,
        state: AlertState::parse(&state).unwrap_or(AlertState::Open),
        message: r.try_get("message")?,
        value: r.try_get("value")?,
        opened_at: Timestamp::from_nanos(r.try_get("opened_at")?),
        acknowledged_at: ts(r.try_get("acknowledged_at")?),
        acknowledged_by: r.try_get("acknowledged_by")?,
        ack_comment: r.try_get("ack_comment")?,
        resolved_at: ts(r.try_get("resolved_at")?),
        resolved_by: r.try_get("resolved_by")?,
    })
}

const ALERT_COLUMNS: &str = "id, rule, scope_key, device, site, commune, property, severity, state, message, value, opened_at, acknowledged_at, acknowledged_by, ack_comment, resolved_at, resolved_by";

#[async_trait]
impl AlertStore for SqliteAlertStore {
    async fn prune_history(&self, before: Timestamp) -> Result<(u64, u64)> {
        let mut tx = self.pool.begin().await?;
        let t = before.as_nanos();
        let d = sqlx::query(
            "DELETE FROM alert_deliveries WHERE at < ? OR alert_id IN \
             (SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < ?)",
        )
        .bind(t)
        .bind(t)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let a = sqlx::query("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?")
            .bind(t)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok((a, d))
    }

    async fn rename_handler(&self, from: &str, to: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let a = sqlx::query("UPDATE alerts SET acknowledged_by = ? WHERE acknowledged_by = ?")
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let r = sqlx::query("UPDATE alerts SET resolved_by = ? WHERE resolved_by = ?")
            .bind(to)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(a + r)
    }

    async fn put_subscription(&self, s: &StoredSubscription) -> Result<()> {
        sqlx::query(
            "INSERT INTO ngsi_subscriptions (id, body, owner, status, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, owner = excluded.owner, status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(&s.id)
        .bind(s.body.to_string())
        .bind(&s.owner)
        .bind(s.status.to_string())
        .bind(s.updated_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn save_subscription_status(&self, status: &[(String, serde_json::Value)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (id, st) in status {
            sqlx::query("UPDATE ngsi_subscriptions SET status = ? WHERE id = ?")
                .bind(st.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_subscription(&self, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM ngsi_subscriptions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(n.rows_affected() > 0)
    }

    async fn subscriptions(&self) -> Result<Vec<StoredSubscription>> {
        let rows = sqlx::query(
            "SELECT id, body, owner, status, updated_at FROM ngsi_subscriptions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                let status: String = r.try_get("status")?;
                Ok(StoredSubscription {
                    id: r.try_get("id")?,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                    owner: r.try_get("owner")?,
                    status: serde_json::from_str(&status).unwrap_or(serde_json::Value::Null),
                    updated_at: Timestamp::from_nanos(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn put_rule(&self, r: &StoredRule) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_rules (id, body, origin, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, origin = excluded.origin, updated_at = excluded.updated_at",
        )
        .bind(&r.id)
        .bind(r.body.to_string())
        .bind(&r.origin)
        .bind(r.updated_at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_rule(&self, id: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM alert_rules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(n.rows_affected() > 0)
    }

    async fn rules(&self) -> Result<Vec<StoredRule>> {
        let rows = sqlx::query("SELECT id, body, origin, updated_at FROM alert_rules ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                Ok(StoredRule {
                    id: r.try_get("id")?,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                    origin: r.try_get("origin")?,
                    updated_at: Timestamp::from_nanos(r.try_get("updated_at")?),
                })
            })
            .collect()
    }

    async fn insert_alert(&self, a: &AlertRecord) -> Result<i64> {
        let r = sqlx::query(
            "INSERT INTO alerts (rule, scope_key, device, site, commune, property, severity, state, message, value, opened_at, acknowledged_at, acknowledged_by, ack_comment, resolved_at, resolved_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.rule)
        .bind(&a.scope_key)
        .bind(&a.device)
        .bind(&a.site)
        .bind(&a.commune)
        .bind(&a.property)
        .bind(&a.severity)
        .bind(a.state.as_str())
        .bind(&a.message)
        .bind(a.value)
        .bind(a.opened_at.as_nanos())
        .bind(a.acknowledged_at.map(Timestamp::as_nanos))
        .bind(&a.acknowledged_by)
        .bind(&a.ack_comment)
        .bind(a.resolved_at.map(Timestamp::as_nanos))
        .bind(&a.resolved_by)
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn update_alert(&self, a: &AlertRecord) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET state = ?, message = ?, value = ?, opened_at = ?, acknowledged_at = ?, acknowledged_by = ?, ack_comment = ?, resolved_at = ?, resolved_by = ? WHERE id = ?",
        )
        .bind(a.state.as_str())
        .bind(&a.message)
        .bind(a.value)
        .bind(a.opened_at.as_nanos())
        .bind(a.acknowledged_at.map(Timestamp::as_nanos))
        .bind(&a.acknowledged_by)
        .bind(&a.ack_comment)
        .bind(a.resolved_at.map(Timestamp::as_nanos))
        .bind(&a.resolved_by)
        .bind(a.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>> {
        let q = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?");
        let r = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        r.as_ref().map(alert_of).transpose()
    }

    async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>> {
        let q = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE (? IS NULL OR state = ?) AND (? IS NULL OR rule = ?) AND (? IS NULL OR site = ?)
               AND (? IS NULL OR device = ?) AND (? IS NULL OR opened_at >= ?) AND (? IS NULL OR opened_at < ?)
             ORDER BY opened_at DESC, id DESC LIMIT ?"
        );
        let state = f.state.map(AlertState::as_str);
        let from = f.from.map(Timestamp::as_nanos);
        let to = f.to.map(Timestamp::as_nanos);
        let rows = sqlx::query(&q)
            .bind(state)
            .bind(state)
            .bind(&f.rule)
            .bind(&f.rule)
            .bind(&f.site)
            .bind(&f.site)
            .bind(&f.device)
            .bind(&f.device)
            .bind(from)
            .bind(from)
            .bind(to)
            .bind(to)
            .bind(i64::from(f.limit.max(1)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(alert_of).collect()
    }

    async fn unresolved(&self) -> Result<Vec<AlertRecord>> {
        let q = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY id");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter().map(alert_of).collect()
    }

    async fn add_delivery(&self, d: &Delivery) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_deliveries (alert_id, event, action, target, attempt, ok, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(d.alert_id)
        .bind(&d.event)
        .bind(&d.action)
        .bind(&d.target)
        .bind(i64::from(d.attempt))
        .bind(d.ok)
        .bind(&d.detail)
        .bind(d.at.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn deliveries(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT id, alert_id, event, action, target, attempt, ok, detail, at FROM alert_deliveries
             WHERE (? IS NULL OR alert_id = ?) ORDER BY id DESC LIMIT ?",
        )
        .bind(alert_id)
        .bind(alert_id)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(Delivery {
                    id: r.try_get("id")?,
                    alert_id: r.try_get("alert_id")?,
                    event: r.try_get("event")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    attempt: r.try_get::<i64, _>("attempt")? as u32,
                    ok: r.try_get("ok")?,
                    detail: r.try_get("detail")?,
                    at: Timestamp::from_nanos(r.try_get("at")?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    async fn save_states(
        &self,
        states: &[(String, String, String)],
        forget: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (rule, key) in forget {
            sqlx::query("DELETE FROM alert_eval_state WHERE rule = ? AND scope_key = ?")
                .bind(rule)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        for (rule, key, state) in states {
            sqlx::query(
                "INSERT INTO alert_eval_state (rule, scope_key, state) VALUES (?, ?, ?)
                 ON CONFLICT (rule, scope_key) DO UPDATE SET state = excluded.state",
            )
            .bind(rule)
            .bind(key)
            .bind(state)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_states(&self, rule: &str) -> Result<()> {
        sqlx::query("DELETE FROM alert_eval_state WHERE rule = ?")
            .bind(rule)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn states(&self) -> Result<Vec<(String, String, String)>> {
        let rows = sqlx::query("SELECT rule, scope_key, state FROM alert_eval_state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rule")?, r.try_get("scope_key")?, r.try_get("state")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_retention_forgets_old_resolved_alerts_and_attempts_only() {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::SqliteCatalog::open(dir.path()).await.unwrap();
        let store = SqliteAlertStore::new(cat.pool());
        let day = |d: i64| Timestamp::from_nanos(d * 86_400 * 1_000_000_000);
        let alert = |key: &str, resolved: Option<i64>| AlertRecord {
            id: 0,
            rule: "r".into(),
            scope_key: key.into(),
            device: Some(key.into()),
            site: None,
            commune: None,
            property: None,
            severity: "warning".into(),
            state: if resolved.is_some() { AlertState::Resolved } else { AlertState::Open },
            message: "m".into(),
            value: None,
            opened_at: day(1),
            acknowledged_at: None,
            acknowledged_by: Some("Jeanne (person:p_1)".into()),
            ack_comment: None,
            resolved_at: resolved.map(day),
            resolved_by: None,
        };
        // Resolved on day 2 (old), resolved on day 20 (recent), still open since day 1.
        let old = store.insert_alert(&alert("a", Some(2))).await.unwrap();
        let recent = store.insert_alert(&alert("b", Some(20))).await.unwrap();
        let open = store.insert_alert(&alert("c", None)).await.unwrap();
        for (id, at) in [(old, 2), (recent, 20), (open, 1), (open, 15)] {
            let d = Delivery {
                id: 0,
                alert_id: id,
                event: "opened".into(),
                action: "email".into(),
                target: "astreinte@mairie.example".into(),
                attempt: 1,
                ok: true,
                detail: String::new(),
                at: day(at),
            };
            store.add_delivery(&d).await.unwrap();
        }
        // Before day 10: the old resolved alert and its attempt, and the open alert's attempt of
        // day 1; the open alert itself stays (it is not over).
        assert_eq!(store.prune_history(day(10)).await.unwrap(), (1, 2));
        assert!(store.alert(old).await.unwrap().is_none());
        assert!(store.alert(recent).await.unwrap().is_some());
        assert!(store.alert(open).await.unwrap().is_some());
        let left: Vec<i64> =
            store.deliveries(None, 100).await.unwrap().into_iter().map(|d| d.alert_id).collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&recent) && left.contains(&open));
        assert_eq!(store.prune_history(day(10)).await.unwrap(), (0, 0));
    }
}
