//! Environmental indicators (`/api/v1/indicators/…`): the European Air Quality Index by hour and
//! the French ATMO index by day, of a device, a place or a commune, in JSON or CSV. They are
//! public when the public map is on (they are what a citizen reads), else need a read token.

use std::time::Duration;

use agora_model::{DeviceId, InseeCode, SiteId, Timestamp};
use agora_query::TimeRange;
use agora_query::air::{Area, DayIndex, HourIndex};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, NotFound, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
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

impl AreaParams {
    fn area(&self, s: &AppState) -> ApiResult<(Area, String)> {
        let bad = |e: agora_model::Error| ApiError::BadRequest(e.to_string());
        let area = match (&self.device, &self.site, &self.commune) {
            (Some(d), None, None) => Area::Device(DeviceId::parse(d).map_err(bad)?),
            (None, Some(p), None) => Area::Site(SiteId::parse(p).map_err(bad)?),
            (None, None, Some(c)) => Area::Commune(InseeCode::parse(c).map_err(bad)?),
            _ => {
                return Err(ApiError::BadRequest(
                    "name exactly one of device, site or commune".into(),
                ));
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
    State(s): State<AppState>,
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
    State(s): State<AppState>,
    h: HeaderMap,
    Query(area): Query<AreaParams>,
    Query(q): Query<DailyParams>,
) -> ApiResult<Response> {
    Audience::of(&s, &h)?;
    let csv = area.csv()?;
    let (a, name) = area.area(&s)?;
    let tz = chrono_tz::Europe::Paris;
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
            "daily indices span at most {MAX_DAILY_DAYS} days"
        )));
    }
    let midnight = |d: NaiveDate| {
        let noon = d.and_hms_opt(12, 0, 0).and_then(|n| Timestamp::from_datetime(&n.and_utc()));
        noon.map(|t| agora_query::Every::LocalDays { days: 1, tz }.floor(t))
            .ok_or_else(|| ApiError::BadRequest(format!("day {d} is out of range")))
    };
    let end = to
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ApiError::BadRequest("to is out of range".into()))?;
    let range = TimeRange::new(midnight(from)?, midnight(end)?)?;
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

fn snake<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// Pollutants' property names, `+`-joined (CSV cells hold no commas).
fn names(ps: &[agora_indicators::air::Pollutant]) -> String {
    ps.iter().map(|p| p.property()).collect::<Vec<_>>().join("+")
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(eaqi, atmo))]
pub(crate) struct Doc;
