//! The dashboard's static files, embedded in the binary at build time: our scripts and styles,
//! and the vendored Leaflet and uPlot (copied from the npm registry by `scripts/vendor-web.sh`).
//! Each is served with an ETag and, when the browser accepts it, gzip-compressed once on first
//! use. URLs carrying the build's asset version (`?v=…`) are cached for a year.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

macro_rules! assets {
    ($($path:literal => $mime:literal),* $(,)?) => {
        &[$(($path, $mime, include_bytes!(concat!("../assets/", $path)) as &[u8])),*]
    };
}

/// Path under `/assets/`, content type, bytes.
static FILES: &[(&str, &str, &[u8])] = assets! {
    "app.css" => "text/css; charset=utf-8",
    "js/common.js" => "application/javascript",
    "js/charts.js" => "application/javascript",
    "js/map.js" => "application/javascript",
    "js/place.js" => "application/javascript",
    "js/commerce.js" => "application/javascript",
    "js/services.js" => "application/javascript",
    "js/decideurs.js" => "application/javascript",
    "js/reports.js" => "application/javascript",
    "js/visitors.js" => "application/javascript",
    "js/opendata.js" => "application/javascript",
    "js/environment.js" => "application/javascript",
    "js/kiosk.js" => "application/javascript",
    "js/device.js" => "application/javascript",
    "js/fleet.js" => "application/javascript",
    "js/forecasts.js" => "application/javascript",
    "js/explorer.js" => "application/javascript",
    "js/alerts.js" => "application/javascript",
    "js/admin.js" => "application/javascript",
    "vendor/leaflet/leaflet.js" => "application/javascript",
    "vendor/leaflet/leaflet.css" => "text/css; charset=utf-8",
    "vendor/leaflet/images/marker-icon.png" => "image/png",
    "vendor/leaflet/images/marker-icon-2x.png" => "image/png",
    "vendor/leaflet/images/marker-shadow.png" => "image/png",
    "vendor/leaflet/images/layers.png" => "image/png",
    "vendor/leaflet/images/layers-2x.png" => "image/png",
    "vendor/uplot/uPlot.iife.min.js" => "application/javascript",
    "vendor/uplot/uPlot.min.css" => "text/css; charset=utf-8",
};

struct Prepared {
    mime: &'static str,
    raw: &'static [u8],
    gzip: Option<Vec<u8>>,
    etag: String,
}

fn prepared() -> &'static HashMap<&'static str, Prepared> {
    static P: OnceLock<HashMap<&'static str, Prepared>> = OnceLock::new();
    P.get_or_init(|| {
        FILES
            .iter()
            .map(|(path, mime, raw)| {
                let etag = format!("\"{}\"", &hex::encode(Sha256::digest(raw))[..20]);
                let gzip = (!mime.starts_with("image/")).then(|| {
                    let mut e = GzEncoder::new(Vec::new(), Compression::best());
                    e.write_all(raw).expect("writing to memory");
                    e.finish().expect("writing to memory")
                });
                (*path, Prepared { mime, raw, gzip, etag })
            })
            .collect()
    })
}

/// A short hash of every asset: page links carry it so that browsers may cache assets for good.
pub(crate) fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = Sha256::new();
        for (p, _, raw) in FILES {
            h.update(p.as_bytes());
            h.update(raw);
        }
        hex::encode(h.finalize())[..12].to_owned()
    })
}

/// The embedded file at `path`, as bytes (for tests and the benchmark).
pub fn get(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _, _)| *p == path).map(|(_, _, b)| *b)
}

/// `GET /assets/{*path}`.
pub(crate) async fn serve(
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(a) = prepared().get(path.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = if q.get("v").is_some_and(|v| v == version()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim() == a.etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(agora_api::compress::accepts_gzip);
    match (&a.gzip, gzip_ok) {
        (Some(gz), true) => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (h, gz.clone()).into_response()
        }
        _ => (h, a.raw).into_response(),
    }
}
