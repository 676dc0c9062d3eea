//! What state a device is in: reporting or silent (from its typed reporting period), reporting a
//! fault, or flagged by quality checks.

use std::time::Duration;

use agora_model::{Timestamp, Value};
use agora_store::catalog::Device;

/// How often a device is expected to report: its metadata's `period_s` (seconds, a positive
/// number, whole or not), one hour when absent or invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportingPeriod(pub Duration);

impl ReportingPeriod {
    /// The period assumed when a device declares none.
    pub const DEFAULT: Self = Self(Duration::from_secs(3600));

    /// The period a device declares.
    pub fn of(d: &Device) -> Self {
        d.metadata
            .get("period_s")
            .and_then(serde_json::Value::as_f64)
            .filter(|p| p.is_finite() && *p > 0.0 && *p < 1e12)
            .map_or(Self::DEFAULT, |p| Self(Duration::from_secs_f64(p)))
    }

    /// In nanoseconds.
    pub fn as_nanos(self) -> i64 {
        i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// Whether a device reports as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeviceStatus {
    /// It reported within twice its period (plus a minute of slack).
    Online,
    /// Silent for longer.
    Offline,
    /// It never reported.
    NeverSeen,
}

impl DeviceStatus {
    /// The status of `d` at `now`, and for how many whole seconds it has been silent.
    pub fn of(d: &Device, now: Timestamp) -> (Self, Option<i64>) {
        let Some(seen) = d.last_seen else { return (Self::NeverSeen, None) };
        let silent_ns = now.as_nanos().saturating_sub(seen.as_nanos()).max(0);
        let limit =
            ReportingPeriod::of(d).as_nanos().saturating_mul(2).saturating_add(60_000_000_000);
        let status = if silent_ns > limit { Self::Offline } else { Self::Online };
        (status, Some(silent_ns / 1_000_000_000))
    }

    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::NeverSeen => "never_seen",
        }
    }
}

/// Whether a reported state value names a fault (`defectiveLamp`, `fault`, `error`, …): a text
/// value of a status or state property other than the ordinary ones.
pub fn is_fault(property: &str, v: &Value) -> bool {
    let Value::Str(s) = v else { return false };
    if !property.contains("status") && !property.contains("state") {
        return false;
    }
    let s = s.to_ascii_lowercase();
    !matches!(s.as_str(), "ok" | "normal" | "on" | "off" | "working" | "running" | "idle" | "")
}

/// A device's state for the map: `offline` and `never_seen` from its reporting period, `faulty`
/// when a status it reports names a fault, `flagged` when quality checks flagged a point in the
/// last 24 hours, else `online`.
pub fn device_state(
    d: &Device,
    now: Timestamp,
    fault: bool,
    flagged_since: Option<Timestamp>,
) -> &'static str {
    let (status, _) = DeviceStatus::of(d, now);
    if status != DeviceStatus::Online {
        return status.as_str();
    }
    if fault {
        return "faulty";
    }
    let day_ago = now.saturating_add_nanos(-86_400_000_000_000);
    if flagged_since.is_some_and(|t| t >= day_ago) {
        return "flagged";
    }
    "online"
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_model::{DeviceId, DeviceKind};

    fn device(metadata: serde_json::Value, last_seen: Option<i64>) -> Device {
        Device {
            id: DeviceId::parse("d-1").unwrap(),
            kind: DeviceKind::parse("noise").unwrap(),
            name: None,
            site: None,
            commune: None,
            lat: None,
            lon: None,
            metadata,
            created_at: Timestamp::from_nanos(0),
            last_seen: last_seen.map(|s| Timestamp::from_secs(s).unwrap()),
        }
    }

    #[test]
    fn the_period_is_read_one_way() {
        let p = |m| ReportingPeriod::of(&device(m, None)).0;
        assert_eq!(p(serde_json::json!({"period_s": 60})), Duration::from_secs(60));
        assert_eq!(p(serde_json::json!({"period_s": 0.5})), Duration::from_millis(500));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"period_s": 0}),
            serde_json::json!({"period_s": -5}),
            serde_json::json!({"period_s": "60"}),
            serde_json::json!(null),
        ] {
            assert_eq!(p(bad), Duration::from_secs(3600));
        }
    }

    #[test]
    fn silent_beyond_twice_the_period_and_a_minute_is_offline() {
        let now = Timestamp::from_secs(10_000).unwrap();
        let d = device(serde_json::json!({"period_s": 60}), Some(10_000 - 180));
        assert_eq!(DeviceStatus::of(&d, now), (DeviceStatus::Online, Some(180)));
        let d = device(serde_json::json!({"period_s": 60}), Some(10_000 - 181));
        assert_eq!(DeviceStatus::of(&d, now), (DeviceStatus::Offline, Some(181)));
        // A fractional period is not rounded away (it used to be read as an integer, and 90.5 s
        // became the one-hour default).
        let d = device(serde_json::json!({"period_s": 90.5}), Some(10_000 - 300));
        assert_eq!(DeviceStatus::of(&d, now).0, DeviceStatus::Offline);
        assert_eq!(
            DeviceStatus::of(&device(serde_json::json!({}), None), now).0,
            DeviceStatus::NeverSeen
        );
    }

    #[test]
    fn faults_are_named_states() {
        assert!(is_fault("lamp_status", &Value::Str("defectiveLamp".into())));
        assert!(!is_fault("lamp_status", &Value::Str("ok".into())));
        assert!(!is_fault("temperature", &Value::F64(99.0)));
        assert!(!is_fault("label", &Value::Str("broken".into())), "not a status property");
    }
}
