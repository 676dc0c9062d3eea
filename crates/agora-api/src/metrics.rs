//! Prometheus metrics: HTTP requests by route and status with latency histograms, ingest counters,
//! storage gauges. No global registry: the request families live in the app state, the rest is
//! read at each scrape.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
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

/// The request metrics, kept for the life of the server; the ingest and storage figures are read
/// at each scrape.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// The listeners' certificates, whose expiry is exported.
    certificates: std::sync::OnceLock<Vec<std::sync::Arc<agora_ingest::tls::Tls>>>,
    /// The version and commit of the running binary.
    build: std::sync::OnceLock<(String, String)>,
}

impl Metrics {
    /// Export the expiry of these listeners' certificates (set once, at start).
    pub fn set_certificates(&self, tls: Vec<std::sync::Arc<agora_ingest::tls::Tls>>) {
        let _ = self.certificates.set(tls);
    }

    /// Export the running version and commit (`agora_build_info`).
    pub fn set_build(&self, version: &str, commit: &str) {
        let _ = self.build.set((version.to_owned(), commit.to_owned()));
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 3.0, 12))
        });
        Self {
            requests,
            latency,
            certificates: std::sync::OnceLock::new(),
            build: std::sync::OnceLock::new(),
        }
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
        (status = 200, description = "The metrics: Prometheus's text format 0.0.4, or OpenMetrics \
            when `Accept` asks for `application/openmetrics-text`",
            content(
                (String = "text/plain; version=0.0.4; charset=utf-8"),
                (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            )),
        (status = 429, response = crate::doc::TooManyRequests),
    ))]
pub(crate) async fn render(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let c = &s.pipeline.counters;
    let st = s.store.stats();
    let h = s.store.health();
    // One registry per scrape: the counters and gauges below are read now; the request families
    // are shared handles.
    let mut r = Registry::with_prefix("agora");
    let mut counter = |name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    counter(
        "ingest_points_accepted",
        "Points stored by the ingest pipeline",
        c.points_accepted.load(Ordering::Relaxed),
    );
    counter(
        "ingest_points_rejected",
        "Lines, records or fields refused by the ingest pipeline",
        c.points_rejected.load(Ordering::Relaxed),
    );
    counter(
        "ingest_points_flagged",
        "Points stored with a quality flag (stuck, jump, out of range)",
        c.points_flagged.load(Ordering::Relaxed),
    );
    counter(
        "ingest_points_out_of_range",
        "Points a little outside their property's valid range, kept with the flag out_of_range",
        c.points_out_of_range.load(Ordering::Relaxed),
    );
    counter(
        "ingest_batches",
        "Batches handled by the ingest pipeline",
        c.batches.load(Ordering::Relaxed),
    );
    counter(
        "ingest_dead_letters",
        "Entries written to the dead-letter log (refused input kept for replay)",
        c.dead_letters.load(Ordering::Relaxed),
    );
    counter("storage_flushes", "Head flushes since start", st.flushes);
    counter("storage_compactions", "Compactions since start", st.compactions);
    counter("storage_read_chunks", "Chunks decoded by raw reads since start", st.read_chunks);
    let mut gauge = |name: &str, help: &str, v: f64| {
        r.register(name, help, ConstGauge::new(v));
    };
    gauge("storage_series", "Series holding data", st.series as f64);
    gauge("storage_points", "Points stored", st.points as f64);
    gauge("storage_head_points", "Points in memory not yet flushed", st.head_points as f64);
    gauge("storage_segments", "Segment files", st.segments as f64);
    gauge("storage_bytes_on_disk", "Bytes of segments, WAL and manifest", st.bytes_on_disk as f64);
    gauge(
        "storage_wal_bytes",
        "Bytes of WAL files (written, not yet flushed into segments)",
        st.wal_bytes as f64,
    );
    gauge(
        "storage_wal_failing",
        "1 while the last WAL commit failed (writes answered 503 until one succeeds)",
        f64::from(u8::from(h.wal_failing)),
    );
    gauge(
        "storage_accepting_writes",
        "1 while writes are accepted (free space above the reserve, the WAL committing)",
        f64::from(u8::from(h.accepting_writes && !h.wal_failing)),
    );
    gauge(
        "storage_free_bytes",
        "Free bytes on the data directory's filesystem",
        h.free_bytes as f64,
    );
    gauge(
        "storage_reserve_bytes",
        "Below this many free bytes writes are refused",
        h.reserve_bytes as f64,
    );
    gauge(
        "storage_unflushed_points",
        "Points a failed flush left in memory and in the WAL, waiting to be written",
        h.unflushed_points as f64,
    );
    r.register(
        "live_streams",
        "Live update streams (/api/v1/live) open now",
        ConstGauge::new(s.limits.live.open() as f64),
    );
    r.register(
        "live_state_snapshots",
        "Computations of every device's state for the live streams: one per 5 s for all of them",
        ConstCounter::new(s.limits.live.state_snapshots()),
    );
    let f = s.forecasts.stats();
    r.register(
        "forecast_fits",
        "Backtests run to choose a series' method",
        ConstCounter::new(f.fits),
    );
    r.register(
        "forecast_updates",
        "Hourly forecasts made with a method already chosen",
        ConstCounter::new(f.updates),
    );
    r.register(
        "forecast_refused",
        "Series not forecast (too little history)",
        ConstCounter::new(f.refused),
    );
    r.register(
        "forecast_fit_seconds",
        "Time spent in backtests, on the forecasts' one-core budget",
        ConstCounter::new(f.fit_seconds),
    );
    r.register(
        "forecast_update_seconds",
        "Time spent in hourly forecasts, on the same budget",
        ConstCounter::new(f.update_seconds),
    );
    r.register(
        "forecast_read_seconds",
        "Time spent reading series' hours for forecasts",
        ConstCounter::new(f.read_seconds),
    );
    r.register(
        "forecast_sweeps",
        "Hourly sweeps of every forecastable series",
        ConstCounter::new(f.sweeps),
    );
    r.register(
        "forecast_last_sweep_seconds",
        "Duration of the last sweep",
        ConstGauge::new(f.last_sweep_seconds),
    );
    r.register(
        "forecast_last_sweep_series",
        "Series the last sweep modelled",
        ConstGauge::new(f.last_sweep_series as f64),
    );
    r.register(
        "forecast_last_sweep_end_timestamp_seconds",
        "When the last sweep ended (Unix time; 0 before the first)",
        ConstGauge::new(f.last_sweep_end as f64),
    );
    r.register("forecast_models", "Series with a forecast", ConstGauge::new(f.models as f64));
    r.register("forecast_anomalies", "Anomalies found now", ConstGauge::new(f.anomalies as f64));
    let now = s.clock.now();
    let devices = Family::<StatusLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for status in ["online", "offline", "never_seen"] {
        devices.get_or_create(&StatusLabels { status }).set(0.0);
    }
    for d in s.catalog.devices(&agora_store::catalog::DeviceFilter::default()) {
        let (status, _) = agora_query::DeviceStatus::of(&d, now);
        devices.get_or_create(&StatusLabels { status: status.as_str() }).inc();
    }
    r.register(
        "devices",
        "Devices by status: online, offline (silent for twice their period and a minute), never_seen",
        devices,
    );
    if let Some(certs) = s.metrics.certificates.get() {
        let expiry = Family::<ListenerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for t in certs {
            if let Some(at) = t.not_after() {
                expiry.get_or_create(&ListenerLabels { listener: t.name() }).set(at as f64);
            }
        }
        r.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the certificate of each TLS listener expires (Unix time)",
            expiry,
        );
    }
    if let Some((version, commit)) = s.metrics.build.get() {
        let info = Family::<BuildLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        info.get_or_create(&BuildLabels { version: version.clone(), commit: commit.clone() })
            .set(1.0);
        r.register("build_info", "The running version and commit (always 1)", info);
    }
    r.register(
        "http_requests",
        "HTTP requests by method, route and status",
        s.metrics.requests.clone(),
    );
    r.register(
        "http_request_duration_seconds",
        "HTTP request latency by route",
        s.metrics.latency.clone(),
    );
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &r) {
        tracing::error!(error = %e, "could not encode metrics");
    }
    // OpenMetrics when the scraper asks for it; else Prometheus's text format 0.0.4, which every
    // scraper and `promtool` read.
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/openmetrics-text") {
        ([(header::CONTENT_TYPE, OPENMETRICS)], out).into_response()
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], to_prometheus_text(&out)).into_response()
    }
}

/// The content type of OpenMetrics text.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of Prometheus's text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as Prometheus's text format 0.0.4: a counter family is named with its
/// `_total` suffix in `HELP` and `TYPE` (OpenMetrics names it without), `UNIT` lines and the
/// final `# EOF` go.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_get_their_total_name_in_the_text_format() {
        let om = "# HELP agora_x Things.\n# TYPE agora_x counter\nagora_x_total 5\n# HELP agora_g A gauge.\n# TYPE agora_g gauge\nagora_g 1.5\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP agora_x_total Things.\n# TYPE agora_x_total counter\nagora_x_total 5\n# HELP agora_g A gauge.\n# TYPE agora_g gauge\nagora_g 1.5\n"
        );
    }

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
