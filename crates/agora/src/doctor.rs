//! `agora doctor`: what would stop agora from starting, or lose data once it runs, found before
//! it happens — the data directory (there, a directory, writable, a format this release reads),
//! free space against the write reserve, the clock against the data already written, the
//! listening ports, and the certificates (readable, matching their key, not expired).
//!
//! Run it as the service's user (`sudo -u agora agora doctor --config /etc/agora/agora.toml`):
//! permissions are checked for whoever runs it. It changes nothing.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works now, needs attention (a certificate expiring within three weeks, little room).
    Warn,
    /// agora would not start, or would refuse writes or lose them.
    Error,
}

/// One thing checked.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked (`data directory`, `free space`, `https certificate`…).
    pub topic: String,
    /// What was found, and for a problem, what to do.
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok   ",
            Level::Warn => "WARN ",
            Level::Error => "ERROR",
        };
        write!(f, "{tag} {}: {}", self.topic, self.text)
    }
}

/// Everything found.
#[derive(Debug, Default)]
pub struct Report {
    /// In the order checked.
    pub findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, topic: impl Into<String>, text: impl Into<String>) {
        self.findings.push(Finding { level, topic: topic.into(), text: text.into() });
    }

    /// Whether something would stop agora or lose data.
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Error)
    }

    /// One line: how many problems.
    pub fn summary(&self) -> String {
        let n = |l| self.findings.iter().filter(|f| f.level == l).count();
        match (n(Level::Error), n(Level::Warn)) {
            (0, 0) => "all checks passed".into(),
            (0, w) => format!("no error, {w} warning(s)"),
            (e, w) => format!("{e} error(s), {w} warning(s): agora would not work as configured"),
        }
    }
}

/// Certificates expiring within this time are a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(21 * 86_400);
/// Files of the data directory this far in the future mean the clock went back.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(300);

/// Check `cfg` and its data directory.
pub async fn check(cfg: &Config) -> Report {
    let mut r = Report::default();
    r.add(Level::Ok, "agora", format!("{} (commit {})", crate::VERSION, crate::COMMIT));
    let data_ok = data_dir(&mut r, &cfg.data_dir);
    if data_ok {
        free_space(&mut r, &cfg.data_dir, cfg.storage.min_free_mib << 20);
        clock(&mut r, &cfg.data_dir);
    }
    ports(&mut r, cfg).await;
    certificates(&mut r, cfg);
    r
}

fn data_dir(r: &mut Report, dir: &Path) -> bool {
    let topic = "data directory";
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Created at first start, if its parent lets us.
            let parent =
                dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            return match writable(parent) {
                Ok(()) => {
                    r.add(
                        Level::Ok,
                        topic,
                        format!("{} does not exist yet; agora will create it", dir.display()),
                    );
                    false
                }
                Err(e) => {
                    r.add(
                        Level::Error,
                        topic,
                        format!(
                            "{} does not exist and cannot be created in {}: {e}",
                            dir.display(),
                            parent.display()
                        ),
                    );
                    false
                }
            };
        }
        Err(e) => {
            r.add(Level::Error, topic, format!("cannot read {}: {e}", dir.display()));
            return false;
        }
    };
    if !meta.is_dir() {
        r.add(
            Level::Error,
            topic,
            format!(
                "{} is not a directory: point data_dir (or --data) at a directory",
                dir.display()
            ),
        );
        return false;
    }
    if let Err(e) = writable(dir) {
        r.add(
            Level::Error,
            topic,
            format!(
                "{} is not writable by this user: {e} (run doctor as the service's user; the package's is agora: chown -R agora:agora {})",
                dir.display(),
                dir.display()
            ),
        );
        return false;
    }
    // Files agora rewrites must be writable too (a restore run as root leaves them to root).
    let mut foreign = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("engine"), dir.join("engine").join("wal")] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_file() && std::fs::OpenOptions::new().append(true).open(&p).is_err() {
                foreign.push(p.display().to_string());
            }
        }
    }
    if !foreign.is_empty() {
        r.add(
            Level::Error,
            topic,
            format!(
                "{} file(s) not writable by this user, first {}: chown them to the service's user",
                foreign.len(),
                foreign[0]
            ),
        );
        return false;
    }
    match agora_store::format::read(dir) {
        Ok(Some(v)) if v > agora_store::format::CURRENT => {
            r.add(
                Level::Error,
                topic,
                format!(
                    "{} was written by a newer agora (format {v}); this release reads formats 1 to {}: install the newer release again, or restore a backup this release made",
                    dir.display(),
                    agora_store::format::CURRENT
                ),
            );
            return false;
        }
        Ok(Some(v)) => r.add(Level::Ok, topic, format!("{} (format {v}, writable)", dir.display())),
        Ok(None) => r.add(Level::Ok, topic, format!("{} (empty, writable)", dir.display())),
        Err(e) => {
            r.add(Level::Error, topic, format!("{e}"));
            return false;
        }
    }
    true
}

/// Whether a file can be created in `dir` (and removed).
fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".agora-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn free_space(r: &mut Report, dir: &Path, reserve: u64) {
    let topic = "free space";
    let st = match rustix::fs::statvfs(dir) {
        Ok(s) => s,
        Err(e) => {
            r.add(
                Level::Warn,
                topic,
                format!("cannot measure the free space of {}: {e}", dir.display()),
            );
            return;
        }
    };
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let mib = |b: u64| b >> 20;
    if free <= reserve {
        r.add(
            Level::Error,
            topic,
            format!(
                "{} MiB free, below the reserve of {} MiB ([storage] min_free_mib): writes would be refused; free space or lower the reserve",
                mib(free),
                mib(reserve)
            ),
        );
    } else if free < reserve.saturating_mul(4) {
        r.add(
            Level::Warn,
            topic,
            format!(
                "{} MiB free, less than four times the reserve of {} MiB",
                mib(free),
                mib(reserve)
            ),
        );
    } else {
        r.add(Level::Ok, topic, format!("{} MiB free (reserve {} MiB)", mib(free), mib(reserve)));
    }
}

/// The clock against the data directory: a file written "in the future" means the clock went
/// back since (a lost RTC, NTP not running), and points would be stored out of order with
/// the wrong times.
fn clock(r: &mut Report, dir: &Path) {
    let topic = "clock";
    let now = SystemTime::now();
    let mut latest: Option<(SystemTime, String)> = None;
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() && depth < 3 {
                stack.push((e.path(), depth + 1));
            }
            if let Ok(t) = m.modified()
                && latest.as_ref().is_none_or(|(l, _)| t > *l)
            {
                latest = Some((t, e.path().display().to_string()));
            }
        }
    }
    match latest {
        Some((t, file)) if t > now + CLOCK_TOLERANCE => {
            let ahead = t.duration_since(now).unwrap_or_default().as_secs();
            r.add(
                Level::Error,
                topic,
                format!(
                    "the system clock is {ahead} s behind the data: {file} was written later than now; set the clock right (timedatectl set-ntp true) before starting agora"
                ),
            );
        }
        _ => {
            let utc = chrono::DateTime::<chrono::Utc>::from(now);
            r.add(
                Level::Ok,
                topic,
                format!("{} UTC, not behind the data", utc.format("%Y-%m-%d %H:%M:%S")),
            );
        }
    }
}

async fn ports(r: &mut Report, cfg: &Config) {
    let mut wanted: Vec<(&str, SocketAddr)> = vec![("HTTP", cfg.http)];
    if let Some(from) = cfg.https.as_ref().and_then(|h| h.redirect_from) {
        wanted.push(("HTTP redirect", from));
    }
    if cfg.mqtt.broker.enabled {
        if cfg.mqtt.broker.plain {
            wanted.push(("MQTT", cfg.mqtt.broker.listen));
        }
        if let Some(t) = &cfg.mqtt.broker.tls {
            wanted.push(("MQTT over TLS", t.listen));
        }
    }
    // When agora already runs (its HTTP address answers its health check), its other ports
    // are taken by it too.
    let mut running = false;
    for (name, addr) in wanted {
        let topic = format!("{name} port");
        match std::net::TcpListener::bind(addr) {
            Ok(_) => r.add(Level::Ok, topic, format!("{addr} is free")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if name == "HTTP" && agora_answers(addr, cfg.https.is_some()).await {
                    running = true;
                    r.add(Level::Ok, topic, format!("{addr} is agora's, already running"));
                } else if running {
                    r.add(Level::Ok, topic, format!("{addr} is in use, by the agora already running"));
                } else {
                    r.add(
                        Level::Error,
                        topic,
                        format!("{addr} is taken by another program: stop it, or choose another address in the configuration (ss -ltnp shows who holds it)"),
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => r.add(
                Level::Error,
                topic,
                format!("{addr} needs privileges (a port below 1024): the packaged service has CAP_NET_BIND_SERVICE; elsewhere choose a port above 1023"),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => r.add(
                Level::Error,
                topic,
                format!("{addr} is not an address of this machine"),
            ),
            Err(e) => r.add(Level::Error, topic, format!("cannot listen on {addr}: {e}")),
        }
    }
}

/// Whether agora itself holds the HTTP address (its health check answers).
async fn agora_answers(addr: SocketAddr, https: bool) -> bool {
    let scheme = if https { "https" } else { "http" };
    let host =
        if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        // Whether it is agora, not whether its certificate names 127.0.0.1.
        .danger_accept_invalid_certs(true)
        .build()
    else {
        return false;
    };
    match client.get(format!("{scheme}://{host}:{}/healthz", addr.port())).send().await {
        Ok(resp) => resp.status().is_success(),
        Err(_) => false,
    }
}

fn certificates(r: &mut Report, cfg: &Config) {
    let mut sets = Vec::new();
    if let Some(h) = &cfg.https {
        sets.push(("https certificate", h.files()));
    }
    match cfg.mqtt_tls_files() {
        Ok(Some((_, files))) => sets.push(("mqtts certificate", files)),
        Ok(None) => {}
        Err(e) => r.add(Level::Error, "mqtts certificate", format!("{e:#}")),
    }
    let now = chrono::Utc::now().timestamp();
    for (topic, files) in sets {
        let (expiry, cn) = match agora_ingest::tls::inspect(&files.cert) {
            Ok(x) => x,
            Err(e) => {
                r.add(Level::Error, topic, e);
                continue;
            }
        };
        let expired = expiry.is_some_and(|t| t <= now);
        if !expired && let Err(e) = agora_ingest::tls::key_matches(&files.cert, &files.key) {
            r.add(Level::Error, topic, e);
            continue;
        }
        let name = cn.map(|c| format!(" for {c}")).unwrap_or_default();
        let when = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        };
        match expiry {
            Some(t) if t <= now => r.add(
                Level::Error,
                topic,
                format!("{}{name} expired on {}: renew it (agora reloads it by itself, or on systemctl reload agora)", files.cert.display(), when(t)),
            ),
            Some(t) if t - now < EXPIRY_WARNING.as_secs() as i64 => r.add(
                Level::Warn,
                topic,
                format!("{}{name} expires on {} ({} days): renew it soon", files.cert.display(), when(t), (t - now) / 86_400),
            ),
            Some(t) => r.add(
                Level::Ok,
                topic,
                format!("{}{name}, key matching, valid until {}", files.cert.display(), when(t)),
            ),
            None => r.add(Level::Warn, topic, format!("{}: expiry date not readable", files.cert.display())),
        }
        if let Some(ca) = &files.client_ca {
            let ok = std::fs::read(ca).map_err(|e| e.to_string()).and_then(|pem| {
                if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    Ok(())
                } else {
                    Err("no PEM certificate in it".into())
                }
            });
            match ok {
                Ok(()) => r.add(Level::Ok, "client authority", ca.display().to_string()),
                Err(e) => r.add(Level::Error, "client authority", format!("{}: {e}", ca.display())),
            }
        }
    }
}
