//! InfluxDB compatibility beyond writes: the probes InfluxDB clients and tools send before they
//! write (`/ping`, `/health`, `/api/v2/ready`), answered as InfluxDB 1.8 answers them.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::doc::TooManyRequests;
use crate::extract::Json;

/// The InfluxDB version agora answers as: 1.8 (the last 1.x), which also takes 2.x's
/// `/api/v2/write`.
pub(crate) const VERSION: &str = "1.8.10";

/// Whether agora takes writes: started, and storage accepts them.
fn up(s: &AppState) -> bool {
    let h = s.store.health();
    s.ready.load(Ordering::Acquire) && h.accepting_writes && !h.wal_failing
}

/// InfluxDB's liveness probe.
#[utoipa::path(get, path = "/ping", tag = "health", security(()),
    responses(
        (status = 204, description = "Up; the version headers say which InfluxDB agora answers as",
            headers(
                ("X-Influxdb-Version" = String, description = "1.8.10"),
                ("X-Influxdb-Build" = String, description = "OSS"),
            )),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn ping() -> Response {
    (StatusCode::NO_CONTENT, [("x-influxdb-version", VERSION), ("x-influxdb-build", "OSS")])
        .into_response()
}

/// InfluxDB's health answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `influxdb`.
    name: &'static str,
    /// What the status means.
    message: &'static str,
    /// `pass` or `fail`.
    status: &'static str,
    /// Always empty.
    checks: Vec<String>,
    /// The InfluxDB version agora answers as.
    version: &'static str,
}

/// InfluxDB's health check: `pass` while agora takes writes.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready for queries and writes", body = Health),
        (status = 503, description = "Starting, or storage refuses writes", body = Health),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let (status, code, message) = if up(&s) {
        ("pass", StatusCode::OK, "ready for queries and writes")
    } else {
        ("fail", StatusCode::SERVICE_UNAVAILABLE, "not ready: starting, or storage refuses writes")
    };
    let body = Health { name: "influxdb", message, status, checks: Vec::new(), version: VERSION };
    (code, Json(body)).into_response()
}

/// InfluxDB 2's readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: &'static str,
    /// When the server started.
    started: agora_model::Timestamp,
    /// For how long, as a Go duration (`1h2m3.5s`).
    up: String,
}

/// InfluxDB 2's readiness probe.
#[utoipa::path(get, path = "/api/v2/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Starting, or storage refuses writes", body = Ready),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn ready(State(s): State<AppState>) -> Response {
    let (since, started) = s.started;
    let secs = since.elapsed().as_secs_f64();
    let (h, m, sec) = ((secs / 3600.0) as u64, ((secs % 3600.0) / 60.0) as u64, secs % 60.0);
    let up_for = match (h, m) {
        (0, 0) => format!("{sec:.3}s"),
        (0, _) => format!("{m}m{sec:.3}s"),
        _ => format!("{h}h{m}m{sec:.3}s"),
    };
    let code = if up(&s) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if code == StatusCode::OK { "ready" } else { "starting" };
    (code, Json(Ready { status, started, up: up_for })).into_response()
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ping, health, ready))]
pub(crate) struct Doc;
