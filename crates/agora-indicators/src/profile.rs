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
}
