//! People's accounts through the API and the login form: made with a role in a commune (bad
//! input refused with a clear error), logged in with a password, locked after repeated failures,
//! disabled (their sessions end), exported and erased (GDPR) — the audit trail never holding
//! their email or name.

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Log in with an email and password: the session cookie and CSRF token, or the status.
async fn login(
    app: &TestApp,
    email: &str,
    password: &str,
) -> Result<(String, String), (u16, String)> {
    let r = no_redirects()
        .post(app.url("/login"))
        .form(&[("email", email), ("token", password), ("next", "/alerts")])
        .send()
        .await
        .unwrap();
    if r.status() != 303 {
        return Err((r.status().as_u16(), r.text().await.unwrap()));
    }
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html =
        app.get("/alerts").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = html.split("\"csrf\":\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    Ok((cookie, csrf))
}

/// Disable the person `id` (their sessions end).
async fn disable(app: &TestApp, id: &str) {
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/people/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn make(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/v1/people").bearer_auth(ADMIN).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn bad_people_are_refused_with_a_clear_error() {
    let app = TestApp::spawn().await;
    let ok = json!({"email": "marie@aix.example", "name": "Marie", "role": "operator",
        "commune": "13001", "password": "un mot de passe long"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("role", json!("mayor")), "unknown role \"mayor\": one of metropole_admin"),
        (with("commune", Value::Null), "a person belongs to a commune"),
        (with("commune", json!("Aix")), "commune \"Aix\""),
        (with("commune", json!("13055")), "commune 13055 is not in the catalog"),
        (with("role", json!("department")), "needs its domain"),
        (with("role", json!("device")), "not of people"),
        (with("password", json!("court")), "at least 12 characters"),
        (with("email", json!("marie")), "has no @"),
        (with("role", json!("metropole_admin")), "belongs to the Métropole"),
    ];
    for (body, says) in cases {
        let p = problem(make(&app, body.clone()).await, 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{body}: {p}");
    }
    assert_eq!(make(&app, ok.clone()).await.status(), 201);
    let p =
        problem(make(&app, with("email", json!("MARIE@aix.example"))).await, 409, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("marie@aix.example"), "{p}");
    // Nobody was made by the refused requests.
    let people = app.get_json("/api/v1/people").await;
    assert_eq!(people["people"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_person_logs_in_is_locked_out_disabled_exported_and_erased() {
    let app = TestApp::spawn().await;
    let email = "jeanne.operatrice@aix.example";
    let r = make(
        &app,
        json!({"email": email, "name": "Jeanne Opératrice", "role": "operator",
        "commune": "13001", "password": "la bonne phrase de passe"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let person: Value = r.json().await.unwrap();
    let id = person["id"].as_str().unwrap().to_owned();
    assert!(person.get("password_hash").is_none() && person["has_password"] == true);

    // Logged in by password: who they are is the person, with their role and commune.
    let (cookie, csrf) = login(&app, email, "la bonne phrase de passe").await.unwrap();
    let me: Value =
        app.get("/api/v1/me").header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["role"].as_str(), me["commune"].as_str()), (Some("operator"), Some("13001")));
    assert_eq!(me["actor"], format!("person:{id}"));

    // They take an alert in hand.
    app.post("/api/v1/rules")
        .bearer_auth(ADMIN)
        .json(&json!({"id": "pm10", "scope": {"commune": "13001"},
            "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}}))
        .send()
        .await
        .unwrap();
    app.post("/api/v1/devices")
        .bearer_auth(ADMIN)
        .json(&json!({"id": "aq-1", "kind": "air_quality", "commune": "13001"}))
        .send()
        .await
        .unwrap();
    let t = agora_model::Clock::now(&agora_model::SystemClock).as_nanos() / 1_000_000_000 - 30;
    app.write(&format!("air_quality,device=aq-1 pm10=80 {t}")).await;
    let mut alert = Value::Null;
    for _ in 0..100 {
        alert = app.get_json("/api/v1/alerts?rule=pm10").await["alerts"][0].clone();
        if alert.is_object() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let aid = alert["id"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/alerts/{aid}/acknowledge"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"comment": "on it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acked: Value = r.json().await.unwrap();
    assert_eq!(acked["acknowledged_by"], format!("Jeanne Opératrice (person:{id})"));
    // And a citizen's report, and a point of interest.
    let key = app.get_json("/api/v1/reports/form").await["key"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = app
        .post("/api/v1/reports")
        .json(&json!({"category": "bin", "lat": 43.5299, "lon": 5.4474, "key": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let ticket = r.json::<Value>().await.unwrap()["number"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/reports/{ticket}/status"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"status": "acknowledged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = r.json::<Value>().await.unwrap()["events"].to_string();
    assert!(events.contains(&format!("Jeanne Opératrice (person:{id})")), "{events}");
    let r = app
        .client
        .put(app.url("/api/v1/visitors/pois/fontaine"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"id": "fontaine", "kind": "fountain", "lat": 43.5299, "lon": 5.4474,
            "name": {"fr": "Fontaine", "en": "Fountain"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The export holds their account, their actions and the alert they handled.
    let export = app.get_json(&format!("/api/v1/people/{id}/export")).await;
    assert_eq!(export["person"]["email"], email);
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(export["alerts_handled"][0]["id"], aid);
    let actions: Vec<&str> =
        export["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"POST /api/v1/alerts/{id}/acknowledge"), "{actions:?}");

    // Five wrong passwords lock the account, even against the right one; a new password set by
    // an administrator unlocks it.
    for i in 0..5 {
        let (status, page) = login(&app, email, "pas la bonne phrase").await.unwrap_err();
        assert_eq!(status, 401);
        assert!(page.contains(if i < 4 { "incorrect" } else { "verrouillé" }), "attempt {i}");
    }
    let (status, page) = login(&app, email, "la bonne phrase de passe").await.unwrap_err();
    assert!(status == 401 && page.contains("verrouillé"));
    let r = app
        .post(&format!("/api/v1/people/{id}/password"))
        .bearer_auth(ADMIN)
        .json(&json!({"password": "une nouvelle phrase de passe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (cookie, _) = login(&app, email, "une nouvelle phrase de passe").await.unwrap();

    // Disabled: their session ends at once, and they log in no more.
    disable(&app, &id).await;
    assert_eq!(app.get("/api/v1/me").header("cookie", &cookie).send().await.unwrap().status(), 401);
    let (status, page) = login(&app, email, "une nouvelle phrase de passe").await.unwrap_err();
    assert!(status == 401 && page.contains("désactivé"), "{page}");

    // Erased: the account goes, the alert names them no more.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/people/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let erased: Value = r.json().await.unwrap();
    assert_eq!(erased["alerts_pseudonymised"], 1);
    assert_eq!(erased["tickets_and_visitors_pseudonymised"], 2);
    let t = app.get_json(&format!("/api/v1/reports/{ticket}")).await.to_string();
    assert!(!t.contains("Jeanne") && t.contains(&format!("person:{id} (erased)")), "{t}");
    let a = app.get_json(&format!("/api/v1/alerts/{aid}")).await;
    assert_eq!(a["alert"]["acknowledged_by"], format!("person:{id} (erased)"));
    let r =
        app.get(&format!("/api/v1/people/{id}/export")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The trail recorded all of it, by identifier: never their email or name.
    let trail = app.get("/api/v1/audit?limit=1000").bearer_auth(ADMIN).send().await.unwrap();
    let trail = trail.text().await.unwrap();
    assert!(trail.contains(&format!("person:{id}")), "the trail knows them by identifier");
    assert!(!trail.contains(email) && !trail.contains("Jeanne"), "{trail}");
}

#[tokio::test]
async fn a_live_stream_opened_with_a_session_ends_when_the_person_is_disabled() {
    let app = TestApp::spawn().await;
    let email = "paul.operateur@aix.example";
    let r = make(
        &app,
        json!({"email": email, "name": "Paul", "role": "operator", "commune": "13001",
        "password": "une phrase de passe solide"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let (cookie, _) = login(&app, email, "une phrase de passe solide").await.unwrap();
    let mut events = app.get("/api/v1/live").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(events.status(), 200);
    // The stream is an operator's (it goes on while the session lives).
    let quiet = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        while let Ok(Some(_)) = events.chunk().await {}
    });
    assert!(quiet.await.is_err(), "the stream ended while the session was live");
    disable(&app, &id).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Ok(Some(_)) = events.chunk().await {}
    });
    assert!(ended.await.is_ok(), "the disabled person's live stream went on");
}
