//! Footfall compared, on counts built so that every answer is known: each counter counts, on a
//! day of weekday w (Monday 0), 100 + 10·w passers-by in and as many out, plus 50 a day in 2026;
//! a place is the sum of its two counters (a third, marked as not adding, is left out); one
//! counter is down for a day.

use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

fn count(d: NaiveDate) -> i64 {
    100 + 10 * i64::from(d.weekday().num_days_from_monday()) + if d.year() == 2026 { 50 } else { 0 }
}

#[tokio::test]
async fn a_days_footfall_against_its_weekdays_and_last_year() {
    let app = TestApp::spawn().await;
    for (id, adds) in [("ped-1", true), ("ped-2", true), ("ped-3", false)] {
        let d = json!({"id": id, "kind": "pedestrian_counter", "site": "hotel-de-ville",
            "commune": "13001", "metadata": {"adds_to_place": adds}});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let down = NaiveDate::from_ymd_opt(2026, 11, 7).unwrap();
    let mut lines = String::new();
    let mut d = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    while d <= NaiveDate::from_ymd_opt(2026, 11, 14).unwrap() {
        // 10:00 and 11:00 UTC: within the Paris day, summer and winter.
        let noon = d.and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp();
        for dev in ["ped-1", "ped-2", "ped-3"] {
            if dev == "ped-2" && d == down {
                continue;
            }
            let v = if dev == "ped-3" { 1000 } else { count(d) };
            lines.push_str(&format!("pedestrian_counter,device={dev} people_in={v}i {noon}\n"));
            lines.push_str(&format!(
                "pedestrian_counter,device={dev} people_out={v}i {}\n",
                noon + 3600
            ));
        }
        d = d.succ_opt().unwrap();
    }
    app.write(&lines).await;

    let sat = NaiveDate::from_ymd_opt(2026, 11, 14).unwrap();
    let c = app.get_json("/api/v1/commerce/compare?site=hotel-de-ville&date=2026-11-14").await;
    assert_eq!(c["counters"], json!(["ped-1", "ped-2"]), "ped-3 does not add to its place");
    assert_eq!(c["weekday"], "saturday");
    let place = |d: NaiveDate| json!((4 * count(d)) as f64);
    // The Saturday: 2 counters × (200 in + 200 out).
    assert_eq!(c["vs_last_week"]["value"], place(sat));
    // A week before, ped-2 was down: no reference, and the day said.
    assert_eq!(c["vs_last_week"]["reference"], Value::Null);
    assert_eq!(c["vs_last_week"]["missing"], json!(["2026-11-07"]));
    assert_eq!(c["missing"]["2026-11-07"], json!(["ped-2"]));
    // The 4 Saturdays before: the 3 that have data, each as this one.
    assert_eq!(c["vs_4_weeks"]["reference"], place(sat));
    assert_eq!(c["vs_4_weeks"]["reference_days"].as_array().unwrap().len(), 3);
    // 364 days before: Saturday 15 November 2025, 150 a counter and way.
    assert_eq!(c["vs_last_year"]["reference_days"], json!(["2025-11-15"]));
    assert_eq!(c["vs_last_year"]["reference"], json!(600.0));
    let pct = c["vs_last_year"]["change_pct"].as_f64().unwrap();
    assert!((pct - 100.0 / 3.0).abs() < 1e-9, "{pct}");
    // Monday 9 to Saturday 14 November against Monday 10 to Saturday 15 November 2025:
    // 4 × (6 × 150 + 10 × 15) = 4,200 against 4 × (6 × 100 + 150) = 3,000.
    assert_eq!(c["week_to_date"]["value"], json!(4200.0));
    assert_eq!(c["week_to_date"]["reference"], json!(3000.0));
    // November to date: 14 days, less the day ped-2 was down (and its day of 2025), each 200
    // above its aligned day.
    assert_eq!(c["month_to_date"]["difference"], json!(13.0 * 200.0));
    assert_eq!(c["month_to_date"]["missing"], json!(["2026-11-07"]));

    // The series: days (the day ped-2 was down has no count, and names it), weeks, months,
    // hours.
    let days = app
        .get_json("/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-11-01&to=2026-11-14")
        .await;
    let b = days["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 14);
    assert_eq!(b[6], json!({"start": "2026-11-07", "count": null, "missing": ["ped-2"]}));
    assert_eq!(b[13]["count"], place(sat));
    let weeks = app
        .get_json(
            "/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-11-02&to=2026-11-14&every=1w",
        )
        .await;
    let w = weeks["buckets"].as_array().unwrap();
    assert_eq!((w[0]["start"].as_str(), w[0]["count"].as_f64()), (Some("2026-11-02"), None));
    let week: i64 =
        (9..=14).map(|day| 4 * count(NaiveDate::from_ymd_opt(2026, 11, day).unwrap())).sum();
    assert_eq!(w[1]["count"], json!(week as f64));
    let months = app
        .get_json(
            "/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-10-01&to=2026-10-31&every=1mo",
        )
        .await;
    let october: i64 =
        (1..=31).map(|day| 4 * count(NaiveDate::from_ymd_opt(2026, 10, day).unwrap())).sum();
    assert_eq!(months["buckets"][0]["count"], json!(october as f64));
    let hours = app
        .get_json(
            "/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-11-14&to=2026-11-14&every=1h",
        )
        .await;
    let h = hours["buckets"].as_array().unwrap();
    assert_eq!(h.len(), 24);
    // 10:00 UTC is 11:00 in Paris: the two counters' ins.
    let at = |start: &str| h.iter().find(|x| x["start"] == start).unwrap().clone();
    assert_eq!(at("2026-11-14T11:00:00+01:00")["count"], json!((2 * count(sat)) as f64));
    assert_eq!(at("2026-11-14T03:00:00+01:00")["missing"], json!(["ped-1", "ped-2"]));
    let csv = app
        .get("/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-11-06&to=2026-11-07&format=csv")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv,
        format!(
            "start,count,missing\n2026-11-06,{},\n2026-11-07,,ped-2\n",
            4 * count(NaiveDate::from_ymd_opt(2026, 11, 6).unwrap())
        )
    );
    let r = app
        .get(
            "/api/v1/commerce/footfall?site=hotel-de-ville&from=2026-01-01&to=2026-11-14&every=15m",
        )
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;

    // One counter alone, one way; the calendar's holidays.
    let one =
        app.get_json("/api/v1/commerce/compare?device=ped-1&date=2026-07-14&direction=in").await;
    assert_eq!(one["holiday"], "Fête nationale");
    let tue = NaiveDate::from_ymd_opt(2026, 7, 14).unwrap();
    assert_eq!(one["vs_last_week"]["value"], json!(count(tue) as f64));

    // Bad input, named.
    let r = app
        .get("/api/v1/commerce/compare?site=hotel-de-ville&date=2030-01-01")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("in the future"), "{p}");
    let r = app
        .get("/api/v1/commerce/compare?site=hotel-de-ville&direction=sideways")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r =
        app.get("/api/v1/commerce/compare?site=nowhere").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 404, "not_found").await;
    let r = app
        .get("/api/v1/commerce/compare?site=hotel-de-ville&commune=13001")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
}

/// A place made pedestrian on 4 May 2026 with a planted +12 %, against a control place: both
/// share a weekly rhythm and the city's good and bad days; each has its own small noise.
#[tokio::test]
async fn an_impact_study_estimates_the_planted_effect() {
    let app = TestApp::spawn().await;
    let place =
        json!({"id": "place-b", "commune": "13001", "name": "Place B", "lat": 43.53, "lon": 5.45});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&place).send().await.unwrap();
    assert_eq!(r.status(), 201);
    for (id, site) in [("ped-a", "hotel-de-ville"), ("ped-b", "place-b")] {
        let d = json!({"id": id, "kind": "pedestrian_counter", "site": site, "commune": "13001"});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert!(r.status().is_success());
    }
    // Reproducible noise in [-1, 1).
    let noise = |k: u64| {
        let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let start = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
    let mut lines = String::new();
    let mut d = NaiveDate::from_ymd_opt(2025, 10, 1).unwrap();
    let mut i = 0u64;
    // The log ratios of the 182 days before and after, computed here from what is written.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    while d <= NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() {
        let weekday =
            [0.9, 0.85, 0.9, 0.95, 1.1, 1.5, 0.8][d.weekday().num_days_from_monday() as usize];
        let city = 1.0 + 0.15 * noise(i);
        let lift = if d >= start { 1.12 } else { 1.0 };
        let t = 4000.0 * weekday * city * (1.0 + 0.03 * noise(i + 100_000)) * lift;
        let c = 6000.0 * weekday * city * (1.0 + 0.03 * noise(i + 200_000));
        let at = d.and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp();
        let g = (t.round() / c.round()).ln();
        let days_from_start = (d - start).num_days();
        if (-182..0).contains(&days_from_start) {
            before.push(g);
        } else if (0..182).contains(&days_from_start) {
            after.push(g);
        }
        lines.push_str(&format!("pedestrian_counter,device=ped-a people_in={}i {at}\n", t.round()));
        lines.push_str(&format!("pedestrian_counter,device=ped-b people_in={}i {at}\n", c.round()));
        d = d.succ_opt().unwrap();
        i += 1;
    }
    app.write(&lines).await;
    let study = app
        .get_json("/api/v1/commerce/impact?site=hotel-de-ville&controls=place-b&start=2026-05-04&direction=in")
        .await;
    let e = &study["effect"];
    let (est, lo, hi) = (
        e["change_pct"].as_f64().unwrap(),
        e["interval_pct"][0].as_f64().unwrap(),
        e["interval_pct"][1].as_f64().unwrap(),
    );
    // The estimate is the difference in differences of what was written, computed apart.
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let expected = 100.0 * ((mean(&after) - mean(&before)).exp() - 1.0);
    assert!((est - expected).abs() < 1e-9, "{est} against {expected}");
    // Near the planted +12 % (this draw's noise puts it at 11.2 %: one study's interval holds
    // the truth 95 % of the time, measured in agora-indicators' tests), and clearly above 0.
    assert!((est - 12.0).abs() < 2.0 && lo > 5.0 && lo < est && est < hi, "{e}");
    assert_eq!(e["parallel_before"], true, "{e}");
    assert_eq!((e["days_before"].as_u64(), e["days_after"].as_u64()), (Some(182), Some(182)));
    // The counterfactual after the start is the treated count without the effect.
    let day = study["days"].as_array().unwrap().iter().find(|x| x["date"] == "2026-06-01").unwrap();
    let (t, cf) = (day["treated"].as_f64().unwrap(), day["counterfactual"].as_f64().unwrap());
    assert!((t / cf - (1.0 + est / 100.0)).abs() < 1e-9, "{day}");

    // Bad input, named.
    let ask = |q: &str| app.get(&format!("/api/v1/commerce/impact?{q}")).bearer_auth(ADMIN).send();
    let p = problem(
        ask("site=hotel-de-ville&controls=hotel-de-ville&start=2026-05-04").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("treated place"), "{p}");
    let p = problem(
        ask("site=hotel-de-ville&controls=place-b&start=2031-01-01").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("up to yesterday"), "{p}");
    let p = problem(
        ask("site=hotel-de-ville&controls=place-b&start=2025-10-10").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("days with data before"), "{p}");
    let r = ask("site=hotel-de-ville&controls=nowhere&start=2026-05-04").await.unwrap();
    problem(r, 404, "not_found").await;
}
