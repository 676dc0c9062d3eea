//! Irrigation of green spaces: waterings detected from the soil moisture's rises, the soil's
//! drying rate, and whether a zone needs water tonight — from its moisture, that trend, and the
//! rain expected when a forecast is given. Moisture is volumetric water content in %; times are
//! Unix seconds.

use crate::bins::fit;
use crate::{Error, Result};

/// A rise of at least this many points within [`RISE_WINDOW_S`] is a watering (or heavy rain).
pub const MIN_RISE: f64 = 4.0;
/// The window a watering's rise is looked for in.
pub const RISE_WINDOW_S: i64 = 3 * 3600;

/// A watering seen in the soil: when the rise started, and the moisture before and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watering {
    /// Time of the reading before the rise.
    pub t: i64,
    /// Moisture before (%).
    pub before: f64,
    /// Highest moisture within the window (%).
    pub after: f64,
}

/// Waterings in time-ordered readings: a reading from which the moisture rises `min_rise` points
/// or more within `RISE_WINDOW_S`; the next one is looked for after that window.
pub fn waterings(levels: &[(i64, f64)], min_rise: f64) -> Vec<Watering> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < levels.len() {
        let (t0, v0) = levels[i];
        let peak = levels[i + 1..]
            .iter()
            .take_while(|p| p.0 - t0 <= RISE_WINDOW_S)
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max);
        // A watering starts where the moisture turns up: the next reading is higher.
        let turns_up = levels.get(i + 1).is_some_and(|p| p.1 > v0);
        if turns_up && peak - v0 >= min_rise {
            out.push(Watering { t: t0, before: v0, after: peak });
            let end = t0 + RISE_WINDOW_S;
            while i < levels.len() && levels[i].0 <= end {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The soil's drying rate (points per hour, negative when it dries) since the last watering, from
/// a least-squares line through the readings after its peak; `None` with fewer than four.
pub fn drying_rate(levels: &[(i64, f64)]) -> Option<f64> {
    let since = waterings(levels, MIN_RISE).last().map_or(i64::MIN, |w| w.t + RISE_WINDOW_S);
    let tail: Vec<(i64, f64)> = levels.iter().copied().filter(|p| p.0 > since).collect();
    fit(&tail).filter(|f| f.n >= 4).map(|f| f.rate)
}

/// What to do tonight in a zone, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// Water tonight.
    pub irrigate: bool,
    /// Moisture expected at the next check (now + horizon) without watering (%).
    pub projected: f64,
    /// Why, in a sentence an operator reads (English; the dashboard translates by `code`).
    pub reason: String,
    /// `dry`, `will_be_dry`, `rain_expected`, `moist`.
    pub code: &'static str,
}

/// A zone's need for water: `moisture` now, its drying `rate` (%/h, negative when drying), the
/// `threshold` under which the plants suffer, `horizon_h` until the next chance to water (24 h
/// for a nightly decision), and the rain expected over that horizon when a forecast is known.
/// Hot weather dries faster: `hot` multiplies the drying rate (1 when unknown). Rain of
/// `rain_enough_mm` or more postpones watering.
pub fn advise(
    moisture: f64,
    rate: f64,
    threshold: f64,
    horizon_h: f64,
    rain_mm: Option<f64>,
    hot: f64,
) -> Advice {
    const RAIN_ENOUGH_MM: f64 = 5.0;
    let projected = moisture + rate.min(0.0) * hot * horizon_h;
    if rain_mm.is_some_and(|r| r >= RAIN_ENOUGH_MM) {
        return Advice {
            irrigate: false,
            projected,
            reason: format!("{:.0} mm of rain expected", rain_mm.unwrap_or(0.0)),
            code: "rain_expected",
        };
    }
    if moisture < threshold {
        Advice {
            irrigate: true,
            projected,
            reason: format!("moisture {moisture:.1} % is below the {threshold:.0} % threshold"),
            code: "dry",
        }
    } else if projected < threshold {
        Advice {
            irrigate: true,
            projected,
            reason: format!(
                "at {:.2} %/h the soil will be at {projected:.1} % within {horizon_h:.0} h, \
                 below the {threshold:.0} % threshold",
                rate * hot
            ),
            code: "will_be_dry",
        }
    } else {
        Advice {
            irrigate: false,
            projected,
            reason: format!(
                "{projected:.1} % expected within {horizon_h:.0} h, above {threshold:.0} %"
            ),
            code: "moist",
        }
    }
}

/// How much faster the soil will dry tomorrow than it did today, from the days' lowest and highest
/// temperatures (°C): the ratio of their reference evapotranspiration by Hargreaves and Samani
/// (1985), ET0 = 0.0023 · Ra · (Tmean + 17.8) · √(Tmax − Tmin), in which the extraterrestrial
/// radiation Ra of two consecutive days at one place cancels out. `None` when a day's range is
/// not positive. Clamped to 0.25–4 (a forecast is not trusted beyond).
pub fn hargreaves_ratio(today: (f64, f64), tomorrow: (f64, f64)) -> Option<f64> {
    let demand = |(lo, hi): (f64, f64)| {
        (hi > lo && lo.is_finite() && hi.is_finite())
            .then(|| ((lo + hi) / 2.0 + 17.8) * (hi - lo).sqrt())
    };
    let (a, b) = (demand(today)?, demand(tomorrow)?);
    (a > 0.0).then(|| (b / a).clamp(0.25, 4.0))
}

/// A zone's watering: its dry threshold, the flow of its valves, how long a watering lasts,
/// and the fixed schedule it had before (every so many days), to compare with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Moisture under which the zone's plants suffer (%).
    pub threshold: f64,
    /// Flow while watering, m³/h.
    pub flow_m3_h: f64,
    /// Minutes a watering lasts.
    pub minutes: f64,
    /// The fixed schedule: a watering every this many days.
    pub fixed_every_days: u32,
}

impl Plan {
    /// Checks the plan's numbers.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=100.0).contains(&self.threshold) {
            return Err(Error::invalid(format!(
                "a dry threshold is a moisture between 0 and 100 %, not {}",
                self.threshold
            )));
        }
        if !self.flow_m3_h.is_finite() || self.flow_m3_h <= 0.0 || self.flow_m3_h > 1000.0 {
            return Err(Error::invalid(format!(
                "a flow must be more than 0 and at most 1,000 m³/h, not {}",
                self.flow_m3_h
            )));
        }
        if !self.minutes.is_finite() || self.minutes <= 0.0 || self.minutes > 720.0 {
            return Err(Error::invalid(format!(
                "a watering lasts more than 0 and at most 720 minutes, not {}",
                self.minutes
            )));
        }
        if self.fixed_every_days == 0 || self.fixed_every_days > 31 {
            return Err(Error::invalid(format!(
                "a fixed schedule waters every 1 to 31 days, not {}",
                self.fixed_every_days
            )));
        }
        Ok(())
    }

    /// m³ of one watering.
    pub fn volume_m3(&self) -> f64 {
        self.flow_m3_h * self.minutes / 60.0
    }

    /// Waterings of the fixed schedule in `days` days.
    pub fn fixed_waterings(&self, days: u32) -> u32 {
        days.div_ceil(self.fixed_every_days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    /// Moisture falling 0.5 point an hour from 30 %, watered (+10 points over two hours) at
    /// hour 20 and at hour 44, read every 30 minutes.
    fn soil() -> Vec<(i64, f64)> {
        let mut v = Vec::new();
        let mut m = 30.0;
        for k in 0..120 {
            let t = k * 1800;
            let h = t / H;
            v.push((t, m));
            m += if (h == 20 || h == 21 || h == 44 || h == 45) && t % H == 0 { 5.0 } else { -0.25 };
        }
        v
    }

    #[test]
    fn waterings_and_drying_rate_on_a_known_soil() {
        let s = soil();
        let w = waterings(&s, MIN_RISE);
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(w[0].t, 20 * H);
        assert!((w[0].after - w[0].before - 9.75).abs() < 1e-9, "{:?}", w[0]);
        assert_eq!(w[1].t, 44 * H);
        // After the last watering it dries 0.25 per half hour: −0.5 %/h.
        assert!((drying_rate(&s).unwrap() + 0.5).abs() < 1e-9);
    }

    #[test]
    fn advice_by_hand() {
        // 22 % drying 0.5 %/h: 10 % tomorrow night, under 15 → water.
        let a = advise(22.0, -0.5, 15.0, 24.0, None, 1.0);
        assert!(a.irrigate && a.code == "will_be_dry" && (a.projected - 10.0).abs() < 1e-9);
        // Same soil, 8 mm of rain coming: wait.
        assert_eq!(advise(22.0, -0.5, 15.0, 24.0, Some(8.0), 1.0).code, "rain_expected");
        // Already under the threshold.
        assert_eq!(advise(12.0, 0.0, 15.0, 24.0, Some(1.0), 1.0).code, "dry");
        // 30 % drying 0.2 %/h: 25.2 % → no.
        let a = advise(30.0, -0.2, 15.0, 24.0, None, 1.0);
        assert!(!a.irrigate && (a.projected - 25.2).abs() < 1e-9);
        // A heatwave doubling the drying tips it: 30 − 0.4 × 24 = 20.4; 0.3 %/h doubled → 15.6;
        // at 0.35 %/h doubled → 13.2 → water.
        assert!(advise(30.0, -0.35, 15.0, 24.0, None, 2.0).irrigate);
        assert!(!advise(30.0, -0.35, 15.0, 24.0, None, 1.0).irrigate);
    }

    #[test]
    fn hargreaves_ratio_by_hand() {
        // Today 10–20 °C: (15 + 17.8) · √10 = 103.72; tomorrow 15–31 °C: (23 + 17.8) · √16 =
        // 163.2: the soil dries 1.5735 times as fast.
        let r = hargreaves_ratio((10.0, 20.0), (15.0, 31.0)).unwrap();
        assert!((r - 163.2 / (32.8 * 10f64.sqrt())).abs() < 1e-12);
        assert!((r - 1.5735).abs() < 1e-4);
        assert_eq!(hargreaves_ratio((10.0, 20.0), (10.0, 20.0)), Some(1.0));
        assert_eq!(hargreaves_ratio((20.0, 20.0), (10.0, 20.0)), None);
        assert_eq!(hargreaves_ratio((0.0, 30.0), (-10.0, -9.9)), Some(0.25));
    }

    #[test]
    fn plans_check_their_numbers() {
        let p = Plan { threshold: 18.0, flow_m3_h: 3.0, minutes: 30.0, fixed_every_days: 2 };
        p.check().unwrap();
        assert_eq!(p.volume_m3(), 1.5);
        assert_eq!(p.fixed_waterings(30), 15);
        assert_eq!(p.fixed_waterings(31), 16);
        assert!(Plan { flow_m3_h: -1.0, ..p }.check().unwrap_err().to_string().contains("flow"));
        assert!(Plan { threshold: 120.0, ..p }.check().is_err());
        assert!(Plan { fixed_every_days: 0, ..p }.check().is_err());
    }
}
