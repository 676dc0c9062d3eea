//! Ingest endpoints: InfluxDB v1 and v2 writes, native JSON, SenML.

use std::io::Read;

use agora_ingest::{Decoded, Format, IngestReport, Source};
use agora_model::Precision;
use agora_store::catalog::{Scope, TokenInfo};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::auth::require;
use crate::error::{ApiError, ApiResult};

/// Query of `POST /write` (InfluxDB v1). `db`, `rp` and `u` are accepted and ignored: agora
/// has one store, and the token says who writes.
#[derive(Debug, Deserialize)]
pub(crate) struct V1Params {
    precision: Option<String>,
    p: Option<String>,
}

/// Query of `POST /api/v2/write` (InfluxDB v2). `org` and `bucket` are accepted and ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct V2Params {
    precision: Option<String>,
}

/// Defaults for auto-registration, on JSON and SenML endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct Placement {
    kind: Option<String>,
    site: Option<String>,
    commune: Option<String>,
}

impl Placement {
    /// A source that places the devices it registers as the query says.
    fn source<'a>(
        &'a self,
        name: &'a str,
        token: &'a TokenInfo,
        format: Format,
        body: &'a [u8],
    ) -> Source<'a> {
        Source {
            name,
            token: Some(token),
            default_kind: self.kind.as_deref(),
            default_site: self.site.as_deref(),
            default_commune: self.commune.as_deref(),
            format: Some(format),
            body: Some(body),
            ..Default::default()
        }
    }
}

/// The request body, decompressed when gzip-encoded, within the size limit.
fn body_bytes(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Bytes> {
    let limit = state.config.max_body_bytes;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!("could not read the request body: {r}"))
        }
    })?;
    match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("") | Some("identity") => Ok(body),
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            // Read one byte past the limit to tell "exactly at the limit" from "over it".
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("body is not valid gzip: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            Ok(out.into())
        }
        Some(enc) => Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {enc:?}: use gzip or none"
        ))),
    }
}

fn precision(p: Option<&str>) -> ApiResult<Precision> {
    p.map_or(Ok(Precision::Nanoseconds), |p| {
        p.parse().map_err(|e: agora_model::Error| ApiError::BadRequest(e.to_string()))
    })
}

/// 204 when everything was stored, problem+json naming the first refused lines (and counting
/// them all) otherwise.
fn answer(report: IngestReport) -> ApiResult<Response> {
    if report.rejected_count == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(ApiError::PartialWrite {
        accepted: report.accepted,
        rejected: report.rejected,
        rejected_count: report.rejected_count,
    })
}

/// Decode a body in its source's format and store what passes; a body refused whole is kept as a
/// dead letter.
async fn decode_and_run(state: &AppState, src: Source<'_>, body: &[u8]) -> ApiResult<Response> {
    let Some(format) = &src.format else {
        return Err(ApiError::Internal(agora_store::Error::Internal(format!(
            "{}: no format to decode with",
            src.name
        ))));
    };
    match state.pipeline.decode(format, body) {
        Ok(m) => run(state, src, m.decoded).await,
        Err(reason) => {
            state.pipeline.reject_whole(&src, &reason, body).await;
            Err(ApiError::BadRequest(reason.0))
        }
    }
}

async fn run(state: &AppState, src: Source<'_>, decoded: Decoded<'_>) -> ApiResult<Response> {
    let report = state.pipeline.ingest(&src, decoded).await.map_err(ApiError::Unavailable)?;
    answer(report)
}

pub(crate) async fn write_v1(
    State(state): State<AppState>,
    Query(q): Query<V1Params>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, q.p.as_deref(), Scope::Ingest)?;
    write_lines(&state, "http /write", &token, q.precision.as_deref(), &headers, body).await
}

pub(crate) async fn write_v2(
    State(state): State<AppState>,
    Query(q): Query<V2Params>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, None, Scope::Ingest)?;
    write_lines(&state, "http /api/v2/write", &token, q.precision.as_deref(), &headers, body).await
}

/// Line protocol, as both InfluxDB write APIs send it.
async fn write_lines(
    state: &AppState,
    name: &str,
    token: &TokenInfo,
    precision_param: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_bytes(state, headers, body)?;
    let format = Format::LineProtocol(precision(precision_param)?);
    let src = Source {
        name,
        token: Some(token),
        format: Some(format),
        body: Some(&body),
        ..Default::default()
    };
    decode_and_run(state, src, &body).await
}

pub(crate) async fn observations(
    State(state): State<AppState>,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, None, Scope::Ingest)?;
    let body = body_bytes(&state, &headers, body)?;
    let src = p.source("http /api/v1/observations", &token, Format::Json, &body);
    decode_and_run(&state, src, &body).await
}

pub(crate) async fn senml(
    State(state): State<AppState>,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, None, Scope::Ingest)?;
    let body = body_bytes(&state, &headers, body)?;
    let src = p.source("http /api/v1/senml", &token, Format::Senml, &body);
    decode_and_run(&state, src, &body).await
}

/// `POST /api/v1/push/sensor-community`: the Sensor.Community firmware's API push.
pub(crate) async fn sensor_community(
    State(state): State<AppState>,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, None, Scope::Ingest)?;
    let body = body_bytes(&state, &headers, body)?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let format = Format::SensorCommunity {
        sensor: header("x-sensor").unwrap_or_default(),
        pin: header("x-pin"),
    };
    let src = p.source("http /api/v1/push/sensor-community", &token, format, &body);
    decode_and_run(&state, src, &body).await
}

/// `POST /api/v1/{token}/telemetry`: ThingsBoard's HTTP device API. The access token in the path
/// is an ingest token bound to the device.
pub(crate) async fn thingsboard_telemetry(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &HeaderMap::new(), Some(&secret), Scope::Ingest)?;
    let device = token.device.clone().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "token {:?} is not bound to a device: ThingsBoard device tokens must be",
            token.name
        ))
    })?;
    let body = body_bytes(&state, &headers, body)?;
    let src = Source {
        name: "http thingsboard telemetry",
        token: Some(&token),
        format: Some(Format::ThingsboardDevice(device.to_string())),
        body: Some(&body),
        ..Default::default()
    };
    decode_and_run(&state, src, &body).await
}

/// Query of `POST /api/v1/import/csv`.
#[derive(Debug, Deserialize)]
pub(crate) struct CsvParams {
    mapping: Option<String>,
}

/// `POST /api/v1/import/csv?mapping=NAME`: a CSV file read with a mapping configured in
/// `agora.toml` (`[csv.mappings.NAME]`). Rejected rows are named by their line in the file.
pub(crate) async fn import_csv(
    State(state): State<AppState>,
    Query(q): Query<CsvParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = require(&state, &headers, None, Scope::Ingest)?;
    let name = q.mapping.ok_or_else(|| ApiError::BadRequest("missing parameter mapping".into()))?;
    let mapping = state.config.csv_mappings.get(&name).ok_or_else(|| {
        let mut known: Vec<&String> = state.config.csv_mappings.keys().collect();
        known.sort();
        ApiError::NotFound(format!("no CSV mapping {name:?} (configured: {known:?})"))
    })?;
    let body = body_bytes(&state, &headers, body)?;
    let src = Source { name: "http /api/v1/import/csv", token: Some(&token), ..Default::default() };
    let mut reader = match mapping.reader(&body[..], &body[..body.len().min(4096)]) {
        Ok(r) => r,
        Err(reason) => {
            state.pipeline.reject_whole(&src, &reason, &body).await;
            return Err(ApiError::BadRequest(reason.0));
        }
    };
    let mut total = IngestReport::default();
    loop {
        let mut decoded = Decoded::default();
        while decoded.records.len() < 5_000 {
            match reader.next_record() {
                Some(Ok(r)) => decoded.records.push(r),
                Some(Err(e)) => decoded.errors.push(e),
                None => break,
            }
        }
        if decoded.records.is_empty() && decoded.errors.is_empty() {
            break;
        }
        let r = state.pipeline.ingest(&src, decoded).await.map_err(ApiError::Unavailable)?;
        total.absorb(r);
    }
    answer(total)
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub(crate) struct Doc;
