//! The audit trail through the API: changes with who, from where, the outcome and the state
//! before and after (secrets masked); refusals; logins; sensitive reads; no entry for the data
//! plane; a chain that verifies, and that names the entry edited behind agora's back.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

async fn trail(app: &TestApp, q: &str) -> Vec<Value> {
    app.get_json(&format!("/api/v1/audit?{q}")).await.as_array().unwrap().clone()
}

#[tokio::test]
async fn changes_refusals_logins_and_sensitive_reads_are_recorded_in_a_verifiable_chain() {
    let app = TestApp::spawn().await;
    let read = app.token("read", None).await;
    let rule = |v: f64| {
        json!({"id": "pm10-high", "condition": {"threshold": {"property": "pm10", "op": ">", "value": v}},
               "actions": [{"webhook": {"url": "https://hooks.example/x", "secret": "s3cret-value"}}]})
    };
    let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule(50.0)).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .client
        .put(app.url("/api/v1/rules/pm10-high"))
        .bearer_auth(ADMIN)
        .json(&rule(60.0))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A read token may not change rules: refused, and recorded.
    let r = app.post("/api/v1/rules").bearer_auth(&read).json(&rule(1.0)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = app.client.delete(app.url("/api/v1/rules/pm10-high")).bearer_auth(ADMIN).send().await;
    assert_eq!(r.unwrap().status(), 204);
    // A dashboard login, the token list, and data points (not recorded: the data plane).
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .form(&[("token", read.as_str()), ("next", "/explorer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    app.get_json("/api/v1/tokens").await;
    app.write("m,device=a-1 pm10=12 1767225600").await;

    let all = trail(&app, "limit=100").await;
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(!actions.iter().any(|a| a.contains("write")), "{actions:?}");
    let find = |action: &str, status: u64| {
        all.iter()
            .find(|e| e["action"] == action && e["status"] == status)
            .unwrap_or_else(|| panic!("no {action} {status} in {actions:?}"))
    };
    let admin_id = app.get_json("/api/v1/tokens").await["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = find("PUT /api/v1/rules/{id}", 200);
    assert!(put["actor"].as_str().unwrap().starts_with(&format!("token:{admin_id} ")), "{put}");
    assert_eq!(put["address"], "127.0.0.1");
    assert_eq!(put["target"], "/api/v1/rules/pm10-high");
    assert_eq!(put["detail"]["before"]["condition"]["threshold"]["value"], 50.0);
    assert_eq!(put["detail"]["after"]["condition"]["threshold"]["value"], 60.0);
    assert_eq!(put["detail"]["request"]["actions"][0]["webhook"]["secret"], "***");
    assert!(!put.to_string().contains("s3cret-value"), "a secret reached the trail: {put}");
    let refused = find("POST /api/v1/rules", 403);
    assert!(refused["actor"].as_str().unwrap().contains("(read test)"), "{refused}");
    let deleted = find("DELETE /api/v1/rules/{id}", 204);
    assert_eq!(deleted["detail"]["before"]["id"], "pm10-high");
    let login = find("POST /login", 303);
    assert!(login["actor"].as_str().unwrap().contains("(read test)"), "{login}");
    assert!(!login.to_string().contains(&read), "the login form's token reached the trail");
    find("read /api/v1/tokens", 200);
    // Newest first, numbered without gaps; filters.
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    let mine = trail(&app, "action=DELETE").await;
    assert_eq!(mine.len(), 1);
    let csv = app
        .get("/api/v1/audit?format=csv&limit=5")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("seq,at,actor,address,action,target,status,detail,prev_hash,hash\n"));
    // Only administrators read it.
    let r = app.get("/api/v1/audit").bearer_auth(&read).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["valid"], true, "{v}");
    let cli = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["audit", "verify", "--data"])
            .arg(app.dir.path())
            .output()
            .unwrap()
    };
    let out = cli();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit trail whole"));
    // Edited behind agora's back: the check names the entry.
    let cat = agora_store::catalog::SqliteCatalog::open(app.dir.path()).await.unwrap();
    let seq = put["seq"].as_i64().unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone else' WHERE seq = ?")
        .bind(seq)
        .execute(&cat.pool())
        .await
        .unwrap();
    let v = app.get_json("/api/v1/audit/verify").await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["broken_at"], seq);
    let out = cli();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("broken at entry {seq}")), "{err}");
}

#[tokio::test]
async fn the_privacy_register_counts_what_agora_holds_about_people() {
    let app = TestApp::spawn_with(|c| {
        c.audit.retention_days = 90;
        // Email actions need a relay (none is reached here: no alert opens).
        c.alerts.smtp = Some(
            toml::from_str("host = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\nfrom = \"Agora <agora@mairie.example>\"")
                .unwrap(),
        );
    })
    .await;
    app.token("read", None).await;
    for (id, to) in [
        ("a", json!(["astreinte@mairie.example", "Chef@Mairie.example"])),
        ("b", json!(["chef@mairie.example"])),
    ] {
        let rule = json!({"id": id, "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
            "actions": [{"email": {"to": to}}]});
        let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    for email in ["agent.a@aix.example", "agent.b@aix.example"] {
        let p = json!({"email": email, "name": "Agent", "role": "viewer", "commune": "13001"});
        let r = app.post("/api/v1/people").bearer_auth(ADMIN).json(&p).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let reg = app.get_json("/api/v1/privacy/register").await;
    let cat = |name: &str| {
        reg["categories"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
    };
    // The admin token and the read token.
    assert_eq!(cat("tokens")["records"], 2);
    assert_eq!(cat("accounts")["records"], 2);
    assert!(reg["procedures"].as_str().unwrap().contains("/api/v1/people/{id}/export"));
    // Two people, one of them named twice and in two cases.
    assert_eq!(cat("alert_recipients")["records"], 2);
    assert_eq!(cat("audit_trail")["retention"], "90 days ([audit] retention_days)");
    assert!(reg["not_held"].as_str().unwrap().contains("counts only"));
    let read = app.token("read", None).await;
    let r = app.get("/api/v1/privacy/register").bearer_auth(&read).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
