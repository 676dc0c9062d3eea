//! Storage faults against the real binary: a small filesystem (a tmpfs the test mounts) filled
//! during commits, flushes and compactions and then freed; `kill -9` at random moments. After
//! each: every acknowledged point is present, nothing answered 503 is, and the server recovers
//! without a hand.
//!
//! Mounting needs root, as CI runs; `AGORA_SKIP_FAULT_TESTS=1` skips these tests elsewhere.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::helpers::{ADMIN, TestProcess};

/// 2026-01-01T00:00:00Z: point `i` is at `T + i` seconds on device `f-{i % DEVICES}`.
const T: i64 = 1_767_225_600;
const DEVICES: i64 = 10;
const BATCH: i64 = 1_000;

/// A tmpfs of a given size on a temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Option<Self> {
        if std::env::var_os("AGORA_SKIP_FAULT_TESTS").is_some() {
            eprintln!("skipped: AGORA_SKIP_FAULT_TESTS is set");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root; set AGORA_SKIP_FAULT_TESTS=1 to skip");
        Some(Self { dir })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Fill the filesystem with a file, leaving about `leave` bytes free.
    fn fill(&self, leave: u64) {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(self.dir.path()).output();
        let text = String::from_utf8(out.unwrap().stdout).unwrap();
        let avail: u64 = text.lines().nth(1).unwrap().trim().parse().unwrap();
        let data = vec![7u8; avail.saturating_sub(leave) as usize];
        let _ = std::fs::write(self.dir.path().join("filler"), data);
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.path().join("filler")).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Flush every second and compact every two segments, so faults land in both; no reserve, so
/// that the disk really fills under the WAL (the reserve is tested on its own).
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("agora-test.toml");
    std::fs::write(
        &path,
        "[storage]\nflush_interval_secs = 1\ncompact_segments = 2\nmin_free_mib = 0\n",
    )
    .unwrap();
    path
}

fn spawn(fs: &SmallFs, config: &Path) -> TestProcess {
    TestProcess::spawn_with(&fs.data(), &["--config", config.to_str().unwrap()])
}

/// What the writers were told about each point.
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<i64>,
    refused: BTreeSet<i64>,
    /// Sent when the server died: either outcome is right.
    in_doubt: BTreeSet<i64>,
}

impl Ledger {
    /// Send points `from..from + BATCH` as line protocol; record the answer.
    async fn send(&mut self, c: &reqwest::Client, p: &TestProcess, from: i64) -> Option<u16> {
        let body: String = (from..from + BATCH)
            .map(|i| format!("weather,device=f-{} temperature={} {}\n", i % DEVICES, i % 40, T + i))
            .collect();
        let url = format!("http://{}/api/v2/write?precision=s", p.addr);
        let r = c.post(url).bearer_auth(ADMIN).body(body).send().await;
        let points = from..from + BATCH;
        match r {
            Ok(r) if r.status() == 204 => {
                self.acked.extend(points);
                Some(204)
            }
            Ok(r) if r.status() == 503 => {
                assert!(r.headers().contains_key("retry-after"), "a 503 says when to retry");
                let b: serde_json::Value = r.json().await.unwrap();
                assert_eq!(b["code"], "storage_unavailable", "{b}");
                self.refused.extend(points);
                Some(503)
            }
            Ok(r) => panic!("unexpected answer {}: {}", r.status(), r.text().await.unwrap()),
            Err(_) => {
                self.in_doubt.extend(points);
                None
            }
        }
    }

    /// Every acknowledged point is stored, no refused one is.
    async fn check(&self, c: &reqwest::Client, p: &TestProcess) {
        let mut stored = BTreeSet::new();
        for d in 0..DEVICES {
            // Page through the points: one answer holds at most 100,000.
            let mut from = T;
            loop {
                let url = format!(
                    "http://{}/api/v1/observations?device=f-{d}&property=temperature&from={from}&to={}&quality=all&limit=100000",
                    p.addr,
                    T + 10_000_000
                );
                let r = c.get(url).bearer_auth(ADMIN).send().await.unwrap();
                if r.status() == 404 {
                    break; // this device never got a point in
                }
                let b: serde_json::Value = r.json().await.unwrap();
                let mut last = None;
                for pt in b["points"].as_array().unwrap() {
                    let t = chrono::DateTime::parse_from_rfc3339(pt["time"].as_str().unwrap())
                        .unwrap()
                        .timestamp();
                    stored.insert(t - T);
                    last = Some(t);
                }
                match (b["truncated"].as_bool(), last) {
                    (Some(true), Some(t)) => from = t + 1,
                    _ => break,
                }
            }
        }
        let lost: Vec<i64> = self.acked.difference(&stored).copied().collect();
        assert!(lost.is_empty(), "{} acknowledged points lost: {}", lost.len(), ranges(&lost));
        let ghosts: Vec<_> = self.refused.intersection(&stored).collect();
        assert!(
            ghosts.is_empty(),
            "{} refused points stored, first {:?}",
            ghosts.len(),
            ghosts.first()
        );
        let unknown: Vec<_> = stored
            .iter()
            .filter(|i| !self.acked.contains(i) && !self.in_doubt.contains(i))
            .collect();
        assert!(unknown.is_empty(), "points stored that were never sent: {unknown:?}");
    }
}

/// `[1, 2, 3, 7]` as "1..=3, 7..=7", to read a failure.
fn ranges(v: &[i64]) -> String {
    let mut out = Vec::new();
    let mut it = v.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap();
        }
        out.push(format!("{a}..={b}"));
    }
    out.join(", ")
}

/// Wait until the server has logged `what` (it must, within 30 s): the fault under test really
/// happened.
async fn logged(p: &TestProcess, what: &str, why: &str) {
    let started = Instant::now();
    while !p.log().contains(what) {
        assert!(started.elapsed() < Duration::from_secs(30), "not logged: {what:?} ({why})");
        pause(200).await;
    }
}

/// Let the server's upkeep run (flushes every second).
async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// The scenario of the lost flush: commits and flushes fail on a full disk, space comes back,
/// a later flush succeeds, then the server stops (cleanly or by `kill -9`).
async fn full_disk_then_space_then_stop(kill9: bool) {
    let Some(fs) = SmallFs::mount("48m") else { return };
    let cfg = config(fs.dir.path());
    let c = reqwest::Client::new();
    let mut ledger = Ledger::default();
    let p = spawn(&fs, &cfg);
    let mut next = 0;
    for _ in 0..5 {
        assert_eq!(ledger.send(&c, &p, next).await, Some(204));
        next += BATCH;
    }
    pause(1_500).await;
    fs.fill(120_000);
    // Writes until the disk refuses a few in a row, with flushes failing meanwhile.
    let mut refused_in_a_row = 0;
    let started = Instant::now();
    while refused_in_a_row < 4 && started.elapsed() < Duration::from_secs(60) {
        match ledger.send(&c, &p, next).await {
            Some(503) => refused_in_a_row += 1,
            _ => refused_in_a_row = 0,
        }
        next += BATCH;
        pause(100).await;
    }
    assert!(refused_in_a_row >= 4, "the full disk refused writes");
    logged(&p, "flush failed", "a flush fails on the full disk").await;
    fs.free();
    // Space is back: writes are accepted again without a restart.
    let mut accepted = 0;
    let started = Instant::now();
    while accepted < 5 && started.elapsed() < Duration::from_secs(30) {
        if ledger.send(&c, &p, next).await == Some(204) {
            accepted += 1;
        } else {
            pause(500).await;
        }
        next += BATCH;
    }
    assert_eq!(accepted, 5, "the server accepts writes again once space is freed");
    pause(3_000).await; // a flush succeeds, writing what the failed one left
    ledger.check(&c, &p).await;
    if kill9 {
        p.kill9();
    } else {
        p.terminate();
    }
    let p = spawn(&fs, &cfg);
    ledger.check(&c, &p).await;
    assert!(!ledger.refused.is_empty() && ledger.acked.len() >= 10 * BATCH as usize);
    p.kill9();
}

#[tokio::test]
async fn a_full_disk_then_a_clean_stop_loses_no_acknowledged_point() {
    full_disk_then_space_then_stop(false).await;
}

#[tokio::test]
async fn a_full_disk_then_kill_9_loses_no_acknowledged_point() {
    full_disk_then_space_then_stop(true).await;
}

/// A small deterministic generator (no dependency): the seed is printed to replay a failure.
fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

#[tokio::test]
async fn kill_9_at_random_moments_during_writes_flushes_compactions_and_a_full_disk() {
    let Some(fs) = SmallFs::mount("48m") else { return };
    let cfg = config(fs.dir.path());
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64;
    eprintln!("seed {seed}");
    let c = reqwest::Client::new();
    let ledger = std::sync::Arc::new(tokio::sync::Mutex::new(Ledger::default()));
    let mut next = 0;
    for round in 0..4 {
        let p = std::sync::Arc::new(spawn(&fs, &cfg));
        {
            let l = ledger.lock().await;
            eprintln!(
                "round {round}: acked {}, refused {}, in doubt {}",
                l.acked.len(),
                l.refused.len(),
                l.in_doubt.len()
            );
        }
        ledger.lock().await.check(&c, &p).await;
        if round == 2 {
            fs.fill(200_000);
        }
        if round == 3 {
            fs.free();
        }
        // One writer sends batches back to back until the kill.
        let writer = {
            let (c, p, ledger) = (c.clone(), p.clone(), ledger.clone());
            let start = next;
            tokio::spawn(async move {
                let mut at = start;
                loop {
                    match ledger.lock().await.send(&c, &p, at).await {
                        None => return,
                        Some(503) => pause(50).await,
                        Some(_) => {}
                    }
                    at += BATCH;
                }
            })
        };
        pause(300 + lcg(&mut seed) % 2_500).await;
        let pid = p.child.id();
        let ok = Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(ok.success());
        writer.await.unwrap();
        let p = std::sync::Arc::into_inner(p).expect("writer finished");
        p.wait();
        next = {
            let l = ledger.lock().await;
            l.acked.iter().chain(&l.refused).chain(&l.in_doubt).max().map_or(0, |m| m + 1)
        };
    }
    let p = spawn(&fs, &cfg);
    let l = ledger.lock().await;
    l.check(&c, &p).await;
    eprintln!(
        "acked {}, refused {}, in doubt {}",
        l.acked.len(),
        l.refused.len(),
        l.in_doubt.len()
    );
    assert!(l.acked.len() >= 4 * BATCH as usize);
    p.kill9();
}

#[tokio::test]
async fn below_the_reserve_writes_are_refused_and_readyz_metrics_and_fleet_say_so() {
    let Some(fs) = SmallFs::mount("48m") else { return };
    let cfg = fs.dir.path().join("reserve.toml");
    std::fs::write(&cfg, "[storage]\nmin_free_mib = 8\n").unwrap();
    let c = reqwest::Client::new();
    let mut ledger = Ledger::default();
    let p = spawn(&fs, &cfg);
    let base = format!("http://{}", p.addr);
    assert_eq!(ledger.send(&c, &p, 0).await, Some(204));
    let ready = c.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    fs.fill(4 << 20);
    // Upkeep measures free space twice a second.
    let started = Instant::now();
    let readyz = loop {
        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 503 || started.elapsed() > Duration::from_secs(10) {
            break r;
        }
        pause(200).await;
    };
    assert_eq!(readyz.status(), 503);
    assert!(readyz.headers().contains_key("retry-after"));
    let b: serde_json::Value = readyz.json().await.unwrap();
    assert_eq!(b["status"], "storage_full", "{b}");
    assert_eq!(b["storage"]["accepting_writes"], false);
    assert_eq!(ledger.send(&c, &p, BATCH).await, Some(503));
    let metrics = c.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("agora_storage_accepting_writes 0"), "{metrics}");
    let fleet: serde_json::Value = c
        .get(format!("{base}/api/v1/fleet"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fleet["storage"]["accepting_writes"], false, "{fleet}");
    fs.free();
    let started = Instant::now();
    while c.get(format!("{base}/readyz")).send().await.unwrap().status() != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "ready again once space is freed");
        pause(200).await;
    }
    assert_eq!(ledger.send(&c, &p, 2 * BATCH).await, Some(204));
    p.terminate();
    let p = spawn(&fs, &cfg);
    ledger.check(&c, &p).await;
    p.kill9();
}

#[tokio::test]
async fn running_out_of_file_descriptors_loses_no_acknowledged_point() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fds.toml");
    std::fs::write(
        &cfg,
        "[storage]\nflush_interval_secs = 1\nmin_free_mib = 0\n[limits.http]\n\
         max_connections = 1000\nmax_connections_per_address = 1000\nheader_timeout_secs = 60\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let p =
        TestProcess::spawn_short_of_files(&data, &["--config", cfg.to_str().unwrap()], Some(64));
    // One keep-alive connection for the writer, opened before the flood.
    let c = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let mut ledger = Ledger::default();
    let mut next = 0;
    for _ in 0..3 {
        assert_eq!(ledger.send(&c, &p, next).await, Some(204));
        next += BATCH;
    }
    // Strangers take every file descriptor the server has left.
    let mut flood = Vec::new();
    for i in 0..150u8 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(std::net::SocketAddr::from(([127, 0, 0, 2 + i % 100], 0))).unwrap();
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), s.connect(p.addr)).await {
            flood.push(s);
        }
    }
    // Writes go on while flushes cannot open a file.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) || !p.log().contains("flush failed") {
        assert!(started.elapsed() < Duration::from_secs(30), "no flush failed for want of files");
        ledger.send(&c, &p, next).await;
        next += BATCH;
        pause(200).await;
    }
    drop(flood);
    pause(3_000).await; // descriptors are back: a flush writes what waited
    let started = Instant::now();
    let mut accepted = 0;
    while accepted < 3 && started.elapsed() < Duration::from_secs(30) {
        if ledger.send(&c, &p, next).await == Some(204) {
            accepted += 1;
        } else {
            pause(500).await;
        }
        next += BATCH;
    }
    assert_eq!(accepted, 3, "the server recovers by itself");
    p.kill9();
    let p = TestProcess::spawn_with(&data, &["--config", cfg.to_str().unwrap()]);
    ledger.check(&c, &p).await;
    eprintln!(
        "acked {}, refused {}, in doubt {}",
        ledger.acked.len(),
        ledger.refused.len(),
        ledger.in_doubt.len()
    );
}
