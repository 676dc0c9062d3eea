//! The immutable chunk: one series' points in one time window, compressed with `pco`, with the
//! hourly rollups of those points stored beside them.
//!
//! Layout (little endian):
//! ```text
//! u8 kind | u8 flags (bit 0: raw points present) | u32 count | i64 min_ts | i64 max_ts
//! [rollups] u8 n_hours | n_hours × u8 hour offset in the window
//!           blob rollup_i64 (counts, first offsets, last offsets: column-major, pco)
//!           blob rollup_f64 (mins, maxes, sums, firsts, lasts: column-major, pco)
//! [raw] blob timestamps (pco i64) | values (per kind, see `encode_values`)
//! [quality] u32 n | n × (u32 point index, u8 flags): the flagged points only
//! u32 crc32 of everything before
//! ```
//! A blob is `u32 length` then bytes. Rollups are stored for dense series (flag bit 1) and always
//! when raw points are absent; otherwise they are computed from the points on read. When retention
//! drops a window's raw points, the chunk is rewritten without them and its rollups live on.

use agora_model::ValueKind;

use super::agg::Agg;
use super::column::{Column, Points};
use super::{HOUR_NS, WINDOW_NS, window_of};
use crate::error::{Error, Result};

const FLAG_RAW: u8 = 1;
const FLAG_ROLLUPS: u8 = 2;
const FLAG_QUALITY: u8 = 4;
/// Rollups are stored only for series averaging at least this many points per hour (one every
/// 15 s). For sparser ones they cost more than they save: for a 1-minute series the eight
/// numbers an hour take 40–60 % of the bytes of its 60 raw values, while a day of its points
/// decodes and summarizes in microseconds (a year of hourly means from raw: 8 ms instead of
/// 2 ms, `agora bench`). Rollups are stored whatever the density once the raw points expire.
const DENSE_POINTS_PER_HOUR: usize = 240;

/// Hourly rollups of one window: (hour start in ns, summary), sorted by hour.
pub(crate) type Hourly = Vec<(i64, Agg)>;

/// A decoded chunk.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub(crate) kind: ValueKind,
    pub(crate) hourly: Hourly,
    pub(crate) raw: Option<Points>,
}

/// Summary of a chunk kept in the segment index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ChunkMeta {
    pub(crate) count: u32,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) has_raw: bool,
}

fn codec_err(e: impl std::fmt::Display) -> Error {
    Error::Codec(e.to_string())
}

/// Compute hourly rollups of sorted points that all lie in `window`.
pub(crate) fn hourly_of(points: &Points, window: i64) -> Hourly {
    let mut out: Hourly = Vec::new();
    // Rollups summarize good data only: points flagged by quality checks are left out.
    if points.flags.iter().any(|&f| f != 0) {
        return hourly_of(&points.clone().without_flagged(), window);
    }
    if points.col.kind() == ValueKind::String {
        // Strings have no numeric summary; keep counts so coverage and "count" queries still work.
        for &t in &points.ts {
            let h = window + (t - window) / HOUR_NS * HOUR_NS;
            match out.last_mut() {
                Some((hh, a)) if *hh == h => {
                    a.count += 1;
                    a.last_ts = t;
                }
                _ => {
                    let mut a = Agg::one(t, f64::NAN);
                    a.min = f64::NAN;
                    a.max = f64::NAN;
                    a.sum = f64::NAN;
                    out.push((h, a));
                }
            }
        }
        return out;
    }
    for (i, &t) in points.ts.iter().enumerate() {
        let h = window + (t - window) / HOUR_NS * HOUR_NS;
        let v = points.col.num(i);
        match out.last_mut() {
            Some((hh, a)) if *hh == h => a.add(t, v),
            _ => out.push((h, Agg::one(t, v))),
        }
    }
    out
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// How hard pco works on a chunk. Readers do not care: every chunk says how it was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effort {
    /// At flush, while ingestion goes on: first-order deltas and a lighter binning, about three
    /// times faster than `Best` for 1 % to 4 % more bytes on a noisy series (most windows are
    /// encoded again by the next compaction).
    Fast,
    /// At compaction: pco's automatic choice of delta encoding and its default level.
    Best,
}

fn pco<T: pco::data_types::Number>(v: &[T], effort: Effort) -> Result<Vec<u8>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let config = match effort {
        Effort::Best => pco::ChunkConfig::default(),
        Effort::Fast => pco::ChunkConfig::default()
            .with_compression_level(4)
            .with_delta_spec(pco::DeltaSpec::TryConsecutive(1)),
    };
    pco::standalone::simple_compress(v, &config).map_err(codec_err)
}

fn unpco<T: pco::data_types::Number>(b: &[u8]) -> Result<Vec<T>> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    pco::standalone::simple_decompress(b).map_err(codec_err)
}

/// Encode a chunk. `points` must be strictly sorted and inside `window`; `hourly` are the rollups
/// of the window (computed from `points` when they are given). `force_rollups` stores them even
/// for a sparse series (when they hold hours the points do not).
pub(crate) fn encode(
    kind: ValueKind,
    window: i64,
    hourly: &Hourly,
    points: Option<&Points>,
    force_rollups: bool,
) -> Result<(Vec<u8>, ChunkMeta)> {
    encode_with(kind, window, hourly, points, force_rollups, Effort::Best)
}

/// [`encode`], with the given effort.
pub(crate) fn encode_with(
    kind: ValueKind,
    window: i64,
    hourly: &Hourly,
    points: Option<&Points>,
    force_rollups: bool,
    effort: Effort,
) -> Result<(Vec<u8>, ChunkMeta)> {
    let with_rollups =
        force_rollups || points.is_none_or(|p| p.len() >= DENSE_POINTS_PER_HOUR * hourly.len());
    let mut out = Vec::with_capacity(64 + points.map_or(0, |p| p.len()));
    let count: u64 = match points {
        Some(p) => p.len() as u64,
        None => hourly.iter().map(|(_, a)| a.count).sum(),
    };
    let (min_ts, max_ts) = match points {
        Some(p) => (p.ts[0], p.ts[p.len() - 1]),
        None => (
            hourly.first().map_or(window, |(_, a)| a.first_ts),
            hourly.last().map_or(window, |(_, a)| a.last_ts),
        ),
    };
    out.push(kind.tag());
    let flagged: Vec<(u32, u8)> = points
        .map(|p| {
            p.flags.iter().enumerate().filter(|f| *f.1 != 0).map(|(i, &f)| (i as u32, f)).collect()
        })
        .unwrap_or_default();
    let flags = if points.is_some() { FLAG_RAW } else { 0 }
        | if with_rollups { FLAG_ROLLUPS } else { 0 }
        | if flagged.is_empty() { 0 } else { FLAG_QUALITY };
    out.push(flags);
    out.extend_from_slice(&(count.min(u32::MAX as u64) as u32).to_le_bytes());
    out.extend_from_slice(&min_ts.to_le_bytes());
    out.extend_from_slice(&max_ts.to_le_bytes());

    if with_rollups {
        out.push(hourly.len() as u8);
        // Column-major (all counts, then all first offsets…): each run is a smooth series that
        // pco's delta and multiplier detection compress far better than interleaved records.
        let n = hourly.len();
        let mut ints = vec![0i64; n * 3];
        let mut floats = vec![0f64; n * 5];
        for (i, (h, a)) in hourly.iter().enumerate() {
            out.push(((h - window) / HOUR_NS) as u8);
            for (c, v) in [a.count as i64, a.first_ts - h, a.last_ts - h].into_iter().enumerate() {
                ints[c * n + i] = v;
            }
            for (c, v) in [a.min, a.max, a.sum, a.first, a.last].into_iter().enumerate() {
                floats[c * n + i] = v;
            }
        }
        put_blob(&mut out, &pco(&ints, effort)?);
        put_blob(&mut out, &pco(&floats, effort)?);
    }

    if let Some(p) = points {
        put_blob(&mut out, &pco(&p.ts, effort)?);
        match &p.col {
            Column::F64(v) => put_blob(&mut out, &pco(v, effort)?),
            Column::I64(v) => put_blob(&mut out, &pco(v, effort)?),
            Column::Bool(v) => {
                let mut bits = vec![0u8; v.len().div_ceil(8)];
                for (i, &b) in v.iter().enumerate() {
                    if b {
                        bits[i / 8] |= 1 << (i % 8);
                    }
                }
                put_blob(&mut out, &bits);
            }
            Column::Str(v) => {
                // Dictionary encoding: string states take few distinct values.
                let mut dict: Vec<&str> = Vec::new();
                let mut idx = Vec::with_capacity(v.len());
                for s in v {
                    let i = match dict.iter().position(|d| *d == s.as_str()) {
                        Some(i) => i,
                        None => {
                            dict.push(s);
                            dict.len() - 1
                        }
                    };
                    idx.push(i as u32);
                }
                out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
                for d in dict {
                    put_blob(&mut out, d.as_bytes());
                }
                put_blob(&mut out, &pco(&idx, effort)?);
            }
        }
    }
    if !flagged.is_empty() {
        out.extend_from_slice(&(flagged.len() as u32).to_le_bytes());
        for (i, f) in &flagged {
            out.extend_from_slice(&i.to_le_bytes());
            out.push(*f);
        }
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let meta = ChunkMeta { count: count as u32, min_ts, max_ts, has_raw: points.is_some() };
    Ok((out, meta))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len()).ok_or_else(|| {
            Error::Codec(format!("chunk truncated at byte {} (wanted {n} more)", self.pos))
        })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decode a chunk; `want_raw` false skips decompressing the points (rollup-only reads).
pub(crate) fn decode(bytes: &[u8], window: i64, want_raw: bool) -> Result<Chunk> {
    if bytes.len() < 4 {
        return Err(Error::Codec("chunk shorter than its checksum".into()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(Error::Codec("chunk checksum mismatch".into()));
    }
    let mut r = Reader { b: body, pos: 0 };
    let kind = ValueKind::from_tag(r.u8()?)
        .ok_or_else(|| Error::Codec("unknown value kind in chunk".into()))?;
    let flags = r.u8()?;
    let count = r.u32()? as usize;
    let _min_ts = r.i64()?;
    let _max_ts = r.i64()?;
    let mut hourly: Hourly = Vec::new();
    if flags & FLAG_ROLLUPS != 0 {
        let n_hours = r.u8()? as usize;
        let hours = r.take(n_hours)?.to_vec();
        let ints: Vec<i64> = unpco(r.blob()?)?;
        let floats: Vec<f64> = unpco(r.blob()?)?;
        if ints.len() != n_hours * 3 || floats.len() != n_hours * 5 {
            return Err(Error::Codec("rollup arrays do not match the hour count".into()));
        }
        hourly = hours
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let h = window + i64::from(h) * HOUR_NS;
                let int = |c: usize| ints[c * n_hours + i];
                let float = |c: usize| floats[c * n_hours + i];
                let a = Agg {
                    count: int(0) as u64,
                    min: float(0),
                    max: float(1),
                    sum: float(2),
                    first: float(3),
                    last: float(4),
                    first_ts: h + int(1),
                    last_ts: h + int(2),
                };
                (h, a)
            })
            .collect();
    } else if flags & FLAG_RAW == 0 {
        return Err(Error::Codec("chunk holds neither points nor rollups".into()));
    }
    // Without stored rollups the points are needed to summarize the window.
    let want_raw = want_raw || flags & FLAG_ROLLUPS == 0;
    let raw = if flags & FLAG_RAW != 0 && want_raw {
        let ts: Vec<i64> = unpco(r.blob()?)?;
        let col = match kind {
            ValueKind::Float => Column::F64(unpco(r.blob()?)?),
            ValueKind::Integer => Column::I64(unpco(r.blob()?)?),
            ValueKind::Boolean => {
                let bits = r.blob()?;
                if bits.len() < count.div_ceil(8) {
                    return Err(Error::Codec("boolean column truncated".into()));
                }
                Column::Bool((0..count).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect())
            }
            ValueKind::String => {
                let n = r.u32()? as usize;
                let mut dict = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let s = std::str::from_utf8(r.blob()?)
                        .map_err(|_| Error::Codec("string dictionary is not UTF-8".into()))?;
                    dict.push(s.to_owned());
                }
                let idx: Vec<u32> = unpco(r.blob()?)?;
                let vals = idx
                    .iter()
                    .map(|&i| dict.get(i as usize).cloned())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::Codec("string index out of dictionary".into()))?;
                Column::Str(vals)
            }
        };
        if ts.len() != count || col.len() != count {
            return Err(Error::Codec("column lengths do not match the point count".into()));
        }
        if ts.iter().any(|&t| window_of(t) != window) {
            return Err(Error::Codec("point outside the chunk's window".into()));
        }
        let mut p = Points::clean(ts, col);
        if flags & FLAG_QUALITY != 0 {
            let n = r.u32()? as usize;
            p.flags = vec![0; count];
            for _ in 0..n {
                let i = r.u32()? as usize;
                let f = r.u8()?;
                *p.flags
                    .get_mut(i)
                    .ok_or_else(|| Error::Codec("quality flag of a missing point".into()))? = f;
            }
        }
        Some(p)
    } else {
        None
    };
    if flags & FLAG_ROLLUPS == 0
        && let Some(p) = &raw
    {
        hourly = hourly_of(p, window);
    }
    let _ = WINDOW_NS;
    Ok(Chunk { kind, hourly, raw })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(p: Points) {
        let w = window_of(p.ts[0]);
        let hourly = hourly_of(&p, w);
        let (bytes, meta) = encode(p.col.kind(), w, &hourly, Some(&p), false).unwrap();
        assert_eq!(meta.count as usize, p.len());
        let c = decode(&bytes, w, true).unwrap();
        assert_eq!(c.raw.as_ref().unwrap(), &p);
        assert_eq!(c.hourly.len(), hourly.len());
        for ((h1, a1), (h2, a2)) in c.hourly.iter().zip(&hourly) {
            assert_eq!(h1, h2);
            assert_eq!(a1.count, a2.count);
            assert_eq!(a1.first_ts, a2.first_ts);
            assert_eq!(a1.last_ts, a2.last_ts);
            if p.col.kind() != ValueKind::String {
                assert_eq!(a1, a2);
            }
        }
        // A flipped byte is detected, never silently decoded.
        let mut bad = bytes.clone();
        bad[bytes.len() / 2] ^= 0x40;
        assert!(decode(&bad, w, true).is_err());
    }

    const DAY: i64 = 20_454 * WINDOW_NS;

    proptest! {
        #[test]
        fn float_chunks_roundtrip(mut offs in proptest::collection::btree_set(0i64..WINDOW_NS, 1..500),
                                  vals in proptest::collection::vec(-1e6f64..1e6, 500)) {
            let ts: Vec<i64> = std::mem::take(&mut offs).into_iter().map(|o| DAY + o).collect();
            let v = vals[..ts.len()].iter().map(|x| (x * 10.0).round() / 10.0).collect();
            roundtrip(Points::clean(ts, Column::F64(v)));
        }

        #[test]
        fn integer_bool_and_string_chunks_roundtrip(offs in proptest::collection::btree_set(0i64..WINDOW_NS, 1..300),
                                                    seed in any::<u64>()) {
            let ts: Vec<i64> = offs.into_iter().map(|o| DAY + o).collect();
            let n = ts.len();
            let ints = (0..n).map(|i| (seed as i64).wrapping_mul(i as i64) >> 20).collect();
            roundtrip(Points::clean(ts.clone(), Column::I64(ints)));
            let bools = (0..n).map(|i| (seed >> (i % 64)) & 1 == 1).collect();
            roundtrip(Points::clean(ts.clone(), Column::Bool(bools)));
            let states = ["ok", "defectiveLamp", "columnIssue"];
            let strs = (0..n).map(|i| states[((seed as usize) + i * 7) % 3].to_owned()).collect();
            roundtrip(Points::clean(ts, Column::Str(strs)));
        }
    }

    #[test]
    fn one_minute_sensor_data_compresses_below_one_byte_per_point() {
        // A day of 1-minute temperature readings at 0.01 °C resolution with a daily cycle.
        let ts: Vec<i64> = (0..1440).map(|i| DAY + i * 60_000_000_000).collect();
        let v: Vec<f64> = (0..1440)
            .map(|i| {
                let x = 18.0 + 6.0 * ((i as f64) / 1440.0 * std::f64::consts::TAU).sin();
                (x * 100.0).round() / 100.0
            })
            .collect();
        let p = Points::clean(ts, Column::F64(v));
        let hourly = hourly_of(&p, DAY);
        let (bytes, _) = encode(ValueKind::Float, DAY, &hourly, Some(&p), false).unwrap();
        let bpp = bytes.len() as f64 / 1440.0;
        assert!(bpp < 1.0, "{bpp} bytes per point");
    }
}
