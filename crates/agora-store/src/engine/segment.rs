//! Immutable segment files: many chunks written together by one flush or compaction, with an
//! index at the end. Layout: `AGSEG001 | chunks… | index entries | u64 index offset | u32 entry
//! count | u32 crc32 of the index | AGSEGEND`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::chunk::ChunkMeta;
use super::wal::sync_dir;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"AGSEG001";
const END: &[u8; 8] = b"AGSEGEND";
const ENTRY_LEN: usize = 4 + 8 + 8 + 4 + 4 + 8 + 8 + 1;
const FOOTER_LEN: usize = 8 + 4 + 4 + 8;

/// Where one chunk lives in a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IndexEntry {
    pub(crate) series: u32,
    pub(crate) window: i64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) meta: ChunkMeta,
}

/// An open segment.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Ordering key: data in a segment with a higher seq is newer.
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    file: File,
}

pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

impl Segment {
    /// Open a segment and read its index.
    pub(crate) fn open(dir: &Path, id: u64, seq: u64) -> Result<(Self, Vec<IndexEntry>)> {
        let path = segment_path(dir, id);
        let corrupt = |reason: &str| Error::Corrupt {
            what: "segment",
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let file = File::open(&path).map_err(Error::io(&path))?;
        let size = file.metadata().map_err(Error::io(&path))?.len();
        if size < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(corrupt("file too short"));
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, size - FOOTER_LEN as u64).map_err(Error::io(&path))?;
        if &footer[16..24] != END {
            return Err(corrupt("missing end marker (incomplete write)"));
        }
        let index_off = u64::from_le_bytes(footer[0..8].try_into().expect("8"));
        let n = u32::from_le_bytes(footer[8..12].try_into().expect("4")) as usize;
        let crc = u32::from_le_bytes(footer[12..16].try_into().expect("4"));
        if index_off + (n * ENTRY_LEN) as u64 != size - FOOTER_LEN as u64 {
            return Err(corrupt("index size does not match the footer"));
        }
        let mut idx = vec![0u8; n * ENTRY_LEN];
        file.read_exact_at(&mut idx, index_off).map_err(Error::io(&path))?;
        if crc32fast::hash(&idx) != crc {
            return Err(corrupt("index checksum mismatch"));
        }
        let entries = idx
            .chunks_exact(ENTRY_LEN)
            .map(|e| {
                let u32_at = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().expect("4"));
                let i64_at = |o: usize| i64::from_le_bytes(e[o..o + 8].try_into().expect("8"));
                IndexEntry {
                    series: u32_at(0),
                    window: i64_at(4),
                    offset: i64_at(12) as u64,
                    len: u32_at(20),
                    meta: ChunkMeta {
                        count: u32_at(24),
                        min_ts: i64_at(28),
                        max_ts: i64_at(36),
                        has_raw: e[44] != 0,
                    },
                }
            })
            .collect();
        Ok((Self { seq, path, size, file }, entries))
    }

    /// Read one chunk's bytes.
    pub(crate) fn read(&self, e: &IndexEntry) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; e.len as usize];
        self.file.read_exact_at(&mut buf, e.offset).map_err(Error::io(&self.path))?;
        Ok(buf)
    }
}

/// Writes a new segment; nothing is visible under the final name until `finish`.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    entries: Vec<IndexEntry>,
    /// Set once the file is in place; an unfinished writer removes its temporary file on drop,
    /// so a failed flush or compaction on a full disk gives its space back at once.
    done: bool,
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl SegmentWriter {
    pub(crate) fn create(dir: &Path, id: u64) -> Result<Self> {
        let path = segment_path(dir, id);
        let tmp = path.with_extension("seg.tmp");
        let f = File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut w = Self {
            out: BufWriter::with_capacity(1 << 20, f),
            tmp,
            path,
            offset: MAGIC.len() as u64,
            entries: Vec::new(),
            done: false,
        };
        w.out.write_all(MAGIC).map_err(Error::io(&w.tmp))?;
        Ok(w)
    }

    pub(crate) fn add(
        &mut self,
        series: u32,
        window: i64,
        bytes: &[u8],
        meta: ChunkMeta,
    ) -> Result<()> {
        self.out.write_all(bytes).map_err(Error::io(&self.tmp))?;
        self.entries.push(IndexEntry {
            series,
            window,
            offset: self.offset,
            len: bytes.len() as u32,
            meta,
        });
        self.offset += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write the index, fsync, and move the file to its final name.
    pub(crate) fn finish(mut self) -> Result<Vec<IndexEntry>> {
        let mut idx = Vec::with_capacity(self.entries.len() * ENTRY_LEN);
        for e in &self.entries {
            idx.extend_from_slice(&e.series.to_le_bytes());
            idx.extend_from_slice(&e.window.to_le_bytes());
            idx.extend_from_slice(&e.offset.to_le_bytes());
            idx.extend_from_slice(&e.len.to_le_bytes());
            idx.extend_from_slice(&e.meta.count.to_le_bytes());
            idx.extend_from_slice(&e.meta.min_ts.to_le_bytes());
            idx.extend_from_slice(&e.meta.max_ts.to_le_bytes());
            idx.push(u8::from(e.meta.has_raw));
        }
        let crc = crc32fast::hash(&idx);
        let w = &mut self.out;
        let r = (|| {
            w.write_all(&idx)?;
            w.write_all(&self.offset.to_le_bytes())?;
            w.write_all(&(self.entries.len() as u32).to_le_bytes())?;
            w.write_all(&crc.to_le_bytes())?;
            w.write_all(END)?;
            w.flush()?;
            w.get_ref().sync_all()
        })();
        r.map_err(Error::io(&self.tmp))?;
        fs::rename(&self.tmp, &self.path).map_err(Error::io(&self.path))?;
        self.done = true;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(std::mem::take(&mut self.entries))
    }
}
