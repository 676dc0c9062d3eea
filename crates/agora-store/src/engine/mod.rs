//! The embedded time-series engine.
//!
//! Data path: a batch is appended to the WAL (group commit, fsync) and applied to the in-memory
//! head; the head is frozen and flushed into an immutable segment of compressed chunks (one per
//! series and UTC day, with hourly rollups); compaction merges segments, keeps one chunk per
//! series-day, and applies retention (raw points dropped, rollups kept). Queries merge segments,
//! frozen heads and the head, newest last, so a second value at the same timestamp replaces the
//! first wherever the two live.
//!
//! Data directory layout:
//! ```text
//! MANIFEST.json          live segments, their order, the WAL checkpoint
//! wal/{seq}.wal          write-ahead log files; files below the checkpoint are deleted
//! segments/{id}.seg      immutable segments (chunks + index)
//! ```

mod agg;
mod chunk;
mod column;
mod segment;
mod wal;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_model::{Clock, IdMap, SeriesId, Timestamp, Value};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

pub use agg::{Agg, AggFn};
use chunk::Hourly;
use column::Points;
use segment::{IndexEntry, Segment, SegmentWriter};
pub(crate) use wal::WalPoint;

use crate::error::{Error, Result};

/// How long frozen heads wait after a failed flush before the next attempt.
const FLUSH_RETRY: Duration = Duration::from_secs(2);
/// How long compaction waits after a failure (or a lack of room) before the next attempt.
const COMPACTION_RETRY: Duration = Duration::from_secs(60);
/// At a clean stop, the newest segments are merged when they hold at most this many bytes
/// (a second or two of work on this project's 2-core machine).
const CLOSE_COMPACTION_BYTES: u64 = 64 << 20;

/// One hour in nanoseconds.
pub const HOUR_NS: i64 = 3_600 * 1_000_000_000;
/// The time window of one chunk: a UTC day.
pub const WINDOW_NS: i64 = 24 * HOUR_NS;

/// The window (UTC day start) holding `t`.
pub(crate) fn window_of(t: i64) -> i64 {
    t.saturating_sub(t.rem_euclid(WINDOW_NS))
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The engine's directory (inside the data directory).
    pub dir: PathBuf,
    /// fsync the WAL before acknowledging writes. Only benchmarks of the non-durable path turn it off.
    pub fsync: bool,
    /// Flush the head once it holds this many points.
    pub flush_points: usize,
    /// Flush the head at least this often when it holds anything.
    pub flush_interval: Duration,
    /// Compact once this many segments exist.
    pub compact_segments: usize,
    /// Default retention of raw points (`None`: forever). Rollups outlive it.
    pub raw_retention: Option<Duration>,
    /// Retention of hourly rollups (`None`: forever).
    pub rollup_retention: Option<Duration>,
    /// Below this many free bytes on the data directory's filesystem, writes are refused (503)
    /// so that flushes and compactions still have room.
    pub min_free_bytes: u64,
}

impl EngineConfig {
    /// Defaults for a data directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            fsync: true,
            flush_points: 2_000_000,
            flush_interval: Duration::from_secs(600),
            compact_segments: 6,
            raw_retention: None,
            rollup_retention: None,
            min_free_bytes: 256 << 20,
        }
    }
}

/// What the engine holds, for `/api/v1/stats` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EngineStats {
    /// Series with at least one point.
    pub series: usize,
    /// Points stored (in segments after compaction, plus the head).
    pub points: u64,
    /// Points in memory not yet flushed.
    pub head_points: u64,
    /// Segment files.
    pub segments: usize,
    /// Chunks in segments.
    pub chunks: usize,
    /// Bytes of segment files.
    pub segment_bytes: u64,
    /// Bytes of WAL files.
    pub wal_bytes: u64,
    /// Bytes on disk (segments, WAL, manifest).
    pub bytes_on_disk: u64,
    /// Flushes since start.
    pub flushes: u64,
    /// Compactions since start.
    pub compactions: u64,
    /// Chunks decoded by raw reads since start.
    pub read_chunks: u64,
}

#[derive(Debug)]
struct SeriesBuf {
    pts: Points,
    /// Index in `pts` of the point with the greatest timestamp (the latest write wins on ties).
    latest: usize,
    min_ts: i64,
    max_ts: i64,
}

#[derive(Debug, Default)]
struct Head {
    series: IdMap<u32, SeriesBuf>,
    /// Points each series had in the previous head: its columns start at that capacity, so the
    /// writer does not grow (and copy) them again and again while ingestion runs steadily.
    sizes: IdMap<u32, u32>,
    points: usize,
    /// For a frozen head: WAL files below this sequence number hold nothing newer than it.
    checkpoint: u64,
}

impl Head {
    fn push(&mut self, s: SeriesId, t: i64, v: Value, flag: u8) {
        let sizes = &self.sizes;
        let buf = self.series.entry(s.0).or_insert_with(|| SeriesBuf {
            pts: Points::with_capacity(v.kind(), sizes.get(&s.0).map_or(0, |&n| n as usize)),
            latest: 0,
            min_ts: t,
            max_ts: t,
        });
        if !buf.pts.col.push(v) {
            // The pipeline checks kinds against the catalog, so this cannot happen for stored data.
            tracing::warn!(series = s.0, "value of the wrong kind dropped by the engine");
            return;
        }
        buf.pts.ts.push(t);
        buf.pts.push_flag(flag);
        if t >= buf.max_ts {
            buf.max_ts = t;
            buf.latest = buf.pts.len() - 1;
        }
        buf.min_ts = buf.min_ts.min(t);
        self.points += 1;
    }

    fn range(&self, s: u32, from: i64, to: i64) -> Option<Points> {
        let b = self.series.get(&s)?;
        if b.max_ts < from || b.min_ts >= to {
            return None;
        }
        Some(b.pts.filter_range(from, to))
    }

    fn latest(&self, s: u32) -> Option<(i64, Value)> {
        let b = self.series.get(&s)?;
        Some((b.max_ts, b.pts.col.get(b.latest)))
    }

    fn first(&self, s: u32) -> Option<i64> {
        self.series.get(&s).map(|b| b.min_ts)
    }
}

#[derive(Debug, Clone, Copy)]
struct ChunkRef {
    seq: u64,
    entry: IndexEntry,
}

#[derive(Debug, Default)]
struct SegSet {
    segments: BTreeMap<u64, Arc<Segment>>,
    /// series → its chunks, sorted by (window, segment seq): one flat vector per series keeps
    /// the index small (a year of a city is millions of chunks).
    index: IdMap<u32, Vec<ChunkRef>>,
    /// Latest point of each series held in segments.
    latest: HashMap<u32, (i64, Value)>,
}

impl SegSet {
    fn add(&mut self, seg: Arc<Segment>, entries: &[IndexEntry]) {
        for e in entries {
            let refs = self.index.entry(e.series).or_default();
            let key = (e.window, seg.seq);
            let pos = refs.partition_point(|x| (x.entry.window, x.seq) <= key);
            refs.insert(pos, ChunkRef { seq: seg.seq, entry: *e });
        }
        self.segments.insert(seg.seq, seg);
    }

    fn remove(&mut self, seqs: &[u64]) {
        for s in seqs {
            self.segments.remove(s);
        }
        for refs in self.index.values_mut() {
            refs.retain(|r| !seqs.contains(&r.seq));
        }
        self.index.retain(|_, refs| !refs.is_empty());
    }

    fn refs(&self, s: u32, from: i64, to: i64) -> Vec<(Arc<Segment>, ChunkRef)> {
        let Some(refs) = self.index.get(&s) else { return Vec::new() };
        let first = window_of(from);
        let start = refs.partition_point(|r| r.entry.window < first);
        refs[start..]
            .iter()
            .take_while(|r| r.entry.window < to)
            .filter(|r| r.entry.meta.max_ts >= from && r.entry.meta.min_ts < to)
            .filter_map(|r| self.segments.get(&r.seq).map(|s| (s.clone(), *r)))
            .collect()
    }
}

/// What [`Engine::snapshot`] copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// When it was taken: every write acknowledged before is in it.
    pub at: Timestamp,
    /// Live segments (ids), in the manifest's order.
    pub segments: Vec<u64>,
    /// WAL files (sequence numbers) not yet covered by the segments.
    pub wal: Vec<u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    next_id: u64,
    next_seq: u64,
    /// WAL files with a lower sequence number are fully contained in segments.
    wal_checkpoint: u64,
    /// (id, seq) of live segments.
    segments: Vec<(u64, u64)>,
}

impl Manifest {
    fn path(dir: &Path) -> PathBuf {
        dir.join("MANIFEST.json")
    }
    fn load(dir: &Path) -> Result<Self> {
        let p = Self::path(dir);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                what: "manifest",
                path: p,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                next_id: 1,
                next_seq: 1,
                wal_checkpoint: 1,
                segments: vec![],
            }),
            Err(e) => Err(Error::Io { path: p, source: e }),
        }
    }
    fn save(&self, dir: &Path) -> std::result::Result<(), SaveFailed> {
        let p = Self::path(dir);
        let tmp = p.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serializes");
        (|| {
            let mut f = fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &p)
        })()
        .map_err(|e| SaveFailed { error: Error::io(&p)(e), maybe_in_place: false })?;
        wal::sync_dir(dir).map_err(|error| SaveFailed { error, maybe_in_place: true })
    }

    /// Save, and say whether the files the previous manifest listed and this one does not (and
    /// the WAL files below its checkpoint) may be deleted: not when the new manifest replaced the
    /// old one but its directory could not be synced, for a crash may then bring the old one
    /// back. Both are then consistent with the files; those left over are removed at the next
    /// start. `Err`: the old manifest is still the one in place.
    fn save_then_may_delete(&self, dir: &Path) -> Result<bool> {
        match self.save(dir) {
            Ok(()) => Ok(true),
            Err(SaveFailed { error, maybe_in_place: true }) => {
                tracing::error!(error = %error, "the new manifest is in place but its directory could not be synced; the files it no longer needs are kept until the next start");
                Ok(false)
            }
            Err(SaveFailed { error, .. }) => Err(error),
        }
    }
}

/// A manifest that could not be saved, and whether the new one may be in place nonetheless.
struct SaveFailed {
    error: Error,
    maybe_in_place: bool,
}

/// The points in memory, shared by readers and the WAL thread: the head, and the frozen heads
/// waiting to be written as segments (oldest first). Only the WAL thread adds to them, after a
/// commit succeeded, so memory never holds a point that was refused.
#[derive(Debug)]
pub(crate) struct Memory {
    head: Mutex<Head>,
    frozen: RwLock<Vec<Arc<Head>>>,
    flush_points: usize,
    /// Signalled when the head has reached `flush_points`, so upkeep flushes without delay.
    flush_wanted: tokio::sync::Notify,
}

impl Memory {
    /// Add committed batches to the head, in WAL order (so the last of two values for one
    /// timestamp is the one replay would keep).
    fn apply(&self, batches: impl Iterator<Item = Vec<WalPoint>>) {
        let mut head = self.head.lock();
        for b in batches {
            for (s, t, v, f) in b {
                head.push(s, t, v, f);
            }
        }
        if head.points >= self.flush_points {
            self.flush_wanted.notify_one();
        }
    }

    /// Move the head to the frozen list; WAL files below `checkpoint` hold nothing newer. Returns
    /// whether there was anything to freeze.
    fn freeze(&self, checkpoint: u64) -> bool {
        let mut frozen = self.frozen.write();
        let mut head = self.head.lock();
        if head.points == 0 {
            return false;
        }
        // Room for what a head holds at `flush_points`, shared as the last head was: a head that
        // grew past it (flushes lagging) does not make the next one reserve as much at once.
        let scale = (self.flush_points as f64 / head.points as f64).min(1.0);
        let sizes: IdMap<u32, u32> = head
            .series
            .iter()
            .map(|(&s, b)| (s, (b.pts.len() as f64 * scale).ceil() as u32))
            .collect();
        let series = IdMap::with_capacity_and_hasher(sizes.len(), Default::default());
        let mut h = std::mem::replace(&mut *head, Head { series, sizes, ..Head::default() });
        h.sizes = IdMap::default();
        h.checkpoint = checkpoint;
        frozen.push(Arc::new(h));
        true
    }
}

/// Whether the engine accepts writes, and why not: for `/readyz`, `/metrics` and the fleet page.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageHealth {
    /// Whether writes are accepted now.
    pub accepting_writes: bool,
    /// Free bytes on the data directory's filesystem (for unprivileged users), at the last check.
    pub free_bytes: u64,
    /// Size of that filesystem.
    pub total_bytes: u64,
    /// Below this many free bytes, writes are refused.
    pub reserve_bytes: u64,
    /// Points held in frozen heads that could not be written yet (kept in memory and in the WAL).
    pub unflushed_points: u64,
    /// Whether the last WAL commit failed (writes get 503 until one succeeds).
    pub wal_failing: bool,
    /// The last storage failure (a WAL commit or a flush), while it is not resolved.
    pub last_error: Option<String>,
}

/// The storage engine. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    seg_dir: PathBuf,
    wal_dir: PathBuf,
    clock: Arc<dyn Clock>,
    wal: Mutex<wal::Wal>,
    mem: Arc<Memory>,
    segs: RwLock<SegSet>,
    /// Owns the manifest: held by a flush throughout, and by a compaction only to choose its
    /// inputs and to swap them for its output, so that a long compaction never holds flushes
    /// (and with them writers, once the head is full) back.
    maint: Mutex<Manifest>,
    /// Held by the one compaction that runs at a time.
    compacting: Mutex<()>,
    /// Tests pause a compaction in its merge step: it waits on the first barrier, then on the
    /// second.
    #[cfg(test)]
    mid_compaction: Mutex<Option<(Arc<std::sync::Barrier>, Arc<std::sync::Barrier>)>>,
    raw_retention: RwLock<HashMap<u32, Option<Duration>>>,
    flushes: AtomicU64,
    compactions: AtomicU64,
    /// Chunks decoded by raw reads since start.
    read_chunks: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    /// Signalled after each flush, for writers held back by a full head.
    flushed: tokio::sync::Notify,
    /// Free space and failures, refreshed by [`Engine::check_disk`] and after each failure.
    health: Mutex<StorageHealth>,
    /// Set while free space is below the reserve: writes are refused before they reach the WAL.
    disk_full: std::sync::atomic::AtomicBool,
    /// When the last flush failed: frozen heads are retried a few seconds later.
    flush_failed_at: Mutex<Option<std::time::Instant>>,
    /// When the last compaction failed: it is retried a minute later.
    compaction_failed_at: Mutex<Option<std::time::Instant>>,
    /// Set while the last WAL commit failed (cleared by the next one that succeeds).
    wal_failing: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Open (or create) the engine in `cfg.dir`: load segments, replay the WAL.
    pub fn open(cfg: EngineConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let seg_dir = cfg.dir.join("segments");
        let wal_dir = cfg.dir.join("wal");
        for d in [&cfg.dir, &seg_dir, &wal_dir] {
            fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        let manifest = Manifest::load(&cfg.dir)?;
        // Files a crash left behind (unfinished or superseded segments) are not in the manifest.
        let live: Vec<u64> = manifest.segments.iter().map(|s| s.0).collect();
        for e in fs::read_dir(&seg_dir).map_err(Error::io(&seg_dir))? {
            let e = e.map_err(Error::io(&seg_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok());
            if id.is_none_or(|id| !live.contains(&id)) {
                tracing::info!(file = %name, "removing a segment file not in the manifest");
                let _ = fs::remove_file(e.path());
            }
        }
        let mut segs = SegSet::default();
        for &(id, seq) in &manifest.segments {
            let (seg, entries) = Segment::open(&seg_dir, id, seq)?;
            segs.add(Arc::new(seg), &entries);
        }
        for refs in segs.index.values_mut() {
            refs.shrink_to_fit();
        }
        compute_latest(&mut segs)?;

        let mut head = Head::default();
        let wal_files = wal::list(&wal_dir)?;
        let mut next_wal = manifest.wal_checkpoint;
        let mut replayed = 0usize;
        let last = wal_files.last().map(|f| f.0);
        for (seq, path) in &wal_files {
            if *seq < manifest.wal_checkpoint {
                let _ = fs::remove_file(path);
                continue;
            }
            let r = wal::read(path)?;
            if let Some(at) = r.torn_at {
                if Some(*seq) == last {
                    tracing::warn!(file = %path.display(), offset = at, "torn WAL tail ignored (never acknowledged)");
                } else {
                    tracing::error!(file = %path.display(), offset = at, "corrupt WAL record; the rest of this file is skipped");
                }
            }
            for b in r.batches {
                replayed += b.len();
                for (s, t, v, f) in b {
                    head.push(s, t, v, f);
                }
            }
            next_wal = next_wal.max(seq + 1);
        }
        if replayed > 0 {
            tracing::info!(points = replayed, "replayed the write-ahead log");
        }
        let mem = Arc::new(Memory {
            head: Mutex::new(head),
            frozen: RwLock::new(Vec::new()),
            flush_points: cfg.flush_points,
            flush_wanted: tokio::sync::Notify::new(),
        });
        let wal = wal::Wal::start(wal_dir.clone(), next_wal, cfg.fsync, mem.clone())?;
        let engine = Self {
            cfg,
            seg_dir,
            wal_dir,
            clock,
            wal: Mutex::new(wal),
            mem,
            segs: RwLock::new(segs),
            maint: Mutex::new(manifest),
            compacting: Mutex::new(()),
            #[cfg(test)]
            mid_compaction: Mutex::new(None),
            raw_retention: RwLock::new(HashMap::new()),
            flushes: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            read_chunks: AtomicU64::new(0),
            closed: false.into(),
            flushed: tokio::sync::Notify::new(),
            health: Mutex::new(StorageHealth { accepting_writes: true, ..Default::default() }),
            disk_full: false.into(),
            flush_failed_at: Mutex::new(None),
            compaction_failed_at: Mutex::new(None),
            wal_failing: false.into(),
        };
        engine.check_disk();
        Ok(engine)
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Copy a consistent image of the engine into `dir` (which must not exist): the manifest,
    /// its segments (hard links when `dir` is on the data's file system: they are immutable) and
    /// the WAL files the segments do not cover yet, as they are now. Flushes wait meanwhile, and
    /// so does a compaction's swap of its output for its inputs (its merge goes on); writes go
    /// on, into the WAL after the copy or into its copied part, whose torn tail a replay ignores.
    /// Every write acknowledged before the returned time is in the image.
    pub fn snapshot(&self, dir: &Path) -> Result<EngineSnapshot> {
        let manifest = self.maint.lock();
        let at = self.clock.now();
        let (seg_dir, wal_dir) = (dir.join("segments"), dir.join("wal"));
        if dir.exists() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a snapshot goes to a new directory",
                ),
            });
        }
        for d in [&seg_dir, &wal_dir] {
            fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        let mut segments = Vec::new();
        for &(id, _) in &manifest.segments {
            let (src, dst) =
                (segment::segment_path(&self.seg_dir, id), segment::segment_path(&seg_dir, id));
            if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst).map_err(Error::io(&src))?;
            }
            segments.push(id);
        }
        let mut wal_files = Vec::new();
        for (seq, path) in wal::list(&self.wal_dir)? {
            if seq < manifest.wal_checkpoint {
                continue;
            }
            let dst = wal_dir.join(path.file_name().unwrap_or_default());
            fs::copy(&path, &dst).map_err(Error::io(&path))?;
            wal_files.push(seq);
        }
        manifest.save(dir).map_err(|f| f.error)?;
        Ok(EngineSnapshot { at, segments, wal: wal_files })
    }

    /// Write points; returns once they are durable in the WAL and readable. On an error none of
    /// them is stored: not in the WAL, not in memory.
    pub async fn write(&self, points: Vec<WalPoint>) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        self.check_writable()?;
        self.wait_for_room().await?;
        let record = wal::encode(&points);
        // The WAL thread applies committed records to the head in the order it wrote them, so
        // replay reproduces which of two values for one timestamp came last.
        let ack = self.wal.lock().append(record, points)?;
        let r = ack.await.map_err(|_| Error::Closed)?;
        match &r {
            Ok(()) => {
                if self.wal_failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the write-ahead log accepts writes again");
                    self.check_disk();
                }
            }
            Err(e) => {
                self.wal_failing.store(true, Ordering::Relaxed);
                self.note_failure(e);
                self.check_disk();
            }
        }
        r
    }

    /// Refuse writes while free space is below the reserve.
    fn check_writable(&self) -> Result<()> {
        if self.disk_full.load(Ordering::Relaxed) {
            let h = self.health.lock();
            return Err(Error::DiskFull { free: h.free_bytes, reserve: h.reserve_bytes });
        }
        Ok(())
    }

    fn note_failure(&self, e: &Error) {
        self.health.lock().last_error = Some(e.to_string());
    }

    /// Measure free space on the data directory's filesystem: below the reserve, writes are
    /// refused (`DiskFull`) until space comes back. Cheap (one `statvfs`); upkeep calls it often.
    pub fn check_disk(&self) -> StorageHealth {
        let reserve = self.cfg.min_free_bytes;
        let stat = rustix::fs::statvfs(&self.cfg.dir);
        let mut h = self.health.lock();
        h.reserve_bytes = reserve;
        match stat {
            Ok(st) => {
                h.free_bytes = st.f_bavail.saturating_mul(st.f_frsize);
                h.total_bytes = st.f_blocks.saturating_mul(st.f_frsize);
                let full = h.free_bytes < reserve;
                let was = self.disk_full.swap(full, Ordering::Relaxed);
                if full && !was {
                    tracing::error!(free = h.free_bytes, reserve, dir = %self.cfg.dir.display(), "free space below the reserve: writes are refused until space is freed");
                } else if was && !full {
                    tracing::warn!(
                        free = h.free_bytes,
                        reserve,
                        "free space is back above the reserve: writes are accepted again"
                    );
                }
                h.accepting_writes = !full;
                h.wal_failing = self.wal_failing.load(Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure free space of the data directory");
            }
        }
        h.unflushed_points = self.mem.frozen.read().iter().map(|f| f.points as u64).sum();
        if h.unflushed_points == 0
            && h.accepting_writes
            && !h.wal_failing
            && self.flush_failed_at.lock().is_none()
        {
            // A failure is history once space is back and nothing waits to be written.
            h.last_error = None;
        }
        h.clone()
    }

    /// The last measured storage health (see [`Engine::check_disk`]).
    pub fn health(&self) -> StorageHealth {
        self.health.lock().clone()
    }

    /// Back-pressure: while the head holds four times `flush_points` (flushes cannot keep up),
    /// writers wait for a flush rather than fill memory; after 30 s they get `Busy`.
    async fn wait_for_room(&self) -> Result<()> {
        let limit = self.cfg.flush_points.saturating_mul(4);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let flushed = self.flushed.notified();
            // Frozen heads count too: while flushes fail, memory must not grow without bound.
            let frozen: usize = self.mem.frozen.read().iter().map(|f| f.points).sum();
            if self.mem.head.lock().points + frozen < limit {
                return Ok(());
            }
            self.mem.flush_wanted.notify_one();
            if tokio::time::timeout_at(deadline, flushed).await.is_err() {
                return Err(Error::Busy);
            }
        }
    }

    /// Resolves after the next successful flush: a compaction may then be due.
    pub async fn flushed(&self) {
        self.flushed.notified().await;
    }

    /// Resolves when the head asks to be flushed (or at once if it already did).
    pub async fn flush_wanted(&self) {
        self.mem.flush_wanted.notified().await;
    }

    /// Whether the head should be flushed now: it is full, or frozen heads wait since a failed
    /// flush (retried every few seconds).
    pub fn needs_flush(&self) -> bool {
        if self.mem.head.lock().points >= self.cfg.flush_points {
            return true;
        }
        !self.mem.frozen.read().is_empty()
            && self.flush_failed_at.lock().is_none_or(|t| t.elapsed() >= FLUSH_RETRY)
    }

    /// Points in the head.
    pub fn head_points(&self) -> usize {
        self.mem.head.lock().points
    }

    /// Set the raw-point retention of one series (`None`: the engine default).
    pub fn set_raw_retention(&self, s: SeriesId, keep: Option<Duration>) {
        self.raw_retention.write().insert(s.0, keep);
    }

    fn retention_of(&self, s: u32) -> Option<Duration> {
        self.raw_retention.read().get(&s).copied().flatten().or(self.cfg.raw_retention)
    }

    /// Raw points of a series with `from <= t < to`, oldest first, at most `limit`; points
    /// flagged by quality checks are left out.
    pub fn read(&self, s: SeriesId, from: i64, to: i64, limit: usize) -> Result<Vec<(i64, Value)>> {
        Ok(self
            .read_points(s.0, from, to, limit, false)?
            .into_iter()
            .map(|(t, v, _)| (t, v))
            .collect())
    }

    /// Raw points with their quality flags, flagged ones included.
    pub fn read_with_flags(
        &self,
        s: SeriesId,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Value, u8)>> {
        self.read_points(s.0, from, to, limit, true)
    }

    /// Raw points in range, window by window (one UTC day at a time), so that decoding stops once
    /// `limit` points are found: a query for one point over ten years decodes one day.
    fn read_points(
        &self,
        s: u32,
        from: i64,
        to: i64,
        limit: usize,
        with_flagged: bool,
    ) -> Result<Vec<(i64, Value, u8)>> {
        self.read_points_as(s, from, to, limit, with_flagged, |p, i| {
            (p.ts[i], p.col.get(i), p.flag(i))
        })
    }

    /// Numeric raw points (unflagged) with `from <= t < to`, oldest first, at most `limit`, as
    /// `(time, value)`: what summaries computed outside the engine (energy means) read, without
    /// building a `Value` per point.
    pub fn read_numbers(
        &self,
        s: SeriesId,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(Timestamp, f64)>> {
        self.read_points_as(s.0, from, to, limit, false, |p, i| {
            (Timestamp::from_nanos(p.ts[i]), p.col.num(i))
        })
    }

    /// Raw points in range, each made into a `T` by `make`, window by window.
    fn read_points_as<T>(
        &self,
        s: u32,
        from: i64,
        to: i64,
        limit: usize,
        with_flagged: bool,
        make: impl Fn(&Points, usize) -> T,
    ) -> Result<Vec<T>> {
        // Segments and heads are taken together: a flush finishing in between would otherwise
        // move points from a frozen head to a segment this read does not see.
        let (refs, heads) = {
            let segs = self.segs.read();
            (segs.refs(s, from, to), Points::merge(self.head_sources(s, from, to)))
        };
        let mut windows: std::collections::BTreeSet<i64> =
            refs.iter().map(|(_, r)| r.entry.window).collect();
        if let Some(h) = &heads {
            windows.extend(h.ts.iter().map(|&t| window_of(t)));
        }
        let mut out = Vec::new();
        for w in windows {
            if out.len() >= limit {
                break;
            }
            // Oldest first: segments in sequence order, then the heads.
            let mut sources = Vec::new();
            for (seg, r) in refs.iter().filter(|(_, r)| r.entry.window == w) {
                self.read_chunks.fetch_add(1, Ordering::Relaxed);
                if let Some(raw) = decode_ref(seg, r, true)?.raw {
                    sources.push(raw.filter_range(from, to));
                }
            }
            if let Some(h) = &heads {
                let part = h.filter_range(w, w.saturating_add(WINDOW_NS));
                if part.len() > 0 {
                    sources.push(part);
                }
            }
            let Some(p) = Points::merge(sources) else { continue };
            let p = if with_flagged { p } else { p.without_flagged() };
            let take = p.len().min(limit - out.len());
            out.extend((0..take).map(|i| make(&p, i)));
        }
        Ok(out)
    }

    /// Points of all sources in range, merged.
    fn merged(&self, s: u32, from: i64, to: i64) -> Result<Option<Points>> {
        let refs = self.segs.read().refs(s, from, to);
        let mut sources = Vec::with_capacity(refs.len() + 2);
        for (seg, r) in &refs {
            let c = decode_ref(seg, r, true)?;
            if let Some(raw) = c.raw {
                sources.push(raw.filter_range(from, to));
            }
        }
        sources.extend(self.head_sources(s, from, to));
        Ok(Points::merge(sources))
    }

    fn head_sources(&self, s: u32, from: i64, to: i64) -> Vec<Points> {
        let mut out: Vec<Points> =
            self.mem.frozen.read().iter().filter_map(|h| h.range(s, from, to)).collect();
        out.extend(self.mem.head.lock().range(s, from, to));
        out
    }

    /// Summaries of a series in buckets of `every` nanoseconds aligned on the epoch (UTC), over
    /// `from <= t < to`. Buckets that are whole hours are answered from the hourly rollups.
    pub fn aggregate(
        &self,
        s: SeriesId,
        from: i64,
        to: i64,
        every: i64,
    ) -> Result<Vec<(i64, Agg)>> {
        if every <= 0 || from >= to {
            return Ok(Vec::new());
        }
        let mut out: Vec<(i64, Agg)> = Vec::new();
        if every % HOUR_NS == 0 {
            for (h, a) in self.hourly(s.0, from, to)? {
                add_to_bucket(&mut out, every, h, &a);
            }
        } else if let Some(p) = self.merged(s.0, from, to)?.map(Points::without_flagged) {
            for (i, &t) in p.ts.iter().enumerate() {
                add_to_bucket(&mut out, every, t, &Agg::one(t, p.col.num(i)));
            }
        }
        Ok(out)
    }

    /// Hourly summaries over `from <= t < to`, from rollups where a window is held by exactly one
    /// chunk and nothing newer, from raw points elsewhere.
    fn hourly(&self, s: u32, from: i64, to: i64) -> Result<Hourly> {
        let refs = self.segs.read().refs(s, from, to);
        let heads = Points::merge(self.head_sources(s, from, to));
        let mut by_window: BTreeMap<i64, Vec<(Arc<Segment>, ChunkRef)>> = BTreeMap::new();
        for (seg, r) in refs {
            by_window.entry(r.entry.window).or_default().push((seg, r));
        }
        if let Some(h) = &heads {
            for &t in &h.ts {
                by_window.entry(window_of(t)).or_default();
            }
        }
        let mut out = Hourly::new();
        for (w, refs) in by_window {
            let head_part =
                heads.as_ref().map(|h| h.filter_range(w, w + WINDOW_NS)).filter(|p| p.len() > 0);
            let whole_hours =
                (from <= w || from % HOUR_NS == 0) && (to >= w + WINDOW_NS || to % HOUR_NS == 0);
            if refs.len() == 1 && head_part.is_none() && whole_hours {
                let c = decode_ref(&refs[0].0, &refs[0].1, false)?;
                out.extend(c.hourly.into_iter().filter(|(h, _)| *h >= from && h + HOUR_NS <= to));
                continue;
            }
            // Several sources (or a partial hour): merge raw points and summarize them; add the
            // rollups of windows whose raw points retention has already dropped.
            let mut raw_sources = Vec::new();
            let mut rollup_only: Hourly = Vec::new();
            for (seg, r) in &refs {
                let c = decode_ref(seg, r, true)?;
                match c.raw {
                    Some(p) => raw_sources.push(p),
                    None => rollup_only.extend(c.hourly),
                }
            }
            raw_sources.extend(head_part);
            let mut hours: BTreeMap<i64, Agg> = BTreeMap::new();
            if let Some(p) = Points::merge(raw_sources) {
                let p = p.filter_range(from, to);
                if p.len() > 0 {
                    for (h, a) in chunk::hourly_of(&p, w) {
                        hours.insert(h, a);
                    }
                }
            }
            for (h, a) in rollup_only {
                if h >= from && h + HOUR_NS <= to {
                    hours.entry(h).and_modify(|x| x.merge(&a)).or_insert(a);
                }
            }
            out.extend(hours);
        }
        Ok(out)
    }

    /// The latest point of each series (`None` for a series with no data).
    pub fn latest(&self, series: &[SeriesId]) -> Vec<Option<(i64, Value)>> {
        let segs = self.segs.read();
        let frozen = self.mem.frozen.read();
        let head = self.mem.head.lock();
        series
            .iter()
            .map(|s| {
                let mut best = segs.latest.get(&s.0).cloned();
                for h in frozen.iter().map(|f| f.latest(s.0)).chain([head.latest(s.0)]) {
                    if let Some((t, v)) = h
                        && best.as_ref().is_none_or(|b| t >= b.0)
                    {
                        best = Some((t, v));
                    }
                }
                best
            })
            .collect()
    }

    /// The first timestamp of each series (`None`: no data), from the index and the heads
    /// without decoding anything: the first point of its earliest chunk, flagged or not.
    pub fn first_times(&self, series: &[SeriesId]) -> Vec<Option<i64>> {
        let segs = self.segs.read();
        let frozen = self.mem.frozen.read();
        let head = self.mem.head.lock();
        series
            .iter()
            .map(|s| {
                let stored = segs.index.get(&s.0).and_then(|refs| {
                    let w = refs.first()?.entry.window;
                    refs.iter()
                        .take_while(|r| r.entry.window == w)
                        .map(|r| r.entry.meta.min_ts)
                        .min()
                });
                let held = frozen.iter().map(|f| f.first(s.0)).chain([head.first(s.0)]).flatten();
                stored.into_iter().chain(held).min()
            })
            .collect()
    }

    /// Raw points of a series in `from <= t < to`, counted from the index and the heads without
    /// decoding anything: chunks that overlap the range count in full (an upper bound).
    pub fn raw_points_in(&self, s: SeriesId, from: i64, to: i64) -> u64 {
        let segs = self.segs.read();
        let mut n: u64 = segs
            .index
            .get(&s.0)
            .into_iter()
            .flatten()
            .filter(|r| r.entry.meta.has_raw)
            .filter(|r| r.entry.meta.max_ts >= from && r.entry.meta.min_ts < to)
            .map(|r| u64::from(r.entry.meta.count))
            .sum();
        let frozen = self.mem.frozen.read();
        let head = self.mem.head.lock();
        for h in frozen.iter().map(|f| &**f).chain([&*head]) {
            if let Some(b) = h.series.get(&s.0)
                && b.max_ts >= from
                && b.min_ts < to
            {
                n += b.pts.ts.iter().filter(|&&t| t >= from && t < to).count() as u64;
            }
        }
        n
    }

    /// Bytes on disk and points held in segments by some series (after compaction, exact).
    pub fn usage(&self, series: &[SeriesId]) -> (u64, u64) {
        let segs = self.segs.read();
        let (mut bytes, mut points) = (0u64, 0u64);
        for s in series {
            for r in segs.index.get(&s.0).into_iter().flatten() {
                bytes += u64::from(r.entry.len);
                points += u64::from(r.entry.meta.count);
            }
        }
        (bytes, points)
    }

    /// What the engine holds.
    pub fn stats(&self) -> EngineStats {
        let segs = self.segs.read();
        let mut st = EngineStats::default();
        let mut series: std::collections::HashSet<u32> = segs.index.keys().copied().collect();
        for refs in segs.index.values() {
            st.chunks += refs.len();
            st.points += refs
                .iter()
                .filter(|r| r.entry.meta.has_raw)
                .map(|r| u64::from(r.entry.meta.count))
                .sum::<u64>();
        }
        st.segments = segs.segments.len();
        st.segment_bytes = segs.segments.values().map(|s| s.size).sum();
        drop(segs);
        for f in self.mem.frozen.read().iter() {
            series.extend(f.series.keys());
            st.head_points += f.points as u64;
        }
        let head = self.mem.head.lock();
        series.extend(head.series.keys());
        st.head_points += head.points as u64;
        drop(head);
        st.points += st.head_points;
        st.series = series.len();
        st.wal_bytes = wal::list(&self.wal_dir)
            .map(|v| v.iter().filter_map(|(_, p)| fs::metadata(p).ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        let manifest = fs::metadata(Manifest::path(&self.cfg.dir)).map(|m| m.len()).unwrap_or(0);
        st.bytes_on_disk = st.segment_bytes + st.wal_bytes + manifest;
        st.flushes = self.flushes.load(Ordering::Relaxed);
        st.compactions = self.compactions.load(Ordering::Relaxed);
        st.read_chunks = self.read_chunks.load(Ordering::Relaxed);
        st
    }

    /// Write the head, and any frozen head a failed flush left, to new segments (oldest first)
    /// and drop the WAL files they cover. Blocking. On failure, what is not written stays in
    /// memory and in the WAL (the checkpoint never passes it) and is retried by the next flush.
    pub fn flush(&self) -> Result<()> {
        let mut manifest = self.maint.lock();
        // Heads a failed flush left are written first, then the current head is frozen and
        // written: a retry does not pile up one small frozen head per attempt.
        for freeze in [false, true] {
            if freeze {
                let froze = self.wal.lock().freeze()?;
                froze.blocking_recv().map_err(|_| Error::Closed)?;
            }
            loop {
                let Some(frozen) = self.mem.frozen.read().first().cloned() else { break };
                if let Err(e) = self.write_frozen(&mut manifest, &frozen) {
                    *self.flush_failed_at.lock() = Some(std::time::Instant::now());
                    tracing::error!(error = %e, points = frozen.points, "flush failed; the points stay in memory and in the WAL and will be written by the next flush");
                    self.note_failure(&e);
                    drop(manifest);
                    self.check_disk();
                    return Err(e);
                }
            }
        }
        let recovered = self.flush_failed_at.lock().take().is_some();
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.flushed.notify_waiters();
        drop(manifest);
        if recovered {
            tracing::warn!("flush succeeded again; every point waiting in memory is written");
            self.check_disk();
        }
        Ok(())
    }

    /// Write one frozen head as a segment, record it in the manifest with the head's WAL
    /// checkpoint, then make it visible and drop the frozen head and the WAL files it covered.
    fn write_frozen(&self, manifest: &mut Manifest, frozen: &Arc<Head>) -> Result<()> {
        let id = manifest.next_id;
        let seq = manifest.next_seq;
        let mut w = SegmentWriter::create(&self.seg_dir, id)?;
        let mut ids: Vec<u32> = frozen.series.keys().copied().collect();
        ids.sort_unstable();
        for sid in ids {
            let buf = &frozen.series[&sid];
            // Most series arrive in order: write them as they are, sort only the others.
            if buf.pts.is_strictly_sorted() {
                write_windows(&mut w, sid, &buf.pts)?;
            } else if let Some(p) = Points::merge(vec![buf.pts.clone()]) {
                write_windows(&mut w, sid, &p)?;
            }
        }
        let entries = if w.is_empty() { Vec::new() } else { w.finish()? };
        let mut next = manifest.clone();
        next.next_id += 1;
        next.next_seq += 1;
        if !entries.is_empty() {
            next.segments.push((id, seq));
        }
        next.wal_checkpoint = next.wal_checkpoint.max(frozen.checkpoint);
        let may_delete = match next.save_then_may_delete(&self.cfg.dir) {
            Ok(may) => may,
            Err(e) => {
                // Not in the manifest: the segment would be deleted at the next start anyway.
                let _ = fs::remove_file(segment::segment_path(&self.seg_dir, id));
                return Err(e);
            }
        };
        *manifest = next;
        let checkpoint = manifest.wal_checkpoint;
        {
            let mut segs = self.segs.write();
            if !entries.is_empty() {
                let (seg, _) = Segment::open(&self.seg_dir, id, seq)?;
                segs.add(Arc::new(seg), &entries);
            }
            for (&sid, _) in frozen.series.iter() {
                if let Some((t, v)) = frozen.latest(sid)
                    && segs.latest.get(&sid).is_none_or(|b| t >= b.0)
                {
                    segs.latest.insert(sid, (t, v));
                }
            }
            self.mem.frozen.write().retain(|f| !Arc::ptr_eq(f, frozen));
        }
        for (s, path) in wal::list(&self.wal_dir)? {
            if s < checkpoint && may_delete {
                let _ = fs::remove_file(path);
            }
        }
        tracing::debug!(points = frozen.points, segment = id, "flushed a head");
        Ok(())
    }

    /// Whether enough segments have piled up to compact, with room to write the result (as
    /// large as its inputs at most) above the reserve, and no failure in the last minute.
    pub fn needs_compaction(&self) -> bool {
        self.worth_compacting(self.cfg.compact_segments.max(2), u64::MAX)
    }

    /// Whether at least `min_segments` segments are there, the compaction's inputs hold at most
    /// `max_bytes`, and there is room for its output.
    fn worth_compacting(&self, min_segments: usize, max_bytes: u64) -> bool {
        let (count, bytes) = {
            let segs = self.segs.read();
            // The same inputs compact_inner will choose.
            let inputs = compaction_inputs(&segs.segments, self.newest_expiring(&segs));
            (segs.segments.len(), inputs.iter().map(|q| segs.segments[q].size).sum::<u64>())
        };
        if count < min_segments || bytes > max_bytes {
            return false;
        }
        if self.compaction_failed_at.lock().is_some_and(|t| t.elapsed() < COMPACTION_RETRY) {
            return false;
        }
        let (free, total) = {
            let h = self.health.lock();
            (h.free_bytes, h.total_bytes)
        };
        // An unknown size (statvfs failed) does not block compaction.
        if total > 0 && free < bytes.saturating_add(self.cfg.min_free_bytes) {
            tracing::warn!(
                free,
                segment_bytes = bytes,
                "compaction postponed: not enough free space for its output"
            );
            *self.compaction_failed_at.lock() = Some(std::time::Instant::now());
            return false;
        }
        true
    }

    /// Merge the newest segments into one (the oldest ones when some data expires, see
    /// [`compaction_inputs`]): one chunk per series-day, retention applied. Blocking. Chunks that
    /// are alone in their window and keep their raw points are copied as they are.
    /// A failure (a full disk) leaves the segments as they were and gives the space back.
    /// Flushes go on meanwhile (their segments are newer than every input); once the engine is
    /// closing, a compaction gives up and leaves its inputs as they were.
    pub fn compact(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.compact_logged(false)
    }

    fn compact_logged(&self, closing: bool) -> Result<()> {
        let _one = self.compacting.lock();
        let r = self.compact_inner(closing);
        if let Err(e) = &r {
            tracing::error!(error = %e, "compaction failed; the segments stay as they were");
            *self.compaction_failed_at.lock() = Some(std::time::Instant::now());
            self.note_failure(e);
        }
        r
    }

    /// Whether a compaction should give up: the engine is closing (unless this is the
    /// compaction `close` runs itself).
    fn compaction_cancelled(&self, closing: bool) -> bool {
        !closing && self.closed.load(Ordering::SeqCst)
    }

    fn compact_inner(&self, closing: bool) -> Result<()> {
        // `close` may have come between `compact`'s check and the lock: once it has waited for
        // the lock, no compaction but its own touches the files.
        if self.compaction_cancelled(closing) {
            return Ok(());
        }
        // 1. Choose the inputs and reserve the output's id, under the manifest's lock. Segments
        //    only leave the set under `compacting`, held by this compaction: every input stays
        //    readable until step 3.
        let (inputs, segments, ids, id) = {
            let mut manifest = self.maint.lock();
            let segs = self.segs.read();
            let expiring = self.newest_expiring(&segs);
            if segs.segments.len() < 2 && expiring.is_none() {
                return Ok(());
            }
            let mut ids: Vec<u32> = segs.index.keys().copied().collect();
            ids.sort_unstable();
            let inputs = compaction_inputs(&segs.segments, expiring);
            let segments: BTreeMap<u64, Arc<Segment>> =
                inputs.iter().map(|q| (*q, segs.segments[q].clone())).collect();
            // The id is taken for good (in memory; saved with the next manifest): an abandoned
            // output file is not in the manifest and is removed at the next start.
            let id = manifest.next_id;
            manifest.next_id += 1;
            (inputs, segments, ids, id)
        };
        // Flushes add segments meanwhile, all newer than every input: the output takes the
        // newest input's place in the order, so that which of two values is newer never changes.
        let seq = *inputs.iter().max().expect("a compaction has inputs");
        let output = segment::segment_path(&self.seg_dir, id);
        let cancelled = || {
            let _ = fs::remove_file(&output);
            tracing::info!("compaction stopped: the engine is closing");
            Ok(())
        };
        // 2. Merge, without the manifest's lock.
        let now = self.clock.now().as_nanos();
        let rollup_cut = self.cfg.rollup_retention.map(|d| now - d.as_nanos() as i64);
        let mut w = SegmentWriter::create(&self.seg_dir, id)?;
        #[cfg(test)]
        if let Some((a, b)) = self.mid_compaction.lock().take() {
            a.wait();
            b.wait();
        }
        for sid in ids {
            if self.compaction_cancelled(closing) {
                drop(w);
                return cancelled();
            }
            let series_refs: Vec<ChunkRef> = {
                let segs = self.segs.read();
                let refs = segs.index.get(&sid).map_or(&[][..], Vec::as_slice);
                refs.iter().filter(|r| segments.contains_key(&r.seq)).copied().collect()
            };
            for group in series_refs.chunk_by(|a, b| a.entry.window == b.entry.window) {
                let s = &sid;
                let win = &group[0].entry.window;
                let pairs: Vec<(Arc<Segment>, ChunkRef)> =
                    group.iter().map(|r| (segments[&r.seq].clone(), *r)).collect();
                let refs = &pairs;
                let end = win + WINDOW_NS;
                if rollup_cut.is_some_and(|c| end <= c) {
                    continue;
                }
                let raw_cut = self.retention_of(*s).map(|d| now - d.as_nanos() as i64);
                let expire_raw = raw_cut.is_some_and(|c| end <= c);
                if refs.len() == 1 && !(expire_raw && refs[0].1.entry.meta.has_raw) {
                    let (seg, r) = &refs[0];
                    w.add(*s, *win, &seg.read(&r.entry)?, r.entry.meta)?;
                    continue;
                }
                let mut raw_sources = Vec::new();
                let mut rollup_only: BTreeMap<i64, Agg> = BTreeMap::new();
                let mut kind = None;
                for (seg, r) in refs {
                    let c = decode_ref(seg, r, true)?;
                    kind = Some(c.kind);
                    match c.raw {
                        Some(p) => raw_sources.push(p),
                        None => {
                            for (h, a) in c.hourly {
                                rollup_only.entry(h).and_modify(|x| x.merge(&a)).or_insert(a);
                            }
                        }
                    }
                }
                let merged = Points::merge(raw_sources);
                let mut hours: BTreeMap<i64, Agg> = BTreeMap::new();
                if let Some(p) = &merged {
                    hours.extend(chunk::hourly_of(p, *win));
                }
                let force_rollups = !rollup_only.is_empty();
                for (h, a) in rollup_only {
                    hours.entry(h).and_modify(|x| x.merge(&a)).or_insert(a);
                }
                let hourly: Hourly = hours.into_iter().collect();
                let kind = merged
                    .as_ref()
                    .map(|p| p.col.kind())
                    .or(kind)
                    .unwrap_or(agora_model::ValueKind::Float);
                let raw = if expire_raw { None } else { merged.as_ref() };
                // A window whose points are all flagged has no rollups but keeps its raw points.
                if hourly.is_empty() && raw.is_none() {
                    continue;
                }
                let (bytes, meta) = chunk::encode(kind, *win, &hourly, raw, force_rollups)?;
                w.add(*s, *win, &bytes, meta)?;
            }
        }
        let entries = if w.is_empty() {
            drop(w);
            Vec::new()
        } else {
            w.finish()?
        };
        if self.compaction_cancelled(closing) {
            return cancelled();
        }
        // 3. Swap the inputs for the output, under the manifest's lock again.
        let mut manifest = self.maint.lock();
        let mut next = manifest.clone();
        next.segments.retain(|(_, sq)| !segments.contains_key(sq));
        if !entries.is_empty() {
            next.segments.push((id, seq));
        }
        let may_delete = match next.save_then_may_delete(&self.cfg.dir) {
            Ok(may) => may,
            Err(e) => {
                let _ = fs::remove_file(&output);
                return Err(e);
            }
        };
        *manifest = next;
        {
            // Opened before the inputs leave: a failure leaves them readable until a restart.
            let output = if entries.is_empty() {
                None
            } else {
                Some(Segment::open(&self.seg_dir, id, seq)?.0)
            };
            let mut segs = self.segs.write();
            segs.remove(&inputs);
            if let Some(seg) = output {
                segs.add(Arc::new(seg), &entries);
            }
        }
        // Readers holding an old segment keep their open file; unlinking is safe. The lock is
        // still held: a snapshot in progress has linked the files it lists.
        for seg in segments.values().filter(|_| may_delete) {
            let _ = fs::remove_file(&seg.path);
        }
        drop(manifest);
        self.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(inputs = inputs.len(), segment = id, "compacted segments");
        Ok(())
    }

    /// The newest segment holding a chunk that retention drops (raw points or rollups past
    /// their time), if any.
    fn newest_expiring(&self, segs: &SegSet) -> Option<u64> {
        let now = self.clock.now().as_nanos();
        let roll_cut = self.cfg.rollup_retention.map(|d| now - d.as_nanos() as i64);
        segs.index
            .iter()
            .flat_map(|(s, refs)| {
                let raw_cut = self.retention_of(*s).map(|d| now - d.as_nanos() as i64);
                refs.iter().filter(move |r| {
                    let end = r.entry.window + WINDOW_NS;
                    (raw_cut.is_some_and(|c| end <= c) && r.entry.meta.has_raw)
                        || roll_cut.is_some_and(|c| end <= c)
                })
            })
            .map(|r| r.seq)
            .max()
    }

    /// Flush everything and stop the WAL writer: a clean shutdown leaves no WAL to replay. If the
    /// flush fails (a full disk), the WAL files stay and are replayed at the next start.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let flushed = self.flush();
        // A compaction under way gives up (see `compaction_cancelled`); then a clean stop leaves
        // the newest segments merged (one chunk per series-day, encoded at pco's best) when that
        // is quick; a failure leaves them as they were, nothing is lost.
        drop(self.compacting.lock());
        if flushed.is_ok() && self.worth_compacting(2, CLOSE_COMPACTION_BYTES) {
            let _ = self.compact_logged(true);
        }
        self.wal.lock().close();
        flushed?;
        for (_, p) in wal::list(&self.wal_dir)? {
            if fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(false) {
                let _ = fs::remove_file(p);
            }
        }
        Ok(())
    }
}

/// The segments a compaction merges, oldest first. When retention drops data, the oldest run up
/// to the newest segment holding such data (`expiring`: where old windows are). Otherwise the
/// newest run in which no segment is larger than all newer ones of the run together: a byte is
/// then rewritten only when at least as much newer data joins it, so each point is rewritten
/// O(log(total / flush)) times, however long the history (merging everything each time rewrote
/// the whole history). Either way segments are merged only with their neighbours in age, so that
/// which of two values of a timestamp is the newer never changes.
fn compaction_inputs(segments: &BTreeMap<u64, Arc<Segment>>, expiring: Option<u64>) -> Vec<u64> {
    let by_age: Vec<(u64, u64)> = segments.iter().map(|(q, s)| (*q, s.size)).collect();
    if let Some(upto) = expiring {
        return by_age.iter().map(|(q, _)| *q).filter(|q| *q <= upto).collect();
    }
    let n = by_age.len();
    if n <= 2 {
        return by_age.iter().map(|(q, _)| *q).collect();
    }
    let mut start = n - 2;
    let mut newer = by_age[n - 1].1 + by_age[n - 2].1;
    while start > 0 && by_age[start - 1].1 <= newer {
        start -= 1;
        newer += by_age[start].1;
    }
    by_age[start..].iter().map(|(q, _)| *q).collect()
}

/// Merge a summary into the bucket of `every` (aligned on the epoch) holding `t`; buckets are
/// filled in time order.
fn add_to_bucket(out: &mut Vec<(i64, Agg)>, every: i64, t: i64, a: &Agg) {
    let b = t.div_euclid(every) * every;
    match out.last_mut() {
        Some((bb, acc)) if *bb == b => acc.merge(a),
        _ => out.push((b, *a)),
    }
}

fn decode_ref(seg: &Segment, r: &ChunkRef, want_raw: bool) -> Result<chunk::Chunk> {
    let bytes = seg.read(&r.entry)?;
    chunk::decode(&bytes, r.entry.window, want_raw).map_err(|e| Error::Corrupt {
        what: "chunk",
        path: seg.path.clone(),
        reason: format!("series {} window {}: {e}", r.entry.series, r.entry.window),
    })
}

/// Split sorted points into windows and add one chunk per window.
fn write_windows(w: &mut SegmentWriter, sid: u32, p: &Points) -> Result<()> {
    let mut start = 0;
    while start < p.len() {
        let win = window_of(p.ts[start]);
        let end = start + p.ts[start..].partition_point(|&t| t < win + WINDOW_NS);
        let part = Points {
            ts: p.ts[start..end].to_vec(),
            col: {
                let mut c = p.col.with_capacity_like(end - start);
                for i in start..end {
                    c.push_from(&p.col, i);
                }
                c
            },
            flags: if p.flags.is_empty() { Vec::new() } else { p.flags[start..end].to_vec() },
        };
        let hourly = chunk::hourly_of(&part, win);
        let (bytes, meta) = chunk::encode_with(
            part.col.kind(),
            win,
            &hourly,
            Some(&part),
            false,
            chunk::Effort::Fast,
        )?;
        w.add(sid, win, &bytes, meta)?;
        start = end;
    }
    Ok(())
}

/// Find each series' latest stored point (at start-up).
fn compute_latest(segs: &mut SegSet) -> Result<()> {
    let mut latest = HashMap::new();
    for (&s, refs) in &segs.index {
        let Some(r) = refs.iter().max_by_key(|r| (r.entry.meta.max_ts, r.seq)) else {
            continue;
        };
        let Some(seg) = segs.segments.get(&r.seq) else { continue };
        let c = decode_ref(seg, r, true)?;
        let v = match &c.raw {
            Some(p) => p.col.get(p.len() - 1),
            None => match c.hourly.last() {
                Some((_, a)) if c.kind.is_numeric() => Value::F64(a.last),
                _ => continue,
            },
        };
        latest.insert(s, (r.entry.meta.max_ts, v));
    }
    segs.latest = latest;
    Ok(())
}

#[cfg(test)]
mod tests;
