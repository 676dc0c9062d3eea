//! The write-ahead log: every batch is appended and fsynced before it is acknowledged. One thread
//! owns the file and commits in groups: all batches that arrive while an fsync runs share the next.
//!
//! Files are `wal/{seq:020}.wal`; a record is `u32 length | u32 crc32 | payload`, the payload a
//! batch of points (`u32 n`, then `u32 series | i64 ts | u8 kind | value` each). A torn record at
//! the end of the last file (a crash mid-write) ends replay there; it was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use agora_model::{SeriesId, Value, ValueKind};
use tokio::sync::oneshot;

use super::Memory;
use crate::error::{Error, Result};

/// One point as written to the engine: series, time, value, quality flags.
pub(crate) type WalPoint = (SeriesId, i64, Value, u8);

enum Msg {
    Append(Vec<u8>, Vec<WalPoint>, oneshot::Sender<Result<()>>),
    Freeze(oneshot::Sender<bool>),
}

/// Handle to the WAL writer thread.
#[derive(Debug)]
pub(crate) struct Wal {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) fn wal_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// WAL files in `dir`, sorted by sequence number.
pub(crate) fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(Error::io(dir))? {
        let e = e.map_err(Error::io(dir))?;
        let name = e.file_name();
        let Some(seq) =
            name.to_str().and_then(|n| n.strip_suffix(".wal")).and_then(|n| n.parse().ok())
        else {
            continue;
        };
        out.push((seq, e.path()));
    }
    out.sort();
    Ok(out)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

/// Encode a batch as a WAL record (length, checksum, payload).
pub(crate) fn encode(points: &[WalPoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 4 + points.len() * 21);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&(points.len() as u32).to_le_bytes());
    for (s, t, v, f) in points {
        out.extend_from_slice(&s.0.to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        if *f == 0 {
            out.push(v.kind().tag());
        } else {
            out.push(v.kind().tag() | 0x80);
            out.push(*f);
        }
        match v {
            Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::Str(x) => {
                let b = &x.as_bytes()[..x.len().min(u16::MAX as usize)];
                out.extend_from_slice(&(b.len() as u16).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let len = (out.len() - 8) as u32;
    let crc = crc32fast::hash(&out[8..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_payload(p: &[u8]) -> Option<Vec<WalPoint>> {
    let mut pos = 0;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = p.get(pos..pos + n)?;
        pos += n;
        Some(s)
    };
    let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let s = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let t = i64::from_le_bytes(take(8)?.try_into().ok()?);
        let tag = take(1)?[0];
        let f = if tag & 0x80 != 0 { take(1)?[0] } else { 0 };
        let v = match ValueKind::from_tag(tag & 0x7f)? {
            ValueKind::Float => Value::F64(f64::from_le_bytes(take(8)?.try_into().ok()?)),
            ValueKind::Integer => Value::I64(i64::from_le_bytes(take(8)?.try_into().ok()?)),
            ValueKind::Boolean => Value::Bool(take(1)?[0] != 0),
            ValueKind::String => {
                let l = u16::from_le_bytes(take(2)?.try_into().ok()?) as usize;
                Value::Str(String::from_utf8(take(l)?.to_vec()).ok()?)
            }
        };
        out.push((SeriesId(s), t, v, f));
    }
    Some(out)
}

/// What reading one WAL file gave.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) batches: Vec<Vec<WalPoint>>,
    /// Byte offset of the first bad or torn record, if any.
    pub(crate) torn_at: Option<u64>,
}

/// Read every intact record of a WAL file.
pub(crate) fn read(path: &Path) -> Result<Replayed> {
    let mut buf = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut buf)).map_err(Error::io(path))?;
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let ok = (|| {
            let len = u32::from_le_bytes(buf.get(pos..pos + 4)?.try_into().ok()?) as usize;
            let crc = u32::from_le_bytes(buf.get(pos + 4..pos + 8)?.try_into().ok()?);
            let payload = buf.get(pos + 8..pos + 8 + len)?;
            if crc32fast::hash(payload) != crc {
                return None;
            }
            Some((decode_payload(payload)?, 8 + len))
        })();
        match ok {
            Some((b, n)) => {
                batches.push(b);
                pos += n;
            }
            None => return Ok(Replayed { batches, torn_at: Some(pos as u64) }),
        }
    }
    Ok(Replayed { batches, torn_at: None })
}

impl Wal {
    /// Start the writer. Its first file is `seq` in `dir`, created on the first commit. Committed
    /// points are applied to `mem`'s head, in WAL order, before they are acknowledged.
    pub(crate) fn start(dir: PathBuf, seq: u64, fsync: bool, mem: Arc<Memory>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let mut w = Writer { dir, seq, file: None, len: 0, fsync, uncut: None };
        let thread = std::thread::Builder::new()
            .name("agora-wal".into())
            .spawn(move || {
                let mut pending: Vec<Msg> = Vec::new();
                let mut group = Group::default();
                while let Ok(first) = rx.recv() {
                    pending.push(first);
                    pending.extend(rx.try_iter());
                    for msg in pending.drain(..) {
                        match msg {
                            Msg::Append(bytes, points, ack) => group.add(&bytes, points, ack),
                            Msg::Freeze(ack) => {
                                // Everything sent before the freeze belongs to the frozen head.
                                group.commit(&mut w, &mem);
                                let _ = ack.send(mem.freeze(w.next_file()));
                            }
                        }
                    }
                    group.commit(&mut w, &mem);
                }
            })
            .map_err(Error::io("wal thread"))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Queue a record and the points it holds; the returned receiver resolves once they are
    /// durable and readable, or with the error that kept them out (then they are in neither).
    pub(crate) fn append(
        &self,
        record: Vec<u8>,
        points: Vec<WalPoint>,
    ) -> Result<oneshot::Receiver<Result<()>>> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(Msg::Append(record, points, ack))
            .map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// Queue a freeze: once everything queued before it is committed, the head is frozen (if it
    /// holds anything) and later records go to a new file. Resolves to whether a head was frozen.
    pub(crate) fn freeze(&self) -> Result<oneshot::Receiver<bool>> {
        let (ack, rx) = oneshot::channel();
        self.tx.as_ref().ok_or(Error::Closed)?.send(Msg::Freeze(ack)).map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// Stop the writer after it has committed everything queued.
    pub(crate) fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// Records gathered for one group commit, with the points to apply and the writers to answer.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    points: Vec<Vec<WalPoint>>,
    acks: Vec<oneshot::Sender<Result<()>>>,
}

impl Group {
    fn add(&mut self, bytes: &[u8], points: Vec<WalPoint>, ack: oneshot::Sender<Result<()>>) {
        self.buf.extend_from_slice(bytes);
        self.points.push(points);
        self.acks.push(ack);
    }

    /// Write and sync the group; on success apply its points to the head, then answer every
    /// writer with the outcome. A failed group leaves no trace: not in the file, not in the head.
    fn commit(&mut self, w: &mut Writer, mem: &Memory) {
        if self.acks.is_empty() {
            return;
        }
        let r = w.commit(&self.buf);
        self.buf.clear();
        if self.buf.capacity() > 16 << 20 {
            self.buf = Vec::new();
        }
        match &r {
            Ok(()) => mem.apply(self.points.drain(..)),
            Err(e) => {
                tracing::error!(error = %e, "write-ahead log commit failed; its writers are refused");
                self.points.clear();
            }
        }
        for ack in self.acks.drain(..) {
            let _ = ack.send(match &r {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::WalFailed(e.to_string())),
            });
        }
    }
}

/// The writer's file state.
struct Writer {
    dir: PathBuf,
    /// The file records go to; it exists only once `file` is open.
    seq: u64,
    file: Option<File>,
    /// Bytes of whole, synced records in `file`.
    len: u64,
    fsync: bool,
    /// A file left with a failed tail that could not be cut yet: (path, handle, good length).
    uncut: Option<(PathBuf, File, u64)>,
}

impl Writer {
    /// Append and sync `buf`. On failure the file is cut back to its last good record and
    /// abandoned: later records go to a new file, never after a hole.
    fn commit(&mut self, buf: &[u8]) -> Result<()> {
        if let Some((path, f, len)) = &self.uncut {
            // Nothing may be acknowledged while a failed tail could still be replayed.
            f.set_len(*len).and_then(|()| f.sync_all()).map_err(Error::io(path))?;
            tracing::info!(file = %path.display(), "cut the failed tail of a WAL file");
            self.uncut = None;
        }
        let path = wal_path(&self.dir, self.seq);
        if self.file.is_none() {
            self.file = Some(open_new(&self.dir, self.seq)?);
            self.len = 0;
        }
        let f = self.file.as_mut().expect("opened above");
        let r = f.write_all(buf).and_then(|()| if self.fsync { f.sync_data() } else { Ok(()) });
        match r {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A short write (disk full) leaves part of a record; a failed fsync leaves pages
                // whose fate is unknown (the kernel may drop them and report success next time,
                // as PostgreSQL learned in 2018). Either way: cut back to the last acknowledged
                // record and never append to this file again.
                let f = self.file.take().expect("open");
                self.seq += 1;
                if let Err(cut) = f.set_len(self.len).and_then(|()| f.sync_all()) {
                    tracing::error!(file = %path.display(), error = %cut, "cannot cut the failed tail of a WAL file; writes are refused until it can be");
                    self.uncut = Some((path.clone(), f, self.len));
                }
                Err(Error::Io { path, source: e })
            }
        }
    }

    /// Close the current file (if one was opened): later records go to the next one. Returns the
    /// first sequence number that may hold later records, i.e. the checkpoint for what came before.
    fn next_file(&mut self) -> u64 {
        if self.file.take().is_some() {
            self.seq += 1;
        }
        self.seq
    }
}

fn open_new(dir: &Path, seq: u64) -> Result<File> {
    let path = wal_path(dir, seq);
    let f = OpenOptions::new().create(true).append(true).open(&path).map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::F64),
            any::<i64>().prop_map(Value::I64),
            any::<bool>().prop_map(Value::Bool),
            "[a-zA-Z ]{0,20}".prop_map(Value::Str),
        ]
    }

    proptest! {
        #[test]
        fn records_roundtrip_and_a_torn_tail_is_dropped(
            batches in proptest::collection::vec(
                proptest::collection::vec((any::<u32>(), any::<i64>(), value(), any::<u8>()), 0..20), 1..8),
            cut in 1usize..12,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.wal");
            let batches: Vec<Vec<WalPoint>> = batches
                .into_iter()
                .map(|b| b.into_iter().map(|(s, t, v, f)| (SeriesId(s), t, v, f)).collect())
                .collect();
            let mut bytes = Vec::new();
            for b in &batches {
                bytes.extend(encode(b));
            }
            std::fs::write(&path, &bytes).unwrap();
            let r = read(&path).unwrap();
            prop_assert_eq!(&r.batches, &batches);
            prop_assert!(r.torn_at.is_none());
            // Cut the last record short: everything before it survives, the tail is reported.
            let last = encode(batches.last().unwrap()).len();
            let keep = bytes.len() - cut.min(last);
            std::fs::write(&path, &bytes[..keep]).unwrap();
            let r = read(&path).unwrap();
            prop_assert_eq!(&r.batches[..], &batches[..batches.len() - 1]);
            prop_assert_eq!(r.torn_at, Some((bytes.len() - last) as u64));
        }
    }
}
