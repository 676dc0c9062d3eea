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
    let f = agora_query::forecast::forecast(
        s.catalog.as_ref(),
        s.store.as_ref(),
        device.as_str(),
        &p.property,
        s.clock.now(),
        p.horizon.unwrap_or(agora_query::forecast::HORIZON),
        chrono_tz::Europe::Paris,
    )
    .await?;
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

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(forecast))]
pub(crate) struct Doc;
