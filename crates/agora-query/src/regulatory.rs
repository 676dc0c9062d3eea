//! Regulatory and WHO statistics of a calendar year (or the year to date) for each air-quality
//! sensor of a device, a place or a commune: annual means against the EU limit values
//! (directive 2008/50/EC) and the WHO 2021 guidelines, days whose daily mean exceeds a threshold
//! (PM10 above 50 µg/m³: 35 days allowed), hours above hourly thresholds (NO2 200, 18 allowed;
//! SO2 350, 24 allowed; O3 information 180 and alert 240), days whose highest 8-hour running
//! mean of ozone exceeds 120 (the EU target, 25 days) or the WHO's 100, and alert episodes (NO2
//! above 400 or SO2 above 500 for 3 consecutive hours).
//!
//! The directive's data rules apply: a daily mean needs 18 of its hours; an 8-hour mean needs 6 of
//! its hours and belongs to the day it ends in, and a day's maximum needs 18 of its 8-hour means.
//! Every figure says how much of the period it rests on; one resting on less than 75 % says so
//! (`coverage_ok` false). Days are local days (Europe/Paris).

use std::collections::BTreeMap;
use std::time::Duration;

use agora_indicators::air::Pollutant;
use agora_model::Timestamp;
use agora_store::{Catalog, SeriesStore};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

use crate::air::Area;
use crate::days::LocalDays;
use crate::summary::{Averaging, summaries};
use crate::{Every, Result, TimeRange};

/// Share of the period a figure must rest on.
pub const MIN_COVERAGE: f64 = 0.75;

/// One figure against one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statistic {
    /// What it counts, e.g. `days_daily_mean_above`.
    pub name: &'static str,
    /// The threshold, µg/m³.
    pub threshold: f64,
    /// The figure: a mean (µg/m³) or a count (days, hours, episodes).
    pub value: f64,
    /// How many exceedances the rule allows in a year (days or hours), when it allows some.
    pub allowed: Option<u32>,
    /// Whether the rule is broken: the mean above the threshold, or more exceedances than allowed.
    pub exceeded: bool,
    /// The text the threshold comes from.
    pub source: &'static str,
}

/// A sensor's year for one pollutant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SensorYear {
    /// The device.
    pub device: String,
    /// The pollutant.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub pollutant: Pollutant,
    /// Hours with a value.
    pub hours: u32,
    /// Hours in the period.
    pub of: u32,
    /// Whether the figures rest on at least 75 % of the period.
    pub coverage_ok: bool,
    /// The figures.
    pub statistics: Vec<Statistic>,
}

const EU: &str = "directive 2008/50/EC";
const WHO: &str = "WHO air quality guidelines 2021";
const FR: &str = "arrêté of 7 April 2016 (information and alert thresholds)";

/// Hourly means of one series: local hour start → value.
type Hours = BTreeMap<Timestamp, f64>;

fn daily_means(hours: &Hours, days: &LocalDays) -> BTreeMap<NaiveDate, f64> {
    let mut out: BTreeMap<NaiveDate, (f64, u32)> = BTreeMap::new();
    for (t, v) in hours {
        if let Some((_, d)) = days.of(*t) {
            let e = out.entry(d).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    out.into_iter()
        .filter(|(_, (_, n))| *n >= 18)
        .map(|(d, (s, n))| (d, s / f64::from(n)))
        .collect()
}

/// Each day's highest 8-hour running mean (days with 18 valid 8-hour means): the hours laid out
/// densely, each window's sum and count kept as it slides.
fn daily_max_8h(hours: &Hours, days: &LocalDays) -> BTreeMap<NaiveDate, f64> {
    let hour_ns = 3_600_000_000_000i64;
    let (Some((&first, _)), Some((&last, _))) = (hours.iter().next(), hours.iter().next_back())
    else {
        return BTreeMap::new();
    };
    let n = ((last.as_nanos() - first.as_nanos()) / hour_ns) as usize + 1;
    let mut dense: Vec<Option<f64>> = vec![None; n + 7];
    for (t, v) in hours {
        dense[((t.as_nanos() - first.as_nanos()) / hour_ns) as usize] = Some(*v);
    }
    let mut out: BTreeMap<NaiveDate, (f64, u32)> = BTreeMap::new();
    let (mut sum, mut count) = (0.0, 0u32);
    for end in 0..dense.len() {
        if let Some(v) = dense[end] {
            sum += v;
            count += 1;
        }
        if end >= 8
            && let Some(v) = dense[end - 8]
        {
            sum -= v;
            count -= 1;
        }
        if count >= 6 {
            // An 8-hour mean belongs to the day it ends in (the end of its last hour).
            let ends = Timestamp::from_nanos(first.as_nanos() + (end as i64 + 1) * hour_ns - 1);
            if let Some((_, d)) = days.of(ends) {
                let e = out.entry(d).or_insert((f64::MIN, 0));
                e.0 = e.0.max(sum / f64::from(count));
                e.1 += 1;
            }
        }
    }
    out.into_iter().filter(|(_, (_, n))| *n >= 18).map(|(d, (m, _))| (d, m)).collect()
}

/// Hours above `threshold`, and episodes of at least 3 consecutive such hours.
fn hours_above(hours: &Hours, threshold: f64) -> (u32, u32) {
    let hour_ns = 3_600_000_000_000i64;
    let (mut n, mut episodes, mut run, mut prev) = (0u32, 0u32, 0u32, None::<i64>);
    for (t, v) in hours {
        if *v > threshold {
            n += 1;
            run = if prev == Some(t.as_nanos() - hour_ns) { run + 1 } else { 1 };
            if run == 3 {
                episodes += 1;
            }
            prev = Some(t.as_nanos());
        } else {
            run = 0;
            prev = None;
        }
    }
    (n, episodes)
}

fn stat(
    name: &'static str,
    threshold: f64,
    value: f64,
    allowed: Option<u32>,
    source: &'static str,
) -> Statistic {
    let exceeded = match allowed {
        Some(a) => value > f64::from(a),
        None => value > threshold,
    };
    Statistic { name, threshold, value, allowed, exceeded, source }
}

/// The figures of one sensor's year for one pollutant.
fn statistics(p: Pollutant, hours: &Hours, local: &LocalDays) -> Vec<Statistic> {
    let mut out = Vec::new();
    let mean = (!hours.is_empty()).then(|| hours.values().sum::<f64>() / hours.len() as f64);
    let days = daily_means(hours, local);
    let days_above = |t: f64| days.values().filter(|v| **v > t).count() as f64;
    let count = |t: f64| hours_above(hours, t);
    match p {
        Pollutant::Pm10 => {
            if let Some(m) = mean {
                out.push(stat("annual_mean", 40.0, m, None, EU));
                out.push(stat("annual_mean", 15.0, m, None, WHO));
            }
            out.push(stat("days_daily_mean_above", 50.0, days_above(50.0), Some(35), EU));
            out.push(stat("days_daily_mean_above", 45.0, days_above(45.0), Some(4), WHO));
            out.push(stat("days_daily_mean_above", 80.0, days_above(80.0), Some(0), FR));
        }
        Pollutant::Pm25 => {
            if let Some(m) = mean {
                out.push(stat("annual_mean", 25.0, m, None, EU));
                out.push(stat("annual_mean", 5.0, m, None, WHO));
            }
            out.push(stat("days_daily_mean_above", 15.0, days_above(15.0), Some(4), WHO));
        }
        Pollutant::No2 => {
            if let Some(m) = mean {
                out.push(stat("annual_mean", 40.0, m, None, EU));
                out.push(stat("annual_mean", 10.0, m, None, WHO));
            }
            out.push(stat("hours_above", 200.0, f64::from(count(200.0).0), Some(18), EU));
            out.push(stat("days_daily_mean_above", 25.0, days_above(25.0), Some(4), WHO));
            out.push(stat(
                "alert_episodes_3h_above",
                400.0,
                f64::from(count(400.0).1),
                Some(0),
                EU,
            ));
        }
        Pollutant::O3 => {
            let max8 = daily_max_8h(hours, local);
            let above = |t: f64| max8.values().filter(|v| **v > t).count() as f64;
            out.push(stat("days_max_8h_mean_above", 120.0, above(120.0), Some(25), EU));
            out.push(stat("days_max_8h_mean_above", 100.0, above(100.0), Some(4), WHO));
            out.push(stat("hours_above", 180.0, f64::from(count(180.0).0), Some(0), FR));
            out.push(stat("hours_above", 240.0, f64::from(count(240.0).0), Some(0), FR));
        }
        Pollutant::So2 => {
            out.push(stat("hours_above", 350.0, f64::from(count(350.0).0), Some(24), EU));
            out.push(stat("days_daily_mean_above", 125.0, days_above(125.0), Some(3), EU));
            out.push(stat(
                "alert_episodes_3h_above",
                500.0,
                f64::from(count(500.0).1),
                Some(0),
                EU,
            ));
        }
    }
    out
}

/// The statistics of each sensor of the area and pollutant over `range` (a year or its start).
pub async fn year(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: TimeRange,
    tz: Tz,
) -> Result<Vec<SensorYear>> {
    let devices = area.devices(catalog)?;
    let of = (range.span().as_secs() / 3600) as u32;
    let local = LocalDays::new(range, tz, 0);
    let mut jobs = Vec::new();
    for d in &devices {
        let keys: Vec<(&str, &str)> =
            Pollutant::ALL.iter().map(|p| (d.id.as_str(), p.property())).collect();
        for (p, s) in Pollutant::ALL.into_iter().zip(catalog.lookup_series(&keys)) {
            if let Some(s) = s {
                jobs.push((d, p, s));
            }
        }
    }
    let hour = Every::Fixed(Duration::from_secs(3600));
    let read = crate::summary::concurrently(jobs.iter().map(|j| j.2), |s| {
        summaries(store, s, range, hour, Averaging::Arithmetic)
    })
    .await?;
    let mut out = Vec::new();
    for ((d, p, _), parts) in jobs.into_iter().zip(read) {
        let hours: Hours = parts
            .into_iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(t, a)| (t, a.sum / a.count as f64))
            .collect();
        if hours.is_empty() {
            continue;
        }
        let n = hours.len() as u32;
        out.push(SensorYear {
            device: d.id.to_string(),
            pollutant: p,
            hours: n,
            of,
            coverage_ok: f64::from(n) >= MIN_COVERAGE * f64::from(of),
            statistics: statistics(p, &hours, &local),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: i64) -> Timestamp {
        // 2025-01-01T00:00 Paris is 2024-12-31T23:00Z.
        Timestamp::from_nanos((1_735_686_000 + i * 3600) * 1_000_000_000)
    }

    #[test]
    fn episodes_need_three_consecutive_hours() {
        let hours: Hours =
            [(0, 450.0), (1, 450.0), (2, 450.0), (3, 450.0), (5, 450.0), (6, 450.0), (8, 10.0)]
                .into_iter()
                .map(|(i, v)| (h(i), v))
                .collect();
        assert_eq!(hours_above(&hours, 400.0), (6, 1));
    }

    #[test]
    fn an_eight_hour_mean_belongs_to_the_day_it_ends_in_and_needs_six_hours() {
        let tz = chrono_tz::Europe::Paris;
        // Day 1 all 24 hours at 100, except 10–17 h at 130: the highest 8-hour mean is 130.
        let mut hours: Hours =
            (0..24).map(|i| (h(i), if (10..18).contains(&i) { 130.0 } else { 100.0 })).collect();
        let days = LocalDays::new(TimeRange::new(h(-48), h(72)).unwrap(), tz, 0);
        let d = daily_max_8h(&hours, &days);
        let jan1 = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(d.get(&jan1), Some(&130.0));
        // With a third of the hours missing, too few 8-hour means are valid: no maximum that day.
        hours.retain(|t, _| (t.as_nanos() / 3_600_000_000_000) % 3 != 0);
        assert_eq!(daily_max_8h(&hours, &days).get(&jan1), None);
    }
}
