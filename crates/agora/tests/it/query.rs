//! Queries: catalog, raw points, aggregates per device and grouped, latest values, stats, OpenAPI.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z, a Thursday

/// Two days of 1-minute NO2 for two devices on one site, one on another.
async fn city() -> TestApp {
    let app = TestApp::spawn().await;
    let site = json!({"id": "la-rotonde", "commune": "13001", "name": "La Rotonde", "lat": 43.5263, "lon": 5.4446});
    assert_eq!(
        app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap().status(),
        201
    );
    let mut body = String::new();
    for m in 0..2 * 1440i64 {
        let t = T + m * 60;
        body.push_str(&format!("air_quality,device=aq-a,site=hotel-de-ville no2={} {t}\n", m % 60));
        body.push_str(&format!(
            "air_quality,device=aq-b,site=hotel-de-ville no2={} {t}\n",
            100 + m % 60
        ));
        body.push_str(&format!("air_quality,device=aq-c,site=la-rotonde no2=7 {t}\n"));
    }
    app.write(&body).await;
    app
}

#[tokio::test]
async fn catalog_endpoints_and_filters() {
    let app = city().await;
    assert_eq!(app.get_json("/api/v1/communes").await["communes"][0]["name"], "Aix-en-Provence");
    assert_eq!(
        app.get_json("/api/v1/sites?commune=13001").await["sites"].as_array().unwrap().len(),
        2
    );
    assert_eq!(app.get_json("/api/v1/devices?site=la-rotonde").await["count"], 1);
    assert_eq!(app.get_json("/api/v1/devices?kind=air_quality").await["count"], 3);
    assert_eq!(app.get_json("/api/v1/devices?bbox=5.446,43.529,5.448,43.531").await["count"], 2);
    assert_eq!(app.get_json("/api/v1/series?property=no2").await["count"], 3);
    let props = app.get_json("/api/v1/properties").await;
    let pm25 = props["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pm2_5")
        .unwrap()
        .clone();
    assert_eq!(pm25["unit"], "ug/m3");
    assert!(pm25["aliases"].as_array().unwrap().contains(&json!("p2")));
    let r = app.get("/api/v1/devices?bbox=1,2,3").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 400, "bad_request").await;
    let r = app.get("/api/v1/devices/nope").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 404, "not_found").await;
    let r = app.get("/api/v1/nothing-here").send().await.unwrap();
    problem(r, 404, "not_found").await;
}

#[tokio::test]
async fn raw_points_with_range_and_limit() {
    let app = city().await;
    let b = app
        .get_json(&format!(
            "/api/v1/observations?device=aq-a&property=no2&from=2026-01-01T01:00:00Z&to={}&limit=5",
            T + 7200
        ))
        .await;
    assert_eq!(b["count"], 5);
    assert_eq!(b["truncated"], true);
    assert_eq!(b["points"][0], json!({"time": "2026-01-01T01:00:00Z", "value": 0.0}));
    assert_eq!(b["unit"], "ug/m3");
    let r = app.get("/api/v1/observations?device=aq-a&property=no2&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 400, "bad_request").await;
    let r = app
        .get("/api/v1/observations?device=aq-a&property=o3")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let b = problem(r, 404, "not_found").await;
    assert!(b["detail"].as_str().unwrap().contains("o3"));
}

#[tokio::test]
async fn aggregates_per_device_grouped_and_after_restart() {
    let mut app = city().await;
    let q = format!(
        "/api/v1/aggregate?device=aq-a&property=no2&from={T}&to={}&every=1h&fn=mean",
        T + 2 * 86_400
    );
    let before = app.get_json(&q).await;
    let pts = before["series"][0]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 48);
    assert_eq!(pts[0], json!({"time": "2026-01-01T00:00:00Z", "value": 29.5, "count": 60}));
    let max = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-a&property=no2&from={T}&to={}&every=1d&fn=max",
            T + 2 * 86_400
        ))
        .await;
    assert_eq!(max["series"][0]["points"][1]["value"], 59.0);
    let q15 = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-a&property=no2&from={T}&to={}&every=15m&fn=count",
            T + 3600
        ))
        .await;
    assert_eq!(
        q15["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect::<Vec<_>>(),
        vec![15.0; 4]
    );
    // Grouped by site: the mean of the site's devices, bucket by bucket.
    let g = app
        .get_json(&format!(
            "/api/v1/aggregate?group_by=site&property=no2&from={T}&to={}&every=1d",
            T + 86_400
        ))
        .await;
    let groups: Vec<(String, f64, u64)> = g["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap().to_owned(),
                s["points"][0]["value"].as_f64().unwrap(),
                s["devices"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, vec![("hotel-de-ville".into(), 79.5, 2), ("la-rotonde".into(), 7.0, 1)]);
    // After a restart (flush to segments, rollups) the answers are the same.
    app.restart().await;
    assert_eq!(app.get_json(&q).await, before);
    let r = app
        .get("/api/v1/aggregate?property=no2&fn=median&device=aq-a")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r = app
        .get("/api/v1/aggregate?property=no2&every=1s&from=2020-01-01T00:00:00Z&device=aq-a")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r = app
        .get("/api/v1/aggregate?property=no2&group_by=planet")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
}

#[tokio::test]
async fn latest_values_and_stats() {
    let app = city().await;
    let l = app.get_json("/api/v1/latest?site=hotel-de-ville&property=no2").await;
    assert_eq!(l["count"], 2);
    let a = l["values"].as_array().unwrap().iter().find(|v| v["device"] == "aq-a").unwrap().clone();
    assert_eq!(a["time"], "2026-01-02T23:59:00Z");
    assert_eq!(a["value"], 59.0);
    assert_eq!(a["commune"], "13001");
    let s = app.get_json("/api/v1/stats").await;
    assert_eq!(s["series"], 3);
    assert_eq!(s["points"], 3 * 2 * 1440);
    assert!(s["bytes_on_disk"].as_u64().unwrap() > 0);
    assert_eq!(s["catalog"]["devices"], 3);
}

#[tokio::test]
async fn health_metrics_and_openapi_cover_every_route() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
    assert_eq!(app.get("/readyz").send().await.unwrap().status(), 200);
    let m = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(m.contains("agora_http_requests_total"), "{m}");
    assert!(m.contains("agora_storage_series"));
    let doc: serde_json::Value =
        app.get("/api/v1/openapi.json").send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let source = include_str!("../../../agora-api/src/lib.rs");
    let routes: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert!(routes.len() >= 18);
    for r in routes {
        assert!(paths.contains_key(r), "route {r} is missing from openapi.json");
    }
}

#[tokio::test]
async fn device_status_online_offline_never_seen() {
    let app = TestApp::spawn().await;
    // Old data only: offline. Data now: online. Declared, never heard from: never_seen.
    app.write(&format!("noise,device=old-1 laeq=50 {T}")).await;
    let r = app
        .post("/api/v2/write")
        .bearer_auth(ADMIN)
        .body("noise,device=live-1 laeq=50")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let dev = json!({"id": "new-1", "kind": "noise", "site": "hotel-de-ville", "metadata": {"period_s": 60}});
    assert_eq!(
        app.post("/api/v1/devices").bearer_auth(ADMIN).json(&dev).send().await.unwrap().status(),
        201
    );
    let all = app.get_json("/api/v1/devices").await;
    let status = |id: &str| {
        all["devices"].as_array().unwrap().iter().find(|d| d["id"] == id).unwrap()["status"].clone()
    };
    assert_eq!(status("old-1"), "offline");
    assert_eq!(status("live-1"), "online");
    assert_eq!(status("new-1"), "never_seen");
    let off = app.get_json("/api/v1/devices?status=offline").await;
    assert_eq!(off["count"], 1);
    assert!(
        app.get_json("/api/v1/devices/old-1").await["device"]["silent_for_s"].as_i64().unwrap()
            > 86_400
    );
}

#[tokio::test]
async fn sound_levels_are_averaged_as_energy() {
    let app = TestApp::spawn().await;
    app.write(&format!(
        "noise,device=n-1,site=hotel-de-ville laeq=50 {T}\nnoise,device=n-1 laeq=70 {}",
        T + 60
    ))
    .await;
    let q = format!("/api/v1/aggregate?device=n-1&property=laeq&from={T}&to={}&every=1h", T + 3600);
    let b = app.get_json(&q).await;
    assert_eq!(b["averaging"], "energy");
    let v = b["series"][0]["points"][0]["value"].as_f64().unwrap();
    // 10·log10((10^5 + 10^7) / 2) = 67.03 dB, where the arithmetic mean would say 60.
    assert!((v - 67.0329).abs() < 1e-3, "{v}");
    let max = app.get_json(&format!("{q}&fn=max")).await;
    assert_eq!(max["series"][0]["points"][0]["value"], 70.0);
    assert_eq!(max["averaging"], "arithmetic");
    // A radio signal-to-noise ratio is in dB too, but it is averaged as it is.
    app.write(&format!(
        "streetlight,device=sl-1 snr=-10 {T}\nstreetlight,device=sl-1 snr=10 {}",
        T + 60
    ))
    .await;
    let snr = app
        .get_json(&format!(
            "/api/v1/aggregate?device=sl-1&property=snr&from={T}&to={}&every=1h",
            T + 3600
        ))
        .await;
    assert_eq!(snr["averaging"], "arithmetic");
    assert_eq!(snr["series"][0]["points"][0]["value"], 0.0);
    let g = app
        .get_json(&format!(
            "/api/v1/aggregate?group_by=site&property=laeq&from={T}&to={}&every=1h",
            T + 3600
        ))
        .await;
    assert!((g["series"][0]["points"][0]["value"].as_f64().unwrap() - 67.0329).abs() < 1e-3);
}

#[tokio::test]
async fn stuck_sensors_and_jumps_are_flagged_and_left_out() {
    let app = TestApp::spawn().await;
    // Four hours of 1-minute PM10: varying for one hour, then stuck on 23.4.
    let mut body = String::new();
    for m in 0..240i64 {
        let v = if m < 60 { format!("{}.{}", 10 + m % 7, m % 10) } else { "23.4".into() };
        body.push_str(&format!("air_quality,device=aq-s pm10={v} {}\n", T + m * 60));
    }
    // A temperature glitch: 20 → 45 → 20 within two minutes.
    body.push_str(&format!("weather,device=wx-j temperature=20 {T}\nweather,device=wx-j temperature=45 {}\nweather,device=wx-j temperature=20.1 {}\n", T + 60, T + 120));
    app.write(&body).await;
    let q = |extra: &str| {
        format!(
            "/api/v1/observations?device=aq-s&property=pm10&from={T}&to={}{extra}",
            T + 4 * 3600
        )
    };
    let good = app.get_json(&q("")).await;
    let all = app.get_json(&q("&quality=all")).await;
    assert_eq!(all["count"], 240);
    // 23.4 first appears at minute 60; it is flagged once it has repeated for more than 2 hours.
    let flagged: Vec<&Value> =
        all["points"].as_array().unwrap().iter().filter(|p| p.get("flags").is_some()).collect();
    assert_eq!(flagged.len(), 240 - 60 - 121, "{}", flagged.len());
    assert_eq!(flagged[0]["flags"], json!(["stuck"]));
    assert_eq!(good["count"], 240 - flagged.len());
    let hourly = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-s&property=pm10&from={T}&to={}&every=1h&fn=count",
            T + 4 * 3600
        ))
        .await;
    let counts: Vec<f64> = hourly["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(counts, vec![60.0, 60.0, 60.0, 1.0]);
    let t = app
        .get_json(&format!(
            "/api/v1/observations?device=wx-j&property=temperature&from={T}&to={}&quality=all",
            T + 3600
        ))
        .await;
    let flags: Vec<Value> =
        t["points"].as_array().unwrap().iter().map(|p| p["flags"].clone()).collect();
    assert_eq!(flags, vec![Value::Null, json!(["jump"]), Value::Null]);
    let m = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(m.contains(&format!("agora_ingest_points_flagged_total {}", flagged.len() + 1)), "{m}");
}

#[tokio::test]
async fn daily_buckets_in_a_local_time_zone() {
    let app = TestApp::spawn().await;
    // 22:30 and 23:30 UTC on 1 January are 23:30 on the 1st and 00:30 on the 2nd in Paris.
    app.write(&format!(
        "air_quality,device=aq-z pm10=10 {}\nair_quality,device=aq-z pm10=30 {}",
        T + 22 * 3600 + 1800,
        T + 23 * 3600 + 1800
    ))
    .await;
    let q = |tz: &str| {
        format!(
            "/api/v1/aggregate?device=aq-z&property=pm10&from={}&to={}&every=1d{tz}",
            T - 86_400,
            T + 2 * 86_400
        )
    };
    let utc = app.get_json(&q("")).await;
    let vals = |b: &Value| {
        b["series"][0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["time"].as_str().unwrap().to_owned(), p["value"].as_f64().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(vals(&utc), vec![("2026-01-01T00:00:00Z".to_owned(), 20.0)]);
    let paris = app.get_json(&q("&tz=Europe/Paris")).await;
    assert_eq!(paris["tz"], "Europe/Paris");
    assert_eq!(
        vals(&paris),
        vec![("2025-12-31T23:00:00Z".to_owned(), 10.0), ("2026-01-01T23:00:00Z".to_owned(), 30.0)]
    );
    let r = app.get(&q("&tz=Mars/Olympus")).bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 400, "bad_request").await;
}

#[tokio::test]
async fn a_query_that_would_decode_too_many_raw_points_is_refused_with_422() {
    let app = TestApp::spawn_with(|c| c.limits.max_query_points = 1_000).await;
    let t = 1_767_225_600i64;
    let lines = |prop: &str, dev: &str| -> String {
        (0..1_500i64)
            .map(|i| format!("m,device={dev} {prop}={} {}\n", 50 + i % 7, t + i * 60))
            .collect()
    };
    app.write(&lines("laeq", "n-1")).await;
    app.write(&lines("temperature", "w-1")).await;
    // A sound level is averaged as energy from raw points: 1,500 > 1,000.
    let r = app
        .get(&format!(
            "/api/v1/aggregate?device=n-1&property=laeq&every=1h&from={t}&to={}",
            t + 2 * 86_400
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let b = problem(r, 422, "query_too_large").await;
    assert!(b["detail"].as_str().unwrap().contains("every=1h"), "{b}");
    // Whole hours of a temperature come from the rollups: no raw point is decoded.
    app.get_json(&format!(
        "/api/v1/aggregate?device=w-1&property=temperature&every=1h&from={t}&to={}",
        t + 2 * 86_400
    ))
    .await;
    // Ten-minute buckets read raw points again, and the same group query too.
    let r = app
        .get(&format!(
            "/api/v1/aggregate?group_by=kind&property=temperature&every=10m&from={t}&to={}",
            t + 2 * 86_400
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 422, "query_too_large").await;
    // A narrower range passes.
    app.get_json(&format!(
        "/api/v1/aggregate?device=n-1&property=laeq&every=1h&from={t}&to={}",
        t + 3_600
    ))
    .await;
}

#[tokio::test]
async fn metrics_pass_promtool_and_negotiate_their_format() {
    let app = TestApp::spawn().await;
    app.write("air_quality,device=aq-1 pm10=12 1767225600").await;
    // What Prometheus and curl send: the text format 0.0.4, which promtool lints.
    let r = app.get("/metrics").header("accept", "*/*").send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    assert!(text.contains("# TYPE agora_http_requests_total counter"), "{text}");
    assert!(text.contains("# TYPE agora_ingest_points_accepted_total counter"), "{text}");
    assert!(!text.contains("# EOF"));
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test.sh installs Debian's prometheus)");
    std::io::Write::write_all(lint.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A scraper that asks for OpenMetrics gets it.
    let r = app
        .get("/metrics")
        .header("accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text")
    );
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test]
async fn a_state_is_not_charted_but_refused_by_name() {
    let app = TestApp::spawn().await;
    app.write("streetlight,device=sl-9 lamp_status=\"on\",power_w=40 1767225600").await;
    let r = app
        .get("/api/v1/chart?property=lamp_status&device=sl-9&from=1767225000&to=1767226000")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("text values"), "{p}");
    // A number of the same device still is.
    let r = app
        .get("/api/v1/chart?property=power_w&device=sl-9&from=1767225000&to=1767226000")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Issue 18, item 7: a low-cost sensor's −0.8 µg/m³ and a humidity of 100.4 % are stored,
/// flagged `out_of_range`, left out of reads and aggregates, shown with `quality=all`, counted
/// in `/metrics` and on the fleet page; −3 µg/m³ (beyond the 2 µg/m³ tolerance) is refused.
#[tokio::test]
async fn readings_a_little_out_of_range_are_kept_flagged_and_left_out_of_aggregates() {
    let app = TestApp::spawn().await;
    let body = format!(
        "air_quality,device=aq-o pm2_5=5 {T}\nair_quality,device=aq-o pm2_5=-0.8 {}\n\
         air_quality,device=aq-o pm2_5=6 {}\nair_quality,device=aq-o pm2_5=-3 {}\n\
         weather,device=wx-o relative_humidity=100.4 {T}",
        T + 60,
        T + 120,
        T + 180
    );
    let r =
        app.post("/api/v2/write?precision=s").bearer_auth(ADMIN).body(body).send().await.unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 4, "{b}");
    let reason = b["rejected"][0]["reason"].as_str().unwrap();
    assert_eq!(b["rejected"][0]["line"], 4);
    assert!(reason.contains("beyond its tolerance of 2 ug/m3"), "{reason}");
    let q = |extra: &str| {
        format!("/api/v1/observations?device=aq-o&property=pm2_5&from={T}&to={}{extra}", T + 3600)
    };
    let good = app.get_json(&q("")).await;
    let values: Vec<f64> =
        good["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![5.0, 6.0]);
    let all = app.get_json(&q("&quality=all")).await;
    let flags: Vec<Value> =
        all["points"].as_array().unwrap().iter().map(|p| p["flags"].clone()).collect();
    assert_eq!(flags, vec![Value::Null, json!(["out_of_range"]), Value::Null]);
    assert_eq!(all["points"][1]["value"], json!(-0.8));
    let mean = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-o&property=pm2_5&from={T}&to={}&every=1h&fn=mean",
            T + 3600
        ))
        .await;
    assert_eq!(mean["series"][0]["points"][0]["value"], json!(5.5));
    let m = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(m.contains("agora_ingest_points_out_of_range_total 2"), "{m}");
    let fleet = app.get_json("/api/v1/fleet").await;
    let rows = fleet["quality_flags"].as_array().unwrap();
    let row =
        |d: &str| rows.iter().find(|q| q["device"] == d).unwrap_or_else(|| panic!("{d}: {rows:?}"));
    assert_eq!(row("aq-o")["out_of_range"], 1);
    assert_eq!(row("wx-o")["out_of_range"], 1);
    assert_eq!(row("wx-o")["property"], "relative_humidity");
}
