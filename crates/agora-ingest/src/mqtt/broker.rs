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
//!
//! No client can hold the endpoint: CONNECT must arrive within a deadline counted from accept, a
//! client silent for 1.5 times its keep-alive is dropped, connections are capped in total and
//! per address ([`BrokerLimits`]), and a session ends within seconds of its token's revocation.

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
use tokio::time::Instant;

use crate::format::Format;
use crate::limits::{AddrSet, ConnectionCaps, ConnectionLimits};
use crate::{Error, Refusal};
use crate::{Pipeline, Source};

/// A broken connection, in words for the log.
fn broken(e: impl std::fmt::Display) -> Error {
    Error::Connection(e.to_string())
}

/// Largest accepted packet.
const MAX_PACKET: usize = 1 << 20;
/// Largest packet before the client is authenticated: a CONNECT is small.
const MAX_CONNECT_PACKET: usize = 64 << 10;

/// How the endpoint bounds what one client, or all of them, may hold.
#[derive(Debug, Clone)]
pub struct BrokerLimits {
    /// A client must have sent a whole CONNECT within this time of being accepted.
    pub connect_timeout: Duration,
    /// Longest keep-alive honoured: a client announcing 0 (none) or more is held to this. A
    /// client silent for 1.5 times its keep-alive is disconnected (MQTT 3.1.1, 3.1.2.10).
    pub max_keep_alive: Duration,
    /// How often a connected client's token is checked again, so that revoking it ends the
    /// session within this time (it is also checked before each batch is stored).
    pub token_recheck: Duration,
    /// Caps on concurrent connections, in total and per address.
    pub connections: ConnectionCaps,
}

impl Default for BrokerLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            max_keep_alive: Duration::from_secs(3600),
            token_recheck: Duration::from_secs(2),
            connections: ConnectionCaps {
                total: 10_000,
                per_address: 256,
                reserved: 0,
                trusted: AddrSet::loopback(),
            },
        }
    }
}

/// What [`start`] needs.
#[derive(Debug)]
pub struct BrokerOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// Where messages go.
    pub pipeline: Arc<Pipeline>,
    /// Where tokens are checked.
    pub catalog: Arc<dyn Catalog>,
    /// Subscriptions of connected clients (commands to equipment).
    pub subscribers: Subscribers,
    /// Timeouts and caps.
    pub limits: BrokerLimits,
}

/// Start listening. Returns the bound address and the accept loop's task.
pub async fn start(opts: BrokerOptions) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let BrokerOptions { listen, pipeline, catalog, subscribers, limits } = opts;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let slots = ConnectionLimits::new(limits.connections.clone());
    let limits = Arc::new(limits);
    let task = tokio::spawn(async move {
        // Accept errors (EMFILE when file descriptors run out) are logged once per episode and
        // retried after a pause that grows to a second, so the loop neither spins nor dies.
        let mut failing = false;
        let mut pause = Duration::from_millis(10);
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    if failing {
                        tracing::info!("MQTT accept works again");
                        (failing, pause) = (false, Duration::from_millis(10));
                    }
                    let slot = match slots.try_acquire(peer.ip()) {
                        Ok(s) => s,
                        Err(why) => {
                            tracing::debug!(%peer, "MQTT connection refused: {why}");
                            drop(stream);
                            continue;
                        }
                    };
                    let accepted = Instant::now();
                    let (p, c, subs, l) =
                        (pipeline.clone(), catalog.clone(), subscribers.clone(), limits.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, accepted, p, c, subs, &l).await {
                            tracing::debug!(%peer, error = %e, "MQTT connection closed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "MQTT accept failed; retrying");
                        failing = true;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
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
    /// The next packet, at most `max` bytes; it must be complete by `deadline`.
    async fn read(&mut self, deadline: Instant, late: &str, max: usize) -> Result<Packet, Error> {
        loop {
            match Packet::read(&mut self.buf, max) {
                Ok(p) => return Ok(p),
                // Grow with what arrives, not with what a header announces.
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(n)) => {
                    self.buf.reserve(n.min(64 << 10));
                }
                Err(e) => return Err(Error::Connection(format!("malformed MQTT packet: {e:?}"))),
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| Error::Connection(late.to_owned()))?
                .map_err(broken)?;
            if n == 0 {
                return Err(Error::Connection("peer closed the connection".into()));
            }
        }
    }

    /// The first packet: a CONNECT of MQTT 3.1.1, or (`Err`) the protocol name and level of a
    /// client of another version, read before the parser (which knows 3.1.1 only) sees it.
    async fn read_connect(
        &mut self,
        deadline: Instant,
        max: usize,
    ) -> Result<Result<Packet, (String, u8)>, Error> {
        loop {
            if let Some((name, level)) = connect_protocol(&self.buf)
                && level != 4
            {
                return Ok(Err((name, level)));
            }
            match Packet::read(&mut self.buf, max) {
                Ok(p) => return Ok(Ok(p)),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(n)) => {
                    self.buf.reserve(n.min(64 << 10));
                }
                Err(e) => return Err(Error::Connection(format!("malformed MQTT packet: {e:?}"))),
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
                .await
                .map_err(|_| Error::Connection("no CONNECT in time".to_owned()))?
                .map_err(broken)?;
            if n == 0 {
                return Err(Error::Connection("peer closed the connection".into()));
            }
        }
    }

    /// A packet already complete in the buffer, without reading the socket.
    fn buffered(&mut self) -> Result<Option<Packet>, Error> {
        match Packet::read(&mut self.buf, MAX_PACKET) {
            Ok(p) => Ok(Some(p)),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(Error::Connection(format!("malformed MQTT packet: {e:?}"))),
        }
    }

    async fn send(&mut self, p: Packet) -> Result<(), Error> {
        self.out.clear();
        p.write(&mut self.out, MAX_PACKET).map_err(|e| broken(format!("{e:?}")))?;
        self.stream.write_all(&self.out).await.map_err(broken)
    }
}

/// The protocol name and level of a CONNECT packet at the start of `buf`, read without parsing the
/// rest (so that a version the parser does not know can still be answered).
fn connect_protocol(buf: &[u8]) -> Option<(String, u8)> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    // Remaining length: 1 to 4 bytes, 7 bits each.
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        i += 1;
        if b & 0x80 == 0 || i > 4 {
            break;
        }
    }
    let len = usize::from(u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]));
    let name = std::str::from_utf8(buf.get(i + 2..i + 2 + len)?).ok()?.to_owned();
    let level = *buf.get(i + 2 + len)?;
    Some((name, level))
}

/// The CONNACK refusing a protocol level, as a client of that level reads it: MQTT 5's reason
/// code 0x84 (unsupported protocol version, with an empty property list), else 3.1.1's and 3.1's
/// return code 0x01 (unacceptable protocol version).
fn refusal_for_version(level: u8) -> Vec<u8> {
    if level >= 5 { vec![0x20, 0x03, 0x00, 0x84, 0x00] } else { vec![0x20, 0x02, 0x00, 0x01] }
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
    accepted: Instant,
    pipeline: Arc<Pipeline>,
    catalog: Arc<dyn Catalog>,
    subscribers: Subscribers,
    limits: &BrokerLimits,
) -> Result<(), Error> {
    let _ = stream.set_nodelay(true);
    let mut c =
        Conn { stream, buf: BytesMut::with_capacity(4096), out: BytesMut::with_capacity(64) };
    // Measured from accept, not per read: a byte every few seconds does not keep a socket.
    let deadline = accepted + limits.connect_timeout;
    let first = match c.read_connect(deadline, MAX_CONNECT_PACKET).await? {
        Ok(p) => p,
        // A client speaking another version of MQTT is told so, in its own version, rather than
        // left reconnecting forever.
        Err((name, level)) => {
            let _ = c.stream.write_all(&refusal_for_version(level)).await;
            let peer = c.stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(%peer, protocol = %name, level, "MQTT connection refused: this endpoint speaks MQTT 3.1.1 only");
            return Err(Error::Connection(format!("unsupported protocol {name} level {level}")));
        }
    };
    let Packet::Connect(connect) = first else {
        return Err(Error::Connection("the first packet was not CONNECT".into()));
    };
    // The secret that authenticated, kept to check later that the token is still live.
    let found = connect.login.as_ref().and_then(|l| {
        [&l.username, &l.password]
            .into_iter()
            .find_map(|s| catalog.authenticate(s).map(|t| (t, s.clone())))
    });
    let (token, secret): (TokenInfo, String) = match found {
        Some((t, s)) if t.scope.allows(Scope::Ingest) => (t, s),
        Some(_) => {
            c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false))).await?;
            return Err(Error::Connection("token without the ingest scope".into()));
        }
        None => {
            c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadUserNamePassword, false)))
                .await?;
            return Err(Error::Connection("missing or unknown token".into()));
        }
    };
    let live = || catalog.authenticate(&secret).is_some_and(|t| t.scope.allows(Scope::Ingest));
    c.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))).await?;
    let keep_alive = match Duration::from_secs(u64::from(connect.keep_alive)) {
        k if k.is_zero() => limits.max_keep_alive,
        k => k.min(limits.max_keep_alive),
    } * 3
        / 2;
    let mut heard = Instant::now();
    let mut recheck = tokio::time::interval(limits.token_recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                p = c.read(heard + keep_alive, "keep-alive timed out", MAX_PACKET) => p?,
                _ = recheck.tick() => {
                    if !live() {
                        return Err(Error::Connection(format!("token {:?} was revoked", token.name)));
                    }
                    continue;
                }
                Some((topic, payload)) = outbox.recv() => {
                    c.send(Packet::Publish(rumqttc::Publish::from_bytes(topic, QoS::AtMostOnce, payload))).await?;
                    continue;
                }
            },
        };
        heard = Instant::now();
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
                // A revoked token stores nothing more, whatever is already on the wire.
                if !live() {
                    return Err(Error::Connection(format!("token {:?} was revoked", token.name)));
                }
                let durable = ingest(&pipeline, &token, &batch).await;
                if !durable {
                    return Err(Error::Connection(
                        "storage failed; closing without acknowledging".into(),
                    ));
                }
                c.out.clear();
                for p in &batch {
                    let ack = match p.qos {
                        QoS::AtMostOnce => continue,
                        QoS::AtLeastOnce => Packet::PubAck(PubAck::new(p.pkid)),
                        QoS::ExactlyOnce => Packet::PubRec(PubRec::new(p.pkid)),
                    };
                    ack.write(&mut c.out, MAX_PACKET).map_err(|e| broken(format!("{e:?}")))?;
                }
                if !c.out.is_empty() {
                    c.stream.write_all(&c.out).await.map_err(broken)?;
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
            other => return Err(Error::Connection(format!("unexpected packet {other:?}"))),
        }
    }
}

/// The format of a message published to agora's endpoint on `topic` by the holder of `token`.
fn format_of(topic: &str, token: &TokenInfo) -> Result<Format, Refusal> {
    match topic.split('/').collect::<Vec<_>>().as_slice() {
        ["agora", device, "telemetry"] => Ok(Format::ThingsboardDevice((*device).to_owned())),
        ["v1", "devices", "me", "telemetry"] => match &token.device {
            Some(d) => Ok(Format::ThingsboardDevice(d.to_string())),
            None => Err(Refusal(format!(
                "token {:?} is not bound to a device: publish to agora/{{device}}/telemetry instead",
                token.name
            ))),
        },
        ["v1", "gateway", "telemetry"] => Ok(Format::ThingsboardGateway),
        _ => Err(Refusal(format!(
            "unknown topic {topic:?}: use agora/{{device}}/telemetry, v1/devices/me/telemetry or v1/gateway/telemetry"
        ))),
    }
}

/// Decode and store messages; returns false only when storage failed.
async fn ingest(pipeline: &Pipeline, token: &TokenInfo, batch: &[rumqttc::Publish]) -> bool {
    let mut all = crate::Decoded::default();
    for p in batch {
        let topic = p.topic.as_str();
        let format = format_of(topic, token);
        match format.as_ref().map_err(Refusal::clone).and_then(|f| pipeline.decode(f, &p.payload)) {
            Ok(m) => {
                let d = m.decoded.into_owned();
                all.records.extend(d.records);
                all.errors.extend(d.errors.into_iter().map(|mut e| {
                    e.reason = format!("{topic}: {}", e.reason);
                    e
                }));
            }
            Err(reason) => {
                let name = format!("mqtt {topic}");
                let src = Source {
                    name: &name,
                    token: Some(token),
                    format: format.ok(),
                    ..Default::default()
                };
                pipeline.reject_whole(&src, &reason.0, &p.payload).await;
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
