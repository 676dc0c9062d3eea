//! Footfall as the commerce department reads it: a day's passers-by compared with days of the
//! same weekday (a Saturday with Saturdays), periods to date against the same span a year before
//! (364 days: the weekdays stay aligned), and an index where 100 is a place's reference period.
//! Days without data are reported as missing, never counted as zero: a comparison says which
//! days it lacked, and one that lacks all its days has no value.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

/// Daily counts of a counter, place or commune: `None` for a day without data (a counter down).
pub type Daily = BTreeMap<NaiveDate, Option<f64>>;

/// A value against a reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    /// The value (a day's count, or a period's sum).
    pub value: Option<f64>,
    /// What it is compared with.
    pub reference: Option<f64>,
    /// `value − reference`.
    pub difference: Option<f64>,
    /// `100 × (value − reference) / reference`.
    pub change_pct: Option<f64>,
    /// The days of the reference (or the period) used.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub reference_days: Vec<NaiveDate>,
    /// Days that had no data, on either side: left out of both sides.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub missing: Vec<NaiveDate>,
    /// Reference days passed over because they were not comparable (a public holiday, an event)
    /// and replaced by the same weekday a week earlier.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub skipped: Vec<NaiveDate>,
}

impl Comparison {
    fn of(
        value: Option<f64>,
        reference: Option<f64>,
        days: Vec<NaiveDate>,
        missing: Vec<NaiveDate>,
    ) -> Self {
        let difference = value.zip(reference).map(|(v, r)| v - r);
        let change_pct =
            value.zip(reference).filter(|(_, r)| *r > 0.0).map(|(v, r)| 100.0 * (v - r) / r);
        Comparison {
            value,
            reference,
            difference,
            change_pct,
            reference_days: days,
            missing,
            skipped: Vec::new(),
        }
    }
}

fn count(series: &Daily, d: NaiveDate) -> Option<f64> {
    series.get(&d).copied().flatten()
}

fn back(d: NaiveDate, days: u64) -> Option<NaiveDate> {
    d.checked_sub_days(Days::new(days))
}

/// `date` against the same weekday a week before.
pub fn vs_last_week(series: &Daily, date: NaiveDate) -> Comparison {
    against_days(series, date, back(date, 7).into_iter().collect())
}

/// `date` against the same day 52 weeks (364 days) before: the same weekday.
pub fn vs_last_year(series: &Daily, date: NaiveDate) -> Comparison {
    against_days(series, date, back(date, 364).into_iter().collect())
}

/// `date` against the mean of the same weekday over the `weeks` weeks before; the mean is over
/// the days that have data (those without are listed as missing).
pub fn vs_same_weekdays(series: &Daily, date: NaiveDate, weeks: u64) -> Comparison {
    against_days(series, date, (1..=weeks).filter_map(|w| back(date, 7 * w)).collect())
}

/// As [`vs_same_weekdays`], passing over the reference days `skip` says are not comparable (a
/// public holiday, an event that day is not), each replaced by the same weekday a week earlier:
/// the mean is still over `weeks` weekdays, looked for over twice as many weeks at most.
pub fn vs_same_weekdays_skipping(
    series: &Daily,
    date: NaiveDate,
    weeks: u64,
    skip: &dyn Fn(NaiveDate) -> bool,
) -> Comparison {
    let mut days = Vec::new();
    let mut skipped = Vec::new();
    for w in 1..=2 * weeks {
        if days.len() as u64 == weeks {
            break;
        }
        let Some(d) = back(date, 7 * w) else { break };
        if skip(d) { skipped.push(d) } else { days.push(d) }
    }
    let mut c = against_days(series, date, days);
    c.skipped = skipped;
    c
}

fn against_days(series: &Daily, date: NaiveDate, days: Vec<NaiveDate>) -> Comparison {
    let value = count(series, date);
    let mut missing: Vec<NaiveDate> = Vec::new();
    if value.is_none() {
        missing.push(date);
    }
    let mut used = Vec::new();
    let mut sum = 0.0;
    for d in days {
        match count(series, d) {
            Some(v) => {
                sum += v;
                used.push(d);
            }
            None => missing.push(d),
        }
    }
    let reference = (!used.is_empty()).then(|| sum / used.len() as f64);
    missing.sort();
    Comparison::of(value, reference, used, missing)
}

/// The period a comparison to date covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Period {
    /// Since Monday.
    Week,
    /// Since the 1st of the month.
    Month,
    /// Since 1 January.
    Year,
}

/// The first day of `period` containing `date`.
pub fn period_start(period: Period, date: NaiveDate) -> NaiveDate {
    match period {
        Period::Week => {
            back(date, u64::from(date.weekday().num_days_from_monday())).unwrap_or(date)
        }
        Period::Month => date.with_day(1).unwrap_or(date),
        Period::Year => date.with_ordinal(1).unwrap_or(date),
    }
}

/// The sum of `period` to `date` (included) against the same days 364 days before. A day
/// missing on either side is left out of both, and listed: the two sums always cover the same
/// weekdays.
pub fn period_to_date(series: &Daily, period: Period, date: NaiveDate) -> Comparison {
    let mut d = period_start(period, date);
    let (mut value, mut reference) = (0.0, 0.0);
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    while d <= date {
        let before = back(d, 364);
        match (count(series, d), before.and_then(|b| count(series, b))) {
            (Some(v), Some(r)) => {
                value += v;
                reference += r;
                used.extend(before);
            }
            (v, r) => {
                if v.is_none() {
                    missing.push(d);
                }
                if r.is_none() {
                    missing.extend(before);
                }
            }
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    missing.sort();
    if used.is_empty() {
        return Comparison::of(None, None, used, missing);
    }
    Comparison::of(Some(value), Some(reference), used, missing)
}

/// The footfall index of `date`: 100 × its count / the mean daily count of the reference days
/// (`from..=to`) that have data. `None` without a count that day or any reference day.
pub fn index(series: &Daily, date: NaiveDate, from: NaiveDate, to: NaiveDate) -> Option<f64> {
    let refs: Vec<f64> = series.range(from..=to).filter_map(|(_, v)| *v).collect();
    let mean = refs.iter().sum::<f64>() / refs.len() as f64;
    (!refs.is_empty() && mean > 0.0).then_some(())?;
    count(series, date).map(|v| 100.0 * v / mean)
}

/// The mean daily count over `from..=to`, over the days with data, and how many had it.
pub fn mean_per_day(series: &Daily, from: NaiveDate, to: NaiveDate) -> (Option<f64>, usize) {
    let v: Vec<f64> = series.range(from..=to).filter_map(|(_, v)| *v).collect();
    ((!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64), v.len())
}

/// The footfall index of a period: 100 × its mean daily count / the reference period's (each
/// over its days with data), so that places of different sizes share one scale. `None` when
/// either period has no day with data, or the reference counted nobody.
pub fn period_index(
    series: &Daily,
    (from, to): (NaiveDate, NaiveDate),
    (ref_from, ref_to): (NaiveDate, NaiveDate),
) -> Option<f64> {
    let (Some(m), _) = mean_per_day(series, from, to) else { return None };
    let (Some(r), _) = mean_per_day(series, ref_from, ref_to) else { return None };
    (r > 0.0).then(|| 100.0 * m / r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// A series built so that answers are known: each day's count is 1,000 + 100 × its weekday
    /// number (Monday 0 … Sunday 6) + 1,000 × (year − 2025), so a day of 2026 is 1,000 above the
    /// same weekday of 2025.
    fn built(from: NaiveDate, to: NaiveDate) -> Daily {
        let mut s = Daily::new();
        let mut x = from;
        while x <= to {
            let v = 1000.0
                + 100.0 * f64::from(x.weekday().num_days_from_monday())
                + 1000.0 * f64::from(x.year() - 2025);
            s.insert(x, Some(v));
            x = x.succ_opt().unwrap();
        }
        s
    }

    #[test]
    fn a_day_against_the_same_weekdays() {
        let s = built(d(2025, 1, 1), d(2026, 12, 31));
        // Saturday 14 November 2026: 1,000 + 500 + 1,000 = 2,500.
        let sat = d(2026, 11, 14);
        let w = vs_last_week(&s, sat);
        assert_eq!((w.value, w.reference, w.difference), (Some(2500.0), Some(2500.0), Some(0.0)));
        assert_eq!(w.reference_days, vec![d(2026, 11, 7)]);
        // 364 days before: Saturday 15 November 2025, 1,500: +1,000, +66.67 %.
        let y = vs_last_year(&s, sat);
        assert_eq!(y.reference_days, vec![d(2025, 11, 15)]);
        assert_eq!((y.reference, y.difference), (Some(1500.0), Some(1000.0)));
        assert!((y.change_pct.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        // Four Saturdays before, one of them down: the mean of the three that have data, and
        // the missing one said.
        let mut gap = s.clone();
        gap.insert(d(2026, 10, 24), None);
        let m = vs_same_weekdays(&gap, sat, 4);
        assert_eq!(m.reference_days, vec![d(2026, 11, 7), d(2026, 10, 31), d(2026, 10, 17)]);
        assert_eq!(m.missing, vec![d(2026, 10, 24)]);
        assert_eq!(m.reference, Some(2500.0));
        // A day without data has no value (not zero), and says so.
        gap.insert(sat, None);
        let none = vs_last_week(&gap, sat);
        assert_eq!((none.value, none.difference, none.change_pct), (None, None, None));
        assert_eq!(none.missing, vec![sat]);
    }

    #[test]
    fn periods_to_date_keep_the_weekdays_and_leave_out_gaps_on_both_sides() {
        let s = built(d(2025, 1, 1), d(2026, 12, 31));
        // Thursday 12 November 2026: the week Mon 9 → Thu 12 (4 days): 2,000 + 2,100 + 2,200 +
        // 2,300 = 8,600, against Mon 10 → Thu 13 November 2025: 4,600.
        let thu = d(2026, 11, 12);
        let w = period_to_date(&s, Period::Week, thu);
        assert_eq!((w.value, w.reference), (Some(8600.0), Some(4600.0)));
        assert_eq!(w.reference_days.first(), Some(&d(2025, 11, 10)));
        // The month to date: 12 days, each 1,000 above its aligned day.
        let m = period_to_date(&s, Period::Month, thu);
        assert_eq!(m.difference, Some(12_000.0));
        assert_eq!(period_start(Period::Year, thu), d(2026, 1, 1));
        // A counter down on Tuesday 10 November 2026: that day and its aligned day of 2025 are
        // both left out.
        let mut gap = s.clone();
        gap.insert(d(2026, 11, 10), None);
        let g = period_to_date(&gap, Period::Week, thu);
        assert_eq!((g.value, g.reference), (Some(6500.0), Some(3500.0)));
        assert_eq!(g.missing, vec![d(2026, 11, 10)]);
        // Nothing the year before: no comparison, every missing day listed.
        let young = built(d(2026, 11, 1), d(2026, 11, 30));
        let y = period_to_date(&young, Period::Week, thu);
        assert_eq!((y.value, y.reference), (None, None));
        assert_eq!(y.missing.len(), 4);
    }

    #[test]
    fn the_index_is_100_on_the_reference_mean() {
        let mut s = Daily::new();
        for (i, v) in [100.0, 200.0, 300.0].into_iter().enumerate() {
            s.insert(d(2026, 3, 1 + i as u32), Some(v));
        }
        s.insert(d(2026, 3, 4), None);
        s.insert(d(2026, 3, 10), Some(300.0));
        // Reference 1–4 March: the mean of 100, 200, 300 (the day without data left out) = 200.
        let r = (d(2026, 3, 1), d(2026, 3, 4));
        assert_eq!(index(&s, d(2026, 3, 10), r.0, r.1), Some(150.0));
        assert_eq!(index(&s, d(2026, 3, 2), r.0, r.1), Some(100.0));
        assert_eq!(index(&s, d(2026, 3, 4), r.0, r.1), None, "no count that day");
        assert_eq!(index(&s, d(2026, 3, 10), d(2026, 5, 1), d(2026, 5, 31)), None, "no reference");
    }

    #[test]
    fn a_period_index_over_the_days_with_data() {
        // 2026 is 1,000 above 2025 weekday for weekday: a whole week of 2026 (Monday 2 March to
        // Sunday 8) averages 2,300 (1,000 + 1,000 + 300); the same week of 2025 (3 to 9 March)
        // 1,300. Index = 100 × 2,300 / 1,300.
        let mut s = built(d(2025, 1, 1), d(2026, 12, 31));
        let week = (d(2026, 3, 2), d(2026, 3, 8));
        let reference = (d(2025, 3, 3), d(2025, 3, 9));
        let i = period_index(&s, week, reference).unwrap();
        assert!((i - 100.0 * 2300.0 / 1300.0).abs() < 1e-9, "{i}");
        // A day without data is left out of the mean, not counted as zero: without Sunday
        // (2,600) the week averages 2,250.
        s.insert(d(2026, 3, 8), None);
        assert_eq!(mean_per_day(&s, week.0, week.1), (Some(2250.0), 6));
        // No data at all: no index.
        assert_eq!(period_index(&s, (d(2030, 1, 1), d(2030, 1, 7)), reference), None);
    }

    #[test]
    fn same_weekdays_skip_what_is_not_comparable_and_keep_their_number() {
        // Wednesday 18 November 2026 against the 4 Wednesdays before; 11 November (Armistice)
        // is passed over for 14 October. The built series counts 1,000 + 100 × weekday + 1,000
        // in 2026; Armistice is planted at 9,999 so that counting it would show.
        let mut s = built(d(2026, 9, 1), d(2026, 11, 30));
        s.insert(d(2026, 11, 11), Some(9999.0));
        let c = vs_same_weekdays_skipping(&s, d(2026, 11, 18), 4, &|x| x == d(2026, 11, 11));
        assert_eq!(c.skipped, vec![d(2026, 11, 11)]);
        assert_eq!(
            c.reference_days,
            vec![d(2026, 11, 4), d(2026, 10, 28), d(2026, 10, 21), d(2026, 10, 14)]
        );
        assert_eq!(c.reference, Some(2200.0));
        // Without skipping, the holiday weighs in.
        assert_eq!(
            vs_same_weekdays(&s, d(2026, 11, 18), 4).reference,
            Some((3.0 * 2200.0 + 9999.0) / 4.0)
        );
    }
}
