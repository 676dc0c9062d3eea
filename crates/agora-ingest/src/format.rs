//! The one table of input formats. Each [`Format`] carries what decoding needs besides the bytes
//! (a precision, a topic, sensor headers, the subscription whose byte layouts apply) and builds
//! its decoder; the same value, stored with a dead letter as a string such as
//! `line_protocol:ns` or `chirpstack:application/1/device/0101…/event/up#city-lns`, decodes it
//! again when it is replayed. HTTP handlers, MQTT subscriptions, agora's MQTT endpoint and replay
//! all go through [`Decoders::decode`], so adding a format is one variant here.

use std::collections::HashMap;

use agora_model::{Precision, Timestamp};
use serde::Deserialize;

use crate::Refusal;
use crate::chirpstack::Layouts;
use crate::record::Decoded;
use crate::{chirpstack, json, line_protocol, senml, sensor_community, thingsboard};

/// An input format, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// InfluxDB line protocol with timestamps in a precision.
    LineProtocol(Precision),
    /// agora's native JSON observations.
    Json,
    /// SenML JSON packs.
    Senml,
    /// A Sensor.Community push: the `X-Sensor` and `X-Pin` headers.
    SensorCommunity {
        /// `X-Sensor`.
        sensor: String,
        /// `X-Pin`.
        pin: Option<String>,
    },
    /// A ChirpStack v4 integration event on `topic`, received by an MQTT subscription whose byte
    /// layouts decode payloads that have no codec.
    Chirpstack {
        /// The event's topic (`application/{app}/device/{deveui}/event/up`).
        topic: String,
        /// The subscription it came through (`None`: no byte layouts).
        subscription: Option<String>,
    },
    /// ThingsBoard-style device telemetry (`{"pm10": 12}` or `{"ts", "values"}`) for a device.
    ThingsboardDevice(String),
    /// ThingsBoard gateway telemetry (`{"Device A": [{"ts": …, "values": {…}}]}`).
    ThingsboardGateway,
}

/// The payload formats an MQTT subscription may declare in `agora.toml`; with the topic of each
/// message, they give its [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// ChirpStack v4 integration events (`application/+/device/+/event/+`).
    Chirpstack,
    /// ThingsBoard gateway telemetry.
    ThingsboardGateway,
    /// `agora/{device}/telemetry` with ThingsBoard-style values.
    AgoraJson,
    /// SenML JSON packs.
    Senml,
    /// InfluxDB line protocol (nanosecond timestamps).
    LineProtocol,
}

impl MessageFormat {
    /// The format of a message on `topic` received by the subscription `subscription`.
    pub fn on_topic(self, topic: &str, subscription: &str) -> Result<Format, Refusal> {
        Ok(match self {
            Self::Chirpstack => Format::Chirpstack {
                topic: topic.to_owned(),
                subscription: Some(subscription.to_owned()),
            },
            Self::ThingsboardGateway => Format::ThingsboardGateway,
            Self::AgoraJson => match topic.split('/').collect::<Vec<_>>().as_slice() {
                [_, device, "telemetry"] => Format::ThingsboardDevice((*device).to_owned()),
                _ => {
                    return Err(format!("topic {topic:?} is not agora/{{device}}/telemetry").into());
                }
            },
            Self::Senml => Format::Senml,
            Self::LineProtocol => Format::LineProtocol(Precision::Nanoseconds),
        })
    }
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Nanoseconds => "ns",
        Precision::Microseconds => "us",
        Precision::Milliseconds => "ms",
        Precision::Seconds => "s",
    }
}

impl Format {
    /// The form stored with a dead letter.
    pub fn encode(&self) -> String {
        match self {
            Self::LineProtocol(p) => format!("line_protocol:{}", precision_name(*p)),
            Self::Json => "json".into(),
            Self::Senml => "senml".into(),
            Self::SensorCommunity { sensor, pin } => {
                format!("sensor_community:{}:{sensor}", pin.as_deref().unwrap_or(""))
            }
            // A topic name never holds `#` (MQTT forbids wildcards in published topics), so the
            // first `#` ends it.
            Self::Chirpstack { topic, subscription: None } => format!("chirpstack:{topic}"),
            Self::Chirpstack { topic, subscription: Some(s) } => format!("chirpstack:{topic}#{s}"),
            Self::ThingsboardDevice(d) => format!("thingsboard_device:{d}"),
            Self::ThingsboardGateway => "thingsboard_gateway".into(),
        }
    }

    /// Parse the stored form (`None`: not a form agora writes).
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        Some(match kind {
            "line_protocol" => Self::LineProtocol(rest.parse().ok()?),
            "json" => Self::Json,
            "senml" => Self::Senml,
            "sensor_community" => {
                let (pin, sensor) = rest.split_once(':')?;
                Self::SensorCommunity {
                    sensor: sensor.to_owned(),
                    pin: (!pin.is_empty()).then(|| pin.to_owned()),
                }
            }
            "chirpstack" => match rest.split_once('#') {
                Some((topic, sub)) => {
                    Self::Chirpstack { topic: topic.to_owned(), subscription: Some(sub.to_owned()) }
                }
                None => Self::Chirpstack { topic: rest.to_owned(), subscription: None },
            },
            "thingsboard_device" => Self::ThingsboardDevice(rest.to_owned()),
            "thingsboard_gateway" => Self::ThingsboardGateway,
            _ => return None,
        })
    }
}

/// What a decoder made of a body or message.
#[derive(Debug, Default)]
pub struct Message<'a> {
    /// Records and refused lines.
    pub decoded: Decoded<'a>,
    /// A ChirpStack event's `deduplicationId` (the same uplink heard twice has the same one).
    pub dedup_id: Option<String>,
}

/// Decoders of every format, with what some of them need from the configuration: the byte
/// layouts of each MQTT subscription (by subscription name).
#[derive(Debug, Clone, Default)]
pub struct Decoders {
    layouts: HashMap<String, Layouts>,
}

impl Decoders {
    /// Decoders with the byte layouts of each subscription.
    pub fn new(layouts: HashMap<String, Layouts>) -> Self {
        Self { layouts }
    }

    /// Decode a body or message. Refusing the whole input (`Err`) names why; a decoder that
    /// refuses some lines keeps the others.
    pub fn decode<'a>(
        &self,
        format: &Format,
        raw: &'a [u8],
        now: Timestamp,
    ) -> Result<Message<'a>, Refusal> {
        let plain = |decoded| Message { decoded, dedup_id: None };
        Ok(match format {
            Format::LineProtocol(p) => plain(line_protocol::decode(raw, *p)),
            Format::Json => plain(json::decode(raw)?),
            Format::Senml => plain(senml::decode(raw, now)?),
            Format::SensorCommunity { sensor, pin } => {
                plain(sensor_community::decode(sensor, pin.as_deref(), raw)?)
            }
            Format::Chirpstack { topic, subscription } => {
                let none = Layouts::new();
                let layouts =
                    subscription.as_ref().and_then(|s| self.layouts.get(s)).unwrap_or(&none);
                let e = chirpstack::decode(topic, raw, layouts)?;
                Message { decoded: e.decoded, dedup_id: e.dedup_id }
            }
            Format::ThingsboardDevice(d) => plain(thingsboard::decode_device(d, raw)?),
            Format::ThingsboardGateway => plain(thingsboard::decode_gateway(raw)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_roundtrip() {
        for f in [
            Format::LineProtocol(Precision::Seconds),
            Format::LineProtocol(Precision::Nanoseconds),
            Format::Json,
            Format::Senml,
            Format::SensorCommunity { sensor: "esp8266-1".into(), pin: Some("1".into()) },
            Format::SensorCommunity { sensor: "esp8266-1".into(), pin: None },
            Format::Chirpstack {
                topic: "application/a/device/01/event/up".into(),
                subscription: None,
            },
            Format::Chirpstack {
                topic: "application/a/device/01/event/up".into(),
                subscription: Some("lns #2: city".into()),
            },
            Format::ThingsboardDevice("lamp-1".into()),
            Format::ThingsboardGateway,
        ] {
            assert_eq!(Format::parse(&f.encode()), Some(f));
        }
        assert_eq!(Format::parse("carrier-pigeon"), None);
        // Dead letters written before subscriptions were recorded still parse.
        assert_eq!(
            Format::parse("chirpstack:application/a/device/01/event/up"),
            Some(Format::Chirpstack {
                topic: "application/a/device/01/event/up".into(),
                subscription: None
            })
        );
    }

    #[test]
    fn a_subscription_gives_each_topic_its_format() {
        let f = MessageFormat::AgoraJson.on_topic("agora/lamp-1/telemetry", "s").unwrap();
        assert_eq!(f, Format::ThingsboardDevice("lamp-1".into()));
        assert!(MessageFormat::AgoraJson.on_topic("agora/lamp-1", "s").is_err());
        assert_eq!(
            MessageFormat::Chirpstack.on_topic("application/1/device/01/event/up", "lns").unwrap(),
            Format::Chirpstack {
                topic: "application/1/device/01/event/up".into(),
                subscription: Some("lns".into())
            }
        );
    }
}
