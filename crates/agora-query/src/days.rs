//! Local days of a range, computed once: each instant is then placed in its day by a binary
//! search over the days' starts instead of a time-zone conversion (which costs more than the
//! arithmetic of a year of hourly indicators).

use agora_model::Timestamp;
use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::TimeRange;

/// The local days covering a range, each starting at a local hour (0 for calendar days, 6 for
/// noise days).
#[derive(Debug, Clone)]
pub struct LocalDays {
    starts: Vec<i64>,
    dates: Vec<NaiveDate>,
}

impl LocalDays {
    /// The days of `range` in `tz`, starting at local `hour` (a day whose start the clocks skip
    /// starts an hour later; one whose start comes twice starts at the first).
    pub fn new(range: TimeRange, tz: Tz, hour: u32) -> Self {
        let date = |t: Timestamp| t.to_datetime().with_timezone(&tz).date_naive();
        let first = date(range.from).checked_sub_days(Days::new(1)).unwrap_or(date(range.from));
        let last = date(range.to).checked_add_days(Days::new(1)).unwrap_or(date(range.to));
        let mut starts = Vec::new();
        let mut dates = Vec::new();
        let mut d = first;
        while d <= last {
            let local = d.and_hms_opt(hour.min(23), 0, 0).expect("a valid hour");
            let at = tz.from_local_datetime(&local).earliest().or_else(|| {
                tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest()
            });
            if let Some(t) = at.and_then(|t| Timestamp::from_datetime(&t)) {
                starts.push(t.as_nanos());
                dates.push(d);
            }
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        Self { starts, dates }
    }

    /// The day an instant belongs to (its index and date); `None` before the first day's start.
    pub fn of(&self, t: Timestamp) -> Option<(usize, NaiveDate)> {
        let i = self.starts.partition_point(|s| *s <= t.as_nanos());
        (i > 0).then(|| (i - 1, self.dates[i - 1]))
    }

    /// How many hours day `i` lasts (23 or 25 when the clocks change; 24 for the last one).
    pub fn hours(&self, i: usize) -> u32 {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(a), Some(b)) => ((b - a) / 3_600_000_000_000) as u32,
            _ => 24,
        }
    }

    /// The start of the day of `date`, if it is one of them.
    pub fn start_of(&self, date: NaiveDate) -> Option<Timestamp> {
        self.dates.binary_search(&date).ok().map(|i| Timestamp::from_nanos(self.starts[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_across_the_clock_changes_in_paris() {
        let tz = chrono_tz::Europe::Paris;
        // 2026-03-28 to 2026-03-31: the clocks go forward on the 29th (a 23-hour day).
        let from = Timestamp::parse_rfc3339("2026-03-28T00:00:00+01:00").unwrap();
        let to = Timestamp::parse_rfc3339("2026-03-31T00:00:00+02:00").unwrap();
        let d = LocalDays::new(TimeRange::new(from, to).unwrap(), tz, 0);
        let day = |s: &str| d.of(Timestamp::parse_rfc3339(s).unwrap()).map(|x| x.1.to_string());
        assert_eq!(day("2026-03-28T23:59:00+01:00").as_deref(), Some("2026-03-28"));
        assert_eq!(day("2026-03-29T00:00:00+01:00").as_deref(), Some("2026-03-29"));
        assert_eq!(day("2026-03-29T23:30:00+02:00").as_deref(), Some("2026-03-29"));
        let i = d.of(Timestamp::parse_rfc3339("2026-03-29T12:00:00+02:00").unwrap()).unwrap().0;
        assert_eq!(d.hours(i), 23);
        // Noise days from 6 h.
        let n = LocalDays::new(TimeRange::new(from, to).unwrap(), tz, 6);
        let day = |s: &str| n.of(Timestamp::parse_rfc3339(s).unwrap()).map(|x| x.1.to_string());
        assert_eq!(day("2026-03-29T05:59:00+02:00").as_deref(), Some("2026-03-28"));
        assert_eq!(day("2026-03-29T06:00:00+02:00").as_deref(), Some("2026-03-29"));
    }
}
