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
    /// Run only the MQTT part.
    #[arg(long)]
    pub only_mqtt: bool,
    /// Run only the alerting figures.
    #[arg(long)]
    pub only_alerts: bool,
    /// Run only the indicators' figures, over `--demo-days` of the demo city.
    #[arg(long)]
    pub only_indicators: bool,
    /// Run only the backup figures (full, incremental, restore), over `--demo-days` of the demo
    /// city.
    #[arg(long)]
    pub only_backup: bool,
    /// Run only the cost of permission checks (the Métropole's tokens against a commune's).
    #[arg(long)]
    pub only_permissions: bool,
    /// Run only the commerce observatory's figures, over a year of the demo city's 40
    /// pedestrian counters.
    #[arg(long)]
    pub only_commerce: bool,
    /// Run only the open-data figures: exports of a year of one place's minute readings (CSV,
    /// Parquet), a monthly aggregate over a year, the catalogue.
    #[arg(long)]
    pub only_open_data: bool,
    /// Run only the standard APIs' figures (OGC SensorThings) on the demo city of `--demo-days`.
    #[arg(long)]
    pub only_standards: bool,
    /// Run only the services' figures (street lighting, bins) on a year of the demo city's
    /// 1,000 lamps (15 minutes) and 300 bins (hourly).
    #[arg(long)]
    pub only_services: bool,
    /// Run only the decision makers' figures: the 15-minute city of a synthetic commune the size of
    /// Aix-en-Provence (15,000 street segments, 1,900 facilities, 4,500 squares of 200 m) and the
    /// well-being index of 100 places over 12 months.
    #[arg(long)]
    pub only_decisions: bool,
    /// Run only the forecasts: backtest and forecast every forecastable series of the demo city
    /// (30 days), and print the accuracy table.
    #[arg(long)]
    pub only_forecast: bool,
    /// Run only the fleet comparison: a city's mixed fleet (1,360 devices of seven kinds, 1–6
    /// fields per line) sent as line protocol to agora and to InfluxDB 1.6, each in its own
    /// process with durable writes, one after the other.
    #[arg(long)]
    pub only_fleet: bool,
    /// Days of the fleet at one line per device per minute (29 days: 100 M points).
    #[arg(long, default_value_t = 1.0)]
    pub fleet_days: f64,
    /// Run the fleet workload against agora only (the sustained run).
    #[arg(long)]
    pub fleet_without_influxdb: bool,
    /// Simulated MQTT devices (one connection each).
    #[arg(long, default_value_t = 1_000)]
    pub mqtt_devices: usize,
    /// QoS 1 messages each MQTT device publishes.
    #[arg(long, default_value_t = 50)]
    pub mqtt_messages: usize,
    /// Run only the soak: sustained ingest under abuse, then a check that no acknowledged point
    /// was lost (see `soak.rs`).
    #[arg(long)]
    pub soak: bool,
    /// Minutes the soak's load lasts.
    #[arg(long, default_value_t = 30)]
    pub soak_minutes: u64,
    /// Points per second the soak's writers send (default: 80 % of the maximum, measured first).
    #[arg(long)]
    pub soak_rate: Option<u64>,
    /// Minutes the soak's maximum is measured over, writers alone and back to back (flushes and
    /// compactions included); 0: a 4 M-point burst.
    #[arg(long, default_value_t = 5)]
    pub soak_max_minutes: u64,
}

/// Resident memory of this process, in MiB.
pub(crate) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// A server on loopback in `data_dir`, without MQTT, tokens or a clock of its own: what most
/// figures start from.
async fn bench_server(data_dir: std::path::PathBuf) -> anyhow::Result<serve::Server> {
    let mut config = Config { data_dir, http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.mqtt.broker.enabled = false;
    serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) }).await
}

pub(crate) fn row(name: &str, value: String, target: &str) {
    println!("| {name:<52} | {value:>16} | {target:<14} |");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Run the benchmark.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.soak {
        let opts = crate::soak::SoakOptions {
            minutes: args.soak_minutes,
            rate: args.soak_rate,
            max_minutes: args.soak_max_minutes,
            keep: args.keep,
        };
        return crate::soak::run(opts).await;
    }
    let dir = tempfile_dir()?;
    println!("agora bench — data in {}", dir.display());
    println!("| {:<52} | {:>16} | {:<14} |", "measure", "result", "target");
    println!("|{:-<54}|{:-<18}|{:-<16}|", "", "", "");

    if args.only_alerts {
        bench_alerts(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_indicators || args.only_backup {
        let server = bench_server(dir.join("indicators")).await?;
        let demo =
            Demo::new(DemoOptions { days: args.demo_days, seed: 13001, counter_history_days: 0 });
        let report = demo.seed_and_backfill(&server.state).await?;
        row(
            &format!("demo backfill, {} days, {} devices", args.demo_days, report.devices),
            format!("{:.0} s", report.elapsed.as_secs_f64()),
            "—",
        );
        server.state.store.maintain().await?;
        if args.only_indicators {
            bench_indicators(&server.state, args.demo_days).await?;
        } else {
            bench_backup(&server.state, &dir.join("indicators"), &dir, args.demo_days).await?;
        }
        server.shutdown().await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_forecast {
        bench_forecast(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_decisions {
        bench_decisions()?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_services {
        bench_services(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_standards {
        bench_standards(&dir, args.demo_days).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_open_data {
        bench_open_data(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_fleet {
        crate::bench_fleet::bench_fleet(
            &dir,
            args.fleet_days,
            args.writers,
            args.batch_lines,
            !args.fleet_without_influxdb,
        )
        .await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_commerce {
        bench_commerce(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_permissions {
        bench_permissions(&dir).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    if args.only_mqtt {
        bench_mqtt(&dir, args.mqtt_devices, args.mqtt_messages).await?;
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    // 1. Ingest: line protocol over loopback HTTP, durable writes, concurrent writers.
    let mut config =
        Config { data_dir: dir.join("ingest"), http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.storage.fsync = true;
    config.mqtt.broker.enabled = false;
    let server =
        serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) })
            .await?;
    let (_, token) = server.state.catalog.create_token("bench", Scope::Ingest, None).await?;
    let url = format!("http://{}/api/v2/write?precision=s", server.addr);
    let client = reqwest::Client::new();
    let t0: i64 = 1_767_225_600;
    // Bodies are generated by each writer as it goes (not held in memory up front), so the
    // resident memory measured below is the server's plus a few batches in flight.
    let body = Arc::new(move |w: usize, b: usize, a: &BenchArgs| -> String {
        let mut s = String::with_capacity(a.batch_lines * 110);
        for l in 0..a.batch_lines {
            let n = (b * a.batch_lines + l) % a.devices;
            let step = (b * a.batch_lines + l) / a.devices;
            let ts = t0 + ((w * a.batches * a.batch_lines / a.devices.max(1) + step) as i64) * 60;
            let x = (n * 7 + step * 13) % 100;
            s.push_str(&format!(
                "air_quality,device=bench-{n:05} pm10={}.{},no2={}.{},o3={}.{},temperature=1{}.{},relative_humidity=5{}.{} {ts}\n",
                10 + x / 10,
                x % 10,
                20 + x / 5,
                x % 10,
                40 + x / 3,
                x % 10,
                x % 10,
                x % 7,
                x % 10,
                x % 9
            ));
        }
        s
    });
    let points_per_batch = args.batch_lines * 5;
    let total_points = args.writers * args.batches * points_per_batch;
    // Warm up: register the devices and series.
    client
        .post(&url)
        .bearer_auth(&token)
        .body(body(0, 0, &args))
        .send()
        .await?
        .error_for_status()?;
    let peak_rss = Arc::new(parking_rss());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers {
        let (client, url, token, peak, body, a) = (
            client.clone(),
            url.clone(),
            token.clone(),
            peak_rss.clone(),
            body.clone(),
            args.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for b in 0..a.batches {
                let r = client.post(&url).bearer_auth(&token).body(body(w, b, &a)).send().await?;
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
    // The dashboard's one-year chart: 2,000 buckets with min/max/mean (from the rollups), and
    // the same for a sound level, which is averaged as energy from raw points.
    let noise_lines: Vec<String> = (0..60 * 24 * 366i64)
        .map(|i| {
            let v = 50.0 + 12.0 * ((i as f64) / 1440.0 * std::f64::consts::TAU).sin();
            format!("noise,device=bench-noise laeq={:.1} {}\n", v, year_start + i * 60)
        })
        .collect();
    let (_, ingest_token) =
        server.state.catalog.create_token("bench-noise", Scope::Ingest, None).await?;
    for part in noise_lines.chunks(100_000) {
        client
            .post(format!("http://{}/api/v2/write?precision=s", server.addr))
            .header("Authorization", format!("Token {ingest_token}"))
            .body(part.concat())
            .send()
            .await?
            .error_for_status()?;
    }
    drop(noise_lines);
    server.state.store.flush().await?;
    server.state.store.maintain().await?;
    let one_info = server.state.catalog.series_info(one).context("bench series")?;
    for (label, device, property) in [
        (
            "one-year chart, 2,000 buckets, over HTTP",
            one_info.device.to_string(),
            one_info.property.to_string(),
        ),
        (
            "one-year chart of a sound level (energy), over HTTP",
            "bench-noise".into(),
            "laeq".into(),
        ),
    ] {
        let url = format!(
            "http://{}/api/v1/chart?device={device}&property={property}&from={}&to={}&points=2000",
            server.addr,
            year_start,
            year_start + 365 * 86_400
        );
        let mut times = Vec::new();
        let mut buckets = 0;
        for _ in 0..7 {
            let s = Instant::now();
            let v: serde_json::Value = client
                .get(&url)
                .bearer_auth(&admin)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            times.push(s.elapsed());
            buckets = v["t"].as_array().map_or(0, Vec::len);
        }
        anyhow::ensure!(buckets > 1000 && buckets <= 2000, "{label}: {buckets} buckets");
        row(label, format!("{:.1} ms", ms(median(times))), "≤ 300 ms");
    }
    server.shutdown().await?;

    // 4. Demo city: backfill speed, bytes per point after compaction, start-up time.
    let mut config =
        Config { data_dir: dir.join("demo"), http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.storage.compact_segments = 2;
    config.mqtt.broker.enabled = false;
    let opts =
        ServeOptions { config: config.clone(), admin_token: None, clock: Arc::new(SystemClock) };
    let server = serve::start(opts.clone()).await?;
    let demo = Demo::new(DemoOptions {
        days: args.demo_days,
        seed: 13001,
        counter_history_days: crate::demo::COUNTER_HISTORY_DAYS,
    });
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
    bench_indicators(&server.state, args.demo_days).await?;
    server.shutdown().await?;
    bench_mqtt(&dir, args.mqtt_devices, args.mqtt_messages).await?;
    bench_alerts(&dir).await?;
    if args.keep {
        println!("data kept in {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

/// Backups of `days` of the demo city (targets are for a year, about 500 MB): a full backup to a
/// local directory, an incremental one after a day of new data, and a restore.
async fn bench_backup(
    state: &agora_api::AppState,
    data_dir: &std::path::Path,
    dir: &std::path::Path,
    days: u32,
) -> anyhow::Result<()> {
    let cfg = crate::backup::BackupConfig {
        dir: Some(dir.join("backups")),
        every_hours: 0,
        keep_daily: 7,
        keep_weekly: 4,
        s3: None,
    };
    let full = crate::backup::backup(state, data_dir, &cfg).await?;
    row(
        &format!(
            "full backup, {days} days of the demo city ({:.0} MB, {} segments)",
            full.bytes_total as f64 / 1e6,
            full.segments_copied
        ),
        format!("{:.1} s", full.seconds),
        "≤ 60 s (1 year)",
    );
    // A day of new data (the day before the history), flushed into a segment of its own.
    let now = state.clock.now().as_nanos();
    let before = now - i64::from(days) * 86_400 * 1_000_000_000;
    let day = Demo::at(DemoOptions { days: 1, seed: 13001, counter_history_days: 0 }, before);
    let added = day.seed_and_backfill(state).await?;
    state.store.flush().await?;
    let inc = crate::backup::backup(state, data_dir, &cfg).await?;
    row(
        &format!(
            "incremental backup after a day ({} points, {:.0} MB copied)",
            added.points,
            inc.bytes_copied as f64 / 1e6
        ),
        format!("{:.1} s", inc.seconds),
        "≤ 5 s",
    );
    let s = Instant::now();
    let target = dir.join("restored");
    crate::backup::restore(&dir.join("backups"), Some(&inc.name), &target)?;
    row(
        &format!("restore of that backup ({:.0} MB)", inc.bytes_total as f64 / 1e6),
        format!("{:.1} s", s.elapsed().as_secs_f64()),
        "≤ 60 s (1 year)",
    );
    Ok(())
}

/// The indicators' figures over `days` of the demo city (targets are for a year): ATMO of every
/// day and place, a commune's regulatory table, Lden per day of one 1-minute noise series, and a
/// 10,000-cell heat-island map from 50 sensors with leave-one-out (median of 3 runs each).
/// Forecasts of every forecastable series of the demo city (30 days of history) by the forecasting
/// service: the time to fit them all (one core) and to forecast them again with their methods,
/// ingestion's speed meanwhile against alone, one series served over HTTP, the accuracy table —
/// per property, the median MASE of the method published against seasonal naive's, and how many
/// series a model beat seasonal naive on — and the anomalies found.
async fn bench_forecast(dir: &std::path::Path) -> anyhow::Result<()> {
    let server = bench_server(dir.join("forecast")).await?;
    let demo = Demo::new(DemoOptions { days: 30, seed: 13001, counter_history_days: 0 });
    let report = demo.seed_and_backfill(&server.state).await?;
    row(
        &format!("demo backfill, 30 days, {} devices", report.devices),
        format!("{:.0} s", report.elapsed.as_secs_f64()),
        "—",
    );
    server.state.store.maintain().await?;
    let state = &server.state;
    let (_, token) = state.catalog.create_token("bench", Scope::Admin, None).await?;
    let base = format!("http://{}", server.addr);
    let auth = format!("Bearer {token}");
    let client = reqwest::Client::new();
    // Ingestion alone, then while the service fits every series (three sweeps, each from
    // nothing), through HTTP as a network server's batches come.
    let alone = ingest_for(&client, &base, &auth, Duration::from_secs(10), 0).await?;
    let service = state.forecasts.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = {
        let (client, base, auth) = (client.clone(), base.clone(), auth.clone());
        tokio::spawn(async move { ingest_until(&client, &base, &auth, stop_rx, 40_000).await })
    };
    let mut fits = Vec::new();
    let mut n = 0;
    for _ in 0..3 {
        service.forget();
        let s = Instant::now();
        n = service.sweep().await;
        fits.push(s.elapsed());
    }
    // (The writer may have stopped on an error: it says which.)
    let _ = stop_tx.send(true);
    let during = load.await?.context("writing while fitting")?;
    row(
        &format!("fit and backtest every forecastable series ({n}, one core)"),
        format!("{:.1} s", median(fits).as_secs_f64()),
        "≤ 300 s (2,000)",
    );
    row(
        "ingestion while fitting, against alone (points/s)",
        format!("{:.0} / {:.0} = {:.0} %", during, alone, 100.0 * during / alone),
        "≥ 90 %",
    );
    let models = service.models();
    let refused = models.iter().filter(|m| m.outcome.is_err()).count();
    row("series refused (too little history)", refused.to_string(), "—");
    let pick = models.iter().find(|m| m.property == "pm10").context("the demo has PM10 series")?;
    let url = format!("{base}/api/v1/forecast?device={}&property=pm10", pick.device.as_str());
    let mut times = Vec::new();
    for _ in 0..5 {
        let s = Instant::now();
        let r = client.get(&url).header("authorization", &auth).send().await?;
        anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
        r.bytes().await?;
        times.push(s.elapsed());
    }
    row(
        "one series' forecast served (with its backtest)",
        format!("{:.1} ms", ms(median(times))),
        "≤ 20 ms",
    );
    // property → (MASE published, MASE of seasonal naive (day), model beat naive)
    let mut by: std::collections::BTreeMap<String, Vec<(f64, f64, bool)>> = Default::default();
    for m in &models {
        let Ok(f) = &m.outcome else { continue };
        let bt = &f.backtest;
        let naive = bt
            .scores
            .iter()
            .find(|x| x.method == agora_forecast::Method::NaiveDay)
            .map_or(f64::NAN, |x| x.mase);
        by.entry(m.property.clone()).or_default().push((bt.scores[0].mase, naive, bt.beats_naive));
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    for (property, v) in by {
        let published = med(v.iter().map(|x| x.0).collect());
        let naive = med(v.iter().map(|x| x.1).collect());
        let beat = v.iter().filter(|x| x.2).count();
        row(
            &format!("MASE {property}: published / naive, model won"),
            format!("{published:.2} / {naive:.2}, {beat}/{}", v.len()),
            "< 0.9",
        );
    }
    let found = service.anomalies();
    for kind in ["unlikely", "level_shift", "drift"] {
        let of: Vec<String> = found
            .iter()
            .filter(|a| {
                serde_json::to_value(a.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .as_deref()
                    == Some(kind)
            })
            .map(|a| format!("{} {}", a.device.as_str(), a.property))
            .collect();
        row(&format!("anomalies {kind}"), format!("{}: {}", of.len(), of.join(", ")), "—");
    }
    server.shutdown().await?;
    Ok(())
}

/// Write line protocol for `dur` (batches of 2,000 points over 200 series); points a second.
async fn ingest_for(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    dur: Duration,
    first: i64,
) -> anyhow::Result<f64> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = tokio::spawn(async move {
        tokio::time::sleep(dur).await;
        let _ = tx.send(true);
    });
    let rate = ingest_until(client, base, auth, rx, first).await?;
    stop.await?;
    Ok(rate)
}

/// Write line protocol until `stop` turns true; points a second.
async fn ingest_until(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    stop: tokio::sync::watch::Receiver<bool>,
    first: i64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let t0 = agora_model::Clock::now(&SystemClock).as_nanos() / 1_000_000_000 - 86_400;
    let mut k = first;
    let mut points = 0u64;
    while !*stop.borrow() {
        let mut body = String::with_capacity(80_000);
        for _ in 0..10 {
            for d in 0..200 {
                // A property agora does not forecast: the load adds no series to the sweep.
                body.push_str(&format!(
                    "weather,device=load-{d:03} pressure={}.5 {}\n",
                    1000 + k % 23,
                    t0 + k
                ));
            }
            k += 1;
        }
        write_lines(client, base, auth, body).await?;
        points += 2000;
    }
    Ok(points as f64 / started.elapsed().as_secs_f64())
}

/// The commerce observatory over a year of the demo city's 40 pedestrian counters (15-minute
/// data, two directions), through HTTP as the Commerce view asks: one place's figures (today
/// against its typical day and heat map, the comparisons), the heat map of a year, the ranking,
/// and the impact study of the demo's pedestrianisation (two years asked: 182 days either side).
async fn bench_commerce(dir: &std::path::Path) -> anyhow::Result<()> {
    let server = bench_server(dir.join("commerce")).await?;
    let demo = Demo::new(DemoOptions { days: 1, seed: 13001, counter_history_days: 366 });
    let report = demo.seed_and_backfill(&server.state).await?;
    row(
        "demo backfill, 1 day of the city and a year of counters",
        format!("{:.0} s", report.elapsed.as_secs_f64()),
        "—",
    );
    server.state.store.maintain().await?;
    let (_, token) = server.state.catalog.create_token("bench", Scope::Read, None).await?;
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let time = |paths: Vec<String>| {
        let (client, token, base) = (client.clone(), token.clone(), base.clone());
        async move {
            let mut times = Vec::new();
            for _ in 0..5 {
                let s = Instant::now();
                for p in &paths {
                    let r = client.get(format!("{base}{p}")).bearer_auth(&token).send().await?;
                    anyhow::ensure!(r.status().is_success(), "{p}: {}", r.status());
                    r.bytes().await?;
                }
                times.push(s.elapsed());
            }
            Ok::<_, anyhow::Error>(median(times))
        }
    };
    let view = time(vec![
        "/api/v1/commerce/profile?site=hotel-de-ville".into(),
        "/api/v1/commerce/compare?site=hotel-de-ville".into(),
    ])
    .await?;
    row(
        "Commerce view, one place's figures (10 counters)",
        format!("{:.1} ms", ms(view)),
        "≤ 100 ms",
    );
    let heat = time(vec!["/api/v1/commerce/profile?site=hotel-de-ville&weeks=52".into()]).await?;
    row(
        "heat map and typical day of a year (10 counters)",
        format!("{:.1} ms", ms(heat)),
        "≤ 100 ms",
    );
    let city = time(vec!["/api/v1/commerce/profile?commune=13001&weeks=52".into()]).await?;
    row("heat map of a year, the city (30 counters)", format!("{:.1} ms", ms(city)), "—");
    let ranking = time(vec!["/api/v1/commerce/ranking".into()]).await?;
    row("ranking of the places with their index", format!("{:.1} ms", ms(ranking)), "—");
    let study = time(vec!["/api/v1/commerce/interventions/1/study".into()]).await?;
    row("impact study (3 places, 2 × 182 days asked)", format!("{:.1} ms", ms(study)), "≤ 2 s");
    server.shutdown().await?;
    Ok(())
}

/// A year of one place's air quality, one reading a minute from 6 sensors (3.15 M readings),
/// published raw and hourly; exports streamed through HTTP, the server's memory watched.
/// The standard APIs on the demo city, over HTTP from a client in the same process: median of
/// 20 requests each (after one to warm up).
/// The services over a year of the demo city: the lighting view of every lamp (computing the
/// year's lamp-days the first time, then from them), faults, a scenario; every bin's time to
/// full; a round of 200 bins.
/// The decision makers' figures (pure computations, no server): see `BenchArgs::only_decisions`.
fn bench_decisions() -> anyhow::Result<()> {
    use agora_proximity::access::{Selector, Settings, Study};
    use agora_proximity::facilities::Theme;
    let spec = crate::demo_city::CitySpec {
        centre: (5.4474, 43.5290),
        side: 87,
        spacing_m: 172.0,
        facilities: 2_250,
        seed: 13001,
        communes: vec![("13001".into(), -180.0)],
    };
    let t = Instant::now();
    let files = spec.build();
    row(
        "synthetic commune written (OSM XML, BPE, Filosofi)",
        format!("{:.2} s", t.elapsed().as_secs_f64()),
        "—",
    );
    let t = Instant::now();
    let (net, _) = agora_proximity::osm::read(&files.osm_xml)?;
    row(
        &format!(
            "OSM XML read ({:.1} MB) into the walking network",
            files.osm_xml.len() as f64 / 1e6
        ),
        format!("{:.2} s", t.elapsed().as_secs_f64()),
        "—",
    );
    let facilities =
        agora_proximity::facilities::read_bpe(files.bpe_csv.as_bytes(), &Default::default())?
            .facilities;
    let squares = agora_proximity::population::read_filosofi(files.filosofi_csv.as_bytes())?;
    row(
        "street segments / facilities / populated squares",
        format!("{} / {} / {}", net.segments(), facilities.len(), squares.len()),
        "15,000 / 1,900 / 4,500",
    );
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let mut runs = Vec::new();
    let mut within = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let study = Study::new(&net, &facilities, &squares, Settings::default())?;
        let access = study.squares();
        runs.push(t.elapsed());
        within = study.shares(|_, _| true).all_themes.unwrap_or(f64::NAN);
        anyhow::ensure!(access.len() == squares.len());
    }
    row(
        &format!(
            "accessibility of every square to every theme (all four within 15 min: {:.0} %)",
            100.0 * within
        ),
        ms(median(runs)),
        "≤ 2 s",
    );
    let study = Study::new(&net, &facilities, &squares, Settings::default())?;
    let field = study.field(&Selector::Kind("pharmacie".into()));
    let (w, s, e, n) = net.bbox();
    let mut alone = Vec::new();
    let mut whole = Vec::new();
    let mut gained = 0.0;
    for k in 0..21 {
        let (fx, fy) = ((k as f64 * 0.618_034) % 1.0, (k as f64 * 0.414_214) % 1.0);
        let (lon, lat) = (w + (e - w) * fx, s + (n - s) * fy);
        let t = Instant::now();
        let r = study.what_if(&field, lon, lat);
        alone.push(t.elapsed());
        gained += r.population_gained;
        // As the API answers it: the study and the kind's field made anew, then the what-if.
        let t = Instant::now();
        let again = Study::new(&net, &facilities, &squares, Settings::default())?;
        let f = again.field(&Selector::Kind("pharmacie".into()));
        let _ = again.what_if(&f, lon, lat);
        whole.push(t.elapsed());
    }
    row(
        &format!("one what-if: a pharmacy added (21 points, {:.0} people gained in all)", gained),
        ms(median(alone)),
        "≤ 300 ms",
    );
    row("one what-if as the API answers it (study + field + what-if)", ms(median(whole)), "—");
    let t = Instant::now();
    let gaps = study.gaps(study.theme(Theme::Health));
    row(&format!("gaps of one theme ({} groups)", gaps.len()), ms(t.elapsed()), "—");

    // The well-being index: 100 places × 12 months, every indicator.
    let body = agora_query::wellbeing::DefinitionBody::default();
    let def = body.definition()?;
    let units: Vec<Vec<agora_query::wellbeing::Unit>> = (0..12)
        .map(|m| {
            (0..100)
                .map(|p| {
                    let v = |i: usize| {
                        let ind = &body.indicators[i];
                        let u = ((p * 31 + m * 17 + i * 7) % 97) as f64 / 97.0;
                        (ind.id.clone(), ind.min + (ind.max - ind.min) * u)
                    };
                    agora_query::wellbeing::Unit {
                        id: format!("place-{p}"),
                        name: format!("Place {p}"),
                        commune: "13001".into(),
                        places: vec![format!("place-{p}")],
                        values: (0..body.indicators.len()).map(v).collect(),
                    }
                })
                .collect()
        })
        .collect();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let months = units.clone();
        let t = Instant::now();
        let scored: usize = months
            .into_iter()
            .map(|u| {
                agora_query::wellbeing::score(&def, u).iter().filter(|s| s.index.is_some()).count()
            })
            .sum();
        runs.push(t.elapsed());
        anyhow::ensure!(scored == 1200);
    }
    row(
        "well-being index, 100 places × 12 months",
        format!("{:.2} ms", median(runs).as_secs_f64() * 1e3),
        "≤ 200 ms",
    );
    let values: Vec<std::collections::BTreeMap<String, f64>> =
        units[0].iter().map(|u| u.values.clone()).collect();
    let t = Instant::now();
    let _ = agora_indicators::wellbeing::stability(&def, &values, 200);
    row("rank stability, 100 places, 200 random weightings", ms(t.elapsed()), "—");
    Ok(())
}

async fn bench_services(dir: &std::path::Path) -> anyhow::Result<()> {
    const TOKEN: &str = "bench-services-admin-token-0123456789";
    let mut config = Config {
        data_dir: dir.join("services"),
        http: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.mqtt.broker.enabled = false;
    let server = serve::start(ServeOptions {
        config,
        admin_token: Some(TOKEN.into()),
        clock: Arc::new(SystemClock),
    })
    .await?;
    let demo = Demo::new(DemoOptions { days: 1, seed: 13001, counter_history_days: 0 });
    demo.seed_and_backfill(&server.state).await?;
    let started = Instant::now();
    let points = demo.services_history(&server.state, 365).await?;
    server.state.store.maintain().await?;
    row(
        "a year of 1,000 lamps (15 min) and 300 bins (hourly), through the pipeline",
        format!("{:.1} M points in {:.0} s", points as f64 / 1e6, started.elapsed().as_secs_f64()),
        "—",
    );
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let get = |path: String| {
        let (client, url) = (client.clone(), format!("{base}{path}"));
        async move {
            let t = Instant::now();
            let r = client.get(&url).bearer_auth(TOKEN).send().await?;
            anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
            let body = r.bytes().await?;
            Ok::<_, anyhow::Error>((t.elapsed(), body.len()))
        }
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let today = server.state.clock.now().to_datetime().with_timezone(&chrono_tz::Europe::Paris);
    let to = today.date_naive() - chrono::Days::new(1);
    let from = to - chrono::Days::new(364);
    let year = format!("from={from}&to={to}");
    let (cold, _) = get(format!("/api/v1/lighting?{year}&by=street")).await?;
    row("lighting, whole city, a year by street: first (computes 365 k lamp-days)", ms(cold), "—");
    let warm = |path: String| {
        let get = &get;
        async move {
            let mut runs = Vec::new();
            let mut size = 0;
            for _ in 0..7 {
                let (d, n) = get(path.clone()).await?;
                runs.push(d);
                size = n;
            }
            Ok::<_, anyhow::Error>((median(runs), size))
        }
    };
    let (d, n) = warm(format!("/api/v1/lighting?{year}&by=street")).await?;
    row(
        &format!("lighting, whole city, a year by street, then ({} kB)", n / 1000),
        ms(d),
        "≤ 300 ms",
    );
    let (d, n) = warm(format!("/api/v1/lighting?{year}&by=lamp")).await?;
    row(&format!("lighting, a year by lamp ({} kB)", n / 1000), ms(d), "—");
    let (d, _) = warm(format!("/api/v1/lighting/maintenance?{year}")).await?;
    row("lighting maintenance, a year", ms(d), "—");
    let (d, _) =
        warm(format!("/api/v1/lighting/scenario?kind=off&start=01:00&end=05:00&{year}")).await?;
    row("lighting scenario on a year's profile, every street", ms(d), "—");
    let (d, _) = warm("/api/v1/bins?days=7".into()).await?;
    row("bins: time to full of all 300 (a week of readings)", ms(d), "≤ 50 ms");
    let (d, _) = warm("/api/v1/bins?days=28".into()).await?;
    row("bins: all figures over 28 days", ms(d), "—");
    // A round of 200 bins, the ordering alone, from the demo's positions.
    let bins: Vec<(f64, f64)> = server
        .state
        .catalog
        .devices(&agora_store::catalog::DeviceFilter {
            kind: agora_model::DeviceKind::parse("waste_container").ok(),
            ..Default::default()
        })
        .iter()
        .filter_map(|d| Some((d.lat?, d.lon?)))
        .take(200)
        .collect();
    anyhow::ensure!(bins.len() == 200, "the demo has {} bins with a position", bins.len());
    let mut runs = Vec::new();
    let mut metres = (0.0, 0.0);
    for _ in 0..7 {
        let t = Instant::now();
        let r = agora_indicators::bins::round((43.5205, 5.4395), &bins, 1.3)?;
        runs.push(t.elapsed());
        metres = (r.metres, r.nearest_neighbour_metres);
    }
    row(
        &format!(
            "a round of 200 bins (nearest neighbour then 2-opt: {:.1} km, {:.1} km before)",
            metres.0 / 1000.0,
            metres.1 / 1000.0
        ),
        ms(median(runs)),
        "≤ 100 ms",
    );
    let (d, _) =
        warm("/api/v1/bins/round?commune=13001&within_h=48&depot=43.5205,5.4395".into()).await?;
    row("bins round over HTTP (Aix's bins due within 48 h, from a week of readings)", ms(d), "—");
    server.shutdown().await?;
    Ok(())
}

async fn bench_standards(dir: &std::path::Path, days: u32) -> anyhow::Result<()> {
    const TOKEN: &str = "bench-standards-admin-token-0123456789";
    let mut config = Config {
        data_dir: dir.join("standards"),
        http: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.mqtt.broker.enabled = false;
    // The notifications' receiver is on this machine.
    config.alerts.allow_hosts = vec!["127.0.0.1".parse().map_err(anyhow::Error::msg)?];
    let server = serve::start(ServeOptions {
        config,
        admin_token: Some(TOKEN.into()),
        clock: Arc::new(SystemClock),
    })
    .await?;
    let demo = Demo::new(DemoOptions { days, seed: 13001, counter_history_days: 0 });
    let report = demo.seed_and_backfill(&server.state).await?;
    server.state.store.maintain().await?;
    row(
        &format!("demo backfill, {days} days, {} devices", report.devices),
        format!("{:.0} s", report.elapsed.as_secs_f64()),
        "—",
    );
    let base = format!("http://{}/v1.1", server.addr);
    let client = reqwest::Client::new();
    let time = |path: String| {
        let (client, url) = (client.clone(), format!("{base}/{path}"));
        async move {
            let mut runs = Vec::new();
            let mut size = 0;
            for i in 0..21 {
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(TOKEN).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                let body = r.bytes().await?;
                if i > 0 {
                    runs.push(t.elapsed());
                }
                size = body.len();
            }
            Ok::<_, anyhow::Error>((median(runs), size))
        }
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    let (d, size) = time("Things?$top=10000&$count=true".into()).await?;
    row(&format!("STA: every Thing ({} devices, {} kB)", report.devices, size / 1000), ms(d), "—");
    // A 1-minute series: the first air station's PM10.
    let series = server.state.catalog.all_series();
    let pm = series
        .iter()
        .filter(|x| x.property.as_str() == "pm10")
        .min_by_key(|x| x.id.0)
        .ok_or_else(|| anyhow::anyhow!("the demo has no PM10 series"))?;
    let end =
        server.state.store.latest(&[pm.id])[0].as_ref().map_or(server.state.clock.now(), |p| p.0);
    let month = agora_model::Timestamp::from_nanos(end.as_nanos() - 30 * 86_400 * 1_000_000_000);
    let window = format!(
        "phenomenonTime ge {} and phenomenonTime le {}",
        month.to_rfc3339(),
        end.to_rfc3339()
    );
    let (d, _) = time(format!(
        "Datastreams({})/Observations?$filter={window} and result gt 5&$top=1000",
        pm.id.0
    ))
    .await?;
    row("STA: a month of one Datastream, $filter, $top=1000", ms(d), "≤ 30 ms");
    let (d, _) = time(format!(
        "Datastreams({})/Observations?$filter={window}&$orderby=phenomenonTime desc&$top=1000",
        pm.id.0
    ))
    .await?;
    row("STA: the same, newest first", ms(d), "—");
    let (d, _) = time(format!(
        "Datastreams({})/Observations?$filter={window} and result gt 5&$count=true&$top=1",
        pm.id.0
    ))
    .await?;
    row("STA: $count over a month of one Datastream", ms(d), "—");
    let (d, _) = time(format!(
        "Things('{}')?$expand=Datastreams($expand=Observations($top=1;$orderby=phenomenonTime desc))",
        pm.device
    ))
    .await?;
    row("STA: a Thing with its latest observations ($expand)", ms(d), "—");
    // NGSI-LD, with agora's context: the devices' observed entities, keyValues, in pages of 1,000.
    let ngsi = format!("http://{}/ngsi-ld/v1", server.addr);
    let link = format!(
        "<{ngsi}/jsonldContexts/agora.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\""
    );
    let types = "AirQualityObserved,NoiseLevelObserved,WeatherObserved,Streetlight,WasteContainer,CrowdFlowObserved,GreenspaceRecord";
    let mut runs = Vec::new();
    let mut listed = 0;
    for i in 0..21 {
        let t = Instant::now();
        let mut n = 0;
        for offset in [0, 1000] {
            let r = client
                .get(format!(
                    "{ngsi}/entities?type={types}&options=keyValues&limit=1000&offset={offset}"
                ))
                .header("Link", &link)
                .bearer_auth(TOKEN)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "NGSI-LD entities: {}", r.status());
            n += r.json::<serde_json::Value>().await?.as_array().map_or(0, Vec::len);
        }
        if i > 0 {
            runs.push(t.elapsed());
        }
        listed = n;
    }
    row(
        &format!("NGSI-LD: {listed} entities, keyValues (2 pages)"),
        ms(median(runs)),
        "≤ 50 ms (1,500)",
    );
    let id = format!("urn:ngsi-ld:AirQualityObserved:{}", pm.device);
    let mut runs = Vec::new();
    for i in 0..21 {
        let t = Instant::now();
        let r = client
            .get(format!(
                "{ngsi}/temporal/entities/{id}?attrs=pm10&aggrMethods=avg,min,max&aggrPeriodDuration=PT1H&timerel=between&timeAt={}&endTimeAt={}",
                agora_model::Timestamp::from_nanos(end.as_nanos() - i64::from(days) * 86_400 * 1_000_000_000).to_rfc3339(),
                end.to_rfc3339()
            ))
            .header("Link", &link)
            .bearer_auth(TOKEN)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "NGSI-LD temporal: {}", r.status());
        r.bytes().await?;
        if i > 0 {
            runs.push(t.elapsed());
        }
    }
    row(
        &format!("NGSI-LD: {days} days of hourly avg/min/max, one entity"),
        ms(median(runs)),
        "≤ 50 ms (a year)",
    );
    bench_subscriptions(&server, TOKEN, &client, end).await?;
    server.shutdown().await?;
    Ok(())
}

/// What 1,000 NGSI-LD subscriptions add to ingestion: the demo city's every numeric series sent
/// as line protocol (2 writers, batches of 5,000 points), without and with subscriptions, in
/// turns; CPU of the whole process (server, writers and the receiver of the notifications) per
/// point, and the notifier thread's own.
async fn bench_subscriptions(
    server: &serve::Server,
    token: &str,
    client: &reqwest::Client,
    end: Timestamp,
) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let state = &server.state;
    // The receiver: answers 204 and counts.
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let sink = axum::Router::new().route(
        "/notify",
        axum::routing::post(move || {
            g.fetch_add(1, Ordering::Relaxed);
            async { axum::http::StatusCode::NO_CONTENT }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink_url = format!("http://{}/notify", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, sink).await });
    // Every numeric series, by device: one line per device per round.
    // Each series' latest value, sent again with small changes (values stay plausible: the
    // quality checks refuse a pressure of 21 hPa).
    let mut by_device: std::collections::BTreeMap<String, (String, Vec<(String, f64)>)> =
        std::collections::BTreeMap::new();
    let all = state.catalog.all_series();
    let latest = state.store.latest(&all.iter().map(|x| x.id).collect::<Vec<_>>());
    for (x, l) in all.iter().zip(latest) {
        let Some((_, agora_model::Value::F64(last))) = l else { continue };
        if agora_model::is_device_internal(x.property.as_str()) {
            continue;
        }
        let Some(d) = state.catalog.device(x.device.as_str()) else { continue };
        by_device
            .entry(d.id.to_string())
            .or_insert_with(|| (d.kind.to_string(), Vec::new()))
            .1
            .push((x.property.to_string(), last));
    }
    let per_round: usize = by_device.values().map(|(_, p)| p.len()).sum();
    anyhow::ensure!(per_round > 0, "the demo has no numeric series");
    let rounds_per_batch = (5_000 / per_round).max(1);
    let batches = 40;
    let start_ms = end.as_nanos() / 1_000_000 + 1;
    let mut phase = 0i64;
    // One phase: `batches` batches, two writers; (points, wall, process CPU, notifier CPU).
    let mut run = || {
        phase += 1;
        // Within the hour ahead the server accepts (phases of at most 100 s).
        let base = start_ms + phase * 100_000;
        let bodies: Vec<String> = (0..batches)
            .map(|b| {
                let mut body = String::new();
                for r in 0..rounds_per_batch {
                    let ts = base + (b * rounds_per_batch + r) as i64;
                    for (i, (dev, (kind, props))) in by_device.iter().enumerate() {
                        let fields: Vec<String> = props
                            .iter()
                            .enumerate()
                            .map(|(j, (p, last))| {
                                let wobble = ((ts as usize + i + j) % 5) as f64 * 0.001;
                                format!("{p}={}", last * (1.0 + wobble))
                            })
                            .collect();
                        body.push_str(&format!("{kind},device={dev} {} {ts}\n", fields.join(",")));
                    }
                }
                body
            })
            .collect();
        let points = (batches * rounds_per_batch * per_round) as u64;
        let (client, url) = (client.clone(), format!("http://{}/write?precision=ms", server.addr));
        let token = token.to_owned();
        async move {
            let cpu0 = process_cpu().unwrap_or_default();
            let sub0 = thread_cpu("agora-ngsi-subs").unwrap_or_default();
            let t = Instant::now();
            let mut writers = Vec::new();
            for w in 0..2 {
                let mine: Vec<String> = bodies.iter().skip(w).step_by(2).cloned().collect();
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                writers.push(tokio::spawn(async move {
                    for body in mine {
                        let r = client.post(&url).bearer_auth(&token).body(body).send().await?;
                        let status = r.status();
                        anyhow::ensure!(status.is_success(), "write: {status} {}", r.text().await?);
                    }
                    Ok::<_, anyhow::Error>(())
                }));
            }
            for w in writers {
                w.await??;
            }
            let wall = t.elapsed();
            let cpu = process_cpu().unwrap_or_default().saturating_sub(cpu0);
            let sub = thread_cpu("agora-ngsi-subs").unwrap_or_default().saturating_sub(sub0);
            Ok::<_, anyhow::Error>((points, wall, cpu, sub))
        }
    };
    // 1,000 subscriptions on single entities: nine in ten on a threshold their value rarely
    // passes (`q`), one in ten on every change, throttled to one notification a second.
    let devices: Vec<_> = by_device.iter().collect();
    let subscriptions: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            let (dev, (kind, props)) = devices[(i * 7919) % devices.len()];
            let ty = match kind.as_str() {
                "air_quality" => "AirQualityObserved",
                "noise" => "NoiseLevelObserved",
                "weather" => "WeatherObserved",
                "streetlight" => "Streetlight",
                "waste_container" | "bin" => "WasteContainer",
                "pedestrian_counter" => "CrowdFlowObserved",
                "soil_moisture" | "soil" => "GreenspaceRecord",
                _ => "Device",
            };
            let mut s = serde_json::json!({
                "id": format!("urn:ngsi-ld:Subscription:bench-{i}"),
                "type": "Subscription",
                "entities": [{"type": ty, "id": format!("urn:ngsi-ld:{ty}:{dev}")}],
                "notification": {"format": "keyValues", "endpoint": {"uri": sink_url}},
            });
            if i % 10 == 0 {
                s["throttling"] = 1.into();
            } else {
                // Thresholds above anything the demo sends: judged on every change, never
                // passed.
                let _ = props;
                s["q"] = "pm10>100000|temperature>100000|LAeq>100000|fillingLevel>100000".into();
            }
            s
        })
        .collect();
    let ngsi = format!("http://{}/ngsi-ld/v1", server.addr);
    let link = format!(
        "<{ngsi}/jsonldContexts/agora.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\""
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut sub_cpu = Duration::ZERO;
    let mut with_points = 0;
    run().await?; // warm-up
    for _turn in 0..3 {
        without.push(run().await?);
        for s in &subscriptions {
            let r = client
                .post(format!("{ngsi}/subscriptions"))
                .bearer_auth(token)
                .header("Link", &link)
                .json(s)
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 201, "subscription: {}", r.text().await?);
        }
        let sent0 = got.load(Ordering::Relaxed);
        let x = run().await?;
        sub_cpu += x.3;
        with_points += x.0;
        with.push(x);
        // Throttled notifications still due arrive within the second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let sent = got.load(Ordering::Relaxed) - sent0;
        println!("  (with subscriptions: {sent} notifications received)");
        for i in 0..1000 {
            let r = client
                .delete(format!("{ngsi}/subscriptions/urn:ngsi-ld:Subscription:bench-{i}"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 204, "delete: {}", r.status());
        }
    }
    let per_point = |v: &[(u64, Duration, Duration, Duration)]| {
        let mut x: Vec<f64> = v.iter().map(|r| r.2.as_nanos() as f64 / r.0 as f64).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let rate = |v: &[(u64, Duration, Duration, Duration)]| {
        let mut x: Vec<f64> = v.iter().map(|r| r.0 as f64 / r.1.as_secs_f64()).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let (a, b) = (per_point(&without), per_point(&with));
    row(
        &format!("ingest CPU per point, no subscription ({per_round} series)"),
        format!("{a:.0} ns"),
        "—",
    );
    row("ingest CPU per point, 1,000 NGSI-LD subscriptions", format!("{b:.0} ns"), "—");
    row(
        "cost of 1,000 subscriptions (whole process)",
        format!("{:+.1} %", (b / a - 1.0) * 100.0),
        "≤ 10 %",
    );
    row(
        "notifier thread, per point",
        format!("{:.0} ns", sub_cpu.as_nanos() as f64 / with_points.max(1) as f64),
        "—",
    );
    row(
        "ingest rate without / with",
        format!("{:.0} / {:.0} k/s", rate(&without) / 1e3, rate(&with) / 1e3),
        "—",
    );
    Ok(())
}

async fn bench_open_data(dir: &std::path::Path) -> anyhow::Result<()> {
    use agora_store::catalog::{Commune, Device, Site};
    use agora_store::opendata::{Dataset, DatasetKind, Resolution, Theme};
    let server = bench_server(dir.join("open-data")).await?;
    let state = &server.state;
    let now = state.clock.now();
    let insee = agora_model::InseeCode::parse("13001")?;
    state
        .catalog
        .upsert_commune(Commune {
            insee: insee.clone(),
            name: "Aix-en-Provence".into(),
            boundary: None,
        })
        .await?;
    let site = agora_model::SiteId::parse("hotel-de-ville")?;
    state
        .catalog
        .upsert_site(Site {
            id: site.clone(),
            commune: insee.clone(),
            name: "Hôtel de Ville".into(),
            lat: Some(43.5299),
            lon: Some(5.4474),
            geometry: None,
            to_review: false,
        })
        .await?;
    let devices: Vec<String> = (1..=6).map(|i| format!("aq-{i:02}")).collect();
    let mut series = Vec::new();
    for (i, id) in devices.iter().enumerate() {
        state
            .catalog
            .upsert_device(Device {
                id: agora_model::DeviceId::parse(id)?,
                kind: agora_model::DeviceKind::parse("air_quality")?,
                name: None,
                site: Some(site.clone()),
                commune: Some(insee.clone()),
                lat: Some(43.5299 + i as f64 * 1e-4),
                lon: Some(5.4474),
                metadata: serde_json::json!({}),
                created_at: now,
                last_seen: None,
            })
            .await?;
        let s = state
            .catalog
            .create_series(
                &agora_model::DeviceId::parse(id)?,
                &agora_model::PropertyName::parse("pm10")?,
                agora_model::ValueKind::Float,
                "ug/m3",
                None,
            )
            .await?
            .id;
        series.push(s);
    }
    let minutes: i64 = 365 * 24 * 60;
    let end = now.as_nanos() / 60_000_000_000 * 60_000_000_000;
    let start = end - minutes * 60_000_000_000;
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(600_000);
    for m in 0..minutes {
        let t = agora_model::Timestamp::from_nanos(start + m * 60_000_000_000);
        for (i, s) in series.iter().enumerate() {
            let v = 20.0
                + 10.0 * ((m as f64 / 1440.0 * std::f64::consts::TAU).sin())
                + i as f64
                + (m % 7) as f64 * 0.1;
            batch.push((*s, t, agora_model::Value::F64((v * 10.0).round() / 10.0)));
        }
        if batch.len() >= 600_000 {
            state.store.write(std::mem::take(&mut batch)).await?;
        }
    }
    state.store.write(batch).await?;
    state.store.flush().await?;
    state.store.maintain().await?;
    row(
        "a year of 6 sensors' minute PM10 written",
        format!("{:.0} s", t0.elapsed().as_secs_f64()),
        "—",
    );
    let d = |id: &str, resolution| Dataset {
        id: id.into(),
        kind: DatasetKind::Measurements,
        title: id.into(),
        description: "bench".into(),
        keywords: Vec::new(),
        theme: Theme::Air,
        commune: None,
        site: Some("hotel-de-ville".into()),
        properties: vec!["pm10".into()],
        resolution,
        embargo_hours: 0,
        licence: "etalab-2.0".into(),
        publisher: None,
        contact_email: None,
        published: true,
        created_at: now,
        modified_at: now,
    };
    state.datasets.put(d("air-raw", Resolution::Raw), now).await?;
    state.datasets.put(d("air-hourly", Resolution::Hourly), now).await?;
    let client = reqwest::Client::new();
    let base = format!("http://{}/api/explore/v2.1/catalog/datasets", server.addr);
    // The server's memory while an export streams: sampled every 50 ms.
    let watch = |stop: Arc<std::sync::atomic::AtomicBool>| {
        tokio::spawn(async move {
            let mut peak = rss_mib();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_mib());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    for format in ["csv", "parquet"] {
        let before = rss_mib();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peak = watch(stop.clone());
        let s = Instant::now();
        let mut r = client.get(format!("{base}/air-raw/exports/{format}")).send().await?;
        anyhow::ensure!(r.status().is_success(), "export {format}: {}", r.status());
        let mut bytes = 0u64;
        while let Some(chunk) = r.chunk().await? {
            bytes += chunk.len() as u64;
        }
        let took = s.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = peak.await?;
        let rows = (minutes as f64) * devices.len() as f64;
        let (value, target) = if format == "csv" {
            (format!("{:.0} MB/s", bytes as f64 / 1e6 / took), "≥ 50 MB/s")
        } else {
            (format!("{:.2} M rows/s", rows / 1e6 / took), "≥ 2 M rows/s")
        };
        row(
            &format!(
                "export {format}, a year of minutes ({:.2} M rows, {:.0} MB)",
                rows / 1e6,
                bytes as f64 / 1e6
            ),
            value,
            target,
        );
        row(
            &format!("  server RSS before → peak during the {format} export"),
            format!("{before:.0} → {peak:.0} MiB"),
            "flat",
        );
    }
    let time = |path: String| {
        let client = client.clone();
        async move {
            let mut times = Vec::new();
            for _ in 0..5 {
                let s = Instant::now();
                let r = client.get(&path).send().await?;
                anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
                r.bytes().await?;
                times.push(s.elapsed());
            }
            Ok::<_, anyhow::Error>(median(times))
        }
    };
    let q = "select=month(date)%20as%20m,avg(pm10)%20as%20pm10,count(*)%20as%20n&group_by=month(date)%20as%20m";
    let monthly = time(format!("{base}/air-hourly/records?{q}")).await?;
    row(
        "records, group_by=month(date) over a year (hourly)",
        format!("{:.0} ms", ms(monthly)),
        "≤ 100 ms",
    );
    let monthly_raw = time(format!("{base}/air-raw/records?{q}")).await?;
    row("  the same over the raw minutes (3.15 M rows)", format!("{:.0} ms", ms(monthly_raw)), "—");
    let catalogue = time(format!("http://{}/open-data", server.addr)).await?;
    row("catalogue page (/open-data)", format!("{:.1} ms", ms(catalogue)), "≤ 300 ms");
    let list = time(base.clone()).await?;
    row("catalogue API (/catalog/datasets)", format!("{:.1} ms", ms(list)), "≤ 300 ms");
    server.shutdown().await?;
    Ok(())
}

async fn bench_indicators(state: &agora_api::AppState, days: u32) -> anyhow::Result<()> {
    use agora_query::air::Area;
    let catalog = state.catalog.as_ref();
    let store = state.store.as_ref();
    let now = state.clock.now();
    let span = i64::from(days) * 86_400 * 1_000_000_000;
    let range = agora_query::TimeRange::new(now.saturating_add_nanos(-span), now)?;
    let tz = chrono_tz::Europe::Paris;
    let sites = catalog.sites();
    let mut times = Vec::new();
    let mut n_days = 0;
    for _ in 0..3 {
        let s = Instant::now();
        n_days = 0;
        for site in &sites {
            let a = Area::Site(site.id.clone());
            n_days += agora_query::air::atmo_daily(catalog, store, &a, range, tz).await?.len();
        }
        times.push(s.elapsed());
    }
    row(
        &format!(
            "ATMO of every day and place ({days} days, {} places, {n_days} indices)",
            sites.len()
        ),
        format!("{:.1} ms", ms(median(times))),
        "≤ 200 ms (1 year)",
    );
    let commune = Area::Commune(agora_model::InseeCode::parse("13001")?);
    let mut times = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        agora_query::regulatory::year(catalog, store, &commune, range, tz).await?;
        times.push(s.elapsed());
    }
    row(
        &format!("regulatory table of a commune ({days} days)"),
        format!("{:.1} ms", ms(median(times))),
        "≤ 300 ms (1 year)",
    );
    let noise = catalog
        .devices(&agora_store::catalog::DeviceFilter::default())
        .into_iter()
        .find(|d| d.kind.as_str() == "noise")
        .context("the demo has noise sensors")?;
    let opts = agora_query::noise::NoiseOptions::default();
    let mut times = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        agora_query::noise::noise_days(
            catalog,
            store,
            &Area::Device(noise.id.clone()),
            range,
            &opts,
        )
        .await?;
        times.push(s.elapsed());
    }
    row(
        &format!("Lden per day of one 1-minute noise series ({days} days)"),
        format!("{:.1} ms", ms(median(times))),
        "≤ 100 ms (1 year)",
    );
    // 50 sensors over 4 × 3 km, a warm centre and a gradient (deterministic).
    let samples: Vec<agora_indicators::interp::Sample> = (0..50u64)
        .map(|i| {
            let x = (i.wrapping_mul(2_654_435_761) % 4000) as f64;
            let y = (i.wrapping_mul(40_503) % 3000) as f64;
            let d = ((x - 2000.0).powi(2) + (y - 1500.0).powi(2)).sqrt();
            let value =
                24.0 + 3.0 * (-d / 900.0).exp() + 0.0004 * x + ((i * 7919) % 10) as f64 * 0.05;
            agora_indicators::interp::Sample { x, y, value }
        })
        .collect();
    let grid =
        agora_indicators::interp::Grid { x0: 20.0, y0: 15.0, dx: 40.0, dy: 30.0, nx: 100, ny: 100 };
    let mut times = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        agora_indicators::interp::map(&samples, &grid, agora_indicators::interp::Method::Best)?;
        times.push(s.elapsed());
    }
    row(
        "heat-island map, 10,000 cells, 50 sensors, IDW + 3 variograms with LOOCV",
        format!("{:.1} ms", ms(median(times))),
        "≤ 200 ms",
    );
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

/// A ChirpStack v4 uplink as published by its MQTT integration.
fn chirpstack_uplink(i: usize) -> String {
    format!(
        concat!(
            r#"{{"deduplicationId":"dedup-{i}","time":"2026-01-01T00:00:{s:02}Z","#,
            r#""deviceInfo":{{"tenantId":"t","applicationId":"a","applicationName":"air","deviceProfileName":"SDS011","#,
            r#""deviceName":"aq-{d}","devEui":"{d:016x}","tags":{{"kind":"air_quality"}}}},"#,
            r#""devAddr":"00189440","fCnt":{i},"fPort":1,"data":"AWcA/w==","object":{{"pm10":{pm}.5,"pm25":{pm2}.1}},"#,
            r#""rxInfo":[{{"gatewayId":"0016c001f153a14c","rssi":-91,"snr":7.5}},{{"gatewayId":"0016c001f153a14d","rssi":-80,"snr":9.0}}]}}"#
        ),
        i = i,
        s = i % 60,
        d = i % 1000,
        pm = 10 + i % 30,
        pm2 = 5 + i % 20
    )
}

/// Uplinks decoded per second on one core.
pub fn bench_chirpstack_decoding(n: usize) -> anyhow::Result<f64> {
    let msgs: Vec<String> = (0..n).map(chirpstack_uplink).collect();
    let layouts = Default::default();
    let started = Instant::now();
    let mut fields = 0;
    for m in &msgs {
        let e = agora_ingest::chirpstack::decode(
            "application/a/device/0000000000000001/event/up",
            m.as_bytes(),
            &layouts,
        )
        .map_err(anyhow::Error::msg)?;
        fields += e.decoded.records[0].fields.len();
    }
    // pm10, pm2_5, rssi, snr, f_cnt and the gateway count.
    anyhow::ensure!(fields == n * 6, "decoded {fields} fields");
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The `k`-th message of device `d` in the MQTT benches: its topic and payload.
fn mqtt_message(d: usize, k: usize) -> (String, String) {
    let ts = 1_767_225_600_000i64 + k as i64 * 60_000;
    let payload = format!(r#"{{"ts":{ts},"values":{{"laeq":{}.{}}}}}"#, 40 + (d + k) % 30, k % 10);
    (format!("agora/mq-{d:04}/telemetry"), payload)
}

/// `devices` MQTT 3.1.1 clients each publishing `per_device` QoS 1 messages to `port`; returns
/// once every message is acknowledged.
async fn mqtt_publishers(
    port: u16,
    user: &str,
    devices: usize,
    per_device: usize,
) -> anyhow::Result<()> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut tasks = Vec::with_capacity(devices);
    for d in 0..devices {
        let user = user.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut opts = MqttOptions::new(format!("bench-{d}"), "127.0.0.1", port);
            opts.set_keep_alive(Duration::from_secs(60));
            opts.set_credentials(user, "");
            opts.set_inflight(100);
            let (client, mut events) = AsyncClient::new(opts, 128);
            let publisher = tokio::spawn(async move {
                for k in 0..per_device {
                    let (topic, payload) = mqtt_message(d, k);
                    client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
                }
                anyhow::Ok(client)
            });
            let mut acked = 0;
            while acked < per_device {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("device {d}: {e}"),
                }
            }
            let client = publisher.await??;
            let _ = client.disconnect().await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The same as [`mqtt_publishers`] with MQTT 5 clients; a PUBACK whose reason is not success
/// fails the bench.
async fn mqtt5_publishers(
    port: u16,
    user: &str,
    devices: usize,
    per_device: usize,
) -> anyhow::Result<()> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let mut tasks = Vec::with_capacity(devices);
    for d in 0..devices {
        let user = user.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut opts = MqttOptions::new(format!("bench5-{d}"), "127.0.0.1", port);
            opts.set_keep_alive(Duration::from_secs(60));
            opts.set_credentials(user, "");
            // As for 3.1.1: 100 messages in flight, and a connection wait that 1,000 clients
            // starting at once on a small machine do not exceed.
            opts.set_outgoing_inflight_upper_limit(100);
            opts.set_connection_timeout(30);
            let (client, mut events) = AsyncClient::new(opts, 128);
            let publisher = tokio::spawn(async move {
                for k in 0..per_device {
                    let (topic, payload) = mqtt_message(d, k);
                    client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
                }
                anyhow::Ok(client)
            });
            let mut acked = 0;
            while acked < per_device {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(a))) => {
                        anyhow::ensure!(a.reason == PubAckReason::Success, "device {d}: {a:?}");
                        acked += 1;
                    }
                    Ok(_) => {}
                    Err(e) => anyhow::bail!("device {d}: {e}"),
                }
            }
            let client = publisher.await??;
            let _ = client.disconnect().await;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// MQTT figures: decoding, agora's endpoint, and a subscription to Mosquitto when installed.
pub async fn bench_mqtt(
    dir: &std::path::Path,
    devices: usize,
    per_device: usize,
) -> anyhow::Result<()> {
    let n = 200_000;
    row(
        "ChirpStack uplink decoding, one core",
        format!("{:.0} msg/s", bench_chirpstack_decoding(n)?),
        "≥ 200,000",
    );
    let total = (devices * per_device) as u64;

    // agora's own MQTT endpoint, in MQTT 3.1.1 then MQTT 5.
    for version in ["3.1.1", "5"] {
        let mut config = Config {
            data_dir: dir.join(format!("mqtt-endpoint-{version}")),
            http: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.mqtt.broker.listen = "127.0.0.1:0".parse()?;
        let server =
            serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) })
                .await?;
        let (_, token) = server.state.catalog.create_token("bench", Scope::Ingest, None).await?;
        let port = server.mqtt_addr.context("MQTT endpoint enabled")?.port();
        let started = Instant::now();
        if version == "5" {
            mqtt5_publishers(port, &token, devices, per_device).await?;
        } else {
            mqtt_publishers(port, &token, devices, per_device).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        let stored = server.state.store.stats().points;
        row(
            &format!(
                "MQTT {version} QoS 1 to agora's endpoint, {devices} devices, {total} messages, {stored} stored"
            ),
            format!("{:.0} msg/s", total as f64 / secs),
            "≥ 20,000, no loss",
        );
        server.shutdown().await?;
    }

    // Through Mosquitto, when installed: devices publish to it, agora subscribes.
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        row("MQTT QoS 1 through Mosquitto", "not installed".into(), "≥ 20,000, no loss");
        return Ok(());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("mosquitto.conf");
    // Mosquitto's defaults queue only 1,000 messages per client and keep 20 in flight; a broker
    // feeding a platform needs more, as an operator would configure.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\npersistence false\n"
        ),
    )?;
    let mut mosq = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = async {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut config = Config {
            data_dir: dir.join("mqtt-mosquitto"),
            http: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.mqtt.broker.enabled = false;
        config.mqtt.subscriptions = vec![agora_ingest::mqtt::Subscription {
            name: "bench".into(),
            broker: agora_mqtt::Broker { host: "127.0.0.1".into(), port, ..Default::default() },
            client_id: Some("agora-bench".into()),
            topics: vec!["agora/+/telemetry".into()],
            format: agora_ingest::MessageFormat::AgoraJson,
            layouts: Default::default(),
        }];
        let server =
            serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) })
                .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        mqtt_publishers(port, "device", devices, per_device).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while server.state.store.stats().points < total && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let stored = server.state.store.stats().points;
        row(
            &format!(
                "MQTT QoS 1 through Mosquitto, {devices} devices, {total} messages, {stored} stored"
            ),
            format!("{:.0} msg/s", stored as f64 / secs),
            "≥ 20,000, no loss",
        );
        server.shutdown().await
    }
    .await;
    let _ = mosq.kill();
    let _ = mosq.wait();
    result
}

/// Line protocol for the alerting bench: `lines` lines of 5 fields, writer `w` on 500 devices.
fn alert_bench_body(w: usize, b: usize, lines: usize) -> String {
    let t0: i64 = 1_767_225_600;
    let mut s = String::with_capacity(lines * 110);
    for l in 0..lines {
        // Each writer has its own 500 devices, whose points come in time order.
        let i = w * 500 + (b * lines + l) % 500;
        let step = (b * lines + l) / 500;
        let ts = t0 + (step as i64) * 60;
        let x = (i * 7 + step * 13) % 100;
        s.push_str(&format!(
            "air_quality,device=bench-{i:05} pm10={},no2={},o3={},temperature={},relative_humidity={} {ts}\n",
            10 + x / 10,
            20 + x / 5,
            40 + x / 3,
            10 + x % 10,
            50 + x % 9
        ));
    }
    s
}

/// What permission checks cost. Every request goes through the policy layer (one table lookup,
/// one token lookup, as authentication cost before); a commune's token adds its commune's checks
/// (each device of a batch against the token's commune at ingest; the catalog seen through the
/// commune at query). The same workloads run with a token of the Métropole (no tenancy filter)
/// and one of Aix, interleaved, and the difference is the tenancy's cost.
async fn bench_permissions(dir: &std::path::Path) -> anyhow::Result<()> {
    use agora_model::permissions::{Grant, Role};
    let server = bench_server(dir.join("permissions")).await?;
    let cat = &server.state.catalog;
    let aix = agora_model::InseeCode::parse("13001")?;
    cat.upsert_commune(agora_store::catalog::Commune {
        insee: aix.clone(),
        name: "Aix-en-Provence".into(),
        boundary: None,
    })
    .await?;
    for i in 0..2_000 {
        cat.upsert_device(agora_store::catalog::Device {
            id: agora_model::DeviceId::parse(&format!("bench-{i:05}"))?,
            kind: agora_model::DeviceKind::parse("air_quality")?,
            name: None,
            site: None,
            commune: Some(aix.clone()),
            lat: None,
            lon: None,
            metadata: serde_json::json!({}),
            created_at: agora_model::Timestamp::EPOCH,
            last_seen: None,
        })
        .await?;
    }
    let grant = |role, commune: Option<&agora_model::InseeCode>| {
        Grant::new(role, commune.cloned(), None).map_err(anyhow::Error::msg)
    };
    let (_, metro_ingest) =
        cat.create_token_granted("metropole", grant(Role::Device, None)?, None).await?;
    let (_, aix_ingest) =
        cat.create_token_granted("aix", grant(Role::Device, Some(&aix))?, None).await?;
    let (_, metro_read) =
        cat.create_token_granted("metropole viewer", grant(Role::Viewer, None)?, None).await?;
    let (_, aix_read) =
        cat.create_token_granted("aix viewer", grant(Role::Viewer, Some(&aix))?, None).await?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();

    // The policy table: one lookup per request.
    let (_, took) = timed(|| {
        let m = axum::http::Method::POST;
        (0..1_000_000).filter(|_| agora_api::policy::access(&m, "/api/v2/write").is_some()).count()
    });
    row("policy table lookup", format!("{:.0} ns", took.as_nanos() as f64 / 1e6), "—");

    // Ingest: 4 writers × 10 batches of 5,000 lines (25,000 points), each token in turn.
    let ingest = |token: String, round: usize| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..4 {
                let (client, base, auth) = (client.clone(), base.clone(), format!("Token {token}"));
                tasks.push(tokio::spawn(async move {
                    for b in 0..10 {
                        let body = alert_bench_body(w, round * 10 + b, 5_000);
                        write_lines(&client, &base, &auth, body).await?;
                    }
                    anyhow::Ok(())
                }));
            }
            for t in tasks {
                t.await??;
            }
            anyhow::Ok(4.0 * 10.0 * 5_000.0 * 5.0 / started.elapsed().as_secs_f64())
        }
    };
    // A first round makes the series: both measures then write to series that exist.
    ingest(metro_ingest.clone(), 0).await?;
    let (mut metro, mut commune) = (Vec::new(), Vec::new());
    // Interleaved A B B A …, so that the machine's drift and the store's periodic work (flushes,
    // compactions) fall on both alike.
    let abba = |round: usize| matches!(round % 4, 0 | 3);
    for round in 1..=16 {
        if abba(round) {
            metro.push(ingest(metro_ingest.clone(), round).await?);
        } else {
            commune.push(ingest(aix_ingest.clone(), round).await?);
        }
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m, c) = (med(metro), med(commune));
    row("ingest, token of the Métropole", format!("{:.0} pt/s", m), "—");
    row("ingest, token of a commune", format!("{:.0} pt/s", c), "—");
    row("ingest cost of tenancy (measured)", format!("{:+.1} %", (m / c - 1.0) * 100.0), "≤ 2 %");
    // What the commune's check itself costs: one catalog lookup per device of a batch (500
    // devices in a batch of 25,000 points here), set against a point's ingest time.
    let (_, took) = timed(|| {
        (0..1_000_000)
            .filter(|i| cat.device_commune(&format!("bench-{:05}", i % 2_000)).is_some())
            .count()
    });
    let per_lookup = took.as_secs_f64() / 1e6;
    row("commune check, per device of a batch", format!("{:.0} ns", per_lookup * 1e9), "—");
    let share = 500.0 * per_lookup / (25_000.0 / c);
    row("its share of a batch's ingest time", format!("{:.2} %", share * 100.0), "≤ 2 %");

    // Queries: an hourly aggregate of one device, and the device list, each token in turn.
    let query = |token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let mut times = Vec::new();
            for i in 0..200 {
                let path = if i % 2 == 0 {
                    format!(
                        "/api/v1/aggregate?device=bench-{:05}&property=pm10&from=1767225600&to=1767312000&every=1h&fn=mean",
                        i % 500
                    )
                } else {
                    "/api/v1/devices?kind=air_quality".to_owned()
                };
                let started = Instant::now();
                client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                times.push(started.elapsed());
            }
            anyhow::Ok(times.iter().sum::<Duration>())
        }
    };
    query(metro_read.clone()).await?;
    let (mut metro, mut commune) = (Vec::new(), Vec::new());
    for round in 0..16 {
        if abba(round) {
            metro.push(query(metro_read.clone()).await?.as_secs_f64());
        } else {
            commune.push(query(aix_read.clone()).await?.as_secs_f64());
        }
    }
    let (m, c) = (med(metro), med(commune));
    row("200 queries, viewer of the Métropole", format!("{:.0} ms", m * 1e3), "—");
    row("200 queries, viewer of a commune", format!("{:.0} ms", c * 1e3), "—");
    row("query cost of tenancy", format!("{:+.1} %", (c / m - 1.0) * 100.0), "≤ 2 %");
    server.shutdown().await?;
    Ok(())
}

/// CPU time used by this process so far, user and system (Linux: `/proc/self/stat`, in clock
/// ticks of 10 ms).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses: utime and stime are the 14th
    // and 15th fields of the line.
    let f: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time used so far by this process's threads of a given name (`/proc/self/task/*/schedstat`,
/// in nanoseconds).
fn thread_cpu(name: &str) -> Option<Duration> {
    let mut ns = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
            let sched = std::fs::read_to_string(dir.join("schedstat")).ok()?;
            ns += sched.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(Duration::from_nanos(ns))
}

/// Ingest throughput with and without 1,000 active rules, the CPU time the evaluator spends
/// per point against the CPU time of ingestion itself, and the delay from a point to the
/// webhook of the alert it opens (or resolves).
pub async fn bench_alerts(dir: &std::path::Path) -> anyhow::Result<()> {
    const WRITERS: usize = 4;
    const BATCHES: usize = 100;
    const LINES: usize = 5_000;
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    // CPU nanoseconds per point: the whole process without rules, the evaluator with them.
    let (mut ingest_cpu, mut eval_cpu) = (Vec::new(), Vec::new());
    for round in 0..10 {
        let with_rules = round % 2 == 1;
        let mut config = Config {
            data_dir: dir.join(format!("alerts-{round}")),
            http: "127.0.0.1:0".parse()?,
            ..Config::default()
        };
        config.mqtt.broker.enabled = false;
        let server = serve::start(ServeOptions {
            config,
            admin_token: Some("bench-admin-token-0123456789".into()),
            clock: Arc::new(SystemClock),
        })
        .await?;
        let client = reqwest::Client::new();
        let base = format!("http://{}", server.addr);
        let auth = "Bearer bench-admin-token-0123456789";
        // Register devices and series first, as in production.
        for w in 0..WRITERS {
            client
                .post(format!("{base}/api/v2/write?precision=s"))
                .header("authorization", auth)
                .body(alert_bench_body(w, 0, 500))
                .send()
                .await?
                .error_for_status()?;
        }
        if with_rules {
            // 1,000 rules as a city would have them: 980 on single devices (thresholds,
            // sustained levels, rates, combinations) and 20 on every device of a kind.
            for i in 0..1_000 {
                let condition = match i % 5 {
                    0 | 1 => {
                        serde_json::json!({"threshold": {"property": "pm10", "op": ">", "value": 900.0}})
                    }
                    2 => {
                        serde_json::json!({"sustained": {"property": "no2", "op": ">", "value": 900.0, "for": "30m"}})
                    }
                    3 => {
                        serde_json::json!({"rate": {"property": "temperature", "op": ">", "value": 50.0, "over": "1h"}})
                    }
                    _ => {
                        serde_json::json!({"all": [{"threshold": {"property": "o3", "op": ">", "value": 900.0}}, {"threshold": {"property": "relative_humidity", "op": "<", "value": 0.0}}]})
                    }
                };
                let scope = if i < 980 {
                    serde_json::json!({"device": format!("bench-{:05}", i * 2)})
                } else {
                    serde_json::json!({"kind": "air_quality"})
                };
                let rule = serde_json::json!({"id": format!("bench-{i}"), "scope": scope, "condition": condition});
                client
                    .post(format!("{base}/api/v1/rules"))
                    .header("authorization", auth)
                    .json(&rule)
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        // Let the set-up's catalog writes settle before timing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let bodies: Vec<Arc<Vec<String>>> = (0..WRITERS)
            .map(|w| Arc::new((0..BATCHES).map(|b| alert_bench_body(w, b, LINES)).collect()))
            .collect();
        let (cpu0, eval0) = (process_cpu(), thread_cpu("agora-alerts"));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for bodies in &bodies {
            let (client, url) = (client.clone(), format!("{base}/api/v2/write?precision=s"));
            let bodies = bodies.clone();
            tasks.push(tokio::spawn(async move {
                for body in bodies.iter() {
                    let r = client
                        .post(&url)
                        .header("authorization", auth)
                        .body(body.clone())
                        .send()
                        .await?;
                    anyhow::ensure!(r.status().as_u16() == 204, "write failed: {}", r.status());
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let points = (WRITERS * BATCHES * LINES * 5) as f64;
        rates[usize::from(with_rules)].push(points / started.elapsed().as_secs_f64());
        // The evaluator works behind ingestion: wait until it has caught up.
        let mut eval1 = thread_cpu("agora-alerts");
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = thread_cpu("agora-alerts");
            if now == eval1 {
                break;
            }
            eval1 = now;
        }
        let per_point = |a: Option<Duration>, b: Option<Duration>| {
            a.zip(b).map(|(a, b)| b.saturating_sub(a).as_nanos() as f64 / points)
        };
        if with_rules {
            eval_cpu.extend(per_point(eval0, eval1));
        } else {
            ingest_cpu.extend(per_point(cpu0, process_cpu()));
        }
        server.shutdown().await?;
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (without, with) = (best(&rates[0]), best(&rates[1]));
    row("ingest without rules (best of 5)", format!("{without:.0} points/s"), "—");
    row(
        "ingest with 1,000 active rules (best of 5)",
        format!("{with:.0} points/s ({:+.1} %)", (with / without - 1.0) * 100.0),
        "≥ −10 %",
    );
    let mid = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    if let (Some(ingest), Some(eval)) = (mid(ingest_cpu), mid(eval_cpu)) {
        row(
            "CPU per point: evaluator (1,000 rules) / ingestion",
            format!("{eval:.0} / {ingest:.0} ns ({:.1} %)", eval / ingest * 100.0),
            "≤ 10 %",
        );
    }

    // Point → webhook delay: a rule opens on 600 and resolves on 100, each event posted to a
    // receiver in this process.
    let mut config = Config {
        data_dir: dir.join("alerts-latency"),
        http: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.mqtt.broker.enabled = false;
    // The webhook receiver is on loopback, which webhooks may only reach when allow-listed.
    config.alerts.allow_hosts = vec!["127.0.0.1".parse().map_err(|e| anyhow::anyhow!("{e}"))?];
    let server = serve::start(ServeOptions {
        config,
        admin_token: Some("bench-admin-token-0123456789".into()),
        clock: Arc::new(SystemClock),
    })
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Instant::now());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    let receiver = tokio::spawn(async move { axum::serve(listener, hook).await });
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let auth = "Bearer bench-admin-token-0123456789";
    let rule = serde_json::json!({"id": "latency", "scope": {"device": "lat-1"},
        "condition": {"threshold": {"property": "pm10", "op": ">", "value": 500.0}},
        "actions": [{"webhook": {"url": hook_url, "secret": "s", "on": ["opened", "resolved"]}}]});
    client
        .post(format!("{base}/api/v1/rules"))
        .header("authorization", auth)
        .json(&rule)
        .send()
        .await?
        .error_for_status()?;
    let now = chrono::Utc::now().timestamp() - 3_600;
    let mut delays = Vec::new();
    for i in 0..400i64 {
        let v = if i % 2 == 0 { 600 } else { 100 };
        let sent = Instant::now();
        client
            .post(format!("{base}/api/v2/write?precision=s"))
            .header("authorization", auth)
            .body(format!("air_quality,device=lat-1 pm10={v} {}", now + i))
            .send()
            .await?
            .error_for_status()?;
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .context("no webhook within 10 s")?
            .context("receiver gone")?;
        delays.push(got.duration_since(sent));
    }
    delays.sort();
    let p = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    row(
        "point → alert → webhook, 400 events (p50 / p99)",
        format!("{:.1} / {:.1} ms", ms(p(0.5)), ms(p(0.99))),
        "p99 ≤ 1 s",
    );
    receiver.abort();
    server.shutdown().await?;
    bench_window_rules(dir).await
}

/// The scheduled cost of window rules, which re-read their completed windows every second: daily
/// PM10 means (Paris days) over every air sensor and hourly night-time noise levels (energy
/// means, LAeq 22 h – 6 h) over every noise meter, on two days of 5-minute data. Measured as the
/// process's CPU while idle, with the rules against without them.
async fn bench_window_rules(dir: &std::path::Path) -> anyhow::Result<()> {
    const AIR: usize = 2_000;
    const NOISE: usize = 200;
    const STEP: i64 = 300;
    let mut config = Config {
        data_dir: dir.join("alerts-windows"),
        http: "127.0.0.1:0".parse()?,
        ..Config::default()
    };
    config.mqtt.broker.enabled = false;
    let server = serve::start(ServeOptions {
        config,
        admin_token: Some("bench-admin-token-0123456789".into()),
        clock: Arc::new(SystemClock),
    })
    .await?;
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let auth = "Bearer bench-admin-token-0123456789";
    let end = chrono::Utc::now().timestamp() / STEP * STEP;
    let start = end - 2 * 86_400;
    let mut body = String::new();
    let mut points = 0usize;
    for t in (start..end).step_by(STEP as usize) {
        for d in 0..AIR + NOISE {
            let x = (d as i64 * 7 + t / STEP * 13) % 100;
            if d < AIR {
                body.push_str(&format!(
                    "air_quality,device=win-air-{d:04} pm10={} {t}\n",
                    10 + x / 3
                ));
            } else {
                body.push_str(&format!("noise,device=win-noise-{d:04} laeq={} {t}\n", 40 + x / 4));
            }
            points += 1;
        }
        if body.len() > 1 << 20 {
            write_lines(&client, &base, auth, std::mem::take(&mut body)).await?;
        }
    }
    write_lines(&client, &base, auth, body).await?;
    server.state.store.flush().await?;
    let idle_cpu = || async {
        // Settle, then ten seconds of idle: ten scheduled ticks.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let c0 = process_cpu();
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(10)).await;
        process_cpu()
            .zip(c0)
            .map(|(b, a)| b.saturating_sub(a).as_secs_f64() / t0.elapsed().as_secs_f64())
    };
    let before = idle_cpu().await;
    let added = process_cpu();
    for rule in [
        serde_json::json!({"id": "pm10-daily", "scope": {"kind": "air_quality"},
            "condition": {"window": {"property": "pm10", "fn": "mean", "every": "1d", "tz": "Europe/Paris", "op": ">", "value": 50.0}}}),
        serde_json::json!({"id": "lnight-hourly", "scope": {"kind": "noise"},
            "condition": {"window": {"property": "laeq", "fn": "mean", "every": "1h", "op": ">", "value": 55.0}},
            "schedule": {"from": "22:00", "to": "06:00"}}),
    ] {
        client
            .post(format!("{base}/api/v1/rules"))
            .header("authorization", auth)
            .json(&rule)
            .send()
            .await?
            .error_for_status()?;
    }
    // The first evaluation reads every device's completed windows: wait until it is over.
    let mut last = process_cpu();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = process_cpu();
        let busy = now.zip(last).map(|(b, a)| b.saturating_sub(a));
        last = now;
        if busy.is_none_or(|b| b < Duration::from_millis(50)) {
            break;
        }
    }
    let first = last.zip(added).map(|(b, a)| b.saturating_sub(a));
    let after = idle_cpu().await;
    if let (Some(before), Some(after), Some(first)) = (before, after, first) {
        row(
            &format!("window rules ({AIR} daily PM10, {NOISE} hourly LAeq): first evaluation"),
            format!("{:.2} s of CPU", first.as_secs_f64()),
            "—",
        );
        row(
            &format!("window rules: idle CPU without → with ({points} points)"),
            format!("{:.1} % → {:.1} % of a core", before * 100.0, after * 100.0),
            "negligible",
        );
    }
    server.shutdown().await?;
    Ok(())
}

/// Write line protocol (seconds) as the admin.
async fn write_lines(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    body: String,
) -> anyhow::Result<()> {
    client
        .post(format!("{base}/api/v2/write?precision=s"))
        .header("authorization", auth)
        .body(body)
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
