//! Other HTTP sources: Sensor.Community pushes and the ThingsBoard HTTP device API.

use serde_json::json;

use crate::helpers::{ADMIN, TestApp, problem};

#[tokio::test]
async fn sensor_community_push_with_basic_auth() {
    let app = TestApp::spawn().await;
    let token = app.token("ingest", None).await;
    let body = json!({"software_version": "NRZ-2020-133", "sensordatavalues": [
        {"value_type": "P1", "value": "12.30"}, {"value_type": "P2", "value": "7.85"}]});
    let r = app
        .post("/api/v1/push/sensor-community?site=hotel-de-ville")
        .basic_auth("esp8266-1234567", Some(&token))
        .header("X-Sensor", "esp8266-1234567")
        .header("X-Pin", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let bme = json!({"sensordatavalues": [{"value_type": "temperature", "value": "21.40"},
        {"value_type": "humidity", "value": "48.10"}, {"value_type": "pressure", "value": "101325.00"}]});
    let r = app
        .post("/api/v1/push/sensor-community")
        .bearer_auth(&token)
        .header("X-Sensor", "esp8266-1234567")
        .header("X-Pin", "11")
        .json(&bme)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let l = app.get_json("/api/v1/latest?device=esp8266-1234567").await;
    let v = |p: &str| {
        l["values"].as_array().unwrap().iter().find(|x| x["property"] == p).unwrap()["value"]
            .clone()
    };
    assert_eq!(v("pm10"), json!(12.3));
    assert_eq!(v("pm2_5"), json!(7.85));
    assert_eq!(v("pressure"), json!(1013.25), "Pa converted to hPa");
    assert_eq!(v("relative_humidity"), json!(48.1));
    assert_eq!(l["values"][0]["site"], "hotel-de-ville");
    let r = app
        .post("/api/v1/push/sensor-community")
        .bearer_auth(&token)
        .header("X-Pin", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "bad_request").await;
    assert!(b["detail"].as_str().unwrap().contains("X-Sensor"));
}

#[tokio::test]
async fn thingsboard_http_telemetry_for_a_device_token() {
    let app = TestApp::spawn().await;
    let dev = json!({"id": "lamp-7", "kind": "streetlight", "site": "hotel-de-ville"});
    assert_eq!(
        app.post("/api/v1/devices").bearer_auth(ADMIN).json(&dev).send().await.unwrap().status(),
        201
    );
    let token = app.token("ingest", Some("lamp-7")).await;
    let r = app
        .post(&format!("/api/v1/{token}/telemetry"))
        .json(&json!({"ts": 1767225600000i64, "values": {"power": 41.5, "powerState": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(
        app.values("lamp-7", "power_w", 1_767_225_600, 1_767_225_601).await[0].1,
        json!(41.5)
    );
    assert_eq!(
        app.values("lamp-7", "lamp_on", 1_767_225_600, 1_767_225_601).await[0].1,
        json!(true)
    );
    let unbound = app.token("ingest", None).await;
    let r = app
        .post(&format!("/api/v1/{unbound}/telemetry"))
        .json(&json!({"power": 1}))
        .send()
        .await
        .unwrap();
    problem(r, 400, "bad_request").await;
    let r =
        app.post("/api/v1/agora_wrong/telemetry").json(&json!({"power": 1})).send().await.unwrap();
    problem(r, 401, "unauthorized").await;
}
