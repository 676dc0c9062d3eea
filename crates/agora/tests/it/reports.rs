//! Citizens' reports over HTTP, with the server's clock in the test's hands: a report filed,
//! merged with a duplicate, linked to the lamp in fault next to it and its open alert, handled
//! by an operator to resolved, the reporter told by email (a real SMTP server) and their address
//! erased after the retention; what the public sees holds nothing personal; bad input is refused
//! with a message naming it; the limits per client and per place; statistics worked by hand;
//! departments and communes see their own tickets.

use std::sync::Arc;
use std::time::Duration;

use agora_model::{Clock, MockClock, Timestamp};
use serde_json::{Value, json};

use crate::email::SmtpServer;
use crate::helpers::{ADMIN, TestApp, problem};

/// 2026-06-15 14:00 UTC, a Monday.
const T0: i64 = 1_781_532_000;

fn clock() -> Arc<MockClock> {
    MockClock::new(Timestamp::from_nanos(T0 * 1_000_000_000))
}

async fn form_key(app: &TestApp) -> String {
    let r = app.get("/api/v1/reports/form").send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_owned()
}

async fn file(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/v1/reports").json(&body).send().await.unwrap()
}

/// A report of `category` at a position, with a key old enough.
fn report(key: &str, category: &str, lat: f64, lon: f64) -> Value {
    json!({"category": category, "lat": lat, "lon": lon, "description": "", "key": key})
}

async fn status(app: &TestApp, id: i64, body: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/reports/{id}/status"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_filed_merged_linked_resolved_told_and_its_address_erased() {
    let smtp = SmtpServer::start("agora", "pw-0123");
    let smtp_cfg = smtp.smtp_config("pw-0123", 0);
    let clock = clock();
    let app = TestApp::spawn_at(clock.clone(), |c| {
        c.alerts.smtp = Some(smtp_cfg);
        c.reports.erase_every_secs = 1;
        c.reports.contact_retention_days = 30;
    })
    .await;
    let now = || clock.now().as_nanos() / 1_000_000_000;
    // A lamp 10 m from the town hall, in fault: its alert is open.
    let lamp = json!({"id": "sl-1", "kind": "streetlight", "commune": "13001",
        "site": "hotel-de-ville", "lat": 43.52999, "lon": 5.44752});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&lamp).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = app
        .post("/api/v1/rules")
        .bearer_auth(ADMIN)
        .json(&json!({"template": "lamp-defective", "id": "lamp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    app.write(&format!("streetlight,device=sl-1 lamp_status=\"defectiveLamp\" {}", now())).await;
    let mut alert = None;
    for _ in 0..100 {
        let v = app.get_json("/api/v1/alerts?rule=lamp").await;
        if let Some(id) = v["alerts"][0]["id"].as_i64() {
            alert = Some(id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alert = alert.expect("the lamp's alert opened");

    // The form: the shipped categories, a key, addresses taken (SMTP is set).
    let form: Value = app.get("/api/v1/reports/form").send().await.unwrap().json().await.unwrap();
    assert_eq!(form["email"], true);
    let ids: Vec<&str> =
        form["categories"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["street_light", "bin", "noise", "furniture", "other"]);
    let key = form["key"].as_str().unwrap().to_owned();
    let good = json!({"category": "street_light", "lat": 43.52995, "lon": 5.44745,
        "description": "Le lampadaire <script>alert(1)</script> devant la mairie ne s'allume plus",
        "email": "camille@example.org", "consent": true, "lang": "fr", "key": key});

    // Sent at once: refused as automated, and nothing filed.
    let r = file(&app, good.clone()).await;
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("wait at least 3 s"), "{p}");
    clock.advance_nanos(5_000_000_000);
    // Bad input, each refused with what is wrong.
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, says) in [
        (with("website", json!("http://spam.example")), "must stay empty"),
        (with("key", json!("123.abcdef")), "not one this server handed out"),
        (with("category", json!("potholes")), "unknown category \"potholes\": one of street_light"),
        (with("description", json!("x".repeat(100_000))), "100000 characters long: at most 1000"),
        (
            with("description", json!("https://a.example https://b.example https://c.example")),
            "3 links: at most 2",
        ),
        (with("lat", json!(48.8566)), "outside every commune"),
        (with("consent", json!(false)), "consent"),
        (with("email", json!("not an address")), "is not an email address"),
        (json!({"category": "bin", "key": key}), "give the position"),
    ] {
        let r = file(&app, body).await;
        let p = problem(r, 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{says}: {p}");
    }
    assert!(app.get_json("/api/v1/reports").await.as_array().unwrap().is_empty());

    // Filed: a number, a follow-up key, linked to the lamp and its open alert.
    let r = file(&app, good.clone()).await;
    assert_eq!(r.status(), 201);
    let filed: Value = r.json().await.unwrap();
    assert_eq!(filed["duplicate"], false);
    assert_eq!(filed["contact_kept"], true);
    let id = filed["number"].as_i64().unwrap();
    let follow = filed["follow"].as_str().unwrap().to_owned();
    assert!(follow.len() >= 22, "{follow}");
    let t = app.get_json(&format!("/api/v1/reports/{id}")).await;
    assert_eq!(t["status"], "new");
    assert_eq!(t["site"], "hotel-de-ville");
    assert_eq!(t["commune"], "13001");
    assert_eq!(t["devices"], json!(["sl-1"]));
    assert_eq!(t["alert_id"], alert);
    assert_eq!(t["domain"], "lighting");
    assert_eq!(t["contacts"], 1);
    // The text is kept as written (the pages show it as text, never as markup).
    assert!(t["description"].as_str().unwrap().contains("<script>alert(1)</script>"));
    assert!(t.get("follow").is_none(), "operators do not get the reporter's key");
    // The alert's tickets.
    let joined = app.get_json(&format!("/api/v1/reports?alert={alert}")).await;
    assert_eq!(joined.as_array().unwrap().len(), 1);

    // The same lamp reported 20 m away: merged, one more supporter, the same follow-up.
    let r = file(&app, with("lat", json!(43.52977))).await;
    assert_eq!(r.status(), 200);
    let merged: Value = r.json().await.unwrap();
    assert_eq!(merged["duplicate"], true);
    assert_eq!(merged["number"], id);
    assert_eq!(merged["supporters"], 2);
    // Their own follow-up key, which shows the same report; not the first reporter's.
    let second = merged["follow"].as_str().unwrap();
    assert_ne!(second, follow);
    let v = app.get_json(&format!("/api/v1/reports/follow/{second}")).await;
    assert_eq!(v["number"], id);
    // Another category at the same spot is another problem.
    let r = file(&app, report(&key, "bin", 43.52995, 5.44745)).await;
    assert_eq!(r.status(), 201);

    // What the public sees: no address, no free text, no key.
    let public = app.get(&format!("/api/v1/reports/follow/{follow}")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    let text = public.text().await.unwrap();
    for secret in ["camille", "lampadaire", "<script>", &follow] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "new");
    assert_eq!(v["supporters"], 2);
    assert_eq!(v["site_name"], "Hôtel de Ville");
    let map = app.get("/api/v1/public/reports").send().await.unwrap().text().await.unwrap();
    assert!(!map.contains("camille") && !map.contains("lampadaire"), "{map}");
    assert_eq!(
        serde_json::from_str::<Value>(&map).unwrap()["features"].as_array().unwrap().len(),
        2
    );
    let r = app.get("/api/v1/reports/follow/not-a-key").send().await.unwrap();
    problem(r, 404, "not_found").await;

    // The ticket's life: a wrong move refused, a rejection needs its reason.
    let p =
        problem(status(&app, id, json!({"status": "rejected"})).await, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("why"), "{p}");
    let r = status(&app, id, json!({"status": "acknowledged"})).await;
    assert_eq!(r.status(), 200);
    clock.advance_nanos(3_600_000_000_000);
    let r = status(
        &app,
        id,
        json!({"status": "in_progress", "public_note": "Intervention prévue demain matin."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    clock.advance_nanos(20 * 3_600_000_000_000);
    let r = status(
        &app,
        id,
        json!({"status": "resolved", "note": "Lampe remplacée", "public_note": "Lampe remplacée le 16 juin."}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    let events: Vec<&str> =
        done["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["created", "supported", "acknowledged", "in_progress", "resolved"]);
    assert_eq!(done["next"], json!(["acknowledged"]));
    assert_eq!(done["reason"], "Lampe remplacée");
    // Closed, it only reopens.
    let p =
        problem(status(&app, id, json!({"status": "in_progress"})).await, 400, "bad_request").await;
    assert!(
        p["detail"].as_str().unwrap().contains("a resolved report goes to acknowledged"),
        "{p}"
    );

    // The reporter is told, in French, with the follow-up link; their address only.
    let mut mail = None;
    for _ in 0..200 {
        if let Some(m) = smtp.messages().into_iter().find(|m| m["to"] == "camille@example.org") {
            mail = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = mail.expect("the reporter's message arrived");
    assert_eq!(mail["subject"], format!("Votre signalement n° {id} a été résolu"));
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains(&format!("/signalements/suivi/{follow}")), "{body}");
    assert!(body.contains("Lampe remplacée le 16 juin."), "{body}");
    let public: Value = app
        .get(&format!("/api/v1/reports/follow/{follow}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(public["status"], "resolved");
    assert_eq!(public["note"], "Lampe remplacée le 16 juin.");

    // Kept during the retention, erased after it (the server's own task, on its clock).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.get_json(&format!("/api/v1/reports/{id}")).await["contacts"], 1);
    clock.advance_nanos(31 * 86_400 * 1_000_000_000);
    let mut contacts = 1;
    for _ in 0..100 {
        contacts =
            app.get_json(&format!("/api/v1/reports/{id}")).await["contacts"].as_i64().unwrap();
        if contacts == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(contacts, 0, "the address is erased 30 days after the report closed");
    // The report itself stays, for the statistics.
    assert_eq!(app.get_json(&format!("/api/v1/reports/{id}")).await["status"], "resolved");
    // The audit trail, which cannot be erased, has the operators' moves, never the filings and
    // their address; the erasure is recorded.
    let trail = app.get_json("/api/v1/audit?limit=1000").await.to_string();
    assert!(trail.contains("/api/v1/reports/{id}/status"), "{trail}");
    assert!(trail.contains("reports.retention"), "{trail}");
    assert!(!trail.contains("camille") && !trail.contains("lampadaire"), "{trail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_files_twenty_reports_a_minute_and_a_place_its_hourly_limit() {
    let clock = clock();
    let app = TestApp::spawn_at(clock.clone(), |c| c.reports.per_place_per_hour = 25).await;
    let key = form_key(&app).await;
    clock.advance_nanos(10_000_000_000);
    // Twenty reports of distinct categories and places 100 m apart (none merged).
    for i in 0..20 {
        let r = file(&app, report(&key, "other", 43.5299 + 0.001 * f64::from(i), 5.4474)).await;
        assert_eq!(r.status(), 201, "{i}: {}", r.text().await.unwrap());
    }
    let r = file(&app, report(&key, "other", 43.5, 5.4474)).await;
    let p = problem(r, 429, "rate_limited").await;
    assert!(p["detail"].as_str().unwrap().contains("20 reports a minute"), "{p}");
    // A minute later the client may go on.
    clock.advance_nanos(61_000_000_000);
    let r = file(&app, report(&key, "bin", 43.5299, 5.4474)).await;
    assert_eq!(r.status(), 201);
    // The place: 25 an hour, whoever sends them (duplicates merged count too).
    let clock = self::clock();
    let app = TestApp::spawn_at(clock.clone(), |c| {
        c.reports.per_place_per_hour = 25;
        c.reports.per_client_per_minute = 0;
    })
    .await;
    let key = form_key(&app).await;
    clock.advance_nanos(10_000_000_000);
    // 25 problems 65 m apart around the town hall (none the same as another).
    for i in 0..25 {
        let (dy, dx) = (f64::from(i / 5) - 2.0, f64::from(i % 5) - 2.0);
        let r = file(&app, report(&key, "furniture", 43.5299 + 0.0006 * dy, 5.4474 + 0.0008 * dx))
            .await;
        assert_eq!(r.status(), 201, "{i}: {}", r.text().await.unwrap());
    }
    let r = file(&app, report(&key, "bin", 43.5299, 5.4474)).await;
    let p = problem(r, 429, "rate_limited").await;
    assert!(p["detail"].as_str().unwrap().contains("this place has had 25 new reports"), "{p}");
    // One more person reporting a problem already filed is not a new one: merged.
    let r = file(&app, report(&key, "furniture", 43.5299, 5.4474)).await;
    assert_eq!(r.status(), 200);
    // 200 m away is still the town hall's; 2 km away is not.
    let r = file(&app, report(&key, "bin", 43.5317, 5.4474)).await;
    problem(r, 429, "rate_limited").await;
    assert_eq!(file(&app, report(&key, "bin", 43.5479, 5.4474)).await.status(), 201);
    clock.advance_nanos(3_601_000_000_000);
    assert_eq!(file(&app, report(&key, "bin", 43.5299, 5.4474)).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_are_those_worked_by_hand() {
    let clock = clock();
    let app = TestApp::spawn_at(clock.clone(), |c| c.reports.per_client_per_minute = 0).await;
    let key = form_key(&app).await;
    clock.advance_nanos(10_000_000_000);
    // Five reports at places 500 m apart: two lamps resolved after 2 h and 10 h, one bin
    // resolved after 5 h, one bin rejected, one lamp open.
    let mut ids = Vec::new();
    for (i, c) in ["street_light", "street_light", "bin", "bin", "street_light"].iter().enumerate()
    {
        let r = file(&app, report(&key, c, 43.5299 + 0.005 * i as f64, 5.4474)).await;
        assert_eq!(r.status(), 201);
        ids.push(r.json::<Value>().await.unwrap()["number"].as_i64().unwrap());
    }
    let t0 = clock.now().as_nanos();
    let at = |h: i64| clock.set(Timestamp::from_nanos(t0 + h * 3_600_000_000_000));
    at(2);
    assert_eq!(status(&app, ids[0], json!({"status": "resolved"})).await.status(), 200);
    at(5);
    assert_eq!(status(&app, ids[2], json!({"status": "resolved"})).await.status(), 200);
    at(6);
    let r = status(&app, ids[3], json!({"status": "rejected", "note": "Bac privé"})).await;
    assert_eq!(r.status(), 200);
    at(10);
    assert_eq!(status(&app, ids[1], json!({"status": "resolved"})).await.status(), 200);
    let v = app.get_json("/api/v1/reports/stats?by=category").await;
    assert_eq!(
        v["rows"],
        json!([
            {"group": ["bin"], "reports": 2, "supporters": 2, "open": 0, "resolved": 1,
             "rejected": 1, "median_hours_to_resolve": 5.0, "mean_hours_to_resolve": 5.0},
            {"group": ["street_light"], "reports": 3, "supporters": 3, "open": 1, "resolved": 2,
             "rejected": 0, "median_hours_to_resolve": 6.0, "mean_hours_to_resolve": 6.0},
        ])
    );
    let v = app.get_json("/api/v1/reports/stats?by=month,status").await;
    let groups: Vec<Value> =
        v["rows"].as_array().unwrap().iter().map(|r| r["group"].clone()).collect();
    assert_eq!(
        groups,
        [json!(["2026-06", "new"]), json!(["2026-06", "rejected"]), json!(["2026-06", "resolved"])]
    );
    let csv = app
        .get("/api/v1/reports/stats?by=category&format=csv")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        "category,reports,supporters,open,resolved,rejected,median_hours_to_resolve,mean_hours_to_resolve\n\
         bin,2,2,0,1,1,5.00,5.00\nstreet_light,3,3,1,2,0,6.00,6.00\n"
    );
    // As open data: one record per report, nothing personal, the time to closing in hours.
    let r = app
        .post("/api/v1/open-data/datasets")
        .bearer_auth(ADMIN)
        .json(&json!({"id": "signalements", "kind": "reports", "theme": "equipment",
            "title": "Signalements", "description": "Signalements", "published": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v = app
        .get_json(
            "/api/explore/v2.1/catalog/datasets/signalements/records?order_by=report_id&limit=10",
        )
        .await;
    assert_eq!(v["total_count"], 5);
    let hours: Vec<Value> =
        v["results"].as_array().unwrap().iter().map(|r| r["hours_to_close"].clone()).collect();
    assert_eq!(hours, [json!(2.0), json!(10.0), json!(5.0), json!(6.0), Value::Null]);
    let first = &v["results"][0];
    assert_eq!(first["category"], "street_light");
    assert_eq!(first["status"], "resolved");
    assert_eq!(first["site_id"], "hotel-de-ville");
    assert_eq!(first["geo_point_2d"], json!({"lat": 43.53, "lon": 5.447}));
    assert!(first.get("description").is_none() && first.get("email").is_none(), "{first}");
    let by_status = app
        .get_json("/api/explore/v2.1/catalog/datasets/signalements/records?group_by=status&select=count(*)%20as%20n&order_by=status")
        .await;
    assert_eq!(
        by_status["results"],
        json!([{"status": "new", "n": 1}, {"status": "rejected", "n": 1}, {"status": "resolved", "n": 3}])
    );
    // A month with nothing: no rows, not zeros.
    let v = app.get_json("/api/v1/reports/stats?from=2026-07-01&to=2026-08-01").await;
    assert_eq!(v["rows"], json!([]));
    let r = app.get("/api/v1/reports/stats?by=colour").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 400, "bad_request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departments_and_communes_handle_their_own_tickets() {
    let clock = clock();
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let make = |role: &str, commune: &str, domain: Option<&str>| {
        let mut body =
            json!({"name": format!("{role} {commune}"), "role": role, "commune": commune});
        if let Some(d) = domain {
            body["domain"] = json!(d);
        }
        body
    };
    let mut tokens = Vec::new();
    for body in [
        make("department", "13001", Some("lighting")),
        make("department", "13001", Some("cleanliness")),
        make("operator", "13055", None),
    ] {
        if body["commune"] == "13055" {
            let r = app
                .post("/api/v1/communes")
                .bearer_auth(ADMIN)
                .json(&json!({"insee": "13055", "name": "Marseille"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let r = app.post("/api/v1/tokens").bearer_auth(ADMIN).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        tokens.push(r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned());
    }
    let key = form_key(&app).await;
    clock.advance_nanos(10_000_000_000);
    let r = file(&app, report(&key, "street_light", 43.5299, 5.4474)).await;
    let lamp = r.json::<Value>().await.unwrap()["number"].as_i64().unwrap();
    let list = |t: String| {
        let app = &app;
        async move {
            let r = app.get("/api/v1/reports").bearer_auth(&t).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap().as_array().unwrap().len()
        }
    };
    assert_eq!(list(tokens[0].clone()).await, 1, "lighting sees the lamp");
    assert_eq!(list(tokens[1].clone()).await, 0, "cleanliness does not list it");
    assert_eq!(list(tokens[2].clone()).await, 0, "Marseille does not list Aix's");
    // Cleanliness may read it but not move it; lighting moves it; Marseille does not see it.
    let change = |t: &str| {
        app.post(&format!("/api/v1/reports/{lamp}/status"))
            .bearer_auth(t.to_owned())
            .json(&json!({"status": "acknowledged"}))
            .send()
    };
    problem(change(&tokens[1]).await.unwrap(), 403, "forbidden").await;
    problem(change(&tokens[2]).await.unwrap(), 404, "not_found").await;
    assert_eq!(change(&tokens[0]).await.unwrap().status(), 200);
    let r =
        app.get(&format!("/api/v1/reports/{lamp}")).bearer_auth(&tokens[2]).send().await.unwrap();
    problem(r, 404, "not_found").await;
    // Nobody lists tickets without a token.
    let r = app.get("/api/v1/reports").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_told_through_the_alerts_actions() {
    let clock = clock();
    let app = TestApp::spawn_at(clock.clone(), |c| {
        c.reports.notify = vec![
            serde_json::from_value(json!({"categories": ["bin"], "actions": [
                {"mqtt": {"topic": "city/reports/{category}/{number}", "on": ["opened", "resolved"]}}]}))
            .unwrap(),
        ];
    })
    .await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    // The Métropole's administrator listens (a reader receives SensorThings' Observations only).
    let sub = tokio::task::spawn_blocking(move || {
        crate::helpers::one_message(port, ADMIN, "city/reports/bin/+").wait_with_output().unwrap()
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let key = form_key(&app).await;
    clock.advance_nanos(10_000_000_000);
    // A lamp: no rule names it, nothing is published. Then a bin.
    assert_eq!(file(&app, report(&key, "street_light", 43.5299, 5.4474)).await.status(), 201);
    assert_eq!(file(&app, report(&key, "bin", 43.5299, 5.4474)).await.status(), 201);
    let out = sub.await.unwrap();
    let msg: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(msg["type"], "citizen_report");
    assert_eq!(msg["report"]["category"], "bin");
    assert_eq!(msg["report"]["status"], "new");
    assert_eq!(msg["report"]["site"], "hotel-de-ville");
    // Every attempt is in the delivery log.
    let mut logged = false;
    for _ in 0..50 {
        let d = app.get_json("/api/v1/deliveries").await;
        if d.to_string().contains("report 2 → city/reports/bin/2") {
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged);
    // A notify rule with an rpc action is refused at start.
    let mut cfg = agora::config::Config::default();
    cfg.reports.notify =
        vec![serde_json::from_value(json!({"actions": [{"rpc": {"method": "reboot"}}]})).unwrap()];
    let e = cfg.reports.settings().unwrap_err();
    assert!(e.contains("rpc"), "{e}");
}
