//! gzip for responses (JSON, HTML, scripts, CSV) when the client accepts it: the dashboard's map
//! payload shrinks five- to tenfold. Streams (server-sent events) and bodies already encoded pass
//! through untouched. The body is compressed as it is produced, chunk by chunk, so a response of
//! any size is sent whole without being held in memory. Fast compression level: these bodies are
//! built per request.

use std::io::Write as _;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::StreamExt as _;

/// Smaller bodies (of a known size) are sent as they are: the gzip header would eat the gain.
const MIN_BYTES: u64 = 1024;

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
    if !wants { resp } else { compress(resp) }
}

/// A response gzip-encoded, if its type is worth it and it is not encoded already.
fn compress(resp: Response) -> Response {
    if resp.headers().contains_key(header::CONTENT_ENCODING) {
        return resp;
    }
    let ok_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible);
    if !ok_type || resp.body().size_hint().exact().is_some_and(|n| n < MIN_BYTES) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, gzip_stream(body))
}

/// The body compressed as it comes: each chunk is fed to the encoder and what it has produced
/// so far is sent on. An error reading the body ends the response with that error (the client
/// sees a cut response, never a complete-looking empty one).
fn gzip_stream(body: Body) -> Body {
    let enc = GzEncoder::new(Vec::new(), Compression::fast());
    let state = Some((body.into_data_stream(), enc));
    let stream = futures_util::stream::unfold(state, |state| async move {
        let (mut data, mut enc) = state?;
        loop {
            let out = match data.next().await {
                Some(Ok(chunk)) => match enc.write_all(&chunk) {
                    Ok(()) => std::mem::take(enc.get_mut()),
                    Err(e) => return Some((Err(e), None)),
                },
                Some(Err(e)) => return Some((Err(std::io::Error::other(e)), None)),
                None => return Some((enc.finish().map(Bytes::from), None)),
            };
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), Some((data, enc))));
            }
        }
    });
    Body::from_stream(stream)
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

    fn json_response(body: Body) -> Response {
        let mut r = Response::new(body);
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }

    /// Decompress a body as it streams, counting bytes and checking each against `want`.
    async fn gunzip_len(body: Body, want: impl Fn(usize) -> u8) -> usize {
        struct Check<F>(usize, F);
        impl<F: Fn(usize) -> u8> std::io::Write for Check<F> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                for (i, &x) in b.iter().enumerate() {
                    assert_eq!(x, (self.1)(self.0 + i), "byte {}", self.0 + i);
                }
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut dec = flate2::write::GzDecoder::new(Check(0, want));
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            dec.write_all(&chunk.unwrap()).unwrap();
        }
        dec.try_finish().unwrap();
        dec.get_ref().0
    }

    #[tokio::test]
    async fn bodies_over_64_mib_are_compressed_whole() {
        // 65 MiB in 1 MiB chunks, of unknown length: these used to become empty 200s.
        const CHUNK: usize = 1 << 20;
        let byte = |i: usize| b"0123456789,"[i % 11];
        let chunks = (0..65).map(move |c| {
            Ok::<_, std::io::Error>(Bytes::from(
                (0..CHUNK).map(|i| byte(c * CHUNK + i)).collect::<Vec<u8>>(),
            ))
        });
        let resp = compress(json_response(Body::from_stream(futures_util::stream::iter(chunks))));
        assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gunzip_len(resp.into_body(), byte).await, 65 * CHUNK);
    }

    #[tokio::test]
    async fn small_bodies_and_other_types_pass_through() {
        let resp = compress(json_response(Body::from("{}")));
        assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
        let body = vec![b'a'; 4096];
        let resp = compress(json_response(Body::from(body.clone())));
        assert_eq!(gunzip_len(resp.into_body(), |_| b'a').await, 4096);
        let mut png = Response::new(Body::from(body));
        png.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert!(compress(png).headers().get(header::CONTENT_ENCODING).is_none());
    }
}
