//! The departments' services through the API, on devices built so that every figure is known
//! by hand: two lamps over two days of June (a gap, a fault repaired, a lamp lit by day), two
//! bins filling at known rates and emptied every morning, a lawn drying at a known rate. Sun
//! times come from PyEphem (`agora-indicators/tests/fixtures/sun/`), not from agora's code.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

/// Unix seconds of a local (Paris, summer: UTC+2) time in June 2026.
fn june(day: u32, h: u32, m: u32, s: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 6, day)
        .unwrap()
        .and_hms_opt(h, m, s)
        .unwrap()
        .and_utc()
        .timestamp()
        - 7200
}

#[track_caller]
fn close(v: &Value, expected: f64, tolerance: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() <= tolerance, "{x} is not {expected} ± {tolerance}");
}

async fn device(app: &TestApp, d: Value) {
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

async fn app_at(now: &str) -> TestApp {
    use agora_model::{MockClock, Timestamp};
    let app =
        TestApp::spawn_at(MockClock::new(Timestamp::parse_rfc3339(now).unwrap()), |_| {}).await;
    let place = json!({"id": "place-a", "commune": "13001", "name": "Place A",
                       "lat": 43.5263, "lon": 5.4454});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&place).send().await.unwrap();
    assert_eq!(r.status(), 201);
    app
}

#[tokio::test]
async fn lighting_energy_burning_faults_and_scenarios_by_hand() {
    let app = app_at("2026-06-22T12:00:00+02:00").await;
    // Both lamps stand where the ephemeris was computed (la Rotonde, Aix).
    for (id, street) in [("lamp-1", "Rue A"), ("lamp-2", "Rue B"), ("lamp-3", "Rue C")] {
        device(
            &app,
            json!({"id": id, "kind": "streetlight", "site": "place-a", "commune": "13001",
                            "lat": 43.5263, "lon": 5.4454,
                            "metadata": {"street": street, "rated_power_w": 50.0}}),
        )
        .await;
    }
    // Every 15 minutes from 20 June 00:00 to 22 June 00:15, lit from 22:00 to 06:00.
    // lamp-1: 50 W lit, 0 W not; silent from 02:15 to 03:00 on the 21st (a 75-minute gap).
    // lamp-2: 30 W; a fault status at 03:00 on the 20th, ok at 15:00 (12 h to repair); lit all
    // day long on the 21st (its photocell failed).
    let mut lines = String::new();
    for k in 0..(2 * 96 + 2) {
        let t = june(20, 0, 0, 0) + k * 900;
        let local = (t + 7200).rem_euclid(86_400);
        let (h, m) = (local / 3600, local % 3600 / 60);
        let night = !(6..22).contains(&h);
        let on21 = t >= june(21, 0, 0, 0) && t < june(22, 0, 0, 0);
        let gap = on21 && ((h == 2 && m >= 15) || (h == 3 && m == 0));
        if !gap {
            let p = if night { 50 } else { 0 };
            lines += &format!("streetlight,device=lamp-1 power_w={p},lamp_on={night} {t}\n");
        }
        let lit2 = night || on21;
        let p2 = if lit2 { 30 } else { 0 };
        lines += &format!("streetlight,device=lamp-2 power_w={p2},lamp_on={lit2} {t}\n");
    }
    // lamp-3 reports its state only, every 15 minutes, lit from 22:00 to 06:00 (rated 50 W).
    for k in 0..(2 * 96 + 2) {
        let t = june(20, 0, 0, 0) + k * 900;
        let h = (t + 7200).rem_euclid(86_400) / 3600;
        lines += &format!("streetlight,device=lamp-3 lamp_on={} {t}\n", !(6..22).contains(&h));
    }
    lines +=
        &format!("streetlight,device=lamp-2 lamp_status=\"defectiveLamp\" {}\n", june(20, 3, 0, 0));
    lines += &format!("streetlight,device=lamp-2 lamp_status=\"ok\" {}\n", june(20, 15, 0, 0));
    app.write(&lines).await;

    // The 21st, by street. lamp-1 by hand: trapezoids of 15 minutes, 12.5 Wh each at 50 W and
    // 6.25 Wh on a switch: 00:00–02:00 8 × 12.5, 03:15–05:45 10 × 12.5, 05:45–06:00 6.25,
    // 21:45–22:00 6.25, 22:00–24:00 8 × 12.5 = 337.5 Wh; 02:00–03:15 is a gap (not zero: left
    // out, and the coverage says so: 1 − 75 min / 24 h). Off-peak (22:00–06:00) at 0.15 €, the
    // rest at 0.20 €: 331.25 Wh × 0.15 + 6.25 Wh × 0.20 = 0.0509375 €; 0.3375 kWh × 0.052 kg.
    let o = app.get_json("/api/v1/lighting?from=2026-06-21&to=2026-06-21&by=street").await;
    let groups = o["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{o}");
    let a = groups.iter().find(|g| g["key"] == "Rue A").unwrap();
    close(&a["kwh"], 0.3375, 1e-9);
    close(&a["eur"], 0.0509375, 1e-9);
    close(&a["kg_co2e"], 0.3375 * 0.052, 1e-9);
    close(&a["energy_coverage"], 1.0 - 4500.0 / 86_400.0, 1e-9);
    assert_eq!(a["measured_days"], 1);
    // Against the sun of 21 June (PyEphem: sunrise 05:57:12, civil dusk 21:58:46): lit by day
    // from sunrise to the 06:00 reading, 168 s; unlit in the dark from dusk to 22:00, 74 s.
    close(&a["lit_by_day_h"], 168.0 / 3600.0, 5.0 / 3600.0);
    close(&a["dark_unlit_h"], 74.0 / 3600.0, 5.0 / 3600.0);
    assert_eq!(a["days_lit_by_day"], 0);
    // lamp-2, lit all day at 30 W: 0.72 kWh, a day lit by day.
    let b = groups.iter().find(|g| g["key"] == "Rue B").unwrap();
    close(&b["kwh"], 0.72, 1e-9);
    assert_eq!(b["days_lit_by_day"], 1);
    // lamp-3, estimated: lit 00:00–06:00 and 22:00–24:00, 8 h × 50 W = 0.4 kWh.
    let c = groups.iter().find(|g| g["key"] == "Rue C").unwrap();
    close(&c["kwh"], 0.4, 1e-9);
    assert_eq!((c["estimated_days"].as_u64(), c["measured_days"].as_u64()), (Some(1), Some(0)));
    assert_eq!(o["totals"]["lamps"], 3);
    close(&o["days"][0]["kwh"], 0.3375 + 0.72 + 0.4, 1e-9);

    // Maintenance over both days: the status fault repaired after 12 h, the lamp lit by day
    // still to visit, since sunrise on the 21st.
    let m = app.get_json("/api/v1/lighting/maintenance?from=2026-06-20&to=2026-06-21").await;
    assert_eq!(m["failures"], 2, "{m}");
    close(&m["mttr_h"], 12.0, 1e-9);
    assert_eq!(m["repeated"][0]["lamp"], "lamp-2");
    let visit = &m["to_visit"].as_array().unwrap()[..];
    assert_eq!(visit.len(), 1, "{m}");
    assert_eq!(
        (visit[0]["lamp"].as_str(), visit[0]["why"].as_str()),
        (Some("lamp-2"), Some("lit_by_day"))
    );
    let since = chrono::DateTime::parse_from_rfc3339(visit[0]["since"].as_str().unwrap()).unwrap();
    assert!((since.timestamp() - june(21, 5, 57, 12)).abs() <= 5, "{since}");
    let csv = app.get("/api/v1/lighting/maintenance?from=2026-06-20&to=2026-06-21&format=csv");
    let csv = csv.bearer_auth(ADMIN).send().await.unwrap().text().await.unwrap();
    assert!(
        csv.starts_with("place,street,lamp,since,why") && csv.contains("place-a,Rue B,lamp-2"),
        "{csv}"
    );

    // Dim Rue A to 50 % from 23:00 to 05:00 on the 21st's profile: in the window 23:00–24:00
    // (50 Wh), 00:00–02:00 (100 Wh) and 03:15–05:00 (87.5 Wh) = 237.5 Wh, half saved: 118.75 Wh,
    // all off-peak (× 0.15 €), × 365 a year.
    let sc = app
        .get_json("/api/v1/lighting/scenario?kind=dim&level=50&start=23:00&end=05:00&streets=Rue%20A&from=2026-06-21&to=2026-06-21")
        .await;
    close(&sc["kwh"], 0.11875, 1e-9);
    close(&sc["eur"], 0.11875 * 0.15, 1e-9);
    close(&sc["kwh_per_year"], 0.11875 * 365.0, 1e-6);
    close(&sc["baseline_kwh"], 0.3375, 1e-9);
    // Off from 01:00 to 05:00 on every street: lamp-1 01:00–02:00 and 03:15–05:00 (50 + 87.5
    // Wh), lamp-2 4 h × 30 W (120 Wh), lamp-3 4 h × 50 W (200 Wh, estimated).
    let off = app
        .get_json("/api/v1/lighting/scenario?kind=off&start=01:00&end=05:00&from=2026-06-21&to=2026-06-21")
        .await;
    close(&off["kwh"], 0.4575, 1e-9);

    // Refused with reasons.
    for (q, words) in [
        ("kind=dim&level=50&start=23:00&end=05:00&streets=Rue%20Z", "unknown street \"Rue Z\""),
        ("kind=dim&level=150&start=23:00&end=05:00", "0 to 100"),
        ("kind=dim&level=50&start=23:07&end=05:00", "quarter-hour"),
        ("kind=dim&level=50&start=25:00&end=05:00", "HH:MM"),
        ("kind=sparkle&start=23:00&end=05:00", "dim, off or presence"),
    ] {
        let r = app.get(&format!("/api/v1/lighting/scenario?{q}")).bearer_auth(ADMIN).send().await;
        let p = problem(r.unwrap(), 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(words), "{q}: {p}");
    }
    for q in ["from=2026-06-23", "from=2025-01-01&to=2026-06-21", "to=2026-06-30", "by=tree"] {
        let r = app.get(&format!("/api/v1/lighting?{q}")).bearer_auth(ADMIN).send().await;
        problem(r.unwrap(), 400, "bad_request").await;
    }

    // The sun at the place on the 21st, as published (PyEphem: 05:57:12 and 21:22:50).
    let sun = app.get_json("/api/v1/lighting/sun?date=2026-06-21").await;
    let here = sun.as_array().unwrap().iter().find(|x| x["place"] == "place-a").unwrap();
    for (key, at) in [("sunrise", june(21, 5, 57, 12)), ("sunset", june(21, 21, 22, 50))] {
        let t = chrono::DateTime::parse_from_rfc3339(here[key].as_str().unwrap()).unwrap();
        assert!((t.timestamp() - at).abs() <= 60, "{key} {t}");
    }
}

#[tokio::test]
async fn bins_rates_collections_time_to_full_and_round_by_hand() {
    let app = app_at("2026-06-22T12:00:00+02:00").await;
    for (id, lat, lon) in [("bin-1", 43.527, 5.446), ("bin-2", 43.528, 5.447)] {
        device(
            &app,
            json!({"id": id, "kind": "waste_container", "site": "place-a",
                            "commune": "13001", "lat": lat, "lon": lon}),
        )
        .await;
    }
    // Hourly from 16 June 06:00 to 22 June 12:00; emptied to 5 % every morning at 06:00.
    // bin-1 fills 1.5 %/h (39.5 % at each collection: a wasted visit), bin-2 4 %/h (97 %).
    let mut lines = String::new();
    let start = june(16, 6, 0, 0);
    for k in 0..=(6 * 24 + 6) {
        let t = start + k * 3600;
        let h = (k % 24) as f64;
        lines += &format!("waste_container,device=bin-1 fill_level={} {t}\n", 5.0 + 1.5 * h);
        lines += &format!("waste_container,device=bin-2 fill_level={} {t}\n", 5.0 + 4.0 * h);
    }
    app.write(&lines).await;
    let b = app.get_json("/api/v1/bins?days=7").await;
    let bin =
        |id: &str| b["bins"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    let (b1, b2) = (bin("bin-1"), bin("bin-2"));
    assert_eq!(b1["collections"], 6, "{b1}");
    close(&b1["rate_per_h"], 1.5, 1e-9);
    close(&b1["level_at_collection"], 39.5, 1e-9);
    assert_eq!(b1["wasted_visits"], 6);
    assert_eq!(b2["wasted_visits"], 0);
    close(&b1["rate_by_weekday"][0], 1.5, 1e-9); // Monday the 22nd
    // Six hours into today's cycle, at 14 %: 66 points to 80 % at 1.5 %/h = 44 h; bin-2 at 29 %:
    // 12.75 h. To 100 %: 57.33 h (86 points) and 17.75 h.
    close(&b1["to_threshold"]["hours"], 44.0, 1e-6);
    close(&b2["to_threshold"]["hours"], 12.75, 1e-6);
    close(&b1["to_full"]["hours"], 86.0 / 1.5, 1e-6);
    assert_eq!(b1["to_full"]["basis"], "cycle");
    // June: 12 visits made; by need, bin-1's 216 points of rise need 3 visits at 80 %, bin-2's
    // 576 need 8: 11, one avoidable; six of the visits were wasted.
    let june_visits = &b["months"][0];
    assert_eq!(
        (june_visits["made"].as_i64(), june_visits["needed"].as_i64()),
        (Some(12), Some(11))
    );
    assert_eq!(june_visits["wasted"], 6);

    // The round of the next 24 h takes bin-2 only; of the next 48 h both, from the depot.
    let depot = (43.52, 5.44);
    let r = app.get_json("/api/v1/bins/round?commune=13001&within_h=24&depot=43.52,5.44").await;
    assert_eq!(r["stops"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["stops"][0]["id"], "bin-2");
    let r = app.get_json("/api/v1/bins/round?commune=13001&within_h=48&depot=43.52,5.44").await;
    let stops = r["stops"].as_array().unwrap();
    assert_eq!(stops.len(), 2);
    // Its length, recomputed here: the legs as the crow flies (haversine) × 1.3.
    let hav = |a: (f64, f64), b: (f64, f64)| {
        let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
        let (dp, dl) = (p2 - p1, (b.1 - a.1).to_radians());
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * 6_371_008.8 * h.sqrt().asin()
    };
    let mut path = vec![depot];
    path.extend(stops.iter().map(|s| (s["lat"].as_f64().unwrap(), s["lon"].as_f64().unwrap())));
    path.push(depot);
    let legs: f64 = path.windows(2).map(|w| hav(w[0], w[1])).sum();
    close(&r["metres"], legs * 1.3, 1e-6);
    assert!(
        r["metres"].as_f64().unwrap() <= r["nearest_neighbour_metres"].as_f64().unwrap() + 1e-6
    );
    let geo =
        app.get("/api/v1/bins/round?commune=13001&within_h=48&depot=43.52,5.44&format=geojson");
    let geo: Value = geo.bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
    assert_eq!(geo["features"].as_array().unwrap().len(), 4, "two stops, the path, the depot");
    for (q, words) in [
        ("commune=13001&depot=48.8566,2.3522", "outside"),
        ("commune=13001&depot=43.52", "lat,lon"),
        ("commune=13001&depot=43.52,5.44&threshold=-1", "threshold"),
        ("commune=13001&depot=43.52,5.44&within_h=1000", "within_h"),
        ("commune=13001&depot=43.52,5.44&detour=0.5", "detour"),
        ("commune=99999&depot=43.52,5.44", "unknown commune"),
    ] {
        let r = app.get(&format!("/api/v1/bins/round?{q}")).bearer_auth(ADMIN).send().await;
        let p = problem(r.unwrap(), 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(words), "{q}: {p}");
    }
}

#[tokio::test]
async fn irrigation_advice_and_water_by_hand() {
    let app = app_at("2026-06-22T12:00:00+02:00").await;
    for id in ["soil-1", "soil-2"] {
        device(
            &app,
            json!({"id": id, "kind": "soil_moisture", "site": "place-a", "commune": "13001",
                            "lat": 43.5263, "lon": 5.4454,
                            "metadata": {"zone": "Pelouse test", "plant": "lawn"}}),
        )
        .await;
    }
    // Every 30 minutes for three days, from 42 % drying 0.25 point an hour: 24 % now.
    let start = june(19, 12, 0, 0);
    let mut lines = String::new();
    for k in 0..=(72 * 2) {
        let t = start + k * 1800;
        let v = 42.0 - 0.25 * (k as f64 / 2.0);
        lines += &format!("soil_moisture,device=soil-1 soil_moisture={v} {t}\n");
        lines += &format!("soil_moisture,device=soil-2 soil_moisture={v} {t}\n");
    }
    app.write(&lines).await;
    let r = app.get_json("/api/v1/irrigation?days=3").await;
    let z = &r["zones"][0];
    assert_eq!(z["zone"], "Pelouse test", "{r}");
    close(&z["moisture"], 24.0, 1e-9);
    close(&z["rate_per_h"], -0.25, 1e-9);
    // Lawn: 20 %. 24 − 0.25 × 24 = 18 % tomorrow: water tonight.
    close(&z["threshold"], 20.0, 1e-9);
    assert_eq!(
        (z["irrigate_tonight"].as_bool(), z["advice"].as_str()),
        (Some(true), Some("will_be_dry"))
    );
    close(&z["projected"], 18.0, 1e-9);
    // The last three nights at 21:00 the soil was at 27.75, 33.75 and 39.75 %: none needed water;
    // the fixed schedule (every 2 days, 2 m³/h for 30 min) watered twice: 2 m³.
    assert_eq!((z["advised_nights"].as_u64(), z["fixed_nights"].as_u64()), (Some(0), Some(2)));
    close(&z["fixed_m3"], 2.0, 1e-9);
    close(&r["advised_m3"], 0.0, 1e-9);
    let r = app.get("/api/v1/irrigation?days=0").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 400, "bad_request").await;
}

/// Lamp readings every 15 minutes over a local day of June: `power(hour, minute)`.
fn lamp_day(device: &str, day: u32, power: impl Fn(i64, i64) -> f64) -> String {
    let mut lines = String::new();
    for k in 0..=97 {
        let t = june(day, 0, 0, 0) + k * 900;
        let local = (t + 7200).rem_euclid(86_400);
        let p = power(local / 3600, local % 3600 / 60);
        lines += &format!("streetlight,device={device} power_w={p},lamp_on={} {t}\n", p > 0.0);
    }
    lines
}

#[tokio::test]
async fn a_dimming_schedule_commands_the_lamps_and_its_savings_are_measured() {
    use agora_model::{MockClock, Timestamp};
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let clock = MockClock::new(at("2026-06-22T22:58:00+02:00"));
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let place = json!({"id": "place-a", "commune": "13001", "name": "Place A", "lat": 43.5263, "lon": 5.4454});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&place).send().await.unwrap();
    assert_eq!(r.status(), 201);
    for (id, street) in [("lamp-1", "Rue A"), ("lamp-2", "Rue B")] {
        device(
            &app,
            json!({"id": id, "kind": "streetlight", "site": "place-a", "commune": "13001",
                            "lat": 43.5263, "lon": 5.4454, "metadata": {"street": street}}),
        )
        .await;
    }
    // The 21st, at full output (50 W) from 22:00 to 06:00: 300 Wh in 23:00–05:00.
    let night = |h: i64, _m: i64| if !(6..22).contains(&h) { 50.0 } else { 0.0 };
    app.write(&(lamp_day("lamp-1", 21, night) + &lamp_day("lamp-2", 21, night))).await;

    let new = json!({"name": "Abaissement Rue A", "kind": "dim", "level": 50, "start": "23:00",
                     "end": "05:00", "place": "place-a", "streets": ["Rue A"]});
    let r =
        app.post("/api/v1/lighting/schedules").bearer_auth(ADMIN).json(&new).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    // Estimated on the last 28 days (one with data): half of 0.3 kWh a night, 365 nights.
    close(&made["body"]["estimate"]["window_kwh_per_day"], 0.3, 1e-9);
    close(&made["body"]["estimate"]["kwh_per_year"], 0.15 * 365.0, 1e-9);
    let id = made["id"].as_i64().unwrap();

    // 23:00: lamp-1 (Rue A) hears the command on agora's endpoint; lamp-2 (Rue B) does not.
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let token = app.token("ingest", Some("lamp-1")).await;
    let sub = tokio::task::spawn_blocking(move || {
        crate::helpers::one_message(port, &token, "agora/commands/lamp-1")
            .wait_with_output()
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    clock.set(at("2026-06-22T23:00:20+02:00"));
    let out = sub.await.unwrap();
    let msg: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no command: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(msg, json!({"command": "dim", "level": 50.0}));
    let list = app.get_json("/api/v1/lighting/schedules").await;
    let commands = list[0]["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1, "{list}");
    assert_eq!(commands[0]["device"], "lamp-1");
    assert!(commands[0]["outcome"].as_str().unwrap().starts_with("delivered"), "{list}");
    assert!(list[0].get("measured").is_none(), "no whole day yet");

    // The 23rd, dimmed to 25 W in the window. By hand: 23:00–24:00 4 × 6.25 Wh, 00:00–04:45
    // 19 × 6.25, 04:45–05:00 (25 → 50 W) 9.375: 153.125 Wh; saved 0.146875 kWh a night
    // against 0.3, 53.61 kWh a year, 0.979 of the estimate.
    let dimmed = |h: i64, _m: i64| {
        if (6..22).contains(&h) {
            0.0
        } else if !(5..23).contains(&h) {
            25.0
        } else {
            50.0
        }
    };
    clock.set(at("2026-06-24T12:00:00+02:00"));
    app.write(&lamp_day("lamp-1", 23, dimmed)).await;
    let list = app.get_json("/api/v1/lighting/schedules").await;
    let m = &list[0]["measured"];
    close(&m["days"], 1.0, 1e-9);
    close(&m["window_kwh_per_day"], 0.153125, 1e-9);
    close(&m["kwh_per_day"], 0.146875, 1e-9);
    close(&m["of_estimate"], 0.146875 / 0.15, 1e-9);

    // Stopped, it sends nothing more; deleted, it is gone with its log.
    let r = app
        .client
        .patch(format!("http://{}/api/v1/schedules/{id}", app.addr))
        .bearer_auth(ADMIN)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    clock.set(at("2026-06-24T23:00:30+02:00"));
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let list = app.get_json("/api/v1/lighting/schedules").await;
    assert_eq!(list[0]["commands"].as_array().unwrap().len(), 1, "{list}");
    let r = app
        .client
        .delete(format!("http://{}/api/v1/schedules/{id}", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get_json("/api/v1/lighting/schedules").await, json!([]));

    // Refused with reasons; a place one does not see is not found.
    let nowhere =
        json!({"name": "x", "kind": "off", "start": "23:00", "end": "05:00", "place": "nowhere"});
    let r = app.post("/api/v1/lighting/schedules").bearer_auth(ADMIN).json(&nowhere).send().await;
    problem(r.unwrap(), 404, "not_found").await;
    for (body, words) in [
        (
            json!({"name": "x", "kind": "dim", "level": 50, "start": "23:00", "end": "05:00", "place": "place-a", "streets": ["Rue Z"]}),
            "unknown street",
        ),
        (
            json!({"name": "x", "kind": "dim", "level": 150, "start": "23:00", "end": "05:00", "place": "place-a"}),
            "0 to 100",
        ),
        (
            json!({"name": "x", "kind": "dim", "level": 50, "start": "23:00", "end": "05:00", "place": "place-a", "topic": "lamps/all"}),
            "{device}",
        ),
        (
            json!({"name": "", "kind": "off", "start": "23:00", "end": "05:00", "place": "place-a"}),
            "name",
        ),
    ] {
        let r = app.post("/api/v1/lighting/schedules").bearer_auth(ADMIN).json(&body).send().await;
        let p = problem(r.unwrap(), 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(words), "{body}: {p}");
    }
}

#[tokio::test]
async fn an_irrigation_schedule_opens_the_valves_when_the_advice_says_so() {
    use agora_model::{MockClock, Timestamp};
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let clock = MockClock::new(at("2026-06-22T20:58:00+02:00"));
    let app = TestApp::spawn_at(clock.clone(), |_| {}).await;
    let place = json!({"id": "place-a", "commune": "13001", "name": "Place A", "lat": 43.5263, "lon": 5.4454});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&place).send().await.unwrap();
    assert_eq!(r.status(), 201);
    device(
        &app,
        json!({"id": "soil-1", "kind": "soil_moisture", "site": "place-a", "commune": "13001",
                        "metadata": {"zone": "Pelouse test", "plant": "lawn"}}),
    )
    .await;
    device(
        &app,
        json!({"id": "valve-1", "kind": "irrigation_valve", "site": "place-a", "commune": "13001"}),
    )
    .await;
    // Drying 0.25 point an hour to 23 % now: 17 % tomorrow, under the lawn's 20 %: water.
    let start = june(21, 20, 30, 0);
    let mut lines = String::new();
    for k in 0..=48 {
        let t = start + k * 1800;
        lines +=
            &format!("soil_moisture,device=soil-1 soil_moisture={} {t}\n", 29.0 - 0.125 * k as f64);
    }
    app.write(&lines).await;
    let new = json!({"name": "Pelouse", "zone": "Pelouse test", "mode": "advice", "minutes": 20,
                     "valves": ["valve-1"]});
    let r = app
        .post("/api/v1/irrigation/schedules")
        .bearer_auth(ADMIN)
        .json(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let token = app.token("ingest", Some("valve-1")).await;
    let sub = tokio::task::spawn_blocking(move || {
        crate::helpers::one_message(port, &token, "agora/commands/valve-1")
            .wait_with_output()
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    clock.set(at("2026-06-22T21:00:10+02:00"));
    let out = sub.await.unwrap();
    let msg: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no command: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(msg, json!({"command": "open", "minutes": 20.0}));
    // The soil after: from 23 % to 31 % within the hour.
    let t0 = june(22, 21, 0, 10);
    app.write(&format!(
        "soil_moisture,device=soil-1 soil_moisture=27 {}\nsoil_moisture,device=soil-1 soil_moisture=31 {}\n",
        t0 + 1200,
        t0 + 2400
    ))
    .await;
    let list = app.get_json("/api/v1/irrigation/schedules").await;
    let c = &list[0]["commands"][0];
    assert_eq!(c["device"], "valve-1");
    close(&c["soil_rise"], 8.0, 1e-9);
    let bad = json!({"name": "x", "zone": "Pelouse test", "mode": "advice", "valves": ["valve-9"]});
    let r = app.post("/api/v1/irrigation/schedules").bearer_auth(ADMIN).json(&bad).send().await;
    problem(r.unwrap(), 404, "not_found").await;
    for (body, words) in [
        (
            json!({"name": "x", "zone": "Nowhere", "mode": "advice", "valves": ["valve-1"]}),
            "unknown zone",
        ),
        (
            json!({"name": "x", "zone": "Pelouse test", "mode": "fixed", "valves": ["valve-1"]}),
            "every 1 to 31 days",
        ),
        (json!({"name": "x", "zone": "Pelouse test", "mode": "advice", "valves": []}), "valves"),
    ] {
        let r =
            app.post("/api/v1/irrigation/schedules").bearer_auth(ADMIN).json(&body).send().await;
        let p = problem(r.unwrap(), 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(words), "{body}: {p}");
    }
}
