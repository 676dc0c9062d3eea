//! `agora bench --soak`: sustained ingest while strangers try to exhaust the server, then a check
//! that every acknowledged point is stored (issue 10: "80 % of maximum ingest for 30 minutes with
//! 500 slow sockets, 300 live-map clients and one abusive token at the same time").
//!
//! One real server runs in this process, as in `bench.rs`, with a default configuration except
//! that no address is trusted: each kind of client comes from its own loopback addresses (Linux
//! routes all of 127.0.0.0/8 to loopback), so the per-address connection caps and rate limits
//! apply as they would to clients on the Internet. At the same time:
//!
//! - 8 ingest writers, each with its own token, address and 250 devices (10,000 series in all),
//!   send InfluxDB line protocol at the target rate, durability on, and note which batches were
//!   acknowledged;
//! - 500 slow sockets trickle a request head one byte a second and reconnect when the server
//!   closes them;
//! - 300 anonymous live-map clients follow `GET /api/v1/live`, and one client times
//!   `GET /api/v1/public/map` every 2 seconds;
//! - one ingest token sends 4 MiB bodies of unknown fields back to back.
//!
//! Resident memory and file descriptors are the whole process's (server and clients), so they are
//! conservative, as in `bench.rs`. At the end every acknowledged point is looked up in the store,
//! on the running server and again after a restart.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_api::AppState;
use agora_model::{SystemClock, Timestamp};
use agora_store::catalog::Scope;
use anyhow::Context;
use axum::body::Bytes;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::bench::rss_mib;
use crate::config::Config;
use crate::serve::{self, ServeOptions, Server};

/// Concurrent ingest writers, each with its own token, source address and devices.
const WRITERS: usize = 8;
/// Devices of each writer: 2,000 in all, 10,000 series, as in the ingest bench.
const DEVICES_PER_WRITER: usize = 250;
/// Properties on each line.
const FIELDS: usize = 5;
/// Seconds of data in a batch: every device has one line a second (1 Hz sensors, so that half an
/// hour of soak holds days, not months, of data, and memory measures leaks rather than a growing
/// index).
const STEPS_PER_BATCH: usize = 20;
/// Points in a batch: 5,000 lines of 5 fields.
const POINTS_PER_BATCH: usize = STEPS_PER_BATCH * DEVICES_PER_WRITER * FIELDS;
/// Batches each writer sends, as fast as it can, to measure the burst maximum (`max_minutes` 0).
const MAX_RUN_BATCHES: usize = 20;
/// Batches a writer may send a second at most, to place a sustained measure's data in the past.
const MAX_BATCHES_PER_SEC: usize = 40;
/// The share of the maximum the soak sends.
const SHARE_OF_MAX: f64 = 0.8;

/// Slow sockets, and the addresses they come from (10 each, well under the per-address cap).
const SLOW_SOCKETS: usize = 500;
const SLOW_ADDRESSES: usize = 50;
/// A slow socket sends a byte this often.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// A slow socket refused at once waits this long before trying again (a closed one at once).
const SLOW_RETRY: Duration = Duration::from_secs(1);
/// Live-map clients, and the addresses they come from (at most 8 each, the per-address cap).
const LIVE_CLIENTS: usize = 300;
const LIVE_ADDRESSES: usize = 40;
/// A browser's `EventSource` reconnects after about 3 seconds.
const LIVE_RETRY: Duration = Duration::from_secs(3);
/// The public map is fetched this often.
const MAP_EVERY: Duration = Duration::from_secs(2);
/// Size of the abusive token's bodies.
const ABUSE_BODY: usize = 4 << 20;
/// A progress line this often.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// Ingest is unaffected when the soak delivers at least this share of the target rate overall
/// (and every write is acknowledged).
const INGEST_MIN: f64 = 0.95;
/// The public map is unaffected when its 99th percentile stays under this.
const MAP_P99_MAX: Duration = Duration::from_millis(500);
/// Memory is flat when its last value is at most this multiple of the value after two minutes.
const RSS_GROWTH_MAX: f64 = 1.2;
/// When the reference memory figure is taken (or halfway through a shorter soak).
const RSS_REFERENCE_AT: Duration = Duration::from_secs(120);
/// RSS is compared as the highest of a minute's samples (one a second), at the reference time
/// and at the end: memory an allocator gives back between flushes and compactions makes any
/// single sample a matter of luck, while the high-water mark of a working set that does not grow
/// stays put.
const RSS_WINDOW: Duration = Duration::from_secs(60);

/// Kinds of client, each on its own 127.K.0.0/16.
const WRITER_NET: u8 = 1;
const MAP_NET: u8 = 2;
const ABUSE_NET: u8 = 3;
const LIVE_NET: u8 = 4;
const SLOW_NET: u8 = 5;

/// Soak settings.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// How long the load lasts.
    pub minutes: u64,
    /// Points per second the writers send; `None`: 80 % of the maximum, measured first.
    pub rate: Option<u64>,
    /// Minutes the maximum is measured over, the writers sending back to back on a fresh server
    /// with no other load, so that it includes the flushes and compactions a sustained load
    /// brings; 0: a burst of 4 M points, before the first flush (an upper bound no sustained
    /// load reaches).
    pub max_minutes: u64,
    /// Keep the data directory.
    pub keep: bool,
}

/// Run the soak benchmark; an error when it does not meet the criteria.
pub async fn run(opts: SoakOptions) -> anyhow::Result<()> {
    check_fd_limit()?;
    let dir = std::env::temp_dir().join(format!("agora-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    println!("agora soak — data in {}", dir.display());
    let result = soak(&dir, &opts).await;
    if opts.keep {
        println!("data kept in {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).ok();
    }
    result
}

async fn soak(dir: &Path, opts: &SoakOptions) -> anyhow::Result<()> {
    let target = match opts.rate {
        Some(r) => r as f64,
        None => {
            let max = measure_max(&dir.join("max"), opts.max_minutes).await?;
            let over = match opts.max_minutes {
                0 => "a 4 M-point burst".to_owned(),
                m => format!("sustained over {m} min"),
            };
            println!(
                "maximum ingest: {max:.0} points/s ({over}, {WRITERS} writers, 5,000-line batches, no other load); target {:.0} %",
                SHARE_OF_MAX * 100.0
            );
            max * SHARE_OF_MAX
        }
    };
    anyhow::ensure!(target >= 1.0, "the target rate must be at least 1 point/s");
    let duration = Duration::from_secs(opts.minutes.max(1) * 60);
    // Each writer sends a batch every `every`, so that all of them together send `target`.
    let every = Duration::from_secs_f64((WRITERS * POINTS_PER_BATCH) as f64 / target);
    let max_batches = (duration.as_secs_f64() / every.as_secs_f64()).ceil() as usize + 2;
    let t0 = data_start(max_batches);

    let mut config = soak_config(dir.join("soak"))?;
    raise_ingest_limits(&mut config, every);
    let h = &config.limits.http;
    println!(
        "load: {target:.0} points/s ({WRITERS} writers, a batch each every {:.0} ms) for {} min; \
         {SLOW_SOCKETS} slow sockets, {LIVE_CLIENTS} live-map clients, 1 abusive token",
        every.as_secs_f64() * 1000.0,
        duration.as_secs() / 60
    );
    println!(
        "limits (defaults, no address trusted): {} connections ({} per address), {} live streams \
         ({} per address), request head within {} s — the clients exceed them on purpose",
        h.max_connections,
        h.max_connections_per_address,
        config.limits.live.max_streams,
        config.limits.live.max_streams_per_address,
        h.header_timeout_secs
    );
    let header_timeout = Duration::from_secs(h.header_timeout_secs.max(1));

    let server = start(config.clone()).await?;
    let base = format!("http://{}", server.addr);
    let stats = Arc::new(Stats::default());
    let writers = make_writers(&server, t0, &stats).await?;
    let warm_up = stats.acked_points.load(Relaxed);
    let idle_map = idle_map_latency(&base).await?;
    println!(
        "public map on the idle server: p50 {:.1} ms, p99 {:.1} ms",
        ms(quantile(&idle_map, 0.5)),
        ms(quantile(&idle_map, 0.99))
    );

    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let mut writer_tasks = Vec::new();
    for (w, writer) in writers.into_iter().enumerate() {
        // Writers start a fraction of an interval apart, so that batches arrive evenly.
        let first = started + every.mul_f64(w as f64 / WRITERS as f64);
        let (stats, stopped) = (stats.clone(), stopped.clone());
        writer_tasks.push(tokio::spawn(writer.paced(every, first, max_batches, stats, stopped)));
    }
    let mut load = Vec::new();
    load.push(tokio::spawn(map_client(source(MAP_NET, 0), base.clone(), stats.clone())));
    let abusive = server.state.catalog.create_token("soak-abuser", Scope::Ingest, None).await?.1;
    load.push(tokio::spawn(abuser(source(ABUSE_NET, 0), base.clone(), abusive, stats.clone())));
    for a in 0..LIVE_ADDRESSES {
        let client = client_from(source(LIVE_NET, a))?;
        for _ in (a..LIVE_CLIENTS).step_by(LIVE_ADDRESSES) {
            load.push(tokio::spawn(live_client(client.clone(), base.clone(), stats.clone())));
        }
    }
    for i in 0..SLOW_SOCKETS {
        let (local, stats) = (source(SLOW_NET, i % SLOW_ADDRESSES), stats.clone());
        // Spread over the first 5 seconds, so that they do not all time out together.
        let delay = Duration::from_millis(10 * i as u64);
        load.push(tokio::spawn(slow_socket(server.addr, local, delay, stats)));
    }

    // Progress: memory every second, a line every 30 seconds.
    let rss_reference_at = RSS_REFERENCE_AT.min(duration / 2);
    let rss_window = RSS_WINDOW.min(duration / 4);
    let mut rss = RssTrack { first: rss_mib(), samples: Vec::new() };
    let mut interval = Interval::start(&stats);
    let mut slowest_interval = f64::INFINITY;
    let mut tick =
        tokio::time::interval_at((started + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut next_report = REPORT_EVERY;
    loop {
        tick.tick().await;
        let elapsed = started.elapsed();
        let now_rss = rss_mib();
        rss.samples.push((elapsed, now_rss));
        let done = elapsed >= duration;
        if elapsed >= next_report || done {
            let line = interval.report(&stats, &server.state, elapsed, target, now_rss);
            // A last stretch of a few seconds says little about the rate.
            if line.secs >= 10.0 {
                slowest_interval = slowest_interval.min(line.points_per_sec / target);
            }
            println!("{}", line.text);
            next_report += REPORT_EVERY;
        }
        if done {
            break;
        }
    }

    // Stop: writers finish the request they are in (its answer counts), the rest just go.
    let _ = stop.send(true);
    let mut ledgers = Vec::new();
    for t in writer_tasks {
        ledgers.push(t.await?.acked);
    }
    let soak_secs = started.elapsed().as_secs_f64();
    for t in &load {
        t.abort();
    }
    let acked: u64 =
        ledgers.iter().flatten().filter(|a| **a).count() as u64 * POINTS_PER_BATCH as u64;
    let achieved = (acked - warm_up) as f64 / soak_secs;

    println!(
        "checking every acknowledged point ({acked} points, {} series)…",
        WRITERS * DEVICES_PER_WRITER * FIELDS
    );
    let running = verify(&server.state, &ledgers, t0).await?;
    server.shutdown().await?;
    let server = start(config.clone()).await?;
    let restarted = verify(&server.state, &ledgers, t0).await?;
    server.shutdown().await?;
    let lost = running.missing.max(restarted.missing);
    println!(
        "acknowledged points lost: {lost} ({} on the running server, {} after a restart); \
         unacknowledged points stored: {}",
        running.missing, restarted.missing, restarted.extra
    );
    let elapsed = rss.samples.last().map_or(Duration::ZERO, |s| s.0);
    let reference = rss.peak(rss_reference_at, rss_reference_at + rss_window);
    let last = rss.peak(elapsed.saturating_sub(rss_window), elapsed + rss_window);
    println!(
        "RSS (server and clients): first {:.0} MiB, highest from {} to {} s {reference:.0} MiB, highest in the last {} s {last:.0} MiB, last {:.0} MiB, max {:.0} MiB",
        rss.first,
        rss_reference_at.as_secs(),
        (rss_reference_at + rss_window).as_secs(),
        rss_window.as_secs(),
        rss.samples.last().map_or(f64::NAN, |s| s.1),
        rss.peak(Duration::ZERO, elapsed + rss_window),
    );
    println!(
        "data directory after the soak: {:.0} MiB",
        crate::bench_fleet::dir_bytes(&dir.join("soak")) as f64 / 1048576.0
    );
    print_totals(&stats);

    // The verdict against the criteria.
    let map = {
        let mut all = stats.map_all.lock().expect("not poisoned").clone();
        all.sort();
        all
    };
    let write_failures = stats.write_failures.load(Relaxed);
    let map_failures = stats.map_failures.load(Relaxed);
    let longest_slow = Duration::from_millis(stats.slow_longest_ms.load(Relaxed));
    let mut failed = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        println!("  {name:<22} {} — {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed.push(name.to_owned());
        }
    };
    println!("verdict (issue 10):");
    check(
        "ingest unaffected",
        achieved >= INGEST_MIN * target && write_failures == 0,
        format!(
            "{achieved:.0} of {target:.0} points/s ({:.1} %, slowest 30 s {:.1} %), {write_failures} failed writes (want ≥ {:.0} %, none failed)",
            achieved / target * 100.0,
            slowest_interval * 100.0,
            INGEST_MIN * 100.0
        ),
    );
    let p99 = quantile(&map, 0.99);
    check(
        "public map unaffected",
        !map.is_empty() && p99 <= MAP_P99_MAX && map_failures == 0,
        format!(
            "p50 {:.1} ms, p99 {:.1} ms over {} requests, {map_failures} failed; idle p99 {:.1} ms (want p99 ≤ {} ms, none failed)",
            ms(quantile(&map, 0.5)),
            ms(p99),
            map.len(),
            ms(quantile(&idle_map, 0.99)),
            MAP_P99_MAX.as_millis()
        ),
    );
    check(
        "RSS flat",
        last <= RSS_GROWTH_MAX * reference,
        format!(
            "highest in the last {} s {last:.0} MiB = {:.2} × the highest from {} to {} s, {reference:.0} MiB (want ≤ {RSS_GROWTH_MAX})",
            rss_window.as_secs(),
            last / reference,
            rss_reference_at.as_secs(),
            (rss_reference_at + rss_window).as_secs(),
        ),
    );
    check("no acknowledged loss", lost == 0, format!("{lost} acknowledged points lost"));
    check(
        "slow sockets cut",
        longest_slow <= header_timeout + Duration::from_secs(2),
        format!(
            "longest open {:.1} s (header timeout {} s)",
            longest_slow.as_secs_f64(),
            header_timeout.as_secs()
        ),
    );
    anyhow::ensure!(
        failed.is_empty(),
        "the soak did not meet issue 10's criteria: {}",
        failed.join(", ")
    );
    println!("PASS");
    Ok(())
}

/// The soak's server configuration: defaults, durable writes, no MQTT, no trusted address.
fn soak_config(data_dir: PathBuf) -> anyhow::Result<Config> {
    let mut config = Config { data_dir, http: "127.0.0.1:0".parse()?, ..Config::default() };
    config.storage.fsync = true;
    config.mqtt.broker.enabled = false;
    // Loopback is trusted by default, which would exempt every client below from the caps and
    // rate limits; the soak's clients are strangers.
    config.limits.trusted = Vec::new();
    Ok(config)
}

/// Raise the ingest rate limits only if the writers, sending a batch every `every` each, would
/// come near them legitimately (they do not at a few million points a second), and say so.
fn raise_ingest_limits(config: &mut Config, every: Duration) {
    let per_writer = 1.0 / every.as_secs_f64();
    let r = &mut config.limits.rate;
    let near = |limit: f64| limit > 0.0 && per_writer > limit / 2.0;
    if near(r.ingest_per_token) || near(r.ingest_per_address) {
        let need = (per_writer * 4.0).ceil();
        r.ingest_per_token = r.ingest_per_token.max(need);
        r.ingest_per_address = r.ingest_per_address.max(need);
        r.ingest_per_token_burst = r.ingest_per_token_burst.max(need);
        r.ingest_per_address_burst = r.ingest_per_address_burst.max(need);
        println!(
            "note: each writer sends {per_writer:.0} requests/s; ingest rate limits raised to {need:.0}/s per token and per address (the abusive token gets the same)"
        );
    }
}

async fn start(config: Config) -> anyhow::Result<Server> {
    serve::start(ServeOptions { config, admin_token: None, clock: Arc::new(SystemClock) }).await
}

/// The maximum ingest rate of the soak's workload on a fresh server with no other load: over
/// `minutes` of writers sending back to back (a line every 30 s), or, with 0, over a burst of
/// [`MAX_RUN_BATCHES`] batches each.
async fn measure_max(dir: &Path, minutes: u64) -> anyhow::Result<f64> {
    let server = start(soak_config(dir.to_path_buf())?).await?;
    let stats = Arc::new(Stats::default());
    let duration = Duration::from_secs(minutes * 60);
    let batches = if minutes == 0 {
        MAX_RUN_BATCHES
    } else {
        MAX_BATCHES_PER_SEC * duration.as_secs() as usize
    };
    let writers = make_writers(&server, data_start(batches + 1), &stats).await?;
    let started = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|mut w| {
            let stats = stats.clone();
            tokio::spawn(async move {
                for _ in 0..batches {
                    if minutes > 0 && started.elapsed() >= duration {
                        break;
                    }
                    w.send(&stats).await;
                }
            })
        })
        .collect();
    let progress = tokio::spawn({
        let stats = stats.clone();
        async move {
            if minutes == 0 {
                return;
            }
            let mut last = 0;
            let mut tick = tokio::time::interval_at((started + REPORT_EVERY).into(), REPORT_EVERY);
            loop {
                tick.tick().await;
                let now = stats.acked_points.load(Relaxed);
                println!(
                    "  measuring the maximum, {:>4} s: {:.0} points/s",
                    started.elapsed().as_secs(),
                    (now - last) as f64 / REPORT_EVERY.as_secs_f64()
                );
                last = now;
            }
        }
    });
    for t in tasks {
        t.await?;
    }
    progress.abort();
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        stats.write_failures.load(Relaxed) == 0,
        "writes failed while measuring the maximum: {:?}",
        stats.failures.lock().expect("not poisoned")
    );
    server.shutdown().await?;
    std::fs::remove_dir_all(dir).ok();
    Ok(stats.acked_points.load(Relaxed) as f64 / secs)
}

/// Where the data of `batches` batches starts: in the past, so that the last one is still older
/// than now (points too far in the future are refused).
fn data_start(batches: usize) -> i64 {
    chrono::Utc::now().timestamp() - (batches * STEPS_PER_BATCH) as i64 - 3_600
}

/// A source address: client `i` of the kind on network 127.`net`.0.0/16.
fn source(net: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, net, (i / 250) as u8, (i % 250) as u8 + 1))
}

/// An HTTP client whose connections come from `local`.
fn client_from(local: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(local)
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// The writers, each with its token, and its devices registered by a first batch.
async fn make_writers(server: &Server, t0: i64, stats: &Stats) -> anyhow::Result<Vec<Writer>> {
    let mut writers = Vec::with_capacity(WRITERS);
    for w in 0..WRITERS {
        let (_, token) = server
            .state
            .catalog
            .create_token(&format!("soak-writer-{w}"), Scope::Ingest, None)
            .await?;
        let client = reqwest::Client::builder()
            .local_address(source(WRITER_NET, w))
            .timeout(Duration::from_secs(60))
            .build()?;
        let url = format!("http://{}/api/v2/write?precision=s", server.addr);
        let mut writer = Writer { w, client, url, token, t0, acked: Vec::new() };
        writer.send(stats).await;
        anyhow::ensure!(
            writer.acked[0],
            "writer {w}'s first batch failed: {:?}",
            stats.failures.lock().expect("not poisoned")
        );
        writers.push(writer);
    }
    Ok(writers)
}

/// An ingest writer: its own token, source address and devices.
struct Writer {
    w: usize,
    client: reqwest::Client,
    url: String,
    token: String,
    /// Second of the first step of batch 0.
    t0: i64,
    /// Whether each batch sent so far was acknowledged.
    acked: Vec<bool>,
}

impl Writer {
    /// Send the next batch and note whether it was acknowledged (204: durable).
    async fn send(&mut self, stats: &Stats) {
        let body = batch_body(self.w, self.acked.len(), self.t0);
        let r = self.client.post(&self.url).bearer_auth(&self.token).body(body).send().await;
        let ok = match r {
            Ok(r) if r.status() == StatusCode::NO_CONTENT => true,
            Ok(r) => {
                stats.fail(format!("ingest answered {}", answered(r).await));
                false
            }
            Err(e) => {
                stats.fail(format!("ingest: {}", why(&e)));
                false
            }
        };
        if ok {
            stats.acked_points.fetch_add(POINTS_PER_BATCH as u64, Relaxed);
        } else {
            stats.write_failures.fetch_add(1, Relaxed);
        }
        self.acked.push(ok);
    }

    /// Send a batch every `every` from `first` until stopped (the request in flight finishes).
    /// A writer behind schedule sends its next batch at once but does not make up for lost
    /// ones: the rate shows the shortfall.
    async fn paced(
        mut self,
        every: Duration,
        first: Instant,
        max_batches: usize,
        stats: Arc<Stats>,
        mut stop: watch::Receiver<bool>,
    ) -> Self {
        let mut tick = tokio::time::interval_at(first.into(), every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while self.acked.len() < max_batches {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            self.send(&stats).await;
        }
        self
    }
}

/// The name of writer `w`'s device `n`.
fn device(w: usize, n: usize) -> String {
    format!("soak-{w}-{n:03}")
}

/// Batch `b` of writer `w`: seconds `t0 + 20 b` to `t0 + 20 b + 19` of each of its devices, in
/// time order, with values that drift slowly (no quality flags).
fn batch_body(w: usize, b: usize, t0: i64) -> String {
    let mut s = String::with_capacity(STEPS_PER_BATCH * DEVICES_PER_WRITER * 120);
    for k in 0..STEPS_PER_BATCH {
        let step = b * STEPS_PER_BATCH + k;
        for n in 0..DEVICES_PER_WRITER {
            // A triangle wave from 0 to 99 and back over 200 s, each device at its own phase:
            // values move by 0.1 a second and stay in their valid ranges.
            let phase = (step + n * 37) % 200;
            let x = if phase < 100 { phase } else { 199 - phase };
            let _ = writeln!(
                s,
                "air_quality,device={} pm10={}.{},no2={}.{},o3={}.{},temperature=1{}.{},relative_humidity=5{}.{} {}",
                device(w, n),
                10 + x / 10,
                x % 10,
                20 + x / 10,
                x % 10,
                40 + x / 10,
                x % 10,
                x / 10,
                x % 10,
                x / 10,
                x % 10,
                t0 + step as i64
            );
        }
    }
    s
}

/// What the clients saw, updated as they go.
#[derive(Debug, Default)]
struct Stats {
    acked_points: AtomicU64,
    write_failures: AtomicU64,
    /// Latencies of the public map since the last progress line, and all of them.
    map_recent: Mutex<Vec<Duration>>,
    map_all: Mutex<Vec<Duration>>,
    map_failures: AtomicU64,
    live_open: AtomicU64,
    live_refused: AtomicU64,
    live_bytes: AtomicU64,
    slow_open: AtomicU64,
    slow_refused: AtomicU64,
    slow_cut: AtomicU64,
    slow_longest_ms: AtomicU64,
    abuse_4xx: AtomicU64,
    abuse_429: AtomicU64,
    abuse_bytes_sent: AtomicU64,
    abuse_largest_answer: AtomicU64,
    /// Everything unexpected, by kind.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn fail(&self, why: String) {
        *self.failures.lock().expect("not poisoned").entry(why).or_default() += 1;
    }

    fn failure_count(&self) -> u64 {
        self.failures.lock().expect("not poisoned").values().sum()
    }
}

/// An unexpected answer as its status, problem code and first refusal:
/// `400 partial_write: field "temperature": …`.
async fn answered(r: reqwest::Response) -> String {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let mut s = status.to_string();
    if let Some(code) = body["code"].as_str() {
        let _ = write!(s, " {code}");
    }
    if let Some(reason) = body["rejected"][0]["reason"].as_str() {
        let _ = write!(s, ": {reason}");
    }
    s
}

/// A short reason for a client error.
fn why(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "connection failed"
    }
}

/// Counts one open connection in a gauge while it lives (also when its task is aborted).
struct Open<'a>(&'a AtomicU64);

impl<'a> Open<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        Self(gauge)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Latencies of the public map on the idle server (after the devices were registered).
async fn idle_map_latency(base: &str) -> anyhow::Result<Vec<Duration>> {
    let client = client_from(source(MAP_NET, 1))?;
    let mut v = Vec::new();
    for _ in 0..20 {
        let s = Instant::now();
        client
            .get(format!("{base}/api/v1/public/map"))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        v.push(s.elapsed());
    }
    v.sort();
    Ok(v)
}

/// The public map fetched every 2 seconds, as a visitor's page would, timed to its last byte.
async fn map_client(local: IpAddr, base: String, stats: Arc<Stats>) {
    let Ok(client) = client_from(local) else { return };
    let url = format!("{base}/api/v1/public/map");
    let mut tick = tokio::time::interval(MAP_EVERY);
    loop {
        tick.tick().await;
        let s = Instant::now();
        let failure = match client.get(&url).timeout(Duration::from_secs(30)).send().await {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(_) => None,
                Err(e) => Some(format!("public map: {}", why(&e))),
            },
            Ok(r) => Some(format!("public map answered {}", answered(r).await)),
            Err(e) => Some(format!("public map: {}", why(&e))),
        };
        match failure {
            None => stats.map_recent.lock().expect("not poisoned").push(s.elapsed()),
            Some(f) => {
                stats.map_failures.fetch_add(1, Relaxed);
                stats.fail(f);
            }
        }
    }
}

/// An anonymous live-map client: follows `/api/v1/live`, reading everything, and comes back
/// after 3 seconds when refused or cut, as a browser does.
async fn live_client(client: reqwest::Client, base: String, stats: Arc<Stats>) {
    let url = format!("{base}/api/v1/live");
    loop {
        match client.get(&url).send().await {
            Ok(mut r) if r.status().is_success() => {
                let _open = Open::new(&stats.live_open);
                while let Ok(Some(chunk)) = r.chunk().await {
                    stats.live_bytes.fetch_add(chunk.len() as u64, Relaxed);
                }
                stats.fail("live stream ended".into());
            }
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                stats.live_refused.fetch_add(1, Relaxed);
            }
            Ok(r) => stats.fail(format!("live answered {}", answered(r).await)),
            Err(e) => stats.fail(format!("live: {}", why(&e))),
        }
        tokio::time::sleep(LIVE_RETRY).await;
    }
}

/// A slow socket, again and again: a request head a byte a second, never finished.
async fn slow_socket(server: SocketAddr, local: IpAddr, delay: Duration, stats: Arc<Stats>) {
    tokio::time::sleep(delay).await;
    loop {
        match trickle(server, local, &stats).await {
            Ok((true, _)) => {
                stats.slow_refused.fetch_add(1, Relaxed);
                tokio::time::sleep(SLOW_RETRY).await;
            }
            Ok((false, open)) => {
                stats.slow_cut.fetch_add(1, Relaxed);
                stats.slow_longest_ms.fetch_max(open.as_millis() as u64, Relaxed);
            }
            Err(e) => {
                stats.fail(format!("slow socket: {}", e.kind()));
                tokio::time::sleep(SLOW_RETRY).await;
            }
        }
    }
}

/// One slow connection until the server closes it: whether it was refused at once (503), and
/// how long it stayed open.
async fn trickle(
    server: SocketAddr,
    local: IpAddr,
    stats: &Stats,
) -> std::io::Result<(bool, Duration)> {
    const HEAD: &[u8] = b"GET /api/v1/public/map HTTP/1.1\r\nHost: agora\r\n";
    const PADDING: &[u8] = b"X-Padding: 0123456789\r\n";
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    let mut stream = socket.connect(server).await?;
    let opened = Instant::now();
    let _open = Open::new(&stats.slow_open);
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    // The first byte waits a second too, so that a refusal (written at once) is read before
    // anything is sent.
    let mut tick = tokio::time::interval_at((opened + TRICKLE_EVERY).into(), TRICKLE_EVERY);
    for i in 0.. {
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n.min(64usize.saturating_sub(answer.len()))]),
            },
            _ = tick.tick() => {
                let byte = HEAD.get(i).copied().unwrap_or_else(|| PADDING[(i - HEAD.len()) % PADDING.len()]);
                if stream.write_all(&[byte]).await.is_err() {
                    break;
                }
            }
        }
    }
    Ok((answer.starts_with(b"HTTP/1.1 503"), opened.elapsed()))
}

/// The abusive token: 4 MiB bodies of unknown fields, back to back on one connection, waiting
/// only when told to (429 `Retry-After`).
async fn abuser(local: IpAddr, base: String, token: String, stats: Arc<Stats>) {
    let Ok(client) = client_from(local) else { return };
    let url = format!("{base}/api/v2/write?precision=s");
    let body = Bytes::from(abusive_body(chrono::Utc::now().timestamp() - 60));
    loop {
        let r = client.post(&url).bearer_auth(&token).body(body.clone()).send().await;
        stats.abuse_bytes_sent.fetch_add(body.len() as u64, Relaxed);
        match r {
            Ok(r) => {
                let status = r.status();
                let retry = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                let answer = r.bytes().await.unwrap_or_default();
                stats.abuse_largest_answer.fetch_max(answer.len() as u64, Relaxed);
                if status.is_client_error() {
                    stats.abuse_4xx.fetch_add(1, Relaxed);
                } else {
                    // The problem's code says which refusal it was (a cap, storage).
                    let code = serde_json::from_slice::<serde_json::Value>(&answer)
                        .ok()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    stats.fail(format!("abusive request answered {} {code}", status.as_u16()));
                }
                if status == StatusCode::TOO_MANY_REQUESTS {
                    stats.abuse_429.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1))).await;
                }
            }
            Err(e) => {
                stats.fail(format!("abusive request: {}", why(&e)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// About 4 MiB of line protocol for one device, each line 100 fields no one registered.
fn abusive_body(ts: i64) -> String {
    let mut s = String::with_capacity(ABUSE_BODY + 1024);
    for l in 0.. {
        let mut line = String::from("air_quality,device=soak-abuse ");
        for f in 0..100 {
            let _ = write!(line, "{}u{l}x{f}=1", if f == 0 { "" } else { "," });
        }
        let _ = writeln!(line, " {ts}");
        if s.len() + line.len() > ABUSE_BODY {
            break;
        }
        s.push_str(&line);
    }
    s
}

/// Memory figures, in MiB.
struct RssTrack {
    first: f64,
    /// (time since the start, RSS), one a second.
    samples: Vec<(Duration, f64)>,
}

impl RssTrack {
    /// The highest RSS sampled in `from <= t < to` (NaN: none).
    fn peak(&self, from: Duration, to: Duration) -> f64 {
        self.samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|s| s.1)
            .fold(f64::NAN, f64::max)
    }
}

/// Counters at the previous progress line.
struct Interval {
    at: Instant,
    points: u64,
    abuse: u64,
    failures: u64,
}

/// One progress line and the rate it reports.
struct Line {
    text: String,
    secs: f64,
    points_per_sec: f64,
}

impl Interval {
    fn start(stats: &Stats) -> Self {
        Self {
            at: Instant::now(),
            points: stats.acked_points.load(Relaxed),
            abuse: stats.abuse_4xx.load(Relaxed),
            failures: stats.failure_count(),
        }
    }

    /// The line for the stretch since the previous one.
    fn report(
        &mut self,
        stats: &Stats,
        state: &AppState,
        elapsed: Duration,
        target: f64,
        rss: f64,
    ) -> Line {
        let now = Self::start(stats);
        let secs = now.at.duration_since(self.at).as_secs_f64();
        let points_per_sec = (now.points - self.points) as f64 / secs;
        let mut map = std::mem::take(&mut *stats.map_recent.lock().expect("not poisoned"));
        map.sort();
        stats.map_all.lock().expect("not poisoned").extend_from_slice(&map);
        let map = if map.is_empty() {
            "—".to_owned()
        } else {
            format!("{:.0}/{:.0} ms", ms(quantile(&map, 0.5)), ms(quantile(&map, 0.99)))
        };
        let text = format!(
            "[{:>5} s] ingest {points_per_sec:>9.0} pts/s ({:>3.0} %) | map p50/p99 {map} | live {} (server {}) | slow sockets open {} | abusive 4xx {} | RSS {rss:.0} MiB | fds {} | failures {}",
            elapsed.as_secs(),
            points_per_sec / target * 100.0,
            stats.live_open.load(Relaxed),
            state.limits.live.open(),
            stats.slow_open.load(Relaxed),
            now.abuse - self.abuse,
            open_fds(),
            now.failures - self.failures,
        );
        *self = now;
        Line { text, secs, points_per_sec }
    }
}

/// Totals of the clients' side, and every unexpected answer.
fn print_totals(stats: &Stats) {
    println!(
        "live streams: {:.0} MiB received, {} refused (cap) | slow sockets: {} cut by the server, {} refused at once, longest open {:.1} s",
        stats.live_bytes.load(Relaxed) as f64 / 1048576.0,
        stats.live_refused.load(Relaxed),
        stats.slow_cut.load(Relaxed),
        stats.slow_refused.load(Relaxed),
        stats.slow_longest_ms.load(Relaxed) as f64 / 1000.0
    );
    println!(
        "abusive token: {} answered 4xx ({} of them 429), {:.0} MiB sent, largest answer {:.1} KiB",
        stats.abuse_4xx.load(Relaxed),
        stats.abuse_429.load(Relaxed),
        stats.abuse_bytes_sent.load(Relaxed) as f64 / 1048576.0,
        stats.abuse_largest_answer.load(Relaxed) as f64 / 1024.0
    );
    let failures = stats.failures.lock().expect("not poisoned");
    if !failures.is_empty() {
        println!("unexpected answers and errors:");
        for (why, n) in failures.iter() {
            println!("  {n:>8} × {why}");
        }
    }
}

/// What the store holds of the writers' points.
#[derive(Debug, Default)]
struct Check {
    /// Acknowledged points not found.
    missing: u64,
    /// Points found whose batch was not acknowledged (a failed request may have stored some).
    extra: u64,
}

/// Look up every point of every batch in the store (flagged points included); `ledgers[w][b]`
/// says whether writer `w`'s batch `b` was acknowledged.
async fn verify(state: &AppState, ledgers: &[Vec<bool>], t0: i64) -> anyhow::Result<Check> {
    let mut check = Check::default();
    let steps = ledgers.iter().map(Vec::len).max().unwrap_or(0) * STEPS_PER_BATCH;
    let from = Timestamp::from_secs(t0).context("start in range")?;
    let to = Timestamp::from_secs(t0 + steps as i64).context("end in range")?;
    for (w, ledger) in ledgers.iter().enumerate() {
        let acked_steps = ledger.iter().filter(|a| **a).count() as u64 * STEPS_PER_BATCH as u64;
        for n in 0..DEVICES_PER_WRITER {
            let series = state.catalog.device_series(&device(w, n));
            // A series never created lost all its acknowledged points.
            check.missing += FIELDS.saturating_sub(series.len()) as u64 * acked_steps;
            for s in series {
                let mut present = vec![false; steps];
                for (t, _, _) in state.store.read_with_flags(s.id, from, to, usize::MAX).await? {
                    let step = t.as_nanos().div_euclid(1_000_000_000) - t0;
                    if let Some(p) = usize::try_from(step).ok().and_then(|i| present.get_mut(i)) {
                        *p = true;
                    }
                }
                for (b, acked) in ledger.iter().enumerate() {
                    let found = present[b * STEPS_PER_BATCH..(b + 1) * STEPS_PER_BATCH]
                        .iter()
                        .filter(|p| **p)
                        .count() as u64;
                    if *acked {
                        check.missing += STEPS_PER_BATCH as u64 - found;
                    } else {
                        check.extra += found;
                    }
                }
            }
        }
    }
    Ok(check)
}

/// The soak needs a descriptor per client socket and per server connection: refuse to start
/// when the process may not open enough.
fn check_fd_limit() -> anyhow::Result<()> {
    let need = 2 * (SLOW_SOCKETS + LIVE_CLIENTS) + 1024;
    let limit = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    match limit {
        Some(l) if l < need => anyhow::bail!(
            "the soak needs about {need} file descriptors (server and clients in one process) but may open {l}: run `ulimit -n {need}` first"
        ),
        _ => Ok(()),
    }
}

/// File descriptors this process has open (server and clients).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The `q` quantile of sorted durations (zero when there are none).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
