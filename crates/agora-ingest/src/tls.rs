//! TLS for agora's own listeners — HTTPS for the API and dashboard, MQTT over TLS for devices —
//! from PEM files (a certificate chain, its private key and, for devices, the authority their
//! client certificates come from).
//!
//! Certificates are reloaded without dropping a connection: each handshake takes the
//! configuration current at that moment, and [`Tls::reload`] swaps it when the files changed (on
//! `SIGHUP`, or when [`Tls::watch`] sees their size or modification time move). Connections
//! already open keep the session they negotiated. A reload that fails (a half-written file, a key
//! that does not match) keeps the previous certificate and says why: a renewal gone wrong never
//! takes the service down.
//!
//! The certificate's expiry and a client certificate's subject are read by the small DER reader
//! at the end of this module (X.509's `notAfter` and the subject's common name, nothing else).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// Where a listener's certificate and key are, and how devices prove who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Authorities of client certificates (PEM); absent: clients present none.
    pub client_ca: Option<PathBuf>,
    /// Refuse a client without a certificate from `client_ca` (otherwise a certificate is
    /// optional and a client may still authenticate with a token).
    pub require_client_cert: bool,
}

/// One listener's TLS configuration, swapped whole when its files change.
#[derive(Debug)]
pub struct Tls {
    name: &'static str,
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    current: RwLock<Loaded>,
}

#[derive(Debug, Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    stamps: Vec<Stamp>,
    not_after: Option<i64>,
}

/// What tells that a file changed: its length and modification time.
type Stamp = Option<(u64, std::time::SystemTime)>;

impl Tls {
    /// Read the files; `name` is how logs and metrics call the listener (`https`, `mqtts`),
    /// `alpn` the protocols offered (`http/1.1`; none for MQTT).
    pub fn load(name: &'static str, files: TlsFiles, alpn: &[&str]) -> Result<Arc<Self>, String> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let loaded = load(&files, &alpn).map_err(|e| format!("TLS for {name}: {e}"))?;
        Ok(Arc::new(Self { name, files, alpn, current: RwLock::new(loaded) }))
    }

    /// The acceptor of the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().config.clone())
    }

    /// The listener's name (`https`, `mqtts`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The files it reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// When the server certificate in use expires (seconds since 1970).
    pub fn not_after(&self) -> Option<i64> {
        self.current.read().not_after
    }

    /// Whether the files differ from those loaded (size or modification time).
    pub fn changed(&self) -> bool {
        self.current.read().stamps != stamps(&self.files)
    }

    /// Read the files again and use them for the next handshakes. On error the certificate in
    /// use stays, and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        match load(&self.files, &self.alpn) {
            Ok(l) => {
                tracing::info!(
                    listener = self.name,
                    not_after = ?l.not_after.and_then(|t| chrono::DateTime::from_timestamp(t, 0)),
                    "TLS certificate reloaded"
                );
                *self.current.write() = l;
                Ok(())
            }
            Err(e) => {
                // Not again at every check: the stamps of the bad files are taken as seen.
                self.current.write().stamps = stamps(&self.files);
                tracing::error!(listener = self.name, error = %e, "TLS certificate not reloaded; the previous one stays in use");
                Err(e)
            }
        }
    }

    /// Reload on `SIGHUP` and whenever the files change (checked every `every`), until the
    /// task is aborted.
    pub fn watch(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        // Registered now, before the task runs: a SIGHUP right after start must not end the
        // process (its default action).
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let signalled = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async { match &mut hup { Some(h) => h.recv().await, None => None } } => true,
                };
                if signalled || self.changed() {
                    let _ = self.reload();
                }
            }
        })
    }
}

fn stamps(files: &TlsFiles) -> Vec<Stamp> {
    let stamp =
        |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
    let mut v = vec![stamp(&files.cert), stamp(&files.key)];
    if let Some(ca) = &files.client_ca {
        v.push(stamp(ca));
    }
    v
}

fn read(what: &str, p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read the {what} {}: {e}", p.display()))
}

fn certificates(what: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(what, p)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} {} is not PEM: {e}", p.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} {} holds no certificate", p.display()));
    }
    Ok(certs)
}

fn load(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<Loaded, String> {
    // Stamps first: a file replaced while being read is read again at the next check.
    let stamps = stamps(files);
    let chain = certificates("certificate", &files.cert)?;
    let key_pem = read("private key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!("the private key {} is not a PEM private key: {e}", files.key.display())
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates("client authority", ca)? {
                roots.add(c).map_err(|e| {
                    format!("the client authority {} is not usable: {e}", ca.display())
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if files.require_client_cert { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
        }
        None => builder.with_no_client_auth(),
    };
    let not_after = not_after(&chain[0]);
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "the certificate {} and the key {} do not go together: {e}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = alpn.to_vec();
    Ok(Loaded { config: Arc::new(config), stamps, not_after })
}

/// A certificate file's end-entity certificate: its expiry and subject, for `agora doctor`.
pub fn inspect(cert: &Path) -> Result<(Option<i64>, Option<String>), String> {
    let chain = certificates("certificate", cert)?;
    Ok((not_after(&chain[0]), subject_common_name(&chain[0])))
}

/// Whether a key file holds the private key of a certificate file.
pub fn key_matches(cert: &Path, key: &Path) -> Result<(), String> {
    load(
        &TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: None,
            require_client_cert: false,
        },
        &[],
    )
    .map(|_| ())
}

// --- a DER reader for two fields of X.509 (RFC 5280, 4.1) ---

/// One tag-length-value: its tag, its content, and what follows it.
fn tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *buf.first()?;
    let first = *buf.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*buf.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    (end <= buf.len()).then(|| (tag, &buf[head..end], &buf[end..]))
}

/// TBSCertificate's fields up to the subject: (validity, subject).
fn tbs_fields(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, cert, _) = tlv(cert)? else { return None };
    let (0x30, tbs, _) = tlv(cert)? else { return None };
    let mut rest = tbs;
    // version [0] EXPLICIT, absent in v1 certificates
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    let (0x02, _serial, rest) = tlv(rest)? else { return None };
    let (0x30, _signature, rest) = tlv(rest)? else { return None };
    let (0x30, _issuer, rest) = tlv(rest)? else { return None };
    let (0x30, validity, rest) = tlv(rest)? else { return None };
    let (0x30, subject, _) = tlv(rest)? else { return None };
    Some((validity, subject))
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`).
fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let full = match tag {
        0x17 if s.len() == 12 => {
            let yy: u32 = s[..2].parse().ok()?;
            format!("{}{s}", if yy >= 50 { "19" } else { "20" })
        }
        0x18 if s.len() == 14 => s.to_owned(),
        _ => return None,
    };
    chrono::NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// When a DER certificate stops being valid (seconds since 1970).
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let (validity, _) = tbs_fields(cert)?;
    let (_, _, rest) = tlv(validity)?;
    let (tag, v, _) = tlv(rest)?;
    der_time(tag, v)
}

/// The common name (OID 2.5.4.3) of a DER certificate's subject: a device's id in its client
/// certificate.
pub fn subject_common_name(cert: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let (_, mut names) = tbs_fields(cert)?;
    let mut found = None;
    while !names.is_empty() {
        let (0x31, mut set, rest) = tlv(names)? else { return None };
        names = rest;
        while !set.is_empty() {
            let (0x30, pair, after) = tlv(set)? else { return None };
            set = after;
            let (0x06, oid, value) = tlv(pair)? else { return None };
            if oid == CN {
                let (_, v, _) = tlv(value)?;
                // The last common name is the most specific one.
                found = Some(String::from_utf8(v.to_vec()).ok()?);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_times_are_read_or_refused() {
        assert_eq!(tlv(&[0x02, 0x01, 0x05, 0xff]), Some((0x02, &[0x05][..], &[0xff][..])));
        assert_eq!(tlv(&[0x04, 0x81, 0x01, 0x07]), Some((0x04, &[0x07][..], &[][..])));
        assert_eq!(tlv(&[0x04, 0x82, 0x01]), None, "length cut short");
        assert_eq!(tlv(&[0x04, 0x05, 0x01]), None, "content cut short");
        assert_eq!(tlv(&[0x04, 0x80]), None, "indefinite length is not DER");
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(der_time(0x17, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(der_time(0x18, b"20500101000000Z"), Some(2_524_608_000));
        assert_eq!(der_time(0x17, b"4912312359Z"), None);
        assert_eq!(der_time(0x17, b"491231235959+0100"), None);
        assert_eq!(not_after(b"\x30\x03\x02\x01\x01"), None);
        assert_eq!(subject_common_name(&[]), None);
    }

    /// Certificates made by openssl itself: the expiry and the subject read here are those
    /// openssl prints.
    #[test]
    fn expiry_and_subject_match_what_openssl_says() {
        if std::process::Command::new("openssl").arg("version").output().is_err() {
            panic!("openssl is needed (scripts/test.sh installs it)");
        }
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        for (subj, days) in [("/O=Ville/CN=lamp-042", "400"), ("/CN=agora.example.fr/O=Aix", "3")] {
            let ok = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
                .args(["-nodes", "-days", days, "-subj", subj, "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .unwrap();
            assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
            let out = std::process::Command::new("openssl")
                .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
                .arg(&cert)
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let end = text.trim().strip_prefix("notAfter=").unwrap();
            let expected =
                chrono::DateTime::parse_from_str(&end.replace('Z', "+0000"), "%Y-%m-%d %H:%M:%S%z")
                    .unwrap()
                    .timestamp();
            let (exp, cn) = inspect(&cert).unwrap();
            assert_eq!(exp, Some(expected), "{subj}");
            let want = subj.split('/').find_map(|p| p.strip_prefix("CN=")).unwrap();
            assert_eq!(cn.as_deref(), Some(want));
            key_matches(&cert, &key).unwrap();
        }
        // Another key does not match the certificate.
        let other = dir.path().join("other.pem");
        let ok = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
            .arg(&other)
            .output()
            .unwrap();
        assert!(ok.status.success());
        let e = key_matches(&cert, &other).unwrap_err();
        assert!(e.contains("do not go together"), "{e}");
        // Garbage is named.
        std::fs::write(&other, "not a key").unwrap();
        let e = key_matches(&cert, &other).unwrap_err();
        assert!(e.contains("is not a PEM private key"), "{e}");
        let e = inspect(&dir.path().join("missing.pem")).unwrap_err();
        assert!(e.contains("cannot read the certificate"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_renewal_keeps_the_certificate_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let make = |days: &str| {
            let ok = std::process::Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
                .args(["-nodes", "-days", days, "-subj", "/CN=localhost", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .unwrap();
            assert!(ok.status.success());
        };
        make("10");
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
            require_client_cert: false,
        };
        let tls = Tls::load("https", files, &["http/1.1"]).unwrap();
        let first = tls.not_after().unwrap();
        assert!(!tls.changed());
        // A half-written key: refused, the old certificate stays, and it is not retried until
        // the files change again.
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
        assert!(tls.changed());
        assert!(tls.reload().is_err());
        assert_eq!(tls.not_after(), Some(first));
        assert!(!tls.changed());
        // The renewal completed: a certificate valid 20 more days is taken.
        make("30");
        assert!(tls.changed());
        tls.reload().unwrap();
        let second = tls.not_after().unwrap();
        assert!((second - first - 20 * 86_400).abs() < 120, "{first} → {second}");
    }
}
