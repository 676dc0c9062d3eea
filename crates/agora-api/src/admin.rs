//! Health, the OpenAPI document, administration: catalog entries, tokens, dead letters.

use std::sync::atomic::Ordering;

use agora_ingest::Format;
use agora_ingest::Source;
use agora_model::{DeviceId, DeviceKind, InseeCode, SiteId};
use agora_store::catalog::{Commune, Device, Scope, Site};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::AppState;
use crate::auth::require;
use crate::error::{ApiError, ApiResult};

pub(crate) async fn healthz() -> Json<JsonValue> {
    Json(json!({"status": "ok"}))
}

/// Ready to take writes: started, and storage accepts them (enough free space, no failure).
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "starting"})))
            .into_response();
    }
    let h = s.store.health();
    let storage = json!({
        "accepting_writes": h.accepting_writes,
        "free_bytes": h.free_bytes,
        "reserve_bytes": h.reserve_bytes,
        "unflushed_points": h.unflushed_points,
        "wal_failing": h.wal_failing,
    });
    if h.accepting_writes && !h.wal_failing {
        Json(json!({"status": "ready", "storage": storage})).into_response()
    } else {
        let status = if h.accepting_writes { "storage_failing" } else { "storage_full" };
        let body = json!({"status": status, "storage": storage});
        (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "30")], Json(body)).into_response()
    }
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json")).into_response()
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no endpoint at {}", uri.path()))
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v).map_err(|e| ApiError::BadRequest(e.body_text()))
}

pub(crate) async fn create_commune(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Result<Json<Commune>, JsonRejection>,
) -> ApiResult<Response> {
    require(&s, &h, None, Scope::Admin)?;
    let c = body(b)?;
    s.catalog.upsert_commune(c.clone()).await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

pub(crate) async fn create_site(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Result<Json<Site>, JsonRejection>,
) -> ApiResult<Response> {
    require(&s, &h, None, Scope::Admin)?;
    let site = body(b)?;
    s.catalog.upsert_site(site.clone()).await?;
    Ok((StatusCode::CREATED, Json(site)).into_response())
}

/// A device as declared through the API.
#[derive(Debug, Deserialize)]
pub(crate) struct NewDevice {
    id: DeviceId,
    kind: DeviceKind,
    name: Option<String>,
    site: Option<SiteId>,
    commune: Option<InseeCode>,
    lat: Option<f64>,
    lon: Option<f64>,
    #[serde(default)]
    metadata: JsonValue,
}

pub(crate) async fn create_device(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Result<Json<NewDevice>, JsonRejection>,
) -> ApiResult<Response> {
    require(&s, &h, None, Scope::Admin)?;
    let d = body(b)?;
    let site = d.site.as_ref().and_then(|id| s.catalog.sites().into_iter().find(|x| &x.id == id));
    let dev = Device {
        commune: d.commune.or_else(|| site.as_ref().map(|x| x.commune.clone())),
        lat: d.lat.or(site.as_ref().and_then(|x| x.lat)),
        lon: d.lon.or(site.as_ref().and_then(|x| x.lon)),
        id: d.id,
        kind: d.kind,
        name: d.name,
        site: d.site,
        metadata: if d.metadata.is_null() { json!({}) } else { d.metadata },
        created_at: s.clock.now(),
        last_seen: None,
    };
    s.catalog.upsert_device(dev.clone()).await?;
    let stored = s.catalog.device(dev.id.as_str()).unwrap_or(dev);
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct Limit {
    limit: Option<u32>,
}

pub(crate) async fn rejects(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(q): Query<Limit>,
) -> ApiResult<Json<JsonValue>> {
    require(&s, &h, None, Scope::Admin)?;
    let r = s.catalog.rejects(q.limit.unwrap_or(100).min(10_000)).await?;
    Ok(Json(json!({"count": r.len(), "rejects": r})))
}

/// A token request.
#[derive(Debug, Deserialize)]
pub(crate) struct NewToken {
    name: String,
    scope: Scope,
    device: Option<DeviceId>,
}

pub(crate) async fn create_token(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Result<Json<NewToken>, JsonRejection>,
) -> ApiResult<Response> {
    require(&s, &h, None, Scope::Admin)?;
    let t = body(b)?;
    if t.name.trim().is_empty() {
        return Err(ApiError::BadRequest("a token needs a name".into()));
    }
    if t.device.is_some() && t.scope != Scope::Ingest {
        return Err(ApiError::BadRequest("only ingest tokens can be bound to a device".into()));
    }
    let (info, secret) = s.catalog.create_token(&t.name, t.scope, t.device).await?;
    Ok((StatusCode::CREATED, Json(json!({"token": secret, "info": info}))).into_response())
}

pub(crate) async fn list_tokens(
    State(s): State<AppState>,
    h: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    require(&s, &h, None, Scope::Admin)?;
    Ok(Json(json!({"tokens": s.catalog.tokens()})))
}

pub(crate) async fn revoke_token(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&s, &h, None, Scope::Admin)?;
    s.catalog.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which dead letters to replay.
#[derive(Debug, Default, Deserialize)]
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
pub(crate) async fn replay_rejects(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Option<Json<ReplayRequest>>,
) -> ApiResult<Json<JsonValue>> {
    require(&s, &h, None, Scope::Admin)?;
    let req = b.map(|Json(r)| r).unwrap_or_default();
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
    Ok(Json(json!({
        "replayed": replayed, "stored": stored, "still_rejected": still, "not_replayable": not_replayable,
    })))
}
