//! Email actions: alerts sent through the city's SMTP relay (STARTTLS by default, or TLS from
//! the first byte, or plain on a trusted local relay), with a login when one is set. One message
//! per event to all the action's recipients, in plain text, in French or English.

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
#[derive(Debug)]
pub(crate) struct MailError {
    /// What happened, with the server's reply when there is one.
    pub(crate) detail: String,
    /// Trying again may work (network, 4xx); a 5xx reply is final.
    pub(crate) transient: bool,
}

/// Sends alert messages.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    lang: Lang,
    dashboard_url: Option<String>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish_non_exhaustive()
    }
}

impl Mailer {
    /// Check the configuration and prepare the transport (no connection is made here).
    pub fn new(cfg: &SmtpConfig) -> Result<Self, String> {
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
        })
    }

    /// Send the message of an event to the recipients; `Ok` with the server's reply.
    pub(crate) async fn send(
        &self,
        to: &[String],
        alert: &AlertRecord,
        rule: &Rule,
        event: Event,
    ) -> Result<String, MailError> {
        let final_error = |detail: String| MailError { detail, transient: false };
        let mut recipients = Mailboxes::new();
        for a in to {
            recipients.push(a.parse().map_err(|e| final_error(format!("bad address {a:?}: {e}")))?);
        }
        let (subject, body) = compose(alert, rule, event, self.lang, self.dashboard_url.as_deref());
        let domain = self.from.email.domain().to_owned();
        let message = Message::builder()
            .from(self.from.clone())
            .mailbox(lettre::message::header::To::from(recipients))
            .subject(subject)
            .message_id(Some(format!("<alert-{}-{}@{domain}>", alert.id, event.as_str())))
            .header(ContentType::TEXT_PLAIN)
            .header(AutoSubmitted)
            .body(body)
            .map_err(|e| final_error(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(r) => Ok(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            Err(e) => Err(MailError { transient: !e.is_permanent(), detail: describe(&e) }),
        }
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

/// Subject and plain-text body of an alert's message.
pub(crate) fn compose(
    a: &AlertRecord,
    rule: &Rule,
    event: Event,
    lang: Lang,
    dashboard: Option<&str>,
) -> (String, String) {
    let name = if rule.name.is_empty() { rule.id.as_str() } else { rule.name.as_str() };
    let device = a.device.as_deref().unwrap_or(&a.scope_key);
    let paris = |t: agora_model::Timestamp| {
        chrono::DateTime::from_timestamp_nanos(t.as_nanos())
            .with_timezone(&chrono_tz::Europe::Paris)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string()
    };
    let value = a.value.map(|v| {
        format!("{} = {}", a.property.as_deref().unwrap_or("?"), (v * 100.0).round() / 100.0)
    });
    let fr = lang == Lang::Fr;
    let t = |f: &'static str, e: &'static str| if fr { f } else { e };
    let severity = match (a.severity.as_str(), fr) {
        ("critical", true) => "critique",
        ("warning", true) => "avertissement",
        ("info", true) => "information",
        (s, _) => s,
    };
    let what = match event {
        Event::Opened => t("ouverte", "opened"),
        Event::Resolved => t("terminée", "resolved"),
        Event::Acknowledged => t("prise en charge", "acknowledged"),
    };
    let subject =
        format!("[agora] {} {what} ({severity}) — {name} — {device}", t("Alerte", "Alert"));
    // French puts a space before a colon.
    let colon = t(" : ", ": ");
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
    let place: Vec<String> = [
        a.site.as_ref().map(|s| format!("site {s}")),
        a.commune.as_ref().map(|c| format!("commune {c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let where_ = if place.is_empty() { String::new() } else { format!(" ({})", place.join(", ")) };
    line(t("Capteur", "Device"), format!("{device}{where_}"));
    if let Some(v) = value {
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
    body.push_str(t(
        "\n\n-- \nMessage automatique envoyé par agora. Ne pas répondre.\n",
        "\n\n-- \nAutomatic message sent by agora. Do not reply.\n",
    ));
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
    fn an_acknowledged_alert_in_english() {
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
