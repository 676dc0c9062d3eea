//! Bucket planning: fixed buckets aligned on the epoch (UTC), or whole days starting at local
//! midnight in a time zone, 23 or 25 hours long on the days the clocks change.

use std::time::Duration;

use agora_model::Timestamp;
use agora_store::Agg;
use chrono::{Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;

const DAY_S: u64 = 86_400;

/// How a range is cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Buckets of a fixed length aligned on the epoch: whole hours, UTC days.
    Fixed(Duration),
    /// Buckets of `days` local days in `tz`, each starting at local midnight; several-day buckets
    /// are aligned on day numbers, so that successive queries agree.
    LocalDays {
        /// Days per bucket (≥ 1).
        days: u32,
        /// The time zone whose midnights start the buckets.
        tz: Tz,
    },
}

impl Every {
    /// Buckets of `every`: local days when a time zone is given and `every` is a whole number of
    /// days, else fixed buckets aligned on the epoch.
    pub fn new(every: Duration, tz: Option<Tz>) -> Self {
        let whole_days = every.subsec_nanos() == 0 && every.as_secs().is_multiple_of(DAY_S);
        match tz {
            Some(tz) if whole_days && every.as_secs() > 0 => {
                let days = u32::try_from(every.as_secs() / DAY_S).unwrap_or(u32::MAX);
                Self::LocalDays { days, tz }
            }
            _ => Self::Fixed(every),
        }
    }

    /// The nominal length of a bucket (a local day counts 24 hours).
    pub fn nominal(&self) -> Duration {
        match self {
            Self::Fixed(d) => *d,
            Self::LocalDays { days, .. } => Duration::from_secs(u64::from(*days) * DAY_S),
        }
    }

    /// The step to ask the store for: local days are built from hours where local midnight is
    /// an hour boundary (every French time zone), from quarters of an hour elsewhere (India,
    /// Nepal, the Marquesas: offsets of :30 or :45).
    pub fn store_step(&self) -> Duration {
        match self {
            Self::Fixed(d) => *d,
            Self::LocalDays { tz, .. } if whole_hour_offsets(*tz) => Duration::from_secs(3600),
            Self::LocalDays { .. } => Duration::from_secs(900),
        }
    }

    /// Whether its buckets are whole hours, which the store answers from hourly rollups.
    pub fn whole_hours(&self) -> bool {
        let step = self.store_step();
        step.subsec_nanos() == 0 && step.as_secs() > 0 && step.as_secs().is_multiple_of(3600)
    }

    /// About how many buckets cover `span`.
    pub fn count_in(&self, span: Duration) -> u128 {
        span.as_nanos() / self.nominal().as_nanos().max(1)
    }

    /// Start of the bucket holding `t`.
    pub fn floor(&self, t: Timestamp) -> Timestamp {
        match *self {
            Self::Fixed(d) => {
                let step = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).max(1);
                let ns = t.as_nanos();
                Timestamp::from_nanos(ns.div_euclid(step).checked_mul(step).unwrap_or(ns))
            }
            Self::LocalDays { days, tz } => {
                let n =
                    i64::from(t.to_datetime().with_timezone(&tz).date_naive().num_days_from_ce());
                let first = n - n.rem_euclid(i64::from(days.max(1)));
                i32::try_from(first)
                    .ok()
                    .and_then(NaiveDate::from_num_days_from_ce_opt)
                    .and_then(|d| start_of_day(d, tz))
                    .unwrap_or(t)
            }
        }
    }

    /// End of the bucket starting at `start` (the start of the next one).
    pub fn end(&self, start: Timestamp) -> Timestamp {
        match *self {
            Self::Fixed(d) => {
                start.saturating_add_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            }
            Self::LocalDays { days, tz } => {
                let date = start.to_datetime().with_timezone(&tz).date_naive();
                date.checked_add_days(chrono::Days::new(u64::from(days.max(1))))
                    .and_then(|d| start_of_day(d, tz))
                    .unwrap_or(Timestamp::from_nanos(i64::MAX))
            }
        }
    }

    /// Regroup summaries in `store_step` buckets, oldest first, into these buckets.
    pub fn regroup(&self, parts: Vec<(Timestamp, Agg)>) -> Vec<(Timestamp, Agg)> {
        if matches!(self, Self::Fixed(_)) {
            return parts;
        }
        let mut out: Vec<(Timestamp, Agg)> = Vec::new();
        for (t, a) in parts {
            let start = self.floor(t);
            match out.last_mut() {
                Some((b, acc)) if *b == start => acc.merge(&a),
                _ => out.push((start, a)),
            }
        }
        out
    }
}

/// Whether a time zone's offsets from UTC are whole hours (in winter and in summer).
fn whole_hour_offsets(tz: Tz) -> bool {
    use chrono::Offset;
    [(2026, 1, 15), (2026, 7, 15)].iter().all(|&(y, m, d)| {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .is_some_and(|t| tz.offset_from_utc_datetime(&t).fix().local_minus_utc() % 3600 == 0)
    })
}

/// The first instant of a local date: midnight, or the first hour that exists where a clock
/// change skips midnight.
fn start_of_day(d: NaiveDate, tz: Tz) -> Option<Timestamp> {
    (0..3)
        .find_map(|h| tz.from_local_datetime(&d.and_hms_opt(h, 0, 0)?).earliest())
        .and_then(|dt| Timestamp::from_datetime(&dt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn paris_days_last_23_or_25_hours_on_clock_changes() {
        let day = Every::new(Duration::from_secs(DAY_S), Some(chrono_tz::Europe::Paris));
        // Winter: midnight in Paris is 23:00 UTC the day before.
        assert_eq!(day.floor(at("2026-01-15T12:00:00Z")), at("2026-01-14T23:00:00Z"));
        assert_eq!(day.floor(at("2026-01-14T23:00:00Z")), at("2026-01-14T23:00:00Z"));
        assert_eq!(day.floor(at("2026-01-14T22:59:59Z")), at("2026-01-13T23:00:00Z"));
        // 29 March 2026: clocks go forward, the day lasts 23 hours.
        let s = day.floor(at("2026-03-29T12:00:00Z"));
        assert_eq!(s, at("2026-03-28T23:00:00Z"));
        assert_eq!(day.end(s), at("2026-03-29T22:00:00Z"));
        // 25 October 2026: clocks go back, the day lasts 25 hours.
        let s = day.floor(at("2026-10-25T12:00:00Z"));
        assert_eq!(s, at("2026-10-24T22:00:00Z"));
        assert_eq!(day.end(s), at("2026-10-25T23:00:00Z"));
    }

    #[test]
    fn fixed_buckets_align_on_the_epoch_and_never_overflow() {
        let h = Every::new(Duration::from_secs(3600), Some(chrono_tz::Europe::Paris));
        assert_eq!(h, Every::Fixed(Duration::from_secs(3600)));
        assert_eq!(h.floor(at("2026-01-15T12:34:56Z")), at("2026-01-15T12:00:00Z"));
        assert_eq!(h.end(at("2026-01-15T12:00:00Z")), at("2026-01-15T13:00:00Z"));
        let t = Timestamp::from_nanos(i64::MIN + 5);
        assert_eq!(h.floor(t), t, "left unaligned rather than wrapped");
        assert_eq!(h.end(Timestamp::from_nanos(i64::MAX - 1)), Timestamp::from_nanos(i64::MAX));
        let utc_day = Every::new(Duration::from_secs(DAY_S), None);
        assert_eq!(utc_day.floor(at("2026-01-15T12:00:00Z")), at("2026-01-15T00:00:00Z"));
    }

    #[test]
    fn several_days_are_aligned_on_day_numbers() {
        let week = Every::new(Duration::from_secs(7 * DAY_S), Some(chrono_tz::Europe::Paris));
        let a = week.floor(at("2026-01-15T12:00:00Z"));
        let b = week.floor(at("2026-01-16T12:00:00Z"));
        assert_eq!(a, b);
        assert_eq!(week.floor(week.end(a)), week.end(a));
        let span = week.end(a).as_nanos() - a.as_nanos();
        assert_eq!(span, 7 * 86_400_000_000_000);
    }

    #[test]
    fn zones_off_the_hour_are_built_from_quarters() {
        let day = Duration::from_secs(DAY_S);
        assert_eq!(Every::new(day, Some(chrono_tz::Europe::Paris)).store_step().as_secs(), 3600);
        let kolkata = Every::new(day, Some(chrono_tz::Asia::Kolkata));
        assert_eq!(kolkata.store_step().as_secs(), 900);
        assert!(!kolkata.whole_hours());
        // Midnight in Kolkata (UTC+05:30) is 18:30 UTC the day before.
        assert_eq!(kolkata.floor(at("2026-01-15T12:00:00Z")), at("2026-01-14T18:30:00Z"));
        assert_eq!(Every::new(day, Some(chrono_tz::Asia::Kathmandu)).store_step().as_secs(), 900);
    }

    #[test]
    fn hours_regroup_into_local_days() {
        let day = Every::new(Duration::from_secs(DAY_S), Some(chrono_tz::Europe::Paris));
        // 48 hours from 2026-01-14T23:00Z: two Paris days of 24 hours each.
        let start = at("2026-01-14T23:00:00Z");
        let hours: Vec<(Timestamp, Agg)> = (0..48)
            .map(|h| {
                let t = start.saturating_add_nanos(h * 3_600_000_000_000);
                (t, Agg::one(t.as_nanos(), h as f64))
            })
            .collect();
        let days = day.regroup(hours);
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, start);
        assert_eq!(days[0].1.count, 24);
        assert_eq!(days[1].1.sum, (24..48).sum::<i64>() as f64);
    }
}
