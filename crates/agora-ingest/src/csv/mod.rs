//! CSV files (a lighting contractor's export, a spreadsheet of manual readings): a mapping says
//! which column holds the device, which the time (any common format, in a given time zone), and
//! which columns are which properties, with their units. Files are read as a stream; each bad row
//! is reported with its line number and the good ones are kept.
//!
//! ```toml
//! device_column = "lamp_id"          # or device = "lamp-12" for a single-device file
//! time_column = "date"
//! time_format = "%d/%m/%Y %H:%M"      # optional: RFC 3339, epoch and common formats are guessed
//! timezone = "Europe/Paris"           # for times written without an offset (default UTC)
//! kind = "streetlight"                # for devices registered by the import
//! [columns]
//! puissance = "power_w"
//! energie = { property = "energy_wh", unit = "kWh" }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;

use agora_model::{Timestamp, Value};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use serde::Deserialize;

use crate::Refusal;
use crate::record::{Field, LineError, Record};

/// A column's meaning.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ColumnMapping {
    /// Just the property (or alias).
    Property(String),
    /// The property and the unit of the column's values.
    WithUnit {
        /// Property or alias.
        property: String,
        /// Unit of the values (`kWh`, `°F`, `ppb`…).
        unit: Option<String>,
    },
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvMapping {
    /// Column holding the device id.
    #[serde(default)]
    pub device_column: Option<String>,
    /// The device, when the whole file is about one.
    #[serde(default)]
    pub device: Option<String>,
    /// Column holding the time.
    pub time_column: String,
    /// strftime format of the time column; guessed when absent.
    #[serde(default)]
    pub time_format: Option<String>,
    /// IANA time zone of times written without an offset (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Field delimiter (guessed among `,`, `;` and tab when absent).
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Kind of devices the import registers.
    #[serde(default)]
    pub kind: Option<String>,
    /// Site of devices the import registers.
    #[serde(default)]
    pub site: Option<String>,
    /// Commune of devices the import registers.
    #[serde(default)]
    pub commune: Option<String>,
    /// Value columns: header → property.
    pub columns: BTreeMap<String, ColumnMapping>,
}

/// Time formats tried, in order, when the mapping gives none. Slashed dates are day first, as
/// written in France.
const FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
];

/// A prepared reader: headers resolved, time zone known.
pub struct CsvReader<R: Read> {
    rows: ::csv::StringRecordsIntoIter<R>,
    mapping: CsvMapping,
    tz: chrono_tz::Tz,
    device_idx: Option<usize>,
    time_idx: usize,
    columns: Vec<(usize, String, Option<String>)>,
}

impl<R: Read> std::fmt::Debug for CsvReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("mapping", &self.mapping)
            .field("tz", &self.tz)
            .finish_non_exhaustive()
    }
}

fn parse_number(s: &str) -> Option<Value> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Value::I64(i));
    }
    if let Ok(f) = t.parse::<f64>() {
        return Some(Value::F64(f));
    }
    // Decimal comma, as French spreadsheets write numbers.
    let c = t.replace(',', ".");
    c.parse::<f64>().ok().map(Value::F64)
}

impl CsvMapping {
    /// Open a CSV stream with this mapping; fails if the header lacks a mapped column.
    pub fn reader<R: Read>(&self, input: R, sniff: &[u8]) -> Result<CsvReader<R>, Refusal> {
        let tz: chrono_tz::Tz = match &self.timezone {
            Some(z) => z.parse().map_err(|_| {
                format!("unknown time zone {z:?} (use an IANA name such as Europe/Paris)")
            })?,
            None => chrono_tz::UTC,
        };
        if self.device.is_none() && self.device_column.is_none() {
            return Err("the mapping needs device_column or device".into());
        }
        let delimiter = self.delimiter.map(|c| c as u8).unwrap_or_else(|| {
            let head = sniff.split(|&b| b == b'\n').next().unwrap_or(&[]);
            let count = |d: u8| head.iter().filter(|&&b| b == d).count();
            [b';', b'\t', b','].into_iter().max_by_key(|&d| (count(d), d == b',')).unwrap_or(b',')
        });
        let mut rdr = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(input);
        let headers =
            rdr.headers().map_err(|e| format!("cannot read the header line: {e}"))?.clone();
        let find = |name: &str| {
            headers.iter().position(|h| h.trim_start_matches('\u{feff}') == name).ok_or_else(|| {
                format!(
                    "column {name:?} is not in the header ({})",
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })
        };
        let device_idx = self.device_column.as_deref().map(find).transpose()?;
        let time_idx = find(&self.time_column)?;
        let mut columns = Vec::new();
        for (header, m) in &self.columns {
            let (property, unit) = match m {
                ColumnMapping::Property(p) => (p.clone(), None),
                ColumnMapping::WithUnit { property, unit } => (property.clone(), unit.clone()),
            };
            columns.push((find(header)?, property, unit));
        }
        if columns.is_empty() {
            return Err("the mapping has no value columns".into());
        }
        Ok(CsvReader {
            rows: rdr.into_records(),
            mapping: self.clone(),
            tz,
            device_idx,
            time_idx,
            columns,
        })
    }

    fn parse_time(&self, s: &str, tz: chrono_tz::Tz) -> Result<Timestamp, Refusal> {
        let s = s.trim();
        let local = |naive: NaiveDateTime| {
            tz.from_local_datetime(&naive)
                .earliest()
                .and_then(|dt| Timestamp::from_datetime(&dt))
                .ok_or_else(|| Refusal(format!("time {s:?} does not exist in {tz}")))
        };
        if let Some(f) = &self.time_format {
            if let Ok(dt) = DateTime::parse_from_str(s, f) {
                return Timestamp::from_datetime(&dt)
                    .ok_or_else(|| Refusal(format!("time {s:?} is out of range")));
            }
            return match NaiveDateTime::parse_from_str(s, f) {
                Ok(n) => local(n),
                Err(_) => match chrono::NaiveDate::parse_from_str(s, f) {
                    Ok(d) => local(d.and_hms_opt(0, 0, 0).expect("midnight exists")),
                    Err(e) => Err(format!("time {s:?} does not match {f:?}: {e}").into()),
                },
            };
        }
        if let Ok(t) = s.parse::<Timestamp>() {
            return Ok(t);
        }
        for f in FORMATS {
            if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                return local(n);
            }
            if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f) {
                return local(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
            }
        }
        Err(format!("time {s:?} is not in a known format: set time_format in the mapping").into())
    }
}

impl<R: Read> CsvReader<R> {
    /// The next row as a record (or the reason it was refused); `None` at the end of the file.
    /// Line numbers count the header as line 1.
    pub fn next_record(&mut self) -> Option<Result<Record<'static>, LineError>> {
        let row = self.rows.next()?;
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as u32);
                return Some(Err(LineError {
                    line,
                    reason: format!("unreadable row: {e}"),
                    raw: String::new(),
                    raw_is_json: false,
                }));
            }
        };
        let line = row.position().map_or(0, |p| p.line() as u32);
        let raw = row.iter().collect::<Vec<_>>().join(",");
        let err = |reason: String| {
            Some(Err(LineError { line, reason, raw: raw.clone(), raw_is_json: false }))
        };
        let device = match (self.device_idx, &self.mapping.device) {
            (Some(i), _) => match row.get(i).filter(|d| !d.is_empty()) {
                Some(d) => d.to_owned(),
                None => return err("empty device".into()),
            },
            (None, Some(d)) => d.clone(),
            (None, None) => return err("no device".into()),
        };
        let time = match row.get(self.time_idx).map(|t| self.mapping.parse_time(t, self.tz)) {
            Some(Ok(t)) => t,
            Some(Err(e)) => return err(e.0),
            None => return err("missing time".into()),
        };
        let mut fields = Vec::new();
        for (i, property, unit) in &self.columns {
            let cell = row.get(*i).unwrap_or("");
            if cell.trim().is_empty() {
                continue;
            }
            let value = match parse_number(cell) {
                Some(v) => v,
                None => match cell.trim().to_ascii_lowercase().as_str() {
                    "true" | "vrai" | "on" => Value::Bool(true),
                    "false" | "faux" | "off" => Value::Bool(false),
                    _ => Value::Str(cell.trim().to_owned()),
                },
            };
            fields.push(Field {
                name: Cow::Owned(property.clone()),
                value,
                unit: unit.clone().map(Cow::Owned),
            });
        }
        if fields.is_empty() {
            return err("no values in the mapped columns".into());
        }
        Some(Ok(Record {
            line,
            device: Cow::Owned(device),
            kind: self.mapping.kind.clone().map(Cow::Owned),
            site: self.mapping.site.clone().map(Cow::Owned),
            commune: self.mapping.commune.clone().map(Cow::Owned),
            time: Some(time),
            fields,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> CsvMapping {
        toml_like(
            r#"{"device_column": "lampe", "time_column": "date", "timezone": "Europe/Paris", "kind": "streetlight",
                "columns": {"puissance": "power_w", "energie": {"property": "energy_wh", "unit": "kWh"}, "etat": "lamp_status"}}"#,
        )
    }

    fn toml_like(json: &str) -> CsvMapping {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn french_export_with_local_times_and_decimal_commas() {
        let csv = "\u{feff}lampe;date;puissance;energie;etat\nlamp-1;15/01/2026 18:00;41,5;1,25;ok\nlamp-1;15/07/2026 22:00;40;2;ok\nlamp-2;not a date;40;2;ok\nlamp-2;15/01/2026 18:00;;;\n;15/01/2026 18:00;1;1;ok\n";
        let m = mapping();
        let mut r = m.reader(csv.as_bytes(), csv.as_bytes()).unwrap();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        while let Some(x) = r.next_record() {
            match x {
                Ok(rec) => ok.push(rec),
                Err(e) => bad.push((e.line, e.reason)),
            }
        }
        assert_eq!(ok.len(), 2);
        // 18:00 in Paris is 17:00 UTC in winter and 20:00 local is 18:00 UTC in summer (22:00 → 20:00).
        assert_eq!(ok[0].time.unwrap().to_rfc3339(), "2026-01-15T17:00:00Z");
        assert_eq!(ok[1].time.unwrap().to_rfc3339(), "2026-07-15T20:00:00Z");
        assert_eq!(
            ok[0].fields.iter().map(|f| f.value.clone()).collect::<Vec<_>>(),
            vec![Value::F64(1.25), Value::Str("ok".into()), Value::F64(41.5)]
        );
        assert_eq!(ok[0].fields[0].unit.as_deref(), Some("kWh"));
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5, 6]);
        assert!(bad[0].1.contains("\"not a date\""));
    }

    #[test]
    fn formats_and_mapping_errors() {
        let m = toml_like(
            r#"{"device": "wx-1", "time_column": "t", "columns": {"temp": {"property": "temperature", "unit": "°F"}}}"#,
        );
        let csv = "t,temp\n2026-01-01T00:00:00+01:00,50\n1767225600,51\n2026-01-01 00:00,52\n";
        let mut r = m.reader(csv.as_bytes(), csv.as_bytes()).unwrap();
        let times: Vec<String> = std::iter::from_fn(|| r.next_record())
            .map(|x| x.unwrap().time.unwrap().to_rfc3339())
            .collect();
        assert_eq!(times, ["2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]);
        assert!(m.reader("x,temp\n".as_bytes(), b"x,temp").unwrap_err().contains("column \"t\""));
        let bad_tz = CsvMapping { timezone: Some("Mars/Olympus".into()), ..m.clone() };
        assert!(bad_tz.reader(csv.as_bytes(), b"").unwrap_err().contains("Mars/Olympus"));
    }
}
