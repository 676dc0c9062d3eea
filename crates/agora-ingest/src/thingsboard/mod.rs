//! The ThingsBoard device API, so devices and gateways flashed for ThingsBoard connect unchanged:
//! telemetry `{"temperature": 22.5}`, `{"ts": 1451649600512, "values": {…}}` or an array of those
//! (topic `v1/devices/me/telemetry`, the device known from its access token), and gateway
//! telemetry `{"Device A": [{"ts": …, "values": {…}}]}` (topic `v1/gateway/telemetry`).
//!
//! Gateway device names are people's names ("Device A"); they become identifiers by lower-casing
//! and replacing characters identifiers cannot hold with `-` ("device-a").

use std::borrow::Cow;

use serde_json::Value as Json;

use crate::Refusal;
use crate::json::{json_time, json_value};
use crate::record::{Decoded, Field, LineError, Record};

/// The identifier agora uses for a ThingsBoard device name.
pub fn device_id_of(name: &str) -> String {
    let id: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    id.trim_matches('-').to_owned()
}

fn entry(device: &str, v: &Json, line: u32) -> Result<Record<'static>, Refusal> {
    let Json::Object(o) = v else {
        return Err("telemetry must be a JSON object".into());
    };
    let (time, values) = match (o.get("ts"), o.get("values")) {
        (Some(ts), Some(Json::Object(vals))) => (Some(json_time(ts)?), vals),
        (None, Some(Json::Object(vals))) => (None, vals),
        (_, Some(other)) => return Err(format!("values must be an object, got {other}").into()),
        (Some(_), None) => return Err("\"ts\" without \"values\"".into()),
        (None, None) => (None, o),
    };
    if values.is_empty() {
        return Err("no values".into());
    }
    let mut fields = Vec::with_capacity(values.len());
    for (k, x) in values {
        fields.push(Field {
            name: Cow::Owned(k.clone()),
            value: json_value(x).map_err(|e| format!("{k}: {e}"))?,
            unit: None,
        });
    }
    Ok(Record {
        line,
        device: Cow::Owned(device.to_owned()),
        kind: None,
        site: None,
        commune: None,
        time,
        fields,
    })
}

/// Decode device telemetry for `device` (the device an access token is bound to).
pub fn decode_device(device: &str, payload: &[u8]) -> Result<Decoded<'static>, Refusal> {
    let doc: Json =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not valid JSON: {e}"))?;
    // ThingsBoard's HTTP device SDK checks its token by posting `{}`: nothing to store, accepted.
    if doc.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(Decoded::default());
    }
    let items = match doc {
        Json::Array(a) => a,
        other => vec![other],
    };
    let mut out = Decoded::default();
    for (i, v) in items.iter().enumerate() {
        let line = (i + 1) as u32;
        match entry(device, v, line) {
            Ok(r) => out.records.push(r),
            Err(reason) => out.errors.push(LineError {
                line,
                reason: reason.0,
                raw: v.to_string(),
                raw_is_json: false,
            }),
        }
    }
    Ok(out)
}

/// Decode gateway telemetry: several devices, each with a list of timestamped values.
pub fn decode_gateway(payload: &[u8]) -> Result<Decoded<'static>, Refusal> {
    let doc: Json =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not valid JSON: {e}"))?;
    let Json::Object(devices) = doc else {
        return Err("gateway telemetry must be an object of device names".into());
    };
    let mut out = Decoded::default();
    let mut line = 0u32;
    for (name, list) in &devices {
        let id = device_id_of(name);
        let items: Vec<&Json> = match list {
            Json::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for v in items {
            line += 1;
            match entry(&id, v, line) {
                Ok(r) => out.records.push(r),
                Err(reason) => out.errors.push(LineError {
                    line,
                    reason: format!("device {name:?}: {reason}"),
                    raw: v.to_string(),
                    raw_is_json: false,
                }),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use agora_model::Value;

    use super::*;

    #[test]
    fn the_three_device_payload_forms() {
        let d = decode_device("lamp-1", br#"{"temperature": 22.5, "on": true}"#).unwrap();
        assert_eq!(d.records[0].fields.len(), 2);
        assert!(d.records[0].time.is_none());
        let d =
            decode_device("lamp-1", br#"{"ts": 1451649600512, "values": {"power": 41}}"#).unwrap();
        assert_eq!(d.records[0].time.unwrap().as_millis(), 1_451_649_600_512);
        assert_eq!(d.records[0].fields[0].value, Value::I64(41));
        let d = decode_device("lamp-1", br#"[{"ts": 1451649600512, "values": {"power": 41}}, {"ts": 1451649601512, "values": {"power": 42}}, 7]"#).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.errors[0].line, 3);
        assert!(decode_device("lamp-1", b"[").is_err());
    }

    #[test]
    fn gateway_payload() {
        let d = decode_gateway(br#"{"Device A": [{"ts": 1483228800000, "values": {"temperature": 42, "humidity": 80}}], "Bin #12": [{"ts": 1483228800000, "values": {"fillingLevel": 0.8}}, {"ts": 1, "values": []}]}"#).unwrap();
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[0].device, "bin--12");
        assert_eq!(d.records[1].device, "device-a");
        assert_eq!(d.errors.len(), 1);
        assert!(d.errors[0].reason.contains("Bin #12"));
        assert!(decode_gateway(b"[]").is_err());
    }
}
