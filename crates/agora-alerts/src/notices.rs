//! Notices that are not alerts — a citizen's report filed, acknowledged, resolved — sent through
//! the same actions as alerts (webhooks signed and retried under the egress policy, MQTT
//! messages, emails through the SMTP relay), every attempt logged in the delivery log with the
//! alerts' (`alert_id` 0, the target naming what the notice is about).

use std::collections::HashMap;
use std::sync::Arc;

use agora_store::alerts::Delivery;
use serde_json::Value as JsonValue;

use crate::rule::{Action, Event};
use crate::{Alerts, actions, secrets};

/// Something to tell: what it is about, its text for emails, its JSON for webhooks and MQTT.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What it is about, as the delivery log names it (`report 12`).
    pub about: String,
    /// A stable key for message identifiers (`report-12-opened`).
    pub key: String,
    /// The event, for the actions' `on` lists.
    pub event: Event,
    /// An email's subject.
    pub subject: String,
    /// An email's text.
    pub text: String,
    /// The JSON posted to webhooks and published to MQTT (unless the action has its payload).
    pub body: JsonValue,
    /// Words replaced in MQTT topics and payload strings (`{category}` → `street_light`).
    pub words: HashMap<String, String>,
}

impl Notice {
    fn fill(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (k, v) in &self.words {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn fill_json(&self, v: &JsonValue) -> JsonValue {
        match v {
            JsonValue::String(s) => JsonValue::String(self.fill(s)),
            JsonValue::Array(a) => JsonValue::Array(a.iter().map(|x| self.fill_json(x)).collect()),
            JsonValue::Object(o) => {
                JsonValue::Object(o.iter().map(|(k, x)| (k.clone(), self.fill_json(x))).collect())
            }
            other => other.clone(),
        }
    }
}

/// Whether actions can serve notices: a device call needs an alert's device, so it is refused
/// with a message naming it; the others are checked as a rule's are.
pub fn check_actions(list: &[Action]) -> Result<(), String> {
    for a in list {
        if let Action::Rpc { .. } = a {
            return Err("an rpc action calls an alert's device: notices take webhook, mqtt \
                        or email actions"
                .into());
        }
    }
    list.iter().try_for_each(|a| crate::rule::check_action(a).map_err(|e| e.0))
}

impl Alerts {
    /// Send a notice through the actions that take its event, each in a task of its own with
    /// the alerts' retries; every attempt is logged.
    pub fn notify(self: &Arc<Self>, notice: Notice, list: &[Action]) {
        let notice = Arc::new(notice);
        for action in list.iter().filter(|a| a.events().contains(&notice.event)) {
            let (me, notice, action) = (self.clone(), notice.clone(), action.clone());
            tokio::spawn(async move { me.deliver_notice(&notice, &action).await });
        }
    }

    /// The dashboard's public address of `[alerts.smtp]`, when set.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.mailer.as_ref().and_then(|m| m.dashboard_url())
    }

    /// Whether emails can be sent (an SMTP relay is configured).
    pub fn can_mail(&self) -> bool {
        self.mailer.is_some()
    }

    /// Send one email now, with the alerts' retries (a final refusal is not retried), and log
    /// the attempts under `about`. `Ok` with the server's reply.
    pub async fn mail(
        &self,
        about: &str,
        to: &[String],
        subject: &str,
        text: &str,
        key: &str,
    ) -> Result<String, String> {
        let Some(m) = self.mailer.clone() else {
            return Err("no SMTP server: set [alerts.smtp]".into());
        };
        let attempts = self.cfg.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(actions::backoff(
                    std::time::Duration::from_millis(self.cfg.first_retry_ms),
                    attempt,
                ))
                .await;
            }
            let outcome = m.send_text(to, subject, text, key).await;
            let (ok, detail, stop) = match &outcome {
                Ok(r) => (true, r.clone(), true),
                Err(e) => (false, e.detail.clone(), !e.transient),
            };
            // The reporter's address is not written in the log: it is erased with the report's
            // personal data, the log is not.
            self.log(about, "notified", "email", "the reporter", attempt, ok, &detail).await;
            if ok {
                return Ok(detail);
            }
            last = detail;
            if stop {
                break;
            }
        }
        Err(last)
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        about: &str,
        event: &str,
        action: &str,
        target: &str,
        attempt: u32,
        ok: bool,
        detail: &str,
    ) {
        if !ok {
            tracing::warn!(about, action, target, attempt, detail, "notice not delivered");
        }
        let d = Delivery {
            id: 0,
            alert_id: 0,
            event: event.into(),
            action: action.into(),
            target: format!("{about} → {target}"),
            attempt,
            ok,
            detail: detail.into(),
            at: self.deps.clock.now(),
        };
        if let Err(e) = self.deps.store.add_delivery(&d).await {
            tracing::error!(error = %e, "could not log a notice's delivery");
        }
    }

    async fn deliver_notice(&self, n: &Notice, action: &Action) {
        let attempts = self.cfg.max_attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(actions::backoff(
                    std::time::Duration::from_millis(self.cfg.first_retry_ms),
                    attempt,
                ))
                .await;
            }
            let mut give_up = false;
            let (target, outcome): (String, Result<String, String>) = match action {
                Action::Webhook { url, secret, .. } => {
                    let id = format!("{}-{attempt}", n.key);
                    let outcome = actions::post_webhook(
                        &self.http,
                        &self.egress,
                        url,
                        secret.as_deref(),
                        &n.body,
                        n.event,
                        &id,
                    )
                    .await
                    .map_err(|e| {
                        give_up = e.fatal;
                        e.detail
                    });
                    (secrets::mask_url(url), outcome)
                }
                Action::Mqtt { topic, payload, qos, retain, .. } => {
                    let topic = n.fill(topic);
                    let body = payload.as_ref().map_or_else(|| n.body.clone(), |p| n.fill_json(p));
                    let outcome = match &self.deps.publisher {
                        Some(p) => p
                            .publish(
                                &topic,
                                serde_json::to_vec(&body).unwrap_or_default(),
                                *qos,
                                *retain,
                            )
                            .await
                            .map_err(|e| e.0),
                        None => {
                            give_up = true;
                            Err("no MQTT broker: enable agora's MQTT endpoint or set [alerts.mqtt]"
                                .into())
                        }
                    };
                    (topic, outcome)
                }
                Action::Email { to, .. } => {
                    let outcome = match &self.mailer {
                        Some(m) => {
                            m.send_text(to, &n.subject, &n.text, &n.key).await.map_err(|e| {
                                give_up = !e.transient;
                                e.detail
                            })
                        }
                        None => {
                            give_up = true;
                            Err("no SMTP server: set [alerts.smtp]".into())
                        }
                    };
                    (to.join(", "), outcome)
                }
                Action::Rpc { .. } => ("rpc".into(), Err("notices take no rpc action".to_owned())),
            };
            let ok = outcome.is_ok();
            let detail = outcome.unwrap_or_else(|e| e);
            self.log(&n.about, n.event.as_str(), action.kind(), &target, attempt, ok, &detail)
                .await;
            if ok || give_up || matches!(action, Action::Rpc { .. }) {
                return;
            }
        }
    }
}
