//! InfluxDB line protocol (`measurement,tag=v field=1.0,n=3i 1767225600000000000`), so Telegraf,
//! Node-RED and any InfluxDB client write to agora unchanged.
//!
//! Mapping: the measurement is the device kind, tag `device` the device id, tags `site` and
//! `commune` place a new device, fields are properties. Other tags are ignored.

use std::borrow::Cow;

use agora_model::{Precision, Timestamp, Value};

use crate::Refusal;
use crate::record::{Decoded, Field, LineError, Record};

/// A parsed line, before it is mapped to a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// Measurement name.
    pub measurement: Cow<'a, str>,
    /// Tag set.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Field set (at least one).
    pub fields: Vec<(Cow<'a, str>, Value)>,
    /// Timestamp as written (in the request's precision).
    pub timestamp: Option<i64>,
}

/// Decode a request body: good lines become records, bad lines errors naming the line and problem.
pub fn decode(body: &[u8], precision: Precision) -> Decoded<'_> {
    let mut out = Decoded::default();
    // One record per line, reserved at once (capped: a body of empty lines reserves little).
    out.records.reserve((body.iter().filter(|&&b| b == b'\n').count() + 1).min(1 << 16));
    // A body valid as a whole (the usual case) is checked once, not line by line.
    let lines: Box<dyn Iterator<Item = Result<&str, &[u8]>>> = match std::str::from_utf8(body) {
        Ok(text) => Box::new(text.split('\n').map(Ok)),
        Err(_) => Box::new(
            body.split(|&b| b == b'\n').map(|raw| std::str::from_utf8(raw).map_err(|_| raw)),
        ),
    };
    for (i, line) in lines.enumerate() {
        let n = (i + 1) as u32;
        let err = |reason: String, raw: &[u8]| LineError {
            line: n,
            reason,
            raw: String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw)).into_owned(),
            raw_is_json: false,
        };
        let text = match line {
            Ok(text) => text.strip_suffix('\r').unwrap_or(text),
            Err(raw) => {
                out.errors.push(err("line is not valid UTF-8".into(), raw));
                continue;
            }
        };
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_record(trimmed, n, precision) {
            Ok(r) => out.records.push(r),
            Err(Refusal(reason)) => out.errors.push(err(reason, text.as_bytes())),
        }
    }
    out
}

/// Parse one line straight into a record: the tags agora reads are kept, the others skipped,
/// the fields pushed as they come (no intermediate [`Line`]: this is the hot path of ingestion).
fn parse_record(s: &str, line: u32, precision: Precision) -> Result<Record<'_>, Refusal> {
    let mut device = None;
    let mut site = None;
    let mut commune = None;
    let mut fields = Vec::new();
    let (measurement, timestamp) = parse_parts(
        s,
        |k, v| match k.as_ref() {
            "device" => device = Some(v),
            "site" => site = Some(v),
            "commune" => commune = Some(v),
            _ => {}
        },
        |name, value| fields.push(Field { name, value, unit: None }),
    )?;
    let device = device.ok_or("missing tag \"device\" (the device id)")?;
    let time =
        match timestamp {
            Some(n) => Some(Timestamp::from_epoch(n, precision).ok_or_else(|| {
                format!("timestamp {n} is out of range for precision {precision:?}")
            })?),
            None => None,
        };
    Ok(Record { line, device, kind: Some(measurement), site, commune, time, fields })
}

/// Scan from `pos` to the first unescaped byte in `stops` (or the end); returns (end, escaped).
fn scan(b: &[u8], mut pos: usize, stops: &[u8]) -> (usize, bool) {
    let mut escaped = false;
    while pos < b.len() {
        let c = b[pos];
        if c == b'\\' && pos + 1 < b.len() {
            escaped = true;
            pos += 2;
            continue;
        }
        if stops.contains(&c) {
            break;
        }
        pos += 1;
    }
    (pos, escaped)
}

fn unescape<'a>(s: &'a str, escaped: bool, specials: &[u8]) -> Cow<'a, str> {
    if !escaped {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n) = chars.peek()
            && n.is_ascii()
            && specials.contains(&(n as u8))
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Parse one non-empty, non-comment line.
pub fn parse_line(s: &str) -> Result<Line<'_>, Refusal> {
    let (mut tags, mut fields) = (Vec::new(), Vec::new());
    let (measurement, timestamp) =
        parse_parts(s, |k, v| tags.push((k, v)), |k, v| fields.push((k, v)))?;
    Ok(Line { measurement, tags, fields, timestamp })
}

/// Parse a line, handing each tag and each field over as it is read; returns the measurement
/// and the timestamp.
fn parse_parts<'a>(
    s: &'a str,
    mut on_tag: impl FnMut(Cow<'a, str>, Cow<'a, str>),
    mut on_field: impl FnMut(Cow<'a, str>, Value),
) -> Result<(Cow<'a, str>, Option<i64>), Refusal> {
    let b = s.as_bytes();
    let (end, esc) = scan(b, 0, b", ");
    if end == 0 {
        return Err("missing measurement".into());
    }
    let measurement = unescape(&s[..end], esc, b", \\");
    let mut pos = end;
    while pos < b.len() && b[pos] == b',' {
        pos += 1;
        let (kend, kesc) = scan(b, pos, b"=, ");
        if kend == pos || kend >= b.len() || b[kend] != b'=' {
            return Err(format!("bad tag at byte {}: expected key=value", pos + 1).into());
        }
        let key = unescape(&s[pos..kend], kesc, b",= \\");
        pos = kend + 1;
        let (vend, vesc) = scan(b, pos, b", ");
        if vend == pos {
            return Err(format!("tag {key:?} has an empty value").into());
        }
        on_tag(key, unescape(&s[pos..vend], vesc, b",= \\"));
        pos = vend;
    }
    if pos >= b.len() {
        return Err("missing fields".into());
    }
    // Exactly one space separates the tags from the fields.
    pos += 1;
    loop {
        let (kend, kesc) = scan(b, pos, b"=, ");
        if kend == pos || kend >= b.len() || b[kend] != b'=' {
            return Err(format!("bad field at byte {}: expected key=value", pos + 1).into());
        }
        let key = unescape(&s[pos..kend], kesc, b",= \\");
        pos = kend + 1;
        let value = if b.get(pos) == Some(&b'"') {
            let (vend, vesc) = scan(b, pos + 1, b"\"");
            if vend >= b.len() {
                return Err(format!("field {key:?}: unterminated string").into());
            }
            let v = unescape(&s[pos + 1..vend], vesc, b"\"\\");
            pos = vend + 1;
            Value::Str(v.into_owned())
        } else {
            let (vend, _) = scan(b, pos, b", ");
            let v = parse_field_value(&s[pos..vend]).map_err(|e| format!("field {key:?}: {e}"))?;
            pos = vend;
            v
        };
        on_field(key, value);
        match b.get(pos) {
            Some(b',') => pos += 1,
            _ => break,
        }
    }
    let rest = s[pos..].trim();
    let timestamp = if rest.is_empty() {
        None
    } else {
        Some(
            rest.parse::<i64>()
                .map_err(|_| format!("bad timestamp {rest:?}: expected an integer"))?,
        )
    };
    Ok((measurement, timestamp))
}

fn parse_field_value(v: &str) -> Result<Value, Refusal> {
    if v.is_empty() {
        return Err("empty value".into());
    }
    match v {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(i) = v.strip_suffix('i') {
        return i.parse::<i64>().map(Value::I64).map_err(|_| Refusal(format!("bad integer {v:?}")));
    }
    if let Some(u) = v.strip_suffix('u') {
        let n = u.parse::<u64>().map_err(|_| format!("bad unsigned integer {v:?}"))?;
        return i64::try_from(n)
            .map(Value::I64)
            .map_err(|_| Refusal(format!("unsigned integer {v:?} is too large")));
    }
    let not_finite =
        || Refusal(format!("value {v} is not finite: NaN and infinity cannot be stored"));
    let first = v.as_bytes()[0];
    // The common case (a plain number) allocates nothing; spelled-out NaN and infinities are
    // looked for only when the value does not start with a digit.
    if !first.is_ascii_digit()
        && matches!(
            v.to_ascii_lowercase().trim_start_matches(['+', '-']),
            "nan" | "inf" | "infinity"
        )
    {
        return Err(not_finite());
    }
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Err(format!(
            "bad value {v:?}: expected a number, 123i, true/false or a \"string\""
        )
        .into());
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Value::F64(x)),
        Ok(_) => Err(not_finite()),
        Err(_) => Err(Refusal(format!("bad number {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_are_not_finite_are_refused_by_name() {
        for v in ["nan", "-NaN", "+inf", "Infinity", "1e999", "-1e400"] {
            let e = parse_field_value(v).unwrap_err();
            assert!(e.0.contains("not finite"), "{v}: {}", e.0);
        }
        assert_eq!(parse_field_value("12.5").unwrap(), Value::F64(12.5));
        assert_eq!(parse_field_value("-0.8").unwrap(), Value::F64(-0.8));
        assert_eq!(parse_field_value(".5").unwrap(), Value::F64(0.5));
        assert!(parse_field_value("1.2.3").unwrap_err().0.contains("bad number"));
    }

    #[test]
    fn parses_the_full_syntax() {
        let l = parse_line(r#"air\ quality,device=aq-1,site=place\,mairie temp=21.5,n=3i,u=7u,ok=t,s="a \"b\" c" 1767225600"#).unwrap();
        assert_eq!(l.measurement, "air quality");
        assert_eq!(l.tags[1], (Cow::Borrowed("site"), Cow::Owned::<str>("place,mairie".into())));
        assert_eq!(
            l.fields.iter().map(|f| f.1.clone()).collect::<Vec<_>>(),
            vec![
                Value::F64(21.5),
                Value::I64(3),
                Value::I64(7),
                Value::Bool(true),
                Value::Str("a \"b\" c".into())
            ]
        );
        assert_eq!(l.timestamp, Some(1767225600));
    }

    #[test]
    fn bad_lines_are_reported_and_good_ones_kept() {
        let body = b"aq,device=a pm10=1\n\naq,device=a pm10=abc\n# comment\naq pm10=2\naq,device=b pm10=3 notatime\naq,device=c pm10=4 1767225600000000000\r\n";
        let d = decode(body, Precision::Nanoseconds);
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[1].time.unwrap().to_rfc3339(), "2026-01-01T00:00:00Z");
        let errs: Vec<(u32, &str)> = d.errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].0, 3);
        assert!(errs[0].1.contains("\"abc\""), "{}", errs[0].1);
        assert_eq!(errs[1], (5, "missing tag \"device\" (the device id)"));
        assert!(errs[2].1.contains("notatime"));
        assert_eq!(d.errors[0].raw, "aq,device=a pm10=abc");
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for s in [
            "=",
            ",",
            "m,",
            "m,a",
            "m,a=",
            "m a",
            "m a=",
            "m a=\"x",
            "m,a=b",
            "m a=1,",
            "m a=1 1 2",
            "m a=99999999999999999999i",
            "\\",
        ] {
            assert!(parse_line(s).is_err(), "{s:?} should fail");
        }
    }
}
