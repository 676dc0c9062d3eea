//! OGC SensorThings API 1.1 (`/v1.1`) on data built so that every answer is known: an air
//! station reading PM10 = m µg/m³ at minute m for two hours, a sound level meter without its
//! own position (its place's is used), and a lamp reporting whether it is lit.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

async fn city() -> TestApp {
    let app = TestApp::spawn().await;
    for d in [
        json!({"id": "aq-1", "kind": "air_quality", "site": "hotel-de-ville", "commune": "13001", "lat": 43.53, "lon": 5.447, "name": "Station Hôtel de Ville"}),
        json!({"id": "noise-1", "kind": "noise", "site": "hotel-de-ville", "commune": "13001"}),
        json!({"id": "lamp-1", "kind": "streetlight", "commune": "13001", "lat": 43.52, "lon": 5.44}),
    ] {
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut lines = String::new();
    for m in 0..120 {
        lines.push_str(&format!("air_quality,device=aq-1 pm10={m} {}\n", T0 + m * 60));
    }
    // A device's internals are not observations of the city: no Datastream for them.
    lines.push_str(&format!("air_quality,device=aq-1 battery=80 {T0}\n"));
    lines.push_str(&format!("noise,device=noise-1 laeq=61.5 {T0}\n"));
    lines.push_str(&format!("streetlight,device=lamp-1 lamp_on=true {T0}\n"));
    app.write(&lines).await;
    app
}

async fn sta(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.get(&format!("/v1.1/{path}")).bearer_auth(ADMIN).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn ok(app: &TestApp, path: &str) -> Value {
    let (status, v) = sta(app, path).await;
    assert_eq!(status, 200, "{path}: {v}");
    v
}

fn ids(v: &Value) -> Vec<Value> {
    v["value"].as_array().unwrap().iter().map(|e| e["@iot.id"].clone()).collect()
}

fn results(v: &Value) -> Vec<f64> {
    v["value"].as_array().unwrap().iter().map(|e| e["result"].as_f64().unwrap()).collect()
}

async fn pm10_stream(app: &TestApp) -> i64 {
    let v = ok(app, "Things('aq-1')/Datastreams").await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1, "{v}");
    v["value"][0]["@iot.id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_service_root_lists_the_eight_sets_with_absolute_urls() {
    let app = city().await;
    let r = app.get("/v1.1").send().await.unwrap();
    assert_eq!(r.status(), 401, "not public unless the deployment publishes its data");
    let v = app.get_json("/v1.1").await;
    let names: Vec<&str> =
        v["value"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "Things",
            "Locations",
            "HistoricalLocations",
            "Datastreams",
            "Sensors",
            "ObservedProperties",
            "Observations",
            "FeaturesOfInterest"
        ]
    );
    let host = app.addr.to_string();
    for s in v["value"].as_array().unwrap() {
        assert_eq!(s["url"], format!("http://{host}/v1.1/{}", s["name"].as_str().unwrap()));
    }
    let conf = v["serverSettings"]["conformance"].as_array().unwrap();
    assert!(conf.contains(&json!("http://www.opengis.net/spec/iot_sensing/1.1/req/request-data")));
}

#[tokio::test]
async fn things_datastreams_and_their_links() {
    let app = city().await;
    let things = ok(&app, "Things?$count=true").await;
    assert_eq!(things["@iot.count"], 3);
    assert_eq!(ids(&things), [json!("aq-1"), json!("lamp-1"), json!("noise-1")]);
    let aq = &things["value"][0];
    assert_eq!(aq["name"], "Station Hôtel de Ville");
    let base = format!("http://{}/v1.1", app.addr);
    assert_eq!(aq["@iot.selfLink"], format!("{base}/Things('aq-1')"));
    assert_eq!(aq["Datastreams@iot.navigationLink"], format!("{base}/Things('aq-1')/Datastreams"));
    assert_eq!(aq["properties"]["kind"], "air_quality");

    let id = pm10_stream(&app).await;
    let ds = ok(&app, &format!("Datastreams({id})")).await;
    assert_eq!(ds["unitOfMeasurement"]["symbol"], "ug/m3");
    assert_eq!(ds["unitOfMeasurement"]["name"], "microgram per cubic metre");
    assert_eq!(
        ds["observationType"],
        "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
    );
    assert_eq!(ds["phenomenonTime"], "2026-01-01T00:00:00Z/2026-01-01T01:59:00Z");
    // Navigations to one entity, a property, its raw value, links only.
    assert_eq!(ok(&app, &format!("Datastreams({id})/Thing")).await["@iot.id"], "aq-1");
    assert_eq!(ok(&app, &format!("Datastreams({id})/ObservedProperty")).await["name"], "pm10");
    assert_eq!(ok(&app, &format!("Datastreams({id})/Sensor")).await["@iot.id"], "air_quality");
    assert_eq!(ok(&app, "Things('aq-1')/name").await, json!({"name": "Station Hôtel de Ville"}));
    let (status, raw) = sta(&app, "Things('aq-1')/name/$value").await;
    assert_eq!((status, raw), (200, Value::String("Station Hôtel de Ville".into())));
    let refs = ok(&app, "Things('aq-1')/Datastreams/$ref").await;
    assert_eq!(refs["value"][0], json!({"@iot.selfLink": format!("{base}/Datastreams({id})")}));
    // A lamp's state has no unit; its observations are booleans.
    let lamp = ok(&app, "Things('lamp-1')/Datastreams").await;
    assert_eq!(
        lamp["value"][0]["unitOfMeasurement"],
        json!({"name": null, "symbol": null, "definition": null})
    );
    let obs = ok(&app, &format!("Datastreams({})/Observations", lamp["value"][0]["@iot.id"])).await;
    assert_eq!(obs["value"][0]["result"], true);
    // Keys as Grafana's data sources send them: bare and double-quoted.
    assert_eq!(ok(&app, "Things(aq-1)").await["@iot.id"], "aq-1");
    assert_eq!(ok(&app, "Things(\"aq-1\")").await["@iot.id"], "aq-1");
}

#[tokio::test]
async fn observations_are_filtered_ordered_and_paged_from_the_store() {
    let app = city().await;
    let id = pm10_stream(&app).await;
    let obs = |q: &str| format!("Datastreams({id})/Observations?{q}");
    // result = minute: 19 readings above 100.
    let v = ok(&app, &obs("$filter=result gt 100&$count=true")).await;
    assert_eq!(v["@iot.count"], 19);
    assert_eq!(results(&v), (101..120).map(f64::from).collect::<Vec<_>>());
    // The same, form-encoded as frost_sta_client sends it.
    let v = ok(&app, &obs("%24filter=result+gt+100&%24count=true")).await;
    assert_eq!(v["@iot.count"], 19);
    // A time window (as Grafana asks: ge/le with milliseconds).
    let v = ok(&app, &obs("$filter=phenomenonTime ge 2026-01-01T01:00:00.000Z and phenomenonTime lt 2026-01-01T01:10:00.000Z")).await;
    assert_eq!(results(&v), (60..70).map(f64::from).collect::<Vec<_>>());
    assert_eq!(v["value"][0]["phenomenonTime"], "2026-01-01T01:00:00Z");
    assert_eq!(v["value"][0]["resultTime"], Value::Null);
    // Offsets are read: 02:30+02:00 is 00:30Z.
    let v = ok(&app, &obs("$filter=phenomenonTime lt 2026-01-01T02:30:00%2B02:00&$top=1000")).await;
    assert_eq!(results(&v).len(), 30);
    // Newest first, the latest value alone.
    let v = ok(&app, &obs("$orderby=phenomenonTime desc&$top=1")).await;
    assert_eq!(results(&v), [119.0]);
    let v = ok(&app, &obs("$orderby=result desc&$top=3&$filter=result lt 50")).await;
    assert_eq!(results(&v), [49.0, 48.0, 47.0]);
    // Pages: 100 by default, the next link absolute and complete, none after the last page.
    let first = ok(&app, &obs("$filter=result ge 10")).await;
    assert_eq!(results(&first).len(), 100);
    let next = first["@iot.nextLink"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with(&format!("http://{}/v1.1/Datastreams({id})/Observations?", app.addr)),
        "{next}"
    );
    let r = app.client.get(&next).bearer_auth(ADMIN).send().await.unwrap();
    let second: Value = r.json().await.unwrap();
    assert_eq!(results(&second), (110..120).map(f64::from).collect::<Vec<_>>());
    assert!(second.get("@iot.nextLink").is_none(), "no link, not null, on the last page");
    // One observation by its id, and where it leads.
    let one = &second["value"][0];
    let oid = one["@iot.id"].as_str().unwrap();
    let again = ok(&app, &format!("Observations('{oid}')")).await;
    assert_eq!(again["result"], 110.0);
    assert_eq!(ok(&app, &format!("Observations('{oid}')/Datastream")).await["@iot.id"], id);
    let foi = ok(&app, &format!("Observations('{oid}')/FeatureOfInterest")).await;
    assert_eq!(foi["@iot.id"], "hotel-de-ville");
    assert_eq!(ok(&app, &format!("Observations('{oid}')/result/$value")).await, json!(110.0));
    // The dataArray form: one item per Datastream, rows of the selected components.
    let v = ok(
        &app,
        &obs("$resultFormat=dataArray&$select=phenomenonTime,result&$top=2&$filter=result ge 118"),
    )
    .await;
    assert_eq!(
        v["value"],
        json!([{
            "Datastream@iot.navigationLink": format!("http://{}/v1.1/Datastreams({id})", app.addr),
            "components": ["phenomenonTime", "result"],
            "dataArray@iot.count": 2,
            "dataArray": [["2026-01-01T01:58:00Z", 118.0], ["2026-01-01T01:59:00Z", 119.0]],
        }])
    );
    let (status, _) = sta(&app, "Things?$resultFormat=dataArray").await;
    assert_eq!(status, 400);
    // Every observation of every stream: ordered by id (series, then time).
    let all = ok(&app, "Observations?$count=true&$top=2").await;
    assert_eq!(all["@iot.count"], 122);
}

#[tokio::test]
async fn expand_select_and_spatial_filters() {
    let app = city().await;
    let v = ok(&app, "Things('aq-1')?$select=name,id&$expand=Datastreams($select=name;$expand=ObservedProperty($select=name),Observations($top=2;$orderby=phenomenonTime desc;$count=true))").await;
    assert_eq!(v["@iot.id"], "aq-1");
    assert!(v.get("description").is_none(), "{v}");
    let ds = &v["Datastreams"][0];
    assert_eq!(ds["name"], "pm10 of aq-1");
    assert_eq!(ds["ObservedProperty"], json!({"name": "pm10"}));
    assert_eq!(ds["Observations@iot.count"], 120);
    assert_eq!(results(&json!({"value": ds["Observations"]})), [119.0, 118.0]);
    assert!(ds.get("Observations@iot.nextLink").is_none(), "no link that would drop the options");

    // The sound level meter has no position of its own: its place's is its location.
    let locs = ok(&app, "Locations?$filter=st_within(location, geography'POLYGON ((5.44 43.525, 5.45 43.525, 5.45 43.535, 5.44 43.535, 5.44 43.525))')").await;
    let mut found: Vec<String> =
        ids(&locs).iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    found.sort();
    let site = app.get_json("/api/v1/sites").await;
    let hdv = site["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "hotel-de-ville")
        .unwrap()
        .clone();
    let (lat, lon) = (hdv["lat"].as_f64().unwrap(), hdv["lon"].as_f64().unwrap());
    let inside = |la: f64, lo: f64| (43.525..43.535).contains(&la) && (5.44..5.45).contains(&lo);
    let mut want = vec!["aq-1".to_owned()];
    if inside(lat, lon) {
        want.push("noise-1".into());
    }
    want.sort();
    assert_eq!(found, want, "site at {lat},{lon}");
    let near =
        ok(&app, "Locations?$filter=geo.distance(location, geography'POINT(5.44 43.52)') lt 0.001")
            .await;
    assert_eq!(ids(&near), [json!("lamp-1")]);
    // Things by a property of their own, by navigation to one: Datastreams by their Thing.
    let v = ok(&app, "Datastreams?$filter=Thing/id eq 'noise-1'").await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert_eq!(v["value"][0]["unitOfMeasurement"]["symbol"], "dB");
    let v = ok(&app, "Things?$filter=startswith(name, 'Station') or properties/kind eq 'streetlight'&$orderby=name desc").await;
    // "lamp-1" (a lamp without a name is named by its id) sorts after "Station…".
    assert_eq!(ids(&v), [json!("lamp-1"), json!("aq-1")]);
}

#[tokio::test]
async fn bad_requests_get_the_standards_error_and_no_strain() {
    let app = city().await;
    for (path, status, why) in [
        ("Things?$filter=name eq", 400, "ends too early"),
        ("Things?$filter=name eq 'x' and (", 400, "ends too early"),
        ("Things?$filter=st_touches(location, geography'POINT(1 2)')", 501, "st_touches"),
        ("Things?$apply=groupby(name)", 501, "$apply"),
        ("Things?$top=-1", 400, "$top"),
        ("Widgets", 400, "unknown entity set"),
        ("Things('nobody')", 404, "not found"),
        ("Datastreams(999999)", 404, "not found"),
        ("Observations('1-2')", 404, "not found"),
        ("Things('aq-1')/Observations", 404, "no property \"Observations\""),
        ("Things?$filter=location eq geography'POINT(200 0)'", 400, "WGS 84"),
    ] {
        let (s, v) = sta(&app, path).await;
        assert_eq!(s, status, "{path}: {v}");
        assert_eq!(v["code"], status, "{path}: {v}");
        assert_eq!(v["type"], "error");
        assert!(v["message"].as_str().unwrap().contains(why), "{path}: {v}");
    }
    // $top=0 counts without a page, and without a next link to follow for ever.
    let v = ok(&app, "Things?$top=0&$count=true").await;
    assert_eq!((v["@iot.count"].clone(), v["value"].clone()), (json!(3), json!([])));
    assert!(v.get("@iot.nextLink").is_none());
    // A chain of expansions is bounded like nested ones.
    let (s, _) = sta(&app, "Things?$expand=Datastreams/Thing/Datastreams/Thing/Datastreams").await;
    assert_eq!(s, 400);
    // $top=10^9 is lowered to the largest page, not refused.
    let v = ok(&app, "Observations?$top=1000000000").await;
    assert_eq!(v["value"].as_array().unwrap().len(), 122);
    // A long expression is refused before it is parsed.
    let long = vec!["result gt 1"; 800].join(" or ");
    let (s, v) = sta(&app, &format!("Observations?$filter={long}")).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("longer than"), "{v}");
}

#[tokio::test]
async fn a_commune_sees_its_own_things_only() {
    let app = city().await;
    let r = app
        .post("/api/v1/communes")
        .bearer_auth(ADMIN)
        .json(&json!({"insee": "13055", "name": "Marseille"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let d =
        json!({"id": "mrs-1", "kind": "air_quality", "commune": "13055", "lat": 43.3, "lon": 5.37});
    let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
    assert_eq!(r.status(), 201);
    app.write(&format!("air_quality,device=mrs-1 pm10=5 {T0}\n")).await;
    let r = app
        .post("/api/v1/tokens")
        .bearer_auth(ADMIN)
        .json(&json!({"name": "marseille", "role": "viewer", "commune": "13055"}))
        .send()
        .await
        .unwrap();
    let tok: Value = r.json().await.unwrap();
    let Some(token) = tok["token"].as_str() else { panic!("{tok}") };
    let r = app.get("/v1.1/Things").bearer_auth(token).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(ids(&v), [json!("mrs-1")]);
    let r = app.get("/v1.1/Observations?$count=true").bearer_auth(token).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["@iot.count"], 1);
    let r = app.get("/v1.1/Things('aq-1')").bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn observations_are_created_through_ingestion() {
    let app = city().await;
    let id = pm10_stream(&app).await;
    let ingest = app.token("ingest", None).await;
    let post = |path: &str, body: Value| {
        app.post(&format!("/v1.1/{path}")).bearer_auth(&ingest).json(&body).send()
    };
    // One observation: 201, its link in Location, the entity in the body.
    let r = post("Observations", json!({"Datastream": {"@iot.id": id}, "phenomenonTime": "2026-01-01T03:00:00+01:00", "result": 42.5}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let t = (T0 + 2 * 3600) * 1_000_000_000; // 02:00Z
    assert_eq!(loc, format!("http://{}/v1.1/Observations('{id}-{t}')", app.addr));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["result"].clone(), body["phenomenonTime"].clone()),
        (json!(42.5), json!("2026-01-01T02:00:00Z"))
    );
    let r = app.client.get(&loc).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["result"], 42.5);
    // Through the Datastream's path, as frost_sta_client sends it (the whole Datastream inlined).
    let r = post(&format!("Datastreams({id})/Observations"), json!({"Datastream": {"@iot.id": id, "name": "pm10 of aq-1"}, "phenomenonTime": "2026-01-01T02:01:00Z", "result": 43}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The pipeline's rules hold: far out of range is refused with its reason, nothing stored.
    let r = post("Observations", json!({"Datastream": {"@iot.id": id}, "phenomenonTime": "2026-01-01T02:02:00Z", "result": 99999}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("range"), "{e}");
    for (body, why) in [
        (json!({"phenomenonTime": "2026-01-01T02:03:00Z", "result": 1}), "needs its Datastream"),
        (
            json!({"Datastream": {"@iot.id": id}, "phenomenonTime": "2026-01-01T02:03:00Z/2026-01-01T02:04:00Z", "result": 1}),
            "interval",
        ),
        (
            json!({"Datastream": {"@iot.id": id}, "phenomenonTime": "yesterday", "result": 1}),
            "not an ISO 8601",
        ),
        (json!({"Datastream": {"@iot.id": id}, "result": {"a": 1}}), "result must be"),
        (json!({"Datastream": {"@iot.id": 999999}, "result": 1}), "not found"),
    ] {
        let r = post("Observations", body.clone()).await.unwrap();
        let status = r.status();
        let e: Value = r.json().await.unwrap();
        assert!(status == 400 || status == 404, "{body}: {status} {e}");
        assert!(e["message"].as_str().unwrap().contains(why), "{body}: {e}");
    }
    // The dataArray extension: a link per row in order, "error …" for each refused row.
    let r = post("CreateObservations", json!([{
        "Datastream": {"@iot.id": id},
        "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
        "dataArray": [["2026-01-01T02:10:00Z", 1.5, 1], ["2026-01-01T02:11:00Z", -500, 1], ["not a time", 2, 1], ["2026-01-01T02:12:00Z", 2.5, 1]]
    }]))
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let links: Vec<String> = r
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(links.len(), 4);
    assert!(
        links[0].ends_with(&format!("Observations('{id}-{}')", t + 600_000_000_000)),
        "{links:?}"
    );
    assert!(links[1].starts_with("error ") && links[1].contains("range"), "{links:?}");
    assert!(links[2].starts_with("error ") && links[2].contains("ISO 8601"), "{links:?}");
    assert!(links[3].contains("Observations('"), "{links:?}");
    let v = ok(
        &app,
        &format!("Datastreams({id})/Observations?$filter=phenomenonTime ge 2026-01-01T02:00:00Z"),
    )
    .await;
    assert_eq!(results(&v), [42.5, 43.0, 1.5, 2.5]);
    // Reading needs no ingest token, writing does.
    let reader = app.token("read", None).await;
    let r = app
        .post("/v1.1/Observations")
        .bearer_auth(&reader)
        .json(&json!({"Datastream": {"@iot.id": id}, "result": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post("Things", json!({"name": "x"})).await.unwrap();
    assert_eq!(r.status(), 405);
}

/// The MQTT extension on agora's own endpoint, with an MQTT 5 client: subscribe to a
/// Datastream's Observations and receive them as they are stored; publish Observations to create
/// them; refusals for wildcards, unknown Datastreams and bad payloads.
#[tokio::test]
async fn observations_come_and_go_over_mqtt() {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, SubscribeReasonCode};
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let app = city().await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let (_, v) = sta(&app, "Things('aq-1')/Datastreams?$select=id,properties").await;
    let pm10 = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["properties"]["property"] == "pm10")
        .unwrap()["@iot.id"]
        .as_i64()
        .unwrap();
    let (_, v) = sta(&app, "Things('noise-1')/Datastreams?$select=id").await;
    let laeq = v["value"][0]["@iot.id"].as_i64().unwrap();
    let topic = format!("v1.1/Datastreams({pm10})/Observations");
    // The landing page says where the MQTT extension is.
    let (_, root) = sta(&app, "").await;
    let receive =
        "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates";
    assert!(
        root["serverSettings"]["conformance"].as_array().unwrap().contains(&json!(receive)),
        "{root}"
    );
    assert_eq!(
        root["serverSettings"][receive]["endpoints"],
        json!([format!("mqtt://127.0.0.1:{port}")])
    );
    let reader = app.token("read", None).await;
    let writer = app.token("ingest", None).await;

    let mut opts = MqttOptions::new("sta-reader", "127.0.0.1", port);
    opts.set_credentials(reader, "");
    let (client, mut events) = AsyncClient::new(opts, 64);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("reader connection: {e}"),
            }
        }
    });
    // One Datastream; a wildcard and an unknown Datastream are refused.
    for (filter, granted) in [
        (topic.clone(), true),
        ("v1.1/#".to_owned(), false),
        ("v1.1/Datastreams(99999)/Observations".to_owned(), false),
    ] {
        client.subscribe(filter.clone(), QoS::AtMostOnce).await.unwrap();
        let Packet::SubAck(a) = next_packet(&mut rx).await else {
            panic!("no SUBACK for {filter}")
        };
        assert_eq!(
            matches!(a.return_codes[0], SubscribeReasonCode::Success(_)),
            granted,
            "{filter}: {:?}",
            a.return_codes
        );
    }
    // Stored through HTTP: the subscriber hears of it (and not of another Datastream's).
    app.write(&format!(
        "noise,device=noise-1 laeq=70 {}\nair_quality,device=aq-1 pm10=999 {}",
        T0 + 7200,
        T0 + 7200
    ))
    .await;
    let Packet::Publish(p) = next_packet(&mut rx).await else { panic!("no PUBLISH") };
    assert_eq!(p.topic, topic.as_bytes());
    let o: Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(o["result"], 999.0);
    assert_eq!(o["phenomenonTime"], "2026-01-01T02:00:00Z");
    assert_eq!(o["@iot.id"], format!("{pm10}-{}", (T0 + 7200) * 1_000_000_000));

    // Published by a client: created through ingestion, and heard by the subscriber.
    let mut opts = MqttOptions::new("sta-writer", "127.0.0.1", port);
    opts.set_credentials(writer, "");
    let (wclient, mut wevents) = AsyncClient::new(opts, 64);
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match wevents.poll().await {
                Ok(Event::Incoming(Packet::PubAck(a))) => {
                    if wtx.send(a).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("writer connection: {e}"),
            }
        }
    });
    let publish = |topic: String, body: Value| {
        let wclient = wclient.clone();
        async move { wclient.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap() }
    };
    publish(topic.clone(), json!({"phenomenonTime": "2026-01-01T03:00:00Z", "result": 123.5}))
        .await;
    let ack = tokio::time::timeout(std::time::Duration::from_secs(10), wrx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.reason, rumqttc::v5::mqttbytes::v5::PubAckReason::Success, "{ack:?}");
    let Packet::Publish(p) = next_packet(&mut rx).await else { panic!("no PUBLISH") };
    assert_eq!(serde_json::from_slice::<Value>(&p.payload).unwrap()["result"], 123.5);
    let (_, v) = sta(
        &app,
        &format!("Datastreams({pm10})/Observations?$filter=phenomenonTime eq 2026-01-01T03:00:00Z"),
    )
    .await;
    assert_eq!(v["value"][0]["result"], 123.5, "{v}");
    publish(
        "v1.1/Observations".into(),
        json!({"Datastream": {"@iot.id": laeq}, "phenomenonTime": "2026-01-01T03:00:00Z", "result": 64}),
    )
    .await;
    wrx.recv().await.unwrap();
    let (_, v) = sta(
        &app,
        &format!("Datastreams({laeq})/Observations?$filter=phenomenonTime eq 2026-01-01T03:00:00Z"),
    )
    .await;
    assert_eq!(v["value"][0]["result"], 64.0, "{v}");

    // Refused whole, kept as dead letters, nothing stored.
    for (topic, body, why) in [
        (topic.clone(), json!({"result": {"a": 1}}), "result must be"),
        (
            topic.clone(),
            json!({"phenomenonTime": "2026-01-01T04:00:00Z/2026-01-01T05:00:00Z", "result": 1}),
            "instant",
        ),
        ("v1.1/Observations".to_owned(), json!({"result": 1}), "names its Datastream"),
        ("v1.1/Datastreams(99999)/Observations".to_owned(), json!({"result": 1}), "not found"),
    ] {
        publish(topic.clone(), body).await;
        let ack = tokio::time::timeout(std::time::Duration::from_secs(10), wrx.recv())
            .await
            .unwrap()
            .unwrap();
        let said = ack.properties.as_ref().and_then(|p| p.reason_string.clone());
        assert!(said.as_ref().is_some_and(|r| r.contains(why)), "{topic}: {ack:?}");
    }
    let (_, v) = sta(&app, &format!("Datastreams({pm10})/Observations?$filter=phenomenonTime ge 2026-01-01T04:00:00Z&$count=true")).await;
    assert_eq!(v["@iot.count"], 0, "{v}");
    let rejects = app.get_json("/api/v1/rejects?limit=50").await;
    assert!(rejects.to_string().contains("names its Datastream"), "{rejects}");
}

/// The next PUBLISH or SUBACK a client received (within 10 s).
async fn next_packet(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Packet>,
) -> rumqttc::v5::mqttbytes::v5::Packet {
    use rumqttc::v5::mqttbytes::v5::Packet;
    loop {
        let p = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("nothing came")
            .unwrap();
        if matches!(p, Packet::Publish(_) | Packet::SubAck(_)) {
            return p;
        }
    }
}
