//! Online backups of a running agora, and restores.
//!
//! A backup is taken while ingestion goes on: the engine copies a consistent image of itself
//! (its manifest, its immutable segments, the WAL they do not cover yet; every write acknowledged
//! before the backup's time is in it) and the catalog copies itself with SQLite's `VACUUM INTO`.
//! Both land in a staging directory inside the data directory (segments as hard links, so this is
//! quick), then go to the backup repository:
//!
//! ```text
//! segments/{sha256}.seg          each segment once, named by its content: a backup copies only
//!                                the segments the repository does not hold yet (incremental)
//! backups/{name}/backup.json     what the backup holds: its time, its files and their SHA-256
//! backups/{name}/engine/…        the engine's manifest and WAL files
//! backups/{name}/catalog.db      the catalog (devices, places, tokens, rules, alerts…)
//! ```
//!
//! A backup is written as `{name}.partial` and renamed once complete: a directory without the
//! suffix is a whole backup. Retention keeps the newest backup of each of the last N days and of
//! each of the last M weeks; segments no kept backup uses are then removed. `restore` rebuilds a
//! data directory (new or empty) from a backup, checking every file against its hash; `verify`
//! checks a backup without restoring it.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agora_api::AppState;
use agora_model::Timestamp;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of `backup.json` this build writes and reads.
const FORMAT: u32 = 1;
/// The staging directory inside the data directory.
const STAGING: &str = "backup-staging";

/// `[backup]` in `agora.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// The backup repository (a directory, local or mounted); absent: no backups.
    pub dir: Option<PathBuf>,
    /// Take one every this many hours (0: only when asked, `agora backup` or the API).
    pub every_hours: u64,
    /// Keep the newest backup of each of the last this many days.
    pub keep_daily: u32,
    /// And of each of the last this many weeks.
    pub keep_weekly: u32,
    /// A bucket of S3-compatible object storage the repository is mirrored to after each backup
    /// (off site): new objects are uploaded, those retention removed are deleted.
    pub s3: Option<crate::s3::S3Config>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { dir: None, every_hours: 0, keep_daily: 7, keep_weekly: 4, s3: None }
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the backup's directory (`engine/wal/…`, `catalog.db`), `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One segment of a backup, kept once in the repository's `segments/` by content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentEntry {
    /// The engine's segment id (its file name in a data directory).
    pub id: u64,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex (its name in the repository).
    pub sha256: String,
}

/// `backup.json`: what a backup holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupIndex {
    /// Format of this file.
    pub format: u32,
    /// The backup's name (its time, UTC).
    pub name: String,
    /// Every write acknowledged before this time is in the backup.
    pub at: Timestamp,
    /// The agora that wrote it.
    pub agora_version: String,
    /// The engine's segments.
    pub segments: Vec<SegmentEntry>,
    /// The other files.
    pub files: Vec<FileEntry>,
}

impl BackupIndex {
    /// Bytes of the whole backup (segments included).
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).chain(self.files.iter().map(|f| f.size)).sum()
    }
}

/// What one backup did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// Its name.
    pub name: String,
    /// Every write acknowledged before this time is in it.
    pub at: Timestamp,
    /// Segments copied to the repository by this backup.
    pub segments_copied: usize,
    /// Segments the repository held already.
    pub segments_reused: usize,
    /// Bytes written to the repository.
    pub bytes_copied: u64,
    /// Bytes of the whole backup.
    pub bytes_total: u64,
    /// Backups removed by retention.
    pub pruned: Vec<String>,
    /// What the mirror to object storage did (absent without `[backup.s3]`).
    pub mirror: Option<MirrorReport>,
    /// Seconds taken.
    pub seconds: f64,
}

/// One backup at a time (a scheduled one and one asked for).
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Take a backup of the running agora into the repository of `cfg`, then apply retention.
pub async fn backup(
    state: &AppState,
    data_dir: &Path,
    cfg: &BackupConfig,
) -> anyhow::Result<BackupReport> {
    let repo = cfg.dir.clone().context("no backup repository: set [backup] dir")?;
    let _one = RUNNING.lock().await;
    let started = Instant::now();
    let staging = data_dir.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = async {
        let snap = state.store.snapshot(&staging.join("engine")).await?;
        state.catalog.backup_into(&staging.join("catalog.db")).await?;
        let (staging, repo, cfg) = (staging.clone(), repo.clone(), cfg.clone());
        tokio::task::spawn_blocking(move || {
            let mut report = store(&staging, &repo, &snap)?;
            report.pruned = prune(&repo, cfg.keep_daily, cfg.keep_weekly)?;
            Ok::<_, anyhow::Error>(report)
        })
        .await?
    }
    .await;
    let _ = std::fs::remove_dir_all(&staging);
    let mut report = result?;
    if let Some(s3) = &cfg.s3 {
        // The local backup stands even if the mirror fails: the error says so.
        let bucket = crate::s3::Bucket::new(s3)?;
        report.mirror = Some(mirror(&repo, &bucket, &report.pruned).await.with_context(|| {
            format!("backup {} was taken, but mirroring it to object storage failed", report.name)
        })?);
    }
    report.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        name = %report.name,
        copied = report.segments_copied,
        reused = report.segments_reused,
        bytes = report.bytes_copied,
        seconds = report.seconds,
        "backup taken"
    );
    Ok(report)
}

/// The name of a backup taken at `at`: its UTC time to the millisecond.
fn name_of(at: Timestamp) -> String {
    at.to_datetime().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read `src` once: its size and SHA-256, and a copy written to `dst` (a new file, synced)
/// when one is given.
fn read_hashed(src: &Path, dst: Option<&Path>) -> anyhow::Result<(u64, String)> {
    let mut r =
        std::fs::File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut w = dst
        .map(|d| std::fs::File::create(d).with_context(|| format!("cannot write {}", d.display())))
        .transpose()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).with_context(|| format!("cannot read {}", src.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if let (Some(w), Some(d)) = (w.as_mut(), dst) {
            w.write_all(&buf[..n]).with_context(|| format!("cannot write {}", d.display()))?;
        }
        size += n as u64;
    }
    if let (Some(w), Some(d)) = (w, dst) {
        w.sync_all().with_context(|| format!("cannot write {}", d.display()))?;
    }
    Ok((size, hex(&h.finalize())))
}

/// Copy `src` to `dst` (a new file, synced), returning its size and SHA-256.
fn copy_hashed(src: &Path, dst: &Path) -> anyhow::Result<(u64, String)> {
    read_hashed(src, Some(dst))
}

/// Size and SHA-256 of a file.
fn hash_file(p: &Path) -> anyhow::Result<(u64, String)> {
    read_hashed(p, None)
}

fn segment_file(id: u64) -> String {
    // The engine's own naming (`agora_store::engine`): twenty digits.
    format!("{id:020}.seg")
}

fn sync_dir(d: &Path) {
    if let Ok(f) = std::fs::File::open(d) {
        let _ = f.sync_all();
    }
}

/// Move a staged snapshot into the repository.
fn store(
    staging: &Path,
    repo: &Path,
    snap: &agora_store::EngineSnapshot,
) -> anyhow::Result<BackupReport> {
    let pool = repo.join("segments");
    let backups = repo.join("backups");
    for d in [&pool, &backups] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let name = name_of(snap.at);
    let partial = backups.join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let result = store_into(staging, &pool, &backups, &partial, &name, snap);
    if result.is_err() {
        // Nothing half written stays: no partial backup, no partial segment.
        let _ = std::fs::remove_dir_all(&partial);
        if let Ok(entries) = std::fs::read_dir(&pool) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    result
}

fn store_into(
    staging: &Path,
    pool: &Path,
    backups: &Path,
    partial: &Path,
    name: &str,
    snap: &agora_store::EngineSnapshot,
) -> anyhow::Result<BackupReport> {
    let name = name.to_owned();
    std::fs::create_dir_all(partial.join("engine").join("wal"))?;
    let (mut copied, mut reused, mut bytes) = (0usize, 0usize, 0u64);
    let mut segments = Vec::with_capacity(snap.segments.len());
    for &id in &snap.segments {
        let src = staging.join("engine").join("segments").join(segment_file(id));
        let (size, sha256) = hash_file(&src)?;
        let dst = pool.join(format!("{sha256}.seg"));
        if dst.metadata().is_ok_and(|m| m.len() == size) {
            reused += 1;
        } else {
            let tmp = pool.join(format!("{sha256}.seg.tmp"));
            let (n, check) = copy_hashed(&src, &tmp)?;
            if check != sha256 {
                bail!("segment {id} changed while it was copied");
            }
            std::fs::rename(&tmp, &dst)?;
            copied += 1;
            bytes += n;
        }
        segments.push(SegmentEntry { id, size, sha256 });
    }
    sync_dir(pool);
    let mut files = Vec::new();
    let mut add = |rel: String, src: PathBuf| -> anyhow::Result<()> {
        let (size, sha256) = copy_hashed(&src, &partial.join(&rel))?;
        bytes += size;
        files.push(FileEntry { path: rel, size, sha256 });
        Ok(())
    };
    add("engine/MANIFEST.json".into(), staging.join("engine").join("MANIFEST.json"))?;
    for &seq in &snap.wal {
        let file = format!("{seq:020}.wal");
        add(format!("engine/wal/{file}"), staging.join("engine").join("wal").join(&file))?;
    }
    add("catalog.db".into(), staging.join("catalog.db"))?;
    let index = BackupIndex {
        format: FORMAT,
        name: name.clone(),
        at: snap.at,
        agora_version: env!("CARGO_PKG_VERSION").into(),
        segments,
        files,
    };
    let json = serde_json::to_vec_pretty(&index)?;
    let mut f = std::fs::File::create(partial.join("backup.json"))?;
    f.write_all(&json)?;
    f.sync_all()?;
    sync_dir(partial);
    let done = backups.join(&name);
    std::fs::rename(partial, &done)
        .with_context(|| format!("cannot complete {}", done.display()))?;
    sync_dir(backups);
    Ok(BackupReport {
        name,
        at: snap.at,
        segments_copied: copied,
        segments_reused: reused,
        bytes_copied: bytes,
        bytes_total: index.bytes(),
        pruned: Vec::new(),
        mirror: None,
        seconds: 0.0,
    })
}

/// The whole backups of a repository, oldest first.
pub fn list(repo: &Path) -> anyhow::Result<Vec<BackupIndex>> {
    let dir = repo.join("backups");
    if !dir.exists() {
        bail!("{} is not a backup repository (no backups/ in it)", repo.display());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") || !e.path().is_dir() {
            continue;
        }
        // A directory a crash left half removed (or anything else) does not hide the others.
        match index_of(repo, &name) {
            Ok(i) => out.push(i),
            Err(err) => {
                tracing::warn!(backup = %name, error = %format!("{err:#}"), "skipping an unreadable backup")
            }
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.name.cmp(&b.name)));
    Ok(out)
}

fn index_of(repo: &Path, name: &str) -> anyhow::Result<BackupIndex> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("bad backup name {name:?}");
    }
    let p = repo.join("backups").join(name).join("backup.json");
    let bytes =
        std::fs::read(&p).with_context(|| format!("no backup {name:?} ({})", p.display()))?;
    let index: BackupIndex = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a backup index", p.display()))?;
    if index.format != FORMAT {
        bail!("backup {name:?} has format {}, this agora reads {FORMAT}", index.format);
    }
    check_index(&index, name)?;
    Ok(index)
}

/// Refuse an index whose names could lead outside the backup or the data directory: restore
/// writes where it says, so only the files agora writes are allowed.
fn check_index(index: &BackupIndex, name: &str) -> anyhow::Result<()> {
    if index.name != name {
        bail!("backup {name:?} says it is {:?}", index.name);
    }
    let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(s) = index.segments.iter().find(|s| !hex64(&s.sha256)) {
        bail!("backup {name:?} lists segment {} with a bad hash {:?}", s.id, s.sha256);
    }
    let allowed = |p: &str| {
        p == "engine/MANIFEST.json"
            || p == "catalog.db"
            || p.strip_prefix("engine/wal/")
                .and_then(|f| f.strip_suffix(".wal"))
                .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(f) = index.files.iter().find(|f| !allowed(&f.path) || !hex64(&f.sha256)) {
        bail!("backup {name:?} lists a file agora does not write: {:?}", f.path);
    }
    Ok(())
}

/// The backup named, or the newest.
fn chosen(repo: &Path, name: Option<&str>) -> anyhow::Result<BackupIndex> {
    match name {
        Some(n) => index_of(repo, n),
        None => list(repo)?.pop().with_context(|| format!("{} holds no backup", repo.display())),
    }
}

/// A file of a backup and where it is in the repository (segments by content).
fn sources(repo: &Path, index: &BackupIndex) -> Vec<(PathBuf, u64, String, String)> {
    let dir = repo.join("backups").join(&index.name);
    let mut out: Vec<(PathBuf, u64, String, String)> = index
        .segments
        .iter()
        .map(|s| {
            let p = repo.join("segments").join(format!("{}.seg", s.sha256));
            (p, s.size, s.sha256.clone(), format!("engine/segments/{}", segment_file(s.id)))
        })
        .collect();
    out.extend(
        index.files.iter().map(|f| (dir.join(&f.path), f.size, f.sha256.clone(), f.path.clone())),
    );
    out
}

/// Check every file of a backup (the newest when no name is given) against its size and hash.
/// Returns the backup, or the list of what is wrong.
pub fn verify(repo: &Path, name: Option<&str>) -> anyhow::Result<BackupIndex> {
    let index = chosen(repo, name)?;
    let mut wrong = Vec::new();
    for (src, size, sha256, rel) in sources(repo, &index) {
        match hash_file(&src) {
            Ok((s, h)) if s == size && h == sha256 => {}
            Ok((s, _)) if s != size => wrong.push(format!("{rel}: {s} bytes, {size} expected")),
            Ok(_) => wrong.push(format!("{rel}: its content changed (SHA-256 differs)")),
            Err(e) => wrong.push(format!("{rel}: {e:#}")),
        }
    }
    if !wrong.is_empty() {
        bail!("backup {} is damaged:\n  {}", index.name, wrong.join("\n  "));
    }
    Ok(index)
}

/// Rebuild a data directory from a backup (the newest when no name is given). The directory
/// must be new or empty; every file is checked against its hash as it is copied, and on any
/// failure the directory is left empty again.
pub fn restore(repo: &Path, name: Option<&str>, data_dir: &Path) -> anyhow::Result<BackupIndex> {
    let index = chosen(repo, name)?;
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir)
            .with_context(|| format!("cannot read {}", data_dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "refusing to restore into {}: it is not empty (restore into a new or empty directory)",
                data_dir.display()
            );
        }
    }
    let result = (|| {
        for (src, size, sha256, rel) in sources(repo, &index) {
            let dst = data_dir.join(&rel);
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let (s, h) = copy_hashed(&src, &dst)?;
            if s != size || h != sha256 {
                bail!("{rel} in backup {} is damaged (size or SHA-256 differs)", index.name);
            }
        }
        for d in ["engine/segments", "engine/wal", "engine", ""] {
            sync_dir(&data_dir.join(d));
        }
        Ok(())
    })();
    if let Err(e) = result {
        if let Ok(entries) = std::fs::read_dir(data_dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ =
                    if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            }
        }
        return Err(e);
    }
    Ok(index)
}

/// Remove the backups retention does not keep (the newest of each of the last `daily` days and
/// of the last `weekly` ISO weeks, and always the newest of all), then the segments no remaining
/// backup uses. Returns the names removed.
pub fn prune(repo: &Path, daily: u32, weekly: u32) -> anyhow::Result<Vec<String>> {
    let all = list(repo)?;
    let Some(newest) = all.last().map(|b| b.name.clone()) else { return Ok(Vec::new()) };
    let mut keep: BTreeSet<String> = BTreeSet::from([newest]);
    let mut newest_of = |key: &dyn Fn(&BackupIndex) -> String, n: u32| {
        let mut seen: Vec<String> = Vec::new();
        for b in all.iter().rev() {
            let k = key(b);
            if seen.contains(&k) {
                continue;
            }
            if seen.len() as u32 >= n {
                break;
            }
            seen.push(k);
            keep.insert(b.name.clone());
        }
    };
    newest_of(&|b| b.at.to_datetime().format("%Y-%m-%d").to_string(), daily);
    newest_of(&|b| b.at.to_datetime().format("%G-W%V").to_string(), weekly);
    let mut removed = Vec::new();
    for b in &all {
        if !keep.contains(&b.name) {
            // Out of sight first (a crash midway leaves a `.partial`, cleared below), then gone.
            let dir = repo.join("backups").join(&b.name);
            let gone = repo.join("backups").join(format!("{}.partial", b.name));
            std::fs::rename(&dir, &gone)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
            std::fs::remove_dir_all(&gone)
                .with_context(|| format!("cannot remove {}", gone.display()))?;
            removed.push(b.name.clone());
        }
    }
    // Leftovers of interrupted backups and removals (one backup runs at a time: none is live).
    for e in std::fs::read_dir(repo.join("backups"))?.flatten() {
        if e.file_name().to_string_lossy().ends_with(".partial") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    // Segments of no kept backup (and copies a failed backup left).
    let used: BTreeSet<String> = all
        .iter()
        .filter(|b| keep.contains(&b.name))
        .flat_map(|b| b.segments.iter().map(|s| format!("{}.seg", s.sha256)))
        .collect();
    for e in std::fs::read_dir(repo.join("segments"))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !used.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(removed)
}

/// What [`mirror`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorReport {
    /// Objects uploaded.
    pub uploaded: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Objects deleted (backups retention removed, and their segments).
    pub deleted: usize,
}

/// Make a bucket hold what the local repository holds: segments and backups missing there are
/// uploaded (a backup's `backup.json` last: it marks the backup complete); the backups `pruned`
/// are deleted there too, then the segments no backup in the bucket uses.
pub async fn mirror(
    repo: &Path,
    bucket: &crate::s3::Bucket,
    pruned: &[String],
) -> anyhow::Result<MirrorReport> {
    let local = {
        let repo = repo.to_path_buf();
        tokio::task::spawn_blocking(move || list(&repo)).await??
    };
    let remote: std::collections::BTreeMap<String, u64> =
        bucket.list("").await?.into_iter().map(|o| (o.key, o.size)).collect();
    let mut r = MirrorReport::default();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for b in &local {
        for seg in &b.segments {
            let key = format!("segments/{}.seg", seg.sha256);
            if wanted.insert(key.clone()) && remote.get(&key) != Some(&seg.size) {
                bucket.put_file(&key, &repo.join(&key), &seg.sha256).await?;
                r.uploaded += 1;
                r.bytes += seg.size;
            }
        }
        let dir = format!("backups/{}", b.name);
        for f in &b.files {
            let key = format!("{dir}/{}", f.path);
            wanted.insert(key.clone());
            if remote.get(&key) != Some(&f.size) {
                bucket.put_file(&key, &repo.join(&key), &f.sha256).await?;
                r.uploaded += 1;
                r.bytes += f.size;
            }
        }
        let key = format!("{dir}/backup.json");
        wanted.insert(key.clone());
        if !remote.contains_key(&key) {
            let path = repo.join(&key);
            let (size, sha256) = hash_file(&path)?;
            bucket.put_file(&key, &path, &sha256).await?;
            r.uploaded += 1;
            r.bytes += size;
        }
    }
    // Only what agora wrote is deleted: the backups this run's retention removed (their
    // backup.json first, so that a removal cut short leaves no backup that looks whole), then
    // the segments no backup left in the bucket lists — and only when every backup there is one
    // of this repository's (a bucket holding older or other backups keeps all its segments).
    let remote_backups: BTreeSet<String> = remote
        .keys()
        .filter_map(|k| k.strip_prefix("backups/")?.split('/').next().map(str::to_owned))
        .collect();
    for name in pruned.iter().filter(|n| remote_backups.contains(*n)) {
        let dir = format!("backups/{name}/");
        let mut keys: Vec<&String> = remote.keys().filter(|k| k.starts_with(&dir)).collect();
        keys.sort_by_key(|k| !k.ends_with("/backup.json"));
        for key in keys {
            bucket.delete(key).await?;
            r.deleted += 1;
        }
    }
    let local_names: BTreeSet<&str> = local.iter().map(|b| b.name.as_str()).collect();
    let only_ours =
        remote_backups.iter().all(|n| local_names.contains(n.as_str()) || pruned.contains(n));
    if only_ours {
        for key in remote.keys().filter(|k| k.starts_with("segments/") && !wanted.contains(*k)) {
            bucket.delete(key).await?;
            r.deleted += 1;
        }
    }
    Ok(r)
}

/// Download a backup (the newest complete one when no name is given) and its segments from a
/// bucket into `dir`, a local repository `restore` and `verify` read.
pub async fn fetch(
    bucket: &crate::s3::Bucket,
    name: Option<&str>,
    dir: &Path,
) -> anyhow::Result<BackupIndex> {
    let objects = bucket.list("backups/").await?;
    let mut complete: Vec<String> = objects
        .iter()
        .filter_map(|o| o.key.strip_prefix("backups/")?.strip_suffix("/backup.json"))
        .map(str::to_owned)
        .collect();
    complete.sort();
    let name = match name {
        Some(n) if complete.iter().any(|c| c == n) => n.to_owned(),
        Some(n) => bail!("the bucket holds no complete backup {n:?}"),
        None => complete.pop().context("the bucket holds no complete backup")?,
    };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("bad backup name {name:?}");
    }
    // Fetched into `{name}.partial`, renamed once whole.
    let bdir = dir.join("backups").join(format!("{name}.partial"));
    std::fs::create_dir_all(bdir.join("engine").join("wal"))?;
    std::fs::create_dir_all(dir.join("segments"))?;
    bucket.get_to_file(&format!("backups/{name}/backup.json"), &bdir.join("backup.json")).await?;
    let index: BackupIndex = serde_json::from_slice(&std::fs::read(bdir.join("backup.json"))?)
        .with_context(|| format!("backup {name:?} in the bucket has no readable index"))?;
    check_index(&index, &name)?;
    for f in &index.files {
        let dst = bdir.join(&f.path);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        bucket.get_to_file(&format!("backups/{name}/{}", f.path), &dst).await?;
    }
    for seg in &index.segments {
        let key = format!("segments/{}.seg", seg.sha256);
        bucket.get_to_file(&key, &dir.join(&key)).await?;
    }
    std::fs::rename(&bdir, dir.join("backups").join(&name))?;
    Ok(index)
}

/// Take a backup every `cfg.every_hours` (when a repository and a period are set).
pub async fn schedule(state: AppState, data_dir: PathBuf, cfg: BackupConfig) {
    if cfg.dir.is_none() || cfg.every_hours == 0 {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(cfg.every_hours * 3600));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        if let Err(e) = backup(&state, &data_dir, &cfg).await {
            tracing::error!(error = %format!("{e:#}"), "scheduled backup failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(repo: &Path, at: &str, segs: &[&str]) -> String {
        let at = Timestamp::parse_rfc3339(at).unwrap();
        let name = name_of(at);
        let dir = repo.join("backups").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(repo.join("segments")).unwrap();
        // A segment named by a letter stands for a hash of 64 of that letter.
        for s in segs {
            std::fs::write(repo.join("segments").join(format!("{}.seg", s.repeat(64))), s).unwrap();
        }
        let index = BackupIndex {
            format: FORMAT,
            name: name.clone(),
            at,
            agora_version: "test".into(),
            segments: segs
                .iter()
                .enumerate()
                .map(|(i, s)| SegmentEntry { id: i as u64, size: 1, sha256: s.repeat(64) })
                .collect(),
            files: vec![],
        };
        std::fs::write(dir.join("backup.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        name
    }

    #[test]
    fn retention_keeps_the_newest_of_each_day_and_week_and_their_segments() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        // Two a day on 2 to 4 March 2026 (Monday to Wednesday), one on 23 February (a week
        // before), one on 9 February (three weeks before).
        let old = fake(repo, "2026-02-09T03:00:00Z", &["a"]);
        let prev_week = fake(repo, "2026-02-23T03:00:00Z", &["b"]);
        let mut days = Vec::new();
        for day in ["02", "03", "04"] {
            let early = fake(repo, &format!("2026-03-{day}T03:00:00Z"), &["c"]);
            let late = fake(repo, &format!("2026-03-{day}T15:00:00Z"), &["c", "d"]);
            days.push((early, late));
        }
        // Two days, two weeks.
        let removed = prune(repo, 2, 2).unwrap();
        let kept: Vec<String> = list(repo).unwrap().into_iter().map(|b| b.name).collect();
        assert_eq!(kept, [prev_week.clone(), days[1].1.clone(), days[2].1.clone()]);
        assert!(removed.contains(&old) && removed.contains(&days[0].1));
        // Segment a (only the removed backup's) is gone; b, c, d stay.
        let segs: BTreeSet<String> = std::fs::read_dir(repo.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let seg = |c: &str| format!("{}.seg", c.repeat(64));
        assert_eq!(segs, BTreeSet::from([seg("b"), seg("c"), seg("d")]));
        // Nothing to keep but the newest: it stays.
        prune(repo, 0, 0).unwrap();
        assert_eq!(list(repo).unwrap().len(), 1);
    }

    #[test]
    fn bad_names_and_non_repositories_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(format!("{:#}", list(d.path()).unwrap_err()).contains("not a backup repository"));
        std::fs::create_dir_all(d.path().join("backups")).unwrap();
        for bad in ["../x", "", ".hidden"] {
            assert!(
                format!("{:#}", verify(d.path(), Some(bad)).unwrap_err())
                    .contains("bad backup name")
            );
        }
        assert!(
            format!("{:#}", restore(d.path(), None, &d.path().join("new")).unwrap_err())
                .contains("holds no backup")
        );
    }

    #[test]
    fn an_index_that_points_outside_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path();
        let name = fake(repo, "2026-03-02T03:00:00Z", &[]);
        let path = repo.join("backups").join(&name).join("backup.json");
        let good: BackupIndex = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let hash = "ab".repeat(32);
        let file = |p: &str| vec![FileEntry { path: p.into(), size: 1, sha256: hash.clone() }];
        for (index, says) in [
            (BackupIndex { files: file("../../etc/cron.d/x"), ..good.clone() }, "does not write"),
            (
                BackupIndex { files: file("/root/.ssh/authorized_keys"), ..good.clone() },
                "does not write",
            ),
            (
                BackupIndex {
                    segments: vec![SegmentEntry { id: 1, size: 1, sha256: "../../x".into() }],
                    ..good.clone()
                },
                "bad hash",
            ),
            (BackupIndex { name: "another".into(), ..good.clone() }, "says it is"),
        ] {
            std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
            let target = d.path().join("target");
            let e = format!("{:#}", restore(repo, Some(&name), &target).unwrap_err());
            assert!(e.contains(says), "{e}");
            assert!(!target.exists() || std::fs::read_dir(&target).unwrap().next().is_none());
        }
        std::fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
        assert_eq!(list(repo).unwrap().len(), 1);
    }
}
