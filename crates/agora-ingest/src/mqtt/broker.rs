//! agora's own MQTT 3.1.1 endpoint, so devices publish to agora directly: no separate broker to
//! run for a pilot city. Devices authenticate with an ingest token as user name (ThingsBoard's
//! convention; the password field works too) and publish to
//!
//! - `agora/{device}/telemetry`: JSON values (`{"pm10": 12}`, `{"ts": …, "values": {…}}`, arrays);
//! - `v1/devices/me/telemetry`: the same, for the device the token is bound to (ThingsBoard);
//! - `v1/gateway/telemetry`: ThingsBoard gateway telemetry.
//!
//! A QoS 1 PUBLISH is acknowledged (PUBACK) only once its points are durable; if storage fails the
//! connection is closed without acknowledging, and the device sends again. QoS 2 is answered with
//! PUBREC/PUBCOMP on the same rule. Subscriptions are granted at QoS 0 so that ThingsBoard
//! firmware (which subscribes to RPC topics) stays connected, but nothing is delivered to
//! subscribers yet: commands to equipment come with the alerts and actions work. Retained messages,
//! wills and persistent sessions are not offered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agora_store::Catalog;
use agora_store::catalog::{Scope, TokenInfo};
use bytes::BytesMut;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, QoS, SubAck, SubscribeReasonCode,
    UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::replay::Replay;
use crate::{Pipeline, Source, thingsboard};

/// Largest accepted packet.
const MAX_PACKET: usize = 1 << 20;
/// Most simultaneous device connections; more are refused at once (a flood must not exhaust
/// file descriptors or memory).
const MAX_CONNECTIONS: usize = 20_000;

/// Start listening. Returns the bound address and the accept loop's task.
pub async fn start(
    listen: SocketAddr,
    pipeline: Arc<Pipeline>,
    catalog: Arc<dyn Catalog>,
    subscribers: Subscribers,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, "MQTT connection refused: too many connections");
                        drop(stream);
                        continue;
                    };
                    let (p, c, subs) = (pipeline.clone(), catalog.clone(), subscribers.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, p, c, subs).await {
                            tracing::debug!(%peer, error = %e, "MQTT connection closed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((addr, task))
}

/// The subscriptions of connected clients: commands to equipment are delivered through them
/// (QoS 0, to clients connected now; nothing is queued for absent ones).
#[derive(Debug, Clone, Default)]
pub struct Subscribers {
    inner: Arc<parking_lot::Mutex<SubscribersInner>>,
}

/// Where a connection's outgoing messages go: topic and payload.
type Outbox = tokio::sync::mpsc::UnboundedSender<(String, bytes::Bytes)>;

#[derive(Debug, Default)]
struct SubscribersInner {
    next: u64,
    subs: Vec<(u64, String, Outbox)>,
}

impl Subscribers {
    fn connect(&self) -> u64 {
        let mut i = self.inner.lock();
        i.next += 1;
        i.next
    }

    fn subscribe(
        &self,
        conn: u64,
        filter: String,
        tx: tokio::sync::mpsc::UnboundedSender<(String, bytes::Bytes)>,
    ) {
        let mut i = self.inner.lock();
        if !i.subs.iter().any(|(c, f, _)| *c == conn && *f == filter) {
            i.subs.push((conn, filter, tx));
        }
    }

    fn unsubscribe(&self, conn: u64, filter: &str) {
        self.inner.lock().subs.retain(|(c, f, _)| !(*c == conn && f == filter));
    }

    fn disconnect(&self, conn: u64) {
        self.inner.lock().subs.retain(|(c, _, _)| *c != conn);
    }

    /// Deliver a message to every connected client subscribed to a matching filter; returns how
    /// many clients it went to.
    pub fn publish(&self, topic: &str, payload: bytes::Bytes) -> usize {
        let i = self.inner.lock();
        let mut sent = std::collections::HashSet::new();
        for (conn, filter, tx) in &i.subs {
            if !sent.contains(conn)
                && topic_matches(filter, topic)
                && tx.send((topic.to_owned(), payload.clone())).is_ok()
            {
                sent.insert(*conn);
            }
        }
        sent.len()
    }
}

/// Whether an MQTT topic filter (`+` one level, `#` the rest) matches a topic.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether a token may subscribe to a filter: read and admin tokens to anything; ingest tokens
/// to commands (`agora/commands/…`), and one bound to a device only to its own.
fn may_subscribe(token: &TokenInfo, filter: &str) -> bool {
    if token.scope.allows(Scope::Read) {
        return true;
    }
    match &token.device {
        Some(d) => {
            let own = format!("agora/commands/{d}");
            filter == own || filter.starts_with(&format!("{own}/"))
        }
        None => filter.starts_with("agora/commands/"),
    }
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    out: BytesMut,
}

impl Conn {
    async fn read(&mut self, timeout: Duration) -> Result<Packet, String> {
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(n)) => self.buf.reserve(n),
                Err(e) => return Err(format!("malformed MQTT packet: {e:?}")),
            }
            let n = tokio::time::timeout(timeout, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| "keep-alive timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("peer closed the connection".into());
            }
        }
    }

    /// A packet already complete in the buffer, without reading the socket.
    fn buffered(&mut self) -> Result<Option<Packet>, String> {
        match Packet::read(&mut self.buf, MAX_PACKET) {
            Ok(p) => Ok(Some(p)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(format!("malformed MQTT packet: {e:?}")),
        }
    }

    async fn send(&mut self, p: Packet) -> Result<(), String> {
        self.out.clear();
        p.write(&mut self.out, MAX_PACKET).map_err(|e| format!("{e:?}"))?;
        self.stream.write_all(&self.out).await.map_err(|e| e.to_string())
    }
}

/// Removes a connection's subscriptions when it ends, however it ends.
struct Unsubscribe(Subscribers, u64);

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.0.disconnect(self.1);
    }
}

async fn serve(
    stream: TcpStream,
    pipeline: Arc<Pipeline>,
    catalog: Arc<dyn Catalog>,
    subscribers: Subscribers,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let mut c =
        Conn { stream, buf: BytesMut::with_capacity(4096), out: BytesMut::with_capacity(64) };
    let Packet::Connect(connect) = c.read(Duration::from_secs(10)).await? else {
        return Err("the first packet was not CONNECT".into());
    };
    let token = connect.login.as_ref().and_then(|l| {
        catalog.authenticate(&l.username).or_else(|| catalog.authenticate(&l.password))
    });
    let token: TokenInfo = match token {
        Some(t) if t.scope.allows(Scope::Ingest) => t,
        Some(_) => {
            c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false))).await?;
            return Err("token without the ingest scope".into());
        }
        None => {
            c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadUserNamePassword, false)))
                .await?;
            return Err("missing or unknown token".into());
        }
    };
    c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))).await?;
    let keep_alive = match connect.keep_alive {
        0 => Duration::from_secs(3600),
        k => Duration::from_secs(u64::from(k)) * 3 / 2,
    };
    tracing::debug!(client = %connect.client_id, token = %token.name, "MQTT device connected");
    let conn = subscribers.connect();
    let _unsubscribe = Unsubscribe(subscribers.clone(), conn);
    let (outbox_tx, mut outbox) = tokio::sync::mpsc::unbounded_channel::<(String, bytes::Bytes)>();
    let mut next: Option<Packet> = None;
    loop {
        let packet = match next.take() {
            Some(p) => p,
            // Reading is cancel-safe: bytes already read stay in the buffer.
            None => tokio::select! {
                p = c.read(keep_alive) => p?,
                Some((topic, payload)) = outbox.recv() => {
                    c.send(Packet::Publish(rumqttc::Publish::from_bytes(topic, QoS::AtMostOnce, payload))).await?;
                    continue;
                }
            },
        };
        match packet {
            Packet::Publish(p) => {
                // Publishes already received are stored together: one WAL commit for all.
                let mut batch = vec![p];
                while batch.len() < 1000 {
                    match c.buffered()? {
                        Some(Packet::Publish(p)) => batch.push(p),
                        Some(other) => {
                            next = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                let durable = ingest(&pipeline, &token, &batch).await;
                if !durable {
                    return Err("storage failed; closing without acknowledging".into());
                }
                c.out.clear();
                for p in &batch {
                    let ack = match p.qos {
                        QoS::AtMostOnce => continue,
                        QoS::AtLeastOnce => Packet::PubAck(PubAck::new(p.pkid)),
                        QoS::ExactlyOnce => Packet::PubRec(PubRec::new(p.pkid)),
                    };
                    ack.write(&mut c.out, MAX_PACKET).map_err(|e| format!("{e:?}"))?;
                }
                if !c.out.is_empty() {
                    c.stream.write_all(&c.out).await.map_err(|e| e.to_string())?;
                }
            }
            Packet::PubRel(r) => c.send(Packet::PubComp(PubComp::new(r.pkid))).await?,
            Packet::Subscribe(s) => {
                let codes = s
                    .filters
                    .iter()
                    .map(|f| {
                        if may_subscribe(&token, &f.path) {
                            subscribers.subscribe(conn, f.path.clone(), outbox_tx.clone());
                            SubscribeReasonCode::Success(QoS::AtMostOnce)
                        } else {
                            tracing::info!(token = %token.name, filter = %f.path, "MQTT subscription refused");
                            SubscribeReasonCode::Failure
                        }
                    })
                    .collect();
                c.send(Packet::SubAck(SubAck::new(s.pkid, codes))).await?;
            }
            Packet::Unsubscribe(u) => {
                for f in &u.topics {
                    subscribers.unsubscribe(conn, f);
                }
                c.send(Packet::UnsubAck(UnsubAck::new(u.pkid))).await?
            }
            Packet::PingReq => c.send(Packet::PingResp).await?,
            Packet::Disconnect => return Ok(()),
            other => return Err(format!("unexpected packet {other:?}")),
        }
    }
}

/// Decode and store messages; returns false only when storage failed.
async fn ingest(pipeline: &Pipeline, token: &TokenInfo, batch: &[rumqttc::Publish]) -> bool {
    let mut all = crate::Decoded::default();
    for p in batch {
        let topic = p.topic.as_str();
        let parts: Vec<&str> = topic.split('/').collect();
        let decoded = match parts.as_slice() {
            ["agora", device, "telemetry"] => thingsboard::decode_device(device, &p.payload),
            ["v1", "devices", "me", "telemetry"] => match &token.device {
                Some(d) => thingsboard::decode_device(d.as_str(), &p.payload),
                None => Err(format!(
                    "token {:?} is not bound to a device: publish to agora/{{device}}/telemetry instead",
                    token.name
                )),
            },
            ["v1", "gateway", "telemetry"] => thingsboard::decode_gateway(&p.payload),
            _ => Err(format!(
                "unknown topic {topic:?}: use agora/{{device}}/telemetry, v1/devices/me/telemetry or v1/gateway/telemetry"
            )),
        };
        match decoded {
            Ok(d) => {
                all.records.extend(d.records);
                all.errors.extend(d.errors.into_iter().map(|mut e| {
                    e.reason = format!("{topic}: {}", e.reason);
                    e
                }));
            }
            Err(reason) => {
                let name = format!("mqtt {topic}");
                let replay = match parts.as_slice() {
                    ["agora", device, "telemetry"] => {
                        Some(Replay::ThingsboardDevice((*device).to_owned()))
                    }
                    ["v1", "devices", "me", "telemetry"] => {
                        token.device.as_ref().map(|d| Replay::ThingsboardDevice(d.to_string()))
                    }
                    ["v1", "gateway", "telemetry"] => Some(Replay::ThingsboardGateway),
                    _ => None,
                };
                let src = Source { name: &name, token: Some(token), replay, ..Default::default() };
                pipeline.reject_whole(&src, &reason, &p.payload).await;
            }
        }
    }
    if all.records.is_empty() && all.errors.is_empty() {
        return true;
    }
    let src = Source { name: "mqtt endpoint", token: Some(token), ..Default::default() };
    match pipeline.ingest(&src, all).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "storing MQTT messages failed");
            false
        }
    }
}
