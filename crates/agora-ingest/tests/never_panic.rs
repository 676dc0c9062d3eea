//! Property tests of every decoder of outside input: arbitrary bytes never panic, and what the
//! line-protocol encoder writes is parsed back exactly.

use agora_ingest::{
    cayenne_lpp, chirpstack, json, line_protocol, senml, sensor_community, thingsboard,
};
use agora_model::{Precision, Timestamp, Value};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoders_accept_any_bytes_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let d = line_protocol::decode(&body, Precision::Nanoseconds);
        // Every non-blank line is either a record or an error: nothing is silently dropped.
        let lines = body.split(|&b| b == b'\n')
            .filter(|l| std::str::from_utf8(l).map_or(true, |t| { let t = t.trim_start(); !t.is_empty() && !t.starts_with('#') }))
            .count();
        prop_assert_eq!(d.records.len() + d.errors.len(), lines);
        let _ = senml::decode(&body, Timestamp::EPOCH);
        let _ = json::decode(&body);
        let _ = cayenne_lpp::decode(&body);
        let _ = chirpstack::decode("application/a/device/0101010101010101/event/up", &body, &Default::default());
        let _ = thingsboard::decode_device("d", &body);
        let _ = thingsboard::decode_gateway(&body);
        let _ = sensor_community::decode("esp8266-1", Some("1"), &body);
        let mapping: agora_ingest::csv::CsvMapping = serde_json::from_str(r#"{"device_column": "d", "time_column": "t", "columns": {"v": "pm10"}}"#).unwrap();
        if let Ok(mut r) = mapping.reader(&body[..], &body) {
            while r.next_record().is_some() {}
        }
    }

    #[test]
    fn json_shaped_garbage_never_panics(s in r#"[\[\]{}",:0-9a-z. -]{0,200}"#) {
        let _ = senml::decode(s.as_bytes(), Timestamp::EPOCH);
        let _ = json::decode(s.as_bytes());
        let _ = chirpstack::decode("application/a/device/01/event/up", s.as_bytes(), &Default::default());
        let _ = thingsboard::decode_device("d", s.as_bytes());
        let _ = thingsboard::decode_gateway(s.as_bytes());
        let _ = sensor_community::decode("esp8266-1", None, s.as_bytes());
    }

    #[test]
    fn line_protocol_roundtrip(
        measurement in "[a-z][a-z _,=]{0,12}",
        device in "[a-z0-9][a-z0-9 ,=-]{0,12}",
        fields in proptest::collection::vec(("[a-z][a-z0-9_]{0,8}", -1e9f64..1e9, any::<i64>(), "[a-z \"\\\\]{0,10}"), 1..4),
        ts in proptest::option::of(any::<i64>()),
    ) {
        let esc = |s: &str, specials: &[char]| {
            let mut o = String::new();
            for c in s.chars() {
                if specials.contains(&c) { o.push('\\'); }
                o.push(c);
            }
            o
        };
        let mut line = format!("{},device={}", esc(&measurement, &[',', ' ']), esc(&device, &[',', '=', ' ']));
        let mut want = Vec::new();
        for (i, (k, f, n, s)) in fields.iter().enumerate() {
            line.push(if i == 0 { ' ' } else { ',' });
            match i % 3 {
                0 => { line.push_str(&format!("{k}={f:?}")); want.push(Value::F64(*f)); }
                1 => { line.push_str(&format!("{k}={n}i")); want.push(Value::I64(*n)); }
                _ => { line.push_str(&format!("{k}=\"{}\"", esc(s, &['"', '\\']))); want.push(Value::Str(s.clone())); }
            }
        }
        if let Some(t) = ts { line.push_str(&format!(" {t}")); }
        let parsed = line_protocol::parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(parsed.measurement.as_ref(), measurement.as_str());
        prop_assert_eq!(parsed.tags[0].1.as_ref(), device.as_str());
        prop_assert_eq!(parsed.fields.iter().map(|f| f.1.clone()).collect::<Vec<_>>(), want);
        prop_assert_eq!(parsed.timestamp, ts);
    }
}
