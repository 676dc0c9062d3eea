//! Answers in InfluxDB 1.x's JSON shape: `{"results":[{"statement_id":0,"series":[{"name":…,
//! "tags":…,"columns":[…],"values":[[…]]}]}]}`, keys in InfluxDB's order (clients such as
//! Grafana's streaming parser need `columns` before `values`), times as integers in the asked
//! `epoch` or as RFC 3339 strings.

use std::collections::BTreeMap;

use agora_model::Timestamp;
use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value as Json;

use super::{Answer, Cell};
use crate::{Error, Result};

/// How times are written: the `epoch` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    /// No `epoch`: RFC 3339 strings with as many fractional digits as needed.
    Rfc3339,
    /// An integer count of this many nanoseconds since the epoch (`h`, `m`, `s`, `ms`, `u`,
    /// `ns`).
    Unit(i64),
}

impl Epoch {
    /// The `epoch` parameter: absent, `h`, `m`, `s`, `ms`, `u` (or `µ`, `us`) or `ns` (or `n`).
    pub fn parse(p: Option<&str>) -> Result<Self> {
        Ok(match p {
            None | Some("") => Self::Rfc3339,
            Some("ns" | "n") => Self::Unit(1),
            Some("u" | "µ" | "us") => Self::Unit(1_000),
            Some("ms") => Self::Unit(1_000_000),
            Some("s") => Self::Unit(1_000_000_000),
            Some("m") => Self::Unit(60_000_000_000),
            Some("h") => Self::Unit(3_600_000_000_000),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "invalid epoch {other:?}: use h, m, s, ms, u or ns (or leave it out for RFC \
                     3339 times)"
                )));
            }
        })
    }
}

/// One series, as InfluxDB writes it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = InfluxSeries))]
pub struct SeriesJson {
    /// The measurement (`measurements` and `databases` for those lists); absent for retention
    /// policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The values of the `GROUP BY` tags; absent without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Column names: `time` first when the rows have a time.
    pub columns: Vec<String>,
    /// Rows: numbers, strings, booleans, `null` for empty buckets and missing fields.
    pub values: Vec<Vec<serde_json::Value>>,
}

/// The answer to one statement, as InfluxDB writes it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = InfluxStatementResult))]
pub struct StatementResult {
    /// The statement's position in the query, from 0.
    pub statement_id: usize,
    /// Its series; absent when nothing matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesJson>,
    /// Why the statement failed (the HTTP status stays 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StatementResult {
    /// A failed statement.
    pub fn error(statement_id: usize, error: impl Into<String>) -> Self {
        Self { statement_id, series: Vec::new(), error: Some(error.into()) }
    }
}

/// The answer to statement `statement_id`, times written as `epoch` asks (RFC 3339 in the
/// statement's `tz()` when it has one).
pub fn render(statement_id: usize, answer: Answer, epoch: Epoch) -> StatementResult {
    let series = answer
        .series
        .into_iter()
        .map(|s| SeriesJson {
            name: s.name,
            tags: s.tags,
            columns: s.columns,
            values: s
                .values
                .into_iter()
                .map(|row| row.into_iter().map(|c| cell(c, epoch, answer.tz)).collect())
                .collect(),
        })
        .collect();
    StatementResult { statement_id, series, error: None }
}

fn cell(c: Cell, epoch: Epoch, tz: Option<Tz>) -> Json {
    match c {
        Cell::Null => Json::Null,
        Cell::Time(t) => match epoch {
            // Go's integer division, as InfluxDB: towards zero.
            Epoch::Unit(d) => Json::from(t.as_nanos() / d),
            Epoch::Rfc3339 => Json::from(rfc3339_nano(t, tz)),
        },
        Cell::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Cell::Integer(n) => Json::from(n),
        Cell::Bool(b) => Json::from(b),
        Cell::Str(s) => Json::from(s),
    }
}

/// Go's RFC3339Nano, as InfluxDB writes times: `2023-11-14T22:13:20Z`, `…20.5Z`, and the zone's
/// offset under `tz()` (`2023-11-14T23:13:20+01:00`).
pub(crate) fn rfc3339_nano(t: Timestamp, tz: Option<Tz>) -> String {
    let utc = t.to_datetime();
    let (local, offset) = match tz {
        Some(tz) => {
            let l = tz.from_utc_datetime(&utc.naive_utc());
            (l.naive_local(), l.offset().fix().local_minus_utc())
        }
        None => (utc.naive_utc(), 0),
    };
    let mut s = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.as_nanos().rem_euclid(1_000_000_000);
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    if offset == 0 {
        s.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let o = offset.abs();
        s.push_str(&format!("{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::Series;
    use super::*;

    #[test]
    fn times_as_influxdb_writes_them() {
        let t = Timestamp::from_nanos(1_700_000_000_000_000_000);
        assert_eq!(rfc3339_nano(t, None), "2023-11-14T22:13:20Z");
        let half = t.saturating_add_nanos(500_000_000);
        assert_eq!(rfc3339_nano(half, None), "2023-11-14T22:13:20.5Z");
        assert_eq!(rfc3339_nano(t.saturating_add_nanos(1), None), "2023-11-14T22:13:20.000000001Z");
        assert_eq!(rfc3339_nano(t, Some(chrono_tz::Europe::Paris)), "2023-11-14T23:13:20+01:00");
        assert_eq!(
            rfc3339_nano(t, Some(chrono_tz::America::St_Johns)),
            "2023-11-14T18:43:20-03:30"
        );
        for (e, want) in [
            ("ns", 1_700_000_000_000_000_000_i64),
            ("u", 1_700_000_000_000_000),
            ("ms", 1_700_000_000_000),
            ("s", 1_700_000_000),
            ("m", 28_333_333),
            ("h", 472_222),
        ] {
            assert_eq!(cell(Cell::Time(t), Epoch::parse(Some(e)).unwrap(), None), Json::from(want));
        }
        assert!(Epoch::parse(Some("d")).unwrap_err().to_string().contains("invalid epoch"));
    }

    #[test]
    fn keys_in_influxdb_order_and_empty_parts_left_out() {
        let answer = Answer {
            series: vec![Series {
                name: Some("noise".into()),
                tags: Some([("device".to_owned(), "n-1".to_owned())].into()),
                columns: vec!["time".into(), "mean".into()],
                values: vec![vec![Cell::Time(Timestamp::from_nanos(0)), Cell::Null]],
            }],
            tz: None,
        };
        let json = serde_json::to_string(&render(3, answer, Epoch::Unit(1_000_000))).unwrap();
        assert_eq!(
            json,
            r#"{"statement_id":3,"series":[{"name":"noise","tags":{"device":"n-1"},"columns":["time","mean"],"values":[[0,null]]}]}"#
        );
        let empty = serde_json::to_string(&render(0, Answer::default(), Epoch::Rfc3339)).unwrap();
        assert_eq!(empty, r#"{"statement_id":0}"#);
        let err = serde_json::to_string(&StatementResult::error(1, "not executed")).unwrap();
        assert_eq!(err, r#"{"statement_id":1,"error":"not executed"}"#);
    }
}
