//! The MQTT versions agora's endpoint speaks — 3.1.1 (with 3.1, its predecessor, read as 3.1.1)
//! and 5 — behind one set of packets, so that the session logic in [`super::broker`] is written
//! once. The bytes are parsed and written by rumqttc's codecs; this module adds what a server
//! needs on top: the version chosen at CONNECT, MQTT 5 topic aliases, the client's maximum packet
//! size, and reason codes and strings where MQTT 5 has them (3.1.1 has none to give).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

/// The quality of service of a message, whichever version carried it (MQTT's own names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub(super) enum QoS {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

/// The protocol a client connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// MQTT 3.1.1 (and 3.1, answered the same way).
    V3,
    /// MQTT 5.
    V5,
}

/// A CONNECT, whichever version sent it.
#[derive(Debug)]
pub(super) struct Connect {
    pub(super) version: Version,
    pub(super) client_id: String,
    /// Seconds; 0 means none.
    pub(super) keep_alive: u16,
    /// User name then password, where given: either may hold the token.
    pub(super) credentials: Vec<String>,
    /// How long the client asks its session to outlive the connection (MQTT 5), in seconds.
    pub(super) session_expiry: u32,
    /// Largest packet the client accepts (MQTT 5).
    pub(super) max_packet: Option<u32>,
    /// Whether the client accepts reason strings on acknowledgements (MQTT 5, default yes).
    pub(super) problem_info: bool,
    /// An extended authentication method, which agora does not offer (MQTT 5).
    pub(super) auth_method: Option<String>,
}

/// A PUBLISH from a client, its topic alias (if any) resolved.
#[derive(Debug, Clone)]
pub(super) struct Publish {
    pub(super) topic: String,
    pub(super) qos: QoS,
    pub(super) pkid: u16,
    pub(super) payload: Bytes,
}

/// What a client sends once connected.
#[derive(Debug)]
pub(super) enum Incoming {
    Publish(Publish),
    PubRel(u16),
    Subscribe { pkid: u16, filters: Vec<String> },
    Unsubscribe { pkid: u16, filters: Vec<String> },
    PingReq,
    Disconnect,
}

/// Why a connection is closed by the server: an MQTT 5 DISCONNECT reason code and words for the
/// client and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    pub(super) code: v5::DisconnectReasonCode,
    pub(super) reason: String,
}

impl Violation {
    pub(super) fn new(code: v5::DisconnectReasonCode, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into() }
    }

    fn malformed(e: impl std::fmt::Debug) -> Self {
        Self::new(
            v5::DisconnectReasonCode::MalformedPacket,
            format!("malformed MQTT packet: {e:?}"),
        )
    }
}

/// What reading the buffer gave.
#[derive(Debug)]
pub(super) enum Read<T> {
    Packet(T),
    /// At least this many more bytes are needed.
    Need(usize),
}

/// The first packet of a connection.
#[derive(Debug)]
pub(super) enum First {
    Connect(Connect),
    /// A CONNECT of a version agora does not speak: its protocol name and level.
    Unsupported(String, u8),
}

/// How much of the packet at the start of `buf` is there: its whole length once its header is
/// readable. A packet larger than `max` is refused before it is waited for.
fn frame(buf: &[u8], max: usize) -> Result<Option<usize>, Violation> {
    match remaining_length(buf) {
        Some((len, n)) => {
            let whole = 1 + n + len;
            if whole > max {
                return Err(too_large(whole, max));
            }
            Ok(Some(whole))
        }
        // Four length bytes all saying "more follows": not MQTT.
        None if buf.len() >= 5 => Err(Violation::new(
            v5::DisconnectReasonCode::MalformedPacket,
            "malformed MQTT packet: bad remaining length",
        )),
        None => Ok(None),
    }
}

/// Read a CONNECT from the start of `buf`.
pub(super) fn read_connect(buf: &mut BytesMut, max: usize) -> Result<Read<First>, Violation> {
    let Some(whole) = frame(buf, max)? else { return Ok(Read::Need(1)) };
    if buf.len() < whole {
        return Ok(Read::Need(whole - buf.len()));
    }
    // The whole packet is here: whatever the parsers miss now is missing from the packet.
    if buf[0] != 0x10 {
        return Err(Violation::new(
            v5::DisconnectReasonCode::ProtocolError,
            "the first packet was not CONNECT",
        ));
    }
    let Some((name, level)) = connect_protocol(&buf[..whole]) else {
        return Err(Violation::new(
            v5::DisconnectReasonCode::MalformedPacket,
            "malformed CONNECT: no protocol name and level",
        ));
    };
    match (name.as_str(), level) {
        ("MQTT", 5) => match v5::Packet::read(buf, Some(max as u32)) {
            Ok(v5::Packet::Connect(c, _will, login)) => {
                let p = c.properties.unwrap_or_else(v5::ConnectProperties::new);
                Ok(Read::Packet(First::Connect(Connect {
                    version: Version::V5,
                    client_id: c.client_id,
                    keep_alive: c.keep_alive,
                    credentials: login.map(|l| vec![l.username, l.password]).unwrap_or_default(),
                    session_expiry: p.session_expiry_interval.unwrap_or(0),
                    max_packet: p.max_packet_size,
                    problem_info: p.request_problem_info != Some(0),
                    auth_method: p.authentication_method,
                })))
            }
            Ok(_) => unreachable!("the packet's type is CONNECT"),
            Err(e) => Err(Violation::malformed(e)),
        },
        ("MQTT", 4) | ("MQIsdp", 3) => {
            if name == "MQIsdp" {
                // MQTT 3.1 differs from 3.1.1 in the protocol name and level of CONNECT and in
                // nothing this endpoint relies on afterwards: read it as 3.1.1.
                rewrite_v31_connect(buf);
            }
            match v4::Packet::read(buf, max) {
                Ok(v4::Packet::Connect(c)) => Ok(Read::Packet(First::Connect(Connect {
                    version: Version::V3,
                    client_id: c.client_id,
                    keep_alive: c.keep_alive,
                    credentials: c.login.map(|l| vec![l.username, l.password]).unwrap_or_default(),
                    session_expiry: 0,
                    max_packet: None,
                    problem_info: false,
                    auth_method: None,
                }))),
                Ok(_) => unreachable!("the packet's type is CONNECT"),
                Err(e) => Err(Violation::malformed(e)),
            }
        }
        _ => Ok(Read::Packet(First::Unsupported(name, level))),
    }
}

/// The protocol name and level of a CONNECT packet at the start of `buf`, read without parsing the
/// rest (so that a version the parsers do not know can still be answered).
fn connect_protocol(buf: &[u8]) -> Option<(String, u8)> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let i = 1 + remaining_length(buf)?.1;
    let len = usize::from(u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]));
    let name = String::from_utf8_lossy(buf.get(i + 2..i + 2 + len)?).into_owned();
    let level = *buf.get(i + 2 + len)?;
    Some((name, level))
}

/// The remaining length of the packet at the start of `buf` and how many bytes encode it.
fn remaining_length(buf: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for i in 0..4 {
        let b = *buf.get(1 + i)?;
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Encode a remaining length.
fn encode_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
}

/// Turn the complete MQTT 3.1 CONNECT at the start of `buf` into the 3.1.1 CONNECT it means.
fn rewrite_v31_connect(buf: &mut BytesMut) {
    let Some((len, n)) = remaining_length(buf) else { return };
    // The caller saw the protocol name and level inside the packet: at least 9 bytes.
    if len < 2 + 6 + 1 || buf.len() < 1 + n + len {
        return;
    }
    let frame = buf.split_to(1 + n + len);
    // Variable header: 00 06 "MQIsdp" 03, then the flags; 3.1.1 has 00 04 "MQTT" 04.
    let rest = &frame[1 + n + 2 + 6 + 1..];
    let mut out = vec![0x10];
    encode_length(rest.len() + 2 + 4 + 1, &mut out);
    out.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4]);
    out.extend_from_slice(rest);
    let tail = buf.split();
    buf.extend_from_slice(&out);
    buf.unsplit(tail);
}

/// Why a subscription is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SubRefusal {
    /// The token may not read this.
    #[error("{0}")]
    NotAuthorized(String),
    /// Not a valid topic filter.
    #[error("{0}")]
    Invalid(String),
    /// The connection holds as many subscriptions as it may.
    #[error("{0}")]
    TooMany(String),
    /// A shared subscription (`$share/…`), which agora's endpoint does not offer.
    #[error("shared subscriptions are not offered on agora's endpoint")]
    Shared,
}

/// Check a topic filter's syntax (MQTT 3.1.1 §4.7.1, 5 §4.7.1): `#` alone as the last level,
/// `+` alone in a level.
pub(super) fn check_filter(filter: &str) -> Result<(), SubRefusal> {
    if filter.starts_with("$share/") {
        return Err(SubRefusal::Shared);
    }
    let bad = |why: &str| Err(SubRefusal::Invalid(format!("topic filter {filter:?}: {why}")));
    if filter.is_empty() {
        return bad("empty");
    }
    if filter.contains('\0') {
        return bad("holds a NUL character");
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return bad("'#' must be a whole level, the last one");
        }
        if l.contains('+') && *l != "+" {
            return bad("'+' must be a whole level");
        }
    }
    Ok(())
}

/// The answer to a CONNECT.
#[derive(Debug)]
pub(super) enum ConnAck<'a> {
    /// Connected; for MQTT 5, what the server grants.
    Accepted(&'a Grants),
    /// The token is missing or unknown.
    BadCredentials(&'a str),
    /// The token may not publish.
    NotAuthorized(&'a str),
    /// The client asked for extended authentication.
    BadAuthenticationMethod(&'a str),
    /// The client's version is not spoken.
    UnsupportedVersion,
}

/// What the endpoint grants an MQTT 5 client, announced in CONNACK.
#[derive(Debug, Clone)]
pub(super) struct Grants {
    /// How many QoS 1 and 2 messages the client may have unacknowledged.
    pub(super) receive_maximum: u16,
    /// Largest packet accepted.
    pub(super) max_packet: u32,
    /// Highest topic alias the client may use.
    pub(super) topic_alias_max: u16,
    /// The keep-alive the server holds the client to, when it differs from the client's own.
    pub(super) server_keep_alive: Option<u16>,
    /// The session expiry the server applies, when it differs from the client's request.
    pub(super) session_expiry: Option<u32>,
    /// The client id given to a client that sent none.
    pub(super) assigned_client_id: Option<String>,
}

/// A client's codec: its version, its topic aliases and what it accepts.
#[derive(Debug)]
pub(super) struct Codec {
    version: Version,
    aliases: HashMap<u16, String>,
    topic_alias_max: u16,
    client_max_packet: Option<u32>,
    problem_info: bool,
}

/// The outcome of a QoS 1 or 2 PUBLISH, for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Stored (or nothing in it needed storing).
    Accepted,
    /// Refused whole and kept as a dead letter: the topic is not one agora takes.
    TopicRefused(String),
    /// Refused whole and kept as a dead letter: the payload cannot be read.
    PayloadRefused(String),
    /// Refused whole and kept as a dead letter: the token may not write there.
    NotAuthorized(String),
}

impl Codec {
    pub(super) fn new(connect: &Connect, grants: &Grants) -> Self {
        Self {
            version: connect.version,
            aliases: HashMap::new(),
            topic_alias_max: grants.topic_alias_max,
            client_max_packet: connect.max_packet,
            problem_info: connect.problem_info,
        }
    }

    /// The next packet in `buf`, at most `max` bytes.
    pub(super) fn read(
        &mut self,
        buf: &mut BytesMut,
        max: usize,
    ) -> Result<Read<Incoming>, Violation> {
        let Some(whole) = frame(buf, max)? else { return Ok(Read::Need(1)) };
        if buf.len() < whole {
            return Ok(Read::Need(whole - buf.len()));
        }
        // The whole packet is here: a parser asking for more bytes means the packet is short of
        // what it announces (it is consumed all the same), which is malformed, not incomplete.
        match self.version {
            Version::V3 => self.read_v3(buf, max),
            Version::V5 => self.read_v5(buf, max),
        }
    }

    fn read_v3(&mut self, buf: &mut BytesMut, max: usize) -> Result<Read<Incoming>, Violation> {
        use rumqttc::mqttbytes::QoS as Q;
        let p = v4::Packet::read(buf, max).map_err(Violation::malformed)?;
        Ok(Read::Packet(match p {
            v4::Packet::Publish(p) => Incoming::Publish(Publish {
                topic: topic_name(p.topic)?,
                qos: match p.qos {
                    Q::AtMostOnce => QoS::AtMostOnce,
                    Q::AtLeastOnce => QoS::AtLeastOnce,
                    Q::ExactlyOnce => QoS::ExactlyOnce,
                },
                pkid: p.pkid,
                payload: p.payload,
            }),
            v4::Packet::PubRel(r) => Incoming::PubRel(r.pkid),
            v4::Packet::Subscribe(s) => Incoming::Subscribe {
                pkid: s.pkid,
                filters: s.filters.into_iter().map(|f| f.path).collect(),
            },
            v4::Packet::Unsubscribe(u) => Incoming::Unsubscribe { pkid: u.pkid, filters: u.topics },
            v4::Packet::PingReq => Incoming::PingReq,
            v4::Packet::Disconnect => Incoming::Disconnect,
            other => return Err(unexpected(&other)),
        }))
    }

    fn read_v5(&mut self, buf: &mut BytesMut, max: usize) -> Result<Read<Incoming>, Violation> {
        use rumqttc::v5::mqttbytes::QoS as Q;
        // A normal DISCONNECT may be two bytes, which the codec refuses (it expects a reason).
        if buf.starts_with(&[0xe0, 0x00]) {
            let _ = buf.split_to(2);
            return Ok(Read::Packet(Incoming::Disconnect));
        }
        let p = v5::Packet::read(buf, Some(max as u32)).map_err(Violation::malformed)?;
        Ok(Read::Packet(match p {
            v5::Packet::Publish(p) => {
                let props = p.properties.unwrap_or_default();
                let topic = std::str::from_utf8(&p.topic)
                    .map_err(|_| {
                        Violation::new(
                            v5::DisconnectReasonCode::TopicNameInvalid,
                            "the topic is not UTF-8",
                        )
                    })?
                    .to_owned();
                let topic = match props.topic_alias {
                    None => topic,
                    Some(a) if a == 0 || a > self.topic_alias_max => {
                        return Err(Violation::new(
                            v5::DisconnectReasonCode::TopicAliasInvalid,
                            format!("topic alias {a} is outside 1..={}", self.topic_alias_max),
                        ));
                    }
                    Some(a) if topic.is_empty() => match self.aliases.get(&a) {
                        Some(t) => t.clone(),
                        None => {
                            return Err(Violation::new(
                                v5::DisconnectReasonCode::ProtocolError,
                                format!("topic alias {a} was never set"),
                            ));
                        }
                    },
                    Some(a) => {
                        self.aliases.insert(a, topic.clone());
                        topic
                    }
                };
                if topic.is_empty() {
                    return Err(Violation::new(
                        v5::DisconnectReasonCode::ProtocolError,
                        "a PUBLISH without topic or topic alias",
                    ));
                }
                let topic = topic_name(topic)?;
                Incoming::Publish(Publish {
                    topic,
                    qos: match p.qos {
                        Q::AtMostOnce => QoS::AtMostOnce,
                        Q::AtLeastOnce => QoS::AtLeastOnce,
                        Q::ExactlyOnce => QoS::ExactlyOnce,
                    },
                    pkid: p.pkid,
                    payload: p.payload,
                })
            }
            v5::Packet::PubRel(r) => Incoming::PubRel(r.pkid),
            v5::Packet::Subscribe(s) => Incoming::Subscribe {
                pkid: s.pkid,
                filters: s.filters.into_iter().map(|f| f.path).collect(),
            },
            v5::Packet::Unsubscribe(u) => {
                Incoming::Unsubscribe { pkid: u.pkid, filters: u.filters }
            }
            v5::Packet::PingReq(_) => Incoming::PingReq,
            v5::Packet::Disconnect(_) => Incoming::Disconnect,
            v5::Packet::Auth(_) => {
                return Err(Violation::new(
                    v5::DisconnectReasonCode::ProtocolError,
                    "AUTH without an authentication method",
                ));
            }
            other => return Err(unexpected(&other)),
        }))
    }

    /// The CONNACK for `answer`, written for `version`.
    pub(super) fn connack(version: Version, answer: &ConnAck<'_>, out: &mut BytesMut) {
        match version {
            Version::V3 => {
                use rumqttc::mqttbytes::v4::ConnectReturnCode as C;
                let code = match answer {
                    ConnAck::Accepted(_) => C::Success,
                    ConnAck::BadCredentials(_) => C::BadUserNamePassword,
                    ConnAck::NotAuthorized(_) | ConnAck::BadAuthenticationMethod(_) => {
                        C::NotAuthorized
                    }
                    ConnAck::UnsupportedVersion => C::RefusedProtocolVersion,
                };
                write_v4(&v4::Packet::ConnAck(v4::ConnAck::new(code, false)), out);
            }
            Version::V5 => {
                use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as C;
                let mut p = empty_connack_properties();
                let code = match answer {
                    ConnAck::Accepted(g) => {
                        p.receive_max = Some(g.receive_maximum);
                        p.max_packet_size = Some(g.max_packet);
                        p.topic_alias_max = Some(g.topic_alias_max);
                        p.server_keep_alive = g.server_keep_alive;
                        p.session_expiry_interval = g.session_expiry;
                        p.retain_available = Some(0);
                        p.wildcard_subscription_available = Some(1);
                        p.subscription_identifiers_available = Some(0);
                        p.shared_subscription_available = Some(0);
                        p.assigned_client_identifier = g.assigned_client_id.clone();
                        C::Success
                    }
                    ConnAck::BadCredentials(why) => {
                        p.reason_string = Some((*why).to_owned());
                        C::BadUserNamePassword
                    }
                    ConnAck::NotAuthorized(why) => {
                        p.reason_string = Some((*why).to_owned());
                        C::NotAuthorized
                    }
                    ConnAck::BadAuthenticationMethod(why) => {
                        p.reason_string = Some((*why).to_owned());
                        C::BadAuthenticationMethod
                    }
                    ConnAck::UnsupportedVersion => C::UnsupportedProtocolVersion,
                };
                let ack = v5::ConnAck { session_present: false, code, properties: Some(p) };
                write_v5(&v5::Packet::ConnAck(ack), out);
            }
        }
    }

    /// The acknowledgement of a QoS 1 or 2 PUBLISH (nothing for QoS 0). MQTT 3.1.1 has no
    /// reason codes: a refused message is acknowledged all the same (it is kept as a dead letter).
    pub(super) fn ack(&self, p: &Publish, outcome: &Outcome, out: &mut BytesMut) {
        match self.version {
            Version::V3 => match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => write_v4(&v4::Packet::PubAck(v4::PubAck::new(p.pkid)), out),
                QoS::ExactlyOnce => write_v4(&v4::Packet::PubRec(v4::PubRec::new(p.pkid)), out),
            },
            Version::V5 => {
                let (code, why) = match outcome {
                    Outcome::Accepted => (0x00, None),
                    Outcome::TopicRefused(w) => (0x90, Some(w)),
                    Outcome::PayloadRefused(w) => (0x99, Some(w)),
                    Outcome::NotAuthorized(w) => (0x87, Some(w)),
                };
                let reason_string = why.filter(|_| self.problem_info).map(|w| truncate(w, 512));
                match p.qos {
                    QoS::AtMostOnce => {}
                    QoS::AtLeastOnce => {
                        use v5::PubAckReason as R;
                        let reason = match code {
                            0x00 => R::Success,
                            0x90 => R::TopicNameInvalid,
                            0x99 => R::PayloadFormatInvalid,
                            _ => R::NotAuthorized,
                        };
                        let properties = reason_string.map(|reason_string| v5::PubAckProperties {
                            reason_string: Some(reason_string),
                            user_properties: Vec::new(),
                        });
                        let ack = v5::PubAck { pkid: p.pkid, reason, properties };
                        self.write_v5_bounded(&v5::Packet::PubAck(ack), out);
                    }
                    QoS::ExactlyOnce => {
                        use v5::PubRecReason as R;
                        let reason = match code {
                            0x00 => R::Success,
                            0x90 => R::TopicNameInvalid,
                            0x99 => R::PayloadFormatInvalid,
                            _ => R::NotAuthorized,
                        };
                        let properties = reason_string.map(|reason_string| v5::PubRecProperties {
                            reason_string: Some(reason_string),
                            user_properties: Vec::new(),
                        });
                        let ack = v5::PubRec { pkid: p.pkid, reason, properties };
                        self.write_v5_bounded(&v5::Packet::PubRec(ack), out);
                    }
                }
            }
        }
    }

    pub(super) fn pubcomp(&self, pkid: u16, out: &mut BytesMut) {
        match self.version {
            Version::V3 => write_v4(&v4::Packet::PubComp(v4::PubComp::new(pkid)), out),
            Version::V5 => write_v5(&v5::Packet::PubComp(v5::PubComp::new(pkid, None)), out),
        }
    }

    /// The SUBACK granting (QoS 0) or refusing each filter; a refusal carries its reason.
    pub(super) fn suback(&self, pkid: u16, granted: &[Result<(), SubRefusal>], out: &mut BytesMut) {
        match self.version {
            Version::V3 => {
                use rumqttc::mqttbytes::v4::SubscribeReasonCode as C;
                let codes = granted
                    .iter()
                    .map(|g| match g {
                        Ok(()) => C::Success(rumqttc::mqttbytes::QoS::AtMostOnce),
                        Err(_) => C::Failure,
                    })
                    .collect();
                write_v4(&v4::Packet::SubAck(v4::SubAck::new(pkid, codes)), out);
            }
            Version::V5 => {
                use v5::SubscribeReasonCode as C;
                let return_codes = granted
                    .iter()
                    .map(|g| match g {
                        Ok(()) => C::Success(rumqttc::v5::mqttbytes::QoS::AtMostOnce),
                        Err(SubRefusal::NotAuthorized(_)) => C::NotAuthorized,
                        Err(SubRefusal::Invalid(_)) => C::TopicFilterInvalid,
                        Err(SubRefusal::TooMany(_)) => C::QuotaExceeded,
                        Err(SubRefusal::Shared) => C::SharedSubscriptionsNotSupported,
                    })
                    .collect();
                let why: Vec<String> = granted
                    .iter()
                    .filter_map(|g| g.as_ref().err())
                    .map(ToString::to_string)
                    .collect();
                let properties =
                    (self.problem_info && !why.is_empty()).then(|| v5::SubAckProperties {
                        reason_string: Some(truncate(&why.join("; "), 512)),
                        user_properties: Vec::new(),
                    });
                let ack = v5::SubAck { pkid, return_codes, properties };
                self.write_v5_bounded(&v5::Packet::SubAck(ack), out);
            }
        }
    }

    /// The UNSUBACK: for MQTT 5, whether each filter was subscribed.
    pub(super) fn unsuback(&self, pkid: u16, existed: &[bool], out: &mut BytesMut) {
        match self.version {
            Version::V3 => write_v4(&v4::Packet::UnsubAck(v4::UnsubAck::new(pkid)), out),
            Version::V5 => {
                let reasons = existed
                    .iter()
                    .map(|&e| {
                        if e {
                            v5::UnsubAckReason::Success
                        } else {
                            v5::UnsubAckReason::NoSubscriptionExisted
                        }
                    })
                    .collect();
                let ack = v5::UnsubAck { pkid, reasons, properties: None };
                write_v5(&v5::Packet::UnsubAck(ack), out);
            }
        }
    }

    pub(super) fn pingresp(&self, out: &mut BytesMut) {
        match self.version {
            Version::V3 => write_v4(&v4::Packet::PingResp, out),
            Version::V5 => write_v5(&v5::Packet::PingResp(v5::PingResp), out),
        }
    }

    /// A QoS 0 message to the client; false (nothing written) when it is larger than the client
    /// accepts, which MQTT 5 requires the server to drop.
    pub(super) fn publish(&self, topic: &str, payload: Bytes, out: &mut BytesMut) -> bool {
        match self.version {
            Version::V3 => {
                let p =
                    v4::Publish::from_bytes(topic, rumqttc::mqttbytes::QoS::AtMostOnce, payload);
                write_v4(&v4::Packet::Publish(p), out);
                true
            }
            Version::V5 => {
                let p =
                    v5::Publish::new(topic, rumqttc::v5::mqttbytes::QoS::AtMostOnce, payload, None);
                let p = v5::Packet::Publish(p);
                if self.client_max_packet.is_some_and(|m| p.size() > m as usize) {
                    return false;
                }
                write_v5(&p, out);
                true
            }
        }
    }

    /// The DISCONNECT telling an MQTT 5 client why the server closes (3.1.1 has none: the
    /// connection is just closed).
    pub(super) fn disconnect(&self, why: &Violation, out: &mut BytesMut) {
        if self.version == Version::V5 {
            let properties = self.problem_info.then(|| v5::DisconnectProperties {
                session_expiry_interval: None,
                reason_string: Some(truncate(&why.reason, 512)),
                user_properties: Vec::new(),
                server_reference: None,
            });
            let d = v5::Disconnect { reason_code: why.code, properties };
            self.write_v5_bounded(&v5::Packet::Disconnect(d), out);
        }
    }

    /// Write a packet that may carry a reason string, without it if the client's maximum packet
    /// size would be exceeded (MQTT 5 says to leave the reason out rather than drop the packet).
    fn write_v5_bounded(&self, p: &v5::Packet, out: &mut BytesMut) {
        if self.client_max_packet.is_some_and(|m| p.size() > m as usize) {
            let mut bare = p.clone();
            match &mut bare {
                v5::Packet::PubAck(a) => a.properties = None,
                v5::Packet::PubRec(a) => a.properties = None,
                v5::Packet::SubAck(a) => a.properties = None,
                v5::Packet::Disconnect(d) => d.properties = None,
                _ => {}
            }
            write_v5(&bare, out);
        } else {
            write_v5(p, out);
        }
    }
}

fn empty_connack_properties() -> v5::ConnAckProperties {
    v5::ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_max: None,
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    }
}

/// A topic a message is published to: wildcards belong to filters, never to topic names.
fn topic_name(topic: String) -> Result<String, Violation> {
    if topic.contains(['+', '#']) {
        return Err(Violation::new(
            v5::DisconnectReasonCode::TopicNameInvalid,
            format!("topic {topic:?} holds a wildcard: messages are published to topic names"),
        ));
    }
    Ok(topic)
}

fn too_large(size: usize, max: usize) -> Violation {
    Violation::new(
        v5::DisconnectReasonCode::PacketTooLarge,
        format!("packet of {size} bytes is larger than the {max} accepted"),
    )
}

fn unexpected(p: &impl std::fmt::Debug) -> Violation {
    let name = format!("{p:?}");
    let name = name.split(['(', ' ', '{']).next().unwrap_or("packet").to_owned();
    Violation::new(
        v5::DisconnectReasonCode::ProtocolError,
        format!("unexpected {name} from a client"),
    )
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

// Writing to a growable buffer fails only for packets larger than a limit, and none is given.
fn write_v4(p: &v4::Packet, out: &mut BytesMut) {
    p.write(out, usize::MAX).expect("writing to a buffer without a size limit");
}

fn write_v5(p: &v5::Packet, out: &mut BytesMut) {
    p.write(out, None).expect("writing to a buffer without a size limit");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v31_connect() -> Vec<u8> {
        // MQTT 3.1 CONNECT: clean session, user name "tok", keep-alive 60, client id "c".
        let mut body = vec![0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0b1000_0010, 0, 60];
        body.extend_from_slice(&[0, 1, b'c', 0, 3, b't', b'o', b'k']);
        let mut p = vec![0x10];
        encode_length(body.len(), &mut p);
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn an_mqtt_3_1_connect_is_read_as_3_1_1() {
        let mut buf = BytesMut::from(&v31_connect()[..]);
        buf.extend_from_slice(&[0xc0, 0x00]); // PINGREQ after it stays in the buffer
        let Read::Packet(First::Connect(c)) = read_connect(&mut buf, 1 << 16).unwrap() else {
            panic!("not read");
        };
        assert_eq!(c.version, Version::V3);
        assert_eq!(c.client_id, "c");
        assert_eq!(c.keep_alive, 60);
        assert_eq!(c.credentials, ["tok", ""]);
        assert_eq!(&buf[..], &[0xc0, 0x00]);
    }

    #[test]
    fn a_partial_connect_asks_for_more() {
        let whole = v31_connect();
        for cut in 1..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert!(matches!(read_connect(&mut buf, 1 << 16), Ok(Read::Need(_))), "cut at {cut}");
        }
    }

    #[test]
    fn other_versions_are_named() {
        let mut buf = BytesMut::from(&[0x10, 0x07, 0, 4, b'M', b'Q', b'T', b'T', 6, 0, 0][..]);
        let Read::Packet(First::Unsupported(name, level)) =
            read_connect(&mut buf, 1 << 16).unwrap()
        else {
            panic!("not refused");
        };
        assert_eq!((name.as_str(), level), ("MQTT", 6));
        let mut buf = BytesMut::from(&[0x30, 0x03, 0, 1, b'a'][..]);
        assert!(read_connect(&mut buf, 1 << 16).is_err(), "PUBLISH before CONNECT");
    }

    fn v5_codec() -> Codec {
        let connect = Connect {
            version: Version::V5,
            client_id: "c".into(),
            keep_alive: 60,
            credentials: vec![],
            session_expiry: 0,
            max_packet: Some(64),
            problem_info: true,
            auth_method: None,
        };
        let grants = Grants {
            receive_maximum: 10,
            max_packet: 1 << 20,
            topic_alias_max: 4,
            server_keep_alive: None,
            session_expiry: None,
            assigned_client_id: None,
        };
        Codec::new(&connect, &grants)
    }

    fn v5_publish(topic: &str, alias: Option<u16>, payload: &[u8]) -> BytesMut {
        let props =
            alias.map(|a| v5::PublishProperties { topic_alias: Some(a), ..Default::default() });
        let mut p = v5::Publish::new(
            topic,
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            payload.to_vec(),
            props,
        );
        p.pkid = 7;
        let mut out = BytesMut::new();
        write_v5(&v5::Packet::Publish(p), &mut out);
        out
    }

    #[test]
    fn topic_aliases_are_set_then_used_and_bounded() {
        let mut c = v5_codec();
        let mut buf = v5_publish("agora/a/telemetry", Some(2), b"{}");
        buf.extend_from_slice(&v5_publish("", Some(2), b"{\"x\":1}"));
        for payload in [&b"{}"[..], b"{\"x\":1}"] {
            let Read::Packet(Incoming::Publish(p)) = c.read(&mut buf, 1 << 20).unwrap() else {
                panic!("no publish");
            };
            assert_eq!(p.topic, "agora/a/telemetry");
            assert_eq!(&p.payload[..], payload);
        }
        let mut unknown = v5_publish("", Some(3), b"{}");
        assert_eq!(
            c.read(&mut unknown, 1 << 20).unwrap_err().code,
            v5::DisconnectReasonCode::ProtocolError
        );
        let mut beyond = v5_publish("t", Some(5), b"{}");
        assert_eq!(
            c.read(&mut beyond, 1 << 20).unwrap_err().code,
            v5::DisconnectReasonCode::TopicAliasInvalid
        );
    }

    #[test]
    fn a_short_disconnect_and_an_oversized_packet() {
        let mut c = v5_codec();
        let mut buf = BytesMut::from(&[0xe0, 0x00][..]);
        assert!(matches!(c.read(&mut buf, 1 << 20), Ok(Read::Packet(Incoming::Disconnect))));
        let mut big = v5_publish("t", None, &[b'x'; 300]);
        assert_eq!(
            c.read(&mut big, 100).unwrap_err().code,
            v5::DisconnectReasonCode::PacketTooLarge
        );
    }

    #[test]
    fn refusals_carry_reason_codes_within_the_clients_packet_size() {
        let c = v5_codec();
        let p =
            Publish { topic: "x".into(), qos: QoS::AtLeastOnce, pkid: 9, payload: Bytes::new() };
        let mut out = BytesMut::new();
        c.ack(&p, &Outcome::TopicRefused("unknown topic \"x\"".into()), &mut out);
        let v5::Packet::PubAck(a) = v5::Packet::read(&mut out, None).unwrap() else { panic!() };
        assert_eq!(a.reason, v5::PubAckReason::TopicNameInvalid);
        assert_eq!(a.properties.unwrap().reason_string.unwrap(), "unknown topic \"x\"");
        // The client accepts packets of 64 bytes at most: the reason string is left out.
        c.ack(&p, &Outcome::PayloadRefused("x".repeat(100)), &mut out);
        let v5::Packet::PubAck(a) = v5::Packet::read(&mut out, None).unwrap() else { panic!() };
        assert_eq!(a.reason, v5::PubAckReason::PayloadFormatInvalid);
        assert!(a.properties.is_none());
        // Nor is a message larger than that delivered.
        assert!(!c.publish("t", Bytes::from(vec![0; 100]), &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn a_partial_packet_asks_for_more_in_each_version() {
        let whole = v5_publish("agora/a/telemetry", Some(1), b"{}");
        for version in [Version::V3, Version::V5] {
            let mut c = v5_codec();
            c.version = version;
            for cut in 0..whole.len() {
                let mut buf = BytesMut::from(&whole[..cut]);
                assert!(
                    matches!(c.read(&mut buf, 1 << 20), Ok(Read::Need(_))),
                    "{version:?} cut at {cut}"
                );
                assert_eq!(buf.len(), cut, "nothing consumed");
            }
        }
    }

    #[test]
    fn a_truncated_mqtt_3_1_connect_is_malformed_not_a_panic() {
        // Remaining length 0, then the 3.1 protocol name and level: the packet ends before them.
        let mut buf =
            BytesMut::from(&[0x10, 0x00, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 3][..]);
        assert!(read_connect(&mut buf, 1 << 16).is_err());
        // A CONNECT announcing more than the limit is refused before it is waited for.
        let mut buf = BytesMut::from(&[0x10, 0xff, 0xff, 0xff, 0x7f][..]);
        assert_eq!(
            read_connect(&mut buf, 1 << 16).unwrap_err().code,
            v5::DisconnectReasonCode::PacketTooLarge
        );
    }

    #[test]
    fn a_packet_shorter_than_it_says_is_malformed_and_wildcards_are_not_topics() {
        let mut c = v5_codec();
        // A 3.1.1 PUBLISH (no property length) after an MQTT 5 CONNECT: the v5 parser runs out
        // of bytes inside the packet.
        let mut buf = BytesMut::from(&[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x07][..]);
        assert_eq!(
            c.read(&mut buf, 1 << 20).unwrap_err().code,
            v5::DisconnectReasonCode::MalformedPacket
        );
        let mut wild = v5_publish("agora/+/telemetry", None, b"{}");
        assert_eq!(
            c.read(&mut wild, 1 << 20).unwrap_err().code,
            v5::DisconnectReasonCode::TopicNameInvalid
        );
    }

    #[test]
    fn filters_are_checked() {
        for ok in ["a/b", "a/+/c", "#", "a/#", "+", "v1/devices/me/rpc/request/+"] {
            assert_eq!(check_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "#/a", "a/+x"] {
            assert!(matches!(check_filter(bad), Err(SubRefusal::Invalid(_))), "{bad}");
        }
        assert_eq!(check_filter("$share/g/a"), Err(SubRefusal::Shared));
    }

    proptest::proptest! {
        #[test]
        fn no_input_makes_the_codecs_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)) {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = read_connect(&mut buf, 1 << 16);
            // Packets after CONNECT, in each version; the 3.1 and 5 CONNECT headers as prefixes
            // steer the fuzzing towards the interesting paths.
            for prefix in [&[][..], &[0x10, 0x0c, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3][..], &[0x10, 0x0a, 0, 4, b'M', b'Q', b'T', b'T', 5][..]] {
                let mut buf = BytesMut::from(prefix);
                buf.extend_from_slice(&bytes);
                let _ = read_connect(&mut buf, 1 << 16);
            }
            for version in [Version::V3, Version::V5] {
                let mut c = v5_codec();
                c.version = version;
                let mut buf = BytesMut::from(&bytes[..]);
                for _ in 0..8 {
                    match c.read(&mut buf, 1 << 16) {
                        Ok(Read::Packet(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
