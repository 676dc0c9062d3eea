//! Snapshots of API payloads, so that a change of shape is seen in review. Fields that change
//! from run to run (registration and last-seen times, durations) are blanked first.

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp};

const T: i64 = 1_767_225_600;

/// Blank the values of volatile keys, anywhere in the document.
fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if matches!(k.as_str(), "created_at" | "last_seen" | "silent_for_s" | "received_at")
                    && !x.is_null()
                    && !x.is_object()
                {
                    *x = json!("[redacted]");
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[tokio::test]
async fn payload_shapes() {
    let app = TestApp::spawn().await;
    app.write(&format!("air_quality,device=aq-1,site=hotel-de-ville pm10=12.5,no2=31 {T}\nair_quality,device=aq-1 pm10=14.5,no2=29 {}", T + 60)).await;
    let mut device = app.get_json("/api/v1/devices/aq-1").await;
    redact(&mut device);
    insta::assert_json_snapshot!("device", device);
    let mut agg = app
        .get_json(&format!(
            "/api/v1/aggregate?device=aq-1&property=pm10&from={T}&to={}&every=1h",
            T + 3600
        ))
        .await;
    redact(&mut agg);
    insta::assert_json_snapshot!("aggregate", agg);
    let r = app
        .post("/api/v2/write?precision=s")
        .bearer_auth(ADMIN)
        .body(format!("air_quality,device=aq-1 pm10=-5 {T}\nair_quality pm10=2"))
        .send()
        .await
        .unwrap();
    let mut problem: Value = r.json().await.unwrap();
    redact(&mut problem);
    insta::assert_json_snapshot!("partial_write", problem);
}
