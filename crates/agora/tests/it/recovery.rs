//! Durability: every acknowledged point survives `kill -9`; out-of-order and late data; a clean
//! shutdown leaves no WAL to replay.

use serde_json::json;

use crate::helpers::{ADMIN, TestApp, TestProcess};

const T: i64 = 1_767_225_600;

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn acknowledged_points_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let p = TestProcess::spawn(dir.path());
    let c = client();
    let write = format!("http://{}/api/v2/write?precision=s", p.addr);
    let mut acknowledged = 0;
    for batch in 0..20i64 {
        let body: String = (0..500i64)
            .map(|i| {
                let m = batch * 500 + i;
                format!("noise,device=n-{} laeq={}.5 {}\n", m % 10, 40 + m % 30, T + (m / 10) * 60)
            })
            .collect();
        let r = c.post(&write).bearer_auth(ADMIN).body(body).send().await.unwrap();
        assert_eq!(r.status(), 204);
        acknowledged += 500;
    }
    p.kill9();
    let p = TestProcess::spawn(dir.path());
    let mut total = 0;
    for d in 0..10 {
        let url = format!(
            "http://{}/api/v1/observations?device=n-{d}&property=laeq&from={T}&to={}",
            p.addr,
            T + 86_400
        );
        let b: serde_json::Value =
            c.get(url).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        assert_eq!(b["count"], 1000, "device n-{d}: {b}");
        total += b["count"].as_u64().unwrap();
    }
    assert_eq!(total, acknowledged);
    // The last value written for one timestamp is the one kept, across the crash too.
    let url = format!(
        "http://{}/api/v1/observations?device=n-3&property=laeq&from={T}&to={}",
        p.addr,
        T + 60
    );
    let b: serde_json::Value =
        c.get(url).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(b["points"][0]["value"], 43.5);
    p.kill9();
}

#[tokio::test]
async fn out_of_order_late_and_replaced_points() {
    let mut app = TestApp::spawn().await;
    // A gateway offline for a day sends its backlog after newer data, in reverse order.
    app.write(&format!("weather,device=wx-1 temperature=12 {}", T + 86_400)).await;
    let backlog: String = (0..24i64)
        .rev()
        .map(|h| format!("weather,device=wx-1 temperature={h} {}\n", T + h * 3600))
        .collect();
    app.write(&backlog).await;
    // A correction replaces the value at 05:00.
    app.write(&format!("weather,device=wx-1 temperature=5.5 {}", T + 5 * 3600)).await;
    let check = |v: Vec<(String, serde_json::Value)>| {
        assert_eq!(v.len(), 25);
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "sorted by time");
        assert_eq!(v[5], ("2026-01-01T05:00:00Z".into(), json!(5.5)));
        assert_eq!(v[23].1, json!(23.0));
    };
    check(app.values("wx-1", "temperature", T, T + 2 * 86_400).await);
    let latest = app.get_json("/api/v1/latest?device=wx-1").await;
    assert_eq!(latest["values"][0]["value"], 12.0);
    app.restart().await;
    check(app.values("wx-1", "temperature", T, T + 2 * 86_400).await);
    // Replace a value that is now in a segment.
    app.write(&format!("weather,device=wx-1 temperature=6.5 {}", T + 6 * 3600)).await;
    let v = app.values("wx-1", "temperature", T, T + 2 * 86_400).await;
    assert_eq!(v[6].1, json!(6.5));
    let mean = app
        .get_json(&format!(
            "/api/v1/aggregate?device=wx-1&property=temperature&from={T}&to={}&every=1d",
            T + 86_400
        ))
        .await;
    let expected = ((0..24).sum::<i32>() as f64 - 5.0 + 5.5 - 6.0 + 6.5) / 24.0;
    assert_eq!(mean["series"][0]["points"][0]["value"], expected);
}

#[tokio::test]
async fn a_clean_shutdown_leaves_no_wal_to_replay() {
    let mut app = TestApp::spawn().await;
    app.write(&format!("noise,device=n-1 laeq=50 {T}")).await;
    app.restart().await;
    let wal = app.dir.path().join("engine").join("wal");
    app.server.take().unwrap().shutdown().await.unwrap();
    let left: Vec<_> = std::fs::read_dir(&wal).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "WAL files left after a clean shutdown: {left:?}");
    // The catalog too is whole in its file: SQLite's write-ahead log folded in and removed
    // (issue 18, item 5).
    for f in ["catalog.db-wal", "catalog.db-shm"] {
        assert!(!app.dir.path().join(f).exists(), "{f} left after a clean shutdown");
    }
    assert!(std::fs::metadata(app.dir.path().join("catalog.db")).unwrap().len() > 0);
    // And it opens again with what it held.
    app.restart_stopped().await;
    let devices = app.get_json("/api/v1/devices").await.to_string();
    assert!(devices.contains("\"n-1\""), "{devices}");
}

#[tokio::test]
async fn retention_per_property_drops_old_raw_points_and_keeps_rollups() {
    let mut app = TestApp::spawn_with(|c| {
        c.storage.compact_segments = 2;
        c.storage.raw_retention_days_by_property.insert("power_w".into(), 30);
    })
    .await;
    // Two days of 15-minute lamp data, long enough ago to be past 30 days, and a pm10 series.
    let mut body = String::new();
    for i in 0..2 * 96i64 {
        body.push_str(&format!(
            "streetlight,device=lamp-1 power_w={}.5 {}\n",
            40 + i % 5,
            T + i * 900
        ));
        body.push_str(&format!("air_quality,device=aq-1 pm10={}.5 {}\n", 10 + i % 5, T + i * 900));
    }
    app.write(&body).await;
    let q = format!(
        "/api/v1/aggregate?device=lamp-1&property=power_w&from={T}&to={}&every=1d",
        T + 2 * 86_400
    );
    let before = app.get_json(&q).await;
    app.restart().await;
    app.write(&format!("streetlight,device=lamp-2 power_w=1 {T}")).await;
    // The second restart leaves two segments; upkeep compacts them and applies retention.
    app.restart().await;
    let mut gone = false;
    for _ in 0..40 {
        if app.values("lamp-1", "power_w", T, T + 2 * 86_400).await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(gone, "raw power_w points older than 30 days should be dropped");
    assert_eq!(
        app.values("aq-1", "pm10", T, T + 2 * 86_400).await.len(),
        192,
        "other properties keep their points"
    );
    assert_eq!(app.get_json(&q).await, before, "daily summaries survive retention");
}

/// Issue 18, item 6: what the pipeline learns as data flows survives a restart in the middle —
/// a stuck sensor's run (the stuck flag comes at two hours of the same PM10 whatever the
/// restart at 90 minutes), the fleet page's flag tallies, and a property registered at run time
/// (an alert rule on it lets the server start again).
#[tokio::test]
async fn quality_state_tallies_and_run_time_properties_survive_a_restart() {
    let mut app = TestApp::spawn_with(|c| c.ingest.auto_register_properties = true).await;
    let minutes = |from: i64, to: i64| -> String {
        (from..to).map(|m| format!("air_quality,device=aq-r pm10=23.4 {}\n", T + m * 60)).collect()
    };
    app.write(&minutes(0, 90)).await;
    app.write(&format!("weather,device=wx-r relative_humidity=100.4 {T}\nsensor,device=x-1 flux_capacitance=1.21 {T}")).await;
    let tally = async |app: &TestApp| {
        let f = app.get_json("/api/v1/fleet").await;
        f["quality_flags"].as_array().unwrap().iter().find(|q| q["device"] == "wx-r").cloned()
    };
    assert_eq!(tally(&app).await.unwrap()["out_of_range"], 1);
    // An alert rule on the run-time property, in the configuration read at the next start.
    app.config.alerts.rules = toml::from_str::<toml::Value>(
        r#"rules = [{ id = "flux", condition = { threshold = { property = "flux_capacitance", op = ">", value = 2.0 } } }]"#,
    )
    .unwrap()["rules"]
        .clone()
        .try_into()
        .unwrap();
    app.restart().await;
    app.write(&minutes(90, 150)).await;
    let all = app
        .get_json(&format!(
            "/api/v1/observations?device=aq-r&property=pm10&from={T}&to={}&quality=all",
            T + 3 * 3600
        ))
        .await;
    let flagged: Vec<i64> = all["points"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, p)| p["flags"] == serde_json::json!(["stuck"]))
        .map(|(m, _)| m as i64)
        .collect();
    assert_eq!(
        flagged,
        (121..150).collect::<Vec<_>>(),
        "stuck after two hours, across the restart"
    );
    assert_eq!(tally(&app).await.unwrap()["out_of_range"], 1, "the tally survived");
    let aq = app.get_json("/api/v1/fleet").await["quality_flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["device"] == "aq-r")
        .cloned()
        .unwrap();
    assert_eq!(aq["stuck"], 29);
    let props = app.get_json("/api/v1/properties").await.to_string();
    assert!(props.contains("flux_capacitance"), "{props}");
    // Written again after the restart, it goes to the same series.
    app.write(&format!("sensor,device=x-1 flux_capacitance=1.5 {}", T + 60)).await;
    let d = app.get_json("/api/v1/devices/x-1").await;
    assert_eq!(d["series"].as_array().unwrap().len(), 1, "{d}");
}

/// Issue 18, item 4: SIGKILL at random moments while flushes and compactions run all the time
/// (a flush every 3,000 points, a compaction as soon as two segments exist) loses no
/// acknowledged point and duplicates none; rewrites of old timestamps keep the last value. A
/// client re-sends the batch the kill interrupted, as a real one would.
#[tokio::test]
async fn kill_9_during_flushes_and_compactions_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agora.toml");
    std::fs::write(&config, "[storage]\nflush_points = 3000\ncompact_segments = 2\n").unwrap();
    let data = dir.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let c = client();
    // (device, minute) → value, of acknowledged writes.
    let mut model: std::collections::BTreeMap<(i64, i64), f64> = Default::default();
    let mut next_line = 0i64;
    // The batch to send next when it was interrupted: its body and its points.
    type Batch = (String, Vec<((i64, i64), f64)>);
    let mut pending: Option<Batch> = None;
    let mut compactions = 0;
    let mut seed = 0x853C_49E6_748F_EA9Bu64;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..6 {
        let p = TestProcess::spawn_with(&data, &args);
        let write = format!("http://{}/api/v2/write?precision=s", p.addr);
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(300 + random(900));
        loop {
            let (body, points) = pending.take().unwrap_or_else(|| {
                // 1,000 new lines over 100 devices, and 20 rewrites of earlier ones.
                let mut points = Vec::new();
                for _ in 0..1000 {
                    let key = (next_line % 100, next_line / 100);
                    points.push((key, 30.0 + (next_line % 90) as f64));
                    next_line += 1;
                }
                for k in 0..20 {
                    let old = random(next_line as u64) as i64;
                    points.push(((old % 100, old / 100), 150.0 + ((round * 20 + k) % 40) as f64));
                }
                let body = points
                    .iter()
                    .map(|((d, m), v)| format!("noise,device=k-{d} laeq={v} {}\n", T + m * 60))
                    .collect();
                (body, points)
            });
            if std::time::Instant::now() > deadline {
                let m = c.get(format!("http://{}/metrics", p.addr)).send().await.unwrap();
                let m = m.text().await.unwrap();
                compactions += m
                    .lines()
                    .find_map(|l| l.strip_prefix("agora_storage_compactions_total "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                // The last batch is in flight when the process is killed: acknowledged or not,
                // it is sent again after the restart (same values: the outcome is the same).
                let req = c.post(&write).bearer_auth(ADMIN).body(body.clone()).send();
                let in_flight = tokio::spawn(req);
                tokio::time::sleep(std::time::Duration::from_millis(random(30))).await;
                p.kill9();
                if let Ok(Ok(r)) = in_flight.await
                    && r.status() == 204
                {
                    for (k, v) in &points {
                        model.insert(*k, *v);
                    }
                }
                pending = Some((body, points));
                break;
            }
            match c.post(&write).bearer_auth(ADMIN).body(body.clone()).send().await {
                Ok(r) if r.status() == 204 => {
                    for (k, v) in points {
                        model.insert(k, v);
                    }
                }
                other => panic!("round {round}: write failed: {other:?}"),
            }
        }
    }
    let p = TestProcess::spawn_with(&data, &args);
    // The batch in flight at the last kill may have been stored without its answer reaching the
    // client (never acknowledged, so allowed either way): sent again, as every round does, it
    // makes the outcome known.
    if let Some((body, points)) = pending.take() {
        let write = format!("http://{}/api/v2/write?precision=s", p.addr);
        let r = c.post(&write).bearer_auth(ADMIN).body(body).send().await.unwrap();
        assert_eq!(r.status(), 204, "the last batch, sent again");
        for (k, v) in points {
            model.insert(k, v);
        }
    }
    let to = T + (next_line / 100 + 1) * 60;
    for d in 0..100 {
        let url = format!(
            "http://{}/api/v1/observations?device=k-{d}&property=laeq&from={T}&to={to}&limit=100000",
            p.addr
        );
        let b: serde_json::Value =
            c.get(url).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        let got: Vec<(i64, f64)> = b["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let t = chrono::DateTime::parse_from_rfc3339(x["time"].as_str().unwrap()).unwrap();
                ((t.timestamp() - T) / 60, x["value"].as_f64().unwrap())
            })
            .collect();
        let want: Vec<(i64, f64)> =
            model.iter().filter(|((dd, _), _)| *dd == d).map(|((_, m), v)| (*m, *v)).collect();
        assert_eq!(got, want, "device k-{d}");
    }
    assert!(model.len() > 5_000, "the test wrote {} points only", model.len());
    assert!(compactions >= 6, "only {compactions} compactions ran");
    p.kill9();
}
