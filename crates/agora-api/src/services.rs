//! The departments' services: street lighting (energy, cost, emissions, burning against the sun,
//! maintenance, dimming scenarios), bins (fill rates, collections, time to full, the round) and
//! irrigation (each zone's advice for tonight and the water it saves). Every figure in JSON, and
//! in CSV or GeoJSON where a list or a map is wanted. The figures are `agora_query::services`';
//! the caller sees the devices their commune (or department) may see.

use agora_indicators::lighting::{Savings, Scenario, parse_hhmm};
use agora_model::permissions::{Action, Domain};
use agora_query::services::schedules::{self, IrrigationSchedule, LightingPlan};
use agora_query::services::{bins, irrigation, lighting};
use agora_store::schedules::Schedule;
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::commerce::paris_today;
use crate::commerce_report::csv_field;
use crate::doc::{BadRequest, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::indicators::csv_response;
use crate::policy::{Principal, Scoped, Who};

/// The answer's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    GeoJson,
}

fn format(f: Option<&str>) -> ApiResult<Format> {
    match f {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("geojson") => Ok(Format::GeoJson),
        Some(f) => Err(ApiError::BadRequest(format!("format {f:?}: use json, csv or geojson"))),
    }
}

fn json_response<T: Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

fn geojson_response(features: Vec<Value>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
        .into_response()
}

fn feature(lat: Option<f64>, lon: Option<f64>, properties: Value) -> Option<Value> {
    Some(json!({
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon?, lat?]},
        "properties": properties,
    }))
}

/// A number for CSV: empty when absent, three decimals at most.
fn n(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{}", (x * 1000.0).round() / 1000.0))
        .unwrap_or_default()
}

/// The days of a period of complete local days: `from`/`to` (YYYY-MM-DD, both included),
/// default the 30 days before today; at most 366 days, never after today.
fn days_of(
    s: &crate::AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<(NaiveDate, NaiveDate)> {
    let (_, today) = paris_today(s);
    let parse = |what: &str, v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("{what} {v:?}: write a date as YYYY-MM-DD")))
    };
    let to = match to {
        Some(v) => parse("to", v)?,
        None => today - Days::new(1),
    };
    let from = match from {
        Some(v) => parse("from", v)?,
        None => to - Days::new(29),
    };
    if from > to {
        return Err(ApiError::BadRequest(format!("from {from} is after to {to}")));
    }
    if to > today {
        return Err(ApiError::BadRequest(format!("to {to} is after today ({today})")));
    }
    if (to - from).num_days() > 365 {
        return Err(ApiError::BadRequest(format!(
            "from {from} to {to} is more than 366 days: ask for a year at most"
        )));
    }
    Ok((from, to))
}

/// The lamps the caller sees, in `place` or `commune` when named (unknown ones refused).
fn lamps_in(
    s: &crate::AppState,
    place: Option<&str>,
    commune: Option<&str>,
) -> ApiResult<Vec<lighting::Lamp>> {
    if let Some(p) = place
        && !s.catalog.sites().iter().any(|x| x.id.as_str() == p)
    {
        return Err(ApiError::BadRequest(format!("unknown place {p:?}")));
    }
    if let Some(c) = commune
        && !s.catalog.communes().iter().any(|x| x.insee.as_str() == c)
    {
        return Err(ApiError::BadRequest(format!("unknown commune {c:?}")));
    }
    Ok(lighting::lamps(s.catalog.as_ref())
        .into_iter()
        .filter(|l| place.is_none_or(|p| l.site == p) && commune.is_none_or(|c| l.commune == c))
        .collect())
}

/// Query of `/api/v1/lighting`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LightingParams {
    /// First local day (YYYY-MM-DD; default 30 days before `to`).
    from: Option<String>,
    /// Last local day, included (default yesterday); at most 366 days in all.
    to: Option<String>,
    /// Group by `lamp`, `street` (default), `place` or `commune`.
    by: Option<String>,
    /// Only this place's lamps.
    place: Option<String>,
    /// Only this commune's lamps.
    commune: Option<String>,
    /// `json` (default), `csv` (the groups) or `geojson` (the groups with a position).
    format: Option<String>,
}

/// Street lighting: energy, cost, emissions and burning
///
/// kWh drawn per day, month and lamp, street or place: integrated from the lamps' power
/// readings (trapezoids; readings more than an hour apart leave a gap, reported in
/// `energy_coverage`, never counted as zero), or estimated from a lamp's rated power
/// (`rated_power_w` in its metadata), hours lit and dimming level when it reports no power. Cost
/// at the configured tariff with its off-peak hours, emissions at its factor (default ADEME's
/// French grid average, 0.052 kg CO2e/kWh). Burning against the sun at each lamp's position
/// (NOAA's algorithm): hours lit while the sun is up, hours unlit while it is 6° or more below
/// the horizon, days lit by day or unlit at night.
#[utoipa::path(get, path = "/api/v1/lighting", tag = "services", security((), ("bearer" = [])),
    params(LightingParams),
    responses(
        (status = 200, description = "The overview (CSV or GeoJSON with `format`)", body = lighting::Overview),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn lighting_overview(
    Scoped(s): Scoped,
    Query(p): Query<LightingParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let by = lighting::By::parse(p.by.as_deref().unwrap_or("street"))?;
    let (from, to) = days_of(&s, p.from.as_deref(), p.to.as_deref())?;
    let lamps = lamps_in(&s, p.place.as_deref(), p.commune.as_deref())?;
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let days = s.lighting.days(from, to, now).await?;
    let kg = s.lighting.config().tariff.kg_co2e_per_kwh;
    let o = lighting::overview(&days, &lamps, by, kg);
    Ok(match f {
        Format::Json => json_response(&o),
        Format::GeoJson => geojson_response(
            o.groups
                .iter()
                .filter_map(|g| feature(g.lat, g.lon, serde_json::to_value(g).unwrap_or_default()))
                .collect(),
        ),
        Format::Csv => {
            let mut out = String::from(
                "key,place,street,lamps,kwh,eur,kg_co2e,energy_coverage,lit_h,lit_by_day_h,\
                 dark_unlit_h,days_lit_by_day,days_unlit_at_night,fault_days\n",
            );
            for g in &o.groups {
                let t = &g.totals;
                out += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&g.key),
                    csv_field(g.place.as_deref().unwrap_or("")),
                    csv_field(g.street.as_deref().unwrap_or("")),
                    t.lamps,
                    n(Some(t.kwh)),
                    n(Some(t.eur)),
                    n(Some(t.kg_co2e)),
                    n(Some(t.energy_coverage)),
                    n(Some(t.lit_h)),
                    n(Some(t.lit_by_day_h)),
                    n(Some(t.dark_unlit_h)),
                    t.days_lit_by_day,
                    t.days_unlit_at_night,
                    t.fault_days
                );
            }
            csv_response(out)
        }
    })
}

/// Query of `/api/v1/lighting/maintenance`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MaintenanceParams {
    /// First local day (default 30 days before `to`).
    from: Option<String>,
    /// Last local day, included (default yesterday).
    to: Option<String>,
    /// Only this place's lamps.
    place: Option<String>,
    /// Only this commune's lamps.
    commune: Option<String>,
    /// `json` (default), `csv` or `geojson` (both: the lamps to visit).
    format: Option<String>,
}

/// Street lighting: faults, repairs and the lamps to visit
///
/// Faults per month — a lamp reporting a fault status (anything but `ok`), or lit for most of the
/// daylight, or unlit for most of the night —, the mean time to repair (from the first faulty
/// observation to the first normal one after it), lamps with repeated faults, and the lamps
/// whose fault is still open, by place and street: the crews' list (CSV, GeoJSON).
#[utoipa::path(get, path = "/api/v1/lighting/maintenance", tag = "services", security((), ("bearer" = [])),
    params(MaintenanceParams),
    responses(
        (status = 200, description = "Faults and repairs (CSV or GeoJSON: the lamps to visit)", body = lighting::Maintenance),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn lighting_maintenance(
    Scoped(s): Scoped,
    Query(p): Query<MaintenanceParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let (from, to) = days_of(&s, p.from.as_deref(), p.to.as_deref())?;
    let lamps = lamps_in(&s, p.place.as_deref(), p.commune.as_deref())?;
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let days = s.lighting.days(from, to, now).await?;
    let m = lighting::maintenance(&days, &lamps, s.lighting.tz());
    Ok(match f {
        Format::Json => json_response(&m),
        Format::GeoJson => geojson_response(
            m.to_visit
                .iter()
                .filter_map(|v| feature(v.lat, v.lon, serde_json::to_value(v).unwrap_or_default()))
                .collect(),
        ),
        Format::Csv => {
            let mut out = String::from("place,street,lamp,since,why,lat,lon\n");
            for v in &m.to_visit {
                out += &format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&v.place),
                    csv_field(&v.street),
                    csv_field(&v.lamp),
                    v.since,
                    v.why,
                    n(v.lat),
                    n(v.lon)
                );
            }
            csv_response(out)
        }
    })
}

/// Query of `/api/v1/lighting/sun`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SunParams {
    /// The local day (default today).
    date: Option<String>,
    /// Latitude (with `lon`); default: each place's.
    lat: Option<f64>,
    /// Longitude.
    lon: Option<f64>,
}

/// The sun at a position on a day.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SunAnswer {
    /// The place's id (absent for a position asked).
    place: Option<String>,
    /// Its name.
    name: Option<String>,
    lat: f64,
    lon: f64,
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    /// Civil dawn, sunrise, solar noon, sunset, civil dusk (RFC 3339, local time).
    civil_dawn: Option<String>,
    sunrise: Option<String>,
    noon: String,
    sunset: Option<String>,
    civil_dusk: Option<String>,
    /// Hours of daylight.
    daylight_h: f64,
}

/// Sunrise, sunset and civil twilight
///
/// At a position or at each place, on a local day: what lamps are judged against. NOAA's solar
/// algorithm; sunrise and sunset are the upper limb on the horizon with refraction, civil
/// twilight the centre 6° below.
#[utoipa::path(get, path = "/api/v1/lighting/sun", tag = "services", security((), ("bearer" = [])),
    params(SunParams),
    responses(
        (status = 200, description = "The sun at each place (or at the position asked)", body = [SunAnswer]),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn sun(Scoped(s): Scoped, Query(p): Query<SunParams>) -> ApiResult<Response> {
    let (tz, today) = paris_today(&s);
    let date = match p.date.as_deref() {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("date {d:?}: write it as YYYY-MM-DD")))?,
        None => today,
    };
    let at: Vec<(Option<String>, Option<String>, f64, f64)> = match (p.lat, p.lon) {
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(ApiError::BadRequest(format!("({lat}, {lon}) is not a position")));
            }
            vec![(None, None, lat, lon)]
        }
        (None, None) => s
            .catalog
            .sites()
            .into_iter()
            .filter_map(|x| Some((Some(x.id.to_string()), Some(x.name.clone()), x.lat?, x.lon?)))
            .collect(),
        _ => return Err(ApiError::BadRequest("give both lat and lon, or neither".into())),
    };
    let local =
        |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|x| x.with_timezone(&tz).to_rfc3339());
    let out: Vec<SunAnswer> = at
        .into_iter()
        .map(|(place, name, lat, lon)| {
            let d = agora_indicators::sun::SunDay::at(date, lat, lon);
            SunAnswer {
                place,
                name,
                lat,
                lon,
                date,
                civil_dawn: d.civil_dawn.and_then(local),
                sunrise: d.sunrise.and_then(local),
                noon: local(d.noon).unwrap_or_default(),
                sunset: d.sunset.and_then(local),
                civil_dusk: d.civil_dusk.and_then(local),
                daylight_h: d.daylight_s() as f64 / 3600.0,
            }
        })
        .collect();
    Ok(json_response(&out))
}

/// Query of `/api/v1/lighting/scenario`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ScenarioParams {
    /// `dim` (lower the output), `off` (switch off) or `presence` (low output, full when someone
    /// passes).
    kind: String,
    /// Window start, local time `HH:MM` on a quarter-hour (e.g. `23:00`).
    start: String,
    /// Window end, `HH:MM` (e.g. `05:00`; before `start`: the window crosses midnight).
    end: String,
    /// `dim`: output kept, % of full (e.g. 50). `presence`: output when nobody is there.
    level: Option<f64>,
    /// `presence`: % of the window with someone present (default 10).
    presence: Option<f64>,
    /// Streets (`;`-separated names, as the lamps' metadata gives them); default all.
    streets: Option<String>,
    /// Only this place's streets.
    place: Option<String>,
    /// The measured profile's first day (default a year before `to`).
    from: Option<String>,
    /// Its last day (default yesterday).
    to: Option<String>,
}

/// What a scenario saves.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScenarioAnswer {
    /// The scenario as understood.
    scenario: String,
    /// Streets it applies to, as `place/street`.
    streets: Vec<String>,
    /// The measured profile's days.
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    days: f64,
    /// kWh drawn over those days without the scenario.
    baseline_kwh: f64,
    /// Saved over those days.
    kwh: f64,
    eur: f64,
    kg_co2e: f64,
    /// The same, a year (× 365 / days).
    kwh_per_year: f64,
    eur_per_year: f64,
    kg_co2e_per_year: f64,
    /// Share of the baseline saved.
    share: f64,
}

/// Street lighting: what a dimming scenario would save
///
/// On the streets' measured burning profile (energy by local quarter-hour over the days asked, a
/// year by default), the kWh, € (at the tariff, off-peak hours included) and kg CO2e a scenario
/// saves, over those days and per year. Lamps already dimmed below a scenario's level save nothing
/// more; power is taken as proportional to the output (LED drivers are nearly linear).
#[utoipa::path(get, path = "/api/v1/lighting/scenario", tag = "services", security((), ("bearer" = [])),
    params(ScenarioParams),
    responses(
        (status = 200, description = "The savings", body = ScenarioAnswer),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn scenario(
    Scoped(s): Scoped,
    Query(p): Query<ScenarioParams>,
) -> ApiResult<Response> {
    let pct = |what: &str, v: Option<f64>, default: Option<f64>| -> ApiResult<f64> {
        let v = v.or(default).ok_or_else(|| ApiError::BadRequest(format!("{what} is missing")))?;
        if !(0.0..=100.0).contains(&v) {
            return Err(ApiError::BadRequest(format!("{what} must be 0 to 100 %, not {v}")));
        }
        Ok(v / 100.0)
    };
    let (start, end) = (parse_hhmm(&p.start)?, parse_hhmm(&p.end)?);
    let sc = match p.kind.as_str() {
        "dim" => Scenario::Dim { level: pct("level", p.level, None)?, from: start, to: end },
        "off" => Scenario::Off { from: start, to: end },
        "presence" => Scenario::Presence {
            base: pct("level", p.level, Some(20.0))?,
            presence: pct("presence", p.presence, Some(10.0))?,
            from: start,
            to: end,
        },
        k => return Err(ApiError::BadRequest(format!("kind {k:?}: use dim, off or presence"))),
    };
    sc.check()?;
    let (_, today) = paris_today(&s);
    let to_default = (today - Days::new(1)).to_string();
    let to = p.to.as_deref().unwrap_or(&to_default);
    let from_default = NaiveDate::parse_from_str(to, "%Y-%m-%d")
        .map(|t| (t - Days::new(364)).to_string())
        .unwrap_or_default();
    let (from, to) = days_of(&s, Some(p.from.as_deref().unwrap_or(&from_default)), Some(to))?;
    let lamps = lamps_in(&s, p.place.as_deref(), None)?;
    let mut known: Vec<(String, String)> =
        lamps.iter().map(|l| (l.site.clone(), l.street.clone())).collect();
    known.sort();
    known.dedup();
    let chosen: Vec<(String, String)> = match p.streets.as_deref() {
        None | Some("") => known.clone(),
        Some(list) => {
            let mut v = Vec::new();
            for name in list.split(';').map(str::trim).filter(|x| !x.is_empty()) {
                let m: Vec<_> = known.iter().filter(|k| k.1 == name).cloned().collect();
                if m.is_empty() {
                    return Err(ApiError::BadRequest(format!(
                        "unknown street {name:?}{}",
                        p.place.as_deref().map(|x| format!(" in {x}")).unwrap_or_default()
                    )));
                }
                v.extend(m);
            }
            v
        }
    };
    if chosen.is_empty() {
        return Err(ApiError::BadRequest("no lamp there".into()));
    }
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let days = s.lighting.days(from, to, now).await?;
    let profile = lighting::profile(&days, &chosen);
    let sv: Savings =
        agora_indicators::lighting::savings(&profile, &sc, &s.lighting.config().tariff);
    let describe = match &sc {
        Scenario::Dim { level, .. } => {
            format!("dim to {:.0} % from {} to {}", level * 100.0, p.start, p.end)
        }
        Scenario::Off { .. } => format!("off from {} to {}", p.start, p.end),
        Scenario::Presence { base, presence, .. } => format!(
            "presence-based from {} to {}: {:.0} % without anyone, full {:.0} % of the time",
            p.start,
            p.end,
            base * 100.0,
            presence * 100.0
        ),
    };
    Ok(json_response(&ScenarioAnswer {
        scenario: describe,
        streets: chosen.iter().map(|(a, b)| format!("{a}/{b}")).collect(),
        from,
        to,
        days: profile.days,
        baseline_kwh: sv.baseline_kwh,
        kwh: sv.kwh,
        eur: sv.eur,
        kg_co2e: sv.kg_co2e,
        kwh_per_year: sv.per_year[0],
        eur_per_year: sv.per_year[1],
        kg_co2e_per_year: sv.per_year[2],
        share: if sv.baseline_kwh > 0.0 { sv.kwh / sv.baseline_kwh } else { 0.0 },
    }))
}

/// Query of `/api/v1/bins`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BinsParams {
    /// Days looked back, 1 to 92 (default 28).
    days: Option<u32>,
    /// Only this place's bins.
    place: Option<String>,
    /// Only this commune's bins.
    commune: Option<String>,
    /// `json` (default), `csv` or `geojson`.
    format: Option<String>,
}

async fn bins_of(
    s: &crate::AppState,
    days: u32,
    place: Option<&str>,
    commune: Option<&str>,
) -> ApiResult<bins::Bins> {
    if !(1..=92).contains(&days) {
        return Err(ApiError::BadRequest(format!("days must be 1 to 92, not {days}")));
    }
    lamps_in(s, place, commune)?; // checks the place and the commune exist
    let (tz, _) = paris_today(s);
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let cfg = &s.config.services.bins;
    let mut b = bins::analyse(s.catalog.as_ref(), s.store.as_ref(), cfg, tz, now, days).await?;
    b.bins.retain(|x| {
        place.is_none_or(|p| x.place.as_deref() == Some(p))
            && commune.is_none_or(|c| x.commune.as_deref() == Some(c))
    });
    Ok(b)
}

/// Bins: fill rates, collections, time to full
///
/// Per bin, over the days asked: collections (a drop of 25 points or more), the level at which
/// it was emptied (below the wasted-visit level: a wasted visit), fill rate (per weekday too),
/// hours full, and when it will reach the round's threshold and 100 % — from its current fill
/// cycle's own trend when it has six hours of it, else from its past cycles —, with a 95 %
/// range. Month by month: visits made against the visits a round by need would have made.
#[utoipa::path(get, path = "/api/v1/bins", tag = "services", security((), ("bearer" = [])),
    params(BinsParams),
    responses(
        (status = 200, description = "The bins (CSV or GeoJSON with `format`)", body = bins::Bins),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn bins_overview(
    Scoped(s): Scoped,
    Query(p): Query<BinsParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let b = bins_of(&s, p.days.unwrap_or(28), p.place.as_deref(), p.commune.as_deref()).await?;
    Ok(match f {
        Format::Json => json_response(&b),
        Format::GeoJson => geojson_response(
            b.bins
                .iter()
                .filter_map(|x| feature(x.lat, x.lon, serde_json::to_value(x).unwrap_or_default()))
                .collect(),
        ),
        Format::Csv => {
            let mut out = String::from(
                "id,place,level,rate_per_h,collections,level_at_collection,wasted_visits,\
                 hours_full,coverage,hours_to_threshold,hours_to_full,earliest_full_h,latest_full_h,lat,lon\n",
            );
            for x in &b.bins {
                out += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&x.id),
                    csv_field(x.place.as_deref().unwrap_or("")),
                    n(x.level),
                    n(x.rate_per_h),
                    x.collections,
                    n(x.level_at_collection),
                    x.wasted_visits,
                    n(Some(x.hours_full)),
                    n(Some(x.coverage)),
                    n(x.to_threshold.and_then(|e| e.hours)),
                    n(x.to_full.and_then(|e| e.hours)),
                    n(x.to_full.map(|e| e.earliest_h)),
                    n(x.to_full.and_then(|e| e.latest_h)),
                    n(x.lat),
                    n(x.lon)
                );
            }
            csv_response(out)
        }
    })
}

/// Query of `/api/v1/bins/round`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RoundParams {
    /// Bins due within this many hours (default 24, at most 168).
    within_h: Option<f64>,
    /// Due at this level, % (default: the configured threshold, 80).
    threshold: Option<f64>,
    /// Where the round starts and ends, `lat,lon` (default: the commune's configured depot).
    depot: Option<String>,
    /// Road distance ÷ distance as the crow flies (default 1.3).
    detour: Option<f64>,
    /// Only this place's bins.
    place: Option<String>,
    /// The commune (default: the only one, or the caller's).
    commune: Option<String>,
    /// `json` (default), `csv` (the stops in order) or `geojson` (the stops and the path).
    format: Option<String>,
}

/// Bins: the collection round of those due
///
/// The bins that will reach the threshold within the hours asked, ordered from the depot and
/// back (nearest neighbour, then 2-opt), on distances as the crow flies times a detour factor;
/// the length, and the nearest-neighbour round's for comparison. The depot must lie in the
/// commune (its boundary when known, else within 2 km of its devices and places).
#[utoipa::path(get, path = "/api/v1/bins/round", tag = "services", security((), ("bearer" = [])),
    params(RoundParams),
    responses(
        (status = 200, description = "The round (CSV or GeoJSON with `format`)", body = bins::RoundPlan),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn bins_round(
    Scoped(s): Scoped,
    Query(p): Query<RoundParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let within = p.within_h.unwrap_or(24.0);
    if !(0.0..=168.0).contains(&within) {
        return Err(ApiError::BadRequest(format!("within_h must be 0 to 168 hours, not {within}")));
    }
    let communes = s.catalog.communes();
    let commune = match p.commune.as_deref() {
        Some(c) => communes
            .iter()
            .find(|x| x.insee.as_str() == c)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown commune {c:?}")))?,
        None if communes.len() == 1 => &communes[0],
        None => {
            return Err(ApiError::BadRequest(
                "name the commune of the round (commune=INSEE code)".into(),
            ));
        }
    };
    let depot = match p.depot.as_deref() {
        Some(d) => {
            let (a, b) = d
                .split_once(',')
                .ok_or_else(|| ApiError::BadRequest(format!("depot {d:?}: write it lat,lon")))?;
            let parse =
                |x: &str| {
                    x.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                        ApiError::BadRequest(format!("depot {d:?}: write it lat,lon"))
                    })
                };
            (parse(a)?, parse(b)?)
        }
        None => *s.config.services.bins.depots.get(commune.insee.as_str()).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "no depot configured for {}: give depot=lat,lon",
                commune.name
            ))
        })?,
    };
    check_depot(&s, commune, depot)?;
    let mut b = bins_of(&s, 28, p.place.as_deref(), Some(commune.insee.as_str())).await?;
    if let Some(t) = p.threshold {
        if !(1.0..=100.0).contains(&t) {
            return Err(ApiError::BadRequest(format!("threshold must be 1 to 100 %, not {t}")));
        }
        // Recompute each bin's time to this level from the same readings.
        let mut cfg = s.config.services.bins.clone();
        cfg.threshold = t;
        let (tz, _) = paris_today(&s);
        let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
        b = bins::analyse(s.catalog.as_ref(), s.store.as_ref(), &cfg, tz, now, 28).await?;
        b.bins.retain(|x| {
            x.commune.as_deref() == Some(commune.insee.as_str())
                && p.place.as_deref().is_none_or(|pl| x.place.as_deref() == Some(pl))
        });
    }
    let detour = p.detour.unwrap_or(s.config.services.bins.detour);
    let r = bins::round(&b, depot, within, detour)?;
    Ok(match f {
        Format::Json => json_response(&r),
        Format::GeoJson => {
            let mut features: Vec<Value> = r
                .stops
                .iter()
                .filter_map(|x| {
                    feature(Some(x.lat), Some(x.lon), serde_json::to_value(x).unwrap_or_default())
                })
                .collect();
            let mut path = vec![json!([depot.1, depot.0])];
            path.extend(r.stops.iter().map(|x| json!([x.lon, x.lat])));
            path.push(json!([depot.1, depot.0]));
            features.push(json!({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": path},
                "properties": {"kind": "round", "metres": r.metres, "stops": r.stops.len()},
            }));
            features.push(json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [depot.1, depot.0]},
                "properties": {"kind": "depot"},
            }));
            geojson_response(features)
        }
        Format::Csv => {
            let mut out = String::from("order,id,place,level,hours_to_threshold,leg_m,lat,lon\n");
            for x in &r.stops {
                out += &format!(
                    "{},{},{},{},{},{},{},{}\n",
                    x.order,
                    csv_field(&x.id),
                    csv_field(x.place.as_deref().unwrap_or("")),
                    n(x.level),
                    n(Some(x.hours_to_threshold)),
                    n(Some(x.leg_m)),
                    x.lat,
                    x.lon
                );
            }
            csv_response(out)
        }
    })
}

/// Refuses a depot outside the commune: its boundary when the catalog has one, else the box of
/// its places and devices widened by 2 km.
fn check_depot(
    s: &crate::AppState,
    commune: &agora_store::catalog::Commune,
    (lat, lon): (f64, f64),
) -> ApiResult<()> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(ApiError::BadRequest(format!("the depot ({lat}, {lon}) is not a position")));
    }
    let outside = || {
        ApiError::BadRequest(format!(
            "the depot ({lat}, {lon}) is outside {} ({})",
            commune.name, commune.insee
        ))
    };
    if let Some(boundary) = &commune.boundary
        && let Ok(g) = agora_interop::geo::Geometry::from_geojson(boundary)
    {
        let point = agora_interop::geo::Geometry::Point((lon, lat));
        return if point.intersects(&g) { Ok(()) } else { Err(outside()) };
    }
    let filter = agora_store::catalog::DeviceFilter {
        commune: Some(commune.insee.clone()),
        ..Default::default()
    };
    let mut pts: Vec<(f64, f64)> =
        s.catalog.devices(&filter).iter().filter_map(|d| Some((d.lat?, d.lon?))).collect();
    pts.extend(
        s.catalog
            .sites()
            .iter()
            .filter(|x| x.commune == commune.insee)
            .filter_map(|x| Some((x.lat?, x.lon?))),
    );
    if pts.is_empty() {
        return Ok(());
    }
    let (min_lat, max_lat) =
        pts.iter().fold((90.0f64, -90.0f64), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (min_lon, max_lon) =
        pts.iter().fold((180.0f64, -180.0f64), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let dlat = 2000.0 / 111_195.0;
    let dlon = dlat / lat.to_radians().cos().max(0.1);
    if lat < min_lat - dlat || lat > max_lat + dlat || lon < min_lon - dlon || lon > max_lon + dlon
    {
        return Err(outside());
    }
    Ok(())
}

/// Query of `/api/v1/irrigation`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IrrigationParams {
    /// Days looked back, 1 to 92 (default 30).
    days: Option<u32>,
    /// Only this place's zones.
    place: Option<String>,
    /// `json` (default), `csv` or `geojson`.
    format: Option<String>,
}

/// Green spaces: irrigate tonight or not, and the water saved
///
/// Per zone (a sensor's `zone`, or its place): moisture now (the mean of its sensors), its drying
/// rate since the last watering, the dry threshold (the zone's plan, or its plant type's), and
/// the advice for tonight: water when the soil is below the threshold or will be within 24 h at
/// its rate — faster when tomorrow is forecast hotter than today at the place (`drying_factor`,
/// the Hargreaves ratio of the temperatures; no rain forecast is known to agora). Over the days asked, each night is judged again on the readings before it, and the
/// water the advice would have used is set against the fixed schedule's (flow × duration).
/// Waterings seen in the soil (a rise of 4 points or more within 3 h) are listed.
#[utoipa::path(get, path = "/api/v1/irrigation", tag = "services", security((), ("bearer" = [])),
    params(IrrigationParams),
    responses(
        (status = 200, description = "The zones (CSV or GeoJSON with `format`)", body = irrigation::Irrigation),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn irrigation_overview(
    Scoped(s): Scoped,
    Query(p): Query<IrrigationParams>,
) -> ApiResult<Response> {
    let f = format(p.format.as_deref())?;
    let days = p.days.unwrap_or(30);
    if !(1..=92).contains(&days) {
        return Err(ApiError::BadRequest(format!("days must be 1 to 92, not {days}")));
    }
    lamps_in(&s, p.place.as_deref(), None)?;
    let (tz, _) = paris_today(&s);
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let cfg = &s.config.services.irrigation;
    let drying = drying_factors(&s, now).await?;
    let mut r =
        irrigation::analyse_with(s.catalog.as_ref(), s.store.as_ref(), cfg, tz, now, days, &drying)
            .await?;
    if let Some(pl) = p.place.as_deref() {
        r.zones.retain(|z| z.place.as_deref() == Some(pl));
        r.fixed_m3 = r.zones.iter().map(|z| z.fixed_m3).sum();
        r.advised_m3 = r.zones.iter().map(|z| z.advised_m3).sum();
    }
    Ok(match f {
        Format::Json => json_response(&r),
        Format::GeoJson => geojson_response(
            r.zones
                .iter()
                .filter_map(|z| feature(z.lat, z.lon, serde_json::to_value(z).unwrap_or_default()))
                .collect(),
        ),
        Format::Csv => {
            let mut out = String::from(
                "zone,place,plant,sensors,moisture,rate_per_h,threshold,irrigate_tonight,advice,\
                 projected,fixed_m3,advised_m3,unjudged_nights\n",
            );
            for z in &r.zones {
                out += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&z.zone),
                    csv_field(z.place.as_deref().unwrap_or("")),
                    csv_field(z.plant.as_deref().unwrap_or("")),
                    z.sensors.len(),
                    n(z.moisture),
                    n(z.rate_per_h),
                    n(Some(z.threshold)),
                    z.irrigate_tonight.map(|b| b.to_string()).unwrap_or_default(),
                    z.advice.unwrap_or(""),
                    n(z.projected),
                    n(Some(z.fixed_m3)),
                    n(Some(z.advised_m3)),
                    z.unjudged_nights
                );
            }
            csv_response(out)
        }
    })
}

// ---- Schedules: scenarios and irrigation plans applied to equipment ---------------------------

fn schedules_of(s: &crate::AppState) -> &dyn agora_store::schedules::ScheduleStore {
    s.schedules.as_ref()
}

/// Whether the caller sees a schedule: its commune is one they see (the Métropole's people see
/// every schedule, a commune's those of their commune).
fn sees_schedule(s: &crate::AppState, who: &Principal, sc: &Schedule) -> bool {
    who.grant.sees_all()
        || sc
            .commune
            .as_deref()
            .is_some_and(|c| s.catalog.communes().iter().any(|x| x.insee.as_str() == c))
}

/// A schedule's name, trimmed: 1 to 100 characters.
fn schedule_name(name: &str) -> ApiResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest("a schedule's name is 1 to 100 characters".into()));
    }
    Ok(name)
}

/// Keeps a new schedule, active, made by `who`; answers 201 with it.
async fn save_schedule<T: Serialize>(
    s: &crate::AppState,
    who: &Principal,
    service: &str,
    commune: Option<String>,
    name: &str,
    body: &T,
) -> ApiResult<Response> {
    let mut sc = Schedule {
        id: 0,
        service: service.into(),
        commune,
        name: name.to_owned(),
        body: serde_json::to_value(body)
            .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?,
        active: true,
        created_by: who.actor.clone(),
        created_at: s.clock.now(),
    };
    sc.id = schedules_of(s).add(&sc).await?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(sc)).into_response())
}

fn schedule_domain(service: &str) -> Domain {
    if service == "lighting" { Domain::Lighting } else { Domain::GreenSpaces }
}

/// A lighting scenario to apply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLightingSchedule {
    /// Its name (`Abaissement nocturne, Cours Mirabeau`).
    name: String,
    /// `dim`, `off` or `presence`.
    kind: String,
    /// Window start, local `HH:MM` on a quarter-hour.
    start: String,
    /// Window end.
    end: String,
    /// `dim`: output kept (%); `presence`: output with nobody there (%, default 20).
    level: Option<f64>,
    /// `presence`: share of the window with someone there (%, default 10), for the estimate.
    presence: Option<f64>,
    /// The place whose streets it drives.
    place: String,
    /// Streets of that place (default: all of them).
    streets: Option<Vec<String>>,
    /// MQTT topic, `{device}` replaced (default `agora/commands/{device}`).
    topic: Option<String>,
}

/// A schedule with what it did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleView {
    #[serde(flatten)]
    schedule: Schedule,
    /// A lighting schedule's savings measured since it was applied (from the day after), against
    /// its estimate; `null` before a whole day.
    #[serde(skip_serializing_if = "Option::is_none")]
    measured: Option<schedules::Measured>,
    /// The last commands sent, newest first, with what came of them.
    commands: Vec<CommandView>,
}

/// A command sent, and, for a valve opened, what the soil did in the six hours after.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommandView {
    #[serde(flatten)]
    command: agora_store::schedules::Command,
    /// Irrigation: the largest rise of the zone's soil moisture within 6 h (points); `null`
    /// without readings.
    #[serde(skip_serializing_if = "Option::is_none")]
    soil_rise: Option<f64>,
}

/// Street lighting: apply a dimming scenario as a schedule
///
/// Every night at the window's start the place's chosen streets' lamps are sent the scenario's
/// command on MQTT (`{"command": "dim", "level": 50}`, `{"command": "off"}` or
/// `{"command": "presence", "level": 20}`), and at its end `{"command": "dim", "level": 100}`;
/// each command is logged with the publisher's answer. The savings are estimated on the last 28
/// days' profile when it is applied, and measured each day after (`GET`).
#[utoipa::path(post, path = "/api/v1/lighting/schedules", tag = "services", security(("bearer" = [])),
    request_body = NewLightingSchedule,
    responses(
        (status = 201, description = "The schedule, with its estimate", body = Schedule),
        (status = 404, response = crate::doc::NotFound),
        crate::doc::Writes,
    ))]
pub(crate) async fn add_lighting_schedule(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(b): Json<NewLightingSchedule>,
) -> ApiResult<Response> {
    let name = schedule_name(&b.name)?;
    let site = s
        .catalog
        .sites()
        .into_iter()
        .find(|x| x.id.as_str() == b.place)
        .ok_or_else(|| ApiError::NotFound(format!("unknown place {:?}", b.place)))?;
    who.check(Action::Command, Some(&site.commune), Some(Domain::Lighting))?;
    let topic = b.topic.clone().unwrap_or_else(|| schedules::DEFAULT_TOPIC.into());
    schedules::check_topic(&topic)?;
    let lamps = lamps_in(&s, Some(&b.place), None)?;
    let mut known: Vec<(String, String)> =
        lamps.iter().map(|l| (l.site.clone(), l.street.clone())).collect();
    known.sort();
    known.dedup();
    let streets: Vec<(String, String)> = match &b.streets {
        None => known.clone(),
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                let k = (b.place.clone(), n.clone());
                if !known.contains(&k) {
                    return Err(ApiError::BadRequest(format!(
                        "unknown street {n:?} in {}",
                        b.place
                    )));
                }
                v.push(k);
            }
            v
        }
    };
    if streets.is_empty() {
        return Err(ApiError::BadRequest(format!("no lamp in {}", b.place)));
    }
    let mut plan = LightingPlan {
        kind: b.kind,
        start: b.start,
        end: b.end,
        level: b.level,
        presence: b.presence,
        streets,
        topic,
        estimate: schedules::Estimate {
            kwh_per_year: 0.0,
            eur_per_year: 0.0,
            kg_co2e_per_year: 0.0,
            window_kwh_per_day: 0.0,
            baseline_from: NaiveDate::MIN,
            baseline_to: NaiveDate::MIN,
        },
    };
    let scenario = plan.scenario()?;
    let (_, today) = paris_today(&s);
    let (from, to) = (today - Days::new(28), today - Days::new(1));
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let days = s.lighting.days(from, to, now).await?;
    let profile = lighting::profile(&days, &plan.streets);
    let sv = agora_indicators::lighting::savings(&profile, &scenario, &s.lighting.config().tariff);
    plan.estimate = schedules::Estimate {
        kwh_per_year: sv.per_year[0],
        eur_per_year: sv.per_year[1],
        kg_co2e_per_year: sv.per_year[2],
        window_kwh_per_day: if profile.days > 0.0 {
            schedules::window_wh(&profile, &scenario) / 1000.0 / profile.days
        } else {
            0.0
        },
        baseline_from: from,
        baseline_to: to,
    };
    save_schedule(&s, &who, "lighting", Some(site.commune.to_string()), name, &plan).await
}

/// An irrigation plan to apply to a zone's valves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIrrigationSchedule {
    /// Its name.
    name: String,
    /// The zone, as `/api/v1/irrigation` names it.
    zone: String,
    /// Its place (when zones of several places share a name).
    place: Option<String>,
    /// `advice` (water the nights the advice says so) or `fixed`.
    mode: String,
    /// `fixed`: every this many days (1 to 31).
    every_days: Option<u32>,
    /// Minutes a watering lasts (default: the zone's plan).
    minutes: Option<f64>,
    /// The valves commanded (devices the caller may command).
    valves: Vec<String>,
    /// MQTT topic, `{device}` replaced (default `agora/commands/{device}`).
    topic: Option<String>,
}

/// Green spaces: drive a zone's valves
///
/// At the nightly decision hour, the zone's valves are sent `{"command": "open", "minutes": 30}`
/// when the advice says the zone needs water (`advice`), or every so many days (`fixed`); each
/// command is logged, and the list shows what the soil did in the six hours after.
#[utoipa::path(post, path = "/api/v1/irrigation/schedules", tag = "services", security(("bearer" = [])),
    request_body = NewIrrigationSchedule,
    responses(
        (status = 201, description = "The schedule", body = Schedule),
        (status = 404, response = crate::doc::NotFound),
        crate::doc::Writes,
    ))]
pub(crate) async fn add_irrigation_schedule(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(b): Json<NewIrrigationSchedule>,
) -> ApiResult<Response> {
    let name = schedule_name(&b.name)?;
    let mut commune = None;
    for v in &b.valves {
        let d = s
            .catalog
            .device(v)
            .ok_or_else(|| ApiError::NotFound(format!("unknown valve {v:?}")))?;
        who.check(Action::Command, d.commune.as_ref(), Some(Domain::GreenSpaces))?;
        commune = commune.or(d.commune.clone());
    }
    let topic = b.topic.clone().unwrap_or_else(|| schedules::DEFAULT_TOPIC.into());
    schedules::check_topic(&topic)?;
    let (tz, _) = paris_today(&s);
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let cfg = &s.config.services.irrigation;
    let zones = irrigation::analyse(s.catalog.as_ref(), s.store.as_ref(), cfg, tz, now, 1).await?;
    let zone = zones
        .zones
        .iter()
        .find(|z| z.zone == b.zone && (b.place.is_none() || z.place == b.place))
        .ok_or_else(|| ApiError::BadRequest(format!("unknown zone {:?}", b.zone)))?;
    let plan = IrrigationSchedule {
        zone: b.zone.clone(),
        place: zone.place.clone(),
        mode: b.mode,
        every_days: b.every_days,
        minutes: b.minutes.unwrap_or(zone.volume_m3 / cfg.default_plan.flow_m3_h * 60.0),
        valves: b.valves,
        topic,
    };
    plan.check()?;
    save_schedule(&s, &who, "irrigation", commune.map(|c| c.to_string()), name, &plan).await
}

async fn list_schedules(
    s: &crate::AppState,
    who: &Principal,
    service: &str,
) -> ApiResult<Vec<ScheduleView>> {
    let (tz, today) = paris_today(s);
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let mut out = Vec::new();
    for sc in schedules_of(s).list().await? {
        if sc.service != service || !sees_schedule(s, who, &sc) {
            continue;
        }
        let commands = schedules_of(s).commands(sc.id, 50).await?;
        let mut measured = None;
        let mut views = Vec::with_capacity(commands.len());
        if service == "lighting" {
            let plan: LightingPlan = serde_json::from_value(sc.body.clone())
                .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?;
            let first = sc.created_at.to_datetime().with_timezone(&tz).date_naive() + Days::new(1);
            let last = today - Days::new(1);
            if first <= last {
                let first = first.max(last - Days::new(365));
                let days = s.lighting.days(first, last, now).await?;
                measured = schedules::measured(&plan, &lighting::profile(&days, &plan.streets))?;
            }
            views =
                commands.into_iter().map(|c| CommandView { command: c, soil_rise: None }).collect();
        } else {
            let plan: IrrigationSchedule = serde_json::from_value(sc.body.clone())
                .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?;
            let sensors: Vec<_> = s
                .catalog
                .devices(&agora_store::catalog::DeviceFilter {
                    kind: agora_model::DeviceKind::parse(irrigation::SOIL_KIND).ok(),
                    ..Default::default()
                })
                .into_iter()
                .filter(|d| {
                    d.metadata.get("zone").and_then(Value::as_str) == Some(plan.zone.as_str())
                        && (plan.place.is_none()
                            || d.site.as_ref().map(|x| x.to_string()) == plan.place)
                })
                .collect();
            for c in commands {
                let t = c.at.as_nanos().div_euclid(1_000_000_000);
                let read = agora_query::services::readings(
                    s.catalog.as_ref(),
                    s.store.as_ref(),
                    &sensors,
                    "soil_moisture",
                    t - 6 * 3600,
                    t + 6 * 3600,
                )
                .await?;
                let rise = read
                    .iter()
                    .filter_map(|pts| {
                        // The last reading before the command: without one, no rise can be told.
                        let before = pts.iter().rev().find(|p| p.0 <= t)?.1;
                        let top =
                            pts.iter().filter(|p| p.0 > t).map(|p| p.1).fold(f64::NAN, f64::max);
                        top.is_finite().then_some(top - before)
                    })
                    .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
                views.push(CommandView { command: c, soil_rise: rise });
            }
        }
        out.push(ScheduleView { schedule: sc, measured, commands: views });
    }
    Ok(out)
}

/// Street lighting: the schedules applied, their commands and their measured savings
#[utoipa::path(get, path = "/api/v1/lighting/schedules", tag = "services", security(("bearer" = [])),
    responses((status = 200, description = "The schedules", body = [ScheduleView]), Reads))]
pub(crate) async fn lighting_schedules(Scoped(s): Scoped, Who(who): Who) -> ApiResult<Response> {
    Ok(json_response(&list_schedules(&s, &who, "lighting").await?))
}

/// Green spaces: the irrigation schedules, their commands and what the soil did after
#[utoipa::path(get, path = "/api/v1/irrigation/schedules", tag = "services", security(("bearer" = [])),
    responses((status = 200, description = "The schedules", body = [ScheduleView]), Reads))]
pub(crate) async fn irrigation_schedules(Scoped(s): Scoped, Who(who): Who) -> ApiResult<Response> {
    Ok(json_response(&list_schedules(&s, &who, "irrigation").await?))
}

/// Start or stop a schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleChange {
    /// Whether it runs.
    active: bool,
}

async fn existing(s: &crate::AppState, who: &Principal, id: i64) -> ApiResult<Schedule> {
    let sc = schedules_of(s)
        .list()
        .await?
        .into_iter()
        .find(|x| x.id == id && sees_schedule(s, who, x))
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {id}")))?;
    let commune = sc.commune.as_deref().and_then(|c| agora_model::InseeCode::parse(c).ok());
    who.check(Action::Command, commune.as_ref(), Some(schedule_domain(&sc.service)))?;
    Ok(sc)
}

/// Start or stop a schedule
#[utoipa::path(patch, path = "/api/v1/schedules/{id}", tag = "services", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The schedule")),
    request_body = ScheduleChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 404, response = crate::doc::NotFound),
        crate::doc::Writes,
    ))]
pub(crate) async fn change_schedule(
    Scoped(s): Scoped,
    Who(who): Who,
    crate::extract::Path(id): crate::extract::Path<i64>,
    Json(b): Json<ScheduleChange>,
) -> ApiResult<Response> {
    existing(&s, &who, id).await?;
    schedules_of(&s).set_active(id, b.active).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Remove a schedule and its log
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "services", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The schedule")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, response = BadRequest),
        (status = 404, response = crate::doc::NotFound),
        Reads,
    ))]
pub(crate) async fn delete_schedule(
    Scoped(s): Scoped,
    Who(who): Who,
    crate::extract::Path(id): crate::extract::Path<i64>,
) -> ApiResult<Response> {
    existing(&s, &who, id).await?;
    schedules_of(&s).delete(id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// Tomorrow's drying factor at each place with soil sensors and a temperature forecast: the
/// Hargreaves ratio of tomorrow's forecast lowest and highest temperatures to the last 24 hours'
/// measured ones (places without either are left out: their advice takes today's rate as is).
async fn drying_factors(
    s: &crate::AppState,
    now: i64,
) -> ApiResult<std::collections::BTreeMap<String, f64>> {
    let mut out = std::collections::BTreeMap::new();
    let all = s.catalog.devices(&agora_store::catalog::DeviceFilter::default());
    let mut places: Vec<agora_model::SiteId> = all
        .iter()
        .filter(|d| d.kind.as_str() == irrigation::SOIL_KIND)
        .filter_map(|d| d.site.clone())
        .collect();
    places.sort();
    places.dedup();
    for site in places {
        let here: Vec<agora_store::catalog::Device> =
            all.iter().filter(|d| d.site.as_ref() == Some(&site)).cloned().collect();
        let measuring: Vec<agora_store::catalog::Device> = here
            .iter()
            .filter(|d| s.catalog.lookup_series(&[(d.id.as_str(), "temperature")])[0].is_some())
            .cloned()
            .collect();
        if measuring.is_empty() {
            continue;
        }
        let read = agora_query::services::readings(
            s.catalog.as_ref(),
            s.store.as_ref(),
            &measuring,
            "temperature",
            now - 86_400,
            now,
        )
        .await?;
        let values: Vec<f64> = read.iter().flatten().map(|p| p.1).collect();
        if values.len() < 12 {
            continue;
        }
        let today = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let commune = here.iter().find_map(|d| d.commune.clone());
        let thresholds = s.config.indicators.canicule_for(commune.as_ref().map(|c| c.as_str()));
        let Ok(tomorrow) = s.forecasts.tomorrow(&here, thresholds).await else { continue };
        if let Some(h) = tomorrow.heat
            && let Some(f) =
                agora_indicators::irrigation::hargreaves_ratio(today, (h.t_min, h.t_max))
        {
            out.insert(site.to_string(), f);
        }
    }
    Ok(out)
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    lighting_overview,
    lighting_maintenance,
    sun,
    scenario,
    bins_overview,
    bins_round,
    irrigation_overview,
    add_lighting_schedule,
    lighting_schedules,
    add_irrigation_schedule,
    irrigation_schedules,
    change_schedule,
    delete_schedule
))]
pub(crate) struct Doc;
