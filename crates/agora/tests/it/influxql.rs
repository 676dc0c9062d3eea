//! InfluxQL over `/query`: points written with line protocol through `/write` read back as
//! Grafana's InfluxDB data source and the `influxdb` clients ask for them. Every expected value
//! is worked out by hand from the points written below.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// 2026-01-01T00:00:00Z, in seconds.
const T: i64 = 1_767_225_600;
/// The same in milliseconds (Grafana's `epoch=ms`).
const T_MS: i64 = T * 1000;
const MIN_MS: i64 = 60_000;

/// Points, minute by minute from `T` (pm10 in µg/m³):
///
/// | minute | aq-1 (hôtel de ville) | aq-2 (hôtel de ville) |
/// |--------|-----------------------|-----------------------|
/// | 0      | 10 (at 0 s), 20 (30 s)| 40                    |
/// | 1      | 30                    |                       |
/// | 2, 3   |                       |                       |
/// | 4      | 50                    |                       |
/// | 5      |                       | 60                    |
///
/// aq-3 (la Rotonde) has 7 at minute 10; n-1 (la Rotonde) measures 60 dB at 0 s and 70 dB at
/// 30 s; wx-1 has temperatures late on 1 January, around midnight in Paris.
async fn city() -> TestApp {
    city_with(|_| {}).await
}

/// The same city, with a tweaked configuration.
async fn city_with(tweak: impl FnOnce(&mut agora::config::Config)) -> TestApp {
    let app = TestApp::spawn_with(tweak).await;
    let site = json!({"id": "la-rotonde", "commune": "13001", "name": "La Rotonde", "lat": 43.5263, "lon": 5.4446});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let lines = [
        format!("air_quality,device=aq-1,site=hotel-de-ville pm10=10,no2=5 {T}"),
        format!("air_quality,device=aq-1,site=hotel-de-ville pm10=20 {}", T + 30),
        format!("air_quality,device=aq-1,site=hotel-de-ville pm10=30 {}", T + 60),
        format!("air_quality,device=aq-1,site=hotel-de-ville pm10=50 {}", T + 240),
        format!("air_quality,device=aq-2,site=hotel-de-ville pm10=40 {T}"),
        format!("air_quality,device=aq-2,site=hotel-de-ville pm10=60 {}", T + 300),
        format!("air_quality,device=aq-3,site=la-rotonde pm10=7 {}", T + 600),
        format!("noise,device=n-1,site=la-rotonde laeq=60 {T}"),
        format!("noise,device=n-1,site=la-rotonde laeq=70 {}", T + 30),
        // 22:30 and 23:30 UTC on 1 January: 23:30 on the 1st and 00:30 on the 2nd in Paris.
        format!("weather,device=wx-1 temperature=10 {}", T + 22 * 3600 + 1800),
        format!("weather,device=wx-1 temperature=12 {}", T + 23 * 3600 + 1800),
    ];
    // Through InfluxDB v1's write API, as Telegraf and the v1 clients write.
    let r = app
        .post(&format!("/write?db=telegraf&precision=s&p={ADMIN}"))
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    app
}

/// Grafana's `$timeFilter` for minutes `a` to `b` after `T`, both included.
fn minutes(a: i64, b: i64) -> String {
    format!("time >= {}ms and time <= {}ms", T_MS + a * MIN_MS, T_MS + b * MIN_MS)
}

/// GET /query with the admin token as `Authorization: Token`; the status and the body.
async fn get(app: &TestApp, q: &str, epoch: Option<&str>) -> (u16, Value) {
    let mut params = vec![("db", "agora"), ("q", q)];
    params.extend(epoch.map(|e| ("epoch", e)));
    let r = app
        .get("/query")
        .query(&params)
        .header("Authorization", format!("Token {ADMIN}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-influxdb-version"], "1.8.10");
    (status, r.json().await.unwrap())
}

/// The series of the first result of a query expected to succeed, with `epoch=ms`.
async fn series(app: &TestApp, q: &str) -> Vec<Value> {
    let (status, body) = get(app, q, Some("ms")).await;
    assert_eq!(status, 200, "{q}: {body}");
    assert!(body["results"][0].get("error").is_none(), "{q}: {body}");
    body["results"][0]["series"].as_array().cloned().unwrap_or_default()
}

/// The rows of the only series of a query.
async fn rows(app: &TestApp, q: &str) -> Vec<Value> {
    let s = series(app, q).await;
    assert_eq!(s.len(), 1, "{q}: {s:?}");
    s[0]["values"].as_array().unwrap().clone()
}

/// Rows of (time in ms, one number or null), with numbers compared to 1e-9.
fn assert_rows(got: &[Value], want: &[(i64, Option<f64>)]) {
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, (t, v)) in got.iter().zip(want) {
        assert_eq!(g[0], json!(t), "{got:?}");
        match v {
            None => assert!(g[1].is_null(), "{got:?}"),
            Some(v) => {
                let x = g[1].as_f64().unwrap_or_else(|| panic!("{got:?}"));
                assert!((x - v).abs() < 1e-9, "{x} != {v} in {got:?}");
            }
        }
    }
}

fn at(minute: i64) -> i64 {
    T_MS + minute * MIN_MS
}

#[tokio::test]
async fn grafana_builder_query_answers_means_with_null_gaps() {
    let app = city().await;
    // Fixture 1 of Grafana's backend: mean, GROUP BY time, fill(null), ORDER BY time ASC.
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m) fill(null) ORDER BY time ASC"#,
        minutes(0, 5)
    );
    let r = app
        .get("/query")
        .query(&[("db", "telegraf"), ("epoch", "ms"), ("q", &q)])
        .header("Authorization", format!("Token {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // InfluxDB's key order (Grafana's streaming parser needs columns before values), one line.
    assert!(
        text.starts_with(r#"{"results":[{"statement_id":0,"series":[{"name":"air_quality","columns":["time","mean"],"values":[[1767225600000,23.33"#),
        "{text}"
    );
    assert!(text.ends_with("]]}]}]}\n"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["results"][0]["series"][0].get("tags").is_none());
    // Minute 0: (10 + 20 + 40) / 3; minutes 2 and 3 have no point: null, not 0.
    assert_rows(
        body["results"][0]["series"][0]["values"].as_array().unwrap(),
        &[
            (at(0), Some(70.0 / 3.0)),
            (at(1), Some(30.0)),
            (at(2), None),
            (at(3), None),
            (at(4), Some(50.0)),
            (at(5), Some(60.0)),
        ],
    );
    // The health check of "Save & test".
    let r = rows(&app, "SHOW measurements").await;
    assert_eq!(r, vec![json!(["air_quality"]), json!(["noise"]), json!(["weather"])]);
}

#[tokio::test]
async fn fill_none_previous_linear_and_a_number() {
    let app = city().await;
    let q = |fill: &str| {
        format!(
            r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m) fill({fill})"#,
            minutes(0, 5)
        )
    };
    let m0 = 70.0 / 3.0;
    assert_rows(
        &rows(&app, &q("none")).await,
        &[(at(0), Some(m0)), (at(1), Some(30.0)), (at(4), Some(50.0)), (at(5), Some(60.0))],
    );
    assert_rows(
        &rows(&app, &q("previous")).await,
        &[
            (at(0), Some(m0)),
            (at(1), Some(30.0)),
            (at(2), Some(30.0)),
            (at(3), Some(30.0)),
            (at(4), Some(50.0)),
            (at(5), Some(60.0)),
        ],
    );
    // 30 at minute 1 to 50 at minute 4: +20/3 a minute.
    assert_rows(
        &rows(&app, &q("linear")).await,
        &[
            (at(0), Some(m0)),
            (at(1), Some(30.0)),
            (at(2), Some(30.0 + 20.0 / 3.0)),
            (at(3), Some(30.0 + 40.0 / 3.0)),
            (at(4), Some(50.0)),
            (at(5), Some(60.0)),
        ],
    );
    assert_rows(
        &rows(&app, &q("0")).await,
        &[
            (at(0), Some(m0)),
            (at(1), Some(30.0)),
            (at(2), Some(0.0)),
            (at(3), Some(0.0)),
            (at(4), Some(50.0)),
            (at(5), Some(60.0)),
        ],
    );
    // A count's empty bucket counts 0 points, as InfluxDB answers: a fact, not a gap, so fill()
    // leaves it alone; fill(none) still leaves the bucket out.
    let count = |fill: &str| {
        format!(
            r#"SELECT count("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m){fill}"#,
            minutes(0, 5)
        )
    };
    let counted = vec![
        json!([at(0), 3]),
        json!([at(1), 1]),
        json!([at(2), 0]),
        json!([at(3), 0]),
        json!([at(4), 1]),
        json!([at(5), 1]),
    ];
    for fill in ["", " fill(null)", " fill(previous)", " fill(linear)", " fill(-1)"] {
        assert_eq!(rows(&app, &count(fill)).await, counted, "{fill}");
    }
    assert_eq!(
        rows(&app, &count(" fill(none)")).await,
        vec![json!([at(0), 3]), json!([at(1), 1]), json!([at(4), 1]), json!([at(5), 1])]
    );
    // Beside another function, a bucket answered for the other's points counts 0 of its own
    // (aq-1 measured no2 only at minute 0).
    let r = rows(
        &app,
        &format!(
            r#"SELECT count("no2"), max("pm10") FROM "air_quality" WHERE "device" = 'aq-1' AND {} GROUP BY time(1m) fill(none)"#,
            minutes(0, 5)
        ),
    )
    .await;
    assert_eq!(r, vec![json!([at(0), 1, 20.0]), json!([at(1), 0, 30.0]), json!([at(4), 0, 50.0])]);
}

#[tokio::test]
async fn group_by_tags_gives_one_sorted_series_per_tag_set() {
    let app = city().await;
    let s = series(
        &app,
        &format!(
            r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m), "device"::tag fill(none) ORDER BY time ASC"#,
            minutes(0, 10)
        ),
    )
    .await;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0]["tags"], json!({"device": "aq-1"}));
    assert_eq!(s[1]["tags"], json!({"device": "aq-2"}));
    assert_eq!(s[2]["tags"], json!({"device": "aq-3"}));
    assert_rows(
        s[0]["values"].as_array().unwrap(),
        &[(at(0), Some(15.0)), (at(1), Some(30.0)), (at(4), Some(50.0))],
    );
    assert_rows(s[1]["values"].as_array().unwrap(), &[(at(0), Some(40.0)), (at(5), Some(60.0))]);
    assert_rows(s[2]["values"].as_array().unwrap(), &[(at(10), Some(7.0))]);
    // By place: aq-1 and aq-2 together, aq-3 alone; by commune, every device of the kind.
    let s = series(
        &app,
        &format!(
            r#"SELECT max("pm10") FROM "air_quality" WHERE {} GROUP BY "site", "commune""#,
            minutes(0, 10)
        ),
    )
    .await;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["tags"], json!({"commune": "13001", "site": "hotel-de-ville"}));
    assert_eq!(s[0]["values"], json!([[T_MS, 60.0]]));
    assert_eq!(s[1]["tags"], json!({"commune": "13001", "site": "la-rotonde"}));
    assert_eq!(s[1]["values"], json!([[T_MS, 7.0]]));
    // SLIMIT keeps the first series.
    let s = series(
        &app,
        &format!(
            r#"SELECT max("pm10") FROM "air_quality" WHERE {} GROUP BY * slimit 1"#,
            minutes(0, 10)
        ),
    )
    .await;
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0]["tags"],
        json!({"commune": "13001", "device": "aq-1", "site": "hotel-de-ville"})
    );
}

#[tokio::test]
async fn tag_conditions_restrict_devices() {
    let app = city().await;
    let mean = |cond: &str| {
        format!(
            r#"SELECT mean("pm10") FROM "air_quality" WHERE {cond} AND {} GROUP BY time(10m) fill(none)"#,
            minutes(0, 10)
        )
    };
    // aq-2 alone: (40 + 60) / 2.
    assert_rows(&rows(&app, &mean(r#""device"::tag = 'aq-2'"#)).await, &[(at(0), Some(50.0))]);
    // Grafana's multi-value variable: aq-1 and aq-3, (10 + 20 + 30 + 50) / 4 and 7.
    assert_rows(
        &rows(&app, &mean(r#""device"::tag =~ /^(aq-1|aq-3)$/"#)).await,
        &[(at(0), Some(27.5)), (at(10), Some(7.0))],
    );
    // OR in parentheses, then AND time: aq-2 and every device of la Rotonde.
    assert_rows(
        &rows(&app, &mean(r#"("device" = 'aq-2' OR "site"::tag = 'la-rotonde')"#)).await,
        &[(at(0), Some(50.0)), (at(10), Some(7.0))],
    );
    // An unknown tag is empty: nothing matches, an empty result.
    let (status, body) = get(&app, &mean(r#""district"::tag = 'centre'"#), Some("ms")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"results": [{"statement_id": 0}]}));
    // A long chain of alternatives (a dashboard's variable with many values, written out):
    // aq-0 to aq-899 take in all three, (10 + 20 + 30 + 50 + 40 + 60) / 6 and 7.
    let many: Vec<String> = (0..900).map(|i| format!("\"device\" = 'aq-{i}'")).collect();
    assert_rows(
        &rows(&app, &mean(&format!("({})", many.join(" OR ")))).await,
        &[(at(0), Some(35.0)), (at(10), Some(7.0))],
    );
    // != and !~.
    assert_rows(
        &rows(&app, &mean(r#""device" != 'aq-1' AND "device" !~ /3$/"#)).await,
        &[(at(0), Some(50.0))],
    );
}

#[tokio::test]
async fn selectors_sums_counts_and_math() {
    let app = city().await;
    let q = format!(
        r#"SELECT count("pm10"), sum("pm10"), min("pm10"), max("pm10"), first("pm10"), last("pm10"), median("pm10"), mean("pm10") * 2 AS "double" FROM "air_quality" WHERE "site"::tag = 'hotel-de-ville' AND {}"#,
        minutes(0, 10)
    );
    let s = series(&app, &q).await;
    assert_eq!(
        s[0]["columns"],
        json!(["time", "count", "sum", "min", "max", "first", "last", "median", "double"])
    );
    // Six points: 10 20 30 50 40 60. Median (30 + 40) / 2; mean 35, doubled.
    // Without GROUP BY time the time is the range's start.
    assert_eq!(s[0]["values"], json!([[T_MS, 6, 210.0, 10.0, 60.0, 10.0, 60.0, 35.0, 70.0]]));
    // A lone first() or last() answers the time of its point.
    assert_eq!(
        rows(
            &app,
            &format!(
                r#"SELECT last("pm10") FROM "air_quality" WHERE "device" = 'aq-1' AND {}"#,
                minutes(0, 10)
            )
        )
        .await,
        vec![json!([at(4), 50.0])]
    );
    // Repeated names are numbered; math does not rename.
    let s = series(
        &app,
        &format!(
            r#"SELECT mean("pm10"), mean("pm10") / 10, max("no2") FROM "air_quality" WHERE {}"#,
            minutes(0, 10)
        ),
    )
    .await;
    assert_eq!(s[0]["columns"], json!(["time", "mean", "mean_1", "max"]));
    // (10 + 20 + 30 + 50 + 40 + 60 + 7) / 7 = 31.
    assert_eq!(s[0]["values"], json!([[T_MS, 31.0, 3.1, 5.0]]));
}

#[tokio::test]
async fn sound_levels_are_energy_means() {
    let app = city().await;
    let q = format!(
        r#"SELECT mean("laeq"), max("laeq") FROM "noise" WHERE {} GROUP BY time(1m) fill(none)"#,
        minutes(0, 5)
    );
    let r = rows(&app, &q).await;
    // 10·log10((10^6 + 10^7) / 2) = 67.40 dB; the arithmetic mean would be 65.
    let want = 10.0 * ((1e6f64 + 1e7) / 2.0).log10();
    assert!((want - 67.4036).abs() < 1e-4);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0][0], json!(T_MS));
    assert!((r[0][1].as_f64().unwrap() - want).abs() < 1e-9, "{r:?}");
    assert_eq!(r[0][2], json!(70.0));
    // The same without GROUP BY time.
    let r =
        rows(&app, &format!(r#"SELECT mean("laeq") FROM "noise" WHERE time >= {T_MS}ms"#)).await;
    assert!((r[0][1].as_f64().unwrap() - want).abs() < 1e-9, "{r:?}");
}

#[tokio::test]
async fn order_limit_offset_and_time_formats() {
    let app = city().await;
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m) fill(null) ORDER BY time DESC limit 3"#,
        minutes(0, 5)
    );
    assert_rows(&rows(&app, &q).await, &[(at(5), Some(60.0)), (at(4), Some(50.0)), (at(3), None)]);
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m) fill(none) LIMIT 2 OFFSET 1"#,
        minutes(0, 5)
    );
    assert_rows(&rows(&app, &q).await, &[(at(1), Some(30.0)), (at(4), Some(50.0))]);
    // Without epoch, RFC 3339; with epoch=s, seconds.
    let q = format!(
        r#"SELECT max("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m) fill(none) limit 2"#,
        minutes(0, 5)
    );
    let (_, b) = get(&app, &q, None).await;
    assert_eq!(
        b["results"][0]["series"][0]["values"],
        json!([["2026-01-01T00:00:00Z", 40.0], ["2026-01-01T00:01:00Z", 30.0]])
    );
    let (_, b) = get(&app, &q, Some("s")).await;
    assert_eq!(b["results"][0]["series"][0]["values"], json!([[T, 40.0], [T + 60, 30.0]]));
    let (_, b) = get(&app, &q, Some("ns")).await;
    assert_eq!(b["results"][0]["series"][0]["values"][0][0], json!(T * 1_000_000_000));
    let (status, b) = get(&app, &q, Some("fortnights")).await;
    assert_eq!(status, 400);
    assert!(b["error"].as_str().unwrap().contains("invalid epoch"), "{b}");
}

#[tokio::test]
async fn offsets_and_local_days() {
    let app = city().await;
    // time(2m, 1m): buckets start on odd minutes, the first one before the range.
    assert_rows(
        &rows(
            &app,
            &format!(
                r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(2m, 1m)"#,
                minutes(0, 5)
            ),
        )
        .await,
        &[
            (at(-1), Some(70.0 / 3.0)),
            (at(1), Some(30.0)),
            (at(3), Some(50.0)),
            (at(5), Some(60.0)),
        ],
    );
    // Days in Paris: 22:30 UTC is still the 1st there, 23:30 UTC already the 2nd.
    let q = |tz: &str| {
        format!(
            "SELECT mean(temperature) FROM weather WHERE time >= '2025-12-31T00:00:00Z' AND \
             time < '2026-01-03T00:00:00Z' GROUP BY time(1d) fill(none){tz}"
        )
    };
    let (_, b) = get(&app, &q(" tz('Europe/Paris')"), None).await;
    assert_eq!(
        b["results"][0]["series"][0]["values"],
        json!([["2026-01-01T00:00:00+01:00", 10.0], ["2026-01-02T00:00:00+01:00", 12.0]])
    );
    let (_, b) = get(&app, &q(""), None).await;
    assert_eq!(b["results"][0]["series"][0]["values"], json!([["2026-01-01T00:00:00Z", 11.0]]));
}

#[tokio::test]
async fn raw_points() {
    let app = city().await;
    // Fixture 5: raw values of one device, oldest first.
    let q = format!(
        r#"SELECT "pm10" FROM "air_quality" WHERE "device"::tag = 'aq-1' AND {} ORDER BY time ASC"#,
        minutes(0, 10)
    );
    let s = series(&app, &q).await;
    assert_eq!(s[0]["columns"], json!(["time", "pm10"]));
    assert_eq!(
        s[0]["values"],
        json!([[T_MS, 10.0], [T_MS + 30_000, 20.0], [at(1), 30.0], [at(4), 50.0]])
    );
    // Several fields and a tag; the newest two.
    let q = format!(
        r#"SELECT "pm10", "no2", "device"::tag FROM "air_quality" WHERE {} ORDER BY time DESC LIMIT 2"#,
        minutes(0, 10)
    );
    assert_eq!(
        rows(&app, &q).await,
        vec![json!([at(10), 7.0, null, "aq-3"]), json!([at(5), 60.0, null, "aq-2"])]
    );
    // The oldest, for aq-1 with its no2.
    let q = format!(
        r#"SELECT "pm10", "no2" FROM "air_quality" WHERE "device" = 'aq-1' AND {} LIMIT 1"#,
        minutes(0, 10)
    );
    assert_eq!(rows(&app, &q).await, vec![json!([T_MS, 10.0, 5.0])]);
}

#[tokio::test]
async fn metadata_queries() {
    let app = city().await;
    assert_eq!(rows(&app, "SHOW DATABASES").await, vec![json!(["agora"])]);
    let (_, b) = get(&app, r#"SHOW RETENTION POLICIES on "iot""#, None).await;
    assert_eq!(
        b,
        json!({"results": [{"statement_id": 0, "series": [{"columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"], "values": [["autogen", "0s", "168h0m0s", 1, true]]}]}]})
    );
    assert_eq!(
        rows(&app, "SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)AIR/ LIMIT 100").await,
        vec![json!(["air_quality"])]
    );
    assert_eq!(
        rows(&app, r#"SHOW MEASUREMENTS WHERE "site"::tag = 'la-rotonde'"#).await,
        vec![json!(["air_quality"]), json!(["noise"])]
    );
    assert_eq!(
        rows(&app, r#"SHOW TAG KEYS FROM "air_quality""#).await,
        vec![json!(["commune"]), json!(["device"]), json!(["site"])]
    );
    // wx-1 has no place: its only tag is device.
    let s = series(&app, "SHOW TAG KEYS").await;
    let names: Vec<&Value> = s.iter().map(|x| &x["name"]).collect();
    assert_eq!(names, vec!["air_quality", "noise", "weather"]);
    assert_eq!(s[2]["values"], json!([["device"]]));
    assert_eq!(
        rows(&app, r#"SHOW FIELD KEYS FROM "autogen"."air_quality""#).await,
        vec![json!(["no2", "float"]), json!(["pm10", "float"])]
    );
    assert_eq!(
        rows(
            &app,
            r#"SHOW TAG VALUES FROM "air_quality" WITH KEY = "device" WHERE "site"::tag = 'hotel-de-ville'"#
        )
        .await,
        vec![json!(["device", "aq-1"]), json!(["device", "aq-2"])]
    );
    let s = series(&app, r#"SHOW TAG VALUES WITH KEY = "site""#).await;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["columns"], json!(["key", "value"]));
    assert_eq!(s[0]["values"], json!([["site", "hotel-de-ville"], ["site", "la-rotonde"]]));
    assert_eq!(s[1]["name"], "noise");
    assert_eq!(s[1]["values"], json!([["site", "la-rotonde"]]));
    // Telegraf's v1 output asks for its database first: answered, nothing to create.
    let (status, b) = get(&app, r#"CREATE DATABASE "telegraf""#, None).await;
    assert_eq!(status, 200);
    assert_eq!(b, json!({"results": [{"statement_id": 0}]}));
}

#[tokio::test]
async fn several_statements_and_statement_errors() {
    let app = city().await;
    // Grafana's legacy frontend joins its targets with ';'.
    let q = format!(
        r#"SELECT max("pm10") FROM "air_quality" WHERE {t};SELECT min("pm10") FROM "air_quality" WHERE {t}"#,
        t = minutes(0, 10)
    );
    let (status, b) = get(&app, &q, Some("ms")).await;
    assert_eq!(status, 200);
    assert_eq!(b["results"][0]["statement_id"], 0);
    assert_eq!(b["results"][0]["series"][0]["values"], json!([[T_MS, 60.0]]));
    assert_eq!(b["results"][1]["statement_id"], 1);
    assert_eq!(b["results"][1]["series"][0]["values"], json!([[T_MS, 7.0]]));
    // A statement that cannot be answered fails alone, with 200; those after it are not run.
    let q = format!(
        r#"SHOW DATABASES; SELECT derivative(mean("pm10"), 1s) FROM "air_quality" WHERE {} GROUP BY time(1m); SHOW DATABASES"#,
        minutes(0, 10)
    );
    let (status, b) = get(&app, &q, Some("ms")).await;
    assert_eq!(status, 200);
    assert_eq!(b["results"][0]["series"][0]["values"], json!([["agora"]]));
    let e = b["results"][1]["error"].as_str().unwrap();
    assert!(e.contains("unsupported function derivative()"), "{e}");
    assert_eq!(b["results"][2], json!({"statement_id": 2, "error": "not executed"}));
    // GROUP BY time needs a lower bound; a field condition is refused by name.
    for (q, why) in [
        (r#"SELECT mean("pm10") FROM "air_quality" GROUP BY time(1m)"#, "lower time bound"),
        (
            r#"SELECT mean("pm10") FROM "air_quality" WHERE "pm10" > 20 AND time > now() - 1h"#,
            "conditions on fields (pm10)",
        ),
        (
            r#"SELECT mean("pm10") FROM "air_quality" WHERE "device" = 'a' OR time > now() - 1h"#,
            "AND (not OR)",
        ),
        (
            r#"SELECT mean("pm10"), "no2" FROM "air_quality" WHERE time > now() - 1h"#,
            "mixing aggregate and non-aggregate",
        ),
        (
            r#"SELECT mean("pm10") FROM "air_quality" WHERE time > now() - 3650d GROUP BY time(1s)"#,
            "buckets",
        ),
    ] {
        let (status, b) = get(&app, q, Some("ms")).await;
        assert_eq!(status, 200, "{q}");
        let e = b["results"][0]["error"].as_str().unwrap_or_else(|| panic!("{q}: {b}"));
        assert!(e.contains(why), "{q}: {e}");
    }
}

#[tokio::test]
async fn request_errors_are_400_with_a_top_level_error() {
    let app = city().await;
    let (status, b) = get(&app, "SELECT mean(pm10) FROM", None).await;
    assert_eq!(status, 400);
    assert_eq!(
        b,
        json!({"error": "error parsing query: found EOF, expected identifier, regex at line 1, char 23"})
    );
    // Grafana's macros are expanded by Grafana: one left in is a parse error.
    let (status, b) = get(&app, "SELECT mean(pm10) FROM air_quality WHERE $timeFilter", None).await;
    assert_eq!(status, 400);
    assert!(b["error"].as_str().unwrap().contains("found $timeFilter"), "{b}");
    // A duration past what a time can hold says so.
    let (status, b) =
        get(&app, "SELECT mean(pm10) FROM air_quality WHERE time > now() - 100000000d", None).await;
    assert_eq!(status, 400);
    let e = b["error"].as_str().unwrap();
    assert!(
        e.contains("found duration 100000000d out of range (at most 106751d, about 292 years)"),
        "{e}"
    );
    let (status, b) = get(&app, "DROP DATABASE agora", None).await;
    assert_eq!(status, 400);
    assert!(b["error"].as_str().unwrap().contains("found DROP"), "{b}");
    let r = app.get("/query").bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "missing required parameter \"q\""})
    );
}

#[tokio::test]
async fn post_form_bodies_as_grafana_sends_them() {
    let app = city().await;
    let q = format!(
        r#"SELECT sum("pm10") FROM "air_quality" WHERE {} GROUP BY time(5m) fill(null)"#,
        minutes(0, 5)
    );
    // db and epoch in the URL, q in the body.
    let r = app
        .post("/query?db=iot&epoch=ms")
        .header("Authorization", format!("Token {ADMIN}"))
        .form(&[("q", q.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    // Minutes 0–4: 10 + 20 + 40 + 30 + 50; minute 5: 60.
    assert_eq!(b["results"][0]["series"][0]["values"], json!([[at(0), 150.0], [at(5), 60.0]]));
    // The Python client posts with q in the URL and no body.
    let r = app
        .post("/query")
        .query(&[("q", "CREATE DATABASE \"x\"")])
        .header("Authorization", format!("Token {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"results": [{"statement_id": 0}]}));
}

#[tokio::test]
async fn tokens_where_influxdb_clients_put_them() {
    let app = city().await;
    let read = app.token("read", None).await;
    let ingest = app.token("ingest", None).await;
    let url = |extra: &str| format!("/query?q=SHOW+DATABASES{extra}");
    let ok = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["results"][0]["series"][0]["values"],
            json!([["agora"]])
        );
    };
    ok(app.get(&url("")).header("Authorization", format!("Token {read}")).send().await.unwrap())
        .await;
    ok(app.get(&url("")).bearer_auth(&read).send().await.unwrap()).await;
    // Basic: the password is the token, or the user name (the Python client's default password
    // is "root").
    ok(app.get(&url("")).basic_auth("grafana", Some(&read)).send().await.unwrap()).await;
    ok(app.get(&url("")).basic_auth(&read, Some("root")).send().await.unwrap()).await;
    ok(app.get(&url(&format!("&u=grafana&p={read}"))).send().await.unwrap()).await;
    ok(app.get(&url(&format!("&u={read}"))).send().await.unwrap()).await;
    // Refusals: top-level error, 401 (InfluxDB's Basic challenge) or 403.
    for r in [
        app.get(&url("")).send().await.unwrap(),
        app.get(&url("")).bearer_auth("agora_wrong_token").send().await.unwrap(),
        app.get(&url("")).basic_auth("root", Some("root")).send().await.unwrap(),
        app.get(&url("&p=nope")).send().await.unwrap(),
    ] {
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"InfluxDB\"");
        assert_eq!(r.headers()["content-type"], "application/json");
        let b: Value = r.json().await.unwrap();
        assert!(b["error"].as_str().unwrap().starts_with("authorization failed"), "{b}");
    }
    // Telegraf's v1 output creates its database with its ingest token: nothing is read.
    let r = app
        .post("/query?q=CREATE+DATABASE+%22telegraf%22")
        .basic_auth("telegraf", Some(&ingest))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get(&url("")).bearer_auth(&ingest).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().starts_with("error authorizing query"), "{b}");
}

#[tokio::test]
async fn public_read_opens_query_to_everyone() {
    let app = TestApp::spawn_with(|c| c.auth.public_read = true).await;
    // The Python client sends root:root by default; with public reads it is not looked at.
    let r =
        app.get("/query?q=SHOW+DATABASES").basic_auth("root", Some("root")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.get("/query?q=SHOW+MEASUREMENTS").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"results": [{"statement_id": 0}]}));
}

#[tokio::test]
async fn the_raw_point_budget_refuses_a_statement_not_the_request() {
    let app = city_with(|c| c.limits.max_query_points = 4).await;
    // Seven raw points of pm10 to decode for minute buckets: over the budget of 4.
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m)"#,
        minutes(0, 10)
    );
    let (status, b) = get(&app, &q, Some("ms")).await;
    assert_eq!(status, 200);
    let e = b["results"][0]["error"].as_str().unwrap();
    assert!(e.contains("more than 4 raw points"), "{e}");
    // Whole hours come from the hourly rollups: no raw point is counted.
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1h)"#,
        minutes(0, 10)
    );
    // (10 + 20 + 30 + 50 + 40 + 60 + 7) / 7.
    assert_rows(&rows(&app, &q).await, &[(at(0), Some(31.0))]);
}

/// POST /query with `q` in a form body (as Grafana's POST mode sends it: queries too long for
/// a URL fit), `epoch=ms`; the status and the body.
async fn post(app: &TestApp, q: &str) -> (u16, Value) {
    let r = app
        .post("/query?db=agora&epoch=ms")
        .header("Authorization", format!("Token {ADMIN}"))
        .form(&[("q", q)])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The start of a long query, for messages.
fn head(q: &str) -> &str {
    &q[..q.len().min(200)]
}

/// The error of the only statement of a query expected to fail alone (HTTP 200).
async fn statement_error(app: &TestApp, q: &str) -> String {
    let (status, body) = post(app, q).await;
    let e = body["results"][0]["error"].as_str();
    assert!(status == 200 && e.is_some(), "{}: {status} {body}", head(q));
    e.unwrap_or_default().to_owned()
}

/// A request-level error: the status and the message.
async fn request_error(app: &TestApp, q: &str) -> (u16, String) {
    let (status, body) = post(app, q).await;
    let e = body["error"].as_str().unwrap_or_else(|| panic!("{}: {body}", head(q)));
    (status, e.to_owned())
}

/// `n` selected means of pm10.
fn means(n: usize) -> String {
    vec![r#"mean("pm10")"#; n].join(", ")
}

/// From `days` days before `T` to minute 10 after it, both included.
fn days_before(days: i64) -> String {
    format!("time >= {}ms and time <= {}ms", T_MS - days * 86_400_000, at(10))
}

#[tokio::test]
async fn wide_queries_are_refused_before_they_allocate() {
    let app = city().await;
    // The review's query: a thousand columns, each a value in every hour of eleven years.
    let q = format!(
        r#"SELECT {} FROM "air_quality" WHERE time >= now() - 4166d GROUP BY time(1h) fill(0)"#,
        means(1000)
    );
    let (status, e) = request_error(&app, &q).await;
    assert_eq!(status, 400);
    assert!(e.contains("at most 64 fields in a SELECT"), "{e}");
    // 64 columns parse, but 99,985 hours of 65 values are over the cap of two million values,
    // counted before any is computed.
    let q = format!(
        r#"SELECT {} FROM "air_quality" WHERE {} GROUP BY time(1h) fill(0)"#,
        means(64),
        days_before(4166)
    );
    let e = statement_error(&app, &q).await;
    assert!(e.contains("more than 2000000 values in all"), "{e}");
    assert!(e.contains("would answer up to 6499025 with 2000000 left"), "{e}");
    // Other lists are capped in the parser too.
    let tags: Vec<String> = (0..33).map(|i| format!("a{i}")).collect();
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1m), {}"#,
        minutes(0, 5),
        tags.join(", ")
    );
    let (status, e) = request_error(&app, &q).await;
    assert_eq!(status, 400);
    assert!(e.contains("at most 32 tags in GROUP BY"), "{e}");
    let keys: Vec<String> = (0..65).map(|i| format!("\"k{i}\"")).collect();
    let (status, e) =
        request_error(&app, &format!("SHOW TAG VALUES WITH KEY IN ({})", keys.join(", "))).await;
    assert_eq!(status, 400);
    assert!(e.contains("at most 64 keys in IN"), "{e}");
    // The review's 240 regexes of 2047 characters, under the cap on operators.
    let re = format!("/^{}$/", "a".repeat(2045));
    let alternatives = vec![format!("\"device\" =~ {re}"); 240];
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE ({}) AND {}"#,
        alternatives.join(" OR "),
        minutes(0, 5)
    );
    let (status, e) = request_error(&app, &q).await;
    assert_eq!(status, 400);
    assert!(e.contains("at most 8192 characters of regexes in a statement"), "{e}");
}

#[tokio::test]
async fn statements_share_one_cap_on_values() {
    let app = city().await;
    // 20,000 minutes of a time and a mean: 40,000 values.
    let long = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE time >= {T_MS}ms AND time < {}ms GROUP BY time(1m) fill(0)"#,
        at(20_000)
    );
    // 39,000 minutes of 51 values: up to 1,989,051 values, of which fill(none) answers 255.
    let wide = format!(
        r#"SELECT {} FROM "air_quality" WHERE time >= {T_MS}ms AND time < {}ms GROUP BY time(1m) fill(none)"#,
        means(50),
        at(39_000)
    );
    // Alone, or twenty times over, the wide statement is answered: what it answers counts.
    let (status, b) = post(&app, &vec![wide.as_str(); 20].join(";")).await;
    assert_eq!(status, 200);
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for r in results {
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(r["series"][0]["values"].as_array().unwrap().len(), 5);
    }
    // After the long one, what the wide one may answer is more than what is left: it fails,
    // naming the cap, and the 98 statements after it are not executed.
    let mut q = vec![long.as_str()];
    q.extend(vec![wide.as_str(); 99]);
    let (status, b) = post(&app, &q.join(";")).await;
    assert_eq!(status, 200);
    let results = b["results"].as_array().unwrap();
    assert_eq!(results[0]["series"][0]["values"].as_array().unwrap().len(), 20_000);
    let e = results[1]["error"].as_str().unwrap();
    assert!(
        e.contains("more than 2000000 values in all (times included, all the statements of a request together; this statement would answer up to 1989051 with 1960000 left)"),
        "{e}"
    );
    assert!(results[2..].iter().all(|r| r["error"] == "not executed"));
    assert_eq!(results.len(), 100);
}

#[tokio::test]
async fn fill_none_is_counted_as_every_bucket() {
    let app = city().await;
    // Every hour of 4166 days for each of three devices: 99,985 × 3 rows of a time and ten
    // values, which fill(none) could not shorten in a city that measures every hour.
    let q = format!(
        r#"SELECT {} FROM "air_quality" WHERE {} GROUP BY time(1h), "device" fill(none)"#,
        means(10),
        days_before(4166)
    );
    let e = statement_error(&app, &q).await;
    assert!(e.contains("more than 2000000 values in all"), "{e}");
    assert!(e.contains("would answer up to 3299505"), "{e}");
    // One value a row is under the cap: the buckets with points are answered.
    let q = format!(
        r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1h), "device" fill(none)"#,
        days_before(4166)
    );
    let s = series(&app, &q).await;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0]["values"], json!([[T_MS, 27.5]]));
    assert_eq!(s[2]["values"], json!([[T_MS, 7.0]]));
}

#[tokio::test]
async fn queries_are_parsed_only_for_those_who_may_send_them() {
    let app = city().await;
    let read = app.token("read", None).await;
    let ingest = app.token("ingest", None).await;
    // The review's query: a regex of 4000 nested groups.
    let deep = format!("SELECT x FROM /{}/", "(".repeat(4000));
    let send = |q: &str, token: Option<&str>| {
        let mut r = app.get("/query").query(&[("q", q)]);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // Without a token, or with one that may not read, it is not parsed.
    let (status, b) = send(&deep, None).await;
    assert_eq!(status, 401, "{b}");
    let (status, b) = send(&deep, Some(&ingest)).await;
    assert_eq!(status, 403, "{b}");
    // A reader's is parsed, and refused by name.
    let (status, b) = send(&deep, Some(&read)).await;
    assert_eq!(status, 400);
    assert!(b["error"].as_str().unwrap().contains("groups nested more than 32 deep"), "{b}");
    // A query that begins with CREATE reaches the parser with any live token; it must then hold
    // CREATE DATABASE only.
    let (status, _) = send("CREATE DATABASE \"telegraf\"", Some(&ingest)).await;
    assert_eq!(status, 200);
    let (status, b) = send("CREATE DATABASE \"telegraf\"; SHOW DATABASES", Some(&ingest)).await;
    assert_eq!(status, 403, "{b}");
    assert!(b["error"].as_str().unwrap().starts_with("error authorizing query"), "{b}");
    let (status, b) = send(&format!("CREATE DATABASE x; {deep}"), Some(&ingest)).await;
    assert_eq!(status, 400, "{b}");
    let (status, _) = send("CREATE DATABASE \"telegraf\"", None).await;
    assert_eq!(status, 401);
    // The server is still up.
    let (status, b) = send("SHOW DATABASES", Some(ADMIN)).await;
    assert_eq!((status, &b["results"][0]["series"][0]["values"]), (200, &json!([["agora"]])));
    // With public reads, anyone's query is parsed: refused the same way.
    let open = TestApp::spawn_with(|c| c.auth.public_read = true).await;
    let r = open.get("/query").query(&[("q", deep.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("groups nested more than 32 deep"), "{b}");
    let r = open.get("/query?q=SHOW+DATABASES").send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_raw_point_budget_is_shared_by_measurements_and_statements() {
    let app = city_with(|c| c.limits.max_query_points = 8).await;
    // Two points of pm10 at the weather station too.
    let lines = [
        format!("weather,device=wx-1 pm10=1 {}", T + 60),
        format!("weather,device=wx-1 pm10=3 {}", T + 120),
    ];
    let r = app
        .post(&format!("/write?db=telegraf&precision=s&p={ADMIN}"))
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let median =
        |from: &str| format!(r#"SELECT median("pm10") FROM {from} WHERE {}"#, minutes(0, 10));
    // Seven points of air quality and two of weather: each alone within 8, not together.
    assert_eq!(rows(&app, &median(r#""air_quality""#)).await, vec![json!([T_MS, 30.0])]);
    assert_eq!(rows(&app, &median(r#""weather""#)).await, vec![json!([T_MS, 2.0])]);
    let e = statement_error(&app, &median("/.*/")).await;
    assert!(e.contains("more than 8 raw points (all the statements of a request together)"), "{e}");
    let q = format!("{};{}", median(r#""air_quality""#), median(r#""weather""#));
    let (_, b) = get(&app, &q, Some("ms")).await;
    assert_eq!(b["results"][0]["series"][0]["values"], json!([[T_MS, 30.0]]));
    let e = b["results"][1]["error"].as_str().unwrap();
    assert!(e.contains("more than 8 raw points"), "{e}");
    // An offset of 1ns would have the store sum buckets of a nanosecond: refused by name.
    let e = statement_error(
        &app,
        &format!(
            r#"SELECT mean("pm10") FROM "air_quality" WHERE {} GROUP BY time(1h, 1ns)"#,
            minutes(0, 10)
        ),
    )
    .await;
    assert!(e.contains("GROUP BY time(1h, 1ns) is summed from buckets of 1ns"), "{e}");
    assert!(e.contains("at most 100000"), "{e}");
}

#[tokio::test]
async fn raw_selects_read_no_more_than_the_row_cap() {
    let app = city().await;
    // 100,001 points a millisecond apart, one more than the 100,000 rows a series may have; the
    // i-th is 10 + i / 1000 (a steady rise, which no quality check flags).
    let n = 100_001;
    let body: Vec<String> =
        (0..n).map(|i| format!("big,device=b-1 pm10={} {}", 10 + i / 1000, T_MS + i)).collect();
    let r = app
        .post(&format!("/write?db=telegraf&precision=ms&p={ADMIN}"))
        .body(body.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // The range ends hours after the points, as a dashboard's does.
    let range = format!("time >= {T_MS}ms and time <= {}ms", at(180));
    let q = |rest: &str| format!(r#"SELECT "pm10" FROM "big" WHERE {range} {rest}"#);
    // The newest points: read from the end, never refused for what lies before them.
    assert_eq!(
        rows(&app, &q("ORDER BY time DESC LIMIT 1")).await,
        vec![json!([T_MS + n - 1, 110.0])]
    );
    assert_eq!(
        rows(&app, &q("ORDER BY time DESC LIMIT 2 OFFSET 1")).await,
        vec![json!([T_MS + n - 2, 109.0]), json!([T_MS + n - 3, 109.0])]
    );
    assert_eq!(rows(&app, &q("LIMIT 2")).await, vec![json!([T_MS, 10.0]), json!([T_MS + 1, 10.0])]);
    // Every point, or a LIMIT past the cap: refused naming it, after reading one point past it.
    for rest in
        ["", "LIMIT 100000000", "ORDER BY time DESC LIMIT 100000000", "LIMIT 10 OFFSET 99995"]
    {
        let e = statement_error(&app, &q(rest)).await;
        assert!(e.contains("more than 100000 points of one series"), "{rest}: {e}");
    }
}
