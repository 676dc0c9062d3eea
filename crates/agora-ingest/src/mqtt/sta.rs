//! OGC SensorThings API's MQTT extension on agora's own endpoint (SensorThings 1.1 §14):
//!
//! - a client subscribed to `v1.1/Datastreams(N)/Observations` receives each observation of
//!   Datastream `N` (agora's series `N`) as it is stored, as the HTTP API shows it;
//! - a client publishing an Observation to `v1.1/Datastreams(N)/Observations` (or to
//!   `v1.1/Observations`, the Datastream in the body) creates it through ingestion, as
//!   `POST /v1.1/…/Observations` does.
//!
//! Reading needs a token that may view the Datastream's device (its commune); writing, one
//! that may write to it. Wildcards are refused where the Datastream goes: a filter names one.

use std::collections::HashSet;
use std::sync::Arc;

use agora_model::{SeriesId, Timestamp, Value};
use agora_store::Catalog;
use agora_store::catalog::TokenInfo;
use serde_json::{Value as Json, json};
use tokio::task::JoinHandle;

use super::broker::Subscribers;
use crate::error::Refusal;
use crate::pipeline::Pipeline;
use crate::record::{Field, Record};

/// The Datastream a topic or filter names (`v1.1/Datastreams(N)/Observations`).
pub(super) fn datastream_of(topic: &str) -> Option<u32> {
    let rest = topic.strip_prefix("v1.1/Datastreams(")?;
    let (n, tail) = rest.split_once(')')?;
    if tail != "/Observations" || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Whether `token` may receive the observations of the Datastream `filter` names.
pub(super) fn may_subscribe(catalog: &dyn Catalog, token: &TokenInfo, filter: &str) -> bool {
    let Some(n) = datastream_of(filter) else { return false };
    let g = &token.grant;
    if !g.may(agora_model::permissions::Action::View) || token.device.is_some() {
        return false;
    }
    let Some(x) = catalog.series_info(SeriesId(n)) else { return false };
    if agora_model::is_device_internal(x.property.as_str()) {
        return false;
    }
    g.sees_all()
        || catalog.device(x.device.as_str()).is_some_and(|d| d.commune.as_ref() == g.commune())
}

/// An observation as SensorThings shows it.
fn observation(series: SeriesId, t: Timestamp, v: &Value) -> Json {
    json!({
        "@iot.id": format!("{}-{}", series.0, t.as_nanos()),
        "phenomenonTime": t.to_rfc3339(),
        "resultTime": null,
        "result": v,
    })
}

/// Publish each stored observation to the clients subscribed to its Datastream, until the
/// pipeline goes away. Live delivery (QoS 0): a feed more than 1,024 batches behind skips
/// ahead, and says so in the log.
pub fn spawn_feed(pipeline: Arc<Pipeline>, subscribers: Subscribers) -> JoinHandle<()> {
    let mut rx = pipeline.subscribe();
    drop(pipeline);
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(batch) => {
                    let wanted: HashSet<u32> = subscribers.datastreams();
                    if wanted.is_empty() {
                        continue;
                    }
                    for (s, t, v, _) in batch.iter() {
                        if wanted.contains(&s.0) {
                            let topic = format!("v1.1/Datastreams({})/Observations", s.0);
                            let body = observation(*s, *t, v).to_string();
                            subscribers.publish(&topic, bytes::Bytes::from(body));
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        batches = n,
                        "SensorThings MQTT feed fell behind: observations skipped"
                    );
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// A result as stored: a number, a boolean or a string.
fn result_value(v: Option<&Json>) -> Result<Value, String> {
    match v {
        Some(Json::Number(n)) => match n.as_i64() {
            Some(i) if !n.is_f64() => Ok(Value::I64(i)),
            _ => n.as_f64().map(Value::F64).ok_or_else(|| "result is not a finite number".into()),
        },
        Some(Json::Bool(b)) => Ok(Value::Bool(*b)),
        Some(Json::String(s)) => Ok(Value::Str(s.clone())),
        Some(other) => Err(format!("result must be a number, a boolean or a string, not {other}")),
        None => Err("an Observation needs its result".into()),
    }
}

/// The records of an Observation published to `topic`: one reading of the Datastream the
/// topic (or the body's `Datastream`) names, at `phenomenonTime` (now without one).
pub(super) fn decode(
    pipeline: &Pipeline,
    token: &TokenInfo,
    topic: &str,
    payload: &[u8],
) -> Result<Vec<Record<'static>>, Refusal> {
    let body: Json = serde_json::from_slice(payload)
        .map_err(|e| Refusal(format!("the Observation is not JSON: {e}")))?;
    if !body.is_object() {
        return Err(Refusal("an Observation is a JSON object".into()));
    }
    let n = match (datastream_of(topic), topic) {
        (Some(n), _) => n,
        (None, "v1.1/Observations") => body
            .get("Datastream")
            .and_then(|d| d.get("@iot.id"))
            .and_then(|i| i.as_u64().or_else(|| i.as_str()?.parse().ok()))
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| {
                Refusal(
                    "an Observation published to v1.1/Observations names its Datastream: {\"Datastream\": {\"@iot.id\": N}}"
                        .into(),
                )
            })?,
        _ => {
            return Err(Refusal(format!(
                "unknown SensorThings topic {topic:?}: publish to v1.1/Datastreams(N)/Observations or v1.1/Observations"
            )));
        }
    };
    let catalog = pipeline.catalog();
    let x = catalog
        .series_info(SeriesId(n))
        .filter(|x| !agora_model::is_device_internal(x.property.as_str()))
        .ok_or_else(|| Refusal(format!("Datastreams({n}) not found")))?;
    pipeline.may_write(token, x.device.as_str())?;
    let time = match body.get("phenomenonTime") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) if !s.contains('/') => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
                .map(Timestamp::from_nanos)
                .ok_or_else(|| {
                    Refusal(format!(
                        "phenomenonTime {s:?} is not an ISO 8601 date-time with Z or an offset"
                    ))
                })?,
        ),
        Some(other) => {
            return Err(Refusal(format!(
                "phenomenonTime must be an instant (agora stores instants), not {other}"
            )));
        }
    };
    let value = result_value(body.get("result")).map_err(Refusal)?;
    Ok(vec![Record {
        line: 1,
        device: x.device.to_string().into(),
        kind: None,
        site: None,
        commune: None,
        time,
        fields: vec![Field { name: x.property.to_string().into(), value, unit: None }],
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_one_datastream() {
        assert_eq!(datastream_of("v1.1/Datastreams(42)/Observations"), Some(42));
        for bad in [
            "v1.1/Datastreams(+)/Observations",
            "v1.1/Datastreams(#)/Observations",
            "v1.1/Datastreams()/Observations",
            "v1.1/Datastreams(4 2)/Observations",
            "v1.1/Datastreams(42)/Observations/x",
            "v1.1/Datastreams(42)",
            "v1.1/Datastreams(99999999999)/Observations",
            "v1.0/Datastreams(42)/Observations",
        ] {
            assert_eq!(datastream_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn results_keep_their_type() {
        assert_eq!(result_value(Some(&json!(3))), Ok(Value::I64(3)));
        assert_eq!(result_value(Some(&json!(3.5))), Ok(Value::F64(3.5)));
        assert_eq!(result_value(Some(&json!(true))), Ok(Value::Bool(true)));
        assert!(result_value(Some(&json!({"a": 1}))).is_err());
        assert!(result_value(None).is_err());
    }
}
