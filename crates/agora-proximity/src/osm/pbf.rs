//! The OpenStreetMap PBF format (`.osm.pbf`, as Geofabrik and osmium write it), decoded here
//! from its specification (<https://wiki.openstreetmap.org/wiki/PBF_Format>) with a small
//! protocol-buffers reader: a sequence of blobs (a 4-byte length, a `BlobHeader`, a `Blob`,
//! raw or zlib-compressed); an `OSMHeader` blob whose required features must be ones we read; then
//! `OSMData` blocks of nodes (plain or dense) and ways. Sizes are bounded as the specification
//! says (headers under 64 KiB, blobs under 32 MiB), and every malformed field is named.

use flate2::read::ZlibDecoder;
use std::io::Read;

use super::{Collector, OsmStats, walkable};
use crate::network::Network;
use crate::{Error, Result};

const MAX_HEADER: usize = 64 * 1024;
const MAX_BLOB: usize = 32 * 1024 * 1024;
/// Most bytes all the blobs of one file may inflate to: a commune's extract inflates to a few
/// hundred megabytes; a small file inflating to more is a bomb.
const MAX_INFLATED: usize = 1 << 30;

fn bad(what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("OSM PBF: {what}"))
}

/// One field of a protocol-buffers message: its number and its value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Message<'a> {
    data: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Message<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Message { data, at: 0, what }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .data
                .get(self.at)
                .ok_or_else(|| bad(format!("{} is cut short in a number", self.what)))?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(format!("{} has a number longer than 10 bytes", self.what)))
    }

    fn next(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = self.varint()? as usize;
                let end =
                    self.at.checked_add(len).filter(|e| *e <= self.data.len()).ok_or_else(
                        || bad(format!("{} has a field longer than itself", self.what)),
                    )?;
                let b = &self.data[self.at..end];
                self.at = end;
                Value::Bytes(b)
            }
            5 => self.skip(4)?,
            t => return Err(bad(format!("{} has a field of unknown wire type {t}", self.what))),
        };
        Ok(Some((field, value)))
    }

    fn skip(&mut self, n: usize) -> Result<Value<'a>> {
        if self.at + n > self.data.len() {
            return Err(bad(format!("{} is cut short", self.what)));
        }
        self.at += n;
        Ok(Value::Fixed)
    }
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Most numbers of one repeated field: a block of osmium's holds 8,000 entities and a way at most
/// 2,000 nodes; more means a file built to exhaust memory.
const MAX_NUMBERS: usize = 1_000_000;

/// The numbers of a repeated field, packed or not, appended to `out`.
fn numbers(value: &Value<'_>, out: &mut Vec<u64>, what: &'static str) -> Result<()> {
    match value {
        Value::Varint(v) => out.push(*v),
        Value::Bytes(b) => {
            let mut m = Message::new(b, what);
            while m.at < b.len() {
                out.push(m.varint()?);
                if out.len() > MAX_NUMBERS {
                    break;
                }
            }
        }
        Value::Fixed => return Err(bad(format!("{what} holds fixed-size numbers"))),
    }
    if out.len() > MAX_NUMBERS {
        return Err(bad(format!("{what}: more than {MAX_NUMBERS} in one block")));
    }
    Ok(())
}

fn bytes<'a>(value: &Value<'a>, what: &'static str) -> Result<&'a [u8]> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(bad(format!("{what} is not a byte string"))),
    }
}

/// Reads a PBF extract into a walking network.
pub fn read(data: &[u8]) -> Result<(Network, OsmStats)> {
    let mut collector = Collector::new();
    let mut at = 0usize;
    let mut header_seen = false;
    let mut inflated = 0usize;
    while at < data.len() {
        let len_bytes: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(format!("the file is cut short at byte {at}")))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        if len > MAX_HEADER {
            return Err(bad(format!(
                "a blob header of {len} bytes at byte {at} (at most 64 KiB): is it a PBF file?"
            )));
        }
        at += 4;
        let header = data
            .get(at..at + len)
            .ok_or_else(|| bad(format!("the file is cut short in a blob header at byte {at}")))?;
        at += len;
        let (mut kind, mut size) = (None, None);
        let mut m = Message::new(header, "a blob header");
        while let Some((f, v)) = m.next()? {
            match (f, v) {
                (1, Value::Bytes(b)) => kind = Some(String::from_utf8_lossy(b).into_owned()),
                (3, Value::Varint(n)) => size = Some(n as usize),
                _ => {}
            }
        }
        let (kind, size) = match (kind, size) {
            (Some(k), Some(s)) => (k, s),
            _ => {
                return Err(bad(format!(
                    "the blob header at byte {} lacks its type or size",
                    at - len
                )));
            }
        };
        if size > MAX_BLOB {
            return Err(bad(format!("a blob of {size} bytes (at most 32 MiB)")));
        }
        let blob = data
            .get(at..at + size)
            .ok_or_else(|| bad(format!("the file is cut short in a blob at byte {at}")))?;
        at += size;
        let raw = unpack(blob)?;
        inflated += raw.len();
        if inflated > MAX_INFLATED {
            return Err(bad("the file inflates to more than 1 GiB: cut the commune out first"));
        }
        match kind.as_str() {
            "OSMHeader" => {
                check_header(&raw)?;
                header_seen = true;
            }
            "OSMData" => {
                if !header_seen {
                    return Err(bad("data comes before the OSMHeader blob"));
                }
                block(&raw, &mut collector)?;
            }
            _ => {}
        }
    }
    if !header_seen {
        return Err(bad("no OSMHeader blob: is it a PBF file?"));
    }
    collector.finish()
}

fn unpack(blob: &[u8]) -> Result<Vec<u8>> {
    let mut m = Message::new(blob, "a blob");
    let (mut raw, mut zlib, mut raw_size) = (None, None, None);
    while let Some((f, v)) = m.next()? {
        match (f, v) {
            (1, Value::Bytes(b)) => raw = Some(b),
            (2, Value::Varint(n)) => raw_size = Some(n as usize),
            (3, Value::Bytes(b)) => zlib = Some(b),
            (4 | 6 | 7, _) => {
                return Err(bad(
                    "a blob is compressed with LZMA, LZ4 or Zstandard: write the extract with zlib (osmium cat -f pbf,pbf_compression=zlib)",
                ));
            }
            _ => {}
        }
    }
    if let Some(b) = raw {
        return Ok(b.to_vec());
    }
    let z = zlib.ok_or_else(|| bad("a blob has neither raw nor zlib data"))?;
    let expected = raw_size.ok_or_else(|| bad("a zlib blob does not say its size"))?;
    if expected > MAX_BLOB {
        return Err(bad(format!("a blob inflates to {expected} bytes (at most 32 MiB)")));
    }
    let mut out = Vec::with_capacity(expected);
    ZlibDecoder::new(z)
        .take(expected as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("a zlib blob does not inflate: {e}")))?;
    if out.len() != expected {
        return Err(bad(format!(
            "a zlib blob inflates to {} bytes, not the {expected} it says",
            out.len()
        )));
    }
    Ok(out)
}

fn check_header(raw: &[u8]) -> Result<()> {
    let mut m = Message::new(raw, "the header block");
    while let Some((f, v)) = m.next()? {
        if f == 4 {
            let feature = String::from_utf8_lossy(bytes(&v, "a required feature")?).into_owned();
            if !matches!(
                feature.as_str(),
                "OsmSchema-V0.6" | "DenseNodes" | "HistoricalInformation"
            ) {
                return Err(bad(format!(
                    "the file requires a feature agora does not read: {feature:?}"
                )));
            }
        }
    }
    Ok(())
}

struct Block<'a> {
    strings: Vec<&'a [u8]>,
    granularity: i64,
    lat_offset: i64,
    lon_offset: i64,
}

impl Block<'_> {
    /// In floating point: the file's granularity and offsets cannot overflow anything (a
    /// position out of range is refused by the collector).
    fn position(&self, lon: i64, lat: i64) -> (f64, f64) {
        let g = self.granularity as f64;
        (
            1e-9 * (self.lon_offset as f64 + g * lon as f64),
            1e-9 * (self.lat_offset as f64 + g * lat as f64),
        )
    }

    fn string(&self, i: u64) -> Result<&[u8]> {
        self.strings
            .get(i as usize)
            .copied()
            .ok_or_else(|| bad(format!("a tag refers to string {i}, beyond the block's table")))
    }
}

fn block(raw: &[u8], collector: &mut Collector) -> Result<()> {
    let mut b = Block { strings: Vec::new(), granularity: 100, lat_offset: 0, lon_offset: 0 };
    let mut groups = Vec::new();
    let mut m = Message::new(raw, "a data block");
    while let Some((f, v)) = m.next()? {
        match (f, v) {
            (1, Value::Bytes(t)) => {
                let mut st = Message::new(t, "a string table");
                while let Some((f, v)) = st.next()? {
                    if f == 1 {
                        b.strings.push(bytes(&v, "a string")?);
                    }
                }
            }
            (2, Value::Bytes(g)) => groups.push(g),
            (17, Value::Varint(n)) => b.granularity = n as i64,
            (19, Value::Varint(n)) => b.lat_offset = n as i64,
            (20, Value::Varint(n)) => b.lon_offset = n as i64,
            _ => {}
        }
    }
    if b.granularity <= 0 {
        return Err(bad("a block's granularity is not positive"));
    }
    for g in groups {
        let mut m = Message::new(g, "a primitive group");
        while let Some((f, v)) = m.next()? {
            match f {
                1 => node(bytes(&v, "a node")?, &b, collector)?,
                2 => dense(bytes(&v, "dense nodes")?, &b, collector)?,
                3 => way(bytes(&v, "a way")?, &b, collector)?,
                _ => {}
            }
        }
    }
    Ok(())
}

fn node(raw: &[u8], b: &Block<'_>, collector: &mut Collector) -> Result<()> {
    let (mut id, mut lat, mut lon) = (None, None, None);
    let mut m = Message::new(raw, "a node");
    while let Some((f, v)) = m.next()? {
        match (f, v) {
            (1, Value::Varint(n)) => id = Some(zigzag(n)),
            (8, Value::Varint(n)) => lat = Some(zigzag(n)),
            (9, Value::Varint(n)) => lon = Some(zigzag(n)),
            _ => {}
        }
    }
    match (id, lat, lon) {
        (Some(id), Some(lat), Some(lon)) => {
            let (x, y) = b.position(lon, lat);
            collector.node(id, x, y)
        }
        _ => Err(bad("a node lacks its id or position")),
    }
}

fn dense(raw: &[u8], b: &Block<'_>, collector: &mut Collector) -> Result<()> {
    let (mut ids, mut lats, mut lons) = (Vec::new(), Vec::new(), Vec::new());
    let mut m = Message::new(raw, "dense nodes");
    while let Some((f, v)) = m.next()? {
        match f {
            1 => numbers(&v, &mut ids, "dense nodes' ids")?,
            8 => numbers(&v, &mut lats, "dense nodes' latitudes")?,
            9 => numbers(&v, &mut lons, "dense nodes' longitudes")?,
            _ => {}
        }
    }
    if ids.len() != lats.len() || ids.len() != lons.len() {
        return Err(bad(format!(
            "dense nodes with {} ids, {} latitudes and {} longitudes",
            ids.len(),
            lats.len(),
            lons.len()
        )));
    }
    let (mut id, mut lat, mut lon) = (0i64, 0i64, 0i64);
    for i in 0..ids.len() {
        id = id.wrapping_add(zigzag(ids[i]));
        lat = lat.wrapping_add(zigzag(lats[i]));
        lon = lon.wrapping_add(zigzag(lons[i]));
        let (x, y) = b.position(lon, lat);
        collector.node(id, x, y)?;
    }
    Ok(())
}

fn way(raw: &[u8], b: &Block<'_>, collector: &mut Collector) -> Result<()> {
    let (mut keys, mut vals, mut refs) = (Vec::new(), Vec::new(), Vec::new());
    let mut m = Message::new(raw, "a way");
    while let Some((f, v)) = m.next()? {
        match f {
            2 => numbers(&v, &mut keys, "a way's keys")?,
            3 => numbers(&v, &mut vals, "a way's values")?,
            8 => numbers(&v, &mut refs, "a way's nodes")?,
            _ => {}
        }
    }
    if keys.len() != vals.len() {
        return Err(bad("a way has not as many tag values as keys"));
    }
    let mut tags = Vec::with_capacity(keys.len());
    for (k, v) in keys.iter().zip(&vals) {
        tags.push((b.string(*k)?, b.string(*v)?));
    }
    let tag = |k: &str| {
        tags.iter()
            .find(|(key, _)| *key == k.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    };
    let ok = walkable(tag);
    let mut id = 0i64;
    let nodes = refs
        .iter()
        .map(|r| {
            id = id.wrapping_add(zigzag(*r));
            id
        })
        .collect();
    collector.way(nodes, ok)
}
