//! `agora bench`: a reproducible city workload over loopback, printing a table of figures to
//! compare with the targets (BENCHMARKS.md records them with the machine).
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_model::{SeriesId, SystemClock, Timestamp};
use agora_store::catalog::Scope;
use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::demo::{Demo, DemoOptions};
use crate::serve::{self, ServeOptions};

/// Benchmark settings.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Devices of the ingest workload (each line carries 5 fields: 5 series per device).
    #[arg(long, default_value_t = 2_000)]
    pub devices: usize,
    /// Lines per batch.
    #[arg(long, default_value_t = 5_000)]
    pub batch_lines: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 4)]
    pub writers: usize,
    /// Batches each writer sends.
    #[arg(long, default_value_t = 40)]
    pub batches: usize,
    /// Days of demo-city history for the compression and start-up figures.
    #[arg(long, default_value_t = 7)]
    pub demo_days: u32,
    /// Keep the data directory (printed) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn row(name: &str, value: String, target: &str) {
    println!("| {name:<52} | {value:>16} | {target:<14} |");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Run the benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    println!("agora bench — data in {}", dir.display());
    println!("| {:<52} | {:>16} | {:<14} |", "measure", "result", "target");
    println!("|{:-<54}|{:-<18}|{:-<16}|", "", "", "");

    // 1. Ingest: line protocol over loopback HTTP, durable writes, concurrent writers.
    let mut config =
        Config { data_dir: dir.join("ingest"), http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.storage.fsync = true;
    let server =
        serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) })
            .await?;
    let (_, token) = server.state.catalog.create_token("bench", Scope::Ingest, None).await?;
    let url = format!("http://{}/api/v2/write?precision=s", server.addr);
    let client = reqwest::Client::new();
    let t0: i64 = 1_767_225_600;
    let bodies: Vec<Vec<String>> = (0..args.writers)
        .map(|w| {
            (0..args.batches)
                .map(|b| {
                    let mut s = String::with_capacity(args.batch_lines * 110);
                    for l in 0..args.batch_lines {
                        let n = (b * args.batch_lines + l) % args.devices;
                        let step = (b * args.batch_lines + l) / args.devices;
                        let ts = t0 + ((w * args.batches * args.batch_lines / args.devices.max(1) + step) as i64) * 60;
                        let x = (n * 7 + step * 13) % 100;
                        s.push_str(&format!(
                            "air_quality,device=bench-{n:05} pm10={}.{},no2={}.{},o3={}.{},temperature=1{}.{},relative_humidity=5{}.{} {ts}\n",
                            10 + x / 10, x % 10, 20 + x / 5, x % 10, 40 + x / 3, x % 10, x % 10, x % 7, x % 10, x % 9
                        ));
                    }
                    s
                })
                .collect()
        })
        .collect();
    let points_per_batch = args.batch_lines * 5;
    let total_points = args.writers * args.batches * points_per_batch;
    // Warm up: register the devices and series.
    client
        .post(&url)
        .bearer_auth(&token)
        .body(bodies[0][0].clone())
        .send()
        .await?
        .error_for_status()?;
    let peak_rss = Arc::new(parking_rss());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in bodies {
        let (client, url, token, peak) =
            (client.clone(), url.clone(), token.clone(), peak_rss.clone());
        tasks.push(tokio::spawn(async move {
            for body in w {
                let r = client.post(&url).bearer_auth(&token).body(body).send().await?;
                anyhow::ensure!(r.status().as_u16() == 204, "write failed: {}", r.status());
                peak.observe();
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    row(
        &format!(
            "ingest, line protocol, {} writers × {}-line batches",
            args.writers, args.batch_lines
        ),
        format!("{:.0} points/s", total_points as f64 / secs),
        "≥ 2,000,000",
    );
    row(
        &format!("RSS while ingesting, {} series", args.devices * 5),
        format!("{:.0} MiB", peak_rss.peak()),
        "≤ 300 MB",
    );

    // 2. Latest values of 10,000 series, server-side.
    let ids: Vec<SeriesId> =
        server.state.catalog.all_series().iter().map(|s| s.id).take(10_000).collect();
    let lat = median((0..21).map(|_| timed(|| server.state.store.latest(&ids)).1).collect());
    row(
        &format!("latest values of {} series (server-side)", ids.len()),
        format!("{:.2} ms", ms(lat)),
        "≤ 10 ms",
    );

    // 3. One series: a year of 1-minute points; 24 h raw and a year of hourly means.
    let one = ids[0];
    let year_start = t0 - 366 * 86_400;
    let mut batch = Vec::with_capacity(60 * 24 * 366);
    for i in 0..60 * 24 * 366i64 {
        let v = 15.0 + 8.0 * ((i as f64) / 1440.0 * std::f64::consts::TAU).sin();
        batch.push((
            one,
            Timestamp::from_secs(year_start + i * 60).expect("in range"),
            agora_model::Value::F64((v * 10.0).round() / 10.0),
        ));
    }
    for part in batch.chunks(100_000) {
        server.state.store.write(part.to_vec()).await?;
    }
    server.state.store.flush().await?;
    server.state.store.maintain().await?;
    let day_from = Timestamp::from_secs(t0 - 2 * 86_400).expect("in range");
    let day_to = Timestamp::from_secs(t0 - 86_400).expect("in range");
    let mut raw = Vec::new();
    for _ in 0..21 {
        let s = Instant::now();
        let pts = server.state.store.read(one, day_from, day_to, usize::MAX).await?;
        raw.push(s.elapsed());
        anyhow::ensure!(pts.len() == 1440, "expected 1440 points, got {}", pts.len());
    }
    row(
        "24 h of raw points, one series (server-side)",
        format!("{:.2} ms", ms(median(raw))),
        "≤ 2 ms",
    );
    let mut hourly = Vec::new();
    for _ in 0..11 {
        let s = Instant::now();
        let b = server
            .state
            .store
            .aggregate(
                one,
                Timestamp::from_secs(year_start).expect("in range"),
                Timestamp::from_secs(year_start + 365 * 86_400).expect("in range"),
                Duration::from_secs(3600),
            )
            .await?;
        hourly.push(s.elapsed());
        anyhow::ensure!(b.len() == 365 * 24, "expected 8760 hours, got {}", b.len());
    }
    row(
        "one year of hourly means, one series (server-side)",
        format!("{:.2} ms", ms(median(hourly))),
        "≤ 20 ms",
    );
    let http_year = format!(
        "http://{}/api/v1/aggregate?device={}&property={}&from={}&to={}&every=1h",
        server.addr,
        server.state.catalog.series_info(one).map(|s| s.device.to_string()).unwrap_or_default(),
        server.state.catalog.series_info(one).map(|s| s.property.to_string()).unwrap_or_default(),
        year_start,
        year_start + 365 * 86_400
    );
    let admin = server.state.catalog.create_token("bench-read", Scope::Read, None).await?.1;
    let mut http = Vec::new();
    for _ in 0..5 {
        let s = Instant::now();
        client
            .get(&http_year)
            .bearer_auth(&admin)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        http.push(s.elapsed());
    }
    row(
        "one year of hourly means over HTTP (JSON, round trip)",
        format!("{:.2} ms", ms(median(http))),
        "—",
    );
    server.shutdown().await?;

    // 4. Demo city: backfill speed, bytes per point after compaction, start-up time.
    let mut config =
        Config { data_dir: dir.join("demo"), http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.storage.compact_segments = 2;
    let opts =
        ServeOptions { config: config.clone(), admin_token: None, clock: Arc::new(SystemClock) };
    let server = serve::start(opts.clone()).await?;
    let demo = Demo::new(DemoOptions { days: args.demo_days, seed: 13001 });
    let report = demo.seed_and_backfill(&server.state).await?;
    row(
        &format!("demo backfill, {} days, {} devices (pipeline)", args.demo_days, report.devices),
        format!("{:.0} points/s", report.points as f64 / report.elapsed.as_secs_f64()),
        "—",
    );
    server.state.store.maintain().await?;
    let st = server.state.store.stats();
    let (bytes, points) =
        server.state.store.usage(&series_of_kinds(&server.state, &["air_quality", "noise"]));
    row(
        &format!("demo 1-minute series (air, noise) on disk, {points} points"),
        format!("{:.3} B/point", bytes as f64 / points.max(1) as f64),
        "≤ 1.0",
    );
    row(
        &format!("whole demo fleet on disk, {} points, {} segment(s)", st.points, st.segments),
        format!("{:.3} B/point", st.segment_bytes as f64 / st.points.max(1) as f64),
        "—",
    );
    server.shutdown().await?;
    let s = Instant::now();
    let server = serve::start(opts).await?;
    row(
        &format!("start-up with {} days of demo data", args.demo_days),
        format!("{:.0} ms", ms(s.elapsed())),
        "≤ 2 s (1 year)",
    );
    server.shutdown().await?;
    if args.keep {
        println!("data kept in {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

fn series_of_kinds(state: &agora_api::AppState, kinds: &[&str]) -> Vec<SeriesId> {
    state
        .catalog
        .devices(&agora_store::catalog::DeviceFilter::default())
        .iter()
        .filter(|d| kinds.contains(&d.kind.as_str()))
        .flat_map(|d| state.catalog.device_series(d.id.as_str()))
        .map(|s| s.id)
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let s = Instant::now();
    let v = f();
    (v, s.elapsed())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("agora-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

/// Peak resident memory seen by the writers.
#[derive(Debug)]
struct PeakRss(std::sync::Mutex<f64>);

fn parking_rss() -> PeakRss {
    PeakRss(std::sync::Mutex::new(rss_mib()))
}

impl PeakRss {
    fn observe(&self) {
        let r = rss_mib();
        let mut p = self.0.lock().expect("not poisoned");
        if r > *p {
            *p = r;
        }
    }
    fn peak(&self) -> f64 {
        *self.0.lock().expect("not poisoned")
    }
}
