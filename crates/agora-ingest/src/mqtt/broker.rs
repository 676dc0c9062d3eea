//! agora's own MQTT endpoint, so devices publish to agora directly: no separate broker to run for
//! a pilot city. It speaks MQTT 3.1.1, 3.1 and 5 (see [`super::wire`]); another version gets the
//! CONNACK that says so. Devices authenticate with an ingest token as user name (ThingsBoard's
//! convention; the password field works too) and publish to
//!
//! - `agora/{device}/telemetry`: JSON values (`{"pm10": 12}`, `{"ts": …, "values": {…}}`, arrays);
//! - `v1/devices/me/telemetry`: the same, for the device the token is bound to (ThingsBoard);
//! - `v1/gateway/telemetry`: ThingsBoard gateway telemetry;
//! - `v1.1/Datastreams(N)/Observations` and `v1.1/Observations`: SensorThings Observations
//!   (see [`super::sta`]), whose Datastreams clients may also subscribe to.
//!
//! A QoS 1 PUBLISH is acknowledged (PUBACK) only once its points are durable; if storage fails the
//! connection is closed without acknowledging (MQTT 5: DISCONNECT "server busy"), and the device
//! sends again. QoS 2 is answered with PUBREC/PUBCOMP on the same rule. A message refused whole
//! (unknown topic, unreadable payload, another device's topic) is kept as a dead letter and
//! acknowledged: with success in 3.1.1, which has no other answer, and with the reason code and
//! string in MQTT 5. Subscriptions are granted at QoS 0 and receive commands to equipment while
//! connected. Retained messages, wills and sessions outliving the connection are not offered;
//! MQTT 5 clients are told so in CONNACK (retain unavailable, session expiry 0).
//!
//! No client can hold the endpoint: CONNECT must arrive within a deadline counted from accept, a
//! client silent for 1.5 times its keep-alive is dropped, connections are capped in total and
//! per address ([`BrokerLimits`]), a session ends within seconds of its token's revocation, and
//! a token or address over its message rate is read slower (MQTT has no "try later" for a
//! PUBLISH: pausing reads lets TCP hold the client back without refusing anything).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use agora_model::permissions::Action;
use agora_store::Catalog;
use agora_store::catalog::TokenInfo;
use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::thingsboard::{DeviceApi, is_control_topic, is_device_api_filter};
use super::wire::{
    self, Codec, ConnAck, Grants, Incoming, Outcome, Publish, Read, SubRefusal, Version, Violation,
    check_filter,
};
use crate::format::Format;
use crate::limits::{
    AddrSet, Buckets, ConnectionCaps, ConnectionLimits, Rate, client_key, network_key,
};
use crate::{Error, Refusal};
use crate::{Pipeline, Source};

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
    /// Messages per token, whatever connection they come through. A client over a rate is not
    /// read from until it is back under it: TCP holds the rest (nothing is refused or lost, the
    /// client just publishes slower).
    pub messages_per_token: Rate,
    /// Bytes of messages per token, the same way.
    pub bytes_per_token: Rate,
    /// Messages per client address (IPv6: one /64), whichever tokens they use.
    pub messages_per_address: Rate,
    /// Messages per IPv6 /48 network, whichever of its /64s they come from.
    pub messages_per_network: Rate,
    /// Most tokens or addresses each rate remembers.
    pub max_tracked: usize,
    /// Addresses no rate applies to.
    pub rate_exempt: AddrSet,
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
                per_network: 2048,
                reserved: 0,
                trusted: AddrSet::loopback(),
            },
            messages_per_token: Rate { per_second: 1000.0, burst: 5000.0 },
            bytes_per_token: Rate {
                per_second: 32.0 * 1024.0 * 1024.0,
                burst: 128.0 * 1024.0 * 1024.0,
            },
            messages_per_address: Rate { per_second: 2000.0, burst: 10_000.0 },
            messages_per_network: Rate { per_second: 8000.0, burst: 40_000.0 },
            max_tracked: 10_000,
            rate_exempt: AddrSet::loopback(),
        }
    }
}

/// The limits, and the rates' buckets, shared by every connection.
#[derive(Debug)]
struct Bounds {
    limits: BrokerLimits,
    rates: Rates,
}

/// The rates of [`BrokerLimits`], shared by every connection.
#[derive(Debug)]
struct Rates {
    token_messages: Buckets<String>,
    token_bytes: Buckets<String>,
    address_messages: Buckets<IpAddr>,
    network_messages: Buckets<IpAddr>,
    exempt: AddrSet,
}

impl Rates {
    fn new(l: &BrokerLimits) -> Self {
        Self {
            token_messages: Buckets::new(l.messages_per_token, l.max_tracked),
            token_bytes: Buckets::new(l.bytes_per_token, l.max_tracked),
            address_messages: Buckets::new(l.messages_per_address, l.max_tracked),
            network_messages: Buckets::new(l.messages_per_network, l.max_tracked),
            exempt: l.rate_exempt.clone(),
        }
    }

    /// Spend what a batch cost; how long its client must wait before more is read, if it is
    /// over a rate.
    fn charge(&self, token: &str, ip: IpAddr, messages: usize, bytes: usize) -> Option<Duration> {
        if self.exempt.contains(ip) {
            return None;
        }
        let (now, key) = (std::time::Instant::now(), client_key(ip));
        let token = token.to_owned();
        self.token_messages.spend(&token, messages as f64, now);
        self.token_bytes.spend(&token, bytes as f64, now);
        self.address_messages.spend(&key, messages as f64, now);
        if let Some(net) = network_key(ip) {
            self.network_messages.spend(&net, messages as f64, now);
        }
        self.wait(&token, ip)
    }

    /// How long a client of `token` at `ip` must wait before anything more is read from it, if
    /// its token or address is in debt (a new connection inherits the debt of earlier ones).
    fn wait(&self, token: &str, ip: IpAddr) -> Option<Duration> {
        if self.exempt.contains(ip) {
            return None;
        }
        let (now, key, token) = (std::time::Instant::now(), client_key(ip), token.to_owned());
        [
            self.token_messages.has_credit(&token, now),
            self.token_bytes.has_credit(&token, now),
            self.address_messages.has_credit(&key, now),
            network_key(ip).map_or(Ok(()), |net| self.network_messages.has_credit(&net, now)),
        ]
        .into_iter()
        .filter_map(Result::err)
        .filter(|wait| !wait.is_zero())
        .max()
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
    /// MQTT over TLS: the handshake happens within the CONNECT deadline; a client certificate
    /// from the configured authority names the device (its subject's common name).
    pub tls: Option<Arc<crate::tls::Tls>>,
}

/// Start listening. Returns the bound address and the accept loop's task.
pub async fn start(opts: BrokerOptions) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let BrokerOptions { listen, pipeline, catalog, subscribers, limits, tls } = opts;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let slots = ConnectionLimits::new(limits.connections.clone());
    let limits = Arc::new(Bounds { rates: Rates::new(&limits), limits });
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
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        let (stream, identity): (Stream, Option<String>) = match tls {
                            None => (Box::new(stream), None),
                            Some(tls) => {
                                let deadline = accepted + l.limits.connect_timeout;
                                match tokio::time::timeout_at(
                                    deadline,
                                    tls.acceptor().accept(stream),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => {
                                        let identity = s
                                            .get_ref()
                                            .1
                                            .peer_certificates()
                                            .and_then(|c| c.first())
                                            .and_then(|c| crate::tls::subject_common_name(c));
                                        (Box::new(s), identity)
                                    }
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, error = %e, "MQTT TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "MQTT TLS handshake not done in time");
                                        return;
                                    }
                                }
                            }
                        };
                        let who = Peer { addr: peer.to_string(), ip: peer.ip(), identity };
                        if let Err(e) = serve(stream, who, accepted, p, c, subs, &l).await {
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
    /// How many of them are SensorThings Datastreams (none: the feed has nothing to do).
    datastreams: usize,
}

impl Subscribers {
    fn connect(&self) -> u64 {
        let mut i = self.inner.lock();
        i.next += 1;
        i.next
    }

    /// Subscribe; false when the connection holds [`MAX_SUBSCRIPTIONS`] already.
    fn subscribe(
        &self,
        conn: u64,
        filter: String,
        tx: tokio::sync::mpsc::UnboundedSender<(String, bytes::Bytes)>,
    ) -> bool {
        let mut i = self.inner.lock();
        let mine = i.subs.iter().filter(|(c, _, _)| *c == conn);
        let (mut held, mut known) = (0, false);
        for (_, f, _) in mine {
            held += 1;
            known |= *f == filter;
        }
        if known {
            return true;
        }
        if held >= MAX_SUBSCRIPTIONS {
            return false;
        }
        i.datastreams += usize::from(super::sta::datastream_of(&filter).is_some());
        i.subs.push((conn, filter, tx));
        true
    }

    /// Unsubscribe; whether the connection held that subscription.
    fn unsubscribe(&self, conn: u64, filter: &str) -> bool {
        let mut i = self.inner.lock();
        let before = i.subs.len();
        i.subs.retain(|(c, f, _)| !(*c == conn && f == filter));
        let gone = before != i.subs.len();
        if gone && super::sta::datastream_of(filter).is_some() {
            i.datastreams -= 1;
        }
        gone
    }

    fn disconnect(&self, conn: u64) {
        let mut i = self.inner.lock();
        let mut gone = 0;
        i.subs.retain(|(c, f, _)| {
            let mine = *c == conn;
            gone += usize::from(mine && super::sta::datastream_of(f).is_some());
            !mine
        });
        i.datastreams -= gone;
    }

    /// The SensorThings Datastreams some client is subscribed to.
    pub fn datastreams(&self) -> std::collections::HashSet<u32> {
        let i = self.inner.lock();
        if i.datastreams == 0 {
            return std::collections::HashSet::new();
        }
        i.subs.iter().filter_map(|(_, f, _)| super::sta::datastream_of(f)).collect()
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

/// Whether a token may subscribe to a filter. SensorThings' Datastreams: a token that may read
/// the device (see [`super::sta`]); nothing else for a token that sends no data. The
/// Métropole's administrators: to anything. A
/// token bound to a device: to that device's commands (`agora/commands/{device}…`). Another
/// token of the Métropole: to any device's commands. A token of a commune: to the commands of
/// one named device of its commune at a time (no wildcard where the device goes: they would
/// reach other communes' devices).
fn may_subscribe(catalog: &dyn Catalog, token: &TokenInfo, filter: &str) -> bool {
    if filter.starts_with("v1.1/") {
        return super::sta::may_subscribe(catalog, token, filter);
    }
    let g = &token.grant;
    // A reader (viewer, operator) receives SensorThings' Observations only.
    if !g.may(Action::Ingest) {
        return false;
    }
    if g.sees_all() && g.may(Action::View) {
        return true;
    }
    let Some(rest) = filter.strip_prefix("agora/commands/") else { return false };
    let device = rest.split('/').next().unwrap_or_default();
    if let Some(d) = &token.device {
        return device == d.as_str();
    }
    if g.sees_all() {
        return true;
    }
    !device.contains(['+', '#'])
        && catalog.device(device).is_some_and(|d| d.commune.as_ref() == g.commune())
}

/// A device's connection: plain TCP, or TLS over it.
type Stream = Box<dyn Io>;

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Who is at the other end: the address, and the device its client certificate names.
struct Peer {
    addr: String,
    ip: IpAddr,
    identity: Option<String>,
}

struct Conn {
    stream: Stream,
    buf: BytesMut,
    out: BytesMut,
}

/// How a session ends early.
enum End {
    /// The server closes it: an MQTT 5 client is told why with a DISCONNECT.
    Violation(Violation),
    /// The peer went away, or the socket failed: nothing more to say.
    Closed(String),
}

impl From<Violation> for End {
    fn from(v: Violation) -> Self {
        End::Violation(v)
    }
}

impl Conn {
    /// Read more bytes (at least `need` are expected), by `deadline`.
    async fn fill(&mut self, need: usize, deadline: Instant, late: &Violation) -> Result<(), End> {
        // Grow with what arrives, not with what a header announces.
        self.buf.reserve(need.min(64 << 10));
        let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| End::Violation(late.clone()))?
            .map_err(|e| End::Closed(e.to_string()))?;
        if n == 0 {
            return Err(End::Closed("peer closed the connection".into()));
        }
        Ok(())
    }

    /// The next packet; it must be complete by `deadline`. Cancel-safe: bytes already read stay
    /// in the buffer.
    async fn next(
        &mut self,
        codec: &mut Codec,
        deadline: Instant,
        late: &Violation,
    ) -> Result<Incoming, End> {
        loop {
            match codec.read(&mut self.buf, MAX_PACKET)? {
                Read::Packet(p) => return Ok(p),
                Read::Need(n) => self.fill(n, deadline, late).await?,
            }
        }
    }

    /// Send what was written to `out`. A client that stops reading is dropped after
    /// [`WRITE_TIMEOUT`] rather than holding the session (and its keep-alive and token checks).
    async fn flush(&mut self) -> Result<(), End> {
        if !self.out.is_empty() {
            let r = tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(&self.out)).await;
            self.out.clear();
            match r {
                Ok(r) => r.map_err(|e| End::Closed(e.to_string()))?,
                Err(_) => {
                    return Err(End::Closed("the client stopped reading its messages".into()));
                }
            }
        }
        Ok(())
    }
}

/// Removes a connection's subscriptions when it ends, however it ends.
struct Unsubscribe(Subscribers, u64);

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.0.disconnect(self.1);
    }
}

/// The rights of a device that authenticated with a client certificate: those of an ingest token
/// bound to the device its subject's common name names, in the device's commune.
fn certificate_identity(
    catalog: &dyn Catalog,
    id: &str,
    now: agora_model::Timestamp,
) -> Result<TokenInfo, String> {
    let Some(device) = catalog.device(id) else {
        return Err(format!(
            "the client certificate names device {id:?}, which is not registered: register it first"
        ));
    };
    let grant = agora_model::permissions::Grant::new(
        agora_model::permissions::Role::Device,
        device.commune.clone(),
        None,
    )?;
    Ok(TokenInfo {
        id: format!("certificate:{id}"),
        name: format!("certificate of {id}"),
        scope: agora_store::catalog::Scope::Ingest,
        grant,
        device: Some(device.id),
        created_at: now,
        expires_at: None,
    })
}

/// Longest wait for a client to take what is sent to it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscriptions one connection may hold (besides the device API's own).
const MAX_SUBSCRIPTIONS: usize = 64;
/// Topic aliases a client may use.
const TOPIC_ALIAS_MAX: u16 = 64;
/// QoS 1 and 2 messages a client may have unacknowledged: one batch's worth.
const RECEIVE_MAXIMUM: u16 = 1000;

async fn serve(
    stream: Stream,
    who: Peer,
    accepted: Instant,
    pipeline: Arc<Pipeline>,
    catalog: Arc<dyn Catalog>,
    subscribers: Subscribers,
    bounds: &Bounds,
) -> Result<(), Error> {
    let (limits, rates) = (&bounds.limits, &bounds.rates);
    let peer = who.addr;
    let mut c =
        Conn { stream, buf: BytesMut::with_capacity(4096), out: BytesMut::with_capacity(64) };
    // Measured from accept, not per read: a byte every few seconds does not keep a socket.
    let deadline = accepted + limits.connect_timeout;
    let late = Violation::new(DisconnectReasonCode::MaximumConnectTime, "no CONNECT in time");
    let first = loop {
        match wire::read_connect(&mut c.buf, MAX_CONNECT_PACKET) {
            Ok(Read::Packet(f)) => break f,
            Ok(Read::Need(n)) => c.fill(n, deadline, &late).await.map_err(ended)?,
            Err(v) => return Err(Error::Connection(v.reason)),
        }
    };
    let connect = match first {
        wire::First::Connect(connect) => connect,
        // A client speaking another version of MQTT is told so, in its own version, rather than
        // left reconnecting forever.
        wire::First::Unsupported(name, level) => {
            let version = if level >= 5 { Version::V5 } else { Version::V3 };
            Codec::connack(version, &ConnAck::UnsupportedVersion, &mut c.out);
            let _ = c.flush().await;
            tracing::info!(%peer, protocol = %name, level, "MQTT connection refused: this endpoint speaks MQTT 3.1, 3.1.1 and 5");
            return Err(Error::Connection(format!("unsupported protocol {name} level {level}")));
        }
    };
    let version = connect.version;
    let refuse = |c: &mut Conn, answer: ConnAck<'_>, why: &str| {
        Codec::connack(version, &answer, &mut c.out);
        tracing::info!(%peer, client = %connect.client_id, "MQTT connection refused: {why}");
        Error::Connection(why.to_owned())
    };
    if let Some(method) = &connect.auth_method {
        let why = format!(
            "extended authentication ({method}) is not offered: give an ingest token as user name"
        );
        let e = refuse(&mut c, ConnAck::BadAuthenticationMethod(&why), &why);
        let _ = c.flush().await;
        return Err(e);
    }
    // The secret that authenticated, kept to check later that the token is still live.
    let found =
        connect.credentials.iter().find_map(|s| catalog.authenticate(s).map(|t| (t, s.clone())));
    // A device that gave no token but a client certificate is the device the certificate names.
    let certified = match (&found, &who.identity) {
        (None, Some(id)) if connect.credentials.iter().all(|c| c.is_empty()) => {
            match certificate_identity(catalog.as_ref(), id, pipeline.clock().now()) {
                Ok(t) => Some(t),
                Err(why) => {
                    let e = refuse(&mut c, ConnAck::NotAuthorized(&why), &why);
                    let _ = c.flush().await;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    // A token bound to a device must be that device's when a certificate names one.
    if let (Some((t, _)), Some(id)) = (&found, &who.identity)
        && let Some(d) = &t.device
        && d.as_str() != id
    {
        let why = format!(
            "the client certificate names device {id:?} but token {:?} is bound to {d}",
            t.name
        );
        let e = refuse(&mut c, ConnAck::NotAuthorized(&why), &why);
        let _ = c.flush().await;
        return Err(e);
    }
    let by_certificate = certified.is_some();
    let found = found.or_else(|| certified.map(|t| (t, String::new())));
    let (token, secret): (TokenInfo, String) = match found {
        // Readers connect too, for SensorThings' Observations (they publish nothing).
        Some((t, s)) if t.grant.may(Action::Ingest) || t.grant.may(Action::View) => (t, s),
        Some((t, _)) => {
            let why = format!(
                "token {:?} is a {}, which neither sends nor reads data",
                t.name,
                t.grant.role()
            );
            let e = refuse(&mut c, ConnAck::NotAuthorized(&why), &why);
            let _ = c.flush().await;
            return Err(e);
        }
        None => {
            let why = "missing or unknown token: give an ingest token as user name";
            let e = refuse(&mut c, ConnAck::BadCredentials(why), why);
            let _ = c.flush().await;
            return Err(e);
        }
    };
    let live = || {
        if by_certificate {
            // The device still exists, in the same commune (the certificate's own validity
            // was checked at the handshake).
            return token.device.as_ref().is_some_and(|d| {
                catalog
                    .device(d.as_str())
                    .is_some_and(|d| d.commune.as_ref() == token.grant.commune())
            });
        }
        catalog
            .authenticate(&secret)
            .is_some_and(|t| t.grant.may(Action::Ingest) || t.grant.may(Action::View))
    };
    let writer = token.grant.may(Action::Ingest);
    // A keep-alive of 0 (none) or beyond the longest honoured is replaced, and an MQTT 5 client
    // told so; sessions are not kept beyond the connection, which MQTT 5 clients are told too.
    let max_keep_alive = limits.max_keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
    let keep_alive_s = match connect.keep_alive {
        0 => max_keep_alive,
        k => k.min(max_keep_alive),
    };
    let conn = subscribers.connect();
    let _unsubscribe = Unsubscribe(subscribers.clone(), conn);
    let grants = Grants {
        receive_maximum: RECEIVE_MAXIMUM,
        max_packet: MAX_PACKET as u32,
        topic_alias_max: TOPIC_ALIAS_MAX,
        server_keep_alive: (keep_alive_s != connect.keep_alive).then_some(keep_alive_s),
        session_expiry: (connect.session_expiry != 0).then_some(0),
        // MQTT 5: a client that sent no id is told the one it has.
        assigned_client_id: (version == Version::V5 && connect.client_id.is_empty())
            .then(|| format!("agora-{conn}")),
    };
    let mut codec = Codec::new(&connect, &grants);
    Codec::connack(version, &ConnAck::Accepted(&grants), &mut c.out);
    c.flush().await.map_err(ended)?;
    // MQTT: a client silent for 1.5 times its keep-alive is gone.
    let keep_alive = Duration::from_secs(u64::from(keep_alive_s)) * 3 / 2;
    let mut heard = Instant::now();
    let mut recheck = tokio::time::interval(limits.token_recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::debug!(client = %connect.client_id, token = %token.name, ?version, "MQTT device connected");
    let (outbox_tx, mut outbox) = tokio::sync::mpsc::unbounded_channel::<(String, bytes::Bytes)>();
    let (push_tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
    let max_payload = connect.max_packet.map_or(MAX_PACKET, |m| (m as usize).min(MAX_PACKET));
    let api = DeviceApi::new(&pipeline, &token, push_tx, max_payload, RECEIVE_MAXIMUM);
    let mut session = Session {
        pipeline: &pipeline,
        catalog: catalog.as_ref(),
        token: &token,
        subscribers: &subscribers,
        conn,
        outbox: &outbox_tx,
        api,
    };
    let timed_out = Violation::new(DisconnectReasonCode::KeepAliveTimeout, "keep-alive timed out");
    let revoked = Violation::new(
        DisconnectReasonCode::NotAuthorized,
        format!("token {:?} was revoked", token.name),
    );
    let result: Result<(), End> = async {
        let mut next: Option<Incoming> = None;
        // Over a rate, nothing more is read until this moment (outgoing messages still go). A
        // client reconnecting does not shed its token's or address's debt.
        let mut paused: Option<Instant> = rates.wait(&token.id, who.ip).map(|w| Instant::now() + w);
        loop {
            let packet = match next.take() {
                Some(p) => p,
                None => tokio::select! {
                    p = c.next(&mut codec, heard + keep_alive, &timed_out), if paused.is_none() => p?,
                    _ = tokio::time::sleep_until(paused.unwrap_or_else(Instant::now)), if paused.is_some() => {
                        // The pause was the endpoint's doing: the client's silence counts from its end.
                        heard = heard.max(Instant::now());
                        paused = None;
                        continue;
                    }
                    _ = recheck.tick() => {
                        if !live() {
                            return Err(revoked.clone().into());
                        }
                        continue;
                    }
                    Some((topic, payload)) = outbox.recv() => {
                        if !codec.publish(&topic, payload, &mut c.out) {
                            tracing::debug!(%topic, "message larger than the client accepts, dropped");
                        }
                        c.flush().await?;
                        continue;
                    }
                    Some((device, push)) = pushes.recv() => {
                        match session.api.render(&device, &push) {
                            Some((topic, payload)) => {
                                if !codec.publish(&topic, payload, &mut c.out) {
                                    tracing::info!(%device, %topic, "message larger than the client accepts, dropped");
                                }
                                c.flush().await?;
                            }
                            None => tracing::info!(%device, ?push, "not delivered: the client did not subscribe to it"),
                        }
                        continue;
                    }
                },
            };
            heard = Instant::now();
            match packet {
                Incoming::Publish(p) => {
                    // Publishes already received are stored together (one WAL commit for all), up
                    // to the first message to the device API, which is handled after the data
                    // before it (order kept) and answered before anything after it is read (one
                    // answer held at a time).
                    let mut batch = vec![p];
                    while batch.len() < usize::from(RECEIVE_MAXIMUM)
                        && !is_control_topic(&batch[batch.len() - 1].topic)
                    {
                        match codec.read(&mut c.buf, MAX_PACKET)? {
                            Read::Packet(Incoming::Publish(p)) => batch.push(p),
                            Read::Packet(other) => {
                                next = Some(other);
                                break;
                            }
                            Read::Need(_) => break,
                        }
                    }
                    // A revoked token stores nothing more, whatever is already on the wire.
                    if !live() {
                        return Err(revoked.clone().into());
                    }
                    // Refused messages count too: they cost the endpoint as much to read.
                    let bytes = batch.iter().map(|p| p.payload.len() + p.topic.len()).sum();
                    if let Some(wait) = rates.charge(&token.id, who.ip, batch.len(), bytes) {
                        tracing::debug!(token = %token.name, ?wait, "MQTT client over its rate: reading paused");
                        paused = Some(Instant::now() + wait);
                    }
                    if !writer {
                        let why = format!(
                            "token {:?} is a {}, which does not send data",
                            token.name,
                            token.grant.role()
                        );
                        // MQTT 3.1.1 has no refusal to answer a PUBLISH with: the connection
                        // closes, so that the client knows nothing was taken.
                        if version != Version::V5 {
                            return Err(Violation::new(DisconnectReasonCode::NotAuthorized, why).into());
                        }
                        for p in &batch {
                            codec.ack(p, &Outcome::NotAuthorized(why.clone()), &mut c.out);
                        }
                        c.flush().await?;
                        continue;
                    }
                    let storage_failed = |why: &str| {
                        tracing::error!(error = why, "storing MQTT messages failed");
                        End::from(Violation::new(
                            DisconnectReasonCode::ServerBusy,
                            "storage failed: nothing was acknowledged, send again later",
                        ))
                    };
                    let control = batch.pop_if(|p| is_control_topic(&p.topic));
                    let mut outcomes = session.ingest(&batch).await.ok_or_else(|| storage_failed("data"))?;
                    let mut reply = None;
                    if let Some(p) = control {
                        let h = session
                            .api
                            .handle(&pipeline, &token, &p.topic, &p.payload)
                            .await
                            .map_err(|e| storage_failed(&e.0))?;
                        outcomes.push(h.outcome);
                        reply = h.reply;
                        batch.push(p);
                    }
                    for (p, outcome) in batch.iter().zip(&outcomes) {
                        codec.ack(p, outcome, &mut c.out);
                    }
                    if let Some((topic, payload)) = reply
                        && !codec.publish(&topic, payload, &mut c.out)
                    {
                        tracing::info!(%topic, "answer larger than the client accepts, dropped");
                    }
                    c.flush().await?;
                }
                Incoming::PubRel(pkid) => {
                    codec.pubcomp(pkid, &mut c.out);
                    c.flush().await?;
                }
                Incoming::Subscribe { pkid, filters } => {
                    let granted: Vec<Result<(), SubRefusal>> =
                        filters.iter().map(|f| session.subscribe(f)).collect();
                    codec.suback(pkid, &granted, &mut c.out);
                    c.flush().await?;
                }
                Incoming::Unsubscribe { pkid, filters } => {
                    let existed: Vec<bool> = filters
                        .iter()
                        .map(|f| session.api.unsubscribe(f) || subscribers.unsubscribe(conn, f))
                        .collect();
                    codec.unsuback(pkid, &existed, &mut c.out);
                    c.flush().await?;
                }
                Incoming::PingReq => {
                    codec.pingresp(&mut c.out);
                    c.flush().await?;
                }
                Incoming::Disconnect => return Ok(()),
            }
        }
    }
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(End::Violation(v)) => {
            c.out.clear();
            codec.disconnect(&v, &mut c.out);
            let _ = c.flush().await;
            Err(Error::Connection(v.reason))
        }
        Err(End::Closed(why)) => Err(Error::Connection(why)),
    }
}

/// A session's failure before it is connected, for the log.
fn ended(e: End) -> Error {
    match e {
        End::Violation(v) => Error::Connection(v.reason),
        End::Closed(why) => Error::Connection(why),
    }
}

/// What a connected client may do, and where its messages go.
struct Session<'a> {
    pipeline: &'a Pipeline,
    catalog: &'a dyn Catalog,
    token: &'a TokenInfo,
    subscribers: &'a Subscribers,
    conn: u64,
    outbox: &'a Outbox,
    /// ThingsBoard's device API beyond telemetry.
    api: DeviceApi,
}

impl Session<'_> {
    fn subscribe(&mut self, filter: &str) -> Result<(), SubRefusal> {
        let r = check_filter(filter).and_then(|()| {
            // The device API's own topics: kept by the session (they name this connection's
            // devices).
            if is_device_api_filter(filter) {
                return self.api.subscribe(filter);
            }
            if !may_subscribe(self.catalog, self.token, filter) {
                return Err(SubRefusal::NotAuthorized(format!(
                    "token {:?} may not subscribe to {filter:?}",
                    self.token.name
                )));
            }
            if !self.subscribers.subscribe(self.conn, filter.to_owned(), self.outbox.clone()) {
                return Err(SubRefusal::TooMany(format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions per connection"
                )));
            }
            Ok(())
        });
        if let Err(why) = &r {
            tracing::info!(token = %self.token.name, %filter, %why, "MQTT subscription refused");
        }
        r
    }

    /// Decode and store messages: the outcome of each, or `None` when storage failed.
    async fn ingest(&self, batch: &[Publish]) -> Option<Vec<Outcome>> {
        ingest(self.pipeline, self.token, batch).await
    }
}

/// The format of a message published to agora's endpoint on `topic` by the holder of `token`.
fn format_of(pipeline: &Pipeline, topic: &str, token: &TokenInfo) -> Result<Format, Refusal> {
    match topic.split('/').collect::<Vec<_>>().as_slice() {
        ["agora", device, "telemetry"] => {
            pipeline.may_write(token, device)?;
            Ok(Format::ThingsboardDevice((*device).to_owned()))
        }
        ["v1", "devices", "me", "telemetry"] => match &token.device {
            Some(d) => Ok(Format::ThingsboardDevice(d.to_string())),
            None => Err(Refusal(format!(
                "token {:?} is not bound to a device: publish to agora/{{device}}/telemetry instead",
                token.name
            ))),
        },
        ["v1", "gateway", "telemetry"] => Ok(Format::ThingsboardGateway),
        _ => Err(Refusal(format!(
            "unknown topic {topic:?}: use agora/{{device}}/telemetry, v1/devices/me/telemetry, v1/gateway/telemetry or v1.1/Datastreams(N)/Observations"
        ))),
    }
}

/// Decode and store messages: the outcome of each, or `None` when storage failed.
async fn ingest(pipeline: &Pipeline, token: &TokenInfo, batch: &[Publish]) -> Option<Vec<Outcome>> {
    let mut all = crate::Decoded::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    for p in batch {
        let topic = p.topic.as_str();
        if topic.starts_with("v1.1/") {
            match super::sta::decode(pipeline, token, topic, &p.payload) {
                Ok(records) => {
                    all.records.extend(records);
                    outcomes.push(Outcome::Accepted);
                }
                Err(r) => {
                    let name = format!("mqtt {topic}");
                    let src = Source { name: &name, token: Some(token), ..Default::default() };
                    pipeline.reject_whole(&src, &r.0, &p.payload).await;
                    outcomes.push(Outcome::PayloadRefused(r.0));
                }
            }
            continue;
        }
        let format = format_of(pipeline, topic, token);
        let decoded = match &format {
            Ok(f) => pipeline.decode(f, &p.payload).map_err(|r| Outcome::PayloadRefused(r.0)),
            Err(r) if topic.starts_with("agora/") => Err(Outcome::NotAuthorized(r.0.clone())),
            Err(r) => Err(Outcome::TopicRefused(r.0.clone())),
        };
        match decoded {
            Ok(m) => {
                let d = m.decoded.into_owned();
                all.records.extend(d.records);
                all.errors.extend(d.errors.into_iter().map(|mut e| {
                    e.reason = format!("{topic}: {}", e.reason);
                    e
                }));
                outcomes.push(Outcome::Accepted);
            }
            Err(outcome) => {
                let (Outcome::PayloadRefused(reason)
                | Outcome::TopicRefused(reason)
                | Outcome::NotAuthorized(reason)) = &outcome
                else {
                    unreachable!("a refusal has its reason")
                };
                let name = format!("mqtt {topic}");
                let src = Source {
                    name: &name,
                    token: Some(token),
                    format: format.clone().ok(),
                    ..Default::default()
                };
                pipeline.reject_whole(&src, reason, &p.payload).await;
                outcomes.push(outcome);
            }
        }
    }
    if all.records.is_empty() && all.errors.is_empty() {
        return Some(outcomes);
    }
    let src = Source { name: "mqtt endpoint", token: Some(token), ..Default::default() };
    match pipeline.ingest(&src, all).await {
        Ok(_) => Some(outcomes),
        Err(e) => {
            tracing::error!(error = %e, "storing MQTT messages failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_over_a_rate_pauses_its_client_until_the_debt_is_repaid() {
        let limits = BrokerLimits {
            messages_per_token: Rate { per_second: 10.0, burst: 10.0 },
            messages_per_address: Rate { per_second: 100.0, burst: 100.0 },
            ..BrokerLimits::default()
        };
        let rates = Rates::new(&limits);
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(rates.charge("t", stranger, 10, 100), None, "within the burst");
        // 30 more: 30 owed at 10 a second.
        let wait = rates.charge("t", stranger, 30, 100).unwrap();
        assert!(wait > Duration::from_millis(2900) && wait <= Duration::from_secs(3), "{wait:?}");
        // The token is held wherever it connects from; another token from there is not (the
        // address has room left).
        assert!(rates.charge("t", "192.0.2.2".parse().unwrap(), 1, 10).is_some());
        assert_eq!(rates.charge("u", stranger, 1, 10), None);
        // An IPv6 host cycling through the /64s of its /48 meets the /48's rate.
        let limits = BrokerLimits {
            messages_per_address: Rate { per_second: 10.0, burst: 10.0 },
            messages_per_network: Rate { per_second: 10.0, burst: 30.0 },
            ..BrokerLimits::default()
        };
        let rates = Rates::new(&limits);
        for i in 1..=3 {
            let ip = format!("2001:db8:48:{i}::1").parse().unwrap();
            assert_eq!(rates.charge(&format!("t{i}"), ip, 10, 10), None, "/64 number {i}");
        }
        let fourth = "2001:db8:48:4::1".parse().unwrap();
        assert!(rates.charge("t4", fourth, 1, 10).is_some(), "the /48 is spent");
        assert_eq!(rates.charge("t5", "2001:db8:49:1::1".parse().unwrap(), 1, 10), None);
        // Loopback is trusted by default.
        assert_eq!(rates.charge("t", "127.0.0.1".parse().unwrap(), 1000, 10), None);
    }
}
