//! The permission matrix, generated from the policy table itself (`agora_api::policy::ROUTES`)
//! and the roles' matrix (`agora_model::permissions`): every route × every role × an object of
//! the caller's own commune and of another commune, each answer checked against what the model
//! says. A route of the router without an entry in the table, or without a request here, fails.

use std::collections::BTreeSet;

use agora_api::policy::{Access, ROUTES};
use agora_model::InseeCode;
use agora_model::permissions::{Action, Domain, Grant, Role};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

/// The two communes' objects.
struct Side {
    commune: &'static str,
    site: &'static str,
    device: &'static str,
    rule: &'static str,
    alert: i64,
    person: String,
    device_secret: String,
}

/// Someone calling: their grant (`None`: nobody) and their token.
struct Caller {
    label: String,
    grant: Option<Grant>,
    secret: Option<String>,
}

async fn admin_json(app: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let r = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

async fn side(
    app: &TestApp,
    commune: &'static str,
    site: &'static str,
    device: &'static str,
) -> Side {
    admin_json(
        app,
        Method::POST,
        "/api/v1/devices",
        json!({"id": device, "kind": "air_quality", "site": site, "commune": commune}),
    )
    .await;
    let rule = if commune == "13001" { "aix-pm10" } else { "mrs-pm10" };
    admin_json(
        app,
        Method::POST,
        "/api/v1/rules",
        json!({"id": rule, "scope": {"device": device},
        "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}}),
    )
    .await;
    let t = agora_model::Clock::now(&agora_model::SystemClock).as_nanos() / 1_000_000_000 - 60;
    app.write(&format!("air_quality,device={device} pm10=60 {t}")).await;
    let mut alert = None;
    for _ in 0..100 {
        let v = app.get_json(&format!("/api/v1/alerts?rule={rule}")).await;
        if let Some(id) = v["alerts"][0]["id"].as_i64() {
            alert = Some(id);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let person = admin_json(
        app,
        Method::POST,
        "/api/v1/people",
        json!({
        "email": format!("agent.{commune}@example.fr"), "name": format!("Agent {commune}"),
        "role": "viewer", "commune": commune}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let device_secret = admin_json(
        app,
        Method::POST,
        "/api/v1/tokens",
        json!({
        "name": format!("{device} token"), "role": "device", "commune": commune, "device": device}),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    Side {
        commune,
        site,
        device,
        rule,
        alert: alert.expect("an alert opened"),
        person,
        device_secret,
    }
}

/// An open dataset of a commune's air quality.
fn open_dataset(id: &str, commune: &str) -> Value {
    json!({"id": id, "kind": "measurements", "title": "Air", "description": "Air",
           "theme": "air", "commune": commune, "published": true})
}

/// A point of interest at a side's place.
fn poi(id: &str, s: &Side) -> Value {
    let (lat, lon) = if s.commune == "13001" { (43.5299, 5.4474) } else { (43.295, 5.374) };
    json!({"id": id, "kind": "fountain", "lat": lat, "lon": lon,
           "name": {"fr": "Fontaine", "en": "Fountain"}})
}

fn tour(id: &str, a: &str, b: &str) -> Value {
    json!({"id": id, "title": {"fr": "Balade", "en": "Walk"}, "stops": [a, b]})
}

/// A request for one route against one side's objects; `None` for a route this test does not
/// know (the test then fails, naming it).
struct Call {
    path: String,
    body: Option<Value>,
    /// Raw body (line protocol, CSV).
    raw: Option<String>,
    /// The domain of the object it changes (a department acts on its own only).
    domain: Option<Domain>,
    /// Whether the request names an object of its side (else it is the same for both sides and
    /// only the role is checked).
    targeted: bool,
}

impl Call {
    fn new(path: impl Into<String>) -> Self {
        Call { path: path.into(), body: None, raw: None, domain: None, targeted: true }
    }
    fn json(mut self, v: Value) -> Self {
        self.body = Some(v);
        self
    }
    fn raw(mut self, s: String) -> Self {
        self.raw = Some(s);
        self
    }
    fn domain(mut self, d: Domain) -> Self {
        self.domain = Some(d);
        self
    }
    fn untargeted(mut self) -> Self {
        self.targeted = false;
        self
    }
}

/// An NGSI-LD subscription to one device's entity (its endpoint is never reached: no DNS).
fn subscription(id: &str, device: &str) -> Value {
    json!({"id": format!("urn:ngsi-ld:Subscription:{id}"), "type": "Subscription",
        "entities": [{"type": "AirQualityObserved", "id": format!("urn:ngsi-ld:AirQualityObserved:{device}")}],
        "notification": {"endpoint": {"uri": "https://hooks.example.invalid/agora"}}})
}

/// Objects made fresh for a destructive call (deleting a token, a rule, a person).
async fn fresh(app: &TestApp, what: &str, s: &Side, n: usize) -> String {
    match what {
        "token" => admin_json(
            app,
            Method::POST,
            "/api/v1/tokens",
            json!({
            "name": format!("fresh {n}"), "role": "viewer", "commune": s.commune}),
        )
        .await["info"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        "dataset" => {
            let id = format!("fresh-{}-{n}", s.commune);
            admin_json(
                app,
                Method::POST,
                "/api/v1/open-data/datasets",
                open_dataset(&id, s.commune),
            )
            .await;
            id
        }
        "rule" => {
            let id = format!("fresh-{}-{n}", s.commune);
            admin_json(
                app,
                Method::POST,
                "/api/v1/rules",
                json!({"id": id,
                "scope": {"device": s.device},
                "condition": {"threshold": {"property": "pm10", "op": ">", "value": 500.0}}}),
            )
            .await;
            id
        }
        "subscription" => {
            let id = format!("fresh-{}-{n}", s.commune);
            admin_json(app, Method::POST, "/ngsi-ld/v1/subscriptions", subscription(&id, s.device))
                .await;
            format!("urn:ngsi-ld:Subscription:{id}")
        }
        "poi" => {
            let id = format!("poi-{}-{n}", s.commune);
            let r = app
                .client
                .put(app.url(&format!("/api/v1/visitors/pois/{id}")))
                .bearer_auth(ADMIN)
                .json(&poi(&id, s))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            id
        }
        "tour" => {
            let id = format!("tour-{}-{n}", s.commune);
            let (a, b) = (
                Box::pin(fresh(app, "poi", s, n * 1000 + 1)).await,
                Box::pin(fresh(app, "poi", s, n * 1000 + 2)).await,
            );
            let r = app
                .client
                .put(app.url(&format!("/api/v1/visitors/tours/{id}")))
                .bearer_auth(ADMIN)
                .json(&tour(&id, &a, &b))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            id
        }
        "report" => {
            let key =
                app.get_json("/api/v1/reports/form").await["key"].as_str().unwrap().to_owned();
            let (lat, lon) = if s.commune == "13001" { (43.5299, 5.4474) } else { (43.295, 5.374) };
            let r = app
                .post("/api/v1/reports")
                .json(&json!({"category": "street_light", "lat": lat, "lon": lon, "key": key}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
            r.json::<Value>().await.unwrap()["number"].to_string()
        }
        "event" => admin_json(
            app,
            Method::POST,
            "/api/v1/commerce/events",
            json!({"kind": "event", "name": format!("fresh {n}"), "site": s.site,
                "first_day": "2026-01-01"}),
        )
        .await["id"]
            .to_string(),
        "intervention" => {
            // A counter for the place to be studied.
            let counter = json!({"id": format!("ped-{}", s.commune), "kind": "pedestrian_counter",
                "site": s.site, "commune": s.commune});
            admin_json(app, Method::POST, "/api/v1/devices", counter).await;
            admin_json(
                app,
                Method::POST,
                "/api/v1/commerce/interventions",
                json!({"name": format!("fresh {n}"), "site": s.site, "start_day": "2026-01-01"}),
            )
            .await["id"]
                .to_string()
        }
        _ => admin_json(
            app,
            Method::POST,
            "/api/v1/people",
            json!({
            "email": format!("fresh.{n}.{}@example.fr", s.commune), "name": "Fresh",
            "role": "viewer", "commune": s.commune}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    }
}

async fn call_for(app: &TestApp, method: &str, route: &str, s: &Side, n: usize) -> Option<Call> {
    let now = agora_model::Clock::now(&agora_model::SystemClock).as_nanos() / 1_000_000_000;
    let line = format!("air_quality,device={} pm10=20 {}", s.device, now - 30);
    let rule = |id: &str| {
        json!({"id": id, "scope": {"device": s.device},
            "condition": {"threshold": {"property": "pm10", "op": ">", "value": 70.0}}})
    };
    let env = Domain::Environment;
    Some(match (method, route) {
        (
            "GET",
            "/healthz"
            | "/readyz"
            | "/metrics"
            | "/api/v1/openapi.json"
            | "/ping"
            | "/health"
            | "/api/v2/ready"
            | "/ready",
        ) => Call::new(route).untargeted(),
        (_, "/query") => Call::new(format!(
            "/query?q=SELECT+*+FROM+air_quality+WHERE+device%3D%27{}%27",
            s.device
        )),
        ("POST", "/write") => Call::new("/write?precision=s").raw(line),
        ("POST", "/api/v2/write") => Call::new("/api/v2/write?precision=s").raw(line),
        ("POST", "/api/v1/observations") => Call::new(route).json(json!(
            [{"device": s.device, "property": "pm10", "value": 21.0, "time": now - 20}])),
        ("GET", "/api/v1/observations") => {
            Call::new(format!("/api/v1/observations?device={}&property=pm10", s.device))
        }
        ("POST", "/api/v1/senml") => Call::new(route)
            .json(json!([{"bn": format!("{}:", s.device), "n": "pm10", "v": 22.0, "t": now - 10}])),
        ("POST", "/api/v1/push/sensor-community") => Call::new(route).untargeted().json(json!({
            "esp8266id": "1234", "sensordatavalues": [{"value_type": "SDS_P1", "value": "12.0"}]})),
        ("POST", "/api/v1/import/csv") => Call::new(route).untargeted().raw("a,b\n1,2\n".into()),
        (_, r) if r.starts_with("/api/v1/{token}/") => {
            let path = r.replace("{token}", &s.device_secret).replace("{id}", "1");
            let c = Call::new(format!(
                "{path}{}",
                if r.ends_with("/updates") || r.ends_with("/rpc") && method == "GET" {
                    "?timeout=1"
                } else {
                    ""
                }
            ));
            match method {
                "POST" if r.ends_with("/telemetry") => c.json(json!({"pm10": 23.0})),
                "POST" if r.ends_with("/attributes") => c.json(json!({"firmware": "1.0"})),
                "POST" => c.json(json!({"method": "ping", "params": {}})),
                _ => c,
            }
        }
        ("GET", "/api/v1/communes") => Call::new(route).untargeted(),
        ("POST", "/api/v1/communes") => {
            Call::new(route).json(json!({"insee": s.commune, "name": "Renamed"}))
        }
        ("GET", "/api/v1/sites") => Call::new(format!("/api/v1/sites?commune={}", s.commune)),
        ("POST", "/api/v1/sites") => Call::new(route).json(json!({"id": format!("{}-{n}", s.site),
            "commune": s.commune, "name": "Nouvelle place", "lat": 43.5, "lon": 5.4})),
        ("GET", "/api/v1/devices") => Call::new(format!("/api/v1/devices?commune={}", s.commune)),
        ("POST", "/api/v1/devices") => Call::new(route).domain(env).json(json!({
            "id": s.device, "kind": "air_quality", "site": s.site, "commune": s.commune})),
        ("GET", "/api/v1/devices/{id}") => Call::new(format!("/api/v1/devices/{}", s.device)),
        ("GET", "/api/v1/devices/{id}/attributes") => {
            Call::new(format!("/api/v1/devices/{}/attributes", s.device))
        }
        ("POST", "/api/v1/devices/{id}/attributes") => {
            Call::new(format!("/api/v1/devices/{}/attributes", s.device))
                .domain(env)
                .json(json!({"interval": 60}))
        }
        ("POST", "/api/v1/devices/{id}/rpc") => {
            Call::new(format!("/api/v1/devices/{}/rpc", s.device))
                .domain(env)
                .json(json!({"method": "reboot", "timeout_ms": 50}))
        }
        ("GET", "/api/v1/series") => Call::new(format!("/api/v1/series?device={}", s.device)),
        ("GET", "/api/v1/properties") => Call::new(route).untargeted(),
        ("GET", "/api/v1/aggregate") => Call::new(format!(
            "/api/v1/aggregate?device={}&property=pm10&from=-1h&every=1h&fn=mean",
            s.device
        )),
        ("GET", "/api/v1/latest") => Call::new(format!("/api/v1/latest?device={}", s.device)),
        ("GET", "/api/v1/stats") => Call::new(route).untargeted(),
        ("GET", "/api/v1/public/map") => Call::new(route),
        ("GET", r) if r.starts_with("/api/v1/indicators/") => {
            Call::new(format!("{r}?site={}&commune={}", s.site, s.commune)).untargeted()
        }
        ("GET", "/api/v1/map") => {
            Call::new(format!("/api/v1/map?property=pm10&commune={}", s.commune))
        }
        ("GET", "/api/v1/chart") => {
            Call::new(format!("/api/v1/chart?device={}&property=pm10&from=-1h", s.device))
        }
        ("GET", "/api/v1/fleet") => Call::new(route),
        ("GET", "/api/v1/forecast") => {
            Call::new(format!("{route}?device={}&property=pm10", s.device))
        }
        ("GET", "/api/v1/forecast/tomorrow") => Call::new(format!("{route}?site={}", s.site)),
        ("GET", "/api/v1/forecast/place") => {
            Call::new(format!("{route}?site={}&property=pm10", s.site))
        }
        // Lists filtered to what the caller may read.
        ("GET", "/api/v1/forecast/models" | "/api/v1/anomalies") => Call::new(route).untargeted(),
        // The well-being index over the places the caller sees.
        (
            "GET",
            "/api/v1/wellbeing"
            | "/api/v1/wellbeing/sensitivity"
            | "/api/v1/wellbeing/definition"
            | "/api/v1/wellbeing/surveys",
        ) => Call::new(route).untargeted(),
        ("GET", "/api/v1/wellbeing/history") => {
            Call::new(format!("{route}?id={}", s.site)).untargeted()
        }
        ("PUT", "/api/v1/wellbeing/definition") => Call::new(route)
            .json(json!({"definition": agora_query::wellbeing::DefinitionBody::default(),
                "reason": "permissions test"}))
            .untargeted(),
        ("POST", "/api/v1/wellbeing/surveys") => Call::new(route)
            .raw(format!("place,date,question,score\n{},2026-06-01,survey_satisfaction,7\n", s.site)),
        // The 15-minute city of the side's commune (in the path: targeted).
        (
            "GET",
            "/api/v1/proximity/{commune}"
            | "/api/v1/proximity/{commune}/squares"
            | "/api/v1/proximity/{commune}/facilities",
        ) => Call::new(route.replace("{commune}", s.commune)),
        ("GET", "/api/v1/proximity/{commune}/gaps") => {
            Call::new(format!("/api/v1/proximity/{}/gaps?theme=health", s.commune))
        }
        ("GET", "/api/v1/proximity/{commune}/isochrone" | "/api/v1/proximity/{commune}/what-if") => {
            Call::new(format!(
                "{}?theme=health&lon=5.45&lat=43.53",
                route.replace("{commune}", s.commune)
            ))
        }
        ("PUT", "/api/v1/proximity/{commune}/network") => {
            Call::new(route.replace("{commune}", s.commune)).raw("<osm></osm>".into())
        }
        ("PUT", "/api/v1/proximity/{commune}/facilities/{dataset}") => Call::new(format!(
            "/api/v1/proximity/{}/facilities/shops?format=csv",
            s.commune
        ))
        .raw("theme,lon,lat\nhealth,5.45,43.53\n".into()),
        ("PUT", "/api/v1/proximity/{commune}/population") => Call::new(format!(
            "/api/v1/proximity/{}/population?format=csv",
            s.commune
        ))
        .raw("lon,lat,weight\n5.45,43.53,10\n".into()),
        ("PUT", "/api/v1/proximity/{commune}/areas") => {
            Call::new(route.replace("{commune}", s.commune))
                .raw(r#"{"type":"FeatureCollection","features":[]}"#.into())
        }
        // The services' figures over the lamps, bins and sensors the caller sees.
        (
            "GET",
            "/api/v1/lighting"
            | "/api/v1/lighting/maintenance"
            | "/api/v1/lighting/sun"
            | "/api/v1/bins"
            | "/api/v1/irrigation",
        ) => Call::new(route).untargeted(),
        ("GET", "/api/v1/lighting/scenario") => {
            Call::new(format!("{route}?kind=off&start=01:00&end=05:00")).untargeted()
        }
        ("GET", "/api/v1/lighting/schedules" | "/api/v1/irrigation/schedules") => {
            Call::new(route).untargeted()
        }
        ("POST", "/api/v1/lighting/schedules") => Call::new(route)
            .domain(Domain::Lighting)
            .json(json!({"name": "n", "kind": "off", "start": "01:00", "end": "05:00", "place": s.site})),
        ("POST", "/api/v1/irrigation/schedules") => Call::new(route)
            .domain(Domain::GreenSpaces)
            .json(json!({"name": "n", "zone": "none", "mode": "advice", "valves": [s.device]})),
        ("PATCH", "/api/v1/schedules/{id}") => {
            Call::new("/api/v1/schedules/999999").json(json!({"active": false})).untargeted()
        }
        ("DELETE", "/api/v1/schedules/{id}") => Call::new("/api/v1/schedules/999999").untargeted(),
        ("GET", "/api/v1/bins/round") => {
            Call::new(format!("{route}?commune={}&depot=43.53,5.45", s.commune)).untargeted()
        }
        // Footfall of the side's commune: no counter there, an answer naming nothing of it.
        ("GET", "/api/v1/commerce/compare") => {
            Call::new(format!("{route}?commune={}", s.commune)).untargeted()
        }
        ("GET", "/api/v1/commerce/footfall") => {
            Call::new(format!("{route}?commune={}", s.commune)).untargeted()
        }
        ("GET", "/api/v1/commerce/impact") => {
            Call::new(format!("{route}?site={}&controls=elsewhere&start=2026-01-01", s.site))
                .untargeted()
        }
        ("GET", "/api/v1/commerce/profile") => {
            Call::new(format!("{route}?commune={}", s.commune)).untargeted()
        }
        ("GET", "/api/v1/commerce/counters") => {
            Call::new(format!("{route}?commune={}", s.commune)).untargeted()
        }
        (
            "GET",
            "/api/v1/commerce/ranking"
            | "/api/v1/commerce/school-holidays"
            | "/api/v1/commerce/index",
        ) => Call::new(route).untargeted(),
        ("GET", "/api/v1/commerce/events" | "/api/v1/commerce/interventions") => Call::new(route),
        ("POST", "/api/v1/commerce/events") => Call::new(route)
            .domain(Domain::Commerce)
            .json(json!({"kind": "event", "name": "E", "site": s.site, "first_day": "2026-01-01"})),
        ("DELETE", "/api/v1/commerce/events/{id}") => {
            Call::new(format!("/api/v1/commerce/events/{}", fresh(app, "event", s, n).await))
                .domain(Domain::Commerce)
        }
        ("POST", "/api/v1/commerce/interventions") => Call::new(route)
            .domain(Domain::Commerce)
            .json(json!({"name": "P", "site": s.site, "start_day": "2026-01-01"})),
        ("DELETE", "/api/v1/commerce/interventions/{id}") => Call::new(format!(
            "/api/v1/commerce/interventions/{}",
            fresh(app, "intervention", s, n).await
        ))
        .domain(Domain::Commerce),
        ("GET", "/api/v1/commerce/interventions/{id}/study") => Call::new(format!(
            "/api/v1/commerce/interventions/{}/study",
            fresh(app, "intervention", s, n).await
        )),
        ("PUT", "/api/v1/commerce/school-holidays") => Call::new(format!("{route}?name=zone"))
            .untargeted()
            .raw("name,first_day,last_day\nNoël,2026-12-19,2027-01-03\n".into()),
        ("DELETE", "/api/v1/commerce/school-holidays") => Call::new(route).untargeted(),
        ("GET", "/api/v1/live") => {
            Call::new(format!("/api/v1/live?device={}", s.device)).untargeted()
        }
        // Open data: only what is published, for anyone.
        ("GET", r) if r.starts_with("/api/explore/v2.1/") => Call::new(
            r.replace("{dataset_id}", "none")
                .replace("{record_id}", "x")
                .replace("{format}", "csv"),
        )
        .untargeted(),
        ("GET", r) if r.starts_with("/api/v1/open-data/dcat") => Call::new(r).untargeted(),
        ("GET", "/v1.1" | "/v1.1/") => Call::new(route).untargeted(),
        ("GET", "/ngsi-ld/v1/entities" | "/ngsi-ld/v1/entities/") => {
            Call::new(format!("{route}?id=urn:ngsi-ld:AirQualityObserved:{}", s.device))
        }
        ("POST", "/ngsi-ld/v1/entities" | "/ngsi-ld/v1/entities/") => {
            // An existing device: 409 for who may write it, as the policy passed.
            Call::new(route).json(json!({"id": format!("urn:ngsi-ld:AirQualityObserved:{}", s.device),
                "type": "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved",
                "https://smartdatamodels.org/dataModel.Environment/pm10": {"type": "Property", "value": 20.5}}))
        }
        ("PATCH", "/ngsi-ld/v1/entities/{id}/attrs") => Call::new(format!(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:{}/attrs",
            s.device
        ))
        .json(json!({"https://smartdatamodels.org/dataModel.Environment/pm10": {"type": "Property", "value": 20.5}})),
        ("POST", "/ngsi-ld/v1/entityOperations/upsert" | "/ngsi-ld/v1/entityOperations/upsert/") => {
            Call::new(route).json(json!([{"id": format!("urn:ngsi-ld:AirQualityObserved:{}", s.device),
                "type": "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved",
                "https://smartdatamodels.org/dataModel.Environment/pm10": 20.5}]))
        }
        ("GET", "/ngsi-ld/v1/entities/{id}") => {
            Call::new(format!("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:{}", s.device))
        }
        ("GET", "/ngsi-ld/v1/temporal/entities" | "/ngsi-ld/v1/temporal/entities/") => {
            Call::new(format!("{route}?id=urn:ngsi-ld:AirQualityObserved:{}", s.device))
        }
        ("GET", "/ngsi-ld/v1/temporal/entities/{id}") => Call::new(format!(
            "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:{}",
            s.device
        )),
        ("GET", "/ngsi-ld/v1/subscriptions") => Call::new(route),
        ("POST", "/ngsi-ld/v1/subscriptions" | "/ngsi-ld/v1/subscriptions/") => {
            Call::new(route).json(subscription(&format!("perm-{}-{n}", s.commune), s.device))
        }
        ("GET", "/ngsi-ld/v1/subscriptions/{id}") => {
            let id = fresh(app, "subscription", s, n).await;
            Call::new(format!("/ngsi-ld/v1/subscriptions/{id}"))
        }
        ("PATCH", "/ngsi-ld/v1/subscriptions/{id}") => {
            let id = fresh(app, "subscription", s, n).await;
            Call::new(format!("/ngsi-ld/v1/subscriptions/{id}")).json(json!({"isActive": false}))
        }
        ("DELETE", "/ngsi-ld/v1/subscriptions/{id}") => {
            let id = fresh(app, "subscription", s, n).await;
            Call::new(format!("/ngsi-ld/v1/subscriptions/{id}"))
        }
        ("GET", "/ngsi-ld/v1/jsonldContexts/{file}") => {
            Call::new("/ngsi-ld/v1/jsonldContexts/agora.jsonld").untargeted()
        }
        ("GET", "/v1.1/{*path}") => Call::new(format!("/v1.1/Things('{}')", s.device)),
        ("POST", "/v1.1/{*path}") => {
            let series = app.get_json(&format!("/api/v1/series?device={}", s.device)).await;
            let time = agora_model::Timestamp::from_secs(now - 25).unwrap().to_rfc3339();
            Call::new("/v1.1/Observations").json(json!({
                "Datastream": {"@iot.id": series["series"][0]["id"]}, "result": 19.5, "phenomenonTime": time}))
        }
        ("GET", "/api/v1/open-data/datasets") => Call::new(route).untargeted(),
        ("POST", "/api/v1/open-data/datasets") => {
            Call::new(route).json(open_dataset(&format!("new-{}-{n}", s.commune), s.commune))
        }
        ("GET", "/api/v1/open-data/datasets/{id}") => {
            Call::new(format!("/api/v1/open-data/datasets/{}", fresh(app, "dataset", s, n).await))
                .untargeted()
        }
        ("PUT", "/api/v1/open-data/datasets/{id}") => {
            let id = fresh(app, "dataset", s, n).await;
            Call::new(format!("/api/v1/open-data/datasets/{id}")).json(open_dataset(&id, s.commune))
        }
        ("DELETE", "/api/v1/open-data/datasets/{id}") => {
            Call::new(format!("/api/v1/open-data/datasets/{}", fresh(app, "dataset", s, n).await))
        }
        ("GET", "/api/v1/rules") => Call::new(route),
        ("POST", "/api/v1/rules") => {
            Call::new(route).domain(env).json(rule(&format!("new-{}-{n}", s.commune)))
        }
        ("GET", "/api/v1/rules/templates") => Call::new(route).untargeted(),
        ("GET", "/api/v1/rules/{id}") => Call::new(format!("/api/v1/rules/{}", s.rule)),
        ("PUT", "/api/v1/rules/{id}") => {
            Call::new(format!("/api/v1/rules/{}", s.rule)).domain(env).json(rule(s.rule))
        }
        ("DELETE", "/api/v1/rules/{id}") => {
            Call::new(format!("/api/v1/rules/{}", fresh(app, "rule", s, n).await)).domain(env)
        }
        ("GET", "/api/v1/alerts") => Call::new(format!("/api/v1/alerts?device={}", s.device)),
        ("GET", "/api/v1/alerts/{id}") => Call::new(format!("/api/v1/alerts/{}", s.alert)),
        ("POST", "/api/v1/alerts/{id}/acknowledge" | "/api/v1/alerts/{id}/resolve") => {
            Call::new(route.replace("{id}", &s.alert.to_string())).domain(env)
        }
        ("GET", "/api/v1/deliveries") => Call::new(route),
        // Dead letters of the caller's commune's devices (the leak check covers the others').
        ("GET", "/api/v1/rejects") => Call::new(route).untargeted(),
        ("POST", "/api/v1/rejects/replay") => {
            Call::new(route).untargeted().json(json!({"ids": []}))
        }
        ("GET" | "POST", "/api/v1/backups") => Call::new(route).untargeted(),
        ("GET", "/api/v1/privacy/register" | "/api/v1/audit" | "/api/v1/audit/verify") => {
            Call::new(route).untargeted()
        }
        ("GET", "/api/v1/tokens") => Call::new(route),
        ("POST", "/api/v1/tokens") => {
            Call::new(route).json(json!({"name": "made", "role": "viewer", "commune": s.commune}))
        }
        ("DELETE", "/api/v1/tokens/{id}") => {
            Call::new(format!("/api/v1/tokens/{}", fresh(app, "token", s, n).await))
        }
        ("GET", "/api/v1/people") => Call::new(route),
        ("POST", "/api/v1/people") => Call::new(route).json(json!({
            "email": format!("new.{n}.{}@example.fr", s.commune), "name": "New",
            "role": "operator", "commune": s.commune})),
        ("GET", "/api/v1/people/{id}") => Call::new(format!("/api/v1/people/{}", s.person)),
        ("PATCH", "/api/v1/people/{id}") => {
            Call::new(format!("/api/v1/people/{}", s.person)).json(json!({"name": "Renamed"}))
        }
        ("DELETE", "/api/v1/people/{id}") => {
            Call::new(format!("/api/v1/people/{}", fresh(app, "person", s, n).await))
        }
        ("POST", "/api/v1/people/{id}/password") => {
            Call::new(format!("/api/v1/people/{}/password", s.person))
                .json(json!({"password": "un mot de passe assez long"}))
        }
        ("GET", "/api/v1/people/{id}/export") => {
            Call::new(format!("/api/v1/people/{}/export", s.person))
        }
        ("POST", "/api/v1/people/{id}/logout") => {
            Call::new(format!("/api/v1/people/{}/logout", s.person))
        }
        ("GET", "/api/v1/me") => Call::new(route).untargeted(),
        ("GET", "/api/v1/reports/form" | "/api/v1/public/reports" | "/api/v1/reports/stats") => {
            Call::new(route).untargeted()
        }
        ("GET", "/api/v1/reports") => Call::new(route).untargeted(),
        ("GET", "/api/v1/visitors/pois" | "/api/v1/visitors/tours") => {
            Call::new(route).untargeted()
        }
        ("GET", "/api/v1/visitors/tours/{id}") => {
            Call::new("/api/v1/visitors/tours/none").untargeted()
        }
        ("GET", "/api/v1/visitors/tours/{id}/qr") => {
            Call::new("/api/v1/visitors/tours/none/qr").untargeted()
        }
        ("GET", "/api/v1/visitors/cool-route") => {
            Call::new("/api/v1/visitors/cool-route?from=43.5299,5.4474&to=43.5290,5.4480")
                .untargeted()
        }
        ("POST", "/api/v1/visitors/pois") => Call::new("/api/v1/visitors/pois?format=json")
            .json(json!([poi(&format!("import-{}-{n}", s.commune), s)])),
        ("PUT", "/api/v1/visitors/pois/{id}") => {
            let id = format!("put-{}-{n}", s.commune);
            Call::new(format!("/api/v1/visitors/pois/{id}")).json(poi(&id, s))
        }
        ("DELETE", "/api/v1/visitors/pois/{id}") => {
            Call::new(format!("/api/v1/visitors/pois/{}", fresh(app, "poi", s, n).await))
        }
        ("PUT", "/api/v1/visitors/tours/{id}") => {
            let (a, b) = (fresh(app, "poi", s, n * 1000 + 1).await, fresh(app, "poi", s, n * 1000 + 2).await);
            let id = format!("tour-put-{}-{n}", s.commune);
            Call::new(format!("/api/v1/visitors/tours/{id}")).json(tour(&id, &a, &b))
        }
        ("DELETE", "/api/v1/visitors/tours/{id}") => {
            Call::new(format!("/api/v1/visitors/tours/{}", fresh(app, "tour", s, n).await))
        }
        ("GET", "/api/v1/reports/follow/{key}") => {
            Call::new("/api/v1/reports/follow/none").untargeted()
        }
        ("POST", "/api/v1/reports") => {
            let key = app.get_json("/api/v1/reports/form").await["key"].as_str().unwrap().to_owned();
            Call::new(route)
                .json(json!({"category": "other", "lat": 43.5299, "lon": 5.4474, "key": key}))
                .untargeted()
        }
        ("GET", "/api/v1/reports/{id}") => {
            Call::new(format!("/api/v1/reports/{}", fresh(app, "report", s, n).await))
        }
        ("POST", "/api/v1/reports/{id}/status") => {
            Call::new(format!("/api/v1/reports/{}/status", fresh(app, "report", s, n).await))
                .json(json!({"status": "acknowledged"}))
                .domain(Domain::Lighting)
        }
        // The dashboard's pages.
        (
            "GET",
            "/"
            | "/login"
            | "/supervision"
            | "/supervision/fleet"
            | "/supervision/forecasts"
            | "/services/lighting"
            | "/decideurs"
            | "/decideurs/fiche"
            | "/services/cleanliness"
            | "/services/green-spaces"
            | "/explorer"
            | "/alerts"
            | "/admin"
            | "/commerce"
            | "/open-data"
            | "/open-data/api"
            | "/docs"
            | "/signaler"
            | "/signalements"
            | "/visiter",
        ) => Call::new(route).untargeted(),
        ("GET", "/signalements/suivi/{key}") => {
            Call::new("/signalements/suivi/none").untargeted()
        }
        ("GET", "/kiosk/{site}/signaler") => Call::new(format!("/kiosk/{}/signaler", s.site)),
        ("GET", "/kiosk/{site}/visiter") => Call::new(format!("/kiosk/{}/visiter", s.site)),
        ("GET", "/visiter/parcours/{id}") => Call::new("/visiter/parcours/none").untargeted(),
        ("GET", "/open-data/datasets/{id}") => Call::new("/open-data/datasets/none").untargeted(),
        ("GET", "/places/{site}" | "/kiosk/{site}") => Call::new(route.replace("{site}", s.site)),
        ("GET", "/communes/{insee}") => Call::new(route.replace("{insee}", s.commune)),
        ("GET", "/supervision/devices/{id}") => {
            Call::new(format!("/supervision/devices/{}", s.device))
        }
        ("POST", "/login" | "/logout") | ("GET", "/login/oidc" | "/login/oidc/callback") => {
            Call::new(route).untargeted()
        }
        ("GET", "/assets/{*path}") => Call::new("/assets/app.css").untargeted(),
        _ => return None,
    })
}

/// What the model says of `grant` calling a route of `access` on an object of `commune` (and
/// `domain`): `None` when it passes, else the status it gets.
fn expected(
    access: Access,
    grant: Option<&Grant>,
    commune: &InseeCode,
    domain: Option<Domain>,
    targeted: bool,
) -> Option<u16> {
    let action = match access {
        // The device API's credential is in its path: the same for every caller.
        Access::Open | Access::Page | Access::OwnAuth(Action::Ingest) => return None,
        Access::OwnAuth(a) => a,
        // This test's server publishes nothing: read routes need `view`.
        Access::Read | Access::Public => Action::View,
        Access::Needs(a) | Access::Metropole(a) => a,
    };
    let Some(g) = grant else { return Some(401) };
    if !g.may(action) || (matches!(access, Access::Metropole(_)) && !g.sees_all()) {
        return Some(403);
    }
    if !targeted {
        return None;
    }
    // Out of its commune: hidden (404) or refused (403, or a refused line) — checked apart.
    if !g.sees(Some(commune)) {
        return Some(404);
    }
    if !g.may_on(action, Some(commune), domain) {
        return Some(403);
    }
    None
}

/// The routes the router serves, read from where they are declared: every `.route(path,
/// method(…).method(…))` of the API's and the dashboard's routers.
fn declared_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for src in [
        include_str!("../../../agora-api/src/lib.rs"),
        include_str!("../../../agora-web/src/lib.rs"),
    ] {
        let flat: String = src.split_whitespace().collect::<Vec<_>>().join(" ");
        for part in flat.split(".route(").skip(1) {
            let part = part.trim_start();
            let Some(path) = part.strip_prefix('"').and_then(|p| p.split('"').next()) else {
                continue;
            };
            // The method routers up to the end of this call: get(…), .post(…), …
            let mut depth = 1;
            let mut end = part.len();
            for (i, c) in part.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &part[..end];
            for m in ["get", "post", "put", "patch", "delete"] {
                let head = format!(" {m}(");
                let chained = format!(".{m}(");
                if call.contains(&head)
                    || call.contains(&chained)
                    || call.contains(&format!(",{m}("))
                {
                    out.insert((m.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn every_route_of_the_router_has_an_access_rule_and_no_rule_is_stale() {
    let declared = declared_routes();
    assert!(declared.len() > 60, "the route reader found {} routes", declared.len());
    let table: BTreeSet<(String, String)> =
        ROUTES.iter().map(|(m, r, _)| ((*m).to_owned(), (*r).to_owned())).collect();
    let missing: Vec<_> = declared.difference(&table).collect();
    assert!(missing.is_empty(), "routes without an access rule in policy::ROUTES: {missing:?}");
    let stale: Vec<_> = table.difference(&declared).collect();
    assert!(stale.is_empty(), "access rules of no route: {stale:?}");
    assert_eq!(table.len(), ROUTES.len(), "a route is listed twice in policy::ROUTES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let app = TestApp::spawn_with(|c| {
        c.web.public_map = false;
        // A thousand requests from this host in a few seconds: not a flood.
        c.limits.trusted = vec!["127.0.0.0/8".into()];
        // Reports sent as soon as the form is read, many from one client.
        c.reports.min_fill_secs = 0;
        c.reports.per_client_per_minute = 0;
        c.reports.per_place_per_hour = 0;
    })
    .await;
    // Every path of the API document has its rule too.
    let doc = app.get_json("/api/v1/openapi.json").await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in item.as_object().unwrap().keys() {
            let m = m.to_uppercase();
            assert!(
                ROUTES.iter().any(|(rm, rr, _)| *rm == m && *rr == path),
                "{m} {path} is in the API document but not in policy::ROUTES"
            );
        }
    }
    admin_json(
        &app,
        Method::POST,
        "/api/v1/communes",
        json!({"insee": "13055", "name": "Marseille"}),
    )
    .await;
    admin_json(
        &app,
        Method::POST,
        "/api/v1/sites",
        json!({"id": "vieux-port", "commune": "13055",
        "name": "Vieux-Port", "lat": 43.295, "lon": 5.374}),
    )
    .await;
    let aix = side(&app, "13001", "hotel-de-ville", "aix-aq").await;
    let mrs = side(&app, "13055", "vieux-port", "mrs-aq").await;
    let aix_code = InseeCode::parse("13001").unwrap();
    let mrs_code = InseeCode::parse("13055").unwrap();

    // The callers: nobody, the Métropole's administrator, and each role of Aix.
    let mut callers = vec![
        Caller { label: "anonymous".into(), grant: None, secret: None },
        Caller {
            label: "metropole_admin".into(),
            grant: Some(Grant::metropole_admin()),
            secret: Some(ADMIN.into()),
        },
    ];
    let roles: [(Role, Option<&str>, Option<Domain>); 7] = [
        (Role::Viewer, None, None),
        (Role::CommuneAdmin, Some("13001"), None),
        (Role::Operator, Some("13001"), None),
        (Role::Department, Some("13001"), Some(Domain::Environment)),
        (Role::Department, Some("13001"), Some(Domain::Lighting)),
        (Role::Viewer, Some("13001"), None),
        (Role::Device, Some("13001"), None),
    ];
    for (role, commune, domain) in roles {
        let mut body = json!({"name": format!("{role} test"), "role": role.as_str(),
            "commune": commune.unwrap_or("metropole")});
        if let Some(d) = domain {
            body["domain"] = json!(d.as_str());
        }
        let secret = admin_json(&app, Method::POST, "/api/v1/tokens", body).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let grant =
            Grant::new(role, commune.map(|c| InseeCode::parse(c).unwrap()), domain).unwrap();
        callers.push(Caller {
            label: format!(
                "{role} of {}{}",
                commune.unwrap_or("metropole"),
                domain.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            grant: Some(grant),
            secret: Some(secret),
        });
    }

    let mut n = 0;
    let mut failures = Vec::new();
    let mut checked = 0;
    for &(method, route, access) in ROUTES {
        for caller in &callers {
            for (s, code, other) in [(&aix, &aix_code, &mrs), (&mrs, &mrs_code, &aix)] {
                n += 1;
                let Some(c) = call_for(&app, method, route, s, n).await else {
                    panic!(
                        "{method} {route}: this test has no request for it; add one to call_for"
                    );
                };
                if !c.targeted && s.commune == "13055" {
                    continue;
                }
                let mut req = app
                    .client
                    .request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(&c.path));
                if let Some(secret) = &caller.secret {
                    req = req.bearer_auth(secret);
                }
                if let Some(b) = &c.body {
                    req = req.json(b);
                }
                if let Some(r) = &c.raw {
                    req = req.body(r.clone()).header("content-type", "text/plain");
                }
                let r = req.timeout(std::time::Duration::from_secs(10)).send().await.unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                checked += 1;
                let want = expected(access, caller.grant.as_ref(), code, c.domain, c.targeted);
                let what = format!(
                    "{method} {} as {}: {status} {}",
                    c.path,
                    caller.label,
                    body.chars().take(160).collect::<String>()
                );
                let ok = match want {
                    Some(401) => status == 401,
                    Some(403) => status == 403 || (status == 400 && body.contains("may not")),
                    // Hidden: not found, refused, or an answer that shows nothing of it.
                    // Another commune's 15-minute city names none of its devices: only a refusal
                    // shows it is hidden.
                    Some(_) if c.path.starts_with("/api/v1/proximity/") => {
                        matches!(status, 403 | 404)
                    }
                    Some(_) => {
                        matches!(status, 403 | 404)
                            || (status == 400 && body.contains("may not"))
                            // Identifiers are the Métropole's: one taken elsewhere is taken.
                            || (status == 409 && body.contains("is not of"))
                            // A position in a commune they do not see is in none of theirs.
                            || (status == 400 && body.contains("outside every commune"))
                            || ((200..300).contains(&status)
                                && !body.contains(s.device)
                                && !body.contains(s.site)
                                && !body.contains(s.rule))
                    }
                    // Allowed: anything but a refusal (a device that does not answer, a
                    // conflict, an invalid CSV are the handler's answers, past the policy).
                    None => {
                        let refused = matches!(status, 401 | 403 | 500);
                        let hidden = status == 404 && c.targeted && body.contains(s.device);
                        let line_refused = status == 400 && body.contains("may not");
                        !(refused || hidden || line_refused)
                    }
                };
                if !ok {
                    failures.push(format!("expected {want:?}: {what}"));
                }
                // Whoever sees only their commune never reads the other's objects.
                if caller.grant.as_ref().is_some_and(|g| !g.sees_all())
                    && method == "GET"
                    && (200..300).contains(&status)
                    && (body.contains(other.device) && s.commune == "13001")
                {
                    failures.push(format!("leak of {}: {what}", other.device));
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} requests");
    assert!(
        failures.is_empty(),
        "{} of {checked} answers differ from the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A server of two communes with a device each: `aix-aq` in Aix (13001), `mrs-aq` in Marseille.
async fn two_communes(app: &TestApp) {
    admin_json(
        app,
        Method::POST,
        "/api/v1/communes",
        json!({"insee": "13055", "name": "Marseille"}),
    )
    .await;
    for (id, commune) in [("aix-aq", "13001"), ("mrs-aq", "13055")] {
        let device = json!({"id": id, "kind": "air_quality", "commune": commune});
        admin_json(app, Method::POST, "/api/v1/devices", device).await;
    }
}

/// What an MQTT client got: connected, and the broker's answer.
#[derive(Debug, PartialEq)]
enum Mqtt {
    Refused,
    Denied,
    Allowed,
}

/// Run `mosquitto_pub` or `mosquitto_sub` (MQTT 5) against agora's endpoint.
async fn mosquitto(port: u16, user: &str, sub: bool, topic: &str) -> (Mqtt, String) {
    let mut args: Vec<String> = vec!["10".into()];
    let tail = if sub {
        vec!["mosquitto_sub", "-W", "1", "-C", "1", "-t", topic]
    } else {
        // A gateway announcing Marseille's device, or a device's telemetry.
        let payload = if topic == "v1/gateway/connect" {
            r#"{"device": "mrs-aq"}"#
        } else {
            r#"{"pm10": 12.5}"#
        };
        vec!["mosquitto_pub", "-q", "1", "-t", topic, "-m", payload]
    };
    args.extend(tail.iter().map(|s| (*s).to_owned()));
    args.extend(
        ["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port.to_string(), "-u", user]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout").args(&args).output().expect("mosquitto clients")
    })
    .await
    .unwrap();
    let said = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lower = said.to_lowercase();
    let got = if lower.contains("connection error") || lower.contains("not authori") && !sub {
        if lower.contains("connection error") { Mqtt::Refused } else { Mqtt::Denied }
    } else if lower.contains("denied") || (!sub && lower.contains("publish 1 failed")) {
        Mqtt::Denied
    } else if sub {
        // Accepted: it waited for a message until -W.
        if out.status.code() == Some(27) || lower.contains("timed out") {
            Mqtt::Allowed
        } else {
            Mqtt::Denied
        }
    } else if out.status.success() {
        Mqtt::Allowed
    } else {
        Mqtt::Denied
    };
    (got, said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_topics_answer_every_role_as_tenancy_says() {
    let app = TestApp::spawn_with(|c| c.limits.trusted = vec!["127.0.0.0/8".into()]).await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    two_communes(&app).await;
    let token = |body: Value| {
        let app = &app;
        async move {
            admin_json(app, Method::POST, "/api/v1/tokens", body).await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // (who, token, connects, own, other, all commands, everything): what tenancy says each may.
    let who = [
        ("metropole_admin", ADMIN.to_owned(), true, true, true, true, true),
        (
            "device of the Métropole",
            token(json!({"name": "d", "role": "device"})).await,
            true,
            true,
            true,
            true,
            false,
        ),
        (
            "commune_admin of Aix",
            token(json!({"name": "ca", "role": "commune_admin", "commune": "13001"})).await,
            true,
            true,
            false,
            false,
            false,
        ),
        (
            "device of Aix",
            token(json!({"name": "da", "role": "device", "commune": "13001"})).await,
            true,
            true,
            false,
            false,
            false,
        ),
        (
            "device bound to aix-aq",
            token(json!({"name": "db", "role": "device", "commune": "13001", "device": "aix-aq"}))
                .await,
            true,
            true,
            false,
            false,
            false,
        ),
        (
            "operator of Aix",
            token(json!({"name": "op", "role": "operator", "commune": "13001"})).await,
            // Readers connect (SensorThings' Observations) but send nothing.
            true,
            false,
            false,
            false,
            false,
        ),
        (
            "viewer of the Métropole",
            token(json!({"name": "v", "role": "viewer"})).await,
            // Readers connect (SensorThings' Observations) but send nothing.
            true,
            false,
            false,
            false,
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (label, secret, connects, own, other, all, everything) in &who {
        let expect = |allowed: bool| match (connects, allowed) {
            (false, _) => Mqtt::Refused,
            (true, true) => Mqtt::Allowed,
            (true, false) => Mqtt::Denied,
        };
        let cases = [
            (false, "agora/aix-aq/telemetry", expect(*own)),
            (false, "agora/mrs-aq/telemetry", expect(*other)),
            // Taking Marseille's device as a gateway's (its commands would come this way).
            (false, "v1/gateway/connect", expect(*other)),
            (true, "agora/commands/aix-aq", expect(*own)),
            (true, "agora/commands/mrs-aq", expect(*other)),
            (true, "agora/commands/#", expect(*all)),
            (true, "#", expect(*everything)),
        ];
        for (sub, topic, want) in cases {
            let (got, said) = mosquitto(port, secret, sub, topic).await;
            if got != want {
                let verb = if sub { "subscribe to" } else { "publish to" };
                failures.push(format!(
                    "{label} {verb} {topic}: {got:?}, expected {want:?} ({})",
                    said.trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // What the device of Aix published for its own device is stored; for Marseille's, nothing.
    let aix = app.get_json("/api/v1/latest?device=aix-aq").await;
    assert!(aix.to_string().contains("12.5"), "{aix}");
    let mrs = app.get_json("/api/v1/latest?device=mrs-aq").await;
    assert!(mrs.to_string().contains("12.5"), "the Métropole's tokens wrote it: {mrs}");
}

/// The side doors a review of the tenancy found, each closed: commands through a rule's actions,
/// the Métropole's own rules, a query scoped by the wrong credential, the live feed shared between
/// communes, a device's internals under `public_read`, and dead letters replayed beyond their
/// sender's commune.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_has_no_side_doors() {
    let app = TestApp::spawn_with(|c| c.limits.trusted = vec!["127.0.0.0/8".into()]).await;
    two_communes(&app).await;
    let token = |role: &str, commune: &str| {
        let app = &app;
        let body = json!({"name": format!("{role} {commune}"), "role": role, "commune": commune});
        async move {
            admin_json(app, Method::POST, "/api/v1/tokens", body).await["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (operator, admin_aix) =
        (token("operator", "13001").await, token("commune_admin", "13001").await);
    let (viewer_aix, device_aix) = (token("viewer", "13001").await, token("device", "13001").await);
    let metro_device = token("device", "metropole").await;
    let send = |method: Method, path: String, secret: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .request(method, app.url(&path))
                .bearer_auth(secret)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let rule = |actions: Value| {
        json!({"id": "r", "scope": {"device": "aix-aq"},
            "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}, "actions": actions})
    };
    // Commands through a rule: to another commune's device, or to a topic of anything.
    for actions in [
        json!([{"rpc": {"device": "mrs-aq", "method": "reboot"}}]),
        json!([{"mqtt": {"topic": "agora/commands/mrs-aq"}}]),
        json!([{"mqtt": {"topic": "agora/commands/#"}}]),
        json!([{"mqtt": {"topic": "city/everything"}}]),
    ] {
        let (status, body) =
            send(Method::POST, "/api/v1/rules".into(), operator.clone(), rule(actions.clone()))
                .await;
        assert_eq!(status, 403, "{actions}: {body}");
    }
    let (status, body) = send(
        Method::POST,
        "/api/v1/rules".into(),
        operator.clone(),
        rule(
            json!([{"rpc": {"method": "reboot"}}, {"mqtt": {"topic": "agora/commands/{device}"}}]),
        ),
    )
    .await;
    assert_eq!(status, 201, "its own device's commands: {body}");
    // The Métropole's own rule (every device of a kind) is not a commune's to change or delete.
    admin_json(
        &app,
        Method::POST,
        "/api/v1/rules",
        json!({"id": "all-pm10", "scope": {"kind": "air_quality"},
        "condition": {"threshold": {"property": "pm10", "op": ">", "value": 80.0}}}),
    )
    .await;
    let (status, _) = send(Method::PUT, "/api/v1/rules/all-pm10".into(), admin_aix.clone(),
        json!({"scope": {"kind": "air_quality"}, "condition": {"threshold": {"property": "pm10", "op": ">", "value": 1.0}}})).await;
    assert_eq!(status, 403);
    let (status, _) =
        send(Method::DELETE, "/api/v1/rules/all-pm10".into(), admin_aix.clone(), Value::Null).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.get_json("/api/v1/rules/all-pm10").await["condition"]["threshold"]["value"],
        80.0
    );

    // Data of both communes.
    let t = agora_model::Clock::now(&agora_model::SystemClock).as_nanos() / 1_000_000_000 - 60;
    app.write(&format!(
        "air_quality,device=aix-aq pm10=11 {t}\nair_quality,device=mrs-aq pm10=22 {t}"
    ))
    .await;
    // InfluxQL: a CREATE DATABASE let through by one credential, the SELECT scoped by the one
    // that reads.
    let q = "/query?q=CREATE+DATABASE+x%3BSELECT+*+FROM+air_quality";
    let r =
        app.get(&format!("{q}&p={viewer_aix}")).bearer_auth(&metro_device).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("aix-aq") && !body.contains("mrs-aq"), "{body}");

    // A device's internals are never public, even with public_read.
    let open = TestApp::spawn_with(|c| c.auth.public_read = true).await;
    admin_json(
        &open,
        Method::POST,
        "/api/v1/devices",
        json!({"id": "aix-aq", "kind": "air_quality"}),
    )
    .await;
    assert_eq!(open.get("/api/v1/devices").send().await.unwrap().status(), 200);
    assert_eq!(open.get("/api/v1/devices/aix-aq/attributes").send().await.unwrap().status(), 401);

    // Live: the Métropole's stream and Aix's at once; Aix's never carries Marseille's values.
    let mut metro = app.get("/api/v1/live").bearer_auth(ADMIN).send().await.unwrap();
    let mut aix = app.get("/api/v1/live").bearer_auth(&viewer_aix).send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    app.write(&format!(
        "air_quality,device=aix-aq pm10=33 {}\nair_quality,device=mrs-aq pm10=44 {}",
        t + 1,
        t + 1
    ))
    .await;
    let read = |mut r: reqwest::Response| async move {
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while let Ok(Ok(Some(c))) = tokio::time::timeout_at(deadline, r.chunk()).await {
            text.push_str(&String::from_utf8_lossy(&c));
        }
        text
    };
    let (m, a) = tokio::join!(read(metro), read(aix));
    assert!(m.contains("mrs-aq") && m.contains("aix-aq"), "{m}");
    assert!(a.contains("aix-aq") && !a.contains("mrs-aq"), "{a}");
    metro = app.get("/healthz").send().await.unwrap();
    aix = metro;
    drop(aix);

    // A line for Marseille's device sent with Aix's token is a dead letter; replayed by the
    // Métropole, it is still Aix's token's line, and still refused.
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(&device_aix)
        .body(format!("air_quality,device=mrs-aq pm10=999 {}", t + 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let dl = app.get_json("/api/v1/rejects").await;
    let id = dl["rejects"][0]["id"].as_i64().unwrap();
    assert_eq!(dl["rejects"][0]["token_commune"], "13001");
    let replay =
        admin_json(&app, Method::POST, "/api/v1/rejects/replay", json!({"ids": [id]})).await;
    assert_eq!((replay["stored"].as_i64(), replay["still_rejected"].as_i64()), (Some(0), Some(1)));
    let dl = app.get_json("/api/v1/rejects").await;
    assert!(dl["rejects"][0]["reason"].as_str().unwrap().contains("may not write"), "{dl}");
    let latest = app.get_json("/api/v1/latest?device=mrs-aq").await;
    assert!(!latest.to_string().contains("999"), "{latest}");
}
