//! Read endpoints: the catalog, raw points, aggregates (per device or grouped by site, commune or
//! kind), latest values and storage statistics.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_model::{DeviceKind, InseeCode, SeriesId, SiteId, Timestamp, Value};
use agora_query::summary::merge_into;
use agora_query::{
    Averaging, Budget, DeviceStatus, Every, GroupBy, TimeRange, parse_duration, summaries,
};
use agora_store::catalog::{Device, DeviceFilter, SeriesInfo};
use agora_store::{Agg, AggFn};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};

use crate::AppState;
use crate::auth::require_read;
use crate::error::{ApiError, ApiResult};

/// The time range of query parameters: `to` defaults to now, `from` to `span` before `to`.
fn range(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
    default_span: Duration,
) -> ApiResult<TimeRange> {
    let now = state.clock.now();
    Ok(TimeRange::parse(from, to, now, now.saturating_add_nanos(1), default_span)?)
}

/// The raw-point budget of one query.
pub(crate) fn budget(state: &AppState) -> Budget {
    Budget { max_points: state.config.max_query_points }
}

fn canonical(state: &AppState, property: &str) -> String {
    state.pipeline.canonical_property(property).unwrap_or_else(|| property.to_owned())
}

fn series_of(state: &AppState, device: &str, property: &str) -> ApiResult<SeriesInfo> {
    let p = canonical(state, property);
    let id = state.catalog.lookup_series(&[(device, &p)])[0].ok_or_else(|| {
        if state.catalog.device(device).is_none() {
            ApiError::NotFound(format!("device {device:?} not found"))
        } else {
            ApiError::NotFound(format!("device {device:?} has no series {p:?}"))
        }
    })?;
    state
        .catalog
        .series_info(id)
        .ok_or_else(|| ApiError::NotFound(format!("series {id} not found")))
}

/// A query parameter that must be there.
fn required<'a>(v: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    v.as_deref().ok_or_else(|| ApiError::BadRequest(format!("missing parameter {name}")))
}

fn num(v: f64) -> JsonValue {
    if v.is_finite() { json!(v) } else { JsonValue::Null }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CatalogParams {
    pub(crate) commune: Option<String>,
    pub(crate) site: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) bbox: Option<String>,
    pub(crate) device: Option<String>,
    pub(crate) property: Option<String>,
    pub(crate) status: Option<String>,
}

pub(crate) fn filter(p: &CatalogParams) -> ApiResult<DeviceFilter> {
    let bad = |e: agora_model::Error| ApiError::BadRequest(e.to_string());
    let bbox = match &p.bbox {
        None => None,
        Some(b) => {
            let v: Vec<f64> =
                b.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(
                    |_| {
                        ApiError::BadRequest(format!(
                            "bad bbox {b:?}: use min_lon,min_lat,max_lon,max_lat"
                        ))
                    },
                )?;
            let [a, b2, c, d] = v[..] else {
                return Err(ApiError::BadRequest(format!("bad bbox {b:?}: four numbers expected")));
            };
            Some([a, b2, c, d])
        }
    };
    Ok(DeviceFilter {
        commune: p.commune.as_deref().map(InseeCode::parse).transpose().map_err(bad)?,
        site: p.site.as_deref().map(SiteId::parse).transpose().map_err(bad)?,
        kind: p.kind.as_deref().map(DeviceKind::parse).transpose().map_err(bad)?,
        bbox,
    })
}

pub(crate) async fn communes(
    State(s): State<AppState>,
    h: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    Ok(Json(json!({ "communes": s.catalog.communes() })))
}

pub(crate) async fn sites(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let sites: Vec<_> = s
        .catalog
        .sites()
        .into_iter()
        .filter(|x| p.commune.as_deref().is_none_or(|c| x.commune.as_str() == c))
        .collect();
    Ok(Json(json!({ "sites": sites })))
}

fn with_status(d: &Device, now: Timestamp) -> JsonValue {
    let (status, silent) = DeviceStatus::of(d, now);
    let mut v = serde_json::to_value(d).unwrap_or_default();
    v["status"] = json!(status.as_str());
    v["silent_for_s"] = json!(silent);
    v
}

pub(crate) async fn devices(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let now = s.clock.now();
    let devices: Vec<JsonValue> = s
        .catalog
        .devices(&filter(&p)?)
        .iter()
        .map(|d| with_status(d, now))
        .filter(|d| p.status.as_deref().is_none_or(|st| d["status"] == st))
        .collect();
    Ok(Json(json!({ "count": devices.len(), "devices": devices })))
}

pub(crate) async fn device(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let d = s
        .catalog
        .device(&id)
        .ok_or_else(|| ApiError::NotFound(format!("device {id:?} not found")))?;
    let series = s.catalog.device_series(&id);
    let ids: Vec<SeriesId> = series.iter().map(|x| x.id).collect();
    let latest = s.store.latest(&ids);
    let series: Vec<JsonValue> = series
        .iter()
        .zip(latest)
        .map(|(x, l)| {
            json!({
                "property": x.property, "unit": x.unit, "kind": x.kind, "source_unit": x.source_unit,
                "latest": l.map(|(t, v)| json!({"time": t, "value": v})),
            })
        })
        .collect();
    Ok(Json(json!({ "device": with_status(&d, s.clock.now()), "series": series })))
}

pub(crate) async fn series(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let prop = p.property.as_deref().map(|x| canonical(&s, x));
    let list: Vec<SeriesInfo> = match &p.device {
        Some(d) => s.catalog.device_series(d),
        None => s.catalog.all_series(),
    }
    .into_iter()
    .filter(|x| prop.as_deref().is_none_or(|pp| x.property.as_str() == pp))
    .collect();
    Ok(Json(json!({ "count": list.len(), "series": list })))
}

pub(crate) async fn properties(
    State(s): State<AppState>,
    h: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    Ok(Json(json!({ "properties": s.pipeline.properties() })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ObsParams {
    device: Option<String>,
    property: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    quality: Option<String>,
}

pub(crate) async fn observations(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<ObsParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let device = required(&p.device, "device")?;
    let property = required(&p.property, "property")?;
    let info = series_of(&s, device, property)?;
    let TimeRange { from, to } =
        range(&s, p.from.as_deref(), p.to.as_deref(), Duration::from_secs(86_400))?;
    let limit = p.limit.unwrap_or(s.config.max_points).min(s.config.max_points);
    let all = match p.quality.as_deref() {
        None | Some("good") => false,
        Some("all") => true,
        Some(q) => {
            return Err(ApiError::BadRequest(format!(
                "bad quality {q:?}: use good (default) or all"
            )));
        }
    };
    // By default points flagged by quality checks are left out; quality=all shows them, flagged.
    let pts: Vec<(Timestamp, Value, u8)> = if all {
        s.store.read_with_flags(info.id, from, to, limit + 1).await?
    } else {
        s.store
            .read(info.id, from, to, limit + 1)
            .await?
            .into_iter()
            .map(|(t, v)| (t, v, 0))
            .collect()
    };
    let truncated = pts.len() > limit;
    let points: Vec<JsonValue> = pts
        .iter()
        .take(limit)
        .map(|(t, v, f)| {
            if *f == 0 {
                json!({"time": t, "value": v})
            } else {
                json!({"time": t, "value": v, "flags": agora_model::quality::names(*f)})
            }
        })
        .collect();
    Ok(Json(json!({
        "device": info.device, "property": info.property, "unit": info.unit,
        "from": from, "to": to, "count": points.len(), "truncated": truncated, "points": points,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AggParams {
    device: Option<String>,
    property: Option<String>,
    from: Option<String>,
    to: Option<String>,
    every: Option<String>,
    #[serde(rename = "fn")]
    func: Option<String>,
    group_by: Option<String>,
    /// IANA time zone for buckets of whole days (default UTC).
    tz: Option<String>,
    commune: Option<String>,
    site: Option<String>,
    kind: Option<String>,
}

#[derive(Debug, Serialize)]
struct Bucket {
    time: Timestamp,
    value: JsonValue,
    count: u64,
}

fn buckets(aggs: &[(Timestamp, Agg)], f: AggFn, averaging: Averaging) -> Vec<Bucket> {
    aggs.iter()
        .map(|(t, a)| Bucket { time: *t, value: num(averaging.value(a, f)), count: a.count })
        .collect()
}

pub(crate) async fn aggregate(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<AggParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let property = required(&p.property, "property")?;
    let property = canonical(&s, property);
    let every = parse_duration(p.every.as_deref().unwrap_or("1h"))?;
    let tz: Option<chrono_tz::Tz> =
        p.tz.as_deref()
            .map(|z| {
                z.parse().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "unknown time zone {z:?} (use an IANA name such as Europe/Paris)"
                    ))
                })
            })
            .transpose()?;
    let every = Every::new(every, tz);
    let f: AggFn = p.func.as_deref().unwrap_or("mean").parse().map_err(ApiError::BadRequest)?;
    let range = range(&s, p.from.as_deref(), p.to.as_deref(), Duration::from_secs(86_400))?;
    let n_buckets = every.count_in(range.span());
    if n_buckets > 100_000 {
        return Err(ApiError::BadRequest(format!(
            "{n_buckets} buckets requested: at most 100000, use a larger every"
        )));
    }
    let averaging = s
        .pipeline
        .unit_of(&property)
        .map_or(Averaging::Arithmetic, |u| Averaging::of(&property, &u, f));
    let head = json!({
        "property": property, "fn": p.func.as_deref().unwrap_or("mean"), "every": p.every.as_deref().unwrap_or("1h"),
        "from": range.from, "to": range.to, "averaging": averaging.as_str(),
        "tz": p.tz.as_deref().unwrap_or("UTC"),
    });
    let store = s.store.as_ref();
    match (&p.device, &p.group_by) {
        (Some(d), None) => {
            let info = series_of(&s, d, &property)?;
            budget(&s).check(store, &[info.id], range, every, averaging)?;
            let aggs = summaries(store, info.id, range, every, averaging).await?;
            let mut out = head;
            out["unit"] = json!(info.unit);
            out["series"] =
                json!([{ "device": info.device, "points": buckets(&aggs, f, averaging) }]);
            Ok(Json(out))
        }
        (None, Some(g)) => {
            let group: GroupBy = g.parse()?;
            let fil = filter(&CatalogParams {
                commune: p.commune.clone(),
                site: p.site.clone(),
                kind: p.kind.clone(),
                bbox: None,
                device: None,
                property: None,
                status: None,
            })?;
            let devices = s.catalog.devices(&fil);
            let keys: Vec<(&str, &str)> =
                devices.iter().map(|d| (d.id.as_str(), property.as_str())).collect();
            let ids = s.catalog.lookup_series(&keys);
            let all: Vec<SeriesId> = ids.iter().flatten().copied().collect();
            budget(&s).check(store, &all, range, every, averaging)?;
            let mut groups: BTreeMap<String, (usize, BTreeMap<Timestamp, Agg>)> = BTreeMap::new();
            let mut unit = None;
            for (d, id) in devices.iter().zip(ids) {
                let (Some(k), Some(id)) = (group.key(d), id) else { continue };
                if unit.is_none() {
                    unit = s.catalog.series_info(id).map(|i| i.unit);
                }
                let aggs = summaries(store, id, range, every, averaging).await?;
                let g = groups.entry(k).or_default();
                g.0 += 1;
                merge_into(&mut g.1, aggs);
            }
            let series: Vec<JsonValue> = groups
                .into_iter()
                .map(|(k, (n, b))| {
                    let aggs: Vec<(Timestamp, Agg)> = b.into_iter().collect();
                    json!({"group": k, "devices": n, "points": buckets(&aggs, f, averaging)})
                })
                .collect();
            let mut out = head;
            out["group_by"] = json!(group.as_str());
            out["unit"] = json!(unit);
            out["series"] = json!(series);
            Ok(Json(out))
        }
        (Some(_), Some(_)) => {
            Err(ApiError::BadRequest("give either device or group_by, not both".into()))
        }
        (None, None) => Err(ApiError::BadRequest(
            "missing parameter device (or group_by=site|commune|kind)".into(),
        )),
    }
}

pub(crate) async fn latest(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let prop = p.property.as_deref().map(|x| canonical(&s, x));
    let devices: Vec<Device> = match &p.device {
        Some(d) => s.catalog.device(d).into_iter().collect(),
        None => s.catalog.devices(&filter(&p)?),
    };
    let mut rows: Vec<(&Device, SeriesInfo)> = Vec::new();
    for d in &devices {
        for x in s.catalog.device_series(d.id.as_str()) {
            if prop.as_deref().is_none_or(|pp| x.property.as_str() == pp) {
                rows.push((d, x));
            }
        }
    }
    let ids: Vec<SeriesId> = rows.iter().map(|r| r.1.id).collect();
    let latest = s.store.latest(&ids);
    let values: Vec<JsonValue> = rows
        .iter()
        .zip(latest)
        .filter_map(|((d, x), l)| {
            let (t, v): (Timestamp, Value) = l?;
            Some(json!({
                "device": d.id, "kind": d.kind, "site": d.site, "commune": d.commune,
                "property": x.property, "unit": x.unit, "time": t, "value": v,
            }))
        })
        .collect();
    Ok(Json(json!({ "count": values.len(), "values": values })))
}

pub(crate) async fn stats(State(s): State<AppState>, h: HeaderMap) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let st = s.store.stats();
    let bytes_per_point = if st.points > 0 {
        st.segment_bytes as f64 / (st.points - st.head_points).max(1) as f64
    } else {
        0.0
    };
    Ok(Json(json!({
        "series": st.series,
        "points": st.points,
        "bytes_on_disk": st.bytes_on_disk,
        "bytes_per_point": bytes_per_point,
        "storage": st,
        "catalog": {
            "communes": s.catalog.communes().len(),
            "sites": s.catalog.sites().len(),
            "devices": s.catalog.devices(&DeviceFilter::default()).len(),
            "series": s.catalog.all_series().len(),
        },
    })))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub(crate) struct Doc;
