//! Answering the Explore API over a dataset's records: a query's rows and count, values written
//! as the real API writes them (datetimes as ISO 8601 with their offset in the request's time
//! zone, `date` fields as days, points as `{"lat", "lon"}`, integers as integers), and the
//! export formats written row by row into a buffer that the caller sends as it fills.

use std::io::Write;

use agora_model::Timestamp;
use agora_store::SeriesStore;
use agora_store::opendata::DatasetKind;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Number, Value, json};

use crate::Records;
use crate::odsql::eval::{Compiled, OutType};
use crate::odsql::{FieldType, OdsqlError, Query, Row, V, compile, time_bounds};

/// What can go wrong answering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The query (`ODSQLSyntaxError`, `ODSQLError`).
    #[error(transparent)]
    Odsql(#[from] OdsqlError),
    /// Reading the store.
    #[error(transparent)]
    Read(#[from] agora_query::Error),
    /// The query read for longer than its deadline: too broad.
    #[error("the query took too long: narrow it with a where on date, or use an export")]
    TooLong,
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The columns' keys.
    pub keys: Vec<String>,
    /// Their types.
    pub types: Vec<OutType>,
    /// The rows asked (after offset and limit).
    pub rows: Vec<Row>,
    /// How many matched (groups, for a grouped query).
    pub total: u64,
}

/// Check `q` against the dataset (in time zone `tz`).
pub fn prepare(rec: &Records, q: &Query, tz: Tz) -> Result<Compiled, OdsqlError> {
    compile(q, &rec.fields, tz)
}

/// The windows a query must read: those its `date` conditions allow.
pub fn windows_for(rec: &Records, q: &Query, tz: Tz) -> Vec<agora_query::TimeRange> {
    let (lo, hi) = if rec.dataset.kind == DatasetKind::Measurements {
        time_bounds(q.filter.as_ref(), "date", tz)
    } else {
        (None, None)
    };
    rec.windows(lo, hi)
}

/// Answer `q` over the records, keeping rows `offset .. offset + limit`.
pub async fn answer(
    rec: &Records,
    store: &dyn SeriesStore,
    q: &Query,
    tz: Tz,
    offset: usize,
    limit: usize,
    deadline: Option<std::time::Instant>,
) -> Result<Answer, Error> {
    let c = prepare(rec, q, tz)?;
    let mut run = c.run(Some(offset.saturating_add(limit)));
    let mut kept = Vec::new();
    let mut seen = 0usize;
    for w in windows_for(rec, q, tz) {
        if deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(Error::TooLong);
        }
        for row in rec.window(store, w).await? {
            if let Some(out) = run.push_owned(row)? {
                if seen >= offset && kept.len() < limit {
                    kept.push(out);
                }
                seen += 1;
            }
        }
    }
    let streams = c.streams();
    let total = run.total();
    let mut o = run.finish();
    if streams {
        o.rows = kept;
        o.total = total;
    } else {
        o.rows = o.rows.into_iter().skip(offset).take(limit).collect();
    }
    let n = c.answered();
    Ok(Answer {
        keys: c.columns[..n].iter().map(|c| c.key.clone()).collect(),
        types: c.columns[..n].iter().map(|c| c.ty).collect(),
        rows: o.rows,
        total: o.total,
    })
}

/// A time as the real API writes it: `2024-05-01T10:00:00+00:00` in `tz`.
pub fn datetime_text(ns: i64, tz: Tz) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns).with_timezone(&tz);
    if ns % 1_000_000_000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.f%:z").to_string()
    }
}

fn date_text(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).format("%Y-%m-%d").to_string()
}

fn number(n: f64, ty: OutType) -> Value {
    let int = matches!(ty, OutType::Of(FieldType::Int)) || (ty == OutType::Any && n.fract() == 0.0);
    if int && n.fract() == 0.0 && n.abs() < 9.0e15 {
        return Value::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// A value in JSON.
pub fn json_value(v: &V, ty: OutType, tz: Tz) -> Value {
    match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Num(n) => number(*n, ty),
        V::Text(t) => Value::String(t.to_string()),
        V::Time(ns) if ty == OutType::Of(FieldType::Date) => Value::String(date_text(*ns)),
        V::Time(ns) => Value::String(datetime_text(*ns, tz)),
        V::Geo(lat, lon) => json!({"lat": lat, "lon": lon}),
    }
}

/// A row as a JSON object keyed by column, its keys in the columns' order (as the real API
/// answers: the dataset's field order, or the select's).
#[derive(Debug, Clone, Copy)]
pub struct JsonRow<'a> {
    /// Keys.
    pub keys: &'a [String],
    /// Their types.
    pub types: &'a [OutType],
    /// Values.
    pub row: &'a [V],
    /// Time zone of datetimes.
    pub tz: Tz,
    /// A column left out (GeoJSON's geometry).
    pub skip: Option<usize>,
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (i, ((k, t), v)) in self.keys.iter().zip(self.types).zip(self.row).enumerate() {
            if Some(i) != self.skip {
                m.serialize_entry(k, &json_value(v, *t, self.tz))?;
            }
        }
        m.end()
    }
}

/// A row as a JSON object keyed by column (unordered: for tests and single values).
pub fn json_row(keys: &[String], types: &[OutType], row: &[V], tz: Tz) -> Map<String, Value> {
    keys.iter().zip(types).zip(row).map(|((k, t), v)| (k.clone(), json_value(v, *t, tz))).collect()
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with a delimiter, a byte-order mark or not (the real API: `;` and a BOM).
    Csv {
        /// `;`, `,`, tab or `|`.
        delimiter: u8,
        /// Whether a UTF-8 BOM starts the file (Excel reads accents then).
        bom: bool,
    },
    /// A JSON array of records.
    Json,
    /// One JSON record per line.
    Jsonl,
    /// A GeoJSON FeatureCollection (points where records have a position).
    GeoJson,
    /// Apache Parquet (uncompressed; see [`crate::parquet`]).
    Parquet,
}

impl Format {
    /// The format named in the URL.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "csv" => Format::Csv { delimiter: b';', bom: true },
            "json" => Format::Json,
            "jsonl" => Format::Jsonl,
            "geojson" => Format::GeoJson,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv { .. } => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Jsonl => "application/jsonl",
            Format::GeoJson => "application/geo+json",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// Its file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv { .. } => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::GeoJson => "geojson",
            Format::Parquet => "parquet",
        }
    }
}

/// Writes rows of one export into a buffer.
#[derive(Debug)]
pub struct Writer {
    format: Format,
    keys: Vec<String>,
    types: Vec<OutType>,
    tz: Tz,
    rows: u64,
    /// The column of the points (GeoJSON geometry).
    geo: Option<usize>,
    parquet: Option<crate::parquet::ParquetWriter>,
}

impl Writer {
    /// A writer of the answered columns of `c`.
    pub fn new(format: Format, c: &Compiled, tz: Tz) -> Self {
        let n = c.answered();
        let keys: Vec<String> = c.columns[..n].iter().map(|c| c.key.clone()).collect();
        let types: Vec<OutType> = c.columns[..n].iter().map(|c| c.ty).collect();
        let geo = types.iter().position(|t| *t == OutType::Of(FieldType::GeoPoint));
        let parquet = (format == Format::Parquet)
            .then(|| crate::parquet::ParquetWriter::new(keys.clone(), &types));
        Writer { format, keys, types, tz, rows: 0, geo, parquet }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// What starts the file.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv { delimiter, bom } => {
                if bom {
                    out.extend_from_slice("\u{feff}".as_bytes());
                }
                for (i, k) in self.keys.iter().enumerate() {
                    if i > 0 {
                        out.push(delimiter);
                    }
                    csv_field(out, k, delimiter);
                }
                out.extend_from_slice(b"\r\n");
            }
            Format::Json => out.push(b'['),
            Format::Jsonl => {}
            Format::GeoJson => {
                out.extend_from_slice(br#"{"type":"FeatureCollection","features":["#)
            }
            Format::Parquet => {
                if let Some(p) = &mut self.parquet {
                    p.start(out);
                }
            }
        }
    }

    /// One row.
    pub fn row(&mut self, row: &[V], out: &mut Vec<u8>) {
        let first = self.rows == 0;
        self.rows += 1;
        match self.format {
            Format::Parquet => {
                if let Some(p) = &mut self.parquet {
                    p.row(row.to_vec(), out);
                }
            }
            Format::Csv { delimiter, .. } => {
                for (i, (v, t)) in row.iter().zip(&self.types).enumerate() {
                    if i > 0 {
                        out.push(delimiter);
                    }
                    match v {
                        V::Null => {}
                        V::Geo(lat, lon) => {
                            let _ = write!(out, "\"{lat}, {lon}\"");
                        }
                        V::Text(s) => csv_field(out, s, delimiter),
                        _ => match json_value(v, *t, self.tz) {
                            Value::String(s) => csv_field(out, &s, delimiter),
                            other => {
                                let _ = write!(out, "{other}");
                            }
                        },
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            Format::Json | Format::Jsonl => {
                if self.format == Format::Json && !first {
                    out.push(b',');
                }
                let obj =
                    JsonRow { keys: &self.keys, types: &self.types, row, tz: self.tz, skip: None };
                let _ = serde_json::to_writer(&mut *out, &obj);
                if self.format == Format::Jsonl {
                    out.push(b'\n');
                }
            }
            Format::GeoJson => {
                if !first {
                    out.push(b',');
                }
                let geometry = match self.geo.map(|i| &row[i]) {
                    Some(V::Geo(lat, lon)) => json!({"type": "Point", "coordinates": [lon, lat]}),
                    _ => Value::Null,
                };
                let props = JsonRow {
                    keys: &self.keys,
                    types: &self.types,
                    row,
                    tz: self.tz,
                    skip: self.geo,
                };
                out.extend_from_slice(br#"{"type":"Feature","geometry":"#);
                let _ = serde_json::to_writer(&mut *out, &geometry);
                out.extend_from_slice(br#","properties":"#);
                let _ = serde_json::to_writer(&mut *out, &props);
                out.push(b'}');
            }
        }
    }

    /// One row given away (Parquet keeps its values without a copy).
    pub fn row_owned(&mut self, row: Row, out: &mut Vec<u8>) {
        match (&mut self.parquet, self.format) {
            (Some(p), Format::Parquet) => {
                self.rows += 1;
                p.row(row, out);
            }
            _ => self.row(&row, out),
        }
    }

    /// What ends the file.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.format {
            Format::Json => out.push(b']'),
            Format::GeoJson => out.extend_from_slice(b"]}"),
            Format::Parquet => {
                if let Some(p) = &mut self.parquet {
                    p.finish(out);
                }
            }
            _ => {}
        }
    }
}

/// A CSV field, quoted when it holds the delimiter, a quote or a line break.
fn csv_field(out: &mut Vec<u8>, s: &str, delimiter: u8) {
    let needs = s.bytes().any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r');
    if needs {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

/// When a dataset's data last changed, as far as agora knows: the end of its published range.
pub fn data_modified(rec: &Records) -> Option<Timestamp> {
    rec.range().map(|r| r.to)
}
