//! The shape of a place's footfall: the day-of-week × hour heat map (mean passers-by per hour of
//! each weekday over a period) and the typical day (for one weekday, the median and the 10th and
//! 90th percentiles of each hour's count over the days of a reference period), against which a
//! live day is drawn. Hours without a count are left out and counted, never taken as zero.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;

/// Counts per local (day, hour 0–23); `None`: an hour without data from every counter.
pub type Hours = BTreeMap<(NaiveDate, u32), Option<f64>>;

/// One cell of the heat map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cell {
    /// Mean passers-by in that hour, over the hours with data (`None`: none had).
    pub mean: Option<f64>,
    /// Hours averaged.
    pub hours: usize,
    /// Hours of that weekday and hour in the period without data.
    pub missing: usize,
}

/// The heat map: `cells[weekday from Monday][hour]`.
pub fn heat_map(hours: &Hours, keep: &dyn Fn(NaiveDate) -> bool) -> Vec<Vec<Cell>> {
    let mut acc = vec![vec![(0.0, 0usize, 0usize); 24]; 7];
    for ((day, hour), v) in hours {
        if !keep(*day) || *hour > 23 {
            continue;
        }
        let c = &mut acc[day.weekday().num_days_from_monday() as usize][*hour as usize];
        match v {
            Some(x) => {
                c.0 += x;
                c.1 += 1;
            }
            None => c.2 += 1,
        }
    }
    acc.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|(sum, n, missing)| Cell {
                    mean: (n > 0).then(|| sum / n as f64),
                    hours: n,
                    missing,
                })
                .collect()
        })
        .collect()
}

/// The `p`-th quantile (0–1) of sorted values, interpolated linearly between order statistics
/// (Hyndman & Fan's definition 7, the default of R and NumPy).
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// An hour of the typical day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypicalHour {
    /// The hour (0–23).
    pub hour: u32,
    /// The median count.
    pub median: Option<f64>,
    /// The 10th percentile.
    pub p10: Option<f64>,
    /// The 90th percentile.
    pub p90: Option<f64>,
    /// Days with a count at that hour.
    pub days: usize,
}

/// The typical `weekday` of a place: per hour, over the days of `hours` that are that weekday and
/// kept (say, not a public holiday), the median and 10th–90th percentiles.
pub fn typical_day(
    hours: &Hours,
    weekday: Weekday,
    keep: &dyn Fn(NaiveDate) -> bool,
) -> Vec<TypicalHour> {
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); 24];
    for ((day, hour), v) in hours {
        if day.weekday() == weekday
            && keep(*day)
            && *hour < 24
            && let Some(x) = v
        {
            per[*hour as usize].push(*x);
        }
    }
    per.into_iter()
        .enumerate()
        .map(|(h, mut v)| {
            v.sort_by(f64::total_cmp);
            TypicalHour {
                hour: h as u32,
                median: quantile(&v, 0.5),
                p10: quantile(&v, 0.1),
                p90: quantile(&v, 0.9),
                days: v.len(),
            }
        })
        .collect()
}

/// What is wrong with a counter's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum CounterProblem {
    /// It reported zero for hours in a row when it usually counts people then (a blocked or
    /// misaligned sensor).
    Zeros {
        /// The first and last hour of the longest run.
        from_hour: u32,
        /// Inclusive.
        to_hour: u32,
        /// What it usually counts over those hours (the typical day's medians).
        usual: f64,
    },
    /// It counted far below its typical day over the hours it reported.
    FarBelow {
        /// What it counted over the hours compared.
        counted: f64,
        /// The typical day's medians over the same hours.
        usual: f64,
        /// The hours compared.
        hours: usize,
    },
}

/// How a counter's day is judged against its typical day.
#[derive(Debug, Clone, Copy)]
pub struct HealthRules {
    /// Hours in a row at zero that flag it, when the typical day expects people then.
    pub zero_hours: u32,
    /// The typical count over a run of zeros above which zeros are not believable.
    pub zero_usual_min: f64,
    /// The share of its usual count below which a day is far below (0.3: under 30 %).
    pub far_below_share: f64,
    /// The typical count over the hours compared below which no judgement is made (a quiet
    /// place, or too few hours yet).
    pub far_below_usual_min: f64,
}

impl Default for HealthRules {
    fn default() -> Self {
        Self {
            zero_hours: 3,
            zero_usual_min: 100.0,
            far_below_share: 0.3,
            far_below_usual_min: 200.0,
        }
    }
}

/// A counter's problems on a day: `hours[h]` its counts (`None`: no data, which the fleet's
/// reporting check covers, so not judged here), against its typical day for that weekday. Only
/// the hours both have are compared.
pub fn counter_health(
    hours: &[Option<f64>],
    typical: &[TypicalHour],
    rules: &HealthRules,
) -> Vec<CounterProblem> {
    let usual = |h: usize| typical.get(h).and_then(|t| t.median);
    let mut out = Vec::new();
    // Runs of zeros where the typical day expects people: each judged, the one that would have
    // counted most reported.
    let mut best: Option<(usize, usize, f64)> = None;
    let mut run: Option<(usize, f64)> = None;
    for h in 0..=hours.len().min(24) {
        let zero =
            h < hours.len().min(24) && hours[h] == Some(0.0) && usual(h).is_some_and(|u| u > 0.0);
        if zero {
            let (start, sum) = run.unwrap_or((h, 0.0));
            run = Some((start, sum + usual(h).unwrap_or(0.0)));
        } else if let Some((start, sum)) = run.take() {
            let long = (h - start) as u32 >= rules.zero_hours;
            if long && sum >= rules.zero_usual_min && best.is_none_or(|(_, _, u)| sum > u) {
                best = Some((start, h - 1, sum));
            }
        }
    }
    if let Some((a, b, u)) = best {
        out.push(CounterProblem::Zeros { from_hour: a as u32, to_hour: b as u32, usual: u });
    }
    let (mut counted, mut expected, mut n) = (0.0, 0.0, 0);
    for (h, v) in hours.iter().enumerate().take(24) {
        if let (Some(v), Some(u)) = (v, usual(h)) {
            counted += v;
            expected += u;
            n += 1;
        }
    }
    if expected >= rules.far_below_usual_min && counted < rules.far_below_share * expected {
        out.push(CounterProblem::FarBelow { counted, usual: expected, hours: n });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn quantiles_as_numpy_computes_them() {
        // numpy.percentile([1..11], [10, 50, 90]) = [2, 6, 10];
        // numpy.percentile([3, 1, 4, 1, 5], [10, 50, 90]) = [1, 3, 4.6].
        let v: Vec<f64> = (1..=11).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.1), Some(2.0));
        assert_eq!(quantile(&v, 0.5), Some(6.0));
        assert_eq!(quantile(&v, 0.9), Some(10.0));
        let w = [1.0, 1.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&w, 0.1), Some(1.0));
        assert_eq!(quantile(&w, 0.5), Some(3.0));
        assert!((quantile(&w, 0.9).unwrap() - 4.6).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_heat_map_and_typical_day_of_a_series_built_to_know_them() {
        // Eight weeks from Monday 2026-03-02: every hour counts 10 × (weekday number + 1) + hour,
        // plus on Saturdays a week number (0..7) to spread them; one Saturday at 11:00 missing.
        let mut hours = Hours::new();
        let first = d(2026, 3, 2);
        for i in 0..56 {
            let day = first + chrono::Duration::days(i);
            let wd = day.weekday().num_days_from_monday() as f64;
            for h in 0..24 {
                let mut v = 10.0 * (wd + 1.0) + f64::from(h);
                if day.weekday() == Weekday::Sat {
                    v += (i / 7) as f64;
                }
                hours.insert((day, h), Some(v));
            }
        }
        hours.insert((d(2026, 3, 14), 11), None);
        let map = heat_map(&hours, &|_| true);
        // Tuesday 09:00: 10 × 2 + 9 = 29, eight times.
        assert_eq!(map[1][9], Cell { mean: Some(29.0), hours: 8, missing: 0 });
        // Saturday 11:00: 60 + 11 + week numbers 0,2..7 (week 1 missing) averaged: 71 + 27/7.
        let sat = map[5][11];
        assert_eq!((sat.hours, sat.missing), (7, 1));
        assert!((sat.mean.unwrap() - (71.0 + 27.0 / 7.0)).abs() < 1e-9);
        // Leaving out days leaves them out.
        let only_first_week = heat_map(&hours, &|day| day < d(2026, 3, 9));
        assert_eq!(only_first_week[5][10].mean, Some(70.0));

        // The typical Saturday at 10:00: 70 + 0..7 → median 73.5, p10 70.7, p90 76.3.
        let typ = typical_day(&hours, Weekday::Sat, &|_| true);
        let h10 = typ[10];
        assert_eq!(h10.days, 8);
        assert!((h10.median.unwrap() - 73.5).abs() < 1e-9);
        assert!((h10.p10.unwrap() - 70.7).abs() < 1e-9);
        assert!((h10.p90.unwrap() - 76.3).abs() < 1e-9);
        assert_eq!(typ[11].days, 7, "the missing hour is left out, not a zero");
        assert_eq!(typ[11].p10.map(|v| v > 70.0), Some(true));
    }

    fn typical_of(medians: &[f64]) -> Vec<TypicalHour> {
        medians
            .iter()
            .enumerate()
            .map(|(h, m)| TypicalHour {
                hour: h as u32,
                median: Some(*m),
                p10: None,
                p90: None,
                days: 8,
            })
            .collect()
    }

    #[test]
    fn a_counter_at_zero_in_opening_hours_or_far_below_its_day_is_flagged() {
        // A typical day: nobody at night, 50 an hour from 8:00 to 19:00.
        let med: Vec<f64> =
            (0..24).map(|h| if (8..20).contains(&h) { 50.0 } else { 0.0 }).collect();
        let typ = typical_of(&med);
        let rules = HealthRules::default();
        // A normal day: nothing to say (zeros at night are normal).
        let normal: Vec<Option<f64>> = med.iter().map(|m| Some(m * 0.9)).collect();
        assert_eq!(counter_health(&normal, &typ, &rules), vec![]);
        // Zeros from 10:00 to 13:00 (4 hours, 200 expected): flagged, and the day is not far
        // below (8 × 45 = 360 counted of 600 expected is 60 %).
        let mut zeros = normal.clone();
        zeros[10..14].fill(Some(0.0));
        assert_eq!(
            counter_health(&zeros, &typ, &rules),
            vec![CounterProblem::Zeros { from_hour: 10, to_hour: 13, usual: 200.0 }]
        );
        // Two hours at zero: not yet.
        let mut two = normal.clone();
        two[10] = Some(0.0);
        two[11] = Some(0.0);
        assert_eq!(counter_health(&two, &typ, &rules), vec![]);
        // A fifth of its day: far below, over the 24 hours it reported.
        let low: Vec<Option<f64>> = med.iter().map(|m| Some(m * 0.2)).collect();
        assert_eq!(
            counter_health(&low, &typ, &rules),
            vec![CounterProblem::FarBelow { counted: 120.0, usual: 600.0, hours: 24 }]
        );
        // A morning so far (to 10:00) is too little to judge far below: 100 expected.
        let morning: Vec<Option<f64>> =
            (0..24).map(|h| if h < 10 { Some(0.0) } else { None }).collect();
        assert_eq!(counter_health(&morning, &typ, &rules), vec![]);
        // A long quiet run at dawn does not hide a blockage at midday.
        let mut typ2 = med.clone();
        typ2[4..8].fill(1.0);
        let mut both = normal.clone();
        both[0..8].fill(Some(0.0));
        both[12..15].fill(Some(0.0));
        assert_eq!(
            counter_health(&both, &typical_of(&typ2), &rules),
            vec![CounterProblem::Zeros { from_hour: 12, to_hour: 14, usual: 150.0 }]
        );
        // Hours without data are not zeros.
        let silent: Vec<Option<f64>> = vec![None; 24];
        assert_eq!(counter_health(&silent, &typ, &rules), vec![]);
    }
}
