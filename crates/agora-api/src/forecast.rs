//! Forecasts of a device's series, with the accuracy that chose them: the backtest table is part
//! of every answer, so that a forecast is never shown without how well this method did on this
//! series over the last four weeks, against repeating yesterday.

use agora_forecast::{Method, Predicted, Score};
use agora_model::DeviceId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::doc::{BadRequest, NotFound, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::policy::Scoped;

/// Which forecast.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ForecastParams {
    /// The device.
    device: String,
    /// The property: `pm10`, `pm2_5`, `no2`, `o3`, `laeq`, `temperature`, `people_in`,
    /// `people_out`, `fill_level` or `soil_moisture`.
    property: String,
    /// Hours ahead, 1 to 48 (default 48).
    horizon: Option<usize>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// An hour measured or forecast.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Hour {
    /// Its start.
    #[schema(value_type = String, format = DateTime)]
    time: agora_model::Timestamp,
    /// The hourly mean measured (recent hours) or forecast.
    value: Option<f64>,
    /// The forecast's 80 % and 95 % intervals (forecast hours only).
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_80: Option<(f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_95: Option<(f64, f64)>,
}

/// A forecast and its accuracy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ForecastAnswer {
    #[schema(value_type = String)]
    device: DeviceId,
    property: String,
    /// The method published, in words.
    method: String,
    #[schema(value_type = Object)]
    method_detail: Method,
    /// Whether a model beat seasonal naive on this series; if not, the forecast published is
    /// seasonal naive, and this says so.
    beats_naive: bool,
    /// The backtest: every candidate's MAE, MASE and sMAPE, best first.
    backtest: Vec<Score>,
    /// Origins replayed, the hours between two of them (24, or less on a short history), and
    /// hours compared.
    origins: usize,
    spacing_hours: usize,
    hours_compared: usize,
    /// The published method's intervals, as they would have covered in the backtest.
    coverage_80: f64,
    coverage_95: f64,
    /// The last 48 hours measured (hourly means of the readings).
    recent: Vec<Hour>,
    /// The hours forecast.
    forecast: Vec<Hour>,
}

/// A series' forecast, with its accuracy
///
/// The hourly means of a device's property forecast up to 48 hours ahead, with 80 % and 95 %
/// intervals. The method is chosen on this series by a backtest of 28 origins (a day apart, or
/// 18 or 12 hours apart on a shorter history; each fitted on the hours before it only): seasonal
/// naive (the same hour yesterday or last week) or a profile (the hour's mean over 28, 7 or 3 days)
/// with a smoothed, damped level. A model
/// is published only if it beat both seasonal naive forecasts; the table of every candidate's MAE,
/// MASE and sMAPE comes with the forecast, and so does the intervals' coverage in the backtest.
#[utoipa::path(get, path = "/api/v1/forecast", tag = "indicators", security((), ("bearer" = [])),
    params(ForecastParams),
    responses(
        (status = 200, description = "The forecast and its backtest (or CSV with `format=csv`)", body = ForecastAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn forecast(
    Scoped(s): Scoped,
    Query(p): Query<ForecastParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let device = DeviceId::parse(&p.device).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if s.catalog.device(device.as_str()).is_none() {
        return Err(ApiError::NotFound(format!("no device {device}")));
    }
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
    };
    agora_query::forecast::check(&p.property, p.horizon.unwrap_or(agora_query::forecast::HORIZON))?;
    let horizon = p.horizon.unwrap_or(agora_query::forecast::HORIZON);
    let Some(series) = s
        .catalog
        .lookup_series(&[(device.as_str(), p.property.as_str())])
        .into_iter()
        .next()
        .flatten()
    else {
        return Err(ApiError::NotFound(format!("{device} has no {} series", p.property)));
    };
    let model = s.forecasts.get(series).await?;
    let mut f = match &model.outcome {
        Ok(f) => f.clone(),
        Err(why) => return Err(ApiError::BadRequest(format!("{device} {}: {why}", p.property))),
    };
    f.hours.truncate(horizon);
    let predicted = |(time, x): (agora_model::Timestamp, Option<Predicted>)| Hour {
        time,
        value: x.map(|x| x.value),
        interval_80: x.map(|x| (x.lo80, x.hi80)),
        interval_95: x.map(|x| (x.lo95, x.hi95)),
    };
    let answer = ForecastAnswer {
        method: f.backtest.chosen.name(),
        method_detail: f.backtest.chosen,
        beats_naive: f.backtest.beats_naive,
        backtest: f.backtest.scores.clone(),
        origins: f.backtest.origins,
        spacing_hours: f.backtest.spacing_hours,
        hours_compared: f.backtest.hours,
        coverage_80: f.backtest.coverage_80,
        coverage_95: f.backtest.coverage_95,
        recent: f
            .recent
            .into_iter()
            .map(|(time, value)| Hour { time, value, interval_80: None, interval_95: None })
            .collect(),
        forecast: f.hours.into_iter().map(predicted).collect(),
        device,
        property: p.property,
    };
    if csv {
        let mut out = String::from("time,kind,value,lo80,hi80,lo95,hi95\n");
        let n = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
        for (kind, hours) in [("measured", &answer.recent), ("forecast", &answer.forecast)] {
            for h in hours {
                out.push_str(&format!(
                    "{},{kind},{},{},{},{},{}\n",
                    h.time.to_datetime().to_rfc3339(),
                    n(h.value),
                    n(h.interval_80.map(|x| x.0)),
                    n(h.interval_80.map(|x| x.1)),
                    n(h.interval_95.map(|x| x.0)),
                    n(h.interval_95.map(|x| x.1)),
                ));
            }
        }
        return Ok(
            ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
        );
    }
    Ok(Json(answer).into_response())
}

/// `json` (default) or `csv`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// Only this property.
    property: Option<String>,
}

fn wants_csv(format: Option<&str>) -> ApiResult<bool> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
    }
}

use crate::commerce_report::csv_field as field;
use crate::indicators::csv_response;

/// A series' model, as the operators' page lists it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelRow {
    #[schema(value_type = String)]
    device: DeviceId,
    property: String,
    site: Option<String>,
    /// The method published, in words (absent: no forecast, and `refused` says why).
    method: Option<String>,
    /// The same, as data.
    #[schema(value_type = Option<Object>)]
    method_detail: Option<Method>,
    /// Whether a model beat seasonal naive (else seasonal naive is published).
    beats_naive: Option<bool>,
    /// The published method's MASE (below 1: better than repeating yesterday), sMAPE (%) and
    /// MAE in the series' unit, on the backtest.
    mase: Option<f64>,
    smape: Option<f64>,
    mae: Option<f64>,
    /// Its intervals' coverage in the backtest.
    coverage_80: Option<f64>,
    coverage_95: Option<f64>,
    /// Hours compared.
    hours_compared: Option<usize>,
    /// When its method was chosen and when it last forecast.
    #[schema(value_type = String, format = DateTime)]
    fitted: agora_model::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    made: agora_model::Timestamp,
    /// Why it has no forecast.
    refused: Option<String>,
}

/// Every series' forecasting model and its accuracy
///
/// The model of each forecastable series the caller may read, as the hourly sweep left it: the
/// method its backtest chose, that method's MASE, sMAPE and MAE, and its intervals' coverage; or
/// why the series is not forecast. JSON or CSV.
#[utoipa::path(get, path = "/api/v1/forecast/models", tag = "indicators", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The models, by device and property", body = [ModelRow]),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn models(
    Scoped(s): Scoped,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let csv = wants_csv(p.format.as_deref())?;
    let rows: Vec<ModelRow> = s
        .forecasts
        .models()
        .into_iter()
        .filter(|m| s.catalog.device(m.device.as_str()).is_some())
        .filter(|m| p.property.as_deref().is_none_or(|x| x == m.property))
        .map(|m| {
            let ok = m.outcome.as_ref().ok();
            let chosen =
                ok.and_then(|f| f.backtest.scores.iter().find(|x| x.method == f.backtest.chosen));
            ModelRow {
                device: m.device.clone(),
                property: m.property.clone(),
                site: m.site.clone(),
                method: ok.map(|f| f.backtest.chosen.name()),
                method_detail: ok.map(|f| f.backtest.chosen),
                beats_naive: ok.map(|f| f.backtest.beats_naive),
                mase: chosen.map(|c| c.mase),
                smape: chosen.map(|c| c.smape),
                mae: chosen.map(|c| c.mae),
                coverage_80: ok.map(|f| f.backtest.coverage_80),
                coverage_95: ok.map(|f| f.backtest.coverage_95),
                hours_compared: ok.map(|f| f.backtest.hours),
                fitted: m.fitted,
                made: m.made,
                refused: m.outcome.as_ref().err().cloned(),
            }
        })
        .collect();
    if csv {
        let n = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
        let mut out = String::from(
            "device,property,site,method,beats_naive,mase,smape,mae,coverage_80,coverage_95,hours_compared,fitted,refused\n",
        );
        for r in &rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                field(r.device.as_str()),
                field(&r.property),
                field(r.site.as_deref().unwrap_or("")),
                field(r.method.as_deref().unwrap_or("")),
                r.beats_naive.map(|b| b.to_string()).unwrap_or_default(),
                n(r.mase),
                n(r.smape),
                n(r.mae),
                n(r.coverage_80),
                n(r.coverage_95),
                r.hours_compared.map(|h| h.to_string()).unwrap_or_default(),
                r.fitted.to_datetime().to_rfc3339(),
                field(r.refused.as_deref().unwrap_or("")),
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(rows).into_response())
}

/// Anomalies found in the readings
///
/// What the forecasting service found in the series the caller may read, latest first: hours
/// outside the 99.9 % interval of their forecast three hours in a row over the last week
/// (`unlikely`), a noise level or a footfall whose daily level changed and stayed changed over the
/// last six weeks (`level_shift`, CUSUM test at 0.1 %), and a pollutant or temperature sensor
/// drifting from the other sensors of its place (`drift`, the same test on its daily ratio to
/// their median). Unlikely hours most of a place's sensors share (`shared`) are an event the place
/// lived rather than a sensor's fault. Refreshed every hour. JSON or CSV.
#[utoipa::path(get, path = "/api/v1/anomalies", tag = "indicators", security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The anomalies, latest first", body = [agora_query::forecasts::Anomaly]),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn anomalies(
    Scoped(s): Scoped,
    Query(p): Query<ListParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let csv = wants_csv(p.format.as_deref())?;
    let found: Vec<agora_query::forecasts::Anomaly> = s
        .forecasts
        .anomalies()
        .into_iter()
        .filter(|a| s.catalog.device(a.device.as_str()).is_some())
        .filter(|a| p.property.as_deref().is_none_or(|x| x == a.property))
        .map(|mut a| {
            // Peers the caller may not see are not named.
            a.peers.retain(|d| s.catalog.device(d.as_str()).is_some());
            a
        })
        .collect();
    if csv {
        let mut out = String::from(
            "kind,device,property,site,from,to,value,before,lo999,hi999,peers,statistic,shared_by,place_sensors\n",
        );
        let n = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
        for a in &found {
            let kind =
                serde_json::to_value(a.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
            let peers: Vec<&str> = a.peers.iter().map(|d| d.as_str()).collect();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                kind.unwrap_or_default(),
                field(a.device.as_str()),
                field(&a.property),
                field(a.site.as_deref().unwrap_or("")),
                a.from.to_datetime().to_rfc3339(),
                a.to.to_datetime().to_rfc3339(),
                n(Some(a.value)),
                n(Some(a.before)),
                n(a.interval.map(|i| i.0)),
                n(a.interval.map(|i| i.1)),
                field(&peers.join(" ")),
                n(a.statistic),
                a.shared.map(|s| s[0].to_string()).unwrap_or_default(),
                a.shared.map(|s| s[1].to_string()).unwrap_or_default(),
            ));
        }
        return Ok(csv_response(out));
    }
    Ok(Json(found).into_response())
}

/// A place the caller may read, and its devices.
fn place_devices(
    s: &crate::AppState,
    site: &str,
) -> ApiResult<(agora_store::catalog::Site, Vec<agora_store::catalog::Device>)> {
    let Some(place) = s.catalog.sites().into_iter().find(|x| x.id.as_str() == site) else {
        return Err(ApiError::NotFound(format!("no place {site:?}")));
    };
    let devices = s
        .catalog
        .devices(&agora_store::catalog::DeviceFilter::default())
        .into_iter()
        .filter(|d| d.site.as_ref() == Some(&place.id))
        .collect();
    Ok((place, devices))
}

/// Which place.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TomorrowParams {
    /// The place.
    site: String,
}

/// Tomorrow at a place
///
/// Tomorrow's ATMO index from the place's forecast pollutants (with the range their 80 %
/// intervals allow), its forecast temperatures against the commune's canicule thresholds, and its
/// forecast footfall against the same weekday's usual: what the place pages and kiosks show as
/// "demain". A part without forecasts is absent.
#[utoipa::path(get, path = "/api/v1/forecast/tomorrow", tag = "indicators", security((), ("bearer" = [])),
    params(TomorrowParams),
    responses(
        (status = 200, description = "Tomorrow at the place", body = agora_query::forecasts::Tomorrow),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn tomorrow(
    Scoped(s): Scoped,
    Query(p): Query<TomorrowParams>,
) -> ApiResult<Json<agora_query::forecasts::Tomorrow>> {
    let (site, devices) = place_devices(&s, &p.site)?;
    let thresholds = s.config.indicators.canicule_for(Some(site.commune.as_str()));
    Ok(Json(s.forecasts.tomorrow(&devices, thresholds).await?))
}

/// Which place and property.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PlaceParams {
    /// The place.
    site: String,
    /// The property (as for `/api/v1/forecast`).
    property: String,
}

/// A place's forecast.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlaceForecast {
    site: String,
    property: String,
    /// Each hour ahead: the mean of the place's sensors' forecasts.
    hours: Vec<agora_query::forecasts::PlaceHour>,
}

/// A property's forecast at a place
///
/// The next 48 hours of a property at a place: each hour, the mean of its sensors' forecasts
/// (each sensor's method chosen by its own backtest, published at `/api/v1/forecast`), with the
/// means of their intervals — a cautious range, as wide as one sensor's. What the place pages
/// draw after "now" on their charts. Empty when no sensor of the place has a forecast.
#[utoipa::path(get, path = "/api/v1/forecast/place", tag = "indicators", security((), ("bearer" = [])),
    params(PlaceParams),
    responses(
        (status = 200, description = "The place's forecast", body = PlaceForecast),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn place(
    Scoped(s): Scoped,
    Query(p): Query<PlaceParams>,
) -> ApiResult<Json<PlaceForecast>> {
    let (_, devices) = place_devices(&s, &p.site)?;
    let hours = s.forecasts.place(&devices, &p.property).await?;
    Ok(Json(PlaceForecast { site: p.site, property: p.property, hours }))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(forecast, models, anomalies, tomorrow, place))]
pub(crate) struct Doc;
