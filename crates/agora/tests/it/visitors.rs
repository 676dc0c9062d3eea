//! Visitors over HTTP: points of interest imported (the good lines kept, the bad ones named),
//! tours through them walked on the imported streets or drawn straight without them, their QR
//! codes read back by a real decoder (zbarimg, Debian's zbar-tools), and cool routes on a street
//! map built so that the answer is known: the hot street avoided when the sensors say it is hot,
//! the shortest way when the heat is the same everywhere.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

/// A ladder of streets: a south street (43.5290) and a north street (43.5299, by the town
/// hall), each of five nodes 0.002° of longitude (161 m) apart from 5.4460, joined at both ends
/// and in the middle (rungs of 100 m).
fn ladder_osm() -> String {
    let mut o = String::from("<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">\n");
    for row in 0..2 {
        for i in 0..5 {
            let id = 1 + row * 5 + i;
            let lat = 43.5290 + 0.0009 * f64::from(row);
            let lon = 5.4460 + 0.002 * f64::from(i);
            o.push_str(&format!("<node id=\"{id}\" lat=\"{lat:.7}\" lon=\"{lon:.7}\"/>\n"));
        }
    }
    let way = |id: u32, nodes: &[u32]| {
        let nd: String = nodes.iter().map(|n| format!("<nd ref=\"{n}\"/>")).collect();
        format!("<way id=\"{id}\">{nd}<tag k=\"highway\" v=\"residential\"/></way>\n")
    };
    o.push_str(&way(100, &[1, 2, 3, 4, 5]));
    o.push_str(&way(101, &[6, 7, 8, 9, 10]));
    o.push_str(&way(102, &[1, 6]));
    o.push_str(&way(103, &[3, 8]));
    o.push_str(&way(104, &[5, 10]));
    o.push_str("</osm>\n");
    o
}

/// Metres between two points, written here again (haversine on the mean sphere).
fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

async fn import(app: &TestApp, format: &str, body: &str) -> reqwest::Response {
    app.post(&format!("/api/v1/visitors/pois?format={format}"))
        .bearer_auth(ADMIN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn put_tour(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/visitors/tours/{id}")))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

const POIS: &str = "id,kind,lat,lon,name_fr,name_en,name_de,description_fr,description_en,opening_hours,accessibility_fr\n\
    fontaine-ouest,fountain,43.5299,5.4460,Fontaine de l'Ouest,West fountain,Westbrunnen,Eau potable,Drinking water,,Accès de plain-pied\n\
    musee,museum,43.5299,5.4480,Musée Granet,Granet museum,,Peintures,Paintings,mar.-dim. 12 h-18 h,\n\
    belvedere,viewpoint,43.5290,5.4500,Belvédère,Viewpoint,,,,,\n\
    tour-eiffel,heritage,48.8584,2.2945,Tour Eiffel,Eiffel Tower,,,,,\n\
    sans-nom,museum,43.5295,5.4470,Musée,,,,,,\n";

#[tokio::test]
async fn points_are_imported_and_tours_walk_through_them_with_a_qr_code() {
    let app = TestApp::spawn().await;
    let r = import(&app, "csv", POIS).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["imported"], 3);
    let refused = v["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{v}");
    assert_eq!(refused[0]["record"], 5);
    assert!(refused[0]["reason"].as_str().unwrap().contains("outside every commune"), "{v}");
    assert_eq!(refused[1]["record"], 6);
    assert!(refused[1]["reason"].as_str().unwrap().contains("name in \"en\" is needed"), "{v}");
    // Nothing valid: refused whole, saying why.
    let r = import(&app, "csv", "id,kind\nx,museum\n").await;
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("no point to import"), "{p}");
    let r = import(&app, "geojson", "{\"type\": \"Feature\"}").await;
    problem(r, 400, "bad_request").await;

    // Read back, in every language given, nearest first; anyone may read them.
    let r = app.get("/api/v1/visitors/pois?near=43.5299,5.4461&radius=200").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let near: Value = r.json().await.unwrap();
    let ids: Vec<&str> =
        near.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["fontaine-ouest", "musee"]);
    assert_eq!(
        near[0]["name"],
        json!({"fr": "Fontaine de l'Ouest", "en": "West fountain", "de": "Westbrunnen"})
    );
    assert_eq!(near[0]["accessibility"]["fr"], "Accès de plain-pied");
    assert_eq!(near[0]["commune"], "13001");
    assert_eq!(near[1]["opening_hours"], "mar.-dim. 12 h-18 h");

    // A tour with an unknown point is refused, naming it.
    let body = |stops: &[&str]| {
        json!({"id": "decouverte", "title": {"fr": "Découverte", "en": "Discovery"},
               "description": {"fr": "Trois haltes"}, "stops": stops, "minutes_per_stop": 10})
    };
    let p = problem(
        put_tour(&app, "decouverte", body(&["musee", "cathedrale"])).await,
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("unknown point \"cathedrale\""), "{p}");
    let p = problem(put_tour(&app, "decouverte", body(&["musee"])).await, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("2 to 30 stops"), "{p}");

    // Without streets: drawn straight, its length the sum of its legs.
    let stops = [(43.5299, 5.4460), (43.5299, 5.4480), (43.5290, 5.4500)];
    let r = put_tour(&app, "decouverte", body(&["fontaine-ouest", "musee", "belvedere"])).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["straight"], true);
    let straight = metres(stops[0], stops[1]) + metres(stops[1], stops[2]);
    assert!((t["distance_m"].as_f64().unwrap() - straight).abs() <= 0.5, "{t}");
    assert_eq!(t["duration_min"], (straight / (4000.0 / 60.0) + 30.0).round());
    assert_eq!(t["route"]["coordinates"].as_array().unwrap().len(), 3);
    let url = format!("http://{}/visiter/parcours/decouverte", app.addr);
    assert_eq!(t["url"], url);

    // With the streets: along them (the fountain and the museum on the north street, the
    // viewpoint on the south street below the middle rung).
    let r = app
        .client
        .put(app.url("/api/v1/proximity/13001/network"))
        .bearer_auth(ADMIN)
        .body(ladder_osm())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let t = app.get_json("/api/v1/visitors/tours/decouverte").await;
    assert_eq!(t["straight"], false);
    let n = |i: usize| (43.5299, 5.4460 + 0.002 * i as f64);
    let walked = metres(n(0), n(1)) + metres(n(1), n(2)) + metres(n(2), (43.5290, 5.4500));
    assert!(
        (t["distance_m"].as_f64().unwrap() - walked).abs() <= 0.5,
        "{} vs {walked}",
        t["distance_m"]
    );
    assert_eq!(t["points"].as_array().unwrap().len(), 3);

    // The QR code decodes, with a real reader, to the tour's page.
    let png =
        app.get("/api/v1/visitors/tours/decouverte/qr?format=png&scale=6").send().await.unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("qr.png");
    std::fs::write(&file, png.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .expect("zbarimg is installed (scripts/test.sh installs zbar-tools)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), url);
    let svg = app.get("/api/v1/visitors/tours/decouverte/qr").send().await.unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let r = app.get("/api/v1/visitors/tours/none/qr").send().await.unwrap();
    problem(r, 404, "not_found").await;

    // Published as open data: the points, and the tour stop by stop.
    for (id, kind) in [("lieux", "points_of_interest"), ("parcours", "tours")] {
        let r = app
            .post("/api/v1/open-data/datasets")
            .bearer_auth(ADMIN)
            .json(&json!({"id": id, "kind": kind, "theme": "equipment", "title": id,
                "description": id, "published": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let v = app
        .get_json("/api/explore/v2.1/catalog/datasets/lieux/records?order_by=poi_id&limit=10")
        .await;
    assert_eq!(v["total_count"], 3);
    assert_eq!(v["results"][1]["name_de"], Value::Null);
    assert_eq!(v["results"][1]["name_en"], "West fountain");
    assert_eq!(v["results"][1]["accessibility_fr"], "Accès de plain-pied");
    let v = app
        .get_json("/api/explore/v2.1/catalog/datasets/parcours/records?order_by=stop&limit=10")
        .await;
    let stops: Vec<&str> =
        v["results"].as_array().unwrap().iter().map(|r| r["poi_id"].as_str().unwrap()).collect();
    assert_eq!(stops, ["fontaine-ouest", "musee", "belvedere"]);
    assert_eq!(v["results"][0]["tour_title_en"], "Discovery");
    assert_eq!(v["results"][0]["tour_distance_m"], t["distance_m"]);

    // A forged Host does not make a huge code: refused, naming the setting.
    let r = app
        .get("/api/v1/visitors/tours/decouverte/qr?format=png&scale=16")
        .header("host", format!("{}.example", "a".repeat(240)))
        .send()
        .await
        .unwrap();
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("base_url"), "{p}");
    let r =
        app.get("/api/v1/visitors/tours/decouverte/qr?format=png&scale=64").send().await.unwrap();
    problem(r, 400, "bad_request").await;
    // An unknown field is refused by name.
    let r = app
        .client
        .put(app.url("/api/v1/visitors/pois/musee"))
        .bearer_auth(ADMIN)
        .json(&json!({"id": "musee", "kind": "museum", "lat": 43.5299, "lon": 5.448,
            "name": {"fr": "Musée", "en": "Museum"}, "nmae": "typo"}))
        .send()
        .await
        .unwrap();
    let p = problem(r, 400, "bad_request").await;
    assert!(p["detail"].as_str().unwrap().contains("unknown field \"nmae\""), "{p}");
    // Another commune's operator cannot take a point over by moving it home, nor make a tour
    // through two communes.
    let r = app
        .post("/api/v1/communes")
        .bearer_auth(ADMIN)
        .json(&json!({"insee": "13055", "name": "Marseille"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let site = json!({"id": "vieux-port", "commune": "13055", "name": "Vieux-Port", "lat": 43.295, "lon": 5.374});
    let r = app.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(ADMIN)
        .json(&json!({"name": "op mrs", "role": "operator", "commune": "13055"}))
        .send()
        .await
        .unwrap();
    let mrs = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let take = json!({"id": "musee", "kind": "museum", "lat": 43.295, "lon": 5.374,
        "name": {"fr": "Musée", "en": "Museum"}});
    let r = app
        .client
        .put(app.url("/api/v1/visitors/pois/musee"))
        .bearer_auth(&mrs)
        .json(&take)
        .send()
        .await
        .unwrap();
    let p = problem(r, 409, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("another commune's"), "{p}");
    let port = json!({"id": "port", "kind": "viewpoint", "lat": 43.295, "lon": 5.374,
        "name": {"fr": "Port", "en": "Harbour"}});
    let r = app
        .client
        .put(app.url("/api/v1/visitors/pois/port"))
        .bearer_auth(ADMIN)
        .json(&port)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p = problem(
        put_tour(
            &app,
            "mixte",
            json!({"id": "mixte", "title": {"fr": "M", "en": "M"},
        "stops": ["musee", "port"]}),
        )
        .await,
        400,
        "bad_request",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("stays in one commune"), "{p}");

    // A point a tour goes through is not removed under it.
    let r = app
        .client
        .delete(app.url("/api/v1/visitors/pois/musee"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let p = problem(r, 409, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("decouverte"), "{p}");
    // Operators edit a point; the public cannot.
    let mut musee = near[1].clone();
    musee.as_object_mut().unwrap().retain(|k, _| {
        !["commune", "updated_by", "updated_at", "distance_m"].contains(&k.as_str())
    });
    musee["description"]["it"] = json!("Dipinti");
    let r =
        app.client.put(app.url("/api/v1/visitors/pois/musee")).json(&musee).send().await.unwrap();
    problem(r, 401, "unauthorized").await;
    let r = app
        .client
        .put(app.url("/api/v1/visitors/pois/musee"))
        .bearer_auth(ADMIN)
        .json(&musee)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.json::<Value>().await.unwrap()["description"]["it"], "Dipinti");
}

/// Temperature sensors at every crossing, `t_south` on the south street and `t_north` on the
/// north one, `ago_s` seconds ago.
async fn sensors(app: &TestApp, t_south: f64, t_north: f64, ago_s: i64) {
    let at = chrono::Utc::now().timestamp() - ago_s;
    for row in 0..2 {
        for i in 0..5 {
            let id = format!("t-{row}-{i}");
            let lat = 43.5290 + 0.0009 * f64::from(row);
            let lon = 5.4460 + 0.002 * f64::from(i);
            let d =
                json!({"id": id, "kind": "weather", "commune": "13001", "lat": lat, "lon": lon});
            let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
            assert!(r.status().is_success() || r.status() == 409, "{}", r.text().await.unwrap());
            let t = if row == 0 { t_south } else { t_north };
            app.write(&format!("weather,device={id} temperature={t} {at}")).await;
        }
    }
}

#[tokio::test]
async fn a_cool_route_avoids_the_hot_street_and_is_the_shortest_when_the_heat_is_even() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .put(app.url("/api/v1/proximity/13001/network"))
        .bearer_auth(ADMIN)
        .body(ladder_osm())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The south street in full sun at 37 °C, the north one at 30 °C, two hours ago.
    sensors(&app, 37.0, 30.0, 7200).await;
    let from = "43.5290,5.4460";
    let to = "43.5290,5.4540";
    let v = app.get_json(&format!("/api/v1/visitors/cool-route?from={from}&to={to}&hours=3")).await;
    assert_eq!(v["sensors"], 10);
    let south = metres((43.5290, 5.4460), (43.5290, 5.4540));
    assert!((v["shortest"]["distance_m"].as_f64().unwrap() - south).abs() <= 0.5, "{v}");
    // The cool one goes up the west rung, along the north street, down the east rung.
    let rung = metres((43.5290, 5.4460), (43.5299, 5.4460));
    let north = metres((43.5299, 5.4460), (43.5299, 5.4540));
    assert!((v["cool"]["distance_m"].as_f64().unwrap() - (2.0 * rung + north)).abs() <= 0.5, "{v}");
    let (tc, ts) =
        (v["cool"]["felt_c"].as_f64().unwrap(), v["shortest"]["felt_c"].as_f64().unwrap());
    assert!(tc < ts, "{v}");
    assert!(v["cooler_by_c"].as_f64().unwrap() > 2.0, "{v}");
    assert_eq!(v["longer_by_m"], (2.0 * rung + north - south).round());

    // The same heat everywhere in the last hour: the cool route is the shortest.
    sensors(&app, 33.0, 33.0, 600).await;
    let v = app.get_json(&format!("/api/v1/visitors/cool-route?from={from}&to={to}&hours=1")).await;
    assert_eq!(v["cool"]["route"], v["shortest"]["route"]);
    assert_eq!(v["cooler_by_c"], 0.0);
    assert_eq!(v["longer_by_m"], 0.0);

    // Bad requests say what is wrong.
    for (q, says) in [
        ("from=43.5290&to=43.5290,5.4540", "lat,lon"),
        ("from=43.5800,5.4474&to=43.5800,5.4500", "outside every commune"),
        ("from=43.5290,5.4460&to=43.5290,5.4540&hours=48", "hours: 1 to 24"),
        ("from=43.5290,5.4460&to=43.6290,5.4540", "a walk is at most 5 km"),
        ("from=43.5290,5.4460&to=43.5290,5.4540&at=2099-01-01T00:00:00Z", "in the future"),
    ] {
        let r = app.get(&format!("/api/v1/visitors/cool-route?{q}")).send().await.unwrap();
        let p = problem(r, 400, "bad_request").await;
        assert!(p["detail"].as_str().unwrap().contains(says), "{q}: {p}");
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
}
