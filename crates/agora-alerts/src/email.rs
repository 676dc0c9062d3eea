//! Email actions: alerts sent through the city's SMTP relay (STARTTLS by default, or TLS from
//! the first byte, or plain on a trusted local relay), with a login when one is set. One message
//! per event to all the action's recipients, in plain text, in French or English.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use agora_store::alerts::AlertRecord;

use crate::rule::{Event, Rule};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted network (port 25).
    None,
}

/// Language of the messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French.
    #[default]
    Fr,
    /// English.
    En,
}

/// `[alerts.smtp]`: the SMTP server email actions go through.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name (also the name its certificate must carry).
    pub host: String,
    /// Port; default 587, 465 or 25 after `security`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// Sender, e.g. `Agora Aix <alertes@mairie-aix.fr>`.
    pub from: String,
    /// Login, when the server asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (better in `AGORA_SMTP_PASSWORD`).
    #[serde(default)]
    pub password: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's (a relay with a
    /// certificate from the city's own authority).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `fr` (default) or `en`.
    #[serde(default)]
    pub lang: Lang,
    /// Address of the dashboard, e.g. `https://agora.mairie-aix.fr`: messages link to its
    /// alerts page.
    #[serde(default)]
    pub dashboard_url: Option<String>,
    /// Seconds before a conversation with the server is given up.
    #[serde(default = "ten")]
    pub timeout_secs: u64,
    /// Seconds a first message waits for others of the same rule, recipients and event, so
    /// that 200 full bins make one message listing them rather than 200 (0: one message per
    /// alert, at once).
    #[serde(default = "thirty")]
    pub digest_secs: u64,
}

fn thirty() -> u64 {
    30
}

fn ten() -> u64 {
    10
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("ca_file", &self.ca_file)
            .field("lang", &self.lang)
            .field("digest_secs", &self.digest_secs)
            .finish_non_exhaustive()
    }
}

/// Tells auto-responders and mail robots that nobody typed this message (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone)]
pub struct MailError {
    /// What happened, with the server's reply when there is one.
    pub detail: String,
    /// Trying again may work (network, 4xx); a 5xx reply is final.
    pub transient: bool,
}

/// Messages waiting for others of the same (rule, recipients, event), with where each
/// delivery waits for the outcome.
type Pending = HashMap<(String, Vec<String>, Event), Vec<(AlertRecord, Reply)>>;
type Reply = tokio::sync::oneshot::Sender<Result<String, MailError>>;

/// Sends alert messages.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    lang: Lang,
    dashboard_url: Option<String>,
    digest: Duration,
    pending: parking_lot::Mutex<Pending>,
}

/// A setting of `[alerts.smtp]` that cannot work, named with its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingError(pub String);

impl From<String> for SettingError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SettingError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::ops::Deref for SettingError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish_non_exhaustive()
    }
}

impl Mailer {
    /// Check the configuration and prepare the transport (no connection is made here).
    pub fn new(cfg: &SmtpConfig) -> Result<Self, SettingError> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("[alerts.smtp] from {:?} is not an address: {e}", cfg.from))?;
        if cfg.host.trim().is_empty() {
            return Err("[alerts.smtp] host is empty".into());
        }
        let port = cfg.port.unwrap_or(match cfg.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        });
        let tls = if cfg.security == SmtpSecurity::None {
            Tls::None
        } else {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("[alerts.smtp] cannot read ca_file {}: {e}", path.display())
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    format!(
                        "[alerts.smtp] ca_file {} holds no PEM certificate: {e}",
                        path.display()
                    )
                })?;
                b = b.add_root_certificate(cert);
            }
            let params =
                b.build_rustls().map_err(|e| format!("[alerts.smtp] cannot set up TLS: {e}"))?;
            if cfg.security == SmtpSecurity::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
        match (&cfg.username, &cfg.password) {
            (Some(u), Some(p)) => {
                builder = builder.credentials(Credentials::new(u.clone(), p.clone()))
            }
            (Some(_), None) => {
                return Err(
                    "[alerts.smtp] username is set but no password (AGORA_SMTP_PASSWORD)".into()
                );
            }
            _ => {}
        }
        Ok(Self {
            transport: builder.build(),
            from,
            lang: cfg.lang,
            dashboard_url: cfg.dashboard_url.as_ref().map(|u| u.trim_end_matches('/').to_owned()),
            digest: Duration::from_secs(cfg.digest_secs),
            pending: parking_lot::Mutex::new(HashMap::new()),
        })
    }

    /// Send the message of an event to the recipients; `Ok` with the server's reply. With a
    /// digest delay, the first alert of a (rule, recipients, event) waits that long for others,
    /// and one message goes for all of them; each gets its outcome.
    pub(crate) async fn send(
        &self,
        to: &[String],
        alert: &AlertRecord,
        rule: &Rule,
        event: Event,
    ) -> Result<String, MailError> {
        if self.digest.is_zero() {
            return self.deliver(to, std::slice::from_ref(alert), rule, event).await;
        }
        let key = (rule.id.clone(), to.to_vec(), event);
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let first = {
            let mut pending = self.pending.lock();
            let waiting = pending.entry(key.clone()).or_default();
            waiting.push((alert.clone(), reply));
            waiting.len() == 1
        };
        if first {
            tokio::time::sleep(self.digest).await;
            let (alerts, replies): (Vec<_>, Vec<_>) =
                self.pending.lock().remove(&key).unwrap_or_default().into_iter().unzip();
            let result = self.deliver(to, &alerts, rule, event).await;
            for r in replies {
                let _ = r.send(result.clone());
            }
        }
        outcome.await.unwrap_or_else(|_| {
            Err(MailError { detail: "the message was not sent (stopping)".into(), transient: true })
        })
    }

    /// One message about `alerts` (one, or a digest of several).
    async fn deliver(
        &self,
        to: &[String],
        alerts: &[AlertRecord],
        rule: &Rule,
        event: Event,
    ) -> Result<String, MailError> {
        let (first, last) = match alerts {
            [one] => (one, None),
            [first, .., last] => (first, Some(last)),
            [] => return Err(MailError { detail: "nothing to send".into(), transient: false }),
        };
        let url = self.dashboard_url.as_deref();
        let (subject, body) = match last {
            None => compose(first, rule, event, self.lang, url),
            Some(_) => compose_digest(alerts, rule, event, self.lang, url),
        };
        let ids = match last {
            None => format!("alert-{}", first.id),
            Some(last) => format!("alerts-{}-{}-{}", first.id, last.id, alerts.len()),
        };
        let digest = if alerts.len() > 1 {
            format!(" (one message for {} alerts)", alerts.len())
        } else {
            String::new()
        };
        let reply =
            self.send_text(to, &subject, &body, &format!("{ids}-{}", event.as_str())).await?;
        Ok(format!("{reply}{digest}"))
    }

    /// Send one plain-text message now (no digest): the notices of citizens' reports, the
    /// message telling a reporter their report was handled. `id` makes the `Message-ID`
    /// (`<id@sender's domain>`). `Ok` with the server's reply.
    pub async fn send_text(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
        id: &str,
    ) -> Result<String, MailError> {
        let final_error = |detail: String| MailError { detail, transient: false };
        let mut recipients = Mailboxes::new();
        for a in to {
            recipients.push(a.parse().map_err(|e| final_error(format!("bad address {a:?}: {e}")))?);
        }
        let domain = self.from.email.domain().to_owned();
        let message = Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(recipients))
            .subject(subject)
            .message_id(Some(format!("<{id}@{domain}>")))
            .header(ContentType::TEXT_PLAIN)
            .header(AutoSubmitted)
            .body(body.to_owned())
            .map_err(|e| final_error(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(r) => Ok(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            Err(e) => Err(MailError { transient: !e.is_permanent(), detail: describe(&e) }),
        }
    }

    /// The language messages are written in.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The dashboard's public address, when set (links in messages).
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard_url.as_deref()
    }
}

/// An SMTP error with the server's code when there is one, and its causes.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The words of messages in one language.
struct Words {
    fr: bool,
}

impl Words {
    fn t(&self, fr: &'static str, en: &'static str) -> &'static str {
        if self.fr { fr } else { en }
    }

    fn severity<'a>(&self, s: &'a str) -> &'a str {
        match (s, self.fr) {
            ("critical", true) => "critique",
            ("warning", true) => "avertissement",
            ("info", true) => "information",
            (s, _) => s,
        }
    }

    /// What happened, for one alert or (`plural`) several.
    fn event(&self, event: Event, plural: bool) -> &'static str {
        match (event, plural) {
            (Event::Opened, false) => self.t("ouverte", "opened"),
            (Event::Opened, true) => self.t("ouvertes", "opened"),
            (Event::Resolved, false) => self.t("terminée", "resolved"),
            (Event::Resolved, true) => self.t("terminées", "resolved"),
            (Event::Acknowledged, _) => self.t("prise(s) en charge", "acknowledged"),
        }
    }

    /// French puts a space before a colon.
    fn colon(&self) -> &'static str {
        self.t(" : ", ": ")
    }

    fn footer(&self) -> &'static str {
        self.t(
            "\n\n-- \nMessage automatique envoyé par agora. Ne pas répondre.\n",
            "\n\n-- \nAutomatic message sent by agora. Do not reply.\n",
        )
    }
}

/// A time in Paris, as people there read it.
fn paris(t: agora_model::Timestamp) -> String {
    chrono::DateTime::from_timestamp_nanos(t.as_nanos())
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

fn rule_name(rule: &Rule) -> &str {
    if rule.name.is_empty() { &rule.id } else { &rule.name }
}

/// The device, with its site and commune when known: `aq-1 (site rotonde, commune 13001)`.
fn device_text(a: &AlertRecord) -> String {
    let place: Vec<String> = [
        a.site.as_ref().map(|s| format!("site {s}")),
        a.commune.as_ref().map(|c| format!("commune {c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let device = a.device.as_deref().unwrap_or(&a.scope_key);
    if place.is_empty() { device.to_owned() } else { format!("{device} ({})", place.join(", ")) }
}

fn value_text(a: &AlertRecord) -> Option<String> {
    a.value.map(|v| {
        format!("{} = {}", a.property.as_deref().unwrap_or("?"), (v * 100.0).round() / 100.0)
    })
}

/// Subject and plain-text body of an alert's message.
pub(crate) fn compose(
    a: &AlertRecord,
    rule: &Rule,
    event: Event,
    lang: Lang,
    dashboard: Option<&str>,
) -> (String, String) {
    let w = Words { fr: lang == Lang::Fr };
    let t = |f, e| w.t(f, e);
    let name = rule_name(rule);
    let device = a.device.as_deref().unwrap_or(&a.scope_key);
    let severity = w.severity(&a.severity);
    let what = w.event(event, false);
    let subject =
        format!("[agora] {} {what} ({severity}) — {name} — {device}", t("Alerte", "Alert"));
    let colon = w.colon();
    let mut body = format!("{} {} — {what}\n", t("Alerte n°", "Alert no."), a.id);
    // A labelled line; an empty label makes an empty line.
    let mut line = |label: &str, text: String| {
        body.push('\n');
        if !label.is_empty() {
            body.push_str(&format!("{label}{colon}{text}"));
        }
    };
    line(t("Règle", "Rule"), format!("{name} ({})", rule.id));
    line(t("Gravité", "Severity"), severity.to_owned());
    line(t("Capteur", "Device"), device_text(a));
    if let Some(v) = value_text(a) {
        line(t("Valeur", "Value"), v);
    }
    let zone = t("heure de Paris", "Paris time");
    line(t("Début", "Since"), format!("{} ({zone})", paris(a.opened_at)));
    if let Some(r) = a.resolved_at {
        line(t("Fin", "Until"), format!("{} ({zone})", paris(r)));
    }
    if let (Some(by), Some(at)) = (&a.acknowledged_by, a.acknowledged_at) {
        let comment = a.ack_comment.as_ref().map(|c| format!(" — {c}")).unwrap_or_default();
        line(
            t("Prise en charge par", "Acknowledged by"),
            format!("{by}, {} ({zone}){comment}", paris(at)),
        );
    }
    if let Some(url) = dashboard {
        line("", String::new());
        line(t("Tableau de bord", "Dashboard"), format!("{url}/alerts"));
    }
    body.push_str(w.footer());
    (subject, body)
}

/// Subject and body of one message for several alerts of a rule (a digest): one line each.
pub(crate) fn compose_digest(
    alerts: &[AlertRecord],
    rule: &Rule,
    event: Event,
    lang: Lang,
    dashboard: Option<&str>,
) -> (String, String) {
    let w = Words { fr: lang == Lang::Fr };
    let t = |f, e| w.t(f, e);
    let name = rule_name(rule);
    let severity = w.severity(alerts.first().map_or("", |a| a.severity.as_str()));
    let what = w.event(event, true);
    let n = alerts.len();
    let subject = format!("[agora] {n} {} {what} ({severity}) — {name}", t("alertes", "alerts"));
    let colon = w.colon();
    let mut body = format!(
        "{n} {} {what} — {name} ({})\n{}{colon}{severity}\n",
        t("alertes", "alerts"),
        rule.id,
        t("Gravité", "Severity")
    );
    for a in alerts {
        body.push_str(&format!("\n- {} {} — {}", t("n°", "no."), a.id, device_text(a)));
        if let Some(v) = value_text(a) {
            body.push_str(&format!(" — {v}"));
        }
        body.push_str(&format!(" — {} {}", t("depuis", "since"), paris(a.opened_at)));
        if let Some(r) = a.resolved_at {
            body.push_str(&format!(" {} {}", t("jusqu'à", "until"), paris(r)));
        }
    }
    body.push_str(&format!("\n\n({})", t("heures de Paris", "Paris times")));
    if let Some(url) = dashboard {
        body.push_str(&format!("\n\n{}{colon}{url}/alerts", t("Tableau de bord", "Dashboard")));
    }
    body.push_str(w.footer());
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(from: &str) -> SmtpConfig {
        serde_json::from_value(serde_json::json!({"host": "smtp.example.org", "from": from}))
            .unwrap()
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Mailer::new(&config("not an address")).unwrap_err();
        assert!(e.contains("from \"not an address\" is not an address"), "{e}");
        let mut c = config("Agora <alertes@example.org>");
        c.username = Some("agora".into());
        let e = Mailer::new(&c).unwrap_err();
        assert!(e.contains("no password"), "{e}");
        c.password = Some("s3cret".into());
        assert!(!format!("{c:?}").contains("s3cret"), "the password is not printed");
        c.ca_file = Some("/nonexistent/ca.pem".into());
        let e = Mailer::new(&c).unwrap_err();
        assert!(e.contains("cannot read ca_file /nonexistent/ca.pem"), "{e}");
        c.ca_file = None;
        assert!(Mailer::new(&c).is_ok());
    }

    #[test]
    fn an_acknowledged_alert_in_english_and_a_digest_in_french() {
        use agora_model::Timestamp;
        let rule: Rule = serde_json::from_value(serde_json::json!({"id": "lamp",
            "condition": {"state": {"property": "lamp_status", "op": "==", "value": "defectiveLamp"}}}))
        .unwrap();
        // 2026-07-01T10:00:00Z is noon in Paris (summer time).
        let t = Timestamp::from_nanos(1_782_900_000_000_000_000);
        let a = AlertRecord {
            id: 7,
            rule: "lamp".into(),
            scope_key: "sl-12".into(),
            device: Some("sl-12".into()),
            site: Some("cours-mirabeau".into()),
            commune: Some("13001".into()),
            property: Some("lamp_status".into()),
            severity: "critical".into(),
            state: agora_store::alerts::AlertState::Acknowledged,
            message: String::new(),
            value: None,
            opened_at: t,
            acknowledged_at: Some(Timestamp::from_nanos(t.as_nanos() + 600_000_000_000)),
            acknowledged_by: Some("ana".into()),
            ack_comment: Some("crew on the way".into()),
            resolved_at: None,
            resolved_by: None,
        };
        let mut b = a.clone();
        (b.id, b.device, b.site, b.value, b.property) =
            (8, Some("sl-13".into()), None, Some(0.5), Some("power".into()));
        let (subject, body) =
            compose_digest(&[a.clone(), b], &rule, Event::Opened, Lang::Fr, Some("https://x.fr"));
        assert_eq!(subject, "[agora] 2 alertes ouvertes (critique) — lamp");
        assert_eq!(
            body,
            "2 alertes ouvertes — lamp (lamp)\nGravité : critique\n\n\
             - n° 7 — sl-12 (site cours-mirabeau, commune 13001) — depuis 01/07/2026 12:00:00\n\
             - n° 8 — sl-13 (commune 13001) — power = 0.5 — depuis 01/07/2026 12:00:00\n\n\
             (heures de Paris)\n\nTableau de bord : https://x.fr/alerts\n\n\
             -- \nMessage automatique envoyé par agora. Ne pas répondre.\n"
        );
        let (subject, body) = compose(&a, &rule, Event::Acknowledged, Lang::En, None);
        assert_eq!(subject, "[agora] Alert acknowledged (critical) — lamp — sl-12");
        assert_eq!(
            body,
            "Alert no. 7 — acknowledged\n\nRule: lamp (lamp)\nSeverity: critical\n\
             Device: sl-12 (site cours-mirabeau, commune 13001)\n\
             Since: 01/07/2026 12:00:00 (Paris time)\n\
             Acknowledged by: ana, 01/07/2026 12:10:00 (Paris time) — crew on the way\n\n\
             -- \nAutomatic message sent by agora. Do not reply.\n"
        );
    }
}
