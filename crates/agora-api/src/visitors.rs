//! Visitors: points of interest (heritage, museums, fountains, viewpoints, shade, toilets,
//! drinking water) described in French, English and any other language, imported from JSON,
//! CSV or GeoJSON and edited by operators; discovery tours through them, walked on the commune's
//! street network when it was imported (straight lines otherwise), with a QR code made here that
//! opens the tour on a phone; and the cool route of a hot afternoon between two points, weighed
//! by the heat measured by the sensors (interpolated to the streets), shade and fountains,
//! compared with the shortest.

use std::collections::BTreeMap;

use agora_model::Timestamp;
use agora_proximity::routes::{self, CoolSettings, Walk};
use agora_store::visitors::{StoredPoi, StoredTour};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, Conflict, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::{Scoped, Who};

/// The kinds of points of interest.
pub const KINDS: [&str; 8] =
    ["heritage", "museum", "fountain", "viewpoint", "shade", "toilets", "drinking_water", "other"];

/// Kinds that cool a walker down (a cool route passes by them).
const COOL_KINDS: [&str; 3] = ["fountain", "shade", "drinking_water"];

/// Each tour's route, with what it was computed from (its commune, stops and the streets'
/// import time).
type RouteCache = std::collections::HashMap<String, (String, Walk)>;
static TOUR_ROUTES: std::sync::LazyLock<parking_lot::Mutex<RouteCache>> =
    std::sync::LazyLock::new(Default::default);

/// QR codes drawn at once (each is small; a flood waits its turn).
static QR_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Routes computed at once (one core's worth: a flood of cool routes waits its turn).
static ROUTE_TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The farthest apart the two ends of a cool route may be, metres (a walk, not a trip).
const MAX_ROUTE_M: f64 = 5_000.0;

/// Walking speed of tours and routes, km/h (a visitor's, slower than a commuter's).
const SPEED_KMH: f64 = 4.0;

/// Texts by language (`fr`, `en`, …).
pub type Texts = BTreeMap<String, String>;

/// A point of interest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = PointOfInterest)]
pub struct Poi {
    /// Identifier: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// `heritage`, `museum`, `fountain`, `viewpoint`, `shade`, `toilets`, `drinking_water` or
    /// `other`.
    pub kind: String,
    /// Latitude (WGS 84).
    pub lat: f64,
    /// Longitude (WGS 84).
    pub lon: f64,
    /// Its name by language: `fr` and `en` at least.
    #[schema(value_type = Object)]
    pub name: Texts,
    /// What to know about it, by language.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub description: Texts,
    /// Opening hours, as people write them (`tous les jours 9 h–18 h`) or in OpenStreetMap's
    /// syntax.
    #[serde(default)]
    pub opening_hours: Option<String>,
    /// Accessibility notes by language (step-free access, toilets for wheelchairs…).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub accessibility: Texts,
    /// The commune it is in (found from its position).
    #[serde(default, skip_deserializing)]
    pub commune: String,
    /// Who last changed it (kept, never published: it names a person).
    #[serde(default, skip_serializing, skip_deserializing)]
    pub updated_by: String,
    /// When.
    #[serde(default, skip_deserializing)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// The fields a point is written with.
const POI_FIELDS: [&str; 8] =
    ["id", "kind", "lat", "lon", "name", "description", "opening_hours", "accessibility"];

/// The fields a tour is written with.
const TOUR_FIELDS: [&str; 5] = ["id", "title", "description", "stops", "minutes_per_stop"];

/// A body read as `T`, refusing fields it does not have (answers carry more fields than a body
/// may: the commune, who changed it, when).
fn strict<T: serde::de::DeserializeOwned>(v: Value, fields: &[&str], what: &str) -> ApiResult<T> {
    let o = v.as_object().ok_or_else(|| bad(format!("a {what} is a JSON object")))?;
    if let Some(k) = o.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(bad(format!("unknown field {k:?} of a {what}: {}", fields.join(", "))));
    }
    serde_json::from_value(v).map_err(|e| bad(format!("{what}: {e}")))
}

fn check_id(id: &str, what: &str) -> ApiResult<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(bad(format!("{what} id {id:?}: 1 to 64 lower-case letters, digits, - or _")));
    }
    Ok(())
}

fn check_texts(t: &Texts, what: &str, max: usize, needed: &[&str]) -> ApiResult<()> {
    for l in needed {
        if t.get(*l).is_none_or(|x| x.trim().is_empty()) {
            return Err(bad(format!("{what} in {l:?} is needed")));
        }
    }
    if t.len() > 30 {
        return Err(bad(format!("{what}: at most 30 languages")));
    }
    for (lang, text) in t {
        if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(bad(format!("{what}: {lang:?} is not a language code (fr, en, de…)")));
        }
        if text.chars().count() > max {
            return Err(bad(format!("{what} in {lang}: at most {max} characters")));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad(format!("{what} in {lang}: control characters")));
        }
    }
    Ok(())
}

impl Poi {
    /// Check what the point says, alone.
    fn check(&self) -> ApiResult<()> {
        check_id(&self.id, "point")?;
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(bad(format!("kind {:?}: one of {}", self.kind, KINDS.join(", "))));
        }
        if !((-90.0..=90.0).contains(&self.lat) && (-180.0..=180.0).contains(&self.lon)) {
            return Err(bad(format!("bad position {}, {}", self.lat, self.lon)));
        }
        check_texts(&self.name, "name", 120, &["fr", "en"])?;
        check_texts(&self.description, "description", 2000, &[])?;
        check_texts(&self.accessibility, "accessibility", 500, &[])?;
        if self.opening_hours.as_ref().is_some_and(|h| h.chars().count() > 200) {
            return Err(bad("opening hours: at most 200 characters"));
        }
        Ok(())
    }

    fn stored(&self, by: &str, at: Timestamp) -> StoredPoi {
        StoredPoi {
            id: self.id.clone(),
            commune: self.commune.clone(),
            kind: self.kind.clone(),
            lat: self.lat,
            lon: self.lon,
            body: json!({"name": self.name, "description": self.description,
                         "opening_hours": self.opening_hours, "accessibility": self.accessibility}),
            updated_by: by.into(),
            updated_at: at,
        }
    }

    fn of(p: StoredPoi) -> Poi {
        let texts = |k: &str| -> Texts {
            serde_json::from_value(p.body.get(k).cloned().unwrap_or(Value::Null))
                .unwrap_or_default()
        };
        Poi {
            name: texts("name"),
            description: texts("description"),
            accessibility: texts("accessibility"),
            opening_hours: p.body.get("opening_hours").and_then(Value::as_str).map(str::to_owned),
            id: p.id,
            kind: p.kind,
            lat: p.lat,
            lon: p.lon,
            commune: p.commune,
            updated_by: p.updated_by,
            updated_at: Some(p.updated_at),
        }
    }
}

/// Refuse to replace a point of a commune the caller may not change (ids are the Métropole's:
/// a point of another commune is not taken over by moving it).
fn may_replace(who: &crate::policy::Principal, existing: Option<&Poi>) -> ApiResult<()> {
    if let Some(p) = existing {
        let c = agora_model::InseeCode::parse(&p.commune).ok();
        who.check(agora_model::permissions::Action::Modify, c.as_ref(), None)
            .map_err(|_| ApiError::Conflict(format!("point {:?} is another commune's", p.id)))?;
    }
    Ok(())
}

async fn all_pois(s: &AppState) -> ApiResult<Vec<Poi>> {
    Ok(s.visitors.pois().await?.into_iter().map(Poi::of).collect())
}

/// Which points.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PoiQuery {
    /// One commune's.
    pub commune: Option<String>,
    /// Kinds, comma-separated.
    pub kind: Option<String>,
    /// Near this position (`lat,lon`), nearest first, with the distance.
    pub near: Option<String>,
    /// Within this many metres of `near` (default 1,000, at most 10,000).
    pub radius: Option<f64>,
    /// `json` (default) or `geojson`.
    pub format: Option<String>,
}

fn parse_point(s: &str, what: &str) -> ApiResult<(f64, f64)> {
    let (a, b) = s.split_once(',').ok_or_else(|| bad(format!("{what} {s:?}: lat,lon")))?;
    let lat: f64 = a.trim().parse().map_err(|_| bad(format!("{what} {s:?}: lat,lon")))?;
    let lon: f64 = b.trim().parse().map_err(|_| bad(format!("{what} {s:?}: lat,lon")))?;
    if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
        return Err(bad(format!("{what} {s:?}: not a position")));
    }
    Ok((lat, lon))
}

/// A point with its distance from where it was asked.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PointOfInterestNear)]
pub struct Near {
    /// The point.
    #[serde(flatten)]
    pub poi: Poi,
    /// Metres in a straight line from `near`.
    pub distance_m: Option<f64>,
}

/// `GET /api/v1/visitors/pois`: points of interest, by commune, kind or nearness.
#[utoipa::path(get, path = "/api/v1/visitors/pois", tag = "visitors", params(PoiQuery),
    responses((status = 200, body = [Near]), (status = 400, response = BadRequest), Reads))]
pub(crate) async fn pois(Scoped(s): Scoped, Query(q): Query<PoiQuery>) -> ApiResult<Response> {
    let near = q.near.as_deref().map(|n| parse_point(n, "near")).transpose()?;
    let radius = q.radius.unwrap_or(1000.0);
    if !(1.0..=10_000.0).contains(&radius) {
        return Err(bad("radius: 1 to 10,000 m"));
    }
    let kinds: Vec<&str> = q.kind.as_deref().map(|k| k.split(',').collect()).unwrap_or_default();
    if let Some(k) = kinds.iter().find(|k| !KINDS.contains(k)) {
        return Err(bad(format!("kind {k:?}: one of {}", KINDS.join(", "))));
    }
    let mut out: Vec<Near> = all_pois(&s)
        .await?
        .into_iter()
        .filter(|p| q.commune.as_ref().is_none_or(|c| *c == p.commune))
        .filter(|p| kinds.is_empty() || kinds.contains(&p.kind.as_str()))
        .map(|p| {
            let d = near.map(|(lat, lon)| routes::distance_m((lon, lat), (p.lon, p.lat)));
            Near { poi: p, distance_m: d.map(|x| x.round()) }
        })
        .filter(|n| n.distance_m.is_none_or(|d| d <= radius))
        .collect();
    if near.is_some() {
        out.sort_by(|a, b| a.distance_m.unwrap_or(0.0).total_cmp(&b.distance_m.unwrap_or(0.0)));
    }
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(out).into_response()),
        "geojson" => {
            let features: Vec<Value> = out
                .iter()
                .map(|n| {
                    json!({"type": "Feature", "id": n.poi.id,
                       "geometry": {"type": "Point", "coordinates": [n.poi.lon, n.poi.lat]},
                       "properties": serde_json::to_value(n).unwrap_or_default()})
                })
                .collect();
            Ok((
                [(header::CONTENT_TYPE, "application/geo+json")],
                json!({"type": "FeatureCollection", "features": features}).to_string(),
            )
                .into_response())
        }
        f => Err(bad(format!("format {f:?}: json or geojson"))),
    }
}

/// What an import kept and refused.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PoiImport)]
pub struct Imported {
    /// Points kept (new or replaced).
    pub imported: usize,
    /// What was refused: the record (line for CSV, from 2; feature for GeoJSON, from 1; item
    /// for JSON, from 1) and why.
    pub refused: Vec<Refused>,
}

/// A record refused.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PoiRefused)]
pub struct Refused {
    /// Where it is.
    pub record: usize,
    /// Why.
    pub reason: String,
}

/// How an import is written.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `json` (an array of points, the default), `csv` (`id,kind,lat,lon,name_fr,name_en`, and
    /// `description_xx`, `name_xx`, `accessibility_xx`, `opening_hours`) or `geojson` (points;
    /// the same properties, or `name`/`description`/`accessibility` as objects).
    pub format: Option<String>,
}

/// The texts of a flat record: `name_fr`, `name_en`, … into `{fr, en}`.
fn flat_texts(fields: &[(String, String)], prefix: &str) -> Texts {
    fields
        .iter()
        .filter_map(|(k, v)| {
            let lang = k.strip_prefix(prefix)?.strip_prefix('_')?;
            (!v.trim().is_empty()).then(|| (lang.to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// A point from a flat record (CSV columns, GeoJSON properties as text).
fn flat_poi(fields: &[(String, String)], position: Option<(f64, f64)>) -> ApiResult<Poi> {
    let get = |k: &str| fields.iter().find(|(x, _)| x == k).map(|(_, v)| v.trim().to_owned());
    let num = |k: &str| -> ApiResult<f64> {
        let v = get(k).ok_or_else(|| bad(format!("no {k}")))?;
        v.replace(',', ".").parse().map_err(|_| bad(format!("{k} {v:?} is not a number")))
    };
    let (lat, lon) = match position {
        Some(p) => p,
        None => (num("lat")?, num("lon")?),
    };
    for (k, _) in fields {
        let known = ["id", "kind", "lat", "lon", "opening_hours"].contains(&k.as_str())
            || ["name_", "description_", "accessibility_"].iter().any(|p| k.starts_with(p));
        if !known {
            return Err(bad(format!("unknown column {k:?}")));
        }
    }
    Ok(Poi {
        id: get("id").ok_or_else(|| bad("no id"))?,
        kind: get("kind").ok_or_else(|| bad("no kind"))?,
        lat,
        lon,
        name: flat_texts(fields, "name"),
        description: flat_texts(fields, "description"),
        opening_hours: get("opening_hours").filter(|h| !h.is_empty()),
        accessibility: flat_texts(fields, "accessibility"),
        commune: String::new(),
        updated_by: String::new(),
        updated_at: None,
    })
}

/// Points read from an import, each with its record's number, and what was refused.
type Parsed = (Vec<(usize, Poi)>, Vec<Refused>);

/// Parse an import into points and what was refused on the way.
fn parse_import(format: &str, body: &[u8]) -> ApiResult<Parsed> {
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    let mut push = |record: usize, r: ApiResult<Poi>| match r {
        Ok(p) => ok.push((record, p)),
        Err(e) => refused.push(Refused { record, reason: e.to_string() }),
    };
    match format {
        "json" => {
            let items: Vec<Value> = serde_json::from_slice(body)
                .map_err(|e| bad(format!("not a JSON array of points: {e}")))?;
            for (i, v) in items.into_iter().enumerate() {
                push(i + 1, strict(v, &POI_FIELDS, "point"));
            }
        }
        "csv" => {
            let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(body);
            let head: Vec<String> = r
                .headers()
                .map_err(|e| bad(format!("CSV header: {e}")))?
                .iter()
                .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
                .collect();
            for (i, rec) in r.records().enumerate() {
                let line = i + 2;
                match rec {
                    Ok(rec) => {
                        let fields: Vec<(String, String)> =
                            head.iter().cloned().zip(rec.iter().map(str::to_owned)).collect();
                        push(line, flat_poi(&fields, None));
                    }
                    Err(e) => push(line, Err(bad(format!("CSV: {e}")))),
                }
            }
        }
        "geojson" => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| bad(format!("not GeoJSON: {e}")))?;
            let features = v
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("not a GeoJSON FeatureCollection"))?;
            for (i, f) in features.iter().enumerate() {
                let r = (|| {
                    let c = f
                        .pointer("/geometry/coordinates")
                        .and_then(Value::as_array)
                        .filter(|_| f.pointer("/geometry/type") == Some(&json!("Point")))
                        .ok_or_else(|| bad("not a Point"))?;
                    let (lon, lat) =
                        match (c.first().and_then(Value::as_f64), c.get(1).and_then(Value::as_f64))
                        {
                            (Some(a), Some(b)) => (a, b),
                            _ => return Err(bad("bad coordinates")),
                        };
                    let props = f
                        .get("properties")
                        .and_then(Value::as_object)
                        .ok_or_else(|| bad("no properties"))?;
                    let mut fields = Vec::new();
                    for (k, v) in props {
                        match v {
                            Value::Object(o) => {
                                for (lang, t) in o {
                                    fields.push((
                                        format!("{k}_{lang}"),
                                        t.as_str().unwrap_or_default().to_owned(),
                                    ));
                                }
                            }
                            Value::Null => {}
                            Value::String(t) => fields.push((k.clone(), t.clone())),
                            other => fields.push((k.clone(), other.to_string())),
                        }
                    }
                    flat_poi(&fields, Some((lat, lon)))
                })();
                push(i + 1, r);
            }
        }
        f => return Err(bad(format!("format {f:?}: json, csv or geojson"))),
    }
    Ok((ok, refused))
}

/// `POST /api/v1/visitors/pois`: import points (new ones added, known ids replaced); the valid
/// ones are kept and the others listed with why.
#[utoipa::path(post, path = "/api/v1/visitors/pois", tag = "visitors", params(ImportQuery),
    request_body(content = String, description = "JSON array, CSV or GeoJSON"),
    responses((status = 200, body = Imported), (status = 400, response = BadRequest), Writes))]
pub(crate) async fn import_pois(
    Scoped(s): Scoped,
    Who(who): Who,
    Query(q): Query<ImportQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Imported>> {
    let body = body.map_err(|e| bad(e.body_text()))?;
    let (parsed, mut refused) = parse_import(q.format.as_deref().unwrap_or("json"), &body)?;
    let now = s.clock.now();
    let existing = all_pois(&s).await?;
    let mut keep = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (record, mut p) in parsed {
        let r = (|| {
            p.check()?;
            if !seen.insert(p.id.clone()) {
                return Err(bad(format!("point {:?} is listed twice", p.id)));
            }
            may_replace(&who, existing.iter().find(|x| x.id == p.id))?;
            let (commune, _) = crate::reports::locate(&s, p.lat, p.lon)?;
            who.check(agora_model::permissions::Action::Modify, Some(&commune), None)?;
            p.commune = commune.as_str().to_owned();
            Ok(p.stored(&who.name, now))
        })();
        match r {
            Ok(x) => keep.push(x),
            Err(e) => refused.push(Refused { record, reason: e.to_string() }),
        }
    }
    refused.sort_by_key(|r| r.record);
    if keep.is_empty() {
        let first: Vec<String> =
            refused.iter().take(5).map(|r| format!("record {}: {}", r.record, r.reason)).collect();
        return Err(bad(format!("no point to import; {}", first.join("; "))));
    }
    s.visitors.put_pois(&keep).await?;
    Ok(Json(Imported { imported: keep.len(), refused }))
}

/// `PUT /api/v1/visitors/pois/{id}`: create or change one point.
#[utoipa::path(put, path = "/api/v1/visitors/pois/{id}", tag = "visitors", request_body = Poi,
    params(("id" = String, Path, description = "the point's id")),
    responses((status = 200, body = Poi), (status = 400, response = BadRequest),
        (status = 409, response = Conflict), Writes))]
pub(crate) async fn put_poi(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Poi>> {
    let mut p: Poi = strict(body, &POI_FIELDS, "point")?;
    if p.id != id {
        return Err(bad(format!("the body's id {:?} is not the path's {id:?}", p.id)));
    }
    p.check()?;
    may_replace(&who, all_pois(&s).await?.iter().find(|x| x.id == p.id))?;
    let (commune, _) = crate::reports::locate(&s, p.lat, p.lon)?;
    who.check(agora_model::permissions::Action::Modify, Some(&commune), None)?;
    p.commune = commune.as_str().to_owned();
    let stored = p.stored(&who.name, s.clock.now());
    s.visitors.put_pois(std::slice::from_ref(&stored)).await?;
    Ok(Json(Poi::of(stored)))
}

/// `DELETE /api/v1/visitors/pois/{id}`: remove a point no tour goes through.
#[utoipa::path(delete, path = "/api/v1/visitors/pois/{id}", tag = "visitors",
    params(("id" = String, Path, description = "the point's id")),
    responses((status = 204, description = "Removed"), (status = 404, response = NotFound),
        (status = 409, description = "a tour goes through it"), Writes))]
pub(crate) async fn delete_poi(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let p = all_pois(&s)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no point {id:?}")))?;
    who.check(
        agora_model::permissions::Action::Delete,
        agora_model::InseeCode::parse(&p.commune).ok().as_ref(),
        None,
    )?;
    let using: Vec<String> =
        all_tours(&s).await?.into_iter().filter(|t| t.stops.contains(&id)).map(|t| t.id).collect();
    if !using.is_empty() {
        return Err(ApiError::Conflict(format!(
            "tours {} go through {id:?}: change them first",
            using.join(", ")
        )));
    }
    s.visitors.delete_poi(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A discovery tour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Tour)]
pub struct TourBody {
    /// Identifier.
    pub id: String,
    /// Its title by language: `fr` and `en` at least.
    #[schema(value_type = Object)]
    pub title: Texts,
    /// What it is about, by language.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub description: Texts,
    /// The points it goes through, in order (2 to 30).
    pub stops: Vec<String>,
    /// Minutes spent at each stop, for the duration (default 5).
    #[serde(default = "five")]
    pub minutes_per_stop: f64,
    /// The commune it is in (its first stop's).
    #[serde(default, skip_deserializing)]
    pub commune: String,
}

fn five() -> f64 {
    5.0
}

async fn all_tours(s: &AppState) -> ApiResult<Vec<TourBody>> {
    s.visitors
        .tours()
        .await?
        .into_iter()
        .map(|t| {
            let mut b: TourBody = serde_json::from_value(t.body).map_err(|e| {
                ApiError::Internal(agora_store::Error::Internal(format!("tour {}: {e}", t.id)))
            })?;
            b.commune = t.commune;
            Ok(b)
        })
        .collect()
}

/// A tour with its route.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TourRoute)]
pub struct TourView {
    /// The tour.
    #[serde(flatten)]
    pub tour: TourBody,
    /// Its points, in order.
    pub points: Vec<Poi>,
    /// The way walked: a GeoJSON LineString.
    #[schema(value_type = Object)]
    pub route: Value,
    /// Metres walked.
    pub distance_m: f64,
    /// Minutes: walking at 4 km/h and the time at each stop.
    pub duration_min: f64,
    /// Whether some of it is drawn straight (no street network imported, or a point off it).
    pub straight: bool,
    /// The tour's page, for phones (what the QR code holds).
    pub url: String,
}

fn line_geojson(w: &Walk) -> Value {
    let coords: Vec<Value> = w
        .line
        .iter()
        .map(|(lon, lat)| json!([(lon * 1e6).round() / 1e6, (lat * 1e6).round() / 1e6]))
        .collect();
    json!({"type": "LineString", "coordinates": coords})
}

async fn tour_view(s: &AppState, t: TourBody, base: &str) -> ApiResult<TourView> {
    let all = all_pois(s).await?;
    let points: Vec<Poi> =
        t.stops.iter().filter_map(|id| all.iter().find(|p| p.id == *id).cloned()).collect();
    let stops: Vec<(f64, f64)> = points.iter().map(|p| (p.lon, p.lat)).collect();
    let data = s.proximity.data(&t.commune).await?;
    // A tour's route changes only with its stops or the streets: computed once for both.
    let network_at = data
        .layers
        .iter()
        .filter(|l| l.layer == "network")
        .map(|l| l.imported_at.as_nanos())
        .max()
        .unwrap_or(0);
    let key = format!("{}|{network_at}|{stops:?}", t.commune);
    let cached = TOUR_ROUTES.lock().get(&t.id).filter(|(k, _)| *k == key).map(|(_, w)| w.clone());
    let walk = match cached {
        Some(w) => w,
        None => {
            let attach = s.proximity.settings.attach_m;
            let _turn = ROUTE_TURNS.acquire().await.map_err(|_| bad("stopping"))?;
            let w = tokio::task::spawn_blocking(move || {
                routes::tour(data.network.as_ref(), &stops, attach)
            })
            .await
            .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?;
            let mut cache = TOUR_ROUTES.lock();
            if cache.len() > 1000 {
                cache.clear();
            }
            cache.insert(t.id.clone(), (key, w.clone()));
            w
        }
    };
    let minutes =
        walk.length_m / (SPEED_KMH * 1000.0 / 60.0) + t.minutes_per_stop * points.len() as f64;
    Ok(TourView {
        url: format!("{base}/visiter/parcours/{}", t.id),
        route: line_geojson(&walk),
        distance_m: walk.length_m.round(),
        duration_min: minutes.round(),
        straight: walk.straight,
        points,
        tour: t,
    })
}

/// `GET /api/v1/visitors/tours`: the tours, with their routes.
#[utoipa::path(get, path = "/api/v1/visitors/tours", tag = "visitors",
    params(("commune" = Option<String>, Query, description = "one commune's")),
    responses((status = 200, body = [TourView]), (status = 400, response = BadRequest), Reads))]
pub(crate) async fn tours(
    Scoped(s): Scoped,
    h: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Vec<TourView>>> {
    if let Some(k) = q.keys().find(|k| *k != "commune") {
        return Err(bad(format!("unknown parameter {k:?}: commune")));
    }
    let base = crate::open_data::base_url(&s, &h);
    let mut out = Vec::new();
    for t in all_tours(&s).await? {
        if q.get("commune").is_some_and(|c| *c != t.commune) {
            continue;
        }
        out.push(tour_view(&s, t, &base).await?);
    }
    Ok(Json(out))
}

async fn one_tour(s: &AppState, id: &str) -> ApiResult<TourBody> {
    all_tours(s)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no tour {id:?}")))
}

/// `GET /api/v1/visitors/tours/{id}`
#[utoipa::path(get, path = "/api/v1/visitors/tours/{id}", tag = "visitors",
    params(("id" = String, Path, description = "the tour's id")),
    responses((status = 200, body = TourView), (status = 404, response = NotFound), Reads))]
pub(crate) async fn tour(
    Scoped(s): Scoped,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<TourView>> {
    let t = one_tour(&s, &id).await?;
    let base = crate::open_data::base_url(&s, &h);
    Ok(Json(tour_view(&s, t, &base).await?))
}

/// `PUT /api/v1/visitors/tours/{id}`: create or change a tour; every stop must be a known point.
#[utoipa::path(put, path = "/api/v1/visitors/tours/{id}", tag = "visitors", request_body = TourBody,
    params(("id" = String, Path, description = "the tour's id")),
    responses((status = 200, body = TourView), (status = 400, response = BadRequest),
        (status = 409, response = Conflict), Writes))]
pub(crate) async fn put_tour(
    Scoped(s): Scoped,
    Who(who): Who,
    h: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<TourView>> {
    let mut t: TourBody = strict(body, &TOUR_FIELDS, "tour")?;
    if t.id != id {
        return Err(bad(format!("the body's id {:?} is not the path's {id:?}", t.id)));
    }
    check_id(&t.id, "tour")?;
    check_texts(&t.title, "title", 120, &["fr", "en"])?;
    check_texts(&t.description, "description", 4000, &[])?;
    if !(2..=30).contains(&t.stops.len()) {
        return Err(bad(format!("a tour has 2 to 30 stops, not {}", t.stops.len())));
    }
    if !(0.0..=240.0).contains(&t.minutes_per_stop) {
        return Err(bad("minutes_per_stop: 0 to 240"));
    }
    let all = all_pois(&s).await?;
    let mut communes = Vec::new();
    for stop in &t.stops {
        let p = all
            .iter()
            .find(|p| p.id == *stop)
            .ok_or_else(|| bad(format!("unknown point {stop:?}: import it first")))?;
        communes.push(p.commune.clone());
    }
    t.commune = communes[0].clone();
    if let Some((stop, c)) = t.stops.iter().zip(&communes).find(|(_, c)| **c != t.commune) {
        return Err(bad(format!(
            "point {stop:?} is in commune {c}, the tour in {}: a tour stays in one commune",
            t.commune
        )));
    }
    let commune = agora_model::InseeCode::parse(&t.commune).ok();
    who.check(agora_model::permissions::Action::Modify, commune.as_ref(), None)?;
    if let Some(old) = all_tours(&s).await?.into_iter().find(|x| x.id == t.id) {
        let c = agora_model::InseeCode::parse(&old.commune).ok();
        who.check(agora_model::permissions::Action::Modify, c.as_ref(), None)
            .map_err(|_| ApiError::Conflict(format!("tour {:?} is another commune's", t.id)))?;
    }
    s.visitors
        .put_tour(&StoredTour {
            id: t.id.clone(),
            commune: t.commune.clone(),
            // The commune is the row's; the body is what was sent.
            body: {
                let mut b = serde_json::to_value(&t).unwrap_or_default();
                if let Some(o) = b.as_object_mut() {
                    o.remove("commune");
                }
                b
            },
            updated_by: who.name.clone(),
            updated_at: s.clock.now(),
        })
        .await?;
    let base = crate::open_data::base_url(&s, &h);
    Ok(Json(tour_view(&s, t, &base).await?))
}

/// `DELETE /api/v1/visitors/tours/{id}`
#[utoipa::path(delete, path = "/api/v1/visitors/tours/{id}", tag = "visitors",
    params(("id" = String, Path, description = "the tour's id")),
    responses((status = 204, description = "Removed"), (status = 404, response = NotFound), Writes))]
pub(crate) async fn delete_tour(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let t = one_tour(&s, &id).await?;
    let commune = agora_model::InseeCode::parse(&t.commune).ok();
    who.check(agora_model::permissions::Action::Delete, commune.as_ref(), None)?;
    s.visitors.delete_tour(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How the QR code is drawn.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    pub format: Option<String>,
    /// Pixels per module of a PNG (1 to 32, default 8).
    pub scale: Option<u32>,
}

/// The modules of a QR code of `text` (error correction M, as posters use), dark as `true`,
/// with its size.
fn qr_modules(text: &str) -> ApiResult<(usize, Vec<bool>)> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|_| bad("the address is too long for a QR code"))?;
    let n = qr.size() as usize;
    let mut m = Vec::with_capacity(n * n);
    for y in 0..n as i32 {
        for x in 0..n as i32 {
            m.push(qr.get_module(x, y));
        }
    }
    Ok((n, m))
}

/// A QR code as SVG (a quiet zone of 4 modules, one path).
pub fn qr_svg(text: &str) -> ApiResult<String> {
    let (n, m) = qr_modules(text)?;
    let side = n + 8;
    let mut path = String::new();
    for y in 0..n {
        for x in 0..n {
            if m[y * n + x] {
                path.push_str(&format!("M{},{}h1v1h-1z", x + 4, y + 4));
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\" role=\"img\"><title>{}</title><rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
    ))
}

/// A QR code as a PNG, `scale` pixels a module, with a quiet zone of 4 modules.
pub fn qr_png(text: &str, scale: u32) -> ApiResult<Vec<u8>> {
    let (n, m) = qr_modules(text)?;
    let side = (n + 8) as u32 * scale;
    let mut rgba = vec![255u8; (side * side * 4) as usize];
    for y in 0..n {
        for x in 0..n {
            if !m[y * n + x] {
                continue;
            }
            for dy in 0..scale {
                for dx in 0..scale {
                    let px = (x as u32 + 4) * scale + dx;
                    let py = (y as u32 + 4) * scale + dy;
                    let i = ((py * side + px) * 4) as usize;
                    rgba[i..i + 3].copy_from_slice(&[0, 0, 0]);
                }
            }
        }
    }
    Ok(crate::png::encode_rgba(side, side, &rgba))
}

/// `GET /api/v1/visitors/tours/{id}/qr`: the QR code that opens the tour on a phone, made here
/// (no outside service).
#[utoipa::path(get, path = "/api/v1/visitors/tours/{id}/qr", tag = "visitors", params(
        ("id" = String, Path, description = "the tour's id"), QrQuery),
    responses((status = 200, description = "SVG or PNG", content(
            (String = "image/svg+xml"), (Vec<u8> = "image/png"))),
        (status = 400, response = BadRequest), (status = 404, response = NotFound), Reads))]
pub(crate) async fn tour_qr(
    Scoped(s): Scoped,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<QrQuery>,
) -> ApiResult<Response> {
    let t = one_tour(&s, &id).await?;
    let url = format!("{}/visiter/parcours/{}", crate::open_data::base_url(&s, &h), t.id);
    // A phone's camera reads small codes best; a long address (a forged Host) makes a large one.
    if url.len() > 200 {
        return Err(bad(
            "the tour's address is over 200 characters: set [open_data] base_url to this \
             server's public address",
        ));
    }
    let png = match q.format.as_deref().unwrap_or("svg") {
        "svg" => false,
        "png" => true,
        f => return Err(bad(format!("format {f:?}: svg or png"))),
    };
    let scale = q.scale.unwrap_or(8);
    if !(1..=16).contains(&scale) {
        return Err(bad("scale: 1 to 16"));
    }
    let _turn = QR_TURNS.acquire().await.map_err(|_| bad("stopping"))?;
    tokio::task::spawn_blocking(move || -> ApiResult<Response> {
        Ok(if png {
            ([(header::CONTENT_TYPE, "image/png")], qr_png(&url, scale)?).into_response()
        } else {
            ([(header::CONTENT_TYPE, "image/svg+xml")], qr_svg(&url)?).into_response()
        })
    })
    .await
    .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?
}

/// Between where and where.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CoolQuery {
    /// Start, `lat,lon`.
    pub from: String,
    /// End, `lat,lon`.
    pub to: String,
    /// Hours of temperatures averaged, up to `at` (1 to 24, default 3).
    pub hours: Option<u32>,
    /// The moment (RFC 3339; default now): a past hot afternoon, to plan or to show.
    pub at: Option<String>,
}

/// One way.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WalkSummary)]
pub struct WalkView {
    /// GeoJSON LineString.
    #[schema(value_type = Object)]
    pub route: Value,
    /// Metres.
    pub distance_m: f64,
    /// Minutes at 4 km/h.
    pub duration_min: f64,
    /// Felt temperature averaged over the way on the streets, °C (none without temperatures).
    pub felt_c: Option<f64>,
    /// Points of shade, fountains and drinking water within 30 m of the way.
    pub cool_stops: Vec<String>,
}

/// The cool route and the shortest.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CoolRoute)]
pub struct CoolAnswer {
    /// The cool route.
    pub cool: WalkView,
    /// The shortest.
    pub shortest: WalkView,
    /// Degrees the cool route is cooler on average (≥ 0).
    pub cooler_by_c: Option<f64>,
    /// Metres more it walks.
    pub longer_by_m: f64,
    /// Temperature sensors the heat comes from (none: shade and fountains only).
    pub sensors: usize,
    /// How heat is weighed.
    pub heat_weight: f64,
    /// Degrees cooler by shade and water.
    pub cooling_c: f64,
}

/// `GET /api/v1/visitors/cool-route`: on a hot afternoon, a walk from one point to another that
/// favours cooler streets (the temperature measured by the sensors over the last hours,
/// interpolated to the streets by inverse distance), shade, fountains and drinking water, with
/// its felt temperature against the shortest walk's. Needs the commune's street network.
#[utoipa::path(get, path = "/api/v1/visitors/cool-route", tag = "visitors", params(CoolQuery),
    responses((status = 200, body = CoolAnswer), (status = 400, response = BadRequest), Reads))]
pub(crate) async fn cool_route(
    Scoped(s): Scoped,
    Query(q): Query<CoolQuery>,
) -> ApiResult<Json<CoolAnswer>> {
    let (alat, alon) = parse_point(&q.from, "from")?;
    let (blat, blon) = parse_point(&q.to, "to")?;
    let apart = routes::distance_m((alon, alat), (blon, blat));
    if apart > MAX_ROUTE_M {
        return Err(bad(format!(
            "the two points are {:.1} km apart: a walk is at most {:.0} km",
            apart / 1000.0,
            MAX_ROUTE_M / 1000.0
        )));
    }
    let hours = q.hours.unwrap_or(3);
    if !(1..=24).contains(&hours) {
        return Err(bad("hours: 1 to 24"));
    }
    let (commune, _) = crate::reports::locate(&s, alat, alon)?;
    let data = s.proximity.data(commune.as_str()).await?;
    if data.network.is_none() {
        return Err(bad(format!(
            "no street network was imported for commune {}: a route needs one",
            commune.as_str()
        )));
    }
    let now = match q.at.as_deref() {
        None => s.clock.now(),
        Some(a) => {
            let t = chrono::DateTime::parse_from_rfc3339(a).map_err(|_| {
                bad(format!("at {a:?}: a date and time, RFC 3339 (2026-07-20T15:00:00+02:00)"))
            })?;
            let ns =
                t.timestamp_nanos_opt().ok_or_else(|| bad(format!("at {a:?}: out of range")))?;
            if ns > s.clock.now().as_nanos() {
                return Err(bad(format!(
                    "at {a:?} is in the future: temperatures are measured, not forecast here"
                )));
            }
            Timestamp::from_nanos(ns)
        }
    };
    let range = agora_query::time::TimeRange::new(
        now.saturating_add_nanos(-(i64::from(hours) * 3_600_000_000_000)),
        now,
    )?;
    let means = agora_query::heat::device_means(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &agora_query::air::Area::Commune(commune.clone()),
        "temperature",
        range,
    )
    .await?;
    let sensors: Vec<(f64, f64, f64)> =
        means.iter().filter_map(|(d, v)| Some((d.lon?, d.lat?, *v))).collect();
    let cool_points: Vec<(String, f64, f64)> = all_pois(&s)
        .await?
        .into_iter()
        .filter(|p| p.commune == commune.as_str() && COOL_KINDS.contains(&p.kind.as_str()))
        .map(|p| (p.id, p.lon, p.lat))
        .collect();
    let settings = CoolSettings::default();
    let attach = s.proximity.settings.attach_m;
    let n_sensors = sensors.len();
    let _turn = ROUTE_TURNS.acquire().await.map_err(|_| bad("stopping"))?;
    let answer = tokio::task::spawn_blocking(move || -> ApiResult<CoolAnswer> {
        let net = data.network.as_ref().ok_or_else(|| bad("no street network"))?;
        // Temperatures at the streets: inverse distance weighting (power 2) of the sensors'
        // means, on a local plane in metres.
        let lat0 = (alat + blat) / 2.0;
        let kx = 111_320.0 * lat0.to_radians().cos();
        let samples: Vec<agora_indicators::interp::Sample> = sensors
            .iter()
            .map(|(lon, lat, v)| agora_indicators::interp::Sample { x: lon * kx, y: lat * 110_574.0, value: *v })
            .collect();
        let temperature = |lon: f64, lat: f64| {
            agora_indicators::interp::idw(&samples, 2.0, (lon * kx, lat * 110_574.0)).map(|e| e.value)
        };
        let spots: Vec<(f64, f64)> = cool_points.iter().map(|(_, lon, lat)| (*lon, *lat)).collect();
        let felt = routes::felt(net, temperature, &spots, &settings);
        let (cool, short) = routes::cool(net, (alon, alat), (blon, blat), attach, &felt, &settings)
            .ok_or_else(|| {
                bad("the two points are not both within reach of connected streets (attach them closer)")
            })?;
        let view = |w: &Walk| {
            let t = (n_sensors > 0 || !spots.is_empty()).then(|| routes::exposure(net, w, &felt)).flatten();
            let stops: Vec<String> = cool_points
                .iter()
                .filter(|(_, lon, lat)| {
                    w.line.iter().any(|p| routes::distance_m(*p, (*lon, *lat)) <= settings.cool_radius_m)
                })
                .map(|(id, _, _)| id.clone())
                .collect();
            WalkView {
                route: line_geojson(w),
                distance_m: w.length_m.round(),
                duration_min: (w.length_m / (SPEED_KMH * 1000.0 / 60.0)).round(),
                felt_c: t.map(|x| (x * 10.0).round() / 10.0),
                cool_stops: stops,
            }
        };
        let (c, sh) = (view(&cool), view(&short));
        Ok(CoolAnswer {
            cooler_by_c: match (routes::exposure(net, &cool, &felt), routes::exposure(net, &short, &felt)) {
                (Some(a), Some(b)) if n_sensors > 0 || !spots.is_empty() => Some(((b - a) * 10.0).round() / 10.0),
                _ => None,
            },
            longer_by_m: (cool.length_m - short.length_m).round(),
            cool: c,
            shortest: sh,
            sensors: n_sensors,
            heat_weight: settings.heat_weight,
            cooling_c: settings.cooling_c,
        })
    })
    .await
    .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))??;
    Ok(Json(answer))
}

/// The records of an open dataset of points of interest (one per point) or of tours (one per
/// stop), of the dataset's commune.
pub(crate) async fn open_data_rows(
    s: &AppState,
    d: &agora_store::opendata::Dataset,
) -> ApiResult<Vec<agora_opendata::odsql::Row>> {
    use agora_opendata::odsql::V;
    let pois = all_pois(s).await?;
    let opt = |x: Option<&String>| x.map_or(V::Null, |t| V::text(t.as_str()));
    let point = |p: &Poi| {
        vec![
            V::text(p.id.as_str()),
            V::text(p.kind.as_str()),
            opt(p.name.get("fr")),
            opt(p.name.get("en")),
            opt(p.description.get("fr")),
            opt(p.description.get("en")),
            p.opening_hours.as_deref().map_or(V::Null, V::text),
            opt(p.accessibility.get("fr")),
            V::text(p.commune.as_str()),
            V::Geo(p.lat, p.lon),
        ]
    };
    let in_scope = |commune: &str| d.commune.as_deref().is_none_or(|c| c == commune);
    let mut rows = Vec::new();
    if d.kind == agora_store::opendata::DatasetKind::Tours {
        let base = crate::open_data::base_url(s, &HeaderMap::new());
        for t in all_tours(s).await? {
            if !in_scope(&t.commune) {
                continue;
            }
            let v = tour_view(s, t, &base).await?;
            for (i, p) in v.points.iter().enumerate() {
                let mut row = vec![
                    V::text(v.tour.id.as_str()),
                    opt(v.tour.title.get("fr")),
                    opt(v.tour.title.get("en")),
                    V::Num((i + 1) as f64),
                    V::Num(v.distance_m),
                    V::Num(v.duration_min),
                ];
                row.extend(point(p));
                rows.push(row);
            }
        }
    } else {
        rows.extend(pois.iter().filter(|p| in_scope(&p.commune)).map(point));
    }
    Ok(rows)
}

/// The operations of this module, for the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    pois,
    import_pois,
    put_poi,
    delete_poi,
    tours,
    tour,
    put_tour,
    delete_tour,
    tour_qr,
    cool_route
))]
pub(crate) struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_import_keeps_the_good_lines_and_names_the_bad_ones() {
        let csv = "id,kind,lat,lon,name_fr,name_en,description_fr,opening_hours\n\
                   fontaine,fountain,43.5263,5.4446,Fontaine de la Rotonde,Rotonde fountain,Construite en 1860,\n\
                   ,museum,43.5,5.4,Musée,Museum,,\n\
                   belvedere,viewpoint,abc,5.4,Belvédère,Viewpoint,,\n";
        let (ok, refused) = parse_import("csv", csv.as_bytes()).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].1.name["en"], "Rotonde fountain");
        assert_eq!(ok[0].1.description["fr"], "Construite en 1860");
        assert_eq!(ok[0].1.opening_hours, None);
        // The empty id is caught by the check, the bad latitude here.
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].record, 4);
        assert!(refused[0].reason.contains("lat \"abc\" is not a number"), "{}", refused[0].reason);
        assert!(ok[1].1.check().unwrap_err().to_string().contains("point id \"\""));
    }

    #[test]
    fn a_geojson_import_takes_texts_as_objects_or_columns() {
        let g = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.4446, 43.5263]},
             "properties": {"id": "f", "kind": "fountain", "name": {"fr": "Fontaine", "en": "Fountain", "de": "Brunnen"}}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[5.4, 43.5], [5.5, 43.6]]},
             "properties": {"id": "l"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.44, 43.52]},
             "properties": {"id": "m", "kind": "museum", "name_fr": "Musée", "name_en": "Museum", "colour": "red"}}
        ]});
        let (ok, refused) = parse_import("geojson", g.to_string().as_bytes()).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].1.name["de"], "Brunnen");
        assert_eq!((ok[0].1.lat, ok[0].1.lon), (43.5263, 5.4446));
        assert_eq!(refused.len(), 2);
        assert!(refused[0].reason.contains("not a Point"));
        assert!(refused[1].reason.contains("unknown column \"colour\""));
        assert!(parse_import("geojson", b"[1, 2]").is_err());
        assert!(parse_import("xml", b"").is_err());
    }

    #[test]
    fn names_in_french_and_english_are_needed_and_texts_are_bounded() {
        let mut p = Poi {
            id: "fontaine".into(),
            kind: "fountain".into(),
            lat: 43.5,
            lon: 5.4,
            name: [("fr".to_owned(), "Fontaine".to_owned())].into(),
            description: Texts::new(),
            opening_hours: None,
            accessibility: Texts::new(),
            commune: String::new(),
            updated_by: String::new(),
            updated_at: None,
        };
        assert!(p.check().unwrap_err().to_string().contains("name in \"en\" is needed"));
        p.name.insert("en".into(), "Fountain".into());
        assert!(p.check().is_ok());
        p.description.insert("fr".into(), "x".repeat(2001));
        assert!(p.check().unwrap_err().to_string().contains("at most 2000"));
        p.description.insert("fr".into(), "ok".into());
        p.description.insert("French".into(), "ok".into());
        assert!(p.check().unwrap_err().to_string().contains("not a language code"));
        p.description.remove("French");
        p.kind = "pub".into();
        assert!(p.check().unwrap_err().to_string().contains("kind \"pub\""));
    }
}
