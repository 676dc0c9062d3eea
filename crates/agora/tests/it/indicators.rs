//! Environmental indicators over HTTP: the hourly European Air Quality Index and the daily ATMO
//! index of a place, from data built so that the answer is known, with the published bounds
//! written out again here (not read from agora's tables).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// 2026-01-01T23:00:00Z: midnight of 2 January 2026 in Paris.
const DAY2: i64 = 1_767_308_400;

/// Upper bounds (µg/m³, included) from the texts: EEA 2024 and the arrêté of 10 July 2020.
fn class(bounds: [f64; 5], v: f64) -> u64 {
    bounds.iter().position(|b| v <= *b).unwrap_or(5) as u64 + 1
}
fn eaqi_level(p: &str, v: f64) -> u64 {
    match p {
        "pm10" => class([15.0, 45.0, 120.0, 195.0, 270.0], v),
        "no2" => class([10.0, 25.0, 60.0, 100.0, 150.0], v),
        "o3" => class([60.0, 100.0, 120.0, 160.0, 180.0], v),
        _ => unreachable!(),
    }
}
const EAQI_NAMES: [&str; 6] = ["good", "fair", "moderate", "poor", "very_poor", "extremely_poor"];

/// A place's two sensors over the Paris day of 2 January: PM10 every hour (20, 21, … 43 µg/m³),
/// O3 for 21 hours rising to 135 at noon UTC, NO2 for 10 hours only (below ATMO's 75 % rule).
fn day() -> (Vec<(i64, &'static str, f64)>, String) {
    let o3 = [
        60.0, 62.0, 64.0, 66.0, 70.0, 75.0, 80.0, 90.0, 100.0, 110.0, 120.0, 128.0, 135.0, 130.0,
        120.0, 110.0, 100.0, 90.0, 80.0, 70.0, 65.0,
    ];
    let mut points = Vec::new();
    let mut body = String::new();
    for h in 0..24i64 {
        let t = DAY2 + h * 3600 + 600;
        let pm10 = 20.0 + h as f64;
        points.push((h, "pm10", pm10));
        body.push_str(&format!("air_quality,device=aq-a,site=hotel-de-ville pm10={pm10} {t}\n"));
        if let Some(v) = o3.get(h as usize) {
            points.push((h, "o3", *v));
            body.push_str(&format!("air_quality,device=aq-b,site=hotel-de-ville o3={v} {t}\n"));
        }
        if h < 10 {
            let v = 30.0 + h as f64;
            points.push((h, "no2", v));
            body.push_str(&format!("air_quality,device=aq-b,site=hotel-de-ville no2={v} {t}\n"));
        }
    }
    (points, body)
}

#[tokio::test]
async fn hourly_eaqi_of_a_place_matches_the_published_bands() {
    let app = TestApp::spawn().await;
    let (points, body) = day();
    app.write(&body).await;
    let r = app
        .get_json(&format!(
            "/api/v1/indicators/eaqi?site=hotel-de-ville&from={DAY2}&to={}",
            DAY2 + 86_400
        ))
        .await;
    let hours = r["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24, "every hour has PM10");
    for (h, got) in hours.iter().enumerate() {
        let mine: Vec<&(i64, &str, f64)> = points.iter().filter(|p| p.0 == h as i64).collect();
        let worst = mine.iter().map(|p| eaqi_level(p.1, p.2)).max().unwrap();
        let mut responsible: Vec<&str> =
            mine.iter().filter(|p| eaqi_level(p.1, p.2) == worst).map(|p| p.1).collect();
        responsible
            .sort_by_key(|p| ["pm2_5", "pm10", "no2", "o3", "so2"].iter().position(|x| x == p));
        assert_eq!(got["index"]["class"], EAQI_NAMES[worst as usize - 1], "hour {h}: {got}");
        assert_eq!(got["index"]["responsible"], json!(responsible), "hour {h}");
        assert_eq!(
            got["hour"],
            chrono::DateTime::from_timestamp(DAY2 + h as i64 * 3600, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    // Noon UTC: O3 at 135 is "poor", PM10 at 32 "fair", no NO2.
    assert_eq!(hours[12]["index"]["class"], "poor");
    assert_eq!(hours[12]["index"]["missing"], json!(["pm2_5", "no2", "so2"]));
    // Before the data: no hour at all, never a "good" one.
    let r = app
        .get_json(&format!(
            "/api/v1/indicators/eaqi?site=hotel-de-ville&from={}&to={DAY2}",
            DAY2 - 86_400
        ))
        .await;
    assert_eq!(r["hours"], json!([]));
}

#[tokio::test]
async fn daily_atmo_of_a_place_with_the_75_percent_rule() {
    let app = TestApp::spawn().await;
    let (_, body) = day();
    app.write(&body).await;
    let r = app
        .get_json("/api/v1/indicators/atmo?site=hotel-de-ville&from=2026-01-02&to=2026-01-02")
        .await;
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{r}");
    let d = &days[0];
    assert_eq!(d["day"], "2026-01-02");
    // PM10: daily mean of 20..=43 = 31.5 → "moyen" (20 < x ≤ 40). O3: highest hour 135 →
    // "mauvais" (130 < x ≤ 240). NO2: 10 of 24 hours, under 75 %: not counted.
    let by = |p: &str| {
        d["index"]["pollutants"].as_array().unwrap().iter().find(|x| x["pollutant"] == p).cloned()
    };
    assert_eq!(by("pm10").unwrap()["value"], 31.5);
    assert_eq!(by("pm10").unwrap()["class"], "moyen");
    assert_eq!(by("o3").unwrap()["value"], 135.0);
    assert_eq!(by("o3").unwrap()["class"], "mauvais");
    assert!(by("no2").is_none());
    assert_eq!(d["index"]["class"], "mauvais");
    assert_eq!(d["index"]["responsible"], json!(["o3"]));
    let no2 =
        d["coverage"].as_array().unwrap().iter().find(|c| c["pollutant"] == "no2").unwrap().clone();
    assert_eq!(no2, json!({"pollutant": "no2", "hours": 10, "of": 24, "counted": false}));
    assert!(d["index"]["missing"].as_array().unwrap().contains(&json!("no2")));
    // CSV, in French, with the arrêté's colour.
    let r = app
        .get("/api/v1/indicators/atmo?site=hotel-de-ville&from=2026-01-02&to=2026-01-02&format=csv")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().nth(1).unwrap(), "2026-01-02,4,Mauvais,#ff5050,o3,,,135.0,31.5,");
    // A place is its worst device (the arrêté's "maximum over the zone"): a third sensor peaking at
    // 200 for 19 hours counts; a fourth at 300 for 5 hours does not (under 75 % of the day).
    let mut body = String::new();
    let ramp: Vec<f64> = (0..11)
        .map(|i| 100.0 + 10.0 * i as f64)
        .chain((1..9).map(|i| 200.0 - 10.0 * i as f64))
        .collect();
    for (h, v) in ramp.iter().enumerate() {
        body.push_str(&format!(
            "air_quality,device=aq-c,site=hotel-de-ville o3={v} {}\n",
            DAY2 + h as i64 * 3600 + 900
        ));
    }
    for h in 0..5i64 {
        body.push_str(&format!(
            "air_quality,device=aq-d,site=hotel-de-ville o3={} {}\n",
            296 + h,
            DAY2 + h * 3600 + 900
        ));
    }
    app.write(&body).await;
    let r = app
        .get_json("/api/v1/indicators/atmo?site=hotel-de-ville&from=2026-01-02&to=2026-01-02")
        .await;
    let d = &r["days"][0];
    let o3 = d["index"]["pollutants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["pollutant"] == "o3")
        .unwrap()
        .clone();
    assert_eq!(o3["value"], 200.0, "{d}");
    let cov =
        d["coverage"].as_array().unwrap().iter().find(|c| c["pollutant"] == "o3").unwrap().clone();
    assert_eq!(cov, json!({"pollutant": "o3", "hours": 21, "of": 24, "counted": true}));
}

#[tokio::test]
async fn bad_requests_are_named() {
    let app = TestApp::spawn().await;
    let get = |q: &str| app.get(&format!("/api/v1/indicators/{q}")).bearer_auth(ADMIN).send();
    let problem = |r: reqwest::Response, status: u16| async move {
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        v["detail"].as_str().unwrap().to_owned()
    };
    assert!(
        problem(get("atmo?site=nowhere").await.unwrap(), 404)
            .await
            .contains("unknown place \"nowhere\"")
    );
    assert!(
        problem(get("atmo?site=hotel-de-ville&commune=13001").await.unwrap(), 400)
            .await
            .contains("exactly one")
    );
    assert!(
        problem(get("atmo?site=hotel-de-ville&from=2000-01-01&to=2019-12-31").await.unwrap(), 400)
            .await
            .contains("366 days")
    );
    assert!(
        problem(get("atmo?site=hotel-de-ville&from=2026-13-01").await.unwrap(), 400)
            .await
            .contains("YYYY-MM-DD")
    );
    assert!(
        problem(get("eaqi?site=hotel-de-ville&from=now-60d").await.unwrap(), 400)
            .await
            .contains("31 days")
    );
    assert!(
        problem(get("eaqi?site=hotel-de-ville&format=xml").await.unwrap(), 400)
            .await
            .contains("json or csv")
    );
}

/// One day of 1-minute LAeq from 6 h (Paris) on 2 January: day 60, evening 55, night 50 dB, each
/// alternating 1 dB below and above (a steady level would be flagged stuck); LAmax peaks above
/// 80 dB at 23 h, 1 h and 3 h, one at 14 h (day) and one of 79 dB at 2 h.
fn noise_day(device: &str, offset_db: f64) -> String {
    let start = DAY2 + 6 * 3600;
    let mut body = String::new();
    for m in 0..1440i64 {
        let base = if m < 720 {
            60.0
        } else if m < 960 {
            55.0
        } else {
            50.0
        } + offset_db;
        let v = if m % 2 == 0 { base - 1.0 } else { base + 1.0 };
        body.push_str(&format!(
            "noise,device={device},site=hotel-de-ville laeq={v} {}\n",
            start + m * 60 + 30
        ));
    }
    // Distinct values: a peak repeated for hours would rightly be flagged stuck.
    for (local_hour, v) in [(23, 85.2), (1, 86.1), (3, 84.7), (14, 83.9), (2, 79.0)] {
        let m = (local_hour + 24 - 6) % 24 * 60 + 5;
        body.push_str(&format!(
            "noise,device={device},site=hotel-de-ville lamax={v} {}\n",
            start + m * 60
        ));
    }
    body
}

#[tokio::test]
async fn daily_noise_levels_worked_by_hand() {
    let app = TestApp::spawn().await;
    app.write(&noise_day("noise-1", 0.0)).await;
    let r =
        app.get_json("/api/v1/indicators/noise?device=noise-1&from=2026-01-02&to=2026-01-02").await;
    let days = r["days"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{r}");
    let d = &days[0];
    assert_eq!(d["day"], "2026-01-02");
    // Each period alternates L−1 and L+1: its energy mean is L + δ.
    let delta = 10.0 * ((10f64.powf(-0.1) + 10f64.powf(0.1)) / 2.0).log10();
    let lvl = |k: &str| d["levels"][k].as_f64().unwrap();
    for (k, l) in [("ld", 60.0), ("le", 55.0), ("ln", 50.0)] {
        assert!((lvl(k) - (l + delta)).abs() < 1e-9, "{k}: {} vs {}", lvl(k), l + delta);
    }
    let lden = 10.0
        * ((12.0 * 10f64.powf((60.0 + delta) / 10.0)
            + 4.0 * 10f64.powf((55.0 + delta + 5.0) / 10.0)
            + 8.0 * 10f64.powf((50.0 + delta + 10.0) / 10.0))
            / 24.0)
            .log10();
    assert!((lvl("lden") - lden).abs() < 1e-9);
    assert_eq!(d["levels"]["hours_measured"], 24);
    // Sorted, the 1,440 levels are 240×49, 240×51, 120×54, 120×56, 360×59, 360×61: L10 is 61,
    // L50 halfway between the 720th and 721st (56 and 59), L90 is 49.
    assert_eq!(
        (d["l10"].as_f64(), d["l50"].as_f64(), d["l90"].as_f64()),
        (Some(61.0), Some(57.5), Some(49.0))
    );
    // Three night peaks above 80 dB (the day's one and the 79 dB one do not count).
    assert_eq!(d["night_events"], 3);
    assert_eq!(
        (d["above_who_lden"].as_bool(), d["above_who_lnight"].as_bool()),
        (Some(true), Some(true))
    );

    // Ranking: a second device 10 dB quieter on the same place.
    app.write(&noise_day("noise-2", -10.0)).await;
    let r = app
        .get_json("/api/v1/indicators/noise/ranking?by=lden&from=2026-01-02&to=2026-01-02")
        .await;
    let ids: Vec<&str> =
        r["devices"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["noise-1", "noise-2"]);
    assert!((r["devices"][0]["level"].as_f64().unwrap() - lden).abs() < 1e-9);
    assert!((r["devices"][1]["level"].as_f64().unwrap() - (lden - 10.0)).abs() < 1e-9);
    assert_eq!(r["places"][0]["id"], "hotel-de-ville");
    let r = app
        .get_json(
            "/api/v1/indicators/noise/ranking?by=lnight&from=2026-01-02&to=2026-01-02&limit=1",
        )
        .await;
    assert!((r["devices"][0]["level"].as_f64().unwrap() - (50.0 + delta)).abs() < 1e-9);
    assert_eq!(r["devices"].as_array().unwrap().len(), 1);
    // With the EU's periods (7–19, 19–23, 23–7) the day is cut otherwise; bad periods are named.
    let r = app
        .get("/api/v1/indicators/noise?device=noise-1&periods=18,6,22")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Local midnight in Paris of a day of July 2026 (UTC+2), as epoch seconds.
fn july(day: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 7, day)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
        - 7200
}

#[tokio::test]
async fn heat_days_canicule_and_the_heat_index_of_the_hottest_hour() {
    let app = TestApp::spawn().await;
    // Daily (min, max) for 1–5 July; the 4th has 10 hours only. Minimum at 5 h, maximum at 15 h.
    let days: [(u32, f64, f64, usize); 5] = [
        (1, 22.0, 34.0, 24),
        (2, 25.0, 36.0, 24),
        (3, 25.0, 37.777_777_777_777_78, 24),
        (4, 26.0, 38.0, 10),
        (5, 25.0, 36.0, 24),
    ];
    let mut body = String::new();
    for (day, min, max, hours) in days {
        for h in 0..hours {
            let shape = match h {
                0..=5 => 0.2 - 0.04 * h as f64,
                6..=15 => 0.1 * (h - 5) as f64,
                _ => 1.0 - 0.1 * (h - 15) as f64,
            };
            let t = min + (max - min) * shape;
            // 40 % at the hottest hour, a little drier otherwise (varied: never "stuck").
            let rh = if h == 15 { 40.0 } else { 38.0 + (h % 2) as f64 };
            let at = july(day) + h as i64 * 3600 + 1200;
            body.push_str(&format!("weather,device=wx-1,site=hotel-de-ville temperature={t},relative_humidity={rh} {at}\n"));
        }
    }
    app.write(&body).await;
    let r = app
        .get_json("/api/v1/indicators/heat?site=hotel-de-ville&from=2026-07-01&to=2026-07-05")
        .await;
    let d = r["days"].as_array().unwrap();
    assert_eq!(d.len(), 5, "{r}");
    let f = |i: usize, k: &str| d[i][k].as_f64();
    assert_eq!((f(0, "t_min"), f(0, "t_max")), (Some(22.0), Some(34.0)));
    // The first two days lack the days before them: no running mean, no verdict.
    assert_eq!(d[0]["status"]["canicule"], Value::Null);
    assert_eq!(d[1]["status"]["canicule"], Value::Null);
    // 3 July: means (22+25+25)/3 = 24 and (34+36+37.78)/3 = 35.93: both thresholds reached.
    assert_eq!(d[2]["status"]["canicule"], true);
    assert!(
        (d[2]["status"]["ibm_max"].as_f64().unwrap() - (34.0 + 36.0 + 37.777_777_777_777_78) / 3.0)
            .abs()
            < 1e-9
    );
    // 4 July: 10 hours, under 75 %: no extremes, and the running means that need it are absent.
    assert_eq!((f(3, "t_min"), d[3]["hours"].as_u64()), (None, Some(10)));
    assert_eq!(d[3]["status"]["canicule"], Value::Null);
    assert_eq!(d[4]["status"]["canicule"], Value::Null);
    assert_eq!(d[1]["status"]["tropical_night"], true);
    // The hottest hour of 3 July: 100 °F at 40 %: the NWS calculator says 109.3 °F (42.94 °C).
    let hi = f(2, "heat_index_max").unwrap() * 9.0 / 5.0 + 32.0;
    assert!((hi - 109.3).abs() <= 0.05, "{hi} °F");
    // Humidex of that hour, by Environment Canada's formula with Bolton's dew point, in the test.
    let (t, rh) = (37.777_777_777_777_78f64, 40.0f64);
    let e = rh / 100.0 * 6.112 * (17.67 * t / (t + 243.5)).exp();
    let td = 243.5 * (e / 6.112).ln() / (17.67 - (e / 6.112).ln());
    let humidex =
        t + 0.5555 * (6.11 * (5417.7530 * (1.0 / 273.16 - 1.0 / (td + 273.15))).exp() - 10.0);
    assert!((f(2, "humidex_max").unwrap() - humidex).abs() < 1e-9);
    // A 20-year span is refused, named.
    let r = app
        .get("/api/v1/indicators/heat?site=hotel-de-ville&from=2006-01-01&to=2026-01-01")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_heat_island_map_cross_validates_like_pykrige() {
    let app = TestApp::spawn().await;
    // The 20 points of PyKrige's fixture (metres), placed around Aix's town hall.
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../agora-indicators/tests/fixtures/kriging/fixture.json"
    ))
    .unwrap();
    let (lat0, lon0) = (43.5299f64, 5.4474f64);
    let k = 6_371_008.8 * std::f64::consts::PI / 180.0;
    let points = fixture["points"].as_array().unwrap();
    let t = 1_767_225_600i64;
    let mut body = String::new();
    for (i, p) in points.iter().enumerate() {
        let (x, y) = (p["x"].as_f64().unwrap() - 1000.0, p["y"].as_f64().unwrap() - 1000.0);
        let device = json!({"id": format!("wx-{i}"), "kind": "weather", "commune": "13001",
            "lat": lat0 + y / k, "lon": lon0 + x / (k * lat0.to_radians().cos())});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&device).send().await.unwrap();
        assert_eq!(r.status(), 201);
        body.push_str(&format!("weather,device=wx-{i} temperature={} {t}\n", p["value"]));
    }
    app.write(&body).await;
    let r = app
        .get(&format!(
            "/api/v1/indicators/heat-map?commune=13001&from={}&to={}&cells=400",
            t - 60,
            t + 60
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let m: Value = r.json().await.unwrap();
    let props = &m["properties"];
    assert_eq!(props["sensors"].as_array().unwrap().len(), 20);
    let cv = props["cross_validation"].as_array().unwrap();
    assert_eq!(cv.len(), 4, "IDW and three variogram models");
    // PyKrige's leave-one-out figures on the same points (the placement on the sphere moves
    // distances by less than 1e-4): IDW 0.6014, spherical kriging 0.4461, the best.
    let idw = cv.iter().find(|a| a["method"] == "idw").unwrap();
    assert!(
        (idw["rmse"].as_f64().unwrap() - fixture["idw_loo"]["rmse"].as_f64().unwrap()).abs() < 1e-3,
        "{idw}"
    );
    assert_eq!(props["method"]["method"], "kriging");
    assert!(
        (props["method"]["rmse"].as_f64().unwrap() - 0.4461).abs() < 2e-3,
        "{}",
        props["method"]
    );
    let cells = m["features"].as_array().unwrap();
    assert!((380..=420).contains(&cells.len()), "{} cells", cells.len());
    assert!(
        cells.iter().all(|c| c["properties"]["value"].as_f64().is_some()
            && c["properties"]["se"].as_f64().is_some())
    );
    // The legend spans the cells' values; the box holds every sensor.
    let values: Vec<f64> =
        cells.iter().map(|c| c["properties"]["value"].as_f64().unwrap()).collect();
    let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert_eq!(props["legend"]["min"], lo);
    assert_eq!(props["legend"]["max"], hi);
    assert_eq!(props["legend"]["stops"][0]["colour"], "#313695");
    assert_eq!(props["legend"]["stops"][5]["colour"], "#a50026");
    let bbox: Vec<f64> =
        m["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for s in props["sensors"].as_array().unwrap() {
        let (lon, lat) = (s["lon"].as_f64().unwrap(), s["lat"].as_f64().unwrap());
        assert!(
            bbox[0] < lon && lon < bbox[2] && bbox[1] < lat && lat < bbox[3],
            "{s} in {bbox:?}"
        );
    }
    // The same map as a PNG overlay: one pixel per cell, north up, described in a header.
    let r = app
        .get(&format!(
            "/api/v1/indicators/heat-map?commune=13001&from={}&to={}&cells=400&format=png",
            t - 60,
            t + 60
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let about: Value = serde_json::from_str(r.headers()["x-agora-map"].to_str().unwrap()).unwrap();
    assert_eq!(about["bbox"], m["bbox"]);
    assert_eq!(about["legend"], props["legend"]);
    assert_eq!(about["method"], props["method"]);
    let png = r.bytes().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let (nx, ny) = (props["grid"]["nx"].as_u64().unwrap(), props["grid"]["ny"].as_u64().unwrap());
    let be = |at: usize| u64::from(u32::from_be_bytes(png[at..at + 4].try_into().unwrap()));
    assert_eq!((be(16), be(20)), (nx, ny), "IHDR width and height");
    // Inflate the pixels: the hottest cell is drawn in the scale's last colour, the coolest in its
    // first; rows run from the north (the features from the south-west, row by row).
    let idat_len = be(33) as usize;
    assert_eq!(&png[37..41], b"IDAT");
    let mut raw = Vec::new();
    use std::io::Read;
    flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]).read_to_end(&mut raw).unwrap();
    let row = 1 + 4 * nx as usize;
    assert_eq!(raw.len(), row * ny as usize);
    let pixel = |k: usize| {
        let (i, j) = (k % nx as usize, k / nx as usize);
        let y = ny as usize - 1 - j;
        raw[y * row + 1 + 4 * i..y * row + 4 + 4 * i].to_vec()
    };
    let hottest = values.iter().position(|v| *v == hi).unwrap();
    let coolest = values.iter().position(|v| *v == lo).unwrap();
    assert_eq!(pixel(hottest), [0xa5, 0x00, 0x26]);
    assert_eq!(pixel(coolest), [0x31, 0x36, 0x95]);
    // The night of 31 December (22 h to 6 h in Paris) holds the same readings (1 h in Paris).
    let n =
        app.get_json("/api/v1/indicators/heat-map?commune=13001&night=2025-12-31&cells=400").await;
    assert_eq!(n["properties"]["legend"], props["legend"]);
    assert_eq!(n["properties"]["from"], "2025-12-31T21:00:00Z");
    assert_eq!(n["properties"]["to"], "2026-01-01T05:00:00Z");
    // Bad requests are named.
    let r = app
        .get("/api/v1/indicators/heat-map?commune=13001&night=2025-12-31&from=2025-12-30T00:00:00Z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app.get("/api/v1/indicators/heat-map?commune=13001&format=tiff").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r =
        app.get("/api/v1/indicators/heat-map?commune=13001&cells=100000000").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = app.get("/api/v1/indicators/heat-map?site=hotel-de-ville").send().await.unwrap();
    assert_eq!(r.status(), 400, "no sensor there");
}

#[tokio::test]
async fn a_synthetic_year_gives_the_regulatory_counts_it_was_built_with() {
    use chrono::{Datelike, Timelike};
    let app = TestApp::spawn().await;
    let tz = chrono_tz::Europe::Paris;
    let start = 1_735_686_000i64; // 2025-01-01T00:00 in Paris
    let (mut pm10, mut no2) = (Vec::new(), Vec::new());
    let mut lines = Vec::new();
    for i in 0..8760i64 {
        let t = start + i * 3600;
        let local = chrono::DateTime::from_timestamp(t, 0).unwrap().with_timezone(&tz);
        let (doy, hour) = (local.ordinal0() as i64, local.hour() as i64);
        let wobble = (i % 3) as f64 * 0.5 - 0.5; // never the same reading twice in a row
        // PM10: 60 every tenth day, else 30; days 100–109 not measured.
        if !(100..=109).contains(&doy) {
            let v = if doy % 10 == 0 { 60.0 } else { 30.0 } + wobble;
            pm10.push(v);
            lines.push(format!("air_quality,device=aq-y,site=hotel-de-ville pm10={v} {t}"));
        }
        // O3: 130 from 10 to 18 h on days 180–189, 190 from 13 to 16 h on day 185, else 80.
        let o3 = if doy == 185 && (13..=15).contains(&hour) {
            190.0
        } else if (180..=189).contains(&doy) && (10..=17).contains(&hour) {
            130.0
        } else {
            80.0
        } + wobble;
        lines.push(format!("air_quality,device=aq-y,site=hotel-de-ville o3={o3} {t}"));
        // NO2: January to March only, 250 for five hours of day 5.
        if doy < 90 {
            let v = if doy == 5 && (10..=14).contains(&hour) { 250.0 } else { 45.0 } + wobble;
            no2.push(v);
            lines.push(format!("air_quality,device=aq-y,site=hotel-de-ville no2={v} {t}"));
        }
    }
    for chunk in lines.chunks(5000) {
        app.write(&chunk.join("\n")).await;
    }
    let r = app.get_json("/api/v1/indicators/air-statistics?site=hotel-de-ville&year=2025").await;
    let sensors = r["sensors"].as_array().unwrap();
    let find = |p: &str, name: &str, threshold: f64, source_has: &str| -> Value {
        let s = sensors.iter().find(|s| s["pollutant"] == p).unwrap_or_else(|| panic!("{p}: {r}"));
        s["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| {
                x["name"] == name
                    && x["threshold"] == threshold
                    && x["source"].as_str().unwrap().contains(source_has)
            })
            .cloned()
            .unwrap_or_else(|| panic!("{p} {name} {threshold}: {s}"))
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // PM10: 37 tenth days, one of them (day 100) not measured: 36 days above 50 (35 allowed).
    let d = find("pm10", "days_daily_mean_above", 50.0, "2008/50");
    assert_eq!(
        (d["value"].as_f64(), d["allowed"].as_u64(), d["exceeded"].as_bool()),
        (Some(36.0), Some(35), Some(true))
    );
    let m = find("pm10", "annual_mean", 40.0, "2008/50");
    assert!((m["value"].as_f64().unwrap() - mean(&pm10)).abs() < 1e-9);
    assert_eq!(m["exceeded"], false);
    assert_eq!(find("pm10", "annual_mean", 15.0, "WHO")["exceeded"], true);
    // O3: ten days whose best 8 hours average 130; three hours at 190.
    assert_eq!(find("o3", "days_max_8h_mean_above", 120.0, "2008/50")["value"], 10.0);
    assert_eq!(find("o3", "days_max_8h_mean_above", 120.0, "2008/50")["exceeded"], false);
    assert_eq!(find("o3", "hours_above", 180.0, "arrêté")["value"], 3.0);
    assert_eq!(find("o3", "hours_above", 240.0, "arrêté")["value"], 0.0);
    // NO2: five hours above 200 (18 allowed), measured a quarter of the year: flagged.
    assert_eq!(find("no2", "hours_above", 200.0, "2008/50")["value"], 5.0);
    let no2_sensor = sensors.iter().find(|s| s["pollutant"] == "no2").unwrap();
    assert_eq!(no2_sensor["coverage_ok"], false);
    assert_eq!(
        (no2_sensor["hours"].as_u64(), no2_sensor["of"].as_u64()),
        (Some(no2.len() as u64), Some(8760))
    );
    assert!(
        (find("no2", "annual_mean", 40.0, "2008/50")["value"].as_f64().unwrap() - mean(&no2)).abs()
            < 1e-9
    );
    let pm_sensor = sensors.iter().find(|s| s["pollutant"] == "pm10").unwrap();
    assert_eq!(pm_sensor["coverage_ok"], true);
    // A future year is refused, named.
    let r = app
        .get("/api/v1/indicators/air-statistics?site=hotel-de-ville&year=2999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn heat_island_intensity_against_the_coolest_place_and_a_reference_device() {
    let app = TestApp::spawn().await;
    for (id, name) in [("place-a", "Place A"), ("place-c", "Place C")] {
        let site = json!({"id": id, "commune": "13001", "name": name, "lat": 43.53, "lon": 5.45});
        let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    // A day of hourly temperatures from midnight in Paris: place A is 2.5 °C warmer than place C
    // at night (22–6 h) and 1 °C by day; the town hall 1 °C warmer all day.
    let mut body = String::new();
    for h in 0..24i64 {
        let base = 10.0 + (h % 5) as f64 * 0.3;
        let night = !(6..22).contains(&h);
        let t = DAY2 + h * 3600 + 600;
        for (dev, site, v) in [
            ("wx-a", "place-a", base + if night { 2.0 } else { 0.5 }),
            ("wx-b", "hotel-de-ville", base + 0.5),
            ("wx-c", "place-c", base - 0.5),
        ] {
            body.push_str(&format!("weather,device={dev},site={site} temperature={v} {t}\n"));
        }
    }
    app.write(&body).await;
    let q = format!("from={DAY2}&to={}", DAY2 + 86_400);
    let r = app.get_json(&format!("/api/v1/indicators/heat-island?commune=13001&{q}")).await;
    assert_eq!(r["reference"], "site place-c (the coolest)");
    let p = r["places"].as_array().unwrap();
    let ids: Vec<&str> = p.iter().map(|x| x["site"].as_str().unwrap()).collect();
    assert_eq!(ids, ["place-a", "hotel-de-ville", "place-c"]);
    let f = |i: usize, k: &str| p[i][k].as_f64().unwrap();
    assert!((f(0, "night_mean") - 2.5).abs() < 1e-9);
    assert!((f(0, "mean") - (8.0 * 2.5 + 16.0 * 1.0) / 24.0).abs() < 1e-9);
    assert!((f(0, "max") - 2.5).abs() < 1e-9);
    assert!((f(1, "night_mean") - 1.0).abs() < 1e-9);
    assert_eq!(p[0]["hours"], 24);
    // Against the town hall's station instead.
    let r = app
        .get_json(&format!("/api/v1/indicators/heat-island?commune=13001&reference=wx-b&{q}"))
        .await;
    assert_eq!(r["reference"], "device wx-b");
    assert!((r["places"][0]["night_mean"].as_f64().unwrap() - 1.5).abs() < 1e-9);
    let r = app
        .get("/api/v1/indicators/heat-island?commune=13001&reference=nope")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
