//! Device attributes and remote calls: the operators' side (`/api/v1/devices/{id}/attributes`,
//! `/api/v1/devices/{id}/rpc`) and the rest of ThingsBoard's HTTP device API
//! (`/api/v1/{token}/attributes`, `…/attributes/updates`, `…/rpc`), so that devices and
//! ThingsBoard's HTTP SDK talk to agora unchanged. Telemetry is in `ingest.rs`; the MQTT side of
//! the same API is on agora's MQTT endpoint. Messages reach devices through the pipeline's
//! [`agora_ingest::thingsboard::hub::Hub`].

use std::time::Duration;

use agora_ingest::Source;
use agora_ingest::thingsboard::hub::{Push, Wants};
use agora_ingest::thingsboard::{self as tb, AttributeRequest};
use agora_model::DeviceId;
use agora_store::catalog::{AttributeScope, Attributes, TokenInfo};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, Conflict, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json as JsonBody, Path, Query};
use crate::ingest::body_bytes;
use crate::policy::{Scoped, Who};

/// Longest wait for a device's answer, or for an HTTP device's poll.
const MAX_WAIT_MS: u64 = 60_000;

fn device_of(s: &AppState, id: &str) -> ApiResult<DeviceId> {
    let id = DeviceId::parse(id).map_err(|e| ApiError::BadRequest(format!("device id: {e}")))?;
    if s.catalog.device(id.as_str()).is_none() {
        return Err(ApiError::NotFound(format!("no device {id}")));
    }
    Ok(id)
}

/// A device's attributes
///
/// What the device reported (`client`) and what operators set for it (`shared`).
#[utoipa::path(get, path = "/api/v1/devices/{id}/attributes", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    responses(
        (status = 200, description = "Its attributes (a read token is needed even when data is public: they are the device's internals)", body = Attributes),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn device_attributes(
    Scoped(s): Scoped,
    Path(id): Path<String>,
) -> ApiResult<JsonBody<Attributes>> {
    // A device's internals (serial numbers, operators' settings): never public.
    let id = device_of(&s, &id)?;
    Ok(JsonBody(s.catalog.attributes(&id).await?))
}

/// What setting shared attributes did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SharedSet {
    /// The device's attributes now.
    attributes: Attributes,
    /// Whether the change reached the device now (connected over MQTT, through its gateway, or
    /// polling over HTTP); otherwise it reads them when it asks.
    delivered: bool,
}

/// Set shared attributes
///
/// Operators' settings for a device (a target, a schedule, a threshold), pushed at once to the
/// device if it is connected (ThingsBoard's shared attributes). `null` removes an attribute.
#[utoipa::path(post, path = "/api/v1/devices/{id}/attributes", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    request_body(content = Object, description = "Attributes to set, `null` to remove one",
        example = json!({"dim_level": 60, "schedule": "sunset-sunrise"})),
    responses(
        (status = 200, description = "Set", body = SharedSet),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn set_shared_attributes(
    Scoped(s): Scoped,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Json>,
) -> ApiResult<JsonBody<SharedSet>> {
    let id = device_of(&s, &id)?;
    let Json::Object(values) = body else {
        return Err(ApiError::BadRequest("the body must be a JSON object of attributes".into()));
    };
    tb::check_attributes(&values).map_err(|r| ApiError::BadRequest(r.0))?;
    if values.contains_key("deleted") {
        // ThingsBoard tells devices of removed attributes with this key.
        return Err(ApiError::BadRequest(
            "\"deleted\" is reserved (it lists removed attributes in updates to devices)".into(),
        ));
    }
    let (removed, set): (Vec<_>, Vec<_>) = values.into_iter().partition(|(_, v)| v.is_null());
    let set: Map<String, Json> = set.into_iter().collect();
    let removed: Vec<String> = removed.into_iter().map(|(k, _)| k).collect();
    s.catalog.set_attributes(&id, AttributeScope::Shared, &set).await?;
    s.catalog.delete_attributes(&id, AttributeScope::Shared, &removed).await?;
    // One update: an HTTP device's poll takes one message.
    let mut update = set;
    if !removed.is_empty() {
        update.insert("deleted".into(), Json::from(removed));
    }
    let delivered = !update.is_empty() && s.pipeline.devices.push_attributes(&id, update);
    Ok(JsonBody(SharedSet { attributes: s.catalog.attributes(&id).await?, delivered }))
}

/// A call to a device.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RpcCall {
    /// The method, as the device's firmware names it (`setDimLevel`, `reboot`).
    method: String,
    /// Its parameters.
    #[serde(default)]
    #[schema(value_type = Object)]
    params: Json,
    /// How long to wait for the answer, in milliseconds (1 to 60,000; default 10,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 60000)]
    timeout_ms: Option<u64>,
}

/// A device's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RpcAnswer {
    /// What the device answered.
    #[schema(value_type = Object)]
    response: Json,
}

/// Call a method on a device
///
/// A server-side RPC (ThingsBoard's): delivered to the device over its MQTT connection, through
/// its gateway, or to its next HTTP poll, and answered with what the device replies. 409 when the
/// device is not connected, 504 when it does not answer in time.
#[utoipa::path(post, path = "/api/v1/devices/{id}/rpc", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "Device id")),
    request_body = RpcCall,
    responses(
        (status = 200, description = "The device's answer", body = RpcAnswer),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 504, description = "The device did not answer in time", body = crate::doc::Problem, content_type = "application/problem+json"),
        Writes,
    ))]
pub(crate) async fn call_device(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
    JsonBody(call): JsonBody<RpcCall>,
) -> ApiResult<JsonBody<RpcAnswer>> {
    let id = device_of(&s, &id)?;
    if let Some(d) = s.catalog.device(id.as_str()) {
        who.check(
            agora_model::permissions::Action::Command,
            d.commune.as_ref(),
            agora_model::permissions::Domain::of_kind(d.kind.as_str()),
        )?;
    }
    if call.method.is_empty() || call.method.len() > 256 {
        return Err(ApiError::BadRequest("method must be 1 to 256 bytes".into()));
    }
    let timeout = match call.timeout_ms {
        None => 10_000,
        Some(t) if (1..=MAX_WAIT_MS).contains(&t) => t,
        Some(t) => {
            return Err(ApiError::BadRequest(format!(
                "timeout_ms must be 1 to {MAX_WAIT_MS}, not {t}"
            )));
        }
    };
    match s
        .pipeline
        .devices
        .call(&id, &call.method, call.params, Duration::from_millis(timeout))
        .await
    {
        Ok(response) => Ok(JsonBody(RpcAnswer { response })),
        Err(e @ agora_ingest::Error::NotConnected(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ agora_ingest::Error::Busy) => Err(ApiError::TooManyConnections(e.to_string())),
        Err(e) => Err(ApiError::DeviceTimeout(e.to_string())),
    }
}

/// The device a ThingsBoard access token (in the path) stands for.
fn device_token(s: &AppState, secret: &str) -> ApiResult<(TokenInfo, DeviceId)> {
    let token = crate::auth::device_token(s, secret)?;
    let device = token.device.clone().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "token {:?} is not bound to a device: ThingsBoard device tokens must be",
            token.name
        ))
    })?;
    Ok((token, device))
}

/// Report client attributes (ThingsBoard HTTP device API)
///
/// `{"model": "X1", "firmware": "1.2"}`, kept as the device's client attributes. The device is
/// registered on first sight, as its telemetry would register it.
#[utoipa::path(post, path = "/api/v1/{token}/attributes", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token: an ingest token bound to the device")),
    request_body(content = Object, description = "Attributes", example = json!({"model": "X1", "firmware": "1.2"})),
    responses(
        (status = 204, description = "Kept"),
        Writes,
    ))]
pub(crate) async fn post_attributes(
    State(s): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (token, device) = device_token(&s, &secret)?;
    let body = body_bytes(&s, &headers, body)?;
    let values = tb::decode_attributes(&body).map_err(|r| ApiError::BadRequest(r.0))?;
    let src =
        Source { name: "http thingsboard attributes", token: Some(&token), ..Default::default() };
    s.pipeline
        .connect_device(&src, &device, "default")
        .await
        .map_err(|r| ApiError::BadRequest(r.0))?;
    s.catalog.set_attributes(&device, AttributeScope::Client, &values).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Query of `GET /api/v1/{token}/attributes` (documentation only: the raw query is read, so that
/// ThingsBoard's SDK's `client_keys=a&client_keys=b` works as `clientKeys=a,b`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct KeysParams {
    /// Client attribute keys, comma-separated; none given (in either scope): all attributes.
    #[serde(rename = "clientKeys")]
    client_keys: Option<String>,
    /// Shared attribute keys, comma-separated.
    #[serde(rename = "sharedKeys")]
    shared_keys: Option<String>,
}

/// Read attributes (ThingsBoard HTTP device API)
///
/// `{"client": {...}, "shared": {...}}`; a scope is left out when nothing in it was found.
#[utoipa::path(get, path = "/api/v1/{token}/attributes", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token"), KeysParams),
    responses(
        (status = 200, description = "The attributes asked for", body = Object),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn get_attributes(
    State(s): State<AppState>,
    Path(secret): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<JsonBody<Json>> {
    let (_, device) = device_token(&s, &secret)?;
    let mut req = AttributeRequest::default();
    for (k, v) in form_pairs(query.as_deref().unwrap_or("")) {
        let scope = match k.as_str() {
            "clientKeys" | "client_keys" => &mut req.client,
            "sharedKeys" | "shared_keys" => &mut req.shared,
            _ => continue,
        };
        let keys = scope.get_or_insert_with(Vec::new);
        keys.extend(v.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned));
    }
    let attrs = if s.catalog.device(device.as_str()).is_some() {
        s.catalog.attributes(&device).await?
    } else {
        Attributes::default()
    };
    Ok(JsonBody(tb::attribute_response(&attrs, &req)))
}

/// `application/x-www-form-urlencoded` pairs, decoded, repeated keys kept.
fn form_pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap_or_default()
}

/// Query of the HTTP device API's long polls.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PollParams {
    /// How long to wait, in milliseconds (at most 60,000; default 30,000).
    #[param(minimum = 0)]
    timeout: Option<u64>,
}

async fn poll(s: &AppState, device: &DeviceId, wants: Wants, timeout: Option<u64>) -> Option<Push> {
    let wait = Duration::from_millis(match timeout {
        None | Some(0) => 30_000,
        Some(t) => t.min(MAX_WAIT_MS),
    });
    let mut shutdown = s.shutdown.clone();
    tokio::select! {
        p = s.pipeline.devices.poll(device, wants, wait) => p,
        _ = shutdown.wait_for(|v| *v) => None,
    }
}

/// Wait for shared attribute updates (ThingsBoard HTTP device API)
///
/// A long poll: the next change of the device's shared attributes, or 408 with an empty body when
/// none came in time (poll again).
#[utoipa::path(get, path = "/api/v1/{token}/attributes/updates", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token"), PollParams),
    responses(
        (status = 200, description = "Attributes that changed (`{\"deleted\": [...]}` for removed ones)", body = Object),
        (status = 408, description = "Nothing changed in time: poll again"),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn attribute_updates(
    State(s): State<AppState>,
    Path(secret): Path<String>,
    Query(q): Query<PollParams>,
) -> ApiResult<Response> {
    let (_, device) = device_token(&s, &secret)?;
    Ok(match poll(&s, &device, Wants::Attributes, q.timeout).await {
        Some(Push::Attributes(values)) => JsonBody(Json::Object(values)).into_response(),
        _ => StatusCode::REQUEST_TIMEOUT.into_response(),
    })
}

/// Wait for calls (ThingsBoard HTTP device API)
///
/// A long poll: the next server-side call, `{"id": 5, "method": "setDimLevel", "params": {...}}`,
/// or 408 with an empty body when none came in time. Answer with `POST /api/v1/{token}/rpc/{id}`.
#[utoipa::path(get, path = "/api/v1/{token}/rpc", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token"), PollParams),
    responses(
        (status = 200, description = "A call", body = Object),
        (status = 408, description = "No call in time: poll again"),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn rpc_poll(
    State(s): State<AppState>,
    Path(secret): Path<String>,
    Query(q): Query<PollParams>,
) -> ApiResult<Response> {
    let (_, device) = device_token(&s, &secret)?;
    Ok(match poll(&s, &device, Wants::Rpc, q.timeout).await {
        Some(Push::Rpc { id, method, params }) => {
            JsonBody(serde_json::json!({"id": id, "method": method, "params": params}))
                .into_response()
        }
        _ => StatusCode::REQUEST_TIMEOUT.into_response(),
    })
}

/// Answer a call (ThingsBoard HTTP device API)
///
/// The device's answer to call `id`, any JSON. An answer to a call that no longer waits (timed
/// out) is dropped.
#[utoipa::path(post, path = "/api/v1/{token}/rpc/{id}", tag = "ingest", security(()),
    params(
        ("token" = String, Path, description = "The device's access token"),
        ("id" = u64, Path, description = "The call's id"),
    ),
    request_body(content = Object, description = "The answer"),
    responses(
        (status = 204, description = "Taken"),
        Writes,
    ))]
pub(crate) async fn rpc_reply(
    State(s): State<AppState>,
    Path((secret, id)): Path<(String, u64)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (_, device) = device_token(&s, &secret)?;
    let body = body_bytes(&s, &headers, body)?;
    let answer: Json = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the answer is not valid JSON: {e}")))?;
    if !s.pipeline.devices.answer(&device, id, answer) {
        tracing::info!(%device, id, "RPC answer to no waiting call (late or unknown)");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Call the platform (ThingsBoard HTTP device API)
///
/// A device's own call: `getCurrentTime` (`{"time": <ms>}`) and `getSessionLimits`; another
/// method is answered `{"error": …}`.
#[utoipa::path(post, path = "/api/v1/{token}/rpc", tag = "ingest", security(()),
    params(("token" = String, Path, description = "The device's access token")),
    request_body(content = Object, description = "The call", example = json!({"method": "getCurrentTime", "params": {}})),
    responses(
        (status = 200, description = "The answer", body = Object),
        Writes,
    ))]
pub(crate) async fn client_rpc(
    State(s): State<AppState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<JsonBody<Json>> {
    let _ = device_token(&s, &secret)?;
    let body = body_bytes(&s, &headers, body)?;
    let (method, _) = tb::decode_rpc_request(&body).map_err(|r| ApiError::BadRequest(r.0))?;
    let now_ms = s.clock.now().as_millis();
    Ok(JsonBody(tb::client_rpc_answer(&method, now_ms, s.config.max_body_bytes, 1)))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    device_attributes,
    set_shared_attributes,
    call_device,
    post_attributes,
    get_attributes,
    attribute_updates,
    rpc_poll,
    rpc_reply,
    client_rpc
))]
pub(crate) struct Doc;
