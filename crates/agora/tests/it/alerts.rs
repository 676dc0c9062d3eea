//! Alerts driven by real ingestion over HTTP: each rule kind opens and resolves alerts, the
//! regulatory templates (3 consecutive hours, daily mean in Paris days), hysteresis, late data,
//! a restart with an alert open, a device moved to another site, webhooks (signature, retries,
//! an unreachable endpoint beside a good one), their safety (internal addresses refused unless
//! allow-listed, redirects not followed, secrets write-only and never logged) and MQTT commands
//! received by real subscribers.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{ADMIN, TestApp, problem};

/// Now, rounded down to the hour, in seconds: tests write data in the recent past.
fn hour_now() -> i64 {
    let now = chrono::Utc::now().timestamp();
    now - now % 3600
}

async fn add_rule(app: &TestApp, rule: Value) {
    let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
    let status = r.status();
    assert_eq!(status, 201, "{}", r.text().await.unwrap());
}

/// Alerts of a rule (oldest first) once `ready` holds, waiting at most `secs`.
async fn alerts_until(
    app: &TestApp,
    rule: &str,
    secs: u64,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = app.get_json(&format!("/api/v1/alerts?rule={rule}")).await;
        let mut list = v["alerts"].as_array().unwrap().clone();
        list.reverse();
        if ready(&list) || std::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn states(list: &[Value]) -> Vec<&str> {
    list.iter().map(|a| a["state"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn threshold_opens_within_a_second_and_resolves_with_hysteresis() {
    let app = TestApp::spawn().await;
    add_rule(&app, json!({"id": "pm10-high", "severity": "critical", "scope": {"kind": "air_quality"},
        "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}, "hysteresis": 5.0})).await;
    let t = hour_now() - 600;
    app.write(&format!("air_quality,device=aq-1 pm10=40 {t}")).await;
    app.write(&format!("air_quality,device=aq-1 pm10=51 {}", t + 60)).await;
    let started = std::time::Instant::now();
    let list = alerts_until(&app, "pm10-high", 5, |l| !l.is_empty()).await;
    assert!(started.elapsed() < Duration::from_secs(1), "opened after {:?}", started.elapsed());
    assert_eq!(states(&list), ["open"]);
    assert_eq!(list[0]["device"], "aq-1");
    assert_eq!(list[0]["severity"], "critical");
    assert_eq!(list[0]["value"], 51.0);
    assert_eq!(list[0]["opened_at"], json!(agora_model::Timestamp::from_secs(t + 60).unwrap()));
    // 49 and 52: inside the hysteresis band, no flapping; 44 clears it.
    for (i, v) in [49, 52, 47].iter().enumerate() {
        app.write(&format!("air_quality,device=aq-1 pm10={v} {}", t + 120 + 60 * i as i64)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(states(&alerts_until(&app, "pm10-high", 0, |_| true).await), ["open"]);
    app.write(&format!("air_quality,device=aq-1 pm10=44 {}", t + 300)).await;
    let list = alerts_until(&app, "pm10-high", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(states(&list), ["resolved"]);
    assert_eq!(list[0]["resolved_by"], "auto");
    assert_eq!(list[0]["resolved_at"], json!(agora_model::Timestamp::from_secs(t + 300).unwrap()));
    // Other kinds are out of the rule's scope.
    app.write(&format!("noise,device=n-1 pm10=99 {}", t + 360)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alerts_until(&app, "pm10-high", 0, |_| true).await.len(), 1);
}

#[tokio::test]
async fn templates_three_consecutive_hours_and_daily_mean_in_paris_days() {
    let app = TestApp::spawn().await;
    add_rule(&app, json!({"template": "no2-alert", "id": "no2-400-3h"})).await;
    add_rule(&app, json!({"template": "pm10-alert", "id": "pm10-80-day"})).await;
    let h0 = hour_now() - 8 * 3600;
    // NO2 over five hours: 420, 430, 410, 405, 300 (four minute points each hour).
    let mut body = String::new();
    for (h, v) in [420, 430, 410, 405, 300].iter().enumerate() {
        for m in [0, 15, 30, 45] {
            body.push_str(&format!(
                "air_quality,device=aq-1 no2={v} {}\n",
                h0 + h as i64 * 3600 + m * 60
            ));
        }
    }
    // Two hours above, one below, one above: never three in a row.
    for (h, v) in [450, 450, 100, 450].iter().enumerate() {
        body.push_str(&format!("air_quality,device=aq-2 no2={v} {}\n", h0 + h as i64 * 3600));
    }
    // PM10: a Paris day ago with a mean of 90 (alert), the day before with 70 (none).
    use chrono::TimeZone;
    let paris = chrono_tz::Europe::Paris;
    let today = chrono::Utc::now().with_timezone(&paris).date_naive();
    let midnight = |d: chrono::NaiveDate| {
        paris.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap()).unwrap().timestamp()
    };
    let (d1, d2) = (today - chrono::Days::new(2), today - chrono::Days::new(1));
    for (day, values) in [(d1, [60.0, 80.0]), (d2, [120.0, 60.0])] {
        let start = midnight(day);
        // Early morning and late evening: both local hours belong to the same Paris day.
        body.push_str(&format!("air_quality,device=aq-1 pm10={} {}\n", values[0], start + 1800));
        body.push_str(&format!(
            "air_quality,device=aq-1 pm10={} {}\n",
            values[1],
            start + 23 * 3600
        ));
    }
    app.write(&body).await;

    let list = alerts_until(&app, "no2-400-3h", 5, |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["device"], "aq-1");
    assert_eq!(list[0]["state"], "resolved");
    // Opened when the third hour above 400 was complete, resolved when the 300 hour was.
    assert_eq!(
        list[0]["opened_at"],
        json!(agora_model::Timestamp::from_secs(h0 + 3 * 3600).unwrap())
    );
    assert_eq!(
        list[0]["resolved_at"],
        json!(agora_model::Timestamp::from_secs(h0 + 5 * 3600).unwrap())
    );
    assert_eq!(list[0]["value"], 430.0);

    let list = alerts_until(&app, "pm10-80-day", 5, |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        list[0]["opened_at"],
        json!(agora_model::Timestamp::from_secs(midnight(today)).unwrap())
    );
    assert_eq!(list[0]["value"], 90.0);
    assert_eq!(list[0]["state"], "open", "today has no data yet: still above as far as is known");

    // Late data in a window already evaluated (windows are kept between ticks and read again
    // only when points arrive in them): aq-2's third hour rises to a mean of 633, making four
    // hours above 400 in a row.
    let late = format!(
        "air_quality,device=aq-2 no2=900 {}\nair_quality,device=aq-2 no2=900 {}\n",
        h0 + 2 * 3600 + 600,
        h0 + 2 * 3600 + 1200
    );
    app.write(&late).await;
    let list =
        alerts_until(&app, "no2-400-3h", 5, |l| l.iter().any(|a| a["device"] == "aq-2")).await;
    let a = list.iter().find(|a| a["device"] == "aq-2").expect("the late points open an alert");
    assert_eq!(a["opened_at"], json!(agora_model::Timestamp::from_secs(h0 + 3 * 3600).unwrap()));
    assert!((a["value"].as_f64().unwrap() - 633.333).abs() < 0.01, "{a}");
}

#[tokio::test]
async fn state_rate_sustained_at_night_combinations_and_silence() {
    let app = TestApp::spawn().await;
    add_rule(&app, json!({"template": "lamp-defective", "id": "lamp"})).await;
    add_rule(&app, json!({"id": "warming", "condition": {"rate": {"property": "temperature", "op": ">", "value": 5.0, "over": "1h"}}})).await;
    add_rule(&app, json!({"template": "night-noise", "id": "night"})).await;
    add_rule(
        &app,
        json!({"id": "both", "condition": {"all": [
        {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
        {"threshold": {"property": "no2", "op": ">", "value": 100.0}}]}}),
    )
    .await;
    add_rule(&app, json!({"id": "silent", "condition": {"no_data": {"for": "2s"}}, "scope": {"device": "wx-1"}})).await;
    let t = hour_now() - 3 * 3600;
    app.write(&format!("streetlight,device=sl-1 lamp_status=\"defectiveLamp\" {t}\nstreetlight,device=sl-1 lamp_status=\"ok\" {}", t + 900)).await;
    app.write(&format!(
        "weather,device=wx-1 temperature=20 {t}\nweather,device=wx-1 temperature=22 {}\nweather,device=wx-1 temperature=27 {}\nweather,device=wx-1 temperature=27 {}",
        t + 1800, t + 3600, t + 7200
    ))
    .await;
    app.write(&format!("air_quality,device=aq-1 pm10=60,no2=90 {t}\nair_quality,device=aq-1 pm10=60,no2=120 {}\nair_quality,device=aq-1 pm10=40,no2=120 {}", t + 60, t + 120)).await;
    // Noise: 40 minutes above 55 dB(A) at 23:00 in Paris, and the same at noon.
    use chrono::TimeZone;
    let paris = chrono_tz::Europe::Paris;
    let yesterday = chrono::Utc::now().with_timezone(&paris).date_naive() - chrono::Days::new(1);
    let at = |h: u32| {
        paris.from_local_datetime(&yesterday.and_hms_opt(h, 0, 0).unwrap()).unwrap().timestamp()
    };
    let mut body = String::new();
    for base in [at(12), at(23)] {
        for m in 0..40 {
            body.push_str(&format!("noise,device=n-1 laeq=60 {}\n", base + m * 60));
        }
        body.push_str(&format!("noise,device=n-1 laeq=40 {}\n", base + 40 * 60));
    }
    app.write(&body).await;

    let lamp = alerts_until(&app, "lamp", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(states(&lamp), ["resolved"]);
    let warm = alerts_until(&app, "warming", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(
        warm[0]["opened_at"],
        json!(agora_model::Timestamp::from_secs(t + 3600).unwrap()),
        "+7 °C over the hour"
    );
    assert_eq!(warm[0]["resolved_at"], json!(agora_model::Timestamp::from_secs(t + 7200).unwrap()));
    let night = alerts_until(&app, "night", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(night.len(), 1, "only the night one: {night:?}");
    assert_eq!(
        night[0]["opened_at"],
        json!(agora_model::Timestamp::from_secs(at(23) + 30 * 60).unwrap())
    );
    let both = alerts_until(&app, "both", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(both.len(), 1);
    assert_eq!(both[0]["opened_at"], json!(agora_model::Timestamp::from_secs(t + 60).unwrap()));
    assert_eq!(both[0]["resolved_at"], json!(agora_model::Timestamp::from_secs(t + 120).unwrap()));
    // wx-1 last wrote at t + 2 h: silent for more than 2 s.
    let silent = alerts_until(&app, "silent", 5, |l| !l.is_empty()).await;
    assert_eq!(states(&silent), ["open"]);
    app.write(&format!("weather,device=wx-1 temperature=27 {}", chrono::Utc::now().timestamp()))
        .await;
    let silent = alerts_until(&app, "silent", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(states(&silent), ["resolved"]);
}

#[tokio::test]
async fn late_and_out_of_order_points_give_the_in_order_result() {
    let app = TestApp::spawn().await;
    add_rule(&app, json!({"id": "o3", "condition": {"threshold": {"property": "o3", "op": ">", "value": 180.0}}})).await;
    let t = hour_now() - 3600;
    let series = [(0, 100), (60, 200), (120, 210), (180, 150), (240, 190), (300, 100)];
    let mut in_order = String::new();
    for (dt, v) in series {
        in_order.push_str(&format!("air_quality,device=a o3={v} {}\n", t + dt));
    }
    app.write(&in_order).await;
    for i in [5usize, 0, 3, 1, 4, 2] {
        let (dt, v) = series[i];
        app.write(&format!("air_quality,device=b o3={v} {}", t + dt)).await;
    }
    let done = |l: &[Value]| l.iter().filter(|a| a["state"] == "resolved").count() == 4;
    let list = alerts_until(&app, "o3", 5, done).await;
    let spans = |d: &str| -> Vec<(Value, Value)> {
        let mut v: Vec<(Value, Value)> = list
            .iter()
            .filter(|a| a["device"] == d)
            .map(|a| (a["opened_at"].clone(), a["resolved_at"].clone()))
            .collect();
        v.sort_by_key(|x| x.0.to_string());
        v
    };
    assert_eq!(spans("a").len(), 2, "{list:?}");
    assert_eq!(spans("a"), spans("b"));
}

#[tokio::test]
async fn an_open_alert_survives_a_restart_without_duplicate() {
    let mut app = TestApp::spawn().await;
    add_rule(&app, json!({"id": "bin", "condition": {"threshold": {"property": "fill_level", "op": ">=", "value": 80.0}}})).await;
    let t = hour_now() - 600;
    app.write(&format!("waste_container,device=bin-1 fill_level=85 {t}")).await;
    assert_eq!(states(&alerts_until(&app, "bin", 5, |l| !l.is_empty()).await), ["open"]);
    app.restart().await;
    app.write(&format!("waste_container,device=bin-1 fill_level=90 {}", t + 60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(states(&alerts_until(&app, "bin", 0, |_| true).await), ["open"], "no duplicate");
    // Acknowledge it, then let it clear.
    let id = alerts_until(&app, "bin", 0, |_| true).await[0]["id"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/alerts/{id}/acknowledge"))
        .bearer_auth(ADMIN)
        .json(&json!({"comment": "team on its way"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .post(&format!("/api/v1/alerts/{id}/acknowledge"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 409, "conflict").await;
    app.restart().await;
    app.write(&format!("waste_container,device=bin-1 fill_level=10 {}", t + 120)).await;
    let list = alerts_until(&app, "bin", 5, |l| states(l) == ["resolved"]).await;
    assert_eq!(states(&list), ["resolved"]);
    assert_eq!(list[0]["acknowledged_by"], "admin (AGORA_ADMIN_TOKEN)");
    assert_eq!(list[0]["ack_comment"], "team on its way");
    let open = app.get_json("/api/v1/alerts?state=open").await;
    assert_eq!(open["count"], 0);
}

#[tokio::test]
async fn invalid_rules_are_refused_with_problem_json() {
    let app = TestApp::spawn().await;
    for (rule, says) in [
        (
            json!({"id": "a", "condition": {"threshold": {"property": "pm42", "op": ">", "value": 1}}}),
            "unknown property \"pm42\"",
        ),
        (
            json!({"id": "b", "condition": {"threshold": {"property": "pm10", "op": "=>", "value": 1}}}),
            "unknown variant",
        ),
        (
            json!({"id": "c", "condition": {"window": {"property": "pm10", "every": "7m", "op": ">", "value": 1}}}),
            "impossible window",
        ),
        (json!({"id": "d", "condition": {"all": []}}), "at least one"),
        (json!({"id": "Bad Id", "condition": {"no_data": {"periods": 3}}}), "bad rule id"),
        (json!({"template": "nope"}), "unknown template"),
        (
            json!({"id": "e", "condition": {"indicator": {"name": "atmo", "op": ">=", "value": 7}}}),
            "from 1 to 6, not 7",
        ),
        (
            json!({"id": "f", "condition": {"indicator": {"name": "pollen", "op": ">=", "value": 1}}}),
            "unknown variant",
        ),
    ] {
        let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
        let p = problem(r, 422, "invalid_rule").await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    // Only admins change rules.
    let read = app.token("read", None).await;
    let r = app
        .post("/api/v1/rules")
        .bearer_auth(&read)
        .json(&json!({"template": "bin-full"}))
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    let t = app.get_json("/api/v1/rules/templates").await;
    assert_eq!(t["templates"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn a_stored_rule_that_became_invalid_is_reported_not_changed_and_others_run() {
    use agora_store::alerts::{AlertStore, SqliteAlertStore, StoredRule};
    let mut app = TestApp::spawn().await;
    add_rule(&app, json!({"id": "bin", "condition": {"threshold": {"property": "fill_level", "op": ">=", "value": 80.0}}})).await;
    // While agora is stopped, a rule's stored body is edited by hand: its window no longer
    // parses. It used to be evaluated with a window of 0 ns.
    app.server.take().unwrap().shutdown().await.unwrap();
    let bad = json!({"id": "no2", "condition": {"window": {"property": "no2", "every": "1hour", "op": ">", "value": 400.0}}});
    {
        let sqlite = agora_store::SqliteCatalog::open(app.dir.path()).await.unwrap();
        let store = SqliteAlertStore::new(sqlite.pool());
        let rule = StoredRule {
            id: "no2".into(),
            body: bad.clone(),
            origin: "api".into(),
            updated_at: agora_model::Timestamp::from_nanos(0),
        };
        store.put_rule(&rule).await.unwrap();
        sqlite.pool().close().await;
    }
    app.restart_stopped().await;
    let v = app.get_json("/api/v1/rules").await;
    let ids: Vec<&str> =
        v["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["bin"], "{v}");
    assert_eq!(v["invalid"][0]["id"], "no2", "{v}");
    assert!(v["invalid"][0]["reason"].as_str().unwrap().contains("bad duration \"1hour\""), "{v}");
    // The other rule still runs.
    let t = hour_now() - 600;
    app.write(&format!("waste_container,device=bin-1 fill_level=85 {t}")).await;
    assert_eq!(states(&alerts_until(&app, "bin", 5, |l| !l.is_empty()).await), ["open"]);
    // Nothing was changed behind the operator's back: after another restart it is still there,
    // still reported; replacing it makes it valid again.
    app.restart().await;
    assert_eq!(app.get_json("/api/v1/rules").await["invalid"][0]["id"], "no2");
    let fixed = json!({"id": "no2", "condition": {"window": {"property": "no2", "every": "1h", "op": ">", "value": 400.0}}});
    let r = app
        .client
        .put(app.url("/api/v1/rules/no2"))
        .bearer_auth(ADMIN)
        .json(&fixed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "replaced: {}", r.text().await.unwrap());
    let fresh = json!({"condition": {"threshold": {"property": "no2", "op": ">", "value": 200.0}}});
    let r = app
        .client
        .put(app.url("/api/v1/rules/fresh"))
        .bearer_auth(ADMIN)
        .json(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "made: {}", r.text().await.unwrap());
    let v = app.get_json("/api/v1/rules").await;
    assert_eq!(v["invalid"], json!([]), "{v}");
    assert_eq!(v["rules"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_window_rule_with_a_schedule_counts_only_the_windows_it_covers() {
    let app = TestApp::spawn().await;
    add_rule(
        &app,
        json!({"id": "lnight", "scope": {"kind": "noise"},
        "condition": {"window": {"property": "laeq", "every": "1h", "op": ">", "value": 55.0}},
        "schedule": {"from": "22:00", "to": "06:00"}}),
    )
    .await;
    // Yesterday in Paris: a loud hour at noon (outside the schedule), then one at 23:00.
    use chrono::TimeZone;
    let paris = chrono_tz::Europe::Paris;
    let yesterday = chrono::Utc::now().with_timezone(&paris).date_naive() - chrono::Days::new(1);
    let at = |h: u32| {
        paris.from_local_datetime(&yesterday.and_hms_opt(h, 0, 0).unwrap()).unwrap().timestamp()
    };
    let mut body = String::new();
    // (Values that vary: a level repeated for hours is flagged as a stuck sensor.)
    for h in [12, 23] {
        for (m, v) in [(0, 68.5), (20, 71.0), (40, 69.5)] {
            body.push_str(&format!("noise,device=nm-1 laeq={v} {}\n", at(h) + m * 60));
        }
    }
    app.write(&body).await;
    let list = alerts_until(&app, "lnight", 5, |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "only the night hour opens an alert: {list:?}");
    assert_eq!(
        list[0]["opened_at"],
        json!(agora_model::Timestamp::from_secs(at(23) + 3600).unwrap()),
        "opened when the 23:00 hour completed"
    );
}

/// A local HTTP receiver: answers 500 to the first `fail` requests, then 204; keeps what it got.
async fn receiver(
    fail: usize,
) -> (String, Arc<parking_lot::Mutex<Vec<(axum::http::HeaderMap, String, std::time::Instant)>>>) {
    let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let mut v = g.lock();
                v.push((h, body, std::time::Instant::now()));
                if v.len() <= fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_a_dead_endpoint_delays_no_other() {
    let app = TestApp::spawn_with(|c| {
        c.alerts.first_retry_ms = 100;
        c.alerts.max_attempts = 4;
        c.alerts.webhook_timeout_secs = 5;
        // The receivers are on this machine: internal addresses need the operator's consent.
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (flaky, flaky_got) = receiver(2).await;
    let (good, good_got) = receiver(0).await;
    // Accepts connections and never answers.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/hook", black_hole.local_addr().unwrap());
    add_rule(&app, json!({"id": "hooked", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
        "actions": [
            {"webhook": {"url": dead, "on": ["opened"]}},
            {"webhook": {"url": flaky, "secret": "s3cret", "on": ["opened"]}},
            {"webhook": {"url": good, "on": ["opened", "resolved"]}}]})).await;
    let t = hour_now() - 60;
    let sent = std::time::Instant::now();
    app.write(&format!("air_quality,device=aq-1 pm10=70 {t}")).await;
    for _ in 0..100 {
        if !good_got.lock().is_empty() && flaky_got.lock().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let good_at = good_got.lock()[0].2;
    assert!(
        good_at.duration_since(sent) < Duration::from_secs(1),
        "the good endpoint waited {:?}",
        good_at.duration_since(sent)
    );
    let got = flaky_got.lock().clone();
    assert_eq!(got.len(), 3, "two failures, then success");
    let (h, body, _) = &got[2];
    let ts = h["x-agora-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(h["x-agora-signature"].to_str().unwrap(), expected);
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], "opened");
    assert_eq!(v["alert"]["device"], "aq-1");
    assert_eq!(v["rule"]["id"], "hooked");
    // Back-off: 100 ms, then 200 ms.
    assert!(got[2].2.duration_since(got[1].2) >= Duration::from_millis(190));
    // The delivery log has every attempt (the last one logged once its answer came back).
    let id = alerts_until(&app, "hooked", 0, |_| true).await[0]["id"].as_i64().unwrap();
    let mut flaky_log: Vec<(u64, bool)> = Vec::new();
    for _ in 0..40 {
        let d = app.get_json(&format!("/api/v1/alerts/{id}")).await;
        flaky_log = d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["target"] == flaky.as_str())
            .map(|x| (x["attempt"].as_u64().unwrap(), x["ok"].as_bool().unwrap()))
            .collect();
        if flaky_log.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(flaky_log, [(1, false), (2, false), (3, true)]);
    drop(black_hole);
}

#[tokio::test]
async fn mqtt_commands_reach_real_subscribers_on_agoras_endpoint_and_through_mosquitto() {
    let app = TestApp::spawn().await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let lamp_token = app.token("ingest", Some("sl-1")).await;
    add_rule(&app, json!({"template": "lamp-defective", "id": "lamp", "actions": [
        {"mqtt": {"topic": "agora/commands/{device}", "payload": {"command": "dim", "level": 0, "reason": "{rule}"}}}]})).await;
    let sub = tokio::task::spawn_blocking({
        let t = lamp_token.clone();
        move || {
            crate::helpers::one_message(port, &t, "agora/commands/sl-1").wait_with_output().unwrap()
        }
    });
    // A device's token may not listen to another device's commands.
    let other = app.token("ingest", Some("sl-2")).await;
    let refused = tokio::task::spawn_blocking(move || {
        Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-u",
                &other,
                "-t",
                "agora/commands/sl-1",
                "-C",
                "1",
                "-W",
                "3",
            ])
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.write(&format!("streetlight,device=sl-1 lamp_status=\"defectiveLamp\" {}", hour_now()))
        .await;
    let out = sub.await.unwrap();
    let msg: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(msg, json!({"command": "dim", "level": 0, "reason": "lamp"}));
    assert!(refused.await.unwrap().stdout.is_empty(), "no command for another device's token");

    // Through an external broker.
    let broker = crate::mqtt::Mosquitto::start();
    let app2 = TestApp::spawn_with(|c| {
        c.alerts.mqtt = Some(agora_alerts::ExternalBroker(agora_mqtt::Broker {
            host: "127.0.0.1".into(),
            port: broker.port,
            ..Default::default()
        }));
    })
    .await;
    add_rule(&app2, json!({"template": "soil-dry", "id": "dry", "actions": [
        {"mqtt": {"topic": "irrigation/{site}/start", "payload": {"minutes": 20, "sensor": "{device}"}}}]})).await;
    let bport = broker.port;
    let sub = tokio::task::spawn_blocking(move || {
        crate::helpers::one_message(bport, "any", "irrigation/+/start").wait_with_output().unwrap()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    app2.write(&format!(
        "soil_moisture,device=soil-1,site=hotel-de-ville soil_moisture=9 {}",
        hour_now()
    ))
    .await;
    let out = sub.await.unwrap();
    let msg: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(msg, json!({"minutes": 20, "sensor": "soil-1"}));
    // The attempt is logged right after the broker's acknowledgement.
    let mut d = app2.get_json("/api/v1/deliveries").await;
    for _ in 0..40 {
        if d["deliveries"][0]["ok"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        d = app2.get_json("/api/v1/deliveries").await;
    }
    assert_eq!(d["deliveries"][0]["target"], "irrigation/hotel-de-ville/start");
    assert_eq!(d["deliveries"][0]["ok"], true);
}

#[tokio::test]
async fn forecast_rules_open_on_agoras_own_forecasts() {
    use agora_model::{MockClock, Timestamp};
    use chrono::TimeZone;
    // Six weeks of PM10: about 20 µg/m³, and 250 every afternoon from 14:00 to 16:00 (Paris). At
    // 08:30 the forecast of the next 24 hours holds this afternoon's peak; the next 4 hours do
    // not reach it.
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let clock = MockClock::new(at("2026-11-30T08:30:00+01:00"));
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let paris = chrono_tz::Europe::Paris;
    let first = chrono::NaiveDate::from_ymd_opt(2026, 10, 19).unwrap();
    let mut lines = String::new();
    let mut day = first;
    let now = at("2026-11-30T08:00:00+01:00").as_nanos() / 1_000_000_000;
    while day <= chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap() {
        for h in 0..24u32 {
            let Some(t) = paris.from_local_datetime(&day.and_hms_opt(h, 0, 0).unwrap()).earliest()
            else {
                continue;
            };
            if t.timestamp() >= now {
                break;
            }
            // A little variation: a value repeated for hours is flagged as a stuck sensor.
            let wobble = (chrono::Datelike::ordinal(&day) + h) % 5;
            let v = if (14..17).contains(&h) { 250 + wobble } else { 20 + wobble };
            lines.push_str(&format!("air_quality,device=aq-1 pm10={v} {}\n", t.timestamp() + 60));
        }
        day = day.succ_opt().unwrap();
    }
    app.write(&lines).await;
    add_rule(&app, json!({"id": "pm10-tomorrow", "condition": {"forecast": {"property": "pm10", "horizon": "24h", "op": ">", "value": 200.0}}})).await;
    add_rule(&app, json!({"id": "pm10-soon", "condition": {"forecast": {"property": "pm10", "horizon": "4h", "op": ">", "value": 200.0}}})).await;
    let list = alerts_until(&app, "pm10-tomorrow", 20, |l| !l.is_empty()).await;
    assert_eq!(states(&list), ["open"]);
    assert_eq!(list[0]["device"], "aq-1");
    // It says what was forecast: this afternoon's peak, about 250 µg/m³.
    assert_eq!(list[0]["property"], "pm10");
    let peak = list[0]["value"].as_f64().unwrap();
    assert!((240.0..260.0).contains(&peak), "{}", list[0]);
    // With its 95 % interval, which holds it.
    let message = list[0]["message"].as_str().unwrap();
    let (lo, hi) = message
        .split_once("intervalle à 95 % : ")
        .and_then(|(_, r)| r.trim_end_matches(')').split_once(" à "))
        .unwrap_or_else(|| panic!("{message}"));
    let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(lo <= peak && peak <= hi && hi - lo < 100.0, "{message}");
    assert!(alerts_until(&app, "pm10-soon", 0, |_| true).await.is_empty());
    // A series that cannot be forecast (two points) never opens one.
    app.write(&format!(
        "air_quality,device=aq-2 pm10=900 {}\nair_quality,device=aq-2 pm10=900 {}",
        now - 7200,
        now - 3600
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = alerts_until(&app, "pm10-tomorrow", 0, |_| true).await;
    assert!(all.iter().all(|a| a["device"] == "aq-1"), "{all:?}");
    // A restart keeps it open: its forecast is made again, and until it is, the rule waits.
    let mut app = app;
    app.restart().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = alerts_until(&app, "pm10-tomorrow", 0, |_| true).await;
    assert_eq!(states(&after), ["open"], "{after:?}");
    // As the day goes on, the forecast changes: at 11:30 the next 4 hours reach the afternoon's
    // peak, at 17:30 (the peak over) they no longer do.
    clock.set(at("2026-11-30T11:30:00+01:00"));
    let soon = alerts_until(&app, "pm10-soon", 20, |l| !l.is_empty()).await;
    assert_eq!(states(&soon), ["open"]);
    clock.set(at("2026-11-30T17:30:00+01:00"));
    let soon =
        alerts_until(&app, "pm10-soon", 20, |l| l.first().is_some_and(|a| a["state"] != "open"))
            .await;
    assert_eq!(states(&soon), ["resolved"], "{soon:?}");
}

#[tokio::test]
async fn a_device_moved_to_another_site_leaves_its_rules_for_that_sites() {
    let app = TestApp::spawn().await;
    for site in ["place-a", "place-b"] {
        let place =
            json!({"id": site, "commune": "13001", "name": site, "lat": 43.53, "lon": 5.45});
        let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&place).send().await.unwrap();
        assert_eq!(r.status(), 201);
        add_rule(
            &app,
            json!({"id": site, "scope": {"site": site},
            "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}}),
        )
        .await;
    }
    let t = hour_now() - 600;
    app.write(&format!("air_quality,device=aq-m,site=place-a pm10=70 {t}")).await;
    let a = alerts_until(&app, "place-a", 5, |l| !l.is_empty()).await;
    assert_eq!(states(&a), ["open"]);
    let r = app
        .post("/api/v1/devices")
        .bearer_auth(ADMIN)
        .json(&json!({"id": "aq-m", "kind": "air_quality", "site": "place-b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The evaluator looks for moved devices every second.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    app.write(&format!("air_quality,device=aq-m pm10=70 {}", t + 60)).await;
    let b = alerts_until(&app, "place-b", 5, |l| !l.is_empty()).await;
    assert_eq!(states(&b), ["open"], "the new site's rule");
    // The old site's rule no longer covers the device: its alert was resolved, none opened.
    let a = alerts_until(&app, "place-a", 0, |_| true).await;
    assert_eq!(states(&a), ["resolved"], "{a:?}");
    assert_eq!(a[0]["resolved_by"], "auto");
}

/// The delivery log of an alert once it holds `n` attempts (at most 5 s).
async fn deliveries_until(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let d = app.get_json("/api/v1/deliveries").await;
        let list = d["deliveries"].as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} deliveries")
}

#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_unless_allow_listed() {
    let app = TestApp::spawn_with(|c| c.alerts.first_retry_ms = 50).await;
    let (hook, got) = receiver(0).await;
    let port = hook.rsplit(':').next().unwrap().trim_end_matches("/hook").to_owned();
    // An address in the URL: refused when the rule is made.
    for (url, says) in [
        (hook.clone(), "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/".into(), "a cloud metadata address"),
        ("http://[fd00:ec2::254]/".into(), "a cloud metadata address"),
        ("http://10.0.0.7/hook".into(), "a private address"),
        ("http://100.64.1.1/hook".into(), "CGNAT"),
        ("http://[::1]:9/".into(), "loopback"),
        ("http://0.0.0.0:9/".into(), "unspecified"),
        ("http://2130706433/".into(), "127.0.0.1 is a loopback address"),
    ] {
        let rule = json!({"id": "internal", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
            "actions": [{"webhook": {"url": url}}]});
        let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
        let p = problem(r, 422, "invalid_rule").await;
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(says) && detail.contains("allow_hosts"), "{url}: {p}");
    }
    // A name that resolves to one: refused when called, logged once (not retried), never sent.
    add_rule(&app, json!({"id": "by-name", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
        "actions": [{"webhook": {"url": format!("http://localhost:{port}/hook"), "on": ["opened"]}}]})).await;
    app.write(&format!("air_quality,device=aq-1 pm10=70 {}", hour_now() - 60)).await;
    let d = deliveries_until(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d2 = deliveries_until(&app, 1).await;
    assert_eq!(d2.len(), 1, "a refusal is final: {d2:?}");
    assert_eq!(d[0]["ok"], false);
    let detail = d[0]["detail"].as_str().unwrap();
    assert!(detail.contains("localhost (") && detail.contains("loopback"), "{detail}");
    assert!(got.lock().is_empty(), "nothing reached the internal receiver");
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed() {
    let app = TestApp::spawn_with(|c| {
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
        c.alerts.first_retry_ms = 50;
        c.alerts.max_attempts = 3;
    })
    .await;
    let (internal, internal_got) = receiver(0).await;
    let target = internal.replace("http://", "http://admin:hunter2@");
    let redirector = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let to = target.clone();
            async move {
                (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)])
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, redirector).await.unwrap() });
    add_rule(&app, json!({"id": "redirected", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
        "actions": [{"webhook": {"url": url, "on": ["opened"]}}]})).await;
    app.write(&format!("air_quality,device=aq-1 pm10=70 {}", hour_now() - 60)).await;
    let d = deliveries_until(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deliveries_until(&app, 1).await.len(), 1, "a redirect is not retried");
    assert_eq!(d[0]["ok"], false);
    let detail = d[0]["detail"].as_str().unwrap();
    assert!(detail.contains("HTTP 307") && detail.contains("not followed"), "{detail}");
    assert!(detail.contains("admin:********@127.0.0.1") && !detail.contains("hunter2"), "{detail}");
    assert!(internal_got.lock().is_empty(), "the redirect was followed");
}

/// The real binary with a configuration file, its logs (at debug level) in a file.
struct LoggedServer {
    child: std::process::Child,
    addr: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl LoggedServer {
    fn spawn(config: &str) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("agora.toml");
        std::fs::write(&cfg, config).unwrap();
        let log = dir.path().join("agora.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["serve", "--http", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("AGORA_ADMIN_TOKEN", ADMIN)
            .env("AGORA_LOG", "debug")
            .env("AGORA_MQTT_LISTEN", "off")
            .env_remove("AGORA_CONFIG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(a) = line.strip_prefix("agora listening on ") {
                break a.to_owned();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, log, _dir: dir }
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn secrets_are_write_only_masked_in_deliveries_and_never_logged() {
    let (hook, got) = receiver(1000).await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let server = LoggedServer::spawn(
        r#"
[alerts]
allow_hosts = ["127.0.0.1"]
max_attempts = 2
first_retry_ms = 50

[[alerts.rules]]
id = "from-config"
condition = { threshold = { property = "no2", op = ">", value = 1000.0 } }
actions = [{ webhook = { url = "https://cfguser:cfgpass777@ops.example/hook", secret = "cfgsecret888" } }]
"#,
    );
    let base = server.addr.clone();
    let client = reqwest::Client::new();
    let secrets =
        ["urlpass123", "whsec789", "qtok456", "cfgpass777", "cfgsecret888", "deadpass000"];
    let with_creds = hook.replace("http://", "http://hookuser:urlpass123@") + "?token=qtok456";
    let rule = json!({"id": "hooked", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
        "actions": [
            {"webhook": {"url": with_creds, "secret": "whsec789", "on": ["opened"]}},
            {"webhook": {"url": format!("http://u:deadpass000@{dead}/hook"), "on": ["opened"]}}]});
    let r = client
        .post(format!("{base}/api/v1/rules"))
        .bearer_auth(ADMIN)
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = r.text().await.unwrap();
    // A read token sees that there are secrets, not what they are.
    let read = {
        let r = client
            .post(format!("{base}/api/v1/tokens"))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "reader", "scope": "read"}))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    };
    let get = |path: &str| {
        let (client, url, read) = (client.clone(), format!("{base}{path}"), read.clone());
        async move {
            let r = client.get(url).bearer_auth(read).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let listed = get("/api/v1/rules").await;
    let one: Value = serde_json::from_str(&get("/api/v1/rules/hooked").await).unwrap();
    assert_eq!(one["actions"][0]["webhook"]["secret"], "********");
    assert_eq!(
        one["actions"][0]["webhook"]["url"],
        hook.replace("http://", "http://hookuser:********@") + "?token=********"
    );
    for body in [&created, &listed, &one.to_string()] {
        for s in secrets {
            assert!(!body.contains(s), "{s} in {body}");
        }
    }
    // An admin sends the rule back as shown: the stored secrets are kept.
    let r = client
        .put(format!("{base}/api/v1/rules/hooked"))
        .bearer_auth(ADMIN)
        .json(&one)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = client
        .post(format!("{base}/api/v2/write?precision=s"))
        .header("Authorization", format!("Token {ADMIN}"))
        .body(format!("air_quality,device=aq-1 pm10=70 {}", hour_now() - 60))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Both webhooks tried twice; the receiver saw the real credentials and signature.
    let mut deliveries = String::new();
    for _ in 0..100 {
        deliveries = get("/api/v1/deliveries").await;
        let v: Value = serde_json::from_str(&deliveries).unwrap();
        if v["deliveries"].as_array().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v: Value = serde_json::from_str(&deliveries).unwrap();
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 4, "{v}");
    let (h, body, _) = got.lock()[0].clone();
    assert_eq!(h["authorization"], "Basic aG9va3VzZXI6dXJscGFzczEyMw==", "hookuser:urlpass123");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec789").unwrap();
    mac.update(format!("{}.{body}", h["x-agora-timestamp"].to_str().unwrap()).as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(h["x-agora-signature"].to_str().unwrap(), expected);
    let alert_id = v["deliveries"][0]["alert_id"].as_i64().unwrap();
    let alert = get(&format!("/api/v1/alerts/{alert_id}")).await;
    for body in [&deliveries, &alert] {
        assert!(body.contains("hookuser:********@"), "{body}");
        for s in secrets {
            assert!(!body.contains(s), "{s} in {body}");
        }
    }
    // Stopped, so that everything it logged is in the file.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("action failed") && log.contains("hookuser:********@"), "{log}");
    for s in secrets {
        assert!(!log.contains(s), "{s} logged:\n{log}");
    }
}

#[tokio::test]
async fn an_rpc_action_calls_the_device_and_logs_its_answer() {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let app = TestApp::spawn_with(|c| c.alerts.first_retry_ms = 50).await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let lamp_token = app.token("ingest", Some("sl-1")).await;
    add_rule(&app, json!({"template": "lamp-defective", "id": "lamp", "actions": [
        {"rpc": {"method": "setDimLevel", "params": {"level": 0, "reason": "{rule}"}, "timeout_ms": 5000}},
        {"rpc": {"device": "sl-absent", "method": "setDimLevel", "timeout_ms": 200}}]}))
    .await;
    // The lamp, as an MQTT 5 device on agora's endpoint, answers calls on ThingsBoard's topics.
    let mut opts = MqttOptions::new("sl-1", "127.0.0.1", port);
    opts.set_credentials(lamp_token, "");
    let (client, mut events) = AsyncClient::new(opts, 16);
    client.subscribe("v1/devices/me/rpc/request/+", QoS::AtLeastOnce).await.unwrap();
    let device = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8(p.topic.to_vec()).unwrap();
                    let call: Value = serde_json::from_slice(&p.payload).unwrap();
                    let id = topic.rsplit('/').next().unwrap().to_owned();
                    let answer = json!({"dimmed_to": call["params"]["level"], "method": call["method"], "why": call["params"]["reason"]});
                    client
                        .publish(
                            format!("v1/devices/me/rpc/response/{id}"),
                            QoS::AtLeastOnce,
                            false,
                            answer.to_string(),
                        )
                        .await
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {}
                Ok(_) => {}
                Err(e) => panic!("device connection: {e}"),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.write(&format!("streetlight,device=sl-1 lamp_status=\"defectiveLamp\" {}", hour_now()))
        .await;
    // Two deliveries: the lamp's answer, and the absent device's refusal (tried again, then
    // given up like any failed action).
    let mut answered = None;
    for _ in 0..100 {
        let d = app.get_json("/api/v1/deliveries").await;
        let list = d["deliveries"].as_array().unwrap().clone();
        answered = list.iter().find(|x| x["target"] == "sl-1 setDimLevel").cloned();
        if answered.is_some() && list.iter().any(|x| x["target"] == "sl-absent setDimLevel") {
            let absent = list.iter().find(|x| x["target"] == "sl-absent setDimLevel").unwrap();
            assert_eq!(absent["ok"], false);
            assert!(absent["detail"].as_str().unwrap().contains("not connected"), "{absent}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered = answered.expect("the lamp's call was logged");
    assert_eq!(answered["ok"], true, "{answered}");
    assert_eq!(answered["action"], "rpc");
    assert_eq!(
        answered["detail"],
        format!("answered {}", json!({"dimmed_to": 0, "method": "setDimLevel", "why": "lamp"}))
    );
    device.abort();
    // A call without a method is refused when the rule is made.
    let r = app
        .post("/api/v1/rules")
        .bearer_auth(ADMIN)
        .json(&json!({"template": "lamp-defective", "id": "bad", "actions": [{"rpc": {"method": ""}}]}))
        .send()
        .await
        .unwrap();
    problem(r, 422, "invalid_rule").await;
}

#[tokio::test]
async fn the_demo_enables_every_built_in_template_once() {
    let app = TestApp::spawn().await;
    let state = &app.server.as_ref().unwrap().state;
    let templates =
        app.get_json("/api/v1/rules/templates").await["templates"].as_array().unwrap().len();
    assert!(templates >= 10);
    assert_eq!(agora::demo::enable_alert_templates(state).await.unwrap(), templates);
    let rules = app.get_json("/api/v1/rules").await;
    let enabled =
        rules["rules"].as_array().unwrap().iter().filter(|r| r["enabled"] == true).count();
    assert_eq!(enabled, templates);
    // Run again (a restarted demo): nothing added, nothing changed.
    assert_eq!(agora::demo::enable_alert_templates(state).await.unwrap(), 0);
}

/// Start of a Paris day at a local hour, in seconds.
fn paris_at(day: chrono::NaiveDate, hour: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Europe::Paris
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .timestamp()
}

#[tokio::test]
async fn indicator_templates_alert_on_atmo_days_canicule_and_loud_nights() {
    // Marseille's own heatwave thresholds (a lower pair, so that the data below is a canicule
    // there and not in Aix, which keeps the Bouches-du-Rhône default 24 / 35 °C).
    let app = TestApp::spawn_with(|c| {
        c.indicators.canicule_by_commune.insert(
            "13055".into(),
            agora_indicators::heat::CaniculeThresholds { min: 20.0, max: 30.0 },
        );
    })
    .await;
    let r = app
        .post("/api/v1/communes")
        .bearer_auth(ADMIN)
        .json(&json!({"insee": "13055", "name": "Marseille"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for (id, kind, commune) in [
        ("aq-bad", "air_quality", "13001"),
        ("aq-past", "air_quality", "13001"),
        ("wx-aix", "weather", "13001"),
        ("wx-mrs", "weather", "13055"),
        ("n-1", "noise", "13001"),
    ] {
        let d = json!({"id": id, "kind": kind, "commune": commune});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    for t in ["atmo-bad-day", "canicule", "lnight-high"] {
        add_rule(&app, json!({"template": t})).await;
    }
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let day = |n: u64| today - chrono::Days::new(n);
    let mut body = String::new();
    // Every hour of a Paris day (23, 24 or 25 of them).
    let hours = |d: chrono::NaiveDate| {
        let (a, b) = (paris_at(d, 0), paris_at(d + chrono::Days::new(1), 0));
        (a..b).step_by(3600)
    };
    // Values alternate around their level, as a sensor's do (a value repeated for hours is
    // flagged as stuck and left out of the indicators).
    let wobble = |t: i64, v: f64, by: f64| if (t / 3600) % 2 == 0 { v - by } else { v + by };
    // PM10, daily means: aq-bad 60 yesterday (ATMO 4, mauvais: 50 to 100); aq-past 60 two days
    // ago then 30 yesterday (2, moyen).
    for t in hours(day(1)) {
        body.push_str(&format!(
            "air_quality,device=aq-bad pm10={} {}\n",
            wobble(t, 60.0, 5.0),
            t + 600
        ));
        body.push_str(&format!(
            "air_quality,device=aq-past pm10={} {}\n",
            wobble(t, 30.0, 5.0),
            t + 600
        ));
    }
    for t in hours(day(2)) {
        body.push_str(&format!(
            "air_quality,device=aq-past pm10={} {}\n",
            wobble(t, 60.0, 5.0),
            t + 600
        ));
    }
    // Four days about 22 °C at night and 32 °C by day (each day's minimum 21, maximum 33), in
    // both communes: the 3-day means (21 / 33) reach Marseille's 20 / 30, not Aix's 24 / 35.
    // Canicule days: two and one day ago.
    for n in 1..=4 {
        for t in hours(day(n)) {
            let h = (t - paris_at(day(n), 0)) / 3600;
            let v = wobble(t, if (8..20).contains(&h) { 32.0 } else { 22.0 }, 1.0);
            for d in ["wx-aix", "wx-mrs"] {
                body.push_str(&format!("weather,device={d} temperature={v} {}\n", t + 300));
            }
        }
    }
    // Noise: the night from three days ago to two days ago at 59 and 61 dB(A) in turn, the next
    // at 49 and 51. The noise day runs 6 h to 6 h: Lnight is known at 6 h the next morning.
    for (n, level) in [(3, 60.0), (2, 50.0)] {
        let night = paris_at(day(n), 22);
        for m in (0..8 * 60).step_by(10) {
            let t = night + m * 60;
            body.push_str(&format!("noise,device=n-1 laeq={} {t}\n", wobble(t, level, 1.0)));
        }
    }
    app.write(&body).await;

    let ts = |s: i64| json!(agora_model::Timestamp::from_secs(s).unwrap());
    let list = alerts_until(&app, "atmo-bad-day", 10, |l| l.len() >= 2).await;
    assert_eq!(list.len(), 2, "{list:?}");
    let bad = list.iter().find(|a| a["device"] == "aq-bad").unwrap();
    assert_eq!(bad["state"], "open", "today is not over: still known as mauvais");
    assert_eq!(bad["opened_at"], ts(paris_at(today, 0)));
    assert_eq!(bad["value"], 4.0);
    assert_eq!(bad["property"], "atmo");
    let past = list.iter().find(|a| a["device"] == "aq-past").unwrap();
    assert_eq!(past["state"], "resolved");
    assert_eq!(past["opened_at"], ts(paris_at(day(1), 0)));
    assert_eq!(past["resolved_at"], ts(paris_at(today, 0)));

    let list = alerts_until(&app, "canicule", 10, |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "only Marseille's thresholds are reached: {list:?}");
    assert_eq!(list[0]["device"], "wx-mrs");
    assert_eq!(list[0]["state"], "open");
    // The first canicule day (two days ago, with its two predecessors measured) ends at the
    // start of yesterday.
    assert_eq!(list[0]["opened_at"], ts(paris_at(day(1), 0)));

    let list =
        alerts_until(&app, "lnight-high", 10, |l| l.len() == 1 && l[0]["state"] == "resolved")
            .await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["device"], "n-1");
    assert_eq!(list[0]["opened_at"], ts(paris_at(day(2), 6)));
    assert_eq!(list[0]["resolved_at"], ts(paris_at(day(1), 6)));
    // The energy mean of 59 and 61 dB(A), as many minutes of each.
    let lnight = 10.0 * ((10f64.powf(5.9) + 10f64.powf(6.1)) / 2.0).log10();
    assert!((list[0]["value"].as_f64().unwrap() - lnight).abs() < 1e-9, "{:?}", list[0]);

    // The heat indicators page uses the commune's thresholds too.
    let q = format!("from={}&to={}", day(3), day(1));
    let mrs = app.get_json(&format!("/api/v1/indicators/heat?device=wx-mrs&{q}")).await;
    assert_eq!(mrs["thresholds"], json!({"min": 20.0, "max": 30.0}));
    assert_eq!(mrs["days"][2]["status"]["canicule"], true);
    let aix = app.get_json(&format!("/api/v1/indicators/heat?device=wx-aix&{q}")).await;
    assert_eq!(aix["thresholds"], json!({"min": 24.0, "max": 35.0}));
    assert_eq!(aix["days"][2]["status"]["canicule"], false);
}

#[tokio::test]
async fn an_indicator_alert_open_before_a_long_gap_ends_with_the_first_good_period() {
    use agora_model::{MockClock, Timestamp};
    // A winter in Paris (UTC+1): the ATMO of 14 January is mauvais; then the sensor is silent for
    // nine days (longer than the week read back), and 24 January is good.
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let clock = MockClock::new(at("2026-01-15T12:00:00+01:00"));
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let d = json!({"id": "aq-1", "kind": "air_quality", "commune": "13001"});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert_eq!(r.status(), 201);
    add_rule(&app, json!({"template": "atmo-bad-day"})).await;
    let day = |start: &str, mean: f64| {
        let t0 = at(start).as_nanos() / 1_000_000_000;
        (0..24)
            .map(|h| {
                let v = if h % 2 == 0 { mean - 5.0 } else { mean + 5.0 };
                format!("air_quality,device=aq-1 pm10={v} {}\n", t0 + h * 3600 + 600)
            })
            .collect::<String>()
    };
    app.write(&day("2026-01-14T00:00:00+01:00", 60.0)).await;
    let list = alerts_until(&app, "atmo-bad-day", 10, |l| !l.is_empty()).await;
    assert_eq!(states(&list), ["open"]);
    assert_eq!(list[0]["opened_at"], json!(at("2026-01-15T00:00:00+01:00")));
    clock.set(at("2026-01-25T12:00:00+01:00"));
    app.write(&day("2026-01-24T00:00:00+01:00", 20.0)).await;
    let list = alerts_until(&app, "atmo-bad-day", 10, |l| states(l) == ["resolved"]).await;
    assert_eq!(states(&list), ["resolved"], "{list:?}");
    assert_eq!(list[0]["resolved_at"], json!(at("2026-01-25T00:00:00+01:00")));
}

#[tokio::test]
async fn webhooks_reach_https_endpoints_that_the_citys_authority_vouches_for() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    crate::helpers::private_ca(d.path());
    let mut child = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/https_receiver.py"))
        .arg(d.path().join("server.pem"))
        .arg(d.path().join("server.key"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(10)).expect("the receiver starts");
    let url = format!("https://127.0.0.1:{port}/hook");
    let hooked = |id: &str| {
        json!({"id": id, "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}},
               "actions": [{"webhook": {"url": url, "on": ["opened"]}}]})
    };
    let t = hour_now() - 60;
    // Without the city's authority the certificate is refused, and the delivery log says so.
    let strict = TestApp::spawn_with(|c| {
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
        c.alerts.max_attempts = 1;
    })
    .await;
    add_rule(&strict, hooked("untrusted")).await;
    strict.write(&format!("air_quality,device=aq-1 pm10=70 {t}")).await;
    let mut refused = Value::Null;
    for _ in 0..100 {
        let d = strict.get_json("/api/v1/deliveries").await;
        if let Some(x) = d["deliveries"].as_array().and_then(|a| a.first()).cloned() {
            refused = x;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(
        refused["detail"].as_str().unwrap().to_lowercase().contains("certificate"),
        "{refused}"
    );
    assert!(rx.try_recv().is_err(), "nothing reached the receiver");
    // With it (`[alerts] ca_file`), the alert is delivered over https.
    let ca = d.path().join("ca.pem");
    let trusting = TestApp::spawn_with(move |c| {
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
        c.alerts.ca_file = Some(ca);
    })
    .await;
    add_rule(&trusting, hooked("trusted")).await;
    trusting.write(&format!("air_quality,device=aq-1 pm10=70 {t}")).await;
    // Polled: a blocking wait would stop this test's runtime, and the server with it.
    let mut got = None;
    for _ in 0..200 {
        if let Ok(line) = rx.try_recv() {
            got = Some(line);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.expect("the alert arrives over https");
    let v: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["event"], "opened");
    assert_eq!(v["rule"]["id"], "trusted");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_counter_blocked_when_people_pass_raises_the_counter_health_alert() {
    use agora_model::{MockClock, Timestamp};
    use chrono::TimeZone;
    // Nine weeks of a counter counting 20 an hour from 8:00 to 19:00 (zero at night); on Monday
    // 30 November 2026 it counts zero from 10:00 on. The day judged at midnight opens the alert.
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let clock = MockClock::new(at("2026-11-30T23:00:00+01:00"));
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let d = json!({"id": "ped-1", "kind": "pedestrian_counter", "commune": "13001"});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert_eq!(r.status(), 201);
    add_rule(&app, json!({"template": "counter-suspect"})).await;
    let paris = chrono_tz::Europe::Paris;
    let first = chrono::NaiveDate::from_ymd_opt(2026, 9, 28).unwrap();
    let blocked = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let mut lines = String::new();
    let mut day = first;
    while day <= blocked {
        for h in 0..24u32 {
            let Some(t) = paris.from_local_datetime(&day.and_hms_opt(h, 0, 0).unwrap()).earliest()
            else {
                continue;
            };
            let v = if (8..20).contains(&h) && !(day == blocked && h >= 10) { 20 } else { 0 };
            lines.push_str(&format!(
                "pedestrian_counter,device=ped-1 people_in={v}i {}\n",
                t.timestamp()
            ));
        }
        day = day.succ_opt().unwrap();
    }
    app.write(&lines).await;
    // Before midnight the day is not over: nothing yet (the days before were sound).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let none = app.get_json("/api/v1/alerts?rule=counter-suspect").await;
    assert_eq!(none["alerts"].as_array().unwrap().len(), 0, "{none}");
    clock.set(at("2026-12-01T00:30:00+01:00"));
    let t = at("2026-12-01T00:00:00+01:00").as_nanos() / 1_000_000_000;
    app.write(&format!("pedestrian_counter,device=ped-1 people_in=0i {t}\n")).await;
    let list = alerts_until(&app, "counter-suspect", 10, |l| !l.is_empty()).await;
    assert_eq!(states(&list), ["open"]);
    // Known when the day is over.
    assert_eq!(list[0]["opened_at"], json!(at("2026-12-01T00:00:00+01:00")));
}

#[tokio::test]
async fn an_anomaly_rule_opens_on_a_sound_level_meter_that_changed_level() {
    use agora_model::{MockClock, Timestamp};
    // Five weeks of hourly LAeq with a day and night cycle; the last 9 days 6 dB higher.
    let now = Timestamp::parse_rfc3339("2026-11-30T12:30:00+01:00").unwrap();
    let app = TestApp::spawn_at(MockClock::new(now), |_| {}).await;
    let end = now.as_nanos() / 1_000_000_000 / 3600 * 3600;
    let mut lines = String::new();
    for k in 0..35 * 24i64 {
        let t = end - 35 * 86_400 + k * 3600 + 1800;
        let day = (t / 3600 % 24 + 1) % 24 >= 7;
        let shift = if t >= end - 9 * 86_400 { 6.0 } else { 0.0 };
        let wobble = ((k * 37 + k * k) % 11) as f64 / 10.0;
        for (id, s) in [("noise-1", shift), ("noise-2", 0.0)] {
            let v = 50.0 + if day { 9.0 } else { 0.0 } + s + wobble;
            lines.push_str(&format!("noise,device={id} laeq={v:.1} {t}\n"));
        }
    }
    app.write(&lines).await;
    add_rule(&app, json!({"template": "noise-sensor-anomaly"})).await;
    let list = alerts_until(&app, "noise-sensor-anomaly", 20, |l| !l.is_empty()).await;
    assert_eq!(states(&list), ["open"]);
    assert_eq!(list[0]["device"], "noise-1");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = alerts_until(&app, "noise-sensor-anomaly", 0, |_| true).await;
    assert!(all.iter().all(|a| a["device"] == "noise-1"), "{all:?}");
}
