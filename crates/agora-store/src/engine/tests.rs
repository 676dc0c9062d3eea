//! Engine tests: last write wins everywhere, flush/compaction/reopen keep every point, rollups
//! agree with raw points, retention keeps rollups, storage faults lose nothing acknowledged.

use std::sync::Arc;

use agora_model::{MockClock, SeriesId, Timestamp, Value};

use super::*;

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
const MIN: i64 = 60_000_000_000;

fn engine(dir: &Path, clock: Arc<MockClock>) -> Engine {
    let mut cfg = EngineConfig::new(dir);
    cfg.fsync = false;
    // Tests must not depend on how full the machine's disk is.
    cfg.min_free_bytes = 0;
    Engine::open(cfg, clock).unwrap()
}

fn clock() -> Arc<MockClock> {
    MockClock::new(Timestamp::from_nanos(T0 + 40 * WINDOW_NS))
}

/// Write unflagged points.
async fn write3(e: &Engine, points: Vec<(SeriesId, i64, Value)>) -> Result<()> {
    e.write(points.into_iter().map(|(s, t, v)| (s, t, v, 0)).collect()).await
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

fn f(v: &[(i64, Value)]) -> Vec<(i64, f64)> {
    v.iter().map(|(t, v)| (*t, v.as_f64().unwrap())).collect()
}

#[test]
fn last_write_wins_across_head_segments_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let s = SeriesId(7);
    let rt = rt();
    rt.block_on(write3(&e, (0..10).map(|i| (s, T0 + i * MIN, Value::F64(i as f64))).collect()))
        .unwrap();
    e.flush().unwrap();
    // Replace minute 3 (now in a segment), add a late point before everything, replace twice in the head.
    rt.block_on(write3(
        &e,
        vec![(s, T0 + 3 * MIN, Value::F64(30.0)), (s, T0 - MIN, Value::F64(-1.0))],
    ))
    .unwrap();
    rt.block_on(write3(
        &e,
        vec![(s, T0 + 5 * MIN, Value::F64(50.0)), (s, T0 + 5 * MIN, Value::F64(55.0))],
    ))
    .unwrap();
    let want: Vec<(i64, f64)> = [
        (-1, -1.0),
        (0, 0.0),
        (1, 1.0),
        (2, 2.0),
        (3, 30.0),
        (4, 4.0),
        (5, 55.0),
        (6, 6.0),
        (7, 7.0),
        (8, 8.0),
        (9, 9.0),
    ]
    .iter()
    .map(|&(m, v)| (T0 + m * MIN, v))
    .collect();
    assert_eq!(f(&e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap()), want);
    e.flush().unwrap();
    assert_eq!(f(&e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap()), want);
    e.compact().unwrap();
    assert_eq!(e.stats().segments, 1);
    assert_eq!(f(&e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap()), want);
    assert_eq!(e.latest(&[s])[0], Some((T0 + 9 * MIN, Value::F64(9.0))));
    e.close().unwrap();
    drop(e);
    let e = engine(dir.path(), clock());
    assert_eq!(f(&e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap()), want);
    assert_eq!(e.latest(&[s])[0], Some((T0 + 9 * MIN, Value::F64(9.0))));
    assert_eq!(e.stats().wal_bytes, 0, "a clean shutdown leaves no WAL to replay");
}

#[test]
fn unflushed_writes_are_replayed_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    {
        let e = engine(dir.path(), clock());
        rt.block_on(write3(
            &e,
            vec![
                (SeriesId(1), T0, Value::F64(1.5)),
                (SeriesId(2), T0, Value::Str("defectiveLamp".into())),
            ],
        ))
        .unwrap();
        e.flush().unwrap();
        rt.block_on(write3(
            &e,
            vec![(SeriesId(1), T0 + MIN, Value::F64(2.5)), (SeriesId(3), T0, Value::Bool(true))],
        ))
        .unwrap();
        // Dropped without close: the head is lost, only the WAL remains.
    }
    let e = engine(dir.path(), clock());
    assert_eq!(
        f(&e.read(SeriesId(1), i64::MIN, i64::MAX, 100).unwrap()),
        vec![(T0, 1.5), (T0 + MIN, 2.5)]
    );
    assert_eq!(
        e.read(SeriesId(2), i64::MIN, i64::MAX, 100).unwrap(),
        vec![(T0, Value::Str("defectiveLamp".into()))]
    );
    assert_eq!(
        e.read(SeriesId(3), i64::MIN, i64::MAX, 100).unwrap(),
        vec![(T0, Value::Bool(true))]
    );
}

#[test]
fn rollups_agree_with_raw_points_and_survive_retention() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let e = engine(dir.path(), c.clone());
    let s = SeriesId(3);
    let rt = rt();
    // Three days of 1-minute data, written in two halves to create overlapping segments.
    let pts: Vec<(SeriesId, i64, Value)> = (0..3 * 1440)
        .map(|i| (s, T0 + i * MIN, Value::F64(((i * 37) % 101) as f64 / 10.0)))
        .collect();
    let (a, b) = pts.split_at(2000);
    rt.block_on(write3(&e, b.to_vec())).unwrap();
    e.flush().unwrap();
    rt.block_on(write3(&e, a.to_vec())).unwrap();
    let raw_path = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, 20 * MIN).unwrap();
    let from_raw = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    let from_rollups = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap();
    assert_eq!(from_raw.len(), 72);
    assert_eq!(from_raw, from_rollups);
    // 20-minute buckets combine into the same hours.
    let mut hours: Vec<(i64, Agg)> = Vec::new();
    for (t, a) in raw_path {
        let h = t / HOUR_NS * HOUR_NS;
        match hours.last_mut() {
            Some((hh, x)) if *hh == h => x.merge(&a),
            _ => hours.push((h, a)),
        }
    }
    assert_eq!(hours.len(), 72);
    for ((h1, a1), (h2, a2)) in hours.iter().zip(&from_rollups) {
        assert_eq!(h1, h2);
        assert_eq!(a1.count, a2.count);
        assert!((a1.sum - a2.sum).abs() < 1e-9);
        assert_eq!((a1.min, a1.max, a1.first, a1.last), (a2.min, a2.max, a2.first, a2.last));
    }
    let daily = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, WINDOW_NS).unwrap();
    assert_eq!(daily.iter().map(|d| d.1.count).collect::<Vec<_>>(), vec![1440, 1440, 1440]);

    // Keep raw points for 38 days: at T0 + 39.5 days, the first day expires, its rollups stay.
    e.set_raw_retention(s, Some(Duration::from_secs(38 * 86_400)));
    c.set(Timestamp::from_nanos(T0 + 39 * WINDOW_NS + WINDOW_NS / 2));
    e.compact().unwrap();
    assert!(e.read(s, T0, T0 + WINDOW_NS, usize::MAX).unwrap().is_empty());
    assert_eq!(e.read(s, T0 + WINDOW_NS, T0 + 3 * WINDOW_NS, usize::MAX).unwrap().len(), 2880);
    let after = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap();
    assert_eq!(after, from_rollups);
}

#[test]
fn a_year_of_hourly_data_answers_from_rollups_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let s = SeriesId(1);
    {
        let e = engine(dir.path(), clock());
        let pts =
            (0..365 * 24).map(|i| (s, T0 + i * HOUR_NS + 17 * MIN, Value::F64(i as f64))).collect();
        rt.block_on(write3(&e, pts)).unwrap();
        e.close().unwrap();
    }
    let e = engine(dir.path(), clock());
    let h = e.aggregate(s, T0, T0 + 365 * WINDOW_NS, HOUR_NS).unwrap();
    assert_eq!(h.len(), 365 * 24);
    assert_eq!(h[100].1.value(AggFn::Mean), 100.0);
    assert_eq!(h[100].0, T0 + 100 * HOUR_NS);
    assert_eq!(
        e.latest(&[s])[0],
        Some((T0 + (365 * 24 - 1) * HOUR_NS + 17 * MIN, Value::F64((365 * 24 - 1) as f64)))
    );
}

#[test]
fn sparse_series_keep_their_summaries_when_retention_drops_points() {
    let dir = tempfile::tempdir().unwrap();
    let c = clock();
    let e = engine(dir.path(), c.clone());
    let s = SeriesId(9);
    let rt = rt();
    // A streetlight reporting every 15 minutes: too sparse for stored rollups until retention.
    let pts: Vec<(SeriesId, i64, Value)> =
        (0..3 * 96).map(|i| (s, T0 + i * 15 * MIN, Value::F64((i % 7) as f64))).collect();
    rt.block_on(write3(&e, pts)).unwrap();
    e.flush().unwrap();
    let before = e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap();
    assert_eq!(before.len(), 72);
    assert_eq!(before[0].1.count, 4);
    e.set_raw_retention(s, Some(Duration::from_secs(38 * 86_400)));
    c.set(Timestamp::from_nanos(T0 + 39 * WINDOW_NS + WINDOW_NS / 2));
    e.compact().unwrap();
    assert!(e.read(s, T0, T0 + WINDOW_NS, usize::MAX).unwrap().is_empty());
    assert_eq!(e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap(), before);
    e.close().unwrap();
    let e = engine(dir.path(), c);
    assert_eq!(e.aggregate(s, T0, T0 + 3 * WINDOW_NS, HOUR_NS).unwrap(), before);
}

#[test]
fn flagged_points_are_kept_but_left_out_of_reads_and_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let s = SeriesId(4);
    let rt = rt();
    // An hour of readings; the last 20 minutes are flagged (a stuck sensor).
    let pts: Vec<WalPoint> = (0..60)
        .map(|i| {
            (s, T0 + i * MIN, Value::F64(if i < 40 { i as f64 } else { 23.4 }), u8::from(i >= 40))
        })
        .collect();
    rt.block_on(e.write(pts)).unwrap();
    let check = |e: &Engine| {
        assert_eq!(e.read(s, T0, T0 + HOUR_NS, usize::MAX).unwrap().len(), 40);
        let all = e.read_with_flags(s, T0, T0 + HOUR_NS, usize::MAX).unwrap();
        assert_eq!(all.len(), 60);
        assert_eq!(all[45], (T0 + 45 * MIN, Value::F64(23.4), 1));
        let h = e.aggregate(s, T0, T0 + HOUR_NS, HOUR_NS).unwrap();
        assert_eq!(h[0].1.count, 40);
        assert_eq!(h[0].1.max, 39.0);
        let m = e.aggregate(s, T0, T0 + HOUR_NS, 30 * MIN).unwrap();
        assert_eq!(m.iter().map(|b| b.1.count).sum::<u64>(), 40);
    };
    check(&e);
    e.flush().unwrap();
    check(&e);
    // A corrected, unflagged value replaces a flagged one.
    rt.block_on(e.write(vec![(s, T0 + 59 * MIN, Value::F64(59.0), 0)])).unwrap();
    assert_eq!(e.read(s, T0, T0 + HOUR_NS, usize::MAX).unwrap().len(), 41);
    rt.block_on(e.write(vec![(s, T0 + 59 * MIN, Value::F64(23.4), 1)])).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    check(&e);
    e.close().unwrap();
    drop(e);
    check(&engine(dir.path(), clock()));
}

#[test]
fn writers_wait_for_a_flush_when_the_head_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.fsync = false;
    cfg.min_free_bytes = 0;
    cfg.flush_points = 100;
    let e = Arc::new(Engine::open(cfg, clock()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = SeriesId(1);
        write3(&e, (0..400).map(|i| (s, T0 + i * MIN, Value::F64(1.0))).collect()).await.unwrap();
        // The head holds four times flush_points: the next writer waits.
        let e2 = e.clone();
        let waiting =
            tokio::spawn(
                async move { write3(&e2, vec![(s, T0 + 400 * MIN, Value::F64(2.0))]).await },
            );
        // Upkeep is told to flush at once.
        tokio::time::timeout(Duration::from_secs(5), e.flush_wanted()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the writer must wait for room");
        let e3 = e.clone();
        tokio::task::spawn_blocking(move || e3.flush()).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap().unwrap();
    });
    assert_eq!(e.read(SeriesId(1), i64::MIN, i64::MAX, usize::MAX).unwrap().len(), 401);
}

/// Points of series 1 at minutes `from..to`, value = minute.
fn minutes(from: i64, to: i64) -> Vec<(SeriesId, i64, Value)> {
    (from..to).map(|i| (SeriesId(1), T0 + i * MIN, Value::F64(i as f64))).collect()
}

fn all_minutes(e: &Engine) -> Vec<i64> {
    e.read(SeriesId(1), i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|(t, _)| (t - T0) / MIN)
        .collect()
}

#[test]
fn a_failed_flush_keeps_its_points_until_a_later_flush_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let segs = dir.path().join("segments");
    {
        let e = engine(dir.path(), clock());
        rt.block_on(write3(&e, minutes(0, 1000))).unwrap();
        // The segment directory is unusable: the flush fails.
        fs::rename(&segs, dir.path().join("away")).unwrap();
        fs::write(&segs, b"not a directory").unwrap();
        assert!(e.flush().is_err());
        assert_eq!(all_minutes(&e).len(), 1000, "a failed flush keeps serving its points");
        assert!(e.health().unflushed_points == 1000);
        // More points, then the directory comes back: the next flush writes both heads.
        rt.block_on(write3(&e, minutes(1000, 2000))).unwrap();
        fs::remove_file(&segs).unwrap();
        fs::rename(dir.path().join("away"), &segs).unwrap();
        e.flush().unwrap();
        assert_eq!(e.health().unflushed_points, 0);
        assert_eq!(e.stats().segments, 2);
        // Dropped without close: what is not in a segment must still be in the WAL.
    }
    let e = engine(dir.path(), clock());
    assert_eq!(all_minutes(&e), (0..2000).collect::<Vec<_>>());
}

#[test]
fn a_close_whose_flush_fails_leaves_the_wal_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let segs = dir.path().join("segments");
    {
        let e = engine(dir.path(), clock());
        rt.block_on(write3(&e, minutes(0, 10))).unwrap();
        e.flush().unwrap();
        rt.block_on(write3(&e, minutes(10, 20))).unwrap();
        fs::rename(&segs, dir.path().join("away")).unwrap();
        fs::write(&segs, b"x").unwrap();
        assert!(e.flush().is_err());
        rt.block_on(write3(&e, minutes(20, 30))).unwrap();
        assert!(e.close().is_err());
        fs::remove_file(&segs).unwrap();
        fs::rename(dir.path().join("away"), &segs).unwrap();
    }
    let e = engine(dir.path(), clock());
    assert_eq!(all_minutes(&e), (0..30).collect::<Vec<_>>());
    e.close().unwrap();
    let e = engine(dir.path(), clock());
    assert_eq!(all_minutes(&e), (0..30).collect::<Vec<_>>());
    assert_eq!(e.stats().wal_bytes, 0, "a clean shutdown leaves no WAL");
}

/// A tmpfs of `size` mounted on a temporary directory, unmounted on drop: a real filesystem that
/// fills up. Mounting needs root (CI runs as root); `AGORA_SKIP_FAULT_TESTS=1` skips these tests
/// on a developer's machine.
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
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root; set AGORA_SKIP_FAULT_TESTS=1 to skip");
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the filesystem with a file, leaving about `leave` bytes.
    fn fill(&self, leave: u64) {
        let st = rustix::fs::statvfs(self.path()).unwrap();
        let free = st.f_bavail * st.f_frsize;
        let data = vec![7u8; free.saturating_sub(leave) as usize];
        let _ = fs::write(self.path().join("filler"), data);
    }

    fn free(&self) {
        fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_during_commits_loses_no_acknowledged_point_and_stores_no_refused_one() {
    let Some(fs_) = SmallFs::mount("2m") else { return };
    let dir = fs_.path().join("engine");
    let rt = rt();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    {
        let mut cfg = EngineConfig::new(&dir);
        cfg.min_free_bytes = 0;
        let e = Engine::open(cfg, clock()).unwrap();
        // Batches of 100 points (~2 kB in the WAL) until the disk is full, and a few more.
        fs_.fill(40_000);
        let mut next = 0;
        let mut failures = 0;
        while failures < 5 {
            let r = rt.block_on(write3(&e, minutes(next, next + 100)));
            match r {
                Ok(()) => acked.extend(next..next + 100),
                Err(err) => {
                    assert!(matches!(err, Error::WalFailed(_)), "{err}");
                    refused.extend(next..next + 100);
                    failures += 1;
                }
            }
            next += 100;
        }
        assert!(!acked.is_empty(), "some batches fit before the disk was full");
        // Refused points are not served.
        assert_eq!(all_minutes(&e), acked);
        // Space comes back: writes are accepted again, after the cut tail.
        fs_.free();
        for _ in 0..5 {
            rt.block_on(write3(&e, minutes(next, next + 100))).unwrap();
            acked.extend(next..next + 100);
            next += 100;
        }
        assert_eq!(all_minutes(&e), acked);
        // Dropped without close (a crash): everything acknowledged is in the WAL.
    }
    let cfg = EngineConfig { min_free_bytes: 0, ..EngineConfig::new(&dir) };
    let e = Engine::open(cfg, clock()).unwrap();
    assert_eq!(all_minutes(&e), acked, "{} refused points must stay out", refused.len());
}

#[test]
fn a_full_disk_during_a_flush_keeps_every_point() {
    let Some(fs_) = SmallFs::mount("2m") else { return };
    let dir = fs_.path().join("engine");
    let rt = rt();
    let mut acked: Vec<i64> = Vec::new();
    {
        let mut cfg = EngineConfig::new(&dir);
        cfg.min_free_bytes = 0;
        let e = Engine::open(cfg, clock()).unwrap();
        rt.block_on(write3(&e, minutes(0, 5000))).unwrap();
        acked.extend(0..5000);
        // Too little room for a segment: the flush fails and its temporary file is removed.
        fs_.fill(1_000);
        assert!(e.flush().is_err());
        let tmp_left = fs::read_dir(dir.join("segments")).unwrap().count();
        assert_eq!(tmp_left, 0, "a failed flush gives its space back");
        fs_.free();
        rt.block_on(write3(&e, minutes(5000, 6000))).unwrap();
        acked.extend(5000..6000);
        e.flush().unwrap();
        rt.block_on(write3(&e, minutes(6000, 6100))).unwrap();
        acked.extend(6000..6100);
        e.close().unwrap();
    }
    let cfg = EngineConfig { min_free_bytes: 0, ..EngineConfig::new(&dir) };
    let e = Engine::open(cfg, clock()).unwrap();
    assert_eq!(all_minutes(&e), acked);
}

#[test]
fn writes_are_refused_below_the_free_space_reserve_and_accepted_when_it_comes_back() {
    let Some(fs_) = SmallFs::mount("4m") else { return };
    let dir = fs_.path().join("engine");
    let rt = rt();
    let mut cfg = EngineConfig::new(&dir);
    cfg.min_free_bytes = 1 << 20;
    let e = Engine::open(cfg, clock()).unwrap();
    rt.block_on(write3(&e, minutes(0, 10))).unwrap();
    fs_.fill(512 << 10);
    assert!(!e.check_disk().accepting_writes);
    let err = rt.block_on(write3(&e, minutes(10, 20))).unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("below the reserve"), "{err}");
    fs_.free();
    assert!(e.check_disk().accepting_writes);
    rt.block_on(write3(&e, minutes(20, 30))).unwrap();
    assert_eq!(all_minutes(&e), (0..10).chain(20..30).collect::<Vec<_>>());
}

#[test]
fn a_limited_read_decodes_only_the_days_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let rt = rt();
    // Ten days of 10-minute points in a segment, a late replacement and more points in the head.
    let day = WINDOW_NS / MIN;
    let pts: Vec<_> = (0..10 * day)
        .step_by(10)
        .map(|i| (SeriesId(1), T0 + i * MIN, Value::F64(i as f64)))
        .collect();
    rt.block_on(write3(&e, pts)).unwrap();
    e.flush().unwrap();
    rt.block_on(write3(&e, vec![(SeriesId(1), T0 + 20 * MIN, Value::F64(-20.0))])).unwrap();
    rt.block_on(write3(&e, minutes(10 * day, 10 * day + 5))).unwrap();
    let all = e.read(SeriesId(1), i64::MIN, i64::MAX, usize::MAX).unwrap();
    assert_eq!(all.len(), (10 * day / 10 + 5) as usize);
    assert_eq!(all[2], (T0 + 20 * MIN, Value::F64(-20.0)), "the newest value wins");
    for limit in [0, 1, 3, 144, 145, 1000, all.len() - 3, all.len() + 10] {
        let before = e.stats().read_chunks;
        let got = e.read(SeriesId(1), i64::MIN, i64::MAX, limit).unwrap();
        assert_eq!(got[..], all[..limit.min(all.len())], "limit {limit}");
        let decoded = e.stats().read_chunks - before;
        let days_needed = (limit as u64).div_ceil(144).min(10);
        assert!(decoded <= days_needed.max(1), "limit {limit}: decoded {decoded} chunks");
    }
}

#[test]
fn points_across_days_survive_flushes_compactions_and_reopen() {
    for flush_every in [7, 130] {
        across_days(flush_every);
    }
}

fn across_days(flush_every: i64) {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let sec = MIN / 60;
    let n = 330_000i64;
    {
        let mut cfg = EngineConfig::new(dir.path());
        cfg.fsync = false;
        cfg.min_free_bytes = 0;
        cfg.compact_segments = 2;
        let e = Engine::open(cfg, clock()).unwrap();
        for b in 0..(n / 1000) {
            let pts = (b * 1000..(b + 1) * 1000)
                .map(|i| (SeriesId((i % 10) as u32), T0 + i * sec, Value::F64((i % 40) as f64)))
                .collect();
            rt.block_on(write3(&e, pts)).unwrap();
            if b % flush_every == flush_every - 1 {
                e.flush().unwrap();
            }
            if e.needs_compaction() {
                e.compact().unwrap();
            }
        }
        for s in 0..10 {
            let got = e.read(SeriesId(s), T0, T0 + n * sec, usize::MAX).unwrap().len();
            assert_eq!(got, (n / 10) as usize, "series {s}, flush every {flush_every}");
        }
    }
    let e = engine(dir.path(), clock());
    for s in 0..10 {
        let got = e.read(SeriesId(s), T0, T0 + n * sec, usize::MAX).unwrap().len();
        assert_eq!(got, (n / 10) as usize, "series {s} after reopen");
    }
}

#[test]
fn flushes_and_compactions_during_writes_keep_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let sec = MIN / 60;
    let mut cfg = EngineConfig::new(dir.path());
    cfg.fsync = false;
    cfg.min_free_bytes = 0;
    cfg.compact_segments = 2;
    let e = Arc::new(Engine::open(cfg, clock()).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let batches = 330i64;
    let writer = {
        let e = e.clone();
        rt.spawn(async move {
            for b in 0..batches {
                let pts = (b * 1000..(b + 1) * 1000)
                    .map(|i| {
                        let flag = u8::from(i % 40 < 10);
                        (SeriesId((i % 10) as u32), T0 + i * sec, Value::F64((i % 40) as f64), flag)
                    })
                    .collect();
                e.write(pts).await.unwrap();
            }
        })
    };
    while !writer.is_finished() {
        e.flush().unwrap();
        if e.needs_compaction() {
            e.compact().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for s in 0..10 {
        let got = e.read_with_flags(SeriesId(s), i64::MIN, i64::MAX, usize::MAX).unwrap().len();
        assert_eq!(got, (batches * 100) as usize, "series {s}");
    }
}

#[test]
fn a_window_of_flagged_points_only_survives_compaction() {
    // Every point flagged (say, jumps): no rollups, but the raw points must stay, also when the
    // day is split over two segments and merged by compaction.
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let rt = rt();
    let flagged = |from: i64, to: i64| -> Vec<WalPoint> {
        (from..to).map(|i| (SeriesId(1), T0 + i * MIN, Value::F64(i as f64), 2)).collect()
    };
    rt.block_on(e.write(flagged(0, 100))).unwrap();
    e.flush().unwrap();
    rt.block_on(e.write(flagged(100, 200))).unwrap();
    e.flush().unwrap();
    e.compact().unwrap();
    let got = e.read_with_flags(SeriesId(1), i64::MIN, i64::MAX, usize::MAX).unwrap();
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|p| p.2 == 2));
    assert!(e.read(SeriesId(1), i64::MIN, i64::MAX, usize::MAX).unwrap().is_empty());
}

#[test]
fn a_full_disk_during_a_compaction_keeps_the_segments_and_gives_the_space_back() {
    let Some(fs_) = SmallFs::mount("4m") else { return };
    let dir = fs_.path().join("engine");
    let rt = rt();
    let mut cfg = EngineConfig::new(&dir);
    cfg.min_free_bytes = 0;
    cfg.compact_segments = 2;
    let e = Engine::open(cfg, clock()).unwrap();
    // Noisy values compress badly: two segments of about 150 kB each.
    let noisy = |from: i64, to: i64| -> Vec<(SeriesId, i64, Value)> {
        (from..to)
            .map(|i| (SeriesId(1), T0 + i * MIN, Value::F64(((i * 7919) % 10007) as f64 / 3.0)))
            .collect()
    };
    rt.block_on(write3(&e, noisy(0, 60_000))).unwrap();
    e.flush().unwrap();
    rt.block_on(write3(&e, noisy(30_000, 90_000))).unwrap();
    e.flush().unwrap();
    fs_.fill(20_000);
    e.check_disk();
    assert!(!e.needs_compaction(), "no room for the output: compaction waits");
    assert!(e.compact().is_err());
    assert_eq!(e.stats().segments, 2, "the inputs stay");
    let files: Vec<_> =
        fs::read_dir(dir.join("segments")).unwrap().map(|f| f.unwrap().file_name()).collect();
    assert_eq!(files.len(), 2, "the unfinished output is removed: {files:?}");
    assert!(e.health().last_error.is_some());
    fs_.free();
    e.compact().unwrap();
    assert_eq!(e.stats().segments, 1);
    let want: Vec<i64> = (0..90_000).collect();
    let got: Vec<i64> = e
        .read(SeriesId(1), i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .iter()
        .map(|(t, _)| (t - T0) / MIN)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_snapshot_taken_while_writing_opens_with_every_acknowledged_point() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(engine(&dir.path().join("data"), clock()));
    let s = SeriesId(3);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    // Two segments (one flushed, one compacted away would be the same), then a head in the WAL.
    rt.block_on(write3(&e, (0..500).map(|i| (s, T0 + i * MIN, Value::F64(i as f64))).collect()))
        .unwrap();
    e.flush().unwrap();
    rt.block_on(write3(&e, (500..800).map(|i| (s, T0 + i * MIN, Value::F64(i as f64))).collect()))
        .unwrap();
    // A writer keeps going while the snapshot is taken; every batch it saw acknowledged before
    // the snapshot started must be in it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(std::sync::atomic::AtomicI64::new(800));
    let writer = {
        let (e, stop, acked) = (e.clone(), stop.clone(), acked.clone());
        rt.spawn(async move {
            let mut i = 800;
            while !stop.load(Ordering::SeqCst) {
                write3(&e, vec![(s, T0 + i * MIN, Value::F64(i as f64))]).await.unwrap();
                i += 1;
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = acked.load(Ordering::SeqCst);
    let snap = e.snapshot(&dir.path().join("snap")).unwrap();
    stop.store(true, Ordering::SeqCst);
    rt.block_on(writer).unwrap();
    assert_eq!(snap.segments.len(), 1);
    assert!(!snap.wal.is_empty());
    // Flushing after the snapshot does not reach into it.
    e.flush().unwrap();
    let copy = engine(&dir.path().join("snap"), clock());
    let got = f(&copy.read(s, T0, T0 + 10_000_000 * MIN, usize::MAX).unwrap());
    assert!(got.len() as i64 >= before, "{} points, {before} acknowledged before", got.len());
    let all = f(&e.read(s, T0, T0 + 10_000_000 * MIN, usize::MAX).unwrap());
    assert_eq!(&all[..got.len()], &got[..], "the copy is the source up to its moment");
    // A snapshot goes to a new directory only.
    assert!(e.snapshot(&dir.path().join("snap")).is_err());
}

/// Issue 18, item 4: compaction merges only the newest run of segments (each no larger than all
/// newer ones together), so a point is rewritten a logarithmic number of times, and last write
/// still wins whatever segments hold the older values. A model (the last value written for each
/// timestamp) is the truth.
#[test]
fn tiered_compaction_rewrites_little_and_last_write_still_wins() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let rt = rt();
    let s = SeriesId(3);
    let mut model = std::collections::BTreeMap::new();
    let (mut rewritten, mut whole) = (0u64, 0u64);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 10.0
    };
    for flush in 0..40i64 {
        // Each flush: the next 1,000 minutes of a noisy reading, and a rewrite of 5 minutes
        // written long ago.
        let mut batch: Vec<(SeriesId, i64, Value)> =
            (0..1000).map(|m| (s, T0 + (flush * 1000 + m) * MIN, Value::F64(noise()))).collect();
        for k in 0..5 {
            let m = (flush * 37 + k * 11) % (flush * 1000 + 1000);
            batch.push((s, T0 + m * MIN, Value::F64(-((flush * 10 + k) as f64))));
        }
        for (_, t, v) in &batch {
            model.insert(*t, v.as_f64().unwrap());
        }
        rt.block_on(write3(&e, batch)).unwrap();
        e.flush().unwrap();
        let before: u64 = e.segs.read().segments.values().map(|g| g.size).sum();
        let inputs = compaction_inputs(&e.segs.read().segments, None);
        let input_bytes: u64 = inputs.iter().map(|q| e.segs.read().segments[q].size).sum();
        if e.segs.read().segments.len() >= 4 {
            e.compact().unwrap();
            rewritten += input_bytes;
            whole += before;
        }
    }
    let got = e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap();
    let want: Vec<(i64, f64)> = model.iter().map(|(t, v)| (t.to_owned(), *v)).collect();
    let got: Vec<(i64, f64)> = f(&got);
    assert_eq!(got, want);
    // Bounded rewriting: far less than merging the whole history at every compaction did.
    let total: u64 = e.segs.read().segments.values().map(|g| g.size).sum();
    assert!(
        rewritten * 3 < whole && rewritten < 8 * total,
        "rewrote {rewritten} bytes (merging everything: {whole}) for {total} stored"
    );
    // And the same after reopening.
    drop(e);
    let e = engine(dir.path(), clock());
    let again = e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap();
    assert_eq!(again.len(), want.len());
}

#[test]
fn compaction_inputs_are_the_newest_run_no_larger_than_what_is_newer() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let rt = rt();
    // Segments of 8, 4, 2, 1, 1 flushes' worth (oldest first), built by flushing and compacting.
    let s = SeriesId(1);
    let mut minute = 0i64;
    let mut flush_n = |e: &Engine, n: i64| {
        for _ in 0..n {
            rt.block_on(write3(
                e,
                (0..2000)
                    .map(|i| {
                        let x = ((minute + i) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                        (s, T0 + (minute + i) * MIN, Value::F64((x % 10_000) as f64 / 10.0))
                    })
                    .collect(),
            ))
            .unwrap();
            minute += 2000;
            e.flush().unwrap();
        }
    };
    flush_n(&e, 1);
    flush_n(&e, 1);
    let sizes =
        |e: &Engine| -> Vec<u64> { e.segs.read().segments.values().map(|g| g.size).collect() };
    let seqs = |e: &Engine| -> Vec<u64> { e.segs.read().segments.keys().copied().collect() };
    // Two segments: both.
    assert_eq!(compaction_inputs(&e.segs.read().segments, None), seqs(&e));
    e.compact().unwrap();
    flush_n(&e, 1);
    flush_n(&e, 1);
    // [2 units, 1, 1]: 2 ≤ 1 + 1, all three.
    assert_eq!(compaction_inputs(&e.segs.read().segments, None).len(), 3, "{:?}", sizes(&e));
    e.compact().unwrap();
    for _ in 0..3 {
        flush_n(&e, 1);
    }
    // [4 units, 1, 1, 1]: 4 > 1 + 1 + 1 is left alone; the three newest merge.
    let s4 = seqs(&e);
    assert_eq!(
        compaction_inputs(&e.segs.read().segments, None),
        s4[1..].to_vec(),
        "{:?}",
        sizes(&e)
    );
    // When data expires: the oldest run up to the newest segment holding some.
    assert_eq!(compaction_inputs(&e.segs.read().segments, Some(s4[3])), s4);
    assert_eq!(compaction_inputs(&e.segs.read().segments, Some(s4[0])), vec![s4[0]]);
}

/// The first timestamp of a series, from the index and the heads: across segments holding the
/// same first day, with an earlier late point still in the head, and for a series with nothing.
#[test]
fn first_times_come_from_the_index_and_the_heads() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), clock());
    let rt = rt();
    let (a, b, none) = (SeriesId(1), SeriesId(2), SeriesId(3));
    rt.block_on(write3(
        &e,
        vec![(a, T0 + 90 * MIN, Value::F64(1.0)), (b, T0 + 5 * MIN, Value::F64(2.0))],
    ))
    .unwrap();
    e.flush().unwrap();
    rt.block_on(write3(&e, vec![(a, T0 + 30 * MIN, Value::F64(3.0))])).unwrap();
    e.flush().unwrap();
    assert_eq!(e.first_times(&[a, b, none]), vec![Some(T0 + 30 * MIN), Some(T0 + 5 * MIN), None]);
    // A late point before all of it, only in the head.
    rt.block_on(write3(&e, vec![(b, T0 - WINDOW_NS, Value::F64(4.0))])).unwrap();
    assert_eq!(e.first_times(&[b])[0], Some(T0 - WINDOW_NS));
    // What a read gives first, everywhere.
    for s in [a, b] {
        let first = e.read(s, i64::MIN, i64::MAX, 1).unwrap()[0].0;
        assert_eq!(e.first_times(&[s])[0], Some(first));
    }
    e.compact().unwrap();
    assert_eq!(e.first_times(&[a])[0], Some(T0 + 30 * MIN));
}

#[test]
fn a_clean_close_merges_the_newest_segments_and_the_last_write_still_wins() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let s = SeriesId(1);
    let want: Vec<(i64, f64)> =
        (0..30).map(|m| (T0 + m * MIN, if m == 5 { -5.0 } else { m as f64 })).collect();
    {
        let e = engine(dir.path(), clock());
        // Three flushes, each a segment; the third rewrites minute 5.
        for part in 0..3i64 {
            let pts = (part * 10..part * 10 + 10).map(|m| (s, T0 + m * MIN, Value::F64(m as f64)));
            let mut pts: Vec<_> = pts.collect();
            if part == 2 {
                pts.push((s, T0 + 5 * MIN, Value::F64(-5.0)));
            }
            rt.block_on(write3(&e, pts)).unwrap();
            e.flush().unwrap();
        }
        assert_eq!(e.stats().segments, 3);
        e.close().unwrap();
        assert_eq!(e.stats().segments, 1, "a clean stop merges what was just flushed");
    }
    let e = engine(dir.path(), clock());
    assert_eq!(e.stats().segments, 1);
    assert_eq!(f(&e.read(s, i64::MIN, i64::MAX, usize::MAX).unwrap()), want);
}

/// Three segments holding the same timestamps of 5 series, with values 1, 2, 3 (the last wins).
fn three_segments(e: &Engine) {
    let rt = rt();
    for v in 1..=3 {
        let pts = (0..5u32)
            .flat_map(|s| (0..100).map(move |i| (SeriesId(s), T0 + i * MIN, Value::F64(v as f64))))
            .collect();
        rt.block_on(write3(e, pts)).unwrap();
        e.flush().unwrap();
    }
}

/// Every point of the 5 series of [`three_segments`], as values.
fn values_of(e: &Engine) -> Vec<f64> {
    (0..5u32)
        .flat_map(|s| f(&e.read(SeriesId(s), i64::MIN, i64::MAX, usize::MAX).unwrap()))
        .map(|(_, v)| v)
        .collect()
}

/// Pause the next compaction in its merge step; returns (reached, release).
fn pause_compaction(e: &Engine) -> (Arc<std::sync::Barrier>, Arc<std::sync::Barrier>) {
    let (a, b) = (Arc::new(std::sync::Barrier::new(2)), Arc::new(std::sync::Barrier::new(2)));
    *e.mid_compaction.lock() = Some((a.clone(), b.clone()));
    (a, b)
}

/// [`three_segments`], then a compaction of them paused in its merge, then the value 9.0 written
/// at every timestamp of the 5 series (not yet flushed). Returns the compaction's thread and the
/// barrier that lets it go on.
fn nines_written_during_a_compaction(
    e: &Arc<Engine>,
) -> (std::thread::JoinHandle<Result<()>>, Arc<std::sync::Barrier>) {
    three_segments(e);
    let (reached, release) = pause_compaction(e);
    let compaction = {
        let e = e.clone();
        std::thread::spawn(move || e.compact())
    };
    reached.wait();
    let pts =
        (0..5u32).flat_map(|s| (0..100).map(move |i| (SeriesId(s), T0 + i * MIN, Value::F64(9.0))));
    rt().block_on(write3(e, pts.collect())).unwrap();
    (compaction, release)
}

/// Run `f` on a thread; its result, or a panic if it has not finished within a minute (a
/// deadlock, not a measure of speed).
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("blocked behind the compaction")
}

#[test]
fn a_flush_goes_on_while_a_compaction_runs_and_the_last_write_still_wins() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(engine(dir.path(), clock()));
    // The compaction holds its three inputs; a newer value arrives and is flushed meanwhile.
    let (compaction, release) = nines_written_during_a_compaction(&e);
    let flushing = e.clone();
    within_a_minute(move || flushing.flush()).unwrap();
    assert_eq!(e.stats().compactions, 0, "the flush did not wait for the compaction");
    release.wait();
    compaction.join().unwrap().unwrap();
    assert_eq!(e.stats().compactions, 1);
    // The output took the place of the newest input: the flushed segment is still newer.
    assert_eq!(e.segs.read().segments.len(), 2);
    assert_eq!(values_of(&e), vec![9.0; 500]);
    drop(e);
    let files: Vec<String> = fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "only the live segments are left: {files:?}");
    let e = engine(dir.path(), clock());
    assert_eq!(values_of(&e), vec![9.0; 500]);
    assert_eq!(e.segs.read().segments.len(), 2);
}

#[test]
fn closing_stops_a_compaction_under_way_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = Arc::new(engine(dir.path(), clock()));
    let (compaction, release) = nines_written_during_a_compaction(&e);
    let closing = {
        let e = e.clone();
        std::thread::spawn(move || e.close())
    };
    // `close` has flushed and waits for the compaction, which sees it and gives up.
    let flushed = e.clone();
    within_a_minute(move || {
        while flushed.segs.read().segments.len() < 4 {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    release.wait();
    compaction.join().unwrap().unwrap();
    within_a_minute(move || closing.join().unwrap()).unwrap();
    // Only the quick compaction `close` runs itself happened, over all four segments.
    assert_eq!(e.stats().compactions, 1);
    assert_eq!(e.segs.read().segments.len(), 1);
    drop(e);
    let e = engine(dir.path(), clock());
    assert_eq!(values_of(&e), vec![9.0; 500]);
}
