//! Prometheus metrics: HTTP requests by route and status with latency histograms, ingest counters,
//! storage gauges. No global registry: the registry lives in the app state.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use tracing::Instrument;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// The metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agora");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 3.0, 12))
        });
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        Self { registry, requests, latency }
    }
}

pub(crate) async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = method_label(req.method());
    let start = Instant::now();
    let span = tracing::info_span!("http", %method, %route);
    let resp = next.run(req).instrument(span).await;
    let status = resp.status().as_u16();
    s.metrics.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
    s.metrics.latency.get_or_create(&RouteLabels { route }).observe(start.elapsed().as_secs_f64());
    resp
}

/// The `method` label of a request: the standard methods by name, anything else as `other`.
///
/// Labels must come from a closed set: a client may send any token as a method, and each new
/// label value is a new series kept for the life of the process.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Metrics for Prometheus: HTTP requests by method, route and status with latency histograms,
/// ingest counters, storage gauges.
///
/// Needs no token: where the figures are sensitive, keep it off the public network (at the reverse
/// proxy). Clients without read credentials are rate-limited like every anonymous request.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "metrics", security(()),
    responses(
        (status = 200, description = "The metrics, in the OpenMetrics text format",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 429, response = crate::doc::TooManyRequests),
    ))]
pub(crate) async fn render(State(s): State<AppState>) -> Response {
    let mut out = String::new();
    let c = &s.pipeline.counters;
    let st = s.store.stats();
    let mut line = |name: &str, kind: &str, help: &str, v: f64| {
        out.push_str(&format!(
            "# HELP agora_{name} {help}\n# TYPE agora_{name} {kind}\nagora_{name} {v}\n"
        ));
    };
    line(
        "ingest_points_accepted_total",
        "counter",
        "Points stored by the ingest pipeline",
        c.points_accepted.load(Ordering::Relaxed) as f64,
    );
    line(
        "ingest_points_rejected_total",
        "counter",
        "Lines, records or fields refused by the ingest pipeline",
        c.points_rejected.load(Ordering::Relaxed) as f64,
    );
    line(
        "ingest_points_flagged_total",
        "counter",
        "Points stored with a quality flag (stuck, jump)",
        c.points_flagged.load(Ordering::Relaxed) as f64,
    );
    line(
        "ingest_batches_total",
        "counter",
        "Batches handled by the ingest pipeline",
        c.batches.load(Ordering::Relaxed) as f64,
    );
    line("storage_series", "gauge", "Series holding data", st.series as f64);
    line("storage_points", "gauge", "Points stored", st.points as f64);
    line("storage_head_points", "gauge", "Points in memory not yet flushed", st.head_points as f64);
    line("storage_segments", "gauge", "Segment files", st.segments as f64);
    line(
        "storage_bytes_on_disk",
        "gauge",
        "Bytes of segments, WAL and manifest",
        st.bytes_on_disk as f64,
    );
    line("storage_flushes_total", "counter", "Head flushes since start", st.flushes as f64);
    line("storage_compactions_total", "counter", "Compactions since start", st.compactions as f64);
    let h = s.store.health();
    line(
        "storage_accepting_writes",
        "gauge",
        "1 while writes are accepted (free space above the reserve, the WAL committing)",
        f64::from(u8::from(h.accepting_writes && !h.wal_failing)),
    );
    line(
        "storage_free_bytes",
        "gauge",
        "Free bytes on the data directory's filesystem",
        h.free_bytes as f64,
    );
    line(
        "storage_reserve_bytes",
        "gauge",
        "Below this many free bytes writes are refused",
        h.reserve_bytes as f64,
    );
    line(
        "storage_unflushed_points",
        "gauge",
        "Points a failed flush left in memory and in the WAL, waiting to be written",
        h.unflushed_points as f64,
    );
    line(
        "storage_read_chunks_total",
        "counter",
        "Chunks decoded by raw reads since start",
        st.read_chunks as f64,
    );
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &s.metrics.registry) {
        tracing::error!(error = %e, "could not encode metrics");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for m in ["FOO", "BREW", "PROPFIND", "get"] {
            assert_eq!(method_label(&Method::from_bytes(m.as_bytes()).unwrap()), "other", "{m}");
        }
    }
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(render))]
pub(crate) struct Doc;
