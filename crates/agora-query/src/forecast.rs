//! A device property's forecast: its hourly means over the last six weeks, with each hour's local
//! hour of the week (Europe/Paris), backtested and forecast by `agora_forecast` — the method
//! chosen against seasonal naive on this series, and intervals from its own backtest errors.

use agora_forecast::{Backtest, Predicted};
use agora_model::Timestamp;
use agora_store::{Catalog, SeriesStore};
use chrono::{Datelike, Timelike};
use chrono_tz::Tz;

use crate::{Error, Result};

/// The properties a city plans ahead with, which agora forecasts.
pub const FORECASTABLE: [&str; 10] = [
    "pm10",
    "pm2_5",
    "no2",
    "o3",
    "laeq",
    "temperature",
    "people_in",
    "people_out",
    "fill_level",
    "soil_moisture",
];

/// Days of history read.
pub const HISTORY_DAYS: i64 = 42;
/// Origins the backtest replays (a day apart, closer on a shorter history).
pub const ORIGINS: usize = 28;
/// Hours the backtest forecasts from each origin, and the most a forecast is asked for.
pub const HORIZON: usize = 48;

const HOUR_NS: i64 = 3_600_000_000_000;

/// A forecast and how it was chosen.
#[derive(Debug, Clone)]
pub struct SeriesForecast {
    /// The backtest: the method chosen, every candidate's scores, the intervals' coverage.
    pub backtest: Backtest,
    /// The hours measured (the last `HORIZON`), hourly means.
    pub recent: Vec<(Timestamp, Option<f64>)>,
    /// The hours forecast, from the first after the last complete hour.
    pub hours: Vec<(Timestamp, Option<Predicted>)>,
}

/// The local hour of the week of an instant (0 = Monday 00:00). With `holidays_as_sunday`, a
/// public holiday's hours are a Sunday's: the calendar as an input of footfall forecasts, whose
/// profiles then learn holidays from Sundays and forecast Christmas Day as one.
fn hour_of_week(t: Timestamp, tz: Tz, holidays_as_sunday: bool) -> u16 {
    let l = t.to_datetime().with_timezone(&tz);
    let day = if holidays_as_sunday && agora_indicators::calendar::holiday(l.date_naive()).is_some()
    {
        6
    } else {
        l.weekday().num_days_from_monday()
    };
    (day * 24 + l.hour()) as u16
}

/// Properties whose forecasts take public holidays for Sundays (footfall).
const HOLIDAYS_AS_SUNDAYS: [&str; 2] = ["people_in", "people_out"];

/// A series' hourly means over the last [`HISTORY_DAYS`] days, up to the last complete hour.
#[derive(Debug, Clone)]
pub struct Hours {
    /// The start of the first hour (ns).
    pub start: i64,
    /// Hourly means (`None`: nothing measured).
    pub values: Vec<Option<f64>>,
    /// Each hour's local hour of the week, and those of the [`HORIZON`] hours after.
    pub how: Vec<u16>,
}

impl Hours {
    /// The start of hour `i`.
    pub fn at(&self, i: usize) -> Timestamp {
        Timestamp::from_nanos(self.start + i as i64 * HOUR_NS)
    }
}

/// Read a series' hours before `now` (`property` says whether holidays count as Sundays).
pub async fn read_hours(
    store: &dyn SeriesStore,
    series: agora_model::SeriesId,
    property: &str,
    now: Timestamp,
    tz: Tz,
) -> Result<Hours> {
    let end = now.as_nanos().div_euclid(HOUR_NS) * HOUR_NS;
    let start = end - HISTORY_DAYS * 24 * HOUR_NS;
    let every = std::time::Duration::from_secs(3600);
    let aggs = store
        .aggregate(series, Timestamp::from_nanos(start), Timestamp::from_nanos(end), every)
        .await?;
    let n = ((end - start) / HOUR_NS) as usize;
    let mut values: Vec<Option<f64>> = vec![None; n];
    for (t, a) in aggs {
        let i = (t.as_nanos() - start).div_euclid(HOUR_NS);
        if a.count > 0
            && let Ok(i) = usize::try_from(i)
            && i < n
        {
            values[i] = Some(a.sum / a.count as f64);
        }
    }
    let at = |i: usize| Timestamp::from_nanos(start + i as i64 * HOUR_NS);
    let sundays = HOLIDAYS_AS_SUNDAYS.contains(&property);
    let how: Vec<u16> = (0..n + HORIZON).map(|i| hour_of_week(at(i), tz, sundays)).collect();
    Ok(Hours { start, values, how })
}

/// Check a request for a forecast: a property agora forecasts, a horizon it reaches.
pub fn check(property: &str, horizon: usize) -> Result<()> {
    if !FORECASTABLE.contains(&property) {
        return Err(Error::Invalid(format!(
            "{property} is not forecast: agora forecasts {}",
            FORECASTABLE.join(", ")
        )));
    }
    if !(1..=HORIZON).contains(&horizon) {
        return Err(Error::Invalid(format!(
            "a horizon of {horizon} hours: forecasts reach 1 to {HORIZON} hours ahead"
        )));
    }
    Ok(())
}

/// The next [`HORIZON`] hours of a series with `backtest`'s method and intervals (CPU only).
pub fn predict(property: &str, hours: &Hours, backtest: Backtest) -> SeriesForecast {
    let n = hours.values.len();
    let mut predicted = agora_forecast::predict(&backtest, &hours.values, &hours.how, HORIZON);
    // Counts, levels and concentrations are never below zero; temperatures may be.
    if property != "temperature" {
        for p in predicted.iter_mut().flatten() {
            for x in [&mut p.value, &mut p.lo80, &mut p.hi80, &mut p.lo95, &mut p.hi95] {
                *x = x.max(0.0);
            }
        }
    }
    SeriesForecast {
        recent: (n.saturating_sub(HORIZON)..n).map(|i| (hours.at(i), hours.values[i])).collect(),
        hours: predicted.into_iter().enumerate().map(|(k, p)| (hours.at(n + k), p)).collect(),
        backtest,
    }
}

/// Backtest a series' hours and forecast the next [`HORIZON`] (CPU only).
pub fn fit(property: &str, hours: &Hours) -> std::result::Result<SeriesForecast, String> {
    let backtest = agora_forecast::backtest(&hours.values, &hours.how, ORIGINS, HORIZON)
        .map_err(|e| e.to_string())?;
    Ok(predict(property, hours, backtest))
}

/// Forecast `property` of `device` `horizon` hours past the last complete hour before `now`,
/// fitting it now (the service, [`crate::forecasts::Forecasts`], keeps fits for an hour).
pub async fn forecast(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    device: &str,
    property: &str,
    now: Timestamp,
    horizon: usize,
    tz: Tz,
) -> Result<SeriesForecast> {
    check(property, horizon)?;
    let Some(series) = catalog.lookup_series(&[(device, property)]).into_iter().next().flatten()
    else {
        return Err(Error::Invalid(format!("{device} has no {property} series")));
    };
    let hours = read_hours(store, series, property, now, tz).await?;
    let mut f =
        fit(property, &hours).map_err(|e| Error::Invalid(format!("{device} {property}: {e}")))?;
    f.hours.truncate(horizon);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footfall_takes_public_holidays_for_sundays() {
        let paris = chrono_tz::Europe::Paris;
        // Friday 25 December 2026, 15:00 in Paris: Christmas Day.
        let christmas = Timestamp::parse_rfc3339("2026-12-25T15:00:00+01:00").unwrap();
        assert_eq!(hour_of_week(christmas, paris, false), 4 * 24 + 15);
        assert_eq!(hour_of_week(christmas, paris, true), 6 * 24 + 15);
        // The Friday before is a Friday either way.
        let before = Timestamp::parse_rfc3339("2026-12-18T15:00:00+01:00").unwrap();
        assert_eq!(hour_of_week(before, paris, true), 4 * 24 + 15);
    }
}
