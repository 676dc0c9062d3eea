//! A small client for S3-compatible object storage (AWS S3, MinIO, Scaleway, OVHcloud…): the five
//! operations backups need — put, get, head, list and delete objects — signed with AWS
//! Signature Version 4, path-style (`{endpoint}/{bucket}/{key}`), over reqwest. Bodies are
//! streamed both ways; an upload is signed with its SHA-256 (which backups know already), so the
//! store checks every object as it arrives.
//!
//! Hand-written rather than a full SDK: SigV4 is stable and small, and the SDKs would add dozens
//! of crates to a build that runs on two cores (see the dependency notes in the repository).

use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The SHA-256 of an empty body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `[backup.s3]` in `agora.toml`: a bucket the backup repository is mirrored to.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The service's URL, e.g. `https://s3.fr-par.scw.cloud` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Its region (`us-east-1` when the service has none).
    #[serde(default = "default_region")]
    pub region: String,
    /// The bucket.
    pub bucket: String,
    /// A prefix inside it (`agora/aix`), without a trailing slash.
    #[serde(default)]
    pub prefix: String,
    /// The access key id.
    pub access_key: String,
    /// The secret key (or `AGORA_S3_SECRET_KEY`).
    #[serde(default)]
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "********"))
            .finish()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Percent-encode as SigV4 wants: unreserved characters kept, `/` kept in paths only.
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// A request to sign.
#[derive(Debug)]
pub struct ToSign<'a> {
    /// `GET`, `PUT`…
    pub method: &'a str,
    /// The host header (with its port when not the scheme's default).
    pub host: &'a str,
    /// The path, already encoded.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    /// Other headers to sign (lower-case names), besides host, x-amz-date and
    /// x-amz-content-sha256.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_sha256: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// The `Authorization` header of a request (AWS Signature Version 4, service `s3`), and the
/// canonical query string to send.
pub fn sign(r: &ToSign<'_>, region: &str, access_key: &str, secret: &str) -> (String, String) {
    let mut query: Vec<(String, String)> =
        r.query.iter().map(|(k, v)| (encode(k, false), encode(v, false))).collect();
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), r.host.to_owned()),
        ("x-amz-content-sha256".into(), r.payload_sha256.to_owned()),
        ("x-amz-date".into(), r.amz_date.to_owned()),
    ];
    headers.extend(r.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned())));
    headers.sort();
    let signed = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed}\n{}",
        r.method, r.path, r.payload_sha256
    );
    let date = &r.amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        r.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = ["s3", "aws4_request"]
        .iter()
        .fold(hmac(&hmac(format!("AWS4{secret}").as_bytes(), date), region), |k, part| {
            hmac(&k, part)
        });
    let signature = hex::encode(hmac(&key, &to_sign));
    (
        format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        ),
        query,
    )
}

/// An object of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its key, without the configured prefix.
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// A bucket (and prefix) to put objects in.
#[derive(Clone)]
pub struct Bucket {
    cfg: S3Config,
    secret: String,
    base: reqwest::Url,
    http: reqwest::Client,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Bucket {
    /// A client of the bucket of `cfg`.
    pub fn new(cfg: &S3Config) -> anyhow::Result<Self> {
        let secret = cfg
            .secret_key
            .clone()
            .or_else(|| std::env::var("AGORA_S3_SECRET_KEY").ok())
            .filter(|s| !s.is_empty())
            .context("[backup.s3] needs secret_key (or AGORA_S3_SECRET_KEY)")?;
        let base = reqwest::Url::parse(&cfg.endpoint)
            .with_context(|| format!("[backup.s3] endpoint {:?} is not a URL", cfg.endpoint))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("[backup.s3] endpoint {:?} must be an http(s) URL with a host", cfg.endpoint);
        }
        // No limit on a whole transfer (a year of data is large), only on silence.
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { cfg: cfg.clone(), secret, base, http })
    }

    fn host(&self) -> String {
        let h = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        }
    }

    fn full_key(&self, key: &str) -> String {
        if self.cfg.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.cfg.prefix.trim_end_matches('/'))
        }
    }

    /// A signed request.
    fn request(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        payload_sha256: &str,
    ) -> reqwest::RequestBuilder {
        let mut path = format!("/{}", encode(&self.cfg.bucket, false));
        if let Some(k) = key {
            path.push('/');
            path.push_str(&encode(&self.full_key(k), true));
        }
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let host = self.host();
        let (auth, query) = sign(
            &ToSign {
                method: method.as_str(),
                host: &host,
                path: &path,
                query,
                headers: &[],
                payload_sha256,
                amz_date: &amz_date,
            },
            &self.cfg.region,
            &self.cfg.access_key,
            &self.secret,
        );
        let mut url = self.base.clone();
        url.set_path(&path);
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        self.http
            .request(method, url)
            .header("x-amz-date", amz_date)
            .header("x-amz-content-sha256", payload_sha256)
            .header(reqwest::header::AUTHORIZATION, auth)
    }

    async fn check(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let code = between(&body, "<Code>", "</Code>").unwrap_or_default();
        let message = between(&body, "<Message>", "</Message>").unwrap_or_default();
        bail!("{what}: the object store answered {status} {code} {message}")
    }

    /// Create the bucket (usually made by the provider's console; tests make their own).
    pub async fn create(&self) -> anyhow::Result<()> {
        let resp = self
            .request(reqwest::Method::PUT, None, &[], EMPTY_SHA256)
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.cfg.endpoint))?;
        Self::check(resp, "create bucket").await.map(|_| ())
    }

    /// Upload a file whose SHA-256 is known (the store checks it).
    pub async fn put_file(&self, key: &str, path: &Path, sha256: &str) -> anyhow::Result<()> {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let resp = self
            .request(reqwest::Method::PUT, Some(key), &[], sha256)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.cfg.endpoint))?;
        Self::check(resp, &format!("PUT {key}")).await.map(|_| ())
    }

    /// Download an object to a new file.
    pub async fn get_to_file(&self, key: &str, path: &Path) -> anyhow::Result<u64> {
        use tokio::io::AsyncWriteExt;
        let resp = self
            .request(reqwest::Method::GET, Some(key), &[], EMPTY_SHA256)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.cfg.endpoint))?;
        let mut resp = Self::check(resp, &format!("GET {key}")).await?;
        let mut f = tokio::fs::File::create(path)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut n = 0u64;
        while let Some(chunk) = resp.chunk().await? {
            f.write_all(&chunk).await?;
            n += chunk.len() as u64;
        }
        f.sync_all().await?;
        Ok(n)
    }

    /// Delete an object (absent or not).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let resp = self
            .request(reqwest::Method::DELETE, Some(key), &[], EMPTY_SHA256)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.cfg.endpoint))?;
        Self::check(resp, &format!("DELETE {key}")).await.map(|_| ())
    }

    /// Every object under `under` (a key prefix inside the configured prefix).
    pub async fn list(&self, under: &str) -> anyhow::Result<Vec<Object>> {
        let prefix = self.full_key(under);
        let strip = self.full_key("");
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = vec![("list-type", "2"), ("prefix", &prefix)];
            if let Some(t) = &token {
                q.push(("continuation-token", t));
            }
            let resp = self
                .request(reqwest::Method::GET, None, &q, EMPTY_SHA256)
                .send()
                .await
                .with_context(|| format!("cannot reach {}", self.cfg.endpoint))?;
            let body = Self::check(resp, "list").await?.text().await?;
            for item in body.split("<Contents>").skip(1) {
                let key = between(item, "<Key>", "</Key>").map(unescape).unwrap_or_default();
                let size =
                    between(item, "<Size>", "</Size>").and_then(|s| s.parse().ok()).unwrap_or(0);
                let key = key.strip_prefix(&strip).unwrap_or(&key).to_owned();
                out.push(Object { key, size });
            }
            if between(&body, "<IsTruncated>", "</IsTruncated>") == Some("true") {
                token = between(&body, "<NextContinuationToken>", "</NextContinuationToken>")
                    .map(unescape);
                if token.is_none() {
                    bail!("list: a truncated answer without a continuation token");
                }
            } else {
                return Ok(out);
            }
        }
    }
}

/// The text between two markers.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

/// XML's five escapes (keys of backups are plain, but a prefix may not be).
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's worked example "GET Object" of Signature Version 4 for S3 (sig-v4-header-based-auth):
    /// the published signature, computed independently of this code.
    #[test]
    fn the_published_get_object_example_signs_alike() {
        let (auth, _) = sign(
            &ToSign {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                headers: &[("range", "bytes=0-9")],
                payload_sha256: EMPTY_SHA256,
                amz_date: "20130524T000000Z",
            },
            "us-east-1",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn keys_and_queries_are_encoded_once() {
        assert_eq!(encode("backups/2026 x+y.json", true), "backups/2026%20x%2By.json");
        assert_eq!(encode("a/b", false), "a%2Fb");
        let (_, q) = sign(
            &ToSign {
                method: "GET",
                host: "h",
                path: "/b",
                query: &[("prefix", "agora/backups/"), ("list-type", "2")],
                headers: &[],
                payload_sha256: EMPTY_SHA256,
                amz_date: "20260101T000000Z",
            },
            "us-east-1",
            "k",
            "s",
        );
        assert_eq!(q, "list-type=2&prefix=agora%2Fbackups%2F");
        assert!(
            format!(
                "{:?}",
                S3Config {
                    endpoint: "http://x".into(),
                    region: "r".into(),
                    bucket: "b".into(),
                    prefix: String::new(),
                    access_key: "a".into(),
                    secret_key: Some("hidden".into()),
                }
            )
            .contains("********")
        );
    }
}
