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
    assert_eq!(table.len(), 10, "every candidate's scores");
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
    let p = problem(ask("device=wx-1&property=pm10").await.unwrap(), 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("has no pm10 series"), "{p}");
    problem(ask("device=nowhere&property=pm10").await.unwrap(), 404, "not_found").await;
}
