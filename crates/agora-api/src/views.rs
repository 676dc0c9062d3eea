//! Read endpoints shaped for the dashboard: the map (public and operator), charts downsampled to
//! at most 2,000 buckets with min/max/mean per bucket, and fleet health.
//!
//! The public variants need no token and never show device internals (battery, radio link,
//! metadata) nor anything about tokens; they are off when `public_map` is disabled.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use agora_model::{SeriesId, Timestamp, Value, is_device_internal};
use agora_store::catalog::{Device, DeviceFilter};
use agora_store::{Agg, AggFn};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::AppState;
use crate::auth::require_read;
use crate::error::{ApiError, ApiResult};
use agora_query::{Averaging, DeviceStatus, Every, TimeRange, device_state, is_fault, parse_time};

/// Most buckets a chart series may have.
pub(crate) const MAX_CHART_POINTS: usize = 2_000;

/// Who is asking: an operator (read token or session) sees everything, the public a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Operator,
    Public,
}

impl Audience {
    /// Operators when the request carries read rights (token or session), else the public when
    /// the public map is on.
    pub(crate) fn of(state: &AppState, headers: &HeaderMap) -> ApiResult<Self> {
        match crate::auth::require(state, headers, None, agora_store::catalog::Scope::Read) {
            Ok(_) => Ok(Self::Operator),
            Err(_) if state.config.public_map => Ok(Self::Public),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn sees(self, property: &str) -> bool {
        self == Self::Operator || !is_device_internal(property)
    }
}

fn public_only(state: &AppState) -> ApiResult<()> {
    if state.config.public_map {
        Ok(())
    } else {
        Err(ApiError::NotFound("the public map is disabled on this server".into()))
    }
}

/// Latest values, fault and flag facts of many devices, read in one pass over their series.
pub(crate) struct Snapshot {
    /// Per device: (property, time, value) of each series the audience may see.
    pub(crate) latest: HashMap<String, Vec<(String, Timestamp, Value)>>,
    /// Devices reporting a fault state.
    pub(crate) faulty: HashMap<String, (String, Value, Timestamp)>,
    /// Latest flagged point per device.
    pub(crate) flagged: HashMap<String, Timestamp>,
    /// Unit of each property seen.
    pub(crate) units: BTreeMap<String, String>,
}

pub(crate) fn snapshot(state: &AppState, devices: &[Device], audience: Audience) -> Snapshot {
    let mut rows = Vec::new();
    let mut units = BTreeMap::new();
    for d in devices {
        for x in state.catalog.device_series(d.id.as_str()) {
            units.entry(x.property.to_string()).or_insert_with(|| x.unit.clone());
            rows.push((d.id.to_string(), x.property.to_string(), x.id));
        }
    }
    let ids: Vec<SeriesId> = rows.iter().map(|r| r.2).collect();
    let by_series: HashMap<SeriesId, usize> =
        ids.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let mut snap = Snapshot {
        latest: HashMap::new(),
        faulty: HashMap::new(),
        flagged: HashMap::new(),
        units: BTreeMap::new(),
    };
    for ((device, property, _), l) in rows.iter().zip(state.store.latest(&ids)) {
        let Some((t, v)) = l else { continue };
        if is_fault(property, &v) {
            snap.faulty.insert(device.clone(), (property.clone(), v.clone(), t));
        }
        if audience.sees(property) {
            snap.latest.entry(device.clone()).or_default().push((property.clone(), t, v));
        }
    }
    for (s, tally) in state.pipeline.flag_tallies() {
        if let Some(&i) = by_series.get(&s) {
            let e = snap.flagged.entry(rows[i].0.clone()).or_insert(tally.last);
            *e = (*e).max(tally.last);
        }
    }
    snap.units = units.into_iter().filter(|(p, _)| audience.sees(p)).collect();
    snap
}

fn value_json(v: &Value) -> JsonValue {
    match v {
        Value::F64(x) if x.is_finite() => json!(x),
        Value::F64(_) => JsonValue::Null,
        other => serde_json::to_value(other).unwrap_or(JsonValue::Null),
    }
}

fn map_payload(state: &AppState, audience: Audience) -> JsonValue {
    let now = state.clock.now();
    let devices = state.catalog.devices(&DeviceFilter::default());
    let snap = snapshot(state, &devices, audience);
    let list: Vec<JsonValue> = devices
        .iter()
        .map(|d| {
            let id = d.id.as_str();
            let latest: serde_json::Map<String, JsonValue> = snap
                .latest
                .get(id)
                .map(|v| {
                    v.iter()
                        .map(|(p, t, x)| {
                            (p.clone(), json!([t.as_nanos() / 1_000_000, value_json(x)]))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let state =
                device_state(d, now, snap.faulty.contains_key(id), snap.flagged.get(id).copied());
            let mut o = json!({
                "id": d.id, "name": d.name, "kind": d.kind, "site": d.site, "commune": d.commune,
                "lat": d.lat, "lon": d.lon, "state": state, "latest": latest,
            });
            if audience == Audience::Operator {
                o["last_seen"] = json!(d.last_seen);
            }
            o
        })
        .collect();
    json!({
        "now": now,
        "communes": state.catalog.communes(),
        "sites": state.catalog.sites(),
        "units": snap.units,
        "devices": list,
    })
}

/// `GET /api/v1/public/map`: places and devices with their latest public values, no token.
pub(crate) async fn public_map(State(s): State<AppState>) -> ApiResult<Json<JsonValue>> {
    public_only(&s)?;
    Ok(Json(map_payload(&s, Audience::Public)))
}

/// `GET /api/v1/map`: the operator's map, with every property and device states.
pub(crate) async fn map(State(s): State<AppState>, h: HeaderMap) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    Ok(Json(map_payload(&s, Audience::Operator)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChartParams {
    device: Option<String>,
    site: Option<String>,
    property: Option<String>,
    from: Option<String>,
    to: Option<String>,
    points: Option<usize>,
}

/// Bucket widths a chart may use, in seconds: round numbers people read on an axis.
const STEPS: [u64; 22] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 345_600, 604_800, 1_209_600,
];

/// The smallest round bucket width giving at most `points` buckets over `span`.
pub(crate) fn chart_step(span: Duration, points: usize) -> Duration {
    let points = points.clamp(1, MAX_CHART_POINTS) as u64;
    let need = span.as_secs().div_ceil(points).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| *s >= need)
        .unwrap_or_else(|| need.div_ceil(86_400) * 86_400);
    Duration::from_secs(step)
}

/// The bucket length of a chart from `from` to `to` (`from < to`) in at most `points` buckets, and
/// where its first bucket starts: aligned on the bucket length so that successive charts of a
/// moving window agree. Any two instants a `Timestamp` holds (1677–2262) give an answer: the
/// span is computed without overflow, and a start whose aligned boundary lies before the first
/// representable instant is left unaligned.
pub(crate) fn chart_buckets(
    from: Timestamp,
    to: Timestamp,
    points: usize,
) -> (Duration, Timestamp) {
    let span = Duration::from_nanos(to.as_nanos().abs_diff(from.as_nanos()));
    let step = chart_step(span, points);
    let step_ns = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
    let f = from.as_nanos();
    let aligned = f.div_euclid(step_ns).checked_mul(step_ns).unwrap_or(f);
    (step, Timestamp::from_nanos(aligned))
}

/// `GET /api/v1/chart?device=|site=&property=&from=&to=&points=`: one series downsampled to at
/// most `points` (≤ 2,000) buckets, each with min, max, mean and count, so peaks stay visible.
/// Buckets of whole hours come from the stored hourly rollups. A site's chart merges its
/// devices. Sound levels are averaged as energy.
pub(crate) async fn chart(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<ChartParams>,
) -> ApiResult<Json<JsonValue>> {
    let audience = Audience::of(&s, &h)?;
    let property = p
        .property
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("missing parameter property".into()))?;
    let property = s.pipeline.canonical_property(property).unwrap_or_else(|| property.to_owned());
    if !audience.sees(&property) {
        return Err(ApiError::Forbidden(format!(
            "{property} describes the device itself and is shown to operators only"
        )));
    }
    let now = s.clock.now();
    let to = p.to.as_deref().map(|t| parse_time(t, now)).transpose()?.unwrap_or(now);
    let from = match p.from.as_deref() {
        Some(f) => parse_time(f, now)?,
        None => to.saturating_add_nanos(-86_400_000_000_000),
    };
    if from >= to {
        return Err(ApiError::BadRequest(format!("from ({from}) must be before to ({to})")));
    }
    let points = p.points.unwrap_or(1_500);
    if points == 0 || points > MAX_CHART_POINTS {
        return Err(ApiError::BadRequest(format!(
            "points must be between 1 and {MAX_CHART_POINTS}, not {points}"
        )));
    }
    let (step, from_a) = chart_buckets(from, to, points);
    let devices: Vec<String> = match (&p.device, &p.site) {
        (Some(d), None) => {
            if s.catalog.device(d).is_none() {
                return Err(ApiError::NotFound(format!("device {d:?} not found")));
            }
            vec![d.clone()]
        }
        (None, Some(site)) => {
            let site = agora_model::SiteId::parse(site)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let f = DeviceFilter { site: Some(site), ..Default::default() };
            s.catalog.devices(&f).into_iter().map(|d| d.id.to_string()).collect()
        }
        _ => return Err(ApiError::BadRequest("give one of device or site".into())),
    };
    let keys: Vec<(&str, &str)> = devices.iter().map(|d| (d.as_str(), property.as_str())).collect();
    let ids: Vec<SeriesId> = s.catalog.lookup_series(&keys).into_iter().flatten().collect();
    if ids.is_empty() && p.device.is_some() {
        return Err(ApiError::NotFound(format!(
            "device {:?} has no series {property:?}",
            p.device.as_deref().unwrap_or_default()
        )));
    }
    let unit = ids.first().and_then(|i| s.catalog.series_info(*i)).map(|i| i.unit);
    // A chart shows the mean of each bucket: energy means for sound levels.
    let averaging =
        unit.as_deref().map_or(Averaging::Arithmetic, |u| Averaging::of(&property, u, AggFn::Mean));
    let range = TimeRange::new(from_a, to)?;
    let every = Every::Fixed(step);
    let store = s.store.as_ref();
    crate::query::budget(&s).check(store, &ids, range, every, averaging)?;
    let mut merged: BTreeMap<Timestamp, Agg> = BTreeMap::new();
    for id in &ids {
        let parts = agora_query::summaries(store, *id, range, every, averaging).await?;
        agora_query::summary::merge_into(&mut merged, parts);
    }
    let n = merged.len();
    let (mut t, mut min, mut max, mut mean, mut count) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (ts, a) in merged {
        t.push(ts.as_nanos() / 1_000_000_000);
        min.push(a.min);
        max.push(a.max);
        let m = averaging.value(&a, AggFn::Mean);
        mean.push((m * 1000.0).round() / 1000.0);
        count.push(a.count);
    }
    Ok(Json(json!({
        "property": property, "unit": unit, "device": p.device, "site": p.site,
        "devices": ids.len(), "from": from, "to": to, "every_s": step.as_secs(),
        "averaging": averaging.as_str(),
        "t": t, "min": min, "max": max, "mean": mean, "count": count,
    })))
}

/// Below this battery charge (%) a device is listed for a visit.
const LOW_BATTERY: f64 = 20.0;
/// Below this received signal strength (dBm) a LoRaWAN link is weak.
const WEAK_RSSI: f64 = -115.0;
/// Below this signal-to-noise ratio (dB) a LoRaWAN link is weak.
const WEAK_SNR: f64 = -10.0;

/// `GET /api/v1/fleet`: fleet health for operators — counts by state and kind, silent devices,
/// low batteries, weak radio links, devices reporting faults, quality flags and dead letters.
pub(crate) async fn fleet(State(s): State<AppState>, h: HeaderMap) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let now = s.clock.now();
    let devices = s.catalog.devices(&DeviceFilter::default());
    let snap = snapshot(&s, &devices, Audience::Operator);
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut silent = Vec::new();
    let mut battery = Vec::new();
    let mut radio = Vec::new();
    let mut faulty = Vec::new();
    for d in &devices {
        let id = d.id.as_str();
        let st = device_state(d, now, snap.faulty.contains_key(id), snap.flagged.get(id).copied());
        *counts.entry(st).or_default() += 1;
        *counts.entry("total").or_default() += 1;
        let k = by_kind.entry(d.kind.to_string()).or_default();
        *k.entry(st).or_default() += 1;
        *k.entry("total").or_default() += 1;
        let (status, silent_for) = DeviceStatus::of(d, now);
        if status != DeviceStatus::Online {
            silent.push(json!({
                "id": d.id, "kind": d.kind, "site": d.site, "status": status.as_str(),
                "last_seen": d.last_seen, "silent_for_s": silent_for,
            }));
        }
        let latest = snap.latest.get(id).map(Vec::as_slice).unwrap_or_default();
        let get = |name: &str| {
            latest.iter().find(|(p, _, _)| p == name).and_then(|(_, t, v)| Some((*t, v.as_f64()?)))
        };
        if let Some((t, b)) = get("battery").filter(|(_, b)| *b < LOW_BATTERY) {
            battery
                .push(json!({"id": d.id, "kind": d.kind, "site": d.site, "battery": b, "time": t}));
        }
        let rssi = get("rssi");
        let snr = get("snr");
        if rssi.is_some_and(|(_, r)| r < WEAK_RSSI) || snr.is_some_and(|(_, x)| x < WEAK_SNR) {
            radio.push(json!({
                "id": d.id, "kind": d.kind, "site": d.site,
                "rssi": rssi.map(|r| r.1), "snr": snr.map(|x| x.1),
            }));
        }
        if let Some((p, v, t)) = snap.faulty.get(id) {
            faulty.push(json!({
                "id": d.id, "kind": d.kind, "site": d.site, "property": p, "value": value_json(v), "time": t,
            }));
        }
    }
    silent.sort_by_key(|x| std::cmp::Reverse(x["silent_for_s"].as_i64().unwrap_or(i64::MAX)));
    battery.sort_by(|a, b| {
        a["battery"]
            .as_f64()
            .partial_cmp(&b["battery"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut quality: Vec<JsonValue> = s
        .pipeline
        .flag_tallies()
        .into_iter()
        .filter_map(|(sid, t)| {
            let info = s.catalog.series_info(sid)?;
            Some(json!({
                "device": info.device, "property": info.property,
                "stuck": t.stuck, "jump": t.jump, "last": t.last,
            }))
        })
        .collect();
    quality.sort_by(|a, b| b["last"].as_str().cmp(&a["last"].as_str()));
    let rejects = s.catalog.rejects(200).await?;
    let mut by_source: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rejects {
        *by_source.entry(r.source.as_str()).or_default() += 1;
    }
    let recent: Vec<JsonValue> = rejects
        .iter()
        .take(50)
        .map(|r| json!({"id": r.id, "source": r.source, "reason": r.reason, "line": r.line, "received_at": r.received_at}))
        .collect();
    let cap = |mut v: Vec<JsonValue>| {
        v.truncate(500);
        v
    };
    let h = s.store.health();
    Ok(Json(json!({
        "now": now,
        "storage": {
            "accepting_writes": h.accepting_writes, "wal_failing": h.wal_failing,
            "free_bytes": h.free_bytes, "total_bytes": h.total_bytes, "reserve_bytes": h.reserve_bytes,
            "unflushed_points": h.unflushed_points, "last_error": h.last_error,
        },
        "counts": counts,
        "by_kind": by_kind,
        "silent": cap(silent),
        "low_battery": cap(battery),
        "weak_radio": cap(radio),
        "faulty": cap(faulty),
        "quality_flags": cap(quality),
        "dead_letters": { "recent": recent, "by_source_in_last_200": by_source },
        "thresholds": { "battery_pct": LOW_BATTERY, "rssi_dbm": WEAK_RSSI, "snr_db": WEAK_SNR },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_steps_are_round_and_bounded() {
        let day = Duration::from_secs(86_400);
        assert_eq!(chart_step(day, 1_500), Duration::from_secs(60));
        assert_eq!(chart_step(day * 7, 1_500), Duration::from_secs(600));
        assert_eq!(chart_step(day * 365, 2_000), Duration::from_secs(21_600));
        for days in [1u32, 3, 30, 365, 3650] {
            let span = day * days;
            let step = chart_step(span, 2_000);
            assert!(span.as_secs().div_ceil(step.as_secs()) <= 2_000, "{days} days");
        }
    }

    #[test]
    fn charts_span_the_whole_representable_range() {
        // From 1677 to 2262: the span used to overflow, and so did the aligned start.
        let from = Timestamp::parse_rfc3339("1677-09-22T00:00:00Z").unwrap();
        let to = Timestamp::parse_rfc3339("2262-04-10T00:00:00Z").unwrap();
        let (step, start) = chart_buckets(from, to, 2_000);
        let span = (to.as_nanos() as i128 - from.as_nanos() as i128) as u128;
        assert!(span.div_ceil(step.as_nanos()) <= 2_000, "{step:?}");
        assert!(
            start <= from
                && from.as_nanos() as i128 - (start.as_nanos() as i128) < step.as_nanos() as i128
        );
        let (step, start) =
            chart_buckets(Timestamp::from_nanos(i64::MIN), Timestamp::from_nanos(i64::MAX), 1);
        assert!(step.as_secs() >= 584 * 365 * 86_400, "{step:?}");
        assert_eq!(start, Timestamp::from_nanos(i64::MIN), "left unaligned");
        // An ordinary day is aligned on its buckets.
        let from = Timestamp::parse_rfc3339("2026-01-01T00:00:30Z").unwrap();
        let to = Timestamp::parse_rfc3339("2026-01-02T00:00:30Z").unwrap();
        let (step, start) = chart_buckets(from, to, 1_500);
        assert_eq!(step, Duration::from_secs(60));
        assert_eq!(start.to_rfc3339(), "2026-01-01T00:00:00Z");
    }
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub(crate) struct Doc;
