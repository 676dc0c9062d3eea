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
use super::wire::{Outcome, SubRefusal};
use crate::thingsboard::hub::{Hub, LinkGuard, Push};
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

/// Filters a connection may hold on the device API's topics.
const MAX_FILTERS: usize = 16;
/// Devices one gateway connection may connect.
const MAX_GATEWAY_DEVICES: usize = 10_000;

/// What a message to the device API did: its acknowledgement, and a message to send back.
pub(super) struct Handled {
    pub(super) outcome: Outcome,
    pub(super) reply: Option<(String, Bytes)>,
}

/// Storage failed while handling a message: it is not acknowledged (the client sends it again).
#[derive(Debug)]
pub(super) struct StorageFailed(pub(super) String);

impl Handled {
    fn ok() -> Self {
        Self { outcome: Outcome::Accepted, reply: None }
    }
}

/// A refusal of the message, or a storage failure.
enum Failure {
    Refused(Outcome),
    Storage(String),
}

impl From<Outcome> for Failure {
    fn from(o: Outcome) -> Self {
        Failure::Refused(o)
    }
}

/// A catalog error: the input's fault (refused, kept as a dead letter) or storage's (not
/// acknowledged).
fn catalog_failure(e: agora_store::Error) -> Failure {
    use agora_store::Error as E;
    match e {
        E::Invalid(m) | E::Conflict(m) | E::Forbidden(m) => {
            Failure::Refused(Outcome::PayloadRefused(m))
        }
        e @ E::NotFound { .. } => Failure::Refused(Outcome::PayloadRefused(e.to_string())),
        other => Failure::Storage(other.to_string()),
    }
}

fn payload(r: crate::Refusal) -> Failure {
    Failure::Refused(Outcome::PayloadRefused(r.0))
}

/// A connection's device-API state.
pub(super) struct DeviceApi {
    hub: Hub,
    /// Filters of the device API this connection subscribed to.
    filters: Vec<String>,
    /// Where the hub's messages for this connection's devices arrive.
    pushes: mpsc::UnboundedSender<(DeviceId, Push)>,
    /// The device the token is bound to, and its link once the client listens for pushes.
    direct: Option<(DeviceId, Option<LinkGuard>)>,
    /// Devices a gateway connected: their names as the gateway knows them, and their links once
    /// the gateway listens for pushes.
    gateway: HashMap<DeviceId, (String, Option<LinkGuard>)>,
    /// Largest message the client takes, and messages in flight, for `getSessionLimits`.
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
        Self {
            hub: pipeline.devices.clone(),
            filters: Vec::new(),
            pushes,
            direct: token.device.clone().map(|d| (d, None)),
            gateway: HashMap::new(),
            max_payload,
            in_flight,
        }
    }

    pub(super) fn subscribe(&mut self, filter: &str) -> Result<(), SubRefusal> {
        if !self.filters.iter().any(|f| f == filter) {
            if self.filters.len() >= MAX_FILTERS {
                return Err(SubRefusal::TooMany(format!(
                    "at most {MAX_FILTERS} subscriptions to the device API per connection"
                )));
            }
            self.filters.push(filter.to_owned());
        }
        self.relink();
        Ok(())
    }

    /// Forget a filter; true if it was one of the device API's.
    pub(super) fn unsubscribe(&mut self, filter: &str) -> bool {
        let before = self.filters.len();
        self.filters.retain(|f| f != filter);
        let was = before != self.filters.len();
        self.relink();
        was
    }

    fn subscribed(&self, topic: &str) -> bool {
        self.filters.iter().any(|f| topic_matches(f, topic))
    }

    /// Link the connection's devices to the hub while the client listens for what is pushed to
    /// them, and only then: a connection that does not listen must not swallow calls.
    fn relink(&mut self) {
        let direct = self.subscribed("v1/devices/me/attributes")
            || self.subscribed("v1/devices/me/rpc/request/1");
        if let Some((d, link)) = &mut self.direct {
            match (direct, link.is_some()) {
                (true, false) => *link = Some(self.hub.attach(d, self.pushes.clone())),
                (false, true) => *link = None,
                _ => {}
            }
        }
        let gateway = self.subscribed("v1/gateway/attributes") || self.subscribed("v1/gateway/rpc");
        for (d, (_, link)) in &mut self.gateway {
            match (gateway, link.is_some()) {
                (true, false) => *link = Some(self.hub.attach(d, self.pushes.clone())),
                (false, true) => *link = None,
                _ => {}
            }
        }
    }

    /// The message to send for what the hub pushed to `device`, if the client subscribed to it.
    pub(super) fn render(&self, device: &DeviceId, push: &Push) -> Option<(String, Bytes)> {
        let (topic, body) = if let Some((name, _)) = self.gateway.get(device) {
            match push {
                Push::Attributes(values) => (
                    "v1/gateway/attributes".to_owned(),
                    serde_json::json!({"device": name, "data": values}),
                ),
                Push::Rpc { id, method, params } => {
                    ("v1/gateway/rpc".to_owned(), tb::gateway_rpc_body(name, *id, method, params))
                }
            }
        } else if self.direct.as_ref().is_some_and(|(d, _)| d == device) {
            match push {
                Push::Attributes(values) => {
                    ("v1/devices/me/attributes".to_owned(), Json::Object(values.clone()))
                }
                Push::Rpc { id, method, params } => {
                    (format!("v1/devices/me/rpc/request/{id}"), tb::rpc_body(method, params))
                }
            }
        } else {
            // A device the gateway disconnected since: not this connection's any more.
            return None;
        };
        self.subscribed(&topic).then(|| (topic, Bytes::from(body.to_string())))
    }

    /// An answer to send back, or an error in its place when it is larger than the client takes.
    fn reply(&self, topic: String, body: &Json) -> Handled {
        let mut text = body.to_string();
        // The topic and the packet's own bytes come on top of the body.
        let room = self.max_payload.saturating_sub(topic.len() + 64);
        if text.len() > room {
            text = serde_json::json!({"error": format!(
                "the answer is {} bytes, more than the {room} this connection takes: ask for fewer keys",
                text.len()
            )})
            .to_string();
        }
        Handled { outcome: Outcome::Accepted, reply: Some((topic, Bytes::from(text))) }
    }

    /// A device this gateway connection connected; `name` as the gateway knows it.
    fn gateway_member(&self, name: &str) -> Result<DeviceId, Outcome> {
        let id = gateway_device_id(name)?;
        if self.gateway.contains_key(&id) {
            Ok(id)
        } else {
            Err(Outcome::NotAuthorized(format!(
                "device {name:?} is not connected through this gateway: publish {{\"device\": {name:?}}} to v1/gateway/connect first"
            )))
        }
    }

    /// Handle a message published to one of the device API's topics ([`is_control_topic`]).
    pub(super) async fn handle(
        &mut self,
        pipeline: &Pipeline,
        token: &TokenInfo,
        topic: &str,
        payload: &[u8],
    ) -> Result<Handled, StorageFailed> {
        let parts: Vec<&str> = topic.split('/').collect();
        let bound = token.device.clone();
        let need_bound = || {
            bound.clone().ok_or_else(|| {
                Failure::Refused(Outcome::NotAuthorized(format!(
                    "token {:?} is not bound to a device, so it has no {topic}: bind it to one, or use the gateway API",
                    token.name
                )))
            })
        };
        let result: Result<Handled, Failure> = async {
            match parts.as_slice() {
                ["v1", "devices", "me", "attributes"] => {
                    let device = need_bound()?;
                    let values = tb::decode_attributes(payload).map_err(payload_refused)?;
                    let src = Source { name: "mqtt v1/devices/me/attributes", token: Some(token), ..Default::default() };
                    pipeline.connect_device(&src, &device, "default").await.map_err(payload_refused)?;
                    set_client_attributes(pipeline, &device, &values).await?;
                    Ok(Handled::ok())
                }
                ["v1", "devices", "me", "attributes", "request", id] => {
                    let device = need_bound()?;
                    let req = tb::decode_attribute_request(payload).map_err(payload_refused)?;
                    let attrs = match pipeline.catalog().device(device.as_str()) {
                        Some(_) => pipeline.catalog().attributes(&device).await.map_err(catalog_failure)?,
                        None => Default::default(),
                    };
                    Ok(self.reply(
                        format!("v1/devices/me/attributes/response/{id}"),
                        &tb::attribute_response(&attrs, &req),
                    ))
                }
                ["v1", "devices", "me", "rpc", "request", id] => {
                    let (method, _params) = tb::decode_rpc_request(payload).map_err(payload_refused)?;
                    let now_ms = pipeline.clock().now().as_millis();
                    let answer = tb::client_rpc_answer(&method, now_ms, self.max_payload, self.in_flight);
                    Ok(self.reply(format!("v1/devices/me/rpc/response/{id}"), &answer))
                }
                ["v1", "devices", "me", "rpc", "response", id] => {
                    let device = need_bound()?;
                    let answer: Json = serde_json::from_slice(payload).unwrap_or_else(|_| {
                        Json::String(String::from_utf8_lossy(payload).into_owned())
                    });
                    let answered = id.parse().is_ok_and(|id| pipeline.devices.answer(&device, id, answer));
                    if !answered {
                        tracing::info!(%device, %topic, "RPC answer to no waiting call (late or unknown)");
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "connect"] => {
                    let (name, tb_type) = tb::decode_gateway_device(payload).map_err(payload_refused)?;
                    self.connect(pipeline, token, &name, &tb_type).await?;
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "disconnect"] => {
                    let (name, _) = tb::decode_gateway_device(payload).map_err(payload_refused)?;
                    if let Ok(id) = DeviceId::parse(&device_id_of(&name)) {
                        self.gateway.remove(&id);
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "attributes"] => {
                    let all = tb::decode_gateway_attributes(payload).map_err(payload_refused)?;
                    for (name, values) in all {
                        // ThingsBoard connects a device the gateway speaks for.
                        let id = self.connect(pipeline, token, &name, "default").await?;
                        set_client_attributes(pipeline, &id, &values).await?;
                    }
                    Ok(Handled::ok())
                }
                ["v1", "gateway", "attributes", "request"] => {
                    let req = tb::decode_gateway_attribute_request(payload).map_err(payload_refused)?;
                    let id = self.gateway_member(&req.device)?;
                    let attrs = pipeline.catalog().attributes(&id).await.map_err(catalog_failure)?;
                    Ok(self.reply(
                        "v1/gateway/attributes/response".to_owned(),
                        &tb::gateway_attribute_response(&req, &attrs),
                    ))
                }
                ["v1", "gateway", "rpc"] => {
                    let (name, call, data) = tb::decode_gateway_rpc_reply(payload).map_err(payload_refused)?;
                    let id = self.gateway_member(&name)?;
                    if !pipeline.devices.answer(&id, call, data) {
                        tracing::info!(device = %id, call, "gateway RPC answer to no waiting call (late or unknown)");
                    }
                    Ok(Handled::ok())
                }
                _ => Err(Outcome::TopicRefused(format!("unknown topic {topic:?}")).into()),
            }
        }
        .await;
        match result {
            Ok(h) => Ok(h),
            Err(Failure::Storage(why)) => Err(StorageFailed(why)),
            Err(Failure::Refused(outcome)) => {
                let (Outcome::PayloadRefused(reason)
                | Outcome::TopicRefused(reason)
                | Outcome::NotAuthorized(reason)) = &outcome
                else {
                    unreachable!("a refusal has its reason")
                };
                let name = format!("mqtt {topic}");
                let src = Source { name: &name, token: Some(token), ..Default::default() };
                pipeline.reject_whole(&src, reason, payload).await;
                Ok(Handled { outcome, reply: None })
            }
        }
    }

    /// A device a gateway connects: registered if new (with the kind of its type), and linked
    /// to this connection so that attribute updates and calls reach it through the gateway.
    /// A device with a token of its own connects itself; a token bound to a device speaks for
    /// that device only.
    async fn connect(
        &mut self,
        pipeline: &Pipeline,
        token: &TokenInfo,
        name: &str,
        tb_type: &str,
    ) -> Result<DeviceId, Failure> {
        let id = gateway_device_id(name)?;
        if self.gateway.contains_key(&id) {
            return Ok(id);
        }
        if let Some(bound) = &token.device
            && bound != &id
        {
            return Err(Outcome::NotAuthorized(format!(
                "this token may only write for device {bound}, not {id}"
            ))
            .into());
        }
        if token.device.is_none()
            && pipeline.catalog().tokens().iter().any(|t| t.device.as_ref() == Some(&id))
        {
            return Err(Outcome::NotAuthorized(format!(
                "device {id} has a token of its own: it connects itself, not through a gateway"
            ))
            .into());
        }
        if self.gateway.len() >= MAX_GATEWAY_DEVICES {
            return Err(Outcome::NotAuthorized(format!(
                "a gateway connection connects at most {MAX_GATEWAY_DEVICES} devices"
            ))
            .into());
        }
        let src =
            Source { name: "mqtt v1/gateway/connect", token: Some(token), ..Default::default() };
        pipeline.connect_device(&src, &id, tb_type).await.map_err(payload_refused)?;
        self.gateway.insert(id.clone(), (name.to_owned(), None));
        self.relink();
        Ok(id)
    }
}

fn payload_refused(r: crate::Refusal) -> Failure {
    payload(r)
}

fn gateway_device_id(name: &str) -> Result<DeviceId, Outcome> {
    DeviceId::parse(&device_id_of(name))
        .map_err(|e| Outcome::PayloadRefused(format!("device name {name:?}: {e}")))
}

async fn set_client_attributes(
    pipeline: &Pipeline,
    device: &DeviceId,
    values: &serde_json::Map<String, Json>,
) -> Result<(), Failure> {
    pipeline
        .catalog()
        .set_attributes(device, AttributeScope::Client, values)
        .await
        .map_err(catalog_failure)
}
