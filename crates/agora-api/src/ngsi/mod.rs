//! NGSI-LD (ETSI GS CIM 009) over agora's catalogue, context consumption (`/ngsi-ld/v1`).
//!
//! Each device is an entity of the Smart Data Model of its kind (`AirQualityObserved`,
//! `NoiseLevelObserved`, `WeatherObserved`, `Streetlight`, `WasteContainer`,
//! `CrowdFlowObserved`, `GreenspaceRecord`; a `Device` for other kinds), id
//! `urn:ngsi-ld:<Type>:<device>`, whose Properties are the latest values of its series under
//! the model's attribute names and UN/CEFACT unit codes (percentages as the models' 0–1
//! fractions), each with `observedAt`; `location` is a GeoProperty (the device's position, or its
//! place's), `refDevice` and `refPointOfInterest` Relationships. Each device is also a `Device`
//! (`urn:ngsi-ld:Device:<id>`) and each place a `PointOfInterest`. A device's internals (battery,
//! radio) are never shown.
//!
//! Names are expanded and compacted with the request's `@context` (the `Link` header; the core
//! context without one, so that the models' attributes then come out as full IRIs, as the
//! standard says). Known contexts are served by agora itself (`/ngsi-ld/v1/jsonldContexts/…`):
//! the core context and the Smart Data Models' (see `assets/ngsi-ld/README.md`), and `agora.jsonld`,
//! all of them at once. An unknown context is refused: agora fetches nothing.

pub(crate) mod subscriptions;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use agora_interop::geo::Geometry;
use agora_interop::jsonld::{Context, Pattern};
use agora_interop::ngsi as q;
use agora_interop::sta::filter::{Row, Val};
use agora_model::{SeriesId, Timestamp, Value};
use agora_store::catalog::{Device, DeviceFilter, Site};
use agora_store::{Catalog, SeriesStore};
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

use crate::AppState;
use crate::policy::Scoped;

const CORE_URL: &str = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";
const CORE: &str = include_str!("../../assets/ngsi-ld/ngsi-ld-core-context-v1.8.jsonld");
const CORE_19: &str = include_str!("../../assets/ngsi-ld/ngsi-ld-core-context-v1.9.jsonld");
/// The Smart Data Models' domains agora's entities belong to, with their contexts.
const DOMAINS: [(&str, &str); 8] = [
    ("Environment", include_str!("../../assets/ngsi-ld/sdm-Environment.jsonld")),
    ("Weather", include_str!("../../assets/ngsi-ld/sdm-Weather.jsonld")),
    ("Streetlighting", include_str!("../../assets/ngsi-ld/sdm-Streetlighting.jsonld")),
    ("WasteManagement", include_str!("../../assets/ngsi-ld/sdm-WasteManagement.jsonld")),
    ("Transportation", include_str!("../../assets/ngsi-ld/sdm-Transportation.jsonld")),
    ("ParksAndGardens", include_str!("../../assets/ngsi-ld/sdm-ParksAndGardens.jsonld")),
    ("Device", include_str!("../../assets/ngsi-ld/sdm-Device.jsonld")),
    ("PointOfInterest", include_str!("../../assets/ngsi-ld/sdm-PointOfInterest.jsonld")),
];
/// The domains in `agora.jsonld`, the later winning where two define a name (`temperature`,
/// `refDevice`…): the environment's models (air, noise) last.
const AGORA_ORDER: [&str; 8] = [
    "Device",
    "PointOfInterest",
    "ParksAndGardens",
    "Transportation",
    "WasteManagement",
    "Streetlighting",
    "Weather",
    "Environment",
];
/// Entities one request may list.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 20;

fn sdm_url(domain: &str) -> String {
    format!(
        "https://raw.githubusercontent.com/smart-data-models/dataModel.{domain}/master/context.jsonld"
    )
}

fn parse_doc(text: &str) -> Json {
    serde_json::from_str(text).expect("embedded contexts are valid JSON (checked by the tests)")
}

/// Terms of the core context.
static CORE_CTX: LazyLock<Context> = LazyLock::new(|| Context::from_json(&parse_doc(CORE)));
/// Terms of each domain's context, core first (the core cannot be overridden).
static DOMAIN_CTX: LazyLock<HashMap<&'static str, Context>> = LazyLock::new(|| {
    DOMAINS
        .iter()
        .map(|(d, text)| {
            let mut c = Context::from_json(&parse_doc(text));
            c.add(parse_doc(CORE).get("@context").unwrap_or(&Json::Null));
            (*d, c)
        })
        .collect()
});

/// The context documents agora answers for, by URL: (file name, text).
fn known_context(url: &str) -> Option<(String, &'static str)> {
    let url = url.trim();
    let core_names = ["", "-v1.0", "-v1.3", "-v1.4", "-v1.5", "-v1.6", "-v1.7", "-v1.8"];
    for scheme in ["https", "http"] {
        for v in core_names {
            if url == format!("{scheme}://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context{v}.jsonld") {
                return Some(("ngsi-ld-core-context-v1.8.jsonld".into(), CORE));
            }
        }
        if url == format!("{scheme}://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld") {
            return Some(("ngsi-ld-core-context-v1.9.jsonld".into(), CORE_19));
        }
    }
    for (d, text) in DOMAINS {
        let file = format!("sdm-{d}.jsonld");
        if url == sdm_url(d)
            || url == format!("https://smart-data-models.github.io/dataModel.{d}/context.jsonld")
            || url.ends_with(&format!("/ngsi-ld/v1/jsonldContexts/{file}"))
        {
            return Some((file, text));
        }
    }
    None
}

/// agora's compound context: every domain, then the core.
fn agora_context_doc(base: &str) -> Json {
    let mut list: Vec<Json> = AGORA_ORDER
        .iter()
        .map(|d| format!("{base}/ngsi-ld/v1/jsonldContexts/sdm-{d}.jsonld").into())
        .collect();
    list.push(CORE_URL.into());
    json!({ "@context": list })
}

/// An NGSI-LD error: ProblemDetails with the standard's error type.
#[derive(Debug)]
pub(crate) struct NgsiError(StatusCode, &'static str, String);

impl NgsiError {
    fn bad(detail: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, "BadRequestData", detail.into())
    }
}

impl IntoResponse for NgsiError {
    fn into_response(self) -> Response {
        let title = match self.1 {
            "BadRequestData" => {
                "The request includes input data which does not meet the requirements of the operation"
            }
            "ResourceNotFound" => "The referred resource has not been found",
            "OperationNotSupported" => "The operation is not supported",
            "TooManyResults" => "The query result is too large",
            "LdContextNotAvailable" => "A remote JSON-LD @context could not be retrieved",
            "NotAcceptable" => "The requested representation is not available",
            "AlreadyExists" => "The referred element already exists",
            "InvalidRequest" => "The request associated to the operation is syntactically invalid",
            _ => "Internal error",
        };
        let body = json!({
            "type": format!("https://uri.etsi.org/ngsi-ld/errors/{}", self.1),
            "title": title,
            "detail": self.2,
            "status": self.0.as_u16(),
        });
        (
            self.0,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body.to_string(),
        )
            .into_response()
    }
}

type NgsiResult<T> = Result<T, NgsiError>;

/// `GET /ngsi-ld/v1/jsonldContexts/{file}`: the contexts agora knows, and `agora.jsonld`.
/// An NGSI-LD JSON-LD context agora serves
///
/// The core context, each Smart Data Models domain's (`sdm-Environment.jsonld`…), and
/// `agora.jsonld` (all of them). Byte-exact copies: agora fetches nothing.
#[utoipa::path(get, path = "/ngsi-ld/v1/jsonldContexts/{file}", tag = "standards",
    params(("file" = String, Path, description = "`agora.jsonld`, `sdm-<Domain>.jsonld`, `ngsi-ld-core-context-v1.8.jsonld`…")),
    responses((status = 200, description = "The context", content_type = "application/ld+json", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object)))]
pub(crate) async fn context_file(
    Scoped(s): Scoped,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = crate::open_data::base_url(&s, &headers);
    let body = if file == "agora.jsonld" {
        agora_context_doc(&base).to_string()
    } else {
        match known_context(&format!("{base}/ngsi-ld/v1/jsonldContexts/{file}")) {
            Some((_, text)) => text.to_owned(),
            None => {
                return NgsiError(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    format!("no context {file}"),
                )
                .into_response();
            }
        }
    };
    ([(header::CONTENT_TYPE, "application/ld+json")], body).into_response()
}

/// How the answer is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Normalized,
    KeyValues,
    Concise,
}

/// What the request asks.
struct Ask {
    /// The request's context: its terms (shared: contexts are large), and what to name in the
    /// answer.
    ctx: Arc<Context>,
    ctx_urls: Vec<String>,
    form: Form,
    ld: bool,
    geojson: bool,
}

fn ask(headers: &HeaderMap, params: &HashMap<String, String>, base: &str) -> NgsiResult<Ask> {
    // The request's context: the Link header (one), else the core.
    let links: Vec<&str> =
        headers.get_all(header::LINK).iter().filter_map(|v| v.to_str().ok()).collect();
    let ctx_links: Vec<String> = links
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|l| l.contains("http://www.w3.org/ns/json-ld#context"))
        .filter_map(|l| Some(l.split('<').nth(1)?.split('>').next()?.trim().to_owned()))
        .collect();
    if ctx_links.len() > 1 {
        return Err(NgsiError::bad("only one JSON-LD context Link header is allowed"));
    }
    let ctx_urls = match ctx_links.first() {
        None => vec![CORE_URL.to_owned()],
        Some(url)
            if url.ends_with("/ngsi-ld/v1/jsonldContexts/agora.jsonld")
                || known_context(url).is_some() =>
        {
            vec![url.clone()]
        }
        Some(url) => {
            return Err(NgsiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "LdContextNotAvailable",
                format!(
                    "agora fetches no remote context and does not know {url}: use {base}/ngsi-ld/v1/jsonldContexts/agora.jsonld, a Smart Data Models context (Environment, Weather, Streetlighting, WasteManagement, Transportation, ParksAndGardens, Device, PointOfInterest) or the core context"
                ),
            ));
        }
    };
    let ctx = context_of(&ctx_urls)?;
    // The representation: format wins over options.
    let mut form = Form::Normalized;
    for o in params.get("options").map(|o| o.split(',').collect::<Vec<_>>()).unwrap_or_default() {
        form = match o.trim() {
            "keyValues" | "simplified" => Form::KeyValues,
            "concise" => Form::Concise,
            "normalized" => Form::Normalized,
            // The temporal representations (read by the temporal API), sysAttrs, and the
            // `count` some clients put here.
            "sysAttrs" | "count" | "temporalValues" | "aggregatedValues" => form,
            other => {
                return Err(NgsiError::bad(format!(
                    "unknown option {other:?}: keyValues, simplified, concise, normalized, sysAttrs"
                )));
            }
        };
    }
    if let Some(f) = params.get("format") {
        form = match f.as_str() {
            "keyValues" | "simplified" => Form::KeyValues,
            "concise" => Form::Concise,
            "normalized" => Form::Normalized,
            "temporalValues" | "aggregatedValues" => form,
            other => {
                return Err(NgsiError::bad(format!(
                    "unknown format {other:?}: normalized, concise, simplified"
                )));
            }
        };
    }
    // Accept: the first of json, ld+json, geo+json it names; nothing → json.
    let accept =
        headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("application/json");
    let mut ld = false;
    let mut geojson = false;
    let mut ok = false;
    for m in accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim()) {
        match m {
            "application/json" | "*/*" | "application/*" => ok = true,
            "application/ld+json" => {
                ld = true;
                ok = true;
            }
            "application/geo+json" => {
                geojson = true;
                ok = true;
            }
            _ => continue,
        }
        break;
    }
    if !ok {
        return Err(NgsiError(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "agora answers application/json, application/ld+json or application/geo+json".into(),
        ));
    }
    Ok(Ask { ctx, ctx_urls, form, ld, geojson })
}

/// What an attribute is.
#[derive(Debug, Clone)]
enum Attr {
    Property { value: Json, observed_at: Option<Timestamp>, unit_code: Option<&'static str> },
    Geo(Json),
    Relationship(String),
}

/// An entity: its id, its type's IRI and its attributes by IRI.
#[derive(Debug, Clone)]
struct Entity {
    id: String,
    type_iri: String,
    attrs: Vec<(String, Attr)>,
    /// The series behind each measured attribute (by IRI), for the temporal API.
    sources: HashMap<String, Source>,
}

/// Where an attribute's values come from, and how they are written.
#[derive(Debug, Clone)]
struct Source {
    series: SeriesId,
    property: String,
    unit: String,
    /// From agora's unit to the model's (percentages to fractions).
    factor: f64,
    unit_code: Option<&'static str>,
}

/// The type and domain of a device kind.
fn type_of(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "air_quality" => ("AirQualityObserved", "Environment"),
        "noise" => ("NoiseLevelObserved", "Environment"),
        "weather" => ("WeatherObserved", "Weather"),
        "streetlight" => ("Streetlight", "Streetlighting"),
        "waste_container" | "bin" => ("WasteContainer", "WasteManagement"),
        "pedestrian_counter" => ("CrowdFlowObserved", "Transportation"),
        "soil_moisture" | "soil" => ("GreenspaceRecord", "ParksAndGardens"),
        _ => ("Device", "Device"),
    }
}

/// A property's name in the Smart Data Models, its UN/CEFACT unit code, and the factor from
/// agora's unit (percentages become the models' fractions).
fn attribute_of(property: &str) -> (&str, Option<&'static str>, f64) {
    match property {
        "pm1" => ("pm1", Some("GQ"), 1.0),
        "pm2_5" => ("pm25", Some("GQ"), 1.0),
        "pm10" => ("pm10", Some("GQ"), 1.0),
        "no2" | "no" | "o3" | "so2" => (property, Some("GQ"), 1.0),
        "co" => ("co", Some("GP"), 1.0),
        "co2" => ("co2", Some("59"), 1.0),
        "aqi" => ("airQualityIndex", None, 1.0),
        "temperature" => ("temperature", Some("CEL"), 1.0),
        "relative_humidity" => ("relativeHumidity", Some("C62"), 0.01),
        "pressure" => ("atmosphericPressure", Some("A97"), 1.0),
        "wind_speed" => ("windSpeed", Some("MTS"), 1.0),
        "wind_direction" => ("windDirection", Some("DD"), 1.0),
        "precipitation" => ("precipitation", Some("MMT"), 1.0),
        "illuminance" => ("illuminance", Some("LUX"), 1.0),
        "solar_radiation" => ("solarRadiation", Some("D54"), 1.0),
        "laeq" => ("LAeq", Some("2N"), 1.0),
        "lamax" => ("LAmax", Some("2N"), 1.0),
        "lamin" | "la10" | "la50" | "la90" => (property, Some("2N"), 1.0),
        "people_in" => ("peopleCountTowards", Some("IE"), 1.0),
        "people_out" => ("peopleCountAway", Some("IE"), 1.0),
        "people_count" => ("peopleCount", Some("IE"), 1.0),
        "power_w" => ("powerConsumption", Some("WTT"), 1.0),
        "dimming_level" => ("illuminanceLevel", Some("C62"), 0.01),
        "fill_level" => ("fillingLevel", Some("C62"), 0.01),
        "bin_temperature" => ("temperature", Some("CEL"), 1.0),
        "soil_moisture" => ("soilMoistureVwc", Some("C62"), 0.01),
        "soil_temperature" => ("soilTemperature", Some("CEL"), 1.0),
        other => (other, None, 1.0),
    }
}

/// The IRI of an attribute name in a domain: the model's, or the core's default vocabulary.
fn iri_in(domain: &str, name: &str) -> String {
    match DOMAIN_CTX.get(domain) {
        Some(c) => c.expand(name),
        None => CORE_CTX.expand(name),
    }
}

/// What one request sees of the catalogue, as entities.
struct World {
    entities: Vec<Entity>,
}

fn site_point(site: &Site) -> Option<Json> {
    if let Some(g) = &site.geometry {
        return Some(g.clone());
    }
    Some(json!({"type": "Point", "coordinates": [site.lon?, site.lat?]}))
}

/// Which entities a request can select, known before any value is read: the types and ids it
/// names (`None`: any).
struct Want {
    types: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

impl Want {
    fn of(p: &HashMap<String, String>, ctx: &Context) -> Want {
        Want {
            types: p
                .get("type")
                .map(|t| t.split([',', '|']).map(|x| ctx.expand(x.trim())).collect()),
            ids: p.get("id").map(|i| i.split(',').map(|x| x.trim().to_owned()).collect()),
        }
    }

    fn keeps(&self, id: &str, type_iri: &str) -> bool {
        self.types.as_ref().is_none_or(|t| t.iter().any(|x| x == type_iri))
            && self.ids.as_ref().is_none_or(|i| i.iter().any(|x| x == id))
    }
}

/// The ids of the entities `build` would make for `want` (and an `idPattern`), sorted, without
/// reading any value.
fn candidates(s: &AppState, want: &Want, pattern: Option<&String>) -> NgsiResult<Vec<String>> {
    let pattern = match pattern {
        Some(p) => Some(Pattern::parse(p).map_err(NgsiError::bad)?),
        None => None,
    };
    let mut out = Vec::new();
    let mut push = |id: String, type_iri: String| {
        if want.keeps(&id, &type_iri) && pattern.as_ref().is_none_or(|p| p.is_match(&id)) {
            out.push(id);
        }
    };
    for d in s.catalog.devices(&DeviceFilter::default()) {
        let (ty, domain) = type_of(d.kind.as_str());
        push(format!("urn:ngsi-ld:{ty}:{}", d.id), iri_in(domain, ty));
        if ty != "Device" {
            push(format!("urn:ngsi-ld:Device:{}", d.id), iri_in("Device", "Device"));
        }
    }
    for p in s.catalog.sites() {
        push(
            format!("urn:ngsi-ld:PointOfInterest:{}", p.id),
            iri_in("PointOfInterest", "PointOfInterest"),
        );
    }
    out.sort();
    Ok(out)
}

/// A reading as its attribute's value: scaled to the model's unit, a lamp's state as the
/// model's `powerState`.
fn property_value(prop: &str, v: Value, k: f64) -> Json {
    match v {
        Value::F64(x) => json!(x * k),
        Value::I64(x) if k == 1.0 => json!(x),
        Value::I64(x) => json!(x as f64 * k),
        Value::Bool(b) if prop == "lamp_on" => json!(if b { "on" } else { "off" }),
        Value::Bool(b) => json!(b),
        Value::Str(x) => json!(x),
    }
}

/// The device an entity id names (`urn:ngsi-ld:<Type>:<device>`).
fn device_of(id: &str) -> Option<&str> {
    let rest = id.strip_prefix("urn:ngsi-ld:")?;
    Some(rest.split_once(':')?.1)
}

fn build(catalog: &dyn Catalog, store: &dyn SeriesStore, want: &Want) -> World {
    // Entities named by id: only their devices are read (a page, one entity, a notification).
    let named: Option<Vec<&str>> =
        want.ids.as_ref().map(|ids| ids.iter().filter_map(|i| device_of(i)).collect());
    let devices: Vec<Device> = match &named {
        Some(n) => {
            let mut d: Vec<Device> = n.iter().filter_map(|x| catalog.device(x)).collect();
            d.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
            d.dedup_by(|a, b| a.id == b.id);
            d
        }
        None => catalog.devices(&DeviceFilter::default()),
    };
    let sites: HashMap<String, Site> =
        catalog.sites().into_iter().map(|x| (x.id.to_string(), x)).collect();
    let mut by_device: HashMap<String, Vec<(SeriesId, String, String)>> = HashMap::new();
    let series = match &named {
        Some(_) => devices.iter().flat_map(|d| catalog.device_series(d.id.as_str())).collect(),
        None => catalog.all_series(),
    };
    for x in series {
        if !agora_model::is_device_internal(x.property.as_str()) {
            by_device.entry(x.device.to_string()).or_default().push((
                x.id,
                x.property.to_string(),
                x.unit.clone(),
            ));
        }
    }
    let mut entities = Vec::new();
    let core_loc = CORE_CTX.expand("location");
    for d in &devices {
        let (ty, domain) = type_of(d.kind.as_str());
        let (obs_id, dev_id) =
            (format!("urn:ngsi-ld:{ty}:{}", d.id), format!("urn:ngsi-ld:Device:{}", d.id));
        let keep_obs = want.keeps(&obs_id, &iri_in(domain, ty));
        let keep_dev = ty != "Device" && want.keeps(&dev_id, &iri_in("Device", "Device"));
        if !keep_obs && !keep_dev {
            continue;
        }
        let site = d.site.as_ref().and_then(|x| sites.get(x.as_str()));
        let position = match (d.lat, d.lon) {
            (Some(lat), Some(lon)) => Some(json!({"type": "Point", "coordinates": [lon, lat]})),
            _ => site.and_then(site_point),
        };
        let series = by_device.get(d.id.as_str()).cloned().unwrap_or_default();
        let ids: Vec<SeriesId> = series.iter().map(|x| x.0).collect();
        let latest = store.latest(&ids);
        let mut attrs: Vec<(String, Attr)> = Vec::new();
        let mut sources = HashMap::new();
        let mut last: Option<Timestamp> = None;
        let mut controlled = Vec::new();
        for ((sid, prop, u), l) in series.iter().zip(latest) {
            let (name, unit, k) = attribute_of(prop);
            controlled.push(name.to_owned());
            let iri = iri_in(domain, if prop == "lamp_on" { "powerState" } else { name });
            sources.insert(
                iri.clone(),
                Source {
                    series: *sid,
                    property: prop.clone(),
                    unit: u.clone(),
                    factor: k,
                    unit_code: unit,
                },
            );
            let Some((t, v)) = l else { continue };
            last = Some(last.map_or(t, |x| x.max(t)));
            let value = property_value(prop, v, k);
            attrs.push((iri, Attr::Property { value, observed_at: Some(t), unit_code: unit }));
        }
        if let Some(p) = &position {
            attrs.push((core_loc.clone(), Attr::Geo(p.clone())));
        }
        if let Some(t) = last {
            attrs.push((
                iri_in(domain, "dateObserved"),
                Attr::Property {
                    value: json!({"@type": "DateTime", "@value": t.to_rfc3339()}),
                    observed_at: None,
                    unit_code: None,
                },
            ));
        }
        if let Some(n) = &d.name {
            attrs.push((
                iri_in(domain, "name"),
                Attr::Property { value: json!(n), observed_at: None, unit_code: None },
            ));
        }
        if ty != "Device" {
            attrs.push((
                iri_in(domain, "refDevice"),
                Attr::Relationship(format!("urn:ngsi-ld:Device:{}", d.id)),
            ));
        }
        if let Some(site) = &d.site {
            attrs.push((
                iri_in(domain, "refPointOfInterest"),
                Attr::Relationship(format!("urn:ngsi-ld:PointOfInterest:{site}")),
            ));
        }
        if keep_obs {
            entities.push(Entity {
                id: obs_id.clone(),
                type_iri: iri_in(domain, ty),
                attrs,
                sources,
            });
        }
        if keep_dev {
            // The device itself, as the Device model describes it.
            let mut dev: Vec<(String, Attr)> = Vec::new();
            let c = |n: &str| iri_in("Device", n);
            dev.push((
                c("controlledProperty"),
                Attr::Property { value: json!(controlled), observed_at: None, unit_code: None },
            ));
            dev.push((
                c("category"),
                Attr::Property { value: json!(["sensor"]), observed_at: None, unit_code: None },
            ));
            if let Some(t) = d.last_seen {
                dev.push((
                    c("dateLastValueReported"),
                    Attr::Property {
                        value: json!({"@type": "DateTime", "@value": t.to_rfc3339()}),
                        observed_at: None,
                        unit_code: None,
                    },
                ));
            }
            if let Some(n) = &d.name {
                dev.push((
                    c("name"),
                    Attr::Property { value: json!(n), observed_at: None, unit_code: None },
                ));
            }
            if let Some(p) = &position {
                dev.push((core_loc.clone(), Attr::Geo(p.clone())));
            }
            entities.push(Entity {
                id: format!("urn:ngsi-ld:Device:{}", d.id),
                type_iri: c("Device"),
                attrs: dev,
                sources: HashMap::new(),
            });
        }
    }
    let mut places: Vec<&Site> = sites.values().collect();
    places.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    for p in places {
        let c = |n: &str| iri_in("PointOfInterest", n);
        if !want.keeps(&format!("urn:ngsi-ld:PointOfInterest:{}", p.id), &c("PointOfInterest")) {
            continue;
        }
        let mut attrs = vec![(
            c("name"),
            Attr::Property { value: json!(p.name), observed_at: None, unit_code: None },
        )];
        if let Some(g) = site_point(p) {
            attrs.push((core_loc.clone(), Attr::Geo(g)));
        }
        attrs.push((
            c("category"),
            Attr::Property {
                value: json!(["public square or street"]),
                observed_at: None,
                unit_code: None,
            },
        ));
        entities.push(Entity {
            id: format!("urn:ngsi-ld:PointOfInterest:{}", p.id),
            type_iri: c("PointOfInterest"),
            attrs,
            sources: HashMap::new(),
        });
    }
    entities.sort_by(|a, b| a.id.cmp(&b.id));
    World { entities }
}

/// A value as `q` compares it.
fn json_val(v: &Json) -> Val {
    match v {
        Json::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
        Json::String(s) => Val::Str(s.clone()),
        Json::Bool(b) => Val::Bool(*b),
        Json::Object(o) if o.get("@type").and_then(Json::as_str) == Some("DateTime") => o
            .get("@value")
            .and_then(Json::as_str)
            .and_then(agora_interop::sta::filter::parse_time)
            .map_or(Val::Null, Val::Time),
        _ => Val::Null,
    }
}

/// An entity's attributes for `q`, names expanded with the request's context.
struct EntityRow<'a>(&'a Entity, &'a Context);

impl Row for EntityRow<'_> {
    fn get(&self, path: &[String]) -> Val {
        let Some(first) = path.first() else { return Val::Null };
        let iri = self.1.expand(first);
        let Some((_, a)) = self.0.attrs.iter().find(|(i, _)| *i == iri) else { return Val::Null };
        let to_val = json_val;
        match (a, path.get(1).map(String::as_str)) {
            (Attr::Property { value, .. }, None) => to_val(value),
            (Attr::Property { observed_at: Some(t), .. }, Some("observedAt")) => {
                Val::Time(t.as_nanos())
            }
            (Attr::Property { unit_code: Some(u), .. }, Some("unitCode")) => {
                Val::Str((*u).to_owned())
            }
            (Attr::Property { value, .. }, Some(_)) => {
                let mut cur = value;
                for p in &path[1..] {
                    match cur.get(p) {
                        Some(v) => cur = v,
                        None => return Val::Null,
                    }
                }
                to_val(cur)
            }
            (Attr::Relationship(o), None) => Val::Str(o.clone()),
            (Attr::Geo(g), None) => Geometry::from_geojson(g).map_or(Val::Null, Val::Geo),
            _ => Val::Null,
        }
    }
}

fn params_of(raw: &str) -> NgsiResult<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| NgsiError::bad(format!("the query string cannot be read: {e}")))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(NgsiError::bad(format!("parameter {k} is given twice")));
        }
    }
    Ok(out)
}

/// The geo-query of a request, if any: the relation, the geometry, and the property it tests.
struct GeoQuery {
    rel: GeoRel,
    geometry: Geometry,
    property: String,
}

enum GeoRel {
    Near { max: Option<f64>, min: Option<f64> },
    Within,
    Contains,
    Intersects,
    Equals,
    Disjoint,
}

fn geo_query(p: &HashMap<String, String>, ctx: &Context) -> NgsiResult<Option<GeoQuery>> {
    let (rel, geometry, coords) = (p.get("georel"), p.get("geometry"), p.get("coordinates"));
    if rel.is_none() && geometry.is_none() && coords.is_none() {
        return Ok(None);
    }
    let (Some(rel), Some(geometry), Some(coords)) = (rel, geometry, coords) else {
        return Err(NgsiError::bad("a geo-query needs georel, geometry and coordinates together"));
    };
    if coords.len() > 256 << 10 {
        return Err(NgsiError::bad("coordinates are longer than 256 KiB"));
    }
    let c: Json = serde_json::from_str(coords)
        .map_err(|e| NgsiError::bad(format!("coordinates are not a JSON array: {e}")))?;
    let g = Geometry::from_geojson(&json!({"type": geometry, "coordinates": c}))
        .map_err(|e| NgsiError::bad(e.0))?;
    let mut parts = rel.split(';');
    let rel = match parts.next().unwrap_or("") {
        "near" => {
            let (mut max, mut min) = (None, None);
            for part in parts {
                let (k, v) = part
                    .split_once("==")
                    .ok_or_else(|| NgsiError::bad(format!("bad georel modifier {part:?}")))?;
                let v: f64 =
                    v.parse().ok().filter(|x: &f64| x.is_finite() && *x >= 0.0).ok_or_else(
                        || NgsiError::bad(format!("{k} must be a distance in metres, not {v:?}")),
                    )?;
                match k {
                    "maxDistance" => max = Some(v),
                    "minDistance" => min = Some(v),
                    _ => {
                        return Err(NgsiError::bad(format!(
                            "bad georel modifier {k:?}: maxDistance or minDistance"
                        )));
                    }
                }
            }
            if max.is_none() && min.is_none() {
                return Err(NgsiError::bad(
                    "near needs maxDistance==<metres> or minDistance==<metres>",
                ));
            }
            GeoRel::Near { max, min }
        }
        "within" => GeoRel::Within,
        "contains" => GeoRel::Contains,
        "intersects" => GeoRel::Intersects,
        "equals" => GeoRel::Equals,
        "disjoint" => GeoRel::Disjoint,
        "overlaps" => {
            return Err(NgsiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "OperationNotSupported",
                "georel=overlaps is not supported".into(),
            ));
        }
        other => {
            return Err(NgsiError::bad(format!(
                "unknown georel {other:?}: near, within, contains, intersects, equals, disjoint"
            )));
        }
    };
    let property = ctx.expand(p.get("geoproperty").map_or("location", String::as_str));
    Ok(Some(GeoQuery { rel, geometry: g, property }))
}

impl GeoQuery {
    fn holds(&self, e: &Entity) -> bool {
        let Some(g) = e.attrs.iter().find_map(|(i, a)| match a {
            Attr::Geo(g) if *i == self.property => Geometry::from_geojson(g).ok(),
            _ => None,
        }) else {
            return false;
        };
        match &self.rel {
            GeoRel::Near { max, min } => {
                let d = g.distance_m(&self.geometry);
                max.is_none_or(|m| d <= m) && min.is_none_or(|m| d >= m)
            }
            GeoRel::Within => g.within(&self.geometry),
            GeoRel::Contains => self.geometry.within(&g),
            GeoRel::Intersects => g.intersects(&self.geometry),
            GeoRel::Equals => g.equals(&self.geometry),
            GeoRel::Disjoint => !g.intersects(&self.geometry),
        }
    }
}

/// The entities a query selects, before paging.
fn select(world: World, p: &HashMap<String, String>, ask: &Ask) -> NgsiResult<Vec<Entity>> {
    let types: Option<Vec<String>> =
        p.get("type").map(|t| t.split([',', '|']).map(|x| ask.ctx.expand(x.trim())).collect());
    let ids: Option<Vec<&str>> = p.get("id").map(|i| i.split(',').map(str::trim).collect());
    let pattern = match p.get("idPattern") {
        Some(pat) => Some(Pattern::parse(pat).map_err(NgsiError::bad)?),
        None => None,
    };
    let attrs: Option<Vec<String>> =
        p.get("attrs").map(|a| a.split(',').map(|x| ask.ctx.expand(x.trim())).collect());
    let query = match p.get("q") {
        Some(text) => Some(q::parse(text).map_err(|e| {
            if e.unsupported {
                NgsiError(StatusCode::UNPROCESSABLE_ENTITY, "OperationNotSupported", e.message)
            } else {
                NgsiError::bad(e.message)
            }
        })?),
        None => None,
    };
    let geo = geo_query(p, &ask.ctx)?;
    if types.is_none()
        && attrs.is_none()
        && query.is_none()
        && geo.is_none()
        && ids.is_none()
        && pattern.is_none()
    {
        return Err(NgsiError::bad(
            "give at least one of type, attrs, q, georel (or id, idPattern)",
        ));
    }
    Ok(world
        .entities
        .into_iter()
        .filter(|e| types.as_ref().is_none_or(|t| t.contains(&e.type_iri)))
        .filter(|e| ids.as_ref().is_none_or(|i| i.contains(&e.id.as_str())))
        .filter(|e| pattern.as_ref().is_none_or(|p| p.is_match(&e.id)))
        .filter(|e| attrs.as_ref().is_none_or(|a| e.attrs.iter().any(|(i, _)| a.contains(i))))
        .filter(|e| query.as_ref().is_none_or(|q| q.matches(&EntityRow(e, &ask.ctx))))
        .filter(|e| geo.as_ref().is_none_or(|g| g.holds(e)))
        .map(|mut e| {
            if let Some(a) = &attrs {
                e.attrs.retain(|(i, _)| a.contains(i));
            }
            e
        })
        .collect())
}

/// One entity in the asked representation.
fn render(e: &Entity, ask: &Ask) -> Json {
    let mut o = Map::new();
    o.insert("id".into(), e.id.clone().into());
    o.insert("type".into(), ask.ctx.compact(&e.type_iri).into());
    for (iri, a) in &e.attrs {
        let v = match (a, ask.form) {
            (Attr::Property { value, .. }, Form::KeyValues) => value.clone(),
            (Attr::Geo(g), Form::KeyValues) => g.clone(),
            (Attr::Relationship(r), Form::KeyValues) => r.clone().into(),
            (Attr::Property { value, observed_at, unit_code }, form) => {
                let mut p = Map::new();
                if form == Form::Normalized {
                    p.insert("type".into(), "Property".into());
                }
                p.insert("value".into(), value.clone());
                if let Some(t) = observed_at {
                    p.insert("observedAt".into(), t.to_rfc3339().into());
                }
                if let Some(u) = unit_code {
                    p.insert("unitCode".into(), (*u).into());
                }
                if form == Form::Concise && p.len() == 1 { value.clone() } else { Json::Object(p) }
            }
            (Attr::Geo(g), Form::Normalized) => json!({"type": "GeoProperty", "value": g}),
            (Attr::Geo(g), _) => json!({"value": g}),
            (Attr::Relationship(r), Form::Normalized) => {
                json!({"type": "Relationship", "object": r})
            }
            (Attr::Relationship(r), _) => json!({"object": r}),
        };
        o.insert(ask.ctx.compact(iri), v);
    }
    if ask.ld && !ask.geojson {
        o.insert("@context".into(), context_value(ask));
    }
    Json::Object(o)
}

fn context_value(ask: &Ask) -> Json {
    if ask.ctx_urls.len() == 1 {
        ask.ctx_urls[0].clone().into()
    } else {
        ask.ctx_urls.clone().into()
    }
}

fn feature(e: &Entity, ask: &Ask) -> Json {
    let loc = CORE_CTX.expand("location");
    let geometry = e.attrs.iter().find_map(|(i, a)| match a {
        Attr::Geo(g) if *i == loc => Some(g.clone()),
        _ => None,
    });
    let Json::Object(mut props) = render(e, ask) else { return Json::Null };
    let id = props.remove("id").unwrap_or(Json::Null);
    json!({"id": id, "type": "Feature", "geometry": geometry, "properties": props})
}

/// Write the answer: the body, and the context as a Link header when it is not in the body.
fn respond(
    status: StatusCode,
    body: Json,
    ask: &Ask,
    extra: Vec<(header::HeaderName, String)>,
) -> Response {
    let ct = if ask.geojson {
        "application/geo+json"
    } else if ask.ld {
        "application/ld+json"
    } else {
        "application/json"
    };
    let mut r = (status, [(header::CONTENT_TYPE, ct)], body.to_string()).into_response();
    if !ask.ld
        && let Ok(v) = HeaderValue::from_str(&format!(
            "<{}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
            ask.ctx_urls[0]
        ))
    {
        r.headers_mut().insert(header::LINK, v);
    }
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

/// Query NGSI-LD entities
///
/// ETSI GS CIM 009: agora's devices as Smart Data Model entities, its devices and places. See
/// the README. Names are read with the request's `@context` (`Link` header).
#[utoipa::path(get, path = "/ngsi-ld/v1/entities", tag = "standards", security((), ("bearer" = [])),
    params(("type" = Option<String>, Query, description = "Entity types, `A,B` (expanded with the request's @context)"),
        ("id" = Option<String>, Query, description = "Entity ids, comma-separated"),
        ("idPattern" = Option<String>, Query, description = "A regular expression on ids (literals, `.`, classes, `*`, `+`, `?`, `^`, `$`)"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("q" = Option<String>, Query, description = "The NGSI-LD query language, e.g. `pm10>40;LAeq<70`"),
        ("georel" = Option<String>, Query, description = "`near;maxDistance==<m>`, `within`, `contains`, `intersects`, `equals`, `disjoint`"),
        ("geometry" = Option<String>, Query, description = "GeoJSON geometry type of the geo-query"),
        ("coordinates" = Option<String>, Query, description = "GeoJSON coordinates of the geo-query"),
        ("limit" = Option<String>, Query, description = "Page size (20 by default, at most 1,000)"),
        ("offset" = Option<String>, Query, description = "Entities skipped"),
        ("options" = Option<String>, Query, description = "`keyValues`, `concise`, `normalized`, and for the temporal API `temporalValues` or `aggregatedValues`"),
        ("count" = Option<String>, Query, description = "`true`: `NGSILD-Results-Count`"),
    ),
    responses((status = 200, description = "The entities", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn entities(
    Scoped(s): Scoped,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let run = || -> NgsiResult<Response> {
        let base = crate::open_data::base_url(&s, &headers);
        let p = params_of(raw.as_deref().unwrap_or(""))?;
        let ask = ask(&headers, &p, &base)?;
        let count = match p.get("count").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(NgsiError::bad(format!("count is true or false, not {other:?}")));
            }
        };
        let limit = match p.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| NgsiError::bad(format!("limit must be a whole number, not {l:?}")))?,
        };
        if limit > MAX_LIMIT {
            return Err(NgsiError(
                StatusCode::FORBIDDEN,
                "TooManyResults",
                format!("limit {limit} is above {MAX_LIMIT}: page with offset"),
            ));
        }
        if limit == 0 && !count {
            return Err(NgsiError::bad("limit=0 goes with count=true"));
        }
        let offset = match p.get("offset") {
            None => 0,
            Some(o) => o
                .parse::<usize>()
                .map_err(|_| NgsiError::bad(format!("offset must be a whole number, not {o:?}")))?,
        };
        let want = Want::of(&p, &ask.ctx);
        let (all, total, skip) = if ["q", "attrs", "georel"].iter().any(|k| p.contains_key(*k)) {
            let all = select(build(s.catalog.as_ref(), s.store.as_ref(), &want), &p, &ask)?;
            let total = all.len();
            (all, total, offset)
        } else {
            // Nothing to filter on values: page the ids first, build the page's entities only.
            let ids = candidates(&s, &want, p.get("idPattern"))?;
            let total = ids.len();
            let page_ids: Vec<String> = ids.into_iter().skip(offset).take(limit).collect();
            let page_want = Want { types: want.types.clone(), ids: Some(page_ids) };
            (select(build(s.catalog.as_ref(), s.store.as_ref(), &page_want), &p, &ask)?, total, 0)
        };
        let page: Vec<&Entity> = all.iter().skip(skip).take(limit).collect();
        let body = if ask.geojson {
            let mut fc = json!({"type": "FeatureCollection", "features": page.iter().map(|e| feature(e, &ask)).collect::<Vec<_>>()});
            fc["@context"] = context_value(&ask);
            fc
        } else {
            Json::Array(page.iter().map(|e| render(e, &ask)).collect())
        };
        let mut extra = Vec::new();
        if count {
            extra
                .push((header::HeaderName::from_static("ngsild-results-count"), total.to_string()));
        }
        if offset + page.len() < total && limit > 0 {
            let mut next = p.clone();
            next.insert("offset".into(), (offset + limit).to_string());
            next.insert("limit".into(), limit.to_string());
            let mut pairs: Vec<(String, String)> = next.into_iter().collect();
            pairs.sort();
            let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            extra.push((
                header::LINK,
                format!(
                    "<{base}/ngsi-ld/v1/entities?{qs}>; rel=\"next\"; type=\"application/ld+json\""
                ),
            ));
        }
        Ok(respond(StatusCode::OK, body, &ask, extra))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Query NGSI-LD entities (with a trailing slash)
#[utoipa::path(get, path = "/ngsi-ld/v1/entities/", tag = "standards", security((), ("bearer" = [])),
    params(("type" = Option<String>, Query, description = "Entity types, `A,B` (expanded with the request's @context)"),
        ("id" = Option<String>, Query, description = "Entity ids, comma-separated"),
        ("idPattern" = Option<String>, Query, description = "A regular expression on ids (literals, `.`, classes, `*`, `+`, `?`, `^`, `$`)"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("q" = Option<String>, Query, description = "The NGSI-LD query language, e.g. `pm10>40;LAeq<70`"),
        ("georel" = Option<String>, Query, description = "`near;maxDistance==<m>`, `within`, `contains`, `intersects`, `equals`, `disjoint`"),
        ("geometry" = Option<String>, Query, description = "GeoJSON geometry type of the geo-query"),
        ("coordinates" = Option<String>, Query, description = "GeoJSON coordinates of the geo-query"),
        ("limit" = Option<String>, Query, description = "Page size (20 by default, at most 1,000)"),
        ("offset" = Option<String>, Query, description = "Entities skipped"),
        ("options" = Option<String>, Query, description = "`keyValues`, `concise`, `normalized`, and for the temporal API `temporalValues` or `aggregatedValues`"),
        ("count" = Option<String>, Query, description = "`true`: `NGSILD-Results-Count`"),
    ),
    responses((status = 200, description = "The entities", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn entities_slash(scoped: Scoped, raw: RawQuery, headers: HeaderMap) -> Response {
    entities(scoped, raw, headers).await
}

/// Retrieve an NGSI-LD entity
#[utoipa::path(get, path = "/ngsi-ld/v1/entities/{id}", tag = "standards", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The entity's id, e.g. `urn:ngsi-ld:AirQualityObserved:aq-1`"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("options" = Option<String>, Query, description = "`keyValues`, `concise`, `normalized`")),
    responses((status = 200, description = "The entity", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn entity(
    Scoped(s): Scoped,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let run = || -> NgsiResult<Response> {
        let base = crate::open_data::base_url(&s, &headers);
        let mut p = params_of(raw.as_deref().unwrap_or(""))?;
        let ask = ask(&headers, &p, &base)?;
        if !id.contains(':') {
            return Err(NgsiError::bad(format!(
                "entity id {id:?} is not a URI (urn:ngsi-ld:<Type>:<id>)"
            )));
        }
        p.insert("id".into(), id.clone());
        let found =
            select(build(s.catalog.as_ref(), s.store.as_ref(), &Want::of(&p, &ask.ctx)), &p, &ask)?;
        let Some(e) = found.first() else {
            return Err(NgsiError(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("no entity {id}"),
            ));
        };
        let body = if ask.geojson {
            let mut f = feature(e, &ask);
            f["@context"] = context_value(&ask);
            f
        } else {
            render(e, &ask)
        };
        Ok(respond(StatusCode::OK, body, &ask, Vec::new()))
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Most instances of one attribute a temporal answer holds; past it, the answer is 206 with
/// the range it covers (`Content-Range`), oldest first (or the newest with `lastN`).
const MAX_INSTANCES: usize = 10_000;
/// Readings one temporal request may read (by the store's index) or answer, all entities and
/// attributes together.
const MAX_TEMPORAL_POINTS: usize = 5_000_000;
/// Aggregation periods one attribute may be answered in.
const MAX_PERIODS: usize = 10_000;

/// The temporal part of a request.
struct Temporal {
    from: Timestamp,
    to: Timestamp,
    last_n: Option<usize>,
    values: bool,
    aggregate: Option<(Vec<String>, Option<std::time::Duration>)>,
}

fn temporal_params(p: &HashMap<String, String>) -> NgsiResult<Temporal> {
    let time = |k: &str| -> NgsiResult<Option<Timestamp>> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => agora_interop::sta::filter::parse_time(v)
                .map(|t| Some(Timestamp::from_nanos(t)))
                .ok_or_else(|| {
                    NgsiError::bad(format!(
                        "{k} {v:?} is not a date-time like 2026-01-01T00:00:00Z"
                    ))
                }),
        }
    };
    let (at, end) = (time("timeAt")?, time("endTimeAt")?);
    let (from, to) = match (p.get("timerel").map(String::as_str), at, end) {
        (None, None, None) => (Timestamp::from_nanos(i64::MIN), Timestamp::from_nanos(i64::MAX)),
        (Some("before"), Some(t), _) => (Timestamp::from_nanos(i64::MIN), t),
        (Some("after"), Some(t), _) => (t, Timestamp::from_nanos(i64::MAX)),
        (Some("between"), Some(a), Some(b)) if a < b => (a, b),
        (Some("between"), Some(_), Some(_)) => {
            return Err(NgsiError::bad("endTimeAt must be after timeAt"));
        }
        (Some("between"), _, None) => {
            return Err(NgsiError::bad("timerel=between needs timeAt and endTimeAt"));
        }
        (Some(r @ ("before" | "after" | "between")), None, _) => {
            return Err(NgsiError::bad(format!("timerel={r} needs timeAt")));
        }
        (Some(r), _, _) => {
            return Err(NgsiError::bad(format!("unknown timerel {r:?}: before, after, between")));
        }
        (None, _, _) => return Err(NgsiError::bad("timeAt goes with timerel")),
    };
    let last_n = match p.get("lastN") {
        None => None,
        Some(n) => Some(n.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            NgsiError::bad(format!("lastN must be a whole number of at least 1, not {n:?}"))
        })?),
    };
    let opts: Vec<&str> = p
        .get("format")
        .or(p.get("options"))
        .map(|o| o.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let values = opts.contains(&"temporalValues");
    let methods: Option<Vec<String>> =
        p.get("aggrMethods").map(|m| m.split(',').map(|x| x.trim().to_owned()).collect());
    let aggregated = opts.contains(&"aggregatedValues") || methods.is_some();
    if values && aggregated {
        return Err(NgsiError::bad("temporalValues and aggregatedValues exclude each other"));
    }
    let aggregate = if aggregated {
        let methods =
            methods.ok_or_else(|| NgsiError::bad("aggregatedValues needs aggrMethods"))?;
        for m in &methods {
            match m.as_str() {
                "totalCount" | "sum" | "avg" | "min" | "max" => {}
                "distinctCount" | "stddev" | "sumsq" => {
                    return Err(NgsiError(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "OperationNotSupported",
                        format!("aggrMethods {m} is not supported: totalCount, sum, avg, min, max"),
                    ));
                }
                other => return Err(NgsiError::bad(format!("unknown aggrMethods {other:?}"))),
            }
        }
        let period = match p.get("aggrPeriodDuration").map(String::as_str) {
            None | Some("PT0S" | "P0D") => None,
            Some(d) => Some(iso_duration(d)?),
        };
        Some((methods, period))
    } else {
        None
    };
    Ok(Temporal { from, to, last_n, values, aggregate })
}

/// `PnW`, `PnDTnHnMnS` (no years or months: their length varies).
fn iso_duration(d: &str) -> NgsiResult<std::time::Duration> {
    let bad = || {
        NgsiError::bad(format!(
            "aggrPeriodDuration {d:?}: an ISO 8601 duration like PT1H, P1D or P1W"
        ))
    };
    let rest = d.strip_prefix('P').ok_or_else(bad)?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut secs: u64 = 0;
    let mut take = |part: &str, units: &[(char, u64)]| -> NgsiResult<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let Some((_, k)) = units.iter().find(|(u, _)| *u == c) else {
                if c == 'Y' || c == 'M' {
                    return Err(NgsiError(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "OperationNotSupported",
                        format!(
                            "aggrPeriodDuration {d:?}: years and months are not supported (their length varies)"
                        ),
                    ));
                }
                return Err(bad());
            };
            let n: u64 = num.parse().map_err(|_| bad())?;
            secs = secs.checked_add(n.checked_mul(*k).ok_or_else(bad)?).ok_or_else(bad)?;
            num.clear();
        }
        if num.is_empty() { Ok(()) } else { Err(bad()) }
    };
    take(date, &[('W', 604_800), ('D', 86_400)])?;
    take(time, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    if secs == 0 || secs > 366 * 86_400 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(secs))
}

fn scaled(v: &Value, src: &Source) -> Json {
    match v {
        Value::F64(x) => json!(x * src.factor),
        Value::I64(x) if src.factor == 1.0 => json!(x),
        Value::I64(x) => json!(*x as f64 * src.factor),
        Value::Bool(b) if src.property == "lamp_on" => json!(if *b { "on" } else { "off" }),
        Value::Bool(b) => json!(b),
        Value::Str(x) => json!(x),
    }
}

/// One attribute's history, written as asked; `true` when it was cut at [`MAX_INSTANCES`].
async fn history(
    s: &AppState,
    src: &Source,
    t: &Temporal,
    form: Form,
    budget: &mut usize,
) -> NgsiResult<(Json, bool, Option<(Timestamp, Timestamp)>)> {
    let store_err = |e: agora_store::Error| {
        tracing::error!(error = %e, "NGSI-LD temporal read failed");
        NgsiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "storage is unavailable".into(),
        )
    };
    let first = s.store.first_times(&[src.series]).into_iter().next().flatten();
    let last = s.store.latest(&[src.series]).into_iter().next().flatten().map(|p| p.0);
    let (Some(first), Some(last)) = (first, last) else {
        return Ok((Json::Array(Vec::new()), false, None));
    };
    let from = t.from.max(first);
    let to = t.to.min(last.saturating_add_nanos(1));
    if from >= to {
        return Ok((Json::Array(Vec::new()), false, None));
    }
    if let Some((methods, period)) = &t.aggregate {
        // Bounded work: the periods answered, and the points read for them (by the index).
        if let Some(p) = period {
            let periods =
                (to.as_nanos() as i128 - from.as_nanos() as i128) / p.as_nanos().max(1) as i128;
            if periods > MAX_PERIODS as i128 {
                return Err(NgsiError(
                    StatusCode::FORBIDDEN,
                    "TooManyResults",
                    format!(
                        "more than {MAX_PERIODS} periods: narrow timerel or lengthen aggrPeriodDuration"
                    ),
                ));
            }
        }
        let points = s.store.raw_points_in(src.series, from, to) as usize;
        *budget = budget.checked_sub(points).ok_or_else(|| {
            NgsiError(
                StatusCode::FORBIDDEN,
                "TooManyResults",
                format!("this request would read more than {MAX_TEMPORAL_POINTS} readings: narrow timerel or ask fewer entities"),
            )
        })?;
        let every =
            agora_query::Every::new(period.unwrap_or(std::time::Duration::from_secs(86_400)), None);
        let averaging =
            agora_query::Averaging::of(&src.property, &src.unit, agora_store::AggFn::Mean);
        let range = agora_query::TimeRange { from, to };
        let mut parts =
            agora_query::summaries(s.store.as_ref(), src.series, range, every, averaging)
                .await
                .map_err(|e| match e {
                    agora_query::Error::Store(e) => store_err(e),
                    other => NgsiError::bad(other.to_string()),
                })?;
        let step = every.nominal().as_nanos() as i64;
        if period.is_none() {
            // The whole range is one period.
            let mut it = parts.drain(..).map(|(_, a)| a);
            if let Some(mut a) = it.next() {
                it.for_each(|x| a.merge(&x));
                parts = vec![(from, a)];
            }
        }
        let mut out = Map::new();
        out.insert("type".into(), "Property".into());
        for m in methods {
            let rows: Vec<Json> = parts
                .iter()
                .filter(|(_, a)| a.count > 0)
                .map(|(start, a)| {
                    let end = if period.is_none() { to } else { start.saturating_add_nanos(step) };
                    let v = match m.as_str() {
                        "totalCount" => json!(a.count),
                        "avg" => json!(averaging.value(a, agora_store::AggFn::Mean) * src.factor),
                        "sum" => json!(averaging.value(a, agora_store::AggFn::Sum) * src.factor),
                        "min" => json!(a.min * src.factor),
                        _ => json!(a.max * src.factor),
                    };
                    json!([v, start.to_rfc3339(), end.to_rfc3339()])
                })
                .collect();
            out.insert(m.clone(), Json::Array(rows));
        }
        return Ok((Json::Object(out), false, None));
    }
    let mut pts = match t.last_n {
        Some(n) => {
            // The newest n, read backwards a day, then four times longer, at a time.
            let mut got: Vec<(Timestamp, Value)> = Vec::new();
            let mut end = to;
            let mut span: i64 = 86_400_000_000_000;
            let want = n.min(MAX_INSTANCES);
            while got.len() < want && end > from {
                let mut start =
                    Timestamp::from_nanos(end.as_nanos().saturating_sub(span)).max(from);
                // A window holds at most a page's worth of points (by the index).
                while span > 60_000_000_000
                    && s.store.raw_points_in(src.series, start, end) > 100_000
                {
                    span /= 4;
                    start = Timestamp::from_nanos(end.as_nanos().saturating_sub(span)).max(from);
                }
                let page = s
                    .store
                    .read(src.series, start, end, MAX_INSTANCES + 100_000)
                    .await
                    .map_err(store_err)?;
                got.extend(page.into_iter().rev());
                end = start;
                span = span.saturating_mul(4);
            }
            got.truncate(want);
            got.reverse();
            got
        }
        None => s.store.read(src.series, from, to, MAX_INSTANCES + 1).await.map_err(store_err)?,
    };
    *budget = budget.saturating_sub(pts.len());
    if *budget == 0 {
        return Err(NgsiError(
            StatusCode::FORBIDDEN,
            "TooManyResults",
            format!(
                "this request would answer more than {MAX_TEMPORAL_POINTS} instances: narrow timerel, use lastN or ask fewer entities"
            ),
        ));
    }
    let cut = t.last_n.is_none() && pts.len() > MAX_INSTANCES;
    pts.truncate(MAX_INSTANCES);
    let covered = match (pts.first(), pts.last()) {
        (Some(a), Some(b)) => Some((a.0, b.0)),
        _ => None,
    };
    let body = if form == Form::KeyValues || t.values {
        json!({"type": "Property", "values": pts.iter().map(|(ts, v)| json!([scaled(v, src), ts.to_rfc3339()])).collect::<Vec<_>>()})
    } else {
        Json::Array(
            pts.iter()
                .map(|(ts, v)| {
                    let mut p = json!({"type": "Property", "value": scaled(v, src), "observedAt": ts.to_rfc3339()});
                    if let Some(u) = src.unit_code {
                        p["unitCode"] = u.into();
                    }
                    p
                })
                .collect(),
        )
    };
    Ok((body, cut, covered))
}

/// The temporal representation of entities.
async fn temporal_answer(
    s: &AppState,
    entities: Vec<Entity>,
    p: &HashMap<String, String>,
    ask: &Ask,
) -> NgsiResult<(Vec<Json>, Option<String>)> {
    let t = temporal_params(p)?;
    let mut budget = MAX_TEMPORAL_POINTS;
    let mut out = Vec::with_capacity(entities.len());
    let mut range: Option<String> = None;
    for e in entities {
        let mut o = Map::new();
        o.insert("id".into(), e.id.clone().into());
        o.insert("type".into(), ask.ctx.compact(&e.type_iri).into());
        let mut names: Vec<(&String, &Source)> = e.sources.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (iri, src) in names {
            // attrs= keeps the listed attributes: `select` already removed the others from
            // `attrs`; the sources follow the same list.
            if p.contains_key("attrs") && !e.attrs.iter().any(|(i, _)| i == iri) {
                continue;
            }
            let (body, cut, covered) = history(s, src, &t, ask.form, &mut budget).await?;
            if cut && let Some((a, b)) = covered {
                range = Some(format!("date-time {}-{}/*", a.to_rfc3339(), b.to_rfc3339()));
            }
            o.insert(ask.ctx.compact(iri), body);
        }
        if ask.ld {
            o.insert("@context".into(), context_value(ask));
        }
        out.push(Json::Object(o));
    }
    Ok((out, range))
}

/// Query NGSI-LD entities' histories
///
/// The temporal API: instances (normalized, or `temporalValues`) or aggregates
/// (`aggregatedValues`), from agora's store; aggregates equal agora's own.
#[utoipa::path(get, path = "/ngsi-ld/v1/temporal/entities", tag = "standards", security((), ("bearer" = [])),
    params(("type" = Option<String>, Query, description = "Entity types, `A,B` (expanded with the request's @context)"),
        ("id" = Option<String>, Query, description = "Entity ids, comma-separated"),
        ("idPattern" = Option<String>, Query, description = "A regular expression on ids (literals, `.`, classes, `*`, `+`, `?`, `^`, `$`)"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("q" = Option<String>, Query, description = "The NGSI-LD query language, e.g. `pm10>40;LAeq<70`"),
        ("georel" = Option<String>, Query, description = "`near;maxDistance==<m>`, `within`, `contains`, `intersects`, `equals`, `disjoint`"),
        ("geometry" = Option<String>, Query, description = "GeoJSON geometry type of the geo-query"),
        ("coordinates" = Option<String>, Query, description = "GeoJSON coordinates of the geo-query"),
        ("limit" = Option<String>, Query, description = "Page size (20 by default, at most 1,000)"),
        ("offset" = Option<String>, Query, description = "Entities skipped"),
        ("options" = Option<String>, Query, description = "`keyValues`, `concise`, `normalized`, and for the temporal API `temporalValues` or `aggregatedValues`"),("timerel" = Option<String>, Query, description = "`before`, `after` or `between`"),
        ("timeAt" = Option<String>, Query, description = "Date-time"),
        ("endTimeAt" = Option<String>, Query, description = "Date-time (with `between`)"),
        ("lastN" = Option<String>, Query, description = "The last N instances"),
        ("aggrMethods" = Option<String>, Query, description = "`totalCount,sum,avg,min,max`"),
        ("aggrPeriodDuration" = Option<String>, Query, description = "ISO 8601 duration, e.g. `PT1H`"),),
    responses((status = 200, description = "The entities' histories", body = Object),
        (status = 206, description = "Cut at 10,000 instances an attribute (`Content-Range`)", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn temporal_entities(
    Scoped(s): Scoped,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let base = crate::open_data::base_url(&s, &headers);
        let p = params_of(raw.as_deref().unwrap_or(""))?;
        let ask = ask(&headers, &p, &base)?;
        let limit = match p.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| NgsiError::bad(format!("limit must be a whole number, not {l:?}")))?,
        };
        if limit > 100 {
            return Err(NgsiError(
                StatusCode::FORBIDDEN,
                "TooManyResults",
                format!("limit {limit} is above 100 entities for the temporal API"),
            ));
        }
        let offset: usize = p.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let all =
            select(build(s.catalog.as_ref(), s.store.as_ref(), &Want::of(&p, &ask.ctx)), &p, &ask)?;
        let page: Vec<Entity> = all.into_iter().skip(offset).take(limit).collect();
        let (body, range) = temporal_answer(&s, page, &p, &ask).await?;
        Ok::<_, NgsiError>(temporal_response(Json::Array(body), range, &ask))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Query NGSI-LD entities' histories (with a trailing slash)
#[utoipa::path(get, path = "/ngsi-ld/v1/temporal/entities/", tag = "standards", security((), ("bearer" = [])),
    params(("type" = Option<String>, Query, description = "Entity types, `A,B` (expanded with the request's @context)"),
        ("id" = Option<String>, Query, description = "Entity ids, comma-separated"),
        ("idPattern" = Option<String>, Query, description = "A regular expression on ids (literals, `.`, classes, `*`, `+`, `?`, `^`, `$`)"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("q" = Option<String>, Query, description = "The NGSI-LD query language, e.g. `pm10>40;LAeq<70`"),
        ("georel" = Option<String>, Query, description = "`near;maxDistance==<m>`, `within`, `contains`, `intersects`, `equals`, `disjoint`"),
        ("geometry" = Option<String>, Query, description = "GeoJSON geometry type of the geo-query"),
        ("coordinates" = Option<String>, Query, description = "GeoJSON coordinates of the geo-query"),
        ("limit" = Option<String>, Query, description = "Page size (20 by default, at most 1,000)"),
        ("offset" = Option<String>, Query, description = "Entities skipped"),
        ("options" = Option<String>, Query, description = "`keyValues`, `concise`, `normalized`, and for the temporal API `temporalValues` or `aggregatedValues`"),("timerel" = Option<String>, Query, description = "`before`, `after` or `between`"),
        ("timeAt" = Option<String>, Query, description = "Date-time"),
        ("endTimeAt" = Option<String>, Query, description = "Date-time (with `between`)"),
        ("lastN" = Option<String>, Query, description = "The last N instances"),
        ("aggrMethods" = Option<String>, Query, description = "`totalCount,sum,avg,min,max`"),
        ("aggrPeriodDuration" = Option<String>, Query, description = "ISO 8601 duration, e.g. `PT1H`"),),
    responses((status = 200, description = "The entities' histories", body = Object),
        (status = 206, description = "Cut at 10,000 instances an attribute (`Content-Range`)", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn temporal_entities_slash(
    scoped: Scoped,
    raw: RawQuery,
    headers: HeaderMap,
) -> Response {
    temporal_entities(scoped, raw, headers).await
}

/// Retrieve an NGSI-LD entity's history
#[utoipa::path(get, path = "/ngsi-ld/v1/temporal/entities/{id}", tag = "standards", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The entity's id"),
        ("attrs" = Option<String>, Query, description = "Attributes, comma-separated"),
        ("timerel" = Option<String>, Query, description = "`before`, `after` or `between`"),
        ("timeAt" = Option<String>, Query, description = "Date-time"),
        ("endTimeAt" = Option<String>, Query, description = "Date-time (with `between`)"),
        ("lastN" = Option<String>, Query, description = "The last N instances"),
        ("aggrMethods" = Option<String>, Query, description = "`totalCount,sum,avg,min,max`"),
        ("aggrPeriodDuration" = Option<String>, Query, description = "ISO 8601 duration, e.g. `PT1H`"),
        ("options" = Option<String>, Query, description = "`temporalValues` or `aggregatedValues`")),
    responses((status = 200, description = "The entity's history", body = Object),
        (status = 206, description = "Cut at 10,000 instances an attribute (`Content-Range`)", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "ProblemDetails: TooManyResults, or the caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable (an unknown @context)", body = Object),
    ))]
pub(crate) async fn temporal_entity(
    Scoped(s): Scoped,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let base = crate::open_data::base_url(&s, &headers);
        let mut p = params_of(raw.as_deref().unwrap_or(""))?;
        let ask = ask(&headers, &p, &base)?;
        p.insert("id".into(), id.clone());
        let found =
            select(build(s.catalog.as_ref(), s.store.as_ref(), &Want::of(&p, &ask.ctx)), &p, &ask)?;
        if found.is_empty() {
            return Err(NgsiError(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("no entity {id}"),
            ));
        }
        let (mut body, range) = temporal_answer(&s, found, &p, &ask).await?;
        Ok::<_, NgsiError>(temporal_response(body.remove(0), range, &ask))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn temporal_response(body: Json, range: Option<String>, ask: &Ask) -> Response {
    match range {
        Some(r) => {
            respond(StatusCode::PARTIAL_CONTENT, body, ask, vec![(header::CONTENT_RANGE, r)])
        }
        None => respond(StatusCode::OK, body, ask, Vec::new()),
    }
}

/// The device kind an entity type is written as (the inverse of [`type_of`]).
fn kind_of(ty: &str) -> Option<(&'static str, &'static str)> {
    Some(match ty {
        "AirQualityObserved" => ("air_quality", "Environment"),
        "NoiseLevelObserved" => ("noise", "Environment"),
        "WeatherObserved" => ("weather", "Weather"),
        "Streetlight" => ("streetlight", "Streetlighting"),
        "WasteContainer" => ("waste_container", "WasteManagement"),
        "CrowdFlowObserved" => ("pedestrian_counter", "Transportation"),
        "GreenspaceRecord" => ("soil_moisture", "ParksAndGardens"),
        _ => return None,
    })
}

/// agora's property and factor for an attribute's IRI in a domain: the model's names of
/// agora's properties, then agora's own names (under the core's default vocabulary).
fn property_of(
    domain: &str,
    iri: &str,
    registry: &[agora_model::PropertyDef],
) -> Option<(String, f64)> {
    if iri == iri_in(domain, "powerState") {
        return Some(("lamp_on".into(), 1.0));
    }
    registry.iter().find_map(|p| {
        let (name, _, k) = attribute_of(p.name.as_str());
        (iri_in(domain, name) == iri || iri_in(domain, p.name.as_str()) == iri)
            .then(|| (p.name.to_string(), k))
    })
}

/// An entity a client sends, as records for the pipeline: its device, kind, and the readings.
fn records_of(
    body: &Json,
    ctx: &Context,
    registry: &[agora_model::PropertyDef],
    now: Timestamp,
    line: u32,
) -> NgsiResult<(String, agora_ingest::Record<'static>)> {
    let o = body.as_object().ok_or_else(|| NgsiError::bad("an entity is a JSON object"))?;
    let id = o
        .get("id")
        .and_then(Json::as_str)
        .ok_or_else(|| NgsiError::bad("an entity needs an id"))?;
    let ty = o
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| NgsiError::bad(format!("entity {id} needs a type")))?;
    let type_iri = ctx.expand(ty);
    let (short, (kind, domain)) = DOMAINS
        .iter()
        .find_map(|(d, _)| {
            let name = DOMAIN_CTX.get(d)?.compact(&type_iri);
            kind_of(&name).filter(|(_, dom)| dom == d).map(|k| (name, k))
        })
        .ok_or_else(|| {
            NgsiError::bad(format!(
                "entity type {ty} is not one agora stores: AirQualityObserved, NoiseLevelObserved, WeatherObserved, Streetlight, WasteContainer, CrowdFlowObserved, GreenspaceRecord (with their model's context)"
            ))
        })?;
    let device =
        id.strip_prefix(&format!("urn:ngsi-ld:{short}:")).filter(|d| !d.is_empty()).ok_or_else(
            || NgsiError::bad(format!("entity id {id} must be urn:ngsi-ld:{short}:<device>")),
        )?;
    let mut fields = Vec::new();
    let mut time: Option<Timestamp> = None;
    for (k, v) in o {
        if matches!(
            k.as_str(),
            "id" | "type"
                | "@context"
                | "location"
                | "dateObserved"
                | "name"
                | "refDevice"
                | "refPointOfInterest"
        ) {
            continue;
        }
        let iri = ctx.expand(k);
        let Some((property, factor)) = property_of(domain, &iri, registry) else {
            return Err(NgsiError::bad(format!(
                "attribute {k} ({iri}) is not a property agora knows for {short}"
            )));
        };
        let (value, at) = match v {
            Json::Object(a) if a.contains_key("value") => (
                a.get("value").cloned().unwrap_or(Json::Null),
                a.get("observedAt").and_then(Json::as_str),
            ),
            other => (other.clone(), None),
        };
        if let Some(at) = at {
            let t =
                agora_interop::sta::filter::parse_time(at).map(Timestamp::from_nanos).ok_or_else(
                    || NgsiError::bad(format!("{k}.observedAt {at:?} is not a date-time")),
                )?;
            if time.is_some_and(|x| x != t) {
                return Err(NgsiError::bad(
                    "every attribute of one entity must have the same observedAt",
                ));
            }
            time = Some(t);
        }
        let value = match (&value, property.as_str()) {
            (Json::String(s), "lamp_on") => Value::Bool(s == "on"),
            (Json::Number(n), _) => Value::F64(n.as_f64().unwrap_or(f64::NAN) / factor),
            (Json::Bool(b), _) => Value::Bool(*b),
            (Json::String(s), _) => Value::Str(s.clone()),
            _ => {
                return Err(NgsiError::bad(format!(
                    "attribute {k}: a number, a boolean or a string"
                )));
            }
        };
        fields.push(agora_ingest::Field { name: property.into(), value, unit: None });
    }
    if fields.is_empty() {
        return Err(NgsiError::bad(format!("entity {id} has no attribute agora stores")));
    }
    let record = agora_ingest::Record {
        line,
        device: device.to_owned().into(),
        kind: Some(kind.into()),
        site: None,
        commune: None,
        time: Some(time.unwrap_or(now)),
        fields,
    };
    Ok((id.to_owned(), record))
}

/// The body of a provision request, with its context: `application/json` (context in the
/// `Link` header, none in the body) or `application/ld+json` (in the body, no `Link`).
fn provision_body(headers: &HeaderMap, body: &[u8], base: &str) -> NgsiResult<(Json, Ask)> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let json: Json = serde_json::from_slice(body).map_err(|e| {
        NgsiError(StatusCode::BAD_REQUEST, "InvalidRequest", format!("the body is not JSON: {e}"))
    })?;
    let mut ask = ask(headers, &HashMap::new(), base)?;
    if ct.starts_with("application/ld+json") {
        if headers.contains_key(header::LINK) {
            return Err(NgsiError::bad(
                "application/ld+json carries its @context in the body, not in a Link header",
            ));
        }
        let items: Vec<&Json> = match &json {
            Json::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let Some(ctx) = items.first().and_then(|e| e.get("@context")) else {
            return Err(NgsiError::bad("an application/ld+json body needs its @context"));
        };
        let urls: Vec<String> = match ctx {
            Json::String(s) => vec![s.clone()],
            Json::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            _ => return Err(NgsiError::bad("agora reads @context as URLs of contexts it serves")),
        };
        let c = context_of(&urls)?;
        ask.ctx = c;
        ask.ctx_urls = urls;
    } else if ct.starts_with("application/json") || ct.starts_with("application/merge-patch+json") {
        let has_ctx = match &json {
            Json::Array(a) => a.iter().any(|e| e.get("@context").is_some()),
            other => other.get("@context").is_some(),
        };
        if has_ctx {
            return Err(NgsiError::bad(
                "application/json carries its context in a Link header, not an @context",
            ));
        }
    } else {
        return Err(NgsiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidRequest",
            "send application/json or application/ld+json".into(),
        ));
    }
    Ok((json, ask))
}

/// Contexts already made, by their URLs (at most [`CONTEXTS_KEPT`]: only known URLs make one).
static CONTEXTS: LazyLock<parking_lot::Mutex<HashMap<Vec<String>, Arc<Context>>>> =
    LazyLock::new(Default::default);
const CONTEXTS_KEPT: usize = 64;

/// The context made of these URLs (contexts agora serves), the core last; made once.
fn context_of(urls: &[String]) -> NgsiResult<Arc<Context>> {
    if let Some(c) = CONTEXTS.lock().get(urls) {
        return Ok(c.clone());
    }
    let c = Arc::new(make_context(urls)?);
    let mut kept = CONTEXTS.lock();
    if kept.len() < CONTEXTS_KEPT {
        kept.insert(urls.to_vec(), c.clone());
    }
    Ok(c)
}

fn make_context(urls: &[String]) -> NgsiResult<Context> {
    let mut c = CORE_CTX.clone();
    for u in urls {
        match known_context(u) {
            Some((_, text)) => c.add(parse_doc(text).get("@context").unwrap_or(&Json::Null)),
            None if u.ends_with("/ngsi-ld/v1/jsonldContexts/agora.jsonld") => {
                for d in AGORA_ORDER {
                    if let Some((_, text)) = DOMAINS.iter().find(|(x, _)| *x == d) {
                        c.add(parse_doc(text).get("@context").unwrap_or(&Json::Null));
                    }
                }
            }
            None => {
                return Err(NgsiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "LdContextNotAvailable",
                    format!("agora fetches no remote context and does not know {u}"),
                ));
            }
        }
    }
    c.add(parse_doc(CORE).get("@context").unwrap_or(&Json::Null));
    Ok(c)
}

/// Run records through ingestion; the refusals by record line.
async fn ingest(
    s: &AppState,
    token: &agora_store::catalog::TokenInfo,
    records: Vec<agora_ingest::Record<'static>>,
) -> NgsiResult<HashMap<u32, String>> {
    // In batches no larger than the refusals a report lists, so that every refusal is named.
    let mut out = HashMap::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let batch: Vec<_> = records.by_ref().take(agora_ingest::LISTED_REFUSALS).collect();
        out.extend(ingest_batch(s, token, batch).await?);
    }
    Ok(out)
}

async fn ingest_batch(
    s: &AppState,
    token: &agora_store::catalog::TokenInfo,
    records: Vec<agora_ingest::Record<'static>>,
) -> NgsiResult<HashMap<u32, String>> {
    let src =
        agora_ingest::Source { name: "http /ngsi-ld/v1", token: Some(token), ..Default::default() };
    let report = s
        .pipeline
        .ingest(&src, agora_ingest::Decoded { records, errors: Vec::new() })
        .await
        .map_err(|e| {
            NgsiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "InternalError",
                format!("storage is unavailable: {e}"),
            )
        })?;
    Ok(report.rejected.into_iter().map(|e| (e.line, e.reason)).collect())
}

fn token_of(who: &crate::policy::Principal) -> NgsiResult<agora_store::catalog::TokenInfo> {
    crate::auth::ingest_token(who)
        .cloned()
        .map_err(|e| NgsiError(StatusCode::FORBIDDEN, "BadRequestData", e.to_string()))
}

/// Create an NGSI-LD entity
///
/// Its readings go through ingestion (an ingest token; a new entity registers its device when
/// the deployment registers devices).
#[utoipa::path(post, path = "/ngsi-ld/v1/entities", tag = "standards", security(("bearer" = [])),
    request_body(content = Object, description = "An entity of a Smart Data Model agora stores"),
    responses((status = 201, description = "Created (`Location`)"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not write", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable, or storage unavailable", body = Object),
    ))]
pub(crate) async fn create_entity(
    Scoped(s): Scoped,
    crate::policy::Who(who): crate::policy::Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let token = token_of(&who)?;
        let base = crate::open_data::base_url(&s, &headers);
        let (json, ask) = provision_body(&headers, &body, &base)?;
        let (id, record) = records_of(&json, &ask.ctx, &s.pipeline.properties(), s.clock.now(), 1)?;
        if s.catalog.device(&record.device).is_some() {
            return Err(NgsiError(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("entity {id} exists: PATCH its attrs or upsert"),
            ));
        }
        if let Some(reason) = ingest(&s, &token, vec![record]).await?.remove(&1) {
            return Err(NgsiError::bad(reason));
        }
        Ok::<_, NgsiError>(
            (StatusCode::CREATED, [(header::LOCATION, format!("/ngsi-ld/v1/entities/{id}"))])
                .into_response(),
        )
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Create an NGSI-LD entity (with a trailing slash)
#[utoipa::path(post, path = "/ngsi-ld/v1/entities/", tag = "standards", security(("bearer" = [])),
    request_body(content = Object, description = "An entity of a Smart Data Model agora stores"),
    responses((status = 201, description = "Created (`Location`)"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not write", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable, or storage unavailable", body = Object),
    ))]
pub(crate) async fn create_entity_slash(
    scoped: Scoped,
    who: crate::policy::Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    create_entity(scoped, who, headers, body).await
}

/// Update an NGSI-LD entity's attributes
///
/// New readings of an existing entity, through ingestion.
#[utoipa::path(patch, path = "/ngsi-ld/v1/entities/{id}/attrs", tag = "standards", security(("bearer" = [])),
    params(("id" = String, Path, description = "The entity's id")),
    request_body(content = Object, description = "Attributes, normalized or concise"),
    responses((status = 204, description = "Stored"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not write", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable, or storage unavailable", body = Object),
    ))]
pub(crate) async fn update_attrs(
    Scoped(s): Scoped,
    crate::policy::Who(who): crate::policy::Who,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let token = token_of(&who)?;
        let base = crate::open_data::base_url(&s, &headers);
        let (mut json, ask) = provision_body(&headers, &body, &base)?;
        let by_id = HashMap::from([("id".to_owned(), id.clone())]);
        let found = select(
            build(s.catalog.as_ref(), s.store.as_ref(), &Want::of(&by_id, &ask.ctx)),
            &by_id,
            &ask,
        )?;
        let Some(e) = found.first() else {
            return Err(NgsiError(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("no entity {id}"),
            ));
        };
        let Some(o) = json.as_object_mut() else {
            return Err(NgsiError::bad("the attributes are a JSON object"));
        };
        o.insert("id".into(), id.clone().into());
        o.insert("type".into(), e.type_iri.clone().into());
        let (_, record) = records_of(&json, &ask.ctx, &s.pipeline.properties(), s.clock.now(), 1)?;
        if let Some(reason) = ingest(&s, &token, vec![record]).await?.remove(&1) {
            return Err(NgsiError::bad(reason));
        }
        Ok::<_, NgsiError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Upsert NGSI-LD entities (with a trailing slash)
#[utoipa::path(post, path = "/ngsi-ld/v1/entityOperations/upsert/", tag = "standards", security(("bearer" = [])),
    request_body(content = Vec<Object>, description = "Entities of Smart Data Models agora stores"),
    responses((status = 201, description = "The ids created", body = Vec<String>),
        (status = 204, description = "All existed; stored"),
        (status = 207, description = "`success` and `errors`", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not write", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable, or storage unavailable", body = Object),
    ))]
pub(crate) async fn upsert_slash(
    scoped: Scoped,
    who: crate::policy::Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    upsert(scoped, who, headers, body).await
}

/// Upsert NGSI-LD entities
///
/// Many entities' readings at once, through ingestion.
#[utoipa::path(post, path = "/ngsi-ld/v1/entityOperations/upsert", tag = "standards", security(("bearer" = [])),
    request_body(content = Vec<Object>, description = "Entities of Smart Data Models agora stores"),
    responses((status = 201, description = "The ids created", body = Vec<String>),
        (status = 204, description = "All existed; stored"),
        (status = 207, description = "`success` and `errors`", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not write", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 406, description = "ProblemDetails: an Accept agora does not answer", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 413, description = "Too large", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 429, description = "Too many requests", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable, or storage unavailable", body = Object),
    ))]
pub(crate) async fn upsert(
    Scoped(s): Scoped,
    crate::policy::Who(who): crate::policy::Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let token = token_of(&who)?;
        let base = crate::open_data::base_url(&s, &headers);
        let (json, ask) = provision_body(&headers, &body, &base)?;
        let Json::Array(items) = &json else {
            return Err(NgsiError::bad("upsert takes an array of entities"));
        };
        if items.is_empty() {
            return Err(NgsiError::bad("upsert takes at least one entity"));
        }
        if items.len() > 10_000 {
            return Err(NgsiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BadRequestData",
                "at most 10,000 entities per upsert".into(),
            ));
        }
        let registry = s.pipeline.properties();
        let now = s.clock.now();
        let mut errors = Vec::new();
        let mut pending: Vec<(String, bool)> = Vec::new();
        let mut records = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match records_of(item, &ask.ctx, &registry, now, i as u32 + 1) {
                Ok((id, r)) => {
                    let existed = s.catalog.device(&r.device).is_some();
                    pending.push((id, existed));
                    records.push(r);
                }
                Err(NgsiError(_, kind, detail)) => {
                    let id = item.get("id").and_then(Json::as_str).unwrap_or("").to_owned();
                    pending.push((id.clone(), true));
                    errors.push(json!({"entityId": id, "error": {"type": format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"), "title": kind, "detail": detail}}));
                }
            }
        }
        let lines: Vec<u32> = records.iter().map(|r| r.line).collect();
        let refused = ingest(&s, &token, records).await?;
        let mut success = Vec::new();
        let mut created = Vec::new();
        for line in lines {
            let (id, existed) = &pending[line as usize - 1];
            match refused.get(&line) {
                Some(reason) => errors.push(json!({"entityId": id, "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "BadRequestData", "detail": reason}})),
                None => {
                    success.push(id.clone());
                    if !existed {
                        created.push(id.clone());
                    }
                }
            }
        }
        let r = if success.is_empty() {
            // Nothing stored: the first refusal, as a plain error.
            let detail = errors[0]["error"]["detail"].as_str().unwrap_or("refused").to_owned();
            return Err(NgsiError::bad(detail));
        } else if !errors.is_empty() {
            (StatusCode::MULTI_STATUS, axum::Json(json!({"success": success, "errors": errors})))
                .into_response()
        } else if created.is_empty() {
            StatusCode::NO_CONTENT.into_response()
        } else {
            (StatusCode::CREATED, axum::Json(json!(created))).into_response()
        };
        Ok::<_, NgsiError>(r)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    context_file,
    entities,
    entities_slash,
    entity,
    temporal_entities,
    temporal_entities_slash,
    temporal_entity,
    create_entity,
    create_entity_slash,
    update_attrs,
    upsert,
    upsert_slash,
    subscriptions::create,
    subscriptions::create_slash,
    subscriptions::list,
    subscriptions::one,
    subscriptions::update,
    subscriptions::delete
))]
pub(crate) struct Doc;
