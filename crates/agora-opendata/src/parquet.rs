//! A small Apache Parquet writer for exports: flat schemas of optional columns, rows gathered in
//! row groups of [`ROW_GROUP`] rows, each column chunk one v1 data page, PLAIN values with RLE
//! definition levels, uncompressed; the footer in Thrift's compact protocol. That is all an
//! export needs, written as rows arrive in constant memory, and read back by pyarrow in the test
//! suite. (The `parquet` crate would bring the Arrow tree for a writer this size.)
//!
//! Types: text as `BYTE_ARRAY` (UTF8), integers as `INT64`, doubles as `DOUBLE`, booleans as
//! `BOOLEAN`, datetimes as `INT64` microseconds (`TIMESTAMP_MICROS`, UTC), dates as `INT32`
//! days (`DATE`), points as text `lat, lon` (as in CSV).
//!
//! Format: <https://github.com/apache/parquet-format> (`README.md` for the layout,
//! `src/main/thrift/parquet.thrift` for the metadata, `Encodings.md` for PLAIN and RLE).

use crate::odsql::eval::OutType;
use crate::odsql::{FieldType, V};

/// Rows per row group.
pub const ROW_GROUP: usize = 65_536;
/// Bytes of text a row group holds at most before it is written (long computed texts).
const ROW_GROUP_TEXT: usize = 32 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Physical {
    Boolean = 0,
    Int32 = 1,
    Int64 = 2,
    Double = 5,
    ByteArray = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Double,
    Bool,
    Micros,
    Days,
}

impl Kind {
    fn of(t: OutType) -> Self {
        match t {
            OutType::Of(FieldType::Int) => Kind::Int,
            OutType::Of(FieldType::Double) => Kind::Double,
            OutType::Of(FieldType::Bool) => Kind::Bool,
            OutType::Of(FieldType::DateTime) => Kind::Micros,
            OutType::Of(FieldType::Date) => Kind::Days,
            _ => Kind::Text,
        }
    }

    fn physical(self) -> Physical {
        match self {
            Kind::Text => Physical::ByteArray,
            Kind::Int | Kind::Micros => Physical::Int64,
            Kind::Double => Physical::Double,
            Kind::Bool => Physical::Boolean,
            Kind::Days => Physical::Int32,
        }
    }

    /// The legacy converted type (UTF8 = 0, DATE = 6, TIMESTAMP_MICROS = 10).
    fn converted(self) -> Option<i32> {
        match self {
            Kind::Text => Some(0),
            Kind::Days => Some(6),
            Kind::Micros => Some(10),
            _ => None,
        }
    }
}

/// Thrift compact protocol, the little of it the footer needs.
#[derive(Debug, Default)]
struct Thrift {
    out: Vec<u8>,
    last: Vec<i16>,
}

const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_STRUCT: u8 = 12;

impl Thrift {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.out.push(b);
                return;
            }
            self.out.push(b | 0x80);
        }
    }
    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn field(&mut self, id: i16, ty: u8) {
        let last = self.last.last().copied().unwrap_or(0);
        let delta = id - last;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | ty);
        } else {
            self.out.push(ty);
            self.zigzag(i64::from(id));
        }
        if let Some(l) = self.last.last_mut() {
            *l = id;
        }
    }
    fn begin(&mut self) {
        self.last.push(0);
    }
    fn end(&mut self) {
        self.out.push(0);
        self.last.pop();
    }
    fn i32(&mut self, id: i16, v: i32) {
        self.field(id, T_I32);
        self.zigzag(i64::from(v));
    }
    fn i64(&mut self, id: i16, v: i64) {
        self.field(id, T_I64);
        self.zigzag(v);
    }
    fn string(&mut self, id: i16, s: &str) {
        self.field(id, T_BINARY);
        self.varint(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }
    fn list(&mut self, id: i16, elem: u8, n: usize) {
        self.field(id, T_LIST);
        if n < 15 {
            self.out.push(((n as u8) << 4) | elem);
        } else {
            self.out.push(0xf0 | elem);
            self.varint(n as u64);
        }
    }
    fn struct_field(&mut self, id: i16) {
        self.field(id, T_STRUCT);
        self.begin();
    }
}

/// The metadata kept of a written column chunk.
#[derive(Debug, Clone)]
struct Chunk {
    offset: i64,
    size: i64,
    values: i64,
    /// Bytes of the dictionary page at its start, when dictionary-encoded.
    dictionary: Option<i64>,
}

/// Writes rows as Parquet, a row group at a time.
#[derive(Debug)]
pub struct ParquetWriter {
    names: Vec<String>,
    kinds: Vec<Kind>,
    columns: Vec<Vec<V>>,
    /// Bytes written so far (offsets in the footer count from the file's start).
    written: i64,
    groups: Vec<(Vec<Chunk>, i64, i64)>,
    rows: i64,
    /// Bytes of text held in the row group being gathered.
    text: usize,
}

impl ParquetWriter {
    /// A writer of columns with these names and types.
    pub fn new(names: Vec<String>, types: &[OutType]) -> Self {
        let kinds: Vec<Kind> = types.iter().map(|t| Kind::of(*t)).collect();
        let columns = vec![Vec::with_capacity(ROW_GROUP); kinds.len()];
        ParquetWriter { names, kinds, columns, written: 0, groups: Vec::new(), rows: 0, text: 0 }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(bytes);
        self.written += bytes.len() as i64;
    }

    /// The file's magic.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        self.emit(out, b"PAR1");
    }

    /// One row; a full row group is written out.
    pub fn row(&mut self, row: Vec<V>, out: &mut Vec<u8>) {
        for (c, v) in self.columns.iter_mut().zip(row) {
            if let V::Text(t) = &v {
                self.text += t.len();
            }
            c.push(v);
        }
        if self.text >= ROW_GROUP_TEXT || self.columns.first().is_some_and(|c| c.len() >= ROW_GROUP)
        {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        let n = self.columns.first().map_or(0, Vec::len);
        if n == 0 {
            return;
        }
        let mut chunks = Vec::new();
        let mut total = 0;
        for i in 0..self.columns.len() {
            let values = std::mem::take(&mut self.columns[i]);
            let offset = self.written;
            let (page, dictionary) =
                match (self.kinds[i] == Kind::Text).then(|| encode_dictionary(&values)).flatten() {
                    Some((dict, data)) => {
                        let n = dict.len() as i64;
                        let mut both = dict;
                        both.extend_from_slice(&data);
                        (both, Some(n))
                    }
                    None => (encode_page(self.kinds[i], &values), None),
                };
            self.emit(out, &page);
            total += page.len() as i64;
            chunks.push(Chunk { offset, size: page.len() as i64, values: n as i64, dictionary });
            self.columns[i] = Vec::with_capacity(ROW_GROUP);
        }
        self.groups.push((chunks, total, n as i64));
        self.text = 0;
        self.rows += n as i64;
    }

    /// The last row group and the footer.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
        let mut t = Thrift::default();
        t.begin();
        t.i32(1, 1); // version
        t.list(2, T_STRUCT, self.names.len() + 1);
        // The root, then one optional leaf per column.
        t.begin();
        t.string(4, "schema");
        t.i32(5, self.names.len() as i32);
        t.end();
        for (name, kind) in self.names.iter().zip(&self.kinds) {
            t.begin();
            t.i32(1, kind.physical() as i32);
            t.i32(3, 1); // OPTIONAL
            t.string(4, name);
            if let Some(c) = kind.converted() {
                t.i32(6, c);
            }
            t.end();
        }
        t.i64(3, self.rows);
        t.list(4, T_STRUCT, self.groups.len());
        for (chunks, total, rows) in &self.groups {
            t.begin();
            t.list(1, T_STRUCT, chunks.len());
            for (i, c) in chunks.iter().enumerate() {
                t.begin();
                t.i64(2, c.offset);
                t.struct_field(3);
                t.i32(1, self.kinds[i].physical() as i32);
                if c.dictionary.is_some() {
                    t.list(2, T_I32, 3);
                    t.zigzag(0); // PLAIN (the dictionary)
                    t.zigzag(3); // RLE (levels)
                    t.zigzag(8); // RLE_DICTIONARY (the values' indices)
                } else {
                    t.list(2, T_I32, 2);
                    t.zigzag(0); // PLAIN
                    t.zigzag(3); // RLE
                }
                t.list(3, T_BINARY, 1);
                t.varint(self.names[i].len() as u64);
                t.out.extend_from_slice(self.names[i].as_bytes());
                t.i32(4, 0); // UNCOMPRESSED
                t.i64(5, c.values);
                t.i64(6, c.size);
                t.i64(7, c.size);
                t.i64(9, c.offset + c.dictionary.unwrap_or(0));
                if c.dictionary.is_some() {
                    t.i64(11, c.offset);
                }
                t.end();
                t.end();
            }
            t.i64(2, *total);
            t.i64(3, *rows);
            t.end();
        }
        t.string(6, "agora");
        t.end();
        let footer = t.out;
        self.emit(out, &footer);
        self.emit(out, &(footer.len() as u32).to_le_bytes());
        self.emit(out, b"PAR1");
    }
}

/// Values remembered by pointer while dictionary-encoding.
const RECENT: usize = 16;

/// Most distinct values a text column chunk is dictionary-encoded with.
const MAX_DICTIONARY: usize = 16_384;

/// A text column chunk as a dictionary page (its distinct values, PLAIN) and a data page of
/// indices (RLE_DICTIONARY: a bit width, then bit-packed runs); `None` when the values are too
/// varied for a dictionary to pay.
fn encode_dictionary(values: &[V]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut index: std::collections::HashMap<std::borrow::Cow<'_, str>, u32> =
        std::collections::HashMap::new();
    let mut dict = Vec::new();
    let mut ids: Vec<u32> = Vec::with_capacity(values.len());
    let mut present = vec![0u8; values.len().div_ceil(8)];
    // Records repeat a few values (their device's, place's, commune's) shared by pointer: a
    // small cache of the last ones found spares hashing and formatting them again.
    let mut recent: Vec<((u8, u64, u64), u32)> = Vec::with_capacity(RECENT);
    let mut next_slot = 0;
    for (i, v) in values.iter().enumerate() {
        let key = match v {
            V::Null => continue,
            V::Text(t) => (1, t.as_ptr() as u64, t.len() as u64),
            V::Geo(lat, lon) => (2, lat.to_bits(), lon.to_bits()),
            _ => (0, 0, 0),
        };
        present[i / 8] |= 1 << (i % 8);
        if key.0 != 0
            && let Some(&(_, id)) = recent.iter().find(|(k, _)| *k == key)
        {
            ids.push(id);
            continue;
        }
        let text: std::borrow::Cow<'_, str> = match v {
            V::Text(t) => std::borrow::Cow::Borrowed(&**t),
            other => std::borrow::Cow::Owned(text_of(other)),
        };
        let next = index.len() as u32;
        let id = *index.entry(text).or_insert_with_key(|k| {
            dict.extend_from_slice(&(k.len() as u32).to_le_bytes());
            dict.extend_from_slice(k.as_bytes());
            next
        });
        if index.len() > MAX_DICTIONARY {
            return None;
        }
        if key.0 != 0 {
            if recent.len() < RECENT {
                recent.push((key, id));
            } else {
                recent[next_slot] = (key, id);
                next_slot = (next_slot + 1) % RECENT;
            }
        }
        ids.push(id);
    }
    let distinct = index.len();
    if ids.is_empty() {
        return None;
    }
    let dict_page = {
        let mut h = Thrift::default();
        h.begin();
        h.i32(1, 2); // DICTIONARY_PAGE
        h.i32(2, dict.len() as i32);
        h.i32(3, dict.len() as i32);
        h.struct_field(7);
        h.i32(1, distinct as i32);
        h.i32(2, 0); // PLAIN
        h.end();
        h.end();
        let mut page = h.out;
        page.extend_from_slice(&dict);
        page
    };
    let width = (32 - (distinct.max(2) as u32 - 1).leading_zeros()) as u8;
    let mut data = levels(values.len(), &present);
    data.push(width);
    bit_pack(&mut data, &ids, width);
    Some((dict_page, page(values.len(), 8, data)))
}

/// Values of `width` bits as one bit-packed run (groups of 8, LSB first), its header first.
fn bit_pack(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let groups = values.len().div_ceil(8);
    let mut h = Thrift::default();
    h.varint(((groups as u64) << 1) | 1);
    out.extend_from_slice(&h.out);
    let start = out.len();
    out.resize(start + groups * width as usize, 0);
    let mut bit = 0usize;
    for &v in values {
        for b in 0..width as usize {
            if v >> b & 1 == 1 {
                out[start + (bit + b) / 8] |= 1 << ((bit + b) % 8);
            }
        }
        bit += width as usize;
    }
}

/// The definition levels of a page (bit width 1, one bit-packed run), with their length first.
fn levels(n: usize, present: &[u8]) -> Vec<u8> {
    let mut h = Thrift::default();
    h.varint(((n.div_ceil(8) as u64) << 1) | 1);
    let mut out = Vec::with_capacity(4 + h.out.len() + present.len());
    out.extend_from_slice(&((h.out.len() + present.len()) as u32).to_le_bytes());
    out.extend_from_slice(&h.out);
    out.extend_from_slice(present);
    out
}

/// A data page (v1) of `n` values whose body (levels then values) is `data`.
fn page(n: usize, encoding: i32, data: Vec<u8>) -> Vec<u8> {
    let mut h = Thrift::default();
    h.begin();
    h.i32(1, 0); // DATA_PAGE
    h.i32(2, data.len() as i32);
    h.i32(3, data.len() as i32);
    h.struct_field(5);
    h.i32(1, n as i32);
    h.i32(2, encoding);
    h.i32(3, 3); // RLE
    h.i32(4, 3); // RLE
    h.end();
    h.end();
    let mut p = h.out;
    p.extend_from_slice(&data);
    p
}

fn text_of(v: &V) -> String {
    match v {
        V::Text(t) => t.to_string(),
        V::Geo(lat, lon) => format!("{lat}, {lon}"),
        V::Num(x) => x.to_string(),
        V::Bool(b) => b.to_string(),
        V::Time(ns) => crate::explore::datetime_text(*ns, chrono_tz::Tz::UTC),
        V::Null => String::new(),
    }
}

/// One data page (v1): its header, the definition levels, the non-null values.
fn encode_page(kind: Kind, values: &[V]) -> Vec<u8> {
    let mut present = vec![0u8; values.len().div_ceil(8)];
    let mut body = Vec::new();
    let mut bools: Vec<u32> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let ok = match (kind, v) {
            (_, V::Null) => false,
            (Kind::Int, V::Num(x)) => {
                body.extend_from_slice(&(*x as i64).to_le_bytes());
                true
            }
            (Kind::Double, V::Num(x)) => {
                body.extend_from_slice(&x.to_le_bytes());
                true
            }
            (Kind::Bool, V::Bool(b)) => {
                bools.push(u32::from(*b));
                true
            }
            (Kind::Micros, V::Time(ns)) => {
                body.extend_from_slice(&ns.div_euclid(1000).to_le_bytes());
                true
            }
            (Kind::Days, V::Time(ns)) => {
                body.extend_from_slice(
                    &(ns.div_euclid(86_400 * 1_000_000_000) as i32).to_le_bytes(),
                );
                true
            }
            (Kind::Text, v) => {
                let s = match v {
                    V::Text(t) => std::borrow::Cow::Borrowed(&**t),
                    other => std::borrow::Cow::Owned(text_of(other)),
                };
                body.extend_from_slice(&(s.len() as u32).to_le_bytes());
                body.extend_from_slice(s.as_bytes());
                true
            }
            // A value of another kind than the column's (a computed column): null.
            _ => false,
        };
        if ok {
            present[i / 8] |= 1 << (i % 8);
        }
    }
    if kind == Kind::Bool {
        // PLAIN booleans: bit-packed, LSB first, no run header.
        let mut packed = vec![0u8; bools.len().div_ceil(8)];
        for (i, b) in bools.iter().enumerate() {
            packed[i / 8] |= (*b as u8) << (i % 8);
        }
        body = packed;
    }
    let mut data = levels(values.len(), &present);
    data.extend_from_slice(&body);
    page(values.len(), 0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_protocol_matches_hand_encoded_bytes() {
        let mut t = Thrift::default();
        t.begin();
        t.i32(1, 1);
        t.i64(3, -2);
        t.string(4, "ab");
        t.i32(20, 5);
        t.end();
        // Field 1 i32 (delta 1, type 5) zigzag(1)=2; field 3 i64 (delta 2, type 6)
        // zigzag(-2)=3; field 4 binary (delta 1, type 8) len 2 "ab"; field 20 (delta 16:
        // long form, type 5, zigzag(20)=40) zigzag(5)=10; stop.
        assert_eq!(t.out, [0x15, 2, 0x26, 3, 0x18, 2, b'a', b'b', 0x05, 40, 10, 0]);
    }

    #[test]
    fn a_file_has_its_magic_and_footer_length() {
        let mut w = ParquetWriter::new(vec!["x".into()], &[OutType::Of(FieldType::Double)]);
        let mut out = Vec::new();
        w.start(&mut out);
        w.row(vec![V::Num(1.5)], &mut out);
        w.row(vec![V::Null], &mut out);
        w.finish(&mut out);
        assert_eq!(&out[..4], b"PAR1");
        assert_eq!(&out[out.len() - 4..], b"PAR1");
        let len =
            u32::from_le_bytes(out[out.len() - 8..out.len() - 4].try_into().unwrap()) as usize;
        assert!(len > 10 && len < out.len());
    }
}
