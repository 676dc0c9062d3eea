//! The audit trail at the API's edge: a layer records every change (any request that is not a
//! read, on the catalog, rules, alerts, commands to equipment, tokens, backups, sessions) and the
//! sensitive reads (tokens, backups, deliveries, the trail itself, data exported as CSV), with
//! who (token or session), from where, the outcome, and the request's body with its secrets
//! masked. A handler can add the state before and after a change (`AuditNote` in the response's
//! extensions). The data plane is not recorded: points sent by devices are the data itself (and a
//! device API's path holds its token).
//!
//! `GET /api/v1/audit` reads the trail and `GET /api/v1/audit/verify` checks its hash chain.

use agora_store::audit::{AuditEntry, AuditEvent, AuditFilter, AuditVerification};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::connections::ClientAddr;
use crate::doc::{BadRequest, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::policy::Scoped;

/// The largest request body kept in an entry (larger ones are noted by size).
const MAX_KEPT_BODY: usize = 64 << 10;

/// What a handler adds to the entry of its request: the state before and after the change, and
/// who it turned out to be (a login).
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    /// Who acted, when the request itself does not say (a login form).
    pub actor: Option<String>,
    /// The object before the change.
    pub before: Option<serde_json::Value>,
    /// The object after it.
    pub after: Option<serde_json::Value>,
}

/// Routes of the data plane: points sent by devices and queries of InfluxDB clients.
const DATA_PLANE: [&str; 7] = [
    "/write",
    "/api/v2/write",
    "/api/v1/observations",
    "/api/v1/senml",
    "/api/v1/push/sensor-community",
    "/query",
    // Citizens' reports, filed by anyone: kept with their own history, and never copied into a
    // trail that cannot be erased (they may hold an address and a text).
    "/api/v1/reports",
];

/// Reads that are recorded.
const SENSITIVE_READS: [&str; 9] = [
    "/api/v1/tokens",
    "/api/v1/backups",
    "/api/v1/deliveries",
    "/api/v1/audit",
    "/api/v1/audit/verify",
    "/api/v1/people",
    "/api/v1/people/{id}",
    "/api/v1/people/{id}/export",
    "/api/v1/privacy/register",
];

/// Whether and how a request is recorded: its action, and whether its body is kept.
fn classify(method: &Method, route: &str, query: Option<&str>) -> Option<(String, bool)> {
    if route.starts_with("/api/v1/{token}") {
        return None;
    }
    if *method == Method::GET || *method == Method::HEAD {
        if SENSITIVE_READS.contains(&route) {
            return Some((format!("read {route}"), false));
        }
        let csv = query.is_some_and(|q| q.split('&').any(|kv| kv == "format=csv"));
        // The indicators are open data; every other CSV is an export.
        if csv && !route.starts_with("/api/v1/indicators/") {
            return Some((format!("export {route}"), false));
        }
        return None;
    }
    if DATA_PLANE.contains(&route) {
        return None;
    }
    // A login form holds a token, an import a file: neither is kept.
    // People's emails and names stay out of the trail too: it cannot be edited, and a person may
    // be erased; their changes are recorded by identifier and role.
    let keep =
        !matches!(route, "/login" | "/logout" | "/api/v1/import/csv" | "/api/v1/visitors/pois")
            && !route.starts_with("/api/v1/people");
    Some((format!("{method} {route}"), keep))
}

/// Who a request comes from.
fn actor_of(s: &AppState, h: &HeaderMap) -> String {
    match crate::auth::secret_from(h, None) {
        Some(secret) => match s.catalog.authenticate(&secret) {
            Some(t) => format!("token:{} ({})", t.id, t.name),
            None => "unknown token".into(),
        },
        None => match crate::session::current(s, h) {
            Some((_, sess)) => format!("session of {}", sess.principal.actor),
            None => "anonymous".into(),
        },
    }
}

/// Replace the values of keys that name secrets, and the credentials in URLs, at any depth.
fn mask(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.contains("://") => {
            *s = agora_alerts::secrets::mask_url(s);
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let k = k.to_ascii_lowercase();
                if ["secret", "password", "token", "authorization", "api_key"]
                    .iter()
                    .any(|s| k.contains(s))
                    && !x.is_null()
                {
                    *x = serde_json::Value::String("***".into());
                } else {
                    mask(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

/// The layer: record the requests `classify` picks, once answered.
pub(crate) async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(log) = s.audit.clone() else { return next.run(req).await };
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some(route) = route else { return next.run(req).await };
    let Some((action, keep)) = classify(req.method(), &route, req.uri().query()) else {
        return next.run(req).await;
    };
    let actor = actor_of(&s, req.headers());
    let address = req.extensions().get::<ClientAddr>().map(|a| a.0.ip().to_string());
    let target = match req.uri().query() {
        Some(q) if req.method() == Method::GET => format!("{}?{q}", req.uri().path()),
        _ => req.uri().path().to_owned(),
    };
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // The body is kept when it is small JSON; it is read here and handed on unchanged.
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (req, request) = if keep && is_json && length.is_some_and(|n| n <= MAX_KEPT_BODY) {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_KEPT_BODY).await {
            Ok(bytes) => {
                let mut v = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|_| serde_json::Value::String("(not JSON)".into()));
                mask(&mut v);
                (Request::from_parts(parts, Body::from(bytes)), Some(v))
            }
            Err(_) => {
                return ApiError::BadRequest("the request body could not be read".into())
                    .into_response();
            }
        }
    } else {
        (
            req,
            length.filter(|n| *n > 0).map(|n| serde_json::json!(format!("({n} bytes, not kept)"))),
        )
    };
    let resp = next.run(req).await;
    // Requests without valid credentials are not recorded: they change nothing, and anyone
    // could fill the trail with them (the logs and rate limits see them).
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
        return resp;
    }
    let note = resp.extensions().get::<AuditNote>().cloned().unwrap_or_default();
    // A refusal is recorded without the body it refused (it changed nothing, and stays small).
    let request = if resp.status() == axum::http::StatusCode::FORBIDDEN { None } else { request };
    let mut detail = serde_json::Map::new();
    for (k, v) in [("request", request), ("before", note.before), ("after", note.after)] {
        if let Some(mut v) = v {
            mask(&mut v);
            detail.insert(k.into(), v);
        }
    }
    let event = AuditEvent {
        actor: note.actor.unwrap_or(actor),
        address,
        action,
        target,
        status: resp.status().as_u16(),
        detail: serde_json::Value::Object(detail),
    };
    // In a task of its own: a client that hangs up does not cut the entry short.
    let at = s.clock.now();
    let written = tokio::spawn(async move { log.append(at, event).await }).await;
    if let Err(e) = written.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
        // The change is made: it cannot be undone, so it is logged loudly instead.
        tracing::error!(error = %e, "the audit trail could not record a request");
    }
    resp
}

/// Query of `/api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// From this time (RFC 3339, epoch or `now-7d`).
    from: Option<String>,
    /// Before this time (default: now).
    to: Option<String>,
    /// Entries whose actor contains this (`token:…`, `person:…`, `session of …`).
    actor: Option<String>,
    /// Entries whose action contains this (`POST /api/v1/rules`, `export`).
    action: Option<String>,
    /// At most this many, newest first (default 100, at most 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn log_of(s: &AppState) -> ApiResult<std::sync::Arc<dyn agora_store::audit::AuditLog>> {
    s.audit.clone().ok_or_else(|| ApiError::Conflict("the audit trail is off".into()))
}

/// The audit trail
///
/// Who changed what and when, from where, with what outcome; sensitive reads too. Newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, description = "Entries, newest first", content(
            (Vec<AuditEntry> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn entries(
    Scoped(s): Scoped,
    Query(q): Query<AuditParams>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is 1 to 10000, not {limit}")));
    }
    let range = crate::query::range(
        &s,
        q.from.as_deref(),
        q.to.as_deref(),
        std::time::Duration::from_secs(366 * 86_400),
    )?;
    let f = AuditFilter {
        from: Some(range.from),
        to: Some(range.to),
        actor: q.actor,
        action: q.action,
        limit,
    };
    let list = log_of(&s)?.entries(&f).await?;
    if csv {
        let cell = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
        let mut out =
            String::from("seq,at,actor,address,action,target,status,detail,prev_hash,hash\n");
        for e in &list {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                e.seq,
                e.at,
                cell(&e.actor),
                cell(e.address.as_deref().unwrap_or("")),
                cell(&e.action),
                cell(&e.target),
                e.status,
                cell(&e.detail.to_string()),
                e.prev_hash,
                e.hash
            ));
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    Ok(Json(list).into_response())
}

/// Check the audit trail's hash chain
///
/// Every entry's hash against its content and the previous entry's: an edited or removed entry
/// is named (the first one found).
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "What the check found", body = AuditVerification),
        Reads,
    ))]
pub(crate) async fn verify(Scoped(s): Scoped) -> ApiResult<Json<AuditVerification>> {
    Ok(Json(log_of(&s)?.verify().await?))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(entries, verify))]
pub(crate) struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_sensitive_reads_and_exports_are_recorded_the_data_plane_is_not() {
        let c = |m: Method, r: &str, q: Option<&str>| classify(&m, r, q).map(|x| x.0);
        assert_eq!(c(Method::POST, "/api/v1/rules", None).as_deref(), Some("POST /api/v1/rules"));
        assert_eq!(
            c(Method::DELETE, "/api/v1/tokens/{id}", None).as_deref(),
            Some("DELETE /api/v1/tokens/{id}")
        );
        assert_eq!(c(Method::GET, "/api/v1/tokens", None).as_deref(), Some("read /api/v1/tokens"));
        assert_eq!(
            c(Method::GET, "/api/v1/chart", Some("device=a&format=csv")).as_deref(),
            Some("export /api/v1/chart")
        );
        assert_eq!(c(Method::GET, "/api/v1/indicators/atmo", Some("format=csv")), None);
        assert_eq!(c(Method::GET, "/api/v1/rules", None), None);
        assert_eq!(c(Method::POST, "/api/v2/write", None), None);
        assert_eq!(c(Method::POST, "/api/v1/{token}/telemetry", None), None);
        assert_eq!(classify(&Method::POST, "/login", None).map(|x| x.1), Some(false));
    }

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let mut v = serde_json::json!({"id": "r", "actions": [{"webhook": {"url": "https://x", "secret": "s3cret"}},
            {"webhook": {"url": "https://u:pw@hooks.example/x?token=abc"}}],
            "smtp": {"password": "p"}, "token": null, "name": "n"});
        mask(&mut v);
        assert_eq!(v["actions"][0]["webhook"]["secret"], "***");
        assert_eq!(v["actions"][0]["webhook"]["url"], "https://x");
        let url = v["actions"][1]["webhook"]["url"].as_str().unwrap();
        assert!(!url.contains("pw") && !url.contains("abc"), "{url}");
        assert_eq!(v["smtp"]["password"], "***");
        assert_eq!(v["token"], serde_json::Value::Null);
        assert_eq!(v["name"], "n");
    }
}
