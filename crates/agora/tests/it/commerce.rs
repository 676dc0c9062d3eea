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

/// The declared side of the observatory, on counts built so that every answer is known. Three
/// places count, per local hour h of a day of weekday w (Monday 0), m × (10 + w) × (h − 7)
/// passers-by from 08:00 to 19:00 and zero at night: m = 2 at place B, 3 at place C, and at the
/// Hôtel de Ville 4 until it is made pedestrian on 1 June 2026, then 5 (+25 %). A fête doubles
/// the Hôtel de Ville's count from 10 to 12 July 2026. Today is Monday 30 November 2026, 15:30.
#[tokio::test]
async fn declared_interventions_events_profiles_and_ranking() {
    use agora_model::{MockClock, Timestamp};
    use chrono::TimeZone;
    let paris = chrono_tz::Europe::Paris;
    let clock = MockClock::new(Timestamp::parse_rfc3339("2026-11-30T15:30:00+01:00").unwrap());
    let app = TestApp::spawn_at(clock, |_| {}).await;
    for (id, name) in [("place-b", "Place B"), ("place-c", "Place C")] {
        let p = json!({"id": id, "commune": "13001", "name": name, "lat": 43.53, "lon": 5.45});
        let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&p).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    for (id, site) in [("ped-a", "hotel-de-ville"), ("ped-b", "place-b"), ("ped-c", "place-c")] {
        let d = json!({"id": id, "kind": "pedestrian_counter", "site": site, "commune": "13001"});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert!(r.status().is_success());
    }
    // A second counter at place B's entrance (not adding to the place), blocked today from 10:00.
    let d = json!({"id": "ped-d", "kind": "pedestrian_counter", "site": "place-b", "commune": "13001",
        "metadata": {"adds_to_place": false}});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert!(r.status().is_success());
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let (start, today) = (day("2026-06-01"), day("2026-11-30"));
    let fete = day("2026-07-10")..=day("2026-07-12");
    let count = |m: i64, d: NaiveDate, h: u32| {
        if (8..20).contains(&h) {
            m * (10 + i64::from(d.weekday().num_days_from_monday())) * (i64::from(h) - 7)
        } else {
            0
        }
    };
    let mut d = day("2024-12-01");
    let mut lines = String::new();
    while d <= today {
        for h in 0..24u32 {
            if d == today && h >= 15 {
                break;
            }
            let Some(t) = paris.from_local_datetime(&d.and_hms_opt(h, 0, 0).unwrap()).earliest()
            else {
                continue;
            };
            let t = t.timestamp();
            let hdv = if fete.contains(&d) {
                10
            } else if d >= start {
                5
            } else {
                4
            };
            for (dev, m) in [("ped-a", hdv), ("ped-b", 2), ("ped-c", 3), ("ped-d", 2)] {
                let blocked = dev == "ped-d" && d == today && h >= 10;
                let v = if blocked { 0 } else { count(m, d, h) };
                lines.push_str(&format!("pedestrian_counter,device={dev} people_in={v}i {t}\n"));
            }
        }
        if lines.len() > 4 << 20 {
            app.write(&lines).await;
            lines.clear();
        }
        d = d.succ_opt().unwrap();
    }
    app.write(&lines).await;
    let post =
        |path: &'static str, body: Value| app.post(path).bearer_auth(ADMIN).json(&body).send();

    // Events: the fête, and a weekly market; bad ones refused by name.
    let r = post(
        "/api/v1/commerce/events",
        json!({"kind": "event", "name": "Fête de la place", "site": "hotel-de-ville",
               "first_day": "2026-07-10", "last_day": "2026-07-12"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = post(
        "/api/v1/commerce/events",
        json!({"kind": "market", "name": "Marché", "commune": "13001",
               "first_day": "2026-01-01", "last_day": "2026-12-31", "weekdays": ["tue", "sat"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    for (bad, says) in [
        (
            json!({"kind": "market", "name": "M", "site": "place-b", "first_day": "2026-01-01"}),
            "weekdays",
        ),
        (
            json!({"kind": "market", "name": "M", "site": "place-b", "first_day": "2026-01-01", "weekdays": ["someday"]}),
            "someday",
        ),
        (
            json!({"kind": "fair", "name": "M", "site": "place-b", "first_day": "2026-01-01"}),
            "kind",
        ),
        (
            json!({"kind": "event", "name": " ", "site": "place-b", "first_day": "2026-01-01"}),
            "name is empty",
        ),
        (
            json!({"kind": "event", "name": "E", "site": "place-b", "first_day": "2026-01-05", "last_day": "2026-01-01"}),
            "before first_day",
        ),
    ] {
        let p =
            problem(post("/api/v1/commerce/events", bad).await.unwrap(), 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let r = post(
        "/api/v1/commerce/events",
        json!({"kind": "event", "name": "E", "site": "nowhere", "first_day": "2026-01-01"}),
    );
    problem(r.await.unwrap(), 404, "not_found").await;
    let ev =
        app.get_json("/api/v1/commerce/events?site=place-b&from=2026-07-11&to=2026-07-11").await;
    assert_eq!(ev.as_array().unwrap().len(), 1, "the market of the commune, not the fête: {ev}");

    // Comparisons pass over a public holiday among the 4 weeks (Armistice, Wednesday 11
    // November) for the Wednesday before, and say what the days compared were.
    let c = app.get_json("/api/v1/commerce/compare?site=hotel-de-ville&date=2026-11-18").await;
    assert_eq!(c["vs_4_weeks"]["skipped"], json!(["2026-11-11"]));
    assert_eq!(
        c["vs_4_weeks"]["reference_days"],
        json!(["2026-11-04", "2026-10-28", "2026-10-21", "2026-10-14"])
    );
    assert_eq!(c["vs_4_weeks"]["reference"], json!(5.0 * 12.0 * 78.0));
    assert_eq!(
        c["notes"],
        json!(["2026-11-11, la semaine dernière : jour férié (Armistice 1918)"])
    );
    let c = app
        .get_json("/api/v1/commerce/compare?site=hotel-de-ville&date=2026-11-18&exclude=none")
        .await;
    assert_eq!(c["vs_4_weeks"]["skipped"], json!([]));
    assert_eq!(c["vs_4_weeks"]["reference_days"][1], "2026-11-04");
    let c = app.get_json("/api/v1/commerce/compare?site=hotel-de-ville&date=2026-07-17").await;
    let notes = c["notes"].to_string();
    assert!(notes.contains("2026-07-10, la semaine dernière : vacances scolaires (Vacances d'été), événement (Fête de la place)"), "{notes}");
    assert_eq!(c["vs_4_weeks"]["skipped"], json!(["2026-07-10"]));
    let r = app
        .get("/api/v1/commerce/compare?site=hotel-de-ville&exclude=weather")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;

    // Interventions: refused when the controls hold the place or repeat, or it starts tomorrow.
    for (bad, says) in [
        (
            json!({"site": "hotel-de-ville", "name": "P", "start_day": "2026-06-01", "controls": ["hotel-de-ville"]}),
            "treated place",
        ),
        (
            json!({"site": "hotel-de-ville", "name": "P", "start_day": "2026-06-01", "controls": ["place-b", "place-b"]}),
            "twice",
        ),
        (
            json!({"site": "hotel-de-ville", "name": "P", "start_day": "2026-12-01", "controls": ["place-b"]}),
            "in the future",
        ),
    ] {
        let p =
            problem(post("/api/v1/commerce/interventions", bad).await.unwrap(), 400, "bad_request")
                .await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let r = post(
        "/api/v1/commerce/interventions",
        json!({"site": "hotel-de-ville", "name": "Piétonnisation de la rue <X>", "description": "Rue fermée aux voitures",
               "start_day": "2026-06-01", "controls": ["place-b", "place-c"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let with_controls = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = post(
        "/api/v1/commerce/interventions",
        json!({"site": "hotel-de-ville", "name": "Sans témoin", "start_day": "2026-06-01"}),
    )
    .await
    .unwrap();
    let alone = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // The study against controls: 5/5 after against 4/5 before, exactly +25 %; the fête's three
    // days are left out (counted in, the estimate would be above 25 %).
    let s = app.get_json(&format!("/api/v1/commerce/interventions/{with_controls}/study")).await;
    assert_eq!(s["design"], "controls");
    let e = &s["effect"];
    assert!((e["change_pct"].as_f64().unwrap() - 25.0).abs() < 1e-9, "{e}");
    assert_eq!(e["parallel_before"], true);
    let excluded: Vec<&Value> =
        s["days"].as_array().unwrap().iter().filter(|d| !d["excluded"].is_null()).collect();
    assert_eq!(excluded.len(), 3, "{excluded:?}");
    assert_eq!(excluded[0]["date"], "2026-07-10");
    assert!(excluded[0]["excluded"].as_str().unwrap().contains("Fête de la place"));
    // 182 days after, to yesterday (29 November): 182 days, less the fête's 3.
    assert_eq!(e["days_after"], 179);
    // Without controls: the place against itself 52 weeks before, labelled weaker; public
    // holidays that moved (Easter, Ascension…) are left out.
    let s = app.get_json(&format!("/api/v1/commerce/interventions/{alone}/study")).await;
    assert_eq!(s["design"], "last_year");
    assert!((s["effect"]["change_pct"].as_f64().unwrap() - 25.0).abs() < 1e-9, "{}", s["effect"]);
    assert!(s["caveats"][0].as_str().unwrap().contains("preuve plus faible"));
    let moved = s["days"].as_array().unwrap().iter().find(|d| d["date"] == "2026-04-06").unwrap();
    assert!(moved["excluded"].as_str().unwrap().contains("Lundi de Pâques"), "{moved}");
    // The days as CSV, the report as a page (escaped).
    let csv = app
        .get(&format!("/api/v1/commerce/interventions/{with_controls}/study?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("date,treated,reference,counterfactual,excluded\n2025-12-01,"),
        "{csv}"
    );
    assert!(csv.contains("\n2026-07-10,"), "excluded days are listed, marked");
    let html = app
        .get(&format!("/api/v1/commerce/interventions/{with_controls}/study?format=html"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Piétonnisation de la rue &lt;X&gt;") && !html.contains("<X>"));
    assert!(html.contains("+25,0 %") && html.contains("une hausse de la fréquentation"), "{html}");
    // A study of a place without data before its start is refused.
    let r = app
        .get("/api/v1/commerce/impact?site=place-b&start=2024-11-01")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("no footfall before"), "{p}");

    // The profile of today at the Hôtel de Ville, against the 4 weeks before.
    let p = app.get_json("/api/v1/commerce/profile?site=hotel-de-ville&weeks=4").await;
    assert_eq!((p["from"].as_str(), p["to"].as_str()), (Some("2026-11-02"), Some("2026-11-29")));
    // Monday 10:00: 5 × 10 × 3 = 150 on every Monday of the 4 weeks.
    assert_eq!(p["heat_map"][0][10], json!({"mean": 150.0, "hours": 4, "missing": 0}));
    // Wednesday 11 November (Armistice) is left out: three Wednesdays, 5 × 12 × 4 = 240.
    assert_eq!(p["heat_map"][2][11], json!({"mean": 240.0, "hours": 3, "missing": 0}));
    let t10 = &p["typical"][10];
    assert_eq!(
        (t10["median"].as_f64(), t10["p10"].as_f64(), t10["days"].as_u64()),
        (Some(150.0), Some(150.0), Some(4))
    );
    // Today so far: the complete hours (to 15:00), 5 × 10 × (1 + … + 7) = 1,400, as usual.
    assert_eq!(p["so_far"], json!(1400.0));
    assert_eq!(p["usual_so_far"], json!(1400.0));
    assert_eq!(p["today"][15], Value::Null, "the hour under way has no count yet");
    assert_eq!(p["school_holiday"], Value::Null);
    let p =
        app.get_json("/api/v1/commerce/profile?site=hotel-de-ville&date=2026-07-11&weeks=2").await;
    assert_eq!(p["events"], json!(["Marché", "Fête de la place"]));
    assert_eq!(p["school_holiday"], "Vacances d'été");

    // The ranking of the last week against the same week 52 weeks before.
    let r = app.get_json("/api/v1/commerce/ranking").await;
    assert_eq!((r["from"].as_str(), r["to"].as_str()), (Some("2026-11-23"), Some("2026-11-29")));
    let places: Vec<(&str, f64, f64)> = r["places"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["site"].as_str().unwrap(),
                x["per_day"].as_f64().unwrap(),
                x["index"].as_f64().unwrap(),
            )
        })
        .collect();
    // m × 78 (the hours' weights) × 13 (the weekdays' mean).
    assert_eq!(
        places,
        vec![
            ("hotel-de-ville", 5070.0, 125.0),
            ("place-c", 3042.0, 100.0),
            ("place-b", 2028.0, 100.0)
        ]
    );

    // Counter health: the blocked counter, zero from 10:00 to 14:00 (the hours over) where a
    // Monday counts 2 × 10 × (3 + … + 7) = 500, and 60 of its usual 560 since midnight.
    let h = app.get_json("/api/v1/commerce/counters?site=place-b").await;
    assert_eq!(h["counters"][0]["device"], "ped-d");
    assert_eq!(
        h["counters"][0]["problems"],
        json!([{"problem": "zeros", "from_hour": 10, "to_hour": 14, "usual": 500.0},
               {"problem": "far_below", "counted": 60.0, "usual": 560.0, "hours": 15}])
    );
    assert_eq!(h["counters"][1]["device"], "ped-b");
    assert_eq!(h["counters"][1]["problems"], json!([]));
    let h = app.get_json("/api/v1/commerce/counters?site=place-b&date=2026-11-29").await;
    assert!(h["counters"].as_array().unwrap().iter().all(|c| c["problems"] == json!([])), "{h}");
    let r = app.get("/api/v1/commerce/counters").send().await.unwrap();
    problem(r, 401, "unauthorized").await;

    // The index over time, one line per place: weeks of November 2026 against October 2026.
    // Place C counts the same each week (index 100 in any week); the Hôtel de Ville too.
    let i = app
        .get_json("/api/v1/commerce/index?from=2026-11-02&to=2026-11-29&ref_from=2026-10-05&ref_to=2026-11-01")
        .await;
    let c = i["places"].as_array().unwrap().iter().find(|p| p["site"] == "place-c").unwrap();
    assert_eq!(c["reference_per_day"], json!(3042.0));
    let weeks: Vec<(&str, f64)> = c["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["start"].as_str().unwrap(), b["index"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        weeks,
        vec![
            ("2026-11-02", 100.0),
            ("2026-11-09", 100.0),
            ("2026-11-16", 100.0),
            ("2026-11-23", 100.0)
        ]
    );
    // Before the Hôtel de Ville was made pedestrian, its index against the months after: 80.
    let i = app
        .get_json("/api/v1/commerce/index?from=2026-05-04&to=2026-05-31&every=1mo&ref_from=2026-06-01&ref_to=2026-06-28")
        .await;
    let h = i["places"].as_array().unwrap().iter().find(|p| p["site"] == "hotel-de-ville").unwrap();
    assert_eq!(h["buckets"], json!([{"start": "2026-05-01", "index": 80.0, "days": 28}]));
    let r = app.get("/api/v1/commerce/index?every=15m").send().await.unwrap();
    problem(r, 400, "bad_request").await;

    // The public sees hours at the finest.
    let r = app
        .get(
            "/api/v1/commerce/footfall?site=hotel-de-ville&every=15m&from=2026-11-29&to=2026-11-29",
        )
        .send()
        .await
        .unwrap();
    problem(r, 403, "forbidden").await;
    let r = app
        .get("/api/v1/commerce/footfall?site=hotel-de-ville&every=1h&from=2026-11-29&to=2026-11-29")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // School holidays: zone B ships; a bad calendar is refused whole, a good one replaces it.
    let c = app.get_json("/api/v1/commerce/school-holidays").await;
    assert_eq!(c["name"], "zone B");
    let put = |body: &'static str| {
        app.client
            .put(format!("http://{}/api/v1/commerce/school-holidays?name=zone%20A", app.addr))
            .bearer_auth(ADMIN)
            .body(body)
            .send()
    };
    let p = problem(
        put("name,first_day,last_day\nNoël,2026-12-19,2026-13-03\n").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("line 2: last_day `2026-13-03`"), "{p}");
    assert_eq!(app.get_json("/api/v1/commerce/school-holidays").await["name"], "zone B");
    let r =
        put("name,first_day,last_day\nVacances d'automne,2026-11-28,2026-12-06\n").await.unwrap();
    assert_eq!(r.status(), 200);
    let p = app.get_json("/api/v1/commerce/profile?site=hotel-de-ville&weeks=1").await;
    assert_eq!(p["school_holiday"], "Vacances d'automne");
    let r = app
        .client
        .delete(format!("http://{}/api/v1/commerce/school-holidays", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get_json("/api/v1/commerce/school-holidays").await["name"], "zone B");

    // Removing declarations.
    let r = app
        .client
        .delete(format!("http://{}/api/v1/commerce/interventions/{alone}", app.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let list = app.get_json("/api/v1/commerce/interventions").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}
