//! ChirpStack v4 (LoRaWAN network server) integration events, as published on MQTT:
//! `application/{applicationId}/device/{devEui}/event/{up|status|join}`.
//!
//! An uplink becomes one record for the device (its DevEUI): the values ChirpStack decoded
//! (`object`) or, without a codec, `data` decoded with the device profile's byte layout or as
//! Cayenne LPP; plus the radio metadata the operator watches (`rssi` and `snr` of the best
//! gateway, `f_cnt`). `deviceInfo.tags` (`kind`, `site`, `commune`) place a new device. Status
//! events give `battery`; join events a `status` of `joined`.

pub mod layout;

use std::borrow::Cow;
use std::collections::HashMap;

use agora_model::{Timestamp, Value};
use base64::Engine as _;
use serde_json::Value as Json;

use crate::Refusal;
use crate::cayenne_lpp;
use crate::record::{Decoded, Field, LineError, Record};
pub use layout::{ByteField, ByteType};

/// A decoded ChirpStack event.
#[derive(Debug)]
pub struct Event {
    /// The event's type and ChirpStack's `deduplicationId` (`up/3ac7…`): the same uplink
    /// received twice has the same; a status event shares its uplink's `deduplicationId`, so the
    /// type is part of the key.
    pub dedup_id: Option<String>,
    /// The record (at most one).
    pub decoded: Decoded<'static>,
}

/// Byte layouts per device profile name, for payloads without a ChirpStack codec.
pub type Layouts = HashMap<String, Vec<ByteField>>;

fn s<'j>(v: &'j Json, k: &str) -> Option<&'j str> {
    v.get(k).and_then(Json::as_str)
}

/// Flatten a decoded `object` into fields (`{"air": {"pm10": 3}}` → `air_pm10`).
fn flatten(prefix: &str, v: &Json, out: &mut Vec<Field<'static>>, errors: &mut Vec<String>) {
    match v {
        Json::Object(o) => {
            for (k, x) in o {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}_{k}") };
                flatten(&name, x, out, errors);
            }
        }
        Json::Number(n) => {
            let value = match n.as_i64() {
                Some(i) => Value::I64(i),
                None => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
            };
            out.push(Field { name: Cow::Owned(prefix.to_owned()), value, unit: None });
        }
        Json::Bool(b) => out.push(Field {
            name: Cow::Owned(prefix.to_owned()),
            value: Value::Bool(*b),
            unit: None,
        }),
        Json::String(x) => out.push(Field {
            name: Cow::Owned(prefix.to_owned()),
            value: Value::Str(x.clone()),
            unit: None,
        }),
        Json::Null => {}
        Json::Array(_) => {
            errors.push(format!("{prefix}: arrays in the decoded object are not supported"))
        }
    }
}

/// Decode one event from its topic and JSON payload.
pub fn decode(topic: &str, payload: &[u8], layouts: &Layouts) -> Result<Event, Refusal> {
    let parts: Vec<&str> = topic.split('/').collect();
    let (topic_eui, event) = match parts.as_slice() {
        ["application", _, "device", eui, "event", ev] => (*eui, *ev),
        _ => {
            return Err(format!(
                "topic {topic:?} is not a ChirpStack event (application/+/device/+/event/+)"
            )
            .into());
        }
    };
    let doc: Json =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not valid JSON: {e}"))?;
    let info = doc.get("deviceInfo").unwrap_or(&Json::Null);
    let dev_eui = s(info, "devEui").unwrap_or(topic_eui).to_ascii_lowercase();
    if dev_eui.is_empty() {
        return Err("event names no devEui".into());
    }
    let tags = info.get("tags").unwrap_or(&Json::Null);
    let time = match s(&doc, "time") {
        Some(t) => Some(Timestamp::parse_rfc3339(t).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    match event {
        "up" => {
            match (doc.get("object"), s(&doc, "data")) {
                (Some(obj @ Json::Object(_)), _) => flatten("", obj, &mut fields, &mut errors),
                (_, Some(data)) if !data.is_empty() => 'payload: {
                    let bytes = match base64::engine::general_purpose::STANDARD.decode(data) {
                        Ok(b) => b,
                        Err(e) => {
                            errors.push(format!("data is not valid base64: {e}"));
                            break 'payload;
                        }
                    };
                    let profile = s(info, "deviceProfileName").unwrap_or("");
                    let decoded = match layouts.get(profile) {
                        Some(l) => layout::decode(l, &bytes),
                        None => cayenne_lpp::decode(&bytes).map_err(|e| {
                            Refusal(format!("{e} (no codec in ChirpStack and no byte layout for device profile {profile:?})"))
                        }),
                    };
                    match decoded {
                        Ok(f) => fields.extend(f),
                        Err(e) => errors.push(e.0),
                    }
                }
                _ => {}
            }
            let rx = doc.get("rxInfo").and_then(Json::as_array).map(Vec::as_slice).unwrap_or(&[]);
            let best = |k: &str| {
                rx.iter()
                    .filter_map(|g| g.get(k).and_then(Json::as_f64))
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
            };
            if let Some(r) = best("rssi") {
                fields.push(Field {
                    name: Cow::Borrowed("rssi"),
                    value: Value::F64(r),
                    unit: None,
                });
            }
            if let Some(r) = best("snr") {
                fields.push(Field { name: Cow::Borrowed("snr"), value: Value::F64(r), unit: None });
            }
            if let Some(f) = doc.get("fCnt").and_then(Json::as_i64) {
                fields.push(Field {
                    name: Cow::Borrowed("f_cnt"),
                    value: Value::I64(f),
                    unit: None,
                });
            }
            if !rx.is_empty() {
                fields.push(Field {
                    name: Cow::Borrowed("gateways"),
                    value: Value::I64(i64::try_from(rx.len()).unwrap_or(i64::MAX)),
                    unit: None,
                });
            }
        }
        "status" => {
            let unavailable =
                doc.get("batteryLevelUnavailable").and_then(Json::as_bool).unwrap_or(false);
            if let Some(b) = doc.get("batteryLevel").and_then(Json::as_f64)
                && !unavailable
            {
                fields.push(Field {
                    name: Cow::Borrowed("battery"),
                    value: Value::F64(b),
                    unit: None,
                });
            }
        }
        "join" => fields.push(Field {
            name: Cow::Borrowed("status"),
            value: Value::Str("joined".into()),
            unit: None,
        }),
        other => {
            return Err(format!(
                "ChirpStack event {other:?} is not handled (up, status and join are)"
            )
            .into());
        }
    }
    // A payload that cannot be decoded is refused alone: the radio metadata and status of the
    // uplink are stored, and the event is kept whole (it replays once a codec or layout exists).
    let mut decoded = Decoded::default();
    if !errors.is_empty() {
        decoded.errors.push(LineError::new(
            1,
            errors.join("; "),
            String::from_utf8_lossy(payload).into_owned(),
        ));
    }
    if !fields.is_empty() {
        let tag = |k: &str| s(tags, k).map(|v| Cow::Owned(v.to_owned()));
        decoded.records.push(Record {
            line: 1,
            device: Cow::Owned(dev_eui),
            kind: tag("kind").or(Some(Cow::Borrowed("lorawan"))),
            site: tag("site"),
            commune: tag("commune"),
            time,
            fields,
        });
    }
    Ok(Event { dedup_id: s(&doc, "deduplicationId").map(|id| format!("{event}/{id}")), decoded })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: &str = r#"{
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-01-01T00:00:00.000+00:00",
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Aix",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "air",
            "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "SDS011",
            "deviceName": "aq-torse-9", "devEui": "0101010101010101",
            "tags": {"kind": "air_quality", "site": "vallee-de-la-torse"}},
        "devAddr": "00189440", "adr": true, "dr": 1, "fCnt": 10, "fPort": 1, "confirmed": false,
        "data": "AWcA/w==",
        "object": {"pm10": 12.5, "pm25": 7.2, "meta": {"fw": "1.2"}},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -91, "snr": 7.5},
                   {"gatewayId": "0016c001f153a14d", "rssi": -60, "snr": 9.25}],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11}}}
    }"#;

    #[test]
    fn uplink_with_object_and_radio_metadata() {
        let e = decode(
            "application/17c8/device/0101010101010101/event/up",
            UP.as_bytes(),
            &Layouts::new(),
        )
        .unwrap();
        assert_eq!(e.dedup_id.as_deref(), Some("up/3ac7e3c4-4401-4b8d-9386-a5c902f9202d"));
        let r = &e.decoded.records[0];
        assert_eq!(r.device, "0101010101010101");
        assert_eq!(r.kind.as_deref(), Some("air_quality"));
        assert_eq!(r.site.as_deref(), Some("vallee-de-la-torse"));
        assert_eq!(r.time.unwrap().to_rfc3339(), "2026-01-01T00:00:00Z");
        let f: Vec<(&str, &Value)> = r.fields.iter().map(|f| (f.name.as_ref(), &f.value)).collect();
        assert_eq!(
            f,
            [
                ("meta_fw", &Value::Str("1.2".into())),
                ("pm10", &Value::F64(12.5)),
                ("pm25", &Value::F64(7.2)),
                ("rssi", &Value::F64(-60.0)),
                ("snr", &Value::F64(9.25)),
                ("f_cnt", &Value::I64(10)),
                ("gateways", &Value::I64(2))
            ]
        );
    }

    #[test]
    fn uplink_without_codec_uses_cayenne_lpp_or_a_layout() {
        let up = UP.replace(r#""object": {"pm10": 12.5, "pm25": 7.2, "meta": {"fw": "1.2"}},"#, "");
        let e = decode(
            "application/x/device/0101010101010101/event/up",
            up.as_bytes(),
            &Layouts::new(),
        )
        .unwrap();
        assert_eq!(e.decoded.records[0].fields[0].name, "temperature");
        assert_eq!(e.decoded.records[0].fields[0].value, Value::F64(25.5));
        let mut layouts = Layouts::new();
        layouts.insert(
            "SDS011".into(),
            vec![ByteField {
                offset: 2,
                ty: ByteType::U16be,
                scale: 0.1,
                property: "pm10".into(),
                unit: None,
            }],
        );
        let e = decode("application/x/device/0101010101010101/event/up", up.as_bytes(), &layouts)
            .unwrap();
        assert_eq!(e.decoded.records[0].fields[0].name, "pm10");
        assert_eq!(e.decoded.records[0].fields[0].value, Value::F64(25.5));
        let bad = up.replace("AWcA/w==", "AUIA");
        let e = decode(
            "application/x/device/0101010101010101/event/up",
            bad.as_bytes(),
            &Layouts::new(),
        )
        .unwrap();
        // The payload is refused alone; the radio metadata is kept.
        let err = &e.decoded.errors[0].reason;
        assert!(err.contains("unknown Cayenne LPP type 66"), "{err}");
        assert!(err.contains("SDS011"), "{err}");
        let kept: Vec<&str> = e.decoded.records[0].fields.iter().map(|f| f.name.as_ref()).collect();
        assert!(kept.contains(&"rssi") && kept.contains(&"f_cnt"), "{kept:?}");
    }

    #[test]
    fn status_join_and_bad_input() {
        let st = r#"{"deviceInfo": {"devEui": "0101010101010101"}, "margin": 7, "batteryLevel": 75.5, "batteryLevelUnavailable": false}"#;
        let e = decode(
            "application/x/device/0101010101010101/event/status",
            st.as_bytes(),
            &Layouts::new(),
        )
        .unwrap();
        assert_eq!(e.decoded.records[0].fields[0].value, Value::F64(75.5));
        let j = r#"{"deviceInfo": {"devEui": "0101010101010101"}, "devAddr": "00189440"}"#;
        let e = decode(
            "application/x/device/0101010101010101/event/join",
            j.as_bytes(),
            &Layouts::new(),
        )
        .unwrap();
        assert_eq!(e.decoded.records[0].fields[0].value, Value::Str("joined".into()));
        assert!(
            decode("application/x/device/01/event/up", b"{", &Layouts::new())
                .unwrap_err()
                .contains("JSON")
        );
        assert!(
            decode("devices/01/up", b"{}", &Layouts::new())
                .unwrap_err()
                .contains("not a ChirpStack event")
        );
        assert!(decode("application/x/device/01/event/ack", b"{}", &Layouts::new()).is_err());
        let bad = UP
            .replace("AWcA/w==", "!!!")
            .replace(r#""object": {"pm10": 12.5, "pm25": 7.2, "meta": {"fw": "1.2"}},"#, "");
        let e =
            decode("application/x/device/01/event/up", bad.as_bytes(), &Layouts::new()).unwrap();
        assert!(e.decoded.errors[0].reason.contains("base64"), "{:?}", e.decoded.errors);
        assert!(!e.decoded.records.is_empty(), "the radio metadata is kept");
    }
}
