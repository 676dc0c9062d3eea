//! Irrigation of green spaces, read from the soil moisture sensors: per zone (a sensor's metadata
//! `zone`, or its place), the moisture now, its drying rate, the waterings seen in the soil, the
//! advice for tonight, and the water a fixed schedule used against what the advice would have
//! used, night by night over the period (each night judged on the readings before it only).

use std::collections::BTreeMap;

use agora_indicators::irrigation::{self, Advice, Plan};
use agora_store::catalog::DeviceFilter;
use agora_store::{Catalog, SeriesStore};
use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

use crate::Result;

/// The device kind of a soil moisture sensor.
pub const SOIL_KIND: &str = "soil_moisture";

/// Settings: dry thresholds by plant type, and each zone's plan (its plant type's threshold and
/// the defaults otherwise).
#[derive(Debug, Clone)]
pub struct IrrigationConfig {
    /// Dry threshold (%) by plant type (`lawn`, `flower_bed`, `shrubs`, `trees`…).
    pub thresholds: BTreeMap<String, f64>,
    /// The plan of zones without one of their own (its threshold is the plant type's).
    pub default_plan: Plan,
    /// Plans by zone name.
    pub zones: BTreeMap<String, Plan>,
    /// Local hour the nightly decision is taken.
    pub decision_hour: u32,
}

impl Default for IrrigationConfig {
    fn default() -> Self {
        IrrigationConfig {
            // Volumetric water content under which each suffers, for a loam: common
            // agronomic values (about half the available water), to be set by the city.
            thresholds: [("lawn", 20.0), ("flower_bed", 22.0), ("shrubs", 15.0), ("trees", 12.0)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            default_plan: Plan {
                threshold: 20.0,
                flow_m3_h: 2.0,
                minutes: 30.0,
                fixed_every_days: 2,
            },
            zones: BTreeMap::new(),
            decision_hour: 21,
        }
    }
}

/// A zone's figures.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IrrigationZone))]
pub struct Zone {
    /// The zone's name.
    pub zone: String,
    /// Its place.
    pub place: Option<String>,
    /// Plant type (sensor metadata `plant`).
    pub plant: Option<String>,
    /// Its sensors.
    pub sensors: Vec<String>,
    /// Position (mean of its sensors').
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Moisture now: the mean of its sensors' last readings (%).
    pub moisture: Option<f64>,
    /// Drying rate since the last watering (% per hour; negative when drying).
    pub rate_per_h: Option<f64>,
    /// The dry threshold (%).
    pub threshold: f64,
    /// Tonight's advice (`null` without recent readings).
    pub irrigate_tonight: Option<bool>,
    /// Why (`dry`, `will_be_dry`, `rain_expected`, `moist`).
    pub advice: Option<&'static str>,
    /// The advice in a sentence.
    pub reason: Option<String>,
    /// Moisture expected in 24 h without watering (%).
    pub projected: Option<f64>,
    /// How much faster the soil dries tomorrow than today, from the temperatures measured today
    /// and forecast for tomorrow at its place (Hargreaves); `null`: no forecast, taken as 1.
    pub drying_factor: Option<f64>,
    /// Waterings seen in the soil over the period (their start, RFC 3339).
    pub waterings: Vec<String>,
    /// m³ a watering uses.
    pub volume_m3: f64,
    /// Nights the fixed schedule waters over the nights judged.
    pub fixed_nights: u32,
    /// Nights the advice would have watered (judged each night on readings before it).
    pub advised_nights: u32,
    /// Nights without enough readings to judge.
    pub unjudged_nights: u32,
    /// m³ the fixed schedule uses over the period.
    pub fixed_m3: f64,
    /// m³ the advice would have used.
    pub advised_m3: f64,
}

/// All zones over the `days` before `now`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = IrrigationAnswer))]
pub struct Irrigation {
    /// Days looked back.
    pub days: u32,
    /// Zones.
    pub zones: Vec<Zone>,
    /// m³ of the fixed schedules, all zones.
    pub fixed_m3: f64,
    /// m³ the advice would have used, all zones.
    pub advised_m3: f64,
}

/// The zones of `catalog` (the caller's view) over the `days` before `now` (Unix s).
pub async fn analyse(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    config: &IrrigationConfig,
    tz: Tz,
    now: i64,
    days: u32,
) -> Result<Irrigation> {
    analyse_with(catalog, store, config, tz, now, days, &BTreeMap::new()).await
}

/// [`analyse`], with tomorrow's drying factor at some places (place id → how much faster the soil
/// will dry tomorrow than today: [`irrigation::hargreaves_ratio`] of the measured and forecast
/// temperatures); tonight's advice takes it, the replayed past nights do not (no forecast of
/// theirs is kept).
pub async fn analyse_with(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    config: &IrrigationConfig,
    tz: Tz,
    now: i64,
    days: u32,
    drying: &BTreeMap<String, f64>,
) -> Result<Irrigation> {
    let filter =
        DeviceFilter { kind: agora_model::DeviceKind::parse(SOIL_KIND).ok(), ..Default::default() };
    let mut devices = catalog.devices(&filter);
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    let from = now - i64::from(days + 1) * 86_400;
    let readings = super::readings(catalog, store, &devices, "soil_moisture", from, now).await?;
    let sites = catalog.sites();
    // Zones: (place, zone name) → sensors.
    let mut zones: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, d) in devices.iter().enumerate() {
        let site = d.site.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let name = d
            .metadata
            .get("zone")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                d.site
                    .as_ref()
                    .and_then(|s| sites.iter().find(|x| &x.id == s))
                    .map(|s| s.name.clone())
            })
            .unwrap_or_else(|| d.id.to_string());
        zones.entry((site, name)).or_default().push(i);
    }
    let today = chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or(NaiveDate::MIN);
    let night = |d: NaiveDate| {
        crate::services::lighting::local_midnight(d, tz)
            .map(|m| m + i64::from(config.decision_hour) * 3600)
    };
    let mut out = Vec::new();
    let (mut fixed_total, mut advised_total) = (0.0, 0.0);
    for ((site, name), idx) in zones {
        let plant = idx.iter().find_map(|&i| {
            devices[i].metadata.get("plant").and_then(serde_json::Value::as_str).map(str::to_owned)
        });
        let mut plan = config.zones.get(&name).copied().unwrap_or(config.default_plan);
        if !config.zones.contains_key(&name)
            && let Some(t) = plant.as_ref().and_then(|p| config.thresholds.get(p))
        {
            plan.threshold = *t;
        }
        let series: Vec<&Vec<(i64, f64)>> = idx.iter().map(|&i| &readings[i]).collect();
        // The zone as its sensors saw it up to `t`: mean of their last readings (within 6 h)
        // and of their drying rates over the day before.
        let state = |t: i64| -> Option<(f64, f64)> {
            let mut levels = Vec::new();
            let mut rates = Vec::new();
            for s in &series {
                let upto: Vec<(i64, f64)> =
                    s.iter().copied().filter(|p| p.0 <= t && p.0 > t - 2 * 86_400).collect();
                if let Some(&(lt, lv)) = upto.last()
                    && t - lt <= 6 * 3600
                {
                    levels.push(lv);
                    let day: Vec<(i64, f64)> =
                        upto.iter().copied().filter(|p| p.0 > t - 86_400).collect();
                    if let Some(r) = irrigation::drying_rate(&day) {
                        rates.push(r);
                    }
                }
            }
            if levels.is_empty() || rates.is_empty() {
                return None;
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            Some((mean(&levels), mean(&rates)))
        };
        let advise = |(m, r): (f64, f64)| irrigation::advise(m, r, plan.threshold, 24.0, None, 1.0);
        let now_state = state(now);
        let factor = drying.get(&site).copied();
        let advice: Option<Advice> = now_state.map(|(m, r)| {
            irrigation::advise(m, r, plan.threshold, 24.0, None, factor.unwrap_or(1.0))
        });
        // Past nights: the fixed schedule against the advice of each night.
        let (mut advised, mut unjudged) = (0u32, 0u32);
        for k in 1..=days {
            let d = today - Days::new(u64::from(k));
            let Ok(t) = night(d) else { continue };
            match state(t).map(advise) {
                Some(a) if a.irrigate => advised += 1,
                Some(_) => {}
                None => unjudged += 1,
            }
        }
        // The fixed schedule over the nights judged: nights without data count on neither side.
        let fixed = plan.fixed_waterings(days - unjudged);
        let mut seen: Vec<i64> = Vec::new();
        for s in &series {
            for w in irrigation::waterings(s, irrigation::MIN_RISE) {
                // Sensors of a zone see one watering: keep one within 6 h.
                if !seen.iter().any(|&x| (x - w.t).abs() < 6 * 3600) {
                    seen.push(w.t);
                }
            }
        }
        seen.sort_unstable();
        let pos: Vec<(f64, f64)> =
            idx.iter().filter_map(|&i| Some((devices[i].lat?, devices[i].lon?))).collect();
        let n = pos.len().max(1) as f64;
        let volume = plan.volume_m3();
        fixed_total += f64::from(fixed) * volume;
        advised_total += f64::from(advised) * volume;
        out.push(Zone {
            zone: name,
            place: (!site.is_empty()).then_some(site),
            plant,
            sensors: idx.iter().map(|&i| devices[i].id.to_string()).collect(),
            lat: (!pos.is_empty()).then(|| pos.iter().map(|p| p.0).sum::<f64>() / n),
            lon: (!pos.is_empty()).then(|| pos.iter().map(|p| p.1).sum::<f64>() / n),
            moisture: now_state.map(|s| s.0),
            rate_per_h: now_state.map(|s| s.1),
            threshold: plan.threshold,
            irrigate_tonight: advice.as_ref().map(|a| a.irrigate),
            advice: advice.as_ref().map(|a| a.code),
            reason: advice.as_ref().map(|a| a.reason.clone()),
            projected: advice.as_ref().map(|a| a.projected),
            drying_factor: factor,
            waterings: seen
                .iter()
                .filter(|&&t| t >= now - i64::from(days) * 86_400)
                .filter_map(|&t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339())
                .collect(),
            volume_m3: volume,
            fixed_nights: fixed,
            advised_nights: advised,
            unjudged_nights: unjudged,
            fixed_m3: f64::from(fixed) * volume,
            advised_m3: f64::from(advised) * volume,
        });
    }
    Ok(Irrigation { days, zones: out, fixed_m3: fixed_total, advised_m3: advised_total })
}
