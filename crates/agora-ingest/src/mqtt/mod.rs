//! Subscriptions to MQTT brokers (the city's Mosquitto, ChirpStack's broker, a gateway's): each
//! subscription names a broker, topic filters (shared subscriptions `$share/agora/…` included)
//! and the payload format; messages go through the same pipeline as every other source.
//!
//! Sessions are persistent (fixed client id, no clean session) and acknowledgements manual: a
//! QoS 1 message is acknowledged only after its points are durable, so what the broker holds
//! while agora restarts is delivered afterwards. A redelivered message writes the same points at
//! the same timestamps, which replaces them: stored once. ChirpStack uplinks are also deduplicated
//! on their `deduplicationId`.

pub mod broker;
pub mod sta;
mod thingsboard;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agora_mqtt::Broker;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::chirpstack::ByteField;
use crate::format::{Format, Message, MessageFormat};
use crate::record::Decoded;
use crate::{Error, Refusal};
use crate::{Pipeline, Source};

/// One subscription, as written in `agora.toml` under `[[mqtt.subscriptions]]`: the broker's
/// settings (`host`, `port`, `username`, `password`, `tls`, `ca_file`, `client_cert_file`,
/// `client_key_file`, as for `[alerts.mqtt]`) beside its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawSubscription")]
pub struct Subscription {
    /// Name, used in logs and dead letters.
    pub name: String,
    /// How to reach the broker.
    pub broker: Broker,
    /// Client id (default `agora-{name}`); keep it stable so the broker keeps the session.
    pub client_id: Option<String>,
    /// Topic filters.
    pub topics: Vec<String>,
    /// Payload format.
    pub format: MessageFormat,
    /// Byte layouts per LoRaWAN device profile (ChirpStack payloads without a codec).
    pub layouts: HashMap<String, Vec<ByteField>>,
}

/// A subscription as read, before unknown settings are refused.
#[derive(Deserialize)]
struct RawSubscription {
    name: String,
    #[serde(flatten)]
    broker: Broker,
    #[serde(default)]
    client_id: Option<String>,
    topics: Vec<String>,
    format: MessageFormat,
    #[serde(default)]
    layouts: HashMap<String, Vec<ByteField>>,
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

impl TryFrom<RawSubscription> for Subscription {
    type Error = String;
    fn try_from(r: RawSubscription) -> Result<Self, String> {
        agora_mqtt::refuse_unknown(&format!("subscription {:?}", r.name), &r.unknown)?;
        Ok(Self {
            name: r.name,
            broker: r.broker,
            client_id: r.client_id,
            topics: r.topics,
            format: r.format,
            layouts: r.layouts,
        })
    }
}

impl Subscription {
    /// How to reach the broker (checked at start-up so that a wrong path stops agora with a clear
    /// message).
    pub fn transport(&self) -> Result<rumqttc::Transport, Error> {
        self.broker
            .transport(&format!("subscription {:?}", self.name))
            .map_err(|e| Error::Config(e.0))
    }
}

/// Aborts a task when dropped (the batch writer dies with its subscription).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Most messages ingested (and acknowledged) together.
const MAX_BATCH: usize = 2_000;

/// Run a subscription until the task is aborted: connect, subscribe, reconnect with back-off.
/// One task drives the connection; a second one ingests what arrived in batches (one WAL commit
/// for all messages waiting), then acknowledges them.
pub fn spawn(sub: Subscription, pipeline: Arc<Pipeline>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client_id = sub.client_id.clone().unwrap_or_else(|| format!("agora-{}", sub.name));
        let mut opts = match sub.broker.options(client_id, &format!("subscription {:?}", sub.name))
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(subscription = %sub.name, error = %e, "subscription not started");
                return;
            }
        };
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(false);
        opts.set_manual_acks(true);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        opts.set_inflight(1000);
        let (client, mut events) = AsyncClient::new(opts, 4096);
        // Unbounded on purpose: the connection task must never wait on the writer, or the
        // writer's acknowledgements (sent through the connection) would deadlock with it. What
        // waits here is bounded by the broker's in-flight window, as nothing is acknowledged
        // before it is stored.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<rumqttc::Publish>();
        let writer = {
            let (sub, client) = (sub.clone(), client.clone());
            AbortOnDrop(tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    // Not acknowledged when storage failed: the broker delivers them again later.
                    if handle_batch(&sub, &pipeline, &batch).await {
                        for p in &batch {
                            if let Err(e) = client.ack(p).await {
                                tracing::warn!(subscription = %sub.name, error = %e, "cannot acknowledge a message");
                            }
                        }
                    }
                }
            }))
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff = Duration::from_millis(500);
                    tracing::info!(subscription = %sub.name, session_present = ack.session_present, "connected to the MQTT broker");
                    if !ack.session_present {
                        for t in &sub.topics {
                            if let Err(e) = client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                                tracing::error!(subscription = %sub.name, topic = %t, error = %e, "cannot subscribe");
                            }
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(subscription = %sub.name, error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
        drop(writer);
    })
}

/// Ingest messages together; returns whether they may be acknowledged.
///
/// Deduplication ids are remembered, and refused input kept as dead letters, only once the batch
/// is stored: a batch that failed is delivered again by the broker, and must then be handled as
/// the first time (not dropped as a duplicate, not dead-lettered twice).
async fn handle_batch(sub: &Subscription, pipeline: &Pipeline, batch: &[rumqttc::Publish]) -> bool {
    let name = format!("mqtt {}", sub.name);
    let src = Source { name: &name, ..Default::default() };
    let mut all = Decoded::default();
    let mut ids: Vec<String> = Vec::new();
    // (topic, format, why, payload) of what is refused.
    let mut refused: Vec<(&str, Option<Format>, String, &[u8])> = Vec::new();
    for p in batch {
        let format = sub.format.on_topic(&p.topic, &sub.name);
        match format.as_ref().map_err(Refusal::clone).and_then(|f| pipeline.decode(f, &p.payload)) {
            Ok(Message { decoded, dedup_id }) => {
                if let Some(id) = dedup_id {
                    if pipeline.uplink_seen(&id) || ids.contains(&id) {
                        tracing::debug!(subscription = %sub.name, id, "duplicate uplink ignored");
                        continue;
                    }
                    ids.push(id);
                }
                let decoded = decoded.into_owned();
                all.records.extend(decoded.records);
                // What the decoder refused is kept once per message, whole and in its own
                // format, so that it replays (a payload without codec, once a layout exists).
                if !decoded.errors.is_empty() {
                    let reasons: Vec<&str> =
                        decoded.errors.iter().map(|e| e.reason.as_str()).collect();
                    refused.push((&p.topic, format.ok(), reasons.join("; "), &p.payload));
                }
            }
            Err(reason) => refused.push((&p.topic, format.ok(), reason.0, &p.payload)),
        }
    }
    if (!all.records.is_empty() || !all.errors.is_empty())
        && let Err(e) = pipeline.ingest(&src, all).await
    {
        tracing::error!(subscription = %sub.name, error = %e, "storing MQTT messages failed");
        return false;
    }
    pipeline.remember_uplinks(&ids);
    for (topic, format, why, payload) in refused {
        let one = format!("mqtt {} {topic}", sub.name);
        let src = Source { name: &one, format, ..Default::default() };
        pipeline.reject_whole(&src, &why, payload).await;
    }
    true
}
