//! Official indicators as rules watch them: the same functions as `/api/v1/indicators`
//! (`agora_query::{air, noise, heat}`) computed for one device over its last completed periods,
//! so that an alert on an ATMO "mauvais" day or a canicule says what the indicators page says.
//!
//! A period is known once it is over: an hour for the EAQI, a local day (midnight to midnight,
//! Europe/Paris) for ATMO and canicule, a noise day (6 h to 6 h) for Lden and Lnight. A period
//! without a value (not measured, or too little of it) is left out: it never counts as good.

use std::collections::BTreeMap;

use agora_indicators::air::Pollutant;
use agora_model::{SeriesId, Timestamp};
use agora_query::TimeRange;
use agora_query::air::Area;
use agora_query::heat::IndicatorsConfig;
use agora_query::noise::NoiseOptions;
use agora_store::catalog::Device;
use agora_store::{Catalog, SeriesStore};
use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::rule::Indicator;

const HOUR_NS: i64 = 3_600_000_000_000;
const PARIS: Tz = chrono_tz::Europe::Paris;
/// Completed days read back (late data in the past week still changes alerts).
const DAYS_BACK: u64 = 7;
/// Completed hours read back for the EAQI.
const HOURS_BACK: i64 = 48;

/// The local hour a day of the indicator starts at (`None`: hourly).
fn day_start_hour(name: Indicator) -> Option<u32> {
    match name {
        Indicator::Eaqi => None,
        Indicator::Atmo | Indicator::Canicule | Indicator::CounterHealth => Some(0),
        Indicator::Lden | Indicator::Lnight => Some(u32::from(NoiseOptions::default().periods.day)),
    }
}

/// The start of local day `date` at `hour` (an hour the clocks skip: the next one).
fn start_of(date: NaiveDate, hour: u32) -> Option<i64> {
    let local = date.and_hms_opt(hour, 0, 0)?;
    PARIS
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| PARIS.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .and_then(|t| Timestamp::from_datetime(&t))
        .map(Timestamp::as_nanos)
}

/// The local date of the day (starting at `hour`) that instant `t` falls in.
fn day_of(t: i64, hour: u32) -> NaiveDate {
    let local = Timestamp::from_nanos(t).to_datetime().with_timezone(&PARIS);
    let date = local.date_naive();
    if chrono::Timelike::hour(&local) < hour { date.pred_opt().unwrap_or(date) } else { date }
}

/// The end of the last period completed at `now`: the start of the current one.
pub(crate) fn completed_until(name: Indicator, now: i64) -> i64 {
    match day_start_hour(name) {
        None => now.div_euclid(HOUR_NS) * HOUR_NS,
        Some(h) => start_of(day_of(now, h), h).unwrap_or(now),
    }
}

/// The end of the period starting at `start`.
pub(crate) fn period_end(name: Indicator, start: i64) -> i64 {
    match day_start_hour(name) {
        None => start.saturating_add(HOUR_NS),
        Some(h) => day_of(start, h)
            .checked_add_days(Days::new(1))
            .and_then(|d| start_of(d, h))
            .unwrap_or(i64::MAX),
    }
}

/// The properties an indicator is computed from.
fn properties(name: Indicator) -> Vec<&'static str> {
    match name {
        Indicator::Atmo | Indicator::Eaqi => Pollutant::ALL.iter().map(|p| p.property()).collect(),
        Indicator::Lden | Indicator::Lnight => vec![agora_query::noise::LAEQ],
        Indicator::Canicule => vec!["temperature"],
        Indicator::CounterHealth => vec!["people_in", "people_out"],
    }
}

/// The device's series an indicator reads (empty: the indicator does not apply to it).
pub(crate) fn series(catalog: &dyn Catalog, name: Indicator, device: &str) -> Vec<SeriesId> {
    let keys: Vec<(&str, &str)> = properties(name).into_iter().map(|p| (device, p)).collect();
    catalog.lookup_series(&keys).into_iter().flatten().collect()
}

/// The value of each period completed by `until` over the last week (two days for the EAQI):
/// period start → value (a class for ATMO and EAQI, dB(A) for noise, 1 or 0 for canicule).
pub(crate) async fn periods(
    name: Indicator,
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    device: &Device,
    until: i64,
    config: &IndicatorsConfig,
) -> agora_query::Result<BTreeMap<i64, f64>> {
    let area = Area::Device(device.id.clone());
    let to = Timestamp::from_nanos(until);
    let mut out = BTreeMap::new();
    let hour = day_start_hour(name).unwrap_or(0);
    let last_day = day_of(until, hour).pred_opt().unwrap_or(day_of(until, hour));
    let first_day = last_day.checked_sub_days(Days::new(DAYS_BACK - 1)).unwrap_or(last_day);
    let days_range = || {
        let from = start_of(first_day, hour).map_or(to, Timestamp::from_nanos);
        TimeRange::new(from, to)
    };
    match name {
        Indicator::Eaqi => {
            let range = TimeRange::new(Timestamp::from_nanos(until - HOURS_BACK * HOUR_NS), to)?;
            for h in agora_query::air::eaqi_hourly(catalog, store, &area, range).await? {
                if let Some(c) = h.index.class {
                    out.insert(h.hour.as_nanos(), f64::from(c.level()));
                }
            }
        }
        Indicator::Atmo => {
            let days =
                agora_query::air::atmo_daily(catalog, store, &area, days_range()?, PARIS).await?;
            for d in days {
                if let (Some(c), Some(start)) = (d.index.class, start_of(d.day, 0)) {
                    out.insert(start, f64::from(c.level()));
                }
            }
        }
        Indicator::Lden | Indicator::Lnight => {
            let opts = NoiseOptions::default();
            let days =
                agora_query::noise::noise_days(catalog, store, &area, days_range()?, &opts).await?;
            for d in days {
                let v = if name == Indicator::Lden { d.levels.lden } else { d.levels.ln };
                if let (Some(v), Some(start)) = (v, start_of(d.day, hour)) {
                    out.insert(start, v);
                }
            }
        }
        Indicator::Canicule => {
            let th = config.canicule_for(device.commune.as_ref().map(|c| c.as_str()));
            let days = agora_query::heat::heat_daily(
                catalog, store, &area, first_day, last_day, PARIS, &th,
            )
            .await?;
            for d in days {
                if let (Some(c), Some(start)) = (d.status.canicule, start_of(d.day, 0)) {
                    out.insert(start, if c { 1.0 } else { 0.0 });
                }
            }
        }
        Indicator::CounterHealth => {
            use agora_indicators::profile;
            const WEEKS: u64 = 8;
            let from = first_day.checked_sub_days(Days::new(7 * WEEKS)).unwrap_or(first_day);
            let direction = agora_query::footfall::Direction::Total;
            let h = agora_query::footfall::hourly(
                catalog, store, &area, direction, from, last_day, PARIS,
            )
            .await?;
            let rules = profile::HealthRules::default();
            let mut d = first_day;
            while d <= last_day {
                let since = d.checked_sub_days(Days::new(7 * WEEKS)).unwrap_or(d);
                let keep = |x: NaiveDate| {
                    x < d && x >= since && agora_indicators::calendar::holiday(x).is_none()
                };
                let typical = profile::typical_day(&h.hours, chrono::Datelike::weekday(&d), &keep);
                let hours: Vec<Option<f64>> =
                    (0..24).map(|hr| h.hours.get(&(d, hr)).copied().flatten()).collect();
                let known = typical.iter().filter(|t| t.days >= 3).count() >= 12;
                if known
                    && hours.iter().any(Option::is_some)
                    && let Some(start) = start_of(d, 0)
                {
                    let bad = !profile::counter_health(&hours, &typical, &rules).is_empty();
                    out.insert(start, if bad { 1.0 } else { 0.0 });
                }
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
    }
    // Only completed periods (a noise day's levels come from its start).
    out.retain(|start, _| period_end(name, *start) <= until);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        Timestamp::parse_rfc3339(s).unwrap().as_nanos()
    }

    #[test]
    fn periods_end_when_the_texts_say() {
        // A summer afternoon in Paris (UTC+2).
        let now = at("2026-07-15T15:20:00+02:00");
        assert_eq!(completed_until(Indicator::Eaqi, now), at("2026-07-15T15:00:00+02:00"));
        assert_eq!(completed_until(Indicator::Atmo, now), at("2026-07-15T00:00:00+02:00"));
        assert_eq!(completed_until(Indicator::Lnight, now), at("2026-07-15T06:00:00+02:00"));
        // Before 6 h, the noise day still running began yesterday morning.
        let early = at("2026-07-15T05:59:00+02:00");
        assert_eq!(completed_until(Indicator::Lden, early), at("2026-07-14T06:00:00+02:00"));
        // The day the clocks go back lasts 25 hours; a noise day across it ends at 6 h local.
        let start = at("2026-10-24T06:00:00+02:00");
        assert_eq!(period_end(Indicator::Lnight, start), at("2026-10-25T06:00:00+01:00"));
        let day = at("2026-10-25T00:00:00+02:00");
        assert_eq!(period_end(Indicator::Atmo, day), at("2026-10-26T00:00:00+01:00"));
        assert_eq!(period_end(Indicator::Atmo, day) - day, 25 * HOUR_NS);
    }
}
