//! Street lighting: energy integrated from power readings or from a lamp's rated power and its
//! on/off state, what it costs (a tariff with off-peak hours) and emits, burning hours judged
//! against the sun, fault episodes and their repair times, and the savings of dimming scenarios
//! on a measured burning profile.
//!
//! Times are Unix seconds; a day is cut into 96 quarter-hours of local time by the caller, who
//! knows the time zone. Gaps are never counted as anything: an interval longer than `max_gap`
//! between two readings is reported as uncovered and contributes no energy and no burning time.

use crate::{Error, Result};

/// Quarter-hours in a local day.
pub const QUARTERS: usize = 96;

/// How a signal is integrated between two readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Linear between readings (power, sampled).
    Trapezoid,
    /// Each reading holds until the next (a state: lit or not, a dimming level).
    Step,
}

/// What one slice `[edges[i], edges[i+1])` received: ∫ value dt (value × seconds) and the seconds
/// covered by readings no further apart than `max_gap`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slice {
    /// ∫ value dt over the covered time (for watts: joules; ÷ 3,600 for Wh).
    pub integral: f64,
    /// Seconds covered.
    pub covered_s: f64,
}

/// Integrates time-ordered readings `(t, value)` into the slices between consecutive `edges`
/// (ascending). An interval between two readings longer than `max_gap_s` is a gap. With
/// [`Rule::Step`], the last reading also holds for up to `max_gap_s` after it (a state stays
/// until it is reported again), and each reading holds backwards for nothing.
pub fn integrate(samples: &[(i64, f64)], max_gap_s: i64, edges: &[i64], rule: Rule) -> Vec<Slice> {
    let mut out = vec![Slice::default(); edges.len().saturating_sub(1)];
    if out.is_empty() {
        return out;
    }
    let mut add = |a: i64, b: i64, va: f64, vb: f64| {
        // Piecewise-linear from (a, va) to (b, vb); split across slices.
        let (lo, hi) = (edges[0], edges[edges.len() - 1]);
        let (s, e) = (a.max(lo), b.min(hi));
        if s >= e {
            return;
        }
        let at = |t: i64| {
            if b == a { va } else { va + (vb - va) * (t - a) as f64 / (b - a) as f64 }
        };
        let first = edges.partition_point(|&x| x <= s).saturating_sub(1);
        for (i, slot) in out.iter_mut().enumerate().skip(first) {
            let (x0, x1) = (edges[i].max(s), edges[i + 1].min(e));
            if x0 >= e {
                break;
            }
            if x0 < x1 {
                slot.integral += (at(x0) + at(x1)) / 2.0 * (x1 - x0) as f64;
                slot.covered_s += (x1 - x0) as f64;
            }
        }
    };
    for w in samples.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        if t1 <= t0 || t1 - t0 > max_gap_s {
            continue;
        }
        match rule {
            Rule::Trapezoid => add(t0, t1, v0, v1),
            Rule::Step => add(t0, t1, v0, v0),
        }
    }
    if rule == Rule::Step
        && let Some(&(t, v)) = samples.last()
    {
        add(t, t + max_gap_s, v, v);
    }
    out
}

/// An electricity tariff: a price per kWh, a cheaper one in off-peak hours (local minutes of the
/// day, windows that may cross midnight), and the emission factor of the electricity.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    /// €/kWh in full-price hours.
    pub eur_per_kwh: f64,
    /// €/kWh in off-peak hours.
    pub off_peak_eur_per_kwh: f64,
    /// Off-peak windows `[from, to)` in local minutes (0–1440), `to < from` crossing midnight.
    pub off_peak: Vec<(u32, u32)>,
    /// kg CO2e per kWh.
    pub kg_co2e_per_kwh: f64,
}

/// ADEME's Base Empreinte: French electricity, 2022 average mix, consumption — 0.052 kg CO2e/kWh.
pub const FRENCH_GRID_KG_CO2E_PER_KWH: f64 = 0.052;

impl Tariff {
    /// Checks the tariff: prices and factor finite and not negative, windows within a day and on
    /// quarter-hours (the resolution of burning profiles).
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("eur_per_kwh", self.eur_per_kwh),
            ("off_peak_eur_per_kwh", self.off_peak_eur_per_kwh),
            ("kg_co2e_per_kwh", self.kg_co2e_per_kwh),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(format!(
                    "{name} must be a price or factor of zero or more, not {v}"
                )));
            }
        }
        for &(a, b) in &self.off_peak {
            quarter_minute("an off-peak window", a)?;
            quarter_minute("an off-peak window", b)?;
            if a == b {
                return Err(Error::invalid(format!("the off-peak window {} is empty", hhmm(a))));
            }
        }
        Ok(())
    }

    /// Whether quarter-hour `q` (0–95) of the local day is off-peak.
    pub fn off_peak_quarter(&self, q: usize) -> bool {
        let m = (q * 15) as u32;
        self.off_peak.iter().any(|&(a, b)| within(m, a, b))
    }

    /// Cost in € of `wh` consumed in quarter-hour `q`.
    pub fn cost(&self, q: usize, wh: f64) -> f64 {
        let price =
            if self.off_peak_quarter(q) { self.off_peak_eur_per_kwh } else { self.eur_per_kwh };
        wh / 1000.0 * price
    }
}

/// Whether local minute `m` lies in `[a, b)`, crossing midnight when `b < a`.
fn within(m: u32, a: u32, b: u32) -> bool {
    if a <= b { (a..b).contains(&m) } else { m >= a || m < b }
}

fn quarter_minute(what: &str, m: u32) -> Result<()> {
    if m > 1440 || !m.is_multiple_of(15) {
        return Err(Error::invalid(format!(
            "{what} must start and end on a quarter-hour between 00:00 and 24:00, not {}",
            hhmm(m)
        )));
    }
    Ok(())
}

/// `HH:MM` of a local minute.
pub fn hhmm(m: u32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// Parses `HH:MM` (00:00–24:00) into a local minute.
pub fn parse_hhmm(s: &str) -> Result<u32> {
    let bad = || Error::invalid(format!("a time of day is written HH:MM, not {s:?}"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let digits = |x: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&x.len()) && x.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A measured burning profile by local quarter-hour, summed over the days it covers: the energy
/// drawn (Wh) and the energy the same lamps would have drawn at full output (Wh: the energy
/// divided by the dimming level where one is reported, the energy itself otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Wh drawn in each quarter-hour.
    pub wh: [f64; QUARTERS],
    /// Wh at full output in each quarter-hour.
    pub full_wh: [f64; QUARTERS],
    /// Days the profile sums.
    pub days: f64,
}

impl Default for Profile {
    fn default() -> Self {
        Profile { wh: [0.0; QUARTERS], full_wh: [0.0; QUARTERS], days: 0.0 }
    }
}

impl Profile {
    /// Adds another profile (another lamp or day).
    pub fn add(&mut self, other: &Profile) {
        for q in 0..QUARTERS {
            self.wh[q] += other.wh[q];
            self.full_wh[q] += other.full_wh[q];
        }
    }
    /// Total Wh.
    pub fn total_wh(&self) -> f64 {
        self.wh.iter().sum()
    }
}

/// A dimming scenario over a window of local time (quarter-hours, possibly crossing midnight).
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Output lowered to `level` (0–1 of full output) in the window; lamps already lower stay so.
    Dim {
        /// Share of full output kept.
        level: f64,
        /// Window start, local minutes.
        from: u32,
        /// Window end, local minutes.
        to: u32,
    },
    /// Lamps switched off in the window.
    Off {
        /// Window start, local minutes.
        from: u32,
        /// Window end, local minutes.
        to: u32,
    },
    /// Lamps kept at `base` (0–1) and raised to full output while someone passes, which happens
    /// `presence` (0–1) of the time in the window.
    Presence {
        /// Output when nobody is there.
        base: f64,
        /// Share of the window with someone present.
        presence: f64,
        /// Window start, local minutes.
        from: u32,
        /// Window end, local minutes.
        to: u32,
    },
}

impl Scenario {
    /// Checks levels in 0–1 and windows on quarter-hours.
    pub fn check(&self) -> Result<()> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "{name} must be between 0 and 100 %, not {}",
                    v * 100.0
                )))
            }
        };
        let (from, to) = self.window();
        match *self {
            Scenario::Dim { level, .. } => share("the dimming level", level)?,
            Scenario::Off { .. } => {}
            Scenario::Presence { base, presence, .. } => {
                share("the level without presence", base)?;
                share("the share of time with presence", presence)?;
            }
        }
        quarter_minute("a scenario's window", from)?;
        quarter_minute("a scenario's window", to)?;
        if from == to {
            return Err(Error::invalid("a scenario's window must not be empty"));
        }
        Ok(())
    }

    /// The window `(from, to)` in local minutes.
    pub fn window(&self) -> (u32, u32) {
        match *self {
            Scenario::Dim { from, to, .. }
            | Scenario::Off { from, to }
            | Scenario::Presence { from, to, .. } => (from, to),
        }
    }

    /// Share of full output the scenario allows in quarter-hour `q`, or `None` outside its window.
    pub fn ceiling(&self, q: usize) -> Option<f64> {
        let (from, to) = self.window();
        if !within((q * 15) as u32, from % 1440, to % 1440) && from % 1440 != to % 1440 {
            return None;
        }
        Some(match *self {
            Scenario::Dim { level, .. } => level,
            Scenario::Off { .. } => 0.0,
            Scenario::Presence { base, presence, .. } => presence + (1.0 - presence) * base,
        })
    }

    /// The energy (Wh per quarter-hour) the profile's lamps would draw under the scenario: in its
    /// window, the full-output energy times the scenario's share, never more than was drawn.
    pub fn apply(&self, p: &Profile) -> [f64; QUARTERS] {
        let mut out = p.wh;
        for (q, wh) in out.iter_mut().enumerate() {
            if let Some(share) = self.ceiling(q) {
                *wh = wh.min(p.full_wh[q] * share);
            }
        }
        out
    }
}

/// What a scenario saves on a profile: energy, money and emissions, over the profile's days and
/// scaled to a year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Savings {
    /// kWh saved over the profile's days.
    pub kwh: f64,
    /// € saved over the profile's days.
    pub eur: f64,
    /// kg CO2e avoided over the profile's days.
    pub kg_co2e: f64,
    /// kWh drawn over the profile's days, without the scenario.
    pub baseline_kwh: f64,
    /// The same four a year: × 365 / days.
    pub per_year: [f64; 4],
}

/// The savings of `scenario` on `profile` at `tariff`.
pub fn savings(profile: &Profile, scenario: &Scenario, tariff: &Tariff) -> Savings {
    let after = scenario.apply(profile);
    let (mut wh, mut eur) = (0.0, 0.0);
    for (q, after) in after.iter().enumerate() {
        let saved = profile.wh[q] - after;
        wh += saved;
        eur += tariff.cost(q, saved);
    }
    let kwh = wh / 1000.0;
    let kg = kwh * tariff.kg_co2e_per_kwh;
    let baseline = profile.total_wh() / 1000.0;
    let scale = if profile.days > 0.0 { 365.0 / profile.days } else { 0.0 };
    Savings {
        kwh,
        eur,
        kg_co2e: kg,
        baseline_kwh: baseline,
        per_year: [kwh * scale, eur * scale, kg * scale, baseline * scale],
    }
}

/// A fault that began and, when `end` is set, was repaired: from the first faulty observation to
/// the first normal one after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    /// First faulty observation.
    pub start: i64,
    /// First normal observation after it, if any yet.
    pub end: Option<i64>,
}

impl Episode {
    /// Seconds from the fault to the repair.
    pub fn repair_s(&self) -> Option<i64> {
        self.end.map(|e| e - self.start)
    }
}

/// Fault episodes from time-ordered observations `(t, faulty)`.
pub fn episodes(observations: &[(i64, bool)]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    let mut open: Option<i64> = None;
    for &(t, faulty) in observations {
        match (open, faulty) {
            (None, true) => open = Some(t),
            (Some(s), false) => {
                out.push(Episode { start: s, end: Some(t) });
                open = None;
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push(Episode { start: s, end: None });
    }
    out
}

/// Whether a lamp status reported by a device means a fault. `ok`, `on`, `off` and the Smart
/// Data Model's `ok` are normal; anything else (`defectiveLamp`, `columnIssue`, `brokenLantern`,
/// `flickering`, …) is a fault.
pub fn status_is_fault(status: &str) -> bool {
    !matches!(status.trim().to_ascii_lowercase().as_str(), "ok" | "on" | "off" | "normal" | "")
}

/// A lamp's night and day judged against the sun, from its lit state: seconds lit, lit while the
/// sun was up, dark (sun 6° or more below the horizon) and unlit then, and how much of each the
/// readings covered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Burning {
    /// Seconds lit (covered time only).
    pub lit_s: f64,
    /// Seconds covered by readings.
    pub covered_s: f64,
    /// Daylight seconds covered (sunrise to sunset).
    pub day_covered_s: f64,
    /// Seconds lit in daylight.
    pub lit_by_day_s: f64,
    /// Dark seconds covered (civil dusk to civil dawn).
    pub dark_covered_s: f64,
    /// Dark seconds unlit.
    pub dark_unlit_s: f64,
}

impl Burning {
    /// Adds another day or lamp.
    pub fn add(&mut self, o: &Burning) {
        self.lit_s += o.lit_s;
        self.covered_s += o.covered_s;
        self.day_covered_s += o.day_covered_s;
        self.lit_by_day_s += o.lit_by_day_s;
        self.dark_covered_s += o.dark_covered_s;
        self.dark_unlit_s += o.dark_unlit_s;
    }
    /// A lamp lit for most of the daylight it was seen in (at least two hours seen).
    pub fn lit_all_day(&self) -> bool {
        self.day_covered_s >= 7_200.0 && self.lit_by_day_s > 0.5 * self.day_covered_s
    }
    /// A lamp unlit for most of the dark it was seen in (at least two hours seen).
    pub fn never_lit(&self) -> bool {
        self.dark_covered_s >= 7_200.0 && self.dark_unlit_s > 0.9 * self.dark_covered_s
    }
}

/// Burning over `[day_start, day_end)` with the sun's `(sunrise, sunset)` and
/// `(civil_dawn, civil_dusk)` that day: `lit` are time-ordered `(t, 1.0 lit / 0.0 not)` readings.
pub fn burning(
    lit: &[(i64, f64)],
    max_gap_s: i64,
    (day_start, day_end): (i64, i64),
    (sunrise, sunset): (i64, i64),
    (civil_dawn, civil_dusk): (i64, i64),
) -> Burning {
    let cut = |edges: &[i64]| integrate(lit, max_gap_s, edges, Rule::Step);
    let clamp = |t: i64| t.clamp(day_start, day_end);
    let day = cut(&[clamp(sunrise), clamp(sunset)]);
    let morning = cut(&[day_start, clamp(civil_dawn)]);
    let evening = cut(&[clamp(civil_dusk), day_end]);
    let whole = cut(&[day_start, day_end]);
    let dark_covered = morning[0].covered_s + evening[0].covered_s;
    let dark_lit = morning[0].integral + evening[0].integral;
    Burning {
        lit_s: whole[0].integral,
        covered_s: whole[0].covered_s,
        day_covered_s: day[0].covered_s,
        lit_by_day_s: day[0].integral,
        dark_covered_s: dark_covered,
        dark_unlit_s: dark_covered - dark_lit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    #[test]
    fn trapezoids_by_hand_with_a_gap_and_irregular_sampling() {
        // 0 → 100 W over 15 min, 100 W for 10 min, then 5 min to 40 W; a 2 h gap; 40 → 40 W
        // over 20 min. By hand: 0.25 h × 50 W = 12.5 Wh; 100 × 1/6 = 16.667 Wh;
        // 70 × 1/12 = 5.833 Wh; the gap counts nothing; 40 × 1/3 = 13.333 Wh. Total 48.333 Wh.
        let s = [(0, 0.0), (900, 100.0), (1500, 100.0), (1800, 40.0), (9000, 40.0), (10_200, 40.0)];
        let e = integrate(&s, 1800, &[0, 20_000], Rule::Trapezoid);
        assert!((e[0].integral / 3600.0 - 48.3333).abs() < 1e-3, "{}", e[0].integral / 3600.0);
        assert_eq!(e[0].covered_s, 1800.0 + 1200.0);
        // Split at the first hour: the ramp 1800 → 3600 is in the gap, so hour 0 holds all of
        // the first 30 min (35 Wh) and hour 2 the last 20 minutes.
        let e = integrate(&s, 1800, &[0, H, 2 * H, 3 * H], Rule::Trapezoid);
        assert!((e[0].integral / 3600.0 - 35.0).abs() < 1e-9);
        assert_eq!((e[1].integral, e[1].covered_s), (0.0, 0.0));
        assert!((e[2].integral / 3600.0 - 13.3333).abs() < 1e-3);
        // A slice boundary inside a ramp: 0 → 100 W over 15 min cut at 10 min: by hand
        // ∫0..600 of t/9 W = 600²/18 = 20,000 J; the rest 12.5 Wh × 3600 − 20,000 = 25,000 J.
        let e = integrate(&s[..2], 1800, &[0, 600, 900], Rule::Trapezoid);
        assert!((e[0].integral - 20_000.0).abs() < 1e-6 && (e[1].integral - 25_000.0).abs() < 1e-6);
    }

    #[test]
    fn states_hold_until_the_next_reading() {
        // Lit at 0, unlit at 600, lit at 1200 and then silent: held for max_gap (900 s) only.
        let s = [(0, 1.0), (600, 0.0), (1200, 1.0)];
        let e = integrate(&s, 900, &[0, 10_000], Rule::Step);
        assert_eq!((e[0].integral, e[0].covered_s), (600.0 + 900.0, 1200.0 + 900.0));
    }

    #[test]
    fn burning_against_the_sun() {
        // A day 0..24 h, sunrise 7 h, sunset 17 h, civil dawn 6.5 h, dusk 17.5 h. A lamp read
        // every 15 min, lit from 17.25 h to 6.75 h, and (fault) also lit 12 h to 14 h.
        let lit_at = |t: i64| {
            let h = t as f64 / 3600.0;
            !(6.75..17.25).contains(&h) || (12.0..14.0).contains(&h)
        };
        let s: Vec<(i64, f64)> =
            (0..96).map(|i| (i * 900, if lit_at(i * 900) { 1.0 } else { 0.0 })).collect();
        let b = burning(&s, 1800, (0, 24 * H), (7 * H, 17 * H), (6 * H + 1800, 17 * H + 1800));
        assert_eq!(b.covered_s, 86_400.0);
        assert_eq!(b.lit_s, (6.75 + 6.75 + 2.0) * 3600.0);
        assert_eq!(b.lit_by_day_s, 2.0 * 3600.0);
        assert_eq!(b.dark_covered_s, 13.0 * 3600.0);
        assert_eq!(b.dark_unlit_s, 0.0);
        assert!(!b.lit_all_day() && !b.never_lit());
        let dark: Vec<(i64, f64)> = s.iter().map(|&(t, _)| (t, 0.0)).collect();
        assert!(burning(&dark, 1800, (0, 86_400), (7 * H, 17 * H), (6 * H, 18 * H)).never_lit());
        let day: Vec<(i64, f64)> = s.iter().map(|&(t, _)| (t, 1.0)).collect();
        assert!(burning(&day, 1800, (0, 86_400), (7 * H, 17 * H), (6 * H, 18 * H)).lit_all_day());
    }

    fn tariff() -> Tariff {
        Tariff {
            eur_per_kwh: 0.20,
            off_peak_eur_per_kwh: 0.15,
            off_peak: vec![(22 * 60, 6 * 60)],
            kg_co2e_per_kwh: 0.052,
        }
    }

    #[test]
    fn a_scenario_saves_the_hand_computed_difference() {
        // 10 lamps of 50 W lit at full output from 18:00 to 07:00 for 30 days, no dimming.
        let mut p = Profile { days: 30.0, ..Profile::default() };
        for q in (72..96).chain(0..28) {
            p.wh[q] = 10.0 * 50.0 * 0.25 * 30.0;
            p.full_wh[q] = p.wh[q];
        }
        let t = tariff();
        // Dim to 50 % from 23:00 to 05:00: 6 h × 10 × 25 W × 30 days = 45 kWh, all off-peak:
        // 45 × 0.15 = 6.75 €, 45 × 0.052 = 2.34 kg.
        let dim = Scenario::Dim { level: 0.5, from: 23 * 60, to: 5 * 60 };
        dim.check().unwrap();
        let s = savings(&p, &dim, &t);
        assert!((s.kwh - 45.0).abs() < 1e-9 && (s.eur - 6.75).abs() < 1e-9);
        assert!((s.kg_co2e - 2.34).abs() < 1e-9);
        assert!((s.per_year[0] - 45.0 * 365.0 / 30.0).abs() < 1e-9);
        // Off 01:00–05:00: 4 h × 500 W × 30 = 60 kWh. Off from 18:00 to 20:00 (peak): 30 kWh at
        // 0.20 = 6 €.
        let off = Scenario::Off { from: 60, to: 300 };
        assert!((savings(&p, &off, &t).kwh - 60.0).abs() < 1e-9);
        let early = savings(&p, &Scenario::Off { from: 18 * 60, to: 20 * 60 }, &t);
        assert!((early.kwh - 30.0).abs() < 1e-9 && (early.eur - 6.0).abs() < 1e-9);
        // Presence 00:00–06:00, 20 % base, someone there 10 % of the time: output 28 %,
        // savings 72 % of 6 h × 500 W × 30 = 90 kWh → 64.8 kWh.
        let pres = Scenario::Presence { base: 0.2, presence: 0.1, from: 0, to: 360 };
        assert!((savings(&p, &pres, &t).kwh - 64.8).abs() < 1e-9);
        // Lamps already dimmed to 40 % in the window save nothing more from a 50 % scenario.
        let mut dimmed = p.clone();
        for q in (92..96).chain(0..20) {
            dimmed.wh[q] *= 0.4;
        }
        assert!(savings(&dimmed, &dim, &t).kwh.abs() < 1e-9);
    }

    #[test]
    fn bad_tariffs_and_scenarios_are_refused_with_reasons() {
        let mut t = tariff();
        t.eur_per_kwh = -1.0;
        assert!(t.check().unwrap_err().to_string().contains("eur_per_kwh"));
        let mut t = tariff();
        t.off_peak = vec![(22 * 60 + 7, 360)];
        assert!(t.check().unwrap_err().to_string().contains("22:07"));
        assert!(tariff().check().is_ok());
        assert!(tariff().off_peak_quarter(0) && !tariff().off_peak_quarter(40));
        assert!(Scenario::Dim { level: 1.5, from: 0, to: 60 }.check().is_err());
        assert!(Scenario::Off { from: 60, to: 60 }.check().is_err());
        assert_eq!(parse_hhmm("23:00").unwrap(), 1380);
        assert_eq!(parse_hhmm("24:00").unwrap(), 1440);
        for bad in ["23", "25:00", "12:60", "ab:cd", "-1:00", "001:00"] {
            assert!(parse_hhmm(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn episodes_and_repair_times() {
        let obs = [(0, false), (10, true), (20, true), (30, false), (40, true)];
        let e = episodes(&obs);
        assert_eq!(e, vec![Episode { start: 10, end: Some(30) }, Episode { start: 40, end: None }]);
        assert_eq!(e[0].repair_s(), Some(20));
        assert!(status_is_fault("defectiveLamp") && !status_is_fault("ok"));
    }
}
