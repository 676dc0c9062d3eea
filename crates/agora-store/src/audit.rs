//! The audit trail: who changed what, when, from where, with what outcome — and who read what is
//! sensitive (tokens, backups, the trail itself, data exports). Append-only and hash-chained:
//! each entry's SHA-256 covers its content and the previous entry's hash, so an entry edited,
//! removed or inserted afterwards breaks the chain, and [`AuditLog::verify`] says where.
//!
//! Retention removes the oldest entries; the first entry kept still holds the hash of the one
//! before it, so the chain is checked from there (and the removal is itself an entry).

use std::sync::Arc;

use agora_model::Timestamp;
use async_trait::async_trait;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use crate::Result;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Who: `token:{id} ({name})`, `session:{token id} ({name})`, `anonymous`, `agora`.
    pub actor: String,
    /// The client's address.
    pub address: Option<String>,
    /// What: `POST /api/v1/rules/{id}`, `export GET /api/v1/observations`, `audit.retention`…
    pub action: String,
    /// On what: the request's path, or the object.
    pub target: String,
    /// The outcome: the HTTP status (0 for what is not a request).
    pub status: u16,
    /// Details as JSON: the request (secrets masked), the state before and after.
    pub detail: serde_json::Value,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Its number: 1, 2, 3… without gaps.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// From where.
    pub address: Option<String>,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// The outcome (HTTP status).
    pub status: u16,
    /// Details.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: serde_json::Value,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Which entries.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// From this time.
    pub from: Option<Timestamp>,
    /// Before this time.
    pub to: Option<Timestamp>,
    /// Whose actor contains this.
    pub actor: Option<String>,
    /// Whose action contains this.
    pub action: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// What [`AuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: u64,
    /// The first entry (earlier ones were removed by retention when above 1).
    pub first_seq: Option<i64>,
    /// The last entry.
    pub last_seq: Option<i64>,
    /// Whether the chain is whole.
    pub valid: bool,
    /// The first entry that does not match, and why.
    pub broken_at: Option<i64>,
    /// Why.
    pub problem: Option<String>,
}

/// The hash of an entry: SHA-256 of the JSON array of its fields and the previous hash (the
/// detail as the exact text stored).
// The arguments are the hashed fields, in the order the hash covers them.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    seq: i64,
    at: i64,
    actor: &str,
    address: Option<&str>,
    action: &str,
    target: &str,
    status: u16,
    detail: &str,
    prev_hash: &str,
) -> String {
    let canonical =
        serde_json::json!([seq, at, actor, address, action, target, status, detail, prev_hash])
            .to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync + std::fmt::Debug {
    /// Append an entry at `at`.
    async fn append(&self, at: Timestamp, e: AuditEvent) -> Result<AuditEntry>;
    /// Entries, newest first.
    async fn entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>>;
    /// Check the whole chain.
    async fn verify(&self) -> Result<AuditVerification>;
    /// Remove entries older than `before`; returns how many.
    async fn prune(&self, before: Timestamp) -> Result<u64>;
}

/// The trail in the catalog's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteAuditLog {
    pool: SqlitePool,
    /// The last entry's number and hash, read once: appends go one at a time, each needs the
    /// previous hash, and this process is the trail's only writer. Each append is then a single
    /// INSERT (a read-then-write transaction would get SQLite's immediate "busy" beside the
    /// catalog's other writers).
    tail: Arc<tokio::sync::Mutex<Option<(i64, String)>>>,
}

impl SqliteAuditLog {
    /// The trail in this pool's database (the catalog's, migrated).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, tail: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// Open a catalog database file read-only, to check its trail (`agora audit verify`).
    pub async fn open_read_only(path: &std::path::Path) -> Result<Self> {
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
        let pool =
            sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        Ok(Self::new(pool))
    }
}

fn row_to_entry(r: &sqlx::sqlite::SqliteRow) -> AuditEntry {
    let detail: String = r.get("detail");
    AuditEntry {
        seq: r.get("seq"),
        at: Timestamp::from_nanos(r.get("at")),
        actor: r.get("actor"),
        address: r.get("address"),
        action: r.get("action"),
        target: r.get("target"),
        status: r.get::<i64, _>("status") as u16,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        prev_hash: r.get("prev_hash"),
        hash: r.get("hash"),
    }
}

#[async_trait]
impl AuditLog for SqliteAuditLog {
    async fn append(&self, at: Timestamp, e: AuditEvent) -> Result<AuditEntry> {
        let mut tail = self.tail.lock().await;
        let (last_seq, prev_hash) = match tail.as_ref() {
            Some(t) => t.clone(),
            None => sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?
                .map_or((0, GENESIS.to_owned()), |r| (r.get("seq"), r.get("hash"))),
        };
        let seq = last_seq + 1;
        // Forgotten until the insert is known to be done: an append cut short (its future
        // dropped) makes the next one read the tail again.
        *tail = None;
        let detail = e.detail.to_string();
        let hash = entry_hash(
            seq,
            at.as_nanos(),
            &e.actor,
            e.address.as_deref(),
            &e.action,
            &e.target,
            e.status,
            &detail,
            &prev_hash,
        );
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, address, action, target, status, detail, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(at.as_nanos())
        .bind(&e.actor)
        .bind(&e.address)
        .bind(&e.action)
        .bind(&e.target)
        .bind(i64::from(e.status))
        .bind(&detail)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&self.pool)
        .await?;
        *tail = Some((seq, hash.clone()));
        Ok(AuditEntry {
            seq,
            at,
            actor: e.actor,
            address: e.address,
            action: e.action,
            target: e.target,
            status: e.status,
            detail: e.detail,
            prev_hash,
            hash,
        })
    }

    async fn entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE at >= ? AND at < ? \
             AND (? IS NULL OR instr(actor, ?) > 0) AND (? IS NULL OR instr(action, ?) > 0) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(f.from.map_or(i64::MIN, Timestamp::as_nanos))
        .bind(f.to.map_or(i64::MAX, Timestamp::as_nanos))
        .bind(&f.actor)
        .bind(&f.actor)
        .bind(&f.action)
        .bind(&f.action)
        .bind(i64::from(f.limit.max(1)))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row_to_entry).collect())
    }

    async fn verify(&self) -> Result<AuditVerification> {
        let mut out = AuditVerification {
            entries: 0,
            first_seq: None,
            last_seq: None,
            valid: true,
            broken_at: None,
            problem: None,
        };
        let mut prev: Option<(i64, String)> = None;
        // Read in pages: a trail may be long.
        let mut after = i64::MIN;
        loop {
            let page =
                sqlx::query("SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 10000")
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?;
            let Some(last) = page.last() else { break };
            after = last.get("seq");
            for r in &page {
                let seq: i64 = r.get("seq");
                let detail: String = r.get("detail");
                let prev_hash: String = r.get("prev_hash");
                let hash: String = r.get("hash");
                out.entries += 1;
                out.first_seq.get_or_insert(seq);
                out.last_seq = Some(seq);
                if !out.valid {
                    continue;
                }
                let problem = match &prev {
                    Some((p, _)) if seq != p + 1 => Some(format!("entry {} is missing", p + 1)),
                    Some((_, h)) if &prev_hash != h => Some(
                        "it does not follow the entry before it (previous hash differs)".into(),
                    ),
                    None if seq == 1 && prev_hash != GENESIS => {
                        Some("the first entry does not start the chain".into())
                    }
                    _ => {
                        let address: Option<String> = r.get("address");
                        let computed = entry_hash(
                            seq,
                            r.get("at"),
                            r.get::<String, _>("actor").as_str(),
                            address.as_deref(),
                            r.get::<String, _>("action").as_str(),
                            r.get::<String, _>("target").as_str(),
                            r.get::<i64, _>("status") as u16,
                            &detail,
                            &prev_hash,
                        );
                        (computed != hash)
                            .then(|| "its content was changed (hash differs)".to_owned())
                    }
                };
                if let Some(p) = problem {
                    out.valid = false;
                    out.broken_at = Some(seq);
                    out.problem = Some(p);
                }
                prev = Some((seq, hash));
            }
        }
        Ok(out)
    }

    async fn prune(&self, before: Timestamp) -> Result<u64> {
        let _appends_wait = self.tail.lock().await;
        // The newest entry always stays: it anchors the next one.
        // By number, up to the first entry from `before` on (times may not follow numbers
        // exactly): what stays is a run without gaps. The newest always stays.
        let r = sqlx::query(
            "DELETE FROM audit_log WHERE seq < COALESCE(\
               (SELECT MIN(seq) FROM audit_log WHERE at >= ?), \
               (SELECT MAX(seq) FROM audit_log))",
        )
        .bind(before.as_nanos())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn log() -> (tempfile::TempDir, SqliteAuditLog, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let cat = crate::catalog::SqliteCatalog::open(dir.path()).await.unwrap();
        let pool = cat.pool();
        (dir, SqliteAuditLog::new(pool.clone()), pool)
    }

    fn ev(action: &str) -> AuditEvent {
        AuditEvent {
            actor: "token:t1 (ops)".into(),
            address: Some("127.0.0.1".into()),
            action: action.into(),
            target: "/api/v1/rules/r".into(),
            status: 201,
            detail: serde_json::json!({"after": {"id": "r", "value": 50}}),
        }
    }

    #[tokio::test]
    async fn the_chain_detects_an_edited_and_a_removed_entry() {
        let (_d, log, pool) = log().await;
        for (i, a) in ["create", "update", "delete", "read"].iter().enumerate() {
            let e =
                log.append(Timestamp::from_secs(1_000 + i as i64).unwrap(), ev(a)).await.unwrap();
            assert_eq!(e.seq, i as i64 + 1);
        }
        let v = log.verify().await.unwrap();
        assert!(v.valid && v.entries == 4, "{v:?}");
        // The hash is the documented one, computed here from the fields.
        let first = log.entries(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
        let e = first.last().unwrap();
        let canonical = serde_json::json!([
            1,
            1_000_000_000_000i64,
            "token:t1 (ops)",
            "127.0.0.1",
            "create",
            "/api/v1/rules/r",
            201,
            "{\"after\":{\"id\":\"r\",\"value\":50}}",
            GENESIS
        ])
        .to_string();
        assert_eq!(e.hash, hex::encode(Sha256::digest(canonical.as_bytes())));
        // An edited detail.
        sqlx::query(
            "UPDATE audit_log SET detail = '{\"after\":{\"id\":\"r\",\"value\":99}}' WHERE seq = 2",
        )
        .execute(&pool)
        .await
        .unwrap();
        let v = log.verify().await.unwrap();
        assert_eq!((v.valid, v.broken_at), (false, Some(2)));
        assert!(v.problem.unwrap().contains("content was changed"));
        // Removed (a clean copy of entry 2 cannot be made without the hashes after it).
        sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(&pool).await.unwrap();
        let v = log.verify().await.unwrap();
        assert_eq!(v.broken_at, Some(3));
        assert!(v.problem.unwrap().contains("entry 2 is missing"));
    }

    #[tokio::test]
    async fn retention_keeps_a_chain_that_still_verifies() {
        let (_d, log, _pool) = log().await;
        for i in 0..5 {
            log.append(Timestamp::from_secs(1_000 + i).unwrap(), ev("x")).await.unwrap();
        }
        assert_eq!(log.prune(Timestamp::from_secs(1_003).unwrap()).await.unwrap(), 3);
        let v = log.verify().await.unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!((v.first_seq, v.last_seq, v.entries), (Some(4), Some(5), 2));
        // Everything older: the newest stays, and the chain goes on from it.
        log.prune(Timestamp::from_secs(9_999).unwrap()).await.unwrap();
        let e = log.append(Timestamp::from_secs(10_000).unwrap(), ev("y")).await.unwrap();
        assert_eq!(e.seq, 6);
        assert!(log.verify().await.unwrap().valid);
    }
}
