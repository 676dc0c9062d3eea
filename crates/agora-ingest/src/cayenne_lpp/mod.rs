//! Cayenne Low Power Payload (LPP), the most common self-describing LoRaWAN payload: a sequence of
//! `channel | type | data` records. Each type maps to an agora property; when one type appears on
//! several channels, the channel is appended (`temperature_1`, `temperature_2`).

use std::borrow::Cow;

use agora_model::Value;

use crate::Refusal;
use crate::record::Field;

/// (type, name, data length, unit, scale, signed)
const TYPES: &[(u8, &str, usize, &str, f64, bool)] = &[
    (0, "digital_input", 1, "1", 1.0, false),
    (1, "digital_output", 1, "1", 1.0, false),
    (2, "analog_input", 2, "1", 0.01, true),
    (3, "analog_output", 2, "1", 0.01, true),
    (101, "illuminance", 2, "lx", 1.0, false),
    (102, "presence", 1, "1", 1.0, false),
    (103, "temperature", 2, "Cel", 0.1, true),
    (104, "relative_humidity", 1, "%", 0.5, false),
    (113, "accelerometer", 6, "[g]", 0.001, true),
    (115, "pressure", 2, "hPa", 0.1, false),
    (116, "battery_voltage", 2, "V", 0.01, false),
    (120, "percentage", 1, "%", 1.0, false),
    (125, "co2", 2, "ppm", 1.0, false),
    (128, "power_w", 2, "W", 1.0, false),
    (134, "gyrometer", 6, "deg/s", 0.01, true),
    (136, "gps", 9, "", 1.0, true),
];

fn int(b: &[u8], signed: bool) -> i64 {
    let mut v: i64 = 0;
    for &x in b {
        v = (v << 8) | i64::from(x);
    }
    if signed && !b.is_empty() && b[0] & 0x80 != 0 {
        v -= 1 << (8 * b.len());
    }
    v
}

/// Decode a payload into fields. An unknown type or a truncated record is an error naming the
/// byte offset: the records before it are not trusted either, as the framing is lost.
pub fn decode(payload: &[u8]) -> Result<Vec<Field<'static>>, Refusal> {
    let mut raw: Vec<(u8, &'static str, f64, &'static str)> = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        if pos + 2 > payload.len() {
            return Err(format!("Cayenne LPP record truncated at byte {pos}").into());
        }
        let (channel, ty) = (payload[pos], payload[pos + 1]);
        let &(_, name, len, unit, scale, signed) = TYPES
            .iter()
            .find(|t| t.0 == ty)
            .ok_or_else(|| format!("unknown Cayenne LPP type {ty} at byte {}", pos + 1))?;
        let data = payload.get(pos + 2..pos + 2 + len).ok_or_else(|| {
            format!("Cayenne LPP {name} on channel {channel} truncated at byte {pos}")
        })?;
        match ty {
            113 | 134 => {
                for (axis, c) in ["x", "y", "z"].iter().zip(data.chunks(2)) {
                    let n: &'static str = match (ty, *axis) {
                        (113, "x") => "accelerometer_x",
                        (113, "y") => "accelerometer_y",
                        (113, _) => "accelerometer_z",
                        (_, "x") => "gyrometer_x",
                        (_, "y") => "gyrometer_y",
                        _ => "gyrometer_z",
                    };
                    raw.push((channel, n, int(c, true) as f64 * scale, unit));
                }
            }
            136 => {
                raw.push((channel, "latitude", int(&data[0..3], true) as f64 * 0.0001, "deg"));
                raw.push((channel, "longitude", int(&data[3..6], true) as f64 * 0.0001, "deg"));
                raw.push((channel, "altitude", int(&data[6..9], true) as f64 * 0.01, "m"));
            }
            _ => raw.push((channel, name, int(data, signed) as f64 * scale, unit)),
        }
        pos += 2 + len;
    }
    let fields = raw
        .iter()
        .map(|&(channel, name, v, unit)| {
            let shared = raw.iter().filter(|r| r.1 == name).count() > 1;
            let name: Cow<'static, str> =
                if shared { Cow::Owned(format!("{name}_{channel}")) } else { Cow::Borrowed(name) };
            // Round away binary noise of the fixed-point scale (0.1 * 215 = 21.500000000000004).
            let v = (v * 1e6).round() / 1e6;
            let value = match name.as_ref() {
                "digital_input" | "digital_output" | "presence" => Value::I64(v as i64),
                _ => Value::F64(v),
            };
            Field {
                name,
                value,
                unit: (!unit.is_empty() && unit != "1").then_some(Cow::Borrowed(unit)),
            }
        })
        .collect();
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fields: &[Field<'_>]) -> Vec<(String, Value)> {
        fields.iter().map(|f| (f.name.to_string(), f.value.clone())).collect()
    }

    #[test]
    fn reference_examples() {
        // From the Cayenne LPP documentation: two temperatures, then accelerometer.
        let p = [0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xFF];
        assert_eq!(
            f(&decode(&p).unwrap()),
            vec![
                ("temperature_3".into(), Value::F64(27.2)),
                ("temperature_5".into(), Value::F64(25.5))
            ]
        );
        let p = [0x06, 0x71, 0x04, 0xD2, 0xFB, 0x2E, 0x00, 0x00];
        assert_eq!(
            f(&decode(&p).unwrap()),
            vec![
                ("accelerometer_x".into(), Value::F64(1.234)),
                ("accelerometer_y".into(), Value::F64(-1.234)),
                ("accelerometer_z".into(), Value::F64(0.0))
            ]
        );
        let p = [0x01, 0x88, 0x06, 0x76, 0x5f, 0xf2, 0x96, 0x0a, 0x00, 0x03, 0xe8];
        assert_eq!(
            f(&decode(&p).unwrap()),
            vec![
                ("latitude".into(), Value::F64(42.3519)),
                ("longitude".into(), Value::F64(-87.9094)),
                ("altitude".into(), Value::F64(10.0))
            ]
        );
        let p = [0x01, 0x67, 0xFF, 0xD7, 0x02, 0x68, 0x61, 0x03, 0x73, 0x27, 0x7F];
        let d = decode(&p).unwrap();
        assert_eq!(
            f(&d),
            vec![
                ("temperature".into(), Value::F64(-4.1)),
                ("relative_humidity".into(), Value::F64(48.5)),
                ("pressure".into(), Value::F64(1011.1))
            ]
        );
        assert_eq!(d[2].unit.as_deref(), Some("hPa"));
    }

    #[test]
    fn garbage_is_refused_by_offset() {
        assert!(decode(&[0x01]).unwrap_err().contains("truncated at byte 0"));
        assert!(decode(&[0x01, 0x67, 0x01]).unwrap_err().contains("truncated"));
        assert!(decode(&[0x01, 0x42, 0x01]).unwrap_err().contains("unknown Cayenne LPP type 66"));
        assert!(decode(&[]).unwrap().is_empty());
    }
}
