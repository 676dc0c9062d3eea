//! Heat indicators over stored data: for each local day of a device, a place or a commune, the
//! daily minimum and maximum of the hourly mean temperature, the highest hourly heat index and
//! humidex, the 3-day running means against the heatwave thresholds (canicule days) and tropical
//! nights. The definitions are in `agora_indicators::heat`.
//!
//! An area's hourly temperature pools its devices' points; the heat index and humidex of an hour
//! need both its temperature and its relative humidity. A day's minimum and maximum need 75 % of
//! its hours (18 of 24): on fewer, the day has no minimum and maximum, and no running mean covers
//! it (a gap is never filled).

use std::collections::BTreeMap;
use std::time::Duration;

use agora_indicators::heat::{CaniculeThresholds, HeatDay, heat_days, heat_index_c, humidex_rh};
use agora_model::Timestamp;
use agora_store::{Agg, Catalog, SeriesStore};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Serialize;

use crate::air::{Area, MIN_DAY_COVERAGE};
use crate::summary::{Averaging, summaries};
use crate::{Every, Result, TimeRange};

/// The heat index is given from this temperature (80 °F), °C.
pub const HEAT_INDEX_FROM_C: f64 = 26.666_666_666_666_668;
/// The humidex is given from this temperature, °C.
pub const HUMIDEX_FROM_C: f64 = 20.0;

/// Heatwave thresholds of a deployment (`[indicators]` in `agora.toml`): Météo-France sets them
/// by département, so a Métropole spanning several gives each commune its own.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndicatorsConfig {
    /// Thresholds of the communes not listed below (Bouches-du-Rhône: 24 / 35 °C).
    pub canicule: CaniculeThresholds,
    /// A commune's own thresholds, by INSEE code.
    pub canicule_by_commune: BTreeMap<String, CaniculeThresholds>,
}

impl Default for IndicatorsConfig {
    fn default() -> Self {
        Self {
            canicule: CaniculeThresholds::BOUCHES_DU_RHONE,
            canicule_by_commune: BTreeMap::new(),
        }
    }
}

impl IndicatorsConfig {
    /// The thresholds of a commune (the default ones without a commune, or for one not listed).
    pub fn canicule_for(&self, commune: Option<&str>) -> CaniculeThresholds {
        commune.and_then(|c| self.canicule_by_commune.get(c)).copied().unwrap_or(self.canicule)
    }

    /// Refuse thresholds that cannot be temperatures of a heatwave, naming them.
    pub fn check(&self) -> std::result::Result<(), String> {
        let ok = |t: &CaniculeThresholds| {
            [t.min, t.max].iter().all(|v| (0.0..=60.0).contains(v)) && t.min <= t.max
        };
        if !ok(&self.canicule) {
            return Err(format!(
                "indicators.canicule: min and max are 0 to 60 °C, min at most max (got {} / {})",
                self.canicule.min, self.canicule.max
            ));
        }
        for (c, t) in &self.canicule_by_commune {
            if agora_model::InseeCode::parse(c).is_err() {
                return Err(format!(
                    "indicators.canicule_by_commune: {c:?} is not an INSEE code (5 characters)"
                ));
            }
            if !ok(t) {
                return Err(format!(
                    "indicators.canicule_by_commune.{c}: min and max are 0 to 60 °C, min at most max (got {} / {})",
                    t.min, t.max
                ));
            }
        }
        Ok(())
    }
}

/// One day's heat indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatIndicators {
    /// The local day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: NaiveDate,
    /// Lowest hourly mean temperature, °C (absent under 75 % of the hours).
    pub t_min: Option<f64>,
    /// Highest hourly mean temperature, °C.
    pub t_max: Option<f64>,
    /// Hours with a temperature.
    pub hours: u32,
    /// Highest hourly heat index, °C (hours of 26.7 °C or more with a humidity); absent on a day
    /// without such an hour.
    pub heat_index_max: Option<f64>,
    /// Highest hourly humidex (hours of 20 °C or more with a humidity).
    pub humidex_max: Option<f64>,
    /// Running means, canicule and tropical night.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub status: HeatDay,
}

async fn pooled(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    property: &str,
    range: TimeRange,
) -> Result<BTreeMap<Timestamp, Agg>> {
    let devices = area.devices(catalog)?;
    let keys: Vec<(&str, &str)> = devices.iter().map(|d| (d.id.as_str(), property)).collect();
    let mut out = BTreeMap::new();
    for s in catalog.lookup_series(&keys).into_iter().flatten() {
        let parts = summaries(
            store,
            s,
            range,
            Every::Fixed(Duration::from_secs(3600)),
            Averaging::Arithmetic,
        )
        .await?;
        crate::summary::merge_into(&mut out, parts);
    }
    out.retain(|_, a| a.count > 0);
    Ok(out)
}

/// The heat indicators of each local day from `first` to `last` (in `tz`).
pub async fn heat_daily(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    first: NaiveDate,
    last: NaiveDate,
    tz: Tz,
    thresholds: &CaniculeThresholds,
) -> Result<Vec<HeatIndicators>> {
    // Two days before the first, for its running means.
    let lead = first.checked_sub_days(chrono::Days::new(2)).unwrap_or(first);
    let day = Every::LocalDays { days: 1, tz };
    let start = |d: NaiveDate| {
        Timestamp::from_datetime(&d.and_hms_opt(12, 0, 0).expect("noon exists").and_utc())
            .map(|t| day.floor(t))
            .ok_or_else(|| crate::Error::Invalid(format!("day {d} is out of range")))
    };
    let end_day = last.checked_add_days(chrono::Days::new(1)).unwrap_or(last);
    let range = TimeRange::new(start(lead)?, start(end_day)?)?;
    let temperature = pooled(catalog, store, area, "temperature", range).await?;
    let humidity = pooled(catalog, store, area, "relative_humidity", range).await?;
    let local = |t: Timestamp| t.to_datetime().with_timezone(&tz).date_naive();
    #[derive(Default)]
    struct Acc {
        temps: Vec<f64>,
        heat_index: Option<f64>,
        humidex: Option<f64>,
    }
    let mut days: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    for (t, a) in &temperature {
        let temp = a.sum / a.count as f64;
        let acc = days.entry(local(*t)).or_default();
        acc.temps.push(temp);
        if let Some(h) = humidity.get(t) {
            let rh = (h.sum / h.count as f64).clamp(0.0, 100.0);
            // Each index where it means something: the heat index from 80 °F (26.7 °C), where the
            // NWS applies it; the humidex from 20 °C, where Environment Canada reports it.
            if temp >= HEAT_INDEX_FROM_C
                && let Ok(hi) = heat_index_c(temp, rh)
            {
                acc.heat_index = Some(acc.heat_index.map_or(hi, |m: f64| m.max(hi)));
            }
            if temp >= HUMIDEX_FROM_C
                && let Ok(hx) = humidex_rh(temp, rh)
            {
                acc.humidex = Some(acc.humidex.map_or(hx, |m: f64| m.max(hx)));
            }
        }
    }
    // Every day from the lead to the last, measured or not, so that the running means see gaps.
    let mut dates = Vec::new();
    let mut d = lead;
    while d <= last {
        dates.push(d);
        d = d.succ_opt().unwrap_or(last);
        if dates.len() > 400 {
            break;
        }
    }
    let hours_in = |d: NaiveDate| -> Result<f64> {
        let s = start(d)?;
        Ok(((day.end(s).as_nanos() - s.as_nanos()) / 3_600_000_000_000) as f64)
    };
    let mut extremes = Vec::with_capacity(dates.len());
    for d in &dates {
        let e = match days.get(d) {
            Some(acc) if acc.temps.len() as f64 >= MIN_DAY_COVERAGE * hours_in(*d)? => {
                let min = acc.temps.iter().copied().fold(f64::INFINITY, f64::min);
                let max = acc.temps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Some((min, max))
            }
            _ => None,
        };
        extremes.push(e);
    }
    let status = heat_days(&extremes, thresholds);
    Ok(dates
        .iter()
        .zip(extremes.iter().zip(status))
        .filter(|(d, _)| **d >= first)
        .map(|(d, (e, s))| {
            let acc = days.get(d);
            HeatIndicators {
                day: *d,
                t_min: e.map(|x| x.0),
                t_max: e.map(|x| x.1),
                hours: acc.map_or(0, |a| a.temps.len() as u32),
                heat_index_max: acc.and_then(|a| a.heat_index),
                humidex_max: acc.and_then(|a| a.humidex),
                status: s,
            }
        })
        .collect())
}

/// Each device of the area with a position, and its mean of `property` over `range` (devices
/// without a value in the range are left out).
pub async fn device_means(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    property: &str,
    range: TimeRange,
) -> Result<Vec<(agora_store::catalog::Device, f64)>> {
    let devices: Vec<_> =
        area.devices(catalog)?.into_iter().filter(|d| d.lat.is_some() && d.lon.is_some()).collect();
    let keys: Vec<(&str, &str)> = devices.iter().map(|d| (d.id.as_str(), property)).collect();
    let mut out = Vec::new();
    for (d, s) in devices.iter().zip(catalog.lookup_series(&keys)) {
        let Some(s) = s else { continue };
        let every = Every::Fixed(Duration::from_secs(3600));
        if let Some(a) =
            crate::summary::summary(store, s, range, every, Averaging::Arithmetic).await?
        {
            out.push((d.clone(), a.sum / a.count as f64));
        }
    }
    Ok(out)
}

/// What a place's temperature is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A designated device (a rural or park station).
    Device(agora_model::DeviceId),
    /// The place of the area whose mean temperature over the period is the lowest.
    Coolest,
}

/// One place's heat-island intensity over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceIntensity {
    /// The place.
    pub site: String,
    /// Hours when both the place and the reference have a temperature.
    pub hours: u32,
    /// Mean of the hourly differences (place − reference), °C.
    pub mean: Option<f64>,
    /// The same over the night's hours (22–6 h local), when heat islands show most.
    pub night_mean: Option<f64>,
    /// The largest hourly difference.
    pub max: Option<f64>,
}

/// Heat-island intensity of each place of `area` over `range`: its hourly mean temperature
/// minus the reference's, hour by hour (hours missing on either side are left out). Returns the
/// reference's name and the places, most intense at night first.
pub async fn heat_island(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    reference: &Reference,
    range: TimeRange,
    tz: Tz,
) -> Result<(String, Vec<PlaceIntensity>)> {
    let devices = area.devices(catalog)?;
    let mut sites: Vec<agora_model::SiteId> =
        devices.iter().filter_map(|d| d.site.clone()).collect();
    sites.sort();
    sites.dedup();
    let mut by_site: Vec<(String, BTreeMap<Timestamp, f64>)> = Vec::new();
    for s in &sites {
        let h = pooled(catalog, store, &Area::Site(s.clone()), "temperature", range).await?;
        if !h.is_empty() {
            by_site.push((
                s.to_string(),
                h.into_iter().map(|(t, a)| (t, a.sum / a.count as f64)).collect(),
            ));
        }
    }
    let mean = |h: &BTreeMap<Timestamp, f64>| h.values().sum::<f64>() / h.len().max(1) as f64;
    let (name, reference): (String, BTreeMap<Timestamp, f64>) = match reference {
        Reference::Device(d) => {
            let h = pooled(catalog, store, &Area::Device(d.clone()), "temperature", range).await?;
            (
                format!("device {d}"),
                h.into_iter().map(|(t, a)| (t, a.sum / a.count as f64)).collect(),
            )
        }
        Reference::Coolest => match by_site.iter().min_by(|a, b| mean(&a.1).total_cmp(&mean(&b.1)))
        {
            Some((s, h)) => (format!("site {s} (the coolest)"), h.clone()),
            None => return Ok((String::from("none"), Vec::new())),
        },
    };
    let mut out: Vec<PlaceIntensity> = by_site
        .iter()
        .map(|(site, h)| {
            let diffs: Vec<(Timestamp, f64)> =
                h.iter().filter_map(|(t, v)| reference.get(t).map(|r| (*t, v - r))).collect();
            let night: Vec<f64> = diffs
                .iter()
                .filter(|(t, _)| {
                    let hour = chrono::Timelike::hour(&t.to_datetime().with_timezone(&tz));
                    !(6..22).contains(&hour)
                })
                .map(|(_, d)| *d)
                .collect();
            let avg = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let all: Vec<f64> = diffs.iter().map(|(_, d)| *d).collect();
            PlaceIntensity {
                site: site.clone(),
                hours: all.len() as u32,
                mean: avg(&all),
                night_mean: avg(&night),
                max: all.iter().copied().reduce(f64::max),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.night_mean
            .unwrap_or(f64::MIN)
            .total_cmp(&a.night_mean.unwrap_or(f64::MIN))
            .then_with(|| a.site.cmp(&b.site))
    });
    Ok((name, out))
}
