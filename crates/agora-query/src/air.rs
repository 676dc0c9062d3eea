//! Air-quality indices over stored data: the hourly European Air Quality Index and the daily
//! French ATMO index of a device, a place or a commune, from the pollutants' hourly means (the
//! store's rollups; points flagged by quality checks left out). The definitions themselves are in
//! `agora_indicators::air`.
//!
//! An area (a place, a commune) takes, for each pollutant, its worst device: the highest of its
//! devices' values, as the arrêté takes "the maximum over the zone" (the EEA's index is a
//! station's). ATMO days are local days (Europe/Paris by default): SO2, NO2 and O3 take the day's
//! highest hourly mean, PM10 and PM2.5 the day's mean. A device measuring a pollutant for less
//! than 75 % of a day's hours does not count for it that day; a pollutant no device counts is
//! listed as missing, with its hours. An hour or a day without any pollutant has no index, never a
//! "good" one.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_indicators::air::{AtmoClass, EaqiBand, Index, Pollutant};
use agora_model::{DeviceId, InseeCode, SiteId, Timestamp};
use agora_store::catalog::{Device, DeviceFilter};
use agora_store::{Agg, Catalog, SeriesStore};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

use crate::summary::{Averaging, summaries};
use crate::{Error, Every, Result, TimeRange};

/// Share of a day's hours a pollutant must be measured for its daily value to count.
pub const MIN_DAY_COVERAGE: f64 = 0.75;

/// Where an index is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    /// One device.
    Device(DeviceId),
    /// A place: its devices.
    Site(SiteId),
    /// A commune: its devices.
    Commune(InseeCode),
}

impl Area {
    /// The area's devices; an unknown device, place or commune is refused by name.
    pub fn devices(&self, catalog: &dyn Catalog) -> Result<Vec<Device>> {
        let unknown = |what: &str, id: &str| Error::Invalid(format!("unknown {what} {id:?}"));
        match self {
            Area::Device(d) => catalog
                .device(d.as_str())
                .map(|d| vec![d])
                .ok_or_else(|| unknown("device", d.as_str())),
            Area::Site(s) => {
                if !catalog.sites().iter().any(|x| &x.id == s) {
                    return Err(unknown("place", s.as_str()));
                }
                Ok(catalog.devices(&DeviceFilter { site: Some(s.clone()), ..Default::default() }))
            }
            Area::Commune(c) => {
                if !catalog.communes().iter().any(|x| &x.insee == c) {
                    return Err(unknown("commune", c.as_str()));
                }
                Ok(catalog
                    .devices(&DeviceFilter { commune: Some(c.clone()), ..Default::default() }))
            }
        }
    }
}

impl Area {
    /// The commune an area lies in: its own, its place's, its device's (`None` when unknown).
    pub fn commune(&self, catalog: &dyn Catalog) -> Option<String> {
        match self {
            Area::Commune(c) => Some(c.to_string()),
            Area::Site(s) => {
                catalog.sites().into_iter().find(|x| &x.id == s).map(|x| x.commune.to_string())
            }
            Area::Device(d) => {
                catalog.device(d.as_str()).and_then(|d| d.commune.map(|c| c.to_string()))
            }
        }
    }
}

/// Each pollutant's hourly summaries, device by device (hours without points left out).
async fn hourly(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    devices: &[Device],
    range: TimeRange,
) -> Result<BTreeMap<Pollutant, Vec<Vec<(Timestamp, Agg)>>>> {
    let hour = Every::Fixed(Duration::from_secs(3600));
    let mut jobs = Vec::new();
    for d in devices {
        let keys: Vec<(&str, &str)> =
            Pollutant::ALL.iter().map(|p| (d.id.as_str(), p.property())).collect();
        for (p, s) in Pollutant::ALL.into_iter().zip(catalog.lookup_series(&keys)) {
            if let Some(s) = s {
                jobs.push((p, s));
            }
        }
    }
    let read = crate::summary::concurrently(jobs.iter().map(|j| j.1), |s| {
        summaries(store, s, range, hour, Averaging::Arithmetic)
    })
    .await?;
    let mut out: BTreeMap<Pollutant, Vec<Vec<(Timestamp, Agg)>>> = BTreeMap::new();
    for ((p, _), parts) in jobs.into_iter().zip(read) {
        out.entry(p).or_default().push(parts.into_iter().filter(|(_, a)| a.count > 0).collect());
    }
    Ok(out)
}

/// The index of one hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HourIndex {
    /// The hour's start.
    pub hour: Timestamp,
    /// The index, from the pollutants' hourly means.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub index: Index<EaqiBand>,
}

/// The European Air Quality Index of each hour of `range` with at least one pollutant measured.
pub async fn eaqi_hourly(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: TimeRange,
) -> Result<Vec<HourIndex>> {
    let devices = area.devices(catalog)?;
    let by_pollutant = hourly(catalog, store, &devices, range).await?;
    // Per hour and pollutant, the worst device's hourly mean.
    let mut worst: BTreeMap<Timestamp, BTreeMap<Pollutant, f64>> = BTreeMap::new();
    for (p, devices) in &by_pollutant {
        for series in devices {
            for (t, a) in series {
                let mean = a.sum / a.count as f64;
                let v = worst.entry(*t).or_default().entry(*p).or_insert(mean);
                *v = v.max(mean);
            }
        }
    }
    let hours: BTreeMap<Timestamp, Vec<(Pollutant, f64)>> =
        worst.into_iter().map(|(t, m)| (t, m.into_iter().collect())).collect();
    hours
        .into_iter()
        .map(|(hour, values)| {
            let index =
                agora_indicators::air::eaqi(&values).map_err(|e| Error::Invalid(e.to_string()))?;
            Ok(HourIndex { hour, index })
        })
        .collect()
}

/// How much of a day a pollutant was measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    /// The pollutant.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub pollutant: Pollutant,
    /// Hours with a value.
    pub hours: u32,
    /// Hours in the day (23 or 25 when the clocks change).
    pub of: u32,
    /// Whether it counts in the day's index (at least 75 % of the hours).
    pub counted: bool,
}

/// The index of one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayIndex {
    /// The local day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: NaiveDate,
    /// The index, from the pollutants' daily values.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub index: Index<AtmoClass>,
    /// Each measured pollutant's hours that day.
    pub coverage: Vec<Coverage>,
}

/// The ATMO index of each local day of `range` (in `tz`) with at least one pollutant measured.
pub async fn atmo_daily(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: TimeRange,
    tz: Tz,
) -> Result<Vec<DayIndex>> {
    let devices = area.devices(catalog)?;
    let by_pollutant = hourly(catalog, store, &devices, range).await?;
    let local_days = crate::days::LocalDays::new(range, tz, 0);
    let day_of = |t: Timestamp| {
        local_days.of(t).map_or_else(|| t.to_datetime().with_timezone(&tz).date_naive(), |d| d.1)
    };
    // Per day, pollutant and device: hours measured, highest hourly mean, sum and count.
    #[derive(Default)]
    struct Day {
        hours: u32,
        max_hourly: f64,
        sum: f64,
        count: u64,
    }
    let mut days: BTreeMap<NaiveDate, BTreeMap<Pollutant, Vec<Day>>> = BTreeMap::new();
    for (p, devices) in &by_pollutant {
        for series in devices {
            let mut mine: BTreeMap<NaiveDate, Day> = BTreeMap::new();
            for (t, a) in series {
                let d = mine.entry(day_of(*t)).or_default();
                let mean = a.sum / a.count as f64;
                d.max_hourly = if d.hours == 0 { mean } else { d.max_hourly.max(mean) };
                d.hours += 1;
                d.sum += a.sum;
                d.count += a.count;
            }
            for (day, d) in mine {
                days.entry(day).or_default().entry(*p).or_default().push(d);
            }
        }
    }
    let mut out = Vec::with_capacity(days.len());
    for (day, pollutants) in days {
        let of = local_days
            .start_of(day)
            .and_then(|s| local_days.of(s))
            .map_or(24, |(i, _)| local_days.hours(i));
        let mut values = Vec::new();
        let mut coverage = Vec::new();
        for (p, devices) in pollutants {
            let enough = |d: &&Day| f64::from(d.hours) >= MIN_DAY_COVERAGE * f64::from(of);
            let hours = devices.iter().map(|d| d.hours).max().unwrap_or(0);
            let worst = devices
                .iter()
                .filter(enough)
                .map(
                    |d| if p.atmo_uses_daily_max() { d.max_hourly } else { d.sum / d.count as f64 },
                )
                .reduce(f64::max);
            coverage.push(Coverage { pollutant: p, hours, of, counted: worst.is_some() });
            if let Some(v) = worst {
                values.push((p, v));
            }
        }
        let index =
            agora_indicators::air::atmo(&values).map_err(|e| Error::Invalid(e.to_string()))?;
        out.push(DayIndex { day, index, coverage });
    }
    Ok(out)
}
