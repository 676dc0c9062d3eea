//! The API's OpenAPI 3.1 document, generated from the handlers' annotations and the answers' own
//! types: what `GET /api/v1/openapi.json` serves, and what the test suite checks the server
//! against (schemathesis). Each module declares its operations in its own `Doc`; they are merged
//! here.

use std::sync::LazyLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

/// An error, as RFC 9457 problem details with a stable `code`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct Problem {
    /// `urn:agora:problem:{code}`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The HTTP status's reason phrase.
    pub(crate) title: String,
    /// The HTTP status.
    pub(crate) status: u16,
    /// Stable snake_case code (`bad_request`, `not_found`, `query_too_large`…).
    pub(crate) code: String,
    /// What went wrong, naming the value at fault and how to fix it.
    pub(crate) detail: String,
    /// The same as `detail` (InfluxDB clients read `error`).
    pub(crate) error: String,
    /// Partial writes: points stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) accepted: Option<u64>,
    /// Partial writes: the first refused lines, records or fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rejected: Option<Vec<Refused>>,
    /// Partial writes: how many were refused in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rejected_count: Option<u64>,
}

/// One refused line, record or field of a write.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct Refused {
    /// Its line or record number, 1-based.
    pub(crate) line: u32,
    /// Why, naming the value at fault.
    pub(crate) reason: String,
}

macro_rules! problem_responses {
    ($($name:ident = $desc:literal;)*) => {$(
        #[derive(ToResponse)]
        #[response(description = $desc, content_type = "application/problem+json")]
        #[allow(dead_code)]
        pub(crate) struct $name(Problem);
    )*};
}

problem_responses! {
    BadRequest = "A parameter or the body is invalid; `detail` names it";
    Unauthorized = "No token, or an unknown or revoked one";
    Forbidden = "The token lacks the scope (or the device binding) this needs";
    NotFound = "Nothing with this identifier";
    Conflict = "It conflicts with what exists";
    PayloadTooLarge = "The body is over the size limit";
    UnsupportedMediaType = "The body's encoding or content type is not supported";
    Unprocessable = "Understood but refused: an invalid rule, or a query over the raw-point budget";
    TooManyRequests = "A rate limit is reached; retry after `Retry-After` seconds";
    Unavailable = "Storage is unavailable or a connection cap is reached; nothing was stored; retry after `Retry-After` seconds";
}

/// A group of the problem responses above, by status, for operations that answer all of them.
fn group(
    members: &[(&str, &str)],
) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::response::Response>>
{
    members
        .iter()
        .map(|(status, name)| {
            (
                (*status).to_owned(),
                utoipa::openapi::RefOr::Ref(utoipa::openapi::Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// What any operation with a token can answer besides its own: 401, 403, 429.
pub(crate) struct Reads;

impl utoipa::IntoResponses for Reads {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        group(&[("401", "Unauthorized"), ("403", "Forbidden"), ("429", "TooManyRequests")])
    }
}

/// What any operation taking a body and storing something can answer besides its own: 400, 401,
/// 403, 413, 415, 429, 503.
pub(crate) struct Writes;

impl utoipa::IntoResponses for Writes {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        group(&[
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("429", "TooManyRequests"),
            ("503", "Unavailable"),
        ])
    }
}

/// Tokens go in `Authorization: Bearer`.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "agora",
        description = "Open urban data platform: ingest, query and publish a city's sensor data. \
            Tokens go in `Authorization: Bearer <token>` (or InfluxDB's `Authorization: Token \
            <token>`). Errors are RFC 9457 problem+json with a stable `code`.",
        license(name = "AGPL-3.0-or-later"),
    ),
    modifiers(&Security),
    components(
        schemas(Problem, Refused),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
            UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable
        )
    ),
    tags(
        (name = "health", description = "Liveness, readiness, metrics and this document"),
        (name = "ingest", description = "Writes: InfluxDB, native JSON, SenML, Sensor.Community, ThingsBoard, CSV"),
        (name = "catalog", description = "Communes, places, devices, series and properties"),
        (name = "query", description = "Raw points, aggregates and latest values"),
        (name = "dashboard", description = "Views shaped for the dashboard: map, charts, fleet, live feed"),
        (name = "alerts", description = "Rules, alerts and their deliveries"),
        (name = "indicators", description = "Environmental indicators: official air-quality indices, noise and heat"),
        (name = "services", description = "The departments' services: street lighting (energy, cost, burning against the sun, maintenance, dimming scenarios), bins (fill rates, time to full, rounds) and irrigation"),
        (name = "admin", description = "Tokens and the dead-letter log"),
        (name = "standards", description = "OGC SensorThings API 1.1 (/v1.1) and NGSI-LD (/ngsi-ld/v1): agora's catalogue and store as the standards describe them"),
        (name = "reports", description = "Citizens' reports (signalements): filed by anyone from the map, a place's page or a kiosk, followed by the reporter, handled by operators as tickets, counted"),
        (name = "visitors", description = "Visitors: points of interest in several languages, discovery tours with their routes and QR codes, cool routes on hot afternoons"),
        (name = "open-data", description = "Published datasets and their DCAT-AP catalogue (the records are served by the Explore API v2.1 under /api/explore/v2.1)"),
    )
)]
struct Base;

/// The whole document.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    for part in [
        crate::admin::Doc::openapi(),
        crate::ingest::Doc::openapi(),
        crate::thingsboard::Doc::openapi(),
        crate::influx::Doc::openapi(),
        crate::query::Doc::openapi(),
        crate::views::Doc::openapi(),
        crate::indicators::Doc::openapi(),
        crate::live::Doc::openapi(),
        crate::alerting::Doc::openapi(),
        crate::audit::Doc::openapi(),
        crate::privacy::Doc::openapi(),
        crate::people::Doc::openapi(),
        crate::commerce::Doc::openapi(),
        crate::commerce_calendar::Doc::openapi(),
        crate::forecast::Doc::openapi(),
        crate::services::Doc::openapi(),
        crate::proximity::Doc::openapi(),
        crate::wellbeing::Doc::openapi(),
        crate::reports::Doc::openapi(),
        crate::visitors::Doc::openapi(),
        crate::open_data::Doc::openapi(),
        crate::explore::Doc::openapi(),
        crate::sta::Doc::openapi(),
        crate::ngsi::Doc::openapi(),
        crate::metrics::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

/// The document as served, built once.
pub(crate) static JSON: LazyLock<String> =
    LazyLock::new(|| document().to_pretty_json().unwrap_or_default());
