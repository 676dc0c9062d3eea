//! Environmental indicators (`/api/v1/indicators/…`): the European Air Quality Index by hour,
//! the French ATMO index by day, and noise by day (Ld, Le, Ln, Lden, percentile levels, night
//! events) with a ranking of the noisiest places, of a device, a place or a commune, in JSON or
//! CSV. They are
//! public when the public map is on (they are what a citizen reads), else need a read token.

use std::time::Duration;

use agora_model::{DeviceId, InseeCode, SiteId, Timestamp};
use agora_query::TimeRange;
use agora_query::air::{Area, DayIndex, HourIndex};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, NotFound, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::policy::Scoped;
use crate::views::Audience;

/// Longest span of hourly indices in one request.
const MAX_HOURLY_DAYS: u64 = 31;
/// Longest span of daily indices in one request.
const MAX_DAILY_DAYS: u64 = 366;

/// Where, and in which form.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AreaParams {
    /// One device.
    device: Option<String>,
    /// A place: its devices together.
    site: Option<String>,
    /// A commune (INSEE code): its devices together.
    commune: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The area a request names — exactly one of a device, a place (`site`) or a commune — and its
/// name in answers; an unknown one is 404.
pub(crate) fn area_of(
    s: &AppState,
    device: Option<&str>,
    site: Option<&str>,
    commune: Option<&str>,
) -> ApiResult<(Area, String)> {
    let bad = |e: agora_model::Error| ApiError::BadRequest(e.to_string());
    let area = match (device, site, commune) {
        (Some(d), None, None) => Area::Device(DeviceId::parse(d).map_err(bad)?),
        (None, Some(p), None) => Area::Site(SiteId::parse(p).map_err(bad)?),
        (None, None, Some(c)) => Area::Commune(InseeCode::parse(c).map_err(bad)?),
        _ => {
            return Err(ApiError::BadRequest("name exactly one of device, site or commune".into()));
        }
    };
    area.devices(s.catalog.as_ref()).map_err(|e| ApiError::NotFound(e.to_string()))?;
    let name = match &area {
        Area::Device(d) => format!("device {d}"),
        Area::Site(p) => format!("site {p}"),
        Area::Commune(c) => format!("commune {c}"),
    };
    Ok((area, name))
}

impl AreaParams {
    fn area(&self, s: &AppState) -> ApiResult<(Area, String)> {
        area_of(s, self.device.as_deref(), self.site.as_deref(), self.commune.as_deref())
    }

    fn csv(&self) -> ApiResult<bool> {
        match self.format.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(f) => Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
        }
    }
}

/// Query of `/api/v1/indicators/eaqi`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HourlyParams {
    /// First instant included (RFC 3339, epoch, `now-24h`; default: 24 hours before `to`).
    from: Option<String>,
    /// First instant excluded (default: now); at most 31 days after `from`.
    to: Option<String>,
}

/// Hourly European Air Quality Index.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EaqiAnswer {
    /// The device, place or commune.
    area: String,
    /// What the index is.
    definition: &'static str,
    /// First instant included.
    from: Timestamp,
    /// First instant excluded.
    to: Timestamp,
    /// One per hour with at least one pollutant measured, oldest first; an hour without any is
    /// absent (no index, never "good").
    hours: Vec<HourIndex>,
}

/// The European Air Quality Index, hourly
///
/// Each pollutant's hourly mean (µg/m³) banded as the EEA's 2024 index does (good, fair,
/// moderate, poor, very poor, extremely poor), the worst band and the pollutant(s) responsible.
/// A place or commune pools its devices' points.
#[utoipa::path(get, path = "/api/v1/indicators/eaqi", tag = "indicators", security((), ("bearer" = [])),
    params(AreaParams, HourlyParams),
    responses(
        (status = 200, description = "The index by hour", content(
            (EaqiAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn eaqi(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(q): Query<HourlyParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let range =
        crate::query::range(&s, q.from.as_deref(), q.to.as_deref(), Duration::from_secs(86_400))?;
    if range.span() > Duration::from_secs(MAX_HOURLY_DAYS * 86_400) {
        return Err(ApiError::BadRequest(format!(
            "hourly indices span at most {MAX_HOURLY_DAYS} days; ask for daily ones (ATMO) beyond"
        )));
    }
    let hours =
        agora_query::air::eaqi_hourly(s.catalog.as_ref(), s.store.as_ref(), &a, range).await?;
    if csv {
        let mut out = String::from("hour,index,level,responsible,pm2_5,pm10,no2,o3,so2\n");
        for h in &hours {
            let value = |p| {
                h.index
                    .pollutants
                    .iter()
                    .find(|x| x.pollutant == p)
                    .map_or(String::new(), |x| format!("{:.1}", x.value))
            };
            use agora_indicators::air::Pollutant as P;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                h.hour.to_rfc3339(),
                h.index.class.map_or(String::new(), |c| snake(&c)),
                h.index.class.map_or(String::new(), |c| c.level().to_string()),
                names(&h.index.responsible),
                value(P::Pm25),
                value(P::Pm10),
                value(P::No2),
                value(P::O3),
                value(P::So2),
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(EaqiAnswer {
        area: name,
        definition: "European Air Quality Index (EEA, 2024 revision), hourly means in µg/m³",
        from: range.from,
        to: range.to,
        hours,
    })
    .into_response())
}

/// Query of `/api/v1/indicators/atmo`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DailyParams {
    /// First day (`YYYY-MM-DD`, Europe/Paris; default: 6 days before `to`).
    #[param(format = Date)]
    from: Option<String>,
    /// Last day, included (default: today); at most 366 days from `from`.
    #[param(format = Date)]
    to: Option<String>,
}

/// Daily ATMO index.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AtmoAnswer {
    /// The device, place or commune.
    area: String,
    /// What the index is.
    definition: &'static str,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    /// Last day.
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    /// One per day with at least one pollutant measured for 75 % of its hours, oldest first.
    days: Vec<DayIndex>,
}

/// The French ATMO index, daily
///
/// As the arrêté of 10 July 2020 defines it: SO2, NO2 and O3 from the day's highest hourly mean,
/// PM10 and PM2.5 from the day's mean (days in Europe/Paris), each classed bon, moyen, dégradé,
/// mauvais, très mauvais or extrêmement mauvais; the index is the worst, with its colour and the
/// pollutant(s) responsible. A pollutant measured less than 75 % of a day's hours does not count
/// that day, and the answer says so.
#[utoipa::path(get, path = "/api/v1/indicators/atmo", tag = "indicators", security((), ("bearer" = [])),
    params(AreaParams, DailyParams),
    responses(
        (status = 200, description = "The index by day", content(
            (AtmoAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn atmo(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(q): Query<DailyParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let tz = chrono_tz::Europe::Paris;
    let (from, to) = days(&s, &q, tz)?;
    let range = day_range(from, to, 0, tz)?;
    let days =
        agora_query::air::atmo_daily(s.catalog.as_ref(), s.store.as_ref(), &a, range, tz).await?;
    if csv {
        let mut out = String::from("day,indice,classe,couleur,responsable,so2,no2,o3,pm10,pm2_5\n");
        for d in &days {
            let value = |p| {
                d.index
                    .pollutants
                    .iter()
                    .find(|x| x.pollutant == p)
                    .map_or(String::new(), |x| format!("{:.1}", x.value))
            };
            use agora_indicators::air::Pollutant as P;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                d.day,
                d.index.class.map_or(String::new(), |c| c.level().to_string()),
                d.index.class.map_or("", |c| c.label_fr()),
                d.index.class.map_or("", |c| c.colour()),
                names(&d.index.responsible),
                value(P::So2),
                value(P::No2),
                value(P::O3),
                value(P::Pm10),
                value(P::Pm25),
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(AtmoAnswer {
        area: name,
        definition: "Indice ATMO (arrêté du 10 juillet 2020), jours en Europe/Paris",
        from,
        to,
        days,
    })
    .into_response())
}

/// Days asked for (`from`, `to` included), checked against the longest span.
fn days(s: &AppState, q: &DailyParams, tz: chrono_tz::Tz) -> ApiResult<(NaiveDate, NaiveDate)> {
    let date = |v: &str, what: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
            ApiError::BadRequest(format!("{what} must be a day, YYYY-MM-DD, not {v:?}"))
        })
    };
    let today = s.clock.now().to_datetime().with_timezone(&tz).date_naive();
    let to = q.to.as_deref().map(|v| date(v, "to")).transpose()?.unwrap_or(today);
    let from = match q.from.as_deref() {
        Some(v) => date(v, "from")?,
        None => to.checked_sub_days(Days::new(6)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::BadRequest(format!("from ({from}) is after to ({to})")));
    }
    if (to - from).num_days() as u64 >= MAX_DAILY_DAYS {
        return Err(ApiError::BadRequest(format!(
            "daily indicators span at most {MAX_DAILY_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// The instant a local day reaches `hour` (the first such instant when the clocks go back; the
/// next hour when they skip it).
fn at_local(d: NaiveDate, hour: u8, tz: chrono_tz::Tz) -> ApiResult<Timestamp> {
    use chrono::TimeZone;
    let out = || ApiError::BadRequest(format!("day {d} is out of range"));
    let local = d.and_hms_opt(u32::from(hour), 0, 0).ok_or_else(out)?;
    let dt = match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
        chrono::LocalResult::None => tz
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .ok_or_else(out)?,
    };
    Timestamp::from_datetime(&dt).ok_or_else(out)
}

/// Days `from` to `to` (included) as a range, each day starting at local `hour`.
fn day_range(from: NaiveDate, to: NaiveDate, hour: u8, tz: chrono_tz::Tz) -> ApiResult<TimeRange> {
    let end = to
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ApiError::BadRequest("to is out of range".into()))?;
    Ok(TimeRange::new(at_local(from, hour, tz)?, at_local(end, hour, tz)?)?)
}

/// Query of `/api/v1/indicators/noise`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NoiseParams {
    /// Starts of the day, evening and night, local hours (default `6,18,22`, France; the EU
    /// directive's default is `7,19,23`).
    periods: Option<String>,
    /// LAmax above which a peak counts as a night event, dB(A) (default 80).
    event_db: Option<f64>,
}

impl NoiseParams {
    fn options(&self) -> ApiResult<agora_query::noise::NoiseOptions> {
        let mut o = agora_query::noise::NoiseOptions::default();
        if let Some(p) = &self.periods {
            let hours: Vec<u8> =
                p.split(',').map(|h| h.trim().parse::<u8>()).collect::<Result<_, _>>().map_err(
                    |_| ApiError::BadRequest(format!("periods {p:?}: three hours, e.g. 6,18,22")),
                )?;
            let [d, e, n] = hours[..] else {
                return Err(ApiError::BadRequest(format!(
                    "periods {p:?}: three hours, e.g. 6,18,22"
                )));
            };
            o.periods = agora_indicators::noise::DenPeriods::new(d, e, n)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        }
        if let Some(db) = self.event_db {
            if !(30.0..=140.0).contains(&db) {
                return Err(ApiError::BadRequest(format!("event_db is 30 to 140 dB, not {db}")));
            }
            o.event_db = db;
        }
        Ok(o)
    }
}

/// Daily noise indicators.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NoiseAnswer {
    /// The device, place or commune.
    area: String,
    /// How the days are cut.
    #[schema(value_type = Object)]
    periods: agora_indicators::noise::DenPeriods,
    /// One per day with a level, oldest first.
    days: Vec<agora_query::noise::NoiseDay>,
}

/// Noise by day: Ld, Le, Ln, Lden, L10/L50/L90, night events
///
/// For each day (24 hours from the start of its day period, so that its night is whole): the
/// energy means of the day, evening and night hours and Lden (EU directive 2002/49/EC), the
/// levels exceeded 10, 50 and 90 % of the time, the night's LAmax peaks above `event_db`, and
/// whether Lden and Ln exceed the WHO 2018 road-traffic guidelines (53 and 45 dB).
#[utoipa::path(get, path = "/api/v1/indicators/noise", tag = "indicators", security((), ("bearer" = [])),
    params(AreaParams, DailyParams, NoiseParams),
    responses(
        (status = 200, description = "Noise indicators by day", content(
            (NoiseAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn noise(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(q): Query<DailyParams>,
    Query(n): Query<NoiseParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let opts = n.options()?;
    let (from, to) = days(&s, &q, opts.tz)?;
    let range = day_range(from, to, opts.periods.day, opts.tz)?;
    let days =
        agora_query::noise::noise_days(s.catalog.as_ref(), s.store.as_ref(), &a, range, &opts)
            .await?;
    if csv {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        let mut out = String::from("day,ld,le,ln,lden,l10,l50,l90,night_events,hours_measured\n");
        for d in &days {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                d.day,
                f(d.levels.ld),
                f(d.levels.le),
                f(d.levels.ln),
                f(d.levels.lden),
                f(d.l10),
                f(d.l50),
                f(d.l90),
                d.night_events.map_or(String::new(), |e| e.to_string()),
                d.levels.hours_measured,
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(NoiseAnswer { area: name, periods: opts.periods, days }).into_response())
}

/// Query of `/api/v1/indicators/noise/ranking`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RankingParams {
    /// `lden` (default) or `lnight`.
    by: Option<String>,
    /// Only places and devices of this commune (INSEE code).
    commune: Option<String>,
    /// How many of each (default 20, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// The noisiest places and devices.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RankingAnswer {
    /// What ranks them.
    #[schema(value_type = String)]
    by: agora_query::noise::RankBy,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    /// Last day.
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    /// Places, loudest first.
    places: Vec<agora_query::noise::Ranked>,
    /// Devices, loudest first.
    devices: Vec<agora_query::noise::Ranked>,
}

/// The noisiest places and devices over a span
///
/// Ranked by Lden or Ln over the days asked for (each period's hours pooled); those where a period
/// was never measured are left out.
#[utoipa::path(get, path = "/api/v1/indicators/noise/ranking", tag = "indicators", security((), ("bearer" = [])),
    params(RankingParams, DailyParams, NoiseParams),
    responses(
        (status = 200, description = "Places and devices, loudest first", body = RankingAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn noise_ranking(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(r): Query<RankingParams>,
    Query(q): Query<DailyParams>,
    Query(n): Query<NoiseParams>,
) -> ApiResult<Json<RankingAnswer>> {
    Audience::of(&s, &h)?;
    let by = match r.by.as_deref() {
        None | Some("lden") => agora_query::noise::RankBy::Lden,
        Some("lnight") => agora_query::noise::RankBy::Lnight,
        Some(b) => return Err(ApiError::BadRequest(format!("by {b:?}: use lden or lnight"))),
    };
    let limit = r.limit.unwrap_or(20);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is 1 to 500, not {limit}")));
    }
    let mut filter = agora_store::catalog::DeviceFilter::default();
    if let Some(c) = &r.commune {
        let c = InseeCode::parse(c).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if !s.catalog.communes().iter().any(|x| x.insee == c) {
            return Err(ApiError::NotFound(format!("unknown commune {:?}", c.as_str())));
        }
        filter.commune = Some(c);
    }
    let opts = n.options()?;
    let (from, to) = days(&s, &q, opts.tz)?;
    let range = day_range(from, to, opts.periods.day, opts.tz)?;
    let devices = s.catalog.devices(&filter);
    let (mut places, mut devices) = agora_query::noise::ranking(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &devices,
        range,
        by,
        &opts,
    )
    .await?;
    places.truncate(limit);
    devices.truncate(limit);
    Ok(Json(RankingAnswer { by, from, to, places, devices }))
}

/// Query of `/api/v1/indicators/heat`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HeatParams {
    /// Heatwave threshold of the 3-day mean of daily minima, °C (default: the commune's, set in
    /// `agora.toml`; 24 in Bouches-du-Rhône).
    canicule_min: Option<f64>,
    /// Heatwave threshold of the 3-day mean of daily maxima, °C (default: the commune's; 35 in
    /// Bouches-du-Rhône).
    canicule_max: Option<f64>,
}

/// Daily heat indicators.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeatAnswer {
    /// The device, place or commune.
    area: String,
    /// The heatwave thresholds used.
    #[schema(value_type = Object)]
    thresholds: agora_indicators::heat::CaniculeThresholds,
    /// One per day asked for, measured or not (a day without enough hours says so).
    days: Vec<agora_query::heat::HeatIndicators>,
}

/// Heat by day: extremes, heat index, humidex, canicule, tropical nights
///
/// For each local day (Europe/Paris): the lowest and highest hourly mean temperature (on at least
/// 75 % of the hours), the highest hourly heat index (NWS) and humidex (Environment Canada), the
/// 3-day running means of minima and maxima against the heatwave thresholds (canicule days:
/// both reached; Bouches-du-Rhône 24 / 35 °C by default), and tropical nights (minimum ≥ 20 °C).
#[utoipa::path(get, path = "/api/v1/indicators/heat", tag = "indicators", security((), ("bearer" = [])),
    params(AreaParams, DailyParams, HeatParams),
    responses(
        (status = 200, description = "Heat indicators by day", content(
            (HeatAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn heat(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(q): Query<DailyParams>,
    Query(hp): Query<HeatParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let tz = chrono_tz::Europe::Paris;
    let (from, to) = days(&s, &q, tz)?;
    // The commune's thresholds, unless the request names its own.
    let mut th = s.config.indicators.canicule_for(a.commune(s.catalog.as_ref()).as_deref());
    for (v, slot, what) in [
        (hp.canicule_min, &mut th.min, "canicule_min"),
        (hp.canicule_max, &mut th.max, "canicule_max"),
    ] {
        if let Some(v) = v {
            if !(0.0..=60.0).contains(&v) {
                return Err(ApiError::BadRequest(format!("{what} is 0 to 60 °C, not {v}")));
            }
            *slot = v;
        }
    }
    let days =
        agora_query::heat::heat_daily(s.catalog.as_ref(), s.store.as_ref(), &a, from, to, tz, &th)
            .await?;
    if csv {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        let b = |v: Option<bool>| v.map_or(String::new(), |v| v.to_string());
        let mut out = String::from(
            "day,t_min,t_max,hours,heat_index_max,humidex_max,ibm_min,ibm_max,canicule,tropical_night\n",
        );
        for d in &days {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                d.day,
                f(d.t_min),
                f(d.t_max),
                d.hours,
                f(d.heat_index_max),
                f(d.humidex_max),
                f(d.status.ibm_min),
                f(d.status.ibm_max),
                b(d.status.canicule),
                b(d.status.tropical_night),
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(HeatAnswer { area: name, thresholds: th, days }).into_response())
}

/// Query of `/api/v1/indicators/air-statistics`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct YearParams {
    /// The calendar year (default: this year, to date).
    #[param(minimum = 1970, maximum = 2200)]
    year: Option<i32>,
}

/// A year's regulatory and WHO statistics.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatisticsAnswer {
    /// The device, place or commune.
    area: String,
    /// The year.
    year: i32,
    /// First instant included (1 January, Europe/Paris).
    from: Timestamp,
    /// First instant excluded (the next 1 January, or now for the year to date).
    to: Timestamp,
    /// Each sensor and pollutant measured in the year.
    sensors: Vec<agora_query::regulatory::SensorYear>,
}

/// Air quality of a year against the EU limits and the WHO guidelines
///
/// For each sensor of a device, place or commune and each pollutant it measures: the annual mean
/// against the EU limit value and the WHO 2021 guideline, days whose daily mean exceeds a
/// threshold (PM10 above 50 µg/m³: 35 days allowed), hours above hourly thresholds (NO2 200: 18
/// hours; SO2 350: 24 hours; O3 information 180 and alert 240), days whose highest 8-hour ozone
/// mean exceeds 120 (EU target: 25 days) or 100 (WHO), and alert episodes; with the share of the
/// year each figure rests on (less than 75 % is flagged).
#[utoipa::path(get, path = "/api/v1/indicators/air-statistics", tag = "indicators", security((), ("bearer" = [])),
    params(AreaParams, YearParams),
    responses(
        (status = 200, description = "The year's figures", content(
            (StatisticsAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn air_statistics(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(y): Query<YearParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let tz = chrono_tz::Europe::Paris;
    let now = s.clock.now();
    let this_year = chrono::Datelike::year(&now.to_datetime().with_timezone(&tz));
    let year = y.year.unwrap_or(this_year);
    if !(1970..=this_year).contains(&year) {
        return Err(ApiError::BadRequest(format!("year is 1970 to {this_year}, not {year}")));
    }
    let jan1 = |y: i32| {
        NaiveDate::from_ymd_opt(y, 1, 1)
            .ok_or_else(|| ApiError::BadRequest(format!("year {y} is out of range")))
            .and_then(|d| at_local(d, 0, tz))
    };
    let from = jan1(year)?;
    let to = jan1(year + 1)?.min(now);
    let range = TimeRange::new(from, to)?;
    let sensors =
        agora_query::regulatory::year(s.catalog.as_ref(), s.store.as_ref(), &a, range, tz).await?;
    if csv {
        let mut out = String::from(
            "device,pollutant,statistic,threshold,value,allowed,exceeded,source,hours,of,coverage_ok\n",
        );
        for y in &sensors {
            for st in &y.statistics {
                out.push_str(&format!(
                    "{},{},{},{},{:.2},{},{},\"{}\",{},{},{}\n",
                    y.device,
                    y.pollutant.property(),
                    st.name,
                    st.threshold,
                    st.value,
                    st.allowed.map_or(String::new(), |a| a.to_string()),
                    st.exceeded,
                    st.source,
                    y.hours,
                    y.of,
                    y.coverage_ok,
                ));
            }
        }
        return Ok(csv_response(out));
    }
    Ok(Json(StatisticsAnswer { area: name, year, from, to, sensors }).into_response())
}

/// Query of `/api/v1/indicators/heat-island`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IslandParams {
    /// The commune (INSEE code) whose places are compared.
    #[param(required = true)]
    commune: Option<String>,
    /// `coolest` (default: the place with the lowest mean temperature) or a device's id (a
    /// reference station).
    reference: Option<String>,
    /// Start (default: 24 hours before `to`).
    from: Option<String>,
    /// End (default: now); at most 31 days after `from`.
    to: Option<String>,
}

/// Heat-island intensity by place.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IslandAnswer {
    /// What the places are compared with.
    reference: String,
    /// First instant included.
    from: Timestamp,
    /// First instant excluded.
    to: Timestamp,
    /// The places, most intense at night first.
    places: Vec<agora_query::heat::PlaceIntensity>,
}

/// Heat-island intensity of each place of a commune
///
/// Each place's hourly mean temperature minus a reference's (a designated device, or the coolest
/// place), hour by hour: the mean, the mean over the night (22–6 h, when islands show most) and
/// the largest difference; hours missing on either side are left out.
#[utoipa::path(get, path = "/api/v1/indicators/heat-island", tag = "indicators", security((), ("bearer" = [])),
    params(IslandParams),
    responses(
        (status = 200, description = "Places, most intense first", body = IslandAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn heat_island(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(q): Query<IslandParams>,
) -> ApiResult<Json<IslandAnswer>> {
    Audience::of(&s, &h)?;
    let area = AreaParams { device: None, site: None, commune: q.commune.clone(), format: None };
    let (a, _) = area.area(&s)?;
    let reference = match q.reference.as_deref() {
        None | Some("coolest") => agora_query::heat::Reference::Coolest,
        Some(d) => {
            let id = DeviceId::parse(d).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if s.catalog.device(id.as_str()).is_none() {
                return Err(ApiError::NotFound(format!("no device {id}")));
            }
            agora_query::heat::Reference::Device(id)
        }
    };
    let range =
        crate::query::range(&s, q.from.as_deref(), q.to.as_deref(), Duration::from_secs(86_400))?;
    if range.span() > Duration::from_secs(MAX_HOURLY_DAYS * 86_400) {
        return Err(ApiError::BadRequest(format!(
            "intensities span at most {MAX_HOURLY_DAYS} days"
        )));
    }
    let (reference, places) = agora_query::heat::heat_island(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &a,
        &reference,
        range,
        chrono_tz::Europe::Paris,
    )
    .await?;
    Ok(Json(IslandAnswer { reference, from: range.from, to: range.to, places }))
}

/// Most cells of one map.
const MAX_CELLS: usize = 40_000;

/// Query of `/api/v1/indicators/heat-map`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HeatMapParams {
    /// A place: its sensors.
    site: Option<String>,
    /// A commune (INSEE code): its sensors.
    commune: Option<String>,
    /// Start of the period averaged (default: an hour before `to`).
    from: Option<String>,
    /// End of the period (default: now); at most 31 days after `from`.
    to: Option<String>,
    /// Or a night, by the date of its evening: 22 h that day to 6 h the next (Europe/Paris), when
    /// heat islands show most.
    #[param(value_type = Option<String>, format = Date)]
    night: Option<NaiveDate>,
    /// About how many cells (default 2,500; at most 40,000).
    #[param(minimum = 1, maximum = 40000)]
    cells: Option<usize>,
    /// `best` (default: the lowest leave-one-out error), `idw` or `kriging`.
    method: Option<String>,
    /// `geojson` (default) or `png`: an overlay, one pixel per cell, north up; its bounds, legend,
    /// method and cross-validation in the `X-Agora-Map` header (JSON).
    format: Option<String>,
}

/// The night that starts on the evening of `evening`: 22 h to 6 h the next morning, Paris time.
fn night(evening: NaiveDate) -> ApiResult<TimeRange> {
    let at = |d: Option<NaiveDate>, h: u32| {
        d.and_then(|d| d.and_hms_opt(h, 0, 0))
            .and_then(|l| chrono_tz::Europe::Paris.from_local_datetime(&l).earliest())
            .and_then(|t| Timestamp::from_datetime(&t))
            .ok_or_else(|| ApiError::BadRequest(format!("night {evening} is out of range")))
    };
    Ok(TimeRange::new(at(Some(evening), 22)?, at(evening.succ_opt(), 6)?)?)
}

/// The colours of a temperature map, coolest first (ColorBrewer RdYlBu, 11 classes, reversed:
/// legible by most colour-blind readers, as the heat maps of Météo-France and the EEA are).
const HEAT_COLOURS: [[u8; 3]; 11] = [
    [0x31, 0x36, 0x95],
    [0x45, 0x75, 0xb4],
    [0x74, 0xad, 0xd1],
    [0xab, 0xd9, 0xe9],
    [0xe0, 0xf3, 0xf8],
    [0xff, 0xff, 0xbf],
    [0xfe, 0xe0, 0x90],
    [0xfd, 0xae, 0x61],
    [0xf4, 0x6d, 0x43],
    [0xd7, 0x30, 0x27],
    [0xa5, 0x00, 0x26],
];

/// The colour of `v` on a scale from `lo` to `hi` (interpolated between the palette's colours).
fn heat_colour(v: f64, lo: f64, hi: f64) -> [u8; 3] {
    let f = if hi > lo { ((v - lo) / (hi - lo)).clamp(0.0, 1.0) } else { 0.5 };
    let x = f * (HEAT_COLOURS.len() - 1) as f64;
    let i = (x.floor() as usize).min(HEAT_COLOURS.len() - 2);
    let w = x - i as f64;
    let (a, b) = (HEAT_COLOURS[i], HEAT_COLOURS[i + 1]);
    [0, 1, 2].map(|k| (f64::from(a[k]) + w * (f64::from(b[k]) - f64::from(a[k]))).round() as u8)
}

/// The legend of a scale: six values from `lo` to `hi` with their colours.
fn heat_legend(lo: f64, hi: f64) -> serde_json::Value {
    let stops: Vec<serde_json::Value> = (0..6)
        .map(|k| {
            let v = lo + (hi - lo) * f64::from(k) / 5.0;
            let [r, g, b] = heat_colour(v, lo, hi);
            serde_json::json!({"value": (v * 10.0).round() / 10.0, "colour": format!("#{r:02x}{g:02x}{b:02x}")})
        })
        .collect();
    serde_json::json!({"min": lo, "max": hi, "unit": "Cel", "stops": stops})
}

/// Project longitude and latitude to metres around a centre (equirectangular: exact enough over
/// a commune, a few kilometres).
struct Projection {
    lon0: f64,
    lat0: f64,
    k: f64,
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl Projection {
    fn new(points: &[(f64, f64)]) -> Self {
        let n = points.len() as f64;
        let lon0 = points.iter().map(|p| p.0).sum::<f64>() / n;
        let lat0 = points.iter().map(|p| p.1).sum::<f64>() / n;
        Self { lon0, lat0, k: EARTH_RADIUS_M * std::f64::consts::PI / 180.0 }
    }
    fn to_xy(&self, lon: f64, lat: f64) -> (f64, f64) {
        ((lon - self.lon0) * self.k * self.lat0.to_radians().cos(), (lat - self.lat0) * self.k)
    }
    fn to_lonlat(&self, x: f64, y: f64) -> (f64, f64) {
        (self.lon0 + x / (self.k * self.lat0.to_radians().cos()), self.lat0 + y / self.k)
    }
}

/// A heat-island map: interpolated temperature
///
/// The mean temperature of each sensor of a place or commune over the period, interpolated over
/// a grid covering them by inverse distance weighting and by ordinary kriging (spherical,
/// exponential and gaussian variograms fitted to the data), each judged by its leave-one-out
/// cross-validation error (RMSE and bias, reported); the best is used unless `method` says
/// otherwise. GeoJSON: one polygon per cell with its value (°C) and, for kriging, its standard
/// error; the sensors, the method, the cross-validation and the colour legend are in the
/// collection's properties. `format=png`: the same grid as an image to lay over a map, with its
/// bounds and legend in the `X-Agora-Map` header.
#[utoipa::path(get, path = "/api/v1/indicators/heat-map", tag = "indicators", security((), ("bearer" = [])),
    params(HeatMapParams),
    responses(
        (status = 200, description = "The map", content(
            (Object = "application/geo+json"),
            (Vec<u8> = "image/png"),
        )),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn heat_map(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(q): Query<HeatMapParams>,
) -> ApiResult<Response> {
    use agora_indicators::interp::{Grid, Method, Sample, map};
    Audience::of(&s, &h)?;
    let area =
        AreaParams { device: None, site: q.site.clone(), commune: q.commune.clone(), format: None };
    let (a, name) = area.area(&s)?;
    let method = match q.method.as_deref() {
        None | Some("best") => Method::Best,
        Some("idw") => Method::Idw,
        Some("kriging") => Method::Kriging,
        Some(m) => {
            return Err(ApiError::BadRequest(format!("method {m:?}: use best, idw or kriging")));
        }
    };
    let png = match q.format.as_deref() {
        None | Some("geojson") => false,
        Some("png") => true,
        Some(f) => return Err(ApiError::BadRequest(format!("format {f:?}: use geojson or png"))),
    };
    let cells = q.cells.unwrap_or(2_500);
    if !(1..=MAX_CELLS).contains(&cells) {
        return Err(ApiError::BadRequest(format!("cells is 1 to {MAX_CELLS}, not {cells}")));
    }
    let range = match q.night {
        Some(_) if q.from.is_some() || q.to.is_some() => {
            return Err(ApiError::BadRequest("give a night or from and to, not both".into()));
        }
        Some(evening) => night(evening)?,
        None => {
            crate::query::range(&s, q.from.as_deref(), q.to.as_deref(), Duration::from_secs(3600))?
        }
    };
    if range.span() > Duration::from_secs(MAX_HOURLY_DAYS * 86_400) {
        return Err(ApiError::BadRequest(format!("a map averages at most {MAX_HOURLY_DAYS} days")));
    }
    let means = agora_query::heat::device_means(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &a,
        "temperature",
        range,
    )
    .await?;
    if means.len() < 4 {
        return Err(ApiError::BadRequest(format!(
            "{name} has {} sensors with a position and a temperature in this period: a map needs at least 4",
            means.len()
        )));
    }
    let lonlat: Vec<(f64, f64)> =
        means.iter().map(|(d, _)| (d.lon.unwrap_or(0.0), d.lat.unwrap_or(0.0))).collect();
    let proj = Projection::new(&lonlat);
    let samples: Vec<Sample> = means
        .iter()
        .zip(&lonlat)
        .map(|((_, v), (lon, lat))| {
            let (x, y) = proj.to_xy(*lon, *lat);
            Sample { x, y, value: *v }
        })
        .collect();
    // The sensors' extent, with a margin of a tenth (at least 100 m).
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in &samples {
        (x0, x1, y0, y1) = (x0.min(p.x), x1.max(p.x), y0.min(p.y), y1.max(p.y));
    }
    let margin = (0.1 * (x1 - x0).max(y1 - y0)).max(100.0);
    let (x0, x1, y0, y1) = (x0 - margin, x1 + margin, y0 - margin, y1 + margin);
    let side = ((x1 - x0) * (y1 - y0) / cells as f64).sqrt();
    let nx = (((x1 - x0) / side).ceil() as usize).max(1);
    let ny = (((y1 - y0) / side).ceil() as usize).max(1);
    if nx * ny > MAX_CELLS {
        return Err(ApiError::BadRequest(format!(
            "the grid would have {} cells, more than {MAX_CELLS}",
            nx * ny
        )));
    }
    let grid = Grid { x0: x0 + side / 2.0, y0: y0 + side / 2.0, dx: side, dy: side, nx, ny };
    let m = {
        let samples = samples.clone();
        tokio::task::spawn_blocking(move || map(&samples, &grid, method))
            .await
            .map_err(|e| ApiError::BadRequest(format!("the map could not be computed: {e}")))?
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    let (lo, hi) = m
        .cells
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| (lo.min(c.value), hi.max(c.value)));
    let legend = heat_legend(lo, hi);
    // The grid's outer edges, as longitude and latitude.
    let (west, south) = proj.to_lonlat(grid.x0 - side / 2.0, grid.y0 - side / 2.0);
    let (east, north) = proj.to_lonlat(
        grid.x0 - side / 2.0 + nx as f64 * side,
        grid.y0 - side / 2.0 + ny as f64 * side,
    );
    let bbox = [west, south, east, north];
    if png {
        // One pixel per cell, the top row the northernmost; a little transparent over the map.
        let mut rgba = Vec::with_capacity(nx * ny * 4);
        for j in (0..ny).rev() {
            for i in 0..nx {
                let [r, g, b] = heat_colour(m.cells[j * nx + i].value, lo, hi);
                rgba.extend_from_slice(&[r, g, b, 190]);
            }
        }
        let image = crate::png::encode_rgba(nx as u32, ny as u32, &rgba);
        let about = serde_json::json!({
            "area": name, "from": range.from, "to": range.to, "bbox": bbox, "legend": legend,
            "method": m.chosen, "cross_validation": m.assessments, "sensors": means.len(),
        });
        let about = header::HeaderValue::from_str(&about.to_string())
            .map_err(|e| ApiError::BadRequest(format!("the map could not be described: {e}")))?;
        return Ok((
            [
                (header::CONTENT_TYPE, header::HeaderValue::from_static("image/png")),
                (header::HeaderName::from_static("x-agora-map"), about),
            ],
            image,
        )
            .into_response());
    }
    let mut features = Vec::with_capacity(m.cells.len());
    for j in 0..ny {
        for i in 0..nx {
            let c = m.cells[j * nx + i];
            let (cx, cy) = grid.centre(i, j);
            let corner = |dx: f64, dy: f64| {
                let (lon, lat) = proj.to_lonlat(cx + dx * side / 2.0, cy + dy * side / 2.0);
                serde_json::json!([lon, lat])
            };
            features.push(serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[corner(-1.0, -1.0), corner(1.0, -1.0), corner(1.0, 1.0), corner(-1.0, 1.0), corner(-1.0, -1.0)]]},
                "properties": {"value": c.value, "se": c.variance.map(f64::sqrt)},
            }));
        }
    }
    let sensors: Vec<serde_json::Value> = means
        .iter()
        .map(|(d, v)| serde_json::json!({"device": d.id, "lon": d.lon, "lat": d.lat, "value": v}))
        .collect();
    let body = serde_json::json!({
        "type": "FeatureCollection",
        "bbox": bbox,
        "properties": {
            "legend": legend,
            "area": name,
            "property": "temperature",
            "unit": "Cel",
            "from": range.from,
            "to": range.to,
            "method": m.chosen,
            "cross_validation": m.assessments,
            "sensors": sensors,
            "grid": {"nx": nx, "ny": ny, "cell_m": side},
        },
        "features": features,
    });
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], body.to_string()).into_response())
}

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Pollutants' property names, `+`-joined (CSV cells hold no commas).
fn names(ps: &[agora_indicators::air::Pollutant]) -> String {
    ps.iter().map(|p| p.property()).collect::<Vec<_>>().join("+")
}

/// A CSV answer.
pub(crate) fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(eaqi, atmo, air_statistics, noise, noise_ranking, heat, heat_map, heat_island))]
pub(crate) struct Doc;
