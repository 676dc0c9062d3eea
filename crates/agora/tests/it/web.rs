//! The dashboard's server side: pages and assets, login sessions and CSRF, the public and
//! operator map payloads, downsampled charts, fleet health and live events.

use std::time::Duration;

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Log in with a token; returns the session cookie (`agora_session=…`) and the page's CSRF token.
async fn login(app: &TestApp, token: &str) -> (String, String) {
    let r = no_redirects()
        .post(app.url("/login"))
        .form(&[("token", token), ("next", "/explorer")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/explorer");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = app.get("/supervision").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = html.split("\"csrf\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn pages_speak_french_by_default_and_english_on_request() {
    let app = TestApp::spawn().await;
    let r = app.get("/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains("La ville en direct"));
    assert!(!html.contains("http://") && !html.contains("https://"), "no outside address");

    let r = app.get("/?lang=en").send().await.unwrap();
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("agora_lang=en"));
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">") && html.contains("The city, live"));
    // The cookie keeps the choice.
    let html = app.get("/").header("cookie", "agora_lang=en").send().await.unwrap().text().await;
    assert!(html.unwrap().contains("The city, live"));

    let r = app.get("/places/hotel-de-ville").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Hôtel de Ville"));
    assert_eq!(app.get("/places/nowhere").send().await.unwrap().status(), 404);
    let kiosk = app.get("/kiosk/hotel-de-ville?rotate=5").send().await.unwrap().text().await;
    assert!(kiosk.unwrap().contains("\"rotate\":5"));
}

#[tokio::test]
async fn assets_are_embedded_compressed_and_cached() {
    let app = TestApp::spawn().await;
    let r = app.get("/assets/vendor/leaflet/leaflet.js").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/javascript");
    assert!(r.headers().get("content-encoding").is_none(), "no gzip unless accepted");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let plain = r.bytes().await.unwrap();
    assert_eq!(&plain[..], agora_web::asset("vendor/leaflet/leaflet.js").unwrap());

    let r = app
        .get("/assets/vendor/leaflet/leaflet.js")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let gz = r.bytes().await.unwrap();
    assert!(gz.len() * 3 < plain.len(), "{} compressed from {}", gz.len(), plain.len());
    let mut back = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
    assert_eq!(back, plain);

    let r = app.get("/assets/app.css").header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 200, "another file's etag does not match");
    let r = app
        .get("/assets/vendor/leaflet/leaflet.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(app.get("/assets/nothing.js").send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn login_sessions_and_csrf() {
    let app = TestApp::spawn().await;
    let client = no_redirects();
    // Operator pages send visitors without a session to the login form.
    let r = client.get(app.url("/supervision/fleet")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/supervision/fleet");

    // A wrong token: the form again, 401, no cookie.
    let r = client.post(app.url("/login")).form(&[("token", "nope")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("Jeton inconnu ou révoqué"));
    // An ingest token cannot read, so it cannot open a session.
    let ingest = app.token("ingest", None).await;
    let r =
        client.post(app.url("/login")).form(&[("token", ingest.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A `next` pointing to another site is ignored.
    let r = client
        .post(app.url("/login"))
        .form(&[("token", ADMIN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/supervision");

    let read = app.token("read", None).await;
    let (cookie, csrf) = login(&app, &read).await;
    // The cookie stands for the token on the API.
    let r = app.get("/api/v1/devices").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/api/v1/devices").send().await.unwrap().status(), 401);
    // An unsafe request made with the cookie must echo the CSRF token…
    let site = json!({"id": "x", "commune": "13001", "name": "X"});
    let r = app.post("/api/v1/sites").header("cookie", &cookie).json(&site).send().await.unwrap();
    problem(r, 403, "forbidden").await;
    // …and with it, the token's own rights apply (a read token may not create sites).
    let r = app
        .post("/api/v1/sites")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&site)
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    // A request from another origin is refused whatever it carries.
    let r = app
        .post("/api/v1/sites")
        .bearer_auth(ADMIN)
        .header("origin", "https://evil.example")
        .json(&site)
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;

    // Logout needs the CSRF token, then the cookie is worthless.
    let r = client
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let r = app.get("/api/v1/devices").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Revoking the token ends its sessions.
    let (cookie, _) = login(&app, &read).await;
    let tokens = app.get_json("/api/v1/tokens").await;
    let id = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "read test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.client.delete(app.url(&format!("/api/v1/tokens/{id}"))).bearer_auth(ADMIN);
    assert!(r.send().await.unwrap().status().is_success());
    let r = app.get("/api/v1/devices").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_public_map_hides_device_internals() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    app.write(&format!(
        "waste_container,device=bin-1,site=hotel-de-ville fill_level=85,battery=12 {now}\n\
         streetlight,device=sl-1,site=hotel-de-ville lamp_status=\"defectiveLamp\" {now}\n"
    ))
    .await;
    let public: Value = app.get("/api/v1/public/map").send().await.unwrap().json().await.unwrap();
    let bin = public["devices"].as_array().unwrap().iter().find(|d| d["id"] == "bin-1").unwrap();
    assert_eq!(bin["latest"]["fill_level"][1], 85.0);
    assert!(bin["latest"].get("battery").is_none(), "{bin}");
    assert!(bin.get("last_seen").is_none());
    assert!(public["units"].get("battery").is_none());
    assert_eq!(public["sites"][0]["id"], "hotel-de-ville");
    // Device internals are for operators, in charts too.
    let r = app.get("/api/v1/chart?device=bin-1&property=battery").send().await.unwrap();
    problem(r, 403, "forbidden").await;

    let op = app.get_json("/api/v1/map").await;
    let bin = op["devices"].as_array().unwrap().iter().find(|d| d["id"] == "bin-1").unwrap();
    assert_eq!(bin["latest"]["battery"][1], 12.0);
    let lamp = op["devices"].as_array().unwrap().iter().find(|d| d["id"] == "sl-1").unwrap();
    assert_eq!(lamp["state"], "faulty");
    assert_eq!(app.get("/api/v1/map").send().await.unwrap().status(), 401);

    let fleet = app.get_json("/api/v1/fleet").await;
    assert_eq!(fleet["counts"]["total"], 2);
    assert_eq!(fleet["counts"]["faulty"], 1);
    assert_eq!(fleet["faulty"][0]["id"], "sl-1");
    assert_eq!(fleet["low_battery"][0]["id"], "bin-1");

    // A deployment may close the public map.
    let closed = TestApp::spawn_with(|c| c.web.public_map = false).await;
    let r = closed.get("/api/v1/public/map").send().await.unwrap();
    problem(r, 404, "not_found").await;
    assert_eq!(closed.get("/").send().await.unwrap().status(), 404);
    let r = closed.get("/api/v1/chart?device=x&property=pm10").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn charts_are_downsampled_with_peaks_kept() {
    let app = TestApp::spawn().await;
    const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut body = String::new();
    for m in 0..3 * 1440i64 {
        let v = if m == 1000 { 400.0 } else { 20.0 + (m % 10) as f64 };
        body.push_str(&format!("air,device=aq-1,site=hotel-de-ville pm10={v} {}\n", T + m * 60));
        body.push_str(&format!("air,device=aq-2,site=hotel-de-ville pm10=10 {}\n", T + m * 60));
    }
    app.write(&body).await;
    let c = app
        .get_json(&format!(
            "/api/v1/chart?device=aq-1&property=pm10&from={T}&to={}&points=100",
            T + 3 * 86_400
        ))
        .await;
    let n = c["t"].as_array().unwrap().len();
    assert!((50..=100).contains(&n), "{n} buckets");
    assert_eq!(c["every_s"], 3600, "1 h buckets from rollups");
    let max = c["max"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).fold(0.0, f64::max);
    assert_eq!(max, 400.0, "the one-minute peak survives");
    let counts: u64 = c["count"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counts, 3 * 1440);
    assert_eq!(c["mean"][0], 24.5);

    // A place's chart merges its devices.
    let s = app
        .get_json(&format!(
            "/api/v1/chart?site=hotel-de-ville&property=pm10&from={T}&to={}&points=24",
            T + 86_400
        ))
        .await;
    assert_eq!(s["devices"], 2);
    assert_eq!(s["t"].as_array().unwrap().len(), 24);
    assert_eq!(s["mean"][0], (24.5 + 10.0) / 2.0);
    assert_eq!(s["min"][0], 10.0);

    // A year never ships more than 2,000 buckets; more is refused.
    let y = app.get_json("/api/v1/chart?device=aq-1&property=pm10&from=-365d&points=2000").await;
    assert!(y["every_s"].as_u64().unwrap() >= 365 * 86_400 / 2_000);
    let r = app
        .get("/api/v1/chart?device=aq-1&property=pm10&points=5000")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r = app.get("/api/v1/chart?device=nope&property=pm10").bearer_auth(ADMIN).send().await;
    problem(r.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn live_events_follow_ingestion() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    app.write(&format!("air,device=aq-1,site=hotel-de-ville pm10=10,battery=80 {now}\n")).await;
    let mut events = app.get("/api/v1/live?site=hotel-de-ville").send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    app.write(&format!("air,device=aq-1,site=hotel-de-ville pm10=42.5,battery=79 {}\n", now + 1))
        .await;
    let mut text = String::new();
    // The public gets new values every 5 s (operators every half second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !text.contains("event: values") || !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk()).await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let data = text.split("data: ").nth(1).unwrap().lines().next().unwrap();
    let rows: Value = serde_json::from_str(data).unwrap();
    assert_eq!(rows, json!([{"d": "aq-1", "p": "pm10", "t": (now + 1) * 1000, "v": 42.5}]));
}

/// A stream's filter follows the catalog: a device changed so that the filter no longer matches
/// it leaves the stream (the series it resolved are looked up again once devices change).
#[tokio::test]
async fn a_live_stream_follows_changes_to_devices() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    app.write(&format!(
        "air_quality,device=aq-1 pm10=10 {now}\nair_quality,device=aq-2 pm10=11 {now}\n"
    ))
    .await;
    let mut events =
        app.get("/api/v1/live?kind=air_quality").bearer_auth(ADMIN).send().await.unwrap();
    // The next `values` event's rows, as (device, value).
    async fn next_values(events: &mut reqwest::Response) -> Vec<(String, f64)> {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(start) = text.find("event: values\ndata: ")
                && let Some(end) = text[start..].find("\n\n")
            {
                let data = &text[start + "event: values\ndata: ".len()..start + end];
                let rows: Value = serde_json::from_str(data).unwrap();
                return rows
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| (r["d"].as_str().unwrap().to_owned(), r["v"].as_f64().unwrap()))
                    .collect();
            }
            let chunk = tokio::time::timeout_at(deadline, events.chunk()).await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }
    app.write(&format!("air_quality,device=aq-1 pm10=20 {}\n", now + 1)).await;
    assert_eq!(next_values(&mut events).await, vec![("aq-1".to_owned(), 20.0)]);
    let d = json!({"id": "aq-1", "kind": "weather"});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    app.write(&format!(
        "air_quality,device=aq-1 pm10=30 {t}\nair_quality,device=aq-2 pm10=31 {t}\n",
        t = now + 2
    ))
    .await;
    assert_eq!(next_values(&mut events).await, vec![("aq-2".to_owned(), 31.0)]);
}
