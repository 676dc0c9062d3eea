//! Forecasts through the API, on a series built so that the answer is known: six weeks of an
//! hourly temperature with a daily cycle and a little noise. The method is chosen by the
//! backtest; a forecast comes with its accuracy table; bad requests are refused by name.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

#[tokio::test]
async fn a_forecast_comes_with_its_backtest_and_bad_requests_are_refused() {
    use agora_model::{MockClock, Timestamp};
    let now = Timestamp::parse_rfc3339("2026-11-30T12:30:00+01:00").unwrap();
    let app = TestApp::spawn_at(MockClock::new(now), |_| {}).await;
    for id in ["wx-1", "wx-2"] {
        let d = json!({"id": id, "kind": "weather", "commune": "13001"});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    // 42 days, one reading every 10 minutes: 12 + 6 sin(2π(h − 10)/24) °C, h the hour in
    // Paris (the window spans the night the clocks went back: the cycle follows the city's
    // clock), plus a reproducible wobble of ±0.3 °C.
    let end = now.as_nanos() / 1_000_000_000 / 3600 * 3600;
    let paris = chrono_tz::Europe::Paris;
    let mut lines = String::new();
    for k in 0..42 * 24 * 6 {
        let t = end - 42 * 86_400 + k * 600;
        let local = chrono::DateTime::from_timestamp(t, 0).unwrap().with_timezone(&paris);
        let h =
            chrono::Timelike::hour(&local) as f64 + chrono::Timelike::minute(&local) as f64 / 60.0;
        let wobble = 0.3 * ((k * 7919 % 1000) as f64 / 500.0 - 1.0);
        let v = 12.0 + 6.0 * (2.0 * std::f64::consts::PI * (h - 10.0) / 24.0).sin() + wobble;
        lines.push_str(&format!("weather,device=wx-1 temperature={v:.3} {t}\n"));
    }
    lines.push_str(&format!("weather,device=wx-2 temperature=10 {}\n", end - 7200));
    lines.push_str(&format!("weather,device=wx-2 temperature=11 {}\n", end - 3600));
    app.write(&lines).await;

    let f = app.get_json("/api/v1/forecast?device=wx-1&property=temperature").await;
    assert_eq!(f["beats_naive"], true, "{}", f["backtest"]);
    assert_eq!(f["origins"], 28);
    let table = f["backtest"].as_array().unwrap();
    assert_eq!(table.len(), agora_forecast::Method::CANDIDATES.len(), "every candidate's scores");
    let best = table[0]["mae"].as_f64().unwrap();
    let naive = table.iter().find(|s| s["method"]["method"] == "naive_day").unwrap();
    assert!(best < naive["mae"].as_f64().unwrap(), "{table:?}");
    let hours = f["forecast"].as_array().unwrap();
    assert_eq!(hours.len(), 48);
    assert_eq!(f["recent"].as_array().unwrap().len(), 48);
    // The first hour forecast is the one after the last complete hour (12:00–13:00 in Paris),
    // and it follows the cycle: its hourly mean is about 12 + 6 sin(2π·2.4/24) ≈ 15.5 °C.
    assert_eq!(hours[0]["time"], json!(Timestamp::from_secs(end).unwrap()));
    let v = hours[0]["value"].as_f64().unwrap();
    assert!((v - 15.5).abs() < 1.0, "{v}");
    for h in hours {
        let (v, lo80, hi80) = (
            h["value"].as_f64().unwrap(),
            h["interval_80"][0].as_f64().unwrap(),
            h["interval_80"][1].as_f64().unwrap(),
        );
        let (lo95, hi95) =
            (h["interval_95"][0].as_f64().unwrap(), h["interval_95"][1].as_f64().unwrap());
        assert!(lo95 <= lo80 && lo80 <= hi80 && hi80 <= hi95 && lo95 <= v && v <= hi95, "{h}");
    }
    let csv = app
        .get("/api/v1/forecast?device=wx-1&property=temperature&horizon=3&format=csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "time,kind,value,lo80,hi80,lo95,hi95");
    assert_eq!(lines.len(), 1 + 48 + 3);
    assert!(lines[49].contains(",forecast,"), "{}", lines[49]);

    // Bad requests, named.
    let ask = |q: &str| app.get(&format!("/api/v1/forecast?{q}")).bearer_auth(ADMIN).send();
    let p: Value = problem(
        ask("device=wx-1&property=temperature&horizon=87600").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("1 to 48 hours"), "{p}");
    let p = problem(ask("device=wx-1&property=colour").await.unwrap(), 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("agora forecasts pm10"), "{p}");
    let p =
        problem(ask("device=wx-2&property=temperature").await.unwrap(), 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("2 hours with a value"), "{p}");
    let p = problem(ask("device=wx-1&property=pm10").await.unwrap(), 404, "not_found").await;
    assert!(p["detail"].as_str().unwrap().contains("has no pm10 series"), "{p}");
    problem(ask("device=nowhere&property=pm10").await.unwrap(), 404, "not_found").await;
}

/// A place built so that every answer is known: three air-quality sensors (one drifting 3 % a
/// day for the last 12 days), two sound level meters (one read 6 dB higher for the last 9 days,
/// the other 25 dB higher for five hours yesterday), a pedestrian counter 30 % busier for the
/// last 14 days; five weeks of hourly readings with daily cycles.
#[tokio::test]
async fn anomalies_and_tomorrow_are_found_where_they_were_planted() {
    use agora_model::{MockClock, Timestamp};
    // A Monday noon in Paris: tomorrow is Tuesday 1 December.
    let now = Timestamp::parse_rfc3339("2026-11-30T12:30:00+01:00").unwrap();
    let app = TestApp::spawn_at(MockClock::new(now), |_| {}).await;
    let site = json!({"id": "place", "commune": "13001", "name": "Place"});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let devices = [
        ("aq-1", "air_quality"),
        ("aq-2", "air_quality"),
        ("aq-3", "air_quality"),
        ("noise-1", "noise"),
        ("noise-2", "noise"),
        ("ped-1", "pedestrian_counter"),
    ];
    for (id, kind) in devices {
        let d = json!({"id": id, "kind": kind, "commune": "13001", "site": "place"});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let end = now.as_nanos() / 1_000_000_000 / 3600 * 3600;
    let paris = chrono_tz::Europe::Paris;
    let day = 86_400;
    let mut lines = String::new();
    for k in 0..35 * 24 {
        let t = end - 35 * day + k * 3600 + 1800;
        let local = chrono::DateTime::from_timestamp(t, 0).unwrap().with_timezone(&paris);
        let h = chrono::Timelike::hour(&local) as f64 + 0.5;
        let cycle = |peak: f64| (2.0 * std::f64::consts::PI * (h - peak + 6.0) / 24.0).sin();
        // A reproducible noise, uniform within ±0.5, different for each device (SplitMix64).
        let w = |salt: i64| {
            let mut z = ((k << 8) + salt) as u64;
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let since = |days: i64| t >= end - days * day;
        for (i, id) in ["aq-1", "aq-2", "aq-3"].iter().enumerate() {
            let gain = if *id == "aq-3" {
                1.0 + 0.03 * ((t - (end - 12 * day)) as f64 / day as f64).max(0.0)
            } else {
                1.0
            };
            let s = i as i64 * 31;
            let pm10 = (30.0 + 5.0 * cycle(20.0) + w(s)) * gain;
            let o3 = 45.0 + 15.0 * cycle(15.0) + w(s + 1);
            let no2 = 20.0 + 8.0 * cycle(8.0) + w(s + 2);
            let temp = 31.0 + 6.0 * cycle(15.0) + 0.2 * w(s + 3);
            lines.push_str(&format!(
                "air_quality,device={id} pm10={pm10:.2},o3={o3:.2},no2={no2:.2},temperature={temp:.2} {t}\n"
            ));
        }
        let busy = if (7.0..22.0).contains(&h) { 8.0 } else { 0.0 };
        let shift = if since(9) { 6.0 } else { 0.0 };
        lines.push_str(&format!(
            "noise,device=noise-1 laeq={:.2} {t}\n",
            55.0 + busy + shift + w(5)
        ));
        let party = if t >= end - 30 * 3600 && t < end - 25 * 3600 { 25.0 } else { 0.0 };
        lines.push_str(&format!(
            "noise,device=noise-2 laeq={:.2} {t}\n",
            52.0 + busy + party + w(6)
        ));
        let walkers = if (7.0..21.0).contains(&h) {
            20.0 + 15.0 * (std::f64::consts::PI * (h - 7.0) / 14.0).sin()
        } else {
            2.0
        };
        let more = if since(14) { 1.3 } else { 1.0 };
        lines.push_str(&format!(
            "pedestrian_counter,device=ped-1 people_in={}i {t}\n",
            (walkers * more + 2.0 * w(7)).round().max(0.0) as i64
        ));
    }
    app.write(&lines).await;
    let service = app.server.as_ref().unwrap().state.forecasts.clone();
    assert!(service.sweep().await >= 15);

    let found = app.get_json("/api/v1/anomalies").await;
    let found = found.as_array().unwrap();
    let of = |kind: &str, device: &str| -> Vec<&Value> {
        found.iter().filter(|a| a["kind"] == kind && a["device"] == device).collect()
    };
    let secs = |v: &Value| {
        Timestamp::parse_rfc3339(v.as_str().unwrap()).unwrap().as_nanos() / 1_000_000_000
    };
    // The drifting sensor, and only it, against the other two.
    let drift: Vec<&Value> = found.iter().filter(|a| a["kind"] == "drift").collect();
    assert!(!drift.is_empty(), "{found:#?}");
    assert!(drift.iter().all(|a| a["device"] == "aq-3"), "{drift:#?}");
    let pm = drift.iter().find(|a| a["property"] == "pm10").expect("a pm10 drift");
    assert_eq!(pm["peers"], json!(["aq-1", "aq-2"]));
    assert!(pm["value"].as_f64().unwrap() > 10.0, "{pm}");
    let from = secs(&pm["from"]);
    // From the start of the (local) day it began, or the next.
    assert!(from > end - 13 * day && from <= end - 10 * day, "{pm}");
    // The sound level meter's change of level, within a day and a half of where it is, 6 dB.
    let shift = of("level_shift", "noise-1");
    assert_eq!(shift.len(), 1, "{found:#?}");
    assert!((secs(&shift[0]["from"]) - (end - 9 * day)).abs() <= 36 * 3600, "{}", shift[0]);
    let size = shift[0]["value"].as_f64().unwrap() - shift[0]["before"].as_f64().unwrap();
    assert!((size - 6.0).abs() < 1.0, "{}", shift[0]);
    // The counter's, 30 %.
    let busier = of("level_shift", "ped-1");
    assert_eq!(busier.len(), 1, "{found:#?}");
    assert!((secs(&busier[0]["from"]) - (end - 14 * day)).abs() <= 36 * 3600, "{}", busier[0]);
    // Five loud hours: unlikely, exactly those; and no change of level for one evening.
    let loud = of("unlikely", "noise-2");
    assert_eq!(loud.len(), 1, "{found:#?}");
    assert_eq!(secs(&loud[0]["from"]), end - 30 * 3600, "{}", loud[0]);
    assert_eq!(secs(&loud[0]["to"]), end - 25 * 3600, "{}", loud[0]);
    assert!(of("level_shift", "noise-2").is_empty());
    for quiet in ["aq-1", "aq-2"] {
        assert!(found.iter().all(|a| a["device"] != quiet), "{found:#?}");
    }
    let csv = app.get("/api/v1/anomalies?format=csv").bearer_auth(ADMIN).send().await.unwrap();
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with(
        "kind,device,property,site,from,to,value,before,lo999,hi999,peers,statistic,shared_by,place_sensors\n"
    ));
    // Five loud hours at one of the place's two sound level meters: its own, not an event.
    assert_eq!(loud[0]["shared"], json!([1, 2]));
    assert_eq!(csv.lines().count(), 1 + found.len());

    // Tomorrow: ATMO moyen — PM10 about 30 µg/m³ a day at the two sensors that do not drift
    // (the drifting one, whose forecast follows its drift to 30 × 1.4, is left out and named),
    // O3 peaking at 60 (moyen), NO2 at 28 (bon), no PM2.5; 25 and 37 °C (above
    // Bouches-du-Rhône's 24 / 35 °C); footfall 30 % above the last weeks' Tuesdays, half of which
    // were before the change: 1.3 / 1.15 − 1 = +13 %.
    let t = app.get_json("/api/v1/forecast/tomorrow?site=place").await;
    assert_eq!(t["day"], "2026-12-01");
    assert_eq!(t["atmo"]["level"], 2, "{t:#}");
    assert_eq!(t["atmo"]["label"], "Moyen");
    assert_eq!(t["atmo"]["excluded"], json!(["aq-3"]));
    let sub = |p: &str| {
        let all = t["atmo"]["index"]["pollutants"].as_array().unwrap();
        all.iter().find(|x| x["pollutant"] == p).unwrap()["value"].as_f64().unwrap()
    };
    assert!((sub("pm10") - 30.0).abs() < 2.0, "{t:#}");
    assert!((sub("o3") - 60.0).abs() < 2.0 && (sub("no2") - 28.0).abs() < 2.0, "{t:#}");
    assert_eq!(t["atmo"]["index"]["missing"], json!(["pm2_5", "so2"]));
    let heat = &t["heat"];
    assert_eq!(heat["reaches_thresholds"], true, "{heat}");
    assert!((heat["t_min"].as_f64().unwrap() - 25.0).abs() < 0.7, "{heat}");
    assert!((heat["t_max"].as_f64().unwrap() - 37.0).abs() < 0.7, "{heat}");
    assert_eq!(
        (heat["threshold_min"].as_f64(), heat["threshold_max"].as_f64()),
        (Some(24.0), Some(35.0))
    );
    let ff = t["footfall"]["vs_usual_percent"].as_f64().unwrap();
    assert!((ff - 13.0).abs() < 5.0, "{t:#}");
    problem(
        app.get("/api/v1/forecast/tomorrow?site=nowhere").send().await.unwrap(),
        404,
        "not_found",
    )
    .await;

    // The place's forecast: each hour the mean of its three sensors' own forecasts.
    let place = app.get_json("/api/v1/forecast/place?site=place&property=pm10").await;
    let hours = place["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 48);
    let mut own: Vec<Value> = Vec::new();
    for d in ["aq-1", "aq-2", "aq-3"] {
        own.push(app.get_json(&format!("/api/v1/forecast?device={d}&property=pm10")).await);
    }
    for (k, h) in hours.iter().enumerate() {
        let mean =
            own.iter().map(|f| f["forecast"][k]["value"].as_f64().unwrap()).sum::<f64>() / 3.0;
        assert_eq!(h["time"], own[0]["forecast"][k]["time"]);
        assert!((h["value"].as_f64().unwrap() - mean).abs() < 1e-9, "{h} against {mean}");
        assert_eq!(h["sensors"], 3);
    }

    // The operators' table, and the service's work in /metrics.
    let models = app.get_json("/api/v1/forecast/models").await;
    let rows = models.as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["device"] == "aq-1"
            && r["property"] == "pm10"
            && r["mase"].as_f64().is_some())
    );
    let metrics = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("agora_forecast_sweeps_total 1"), "{metrics}");
    assert!(metrics.contains("agora_forecast_models "), "{metrics}");
}
