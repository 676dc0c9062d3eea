//! Read endpoints: the catalog, raw points, aggregates (per device or grouped by site, commune or
//! kind), latest values and storage statistics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use agora_model::{
    DeviceId, DeviceKind, InseeCode, PropertyDef, PropertyName, SeriesId, SiteId, Timestamp, Value,
    ValueKind,
};
use agora_query::summary::merge_into;
use agora_query::{
    Averaging, Budget, DeviceStatus, Every, GroupBy, TimeRange, parse_duration, summaries,
};
use agora_store::catalog::{Commune, Device, DeviceFilter, SeriesInfo, Site};
use agora_store::{Agg, AggFn, EngineStats};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::Reads;
use crate::doc::{BadRequest, NotFound, Unavailable, Unprocessable};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::Scoped;

/// The time range of query parameters: `to` defaults to now, `from` to `span` before `to`.
pub(crate) fn range(
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

/// A number as answered: `null` when not finite (JSON has no NaN nor infinity).
fn num(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A bounding box as `bbox` takes it: four numbers separated by commas (for the document only).
pub(crate) enum Bbox {}

impl utoipa::PartialSchema for Bbox {
    fn schema() -> RefOr<Schema> {
        // What `f64::from_str` takes, between spaces.
        let number = r"\s*[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*";
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("`min_lon,min_lat,max_lon,max_lat` (WGS 84)"))
            .pattern(Some(format!("^{number}(,{number}){{3}}$")))
            .examples(["5.44,43.52,5.46,43.54"])
            .into()
    }
}

impl ToSchema for Bbox {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Bbox")
    }
}

/// Which devices: the filters of the live stream (`filter` reads the first four).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CatalogParams {
    /// Only devices in this commune (INSEE code).
    #[param(value_type = Option<InseeCode>)]
    pub(crate) commune: Option<String>,
    /// Only devices on this place.
    #[param(value_type = Option<SiteId>)]
    pub(crate) site: Option<String>,
    /// Only devices of this kind.
    #[param(value_type = Option<DeviceKind>)]
    pub(crate) kind: Option<String>,
    /// Only devices inside this box: `min_lon,min_lat,max_lon,max_lat` (WGS 84).
    #[param(value_type = Option<Bbox>, inline)]
    pub(crate) bbox: Option<String>,
    /// Only this device (its identifier; an unknown one matches nothing).
    pub(crate) device: Option<String>,
}

/// The device filter of commune, place, kind and bounding box (each checked: a malformed one is
/// a 400).
fn device_filter(
    commune: Option<&str>,
    site: Option<&str>,
    kind: Option<&str>,
    bbox: Option<&str>,
) -> ApiResult<DeviceFilter> {
    let bad = |e: agora_model::Error| ApiError::BadRequest(e.to_string());
    let bbox = match bbox {
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
        commune: commune.map(InseeCode::parse).transpose().map_err(bad)?,
        site: site.map(SiteId::parse).transpose().map_err(bad)?,
        kind: kind.map(DeviceKind::parse).transpose().map_err(bad)?,
        bbox,
    })
}

/// The device filter of catalog parameters (commune, site, kind, bbox).
pub(crate) fn filter(p: &CatalogParams) -> ApiResult<DeviceFilter> {
    device_filter(p.commune.as_deref(), p.site.as_deref(), p.kind.as_deref(), p.bbox.as_deref())
}

/// The communes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommuneList {
    /// Every declared commune.
    communes: Vec<Commune>,
}

/// List the communes.
#[utoipa::path(get, path = "/api/v1/communes", tag = "catalog", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The communes", body = CommuneList),
        Reads,
    ))]
pub(crate) async fn communes(Scoped(s): Scoped) -> ApiResult<Json<CommuneList>> {
    Ok(Json(CommuneList { communes: s.catalog.communes() }))
}

/// Which places.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SiteParams {
    /// Only the places of this commune (INSEE code; any other value matches nothing).
    commune: Option<String>,
}

/// The places.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SiteList {
    /// The matching places.
    sites: Vec<Site>,
}

/// List the places (squares, street sections).
#[utoipa::path(get, path = "/api/v1/sites", tag = "catalog", security((), ("bearer" = [])),
    params(SiteParams),
    responses(
        (status = 200, description = "The places", body = SiteList),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn sites(
    Scoped(s): Scoped,
    Query(p): Query<SiteParams>,
) -> ApiResult<Json<SiteList>> {
    let sites: Vec<_> = s
        .catalog
        .sites()
        .into_iter()
        .filter(|x| p.commune.as_deref().is_none_or(|c| x.commune.as_str() == c))
        .collect();
    Ok(Json(SiteList { sites }))
}

/// A device with whether it reports as expected.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceWithStatus {
    /// The device as declared.
    #[serde(flatten)]
    device: Device,
    /// `online`, `offline` (silent for more than twice `metadata.period_s`, plus a minute) or
    /// `never_seen`.
    status: DeviceStatus,
    /// Whole seconds since it last reported (`null` when it never did).
    silent_for_s: Option<i64>,
}

impl DeviceWithStatus {
    fn of(device: Device, now: Timestamp) -> Self {
        let (status, silent_for_s) = DeviceStatus::of(&device, now);
        Self { device, status, silent_for_s }
    }
}

/// Which devices.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeviceParams {
    /// Only devices in this commune (INSEE code).
    #[param(value_type = Option<InseeCode>)]
    commune: Option<String>,
    /// Only devices on this place.
    #[param(value_type = Option<SiteId>)]
    site: Option<String>,
    /// Only devices of this kind.
    #[param(value_type = Option<DeviceKind>)]
    kind: Option<String>,
    /// Only devices inside this box: `min_lon,min_lat,max_lon,max_lat` (WGS 84).
    #[param(value_type = Option<Bbox>, inline)]
    bbox: Option<String>,
    /// Only devices in this state: `online`, `offline` (silent for more than twice
    /// `metadata.period_s`) or `never_seen`; any other value matches nothing.
    status: Option<String>,
}

/// Devices.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceList {
    /// How many are listed.
    count: usize,
    /// The matching devices, with their status.
    devices: Vec<DeviceWithStatus>,
}

/// List the devices, with their status (online, offline, never seen).
#[utoipa::path(get, path = "/api/v1/devices", tag = "catalog", security((), ("bearer" = [])),
    params(DeviceParams),
    responses(
        (status = 200, description = "The matching devices", body = DeviceList),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn devices(
    Scoped(s): Scoped,
    Query(p): Query<DeviceParams>,
) -> ApiResult<Json<DeviceList>> {
    let now = s.clock.now();
    let fil = device_filter(
        p.commune.as_deref(),
        p.site.as_deref(),
        p.kind.as_deref(),
        p.bbox.as_deref(),
    )?;
    let devices: Vec<DeviceWithStatus> = s
        .catalog
        .devices(&fil)
        .into_iter()
        .map(|d| DeviceWithStatus::of(d, now))
        .filter(|d| p.status.as_deref().is_none_or(|st| d.status.as_str() == st))
        .collect();
    Ok(Json(DeviceList { count: devices.len(), devices }))
}

/// A value at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimedValue {
    /// When it was measured.
    time: Timestamp,
    /// The value.
    value: Value,
}

/// One series of a device, with its latest value.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceSeries {
    /// The property.
    property: PropertyName,
    /// Canonical unit of stored values.
    unit: String,
    /// Value kind.
    kind: ValueKind,
    /// The unit the source sent, when it differed and was converted.
    source_unit: Option<String>,
    /// Its latest value (`null` when none is stored).
    latest: Option<TimedValue>,
}

/// A device in full.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceDetail {
    /// The device, with its status.
    device: DeviceWithStatus,
    /// Its series, with their latest values.
    series: Vec<DeviceSeries>,
}

/// One device, with its status, its series and their latest values.
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "catalog", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The device's identifier")),
    responses(
        (status = 200, description = "The device", body = DeviceDetail),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn device(
    Scoped(s): Scoped,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceDetail>> {
    let d = s
        .catalog
        .device(&id)
        .ok_or_else(|| ApiError::NotFound(format!("device {id:?} not found")))?;
    let series = s.catalog.device_series(&id);
    let ids: Vec<SeriesId> = series.iter().map(|x| x.id).collect();
    let latest = s.store.latest(&ids);
    let series: Vec<DeviceSeries> = series
        .into_iter()
        .zip(latest)
        .map(|(x, l)| DeviceSeries {
            property: x.property,
            unit: x.unit,
            kind: x.kind,
            source_unit: x.source_unit,
            latest: l.map(|(time, value)| TimedValue { time, value }),
        })
        .collect();
    Ok(Json(DeviceDetail { device: DeviceWithStatus::of(d, s.clock.now()), series }))
}

/// Which series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SeriesParams {
    /// Only the series of this device (its identifier; an unknown one matches nothing).
    device: Option<String>,
    /// Only the series of this property (canonical name or alias; an unknown one matches
    /// nothing).
    property: Option<String>,
}

/// Series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeriesList {
    /// How many are listed.
    count: usize,
    /// The matching series.
    series: Vec<SeriesInfo>,
}

/// List the series (device × property).
#[utoipa::path(get, path = "/api/v1/series", tag = "catalog", security((), ("bearer" = [])),
    params(SeriesParams),
    responses(
        (status = 200, description = "The matching series", body = SeriesList),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn series(
    Scoped(s): Scoped,
    Query(p): Query<SeriesParams>,
) -> ApiResult<Json<SeriesList>> {
    let prop = p.property.as_deref().map(|x| canonical(&s, x));
    let list: Vec<SeriesInfo> = match &p.device {
        Some(d) => s.catalog.device_series(d),
        None => s.catalog.all_series(),
    }
    .into_iter()
    .filter(|x| prop.as_deref().is_none_or(|pp| x.property.as_str() == pp))
    .collect();
    Ok(Json(SeriesList { count: list.len(), series: list }))
}

/// The catalogue of properties.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PropertyList {
    /// Every known property: built in, configured or registered on first write.
    properties: Vec<PropertyDef>,
}

/// The catalogue of observed properties: units, valid ranges, aliases.
#[utoipa::path(get, path = "/api/v1/properties", tag = "catalog", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The properties", body = PropertyList),
        Reads,
    ))]
pub(crate) async fn properties(Scoped(s): Scoped) -> ApiResult<Json<PropertyList>> {
    Ok(Json(PropertyList { properties: s.pipeline.properties() }))
}

/// Which points are returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum QualityFilter {
    /// Points flagged by the quality checks are left out.
    #[default]
    Good,
    /// Every point; flagged ones carry their flags.
    All,
}

/// Which raw points.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ObsParams {
    /// The device's identifier.
    #[param(required = true, example = "aq-rotonde-01")]
    device: Option<String>,
    /// The property (canonical name or alias).
    #[param(required = true, example = "pm10")]
    property: Option<String>,
    /// First instant included: RFC 3339, an epoch number (seconds, milliseconds, microseconds or
    /// nanoseconds, guessed from its size), `now` or `now-24h` (default: 24 hours before `to`).
    from: Option<String>,
    /// First instant excluded, in the same forms (default: now).
    to: Option<String>,
    /// The most points returned (default and ceiling: the server's `max_points`); `truncated`
    /// says when more were there.
    #[param(minimum = 0)]
    limit: Option<usize>,
    /// `good` (default): points flagged by quality checks are left out; `all`: they are shown,
    /// with their flags (`stuck`, `jump`).
    #[param(inline)]
    quality: Option<QualityFilter>,
}

/// A raw point.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RawPoint {
    /// When it was measured.
    time: Timestamp,
    /// The value.
    value: Value,
    /// The quality checks it failed (`stuck`, `jump`); only with `quality=all`, absent when it
    /// passed them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<Vec<&'static str>>,
}

/// Raw points of one series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RawPoints {
    /// The device.
    device: DeviceId,
    /// The property (its canonical name).
    property: PropertyName,
    /// Unit of the values.
    unit: String,
    /// First instant included.
    from: Timestamp,
    /// First instant excluded.
    to: Timestamp,
    /// How many points are returned.
    count: usize,
    /// Whether more points were in the range than `limit` allowed.
    truncated: bool,
    /// The points, oldest first.
    points: Vec<RawPoint>,
}

/// Raw points of one series (one device's property) over a time range.
#[utoipa::path(get, path = "/api/v1/observations", tag = "query", security((), ("bearer" = [])),
    params(ObsParams),
    responses(
        (status = 200, description = "The points", body = RawPoints),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn observations(
    Scoped(s): Scoped,
    Query(p): Query<ObsParams>,
) -> ApiResult<Json<RawPoints>> {
    let device = required(&p.device, "device")?;
    let property = required(&p.property, "property")?;
    let info = series_of(&s, device, property)?;
    let TimeRange { from, to } =
        range(&s, p.from.as_deref(), p.to.as_deref(), Duration::from_secs(86_400))?;
    let limit = p.limit.unwrap_or(s.config.max_points).min(s.config.max_points);
    // By default points flagged by quality checks are left out; quality=all shows them, flagged.
    let pts: Vec<(Timestamp, Value, u8)> = match p.quality.unwrap_or_default() {
        QualityFilter::All => s.store.read_with_flags(info.id, from, to, limit + 1).await?,
        QualityFilter::Good => s
            .store
            .read(info.id, from, to, limit + 1)
            .await?
            .into_iter()
            .map(|(t, v)| (t, v, 0))
            .collect(),
    };
    let truncated = pts.len() > limit;
    let points: Vec<RawPoint> = pts
        .into_iter()
        .take(limit)
        .map(|(time, value, f)| RawPoint {
            time,
            value,
            flags: (f != 0).then(|| agora_model::quality::names(f)),
        })
        .collect();
    Ok(Json(RawPoints {
        device: info.device,
        property: info.property,
        unit: info.unit,
        from,
        to,
        count: points.len(),
        truncated,
        points,
    }))
}

/// An aggregation function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AggFunction {
    /// Mean (energy mean for sound levels).
    #[default]
    Mean,
    /// The same as `mean`.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum (energy sum for sound levels).
    Sum,
    /// Number of points.
    Count,
    /// Earliest value.
    First,
    /// Latest value.
    Last,
}

impl AggFunction {
    /// The store's function.
    fn agg(self) -> AggFn {
        match self {
            Self::Mean | Self::Avg => AggFn::Mean,
            Self::Min => AggFn::Min,
            Self::Max => AggFn::Max,
            Self::Sum => AggFn::Sum,
            Self::Count => AggFn::Count,
            Self::First => AggFn::First,
            Self::Last => AggFn::Last,
        }
    }
}

/// What devices are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Grouping {
    /// Their place.
    Site,
    /// Their commune.
    Commune,
    /// Their kind.
    Kind,
}

impl From<Grouping> for GroupBy {
    fn from(g: Grouping) -> Self {
        match g {
            Grouping::Site => Self::Site,
            Grouping::Commune => Self::Commune,
            Grouping::Kind => Self::Kind,
        }
    }
}

/// Which aggregates: one device's, or groups of devices' (give `device` or `group_by`, not
/// both).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AggParams {
    /// One device's aggregates (its identifier); without it, `group_by` is needed.
    device: Option<String>,
    /// The property (canonical name or alias).
    #[param(required = true)]
    property: Option<String>,
    /// First instant included: RFC 3339, an epoch number (seconds, milliseconds, microseconds or
    /// nanoseconds, guessed from its size), `now` or `now-24h` (default: 24 hours before `to`).
    from: Option<String>,
    /// First instant excluded, in the same forms (default: now).
    to: Option<String>,
    /// Bucket length: a whole number and a unit, `s`, `m` (or `min`), `h`, `d` or `w` (default
    /// `1h`); at most 100,000 buckets in the range. Whole hours and days come from the hourly
    /// rollups; shorter buckets read raw points, within the server's budget.
    #[param(pattern = r"^\s*0*[1-9][0-9]*(s|m|min|h|d|w)\s*$", example = "1h")]
    every: Option<String>,
    /// Aggregation function (default `mean`; the mean and sum of sound levels are energy
    /// averages).
    #[serde(rename = "fn")]
    #[param(inline)]
    func: Option<AggFunction>,
    /// Aggregate the devices' series by place, commune or kind, bucket by bucket (instead of one
    /// `device`).
    #[param(inline)]
    group_by: Option<Grouping>,
    /// IANA time zone for buckets of whole days, e.g. `Europe/Paris` (default UTC).
    #[param(example = "Europe/Paris")]
    tz: Option<String>,
    /// With `group_by`: only devices in this commune (INSEE code).
    #[param(value_type = Option<InseeCode>)]
    commune: Option<String>,
    /// With `group_by`: only devices on this place.
    #[param(value_type = Option<SiteId>)]
    site: Option<String>,
    /// With `group_by`: only devices of this kind.
    #[param(value_type = Option<DeviceKind>)]
    kind: Option<String>,
}

/// The aggregate of one bucket.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AggBucket {
    /// Start of the bucket.
    time: Timestamp,
    /// The function's value (`null` when not finite).
    value: Option<f64>,
    /// Points in the bucket.
    count: u64,
}

fn buckets(aggs: &[(Timestamp, Agg)], f: AggFn, averaging: Averaging) -> Vec<AggBucket> {
    aggs.iter()
        .map(|(t, a)| AggBucket { time: *t, value: num(averaging.value(a, f)), count: a.count })
        .collect()
}

/// The buckets of one device, or of one group of devices.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum AggSeries {
    /// One device's buckets.
    Device {
        /// The device.
        device: DeviceId,
        /// Its buckets, oldest first (empty ones left out).
        points: Vec<AggBucket>,
    },
    /// One group's buckets.
    Group {
        /// The place, commune or kind.
        group: String,
        /// How many devices of the group have the property.
        devices: usize,
        /// The group's buckets, oldest first (empty ones left out).
        points: Vec<AggBucket>,
    },
}

/// Aggregates over buckets of time.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Aggregate {
    /// The property (canonical name when known).
    property: String,
    /// The function, as asked.
    #[serde(rename = "fn")]
    func: AggFunction,
    /// The bucket length, as asked.
    every: String,
    /// First instant included.
    from: Timestamp,
    /// First instant excluded.
    to: Timestamp,
    /// How values were averaged.
    averaging: Averaging,
    /// The time zone, as asked (`UTC` by default).
    tz: String,
    /// With `group_by`: what devices were grouped by (`site`, `commune` or `kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<Grouping>,
    /// Unit of the values (`null` when no device of the groups has the property).
    unit: Option<String>,
    /// One device's buckets, or one entry per group (in the groups' order).
    series: Vec<AggSeries>,
}

/// Aggregates over buckets of time: of one device, or grouped by place, commune or kind.
#[utoipa::path(get, path = "/api/v1/aggregate", tag = "query", security((), ("bearer" = [])),
    params(AggParams),
    responses(
        (status = 200, description = "The buckets", body = Aggregate),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn aggregate(
    Scoped(s): Scoped,
    Query(p): Query<AggParams>,
) -> ApiResult<Json<Aggregate>> {
    let property = required(&p.property, "property")?;
    let property = canonical(&s, property);
    let every_s = p.every.as_deref().unwrap_or("1h");
    let every = parse_duration(every_s)?;
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
    let func = p.func.unwrap_or_default();
    let f = func.agg();
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
    let mut out = Aggregate {
        property,
        func,
        every: every_s.to_owned(),
        from: range.from,
        to: range.to,
        averaging,
        tz: p.tz.clone().unwrap_or_else(|| "UTC".to_owned()),
        group_by: None,
        unit: None,
        series: Vec::new(),
    };
    let store = s.store.as_ref();
    match (&p.device, p.group_by) {
        (Some(d), None) => {
            let info = series_of(&s, d, &out.property)?;
            budget(&s).check(store, &[info.id], range, every, averaging)?;
            let aggs = summaries(store, info.id, range, every, averaging).await?;
            out.unit = Some(info.unit);
            out.series = vec![AggSeries::Device {
                device: info.device,
                points: buckets(&aggs, f, averaging),
            }];
            Ok(Json(out))
        }
        (None, Some(grouping)) => {
            let group = GroupBy::from(grouping);
            let fil =
                device_filter(p.commune.as_deref(), p.site.as_deref(), p.kind.as_deref(), None)?;
            let devices = s.catalog.devices(&fil);
            let keys: Vec<(&str, &str)> =
                devices.iter().map(|d| (d.id.as_str(), out.property.as_str())).collect();
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
            out.series = groups
                .into_iter()
                .map(|(k, (n, b))| {
                    let aggs: Vec<(Timestamp, Agg)> = b.into_iter().collect();
                    AggSeries::Group { group: k, devices: n, points: buckets(&aggs, f, averaging) }
                })
                .collect();
            out.group_by = Some(grouping);
            out.unit = unit;
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

/// Which latest values.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LatestParams {
    /// Only this device (its identifier; an unknown one matches nothing); when given, `commune`,
    /// `site`, `kind` and `bbox` are not read.
    device: Option<String>,
    /// Only this property (canonical name or alias; an unknown one matches nothing).
    property: Option<String>,
    /// Only devices in this commune (INSEE code).
    #[param(value_type = Option<InseeCode>)]
    commune: Option<String>,
    /// Only devices on this place.
    #[param(value_type = Option<SiteId>)]
    site: Option<String>,
    /// Only devices of this kind.
    #[param(value_type = Option<DeviceKind>)]
    kind: Option<String>,
    /// Only devices inside this box: `min_lon,min_lat,max_lon,max_lat` (WGS 84).
    #[param(value_type = Option<Bbox>, inline)]
    bbox: Option<String>,
}

/// The latest value of one series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LatestValue {
    /// The device.
    device: DeviceId,
    /// Its kind.
    kind: DeviceKind,
    /// Its place.
    site: Option<SiteId>,
    /// Its commune.
    commune: Option<InseeCode>,
    /// The property.
    property: PropertyName,
    /// Unit of the value.
    unit: String,
    /// When it was measured.
    time: Timestamp,
    /// The value.
    value: Value,
}

/// Latest values.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LatestList {
    /// How many are listed.
    count: usize,
    /// One per matching series that holds a value.
    values: Vec<LatestValue>,
}

/// The latest value of each matching series.
#[utoipa::path(get, path = "/api/v1/latest", tag = "query", security((), ("bearer" = [])),
    params(LatestParams),
    responses(
        (status = 200, description = "The latest values", body = LatestList),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn latest(
    Scoped(s): Scoped,
    Query(p): Query<LatestParams>,
) -> ApiResult<Json<LatestList>> {
    let prop = p.property.as_deref().map(|x| canonical(&s, x));
    let devices: Vec<Device> = match &p.device {
        Some(d) => s.catalog.device(d).into_iter().collect(),
        None => s.catalog.devices(&device_filter(
            p.commune.as_deref(),
            p.site.as_deref(),
            p.kind.as_deref(),
            p.bbox.as_deref(),
        )?),
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
    let values: Vec<LatestValue> = rows
        .into_iter()
        .zip(latest)
        .filter_map(|((d, x), l)| {
            let (time, value): (Timestamp, Value) = l?;
            Some(LatestValue {
                device: d.id.clone(),
                kind: d.kind.clone(),
                site: d.site.clone(),
                commune: d.commune.clone(),
                property: x.property,
                unit: x.unit,
                time,
                value,
            })
        })
        .collect();
    Ok(Json(LatestList { count: values.len(), values }))
}

/// How much the catalog holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogCounts {
    /// Communes.
    communes: usize,
    /// Places.
    sites: usize,
    /// Devices.
    devices: usize,
    /// Series.
    series: usize,
}

/// Storage statistics.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StorageStats {
    /// Series with at least one point.
    series: usize,
    /// Points stored.
    points: u64,
    /// Bytes on disk (segments, write-ahead log, manifest).
    bytes_on_disk: u64,
    /// Bytes of segment files per compacted point (0 when nothing is stored).
    bytes_per_point: f64,
    /// The storage engine's figures.
    storage: EngineStats,
    /// What the catalog holds.
    catalog: CatalogCounts,
}

/// Series, points and bytes on disk.
#[utoipa::path(get, path = "/api/v1/stats", tag = "query", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The statistics", body = StorageStats),
        Reads,
    ))]
pub(crate) async fn stats(Scoped(s): Scoped) -> ApiResult<Json<StorageStats>> {
    let st = s.store.stats();
    let bytes_per_point = if st.points > 0 {
        st.segment_bytes as f64 / (st.points - st.head_points).max(1) as f64
    } else {
        0.0
    };
    Ok(Json(StorageStats {
        series: st.series,
        points: st.points,
        bytes_on_disk: st.bytes_on_disk,
        bytes_per_point,
        catalog: CatalogCounts {
            communes: s.catalog.communes().len(),
            sites: s.catalog.sites().len(),
            devices: s.catalog.devices(&DeviceFilter::default()).len(),
            series: s.catalog.all_series().len(),
        },
        storage: st,
    }))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    communes,
    sites,
    devices,
    device,
    series,
    properties,
    observations,
    aggregate,
    latest,
    stats
))]
pub(crate) struct Doc;
