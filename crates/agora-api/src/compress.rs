//! gzip for responses (JSON, HTML, scripts, CSV) when the client accepts it: the dashboard's map
//! payload shrinks five- to tenfold. Streams (server-sent events) and bodies already encoded pass
//! through untouched. Fast compression level: these bodies are built per request.

use std::io::Write as _;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Smaller bodies are sent as they are: the gzip header would eat the gain.
const MIN_BYTES: usize = 1024;
/// Larger bodies are sent as they are rather than held whole in memory twice.
const MAX_BYTES: usize = 64 << 20;

fn compressible(content_type: &str) -> bool {
    let c = content_type.split(';').next().unwrap_or("").trim();
    c != "text/event-stream"
        && (c.starts_with("text/")
            || c.ends_with("json")
            || c == "application/javascript"
            || c == "image/svg+xml")
}

/// Whether an `Accept-Encoding` value allows gzip.
pub fn accepts_gzip(accept: &str) -> bool {
    accept.split(',').any(|e| {
        let mut parts = e.split(';');
        let name = parts.next().unwrap_or("").trim();
        let refused = parts.any(|q| q.trim().replace(' ', "") == "q=0");
        (name == "gzip" || name == "*") && !refused
    })
}

/// The middleware.
pub async fn gzip(req: Request, next: Next) -> Response {
    let wants = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let resp = next.run(req).await;
    if !wants || resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let ok_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible);
    if !ok_type {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BYTES).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.len() < MIN_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    if enc.write_all(&bytes).is_err() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(gz) = enc.finish() else { return Response::from_parts(parts, Body::from(bytes)) };
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, Body::from(gz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_is_read() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip("identity"));
        assert!(compressible("application/json"));
        assert!(compressible("application/problem+json"));
        assert!(!compressible("text/event-stream"));
        assert!(!compressible("image/png"));
    }
}
