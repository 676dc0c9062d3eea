//! SenML (RFC 8428) JSON: `[{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1.767e9,"n":"temperature","u":"Cel","v":21.5},…]`.
//!
//! The device is the base name (without its trailing `:`, `/` or `;`); the property is the record
//! name. Without a base name, the full name is split at its last separator. Times below 2^28 are
//! relative to now, as the RFC says; `bv` is added to `v`; `bu` is the default unit.

use std::borrow::Cow;

use agora_model::{Timestamp, Value};
use serde_json::Value as Json;

use crate::Refusal;
use crate::record::{Decoded, Field, LineError, Record};

/// Decode a SenML pack. `now` resolves relative times.
pub fn decode(body: &[u8], now: Timestamp) -> Result<Decoded<'static>, Refusal> {
    let pack: Json =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let Json::Array(records) = pack else {
        return Err("a SenML pack must be a JSON array of records".into());
    };
    let mut out = Decoded::default();
    let mut base = Base::default();
    for (i, rec) in records.iter().enumerate() {
        let line = (i + 1) as u32;
        match decode_record(rec, &mut base, now) {
            Ok(r) => out.records.push(Record { line, ..r }),
            Err(reason) => out.errors.push(LineError {
                line,
                reason: reason.0,
                raw: rec.to_string(),
                raw_is_json: false,
            }),
        }
    }
    Ok(out)
}

#[derive(Default)]
struct Base {
    name: String,
    time: f64,
    unit: Option<String>,
    value: f64,
}

fn num(o: &serde_json::Map<String, Json>, k: &str) -> Result<Option<f64>, Refusal> {
    match o.get(k) {
        None => Ok(None),
        Some(Json::Number(n)) => {
            n.as_f64().map(Some).ok_or_else(|| Refusal(format!("{k} is not a number")))
        }
        Some(other) => Err(format!("{k} must be a number, got {other}").into()),
    }
}

fn string<'j>(o: &'j serde_json::Map<String, Json>, k: &str) -> Result<Option<&'j str>, Refusal> {
    match o.get(k) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{k} must be a string, got {other}").into()),
    }
}

fn decode_record(rec: &Json, base: &mut Base, now: Timestamp) -> Result<Record<'static>, Refusal> {
    let Json::Object(o) = rec else {
        return Err("a SenML record must be a JSON object".into());
    };
    if let Some(v) = num(o, "bver")?
        && v > 10.0
    {
        return Err(format!("unsupported SenML version {v}").into());
    }
    if let Some(bn) = string(o, "bn")? {
        base.name = bn.to_owned();
    }
    if let Some(bt) = num(o, "bt")? {
        base.time = bt;
    }
    if let Some(bu) = string(o, "bu")? {
        base.unit = Some(bu.to_owned());
    }
    if let Some(bv) = num(o, "bv")? {
        base.value = bv;
    }
    let n = string(o, "n")?.unwrap_or("");
    let full = format!("{}{}", base.name, n);
    if full.is_empty() {
        return Err("record has no name (n) and no base name (bn)".into());
    }
    let (device, property) = if !base.name.is_empty() && !n.is_empty() {
        (base.name.trim_end_matches([':', '/', ';']).to_owned(), n.to_owned())
    } else {
        let cut = full.rfind([':', '/', ';']).ok_or_else(|| {
            format!("name {full:?} does not say which device: use bn for the device and n for the property")
        })?;
        (full[..cut].to_owned(), full[cut + 1..].to_owned())
    };
    let value = if let Some(v) = num(o, "v")? {
        Value::F64(v + base.value)
    } else if let Some(vs) = string(o, "vs")? {
        Value::Str(vs.to_owned())
    } else if let Some(vb) = o.get("vb") {
        Value::Bool(vb.as_bool().ok_or_else(|| format!("vb must be a boolean, got {vb}"))?)
    } else if o.contains_key("vd") || o.contains_key("s") {
        return Err("data (vd) and sum (s) values are not supported".into());
    } else if !base.value.eq(&0.0) && o.contains_key("n") {
        Value::F64(base.value)
    } else {
        return Err(format!("record {full:?} has no value (v, vs or vb)").into());
    };
    let t = base.time + num(o, "t")?.unwrap_or(0.0);
    let time = if t == 0.0 {
        None
    } else if t.abs() < 268_435_456.0 {
        Some(now.saturating_add_nanos((t * 1e9) as i64))
    } else {
        Some(Timestamp::from_secs_f64(t).ok_or_else(|| format!("time {t} is out of range"))?)
    };
    let unit = string(o, "u")?.map(str::to_owned).or_else(|| base.unit.clone());
    Ok(Record {
        line: 0,
        device: Cow::Owned(device),
        kind: None,
        site: None,
        commune: None,
        time,
        fields: vec![Field { name: Cow::Owned(property), value, unit: unit.map(Cow::Owned) }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example_with_base_fields() {
        let now = Timestamp::from_secs(1_767_225_600).unwrap();
        let body = br#"[
            {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.767225600e9,"bu":"Cel","n":"temperature","v":23.1},
            {"n":"relative_humidity","u":"%RH","v":41,"t":60},
            {"n":"lamp_status","vs":"defectiveLamp"},
            {"n":"broken"},
            {"bn":"","n":"aq-9/pm10","v":12.5,"t":-5}
        ]"#;
        let d = decode(body, now).unwrap();
        assert_eq!(d.records.len(), 4, "{:?}", d.errors);
        let r = &d.records[0];
        assert_eq!(r.device, "urn:dev:ow:10e2073a01080063");
        assert_eq!(r.fields[0].unit.as_deref(), Some("Cel"));
        assert_eq!(d.records[1].time.unwrap().as_nanos(), now.as_nanos() + 60_000_000_000);
        assert_eq!(d.records[1].fields[0].unit.as_deref(), Some("%RH"));
        assert_eq!(d.records[2].fields[0].value, Value::Str("defectiveLamp".into()));
        assert_eq!(d.errors.len(), 1);
        assert_eq!(d.errors[0].line, 4);
        assert_eq!(d.records[3].device, "aq-9");
        assert_eq!(d.records[3].time.unwrap().as_nanos(), now.as_nanos() - 5_000_000_000);
    }

    #[test]
    fn not_a_pack() {
        assert!(decode(b"{}", Timestamp::EPOCH).unwrap_err().contains("array"));
        assert!(decode(b"[{", Timestamp::EPOCH).unwrap_err().contains("JSON"));
    }
}
