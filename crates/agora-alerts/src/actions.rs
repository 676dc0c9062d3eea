//! Actions: webhooks (JSON, HMAC-SHA256 signature, retries with exponential back-off), MQTT
//! commands to equipment and calls to a device's methods (RPC). Every attempt is logged with its outcome; each delivery runs in its own
//! task, so a failing endpoint never delays another.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value as JsonValue, json};
use sha2::Sha256;

use agora_store::alerts::AlertRecord;

use crate::egress::{self, Egress};
use crate::rule::{Event, Rule};
use crate::secrets::{mask_text, mask_url};

/// Why an action could not be carried out (no subscriber, the broker refused, no answer): shown
/// in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryFailed(pub String);

impl From<String> for DeliveryFailed {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Publishes MQTT messages: agora's own endpoint, or an external broker.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync + std::fmt::Debug {
    /// Publish; `Ok` with a short description once the broker (or the subscribers) took it.
    async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    ) -> Result<String, DeliveryFailed>;
}

/// Why a call to a device got no answer, and whether calling again is safe: a device that was
/// not connected did nothing; one that did not answer may have acted (a reboot, a toggle), so it
/// is not called again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailed {
    /// What happened, for the delivery log.
    pub detail: String,
    /// Whether the call may be made again.
    pub retry: bool,
}

/// Calls a method on a device and waits for its answer (ThingsBoard's server-side RPC, through
/// whatever link the device has with agora).
#[async_trait::async_trait]
pub trait DeviceCaller: Send + Sync + std::fmt::Debug {
    /// The device's answer, or why there is none (not connected, no answer in time).
    async fn call(
        &self,
        device: &str,
        method: &str,
        params: JsonValue,
        timeout: Duration,
    ) -> Result<JsonValue, CallFailed>;
}

/// The signature header value of a webhook body: `sha256=` and the HMAC-SHA256, in hex, of
/// `{timestamp}.{body}` under the shared secret.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a webhook receives.
pub fn webhook_body(alert: &AlertRecord, rule: &Rule, event: Event) -> JsonValue {
    json!({
        "event": event.as_str(),
        "alert": alert,
        "rule": {"id": rule.id, "name": rule.name, "severity": rule.severity.as_str()},
    })
}

/// Replace `{device}`, `{site}`, `{rule}` and `{event}` in a text.
pub(crate) fn fill(text: &str, alert: &AlertRecord, event: Event) -> String {
    text.replace("{device}", alert.device.as_deref().unwrap_or(""))
        .replace("{site}", alert.site.as_deref().unwrap_or(""))
        .replace("{rule}", &alert.rule)
        .replace("{event}", event.as_str())
}

pub(crate) fn fill_json(v: &JsonValue, alert: &AlertRecord, event: Event) -> JsonValue {
    match v {
        JsonValue::String(s) => JsonValue::String(fill(s, alert, event)),
        JsonValue::Array(a) => {
            JsonValue::Array(a.iter().map(|x| fill_json(x, alert, event)).collect())
        }
        JsonValue::Object(o) => JsonValue::Object(
            o.iter().map(|(k, x)| (k.clone(), fill_json(x, alert, event))).collect(),
        ),
        other => other.clone(),
    }
}

/// Why a webhook call failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub struct HookError {
    /// What happened, secrets masked.
    pub detail: String,
    /// A refused destination or a redirect: the same answer again, so not retried.
    pub fatal: bool,
}

/// An error and its causes, `: `-separated (reqwest's own message says little).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(x) = cur {
        let t = x.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = x.source();
    }
    parts.join(": ")
}

/// POST a webhook once; `Ok` with the status on 2xx. The destination is checked against the
/// egress policy (an address in the URL here, a host name when the client resolves it); a
/// redirect is not followed. Error details never quote the URL's credentials or the secret.
pub(crate) async fn post_webhook(
    http: &reqwest::Client,
    egress: &Egress,
    url: &str,
    secret: Option<&str>,
    body: &JsonValue,
    event: Event,
    delivery: &str,
) -> Result<String, HookError> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| HookError { detail: e.to_string(), fatal: true })?;
    let now = chrono::Utc::now().timestamp();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-agora-event", event.as_str().to_owned()),
        ("x-agora-delivery", delivery.to_owned()),
        ("x-agora-timestamp", now.to_string()),
    ];
    if let Some(s) = secret {
        headers.push(("x-agora-signature", signature(s, now, &bytes)));
    }
    post(http, egress, url, secret, &headers, bytes).await
}

/// POST a body once, with these headers, under the egress policy; `Ok` with the status on 2xx.
/// A redirect is not followed. Error details never quote the URL's credentials or `secret`.
pub async fn post(
    http: &reqwest::Client,
    egress: &Egress,
    url: &str,
    secret: Option<&str>,
    headers: &[(&'static str, String)],
    bytes: Vec<u8>,
) -> Result<String, HookError> {
    let fatal = |detail: String| HookError { detail: mask_text(&detail, url, secret), fatal: true };
    let parsed = reqwest::Url::parse(url).map_err(|e| fatal(format!("bad URL: {e}")))?;
    egress.check_url(&parsed).map_err(|r| fatal(r.0))?;
    let mut req = http.post(parsed);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.body(bytes).send().await {
        Ok(r) if r.status().is_success() => Ok(format!("HTTP {}", r.status().as_u16())),
        Ok(r) if r.status().is_redirection() => {
            let to = r
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| l.to_str().map_or_else(|_| "an unreadable location".into(), mask_url))
                .unwrap_or_else(|| "no location".into());
            Err(fatal(format!(
                "HTTP {}: redirect to {to} not followed (webhooks follow no redirect)",
                r.status().as_u16()
            )))
        }
        Ok(r) => Err(HookError { detail: format!("HTTP {}", r.status().as_u16()), fatal: false }),
        Err(e) => match egress::refusal(&e) {
            Some(refused) => Err(fatal(refused.0.clone())),
            None => Err(HookError {
                detail: mask_text(&chain(&e.without_url()), url, secret),
                fatal: false,
            }),
        },
    }
}

/// Delay before attempt `n` (2, 3, …): `first`, then doubling, at most a minute.
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    (first * 2u32.saturating_pow(attempt.saturating_sub(2))).min(Duration::from_secs(60))
}

/// An external MQTT broker for commands (`[alerts.mqtt]`: the same settings as a subscription's
/// broker, TLS included): one short connection per command, so that the outcome logged is the
/// broker's acknowledgement (QoS 1) and not a message left in a client queue.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "RawBroker")]
pub struct ExternalBroker(pub agora_mqtt::Broker);

/// `[alerts.mqtt]` as read, before unknown settings are refused.
#[derive(serde::Deserialize)]
struct RawBroker {
    #[serde(flatten)]
    broker: agora_mqtt::Broker,
    #[serde(flatten)]
    unknown: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

impl TryFrom<RawBroker> for ExternalBroker {
    type Error = String;
    fn try_from(r: RawBroker) -> Result<Self, String> {
        agora_mqtt::refuse_unknown("[alerts.mqtt]", &r.unknown)?;
        Ok(Self(r.broker))
    }
}

#[async_trait::async_trait]
impl Publisher for ExternalBroker {
    async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
    ) -> Result<String, DeliveryFailed> {
        use rumqttc::{AsyncClient, Event as MqttEvent, Packet, QoS};
        let id = format!(
            "agora-cmd-{}",
            std::process::id() ^ (chrono::Utc::now().timestamp_subsec_nanos())
        );
        let mut o = self.0.options(id, "[alerts.mqtt]").map_err(|e| DeliveryFailed(e.0))?;
        o.set_keep_alive(Duration::from_secs(10));
        let (client, mut events) = AsyncClient::new(o, 4);
        let q = if qos == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        client.publish(topic, q, retain, payload).await.map_err(|e| e.to_string())?;
        let wait = async {
            loop {
                match events.poll().await {
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) if qos == 1 => {
                        return Ok("acknowledged by the broker".to_owned());
                    }
                    Ok(MqttEvent::Outgoing(rumqttc::Outgoing::Publish(_))) if qos == 0 => {
                        return Ok("sent".to_owned());
                    }
                    Ok(MqttEvent::Incoming(Packet::ConnAck(c)))
                        if c.code != rumqttc::ConnectReturnCode::Success =>
                    {
                        return Err(format!("broker refused the connection: {:?}", c.code));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        let r = tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| Err("no answer from the broker in 10 s".into()));
        let _ = client.disconnect().await;
        // Let the disconnect go out.
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
        r.map_err(DeliveryFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // Reference computed independently: Python's hmac.new(b"k", b"1.{}", sha256).hexdigest().
        assert_eq!(
            signature("k", 1, b"{}"),
            "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }

    #[test]
    fn backoff_doubles() {
        let f = Duration::from_millis(500);
        assert_eq!(backoff(f, 2), f);
        assert_eq!(backoff(f, 3), f * 2);
        assert_eq!(backoff(f, 4), f * 4);
        assert_eq!(backoff(f, 30), Duration::from_secs(60));
    }
}
