//! The write-ahead log: every batch is appended and fsynced before it is acknowledged. One thread
//! owns the file and commits in groups: all batches that arrive while an fsync runs share the next.
//!
//! Files are `wal/{seq:020}.wal`; a record is `u32 length | u32 crc32 | payload`, the payload a
//! batch of points (`u32 n`, then `u32 series | i64 ts | u8 kind | value` each). A torn record at
//! the end of the last file (a crash mid-write) ends replay there; it was never acknowledged.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use agora_model::{SeriesId, Value, ValueKind};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// One point as written to the engine: series, time, value, quality flags.
pub(crate) type WalPoint = (SeriesId, i64, Value, u8);

enum Msg {
    Append(Vec<u8>, oneshot::Sender<Result<()>>),
    Rotate(oneshot::Sender<Result<u64>>),
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
    /// Start the writer on a new file `seq` in `dir`.
    pub(crate) fn start(dir: PathBuf, seq: u64, fsync: bool) -> Result<Self> {
        let mut file = open_new(&dir, seq)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("agora-wal".into())
            .spawn(move || {
                let mut seq = seq;
                let mut pending: Vec<Msg> = Vec::new();
                let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
                while let Ok(first) = rx.recv() {
                    pending.push(first);
                    pending.extend(rx.try_iter());
                    let mut acks = Vec::new();
                    for msg in pending.drain(..) {
                        match msg {
                            Msg::Append(bytes, ack) => {
                                buf.extend_from_slice(&bytes);
                                acks.push(ack);
                            }
                            Msg::Rotate(ack) => {
                                // Everything sent before the rotation goes to the old file.
                                let r = commit(&mut file, &mut buf, fsync, &dir, seq);
                                finish(&mut acks, &r);
                                let r = r.and_then(|()| {
                                    let f = open_new(&dir, seq + 1)?;
                                    file = f;
                                    seq += 1;
                                    Ok(seq)
                                });
                                let _ = ack.send(r);
                            }
                        }
                    }
                    let r = commit(&mut file, &mut buf, fsync, &dir, seq);
                    finish(&mut acks, &r);
                }
                let _ = commit(&mut file, &mut buf, fsync, &dir, seq);
            })
            .map_err(Error::io("wal thread"))?;
        Ok(Self { tx: Some(tx), thread: Some(thread) })
    }

    /// Queue a record; the returned receiver resolves once it is durable. Callers that need the
    /// WAL order to match another order send while holding the lock that defines it.
    pub(crate) fn append(&self, record: Vec<u8>) -> Result<oneshot::Receiver<Result<()>>> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(Error::Closed)?
            .send(Msg::Append(record, ack))
            .map_err(|_| Error::Closed)?;
        Ok(rx)
    }

    /// Queue a switch to a new file; resolves to the new file's sequence number once everything
    /// queued before it is durable in the old one.
    pub(crate) fn rotate(&self) -> Result<oneshot::Receiver<Result<u64>>> {
        let (ack, rx) = oneshot::channel();
        self.tx.as_ref().ok_or(Error::Closed)?.send(Msg::Rotate(ack)).map_err(|_| Error::Closed)?;
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

fn open_new(dir: &Path, seq: u64) -> Result<File> {
    let path = wal_path(dir, seq);
    let f = OpenOptions::new().create(true).append(true).open(&path).map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

fn commit(file: &mut File, buf: &mut Vec<u8>, fsync: bool, dir: &Path, seq: u64) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let path = wal_path(dir, seq);
    let r = file.write_all(buf).and_then(|()| if fsync { file.sync_data() } else { Ok(()) });
    buf.clear();
    r.map_err(Error::io(path))
}

fn finish(acks: &mut Vec<oneshot::Sender<Result<()>>>, r: &Result<()>) {
    for ack in acks.drain(..) {
        let _ = ack.send(match r {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::Invalid(format!("wal write failed: {e}"))),
        });
    }
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
