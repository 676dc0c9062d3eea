//! Connections to MQTT brokers, as `agora.toml` describes them: host, port, credentials and TLS
//! (a certificate authority to trust, a client certificate). Subscriptions (`[[mqtt.subscriptions]]`)
//! and alert commands (`[alerts.mqtt]`) read the same settings with the same names, and connect
//! through [`Broker::options`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// A setting that cannot work, named with its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// How to reach a broker.
#[derive(Clone, Default, PartialEq, Deserialize)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// Port (1883, or 8883 with TLS by convention).
    #[serde(default = "default_port")]
    pub port: u16,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Connect with TLS.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the certificate authority to trust (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for brokers that require one.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// See `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

fn default_port() -> u16 {
    1883
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log line.
        f.debug_struct("Broker")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "••••••"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .finish()
    }
}

impl Broker {
    /// How to reach it: plain TCP, or TLS with the configured trust and client certificate.
    /// `what` names the setting in messages (`subscription "lns"`, `[alerts.mqtt]`). Checked at
    /// start-up so that a wrong path stops agora with a clear message.
    pub fn transport(&self, what: &str) -> Result<rumqttc::Transport, ConfigError> {
        if !self.tls {
            if self.ca_file.is_some() || self.client_cert_file.is_some() {
                return Err(ConfigError(format!(
                    "{what}: ca_file and client certificates need tls = true"
                )));
            }
            return Ok(rumqttc::Transport::tcp());
        }
        // One process-wide crypto provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| ConfigError(format!("{what}: cannot read {}: {e}", p.display())))
        };
        let client_auth = match (&self.client_cert_file, &self.client_key_file) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => {
                return Err(ConfigError(format!(
                    "{what}: give both client_cert_file and client_key_file"
                )));
            }
        };
        Ok(match &self.ca_file {
            Some(ca) => rumqttc::Transport::tls(read(ca)?, client_auth, None),
            None if client_auth.is_none() => rumqttc::Transport::tls_with_default_config(),
            None => {
                return Err(ConfigError(format!("{what}: a client certificate needs ca_file")));
            }
        })
    }

    /// Client options to connect as `client_id`: address, credentials and transport.
    pub fn options(
        &self,
        client_id: impl Into<String>,
        what: &str,
    ) -> Result<rumqttc::MqttOptions, ConfigError> {
        let mut o = rumqttc::MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_transport(self.transport(what)?);
        if let Some(u) = &self.username {
            o.set_credentials(u.clone(), self.password.clone().unwrap_or_default());
        }
        Ok(o)
    }
}

/// Keys of a table that no field took (gathered with `#[serde(flatten)]`, since serde cannot deny
/// unknown fields beside a flattened struct): refused with their names.
pub fn refuse_unknown(what: &str, unknown: &BTreeMap<String, IgnoredAny>) -> Result<(), String> {
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = unknown.keys().map(String::as_str).collect();
    Err(format!("{what}: unknown setting(s) {}", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(try_from = "Raw")]
    struct WithBroker {
        broker: Broker,
    }

    #[derive(Deserialize)]
    struct Raw {
        #[serde(flatten)]
        broker: Broker,
        #[serde(flatten)]
        unknown: BTreeMap<String, IgnoredAny>,
    }

    impl TryFrom<Raw> for WithBroker {
        type Error = String;
        fn try_from(r: Raw) -> Result<Self, String> {
            refuse_unknown("broker", &r.unknown)?;
            Ok(Self { broker: r.broker })
        }
    }

    #[test]
    fn settings_are_read_once_and_unknown_ones_refused() {
        let ok: WithBroker =
            toml::from_str("host = \"mqtt.example\"\ntls = true\nusername = \"agora\"").unwrap();
        assert_eq!(ok.broker.port, 1883);
        assert!(ok.broker.tls);
        let e = toml::from_str::<WithBroker>("host = \"h\"\nhots = \"typo\"").unwrap_err();
        assert!(e.to_string().contains("unknown setting(s) hots"), "{e}");
        let b = Broker { password: Some("s3cret".into()), ..Default::default() };
        assert!(!format!("{b:?}").contains("s3cret"));
    }

    fn refusal(b: &Broker) -> String {
        match b.transport("sub") {
            Ok(_) => panic!("accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn impossible_tls_settings_are_named() {
        let b = Broker { ca_file: Some("/x.pem".into()), ..Default::default() };
        assert!(refusal(&b).contains("need tls = true"));
        let b = Broker { tls: true, client_cert_file: Some("/c.pem".into()), ..Default::default() };
        assert!(refusal(&b).contains("give both"));
        let b = Broker { tls: true, ca_file: Some("/missing/ca.pem".into()), ..Default::default() };
        assert!(refusal(&b).contains("cannot read /missing/ca.pem"));
    }
}
