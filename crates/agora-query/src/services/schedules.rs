//! Schedules that drive equipment: a lighting scenario sent to a street's lamps every night at
//! its window's start and end, and an irrigation plan sent to a zone's valves at the nightly
//! decision hour (when the advice says so, or on the fixed schedule). The settings a schedule
//! keeps (`agora_store::schedules::Schedule::body`), what each command says, when one is due,
//! and how a lighting schedule's real savings are measured against its estimate. Sending is the
//! binary's (`agora/src/schedules.rs`, through the alerts' MQTT publisher); this decides.

use agora_indicators::lighting::{self, Profile, Scenario, parse_hhmm};
use chrono::{NaiveDate, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Error, Result};

/// The topic commands go to unless a schedule names another: devices subscribe to their own.
pub const DEFAULT_TOPIC: &str = "agora/commands/{device}";

/// What a lighting schedule keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LightingPlan {
    /// `dim`, `off` or `presence`.
    pub kind: String,
    /// Window start, local `HH:MM`.
    pub start: String,
    /// Window end, local `HH:MM`.
    pub end: String,
    /// `dim`: output kept (%); `presence`: output with nobody there (%).
    #[serde(default)]
    pub level: Option<f64>,
    /// `presence`: share of the window with someone there (%), for the estimate.
    #[serde(default)]
    pub presence: Option<f64>,
    /// The streets, as `[place, street]`.
    pub streets: Vec<(String, String)>,
    /// The MQTT topic (`{device}` replaced).
    pub topic: String,
    /// The estimate made when it was applied, per year: kWh, €, kg CO2e, from the profile of
    /// `baseline_from..=baseline_to`.
    pub estimate: Estimate,
}

/// A scenario's savings estimated at the time it was applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingEstimate))]
pub struct Estimate {
    /// kWh a year.
    pub kwh_per_year: f64,
    /// € a year.
    pub eur_per_year: f64,
    /// kg CO2e a year.
    pub kg_co2e_per_year: f64,
    /// kWh a day in the scenario's window before it (the baseline of the measurement).
    pub window_kwh_per_day: f64,
    /// The profile's first day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub baseline_from: NaiveDate,
    /// Its last day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub baseline_to: NaiveDate,
}

impl LightingPlan {
    /// The scenario it applies (checked).
    pub fn scenario(&self) -> Result<Scenario> {
        let bad = |e: agora_indicators::Error| Error::Invalid(e.to_string());
        let (from, to) =
            (parse_hhmm(&self.start).map_err(bad)?, parse_hhmm(&self.end).map_err(bad)?);
        let pct = |what: &str, v: Option<f64>, default: Option<f64>| -> Result<f64> {
            let v = v.or(default).ok_or_else(|| Error::Invalid(format!("{what} is missing")))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(Error::Invalid(format!("{what} must be 0 to 100 %, not {v}")));
            }
            Ok(v / 100.0)
        };
        let s = match self.kind.as_str() {
            "dim" => Scenario::Dim { level: pct("level", self.level, None)?, from, to },
            "off" => Scenario::Off { from, to },
            "presence" => Scenario::Presence {
                base: pct("level", self.level, Some(20.0))?,
                presence: pct("presence", self.presence, Some(10.0))?,
                from,
                to,
            },
            k => return Err(Error::Invalid(format!("kind {k:?}: use dim, off or presence"))),
        };
        s.check().map_err(bad)?;
        Ok(s)
    }

    /// The command at the window's start (`true`) or end: what the lamps are told.
    pub fn command(&self, starting: bool) -> Value {
        if !starting {
            return json!({"command": "dim", "level": 100});
        }
        match self.kind.as_str() {
            "off" => json!({"command": "off"}),
            "presence" => json!({"command": "presence", "level": self.level.unwrap_or(20.0)}),
            _ => json!({"command": "dim", "level": self.level.unwrap_or(100.0)}),
        }
    }
}

/// What an irrigation schedule keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IrrigationSchedule {
    /// The zone (as `/api/v1/irrigation` names it).
    pub zone: String,
    /// Its place.
    #[serde(default)]
    pub place: Option<String>,
    /// `advice` (water the nights the advice says so) or `fixed` (every `every_days`).
    pub mode: String,
    /// `fixed`: every this many days.
    #[serde(default)]
    pub every_days: Option<u32>,
    /// Minutes a watering lasts (sent with the command: the valve closes itself).
    pub minutes: f64,
    /// The valves (devices) commanded.
    pub valves: Vec<String>,
    /// The MQTT topic (`{device}` replaced).
    pub topic: String,
}

impl IrrigationSchedule {
    /// Checks the mode and numbers.
    pub fn check(&self) -> Result<()> {
        match (self.mode.as_str(), self.every_days) {
            ("advice", _) => {}
            ("fixed", Some(1..=31)) => {}
            ("fixed", d) => {
                return Err(Error::Invalid(format!(
                    "a fixed schedule waters every 1 to 31 days, not {d:?}"
                )));
            }
            (m, _) => return Err(Error::Invalid(format!("mode {m:?}: use advice or fixed"))),
        }
        if !self.minutes.is_finite() || self.minutes <= 0.0 || self.minutes > 720.0 {
            return Err(Error::Invalid(format!(
                "a watering lasts more than 0 and at most 720 minutes, not {}",
                self.minutes
            )));
        }
        if self.valves.is_empty() || self.valves.len() > 200 {
            return Err(Error::Invalid("name the zone's valves (1 to 200 devices)".into()));
        }
        Ok(())
    }

    /// The command that opens a valve for the watering.
    pub fn command(&self) -> Value {
        json!({"command": "open", "minutes": self.minutes})
    }

    /// Whether the fixed schedule waters on `day`, counting from `first` (its first night).
    pub fn fixed_due(&self, first: NaiveDate, day: NaiveDate) -> bool {
        let every = i64::from(self.every_days.unwrap_or(1).max(1));
        (day - first).num_days().rem_euclid(every) == 0
    }
}

/// Checks a command topic: at most 256 bytes, no wildcard, `{device}` in it (each device hears
/// its own).
pub fn check_topic(topic: &str) -> Result<()> {
    if topic.is_empty() || topic.len() > 256 || topic.contains(['+', '#', '\0']) {
        return Err(Error::Invalid(format!(
            "topic {topic:?}: 1 to 256 bytes, without MQTT wildcards"
        )));
    }
    if !topic.contains("{device}") {
        return Err(Error::Invalid(format!(
            "topic {topic:?} must contain {{device}}: each device is sent its own command"
        )));
    }
    Ok(())
}

/// Whether local minute `minute` (0–1439) of a day was reached in `(prev, now]` (Unix s): a
/// window's start or end, or the decision hour, to act on once.
pub fn crossed(prev: i64, now: i64, minute: u32, tz: Tz) -> bool {
    if now <= prev || now - prev > 2 * 86_400 {
        return false;
    }
    let local = |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|x| x.with_timezone(&tz));
    let (Some(a), Some(b)) = (local(prev), local(now)) else { return false };
    let m = |x: &chrono::DateTime<Tz>| x.hour() * 60 + x.minute();
    let minute = minute % 1440;
    if a.date_naive() == b.date_naive() {
        m(&a) < minute && minute <= m(&b)
    } else {
        // Over midnight: the rest of the first day, or the start of the second.
        m(&a) < minute || minute <= m(&b)
    }
}

/// A lighting schedule's savings as measured: the window's energy a day after it was applied
/// against before, on the same streets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingMeasured))]
pub struct Measured {
    /// Days measured since it was applied (with readings).
    pub days: f64,
    /// kWh a day in the window since.
    pub window_kwh_per_day: f64,
    /// kWh a day saved (the estimate's baseline minus since).
    pub kwh_per_day: f64,
    /// The same a year (× 365).
    pub kwh_per_year: f64,
    /// The measured saving as a share of the estimate (1: as estimated).
    pub of_estimate: Option<f64>,
}

/// The window's energy (Wh) of a profile.
pub fn window_wh(profile: &Profile, s: &Scenario) -> f64 {
    (0..lighting::QUARTERS).filter(|&q| s.ceiling(q).is_some()).map(|q| profile.wh[q]).sum()
}

/// The measured savings of a schedule: the profile `since` it was applied against its estimate.
pub fn measured(plan: &LightingPlan, since: &Profile) -> Result<Option<Measured>> {
    if since.days < 1.0 {
        return Ok(None);
    }
    let s = plan.scenario()?;
    let per_day = window_wh(since, &s) / 1000.0 / since.days;
    let saved = plan.estimate.window_kwh_per_day - per_day;
    let yearly = plan.estimate.kwh_per_year;
    Ok(Some(Measured {
        days: since.days,
        window_kwh_per_day: per_day,
        kwh_per_day: saved,
        kwh_per_year: saved * 365.0,
        of_estimate: (yearly > 0.0).then(|| saved * 365.0 / yearly),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: &str, level: Option<f64>) -> LightingPlan {
        LightingPlan {
            kind: kind.into(),
            start: "23:00".into(),
            end: "05:00".into(),
            level,
            presence: None,
            streets: vec![("p".into(), "Rue A".into())],
            topic: DEFAULT_TOPIC.into(),
            estimate: Estimate {
                kwh_per_year: 365.0,
                eur_per_year: 0.0,
                kg_co2e_per_year: 0.0,
                window_kwh_per_day: 2.0,
                baseline_from: NaiveDate::MIN,
                baseline_to: NaiveDate::MIN,
            },
        }
    }

    #[test]
    fn windows_are_crossed_once_even_over_midnight_and_clock_changes() {
        let tz = chrono_tz::Europe::Paris;
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        let (m2259, m2301) = (at("2026-06-21T22:59:30+02:00"), at("2026-06-21T23:00:10+02:00"));
        assert!(crossed(m2259, m2301, 23 * 60, tz));
        assert!(!crossed(m2301, m2301 + 30, 23 * 60, tz), "once");
        // 05:00 reached from 23:59 the day before, over midnight.
        assert!(crossed(at("2026-06-21T23:59:50+02:00"), at("2026-06-22T05:00:00+02:00"), 300, tz));
        assert!(!crossed(
            at("2026-06-21T23:59:50+02:00"),
            at("2026-06-22T04:59:00+02:00"),
            300,
            tz
        ));
        // 02:30 does not exist on 29 March 2026 (02:00 → 03:00): reached by the jump.
        assert!(crossed(at("2026-03-29T01:59:50+01:00"), at("2026-03-29T03:00:10+02:00"), 150, tz));
        // A long silence (the server was down for days) sends nothing stale.
        assert!(!crossed(m2259 - 5 * 86_400, m2301, 23 * 60, tz));
    }

    #[test]
    fn commands_and_checks() {
        assert_eq!(plan("dim", Some(50.0)).command(true), json!({"command": "dim", "level": 50.0}));
        assert_eq!(plan("off", None).command(true), json!({"command": "off"}));
        assert_eq!(plan("off", None).command(false), json!({"command": "dim", "level": 100}));
        assert!(plan("dim", None).scenario().unwrap_err().to_string().contains("level"));
        assert!(check_topic("agora/commands/{device}").is_ok());
        assert!(check_topic("agora/commands/+").is_err());
        assert!(check_topic("lamps/all").unwrap_err().to_string().contains("{device}"));
        let irr = IrrigationSchedule {
            zone: "z".into(),
            place: None,
            mode: "fixed".into(),
            every_days: Some(2),
            minutes: 30.0,
            valves: vec!["valve-1".into()],
            topic: DEFAULT_TOPIC.into(),
        };
        irr.check().unwrap();
        let d = |n| NaiveDate::from_ymd_opt(2026, 6, n).unwrap();
        assert!(
            irr.fixed_due(d(1), d(1)) && !irr.fixed_due(d(1), d(2)) && irr.fixed_due(d(1), d(3))
        );
        assert!(IrrigationSchedule { every_days: None, ..irr.clone() }.check().is_err());
        assert!(IrrigationSchedule { minutes: -5.0, ..irr.clone() }.check().is_err());
        assert!(IrrigationSchedule { valves: vec![], ..irr }.check().is_err());
    }

    #[test]
    fn measured_savings_against_the_estimate_by_hand() {
        // Before: 2 kWh a day in the window; since: 4 days at 1.2 kWh in the window (and energy
        // outside it, which does not count): 0.8 kWh a day saved, 292 a year, 0.8 of 365.
        let p = plan("dim", Some(50.0));
        let mut since = Profile { days: 4.0, ..Profile::default() };
        since.wh[0] = 4.0 * 1200.0; // 00:00–00:15, in the window
        since.wh[50] = 9999.0; // 12:30, outside
        let m = measured(&p, &since).unwrap().unwrap();
        assert!((m.window_kwh_per_day - 1.2).abs() < 1e-9);
        assert!((m.kwh_per_day - 0.8).abs() < 1e-9);
        assert!((m.kwh_per_year - 292.0).abs() < 1e-9);
        assert!((m.of_estimate.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(measured(&p, &Profile::default()).unwrap(), None);
    }
}
