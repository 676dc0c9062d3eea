//! `agora bench --only-fleet`: a fleet shaped like a real city's, sent as InfluxDB line protocol
//! by the same client to agora and to InfluxDB 1.6 (Debian's `influxdb`), one after the other in
//! the same run, each server in a process of its own with durable writes, so that the figures
//! (points per second, CPU per point, cores busy, bytes on disk) compare like with like.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// One kind of device in the fleet: how many, and the fields each of its lines carries.
struct Kind {
    measurement: &'static str,
    count: usize,
    fields: &'static [Field],
}

/// How a field's values are drawn: a float with one decimal around `base` (± `swing`), or a
/// count (line protocol integer).
#[derive(Clone, Copy)]
enum Field {
    Float(&'static str, f64, f64),
    Count(&'static str, u32),
}

/// The fleet of issue 18: 1,360 devices of seven kinds on four places of one commune, 1–6
/// fields per line (1.76 on average).
const FLEET: &[Kind] = &[
    Kind {
        measurement: "air_quality",
        count: 80,
        fields: &[
            Field::Float("pm10", 18.0, 8.0),
            Field::Float("pm2_5", 10.0, 5.0),
            Field::Float("no2", 30.0, 15.0),
            Field::Float("o3", 60.0, 20.0),
            Field::Float("temperature", 16.0, 6.0),
            Field::Float("relative_humidity", 60.0, 15.0),
        ],
    },
    Kind {
        measurement: "weather",
        count: 40,
        fields: &[
            Field::Float("temperature", 16.0, 6.0),
            Field::Float("relative_humidity", 60.0, 15.0),
            Field::Float("wind_speed", 3.0, 2.0),
        ],
    },
    Kind {
        measurement: "noise",
        count: 150,
        fields: &[Field::Float("laeq", 55.0, 10.0), Field::Float("lamax", 70.0, 12.0)],
    },
    Kind {
        measurement: "pedestrian_counter",
        count: 150,
        fields: &[Field::Count("people_in", 30), Field::Count("people_out", 30)],
    },
    Kind {
        measurement: "soil_moisture",
        count: 260,
        fields: &[
            Field::Float("soil_moisture", 25.0, 5.0),
            Field::Float("soil_temperature", 14.0, 4.0),
        ],
    },
    Kind { measurement: "streetlight", count: 430, fields: &[Field::Float("power_w", 40.0, 30.0)] },
    Kind {
        measurement: "waste_container",
        count: 250,
        fields: &[Field::Float("fill_level", 50.0, 40.0)],
    },
];

const PLACES: [&str; 4] = ["hotel-de-ville", "place-des-precheurs", "cours-mirabeau", "rotonde"];

/// The fleet's lines for `minutes` minutes from `t0` (seconds), in time order (every device at
/// each minute, as a city's fleet reports), cut into batches of `batch_lines`; and the number of
/// points (fields) they carry.
pub fn fleet_batches(minutes: usize, batch_lines: usize, t0: i64) -> (Vec<bytes::Bytes>, usize) {
    use std::fmt::Write;
    let mut batches = Vec::new();
    let mut points = 0;
    let mut body = String::with_capacity(batch_lines * 80);
    let mut lines = 0;
    // A cheap deterministic noise (no random crate): an xorshift per run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for m in 0..minutes {
        let ts = t0 + m as i64 * 60;
        let day = (m as f64 / 1440.0 * std::f64::consts::TAU).sin();
        for kind in FLEET {
            for d in 0..kind.count {
                let place = PLACES[d % PLACES.len()];
                let _ = write!(
                    body,
                    "{},device={}-{d:04},site={place} ",
                    kind.measurement, kind.measurement
                );
                for (i, f) in kind.fields.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    match *f {
                        Field::Float(name, base, swing) => {
                            let v = base + swing * (0.7 * day + 0.3 * (2.0 * noise() - 1.0));
                            let _ = write!(body, "{name}={:.1}", v.max(0.0));
                        }
                        Field::Count(name, mean) => {
                            let v = (f64::from(mean) * (1.0 + 0.8 * day) * noise()).round();
                            let _ = write!(body, "{name}={}i", v as i64);
                        }
                    }
                    points += 1;
                }
                let _ = writeln!(body, " {ts}");
                lines += 1;
                if lines == batch_lines {
                    batches.push(bytes::Bytes::from(std::mem::take(&mut body)));
                    body.reserve(batch_lines * 80);
                    lines = 0;
                }
            }
        }
    }
    if !body.is_empty() {
        batches.push(bytes::Bytes::from(body));
    }
    (batches, points)
}

/// What one server did with the fleet.
struct Run {
    secs: f64,
    /// Points per second over each tenth of the batches, in order.
    deciles: Vec<f64>,
    /// Resident memory sampled every half second (MiB): lowest and highest after the first
    /// tenth of the run.
    rss_range: (f64, f64),
    cpu: Duration,
    peak_rss_mib: f64,
    dir_bytes: u64,
    /// Bytes of each entry at the top of the data directory, largest first.
    dir_parts: Vec<(String, u64)>,
}

/// A server under test: a child process, its address, and where it keeps its data.
struct Server {
    child: Child,
    write_url: String,
    auth: Option<String>,
    data: PathBuf,
}

impl Server {
    fn cpu(&self) -> Duration {
        process_cpu(self.child.id()).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after a minute).
    fn stop(&mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        anyhow::bail!("the server did not stop within a minute of SIGTERM")
    }
}

/// A server left running by an error is killed, not left behind.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run the fleet workload against agora then InfluxDB, and print both.
pub async fn bench_fleet(
    dir: &Path,
    days: f64,
    writers: usize,
    batch_lines: usize,
    with_influxdb: bool,
) -> anyhow::Result<()> {
    let minutes = (days * 1440.0).round() as usize;
    let (batches, points) = fleet_batches(minutes, batch_lines, 1_767_225_600);
    let devices: usize = FLEET.iter().map(|k| k.count).sum();
    let lines = devices * minutes;
    println!(
        "fleet: {devices} devices of {} kinds, {minutes} minutes, {lines} lines, {points} points ({:.2} fields per line), {} batches of {batch_lines} lines, {writers} writers",
        FLEET.len(),
        points as f64 / lines as f64,
        batches.len()
    );
    let batches = Arc::new(batches);

    let agora = start_agora(&dir.join("agora")).await?;
    let a = drive(agora, batches.clone(), writers).await.context("agora")?;
    let influx_dir = dir.join("influxdb");
    let influx = if with_influxdb {
        match start_influxdb(&influx_dir).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("InfluxDB not run: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let i = match influx {
        Some(s) => Some(drive(s, batches.clone(), writers).await.context("InfluxDB")?),
        None => None,
    };

    let per_s = |r: &Run| points as f64 / r.secs;
    let ns = |r: &Run| r.cpu.as_nanos() as f64 / points as f64;
    let cores = |r: &Run| r.cpu.as_secs_f64() / r.secs;
    let bpp = |r: &Run| r.dir_bytes as f64 / points as f64;
    let two = |f: &dyn Fn(&Run) -> String, target: &str, name: &str| {
        crate::bench::row(&format!("{name}, agora"), f(&a), target);
        if let Some(i) = &i {
            crate::bench::row(&format!("{name}, InfluxDB 1.6"), f(i), "—");
        }
    };
    two(&|r| format!("{:.0} points/s", per_s(r)), "—", "fleet ingest");
    if let Some(i) = &i {
        crate::bench::row(
            "fleet ingest, agora ÷ InfluxDB",
            format!("{:.2}×", per_s(&a) / per_s(i)),
            "≥ 3× (goal 6×)",
        );
    }
    two(&|r| format!("{:.0} ns", ns(r)), "≤ 400 ns", "CPU per point (server process)");
    two(&|r| format!("{:.2} of 2", cores(r)), "—", "cores busy during ingest");
    two(&|r| format!("{:.0} MiB", r.peak_rss_mib), "≤ 300 MB", "peak RSS (server process)");
    two(
        &|r| format!("{:.3} B/point", bpp(r)),
        if days <= 1.0 { "≤ 1.2" } else { "—" },
        "data directory after a clean shutdown",
    );
    let parts = |r: &Run| {
        let per_point = |b: u64| b as f64 / points as f64;
        r.dir_parts
            .iter()
            .map(|(name, b)| format!("{name} {:.3}", per_point(*b)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    println!("agora, data directory in B/point: {}", parts(&a));
    // Sustained ingest: does the rate sag when flushes and compactions run, does memory grow?
    let m = |v: f64| format!("{:.2}", v / 1e6);
    println!(
        "agora, M points/s per tenth of the run: {}",
        a.deciles.iter().map(|d| m(*d)).collect::<Vec<_>>().join(" · ")
    );
    if a.rss_range.1 > 0.0 {
        println!(
            "agora, resident memory after the first tenth: {:.0}–{:.0} MiB",
            a.rss_range.0, a.rss_range.1
        );
    }
    Ok(())
}

/// Send every batch, `writers` at a time, and measure the server.
async fn drive(
    mut server: Server,
    batches: Arc<Vec<bytes::Bytes>>,
    writers: usize,
) -> anyhow::Result<Run> {
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(parking_lot::Mutex::new(Vec::with_capacity(batches.len())));
    let cpu0 = server.cpu();
    let started = Instant::now();
    let pid = server.child.id();
    let sampler = {
        let (done, total) = (done.clone(), batches.len());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(rss) = rss_mib(pid) else { break };
                let progress = done.lock().len();
                if progress >= total {
                    break;
                }
                if progress * 10 >= total {
                    samples.push(rss);
                }
            }
            samples
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (client, batches, next) = (client.clone(), batches.clone(), next.clone());
        let done = done.clone();
        let (url, auth) = (server.write_url.clone(), server.auth.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = batches.get(n) else { return anyhow::Ok(()) };
                let mut req = client.post(&url).body(body.clone());
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                let r = req.send().await?;
                let status = r.status();
                if status.as_u16() != 204 {
                    let text = r.text().await.unwrap_or_default();
                    anyhow::bail!(
                        "write failed: {status}: {}",
                        text.chars().take(300).collect::<String>()
                    );
                }
                done.lock().push((n, Instant::now()));
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = server.cpu().saturating_sub(cpu0);
    let samples = sampler.await.unwrap_or_default();
    let rss_range =
        samples.iter().fold((f64::INFINITY, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    // Throughput per tenth of the batches, by completion time.
    let mut times: Vec<Instant> = done.lock().iter().map(|(_, t)| *t).collect();
    times.sort();
    let points_per_batch = batch_points(&batches);
    let tenth = times.len().div_ceil(10).max(1);
    let mut deciles = Vec::new();
    let mut from = started;
    for chunk in times.chunks(tenth) {
        let to = *chunk.last().expect("non-empty");
        deciles.push(chunk.len() as f64 * points_per_batch / (to - from).as_secs_f64().max(1e-9));
        from = to;
    }
    let peak_rss_mib = peak_rss_mib(server.child.id()).unwrap_or(f64::NAN);
    let data = server.data.clone();
    server.stop()?;
    let mut dir_parts: Vec<(String, u64)> = std::fs::read_dir(&data)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let p = e.path();
                    let bytes = if p.is_dir() {
                        dir_bytes(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    };
                    (e.file_name().to_string_lossy().into_owned(), bytes)
                })
                .collect()
        })
        .unwrap_or_default();
    dir_parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    Ok(Run { secs, deciles, rss_range, cpu, peak_rss_mib, dir_bytes: dir_bytes(&data), dir_parts })
}

/// Points per batch, on average (fields of every line of every batch).
fn batch_points(batches: &[bytes::Bytes]) -> f64 {
    let sample = batches.len().min(20);
    let fields: usize = batches[..sample]
        .iter()
        .map(|b| {
            std::str::from_utf8(b)
                .unwrap_or("")
                .lines()
                .map(|l| l.split(' ').nth(1).map_or(0, |f| f.split(',').count()))
                .sum::<usize>()
        })
        .sum();
    fields as f64 / sample.max(1) as f64
}

/// Resident memory of a process now, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// agora in a child process (this very binary), durable writes, no rate limits, logs to a file.
async fn start_agora(dir: &Path) -> anyhow::Result<Server> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let data = dir.join("data");
    let config = dir.join("agora.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nhttp = \"127.0.0.1:{port}\"\n\n[storage]\nfsync = true\n\n\
             [mqtt.broker]\nenabled = false\n\n[limits.rate]\ningest_per_token = 0.0\n\
             ingest_mib_per_token = 0.0\ningest_per_address = 0.0\n"
        ),
    )?;
    let token = "fleet-bench-admin-token-0123456789abcdef";
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--config"])
        .arg(&config)
        .env("AGORA_ADMIN_TOKEN", token)
        .env("AGORA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agora.log"))?)
        .spawn()
        .context("starting agora serve")?;
    let base = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        write_url: format!("{base}/api/v2/write?precision=s"),
        auth: Some(format!("Token {token}")),
        data,
    };
    wait_ready(&format!("{base}/healthz")).await?;
    // The fleet's places, as a city declares them before its devices report.
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/api/v1/communes"))
        .bearer_auth(token)
        .json(&serde_json::json!({"insee": "13001", "name": "Aix-en-Provence"}))
        .send()
        .await?
        .error_for_status()?;
    for place in PLACES {
        client
            .post(format!("{base}/api/v1/sites"))
            .bearer_auth(token)
            .json(&serde_json::json!({"id": place, "commune": "13001", "name": place}))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(server)
}

/// InfluxDB 1.6 in a child process on free ports, its WAL fsynced on every write (the default
/// `wal-fsync-delay = "0s"`, written out), internal monitoring and reporting off.
async fn start_influxdb(dir: &Path) -> anyhow::Result<Server> {
    let influxd = ["/usr/bin/influxd", "/usr/local/bin/influxd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("influxd not found (Debian: apt-get install -y influxdb)")?;
    std::fs::create_dir_all(dir)?;
    let (http, rpc) = (free_port()?, free_port()?);
    let config = dir.join("influxdb.conf");
    let d = dir.display();
    std::fs::write(
        &config,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\n\
             [meta]\n  dir = \"{d}/meta\"\n\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  wal-fsync-delay = \"0s\"\n  \
             query-log-enabled = false\n\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\n\
             [monitor]\n  store-enabled = false\n\n\
             [continuous_queries]\n  enabled = false\n\n\
             [logging]\n  level = \"warn\"\n"
        ),
    )?;
    let child = Command::new(influxd)
        .args(["run", "-config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("influxd.log"))?)
        .spawn()
        .context("starting influxd")?;
    let base = format!("http://127.0.0.1:{http}");
    let server = Server {
        child,
        write_url: format!("{base}/write?db=fleet&precision=s"),
        auth: None,
        data: dir.to_path_buf(),
    };
    wait_ready(&format!("{base}/ping")).await?;
    reqwest::Client::new()
        .post(format!("{base}/query"))
        .form(&[("q", "CREATE DATABASE fleet")])
        .send()
        .await?
        .error_for_status()?;
    Ok(server)
}

async fn wait_ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{url} did not answer within a minute")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// User + system CPU time of a process, from `/proc/<pid>/stat` (clock ticks of 10 ms, the
/// Linux default).
fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) — utime and stime are the 14th and
    // 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The peak resident memory of a process (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_has_the_shape_of_issue_18() {
        let devices: usize = FLEET.iter().map(|k| k.count).sum();
        assert_eq!(devices, 1360);
        assert_eq!(FLEET.len(), 7);
        let (batches, points) = fleet_batches(10, 5000, 0);
        let text: String = batches.iter().map(|b| std::str::from_utf8(b).unwrap()).collect();
        assert_eq!(text.lines().count(), 13_600);
        let fields: usize =
            text.lines().map(|l| l.split(' ').nth(1).unwrap().split(',').count()).sum();
        assert_eq!(fields, points);
        let per_line = points as f64 / 13_600.0;
        assert!((1.70..1.80).contains(&per_line), "{per_line}");
        // Every line parses as agora's line protocol.
        let decoded =
            agora_ingest::line_protocol::decode(text.as_bytes(), agora_model::Precision::Seconds);
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors.first());
        assert_eq!(decoded.records.len(), 13_600);
    }
}
