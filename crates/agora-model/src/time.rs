//! Timestamps: nanoseconds since the Unix epoch in UTC, parsed from epoch numbers or RFC 3339.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shorten};

/// An instant in UTC with nanosecond resolution (the InfluxDB convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// The unit of an epoch timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Nanoseconds (InfluxDB's default).
    #[default]
    Nanoseconds,
    /// Microseconds.
    Microseconds,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
}

impl Precision {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> i64 {
        match self {
            Self::Nanoseconds => 1,
            Self::Microseconds => 1_000,
            Self::Milliseconds => 1_000_000,
            Self::Seconds => 1_000_000_000,
        }
    }
}

impl Precision {
    /// The unit's name in words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nanoseconds => "nanoseconds",
            Self::Microseconds => "microseconds",
            Self::Milliseconds => "milliseconds",
            Self::Seconds => "seconds",
        }
    }
}

impl FromStr for Precision {
    type Err = Error;
    /// Accepts the InfluxDB v1 (`n`, `ns`, `u`, `µ`, `ms`, `s`) and v2 (`ns`, `us`, `ms`, `s`) spellings.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "n" | "ns" => Self::Nanoseconds,
            "u" | "us" | "µ" | "µs" => Self::Microseconds,
            "ms" => Self::Milliseconds,
            "s" => Self::Seconds,
            _ => {
                return Err(Error::InvalidId {
                    what: "precision",
                    value: shorten(s),
                    reason: "must be one of ns, us, ms, s",
                });
            }
        })
    }
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(ns: i64) -> Self {
        Self(ns)
    }
    /// From milliseconds since the epoch; `None` when out of range.
    pub fn from_millis(ms: i64) -> Option<Self> {
        ms.checked_mul(1_000_000).map(Self)
    }
    /// From seconds since the epoch; `None` when out of range.
    pub fn from_secs(s: i64) -> Option<Self> {
        s.checked_mul(1_000_000_000).map(Self)
    }
    /// From an epoch integer in the given precision; `None` when out of range.
    pub fn from_epoch(n: i64, precision: Precision) -> Option<Self> {
        n.checked_mul(precision.nanos()).map(Self)
    }
    /// From fractional seconds since the epoch (SenML); `None` when not finite or out of range.
    pub fn from_secs_f64(s: f64) -> Option<Self> {
        let ns = s * 1e9;
        if !ns.is_finite() || ns.abs() >= i64::MAX as f64 {
            return None;
        }
        Some(Self(ns.round() as i64))
    }
    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    /// Milliseconds since the epoch (floored).
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    /// Fractional seconds since the epoch.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// This instant as a chrono `DateTime<Utc>`.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }
    /// From a chrono date-time; `None` outside 1677–2262.
    pub fn from_datetime<Tz: chrono::TimeZone>(dt: &DateTime<Tz>) -> Option<Self> {
        dt.timestamp_nanos_opt().map(Self)
    }
    /// Parse RFC 3339 (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00+01:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .and_then(|dt| Self::from_datetime(&dt))
            .ok_or_else(|| Error::InvalidTimestamp(shorten(s)))
    }
    /// Format as RFC 3339 in UTC, with as many fractional digits as needed.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
    /// Add a signed number of nanoseconds, saturating.
    pub fn saturating_add_nanos(self, ns: i64) -> Self {
        Self(self.0.saturating_add(ns))
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    /// Parses RFC 3339, or an integer of seconds/milliseconds/microseconds/nanoseconds since the epoch,
    /// the unit guessed from the magnitude (as sensors and gateways disagree on it).
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(n) = s.parse::<i64>() {
            return Self::from_epoch_guess(n);
        }
        Self::parse_rfc3339(s)
    }
}

impl Timestamp {
    /// Interpret an epoch integer whose unit is unknown by its magnitude: values below 10^11 are
    /// seconds, below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds.
    ///
    /// An instant that a `Timestamp` cannot hold (before 1677-09-21 or after 2262-04-11, e.g.
    /// `20000000000` read as seconds) is refused with [`Error::EpochOutOfRange`], never wrapped.
    pub fn from_epoch_guess(n: i64) -> Result<Self> {
        let a = n.unsigned_abs();
        let p = if a < 100_000_000_000 {
            Precision::Seconds
        } else if a < 100_000_000_000_000 {
            Precision::Milliseconds
        } else if a < 100_000_000_000_000_000 {
            Precision::Microseconds
        } else {
            Precision::Nanoseconds
        };
        Self::from_epoch(n, p).ok_or(Error::EpochOutOfRange { value: n, unit: p.name() })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Self::from_epoch_guess(n).map_err(serde::de::Error::custom),
            Raw::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_offset_is_normalized_to_utc() {
        let t = Timestamp::parse_rfc3339("2026-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00Z");
        assert_eq!(t.as_nanos(), 1_767_225_600_000_000_000);
    }

    #[test]
    fn epoch_guess_by_magnitude() {
        let want = 1_767_225_600_000_000_000;
        for n in [1_767_225_600, 1_767_225_600_000, 1_767_225_600_000_000, want] {
            assert_eq!(Timestamp::from_epoch_guess(n).unwrap().as_nanos(), want, "{n}");
        }
    }

    #[test]
    fn out_of_range_epochs_are_refused_not_wrapped() {
        // Both used to wrap: 20000000000 s became 2019-03-22 and 9300000000 s 1680-02-24.
        for n in [20_000_000_000, 9_300_000_000, -9_300_000_000, 99_999_999_999] {
            let e = Timestamp::from_epoch_guess(n).unwrap_err();
            assert_eq!(e, Error::EpochOutOfRange { value: n, unit: "seconds" });
            assert!(e.to_string().contains(&n.to_string()), "{e}");
            assert!(n.to_string().parse::<Timestamp>().is_err(), "{n}");
            let json: std::result::Result<Timestamp, _> = serde_json_like(n);
            assert!(json.is_err(), "{n}");
        }
        // The last whole second that fits, and the first that does not.
        assert!(Timestamp::from_epoch_guess(9_223_372_036).is_ok());
        assert!(Timestamp::from_epoch_guess(9_223_372_037).is_err());
        // Milliseconds and microseconds can overflow too.
        assert!(Timestamp::from_epoch_guess(9_300_000_000_000).is_err());
        assert!(Timestamp::from_epoch_guess(9_300_000_000_000_000).is_err());
        // Nanoseconds always fit.
        assert_eq!(Timestamp::from_epoch_guess(i64::MIN).unwrap().as_nanos(), i64::MIN);
    }

    /// Deserializes an integer the way serde formats hand one to `Timestamp`.
    fn serde_json_like(n: i64) -> std::result::Result<Timestamp, serde::de::value::Error> {
        use serde::de::IntoDeserializer;
        Timestamp::deserialize(n.into_deserializer())
    }

    proptest::proptest! {
        /// Whatever the integer, parsing it gives exactly the instant it denotes in the unit its
        /// magnitude suggests, or refuses it when that instant does not fit: it never wraps.
        #[test]
        fn epoch_parsing_never_wraps(n in proptest::prelude::any::<i64>()) {
            let a = n.unsigned_abs();
            let unit: i128 = if a < 100_000_000_000 {
                1_000_000_000
            } else if a < 100_000_000_000_000 {
                1_000_000
            } else if a < 100_000_000_000_000_000 {
                1_000
            } else {
                1
            };
            let exact = i128::from(n) * unit;
            let want = i64::try_from(exact).ok().map(Timestamp::from_nanos);
            proptest::prop_assert_eq!(Timestamp::from_epoch_guess(n).ok(), want);
            proptest::prop_assert_eq!(n.to_string().parse::<Timestamp>().ok(), want);
        }
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        let e = "yesterday".parse::<Timestamp>().unwrap_err().to_string();
        assert!(e.contains("yesterday"), "{e}");
    }

    #[test]
    fn precision_spellings() {
        assert_eq!("u".parse::<Precision>().unwrap(), Precision::Microseconds);
        assert_eq!("us".parse::<Precision>().unwrap(), Precision::Microseconds);
        assert!("h".parse::<Precision>().is_err());
    }
}
