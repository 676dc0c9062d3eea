//! Read endpoints shaped for the dashboard: the map (public and operator), charts downsampled to
//! at most 2,000 buckets with min/max/mean per bucket, and fleet health.
//!
//! The public variants need no token and never show device internals (battery, radio link,
//! metadata) nor anything about tokens; they are off when `public_map` is disabled.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use agora_model::{
    DeviceId, DeviceKind, InseeCode, PropertyName, SeriesId, SiteId, Timestamp, Value,
    is_device_internal,
};
use agora_store::StorageHealth;
use agora_store::catalog::{Commune, Device, DeviceFilter, Site};
use agora_store::{Agg, AggFn};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::Reads;
use crate::doc::{BadRequest, NotFound, TooManyRequests, Unavailable, Unprocessable};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::policy::Scoped;
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
        match crate::auth::authenticate(state, headers, None) {
            Ok(Some(p)) if p.grant.may(agora_model::permissions::Action::View) => {
                Ok(Self::Operator)
            }
            _ if state.config.public_map => Ok(Self::Public),
            Ok(_) => Err(ApiError::Unauthorized("missing credentials".into())),
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

/// A device's state on the map: `offline` and `never_seen` from its reporting period (twice its
/// metadata's `period_s`, one hour by default, plus a minute), `faulty` when a status it reports
/// names a fault (`defectiveLamp`…), `flagged` when quality checks flagged one of its points in
/// the last 24 hours, else `online`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
// Describes the names `agora_query::device_state` answers; never built.
#[allow(dead_code)]
pub(crate) enum DeviceState {
    Online,
    Offline,
    NeverSeen,
    Faulty,
    Flagged,
}

/// The map: communes, places and devices with their latest values.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapAnswer {
    /// The server's time.
    now: Timestamp,
    /// Every commune.
    communes: Vec<Commune>,
    /// Every place.
    sites: Vec<Site>,
    /// The unit of each property shown, by property.
    units: BTreeMap<String, String>,
    /// Every device.
    devices: Vec<MapDevice>,
}

/// A device on the map.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapDevice {
    /// Its identifier.
    id: DeviceId,
    /// A name for people.
    name: Option<String>,
    /// Its kind.
    kind: DeviceKind,
    /// The place it stands on.
    site: Option<SiteId>,
    /// Its commune.
    commune: Option<InseeCode>,
    /// Latitude (WGS 84).
    lat: Option<f64>,
    /// Longitude (WGS 84).
    lon: Option<f64>,
    /// Its state.
    #[schema(value_type = DeviceState)]
    state: &'static str,
    /// The latest value of each property shown, by property: `[time in epoch milliseconds,
    /// value]`.
    latest: BTreeMap<String, (i64, Value)>,
    /// When it last sent data (null: never); on the operator's map only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Timestamp>)]
    last_seen: Option<Option<Timestamp>>,
}

fn map_payload(state: &AppState, audience: Audience) -> MapAnswer {
    let now = state.clock.now();
    let devices = state.catalog.devices(&DeviceFilter::default());
    let snap = snapshot(state, &devices, audience);
    let list = devices
        .into_iter()
        .map(|d| {
            let id = d.id.as_str();
            let latest = snap
                .latest
                .get(id)
                .map(|v| {
                    v.iter()
                        .map(|(p, t, x)| (p.clone(), (t.as_nanos() / 1_000_000, x.clone())))
                        .collect()
                })
                .unwrap_or_default();
            let state =
                device_state(&d, now, snap.faulty.contains_key(id), snap.flagged.get(id).copied());
            MapDevice {
                last_seen: (audience == Audience::Operator).then_some(d.last_seen),
                id: d.id,
                name: d.name,
                kind: d.kind,
                site: d.site,
                commune: d.commune,
                lat: d.lat,
                lon: d.lon,
                state,
                latest,
            }
        })
        .collect();
    MapAnswer {
        now,
        communes: state.catalog.communes(),
        sites: state.catalog.sites(),
        units: snap.units,
        devices: list,
    }
}

/// The public map: places and devices with their latest public values, no token.
///
/// Device internals (battery, radio link) and last-seen times are left out. Answers 404 when the
/// public map is disabled on this server.
#[utoipa::path(get, path = "/api/v1/public/map", tag = "dashboard", security(()),
    responses(
        (status = 200, description = "Places and devices with their latest public values", body = MapAnswer),
        (status = 404, response = NotFound), (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn public_map(Scoped(s): Scoped) -> ApiResult<Json<MapAnswer>> {
    public_only(&s)?;
    Ok(Json(map_payload(&s, Audience::Public)))
}

/// The operator's map: every device with every property's latest value, its state and when it was
/// last seen.
///
/// Open without a token when the deployment publishes its data (`public_read`).
#[utoipa::path(get, path = "/api/v1/map", tag = "dashboard", security(("bearer" = [])),
    responses(
        (status = 200, description = "Places and devices with every latest value", body = MapAnswer),
        Reads,
    ))]
pub(crate) async fn map(Scoped(s): Scoped) -> ApiResult<Json<MapAnswer>> {
    Ok(Json(map_payload(&s, Audience::Operator)))
}

/// What to chart: one device's series or a place's, one property, a time range.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChartParams {
    /// The device whose series to chart (give this or `site`, not both).
    device: Option<String>,
    /// A place: chart the series of all its devices merged (give this or `device`, not both).
    #[param(value_type = Option<SiteId>)]
    site: Option<String>,
    /// The property (its canonical name or a known alias). Device internals (`battery`,
    /// `battery_voltage`, `rssi`, `snr`, `f_cnt`) are charted for operators only.
    #[param(required = true)]
    property: Option<String>,
    /// Start: RFC 3339, an epoch number (seconds, milliseconds, microseconds or nanoseconds,
    /// guessed from its size), `now`, or a time before now (`now-24h`, `-7d`; units s, m or min,
    /// h, d, w); default 24 hours before `to`. Must be before `to`.
    #[param(
        pattern = r"^\s*(now|(now)?-\s*0*[1-9][0-9]*(s|m|min|h|d|w)|\+?[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+\-−][0-9]{2}:[0-9]{2}))\s*$"
    )]
    from: Option<String>,
    /// End, in the same forms as `from`; default now.
    #[param(
        pattern = r"^\s*(now|(now)?-\s*0*[1-9][0-9]*(s|m|min|h|d|w)|\+?[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+\-−][0-9]{2}:[0-9]{2}))\s*$"
    )]
    to: Option<String>,
    /// The most buckets to answer, 1 to 2,000 (default 1,500).
    #[param(minimum = 1, maximum = 2000)]
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

/// A chart: one series in buckets, as columns (the i-th bucket is `t[i]`, `min[i]`, …). Buckets
/// without points are absent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChartAnswer {
    /// The property charted (its canonical name).
    property: String,
    /// Its unit (null when no series has it).
    unit: Option<String>,
    /// The device asked for.
    device: Option<String>,
    /// The place asked for.
    site: Option<String>,
    /// How many series are merged.
    devices: usize,
    /// Start asked for.
    from: Timestamp,
    /// End asked for.
    to: Timestamp,
    /// Bucket length in seconds; buckets are aligned on it.
    every_s: u64,
    /// How bucket means are computed: `energy` for sound levels in dB.
    averaging: Averaging,
    /// Start of each bucket, epoch seconds.
    t: Vec<i64>,
    /// Smallest value of each bucket.
    min: Vec<f64>,
    /// Largest value of each bucket.
    max: Vec<f64>,
    /// Mean of each bucket, rounded to 3 decimals (null when not finite).
    mean: Vec<Option<f64>>,
    /// Points in each bucket.
    count: Vec<u64>,
}

/// A chart: one series (a device's) or a place's merged series, downsampled to at most 2,000
/// buckets with min, max, mean and count per bucket, so peaks stay visible.
///
/// Whole-hour buckets come from the stored hourly rollups; sound levels are averaged as energy.
/// Without a token, when the public map is on, the public gets the chart of any property but the
/// device internals (403 for those).
#[utoipa::path(get, path = "/api/v1/chart", tag = "dashboard", security((), ("bearer" = [])),
    params(ChartParams),
    responses(
        (status = 200, description = "The series in buckets", body = ChartAnswer),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn chart(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(p): Query<ChartParams>,
) -> ApiResult<Json<ChartAnswer>> {
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
            let site = SiteId::parse(site).map_err(|e| ApiError::BadRequest(e.to_string()))?;
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
    // A state (text) has no minimum, maximum or mean: it is read as values, not charted.
    if ids
        .iter()
        .filter_map(|i| s.catalog.series_info(*i))
        .any(|i| i.kind == agora_model::ValueKind::String)
    {
        return Err(ApiError::BadRequest(format!(
            "{property} holds text values (states): charts need numbers; read its values with /api/v1/observations"
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
        let m = (averaging.value(&a, AggFn::Mean) * 1000.0).round() / 1000.0;
        mean.push(m.is_finite().then_some(m));
        count.push(a.count);
    }
    Ok(Json(ChartAnswer {
        property,
        unit,
        device: p.device,
        site: p.site,
        devices: ids.len(),
        from,
        to,
        every_s: step.as_secs(),
        averaging,
        t,
        min,
        max,
        mean,
        count,
    }))
}

/// Below this battery charge (%) a device is listed for a visit.
const LOW_BATTERY: f64 = 20.0;
/// Below this received signal strength (dBm) a LoRaWAN link is weak.
const WEAK_RSSI: f64 = -115.0;
/// Below this signal-to-noise ratio (dB) a LoRaWAN link is weak.
const WEAK_SNR: f64 = -10.0;

/// Most devices (or series) each list of the fleet answer holds.
const FLEET_LIST_CAP: usize = 500;

/// Fleet health for operators.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FleetAnswer {
    /// The server's time.
    now: Timestamp,
    /// Whether storage takes writes, and its free space.
    storage: StorageHealth,
    /// Devices by state (`online`, `offline`, `never_seen`, `faulty`, `flagged`; states with no
    /// device are absent), and `total`.
    counts: BTreeMap<&'static str, u64>,
    /// The same counts per device kind.
    by_kind: BTreeMap<String, BTreeMap<&'static str, u64>>,
    /// Devices not reporting (offline or never seen), longest silent first (never seen first of
    /// all); at most 500.
    silent: Vec<SilentDevice>,
    /// Devices whose latest battery charge is below `thresholds.battery_pct`, lowest first; at
    /// most 500.
    low_battery: Vec<LowBattery>,
    /// Devices whose latest RSSI or SNR is below its threshold; at most 500.
    weak_radio: Vec<WeakRadio>,
    /// Devices whose latest status names a fault; at most 500.
    faulty: Vec<FaultyDevice>,
    /// Series with points flagged by quality checks since start, most recently flagged first; at
    /// most 500.
    quality_flags: Vec<QualityFlags>,
    /// The dead-letter log, in short.
    dead_letters: DeadLetters,
    /// Places created from a device's site tag, whose name, commune and position are to be
    /// checked (declaring a place again through the API clears the mark).
    sites_to_review: Vec<agora_store::catalog::Site>,
    /// The thresholds used.
    thresholds: Thresholds,
}

/// A device not reporting.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SilentDevice {
    /// Its identifier.
    id: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// The place it stands on.
    site: Option<SiteId>,
    /// `offline` or `never_seen`.
    status: DeviceStatus,
    /// When it last sent data (null: never).
    last_seen: Option<Timestamp>,
    /// For how many whole seconds it has been silent (null: never seen).
    silent_for_s: Option<i64>,
}

/// A device with a low battery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LowBattery {
    /// Its identifier.
    id: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// The place it stands on.
    site: Option<SiteId>,
    /// Its latest battery charge (%).
    battery: f64,
    /// When that charge was measured.
    time: Timestamp,
}

/// A device with a weak radio link.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WeakRadio {
    /// Its identifier.
    id: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// The place it stands on.
    site: Option<SiteId>,
    /// Its latest received signal strength (dBm), if it reports one.
    rssi: Option<f64>,
    /// Its latest signal-to-noise ratio (dB), if it reports one.
    snr: Option<f64>,
}

/// A device reporting a fault.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FaultyDevice {
    /// Its identifier.
    id: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// The place it stands on.
    site: Option<SiteId>,
    /// The status property naming the fault.
    property: String,
    /// The fault (`defectiveLamp`…).
    value: Value,
    /// When it was reported.
    time: Timestamp,
}

/// Points of one series flagged by quality checks since the server started.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QualityFlags {
    /// The device.
    device: DeviceId,
    /// The property.
    property: PropertyName,
    /// Points flagged as stuck (the same value for too long).
    stuck: u64,
    /// Points flagged as jumps (an implausible change).
    jump: u64,
    /// Points a little outside their property's range (kept, flagged).
    out_of_range: u64,
    /// Time of the latest flagged point.
    last: Timestamp,
}

/// The dead-letter log, in short.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeadLetters {
    /// The 50 most recent, most recent first.
    recent: Vec<RecentReject>,
    /// How many of the 200 most recent came from each source.
    by_source_in_last_200: BTreeMap<String, u64>,
}

/// A dead letter, without its input.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecentReject {
    /// Its identifier.
    id: i64,
    /// Where it came from (`http /write`, `http /api/v1/senml`, …).
    source: String,
    /// Why it was refused.
    reason: String,
    /// Its line or record number in the payload, 1-based.
    line: Option<u32>,
    /// When it arrived.
    received_at: Timestamp,
}

/// The thresholds of the fleet's lists.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Thresholds {
    /// Below this battery charge (%) a device is listed in `low_battery`.
    battery_pct: f64,
    /// Below this RSSI (dBm) a radio link is weak.
    rssi_dbm: f64,
    /// Below this SNR (dB) a radio link is weak.
    snr_db: f64,
}

/// Fleet health for operators: counts by state and kind, silent devices, low batteries, weak
/// radio links, devices reporting faults, quality flags, dead letters and storage.
///
/// Open without a token when the deployment publishes its data (`public_read`).
#[utoipa::path(get, path = "/api/v1/fleet", tag = "dashboard", security(("bearer" = [])),
    responses(
        (status = 200, description = "Fleet health", body = FleetAnswer),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn fleet(Scoped(s): Scoped) -> ApiResult<Json<FleetAnswer>> {
    let now = s.clock.now();
    let devices = s.catalog.devices(&DeviceFilter::default());
    let snap = snapshot(&s, &devices, Audience::Operator);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, BTreeMap<&'static str, u64>> = BTreeMap::new();
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
            silent.push(SilentDevice {
                id: d.id.clone(),
                kind: d.kind.clone(),
                site: d.site.clone(),
                status,
                last_seen: d.last_seen,
                silent_for_s: silent_for,
            });
        }
        let latest = snap.latest.get(id).map(Vec::as_slice).unwrap_or_default();
        let get = |name: &str| {
            latest.iter().find(|(p, _, _)| p == name).and_then(|(_, t, v)| Some((*t, v.as_f64()?)))
        };
        if let Some((t, b)) = get("battery").filter(|(_, b)| *b < LOW_BATTERY) {
            battery.push(LowBattery {
                id: d.id.clone(),
                kind: d.kind.clone(),
                site: d.site.clone(),
                battery: b,
                time: t,
            });
        }
        let rssi = get("rssi");
        let snr = get("snr");
        if rssi.is_some_and(|(_, r)| r < WEAK_RSSI) || snr.is_some_and(|(_, x)| x < WEAK_SNR) {
            radio.push(WeakRadio {
                id: d.id.clone(),
                kind: d.kind.clone(),
                site: d.site.clone(),
                rssi: rssi.map(|r| r.1),
                snr: snr.map(|x| x.1),
            });
        }
        if let Some((p, v, t)) = snap.faulty.get(id) {
            faulty.push(FaultyDevice {
                id: d.id.clone(),
                kind: d.kind.clone(),
                site: d.site.clone(),
                property: p.clone(),
                value: v.clone(),
                time: *t,
            });
        }
    }
    silent.sort_by_key(|x| std::cmp::Reverse(x.silent_for_s.unwrap_or(i64::MAX)));
    battery.sort_by(|a, b| a.battery.partial_cmp(&b.battery).unwrap_or(std::cmp::Ordering::Equal));
    let mut quality: Vec<QualityFlags> = s
        .pipeline
        .flag_tallies()
        .into_iter()
        .filter_map(|(sid, t)| {
            let info = s.catalog.series_info(sid)?;
            Some(QualityFlags {
                device: info.device,
                property: info.property,
                stuck: t.stuck,
                jump: t.jump,
                out_of_range: t.out_of_range,
                last: t.last,
            })
        })
        .collect();
    quality.sort_by_key(|q| std::cmp::Reverse(q.last));
    let rejects = s.catalog.rejects(200).await?;
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rejects {
        *by_source.entry(r.source.clone()).or_default() += 1;
    }
    let recent = rejects
        .into_iter()
        .take(50)
        .map(|r| RecentReject {
            id: r.id,
            source: r.source,
            reason: r.reason,
            line: r.line,
            received_at: r.received_at,
        })
        .collect();
    fn cap<T>(mut v: Vec<T>) -> Vec<T> {
        v.truncate(FLEET_LIST_CAP);
        v
    }
    Ok(Json(FleetAnswer {
        now,
        storage: s.store.health(),
        counts,
        by_kind,
        silent: cap(silent),
        low_battery: cap(battery),
        weak_radio: cap(radio),
        faulty: cap(faulty),
        quality_flags: cap(quality),
        dead_letters: DeadLetters { recent, by_source_in_last_200: by_source },
        sites_to_review: {
            let mut v: Vec<_> = s.catalog.sites().into_iter().filter(|x| x.to_review).collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v
        },
        thresholds: Thresholds { battery_pct: LOW_BATTERY, rssi_dbm: WEAK_RSSI, snr_db: WEAK_SNR },
    }))
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
#[openapi(
    paths(public_map, map, chart, fleet),
    // The parameters' types (parameters do not bring their schemas).
    components(schemas(SiteId))
)]
pub(crate) struct Doc;
