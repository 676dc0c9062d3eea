//! Read endpoints: the catalog, raw points, aggregates (per device or grouped by site, commune or
//! kind), latest values and storage statistics.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_model::{DeviceKind, InseeCode, SeriesId, SiteId, Timestamp, Value};
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

/// Parse a duration such as `30s`, `15m`, `1h`, `1d`, `1w`.
pub(crate) fn parse_duration(s: &str) -> ApiResult<Duration> {
    let bad = || {
        ApiError::BadRequest(format!(
            "bad duration {s:?}: use a number followed by s, m, h, d or w (e.g. 15m, 1h, 1d)"
        ))
    };
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = s[..split].parse().map_err(|_| bad())?;
    let unit = match &s[split..] {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    n.checked_mul(unit).map(Duration::from_secs).ok_or_else(bad)
}

/// Parse a time parameter: RFC 3339, an epoch number, `now`, or `now-24h` / `-24h`.
pub(crate) fn parse_time(s: &str, now: Timestamp) -> ApiResult<Timestamp> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rel) = s.strip_prefix("now-").or_else(|| s.strip_prefix('-')) {
        let d = parse_duration(rel)?;
        return Ok(now.saturating_add_nanos(-(d.as_nanos() as i64)));
    }
    s.parse::<Timestamp>().map_err(|e| {
        ApiError::BadRequest(format!(
            "bad time: {e} (use RFC 3339, an epoch number, now or now-24h)"
        ))
    })
}

fn range(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
    default_span: Duration,
) -> ApiResult<(Timestamp, Timestamp)> {
    let now = state.clock.now();
    let to = to.map(|t| parse_time(t, now)).transpose()?.unwrap_or(now.saturating_add_nanos(1));
    let from = from
        .map(|t| parse_time(t, now))
        .transpose()?
        .unwrap_or(to.saturating_add_nanos(-(default_span.as_nanos() as i64)));
    if from >= to {
        return Err(ApiError::BadRequest(format!("from ({from}) must be before to ({to})")));
    }
    Ok((from, to))
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

/// Whether a device reports as expected: `online`, `offline` (silent for more than twice its
/// expected period, from `metadata.period_s`, one hour by default) or `never_seen`.
pub(crate) fn status_of(d: &Device, now: Timestamp) -> (&'static str, Option<i64>) {
    let Some(seen) = d.last_seen else { return ("never_seen", None) };
    let period =
        d.metadata.get("period_s").and_then(JsonValue::as_i64).filter(|p| *p > 0).unwrap_or(3600);
    let silent = (now.as_nanos() - seen.as_nanos()).max(0) / 1_000_000_000;
    (if silent > 2 * period + 60 { "offline" } else { "online" }, Some(silent))
}

fn with_status(d: &Device, now: Timestamp) -> JsonValue {
    let (status, silent) = status_of(d, now);
    let mut v = serde_json::to_value(d).unwrap_or_default();
    v["status"] = json!(status);
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
    let (from, to) = range(&s, p.from.as_deref(), p.to.as_deref(), Duration::from_secs(86_400))?;
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

/// Buckets' values; for sound levels (`energy`), `sum` holds Σ 10^(L/10) and the mean is the
/// equivalent level 10·log10(Σ/n).
fn buckets(aggs: &[(Timestamp, Agg)], f: AggFn, energy: bool) -> Vec<Bucket> {
    aggs.iter()
        .map(|(t, a)| {
            let v = match (energy, f) {
                (true, AggFn::Mean) => 10.0 * (a.sum / a.count as f64).log10(),
                (true, AggFn::Sum) => 10.0 * a.sum.log10(),
                _ => a.value(f),
            };
            Bucket { time: *t, value: num(v), count: a.count }
        })
        .collect()
}

/// Summaries of one series: energy sums for sound levels when a mean or sum is asked.
async fn summaries(
    s: &AppState,
    id: SeriesId,
    from: Timestamp,
    to: Timestamp,
    every: Duration,
    energy: bool,
    tz: Option<chrono_tz::Tz>,
) -> ApiResult<Vec<(Timestamp, Agg)>> {
    let days = every.as_secs().is_multiple_of(86_400).then_some(every.as_secs() / 86_400);
    let step = summary_step(every, tz);
    if reads_raw(step, energy) {
        within_budget(s, &[id], from, to)?;
    }
    let aggs = if energy {
        s.store.aggregate_energy(id, from, to, step).await?
    } else {
        s.store.aggregate(id, from, to, step).await?
    };
    Ok(match (tz, days) {
        (Some(tz), Some(days)) => local_days(aggs, tz, days as i64),
        _ => aggs,
    })
}

/// The step summaries are asked for: days in a time zone are built from hours (local midnight is
/// an hour boundary in France).
fn summary_step(every: Duration, tz: Option<chrono_tz::Tz>) -> Duration {
    match tz {
        Some(_) if every.as_secs().is_multiple_of(86_400) && every.subsec_nanos() == 0 => {
            Duration::from_secs(3600)
        }
        _ => every,
    }
}

/// Whether summaries in `step` decode raw points: whole hours come from the rollups, sound
/// levels (energy means) and shorter buckets do not.
pub(crate) fn reads_raw(step: Duration, energy: bool) -> bool {
    energy || !step.as_secs().is_multiple_of(3600) || step.subsec_nanos() != 0
}

/// Refuse a query that would decode more raw points than `max_query_points` (counted from the
/// index, before anything is read): `422 query_too_large`, saying how to narrow it.
pub(crate) fn within_budget(
    s: &AppState,
    series: &[SeriesId],
    from: Timestamp,
    to: Timestamp,
) -> ApiResult<()> {
    let cap = s.config.max_query_points;
    let mut n = 0u64;
    for id in series {
        n = n.saturating_add(s.store.raw_points_in(*id, from, to));
        if n > cap {
            return Err(ApiError::QueryTooLarge(format!(
                "this query would read more than {cap} raw points ({} series from {from} to {to}); \
                 ask for a shorter range, fewer devices, or whole-hour buckets (every=1h, 1d), which \
                 come from the hourly rollups",
                series.len()
            )));
        }
    }
    Ok(())
}

/// Regroup hourly summaries into buckets of `days` days starting at local midnight in `tz`
/// (23 or 25 hours long on daylight-saving days).
fn local_days(
    hourly: Vec<(Timestamp, Agg)>,
    tz: chrono_tz::Tz,
    days: i64,
) -> Vec<(Timestamp, Agg)> {
    use chrono::{Datelike, NaiveDate, TimeZone};
    let mut out: Vec<(Timestamp, Agg)> = Vec::new();
    for (t, a) in hourly {
        let n = i64::from(t.to_datetime().with_timezone(&tz).date_naive().num_days_from_ce());
        let first = NaiveDate::from_num_days_from_ce_opt((n - n.rem_euclid(days)) as i32);
        let start = first
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| tz.from_local_datetime(&d).earliest())
            .and_then(|d| Timestamp::from_datetime(&d))
            .unwrap_or(t);
        match out.last_mut() {
            Some((b, acc)) if *b == start => acc.merge(&a),
            _ => out.push((start, a)),
        }
    }
    out
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
    let f: AggFn = p.func.as_deref().unwrap_or("mean").parse().map_err(ApiError::BadRequest)?;
    let (from, to) = range(&s, p.from.as_deref(), p.to.as_deref(), Duration::from_secs(86_400))?;
    let n_buckets = (to.as_nanos() - from.as_nanos()) as u128 / every.as_nanos().max(1);
    if n_buckets > 100_000 {
        return Err(ApiError::BadRequest(format!(
            "{n_buckets} buckets requested: at most 100000, use a larger every"
        )));
    }
    // Sound levels are averaged as energy, never arithmetically (LAeq,T).
    let energy = matches!(f, AggFn::Mean | AggFn::Sum)
        && s.pipeline
            .unit_of(&property)
            .is_some_and(|u| agora_model::is_sound_level(&property, &u));
    let head = json!({
        "property": property, "fn": p.func.as_deref().unwrap_or("mean"), "every": p.every.as_deref().unwrap_or("1h"),
        "from": from, "to": to, "averaging": if energy { "energy" } else { "arithmetic" },
        "tz": p.tz.as_deref().unwrap_or("UTC"),
    });
    match (&p.device, &p.group_by) {
        (Some(d), None) => {
            let info = series_of(&s, d, &property)?;
            let aggs = summaries(&s, info.id, from, to, every, energy, tz).await?;
            let mut out = head;
            out["unit"] = json!(info.unit);
            out["series"] = json!([{ "device": info.device, "points": buckets(&aggs, f, energy) }]);
            Ok(Json(out))
        }
        (None, Some(g)) => {
            let fil = filter(&CatalogParams {
                commune: p.commune.clone(),
                site: p.site.clone(),
                kind: p.kind.clone(),
                bbox: None,
                device: None,
                property: None,
                status: None,
            })?;
            let key = |d: &Device| -> Option<String> {
                match g.as_str() {
                    "site" => d.site.as_ref().map(|x| x.to_string()),
                    "commune" => d.commune.as_ref().map(|x| x.to_string()),
                    "kind" => Some(d.kind.to_string()),
                    _ => None,
                }
            };
            if !matches!(g.as_str(), "site" | "commune" | "kind") {
                return Err(ApiError::BadRequest(format!(
                    "bad group_by {g:?}: use site, commune or kind"
                )));
            }
            let devices = s.catalog.devices(&fil);
            let keys: Vec<(&str, &str)> =
                devices.iter().map(|d| (d.id.as_str(), property.as_str())).collect();
            let ids = s.catalog.lookup_series(&keys);
            let mut groups: BTreeMap<String, (usize, BTreeMap<Timestamp, Agg>)> = BTreeMap::new();
            let mut unit = None;
            if reads_raw(summary_step(every, tz), energy) {
                let all: Vec<SeriesId> = ids.iter().flatten().copied().collect();
                within_budget(&s, &all, from, to)?;
            }
            for (d, id) in devices.iter().zip(ids) {
                let (Some(k), Some(id)) = (key(d), id) else { continue };
                if unit.is_none() {
                    unit = s.catalog.series_info(id).map(|i| i.unit);
                }
                let aggs = summaries(&s, id, from, to, every, energy, tz).await?;
                let g = groups.entry(k).or_default();
                g.0 += 1;
                for (t, a) in aggs {
                    g.1.entry(t).and_modify(|x| x.merge(&a)).or_insert(a);
                }
            }
            let series: Vec<JsonValue> = groups
                .into_iter()
                .map(|(k, (n, b))| {
                    let aggs: Vec<(Timestamp, Agg)> = b.into_iter().collect();
                    json!({"group": k, "devices": n, "points": buckets(&aggs, f, energy)})
                })
                .collect();
            let mut out = head;
            out["group_by"] = json!(g);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
        let now = Timestamp::from_secs(1_767_225_600).unwrap();
        assert_eq!(
            parse_time("now-1h", now).unwrap().as_nanos(),
            now.as_nanos() - 3_600_000_000_000
        );
        assert_eq!(parse_time("-1h", now).unwrap(), parse_time("now-1h", now).unwrap());
        assert_eq!(parse_time("2026-01-01T00:00:00Z", now).unwrap(), now);
        assert!(parse_time("tomorrow", now).is_err());
    }
}
