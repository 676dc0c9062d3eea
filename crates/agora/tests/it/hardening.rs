//! Data safety (issue 10): out-of-range epochs, bounded metrics labels, the login's `next`, CSRF
//! on every unsafe request made with a session cookie, the bootstrap token after its revocation,
//! charts over the whole representable range, bounded refusals and dead letters, replay with the
//! original token's rights, and compression of large responses.

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Log in with a token; returns the session cookie and the page's CSRF token.
async fn login(app: &TestApp, token: &str) -> (String, String) {
    let r = no_redirects().post(app.url("/login")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let html = app.get("/supervision").header("cookie", &cookie).send().await.unwrap();
    let html = html.text().await.unwrap();
    let csrf = html.split("\"csrf\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn epochs_out_of_range_are_refused_not_wrapped() {
    let app = TestApp::spawn().await;
    // 20000000000 s used to be stored as 2019-03-22, 9300000000 s as 1680-02-24.
    let batch = json!({"observations": [
        {"device": "t-1", "kind": "weather", "site": "hotel-de-ville", "property": "temperature", "value": 1.0, "time": 20_000_000_000_i64},
        {"device": "t-1", "kind": "weather", "site": "hotel-de-ville", "property": "temperature", "value": 2.0, "time": 9_300_000_000_i64},
        {"device": "t-1", "kind": "weather", "site": "hotel-de-ville", "property": "temperature", "value": 3.0, "time": 1_767_225_600_i64},
    ]});
    let r = app.post("/api/v1/observations").bearer_auth(ADMIN).json(&batch).send().await.unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 1, "{b}");
    let text = b["rejected"].to_string();
    assert!(text.contains("20000000000") && text.contains("9300000000"), "{text}");
    assert!(text.contains("outside the representable range"), "{text}");
    let all = app
        .get_json(
            "/api/v1/observations?device=t-1&property=temperature&from=1677-09-22T00:00:00Z&to=now",
        )
        .await;
    assert_eq!(all["points"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["points"][0]["time"], "2026-01-01T00:00:00Z", "{all}");
    // Query parameters are parsed the same way.
    let r = app
        .get("/api/v1/observations?device=t-1&property=temperature&from=20000000000&to=now")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    for i in 0..30 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        app.client.request(method.clone(), app.url("/healthz")).send().await.unwrap();
        app.client.request(method, app.url(&format!("/nowhere/{i}"))).send().await.unwrap();
    }
    let m = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(!m.contains("MADEUP"), "{m}");
    assert!(!m.contains("/nowhere/"), "{m}");
    assert!(m.contains("method=\"other\""), "{m}");
    assert!(m.contains("route=\"unmatched\""), "{m}");
}

#[tokio::test]
async fn login_next_is_a_path_of_this_site() {
    let app = TestApp::spawn().await;
    let client = no_redirects();
    for bad in ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example"] {
        let r = client
            .post(app.url("/login"))
            .form(&[("token", ADMIN), ("next", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{bad:?}");
        assert_eq!(r.headers()["location"], "/supervision", "{bad:?}");
        // The form shown with such a `next` does not carry it either.
        let r = app.get("/login").query(&[("next", bad)]).send().await.unwrap();
        assert_eq!(r.status(), 200, "{bad:?}");
        assert!(r.text().await.unwrap().contains("value=\"/supervision\""), "{bad:?}");
    }
    let r = client
        .post(app.url("/login"))
        .form(&[("token", ADMIN), ("next", "/alerts?lang=en")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/alerts?lang=en");
}

#[tokio::test]
async fn csrf_applies_to_every_unsafe_request_with_the_session_cookie() {
    let app = TestApp::spawn().await;
    let (cookie, csrf) = login(&app, ADMIN).await;
    let token = |r: &Value| r["name"].as_str().map(str::to_owned);
    // A form post made with the cookie and no CSRF token used to go through.
    let form = [("name", "forged"), ("scope", "admin")];
    let r = app.post("/api/v1/tokens").header("cookie", &cookie).form(&form).send().await.unwrap();
    problem(r, 403, "forbidden").await;
    // So did a text/plain body, which any site can post.
    let r = app
        .post("/api/v1/tokens")
        .header("cookie", &cookie)
        .header("content-type", "text/plain")
        .body(r#"{"name": "forged", "scope": "admin"}"#)
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    // And anything from `Origin: null`, even with the right CSRF token.
    let r = app
        .post("/api/v1/tokens")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", "null")
        .json(&json!({"name": "forged", "scope": "admin"}))
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    let tokens = app.get_json("/api/v1/tokens").await;
    let names: Vec<_> = tokens["tokens"].as_array().unwrap().iter().filter_map(token).collect();
    assert!(!names.iter().any(|n| n == "forged"), "{names:?}");

    // The dashboard's own requests still work: JSON with the header, a form with its field.
    let r = app
        .post("/api/v1/tokens")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("origin", app.url(""))
        .json(&json!({"name": "mine", "scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Logging in again over a live session: the form carries the CSRF token.
    let html = app.get("/login").header("cookie", &cookie).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")), "{html}");
    let r = no_redirects()
        .post(app.url("/login"))
        .header("cookie", &cookie)
        .form(&[("token", ADMIN), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = no_redirects()
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Without a session, the login form needs nothing but the token.
    login(&app, ADMIN).await;
}

#[tokio::test]
async fn a_revoked_bootstrap_token_stays_revoked_across_restarts() {
    let mut app = TestApp::spawn().await;
    let other = app.token("admin", None).await;
    let tokens = app.get_json("/api/v1/tokens").await;
    let id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "admin (AGORA_ADMIN_TOKEN)")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.client.delete(app.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(&other);
    assert!(r.send().await.unwrap().status().is_success());
    // The same AGORA_ADMIN_TOKEN again: this restart used to fail on tokens.hash.
    app.restart().await;
    let r = app.get("/api/v1/tokens").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    let r = app.get("/api/v1/tokens").bearer_auth(&other).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_chart_over_the_whole_representable_range() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    app.write(&format!("air,device=aq-1,site=hotel-de-ville pm10=12 {now}\n")).await;
    let c = app
        .get_json("/api/v1/chart?device=aq-1&property=pm10&from=1677-09-22T00:00:00Z&to=2262-04-10T00:00:00Z")
        .await;
    assert_eq!(c["count"], json!([1]), "{c}");
    assert_eq!(c["mean"], json!([12.0]), "{c}");
}

async fn replay(app: &TestApp) -> Value {
    let r = app.post("/api/v1/rejects/replay").bearer_auth(ADMIN).json(&json!({})).send().await;
    r.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn many_refused_fields_give_a_bounded_answer_and_one_dead_letter() {
    let app = TestApp::spawn().await;
    let ingest = app.token("ingest", Some("aq-1")).await;
    let now = chrono::Utc::now().timestamp();
    let fields: Vec<String> = (0..500).map(|i| format!("made_up_{i}=1")).collect();
    let body = format!("air,device=aq-1,site=hotel-de-ville pm10=3,{} {now}\n", fields.join(","));
    let r = app
        .post("/api/v2/write?precision=s")
        .header("Authorization", format!("Token {ingest}"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 1);
    assert_eq!(b["rejected_count"], 500);
    assert_eq!(b["detail"], "1 points written, 500 rejected");
    let listed = b["rejected"].as_array().unwrap();
    assert_eq!(listed.len(), 100, "the first reasons only");
    assert!(listed[0]["reason"].as_str().unwrap().contains("made_up_0"), "{}", listed[0]);
    // One dead letter holding the body once, in its own format, bound like its token.
    let rejects = app.get_json("/api/v1/rejects").await;
    assert_eq!(rejects["count"], 1, "{rejects}");
    let d = &rejects["rejects"][0];
    assert_eq!(d["raw"], body.as_str());
    assert_eq!(d["format"], "line_protocol:s");
    assert_eq!(d["token_device"], "aq-1");
    assert!(d["reason"].as_str().unwrap().starts_with("500 refusals in this input"), "{d}");

    // A handful of refusals still gives one dead letter each, replayable on their own.
    let r = app
        .post("/api/v2/write?precision=s")
        .header("Authorization", format!("Token {ingest}"))
        .body(format!("air,device=aq-1,site=hotel-de-ville pm10=4,x1=1,x2=2 {}\n", now + 1))
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!((b["accepted"].as_u64(), b["rejected_count"].as_u64()), (Some(1), Some(2)));
    assert_eq!(app.get_json("/api/v1/rejects").await["count"], 3);
}

#[tokio::test]
async fn a_replay_keeps_the_device_binding_of_the_token() {
    let app = TestApp::spawn().await;
    let bound = app.token("ingest", Some("aq-1")).await;
    let now = chrono::Utc::now().timestamp();
    let r = app
        .post("/api/v2/write?precision=s")
        .header("Authorization", format!("Token {bound}"))
        .body(format!(
            "air,device=aq-1,site=hotel-de-ville pm10=3 {now}\nair,device=aq-2,site=hotel-de-ville pm10=99 {now}\n"
        ))
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert!(b["rejected"][0]["reason"].as_str().unwrap().contains("only write for device aq-1"));
    let rejects = app.get_json("/api/v1/rejects").await;
    assert_eq!(rejects["rejects"][0]["token_device"], "aq-1", "{rejects}");
    // The admin's replay used to store the point under aq-2.
    let r = replay(&app).await;
    assert_eq!(r, json!({"replayed": 0, "stored": 0, "still_rejected": 1, "not_replayable": 0}));
    let r = app.get("/api/v1/devices/aq-2").bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 404, "aq-2 was not registered by the replay");
    assert_eq!(app.get_json("/api/v1/rejects").await["count"], 1, "still kept");
    // Input sent with an unbound token replays as before.
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(ADMIN)
        .body(format!("air,device=aq-3,site=hotel-de-ville pm10=1,bogus=1 {now}\n"))
        .send()
        .await
        .unwrap();
    problem(r, 400, "partial_write").await;
    let rejects = app.get_json("/api/v1/rejects").await;
    assert!(rejects["rejects"][0]["token_device"].is_null(), "{rejects}");
}
