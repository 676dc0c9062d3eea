//! Sensor.Community (ex luftdaten.info) citizen air sensors, as their firmware pushes to an API:
//! headers `X-Sensor: esp8266-<chipid>` and `X-Pin: 1` (SDS011: `P1` = PM10, `P2` = PM2.5) or
//! `X-Pin: 11` (BME280: `temperature`, `humidity`, `pressure` in Pa), body
//! `{"software_version": "…", "sensordatavalues": [{"value_type": "P1", "value": "12.3"}, …]}`.
//!
//! The firmware's "custom API" sends every sensor in one body with prefixed value types
//! (`SDS_P1`, `BME280_temperature`); prefixes are removed. Its diagnostics (`samples`,
//! `min_micro`, `max_micro`, `interval`) describe the firmware, not the air, and are ignored on
//! purpose; `signal` (Wi-Fi strength) is kept as `rssi`.

use std::borrow::Cow;

use agora_model::Value;
use serde_json::Value as Json;

use crate::Refusal;
use crate::record::{Decoded, Field, LineError, Record};

/// Value types that describe the firmware's own timing, not a measurement.
const DIAGNOSTICS: &[&str] = &["samples", "min_micro", "max_micro", "interval"];

/// Sensor prefixes of the custom API.
const PREFIXES: &[&str] = &[
    "SDS_", "SDS011_", "BME280_", "BMP280_", "BMP_", "DHT_", "SHT3X_", "SPS30_", "PMS_", "HPM_",
    "NPM_", "HTU21D_", "DS18B20_",
];

/// Decode one push. `sensor` is the `X-Sensor` header, `pin` the `X-Pin` header if any.
pub fn decode(sensor: &str, pin: Option<&str>, body: &[u8]) -> Result<Decoded<'static>, Refusal> {
    let sensor = sensor.trim();
    if sensor.is_empty() {
        return Err("missing X-Sensor header (esp8266-<chipid>)".into());
    }
    if let Some(p) = pin
        && !matches!(p.trim(), "1" | "3" | "5" | "7" | "9" | "11" | "13" | "15" | "17")
    {
        return Err(format!("unknown X-Pin {p:?}").into());
    }
    let doc: Json =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let values = doc
        .get("sensordatavalues")
        .and_then(Json::as_array)
        .ok_or("missing \"sensordatavalues\" array")?;
    let mut out = Decoded::default();
    let mut fields = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let line = (i + 1) as u32;
        match field(v) {
            Ok(Some(f)) => fields.push(f),
            Ok(None) => {}
            Err(reason) => out.errors.push(LineError {
                line,
                reason: reason.0,
                raw: v.to_string(),
                raw_is_json: false,
            }),
        }
    }
    if !fields.is_empty() {
        out.records.push(Record {
            line: 1,
            device: Cow::Owned(sensor.to_owned()),
            kind: Some(Cow::Borrowed(match pin.map(str::trim) {
                Some("11") | Some("9") | Some("7") => "weather",
                _ => "air_quality",
            })),
            site: None,
            commune: None,
            time: None,
            fields,
        });
    }
    Ok(out)
}

fn field(v: &Json) -> Result<Option<Field<'static>>, Refusal> {
    let vt = v.get("value_type").and_then(Json::as_str).ok_or("missing value_type")?;
    let raw = v.get("value").ok_or_else(|| format!("{vt}: missing value"))?;
    let mut name = vt;
    for p in PREFIXES {
        if let Some(rest) = vt.strip_prefix(p) {
            name = rest;
            break;
        }
    }
    if DIAGNOSTICS.contains(&name) {
        return Ok(None);
    }
    let number = match raw {
        Json::String(s) => {
            s.trim().parse::<f64>().map_err(|_| format!("{vt}: value {s:?} is not a number"))?
        }
        Json::Number(n) => n.as_f64().ok_or_else(|| format!("{vt}: value {n} is out of range"))?,
        other => return Err(format!("{vt}: value must be a number, got {other}").into()),
    };
    let (property, unit) = match name {
        "P1" => ("pm10", None),
        "P2" => ("pm2_5", None),
        "P0" => ("pm1", None),
        "temperature" => ("temperature", Some("Cel")),
        "humidity" => ("relative_humidity", Some("%")),
        "pressure" => ("pressure", Some("Pa")),
        "pressure_at_sealevel" => return Ok(None),
        "signal" => ("rssi", None),
        "noise_LAeq" => ("laeq", None),
        "noise_LA_min" => ("lamin", None),
        "noise_LA_max" => ("lamax", None),
        other => return Err(format!("unknown value_type {other:?}").into()),
    };
    Ok(Some(Field {
        name: Cow::Borrowed(property),
        value: Value::F64(number),
        unit: unit.map(Cow::Borrowed),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sds011_and_bme280_pushes() {
        let body = br#"{"software_version":"NRZ-2020-133","sensordatavalues":[{"value_type":"P1","value":"12.30"},{"value_type":"P2","value":"7.85"}]}"#;
        let d = decode("esp8266-1234567", Some("1"), body).unwrap();
        let f = &d.records[0].fields;
        assert_eq!((f[0].name.as_ref(), &f[0].value), ("pm10", &Value::F64(12.3)));
        assert_eq!((f[1].name.as_ref(), &f[1].value), ("pm2_5", &Value::F64(7.85)));
        assert_eq!(d.records[0].kind.as_deref(), Some("air_quality"));
        let body = br#"{"sensordatavalues":[{"value_type":"temperature","value":"21.4"},{"value_type":"humidity","value":"48.1"},{"value_type":"pressure","value":"101325.00"}]}"#;
        let d = decode("esp8266-1234567", Some("11"), body).unwrap();
        assert_eq!(d.records[0].fields[2].unit.as_deref(), Some("Pa"));
        assert_eq!(d.records[0].kind.as_deref(), Some("weather"));
    }

    #[test]
    fn custom_api_prefixes_diagnostics_and_errors() {
        let body = br#"{"sensordatavalues":[{"value_type":"SDS_P1","value":"5"},{"value_type":"BME280_temperature","value":"19.5"},{"value_type":"samples","value":"880000"},{"value_type":"signal","value":"-71"},{"value_type":"co2_ppm","value":"400"},{"value_type":"P2","value":"n/a"}]}"#;
        let d = decode("esp32-77", None, body).unwrap();
        let names: Vec<&str> = d.records[0].fields.iter().map(|f| f.name.as_ref()).collect();
        assert_eq!(names, ["pm10", "temperature", "rssi"]);
        let errs: Vec<u32> = d.errors.iter().map(|e| e.line).collect();
        assert_eq!(errs, [5, 6]);
        assert!(d.errors[1].reason.contains("\"n/a\""));
        assert!(decode("", Some("1"), body).is_err());
        assert!(decode("esp8266-1", Some("99"), body).is_err());
        assert!(decode("esp8266-1", Some("1"), b"{}").unwrap_err().contains("sensordatavalues"));
    }
}
