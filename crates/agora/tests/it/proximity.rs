//! The 15-minute city through the API, on the quarter of `agora-proximity`'s fixtures (a 6 × 6
//! grid of streets 80 m apart, written by its `make_fixtures.py`), with a pharmacy and a bakery
//! at opposite corners and people at both corners: every time is a number of 80 m blocks walked
//! at 75 m a minute, worked by hand.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

const QUARTER: &[u8] = include_bytes!("../../../agora-proximity/tests/fixtures/quarter.osm");
const QUARTER_PBF: &[u8] =
    include_bytes!("../../../agora-proximity/tests/fixtures/quarter.osm.pbf");

/// The quarter's corners: south-west and north-east (5 blocks of 80 m apart each way).
const SW: (f64, f64) = (5.447, 43.527);
fn ne() -> (f64, f64) {
    let step_lat = 80.0 / 111_195.0;
    let step_lon = 80.0 / (111_195.0 * 43.527f64.to_radians().cos());
    (5.447 + 5.0 * step_lon, 43.527 + 5.0 * step_lat)
}

#[track_caller]
fn close(v: &Value, expected: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() <= 0.02, "{x} is not {expected}");
}

async fn put(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client.put(app.url(path)).bearer_auth(ADMIN).body(body).send().await.unwrap()
}

async fn put_ok(app: &TestApp, path: &str, body: Vec<u8>) -> Value {
    let r = put(app, path, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "PUT {path}: {v}");
    v
}

#[tokio::test]
async fn imports_times_shares_gaps_isochrones_and_a_what_if() {
    // A 10-minute limit: the far corner (800 m, 10.7 minutes) is just beyond it.
    let app = TestApp::spawn_with(|c| c.proximity.limit_min = 10.0).await;
    let missing = app.get_json("/api/v1/proximity/13001").await;
    assert!(missing["missing"].as_str().unwrap().contains("no walking network"), "{missing}");

    let net = put_ok(&app, "/api/v1/proximity/13001/network", QUARTER_PBF.to_vec()).await;
    assert_eq!(
        (net["items"].clone(), net["summary"]["walkable_ways"].clone()),
        (json!(60), json!(12))
    );
    let (ne_lon, ne_lat) = ne();
    let facilities = format!(
        "id,name,theme,kind,lon,lat\nph,Pharmacie,health,pharmacie,{0},{1}\nbk,Boulangerie,commerce,boulangerie,{ne_lon},{ne_lat}\nsc,École,social,école,{0},{1}\npk,Square,leisure,parc,{0},{1}\n",
        SW.0, SW.1
    );
    let f = put_ok(
        &app,
        "/api/v1/proximity/13001/facilities/shops?format=csv",
        facilities.into_bytes(),
    )
    .await;
    assert_eq!(f["items"], 4);
    let people = format!(
        "id,lon,lat,weight\nsw,{},{},100\nne,{ne_lon},{ne_lat},50\nhill,{},{},10\n",
        SW.0,
        SW.1,
        SW.0,
        SW.1 + 0.02
    );
    put_ok(&app, "/api/v1/proximity/13001/population?format=csv", people.into_bytes()).await;
    let mid = (SW.0 + ne_lon) / 2.0;
    let rect = |w: f64, e: f64| json!({"type": "Polygon", "coordinates": [[[w, 43.5], [e, 43.5], [e, 43.6], [w, 43.6], [w, 43.5]]]});
    let areas = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "west", "name": "Ouest"}, "geometry": rect(5.4, mid)},
        {"type": "Feature", "properties": {"code": "east", "name": "Est"}, "geometry": rect(mid, 5.5)}]});
    put_ok(&app, "/api/v1/proximity/13001/areas", areas.to_string().into_bytes()).await;

    let s = app.get_json("/api/v1/proximity/13001").await;
    assert!(s["missing"].is_null(), "{s}");
    let commune = &s["areas"][0];
    assert_eq!(
        (commune["code"].clone(), commune["shares"]["population"].clone()),
        (json!("13001"), json!(160.0))
    );
    close(&commune["shares"]["off_network"], 10.0);
    close(&commune["shares"]["coverage"], 150.0 / 160.0);
    close(&commune["shares"]["within"]["health"], 100.0 / 150.0);
    close(&commune["shares"]["within"]["commerce"], 50.0 / 150.0);
    // The school and the park at the south-west corner: 10.7 minutes from the north-east.
    close(&commune["shares"]["within"]["social"], 100.0 / 150.0);
    close(&commune["shares"]["all_themes"], 0.0);
    let west = s["areas"].as_array().unwrap().iter().find(|a| a["code"] == "west").unwrap();
    close(&west["shares"]["within"]["health"], 1.0);
    close(&west["shares"]["within"]["commerce"], 0.0);
    assert_eq!(s["layers"].as_array().unwrap().len(), 4);

    let sq = app.get_json("/api/v1/proximity/13001/squares").await;
    let ne_sq = sq["squares"].as_array().unwrap().iter().find(|x| x["id"] == "ne").unwrap();
    close(&ne_sq["minutes"]["health"], 800.0 / 75.0);
    close(&ne_sq["minutes"]["commerce"], 0.0);
    assert_eq!(
        (ne_sq["themes_within"].clone(), ne_sq["neighbourhood"].clone()),
        (json!(1), json!("east"))
    );
    let csv = app
        .get("/api/v1/proximity/13001/squares?format=csv")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    // Off the network: every time unknown, and so its score.
    assert!(csv.text().await.unwrap().contains("\nhill,10,west,true,,,,,,\n"));

    let gaps = app.get_json("/api/v1/proximity/13001/gaps?kind=pharmacie").await;
    assert_eq!(gaps["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(
        (gaps["gaps"][0]["population"].clone(), gaps["gaps"][0]["neighbourhood"].clone()),
        (json!(50.0), json!("Est"))
    );
    close(&gaps["gaps"][0]["best_minutes"], 800.0 / 75.0);

    let w = app
        .get_json(&format!(
            "/api/v1/proximity/13001/what-if?theme=health&lon={ne_lon}&lat={ne_lat}"
        ))
        .await;
    assert_eq!(
        (w["newly_within"].clone(), w["population_gained"].clone()),
        (json!(["ne"]), json!(50.0))
    );
    close(&w["share_before"], 100.0 / 150.0);
    close(&w["share_after"], 1.0);

    let iso = app
        .get(&format!("/api/v1/proximity/13001/isochrone?lon={}&lat={}", SW.0, SW.1))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(iso.headers()["content-type"], "application/geo+json");
    let iso: Value = iso.json().await.unwrap();
    // Bands 5, 10, 15 minutes, the widest first: the far corner is reached in 10.7 minutes.
    let pops: Vec<f64> = iso["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["population"].as_f64().unwrap())
        .collect();
    assert_eq!(pops, vec![150.0, 100.0, 100.0]);
    // The whole grid (60 segments of 80 m) is within 15 minutes (1,125 m from the corner).
    close(&iso["features"][0]["properties"]["km"], 4.8);

    let fac =
        app.get("/api/v1/proximity/13001/facilities").bearer_auth(ADMIN).send().await.unwrap();
    let fac: Value = fac.json().await.unwrap();
    assert_eq!(fac["features"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn bad_files_are_refused_whole_and_change_nothing() {
    let app = TestApp::spawn().await;
    put_ok(&app, "/api/v1/proximity/13001/network", QUARTER.to_vec()).await;
    let mut corrupt = QUARTER_PBF.to_vec();
    corrupt.truncate(corrupt.len() / 2);
    let b =
        problem(put(&app, "/api/v1/proximity/13001/network", corrupt).await, 400, "bad_request")
            .await;
    assert!(b["detail"].as_str().unwrap().starts_with("OSM PBF"), "{b}");
    let bpe =
        "DEPCOM;TYPEQU;LONGITUDE;LATITUDE\n13001;D301;5.447;43.527\n13001;Z999;5.447;43.527\n";
    let b = problem(
        put(&app, "/api/v1/proximity/13001/facilities/bpe?format=bpe", bpe.into()).await,
        400,
        "bad_request",
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("\"Z999\""), "{b}");
    let b = problem(
        put(
            &app,
            "/api/v1/proximity/13001/population?format=filosofi",
            b"Idcar_200m;Ind\nnonsense;3\n".to_vec(),
        )
        .await,
        400,
        "bad_request",
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("line 2"), "{b}");
    let s = app.get_json("/api/v1/proximity/13001").await;
    let layers = s["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{s}");
    assert_eq!(
        (layers[0]["layer"].clone(), layers[0]["items"].clone()),
        (json!("network"), json!(60))
    );
    // A commune the catalog does not know, and a format that does not exist.
    problem(
        app.get("/api/v1/proximity/99999").bearer_auth(ADMIN).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    problem(
        put(&app, "/api/v1/proximity/13001/population?format=xls", b"x".to_vec()).await,
        400,
        "bad_request",
    )
    .await;
    // BPE codes mapped, one ignored, one not located: the answer says so.
    let bpe = "DEPCOM;TYPEQU;LONGITUDE;LATITUDE\n13001;D301;5.447;43.527\n13001;E107;5.447;43.527\n13001;B203;;\n";
    let l = put_ok(&app, "/api/v1/proximity/13001/facilities/bpe?format=bpe", bpe.into()).await;
    assert_eq!(
        (
            l["items"].clone(),
            l["summary"]["ignored_codes"].clone(),
            l["summary"]["not_located"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
}
