//! Noise indicators: energy means (LAeq over any span), the day-evening-night level Lden of the
//! EU Environmental Noise Directive (2002/49/EC, annex I) with configurable periods, and
//! percentile levels (L10, L50, L90).
//!
//! Sound levels are logarithmic: they are averaged as energy, LAeq,T = 10·log10((1/T)·Σ tᵢ·10^(Lᵢ/10)),
//! never arithmetically. Lden = 10·log10((1/24)·(hd·10^(Ld/10) + he·10^((Le+5)/10) +
//! hn·10^((Ln+10)/10))), hd, he and hn being the periods' lengths in hours (12, 4 and 8 with
//! France's 6–18 / 18–22 / 22–6 and with the directive's default 7–19 / 19–23 / 23–7).

use serde::Serialize;

use crate::{Error, Result};

/// The energy mean of levels (dB), each with its weight (a duration, or 1): `None` when there is
/// no weight at all (nothing measured: not 0 dB, not silence).
pub fn energy_mean(levels: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut energy, mut weight) = (0.0, 0.0);
    for (l, w) in levels {
        if w > 0.0 && l.is_finite() {
            energy += w * 10f64.powf(l / 10.0);
            weight += w;
        }
    }
    (weight > 0.0).then(|| 10.0 * (energy / weight).log10())
}

/// A period of the day for Lden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Period {
    /// Day (Ld).
    Day,
    /// Evening (Le, +5 dB in Lden).
    Evening,
    /// Night (Ln, +10 dB in Lden).
    Night,
}

/// When the day, evening and night start, in local hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DenPeriods {
    /// Start of the day, e.g. 6.
    pub day: u8,
    /// Start of the evening, e.g. 18.
    pub evening: u8,
    /// Start of the night, e.g. 22.
    pub night: u8,
}

impl DenPeriods {
    /// France: day 6–18 h, evening 18–22 h, night 22–6 h.
    pub const FRANCE: DenPeriods = DenPeriods { day: 6, evening: 18, night: 22 };
    /// The directive's default: 7–19, 19–23, 23–7.
    pub const EU_DEFAULT: DenPeriods = DenPeriods { day: 7, evening: 19, night: 23 };

    /// Periods starting at these hours: each at least an hour long, in the order day, evening,
    /// night around the clock.
    pub fn new(day: u8, evening: u8, night: u8) -> Result<Self> {
        let p = DenPeriods { day, evening, night };
        let ok = [day, evening, night].iter().all(|h| *h < 24)
            && p.hours(Period::Day) >= 1
            && p.hours(Period::Evening) >= 1
            && p.hours(Period::Night) >= 1
            && p.hours(Period::Day) + p.hours(Period::Evening) + p.hours(Period::Night) == 24;
        if ok {
            Ok(p)
        } else {
            Err(Error::Invalid(format!(
                "day, evening and night must start at distinct hours 0–23, in that order around \
                 the clock (e.g. 6, 18, 22), not {day}, {evening}, {night}"
            )))
        }
    }

    /// How many hours a period lasts.
    pub fn hours(&self, p: Period) -> u8 {
        let span = |from: u8, to: u8| (to + 24 - from) % 24;
        match p {
            Period::Day => span(self.day, self.evening),
            Period::Evening => span(self.evening, self.night),
            Period::Night => span(self.night, self.day),
        }
    }

    /// The period a local hour (0–23) belongs to.
    pub fn period_of(&self, hour: u8) -> Period {
        let since = |start: u8| (hour + 24 - start) % 24;
        if since(self.day) < self.hours(Period::Day) {
            Period::Day
        } else if since(self.evening) < self.hours(Period::Evening) {
            Period::Evening
        } else {
            Period::Night
        }
    }
}

/// Lden from the three periods' levels.
pub fn lden(ld: f64, le: f64, ln: f64, periods: &DenPeriods) -> f64 {
    let h = |p| f64::from(periods.hours(p));
    let e = h(Period::Day) * 10f64.powf(ld / 10.0)
        + h(Period::Evening) * 10f64.powf((le + 5.0) / 10.0)
        + h(Period::Night) * 10f64.powf((ln + 10.0) / 10.0);
    10.0 * (e / 24.0).log10()
}

/// The levels of one day (or of many days: the hours of each period pooled) from hourly LAeq.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DenLevels {
    /// Day level; absent when no day hour was measured.
    pub ld: Option<f64>,
    /// Evening level.
    pub le: Option<f64>,
    /// Night level.
    pub ln: Option<f64>,
    /// Lden; absent unless all three periods were measured.
    pub lden: Option<f64>,
    /// Hours measured, of the hours asked for (a level on part of its period says so).
    pub hours_measured: u32,
    /// Hours in the span.
    pub hours_expected: u32,
}

/// Ld, Le, Ln and Lden from hourly LAeq values given with their local hour (0–23); `expected` is
/// how many hours the span holds (24 for a day), for the coverage. Missing hours are left out of
/// their period's mean, never counted as silence.
pub fn den_levels(hours: &[(u8, f64)], periods: &DenPeriods, expected: u32) -> DenLevels {
    let mean = |p: Period| {
        energy_mean(
            hours.iter().filter(|(h, _)| periods.period_of(*h) == p).map(|(_, l)| (*l, 1.0)),
        )
    };
    let (ld, le, ln) = (mean(Period::Day), mean(Period::Evening), mean(Period::Night));
    let lden = match (ld, le, ln) {
        (Some(d), Some(e), Some(n)) => Some(lden(d, e, n, periods)),
        _ => None,
    };
    DenLevels {
        ld,
        le,
        ln,
        lden,
        hours_measured: hours.iter().filter(|(_, l)| l.is_finite()).count() as u32,
        hours_expected: expected,
    }
}

/// The level exceeded `pct` % of the time (L10: `pct` = 10) among equally long short-term levels
/// (e.g. 1-minute LAeq): the (100 − pct)-th percentile, interpolated linearly between ranks.
/// `None` without levels.
pub fn exceeded_level(levels: &[f64], pct: f64) -> Result<Option<f64>> {
    if !(0.0..=100.0).contains(&pct) {
        return Err(Error::Invalid(format!("a percentage of time is 0 to 100, not {pct}")));
    }
    let mut v: Vec<f64> = levels.iter().copied().filter(|l| l.is_finite()).collect();
    if v.is_empty() {
        return Ok(None);
    }
    v.sort_by(f64::total_cmp);
    let q = (100.0 - pct) / 100.0;
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Ok(Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn energy_means_worked_by_hand() {
        // 60 dB and 70 dB, half an hour each: 10·log10((10^6 + 10^7)/2) = 67.4036 dB.
        assert!(close(energy_mean([(60.0, 0.5), (70.0, 0.5)]).unwrap(), 67.4036, 1e-4));
        // Equal levels give themselves; nothing gives nothing (not silence).
        assert!(close(energy_mean([(55.0, 3.0), (55.0, 1.0)]).unwrap(), 55.0, 1e-12));
        assert_eq!(energy_mean(std::iter::empty()), None);
        // 80 dB for 1 minute in an hour of 50 dB: (59·10^5 + 10^8)/60 = 1.765·10^6, 62.4674 dB.
        assert!(close(energy_mean([(50.0, 59.0), (80.0, 1.0)]).unwrap(), 62.4674, 1e-4));
    }

    #[test]
    fn lden_worked_by_hand() {
        // Ld 65, Le 60, Ln 55 with 12/4/8 h: (12·10^6.5 + 4·10^6.5 + 8·10^6.5)/24 = 10^6.5: 65 dB.
        assert!(close(lden(65.0, 60.0, 55.0, &DenPeriods::FRANCE), 65.0, 1e-9));
        // Ld = Le = Ln = 50: (12·10^5 + 4·10^5.5 + 8·10^6)/24 = (1.2·10^6 + 1.26491·10^6 +
        // 8·10^6)/24 = 436,038, 56.3952 dB.
        assert!(close(lden(50.0, 50.0, 50.0, &DenPeriods::FRANCE), 56.3952, 1e-4));
    }

    #[test]
    fn lden_against_a_reference_implementation() {
        // python-acoustics 0.2.6, tests/test_descriptors.py (test_lden_float, test_lden_array), 12/4/8 h.
        assert!(close(lden(80.0, 65.0, 45.0, &DenPeriods::FRANCE), 77.14095579, 1e-8));
        assert!(close(lden(70.0, 55.0, 55.0, &DenPeriods::FRANCE), 67.93843392, 1e-8));
        // Equal levels L: L + 6.395243 dB (the +5 and +10 dB penalties).
        assert!(close(lden(42.0, 42.0, 42.0, &DenPeriods::EU_DEFAULT), 48.395243, 1e-6));
    }

    #[test]
    fn periods_france_and_eu() {
        let fr = DenPeriods::FRANCE;
        assert_eq!(
            (fr.hours(Period::Day), fr.hours(Period::Evening), fr.hours(Period::Night)),
            (12, 4, 8)
        );
        assert_eq!(fr.period_of(5), Period::Night);
        assert_eq!(fr.period_of(6), Period::Day);
        assert_eq!(fr.period_of(17), Period::Day);
        assert_eq!(fr.period_of(18), Period::Evening);
        assert_eq!(fr.period_of(22), Period::Night);
        assert_eq!(fr.period_of(0), Period::Night);
        let eu = DenPeriods::EU_DEFAULT;
        assert_eq!(eu.period_of(6), Period::Night);
        assert_eq!(eu.period_of(19), Period::Evening);
        assert_eq!(DenPeriods::new(6, 18, 22).unwrap(), fr);
        assert!(DenPeriods::new(18, 6, 22).is_err());
        assert!(DenPeriods::new(6, 6, 22).is_err());
        assert!(DenPeriods::new(6, 18, 24).is_err());
    }

    #[test]
    fn a_day_from_hours_with_a_gap() {
        let fr = DenPeriods::FRANCE;
        // Every hour at 50 dB except the evening at 60 dB; hour 3 missing.
        let hours: Vec<(u8, f64)> = (0..24u8)
            .filter(|h| *h != 3)
            .map(|h| (h, if fr.period_of(h) == Period::Evening { 60.0 } else { 50.0 }))
            .collect();
        let d = den_levels(&hours, &fr, 24);
        assert_eq!((d.ld, d.le, d.ln), (Some(50.0), Some(60.0), Some(50.0)));
        assert_eq!((d.hours_measured, d.hours_expected), (23, 24));
        assert!(close(d.lden.unwrap(), lden(50.0, 60.0, 50.0, &fr), 1e-12));
        // No night hour: no Ln and no Lden (never a night of silence).
        let day_only: Vec<(u8, f64)> = (6..22u8).map(|h| (h, 50.0)).collect();
        let d = den_levels(&day_only, &fr, 24);
        assert_eq!((d.ln, d.lden), (None, None));
    }

    #[test]
    fn percentile_levels() {
        // 1..=100 dB: L10 (exceeded 10 % of the time) is the 90th percentile, 90.1 with
        // interpolation between ranks (position 0.9·99 = 89.1 → 90 + 0.1).
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!(close(exceeded_level(&v, 10.0).unwrap().unwrap(), 90.1, 1e-9));
        assert!(close(exceeded_level(&v, 50.0).unwrap().unwrap(), 50.5, 1e-9));
        assert!(close(exceeded_level(&v, 90.0).unwrap().unwrap(), 10.9, 1e-9));
        assert_eq!(exceeded_level(&[], 10.0).unwrap(), None);
        assert_eq!(exceeded_level(&[42.0], 10.0).unwrap(), Some(42.0));
        assert!(exceeded_level(&v, 120.0).is_err());
    }
}
