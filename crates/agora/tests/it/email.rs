//! Email actions through a real SMTP server (aiosmtpd, started by the test) that requires
//! STARTTLS and a login, with a certificate from a private authority, as a city's relay would:
//! the message of each event arrives, readable, to every recipient, each attempt is logged, a
//! refused login is logged and not retried, and rules with email actions are refused when no
//! SMTP server is configured.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, private_ca, problem};

/// aiosmtpd in its own process, saving each message as JSON.
pub(crate) struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    pub(crate) fn start(user: &str, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        private_ca(dir.path());
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_server.py");
        // Debian's Python, which has Debian's python3-aiosmtpd (installed by scripts/test.sh).
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .arg(dir.path().join("out"))
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start (python3-aiosmtpd?)");
        Self { child, port, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The messages received so far, in order.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(self.dir.path().join("out"))
            .unwrap()
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                Some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// agora's settings for this server; `digest_secs` 0 sends each alert at once.
    pub(crate) fn smtp_config(&self, password: &str, digest_secs: u64) -> agora_alerts::SmtpConfig {
        serde_json::from_value(json!({
            "host": "127.0.0.1",
            "port": self.port,
            "from": "Agora Aix <alertes@aix.example>",
            "username": "agora",
            "password": password,
            "ca_file": self.ca(),
            "dashboard_url": "https://agora.aix.example/",
            "digest_secs": digest_secs,
        }))
        .unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn add_rule(app: &TestApp, rule: Value) {
    let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
}

/// The email deliveries logged for the first alert of a rule, once there are `n`.
async fn email_log(app: &TestApp, rule: &str, n: usize) -> (i64, Vec<Value>) {
    let mut last = (0, Vec::new());
    for _ in 0..100 {
        let list = app.get_json(&format!("/api/v1/alerts?rule={rule}")).await;
        if let Some(id) = list["alerts"].as_array().unwrap().last().and_then(|a| a["id"].as_i64()) {
            let a = app.get_json(&format!("/api/v1/alerts/{id}")).await;
            let log: Vec<Value> = a["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["action"] == "email")
                .cloned()
                .collect();
            last = (id, log);
            if last.1.len() >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

fn now_minus(secs: i64) -> i64 {
    chrono::Utc::now().timestamp() - secs
}

#[tokio::test]
async fn emails_go_through_starttls_with_a_login_to_every_recipient() {
    let smtp = SmtpServer::start("agora", "pw-0123");
    let cfg = smtp.smtp_config("pw-0123", 0);
    let app = TestApp::spawn_with(|c| c.alerts.smtp = Some(cfg)).await;
    add_rule(
        &app,
        json!({"id": "o3-mail", "name": "Ozone — seuil d'information", "severity": "warning",
            "condition": {"threshold": {"property": "o3", "op": ">", "value": 180.0}},
            "actions": [{"email": {"to": ["Astreinte Environnement <astreinte@aix.example>", "elus@aix.example"]}}]}),
    )
    .await;
    let t = now_minus(120);
    app.write(&format!("air_quality,device=aq-rotonde o3=203.5 {t}")).await;
    app.write(&format!("air_quality,device=aq-rotonde o3=120 {}", t + 60)).await;
    for _ in 0..100 {
        if smtp.messages().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each delivery runs in its own task: the two may arrive in either order.
    let mut m = smtp.messages();
    m.sort_by_key(|x| !x["message_id"].as_str().unwrap().contains("-opened@"));
    assert_eq!(m.len(), 2, "opened and resolved: {m:?}");
    let (id, log) = email_log(&app, "o3-mail", 2).await;
    for (msg, event) in m.iter().zip(["opened", "resolved"]) {
        assert_eq!(msg["tls"], true, "after STARTTLS");
        assert_eq!(msg["login"], "agora");
        assert_eq!(msg["mail_from"], "alertes@aix.example");
        assert_eq!(msg["rcpt_tos"], json!(["astreinte@aix.example", "elus@aix.example"]));
        assert_eq!(msg["from"], "Agora Aix <alertes@aix.example>");
        assert_eq!(msg["content_type"], "text/plain");
        assert_eq!(msg["auto_submitted"], "auto-generated");
        assert_eq!(msg["message_id"], format!("<alert-{id}-{event}@aix.example>"));
    }
    assert_eq!(
        m[0]["subject"],
        "[agora] Alerte ouverte (avertissement) — Ozone — seuil d'information — aq-rotonde"
    );
    assert_eq!(
        m[1]["subject"],
        "[agora] Alerte terminée (avertissement) — Ozone — seuil d'information — aq-rotonde"
    );
    let body = m[0]["body"].as_str().unwrap();
    for part in [
        &format!("Alerte n° {id} — ouverte"),
        "Règle : Ozone — seuil d'information (o3-mail)",
        "Valeur : o3 = 203.5",
        "(heure de Paris)",
        "Tableau de bord : https://agora.aix.example/alerts",
    ] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    assert!(m[1]["body"].as_str().unwrap().contains("\nFin : "), "{}", m[1]["body"]);
    assert_eq!(log.len(), 2, "{log:?}");
    for d in &log {
        assert_eq!(d["ok"], true, "{d}");
        assert_eq!(d["attempt"], 1);
        assert_eq!(
            d["target"],
            "Astreinte Environnement <astreinte@aix.example>, elus@aix.example"
        );
        assert!(d["detail"].as_str().unwrap().starts_with("250"), "{d}");
    }
}

#[tokio::test]
async fn a_refused_login_is_logged_once_and_email_needs_a_server() {
    let smtp = SmtpServer::start("agora", "pw-0123");
    let cfg = smtp.smtp_config("wrong-password", 0);
    let app = TestApp::spawn_with(|c| {
        c.alerts.smtp = Some(cfg);
        c.alerts.first_retry_ms = 50;
        c.alerts.max_attempts = 3;
    })
    .await;
    add_rule(
        &app,
        json!({"id": "noise-mail", "condition": {"threshold": {"property": "laeq", "op": ">", "value": 80.0}},
            "actions": [{"email": {"to": ["ops@aix.example"], "on": ["opened"]}}]}),
    )
    .await;
    app.write(&format!("noise,device=n-1 laeq=85 {}", now_minus(60))).await;
    let (_, log) = email_log(&app, "noise-mail", 1).await;
    // Time for retries, were there any: 50 ms then 100 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, again) = email_log(&app, "noise-mail", 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(again.len(), 1, "a 535 is final: not tried again ({again:?})");
    assert_eq!(log[0]["ok"], false);
    assert!(log[0]["detail"].as_str().unwrap().contains("535"), "{}", log[0]);
    assert!(smtp.messages().is_empty());

    // Bad addresses are refused; without [alerts.smtp], email actions are refused.
    assert!(refusal(&app, "ops@@aix").await.contains("bad email address \"ops@@aix\""));
    let bare = TestApp::spawn().await;
    assert!(refusal(&bare, "ops@aix.example").await.contains("set [alerts.smtp]"));
}

#[tokio::test]
async fn alerts_of_a_rule_opening_together_make_one_message() {
    let smtp = SmtpServer::start("agora", "pw-0123");
    let cfg = smtp.smtp_config("pw-0123", 1);
    let app = TestApp::spawn_with(|c| c.alerts.smtp = Some(cfg)).await;
    add_rule(
        &app,
        json!({"id": "bins", "name": "Bac plein", "scope": {"kind": "waste_bin"},
            "condition": {"threshold": {"property": "fill_level", "op": ">=", "value": 80.0}},
            "actions": [{"email": {"to": ["proprete@aix.example"], "on": ["opened"]}}]}),
    )
    .await;
    let t = now_minus(60);
    let body: String =
        (1..=3).map(|i| format!("waste_bin,device=bin-{i} fill_level={} {t}\n", 80 + i)).collect();
    app.write(&body).await;
    for _ in 0..100 {
        if !smtp.messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a wrongly split digest the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = smtp.messages();
    assert_eq!(m.len(), 1, "one message for the three bins: {m:?}");
    assert_eq!(m[0]["subject"], "[agora] 3 alertes ouvertes (avertissement) — Bac plein");
    let text = m[0]["body"].as_str().unwrap();
    for bin in ["bin-1 — fill_level = 81", "bin-2 — fill_level = 82", "bin-3 — fill_level = 83"]
    {
        assert!(text.contains(bin), "{bin:?} in {text}");
    }
    let alerts = app.get_json("/api/v1/alerts?rule=bins").await;
    let alerts = alerts["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3);
    for a in alerts {
        let d = app.get_json(&format!("/api/v1/alerts/{}", a["id"])).await;
        let log = &d["deliveries"][0];
        assert_eq!(log["ok"], true, "{d}");
        assert!(log["detail"].as_str().unwrap().ends_with("(one message for 3 alerts)"), "{log}");
    }
}

/// Why a rule with an email action to `to` is refused.
async fn refusal(app: &TestApp, to: &str) -> String {
    let rule = json!({"id": "mail", "condition": {"no_data": {"periods": 3}},
        "actions": [{"email": {"to": [to]}}]});
    let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
    let p = problem(r, 422, "invalid_rule").await;
    p["detail"].as_str().unwrap().to_owned()
}
