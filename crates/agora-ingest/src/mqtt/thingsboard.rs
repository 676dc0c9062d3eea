//! ThingsBoard's device API on agora's MQTT endpoint, beyond telemetry: client attributes
//! published and requested, shared attributes pushed, client-side RPC answered
//! (`getSessionLimits`, `getCurrentTime`), server-side RPC delivered and its answer brought back,
//! and the gateway's `connect`/`disconnect`, attributes, attribute requests and RPC.
//!
//! These topics belong to the connection (`v1/devices/me/…` names the device its token is bound
//! to; `v1/gateway/…` the devices the gateway connected): subscriptions to them are kept by the
//! session, not in the shared registry, and a client's own publishes are never echoed back.

use std::collections::HashMap;

use agora_model::DeviceId;
use agora_store::catalog::{AttributeScope, TokenInfo};
use bytes::Bytes;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::broker::topic_matches;
use super::wire::Outcome;
use crate::thingsboard::hub::{LinkGuard, Push};
use crate::thingsboard::{self as tb, device_id_of};
use crate::{Pipeline, Source};

/// Topic filters of the device API a client may subscribe to (its own messages).
const DEVICE_FILTERS: [&str; 4] = [
    "v1/devices/me/attributes",
    "v1/devices/me/attributes/response/+",
    "v1/devices/me/rpc/request/+",
    "v1/devices/me/rpc/response/+",
];
/// The same for gateways.
const GATEWAY_FILTERS: [&str; 3] =
    ["v1/gateway/attributes", "v1/gateway/attributes/response", "v1/gateway/rpc"];

/// Whether `filter` is one of the device API's own topics (or a wildcard over them).
pub(super) fn is_device_api_filter(filter: &str) -> bool {
    DEVICE_FILTERS.iter().chain(&GATEWAY_FILTERS).any(|t| *t == filter || topic_matches(filter, t))
        && (filter.starts_with("v1/devices/me/") || filter.starts_with("v1/gateway/"))
}

/// Whether a topic is one of the device API's, other than telemetry.
pub(super) fn is_control_topic(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('/').collect();
    matches!(
        parts.as_slice(),
        ["v1", "devices", "me", "attributes"]
            | ["v1", "devices", "me", "attributes", "request", _]
            | ["v1", "devices", "me", "rpc", "request", _]
            | ["v1", "devices", "me", "rpc", "response", _]
            | ["v1", "gateway", "connect" | "disconnect" | "attributes" | "rpc"]
            | ["v1", "gateway", "attributes", "request"]
    )
}

/// What a message to the device API did: its acknowledgement, and messages to send back.
pub(super) struct Handled {
    pub(super) outcome: Outcome,
    pub(super) replies: Vec<(String, Bytes)>,
}

impl Handled {
    fn ok() -> Self {
        Self { outcome: Outcome::Accepted, replies: Vec::new() }
    }

    fn reply(topic: String, body: &Json) -> Self {
        Self { outcome: Outcome::Accepted, replies: vec![(topic, Bytes::from(body.to_string()))] }
    }
}

/// A connection's device-API state.
pub(super) struct DeviceApi {
    /// Filters of the device API this connection subscribed to.
    filters: Vec<String>,
    /// Where the hub's messages for this connection's devices arrive.
    pushes: mpsc::UnboundedSender<(DeviceId, Push)>,
    /// The device the token is bound to, linked for the connection's life.
    _direct: Option<LinkGuard>,
    /// Devices a gateway connected: their names as the gateway knows them.
    gateway: HashMap<DeviceId, (String, LinkGuard)>,
    /// Largest payload and messages in flight, for `getSessionLimits`.
    max_payload: usize,
    in_flight: u16,
}

impl DeviceApi {
    pub(super) fn new(
        pipeline: &Pipeline,
        token: &TokenInfo,
        pushes: mpsc::UnboundedSender<(DeviceId, Push)>,
        max_payload: usize,
        in_flight: u16,
    ) -> Self {
        let direct = token.device.as_ref().map(|d| pipeline.devices.attach(d, pushes.clone()));
        Self {
            filters: Vec::new(),
            pushes,
            _direct: direct,
            gateway: HashMap::new(),
            max_payload,
            in_flight,
        }
    }

    pub(super) fn subscribe(&mut self, filter: &str) {
        if !self.filters.iter().any(|f| f == filter) {
            self.filters.push(filter.to_owned());
        }
    }

    /// Forget a filter; true if it was one of the device API's.
    pub(super) fn unsubscribe(&mut self, filter: &str) -> bool {
        let before = self.filters.len();
        self.filters.retain(|f| f != filter);
        before != self.filters.len()
    }

    fn subscribed(&self, topic: &str) -> bool {
        self.filters.iter().any(|f| topic_matches(f, topic))
    }

    /// The message to send for what the hub pushed to `device`, if the client subscribed to it.
    pub(super) fn render(&self, device: &DeviceId, push: &Push) -> Option<(String, Bytes)> {
        let (topic, body) = match self.gateway.get(device) {
            Some((name, _)) => match push {
                Push::Attributes(values) => (
                    "v1/gateway/attributes".to_owned(),
                    serde_json::json!({"device": name, "data": values}),
                ),
                Push::Rpc { id, method, params } => {
                    ("v1/gateway/rpc".to_owned(), tb::gateway_rpc_body(name, *id, method, params))
                }
            },
            None => match push {
                Push::Attributes(values) => {
                    ("v1/devices/me/attributes".to_owned(), Json::Object(values.clone()))
                }
                Push::Rpc { id, method, params } => {
                    (format!("v1/devices/me/rpc/request/{id}"), tb::rpc_body(method, params))
                }
            },
        };
        self.subscribed(&topic).then(|| (topic, Bytes::from(body.to_string())))
    }

    /// Handle a message published to one of the device API's topics ([`is_control_topic`]).
    pub(super) async fn handle(
        &mut self,
        pipeline: &Pipeline,
        token: &TokenInfo,
        topic: &str,
        payload: &[u8],
    ) -> Handled {
        let parts: Vec<&str> = topic.split('/').collect();
        let bound = token.device.as_ref();
        let need_bound = || {
            bound.ok_or_else(|| {
                Outcome::NotAuthorized(format!(
                    "token {:?} is not bound to a device, so it has no {topic}: bind it to one, or use the gateway API",
                    token.name
                ))
            })
        };
        let result: Result<Handled, Outcome> = async {
            match parts.as_slice() {
                ["v1", "devices", "me", "attributes"] => {
                    let device = need_bound()?;
                    let values = tb::decode_attributes(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    let src = Source { name: "mqtt v1/devices/me/attributes", token: Some(token), ..Default::default() };
                    pipeline.connect_device(&src, device, "default").await.map_err(|r| Outcome::PayloadRefused(r.0))?;
                    set_client_attributes(pipeline, device, &values).await?;
                    Ok(Handled::ok())
                }
                ["v1", "devices", "me", "attributes", "request", id] => {
                    let device = need_bound()?;
                    let req = tb::decode_attribute_request(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    let attrs = pipeline.catalog().attributes(device).await.map_err(|e| Outcome::PayloadRefused(e.to_string()))?;
                    Ok(Handled::reply(
                        format!("v1/devices/me/attributes/response/{id}"),
                        &tb::attribute_response(&attrs, &req),
                    ))
                }
                ["v1", "devices", "me", "rpc", "request", id] => {
                    let (method, _params) = tb::decode_rpc_request(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    let now_ms = chrono::Utc::now().timestamp_millis();
                    let answer = tb::client_rpc_answer(&method, now_ms, self.max_payload, self.in_flight);
                    Ok(Handled::reply(format!("v1/devices/me/rpc/response/{id}"), &answer))
                }
                ["v1", "devices", "me", "rpc", "response", id] => {
                    let device = need_bound()?;
                    let answer: Json = serde_json::from_slice(payload).unwrap_or_else(|_| {
                        Json::String(String::from_utf8_lossy(payload).into_owned())
                    });
                    let answered = id.parse().is_ok_and(|id| pipeline.devices.answer(device, id, answer));
                    if !answered {
                        tracing::info!(%device, %topic, "RPC answer to no waiting call (late or unknown)");
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "connect"] => {
                    let (name, tb_type) = tb::decode_gateway_device(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    self.connect(pipeline, token, &name, &tb_type).await?;
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "disconnect"] => {
                    let (name, _) = tb::decode_gateway_device(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    if let Ok(id) = DeviceId::parse(&device_id_of(&name)) {
                        self.gateway.remove(&id);
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "attributes"] => {
                    let all = tb::decode_gateway_attributes(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    for (name, values) in all {
                        let id = self.connect(pipeline, token, &name, "default").await?;
                        set_client_attributes(pipeline, &id, &values).await?;
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "attributes", "request"] => {
                    let req = tb::decode_gateway_attribute_request(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    let id = gateway_device_id(&req.device)?;
                    let attrs = pipeline.catalog().attributes(&id).await.unwrap_or_default();
                    Ok(Handled::reply(
                        "v1/gateway/attributes/response".to_owned(),
                        &tb::gateway_attribute_response(&req, &attrs),
                    ))
                }
                ["v1", "gateway", "rpc"] => {
                    let (name, call, data) = tb::decode_gateway_rpc_reply(payload).map_err(|r| Outcome::PayloadRefused(r.0))?;
                    let id = gateway_device_id(&name)?;
                    if !pipeline.devices.answer(&id, call, data) {
                        tracing::info!(device = %id, call, "gateway RPC answer to no waiting call (late or unknown)");
                    }
                    Ok(Handled::ok())
                }
                _ => Err(Outcome::TopicRefused(format!("unknown topic {topic:?}"))),
            }
        }
        .await;
        match result {
            Ok(h) => h,
            Err(outcome) => {
                let (Outcome::PayloadRefused(reason)
                | Outcome::TopicRefused(reason)
                | Outcome::NotAuthorized(reason)) = &outcome
                else {
                    unreachable!("a refusal has its reason")
                };
                let name = format!("mqtt {topic}");
                let src = Source { name: &name, token: Some(token), ..Default::default() };
                pipeline.reject_whole(&src, reason, payload).await;
                Handled { outcome, replies: Vec::new() }
            }
        }
    }

    /// A device a gateway connects: registered if new (with the kind of its type), and linked
    /// to this connection so that attribute updates and calls reach it through the gateway.
    async fn connect(
        &mut self,
        pipeline: &Pipeline,
        token: &TokenInfo,
        name: &str,
        tb_type: &str,
    ) -> Result<DeviceId, Outcome> {
        let id = gateway_device_id(name)?;
        if !self.gateway.contains_key(&id) {
            let src = Source {
                name: "mqtt v1/gateway/connect",
                token: Some(token),
                ..Default::default()
            };
            pipeline.connect_device(&src, &id, tb_type).await.map_err(|r| {
                if r.0.contains("may only write for device") {
                    Outcome::NotAuthorized(r.0)
                } else {
                    Outcome::PayloadRefused(r.0)
                }
            })?;
            let guard = pipeline.devices.attach(&id, self.pushes.clone());
            self.gateway.insert(id.clone(), (name.to_owned(), guard));
        }
        Ok(id)
    }
}

fn gateway_device_id(name: &str) -> Result<DeviceId, Outcome> {
    DeviceId::parse(&device_id_of(name))
        .map_err(|e| Outcome::PayloadRefused(format!("device name {name:?}: {e}")))
}

async fn set_client_attributes(
    pipeline: &Pipeline,
    device: &DeviceId,
    values: &serde_json::Map<String, Json>,
) -> Result<(), Outcome> {
    pipeline
        .catalog()
        .set_attributes(device, AttributeScope::Client, values)
        .await
        .map_err(|e| Outcome::PayloadRefused(e.to_string()))
}
