//! agora's native JSON batch (`POST /api/v1/observations`). The body is an array, or an object
//! with an `observations` array, of items of either shape (a single item alone works too):
//!
//! ```json
//! {"device": "aq-1", "property": "no2", "value": 21.5, "unit": "ppb", "time": "2026-01-01T00:00:00Z"}
//! {"device": "aq-1", "time": 1767225600000, "values": {"no2": 21.5, "o3": 80}}
//! ```
//!
//! `time` is RFC 3339 or an epoch number (s, ms, µs or ns, guessed from its magnitude) and defaults
//! to now; `kind`, `site` and `commune` place a device registered on its first write.

use std::borrow::Cow;

use agora_model::{Timestamp, Value};
use serde_json::Value as Json;

use crate::Refusal;
use crate::record::{Decoded, Field, LineError, Record};

/// One observation in the first shape above. The pipeline writes every refused value in it (a
/// dead letter), so that replaying the dead letter through [`decode`] gives the value again with
/// its unit, whatever format it first came in.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Observation<'a> {
    /// The device as sent.
    pub device: &'a str,
    /// When it was measured (absent: when received).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339")]
    pub time: Option<Timestamp>,
    /// The property or alias as sent.
    pub property: &'a str,
    /// The value.
    pub value: &'a Value,
    /// Its unit, when the source gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'a str>,
    /// Where a device registered by its first write stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    /// See `kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'a str>,
    /// See `kind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commune: Option<&'a str>,
}

fn rfc3339<S: serde::Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

impl Observation<'_> {
    /// As JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Several, as a JSON array.
    pub fn list<'a>(items: impl Iterator<Item = Observation<'a>>) -> String {
        serde_json::to_string(&items.collect::<Vec<_>>()).unwrap_or_default()
    }
}

/// Decode a batch; one bad item never spoils the others.
pub fn decode(body: &[u8]) -> Result<Decoded<'static>, Refusal> {
    let doc: Json =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let items = match doc {
        Json::Array(a) => a,
        // A single observation is a batch of one.
        Json::Object(o) if o.contains_key("device") => vec![Json::Object(o)],
        Json::Object(mut o) => match o.remove("observations") {
            Some(Json::Array(a)) => a,
            _ => return Err(
                "expected an array of observations, or an object with an \"observations\" array"
                    .into(),
            ),
        },
        _ => return Err("expected an array of observations".into()),
    };
    let mut out = Decoded::default();
    for (i, item) in items.iter().enumerate() {
        let line = (i + 1) as u32;
        match decode_item(item, line) {
            Ok(r) => out.records.push(r),
            Err(Refusal(reason)) => out.errors.push(LineError {
                line,
                reason,
                raw: item.to_string(),
                raw_is_json: false,
            }),
        }
    }
    Ok(out)
}

/// Convert a JSON scalar to a value (numbers that are whole and written without a fraction are integers).
pub fn json_value(v: &Json) -> Result<Value, Refusal> {
    Ok(match v {
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::I64(i),
            None => Value::F64(n.as_f64().ok_or_else(|| format!("number {n} is out of range"))?),
        },
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone()),
        other => {
            return Err(format!("value must be a number, boolean or string, got {other}").into());
        }
    })
}

/// Parse a JSON time: RFC 3339 string or epoch number.
pub fn json_time(v: &Json) -> Result<Timestamp, Refusal> {
    match v {
        Json::String(s) => s.parse().map_err(|e: agora_model::Error| Refusal(e.to_string())),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Timestamp::from_epoch_guess(i).map_err(|e| Refusal(e.to_string())),
            None => n
                .as_f64()
                .and_then(Timestamp::from_secs_f64)
                .ok_or_else(|| Refusal(format!("time {n} is out of range"))),
        },
        other => Err(format!("time must be RFC 3339 or an epoch number, got {other}").into()),
    }
}

fn opt_str(
    o: &serde_json::Map<String, Json>,
    k: &str,
) -> Result<Option<Cow<'static, str>>, Refusal> {
    match o.get(k) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(Cow::Owned(s.clone()))),
        Some(other) => Err(format!("{k} must be a string, got {other}").into()),
    }
}

fn decode_item(item: &Json, line: u32) -> Result<Record<'static>, Refusal> {
    let Json::Object(o) = item else {
        return Err("an observation must be a JSON object".into());
    };
    let device = opt_str(o, "device")?.ok_or("missing \"device\"")?;
    let time = o.get("time").filter(|t| !t.is_null()).map(json_time).transpose()?;
    let unit = opt_str(o, "unit")?;
    let mut fields = Vec::new();
    match (o.get("property"), o.get("values")) {
        (Some(Json::String(p)), None) => {
            let v = o.get("value").ok_or("missing \"value\"")?;
            fields.push(Field { name: Cow::Owned(p.clone()), value: json_value(v)?, unit });
        }
        (None, Some(Json::Object(vals))) => {
            if vals.is_empty() {
                return Err("\"values\" is empty".into());
            }
            for (k, v) in vals {
                let value = json_value(v).map_err(|e| format!("{k}: {e}"))?;
                fields.push(Field { name: Cow::Owned(k.clone()), value, unit: None });
            }
        }
        (Some(_), Some(_)) => {
            return Err("give either \"property\" and \"value\", or \"values\", not both".into());
        }
        (Some(p), None) => return Err(format!("property must be a string, got {p}").into()),
        (None, Some(v)) => return Err(format!("values must be an object, got {v}").into()),
        (None, None) => return Err("missing \"property\" and \"value\" (or \"values\")".into()),
    }
    Ok(Record {
        line,
        device,
        kind: opt_str(o, "kind")?,
        site: opt_str(o, "site")?,
        commune: opt_str(o, "commune")?,
        time,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_written_for_a_dead_letter_decodes_to_the_same_record() {
        let t = Timestamp::parse_rfc3339("2026-01-01T00:00:00.5Z").unwrap();
        for (value, unit, kind) in [
            (Value::F64(21.5), Some("ppb"), Some("air_quality")),
            (Value::I64(-3), None, None),
            (Value::Str("defectiveLamp".into()), None, Some("streetlight")),
            (Value::Bool(true), None, None),
        ] {
            let o = Observation {
                device: "aq-1",
                time: Some(t),
                property: "no2",
                value: &value,
                unit,
                kind,
                site: Some("hotel-de-ville"),
                commune: None,
            };
            let d = decode(Observation::list([o, o].into_iter()).as_bytes()).unwrap();
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            assert_eq!(d.records.len(), 2);
            let r = &d.records[0];
            assert_eq!((r.device.as_ref(), r.time, r.kind.as_deref()), ("aq-1", Some(t), kind));
            assert_eq!((r.site.as_deref(), r.commune.as_deref()), (Some("hotel-de-ville"), None));
            assert_eq!(r.fields[0].name, "no2");
            assert_eq!(r.fields[0].value, value);
            assert_eq!(r.fields[0].unit.as_deref(), unit);
        }
        // Without a time (a record refused before it was given one).
        let v = Value::F64(1.0);
        let o = Observation {
            time: None,
            ..Observation {
                device: "d",
                time: None,
                property: "pm10",
                value: &v,
                unit: None,
                kind: None,
                site: None,
                commune: None,
            }
        };
        assert_eq!(decode(o.to_json().as_bytes()).unwrap().records[0].time, None);
    }

    #[test]
    fn both_shapes_and_bad_items() {
        let body = br#"{"observations":[
            {"device":"aq-1","property":"no2","value":21.5,"unit":"ppb","time":"2026-01-01T01:00:00+01:00"},
            {"device":"aq-1","time":1767225600000,"values":{"o3":80,"pm10":12.5}},
            {"device":"aq-1","property":"no2"},
            {"property":"no2","value":1},
            42
        ]}"#;
        let d = decode(body).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[0].time, d.records[1].time);
        assert_eq!(d.records[1].fields.len(), 2);
        let errs: Vec<_> = d.errors.iter().map(|e| (e.line, e.reason.clone())).collect();
        assert_eq!(
            errs,
            vec![
                (3, "missing \"value\"".to_owned()),
                (4, "missing \"device\"".to_owned()),
                (5, "an observation must be a JSON object".to_owned()),
            ]
        );
    }
}
