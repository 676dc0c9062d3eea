//! The ThingsBoard device API, so devices and gateways flashed for ThingsBoard connect unchanged:
//! telemetry `{"temperature": 22.5}`, `{"ts": 1451649600512, "values": {…}}` or an array of those
//! (topic `v1/devices/me/telemetry`, the device known from its access token), and gateway
//! telemetry `{"Device A": [{"ts": …, "values": {…}}]}` (topic `v1/gateway/telemetry`).
//!
//! Gateway device names are people's names ("Device A"); they become identifiers by lower-casing
//! and replacing characters identifiers cannot hold with `-` ("device-a").
//!
//! The rest of the device API — attributes, RPC, gateway connect — is read here too (the payloads
//! of each topic, as ThingsBoard documents them and its SDK sends them); [`hub`] carries messages
//! back to devices.

pub mod hub;

use std::borrow::Cow;

use serde_json::{Map, Value as Json, json};

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

/// Longest attribute key accepted, in bytes.
pub const MAX_ATTRIBUTE_KEY: usize = 256;
/// Largest attribute value accepted, in bytes of JSON: a device's attributes of one scope
/// ([`agora_store::catalog::MAX_ATTRIBUTES`] of them) fit in about 1 MiB.
pub const MAX_ATTRIBUTE_VALUE: usize = 4 << 10;

fn parse_json(payload: &[u8]) -> Result<Json, Refusal> {
    serde_json::from_slice(payload).map_err(|e| format!("payload is not valid JSON: {e}").into())
}

/// Check attributes a device reports or an operator sets: an object of bounded keys and values.
pub fn check_attributes(values: &Map<String, Json>) -> Result<(), Refusal> {
    let max = agora_store::catalog::MAX_ATTRIBUTES;
    if values.len() > max {
        return Err(format!("{} attributes at once: at most {max}", values.len()).into());
    }
    for (k, v) in values {
        if k.is_empty() || k.len() > MAX_ATTRIBUTE_KEY {
            return Err(
                format!("attribute key {k:?} must be 1 to {MAX_ATTRIBUTE_KEY} bytes").into()
            );
        }
        let size = v.to_string().len();
        if size > MAX_ATTRIBUTE_VALUE {
            return Err(format!(
                "attribute {k:?} is {size} bytes of JSON, more than {MAX_ATTRIBUTE_VALUE}"
            )
            .into());
        }
    }
    Ok(())
}

/// Client attributes a device publishes: `{"model": "X1", "firmware": "1.2"}`.
pub fn decode_attributes(payload: &[u8]) -> Result<Map<String, Json>, Refusal> {
    match parse_json(payload)? {
        Json::Object(o) => {
            check_attributes(&o)?;
            Ok(o)
        }
        other => Err(format!("attributes must be a JSON object, got {}", kind_of(&other)).into()),
    }
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Which attributes a device asks for; `None` in a scope means "all of them" only when no scope
/// names keys (ThingsBoard answers everything to a request naming none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributeRequest {
    /// Client attribute keys asked for.
    pub client: Option<Vec<String>>,
    /// Shared attribute keys asked for.
    pub shared: Option<Vec<String>>,
}

/// Keys written `"a,b"` (the documented form) or `["a", "b"]`.
fn keys(v: Option<&Json>, what: &str) -> Result<Option<Vec<String>>, Refusal> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(
            s.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect(),
        )),
        Some(Json::Array(a)) => a
            .iter()
            .map(|k| k.as_str().map(str::to_owned).ok_or_else(|| format!("{what} must be strings")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(Refusal::from),
        Some(other) => Err(format!(
            "{what} must be a comma-separated string or an array, got {}",
            kind_of(other)
        )
        .into()),
    }
}

/// A device's attribute request: `{"clientKeys": "a,b", "sharedKeys": "c"}` (or `{}` for all).
pub fn decode_attribute_request(payload: &[u8]) -> Result<AttributeRequest, Refusal> {
    let doc =
        if payload.iter().all(u8::is_ascii_whitespace) { json!({}) } else { parse_json(payload)? };
    let Json::Object(o) = doc else {
        return Err("an attribute request must be a JSON object".into());
    };
    Ok(AttributeRequest {
        client: keys(o.get("clientKeys"), "clientKeys")?,
        shared: keys(o.get("sharedKeys"), "sharedKeys")?,
    })
}

/// The answer to an attribute request: `{"client": {...}, "shared": {...}}`, a scope left out
/// when nothing in it was found (as ThingsBoard answers).
pub fn attribute_response(
    attrs: &agora_store::catalog::Attributes,
    req: &AttributeRequest,
) -> Json {
    let everything = req.client.is_none() && req.shared.is_none();
    let pick = |all: &Map<String, Json>, wanted: &Option<Vec<String>>| -> Map<String, Json> {
        match wanted {
            None if everything => all.clone(),
            None => Map::new(),
            Some(keys) => {
                keys.iter().filter_map(|k| all.get(k).map(|v| (k.clone(), v.clone()))).collect()
            }
        }
    };
    let mut out = Map::new();
    let client = pick(&attrs.client, &req.client);
    if !client.is_empty() {
        out.insert("client".into(), Json::Object(client));
    }
    let shared = pick(&attrs.shared, &req.shared);
    if !shared.is_empty() {
        out.insert("shared".into(), Json::Object(shared));
    }
    Json::Object(out)
}

/// An RPC request (client-side, from a device): `{"method": "getCurrentTime", "params": {}}`.
pub fn decode_rpc_request(payload: &[u8]) -> Result<(String, Json), Refusal> {
    let Json::Object(o) = parse_json(payload)? else {
        return Err("an RPC request must be a JSON object".into());
    };
    let method = o
        .get("method")
        .and_then(Json::as_str)
        .ok_or("an RPC request needs a \"method\" string")?
        .to_owned();
    Ok((method, o.get("params").cloned().unwrap_or(Json::Null)))
}

/// What agora answers to a device's own RPC calls: `getSessionLimits` (what ThingsBoard's SDK
/// asks on every connection: the largest payload, messages in flight, and no rate limits of its
/// own — agora's limits are per connection and per token) and `getCurrentTime` (milliseconds
/// since the epoch). Another method gets `{"error": …}`.
pub fn client_rpc_answer(method: &str, now_ms: i64, max_payload: usize, in_flight: u16) -> Json {
    match method {
        "getSessionLimits" => {
            let none =
                json!({"messages": null, "telemetryMessages": null, "telemetryDataPoints": null});
            json!({
                "maxPayloadSize": max_payload,
                "maxInflightMessages": in_flight,
                "rateLimits": none,
                "gatewayRateLimits": none,
            })
        }
        "getCurrentTime" => json!({"time": now_ms}),
        other => json!({
            "error": format!("unknown method {other:?}: agora answers getSessionLimits and getCurrentTime")
        }),
    }
}

/// A gateway's `connect` or `disconnect`: the device's name and, for `connect`, its type
/// (ThingsBoard's device profile; `default` when not given).
pub fn decode_gateway_device(payload: &[u8]) -> Result<(String, String), Refusal> {
    let Json::Object(o) = parse_json(payload)? else {
        return Err("expected {\"device\": name, \"type\": type}".into());
    };
    let name = o
        .get("device")
        .and_then(Json::as_str)
        .filter(|n| !device_id_of(n).is_empty())
        .ok_or("a \"device\" name is needed")?;
    let kind = o.get("type").and_then(Json::as_str).unwrap_or("default");
    Ok((name.to_owned(), kind.to_owned()))
}

/// A device's name (as its gateway knows it) and attributes.
pub type DeviceAttributes = (String, Map<String, Json>);

/// Gateway attributes: `{"Device A": {"model": "X1"}, "Device B": {...}}`.
pub fn decode_gateway_attributes(payload: &[u8]) -> Result<Vec<DeviceAttributes>, Refusal> {
    let Json::Object(o) = parse_json(payload)? else {
        return Err("gateway attributes must be an object of device names".into());
    };
    o.into_iter()
        .map(|(name, v)| match v {
            Json::Object(a) => {
                check_attributes(&a).map_err(|e| format!("device {name:?}: {e}"))?;
                Ok((name, a))
            }
            other => Err(format!(
                "device {name:?}: attributes must be an object, got {}",
                kind_of(&other)
            )
            .into()),
        })
        .collect()
}

/// A gateway's attribute request, in the form ThingsBoard's server reads and its SDK sends
/// (`{"id": 1, "device": "Sensor A", "client": false, "keys": ["a", "b"]}` or `"key": "a"`), and
/// the form of the current documentation (`"client": ["a"], "shared": ["b"]`).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayAttributeRequest {
    /// The request id, echoed in the answer.
    pub id: Json,
    /// The device's name.
    pub device: String,
    /// Keys asked for.
    pub keys: AttributeRequest,
    /// Whether one key was asked (answered with `"value"`, several with `"values"`).
    pub single: bool,
}

/// Read a gateway's attribute request (`v1/gateway/attributes/request`).
pub fn decode_gateway_attribute_request(
    payload: &[u8],
) -> Result<GatewayAttributeRequest, Refusal> {
    let Json::Object(o) = parse_json(payload)? else {
        return Err("a gateway attribute request must be a JSON object".into());
    };
    let id = o.get("id").filter(|v| v.is_number()).cloned().ok_or("a numeric \"id\" is needed")?;
    let device = o.get("device").and_then(Json::as_str).ok_or("a \"device\" name is needed")?;
    let (keys_, single) = match (o.get("client"), o.get("key"), o.get("keys")) {
        (Some(Json::Bool(client)), key, list) => {
            // ThingsBoard answers one key with `value`, several with `values`.
            let names = match (key, list) {
                (Some(Json::String(k)), _) => vec![k.clone()],
                (_, Some(l)) => keys(Some(l), "keys")?.unwrap_or_default(),
                _ => return Err("a \"key\" or \"keys\" is needed".into()),
            };
            let single = names.len() == 1;
            let req = if *client {
                AttributeRequest { client: Some(names), shared: None }
            } else {
                AttributeRequest { client: None, shared: Some(names) }
            };
            (req, single)
        }
        (client, _, _) => (
            AttributeRequest {
                client: keys(client, "client")?,
                shared: keys(o.get("shared"), "shared")?,
            },
            false,
        ),
    };
    Ok(GatewayAttributeRequest { id, device: device.to_owned(), keys: keys_, single })
}

/// The answer to a gateway's attribute request: `{"id", "device", "value"}` for one key asked,
/// else `{"id", "device", "values": {...}}`; nothing found leaves both out.
pub fn gateway_attribute_response(
    req: &GatewayAttributeRequest,
    attrs: &agora_store::catalog::Attributes,
) -> Json {
    let mut found = Map::new();
    for (all, wanted) in [(&attrs.client, &req.keys.client), (&attrs.shared, &req.keys.shared)] {
        for k in wanted.iter().flatten() {
            if let Some(v) = all.get(k) {
                found.insert(k.clone(), v.clone());
            }
        }
    }
    let mut out = json!({"id": req.id, "device": req.device});
    if req.single {
        if let Some(v) = found.into_iter().next().map(|(_, v)| v) {
            out["value"] = v;
        }
    } else if !found.is_empty() {
        out["values"] = Json::Object(found);
    }
    out
}

/// A gateway's answer to a server-side RPC: `{"device": "Sensor A", "id": 7, "data": {...}}`.
pub fn decode_gateway_rpc_reply(payload: &[u8]) -> Result<(String, u64, Json), Refusal> {
    let Json::Object(o) = parse_json(payload)? else {
        return Err("a gateway RPC reply must be a JSON object".into());
    };
    let device = o.get("device").and_then(Json::as_str).ok_or("a \"device\" name is needed")?;
    let id = o.get("id").and_then(Json::as_u64).ok_or("a numeric \"id\" is needed")?;
    Ok((device.to_owned(), id, o.get("data").cloned().unwrap_or(Json::Null)))
}

/// How a server-side RPC is written for a device connected directly: its body (the id goes in
/// the topic, `v1/devices/me/rpc/request/{id}`).
pub fn rpc_body(method: &str, params: &Json) -> Json {
    json!({"method": method, "params": params})
}

/// The same for a device behind a gateway (`v1/gateway/rpc`).
pub fn gateway_rpc_body(name: &str, id: u64, method: &str, params: &Json) -> Json {
    json!({"device": name, "data": {"id": id, "method": method, "params": params}})
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

    #[test]
    fn attribute_requests_in_every_documented_form() {
        use agora_store::catalog::Attributes;
        let mut attrs = Attributes::default();
        attrs.client.insert("model".into(), json!("X1"));
        attrs.client.insert("serial".into(), json!("SN-1"));
        attrs.shared.insert("targetTemp".into(), json!(21));
        let req = decode_attribute_request(
            br#"{"clientKeys": "model, serial", "sharedKeys": "targetTemp,absent"}"#,
        )
        .unwrap();
        assert_eq!(
            attribute_response(&attrs, &req),
            json!({"client": {"model": "X1", "serial": "SN-1"}, "shared": {"targetTemp": 21}})
        );
        // Only client keys asked: no shared section; nothing asked: everything; nothing found: {}.
        let req = decode_attribute_request(br#"{"clientKeys": ["model"]}"#).unwrap();
        assert_eq!(attribute_response(&attrs, &req), json!({"client": {"model": "X1"}}));
        let req = decode_attribute_request(b"").unwrap();
        assert_eq!(attribute_response(&attrs, &req)["shared"], json!({"targetTemp": 21}));
        let req = decode_attribute_request(br#"{"sharedKeys": "nope"}"#).unwrap();
        assert_eq!(attribute_response(&attrs, &req), json!({}));
        assert!(
            decode_attribute_request(br#"{"clientKeys": 3}"#).unwrap_err().0.contains("clientKeys")
        );
        // Gateway: ThingsBoard's server form (client flag, key or keys) and the docs' arrays.
        let one = decode_gateway_attribute_request(
            br#"{"id": 1, "device": "Sensor A", "client": true, "key": "model"}"#,
        )
        .unwrap();
        assert_eq!(
            gateway_attribute_response(&one, &attrs),
            json!({"id": 1, "device": "Sensor A", "value": "X1"})
        );
        let one_of_keys = decode_gateway_attribute_request(
            br#"{"id": 2, "device": "Sensor A", "client": false, "keys": ["targetTemp"]}"#,
        )
        .unwrap();
        assert_eq!(gateway_attribute_response(&one_of_keys, &attrs)["value"], json!(21));
        let many = decode_gateway_attribute_request(
            br#"{"id": 3, "device": "Sensor A", "client": ["model"], "shared": ["targetTemp"]}"#,
        )
        .unwrap();
        assert_eq!(
            gateway_attribute_response(&many, &attrs)["values"],
            json!({"model": "X1", "targetTemp": 21})
        );
        let none = decode_gateway_attribute_request(
            br#"{"id": 4, "device": "Sensor A", "client": true, "keys": ["absent", "gone"]}"#,
        )
        .unwrap();
        assert_eq!(
            gateway_attribute_response(&none, &attrs),
            json!({"id": 4, "device": "Sensor A"})
        );
        assert!(
            decode_gateway_attribute_request(
                br#"{"device": "Sensor A", "client": true, "key": "a"}"#
            )
            .unwrap_err()
            .0
            .contains("id")
        );
    }

    #[test]
    fn attributes_rpc_and_gateway_payloads() {
        assert_eq!(decode_attributes(br#"{"a": 1}"#).unwrap()["a"], json!(1));
        assert!(decode_attributes(b"[1]").unwrap_err().0.contains("an array"));
        let big = format!(r#"{{"a": "{}"}}"#, "x".repeat(MAX_ATTRIBUTE_VALUE));
        assert!(decode_attributes(big.as_bytes()).unwrap_err().0.contains("more than"));
        assert_eq!(
            decode_rpc_request(br#"{"method": "getCurrentTime", "params": {}}"#).unwrap(),
            ("getCurrentTime".to_owned(), json!({}))
        );
        assert!(decode_rpc_request(br#"{"params": {}}"#).is_err());
        assert_eq!(client_rpc_answer("getCurrentTime", 5, 1, 1), json!({"time": 5}));
        let limits = client_rpc_answer("getSessionLimits", 5, 65536, 100);
        assert_eq!(limits["maxPayloadSize"], json!(65536));
        assert_eq!(limits["rateLimits"]["messages"], Json::Null);
        assert!(client_rpc_answer("reboot", 5, 1, 1)["error"].as_str().unwrap().contains("reboot"));
        assert_eq!(
            decode_gateway_device(br#"{"device": "Sensor A", "type": "thermometer"}"#).unwrap(),
            ("Sensor A".to_owned(), "thermometer".to_owned())
        );
        assert_eq!(decode_gateway_device(br#"{"device": "Sensor A"}"#).unwrap().1, "default");
        assert!(decode_gateway_device(br#"{"device": "!!"}"#).is_err());
        let a =
            decode_gateway_attributes(br#"{"Sensor A": {"fw": "1.0"}, "B": {"x": 1}}"#).unwrap();
        assert_eq!(a.len(), 2);
        assert!(
            decode_gateway_attributes(br#"{"Sensor A": 3}"#).unwrap_err().0.contains("Sensor A")
        );
        assert_eq!(
            decode_gateway_rpc_reply(br#"{"device": "Sensor A", "id": 7, "data": {"ok": true}}"#)
                .unwrap(),
            ("Sensor A".to_owned(), 7, json!({"ok": true}))
        );
        assert!(decode_gateway_rpc_reply(br#"{"device": "Sensor A", "id": "7"}"#).is_err());
    }
}
