//! Ingest in every format, and every kind of bad input: a clear answer, nothing valid lost.

use std::io::Write;

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

const T: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[tokio::test]
async fn influxdb_v1_and_v2_writes_with_every_token_carrier() {
    let app = TestApp::spawn().await;
    // v1: token in `p`, precision ms; gzip body as Telegraf sends it.
    let body =
        format!("air_quality,device=aq-1,site=hotel-de-ville pm10=12.5,no2=31.2 {}\n", T * 1000);
    let r = app
        .post(&format!("/write?db=city&precision=ms&p={ADMIN}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut gz = flate2_body(
        format!("air_quality,device=aq-1 pm10=13.5 {}\n", (T + 60) * 1_000_000_000).as_bytes(),
    );
    let r = app
        .post("/write")
        .basic_auth("telegraf", Some(ADMIN))
        .header("Content-Encoding", "gzip")
        .body(std::mem::take(&mut gz))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // v2: Authorization: Token, precision s.
    let r = app
        .post("/api/v2/write?org=aix&bucket=city&precision=s")
        .header("Authorization", format!("Token {ADMIN}"))
        .body(format!("air_quality,device=aq-1 pm10=14.5 {}", T + 120))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let v = app.values("aq-1", "pm10", T, T + 3600).await;
    assert_eq!(
        v,
        vec![
            ("2026-01-01T00:00:00Z".into(), json!(12.5)),
            ("2026-01-01T00:01:00Z".into(), json!(13.5)),
            ("2026-01-01T00:02:00Z".into(), json!(14.5)),
        ]
    );
    // The new device was placed on its site and commune, with its kind from the measurement.
    let d = app.get_json("/api/v1/devices/aq-1").await;
    assert_eq!(d["device"]["kind"], "air_quality");
    assert_eq!(d["device"]["site"], "hotel-de-ville");
    assert_eq!(d["device"]["commune"], "13001");
    assert_eq!(d["series"].as_array().unwrap().len(), 2);
}

fn flate2_body(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn native_json_and_senml_with_aliases_and_units() {
    let app = TestApp::spawn().await;
    let batch = json!({"observations": [
        {"device": "aq-2", "kind": "air_quality", "site": "hotel-de-ville", "property": "NO2", "value": 10, "unit": "ppb", "time": "2026-01-01T01:00:00+01:00"},
        {"device": "aq-2", "time": T + 60, "values": {"PM2.5": 8.1, "pm10": 15}}
    ]});
    let r = app.post("/api/v1/observations").bearer_auth(ADMIN).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(
        app.values("aq-2", "no2", T, T + 10).await,
        vec![("2026-01-01T00:00:00Z".into(), json!(19.1))]
    );
    assert_eq!(app.values("aq-2", "pm2_5", T, T + 100).await[0].1, json!(8.1));
    let series = app.get_json("/api/v1/series?device=aq-2&property=no2").await;
    assert_eq!(series["series"][0]["source_unit"], "ppb");
    assert_eq!(series["series"][0]["unit"], "ug/m3");

    let pack = json!([
        {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": T, "bu": "Cel", "n": "temperature", "v": 21.5},
        {"n": "relativeHumidity", "u": "%RH", "v": 40, "t": 60},
        {"n": "lamp_status", "vs": "defectiveLamp"}
    ]);
    let r = app
        .post("/api/v1/senml?kind=weather&site=hotel-de-ville")
        .bearer_auth(ADMIN)
        .json(&pack)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let dev = "urn:dev:mac:0024befffe804ff1";
    assert_eq!(app.values(dev, "temperature", T, T + 1).await[0].1, json!(21.5));
    assert_eq!(
        app.values(dev, "relative_humidity", T, T + 100).await[0],
        ("2026-01-01T00:01:00Z".into(), json!(40.0))
    );
    assert_eq!(app.values(dev, "lamp_status", T, T + 1).await[0].1, json!("defectiveLamp"));
    assert_eq!(app.get_json(&format!("/api/v1/devices/{dev}")).await["device"]["kind"], "weather");
}

#[tokio::test]
async fn a_partial_write_stores_the_good_lines_and_names_each_bad_one() {
    let app = TestApp::spawn().await;
    let future = T + 10 * 365 * 86_400;
    let body = [
        format!("air_quality,device=aq-3 pm10=10 {T}"),
        format!("air_quality,device=aq-3 pm10=oops {T}"),
        format!("air_quality,device=aq-3 pm10=-4 {}", T + 60),
        format!("air_quality,device=aq-3 flux=3 {}", T + 60),
        format!("air_quality,device=aq-3 pm10=NaN {}", T + 60),
        format!("air_quality,device=aq-3 pm10=11 {future}"),
        format!("air_quality pm10=11 {T}"),
        format!("air_quality,device=aq-3 pm10=12,no2=99999 {}", T + 120),
    ]
    .join("\n");
    let r =
        app.post("/api/v2/write?precision=s").bearer_auth(ADMIN).body(body).send().await.unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 2);
    let rejected: Vec<(u64, String)> = b["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["reason"].as_str().unwrap().to_owned()))
        .collect();
    let lines: Vec<u64> = rejected.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8], "{rejected:?}");
    let reason = |l: u64| rejected.iter().find(|r| r.0 == l).unwrap().1.clone();
    assert!(reason(2).contains("\"oops\""), "{}", reason(2));
    assert!(reason(3).contains("outside the valid range"), "{}", reason(3));
    assert!(reason(4).contains("unknown property \"flux\""), "{}", reason(4));
    assert!(reason(5).contains("not finite"), "{}", reason(5));
    assert!(reason(6).contains("future"), "{}", reason(6));
    assert!(reason(7).contains("device"), "{}", reason(7));
    assert!(reason(8).contains("no2"), "{}", reason(8));
    // The valid points are there, including pm10 of the last line whose no2 was refused.
    let v = app.values("aq-3", "pm10", T, T + 3600).await;
    assert_eq!(v.iter().map(|p| p.1.clone()).collect::<Vec<_>>(), vec![json!(10.0), json!(12.0)]);
    // Everything refused is kept in the dead-letter log, with its reason and input.
    let dl = app.get_json("/api/v1/rejects").await;
    let raws: Vec<&str> =
        dl["rejects"].as_array().unwrap().iter().map(|r| r["raw"].as_str().unwrap()).collect();
    assert!(raws.contains(&format!("air_quality,device=aq-3 pm10=oops {T}").as_str()), "{raws:?}");
    assert_eq!(dl["count"], 7);
    assert!(dl["rejects"][0]["source"].as_str().unwrap().contains("/api/v2/write"));
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("agora_ingest_points_rejected_total 7"), "{metrics}");
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_kept() {
    let app = TestApp::spawn().await;
    let r =
        app.post("/api/v1/observations").bearer_auth(ADMIN).body("{not json").send().await.unwrap();
    let b = problem(r, 400, "bad_request").await;
    assert!(b["detail"].as_str().unwrap().contains("not valid JSON"));
    let r = app.post("/api/v1/senml").bearer_auth(ADMIN).body("{}").send().await.unwrap();
    problem(r, 400, "bad_request").await;
    let r = app
        .post("/api/v1/observations")
        .bearer_auth(ADMIN)
        .header("Content-Encoding", "br")
        .body("x")
        .send()
        .await
        .unwrap();
    problem(r, 415, "unsupported_media_type").await;
    let r = app
        .post("/write")
        .bearer_auth(ADMIN)
        .header("Content-Encoding", "gzip")
        .body("not gzip")
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r = app
        .post("/write?precision=h")
        .bearer_auth(ADMIN)
        .body("a,device=x pm10=1")
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let dl = app.get_json("/api/v1/rejects").await;
    assert_eq!(dl["rejects"][1]["raw"], "{not json");
}

#[tokio::test]
async fn oversized_bodies_get_413_even_when_compressed() {
    let app = TestApp::spawn_with(|c| c.ingest.max_body_mib = 1).await;
    let big = "x".repeat(2 << 20);
    let r = app.post("/write").bearer_auth(ADMIN).body(big.clone()).send().await.unwrap();
    problem(r, 413, "payload_too_large").await;
    // A small gzip body that inflates past the limit (a zip bomb) is refused the same way.
    let r = app
        .post("/write")
        .bearer_auth(ADMIN)
        .header("Content-Encoding", "gzip")
        .body(flate2_body(big.as_bytes()))
        .send()
        .await
        .unwrap();
    problem(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_devices_and_properties_follow_the_registration_settings() {
    let app = TestApp::spawn_with(|c| {
        c.ingest.auto_register_devices = false;
        c.ingest.auto_register_properties = true;
    })
    .await;
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(ADMIN)
        .body(format!("x,device=ghost pm10=1 {T}"))
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "partial_write").await;
    assert!(b["rejected"][0]["reason"].as_str().unwrap().contains("unknown device ghost"));
    let dev = json!({"id": "probe-1", "kind": "soil_moisture", "site": "hotel-de-ville"});
    assert_eq!(
        app.post("/api/v1/devices").bearer_auth(ADMIN).json(&dev).send().await.unwrap().status(),
        201
    );
    app.write(&format!("soil_moisture,device=probe-1 leaf_wetness=0.4,soil_moisture=31.5 {T}"))
        .await;
    assert_eq!(app.values("probe-1", "leaf_wetness", T, T + 1).await[0].1, json!(0.4));
    let dev = app.get_json("/api/v1/devices/probe-1").await;
    assert_eq!(dev["device"]["commune"], "13001", "commune taken from the site");
    assert!(dev["device"]["last_seen"].is_string());
}

#[tokio::test]
async fn unknown_site_for_a_new_device_is_refused_by_name() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(ADMIN)
        .body(format!("noise,device=n1,site=nowhere laeq=50 {T}"))
        .send()
        .await
        .unwrap();
    let b: Value = problem(r, 400, "partial_write").await;
    assert!(b["rejected"][0]["reason"].as_str().unwrap().contains("unknown site \"nowhere\""));
}

#[tokio::test]
async fn with_the_option_on_an_unknown_site_is_created_to_review_in_the_devices_commune() {
    let app = TestApp::spawn_with(|c| c.ingest.create_unknown_sites = true).await;
    let body = format!(
        "noise,device=n1,site=place-des-precheurs,commune=13001 laeq=50 {T}\n\
         noise,device=n2,site=cours-mirabeau laeq=51 {T}\n\
         noise,device=n3,site=vieux-port,commune=13055 laeq=52 {T}"
    );
    let r =
        app.post("/api/v2/write?precision=s").bearer_auth(ADMIN).body(body).send().await.unwrap();
    let b: Value = problem(r, 400, "partial_write").await;
    assert_eq!(b["accepted"], 1, "{b}");
    let reasons: Vec<&str> =
        b["rejected"].as_array().unwrap().iter().map(|x| x["reason"].as_str().unwrap()).collect();
    // Without a commune the place cannot be made; an unknown commune is not made either.
    assert!(
        reasons[0].contains("unknown site \"cours-mirabeau\"")
            && reasons[0].contains("commune tag"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("unknown commune \"13055\""), "{reasons:?}");
    let dev = app.get_json("/api/v1/devices/n1").await;
    assert_eq!(dev["device"]["site"], "place-des-precheurs");
    assert_eq!(dev["device"]["commune"], "13001");
    let sites = app.get_json("/api/v1/sites").await;
    let made = sites["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "place-des-precheurs")
        .cloned();
    assert_eq!(made.unwrap()["to_review"], true);
    let fleet = app.get_json("/api/v1/fleet").await;
    let review: Vec<&str> = fleet["sites_to_review"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(review, ["place-des-precheurs"]);
    // Declared by an operator: reviewed.
    let site = json!({"id": "place-des-precheurs", "commune": "13001", "name": "Place des Prêcheurs", "lat": 43.5283, "lon": 5.4497});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(app.get_json("/api/v1/fleet").await["sites_to_review"], json!([]));
}

#[tokio::test]
async fn dead_letters_are_replayed_once_the_cause_is_fixed() {
    let app = TestApp::spawn_with(|c| c.ingest.auto_register_devices = false).await;
    // An unknown device (refused until declared), a line that will never parse, garbage JSON.
    let body = format!("noise,device=n-7 laeq=51.5 {T}\nnoise,device=n-7 laeq=oops {T}");
    let r =
        app.post("/api/v2/write?precision=s").bearer_auth(ADMIN).body(body).send().await.unwrap();
    problem(r, 400, "partial_write").await;
    let r = app.post("/api/v1/observations").bearer_auth(ADMIN).body("{nope").send().await.unwrap();
    problem(r, 400, "bad_request").await;
    let before = app.get_json("/api/v1/rejects").await;
    assert_eq!(before["count"], 3);
    let formats: Vec<String> = before["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["format"].as_str().unwrap_or("-").to_owned())
        .collect();
    assert_eq!(formats, ["json", "line_protocol:s", "json"], "{before}");

    // Nothing changed yet: replaying leaves all three.
    let r: Value = app
        .post("/api/v1/rejects/replay")
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"replayed": 0, "stored": 0, "still_rejected": 3, "not_replayable": 0}));

    // Declare the device, replay: its point is stored and leaves the log; the others stay.
    let dev = json!({"id": "n-7", "kind": "noise", "site": "hotel-de-ville"});
    assert_eq!(
        app.post("/api/v1/devices").bearer_auth(ADMIN).json(&dev).send().await.unwrap().status(),
        201
    );
    let r: Value = app
        .post("/api/v1/rejects/replay")
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"replayed": 1, "stored": 1, "still_rejected": 2, "not_replayable": 0}),
        "{}",
        app.get_json("/api/v1/rejects").await
    );
    assert_eq!(app.values("n-7", "laeq", T, T + 1).await[0].1, json!(51.5));
    let after = app.get_json("/api/v1/rejects").await;
    assert_eq!(after["count"], 2);
    assert!(
        after["rejects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["raw"] != before["rejects"][2]["raw"] || r["format"] != "json")
    );
    let r = app.post("/api/v1/rejects/replay").send().await.unwrap();
    problem(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn influxdb_clients_see_agora_up_before_writing() {
    let app = TestApp::spawn().await;
    // What influxdb-client (v1 and v2) and Telegraf send before writing, without a token.
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = app.client.request(method, app.url("/ping")).send().await.unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers()["x-influxdb-version"], "1.8.10");
        assert_eq!(r.headers()["x-influxdb-build"], "OSS");
    }
    let r = app.get("/health").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!((h["name"].as_str(), h["status"].as_str()), (Some("influxdb"), Some("pass")));
    let r = app.get("/api/v2/ready").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(ready["up"].as_str().unwrap().ends_with('s'), "{ready}");
}

/// A body of many new devices and many new property names (more pairs than the dense table a
/// batch uses for its lookups, 1,100 × 1,000): every point lands in its own series, once, and a
/// second batch finds them.
#[tokio::test]
async fn a_batch_of_many_devices_and_names_resolves_every_series() {
    let app = TestApp::spawn_with(|c| c.ingest.auto_register_properties = true).await;
    let body = |t: i64, v: i64| -> String {
        (0..1100)
            .map(|i| format!("sensor,device=many-{i} flux{}={}i {t}\n", i % 1000, v + i))
            .collect()
    };
    app.write(&body(T, 0)).await;
    app.write(&body(T + 60, 5000)).await;
    for i in [0i64, 999, 1000, 1099] {
        let v = app.values(&format!("many-{i}"), &format!("flux{}", i % 1000), T, T + 120).await;
        let got: Vec<i64> = v.iter().map(|(_, x)| x.as_i64().unwrap()).collect();
        assert_eq!(got, vec![i, 5000 + i], "many-{i}");
    }
    let d = app.get_json("/api/v1/devices/many-1050").await;
    assert_eq!(d["series"].as_array().unwrap().len(), 1, "{d}");
}

/// Writers arriving together with the same new fleet register each device and series once: the
/// first registers them in one transaction, the others wait for it and find them (the reports add
/// up to the fleet, not to a multiple of it), and every point of every writer is stored.
#[tokio::test]
async fn writers_sending_the_same_new_fleet_together_register_it_once() {
    let app = TestApp::spawn().await;
    let pipeline = app.server.as_ref().unwrap().state.pipeline.clone();
    let body = |w: i64| -> String {
        (0..300)
            .map(|i| {
                format!("noise,device=together-{i} laeq={}.5,lamax=80 {}\n", 40 + i % 20, T + w)
            })
            .collect()
    };
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (p, b) = (pipeline.clone(), body(w));
            tokio::spawn(async move {
                let decoded = agora_ingest::line_protocol::decode(
                    b.as_bytes(),
                    agora_model::Precision::Seconds,
                );
                p.ingest(&agora_ingest::Source::default(), decoded).await.unwrap()
            })
        })
        .collect();
    let (mut devices, mut series, mut accepted) = (0, 0, 0);
    for w in writers {
        let r = w.await.unwrap();
        assert_eq!(r.rejected_count, 0, "{:?}", r.rejected);
        (devices, series, accepted) =
            (devices + r.devices_created, series + r.series_created, accepted + r.accepted);
    }
    assert_eq!((devices, series, accepted), (300, 600, 6 * 600));
    for i in [0, 299] {
        let v = app.values(&format!("together-{i}"), "laeq", T, T + 10).await;
        assert_eq!(v.len(), 6, "together-{i}: one point per writer");
    }
}
