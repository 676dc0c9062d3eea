//! NGSI-LD (`/ngsi-ld/v1`) on a small city whose answers are known: an air station (PM10 12.5
//! µg/m³, relative humidity 54 %), a sound level meter (61.5 dB) standing on its place's
//! position, a lamp that is lit.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const ENV: &str = "https://smartdatamodels.org/dataModel.Environment/";

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
    app.write(&format!(
        "air_quality,device=aq-1 pm10=12.5,relative_humidity=54 {T0}\nnoise,device=noise-1 laeq=61.5 {}\nstreetlight,device=lamp-1 lamp_on=true {T0}\n",
        T0 + 60
    ))
    .await;
    app
}

fn agora_ctx(app: &TestApp) -> String {
    format!(
        "<http://{}/ngsi-ld/v1/jsonldContexts/agora.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
        app.addr
    )
}

async fn get(
    app: &TestApp,
    path: &str,
    link: Option<&str>,
    accept: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = app.get(&format!("/ngsi-ld/v1/{path}")).bearer_auth(ADMIN);
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    if let Some(a) = accept {
        r = r.header("Accept", a);
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn devices_are_smart_data_model_entities() {
    let app = city().await;
    let link = agora_ctx(&app);
    let (status, headers, v) =
        get(&app, "entities?type=AirQualityObserved", Some(&link), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), ["urn:ngsi-ld:AirQualityObserved:aq-1"]);
    let e = &v[0];
    assert_eq!(e["type"], "AirQualityObserved");
    assert_eq!(
        e["pm10"],
        json!({"type": "Property", "value": 12.5, "observedAt": "2026-01-01T00:00:00Z", "unitCode": "GQ"})
    );
    // The models' humidity is a fraction.
    assert_eq!(e["relativeHumidity"]["value"], 0.54);
    assert_eq!(e["relativeHumidity"]["unitCode"], "C62");
    assert_eq!(
        e["location"],
        json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [5.447, 43.53]}})
    );
    assert_eq!(
        e["refDevice"],
        json!({"type": "Relationship", "object": "urn:ngsi-ld:Device:aq-1"})
    );
    assert_eq!(e["refPointOfInterest"]["object"], "urn:ngsi-ld:PointOfInterest:hotel-de-ville");
    assert_eq!(e["name"]["value"], "Station Hôtel de Ville");
    assert_eq!(
        e["dateObserved"]["value"],
        json!({"@type": "DateTime", "@value": "2026-01-01T00:00:00Z"})
    );
    assert!(e.get("@context").is_none(), "application/json: the context is in the Link header");
    let l = headers["link"].to_str().unwrap();
    assert!(
        l.contains("agora.jsonld") && l.contains("rel=\"http://www.w3.org/ns/json-ld#context\""),
        "{l}"
    );
    // The other kinds, and the device and the place themselves.
    let (_, _, v) =
        get(&app, "entities?type=NoiseLevelObserved,Streetlight", Some(&link), None).await;
    assert_eq!(
        ids(&v),
        ["urn:ngsi-ld:NoiseLevelObserved:noise-1", "urn:ngsi-ld:Streetlight:lamp-1"]
    );
    assert_eq!(v[0]["LAeq"]["unitCode"], "2N");
    assert_eq!(v[1]["powerState"]["value"], "on");
    let (status, _, d) = get(&app, "entities/urn:ngsi-ld:Device:aq-1", Some(&link), None).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["type"], "Device");
    assert_eq!(d["controlledProperty"]["value"], json!(["pm10", "relativeHumidity"]));
    let (_, _, p) =
        get(&app, "entities/urn:ngsi-ld:PointOfInterest:hotel-de-ville", Some(&link), None).await;
    assert_eq!(p["type"], "PointOfInterest");
    // Without a context, the models' names are full IRIs (the core's are short), as the
    // standard says; a type is then given by its IRI.
    let (_, headers, v) =
        get(&app, &format!("entities?type={ENV}AirQualityObserved"), None, None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:AirQualityObserved:aq-1"]);
    assert_eq!(v[0]["type"], format!("{ENV}AirQualityObserved"));
    assert_eq!(v[0][format!("{ENV}pm10")]["value"], 12.5);
    assert!(v[0]["location"].is_object());
    assert!(headers["link"].to_str().unwrap().contains("ngsi-ld-core-context"));
    let (_, _, v) = get(&app, "entities?type=AirQualityObserved", None, None).await;
    assert_eq!(v, json!([]), "a short name of no context matches nothing");
    // With the Environment model's own context, as its examples name it.
    let env = "<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"";
    let (_, _, v) = get(&app, "entities?type=AirQualityObserved&attrs=pm10", Some(env), None).await;
    assert_eq!(v[0]["pm10"]["value"], 12.5);
    assert!(v[0].get("relativeHumidity").is_none(), "attrs keeps the listed attributes only");
}

#[tokio::test]
async fn representations_queries_and_pages() {
    let app = city().await;
    let link = agora_ctx(&app);
    let (_, _, v) =
        get(&app, "entities?type=AirQualityObserved&options=keyValues", Some(&link), None).await;
    assert_eq!(v[0]["pm10"], 12.5);
    assert_eq!(v[0]["refDevice"], "urn:ngsi-ld:Device:aq-1");
    let (_, _, v) = get(
        &app,
        "entities?type=AirQualityObserved&format=concise&options=keyValues",
        Some(&link),
        None,
    )
    .await;
    assert_eq!(
        v[0]["pm10"],
        json!({"value": 12.5, "observedAt": "2026-01-01T00:00:00Z", "unitCode": "GQ"}),
        "format wins over options"
    );
    assert_eq!(v[0]["refDevice"], json!({"object": "urn:ngsi-ld:Device:aq-1"}));
    // ld+json: the context in the body.
    let (_, headers, v) =
        get(&app, "entities?type=AirQualityObserved", Some(&link), Some("application/ld+json"))
            .await;
    assert!(v[0]["@context"].as_str().unwrap().ends_with("agora.jsonld"));
    assert_eq!(headers["content-type"], "application/ld+json");
    // GeoJSON.
    let (_, _, v) =
        get(&app, "entities?type=Streetlight", Some(&link), Some("application/geo+json")).await;
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(
        v["features"][0]["geometry"],
        json!({"type": "Point", "coordinates": [5.44, 43.52]})
    );
    assert_eq!(v["features"][0]["id"], "urn:ngsi-ld:Streetlight:lamp-1");
    // q, by value, by sub-attribute, on the models' names.
    let q = |s: &str| format!("entities?q={}", urlencode(s));
    let (_, _, v) = get(&app, &q("pm10>10;pm10<=12.5"), Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:AirQualityObserved:aq-1"]);
    let (_, _, v) = get(&app, &q("pm10>12.5|LAeq==61.5"), Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:NoiseLevelObserved:noise-1"]);
    let (_, _, v) = get(&app, &q("LAeq.observedAt>=2026-01-01T00:01:00Z"), Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:NoiseLevelObserved:noise-1"]);
    let (_, _, v) = get(&app, &q("refDevice==urn:ngsi-ld:Device:aq-1"), Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:AirQualityObserved:aq-1"]);
    // Geo-queries: near in metres, within a polygon.
    let (_, _, v) = get(&app, "entities?type=Streetlight,AirQualityObserved&georel=near%3BmaxDistance%3D%3D100&geometry=Point&coordinates=%5B5.4401,43.5201%5D", Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:Streetlight:lamp-1"]);
    let (_, _, v) = get(&app, "entities?type=Streetlight,AirQualityObserved&georel=within&geometry=Polygon&coordinates=%5B%5B%5B5.44,43.525%5D,%5B5.45,43.525%5D,%5B5.45,43.535%5D,%5B5.44,43.535%5D,%5B5.44,43.525%5D%5D%5D", Some(&link), None).await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:AirQualityObserved:aq-1"]);
    // idPattern, pages and the count.
    let (status, headers, v) = get(
        &app,
        "entities?idPattern=%5Eurn:ngsi-ld:Device:.*&limit=2&count=true",
        Some(&link),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), ["urn:ngsi-ld:Device:aq-1", "urn:ngsi-ld:Device:lamp-1"]);
    assert_eq!(headers["ngsild-results-count"], "3");
    let next = headers
        .get_all("link")
        .iter()
        .map(|l| l.to_str().unwrap())
        .find(|l| l.contains("rel=\"next\""))
        .unwrap();
    assert!(next.contains("offset=2"), "{next}");
    let (_, headers, v) = get(
        &app,
        "entities?idPattern=%5Eurn:ngsi-ld:Device:.*&limit=2&offset=2",
        Some(&link),
        None,
    )
    .await;
    assert_eq!(ids(&v), ["urn:ngsi-ld:Device:noise-1"]);
    assert!(headers.get_all("link").iter().all(|l| !l.to_str().unwrap().contains("rel=\"next\"")));
    // The contexts agora serves are the published ones.
    let r = app.get("/ngsi-ld/v1/jsonldContexts/sdm-Environment.jsonld").send().await.unwrap();
    assert_eq!(r.status(), 200, "contexts are public");
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["@context"]["pm10"], format!("{ENV}pm10"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bad_requests_get_problem_details() {
    let app = city().await;
    let link = agora_ctx(&app);
    for (path, link, accept, status, kind, why) in [
        (
            "entities?type=A&q=pm10%3E",
            Some(link.as_str()),
            None,
            400,
            "BadRequestData",
            "ends where a value",
        ),
        (
            "entities?type=A&q=name~%3D%22x%22",
            Some(&link),
            None,
            422,
            "OperationNotSupported",
            "~=",
        ),
        ("entities?type=A&limit=2000", Some(&link), None, 403, "TooManyResults", "above 1000"),
        ("entities?type=A&limit=0", Some(&link), None, 400, "BadRequestData", "count=true"),
        ("entities?limit=5", Some(&link), None, 400, "BadRequestData", "at least one of"),
        (
            "entities?type=A&options=fancy",
            Some(&link),
            None,
            400,
            "BadRequestData",
            "unknown option",
        ),
        (
            "entities?type=A&georel=near&geometry=Point&coordinates=%5B1,2%5D",
            Some(&link),
            None,
            400,
            "BadRequestData",
            "maxDistance",
        ),
        (
            "entities?type=A&georel=within&geometry=Point",
            Some(&link),
            None,
            400,
            "BadRequestData",
            "together",
        ),
        (
            "entities?type=A&georel=within&geometry=Point&coordinates=%5B200,2%5D",
            Some(&link),
            None,
            400,
            "BadRequestData",
            "WGS 84",
        ),
        (
            "entities?type=A",
            Some("<https://example.org/ctx.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\""),
            None,
            503,
            "LdContextNotAvailable",
            "fetches no remote context",
        ),
        (
            "entities?type=A",
            Some(&link),
            Some("text/csv"),
            406,
            "NotAcceptable",
            "application/json",
        ),
        (
            "entities/urn:ngsi-ld:Device:nobody",
            Some(&link),
            None,
            404,
            "ResourceNotFound",
            "no entity",
        ),
        ("entities/not-a-uri", Some(&link), None, 400, "BadRequestData", "not a URI"),
        ("entities?idPattern=(a%7Cb)", Some(&link), None, 400, "BadRequestData", "not supported"),
    ] {
        let (s, headers, v) = get(&app, path, link, accept).await;
        assert_eq!(s, status, "{path}: {v}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(v["type"], format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "{path}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(why), "{path}: {v}");
        assert!(v["title"].is_string());
    }
    // A geometry past 10,000 positions (agora_interop::geo's tests) cannot even be written in a
    // URI: the HTTP stack caps one at 64 KiB.
}

/// The temporal API on readings whose answers are known, and its aggregates against agora's own
/// `/api/v1/aggregate`: PM10 = m at minute m for two hours (hourly means 29.5 and 89.5), a sound
/// level alternating 60 and 70 dB for an hour (energy mean 10·log10((10^6 + 10^7)/2) = 67.40 dB,
/// not the arithmetic 65).
#[tokio::test]
async fn temporal_values_and_aggregates_agree_with_agora() {
    let app = TestApp::spawn().await;
    for d in [
        json!({"id": "aq-t", "kind": "air_quality", "site": "hotel-de-ville", "commune": "13001"}),
        json!({"id": "noise-t", "kind": "noise", "site": "hotel-de-ville", "commune": "13001"}),
    ] {
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    let mut lines = String::new();
    for m in 0..120 {
        lines.push_str(&format!("air_quality,device=aq-t pm10={m} {}\n", T0 + m * 60));
        if m < 60 {
            lines.push_str(&format!(
                "noise,device=noise-t laeq={} {}\n",
                if m % 2 == 0 { 60 } else { 70 },
                T0 + m * 60
            ));
        }
    }
    app.write(&lines).await;
    let link = agora_ctx(&app);
    let aq = "temporal/entities/urn:ngsi-ld:AirQualityObserved:aq-t";
    // Normalized instances in a window, and temporalValues.
    let (status, _, v) = get(
        &app,
        &format!("{aq}?timerel=between&timeAt=2026-01-01T01:00:00Z&endTimeAt=2026-01-01T01:03:00Z"),
        Some(&link),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], "urn:ngsi-ld:AirQualityObserved:aq-t");
    assert_eq!(
        v["pm10"],
        json!([
            {"type": "Property", "value": 60.0, "observedAt": "2026-01-01T01:00:00Z", "unitCode": "GQ"},
            {"type": "Property", "value": 61.0, "observedAt": "2026-01-01T01:01:00Z", "unitCode": "GQ"},
            {"type": "Property", "value": 62.0, "observedAt": "2026-01-01T01:02:00Z", "unitCode": "GQ"},
        ])
    );
    let (_, _, v) =
        get(&app, &format!("{aq}?lastN=2&options=temporalValues"), Some(&link), None).await;
    assert_eq!(
        v["pm10"],
        json!({"type": "Property", "values": [[118.0, "2026-01-01T01:58:00Z"], [119.0, "2026-01-01T01:59:00Z"]]})
    );
    let (_, _, v) = get(
        &app,
        &format!("{aq}?timerel=before&timeAt=2026-01-01T00:02:00Z&options=temporalValues"),
        Some(&link),
        None,
    )
    .await;
    assert_eq!(
        v["pm10"]["values"],
        json!([[0.0, "2026-01-01T00:00:00Z"], [1.0, "2026-01-01T00:01:00Z"]])
    );
    // Aggregates per hour: the same numbers as agora's own aggregate.
    let (_, _, v) = get(&app, &format!("{aq}?options=aggregatedValues&aggrMethods=avg,min,max,sum,totalCount&aggrPeriodDuration=PT1H&timerel=between&timeAt=2026-01-01T00:00:00Z&endTimeAt=2026-01-01T02:00:00Z"), Some(&link), None).await;
    let a = &v["pm10"];
    assert_eq!(
        a["avg"],
        json!([
            [29.5, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"],
            [89.5, "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"]
        ])
    );
    assert_eq!(a["min"][1][0], 60.0);
    assert_eq!(a["max"][0][0], 59.0);
    assert_eq!(a["sum"][0][0], 1770.0);
    assert_eq!(a["totalCount"][1][0], 60);
    let own = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-t&property=pm10&from={T0}&to={}&every=1h&fn=mean",
            T0 + 7200
        ))
        .await;
    let own: Vec<f64> = own["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    let ngsi: Vec<f64> =
        a["avg"].as_array().unwrap().iter().map(|r| r[0].as_f64().unwrap()).collect();
    assert_eq!(ngsi, own);
    // Sound levels are averaged as energy, as agora's aggregate does.
    let (_, _, v) = get(&app, "temporal/entities/urn:ngsi-ld:NoiseLevelObserved:noise-t?aggrMethods=avg&aggrPeriodDuration=PT1H", Some(&link), None).await;
    let laeq = v["LAeq"]["avg"][0][0].as_f64().unwrap();
    assert!((laeq - 10.0 * ((1e6 + 1e7) / 2.0f64).log10()).abs() < 1e-9, "{laeq}");
    let own = app
        .get_json(&format!(
            "/api/v1/aggregate?device=noise-t&property=laeq&from={T0}&to={}&every=1h&fn=mean",
            T0 + 3600
        ))
        .await;
    assert!((own["series"][0]["points"][0]["value"].as_f64().unwrap() - laeq).abs() < 1e-9);
    // The whole range as one period when none is given.
    let (_, _, v) = get(&app, &format!("{aq}?aggrMethods=totalCount,avg"), Some(&link), None).await;
    assert_eq!(
        v["pm10"]["totalCount"],
        json!([[120, "2026-01-01T00:00:00Z", "2026-01-01T01:59:00.000000001Z"]])
    );
    assert_eq!(v["pm10"]["avg"][0][0], 59.5);
    // Several entities at once, and the errors.
    let (status, _, v) = get(
        &app,
        "temporal/entities?type=AirQualityObserved,NoiseLevelObserved&lastN=1",
        Some(&link),
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    for (q, status, why) in [
        ("timerel=between&timeAt=2026-01-01T00:00:00Z", 400, "needs timeAt and endTimeAt"),
        ("timerel=sometime&timeAt=2026-01-01T00:00:00Z", 400, "unknown timerel"),
        ("lastN=0", 400, "at least 1"),
        ("aggrMethods=stddev", 422, "not supported"),
        ("aggrMethods=avg&aggrPeriodDuration=P1M", 422, "years and months"),
        ("aggrMethods=avg&aggrPeriodDuration=hourly", 400, "ISO 8601"),
        ("options=temporalValues,aggregatedValues&aggrMethods=avg", 400, "exclude each other"),
    ] {
        let (s, _, v) = get(&app, &format!("{aq}?{q}"), Some(&link), None).await;
        assert_eq!(s, status, "{q}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(why), "{q}: {v}");
    }
}

/// Provision: entities sent by a FIWARE IoT Agent or another broker become readings, through
/// ingestion, with an ingest token.
#[tokio::test]
async fn entities_are_provided_through_ingestion() {
    let app = city().await;
    let link = agora_ctx(&app);
    let token = app.token("ingest", None).await;
    let send = |method: reqwest::Method, path: &str, body: Value, ld: bool| {
        let mut r =
            app.client.request(method, app.url(&format!("/ngsi-ld/v1/{path}"))).bearer_auth(&token);
        r = if ld {
            r.header("Content-Type", "application/ld+json")
        } else {
            r.header("Content-Type", "application/json").header("Link", &link)
        };
        r.body(body.to_string()).send()
    };
    // A new entity: a new device, its readings stored (54 % sent as the model's 0.54).
    let r = send(
        reqwest::Method::POST,
        "entities",
        json!({"id": "urn:ngsi-ld:AirQualityObserved:aq-new", "type": "AirQualityObserved",
               "pm10": {"type": "Property", "value": 33.5, "observedAt": "2026-01-01T05:00:00Z"},
               "relativeHumidity": {"type": "Property", "value": 0.54, "observedAt": "2026-01-01T05:00:00Z"}}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    assert_eq!(
        r.headers()["location"],
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:aq-new"
    );
    let v = app.values("aq-new", "relative_humidity", T0, T0 + 86_400).await;
    assert_eq!(v.len(), 1);
    assert!((v[0].1.as_f64().unwrap() - 54.0).abs() < 1e-9, "{v:?}");
    let r = send(reqwest::Method::POST, "entities", json!({"id": "urn:ngsi-ld:AirQualityObserved:aq-new", "type": "AirQualityObserved", "pm10": 1}), false).await.unwrap();
    assert_eq!(r.status(), 409);
    // New readings of an existing entity, in concise form and with the context in the body.
    let r = send(
        reqwest::Method::PATCH,
        "entities/urn:ngsi-ld:AirQualityObserved:aq-new/attrs",
        json!({"pm10": {"value": 35.0, "observedAt": "2026-01-01T05:01:00Z"},
               "@context": format!("http://{}/ngsi-ld/v1/jsonldContexts/agora.jsonld", app.addr)}),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let v = app.values("aq-new", "pm10", T0, T0 + 86_400).await;
    assert_eq!(v.iter().map(|p| p.1.as_f64().unwrap()).collect::<Vec<_>>(), [33.5, 35.0]);
    // Upsert: created ids (201), then a partial refusal (207) naming the refused entity.
    let r = send(
        reqwest::Method::POST,
        "entityOperations/upsert",
        json!([{"id": "urn:ngsi-ld:Streetlight:lamp-9", "type": "Streetlight", "powerState": {"type": "Property", "value": "on", "observedAt": "2026-01-01T05:00:00Z"}}]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(["urn:ngsi-ld:Streetlight:lamp-9"]));
    assert_eq!(app.values("lamp-9", "lamp_on", T0, T0 + 86_400).await[0].1, json!(true));
    let r = send(
        reqwest::Method::POST,
        "entityOperations/upsert",
        json!([
            {"id": "urn:ngsi-ld:Streetlight:lamp-9", "type": "Streetlight", "powerState": {"type": "Property", "value": "off", "observedAt": "2026-01-01T05:01:00Z"}},
            {"id": "urn:ngsi-ld:AirQualityObserved:aq-new", "type": "AirQualityObserved", "pm10": {"type": "Property", "value": 99999, "observedAt": "2026-01-01T05:02:00Z"}},
            {"id": "urn:ngsi-ld:Spaceship:x", "type": "Spaceship", "speed": 1}
        ]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 207);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["success"], json!(["urn:ngsi-ld:Streetlight:lamp-9"]));
    let errors: Vec<&str> =
        v["errors"].as_array().unwrap().iter().map(|e| e["entityId"].as_str().unwrap()).collect();
    assert_eq!(errors.len(), 2);
    assert!(
        errors.contains(&"urn:ngsi-ld:AirQualityObserved:aq-new")
            && errors.contains(&"urn:ngsi-ld:Spaceship:x")
    );
    // Bad bodies, and no writing with a read token.
    for (body, ld, status, why) in [
        (
            json!({"id": "urn:ngsi-ld:AirQualityObserved:z", "type": "AirQualityObserved", "pm10": 1, "@context": "x"}),
            false,
            400,
            "Link header, not an @context",
        ),
        (
            json!({"id": "urn:ngsi-ld:AirQualityObserved:z", "type": "AirQualityObserved", "pm10": 1}),
            true,
            400,
            "needs its @context",
        ),
        (
            json!({"id": "urn:ngsi-ld:Device:z", "type": "AirQualityObserved", "pm10": 1}),
            false,
            400,
            "must be urn:ngsi-ld:AirQualityObserved:",
        ),
        (
            json!({"id": "urn:ngsi-ld:AirQualityObserved:z", "type": "AirQualityObserved", "colour": 1}),
            false,
            400,
            "not a property agora knows",
        ),
    ] {
        let r = send(reqwest::Method::POST, "entities", body.clone(), ld).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["detail"].as_str().unwrap().contains(why), "{body}: {e}");
    }
    let reader = app.token("read", None).await;
    let r = app
        .post("/ngsi-ld/v1/entities")
        .bearer_auth(&reader)
        .header("Content-Type", "application/json")
        .header("Link", &link)
        .body(json!({"id": "urn:ngsi-ld:AirQualityObserved:z", "type": "AirQualityObserved", "pm10": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A local notification receiver: answers 500 to the first `fail` requests, then 204; keeps the
/// headers and bodies it got.
async fn receiver(
    fail: usize,
) -> (
    String,
    std::sync::Arc<parking_lot::Mutex<Vec<(axum::http::HeaderMap, Value, std::time::Instant)>>>,
) {
    let got = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let g = g.clone();
            async move {
                let mut v = g.lock();
                v.push((
                    h,
                    serde_json::from_str(&body).unwrap_or(Value::String(body)),
                    std::time::Instant::now(),
                ));
                if v.len() <= fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

type Got =
    std::sync::Arc<parking_lot::Mutex<Vec<(axum::http::HeaderMap, Value, std::time::Instant)>>>;

/// Wait (at most 15 s) until `got` holds `n` requests.
async fn wait_for(got: &Got, n: usize) {
    for _ in 0..300 {
        if got.lock().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} notifications, got {}: {:?}",
        got.lock().len(),
        got.lock().iter().map(|x| x.1.clone()).collect::<Vec<_>>()
    );
}

async fn subscribe(
    app: &TestApp,
    token: &str,
    body: &Value,
    link: Option<&str>,
) -> reqwest::Response {
    let mut r = app
        .post("/ngsi-ld/v1/subscriptions")
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn subscriptions_notify_as_data_is_stored() {
    let app = TestApp::spawn_with(|c| {
        c.alerts.first_retry_ms = 50;
        c.alerts.max_attempts = 3;
        // The receivers are on this machine: internal addresses need the operator's consent.
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for d in [
        json!({"id": "aq-1", "kind": "air_quality", "commune": "13001", "lat": 43.53, "lon": 5.447}),
        json!({"id": "aq-2", "kind": "air_quality", "commune": "13001", "lat": 43.2, "lon": 5.3}),
        json!({"id": "noise-1", "kind": "noise", "commune": "13001", "lat": 43.53, "lon": 5.447}),
    ] {
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let link = agora_ctx(&app);
    // The receiver fails once: the notification is retried, and both attempts are counted.
    let (air_url, air) = receiver(1).await;
    let r = subscribe(
        &app,
        ADMIN,
        &json!({
            "type": "Subscription",
            "entities": [{"type": "AirQualityObserved"}],
            "watchedAttributes": ["pm10"],
            // Humidity is not in the batches that bring PM10: read from the store.
            "q": "pm10>40;relativeHumidity<0.9",
            "geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [5.447, 43.53]},
            "notification": {"attributes": ["pm10"], "format": "keyValues",
                "endpoint": {"uri": air_url, "accept": "application/json"}}
        }),
        Some(&link),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let air_id = location.rsplit('/').next().unwrap().to_owned();
    assert!(air_id.starts_with("urn:ngsi-ld:Subscription:"), "{air_id}");

    let (noise_url, noise) = receiver(0).await;
    let r = subscribe(
        &app,
        ADMIN,
        &json!({
            "id": "urn:ngsi-ld:Subscription:noise",
            "type": "Subscription",
            "entities": [{"type": "NoiseLevelObserved", "id": "urn:ngsi-ld:NoiseLevelObserved:noise-1"}],
            "throttling": 2,
            "notification": {"endpoint": {"uri": noise_url, "accept": "application/ld+json"}},
            "@context": format!("http://{}/ngsi-ld/v1/jsonldContexts/agora.jsonld", app.addr)
        }),
        None,
    )
    .await;
    // ld+json carries its context in the body.
    assert_eq!(r.status(), 400, "a JSON body with @context is refused");
    let r = app
        .post("/ngsi-ld/v1/subscriptions/")
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/ld+json")
        .body(
            json!({
                "id": "urn:ngsi-ld:Subscription:noise",
                "type": "Subscription",
                "entities": [{"type": "NoiseLevelObserved", "id": "urn:ngsi-ld:NoiseLevelObserved:noise-1"}],
                "throttling": 2,
                "notification": {"endpoint": {"uri": noise_url, "accept": "application/ld+json"}},
                "@context": format!("http://{}/ngsi-ld/v1/jsonldContexts/agora.jsonld", app.addr)
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Not above the threshold, not a watched attribute, too far away, another type: nothing.
    app.write(&format!("air_quality,device=aq-1 pm10=12 {T0}")).await;
    app.write(&format!("air_quality,device=aq-1 relative_humidity=60 {}", T0 + 1)).await;
    app.write(&format!("air_quality,device=aq-2 pm10=90 {}", T0 + 1)).await;
    // Above: notified (after one failed attempt).
    app.write(&format!("air_quality,device=aq-1 pm10=55 {}", T0 + 2)).await;
    wait_for(&air, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    {
        let got = air.lock();
        assert_eq!(
            got.len(),
            2,
            "one notification, tried twice: {:?}",
            got.iter().map(|x| &x.1).collect::<Vec<_>>()
        );
        let (h, n, _) = &got[1];
        assert_eq!(h["content-type"], "application/json");
        assert!(
            h["link"].to_str().unwrap().contains("/ngsi-ld/v1/jsonldContexts/agora.jsonld"),
            "{h:?}"
        );
        assert_eq!(n["type"], "Notification");
        assert_eq!(n["subscriptionId"], air_id.as_str());
        assert!(n["notifiedAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            n["data"],
            json!([{"id": "urn:ngsi-ld:AirQualityObserved:aq-1", "type": "AirQualityObserved", "pm10": 55.0}])
        );
        assert_eq!(got[0].1, got[1].1, "the retry sends the same notification");
    }
    // Its state and counters.
    let (status, _, s) = get(&app, &format!("subscriptions/{air_id}"), None, None).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["status"], "active");
    assert_eq!(s["q"], "pm10>40;relativeHumidity<0.9");
    assert_eq!(s["notification"]["endpoint"]["uri"], air_url.as_str());
    assert_eq!(s["notification"]["timesSent"], 1);
    assert_eq!(s["notification"]["timesFailed"], 1);
    assert_eq!(s["notification"]["status"], "ok");
    assert_eq!(s["notification"]["lastFailureReason"], "HTTP 500");
    assert!(s["jsonldContext"].as_str().unwrap().ends_with("agora.jsonld"), "{s}");
    // Each attempt is in the action log.
    let log = app.get_json("/api/v1/deliveries?limit=50").await;
    let mine: Vec<&Value> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["action"] == "ngsi-ld" && d["target"].as_str().unwrap().starts_with(&air_id))
        .collect();
    assert_eq!(mine.len(), 2, "{log}");
    assert_eq!(mine.iter().filter(|d| d["ok"] == true).count(), 1);

    // Throttled: the first change at once, the next two held and sent as one, as they are then.
    app.write(&format!("noise,device=noise-1 laeq=61.5 {}", T0 + 10)).await;
    wait_for(&noise, 1).await;
    app.write(&format!("noise,device=noise-1 laeq=70 {}", T0 + 11)).await;
    app.write(&format!("noise,device=noise-1 laeq=72.5 {}", T0 + 12)).await;
    wait_for(&noise, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    {
        let got = noise.lock();
        assert_eq!(got.len(), 2, "{:?}", got.iter().map(|x| &x.1).collect::<Vec<_>>());
        assert!(got[1].2 - got[0].2 >= std::time::Duration::from_millis(1900), "throttled");
        let (h, n, _) = &got[1];
        assert_eq!(h["content-type"], "application/ld+json");
        assert!(n["@context"].as_str().unwrap().ends_with("agora.jsonld"), "{n}");
        assert_eq!(n["subscriptionId"], "urn:ngsi-ld:Subscription:noise");
        let e = &n["data"][0];
        assert_eq!(e["type"], "NoiseLevelObserved");
        assert_eq!(e["LAeq"]["type"], "Property");
        assert_eq!(e["LAeq"]["value"], 72.5);
        assert_eq!(e["LAeq"]["observedAt"], "2026-01-01T00:00:12Z");
        assert!(e.get("@context").is_none(), "the context is given once");
    }

    // Listing and paging.
    let r = app
        .get("/ngsi-ld/v1/subscriptions?limit=1&count=true")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["ngsild-results-count"], "2");
    assert!(r.headers().get_all("link").iter().any(|l| l.to_str().unwrap().contains("offset=1")));
    assert_eq!(r.json::<Value>().await.unwrap().as_array().unwrap().len(), 1);

    // Paused: nothing more.
    let r = app
        .client
        .patch(app.url(&format!("/ngsi-ld/v1/subscriptions/{air_id}")))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body(json!({"isActive": false}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    app.write(&format!("air_quality,device=aq-1 pm10=80 {}", T0 + 20)).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.write(&format!("noise,device=noise-1 laeq=50 {}", T0 + 21)).await;
    wait_for(&noise, 3).await;
    assert_eq!(air.lock().len(), 2, "a paused subscription sends nothing");
    let (_, _, s) = get(&app, &format!("subscriptions/{air_id}"), None, None).await;
    assert_eq!(s["status"], "paused");
    assert_eq!(s["notification"]["format"], "keyValues", "the rest kept");

    // Subscriptions outlive a restart, with their counters.
    let mut app = app;
    app.restart().await;
    let (status, _, s) =
        get(&app, "subscriptions/urn:ngsi-ld:Subscription:noise", None, None).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["notification"]["timesSent"], 3);
    app.write(&format!("noise,device=noise-1 laeq=52 {}", T0 + 30)).await;
    wait_for(&noise, 4).await;

    // Deleted: gone.
    let r = app
        .client
        .delete(app.url("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:noise"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:noise")
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    ngsi_problem(r, 404, "ResourceNotFound").await;
}

/// An NGSI-LD error: its status, its type, a detail.
async fn ngsi_problem(r: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "{b}");
    assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()), "{b}");
    b
}

#[tokio::test]
async fn subscriptions_show_only_what_their_maker_may_see_and_refuse_bad_input() {
    let app = TestApp::spawn_with(|c| {
        c.alerts.allow_hosts = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for c in [
        json!({"insee": "13001", "name": "Aix-en-Provence"}),
        json!({"insee": "13055", "name": "Marseille"}),
    ] {
        let r = app.post("/api/v1/communes").bearer_auth(ADMIN).json(&c).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    for d in [
        json!({"id": "aq-aix", "kind": "air_quality", "commune": "13001"}),
        json!({"id": "aq-mrs", "kind": "air_quality", "commune": "13055"}),
    ] {
        let r = app.post("/api/v1/devices").bearer_auth(ADMIN).json(&d).send().await.unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let operator = |commune: &str| {
        let body = json!({"name": format!("op {commune}"), "role": "operator", "commune": commune});
        let app = &app;
        async move {
            let r = app.post("/api/v1/tokens").bearer_auth(ADMIN).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
        }
    };
    let (aix, mrs) = (operator("13001").await, operator("13055").await);
    let (url, got) = receiver(0).await;
    let sub = |id: &str| {
        json!({"id": id, "type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
            "notification": {"format": "keyValues", "endpoint": {"uri": url}}})
    };
    let link = agora_ctx(&app);
    let r = subscribe(&app, &mrs, &sub("urn:ngsi-ld:Subscription:mrs"), Some(&link)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    // Aix's operator does not see Marseille's subscription.
    let r = app.get("/ngsi-ld/v1/subscriptions").bearer_auth(&aix).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    let r = app
        .get("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:mrs")
        .bearer_auth(&aix)
        .send()
        .await
        .unwrap();
    ngsi_problem(r, 404, "ResourceNotFound").await;
    // Both stations change; Marseille's subscription hears of its own only.
    app.write(&format!(
        "air_quality,device=aq-aix pm10=20 {T0}\nair_quality,device=aq-mrs pm10=30 {T0}"
    ))
    .await;
    wait_for(&got, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    {
        let got = got.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(ids(&got[0].1["data"]), ["urn:ngsi-ld:AirQualityObserved:aq-mrs"]);
    }

    // Bad input: the standard's errors, nothing stored.
    let reader = app.token("read", None).await;
    let r = subscribe(&app, &reader, &sub("urn:ngsi-ld:Subscription:r"), None).await;
    assert_eq!(r.status(), 403, "a read token may not subscribe");
    let cases = [
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}]}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "q": "pm10>>", "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "timeInterval": 60, "notification": {"endpoint": {"uri": url}}}),
            422,
            "OperationNotSupported",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "notification": {"endpoint": {"uri": "http://169.254.169.254/latest"}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "notification": {"endpoint": {"uri": "ftp://example.org/x"}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "throttling": -1, "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "expiresAt": "2001-01-01T00:00:00Z", "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved"}], "geoQ": {"georel": "near;maxDistance==10", "geometry": "Point", "coordinates": [1]}, "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (sub("urn:ngsi-ld:Subscription:mrs"), 409, "AlreadyExists"),
        (sub("urn:ngsi-ld:Subscription:a/b"), 400, "BadRequestData"),
        (
            json!({"type": "Subscription", "entities": [{"type": "AirQualityObserved", "colour": "red"}], "notification": {"endpoint": {"uri": url}}}),
            400,
            "BadRequestData",
        ),
        (
            json!({"type": "Subscription", "description": "x".repeat(70_000), "entities": [{"type": "AirQualityObserved"}], "notification": {"endpoint": {"uri": url}}}),
            413,
            "BadRequestData",
        ),
    ];
    for (body, status, kind) in cases {
        let r = subscribe(&app, ADMIN, &body, Some(&link)).await;
        let p = ngsi_problem(r, status, kind).await;
        assert!(p["title"] != "Internal error", "{body}: {p}");
    }
    let r = subscribe(
        &app,
        ADMIN,
        &sub("urn:ngsi-ld:Subscription:x"),
        Some("<https://example.org/unknown.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\""),
    )
    .await;
    ngsi_problem(r, 503, "LdContextNotAvailable").await;
    let r =
        app.get("/ngsi-ld/v1/subscriptions?count=true").bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.headers()["ngsild-results-count"], "1", "nothing stored by the refusals");

    // Credentials in the endpoint are never shown; sent back masked, they are kept.
    let secret_url = url.replace("http://", "http://hook:s3cr3t-pw@");
    let mut body = sub("urn:ngsi-ld:Subscription:creds");
    body["notification"]["endpoint"]["uri"] = json!(secret_url);
    let r = subscribe(&app, ADMIN, &body, Some(&link)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let (_, _, shown) = get(&app, "subscriptions/urn:ngsi-ld:Subscription:creds", None, None).await;
    assert!(!shown.to_string().contains("s3cr3t-pw"), "{shown}");
    let fragment = json!({"notification": {"endpoint": shown["notification"]["endpoint"].clone()}});
    let r = app
        .client
        .patch(app.url("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:creds"))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body(fragment.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let before = got.lock().len();
    app.write(&format!("air_quality,device=aq-aix pm10=21 {}", T0 + 60)).await;
    wait_for(&got, before + 1).await;
    let auth = got.lock()[before].0["authorization"].to_str().unwrap().to_owned();
    // hook:s3cr3t-pw
    assert_eq!(auth, "Basic aG9vazpzM2NyM3QtcHc=", "the real credentials are used");
}
