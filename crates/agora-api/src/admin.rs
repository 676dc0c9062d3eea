//! Health, the OpenAPI document, administration: catalog entries, tokens, dead letters.

use std::sync::atomic::Ordering;

use agora_ingest::Format;
use agora_ingest::Source;
use agora_model::{DeviceId, DeviceKind, InseeCode, SiteId};
use agora_store::StorageHealth;
use agora_store::catalog::{Commune, Device, Reject, Scope, Site, TokenInfo};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use agora_model::permissions::{self, Action, Domain, Grant, Role};

use crate::doc::{BadRequest, Conflict, NotFound, PayloadTooLarge, Unavailable};
use crate::doc::{Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::{Scoped, Who};

/// The process is alive.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Whether agora takes writes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready`, `starting` (replaying its log), `storage_full` (free space below the reserve) or
    /// `storage_failing` (the write-ahead log cannot be written).
    status: &'static str,
    /// The storage's state (absent while starting).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageHealth>,
}

/// Readiness: started, and storage accepts writes (enough free space, no failure).
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Starting, or storage refuses writes; retry after `Retry-After` seconds", body = Readiness),
    ))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        let body = Readiness { status: "starting", storage: None };
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], Json(body))
            .into_response();
    }
    let h = s.store.health();
    let ok = h.accepting_writes && !h.wal_failing;
    let status = match (ok, h.accepting_writes) {
        (true, _) => "ready",
        (false, true) => "storage_failing",
        (false, false) => "storage_full",
    };
    let body = Readiness { status, storage: Some(h) };
    if ok {
        Json(body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "30")], Json(body)).into_response()
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::doc::JSON.as_str()).into_response()
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}

/// The geometry types of GeoJSON (RFC 7946).
const GEOMETRY_TYPES: [&str; 7] = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
];

/// Refuse an outline that is not a GeoJSON geometry object (absent is fine).
fn geometry(field: &str, g: Option<&serde_json::Value>) -> ApiResult<()> {
    let Some(g) = g.filter(|g| !g.is_null()) else { return Ok(()) };
    let kind = g.get("type").and_then(serde_json::Value::as_str);
    if kind.is_some_and(|k| GEOMETRY_TYPES.contains(&k)) {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "{field} must be a GeoJSON geometry: an object whose \"type\" is one of {}",
        GEOMETRY_TYPES.join(", ")
    )))
}

/// Declare (or replace) a commune.
#[utoipa::path(post, path = "/api/v1/communes", tag = "catalog", security(("bearer" = [])),
    request_body = Commune,
    responses(
        (status = 201, description = "Declared", body = Commune),
        Writes,
    ))]
pub(crate) async fn create_commune(
    Scoped(s): Scoped,
    Json(c): Json<Commune>,
) -> ApiResult<Response> {
    geometry("boundary", c.boundary.as_ref())?;
    s.catalog.upsert_commune(c.clone()).await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

/// Declare (or replace) a place.
#[utoipa::path(post, path = "/api/v1/sites", tag = "catalog", security(("bearer" = [])),
    request_body = Site,
    responses(
        (status = 201, description = "Declared", body = Site),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn create_site(Scoped(s): Scoped, Json(site): Json<Site>) -> ApiResult<Response> {
    geometry("geometry", site.geometry.as_ref())?;
    s.catalog.upsert_site(site.clone()).await?;
    Ok((StatusCode::CREATED, Json(site)).into_response())
}

/// A device as declared through the API.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewDevice {
    /// Its identifier.
    id: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// A name for people.
    #[serde(default)]
    name: Option<String>,
    /// The place it stands on (its commune and position are taken from the place when not
    /// given).
    #[serde(default)]
    site: Option<SiteId>,
    /// Its commune.
    #[serde(default)]
    commune: Option<InseeCode>,
    /// Latitude (WGS 84).
    #[serde(default)]
    lat: Option<f64>,
    /// Longitude (WGS 84).
    #[serde(default)]
    lon: Option<f64>,
    /// Free metadata; `period_s` is the expected reporting period in seconds.
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: serde_json::Value,
}

/// Declare (or replace) a device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "catalog", security(("bearer" = [])),
    request_body = NewDevice,
    responses(
        (status = 201, description = "Declared", body = Device),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn create_device(
    Scoped(s): Scoped,
    Json(d): Json<NewDevice>,
) -> ApiResult<Response> {
    if !(d.metadata.is_null() || d.metadata.is_object()) {
        return Err(ApiError::BadRequest(format!(
            "metadata must be a JSON object (e.g. {{\"period_s\": 60}}), not {}",
            d.metadata
        )));
    }
    let site = d.site.as_ref().and_then(|id| s.catalog.sites().into_iter().find(|x| &x.id == id));
    let dev = Device {
        commune: d.commune.or_else(|| site.as_ref().map(|x| x.commune.clone())),
        lat: d.lat.or(site.as_ref().and_then(|x| x.lat)),
        lon: d.lon.or(site.as_ref().and_then(|x| x.lon)),
        id: d.id,
        kind: d.kind,
        name: d.name,
        site: d.site,
        metadata: if d.metadata.is_null() { serde_json::json!({}) } else { d.metadata },
        created_at: s.clock.now(),
        last_seen: None,
    };
    let before = s.catalog.device(dev.id.as_str()).and_then(|d| serde_json::to_value(d).ok());
    s.catalog.upsert_device(dev.clone()).await?;
    let stored = s.catalog.device(dev.id.as_str()).unwrap_or(dev);
    let note = crate::audit::AuditNote {
        before,
        after: serde_json::to_value(&stored).ok(),
        ..Default::default()
    };
    Ok((StatusCode::CREATED, axum::Extension(note), Json(stored)).into_response())
}

/// How many dead letters to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Limit {
    /// The most recent ones, at most this many (default 100, at most 10,000).
    #[param(minimum = 0)]
    limit: Option<u32>,
}

/// The dead-letter log, most recent first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RejectList {
    /// How many are listed.
    count: usize,
    /// Input that was refused, with why and how to replay it.
    rejects: Vec<Reject>,
}

/// The dead-letter log: input refused, with the reason and the input itself.
#[utoipa::path(get, path = "/api/v1/rejects", tag = "admin", security(("bearer" = [])),
    params(Limit),
    responses(
        (status = 200, description = "The most recent dead letters", body = RejectList),
        (status = 400, response = BadRequest), (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn rejects(
    Scoped(s): Scoped,
    Query(q): Query<Limit>,
) -> ApiResult<Json<RejectList>> {
    let rejects = s.catalog.rejects(q.limit.unwrap_or(100).min(10_000)).await?;
    Ok(Json(RejectList { count: rejects.len(), rejects }))
}

/// A token request.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct NewToken {
    /// A name for people (who or what uses it).
    #[schema(min_length = 1)]
    name: String,
    /// What it may do, coarsely: `ingest`, `read` or `admin` (a device, a viewer, an
    /// administrator of the caller's commune or Métropole). Give this or `role`.
    #[serde(default)]
    scope: Option<Scope>,
    /// Its role: `metropole_admin`, `commune_admin`, `operator`, `department`, `viewer`, `device`.
    #[serde(default)]
    role: Option<String>,
    /// Its commune's INSEE code, or `metropole` (absent: the caller's).
    #[serde(default)]
    commune: Option<String>,
    /// A department's domain.
    #[serde(default)]
    domain: Option<String>,
    /// The one device an ingest token may write for.
    #[serde(default)]
    device: Option<DeviceId>,
    /// Days it lives (absent: until revoked); past them it authenticates nothing.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u32>,
}

/// A token just made: its secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewTokenAnswer {
    /// The secret, to give to the device or client; only its digest is kept.
    token: String,
    /// What is kept of it.
    info: TokenInfo,
}

/// Make a token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "admin", security(("bearer" = [])),
    request_body = NewToken,
    responses(
        (status = 201, description = "Made; the secret is shown this once", body = NewTokenAnswer),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn create_token(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(t): Json<NewToken>,
) -> ApiResult<Response> {
    if t.name.trim().is_empty() {
        return Err(ApiError::BadRequest("a token needs a name".into()));
    }
    let commune = t.commune.unwrap_or_else(|| who.grant.tenant_name());
    let tenant = permissions::parse_tenant(&commune).map_err(ApiError::BadRequest)?;
    let role = match (&t.scope, &t.role) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("give a token a scope or a role, not both".into()));
        }
        (None, None) => {
            return Err(ApiError::BadRequest(
                "a token needs a role (or one of the scopes ingest, read, admin)".into(),
            ));
        }
        (None, Some(r)) => Role::parse_named(r).map_err(ApiError::BadRequest)?,
        (Some(Scope::Ingest), None) => Role::Device,
        (Some(Scope::Read), None) => Role::Viewer,
        (Some(Scope::Admin), None) if tenant.is_none() => Role::MetropoleAdmin,
        (Some(Scope::Admin), None) => Role::CommuneAdmin,
    };
    let domain =
        t.domain.as_deref().map(Domain::parse_named).transpose().map_err(ApiError::BadRequest)?;
    let grant = Grant::new(role, tenant, domain).map_err(ApiError::BadRequest)?;
    if t.device.is_some() && role != Role::Device {
        return Err(ApiError::BadRequest("only ingest tokens can be bound to a device".into()));
    }
    // Nobody gives more than they have: a role whose actions exceed the caller's is refused.
    if let Some(a) = Action::ALL.into_iter().find(|a| grant.may(*a) && !who.grant.may(*a)) {
        return Err(ApiError::Forbidden(format!(
            "a {} may not make a token that may {a}",
            who.grant.role()
        )));
    }
    if let Some(d) = t.expires_in_days
        && !(1..=3650).contains(&d)
    {
        return Err(ApiError::BadRequest(format!("expires_in_days is 1 to 3650, not {d}")));
    }
    let (mut info, token) = s.catalog.create_token_granted(&t.name, grant, t.device).await?;
    if let Some(d) = t.expires_in_days {
        let at = s.clock.now().saturating_add_nanos(i64::from(d) * 86_400 * 1_000_000_000);
        match s.catalog.set_token_expiry(&info.id, Some(at)).await {
            Ok(i) => info = i,
            Err(e) => {
                // Never leave behind a token that lives longer than asked.
                let _ = s.catalog.revoke_token(&info.id).await;
                return Err(e.into());
            }
        }
    }
    Ok((StatusCode::CREATED, Json(NewTokenAnswer { token, info })).into_response())
}

/// The tokens (never their secrets).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// Every live token.
    tokens: Vec<TokenInfo>,
}

/// List the tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The live tokens", body = TokenList),
        Reads,
    ))]
pub(crate) async fn list_tokens(Scoped(s): Scoped) -> ApiResult<Json<TokenList>> {
    Ok(Json(TokenList { tokens: s.catalog.tokens() }))
}

/// Revoke a token: it stops working at once, its live MQTT sessions and streams end.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's identifier (from the list)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn revoke_token(Scoped(s): Scoped, Path(id): Path<String>) -> ApiResult<Response> {
    let before = s.catalog.tokens().into_iter().find(|t| t.id == id);
    s.catalog.revoke_token(&id).await?;
    let note = crate::audit::AuditNote {
        before: before.and_then(|t| serde_json::to_value(t).ok()),
        ..Default::default()
    };
    Ok((StatusCode::NO_CONTENT, axum::Extension(note)).into_response())
}

/// Which dead letters to replay.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ReplayRequest {
    /// These ids; absent: the most recent `limit`.
    #[serde(default)]
    ids: Option<Vec<i64>>,
    /// How many recent dead letters to try when no ids are given (default 1,000).
    #[serde(default)]
    limit: Option<u32>,
}

/// `POST /api/v1/rejects/replay`: decode dead letters again and store what now passes (after a
/// device was declared or a mapping fixed). Those that pass are removed from the log; the others
/// stay, with their new reason. Replays run with the administrator's rights.
#[utoipa::path(post, path = "/api/v1/rejects/replay", tag = "admin", security(("bearer" = [])),
    request_body(content = Option<ReplayRequest>, description = "Which ones (absent: the 1,000 most recent)"),
    responses(
        (status = 200, description = "What the replay did", body = ReplayAnswer),
        (status = 400, response = BadRequest), (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn replay_rejects(
    Scoped(s): Scoped,
    body: Bytes,
) -> ApiResult<Json<ReplayAnswer>> {
    let req: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("bad replay request: {e}")))?
    };
    let mut rejects = match &req.ids {
        Some(ids) => s.catalog.rejects_by_id(ids).await?,
        None => s.catalog.rejects(req.limit.unwrap_or(1_000).min(10_000)).await?,
    };
    rejects.sort_by_key(|r| r.id);
    let (mut replayed, mut stored, mut still, mut not_replayable) = (0u64, 0u64, 0u64, 0u64);
    let mut done = Vec::new();
    for r in rejects {
        let Some(format) = r.format.as_deref().and_then(Format::parse).filter(|_| !r.truncated)
        else {
            not_replayable += 1;
            continue;
        };
        let decoded = match s.pipeline.decode(&format, r.raw.as_bytes()) {
            Ok(m) => m.decoded,
            Err(reason) => {
                still += 1;
                s.catalog.update_reject_reason(r.id, &reason).await?;
                continue;
            }
        };
        // The replay has the rights of the token that sent the input: its device binding.
        let src = Source {
            name: "replay",
            format: Some(format.clone()),
            no_dead_letters: true,
            bound_device: r.token_device.as_ref(),
            bound_commune: r.token_commune.as_ref(),
            ..Default::default()
        };
        let report = s.pipeline.ingest(&src, decoded).await.map_err(ApiError::Unavailable)?;
        stored += report.accepted as u64;
        match report.rejected.first() {
            None => {
                replayed += 1;
                done.push(r.id);
            }
            Some(e) => {
                still += 1;
                s.catalog.update_reject_reason(r.id, &e.reason).await?;
            }
        }
    }
    s.catalog.delete_rejects(&done).await?;
    Ok(Json(ReplayAnswer { replayed, stored, still_rejected: still, not_replayable }))
}

/// What a replay did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayAnswer {
    /// Dead letters that now passed whole (removed from the log).
    replayed: u64,
    /// Points stored.
    stored: u64,
    /// Dead letters still refused (kept, with their new reason).
    still_rejected: u64,
    /// Dead letters that cannot be replayed (cut, or in no known format).
    not_replayable: u64,
}

fn backups(s: &AppState) -> ApiResult<std::sync::Arc<dyn crate::Backups>> {
    s.backups.clone().ok_or_else(|| {
        ApiError::Conflict(
            "no backup repository is configured: set [backup] dir in agora.toml".into(),
        )
    })
}

fn backup_failed(e: String) -> ApiError {
    tracing::error!(error = %e, "backup failed");
    ApiError::Internal(agora_store::Error::Internal(format!("the backup failed: {e}")))
}

/// Take a backup now
///
/// A consistent backup taken while ingestion goes on (every write acknowledged before its time
/// is in it) into the repository of `[backup] dir`: new segments only, the WAL they do not
/// cover, the catalog; then retention. Restore with `agora restore`.
#[utoipa::path(post, path = "/api/v1/backups", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 201, description = "Taken: its name, time, what was copied", body = Object),
        (status = 409, response = Conflict),
        Writes,
    ))]
pub(crate) async fn take_backup(Scoped(s): Scoped) -> ApiResult<Response> {
    let b = backups(&s)?;
    // In a task of its own: a client that hangs up does not cut a backup short.
    let state = s.clone();
    let report = tokio::spawn(async move { b.take(&state).await })
        .await
        .map_err(|e| backup_failed(e.to_string()))?
        .map_err(backup_failed)?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// The backups held
#[utoipa::path(get, path = "/api/v1/backups", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "Each backup: name, time, segments and files with their SHA-256", body = Object),
        (status = 409, response = Conflict),
        Reads,
    ))]
pub(crate) async fn list_backups(Scoped(s): Scoped) -> ApiResult<Json<serde_json::Value>> {
    let b = backups(&s)?;
    Ok(Json(b.list().await.map_err(backup_failed)?))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    healthz,
    readyz,
    openapi,
    create_commune,
    create_site,
    create_device,
    rejects,
    replay_rejects,
    create_token,
    list_tokens,
    revoke_token,
    take_backup,
    list_backups
))]
pub(crate) struct Doc;
