//! Open data through the API, on data built so that every answer is known: three days of
//! minute readings whose hourly means are whole numbers, a sound level meter alternating 60 and
//! 70 dB (energy mean 67.40 dB), a pedestrian counter counting one person a minute, and one
//! hour missing. The Explore API must answer what agora's own query API answers, refuse like the
//! real API, and show nothing that is not published.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// 2026-11-27T00:00:00Z: the first day.
const DAY0: i64 = 1_795_737_600;
const DAYS: i64 = 3;

async fn city() -> TestApp {
    use agora_model::{MockClock, Timestamp};
    // Noon on the fourth day: three whole days are complete and public.
    let now = Timestamp::from_secs(DAY0 + DAYS * 86_400 + 12 * 3600).unwrap();
    let app = TestApp::spawn_at(MockClock::new(now), |_| {}).await;
    for (id, kind) in [
        ("aq-1", "air_quality"),
        ("aq-2", "air_quality"),
        ("noise-1", "noise"),
        ("ped-1", "pedestrian_counter"),
    ] {
        let d = json!({"id": id, "kind": kind, "site": "hotel-de-ville", "commune": "13001",
                       "lat": 43.53, "lon": 5.447});
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut lines = String::new();
    for m in 0..DAYS * 24 * 60 {
        let t = DAY0 + m * 60;
        let hour = (m / 60) % 24;
        // In each hour: 10 + h on average (minute values h+10 ± 1, alternating).
        let wobble = if m % 2 == 0 { 1.0 } else { -1.0 };
        let pm = 10.0 + hour as f64 + wobble;
        lines.push_str(&format!("air_quality,device=aq-1 pm10={pm},battery=80 {t}\n"));
        // aq-2 reads twice aq-1, and misses the whole second hour of the first day.
        if !(60..120).contains(&m) {
            lines.push_str(&format!("air_quality,device=aq-2 pm10={} {t}\n", 2.0 * pm));
        }
        let laeq = if m % 2 == 0 { 60.0 } else { 70.0 };
        lines.push_str(&format!("noise,device=noise-1 laeq={laeq} {t}\n"));
        lines
            .push_str(&format!("pedestrian_counter,device=ped-1 people_in=1i,people_out=0i {t}\n"));
        if lines.len() > 1 << 20 {
            app.write(&lines).await;
            lines.clear();
        }
    }
    app.write(&lines).await;
    app
}

async fn define(app: &TestApp, d: Value) -> reqwest::Response {
    app.post("/api/v1/open-data/datasets").bearer_auth(ADMIN).json(&d).send().await.unwrap()
}

fn dataset(id: &str, theme: &str, resolution: &str, published: bool) -> Value {
    json!({"id": id, "kind": "measurements", "title": format!("Jeu {id}"),
           "description": "Pour les tests", "theme": theme, "resolution": resolution,
           "published": published, "keywords": ["test"]})
}

async fn explore(app: &TestApp, path: &str) -> (u16, Value) {
    // No credentials: what any reuser gets.
    let r = app.get(&format!("/api/explore/v2.1/catalog{path}")).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, body) = explore(app, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn the_explore_api_answers_as_the_query_api_and_the_real_api() {
    let app = city().await;
    for d in [
        dataset("air", "air", "hourly", true),
        dataset("bruit", "noise", "hourly", true),
        dataset("pietons", "footfall", "daily", true),
        dataset("brouillon", "air", "15min", false),
    ] {
        let r = define(&app, d).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    // Every hourly record equals the query API's hourly mean of the same device.
    let body = ok(&app, "/datasets/air/records?limit=100&where=device_id%3D%22aq-1%22").await;
    assert_eq!(body["total_count"], DAYS * 24);
    let from = DAY0;
    let to = DAY0 + DAYS * 86_400;
    let agg = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-1&property=pm10&every=1h&from={from}&to={to}"
        ))
        .await;
    let expected: Vec<f64> = agg["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    let mut got = Vec::new();
    for offset in [0, 100] {
        let page = ok(&app, &format!("/datasets/air/records?limit=100&offset={offset}&where=device_id='aq-1'&order_by=date")).await;
        got.extend(page["results"].as_array().unwrap().iter().map(|r| r["pm10"].as_f64().unwrap()));
    }
    assert_eq!(got, expected, "records are the query API's hourly means, to the bit");
    assert_eq!(got[..3], [10.0, 11.0, 12.0], "and the hand-worked means: 10 + hour");
    let first = &body["results"][0];
    assert_eq!(first["date"], "2026-11-27T00:00:00+00:00");
    assert_eq!(first["geo_point_2d"], json!({"lat": 43.53, "lon": 5.447}));
    assert_eq!(first["site_name"], "Hôtel de Ville");
    assert!(first.get("battery").is_none(), "device internals are never published: {first}");
    let text = app
        .get("/api/explore/v2.1/catalog/datasets/air/records?limit=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(at("total_count") < at("results"), "{text}");
    assert!(
        at("date") < at("device_id")
            && at("device_id") < at("site_id")
            && at("site_id") < at("pm10"),
        "fields in the dataset's order: {text}"
    );

    // The missing hour is no record, never a zero.
    let all = ok(&app, "/datasets/air/records?limit=0").await;
    assert_eq!(all["total_count"], 2 * DAYS * 24 - 1);
    let gap = ok(
        &app,
        "/datasets/air/records?where=device_id='aq-2' and date=date'2026-11-27T01:00:00Z'",
    )
    .await;
    assert_eq!(gap["total_count"], 0);

    // Aggregates, worked by hand: per device the mean of 10…33 is 21.5 (aq-2: twice that, its
    // missing hour 11 left out: (2·(21.5·24) − 22)/23 per first day).
    let g = ok(&app, "/datasets/air/records?select=device_id,avg(pm10) as mean,count(*) as n,min(pm10),max(pm10)&group_by=device_id&order_by=device_id").await;
    assert_eq!(g["total_count"], 2);
    let r = &g["results"];
    assert_eq!(
        r[0],
        json!({"device_id": "aq-1", "mean": 21.5, "n": 72, "min(pm10)": 10.0, "max(pm10)": 33.0})
    );
    let aq2 = (3.0 * 2.0 * 21.5 * 24.0 - 22.0) / 71.0;
    assert!((r[1]["mean"].as_f64().unwrap() - aq2).abs() < 1e-9, "{r}");
    assert_eq!(r[1]["n"], 71);
    let by_day = ok(&app, "/datasets/air/records?select=day(date) as d,count(*) as n&group_by=day(date) as d&order_by=d desc").await;
    assert_eq!(
        by_day["results"],
        json!([{"d": 29, "n": 48}, {"d": 28, "n": 48}, {"d": 27, "n": 47}])
    );
    let month = ok(&app, "/datasets/air/records?select=date_format(date, 'yyyy-MM') as m, sum(pm10) as s&group_by=date_format(date, 'yyyy-MM') as m").await;
    assert_eq!(month["results"][0]["m"], "2026-11");
    let total: f64 = 3.0 * 21.5 * 24.0 + 3.0 * 2.0 * 21.5 * 24.0 - 22.0;
    assert!((month["results"][0]["s"].as_f64().unwrap() - total).abs() < 1e-6);

    // Sound levels are energy means: 10·log10((10^6 + 10^7) / 2) = 67.4036 dB.
    let n = ok(&app, "/datasets/bruit/records?limit=1").await;
    let laeq = n["results"][0]["laeq"].as_f64().unwrap();
    assert!((laeq - 67.403_626_894_942_4).abs() < 1e-9, "{laeq}");
    // People are counted, not averaged: 1,440 a day, integers.
    let p = ok(&app, "/datasets/pietons/records?limit=5").await;
    // Local days of Paris: the 27th from 01:00 (23 hours of data), the 28th and the 29th; the
    // 30th has begun (its first hour is in the data) but is not complete, so not published.
    assert_eq!(p["total_count"], 3);
    assert_eq!(p["results"][0]["people_in"], 1380);
    assert_eq!(p["results"][1]["people_in"], 1440);
    assert_eq!(p["results"][1]["date"], "2026-11-28");

    // refine and exclude, as the real API takes them.
    let r = ok(&app, "/datasets/air/records?refine=date:2026/11/28&exclude=device_id:aq-2&limit=0")
        .await;
    assert_eq!(r["total_count"], 24);
    let f = ok(&app, "/datasets/air/facets?facet=device_id").await;
    assert_eq!(
        f["facets"][0]["facets"],
        json!([
        {"name": "aq-1", "value": "aq-1", "count": 72, "state": "displayed"},
        {"name": "aq-2", "value": "aq-2", "count": 71, "state": "displayed"}])
    );

    // One record by its id.
    let one = ok(&app, "/datasets/air/records/aq-2@2026-11-28T05:00:00Z").await;
    assert_eq!(one["pm10"], 30.0);
    assert_eq!(one["date"], "2026-11-28T05:00:00+00:00");
    let (s, e) = explore(&app, "/datasets/air/records/aq-2@2026-11-27T01:00:00Z").await;
    assert_eq!((s, e["error_code"].as_str()), (404, Some("NotFoundResource")));

    // The time zone of the answer.
    let paris = ok(&app, "/datasets/air/records?limit=1&timezone=Europe/Paris").await;
    assert_eq!(paris["results"][0]["date"], "2026-11-27T01:00:00+01:00");

    // Bad input gets the real API's kind of error.
    for (q, status, code, says) in [
        (
            "/datasets/air/records?limit=100000",
            400,
            "InvalidRESTParameterError",
            "Invalid value for limit API parameter: 100000 was found but -1 <= limit <= 100 is expected.",
        ),
        (
            "/datasets/air/records?limit=100&offset=9950",
            400,
            "InvalidRESTParameterError",
            "offset + limit must be at most 10000",
        ),
        (
            "/datasets/air/records?where=pm10%20%3E",
            400,
            "ODSQLSyntaxError",
            "ODSQL syntax exception: unexpected end of input at position 6 in pm10 >. Clause(s) containing the error(s): where.",
        ),
        (
            "/datasets/air/records?where=departement%3D13",
            400,
            "ODSQLError",
            "ODSQL query is malformed: Unknown field: departement. Clause(s) containing the error(s): where.",
        ),
        (
            "/datasets/air/records?select=median(pm10)",
            400,
            "ODSQLError",
            "median() is not supported",
        ),
        (
            "/datasets/air/records?select=site_name,count(*)",
            400,
            "ODSQLError",
            "site_name must be in the group_by clause",
        ),
        (
            "/datasets/inconnu/records",
            404,
            "NotFoundResource",
            "The requested dataset inconnu does not exist.",
        ),
        (
            "/datasets/air/records?refine=nope:1",
            400,
            "InvalidRESTParameterError",
            "nope is not a facet",
        ),
        (
            "/datasets/air/records?timezone=Mars/Olympus",
            400,
            "InvalidRESTParameterError",
            "unknown time zone",
        ),
        // What an attacker would send to exhaust the server, refused before any work.
        (
            "/datasets/air/records?order_by=date&offset=9223372036854775807",
            400,
            "InvalidRESTParameterError",
            "offset + limit must be at most 10000",
        ),
        (
            "/datasets/air/records?refine=date:4294967295",
            400,
            "InvalidRESTParameterError",
            "is not a date",
        ),
        (
            "/datasets/air/records?where=search(*,'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')",
            400,
            "ODSQLError",
            "a search is at most 16 words of 64 characters",
        ),
        (
            "/datasets/air/records?select=pm10 as x,no2 as x",
            400,
            "ODSQLError",
            "two columns are named x",
        ),
        (
            "/datasets/air/facets?facet=pm10",
            400,
            "InvalidRESTParameterError",
            "pm10 is not a facet",
        ),
        (
            "/datasets/air/records?select=date_format(date,'MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM')",
            400,
            "ODSQLError",
            "at most 64 characters",
        ),
    ] {
        let (s, e) = explore(&app, q).await;
        assert_eq!(s, status, "{q}: {e}");
        assert_eq!(e["error_code"], code, "{q}: {e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{q}: {e}");
    }

    // Exports stream every record, each format read back.
    let csv = app.get("/api/explore/v2.1/catalog/datasets/air/exports/csv").send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let csv = csv.strip_prefix('\u{feff}').expect("a byte-order mark, as the real API");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + 2 * 72 - 1);
    assert_eq!(
        rows[0],
        "date;device_id;site_id;site_name;commune;commune_name;geo_point_2d;pm2_5;pm10;no2;o3"
    );
    assert_eq!(
        rows[1],
        "2026-11-27T00:00:00+00:00;aq-1;hotel-de-ville;Hôtel de Ville;13001;Aix-en-Provence;\"43.53, 5.447\";;10.0;;"
    );
    let json: Value = app
        .get("/api/explore/v2.1/catalog/datasets/air/exports/json?where=pm10>40")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let big = ok(&app, "/datasets/air/records?where=pm10>40&limit=0").await;
    assert_eq!(json.as_array().unwrap().len() as u64, big["total_count"].as_u64().unwrap());
    let geo: Value = app
        .get("/api/explore/v2.1/catalog/datasets/air/exports/geojson?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(geo["type"], "FeatureCollection");
    assert_eq!(
        geo["features"][0]["geometry"],
        json!({"type": "Point", "coordinates": [5.447, 43.53]})
    );
    assert_eq!(geo["features"].as_array().unwrap().len(), 2);
    let jsonl = app
        .get("/api/explore/v2.1/catalog/datasets/air/exports/jsonl?select=pm10&limit=3")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(jsonl, "{\"pm10\":10.0}\n{\"pm10\":20.0}\n{\"pm10\":11.0}\n");
    let many = vec!["where=pm10>1"; 17].join("&");
    let (s, e) = explore(&app, &format!("/datasets/air/records?{many}")).await;
    assert_eq!(
        (s, e["message"].as_str().unwrap()),
        (400, "Invalid value for where API parameter: at most 16 are accepted.")
    );
    let chain = vec!["1"; 400].join("%2B");
    let (s, e) = explore(&app, &format!("/datasets/air/records?where=pm10>{chain}")).await;
    assert!(s == 400 && e["message"].as_str().unwrap().contains("more than 256 operators"), "{e}");
    // A day refined on a daily dataset is that day, whatever the time zone asked.
    let day =
        ok(&app, "/datasets/pietons/records?refine=date:2026/11/28&timezone=America/New_York")
            .await;
    assert_eq!(day["total_count"], 1);
    assert_eq!(day["results"][0]["people_in"], 1440);
    let (s, e) = explore(&app, "/datasets/air/exports/xlsx").await;
    assert_eq!((s, e["error_code"].as_str()), (400, Some("InvalidRESTParameterError")));
}

#[tokio::test]
async fn nothing_unpublished_is_reachable_and_the_rules_hold() {
    let app = city().await;
    assert_eq!(define(&app, dataset("air", "air", "hourly", true)).await.status(), 201);
    assert_eq!(define(&app, dataset("brouillon", "air", "15min", false)).await.status(), 201);
    let mut noise_only = dataset("bruit-laeq", "noise", "raw", true);
    noise_only["properties"] = json!(["laeq"]);
    assert_eq!(define(&app, noise_only).await.status(), 201);

    // The draft is answered exactly as a dataset that does not exist, everywhere.
    for path in [
        "/datasets/brouillon",
        "/datasets/brouillon/records",
        "/datasets/brouillon/records/aq-1@2026-11-27T00:00:00Z",
        "/datasets/brouillon/facets",
        "/datasets/brouillon/exports",
        "/datasets/brouillon/exports/csv",
    ] {
        let (s, e) = explore(&app, path).await;
        assert_eq!(s, 404, "{path}");
        assert_eq!(e["message"], "The requested dataset brouillon does not exist.", "{path}");
    }
    let list = ok(&app, "/datasets?limit=100").await;
    let ids: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dataset_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["air", "bruit-laeq"]);
    assert_eq!(list["total_count"], 2);
    let found = ok(&app, "/datasets?where=search(title, 'laeq')").await;
    assert_eq!(found["total_count"], 1);
    let dcat = app
        .get("/api/v1/open-data/dcat")
        .header("Accept", "application/ld+json")
        .send()
        .await
        .unwrap();
    assert_eq!(dcat.headers()["content-type"], "application/ld+json; charset=utf-8");
    let dcat = dcat.text().await.unwrap();
    assert!(
        dcat.contains("/open-data/datasets/air#dataset") && !dcat.contains("brouillon"),
        "{dcat}"
    );

    // A published dataset holds only its own properties and devices: no battery, no property
    // of another theme, no field it does not publish.
    for (path, field) in [
        ("/datasets/air/records?select=battery", "battery"),
        ("/datasets/bruit-laeq/records?select=lamax", "lamax"),
        ("/datasets/air/records?where=laeq>0", "laeq"),
    ] {
        let (s, e) = explore(&app, path).await;
        assert_eq!(s, 400, "{path}");
        assert_eq!(
            e["message"].as_str().unwrap().split(". ").next().unwrap(),
            format!("ODSQL query is malformed: Unknown field: {field}")
        );
    }
    // A device the dataset does not publish (a sound level meter in an air dataset), its
    // battery, or a resolution nobody published: not found, not refused with its data.
    for path in [
        "/datasets/air/records/noise-1@2026-11-28T05:00:00Z",
        "/datasets/air/records/aq-1@2026-11-28T05:15:00Z",
    ] {
        let (s, e) = explore(&app, path).await;
        assert_eq!((s, e["error_code"].as_str()), (404, Some("NotFoundResource")), "{path}");
    }
    let none = ok(&app, "/datasets/air/records?where=device_id='noise-1'&limit=0").await;
    assert_eq!(none["total_count"], 0);
    let devices = ok(&app, "/datasets/air/facets?facet=device_id").await;
    assert_eq!(devices["facets"][0]["facets"].as_array().unwrap().len(), 2, "only air devices");
    let raw = ok(&app, "/datasets/bruit-laeq/records?limit=2").await;
    assert_eq!(raw["total_count"], DAYS * 24 * 60, "raw: every reading");
    assert_eq!(raw["results"][1]["laeq"], 70.0);

    // Publication rules, each refused by name.
    let mut fine = dataset("pietons-15", "footfall", "15min", true);
    let r = define(&app, fine.clone()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("footfall is never published finer than hourly"));
    fine["resolution"] = json!("hourly");
    fine["properties"] = json!(["battery"]);
    let r = define(&app, fine.clone()).await;
    assert!(r.text().await.unwrap().contains("property battery is about the device itself"));
    fine["properties"] = json!(["pm10"]);
    let r = define(&app, fine.clone()).await;
    assert!(r.text().await.unwrap().contains("property pm10 is not published with theme footfall"));
    fine["properties"] = json!([]);
    fine["title"] = json!("Piétons\u{0}");
    let r = define(&app, fine.clone()).await;
    assert!(r.text().await.unwrap().contains("holds a control character"));
    fine["title"] = json!("Piétons");
    fine["contact_email"] = json!("a<b>@example.fr");
    let r = define(&app, fine.clone()).await;
    assert!(r.text().await.unwrap().contains("is not an e-mail address"));
    fine["contact_email"] = json!(null);
    fine["site"] = json!("nowhere");
    let r = define(&app, fine.clone()).await;
    assert!(r.text().await.unwrap().contains("place nowhere is not in the catalog"));
    let r = define(&app, dataset("air", "air", "hourly", true)).await;
    assert_eq!(r.status(), 409);

    // Publishing takes the right: a viewer may read definitions, not publish.
    let viewer = app.token("read", None).await;
    let r = app
        .post("/api/v1/open-data/datasets")
        .bearer_auth(&viewer)
        .json(&dataset("x", "air", "hourly", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app.get("/api/v1/open-data/datasets").bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get("/api/v1/open-data/datasets").send().await.unwrap();
    assert_eq!(r.status(), 401, "definitions, drafts included, are not public");

    // Unpublishing takes a dataset away at once; an embargo holds back recent periods.
    let mut air = app.get_json("/api/v1/open-data/datasets/air").await;
    air["published"] = json!(false);
    let r = app
        .client
        .put(app.url("/api/v1/open-data/datasets/air"))
        .bearer_auth(ADMIN)
        .json(&air)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(explore(&app, "/datasets/air/records").await.0, 404);
    air["published"] = json!(true);
    air["embargo_hours"] = json!(24);
    app.client
        .put(app.url("/api/v1/open-data/datasets/air"))
        .bearer_auth(ADMIN)
        .json(&air)
        .send()
        .await
        .unwrap();
    let e = ok(&app, "/datasets/air/records?limit=0&where=device_id='aq-1'").await;
    assert_eq!(
        e["total_count"],
        2 * 24 + 12,
        "24 hours before noon on the fourth day: two and a half days"
    );
}
