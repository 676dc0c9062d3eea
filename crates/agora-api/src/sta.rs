//! OGC SensorThings API 1.1 over agora's catalogue and store, read side (`/v1.1`).
//!
//! The mapping: a **Thing** is a device (`@iot.id`: its identifier); its **Location** and its one
//! **HistoricalLocation** (its registration) carry its position, or its place's; a
//! **Datastream** is a series (device × property, `@iot.id`: the series number) with its unit
//! in UCUM; a **Sensor** is a device kind; an **ObservedProperty** is a property of agora's
//! catalogue; an **Observation** is a stored reading (`@iot.id`: `<series>-<nanoseconds>`), read
//! from the store page by page; a **FeatureOfInterest** is the place a device stands on (or the
//! device's own position when it has no place).
//!
//! Reads follow the caller's rights like the rest of the API (`public_read`, a commune's
//! tenants see their communes). Errors are answered as FROST-Server answers them:
//! `{"code": 400, "type": "error", "message": "…"}`; an option agora does not answer is 501.

use std::cmp::Ordering;
use std::collections::HashMap;

use agora_interop::sta::filter::{self, Row, Val};
use agora_interop::sta::path::{Key, ResourcePath, Set};
use agora_interop::sta::{self as lang, Query};
use agora_model::{PropertyDef, SeriesId, Timestamp, Value, ValueKind};
use agora_store::catalog::{Device, DeviceFilter, SeriesInfo, Site};
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::AppState;
use crate::policy::Scoped;

/// The root of the service.
const ROOT: &str = "/v1.1";
/// Observations one request may read from the store (all pages before the one asked, and every
/// expansion, included).
const MAX_READ: usize = 1_000_000;
/// Entities one request may answer with, expansions included.
const MAX_ENTITIES: usize = 100_000;

/// An error as SensorThings clients read it.
#[derive(Debug)]
pub(crate) struct StaError(StatusCode, String);

impl StaError {
    fn bad(m: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, m.into())
    }
    fn not_found(m: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, m.into())
    }
}

impl From<filter::FilterError> for StaError {
    fn from(e: filter::FilterError) -> Self {
        let status =
            if e.unsupported { StatusCode::NOT_IMPLEMENTED } else { StatusCode::BAD_REQUEST };
        Self(status, e.message)
    }
}

impl From<agora_store::Error> for StaError {
    fn from(e: agora_store::Error) -> Self {
        tracing::error!(error = %e, "SensorThings read failed");
        Self(StatusCode::SERVICE_UNAVAILABLE, "storage is unavailable".into())
    }
}

impl IntoResponse for StaError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.0.as_u16(), "type": "error", "message": self.1});
        (self.0, axum::Json(body)).into_response()
    }
}

type StaResult<T> = Result<T, StaError>;

/// A boxed future (`$expand` recurses).
type Boxed<'b, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'b>>;

/// The SensorThings service root
///
/// OGC SensorThings API 1.1 (OGC 18-088): the entity sets, with absolute URLs, and
/// `serverSettings.conformance`. See the README for the mapping of agora onto SensorThings.
#[utoipa::path(get, path = "/v1.1", tag = "standards", security((), ("bearer" = [])),
    responses((status = 200, description = "The entity sets and the conformance classes", body = Object),
        (status = 401, description = "No valid credentials (without `public_read`)", body = Object)))]
pub(crate) async fn root(Scoped(s): Scoped, headers: HeaderMap) -> Response {
    root_of(&s, &headers)
}

fn root_of(s: &AppState, headers: &HeaderMap) -> Response {
    let base = format!("{}{ROOT}", crate::open_data::base_url(s, headers));
    let req = "http://www.opengis.net/spec/iot_sensing/1.1/req/";
    let value: Vec<Json> = Set::ALL
        .iter()
        .map(|set| json!({"name": set.name(), "url": format!("{base}/{}", set.name())}))
        .collect();
    let mut settings = json!({
        "conformance": [
            format!("{req}datamodel"),
            format!("{req}resource-path/resource-path-to-entities"),
            format!("{req}request-data"),
            format!("{req}create-update-delete/create-entity"),
            format!("{req}data-array/data-array"),
        ],
    });
    // The MQTT extension, when agora's own endpoint listens: where, as FROST-Server says it.
    if let Some(port) = s.config.mqtt_port.get() {
        let host = reqwest::Url::parse(&base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into());
        let endpoints = json!({"endpoints": [format!("mqtt://{host}:{port}")]});
        for r in [
            "create-observations-via-mqtt/observations-creation",
            "receive-updates-via-mqtt/receive-updates",
        ] {
            if let Some(c) = settings["conformance"].as_array_mut() {
                c.push(format!("{req}{r}").into());
            }
            settings[format!("{req}{r}")] = endpoints.clone();
        }
    }
    let body = json!({"serverSettings": settings, "value": value});
    axum::Json(body).into_response()
}

/// The SensorThings service root (with a trailing slash)
#[utoipa::path(get, path = "/v1.1/", tag = "standards", security((), ("bearer" = [])),
    responses((status = 200, description = "The entity sets and the conformance classes", body = Object),
        (status = 401, description = "No valid credentials (without `public_read`)", body = Object)))]
pub(crate) async fn root_slash(scoped: Scoped, headers: HeaderMap) -> Response {
    root(scoped, headers).await
}

/// Read SensorThings entities
///
/// OGC SensorThings API 1.1: an entity set (`Things`), an entity (`Things('aq-1')`,
/// `Datastreams(7)`), a navigation (`Datastreams(7)/Observations`), a property
/// (`Things('aq-1')/name`, `…/$value`) or links (`…/$ref`), with `$filter`, `$select`, `$expand`,
/// `$orderby`, `$top` (at most 10,000), `$skip`, `$count` and `$resultFormat=dataArray`.
/// Errors as FROST-Server writes them.
#[utoipa::path(get, path = "/v1.1/{*path}", tag = "standards", security((), ("bearer" = [])),
    params(("*path" = String, Path, description = "The resource path, e.g. `Datastreams(7)/Observations`")),
    responses(
        (status = 200, description = "A collection `{value, @iot.count?, @iot.nextLink?}`, an entity, a property, or a `$value` as text", content((Object = "application/json"), (String = "text/plain"))),
        (status = 204, description = "A property without a value"),
        (status = 400, description = "A bad path or query option: `{\"code\": 400, \"type\": \"error\", \"message\": …}`", body = Object),
        (status = 401, description = "No valid credentials (without `public_read`)", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 404, description = "No such entity or property", body = Object),
        (status = 422, description = "More than a request may read or answer", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 501, description = "A part of the standard agora does not answer", body = Object),
        (status = 503, description = "Storage unavailable", body = Object),
    ))]
pub(crate) async fn get(
    Scoped(s): Scoped,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if path.trim_matches('/').is_empty() {
        return root_of(&s, &headers);
    }
    match answer(&s, &path, raw.as_deref().unwrap_or(""), &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn answer(s: &AppState, path: &str, raw: &str, headers: &HeaderMap) -> StaResult<Response> {
    let rp = agora_interop::sta::path::parse(path).map_err(|e| StaError::bad(e.0))?;
    // Clients send the options form-encoded (`%24filter=result+gt+10`).
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| StaError::bad(format!("the query string cannot be read: {e}")))?;
    let q = lang::parse_query(&pairs)?;
    let base = format!("{}{ROOT}", crate::open_data::base_url(s, headers));
    let ctx = Ctx::new(s, base);
    let target = ctx.resolve(&rp).await?;
    match target {
        Target::One(e) => {
            if let Some(p) = &rp.property {
                return property(&ctx, &e, p, rp.value);
            }
            if rp.reference {
                return Ok(axum::Json(json!({"@iot.selfLink": ctx.self_link(&e)})).into_response());
            }
            let mut obj = ctx.entity_json(&e, &q).await?;
            if let Some(sel) = &q.select {
                select(&mut obj, sel, &e.set());
            }
            Ok(axum::Json(Json::Object(obj)).into_response())
        }
        Target::Many(c) => {
            if q.data_array && !matches!(c, Coll::Observations(_)) {
                return Err(StaError::bad("$resultFormat=dataArray applies to Observations only"));
            }
            if q.data_array && !q.expand.is_empty() {
                return Err(StaError::bad(
                    "$resultFormat=dataArray cannot be combined with $expand",
                ));
            }
            let page = ctx.page(&c, &q).await?;
            let mut out = Map::new();
            if let Some(n) = page.count {
                out.insert("@iot.count".into(), n.into());
            }
            if q.data_array {
                out.insert("value".into(), data_array(&ctx, &page.items, q.select.as_deref())?);
                if page.more {
                    out.insert(
                        "@iot.nextLink".into(),
                        next_link(&ctx.base, path, &pairs, q.skip + q.top()).into(),
                    );
                }
                return Ok(axum::Json(Json::Object(out)).into_response());
            }
            let mut items = Vec::with_capacity(page.items.len());
            for e in &page.items {
                if rp.reference {
                    items.push(json!({"@iot.selfLink": ctx.self_link(e)}));
                    continue;
                }
                let mut obj = ctx.entity_json(e, &q).await?;
                if let Some(sel) = &q.select {
                    select(&mut obj, sel, &e.set());
                }
                items.push(Json::Object(obj));
            }
            out.insert("value".into(), Json::Array(items));
            if page.more {
                out.insert(
                    "@iot.nextLink".into(),
                    next_link(&ctx.base, path, &pairs, q.skip + q.top()).into(),
                );
            }
            Ok(axum::Json(Json::Object(out)).into_response())
        }
    }
}

/// Observations in the dataArray form (OGC 18-088 §13): one item per Datastream, in the order
/// of the page, its rows holding the selected components.
fn data_array(ctx: &Ctx<'_>, items: &[Ent], select: Option<&[String]>) -> StaResult<Json> {
    const ALL: [&str; 4] = ["id", "phenomenonTime", "resultTime", "result"];
    let components: Vec<&str> = match select {
        None => ALL.to_vec(),
        Some(sel) => {
            if let Some(bad) = sel.iter().find(|c| !ALL.contains(&c.as_str())) {
                return Err(StaError::bad(format!(
                    "with $resultFormat=dataArray, $select takes id, phenomenonTime, resultTime or result, not {bad}"
                )));
            }
            ALL.into_iter().filter(|c| sel.iter().any(|x| x == c)).collect()
        }
    };
    let mut groups: Vec<(SeriesId, Vec<Json>)> = Vec::new();
    for e in items {
        let Ent::Observation(s, t, v) = e else { continue };
        let row: Vec<Json> = components
            .iter()
            .map(|c| match *c {
                "id" => e.key().to_json(),
                "phenomenonTime" => t.to_rfc3339().into(),
                "resultTime" => Json::Null,
                _ => serde_json::to_value(v).unwrap_or(Json::Null),
            })
            .collect();
        match groups.last_mut() {
            Some((g, rows)) if g == s => rows.push(row.into()),
            _ => groups.push((*s, vec![row.into()])),
        }
    }
    Ok(Json::Array(
        groups
            .into_iter()
            .map(|(s, rows)| {
                json!({
                    "Datastream@iot.navigationLink": format!("{}/Datastreams({})", ctx.base, s.0),
                    "components": components,
                    "dataArray@iot.count": rows.len(),
                    "dataArray": rows,
                })
            })
            .collect(),
    ))
}

/// The same request, `$skip` moved on: absolute and self-contained, as clients follow it.
fn next_link(base: &str, path: &str, pairs: &[(String, String)], skip: usize) -> String {
    let mut kept: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("$skip")).cloned().collect();
    kept.push(("$skip".into(), skip.to_string()));
    let qs = serde_urlencoded::to_string(&kept).unwrap_or_default();
    let path: String = path
        .trim_end_matches('/')
        .chars()
        .map(|c| match c {
            '?' | '#' | '%' | ' ' | '&' | '+' | '"' => format!("%{:02X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    format!("{base}/{path}?{qs}")
}

/// `Things(1)/name` → `{"name": …}`; with `$value`, the raw text.
fn property(ctx: &Ctx<'_>, e: &Ent, name: &str, raw: bool) -> StaResult<Response> {
    let obj = ctx.entity_base(e);
    let Some(v) = obj.get(name).cloned() else {
        return Err(StaError::not_found(format!("{} has no property {name:?}", e.set().name())));
    };
    if v.is_null() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if raw {
        let text = match &v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    Ok(axum::Json(json!({ name: v })).into_response())
}

/// Keep the selected properties (`id` is `@iot.id`); navigation links stay when selected.
fn select(obj: &mut Map<String, Json>, sel: &[String], set: &Set) {
    let keep = |k: &str| {
        sel.iter().any(|s| {
            s == k
                || (s == "id" && k == "@iot.id")
                || k.strip_suffix("@iot.navigationLink").is_some_and(|n| n == s)
                || k.strip_suffix("@iot.count").is_some_and(|n| n == s)
                || k.strip_suffix("@iot.nextLink").is_some_and(|n| n == s)
        })
    };
    let expanded: Vec<String> = set
        .links()
        .iter()
        .map(|l| l.0.to_owned())
        .filter(|n| obj.get(n).is_some_and(|v| !v.is_string()))
        .collect();
    obj.retain(|k, _| {
        keep(k)
            || expanded.iter().any(|n| {
                k == n || k.strip_prefix(n.as_str()).is_some_and(|r| r.starts_with("@iot."))
            })
    });
}

/// One entity.
#[derive(Debug, Clone)]
enum Ent {
    Thing(Device),
    Location(Device),
    HistoricalLocation(Device),
    Datastream(SeriesInfo),
    Sensor(String),
    ObservedProperty(PropertyDef),
    Observation(SeriesId, Timestamp, Value),
    Feature(Feature),
}

/// A feature of interest: a place, or a device without one.
#[derive(Debug, Clone)]
enum Feature {
    Site(Site),
    Device(Device),
}

impl Feature {
    fn key(&self) -> String {
        match self {
            Feature::Site(s) => s.id.to_string(),
            Feature::Device(d) => format!("device:{}", d.id),
        }
    }
}

impl Ent {
    fn set(&self) -> Set {
        match self {
            Ent::Thing(_) => Set::Things,
            Ent::Location(_) => Set::Locations,
            Ent::HistoricalLocation(_) => Set::HistoricalLocations,
            Ent::Datastream(_) => Set::Datastreams,
            Ent::Sensor(_) => Set::Sensors,
            Ent::ObservedProperty(_) => Set::ObservedProperties,
            Ent::Observation(..) => Set::Observations,
            Ent::Feature(_) => Set::FeaturesOfInterest,
        }
    }

    fn key(&self) -> Key {
        match self {
            Ent::Thing(d) | Ent::Location(d) | Ent::HistoricalLocation(d) => {
                Key::Str(d.id.to_string())
            }
            Ent::Datastream(x) => Key::Int(i64::from(x.id.0)),
            Ent::Sensor(k) => Key::Str(k.clone()),
            Ent::ObservedProperty(p) => Key::Str(p.name.to_string()),
            Ent::Observation(s, t, _) => Key::Str(format!("{}-{}", s.0, t.as_nanos())),
            Ent::Feature(f) => Key::Str(f.key()),
        }
    }
}

/// What a path addresses.
enum Target {
    One(Ent),
    Many(Coll),
}

/// A collection: entities already known, or the observations of some series.
enum Coll {
    Entities(Vec<Ent>),
    Observations(Vec<SeriesId>),
}

/// A page of a collection.
struct Page {
    items: Vec<Ent>,
    count: Option<usize>,
    more: bool,
}

/// What one request sees of the catalogue.
struct Ctx<'a> {
    s: &'a AppState,
    base: String,
    now: i64,
    devices: HashMap<String, Device>,
    sites: HashMap<String, Site>,
    props: HashMap<String, PropertyDef>,
    /// Observations read and entities answered so far by this request.
    read: std::sync::atomic::AtomicUsize,
    answered: std::sync::atomic::AtomicUsize,
}

impl<'a> Ctx<'a> {
    fn new(s: &'a AppState, base: String) -> Self {
        let devices = s
            .catalog
            .devices(&DeviceFilter::default())
            .into_iter()
            .map(|d| (d.id.to_string(), d))
            .collect();
        let sites = s.catalog.sites().into_iter().map(|x| (x.id.to_string(), x)).collect();
        let props = s.pipeline.properties().into_iter().map(|p| (p.name.to_string(), p)).collect();
        Self {
            s,
            base,
            now: s.clock.now().as_nanos(),
            devices,
            sites,
            props,
            read: Default::default(),
            answered: Default::default(),
        }
    }

    fn sorted_devices(&self) -> Vec<&Device> {
        let mut v: Vec<&Device> = self.devices.values().collect();
        v.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        v
    }

    /// Series the caller may see (their devices are visible), by number.
    fn series(&self) -> Vec<SeriesInfo> {
        let mut v: Vec<SeriesInfo> = self
            .s
            .catalog
            .all_series()
            .into_iter()
            .filter(|x| self.devices.contains_key(x.device.as_str()))
            // A device's internals (battery, radio) are not observations of the city.
            .filter(|x| !agora_model::is_device_internal(x.property.as_str()))
            .collect();
        v.sort_by_key(|x| x.id.0);
        v
    }

    fn position(&self, d: &Device) -> Option<Json> {
        if let (Some(lat), Some(lon)) = (d.lat, d.lon) {
            return Some(json!({"type": "Point", "coordinates": [lon, lat]}));
        }
        let site = self.sites.get(d.site.as_ref()?.as_str())?;
        site_geometry(site)
    }

    fn feature_of(&self, d: &Device) -> Feature {
        match d.site.as_ref().and_then(|s| self.sites.get(s.as_str())) {
            Some(site) => Feature::Site(site.clone()),
            None => Feature::Device(d.clone()),
        }
    }

    fn entity(&self, set: Set, key: &Key) -> Option<Ent> {
        let text = key.text();
        match set {
            Set::Things => self.devices.get(&text).cloned().map(Ent::Thing),
            Set::Locations => self
                .devices
                .get(&text)
                .filter(|d| self.position(d).is_some())
                .cloned()
                .map(Ent::Location),
            Set::HistoricalLocations => self
                .devices
                .get(&text)
                .filter(|d| self.position(d).is_some())
                .cloned()
                .map(Ent::HistoricalLocation),
            Set::Datastreams => {
                let id = u32::try_from(match key {
                    Key::Int(i) => *i,
                    Key::Str(s) => s.parse().ok()?,
                })
                .ok()?;
                self.s
                    .catalog
                    .series_info(SeriesId(id))
                    .filter(|x| self.devices.contains_key(x.device.as_str()))
                    .filter(|x| !agora_model::is_device_internal(x.property.as_str()))
                    .map(Ent::Datastream)
            }
            Set::Sensors => self
                .devices
                .values()
                .any(|d| d.kind.as_str() == text)
                .then(|| Ent::Sensor(text.clone())),
            Set::ObservedProperties => self.props.get(&text).cloned().map(Ent::ObservedProperty),
            Set::Observations => {
                let (series, ns) = text.split_once('-')?;
                let series: u32 = series.parse().ok()?;
                let ns: i64 = ns.parse().ok()?;
                let info = self.s.catalog.series_info(SeriesId(series))?;
                (self.devices.contains_key(info.device.as_str())
                    && !agora_model::is_device_internal(info.property.as_str()))
                .then_some(())?;
                Some(Ent::Observation(
                    SeriesId(series),
                    Timestamp::from_nanos(ns),
                    Value::Bool(false),
                ))
            }
            Set::FeaturesOfInterest => match text.strip_prefix("device:") {
                Some(d) => self
                    .devices
                    .get(d)
                    .filter(|d| self.feature_of(d).key() == text)
                    .cloned()
                    .map(|d| Ent::Feature(Feature::Device(d))),
                None => self.sites.get(&text).cloned().map(|x| Ent::Feature(Feature::Site(x))),
            },
        }
    }

    /// Every entity of a set (observations: every visible series).
    fn all(&self, set: Set) -> Coll {
        let devices = self.sorted_devices();
        let ents: Vec<Ent> = match set {
            Set::Things => devices.into_iter().cloned().map(Ent::Thing).collect(),
            Set::Locations => devices
                .into_iter()
                .filter(|d| self.position(d).is_some())
                .cloned()
                .map(Ent::Location)
                .collect(),
            Set::HistoricalLocations => devices
                .into_iter()
                .filter(|d| self.position(d).is_some())
                .cloned()
                .map(Ent::HistoricalLocation)
                .collect(),
            Set::Datastreams => self.series().into_iter().map(Ent::Datastream).collect(),
            Set::Sensors => {
                let mut kinds: Vec<String> = devices.iter().map(|d| d.kind.to_string()).collect();
                kinds.sort();
                kinds.dedup();
                kinds.into_iter().map(Ent::Sensor).collect()
            }
            Set::ObservedProperties => {
                let mut v: Vec<&PropertyDef> = self.props.values().collect();
                v.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
                v.into_iter().cloned().map(Ent::ObservedProperty).collect()
            }
            Set::Observations => {
                return Coll::Observations(self.series().into_iter().map(|x| x.id).collect());
            }
            Set::FeaturesOfInterest => {
                let mut seen = std::collections::HashSet::new();
                let mut v = Vec::new();
                for d in devices {
                    let f = self.feature_of(d);
                    if seen.insert(f.key()) {
                        v.push(Ent::Feature(f));
                    }
                }
                v.sort_by_key(|e| e.key().text());
                v
            }
        };
        Coll::Entities(ents)
    }

    /// Follow a navigation property from one entity.
    fn navigate(&self, e: &Ent, name: &str) -> StaResult<Target> {
        let many = |v: Vec<Ent>| Ok(Target::Many(Coll::Entities(v)));
        let one = |x: Option<Ent>, what: &str| match x {
            Some(x) => Ok(Target::One(x)),
            None => Err(StaError::not_found(format!("{what} not found"))),
        };
        let with_position =
            |d: &Device| if self.position(d).is_some() { vec![d.clone()] } else { vec![] };
        match (e, name) {
            (Ent::Thing(d), "Locations") => {
                many(with_position(d).into_iter().map(Ent::Location).collect())
            }
            (Ent::Thing(d), "HistoricalLocations") => {
                many(with_position(d).into_iter().map(Ent::HistoricalLocation).collect())
            }
            (Ent::Thing(d), "Datastreams") => many(self.series_of(|x| x.device == d.id)),
            (Ent::Location(d), "Things") => many(vec![Ent::Thing(d.clone())]),
            (Ent::Location(d), "HistoricalLocations") => {
                many(vec![Ent::HistoricalLocation(d.clone())])
            }
            (Ent::HistoricalLocation(d), "Thing") => one(Some(Ent::Thing(d.clone())), "Thing"),
            (Ent::HistoricalLocation(d), "Locations") => many(vec![Ent::Location(d.clone())]),
            (Ent::Datastream(x), "Thing") => {
                one(self.devices.get(x.device.as_str()).cloned().map(Ent::Thing), "Thing")
            }
            (Ent::Datastream(x), "Sensor") => one(
                self.devices.get(x.device.as_str()).map(|d| Ent::Sensor(d.kind.to_string())),
                "Sensor",
            ),
            (Ent::Datastream(x), "ObservedProperty") => one(
                self.props.get(x.property.as_str()).cloned().map(Ent::ObservedProperty),
                "ObservedProperty",
            ),
            (Ent::Datastream(x), "Observations") => {
                Ok(Target::Many(Coll::Observations(vec![x.id])))
            }
            (Ent::Sensor(k), "Datastreams") => many(self.series_of(|x| {
                self.devices.get(x.device.as_str()).is_some_and(|d| d.kind.as_str() == k)
            })),
            (Ent::ObservedProperty(p), "Datastreams") => {
                many(self.series_of(|x| x.property == p.name))
            }
            (Ent::Observation(s, ..), "Datastream") => {
                one(self.entity(Set::Datastreams, &Key::Int(i64::from(s.0))), "Datastream")
            }
            (Ent::Observation(s, ..), "FeatureOfInterest") => {
                let d = self
                    .s
                    .catalog
                    .series_info(*s)
                    .and_then(|x| self.devices.get(x.device.as_str()).cloned());
                one(d.map(|d| Ent::Feature(self.feature_of(&d))), "FeatureOfInterest")
            }
            (Ent::Feature(f), "Observations") => {
                let ids = self
                    .series()
                    .into_iter()
                    .filter(|x| {
                        self.devices
                            .get(x.device.as_str())
                            .is_some_and(|d| self.feature_of(d).key() == f.key())
                    })
                    .map(|x| x.id)
                    .collect();
                Ok(Target::Many(Coll::Observations(ids)))
            }
            _ => {
                Err(StaError::bad(format!("{} has no navigation property {name}", e.set().name())))
            }
        }
    }

    fn series_of(&self, keep: impl Fn(&SeriesInfo) -> bool) -> Vec<Ent> {
        self.series().into_iter().filter(|x| keep(x)).map(Ent::Datastream).collect()
    }

    /// What a resource path addresses.
    async fn resolve(&self, rp: &ResourcePath) -> StaResult<Target> {
        let mut target: Option<Target> = None;
        for step in &rp.steps {
            let next = match target {
                None => {
                    let set =
                        Set::of(&step.name).ok_or_else(|| StaError::bad("unknown entity set"))?;
                    match &step.key {
                        Some(k) => Target::One(self.find(set, k).await?),
                        None => Target::Many(self.all(set)),
                    }
                }
                Some(Target::One(e)) => {
                    let t = self.navigate(&e, &step.name)?;
                    match (&step.key, t) {
                        (None, t) => t,
                        (Some(k), Target::Many(Coll::Entities(v))) => Target::One(
                            v.into_iter().find(|x| x.key().text() == k.text()).ok_or_else(
                                || {
                                    StaError::not_found(format!(
                                        "{}({}) not found",
                                        step.name,
                                        k.in_path()
                                    ))
                                },
                            )?,
                        ),
                        (Some(k), Target::Many(Coll::Observations(ids))) => {
                            let o = self.find(Set::Observations, k).await?;
                            match &o {
                                Ent::Observation(s, ..) if ids.contains(s) => Target::One(o),
                                _ => {
                                    return Err(StaError::not_found(format!(
                                        "Observations({}) not found",
                                        k.in_path()
                                    )));
                                }
                            }
                        }
                        (Some(_), Target::One(_)) => {
                            return Err(StaError::bad(format!("{} takes no key", step.name)));
                        }
                    }
                }
                Some(Target::Many(_)) => {
                    return Err(StaError::bad(format!(
                        "{} follows a collection: give a key",
                        step.name
                    )));
                }
            };
            target = Some(next);
        }
        target.ok_or_else(|| StaError::bad("empty resource path"))
    }

    /// One entity by key, an observation read from the store.
    async fn find(&self, set: Set, k: &Key) -> StaResult<Ent> {
        let missing = || StaError::not_found(format!("{}({}) not found", set.name(), k.in_path()));
        let e = self.entity(set, k).ok_or_else(missing)?;
        if let Ent::Observation(s, t, _) = e {
            let pts = self.s.store.read(s, t, t.saturating_add_nanos(1), 1).await?;
            let (t, v) = pts.into_iter().next().ok_or_else(missing)?;
            return Ok(Ent::Observation(s, t, v));
        }
        Ok(e)
    }

    /// A page of a collection: filtered, ordered, skipped, cut, counted.
    async fn page(&self, c: &Coll, q: &Query) -> StaResult<Page> {
        match c {
            Coll::Entities(v) => {
                let mut items: Vec<Ent> = match &q.filter {
                    Some(f) => v
                        .iter()
                        .filter(|e| filter::matches(f, &RowOf(self, e), self.now))
                        .cloned()
                        .collect(),
                    None => v.clone(),
                };
                if !q.orderby.is_empty() {
                    items.sort_by(|a, b| self.order(a, b, &q.orderby));
                }
                let count = q.count.then_some(items.len());
                let more = q.top() > 0 && items.len() > q.skip.saturating_add(q.top());
                let items: Vec<Ent> = items.into_iter().skip(q.skip).take(q.top()).collect();
                self.answer(items.len())?;
                Ok(Page { items, count, more })
            }
            Coll::Observations(ids) => {
                let page = self.observations(ids, q).await?;
                self.answer(page.items.len())?;
                Ok(page)
            }
        }
    }

    fn order(&self, a: &Ent, b: &Ent, by: &[(Vec<String>, bool)]) -> Ordering {
        for (path, desc) in by {
            let o = if path.len() == 1 && (path[0] == "id" || path[0] == "@iot.id") {
                compare_keys(&a.key(), &b.key())
            } else {
                compare_vals(&RowOf(self, a).get(path), &RowOf(self, b).get(path))
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        compare_keys(&a.key(), &b.key())
    }

    /// Observations of some series, in the order asked: by series then time by default (the
    /// order of their ids), by time across series when `$orderby` says so.
    async fn observations(&self, ids: &[SeriesId], q: &Query) -> StaResult<Page> {
        let (from, to) = match &q.filter {
            Some(f) => filter::time_bounds(f, "phenomenonTime"),
            None => (i64::MIN, i64::MAX),
        };
        let (from, to) = (Timestamp::from_nanos(from), Timestamp::from_nanos(to));
        // resultTime is null on every observation agora holds: it orders nothing, and is
        // sorted (by id) like result.
        let by_time =
            q.orderby.first().is_some_and(|(p, _)| p.len() == 1 && p[0] == "phenomenonTime");
        let desc = q.orderby.first().is_some_and(|o| o.1);
        if !by_time
            && q.orderby
                .iter()
                .any(|(p, _)| p != &["result"] && p != &["id"] && p != &["resultTime"])
        {
            return Err(StaError(
                StatusCode::NOT_IMPLEMENTED,
                "Observations can be ordered by phenomenonTime, resultTime, result or id".into(),
            ));
        }
        let need = q.skip.saturating_add(q.top()).saturating_add(1);
        // Read what the page needs (all matching points for a count or an order by result).
        let whole = q.count || (!q.orderby.is_empty() && !by_time);
        let mut all: Vec<Ent> = Vec::new();
        for &s in ids {
            if !whole && !by_time && all.len() >= need {
                break;
            }
            // Across several series ordered by time, each may hold the whole page.
            let want = if whole {
                usize::MAX
            } else if by_time {
                need
            } else {
                need - all.len()
            };
            let found = if desc && by_time && !whole {
                self.read_latest(s, from, to, want, q).await?
            } else {
                self.read_forward(s, from, to, want, q).await?
            };
            all.extend(found);
        }
        if by_time || !q.orderby.is_empty() {
            all.sort_by(|a, b| self.order(a, b, &q.orderby));
        }
        let count = q.count.then_some(all.len());
        let more = q.top() > 0 && all.len() > q.skip.saturating_add(q.top());
        let items = all.into_iter().skip(q.skip).take(q.top()).collect();
        Ok(Page { items, count, more })
    }

    /// Count the entities a request answers with, expansions included; past [`MAX_ENTITIES`],
    /// refuse it.
    fn answer(&self, n: usize) -> StaResult<()> {
        let total =
            self.answered.fetch_add(n, std::sync::atomic::Ordering::Relaxed).saturating_add(n);
        if total > MAX_ENTITIES {
            return Err(StaError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "this request would answer more than {MAX_ENTITIES} entities: lower $top or $expand less"
                ),
            ));
        }
        Ok(())
    }

    /// Count what a request reads from the store, expansions included; past [`MAX_READ`],
    /// refuse it.
    fn spend(&self, n: usize) -> StaResult<()> {
        let read = self.read.fetch_add(n, std::sync::atomic::Ordering::Relaxed).saturating_add(n);
        if read > MAX_READ {
            return Err(StaError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "this request would read more than {MAX_READ} observations: narrow it with $filter on phenomenonTime"
                ),
            ));
        }
        Ok(())
    }

    fn keep(&self, q: &Query, e: &Ent) -> bool {
        q.filter.as_ref().is_none_or(|f| filter::matches(f, &RowOf(self, e), self.now))
    }

    /// The first `want` matching observations of a series in `[from, to)`, oldest first, read in
    /// pieces until enough match.
    async fn read_forward(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        want: usize,
        q: &Query,
    ) -> StaResult<Vec<Ent>> {
        let mut out = Vec::new();
        let mut cursor = from;
        while out.len() < want && cursor < to {
            let limit = (want - out.len()).clamp(1_000, 100_000);
            let pts = self.s.store.read(s, cursor, to, limit).await?;
            self.spend(pts.len())?;
            let full = pts.len() == limit;
            let Some(&(last, _)) = pts.last() else { break };
            for (t, v) in pts {
                let e = Ent::Observation(s, t, v);
                if out.len() < want && self.keep(q, &e) {
                    out.push(e);
                }
            }
            if !full {
                break;
            }
            cursor = last.saturating_add_nanos(1);
        }
        Ok(out)
    }

    /// The latest `want` matching observations of a series in `[from, to)`, newest first: read
    /// backwards in growing windows (a day, then four times longer each time), not from the
    /// beginning of the series.
    async fn read_latest(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        want: usize,
        q: &Query,
    ) -> StaResult<Vec<Ent>> {
        let Some((last, _)) = self.s.store.latest(&[s]).into_iter().next().flatten() else {
            return Ok(Vec::new());
        };
        let first = self.s.store.first_times(&[s]).into_iter().next().flatten().unwrap_or(last);
        let mut end = to.min(last.saturating_add_nanos(1));
        let start_limit = from.max(first);
        let mut span: i64 = 86_400_000_000_000;
        let mut out = Vec::new();
        while out.len() < want && end > start_limit {
            let mut start =
                Timestamp::from_nanos(end.as_nanos().saturating_sub(span)).max(start_limit);
            // A window holds at most a page's worth of points (by the index, without decoding):
            // a read cut at its limit would keep the oldest and skip the newest.
            while span > 60_000_000_000 && self.s.store.raw_points_in(s, start, end) > 100_000 {
                span /= 4;
                start = Timestamp::from_nanos(end.as_nanos().saturating_sub(span)).max(start_limit);
            }
            let pts = self.s.store.read(s, start, end, MAX_READ).await?;
            self.spend(pts.len())?;
            for (t, v) in pts.into_iter().rev() {
                let e = Ent::Observation(s, t, v);
                if out.len() < want && self.keep(q, &e) {
                    out.push(e);
                }
            }
            end = start;
            span = span.saturating_mul(4);
        }
        Ok(out)
    }

    fn self_link(&self, e: &Ent) -> String {
        format!("{}/{}({})", self.base, e.set().name(), e.key().in_path())
    }

    /// An entity's properties and control information, without expansions.
    fn entity_base(&self, e: &Ent) -> Map<String, Json> {
        let mut o = Map::new();
        o.insert("@iot.id".into(), e.key().to_json());
        o.insert("@iot.selfLink".into(), self.self_link(e).into());
        let rel = format!("{}({})", e.set().name(), e.key().in_path());
        for (name, _, _) in e.set().links() {
            o.insert(
                format!("{name}@iot.navigationLink"),
                format!("{}/{rel}/{name}", self.base).into(),
            );
        }
        match e {
            Ent::Thing(d) => {
                o.insert("name".into(), d.name.clone().unwrap_or_else(|| d.id.to_string()).into());
                o.insert("description".into(), self.describe(d).into());
                o.insert(
                    "properties".into(),
                    json!({"kind": d.kind, "site": d.site, "commune": d.commune, "metadata": d.metadata}),
                );
            }
            Ent::Location(d) => {
                let site = d.site.as_ref().and_then(|s| self.sites.get(s.as_str()));
                o.insert(
                    "name".into(),
                    site.map_or_else(|| format!("position of {}", d.id), |s| s.name.clone()).into(),
                );
                o.insert("description".into(), format!("where {} stands", d.id).into());
                o.insert("encodingType".into(), "application/geo+json".into());
                o.insert("location".into(), self.position(d).unwrap_or(Json::Null));
            }
            Ent::HistoricalLocation(d) => {
                o.insert("time".into(), d.created_at.to_rfc3339().into());
            }
            Ent::Datastream(x) => {
                let prop = self.props.get(x.property.as_str());
                o.insert("name".into(), format!("{} of {}", x.property, x.device).into());
                o.insert(
                    "description".into(),
                    prop.map_or_else(|| x.property.to_string(), |p| p.description.clone()).into(),
                );
                o.insert("unitOfMeasurement".into(), unit_of(x));
                o.insert("observationType".into(), observation_type(x.kind).into());
                o.insert("properties".into(), json!({"device": x.device, "property": x.property, "sourceUnit": x.source_unit}));
                let first = self.s.store.first_times(&[x.id]).into_iter().next().flatten();
                let last = self.s.store.latest(&[x.id]).into_iter().next().flatten();
                if let (Some(f), Some((l, _))) = (first, last) {
                    o.insert(
                        "phenomenonTime".into(),
                        format!("{}/{}", f.to_rfc3339(), l.to_rfc3339()).into(),
                    );
                }
            }
            Ent::Sensor(k) => {
                o.insert("name".into(), k.clone().into());
                o.insert("description".into(), format!("agora devices of kind {k}").into());
                o.insert("encodingType".into(), "text/plain".into());
                o.insert("metadata".into(), format!("device kind {k}").into());
            }
            Ent::ObservedProperty(p) => {
                o.insert("name".into(), p.name.to_string().into());
                o.insert(
                    "definition".into(),
                    format!("{}/api/v1/properties#{}", self.base.trim_end_matches(ROOT), p.name)
                        .into(),
                );
                o.insert("description".into(), p.description.clone().into());
                o.insert("properties".into(), json!({"unit": p.unit, "aliases": p.aliases}));
            }
            Ent::Observation(_, t, v) => {
                o.insert("phenomenonTime".into(), t.to_rfc3339().into());
                o.insert("resultTime".into(), Json::Null);
                o.insert("result".into(), serde_json::to_value(v).unwrap_or(Json::Null));
            }
            Ent::Feature(f) => {
                let (name, description, feature) = match f {
                    Feature::Site(s) => (
                        s.name.clone(),
                        format!("place {} of commune {}", s.id, s.commune),
                        site_geometry(s),
                    ),
                    Feature::Device(d) => (
                        format!("position of {}", d.id),
                        format!("where device {} stands", d.id),
                        self.position(d),
                    ),
                };
                o.insert("name".into(), name.into());
                o.insert("description".into(), description.into());
                o.insert("encodingType".into(), "application/geo+json".into());
                o.insert("feature".into(), feature.unwrap_or(Json::Null));
            }
        }
        o
    }

    fn describe(&self, d: &Device) -> String {
        let site =
            d.site.as_ref().and_then(|s| self.sites.get(s.as_str())).map(|s| s.name.as_str());
        match site {
            Some(p) => format!("{} device {} at {p}", d.kind, d.id),
            None => format!("{} device {}", d.kind, d.id),
        }
    }

    /// An entity with its `$expand`ed navigation properties.
    fn entity_json<'b>(
        &'b self,
        e: &'b Ent,
        q: &'b Query,
    ) -> Boxed<'b, StaResult<Map<String, Json>>> {
        Box::pin(async move {
            let mut o = self.entity_base(e);
            for x in &q.expand {
                let Some((_, one)) = e.set().link(&x.name) else {
                    return Err(StaError::bad(format!(
                        "{} has no navigation property {}",
                        e.set().name(),
                        x.name
                    )));
                };
                match self.navigate(e, &x.name) {
                    Ok(Target::One(t)) if one => {
                        let mut obj = self.entity_json(&t, &x.query).await?;
                        if let Some(sel) = &x.query.select {
                            select(&mut obj, sel, &t.set());
                        }
                        o.insert(x.name.clone(), Json::Object(obj));
                    }
                    Ok(Target::Many(c)) => {
                        let page = self.page(&c, &x.query).await?;
                        let mut items = Vec::with_capacity(page.items.len());
                        for t in &page.items {
                            let mut obj = self.entity_json(t, &x.query).await?;
                            if let Some(sel) = &x.query.select {
                                select(&mut obj, sel, &t.set());
                            }
                            items.push(Json::Object(obj));
                        }
                        if let Some(n) = page.count {
                            o.insert(format!("{}@iot.count", x.name), n.into());
                        }
                        o.insert(x.name.clone(), Json::Array(items));
                        // No next link for an expansion: one that kept its options exactly would
                        // need the request's text; a link without them would answer other data.
                    }
                    Ok(Target::One(_)) | Err(_) => {
                        o.insert(x.name.clone(), Json::Null);
                    }
                }
            }
            Ok(o)
        })
    }
}

fn site_geometry(site: &Site) -> Option<Json> {
    if let Some(g) = &site.geometry {
        return Some(g.clone());
    }
    Some(json!({"type": "Point", "coordinates": [site.lon?, site.lat?]}))
}

/// The unit of a series: UCUM code as symbol, a name for people, UCUM as definition; nulls for
/// series of states (booleans, strings), as the standard says.
fn unit_of(x: &SeriesInfo) -> Json {
    if matches!(x.kind, ValueKind::Boolean | ValueKind::String) {
        return json!({"name": null, "symbol": null, "definition": null});
    }
    let name = match x.unit.as_str() {
        "ug/m3" => "microgram per cubic metre",
        "mg/m3" => "milligram per cubic metre",
        "ppm" => "part per million",
        "Cel" => "degree Celsius",
        "%" => "percent",
        "hPa" => "hectopascal",
        "m/s" => "metre per second",
        "deg" => "degree (angle)",
        "mm" => "millimetre",
        "lx" => "lux",
        "W/m2" => "watt per square metre",
        "dB" => "decibel",
        "{count}" => "count",
        "W" => "watt",
        "Wh" => "watt hour",
        "1" => "dimensionless",
        other => other,
    };
    json!({"name": name, "symbol": x.unit, "definition": format!("http://unitsofmeasure.org/ucum.html#{}", x.unit)})
}

fn observation_type(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Float => "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
        ValueKind::Integer => {
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"
        }
        ValueKind::Boolean => {
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"
        }
        ValueKind::String => "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation",
    }
}

fn compare_keys(a: &Key, b: &Key) -> Ordering {
    match (a, b) {
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Str(x), Key::Str(y)) => {
            // Observation ids: by series, then time.
            let num = |s: &str| {
                s.split_once('-')
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<i64>().ok()?)))
            };
            match (num(x), num(y)) {
                (Some(p), Some(q)) => p.cmp(&q),
                _ => x.cmp(y),
            }
        }
        (Key::Int(_), Key::Str(_)) => Ordering::Less,
        (Key::Str(_), Key::Int(_)) => Ordering::Greater,
    }
}

/// Order for `$orderby`: nulls first ascending, as the standard says.
fn compare_vals(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Null, _) => Ordering::Less,
        (_, Val::Null) => Ordering::Greater,
        (Val::Num(x), Val::Num(y)) => x.total_cmp(y),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Time(x), Val::Time(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// An entity's properties for `$filter` and `$orderby`.
struct RowOf<'c, 'a>(&'c Ctx<'a>, &'c Ent);

fn json_val(v: &Json) -> Val {
    match v {
        Json::Null => Val::Null,
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
        Json::String(s) => Val::Str(s.clone()),
        Json::Array(_) | Json::Object(_) => {
            agora_interop::geo::Geometry::from_geojson(v).map_or(Val::Null, Val::Geo)
        }
    }
}

impl Row for RowOf<'_, '_> {
    fn get(&self, path: &[String]) -> Val {
        let (ctx, e) = (self.0, self.1);
        let Some(first) = path.first() else { return Val::Null };
        // A navigation to one entity: continue there.
        if let Some((_, true)) = e.set().link(first) {
            return match ctx.navigate(e, first) {
                Ok(Target::One(t)) => RowOf(ctx, &t).get(&path[1..]),
                _ => Val::Null,
            };
        }
        if first == "id" || first == "@iot.id" {
            return match e.key() {
                Key::Int(i) => Val::Num(i as f64),
                Key::Str(s) => Val::Str(s),
            };
        }
        match (e, first.as_str()) {
            (Ent::Observation(_, t, _), "phenomenonTime") => return Val::Time(t.as_nanos()),
            (Ent::HistoricalLocation(d), "time") => return Val::Time(d.created_at.as_nanos()),
            (Ent::Observation(_, _, v), "result") => {
                return match v {
                    Value::F64(x) => Val::Num(*x),
                    Value::I64(x) => Val::Num(*x as f64),
                    Value::Bool(b) => Val::Bool(*b),
                    Value::Str(s) => Val::Str(s.clone()),
                };
            }
            _ => {}
        }
        let obj = ctx.entity_base(e);
        let mut cur = match obj.get(first) {
            Some(v) => v,
            None => return Val::Null,
        };
        for p in &path[1..] {
            cur = match cur.get(p) {
                Some(v) => v,
                None => return Val::Null,
            };
        }
        json_val(cur)
    }
}

/// Create SensorThings Observations
///
/// `POST /v1.1/Observations` or `/v1.1/Datastreams(7)/Observations` with one Observation (201,
/// `Location`), `POST /v1.1/CreateObservations` with the dataArray extension (201, the links
/// in order, `"error …"` for each refused one). Through ingestion, with an ingest token.
#[utoipa::path(post, path = "/v1.1/{*path}", tag = "standards", security(("bearer" = [])),
    params(("*path" = String, Path, description = "`Observations`, `Datastreams(7)/Observations` or `CreateObservations`")),
    request_body(content = Object, description = "An Observation, or an array of dataArray items"),
    responses(
        (status = 201, description = "Created", body = Object),
        (status = 405, description = "Only Observations are created", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 400, description = "A bad path or query option: `{\"code\": 400, \"type\": \"error\", \"message\": …}`", body = Object),
        (status = 401, description = "No valid credentials (without `public_read`)", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 404, description = "No such entity or property", body = Object),
        (status = 422, description = "More than a request may read or answer", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 501, description = "A part of the standard agora does not answer", body = Object),
        (status = 503, description = "Storage unavailable", body = Object),
    ))]
pub(crate) async fn post(
    Scoped(s): Scoped,
    crate::policy::Who(who): crate::policy::Who,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let run = async {
        let token = crate::auth::ingest_token(&who)
            .map_err(|e| StaError(StatusCode::FORBIDDEN, e.to_string()))?
            .clone();
        let body = crate::ingest::body_bytes(&s, &headers, body).map_err(|e| {
            let (_, status) = e.code();
            StaError(status, e.to_string())
        })?;
        let json: Json = serde_json::from_slice(&body)
            .map_err(|e| StaError::bad(format!("the body is not JSON: {e}")))?;
        let base = format!("{}{ROOT}", crate::open_data::base_url(&s, &headers));
        let ctx = Ctx::new(&s, base);
        let path = path.trim_matches('/');
        let src =
            agora_ingest::Source { name: "http /v1.1", token: Some(&token), ..Default::default() };
        if path == "CreateObservations" {
            return create_many(&ctx, &src, &json).await;
        }
        let rp = agora_interop::sta::path::parse(path).map_err(|e| StaError::bad(e.0))?;
        let from_path = match rp.steps.as_slice() {
            [one] if one.name == "Observations" && one.key.is_none() => None,
            [ds, obs]
                if ds.name == "Datastreams" && obs.name == "Observations" && obs.key.is_none() =>
            {
                ds.key.clone()
            }
            _ => {
                return Err(StaError(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "agora creates Observations only (POST Observations, Datastreams(id)/Observations or CreateObservations)".into(),
                ));
            }
        };
        create_one(&ctx, &src, &json, from_path).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// The series a `{"@iot.id": …}` (or a path key) names, among those the caller sees.
fn datastream(ctx: &Ctx<'_>, key: &Key) -> StaResult<SeriesInfo> {
    match ctx.entity(Set::Datastreams, key) {
        Some(Ent::Datastream(x)) => Ok(x),
        _ => Err(StaError::not_found(format!("Datastreams({}) not found", key.in_path()))),
    }
}

fn key_of(v: &Json) -> Option<Key> {
    match v.get("@iot.id")? {
        Json::Number(n) => n.as_i64().map(Key::Int),
        Json::String(s) => Some(Key::Str(s.clone())),
        _ => None,
    }
}

/// An instant; an interval (`a/b`) is refused: agora stores instants.
fn instant(v: &Json, what: &str) -> Result<Timestamp, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("{what} must be an ISO 8601 date-time string"));
    };
    if s.contains('/') {
        return Err(format!("{what} {s:?} is an interval: agora stores instants"));
    }
    filter::parse_time(s)
        .map(Timestamp::from_nanos)
        .ok_or_else(|| format!("{what} {s:?} is not an ISO 8601 date-time with Z or an offset"))
}

fn result_value(v: &Json) -> Result<Value, String> {
    match v {
        Json::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Ok(Value::I64(i)),
            _ => {
                n.as_f64().map(Value::F64).ok_or_else(|| "result is not a finite number".to_owned())
            }
        },
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::String(s) => Ok(Value::Str(s.clone())),
        other => Err(format!("result must be a number, a boolean or a string, not {other}")),
    }
}

fn record(
    line: u32,
    x: &SeriesInfo,
    time: Timestamp,
    value: Value,
) -> agora_ingest::Record<'static> {
    agora_ingest::Record {
        line,
        device: x.device.to_string().into(),
        kind: None,
        site: None,
        commune: None,
        time: Some(time),
        fields: vec![agora_ingest::Field {
            name: x.property.to_string().into(),
            value,
            unit: None,
        }],
    }
}

async fn create_one(
    ctx: &Ctx<'_>,
    src: &agora_ingest::Source<'_>,
    body: &Json,
    from_path: Option<Key>,
) -> StaResult<Response> {
    if !body.is_object() {
        return Err(StaError::bad("an Observation is a JSON object"));
    }
    let key = match (from_path, body.get("Datastream")) {
        (Some(k), _) => k,
        (None, Some(d)) => {
            key_of(d).ok_or_else(|| StaError::bad("Datastream must be a link: {\"@iot.id\": …}"))?
        }
        (None, None) => {
            return Err(StaError::bad(
                "an Observation needs its Datastream: {\"Datastream\": {\"@iot.id\": …}}",
            ));
        }
    };
    let x = datastream(ctx, &key)?;
    let time = match body.get("phenomenonTime") {
        None | Some(Json::Null) => ctx.s.clock.now(),
        Some(v) => instant(v, "phenomenonTime").map_err(StaError::bad)?,
    };
    let value = result_value(body.get("result").unwrap_or(&Json::Null)).map_err(StaError::bad)?;
    let decoded =
        agora_ingest::Decoded { records: vec![record(1, &x, time, value)], errors: Vec::new() };
    let report = ctx.s.pipeline.ingest(src, decoded).await?;
    if let Some(e) = report.rejected.first() {
        return Err(StaError::bad(e.reason.clone()));
    }
    // Flagged readings (a little out of range) are stored too: read back whatever is there.
    let pts = ctx.s.store.read_with_flags(x.id, time, time.saturating_add_nanos(1), 1).await?;
    let Some((t, v, _)) = pts.into_iter().next() else {
        return Err(StaError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the observation was stored but cannot be read back".into(),
        ));
    };
    let e = Ent::Observation(x.id, t, v);
    let link = ctx.self_link(&e);
    let obj = ctx.entity_base(&e);
    Ok((StatusCode::CREATED, [(header::LOCATION, link)], axum::Json(Json::Object(obj)))
        .into_response())
}

/// Most observations one dataArray request may create.
const MAX_DATA_ARRAY: usize = 100_000;

async fn create_many(
    ctx: &Ctx<'_>,
    src: &agora_ingest::Source<'_>,
    body: &Json,
) -> StaResult<Response> {
    let Some(groups) = body.as_array() else {
        return Err(StaError::bad(
            "CreateObservations takes an array of {Datastream, components, dataArray}",
        ));
    };
    // Each row: its answer so far (an error), or the record to ingest.
    let mut answers: Vec<Result<(SeriesId, Timestamp), String>> = Vec::new();
    let mut records = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let key = group.get("Datastream").and_then(key_of).ok_or_else(|| {
            StaError::bad(format!("item {g}: Datastream must be a link: {{\"@iot.id\": …}}"))
        })?;
        let x = datastream(ctx, &key)?;
        let components: Vec<&str> = group
            .get("components")
            .and_then(Json::as_array)
            .map(|c| c.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        let at = |name: &str| components.iter().position(|c| *c == name);
        let Some(result_at) = at("result") else {
            return Err(StaError::bad(format!("item {g}: components must name result")));
        };
        for c in &components {
            if !matches!(
                *c,
                "phenomenonTime"
                    | "result"
                    | "resultTime"
                    | "FeatureOfInterest/id"
                    | "id"
                    | "@iot.id"
            ) {
                return Err(StaError::bad(format!("item {g}: component {c:?} is not supported")));
            }
        }
        let time_at = at("phenomenonTime");
        let rows = group.get("dataArray").and_then(Json::as_array).ok_or_else(|| {
            StaError::bad(format!("item {g}: dataArray must be an array of rows"))
        })?;
        if answers.len() + rows.len() > MAX_DATA_ARRAY {
            return Err(StaError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("at most {MAX_DATA_ARRAY} observations per request"),
            ));
        }
        for row in rows {
            let line = answers.len() as u32 + 1;
            let parsed = (|| {
                let row =
                    row.as_array().filter(|r| r.len() == components.len()).ok_or_else(|| {
                        format!("a row must hold {} values, one per component", components.len())
                    })?;
                let time = match time_at {
                    Some(i) => instant(&row[i], "phenomenonTime")?,
                    None => ctx.s.clock.now(),
                };
                Ok::<_, String>((time, result_value(&row[result_at])?))
            })();
            match parsed {
                Ok((time, value)) => {
                    records.push(record(line, &x, time, value));
                    answers.push(Ok((x.id, time)));
                }
                Err(e) => answers.push(Err(e)),
            }
        }
    }
    // In batches no larger than the refusals a report lists, so that every refused row is named.
    let mut refused: HashMap<u32, String> = HashMap::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let batch: Vec<_> = records.by_ref().take(agora_ingest::LISTED_REFUSALS).collect();
        let decoded = agora_ingest::Decoded { records: batch, errors: Vec::new() };
        for e in ctx.s.pipeline.ingest(src, decoded).await?.rejected {
            refused.insert(e.line, e.reason);
        }
    }
    let links: Vec<Json> = answers
        .into_iter()
        .enumerate()
        .map(|(i, a)| match a {
            Err(e) => format!("error {e}").into(),
            Ok(_) if refused.contains_key(&(i as u32 + 1)) => {
                format!("error {}", refused[&(i as u32 + 1)]).into()
            }
            Ok((s, t)) => {
                let e = Ent::Observation(s, t, Value::Bool(false));
                ctx.self_link(&e).into()
            }
        })
        .collect();
    Ok((StatusCode::CREATED, axum::Json(Json::Array(links))).into_response())
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(root, root_slash, get, post))]
pub(crate) struct Doc;
