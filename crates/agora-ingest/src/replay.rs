//! Dead letters can be replayed once the cause is fixed (a device declared, a mapping corrected):
//! each one keeps the format its input was in, with what decoding needs besides the bytes (the
//! precision, the MQTT topic, the sensor headers…), as one string such as `line_protocol:ns` or
//! `chirpstack:application/1/device/0101…/event/up`.

use agora_model::{Precision, Timestamp};

use crate::record::Decoded;
use crate::{chirpstack, json, line_protocol, senml, sensor_community, thingsboard};

/// How a dead letter's bytes are decoded again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// InfluxDB line protocol in a precision.
    LineProtocol(&'static str),
    /// agora's native JSON observations.
    Json,
    /// SenML.
    Senml,
    /// A Sensor.Community push: the `X-Sensor` and `X-Pin` headers.
    SensorCommunity {
        /// `X-Sensor`.
        sensor: String,
        /// `X-Pin`.
        pin: Option<String>,
    },
    /// A ChirpStack event from this topic.
    Chirpstack(String),
    /// ThingsBoard device telemetry for this device.
    ThingsboardDevice(String),
    /// ThingsBoard gateway telemetry.
    ThingsboardGateway,
}

impl Replay {
    /// The line protocol replay for a precision.
    pub fn line_protocol(p: Precision) -> Self {
        Self::LineProtocol(match p {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        match self {
            Self::LineProtocol(p) => format!("line_protocol:{p}"),
            Self::Json => "json".into(),
            Self::Senml => "senml".into(),
            Self::SensorCommunity { sensor, pin } => {
                format!("sensor_community:{}:{sensor}", pin.as_deref().unwrap_or(""))
            }
            Self::Chirpstack(topic) => format!("chirpstack:{topic}"),
            Self::ThingsboardDevice(d) => format!("thingsboard_device:{d}"),
            Self::ThingsboardGateway => "thingsboard_gateway".into(),
        }
    }

    /// Parse the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        Some(match kind {
            "line_protocol" => Self::line_protocol(rest.parse().ok()?),
            "json" => Self::Json,
            "senml" => Self::Senml,
            "sensor_community" => {
                let (pin, sensor) = rest.split_once(':')?;
                Self::SensorCommunity {
                    sensor: sensor.to_owned(),
                    pin: (!pin.is_empty()).then(|| pin.to_owned()),
                }
            }
            "chirpstack" => Self::Chirpstack(rest.to_owned()),
            "thingsboard_device" => Self::ThingsboardDevice(rest.to_owned()),
            "thingsboard_gateway" => Self::ThingsboardGateway,
            _ => return None,
        })
    }

    /// Decode the bytes again.
    pub fn decode(&self, raw: &[u8], now: Timestamp) -> Result<Decoded<'static>, String> {
        match self {
            Self::LineProtocol(p) => {
                let precision: Precision =
                    p.parse().map_err(|e: agora_model::Error| e.to_string())?;
                let d = line_protocol::decode(raw, precision);
                Ok(Decoded {
                    records: d.records.into_iter().map(crate::record::Record::into_owned).collect(),
                    errors: d.errors,
                })
            }
            Self::Json => json::decode(raw),
            Self::Senml => senml::decode(raw, now),
            Self::SensorCommunity { sensor, pin } => {
                sensor_community::decode(sensor, pin.as_deref(), raw)
            }
            Self::Chirpstack(topic) => {
                chirpstack::decode(topic, raw, &Default::default()).map(|e| e.decoded)
            }
            Self::ThingsboardDevice(d) => thingsboard::decode_device(d, raw),
            Self::ThingsboardGateway => thingsboard::decode_gateway(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_roundtrip() {
        for r in [
            Replay::line_protocol(Precision::Seconds),
            Replay::Json,
            Replay::Senml,
            Replay::SensorCommunity { sensor: "esp8266-1".into(), pin: Some("1".into()) },
            Replay::SensorCommunity { sensor: "esp8266-1".into(), pin: None },
            Replay::Chirpstack("application/a/device/01/event/up".into()),
            Replay::ThingsboardDevice("lamp-1".into()),
            Replay::ThingsboardGateway,
        ] {
            assert_eq!(Replay::parse(&r.encode()), Some(r));
        }
        assert_eq!(Replay::parse("carrier-pigeon"), None);
    }
}
