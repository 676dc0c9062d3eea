//! Durations and instants as people write them in queries and rules, and the time range of a
//! query.

use std::time::Duration;

use agora_model::Timestamp;

use crate::{Error, Result};

/// Parse a duration such as `30s`, `15m` (or `15min`), `1h`, `1d`, `1w`: a whole number above
/// zero and a unit. Callers that need a ceiling (rules: a year) check it themselves.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "bad duration {s:?}: {why} (use a number followed by s, m, h, d or w, e.g. 15m, 1h, 1d)"
        ))
    };
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| bad("no number"))?;
    let unit = match &t[split..] {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "" => return Err(bad("no unit")),
        _ => return Err(bad("unknown unit")),
    };
    if n == 0 {
        return Err(bad("must be more than zero"));
    }
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(|| bad("too long"))
}

/// Parse an instant: RFC 3339, an epoch number (unit guessed from its size), `now`, or
/// `now-24h` / `-24h`.
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rel) = s.strip_prefix("now-").or_else(|| s.strip_prefix('-')) {
        let d = parse_duration(rel)?;
        let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        return Ok(now.saturating_add_nanos(-ns));
    }
    s.parse::<Timestamp>().map_err(|e| {
        Error::Invalid(format!("bad time: {e} (use RFC 3339, an epoch number, now or now-24h)"))
    })
}

/// The instants a query covers: `from <= t < to`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First instant included.
    pub from: Timestamp,
    /// First instant excluded.
    pub to: Timestamp,
}

impl TimeRange {
    /// A range, refused when empty.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Self> {
        if from >= to {
            return Err(Error::Invalid(format!("from ({from}) must be before to ({to})")));
        }
        Ok(Self { from, to })
    }

    /// The range of query parameters: `to` defaults to `default_to`, `from` to `span` before
    /// `to`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: Timestamp,
        default_to: Timestamp,
        span: Duration,
    ) -> Result<Self> {
        let to = to.map(|t| parse_time(t, now)).transpose()?.unwrap_or(default_to);
        let span = i64::try_from(span.as_nanos()).unwrap_or(i64::MAX);
        let from =
            from.map(|t| parse_time(t, now)).transpose()?.unwrap_or(to.saturating_add_nanos(-span));
        Self::new(from, to)
    }

    /// Its length.
    pub fn span(&self) -> Duration {
        Duration::from_nanos(self.to.as_nanos().abs_diff(self.from.as_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15min").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration(" 1d ").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(1_209_600));
        for bad in ["1y", "0h", "h", "", "15", "-1h", "1.5h", "99999999999999999999s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("bad duration"), "{bad:?}: {e}");
        }
        assert!(
            parse_duration("18446744073709551615w").unwrap_err().to_string().contains("too long")
        );
    }

    #[test]
    fn instants_and_ranges() {
        let now = Timestamp::from_secs(1_767_225_600).unwrap();
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(
            parse_time("now-1h", now).unwrap().as_nanos(),
            now.as_nanos() - 3_600_000_000_000
        );
        assert_eq!(parse_time("-1h", now).unwrap(), parse_time("now-1h", now).unwrap());
        assert_eq!(parse_time("2026-01-01T00:00:00Z", now).unwrap(), now);
        assert!(parse_time("tomorrow", now).is_err());
        let day = Duration::from_secs(86_400);
        let r = TimeRange::parse(None, None, now, now, day).unwrap();
        assert_eq!(r.span(), day);
        assert_eq!(r.to, now);
        let e = TimeRange::parse(Some("now"), Some("now-1h"), now, now, day).unwrap_err();
        assert!(e.to_string().contains("must be before"), "{e}");
    }
}
