//! Tokens: scopes, device binding, revocation, every way of presenting one.

use serde_json::json;

use crate::helpers::{ADMIN, TestApp, problem};

const T: i64 = 1_767_225_600;

#[tokio::test]
async fn missing_bad_and_revoked_tokens_get_401() {
    let app = TestApp::spawn().await;
    let r = app.post("/api/v2/write").body("a,device=x pm10=1").send().await.unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    problem(r, 401, "unauthorized").await;
    let r = app
        .post("/api/v2/write")
        .bearer_auth("agora_not_a_token")
        .body("a,device=x pm10=1")
        .send()
        .await
        .unwrap();
    problem(r, 401, "unauthorized").await;
    let r = app.get("/api/v1/devices").send().await.unwrap();
    problem(r, 401, "unauthorized").await;

    let ingest = app.token("ingest", None).await;
    let list = app.get_json("/api/v1/tokens").await;
    let id =
        list["tokens"].as_array().unwrap().iter().find(|t| t["scope"] == "ingest").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(!list.to_string().contains(&ingest), "secrets are never listed");
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(&ingest)
        .body(format!("a,device=x pm10=1 {T}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.client
            .delete(app.url(&format!("/api/v1/tokens/{id}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(&ingest)
        .body(format!("a,device=x pm10=1 {T}"))
        .send()
        .await
        .unwrap();
    problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn scopes_are_enforced_with_403() {
    let app = TestApp::spawn().await;
    let ingest = app.token("ingest", None).await;
    let read = app.token("read", None).await;
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(&read)
        .body(format!("a,device=x pm10=1 {T}"))
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    let r = app.get("/api/v1/devices").bearer_auth(&ingest).send().await.unwrap();
    problem(r, 403, "forbidden").await;
    assert_eq!(
        app.get("/api/v1/devices")
            .header("Authorization", format!("Token {read}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(&read)
        .json(&json!({"name": "x", "scope": "admin"}))
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    let r = app.get("/api/v1/rejects").bearer_auth(&read).send().await.unwrap();
    problem(r, 403, "forbidden").await;
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(ADMIN)
        .json(&json!({"name": "x", "scope": "superuser"}))
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
}

#[tokio::test]
async fn an_ingest_token_bound_to_a_device_writes_only_for_it() {
    let app = TestApp::spawn().await;
    let bound = app.token("ingest", Some("lamp-1")).await;
    let body = format!(
        "streetlight,device=lamp-1 power_w=41.5 {T}\nstreetlight,device=lamp-2 power_w=40 {T}"
    );
    let r =
        app.post("/api/v2/write?precision=s").bearer_auth(&bound).body(body).send().await.unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 1);
    assert_eq!(b["rejected"][0]["line"], 2);
    assert!(b["rejected"][0]["reason"].as_str().unwrap().contains("only write for device lamp-1"));
    let r = app.get("/api/v1/devices/lamp-2").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn public_read_opens_queries_but_not_writes() {
    let app = TestApp::spawn_with(|c| c.auth.public_read = true).await;
    assert_eq!(app.get("/api/v1/sites").send().await.unwrap().status(), 200);
    let r = app.post("/api/v2/write").body("a,device=x pm10=1").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    let r = app.get("/api/v1/tokens").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    // Alert deliveries name their targets (email addresses): operators only.
    let r = app.get("/api/v1/deliveries").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    let read = app.token("read", None).await;
    let r = app.get("/api/v1/deliveries").bearer_auth(&read).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/api/v1/alerts").send().await.unwrap().status(), 200, "alerts stay open");
}

#[tokio::test]
async fn a_record_refused_for_its_token_stays_refused_on_replay() {
    let app = TestApp::spawn().await;
    let bound = app.token("ingest", Some("wx-1")).await;
    let pack = json!([{"bn": "wx-2:", "bt": T, "n": "temperature", "u": "°F", "v": 68.0}]);
    let r = app.post("/api/v1/senml").bearer_auth(&bound).json(&pack).send().await.unwrap();
    problem(r, 400, "partial_write").await;
    let dl = app.get_json("/api/v1/rejects").await;
    assert_eq!(dl["rejects"][0]["format"], "json");
    assert_eq!(dl["rejects"][0]["token_device"], "wx-1");
    // Replayed, it keeps the token's binding: still refused, nothing stored under wx-2.
    let r: serde_json::Value = app
        .post("/api/v1/rejects/replay")
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["still_rejected"], 1, "{r}");
    let r = app.get("/api/v1/devices/wx-2").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 404, "not_found").await;
    // Written by wx-1's token for wx-1, the same reading is converted from its unit.
    let pack = json!([{"bn": "wx-1:", "bt": T, "n": "temperature", "u": "°F", "v": 68.0}]);
    let r = app.post("/api/v1/senml").bearer_auth(&bound).json(&pack).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.values("wx-1", "temperature", T, T + 1).await[0].1, json!(20.0));
}

#[tokio::test]
async fn a_token_that_expires_stops_working_and_says_when() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(ADMIN)
        .json(&json!({"name": "contractor", "scope": "read", "expires_in_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = r.json().await.unwrap();
    let (secret, id) = (made["token"].as_str().unwrap(), made["info"]["id"].as_str().unwrap());
    let expires =
        agora_model::Timestamp::parse_rfc3339(made["info"]["expires_at"].as_str().unwrap())
            .unwrap()
            .as_nanos();
    let in_30_days =
        chrono::Utc::now().timestamp_nanos_opt().unwrap() + 30 * 86_400 * 1_000_000_000;
    assert!((expires - in_30_days).abs() < 60 * 1_000_000_000, "{made}");
    let r = app.get("/api/v1/devices").bearer_auth(secret).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Its time comes (set in the catalog: a test does not wait a month).
    let catalog = &app.server.as_ref().unwrap().state.catalog;
    let past =
        agora_model::Timestamp::from_nanos(chrono::Utc::now().timestamp_nanos_opt().unwrap() - 1);
    catalog.set_token_expiry(id, Some(past)).await.unwrap();
    let r = app.get("/api/v1/devices").bearer_auth(secret).send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    // Still listed, with its expiry, until revoked.
    let list = app.get_json("/api/v1/tokens").await;
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id && t["expires_at"].is_string())
    );
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(ADMIN)
        .json(&json!({"name": "x", "scope": "read", "expires_in_days": 0}))
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
}
