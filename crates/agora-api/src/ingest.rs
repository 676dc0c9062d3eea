//! Ingest endpoints: InfluxDB v1 and v2 writes, native JSON, SenML, Sensor.Community pushes,
//! ThingsBoard device telemetry and CSV imports.
//!
//! Bodies are read as raw bytes (gzip-compressed when `Content-Encoding: gzip`) and decoded by
//! the format of the endpoint; the schemas of [`bodies`] describe them for the API document.

use std::io::Read;

use agora_ingest::{Decoded, Format, IngestReport, Source};
use agora_model::Precision;
use agora_store::catalog::TokenInfo;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::doc::NotFound;
use crate::doc::Writes;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::policy::Who;

use bodies::{JsonBatch, SenmlRecord, SensorCommunityPush, ThingsboardTelemetry};

/// Query of `POST /write` (InfluxDB v1). `db`, `rp` and `u` are accepted and ignored (see
/// [`write_v1`]): agora has one store, and the token says who writes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct V1Params {
    /// The unit of the lines' timestamps: `n`/`ns` (default), `u`/`us`/`µ`/`µs`, `ms` or `s`.
    #[param(inline, value_type = Option<bodies::LinePrecision>)]
    precision: Option<String>,
    /// The token, as InfluxDB v1 clients send it; used when no `Authorization` header is sent
    /// (a header, when present, is the one checked). Read by the policy layer, which
    /// authenticates every request; here for the API document.
    #[allow(dead_code)]
    p: Option<String>,
}

/// Query of `POST /api/v2/write` (InfluxDB v2). `org` and `bucket` are accepted and ignored (see
/// [`write_v2`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct V2Params {
    /// The unit of the lines' timestamps: `ns` (default), `us`, `ms` or `s` (v1 spellings `n`,
    /// `u`, `µ`, `µs` are accepted too).
    #[param(inline, value_type = Option<bodies::LinePrecision>)]
    precision: Option<String>,
}

/// Defaults for auto-registration, on JSON, SenML and Sensor.Community endpoints: they place a
/// device registered by its first write (an item's own `kind`, `site` or `commune` wins), and
/// are not used for devices already known.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Placement {
    /// The kind of new devices (default `sensor`). Sensor.Community pushes ignore it: their kind
    /// follows `X-Pin`.
    #[param(inline, value_type = Option<agora_model::DeviceKind>)]
    kind: Option<String>,
    /// The place of new devices (it must exist); their commune and position are taken from it.
    #[param(inline, value_type = Option<agora_model::SiteId>)]
    site: Option<String>,
    /// The commune of new devices (it must exist).
    #[param(inline, value_type = Option<agora_model::InseeCode>)]
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
pub(crate) fn body_bytes(
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

/// Write InfluxDB line protocol (InfluxDB v1 API)
///
/// InfluxDB v1's write API, so Telegraf, Node-RED and InfluxDB clients write unchanged. The
/// token goes in `Authorization: Bearer <token>`, InfluxDB's `Authorization: Token <token>`,
/// HTTP Basic (the password is the token, the user is ignored) or the query parameter `p`; an
/// ingest request without a valid token is refused (401) before its body is read. `db`, `rp` and
/// `u` are accepted and ignored: agora has one store, and the token says who writes.
///
/// 204 when every line was stored. When some lines are refused the others are still stored, and
/// the answer is a 400 problem with `accepted` (points stored), `rejected` (the first refused
/// lines, with their number and why) and `rejected_count`; refused input is kept in the
/// dead-letter log.
#[utoipa::path(post, path = "/write", tag = "ingest", security(("bearer" = [])),
    params(
        V1Params,
        ("db" = Option<String>, Query, description = "InfluxDB database: accepted and ignored"),
        ("rp" = Option<String>, Query, description = "InfluxDB retention policy: accepted and ignored"),
        ("u" = Option<String>, Query, description = "InfluxDB user: accepted and ignored (the token says who writes)"),
    ),
    request_body(content = String, content_type = "text/plain",
        description = "InfluxDB line protocol, one point per line: \
            `measurement,tag=v field=1.0,n=3i,s=\"on\",b=t timestamp`. The measurement is the \
            device kind, tag `device` the device, tags `site` and `commune` place a device \
            registered by its first write, other tags are ignored; fields are properties (names \
            or aliases). Timestamps are in `precision` (absent: the time of receipt). Empty lines \
            and `#` comments are skipped. May be gzip-compressed (`Content-Encoding: gzip`); at \
            most the configured body size once decompressed.",
        example = json!("air_quality,device=aq-1,site=hotel-de-ville pm10=12.5,no2=31.2 1767225600000000000")),
    responses(
        (status = 204, description = "Every point stored"),
        Writes,
    ))]
pub(crate) async fn write_v1(
    State(state): State<AppState>,
    Who(who): Who,
    Query(q): Query<V1Params>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
    write_lines(&state, "http /write", &token, q.precision.as_deref(), &headers, body).await
}

/// Write InfluxDB line protocol (InfluxDB v2 API)
///
/// InfluxDB v2's write API, so Telegraf's `outputs.influxdb_v2` and InfluxDB v2 clients write
/// unchanged. The token goes in InfluxDB's `Authorization: Token <token>` or in `Authorization:
/// Bearer <token>` (or HTTP Basic, the password being the token); an ingest request without a
/// valid token is refused (401) before its body is read. `org` and `bucket` are accepted and
/// ignored.
///
/// 204 when every line was stored. When some lines are refused the others are still stored, and
/// the answer is a 400 problem with `accepted`, `rejected` (the first refused lines) and
/// `rejected_count`; refused input is kept in the dead-letter log.
#[utoipa::path(post, path = "/api/v2/write", tag = "ingest", security(("bearer" = [])),
    params(
        V2Params,
        ("org" = Option<String>, Query, description = "InfluxDB organisation: accepted and ignored"),
        ("bucket" = Option<String>, Query, description = "InfluxDB bucket: accepted and ignored"),
    ),
    request_body(content = String, content_type = "text/plain",
        description = "InfluxDB line protocol, one point per line: \
            `measurement,tag=v field=1.0,n=3i,s=\"on\",b=t timestamp`. The measurement is the \
            device kind, tag `device` the device, tags `site` and `commune` place a device \
            registered by its first write, other tags are ignored; fields are properties (names \
            or aliases). Timestamps are in `precision` (absent: the time of receipt). Empty lines \
            and `#` comments are skipped. May be gzip-compressed (`Content-Encoding: gzip`); at \
            most the configured body size once decompressed.",
        example = json!("air_quality,device=aq-1 pm10=14.5,no2=29.8 1767225600")),
    responses(
        (status = 204, description = "Every point stored"),
        Writes,
    ))]
pub(crate) async fn write_v2(
    State(state): State<AppState>,
    Who(who): Who,
    Query(q): Query<V2Params>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
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

/// Write observations in agora's native JSON
///
/// A batch of observations, each of one property (`property`, `value`, `unit`) or of several
/// (`values`), with an optional time. Devices unknown so far are registered on their first write
/// (when automatic registration is on), placed by the item's `kind`, `site` and `commune` or by
/// the query's. The token goes in `Authorization: Bearer <token>` (or `Token`, or HTTP Basic); an
/// ingest request without a valid token is refused (401) before its body is read.
///
/// 204 when every observation was stored. When some are refused the others are still stored,
/// and the answer is a 400 problem with `accepted`, `rejected` (the first refused items, by
/// their 1-based position) and `rejected_count`; refused input is kept in the dead-letter log.
#[utoipa::path(post, path = "/api/v1/observations", tag = "ingest", security(("bearer" = [])),
    params(Placement),
    request_body(content = JsonBatch, content_type = "application/json",
        description = "An array of observations, a single observation, or an object with an \
            `observations` array. May be gzip-compressed (`Content-Encoding: gzip`); at most the \
            configured body size once decompressed.",
        example = json!({"observations": [
            {"device": "aq-1", "property": "no2", "value": 21.5, "unit": "ppb", "time": "2026-01-01T00:00:00Z"},
            {"device": "aq-1", "time": 1767225600, "values": {"pm10": 12.5, "pm2_5": 8.1}}
        ]})),
    responses(
        (status = 204, description = "Every observation stored"),
        Writes,
    ))]
pub(crate) async fn observations(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
    let body = body_bytes(&state, &headers, body)?;
    let src = p.source("http /api/v1/observations", &token, Format::Json, &body);
    decode_and_run(&state, src, &body).await
}

/// Write a SenML pack (RFC 8428)
///
/// A SenML JSON pack. The device is the base name (`bn`, without its trailing `:`, `/` or `;`)
/// and the property the record name (`n`); without a base name, the full name is split at its
/// last separator. Times below 2^28 are relative to now; `bv` is added to `v`; `bu` is the
/// default unit. Devices unknown so far are registered as the query says. The token goes in
/// `Authorization: Bearer <token>` (or `Token`, or HTTP Basic); an ingest request without a
/// valid token is refused (401) before its body is read.
///
/// 204 when every record was stored. When some are refused the others are still stored, and the
/// answer is a 400 problem with `accepted`, `rejected` (the first refused records, by their
/// 1-based position) and `rejected_count`; refused input is kept in the dead-letter log.
#[utoipa::path(post, path = "/api/v1/senml", tag = "ingest", security(("bearer" = [])),
    params(Placement),
    request_body(
        description = "A SenML JSON pack: an array of records. May be gzip-compressed \
            (`Content-Encoding: gzip`); at most the configured body size once decompressed.",
        content(
            (Vec<SenmlRecord> = "application/senml+json", example = json!([
                {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1767225600, "bu": "Cel", "n": "temperature", "v": 21.5},
                {"n": "relative_humidity", "u": "%RH", "v": 41, "t": 60}
            ])),
            (Vec<SenmlRecord> = "application/json"),
        )),
    responses(
        (status = 204, description = "Every record stored"),
        Writes,
    ))]
pub(crate) async fn senml(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
    let body = body_bytes(&state, &headers, body)?;
    let src = p.source("http /api/v1/senml", &token, Format::Senml, &body);
    decode_and_run(&state, src, &body).await
}

/// Receive a Sensor.Community push
///
/// The Sensor.Community (ex luftdaten.info) firmware's API push, as configured in its "send to
/// own API" settings: the device is `X-Sensor`, the sensor `X-Pin` (`1`: SDS011 and other
/// particulate sensors, `P1` = PM10, `P2` = PM2.5; `11`: BME280, temperature, humidity and
/// pressure in Pa). Without `X-Pin` (the "custom API"), every sensor comes in one body with
/// prefixed value types (`SDS_P1`, `BME280_temperature`). Firmware diagnostics (`samples`,
/// `min_micro`, `max_micro`, `interval`) are ignored; `signal` is kept as `rssi`. The token goes
/// in `Authorization: Bearer <token>` or HTTP Basic (the password is the token, as the firmware
/// sends it); an ingest request without a valid token is refused (401) before its body is read.
///
/// 204 when every value was stored. When some are refused the others are still stored, and the
/// answer is a 400 problem with `accepted`, `rejected` (the first refused values, by their 1-based
/// position in `sensordatavalues`) and `rejected_count`.
#[utoipa::path(post, path = "/api/v1/push/sensor-community", tag = "ingest",
    security(("bearer" = [])),
    params(bodies::SensorCommunityHeaders, Placement),
    request_body(content = SensorCommunityPush, content_type = "application/json",
        description = "The firmware's JSON push. May be gzip-compressed (`Content-Encoding: \
            gzip`); at most the configured body size once decompressed.",
        example = json!({"software_version": "NRZ-2020-133", "sensordatavalues": [
            {"value_type": "P1", "value": "12.30"}, {"value_type": "P2", "value": "7.85"}
        ]})),
    responses(
        (status = 204, description = "Every value stored"),
        Writes,
    ))]
pub(crate) async fn sensor_community(
    State(state): State<AppState>,
    Who(who): Who,
    Query(p): Query<Placement>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
    let body = body_bytes(&state, &headers, body)?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let format = Format::SensorCommunity {
        sensor: header("x-sensor").unwrap_or_default(),
        pin: header("x-pin"),
    };
    let src = p.source("http /api/v1/push/sensor-community", &token, format, &body);
    decode_and_run(&state, src, &body).await
}

/// Receive ThingsBoard device telemetry
///
/// ThingsBoard's HTTP device API, so devices flashed for ThingsBoard send to agora unchanged.
/// The access token is in the path (no `Authorization` header is needed): a live ingest token
/// bound to the device the telemetry is for. A request with no valid token is refused (401)
/// before its body is read: the `Authorization` header's token when one is sent, else the path's;
/// the path token is checked in any case (401). A token not bound to a device answers 400.
///
/// 204 when every value was stored. When some entries are refused the others are still stored,
/// and the answer is a 400 problem with `accepted`, `rejected` (the first refused entries, by
/// their 1-based position) and `rejected_count`.
#[utoipa::path(post, path = "/api/v1/{token}/telemetry", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token: an ingest token bound to the device")),
    request_body(content = ThingsboardTelemetry, content_type = "application/json",
        description = "Telemetry: `{\"temperature\": 22.5}`, `{\"ts\": 1451649600512, \
            \"values\": {...}}`, or an array of those. May be gzip-compressed \
            (`Content-Encoding: gzip`); at most the configured body size once decompressed.",
        example = json!({"ts": 1767225600000_i64, "values": {"temperature": 22.5, "lamp_on": true}})),
    responses(
        (status = 204, description = "Every value stored"),
        Writes,
    ))]
pub(crate) async fn thingsboard_telemetry(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::device_token(&state, &secret)?;
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CsvParams {
    /// The mapping to read the file with: a name configured in `agora.toml`
    /// (`[csv.mappings.NAME]`).
    #[param(required = true)]
    mapping: Option<String>,
}

/// Import a CSV file
///
/// A CSV file read with a mapping configured in `agora.toml` (`[csv.mappings.NAME]`): which
/// column holds the device, which the time (RFC 3339, epoch or the mapping's format, in its time
/// zone), and which columns are which properties, with their units. The delimiter (`,`, `;` or
/// tab) is guessed from the header line unless the mapping sets it. The token goes in
/// `Authorization: Bearer <token>` (or `Token`, or HTTP Basic); an ingest request without a
/// valid token is refused (401) before its body is read.
///
/// 204 when every row was stored. When some rows are refused the others are still stored, and
/// the answer is a 400 problem with `accepted`, `rejected` (the first refused rows, by their line
/// in the file) and `rejected_count`. An unknown mapping answers 404, naming the configured ones.
#[utoipa::path(post, path = "/api/v1/import/csv", tag = "ingest", security(("bearer" = [])),
    params(CsvParams),
    request_body(content = String, content_type = "text/csv",
        description = "The CSV file, with a header line naming the columns. May be \
            gzip-compressed (`Content-Encoding: gzip`); at most the configured body size once \
            decompressed.",
        example = json!("lamp_id;date;puissance\nlamp-12;01/01/2026 18:00;42.5\n")),
    responses(
        (status = 204, description = "Every row stored"),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_csv(
    State(state): State<AppState>,
    Who(who): Who,
    Query(q): Query<CsvParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let token = crate::auth::ingest_token(&who)?.clone();
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
#[openapi(paths(
    write_v1,
    write_v2,
    observations,
    senml,
    sensor_community,
    thingsboard_telemetry,
    import_csv
))]
pub(crate) struct Doc;

/// The request bodies and headers as the API document describes them. Bodies are read as bytes
/// and decoded by `agora_ingest`, never through these types: they are never built.
#[allow(dead_code)]
pub(crate) mod bodies {
    use std::borrow::Cow;

    use agora_model::{DeviceId, DeviceKind, InseeCode, SiteId, Timestamp};
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::{IntoParams, PartialSchema, ToSchema};

    /// The unit of line-protocol timestamps, in InfluxDB v1 and v2 spellings.
    #[derive(Debug, ToSchema)]
    pub(crate) enum LinePrecision {
        /// Nanoseconds.
        #[serde(rename = "n")]
        N,
        /// Nanoseconds.
        #[serde(rename = "ns")]
        Ns,
        /// Microseconds.
        #[serde(rename = "u")]
        U,
        /// Microseconds.
        #[serde(rename = "us")]
        Us,
        /// Microseconds.
        #[serde(rename = "µ")]
        Micro,
        /// Microseconds.
        #[serde(rename = "µs")]
        MicroS,
        /// Milliseconds.
        #[serde(rename = "ms")]
        Ms,
        /// Seconds.
        #[serde(rename = "s")]
        S,
    }

    /// A value as sent: a number, a string (a state such as `defectiveLamp`) or a boolean.
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum IngestValue {
        /// A number (whole numbers written without a fraction are integers).
        Number(f64),
        /// A string.
        Text(String),
        /// A boolean.
        Boolean(bool),
    }

    /// When it was measured: RFC 3339, or an epoch number (a whole number in seconds,
    /// milliseconds, microseconds or nanoseconds, guessed from its magnitude; a fractional one
    /// in seconds).
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum IngestTime {
        /// RFC 3339.
        Rfc3339(Timestamp),
        /// Epoch number.
        Epoch(f64),
    }

    /// Property (name or alias) → value: at least one.
    #[derive(Debug)]
    pub(crate) struct IngestValues;

    impl PartialSchema for IngestValues {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some("Property (name or alias) → value: at least one"))
                .additional_properties(Some(IngestValue::schema()))
                .min_properties(Some(1))
                .into()
        }
    }

    impl ToSchema for IngestValues {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("IngestValues")
        }
    }

    /// One observation of one property.
    #[derive(Debug, ToSchema)]
    pub(crate) struct JsonObservation {
        /// The device (registered by its first write when automatic registration is on).
        device: DeviceId,
        /// The property, by its name or an alias (`no2`, `NO2`, `PM2.5`).
        property: String,
        /// The value.
        value: IngestValue,
        /// Its unit, when not the property's own: the value is converted.
        unit: Option<String>,
        /// When it was measured (absent or null: when received).
        time: Option<IngestTime>,
        /// The kind of a device registered by this write (default: the query's, else `sensor`).
        kind: Option<DeviceKind>,
        /// The place of a device registered by this write (it must exist).
        site: Option<SiteId>,
        /// The commune of a device registered by this write (it must exist).
        commune: Option<InseeCode>,
    }

    /// One observation of several properties at once, in their own units.
    #[derive(Debug, ToSchema)]
    pub(crate) struct JsonObservationValues {
        /// The device (registered by its first write when automatic registration is on).
        device: DeviceId,
        /// The values, by property.
        values: IngestValues,
        /// When they were measured (absent or null: when received).
        time: Option<IngestTime>,
        /// The kind of a device registered by this write (default: the query's, else `sensor`).
        kind: Option<DeviceKind>,
        /// The place of a device registered by this write (it must exist).
        site: Option<SiteId>,
        /// The commune of a device registered by this write (it must exist).
        commune: Option<InseeCode>,
    }

    /// An observation, of one property or of several.
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum JsonObservationItem {
        /// One property (`property`, `value`, `unit`).
        One(JsonObservation),
        /// Several properties (`values`).
        Several(JsonObservationValues),
    }

    /// Observations wrapped in an object.
    #[derive(Debug, ToSchema)]
    pub(crate) struct JsonObservations {
        /// The observations.
        observations: Vec<JsonObservationItem>,
    }

    /// A native JSON batch: an array of observations, a single observation, or an object with an
    /// `observations` array. One bad item never spoils the others.
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum JsonBatch {
        /// An array.
        List(Vec<JsonObservationItem>),
        /// A single observation.
        Single(JsonObservationItem),
        /// `{"observations": [...]}`.
        Wrapped(JsonObservations),
    }

    /// A SenML record (RFC 8428). Base fields (`bn`, `bt`, `bu`, `bv`) apply to the records
    /// after them in the pack. One value field among `v`, `vs` and `vb` (data `vd` and sums `s`
    /// are not supported).
    #[derive(Debug, ToSchema)]
    pub(crate) struct SenmlRecord {
        /// Base name: the device, ending with `:`, `/` or `;` (`urn:dev:mac:0024befffe804ff1:`).
        #[serde(default)]
        bn: String,
        /// Base time, in seconds since the epoch.
        #[serde(default)]
        bt: f64,
        /// Base unit: the unit of records without `u`.
        #[serde(default)]
        bu: String,
        /// Base value, added to `v`.
        #[serde(default)]
        bv: f64,
        /// SenML version (at most 10).
        #[serde(default)]
        #[schema(maximum = 10)]
        bver: f64,
        /// Name: the property (without a base name, `device/property` or `device:property`).
        #[serde(default)]
        n: String,
        /// Unit (SenML unit names: `Cel`, `%RH`, `Pa`…); the value is converted to the
        /// property's.
        #[serde(default)]
        u: String,
        /// A numeric value.
        #[serde(default)]
        v: f64,
        /// A string value.
        #[serde(default)]
        vs: String,
        /// A boolean value.
        #[serde(default)]
        vb: bool,
        /// Time, added to `bt`: seconds since the epoch, or relative to now below 2^28 (absent
        /// with no `bt`: when received).
        #[serde(default)]
        t: f64,
    }

    /// The headers of a Sensor.Community push.
    #[derive(Debug, IntoParams)]
    #[into_params(parameter_in = Header)]
    pub(crate) struct SensorCommunityHeaders {
        /// The device: `esp8266-<chipid>` or `esp32-<chipid>`, as the firmware sends it.
        #[param(rename = "X-Sensor", pattern = "^[A-Za-z0-9._:-]+$", max_length = 128)]
        sensor: String,
        /// The sensor's pin: `7`, `9` and `11` (temperature, humidity and pressure sensors,
        /// BME280 on `11`) make a `weather` device, the others (`1`: SDS011 and other
        /// particulate sensors) an `air_quality` one. Absent: the firmware's custom API, every
        /// sensor in one body with prefixed value types.
        #[param(rename = "X-Pin", required = false, pattern = "^(1|3|5|7|9|11|13|15|17)$")]
        pin: String,
    }

    /// A Sensor.Community firmware push.
    #[derive(Debug, ToSchema)]
    pub(crate) struct SensorCommunityPush {
        /// The firmware's version (not stored).
        #[serde(default)]
        #[schema(value_type = Value)]
        software_version: serde_json::Value,
        /// The measurements.
        sensordatavalues: Vec<SensorDataValue>,
    }

    /// One measurement of a Sensor.Community push.
    #[derive(Debug, ToSchema)]
    pub(crate) struct SensorDataValue {
        /// What it measures: `P0`, `P1`, `P2` (PM1, PM10, PM2.5), `temperature`, `humidity`,
        /// `pressure` (Pa), `signal` (Wi-Fi, kept as `rssi`), `noise_LAeq`, `noise_LA_min`,
        /// `noise_LA_max`; prefixed by the sensor in the custom API (`SDS_P1`,
        /// `BME280_temperature`). `pressure_at_sealevel` and the firmware's diagnostics
        /// (`samples`, `min_micro`, `max_micro`, `interval`) are accepted and ignored.
        #[schema(
            pattern = "^(SDS_|SDS011_|BME280_|BMP280_|BMP_|DHT_|SHT3X_|SPS30_|PMS_|HPM_|NPM_|HTU21D_|DS18B20_)?(P0|P1|P2|temperature|humidity|pressure|pressure_at_sealevel|signal|noise_LAeq|noise_LA_min|noise_LA_max|samples|min_micro|max_micro|interval)$"
        )]
        value_type: String,
        /// The value.
        value: SensorCommunityValue,
    }

    /// A Sensor.Community value: a decimal number, as a string (as the firmware sends it) or a
    /// number.
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum SensorCommunityValue {
        /// As a string (`"12.30"`).
        Text(String),
        /// As a number.
        Number(f64),
    }

    /// ThingsBoard device telemetry: one entry, or an array of entries.
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum ThingsboardTelemetry {
        /// Several entries.
        Many(Vec<ThingsboardEntry>),
        /// One entry.
        One(ThingsboardEntry),
    }

    /// A ThingsBoard telemetry entry: values with their time, or values alone (`{"temperature":
    /// 22.5}`, timed when received).
    #[derive(Debug, ToSchema)]
    #[serde(untagged)]
    pub(crate) enum ThingsboardEntry {
        /// `{"ts": …, "values": {…}}`.
        Timed(ThingsboardTimed),
        /// `{"temperature": 22.5}`.
        Plain(IngestValues),
    }

    /// ThingsBoard values with their time.
    #[derive(Debug, ToSchema)]
    pub(crate) struct ThingsboardTimed {
        /// When they were measured: epoch milliseconds as ThingsBoard sends them (any epoch
        /// number or RFC 3339 is read); absent: when received.
        #[serde(default)]
        ts: IngestTime,
        /// The values, by property.
        values: IngestValues,
    }
}
