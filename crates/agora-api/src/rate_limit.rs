//! Rate limits: token buckets per ingest token and per client address on the ingest routes, and
//! per client address on everything asked without valid read credentials (the public map, pages,
//! failed logins, bogus tokens). Over the limit a request gets 429 problem+json with
//! `Retry-After`. Requests with a valid read token or session, health checks and trusted
//! addresses are not limited.
//!
//! Memory stays bounded: each limiter tracks at most `max_tracked` keys. When full it forgets
//! the buckets that refilled (as good as new), then the least recently used tenth, so an attacker
//! cycling addresses or bogus tokens cannot grow it (bogus tokens are never keys: only tokens
//! that authenticate get a bucket; IPv6 clients count by their /64, and their /48 has a wider
//! bucket of its own so that a host cycling through its site's /64s is still held).

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use agora_ingest::limits::Rate;
use agora_ingest::limits::{AddrSet, Buckets, client_key, network_key};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::connections::ClientAddr;
use crate::error::ApiError;

/// The rate limits.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Ingest requests per token.
    pub ingest_per_token: Rate,
    /// Ingest bytes per token, as they arrive (before decompression): a token sending large
    /// bodies back to back waits its turn like one sending many small ones.
    pub ingest_bytes_per_token: Rate,
    /// Ingest requests per client address, whatever the token (bad ones included).
    pub ingest_per_address: Rate,
    /// Ingest requests per IPv6 /48 network, whichever of its /64s they come from.
    pub ingest_per_network: Rate,
    /// Requests per client address without valid read credentials.
    pub public_per_address: Rate,
    /// Such requests per IPv6 /48 network.
    pub public_per_network: Rate,
    /// Most keys each limiter keeps.
    pub max_tracked: usize,
    /// Addresses never limited (loopback by default: health checks, local operators).
    pub exempt: AddrSet,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            ingest_per_token: Rate { per_second: 100.0, burst: 500.0 },
            ingest_bytes_per_token: Rate {
                per_second: 32.0 * 1024.0 * 1024.0,
                burst: 128.0 * 1024.0 * 1024.0,
            },
            ingest_per_address: Rate { per_second: 200.0, burst: 1000.0 },
            ingest_per_network: Rate { per_second: 800.0, burst: 4000.0 },
            public_per_address: Rate { per_second: 20.0, burst: 200.0 },
            public_per_network: Rate { per_second: 80.0, burst: 800.0 },
            max_tracked: 10_000,
            exempt: AddrSet::loopback(),
        }
    }
}

/// The running limiters.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateLimits,
    ingest_token: Buckets<String>,
    ingest_bytes: Buckets<String>,
    ingest_addr: Buckets<IpAddr>,
    ingest_net: Buckets<IpAddr>,
    public_addr: Buckets<IpAddr>,
    public_net: Buckets<IpAddr>,
}

impl RateLimiter {
    /// Limiters with these limits.
    pub fn new(cfg: RateLimits) -> Self {
        Self {
            ingest_token: Buckets::new(cfg.ingest_per_token, cfg.max_tracked),
            ingest_bytes: Buckets::new(cfg.ingest_bytes_per_token, cfg.max_tracked),
            ingest_addr: Buckets::new(cfg.ingest_per_address, cfg.max_tracked),
            ingest_net: Buckets::new(cfg.ingest_per_network, cfg.max_tracked),
            public_addr: Buckets::new(cfg.public_per_address, cfg.max_tracked),
            public_net: Buckets::new(cfg.public_per_network, cfg.max_tracked),
            cfg,
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(RateLimits::default())
    }
}

/// Paths of the ingest routes (POST), besides ThingsBoard's `/api/v1/{token}/telemetry`.
const INGEST: &[&str] = &[
    "/write",
    "/api/v2/write",
    "/api/v1/observations",
    "/api/v1/senml",
    "/api/v1/push/sensor-community",
    "/api/v1/import/csv",
];

/// The token carried in the path of ThingsBoard's HTTP device API: `/api/v1/{token}/telemetry`,
/// `…/attributes`, `…/attributes/updates`, `…/rpc` and `…/rpc/{id}`.
fn path_token(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/api/v1/")?;
    let (t, tail) = rest.split_once('/')?;
    let device_api = match tail.split_once('/') {
        None => matches!(tail, "telemetry" | "attributes" | "rpc"),
        Some(("attributes", "updates")) => true,
        Some(("rpc", id)) => !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        Some(_) => false,
    };
    // `devices`, `rules`, … are the API's own collections, never tokens.
    (device_api && !t.is_empty() && !matches!(t, "devices" | "rules" | "alerts" | "tokens"))
        .then_some(t)
}

/// The v1 write's token parameter `p`.
pub(crate) fn query_p(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("p="))
}

/// The middleware applying the limits. It also puts a deadline on the request body: a client
/// trickling an upload (or stopping short of its `Content-Length`) gets `408` and its connection
/// back, instead of holding a slot and a buffer for ever.
pub(crate) async fn limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(&s, &req) {
        Ok(charge) => {
            let limits = charge.map(|token| (s.limits.clone(), token));
            next.run(with_body_deadline(req, s.config.body_timeout, limits)).await
        }
        Err(Refusal::Wait(wait)) => {
            ApiError::RateLimited { retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64 }
                .into_response()
        }
        Err(Refusal::NoToken) => ApiError::Unauthorized(
            "ingest needs a valid token (Authorization: Bearer/Token, Basic auth or ?p=)".into(),
        )
        .into_response(),
    }
}

/// Why a request is turned away before its body is read.
#[derive(Debug)]
enum Refusal {
    /// Over a rate limit: try again after this.
    Wait(Duration),
    /// An ingest request without a valid token: refused before its body is read.
    NoToken,
}

impl From<Duration> for Refusal {
    fn from(d: Duration) -> Self {
        Self::Wait(d)
    }
}

/// The same request, whose body fails with "timed out" once `deadline` has passed, and whose
/// bytes are spent from the ingest token's byte bucket as they arrive (`charge`).
fn with_body_deadline(
    req: Request,
    timeout: Duration,
    charge: Option<(std::sync::Arc<crate::Limits>, String)>,
) -> Request {
    use futures_util::StreamExt;
    let (parts, body) = req.into_parts();
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = body.into_data_stream();
    let timed = futures_util::stream::unfold(Some(stream), move |stream| {
        let charge = charge.clone();
        async move {
            let mut stream = stream?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(frame)) => {
                    if let (Some((limits, token)), Ok(bytes)) = (&charge, &frame) {
                        limits.rate.ingest_bytes.spend(token, bytes.len() as f64, Instant::now());
                    }
                    Some((frame, Some(stream)))
                }
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new(BodyTimedOut(timeout))), None)),
            }
        }
    });
    Request::from_parts(parts, axum::body::Body::from_stream(timed))
}

/// The error a late request body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub(crate) struct BodyTimedOut(Duration);

/// Whether a request may go on; for an ingest request, the token whose byte bucket its body is
/// spent from.
fn check(s: &AppState, req: &Request) -> Result<Option<String>, Refusal> {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz") {
        return Ok(None);
    }
    let rl = &s.limits.rate;
    // The device API's long polls (GET) are a device's traffic too, under its token's limits.
    let ingest =
        (req.method() == Method::POST && INGEST.contains(&path)) || path_token(path).is_some();
    // Unknown tokens never get a body read, from anywhere: the handler would refuse them anyway.
    let ingest_token = if ingest {
        let p = query_p(req.uri().query());
        let secret = crate::auth::secret_from(req.headers(), p)
            .or_else(|| path_token(path).map(str::to_owned));
        Some(secret.and_then(|x| s.catalog.authenticate(&x)).ok_or(Refusal::NoToken)?)
    } else {
        None
    };
    let ip = req.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    if ip.is_some_and(|ip| rl.cfg.exempt.contains(ip)) {
        return Ok(None);
    }
    let key = ip.map(client_key);
    let net = ip.and_then(network_key);
    let now = Instant::now();
    if let Some(t) = ingest_token {
        if let Some(k) = key {
            rl.ingest_addr.take(&k, now)?;
        }
        if let Some(n) = net {
            rl.ingest_net.take(&n, now)?;
        }
        rl.ingest_token.take(&t.id, now)?;
        rl.ingest_bytes.has_credit(&t.id, now)?;
        return Ok(Some(t.id));
    }
    // People and tokens that read (every role but a device's) are the city's own staff; but
    // logins are limited whoever sends them (a credential does not buy guesses at others').
    if !path.starts_with("/login")
        && let Ok(Some(p)) = crate::auth::authenticate(s, req.headers(), query_p(req.uri().query()))
        && p.grant.may(agora_model::permissions::Action::View)
    {
        return Ok(None);
    }
    if let Some(k) = key {
        rl.public_addr.take(&k, now)?;
    }
    if let Some(n) = net {
        rl.public_net.take(&n, now)?;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_paths_and_tokens() {
        assert_eq!(path_token("/api/v1/abc/telemetry"), Some("abc"));
        assert_eq!(path_token("/api/v1/abc/attributes"), Some("abc"));
        assert_eq!(path_token("/api/v1/abc/attributes/updates"), Some("abc"));
        assert_eq!(path_token("/api/v1/abc/rpc"), Some("abc"));
        assert_eq!(path_token("/api/v1/abc/rpc/17"), Some("abc"));
        assert_eq!(path_token("/api/v1/abc/rpc/x"), None);
        assert_eq!(path_token("/api/v1/devices/rpc"), None);
        assert_eq!(path_token("/api/v1/a/b/telemetry"), None);
        assert_eq!(path_token("/api/v1/observations"), None);
        assert_eq!(query_p(Some("db=x&p=secret&precision=s")), Some("secret"));
        assert_eq!(query_p(None), None);
    }
}
