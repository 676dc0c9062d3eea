//! The 15-minute city (`agora_query::proximity`): imports of a commune's walking network (OSM PBF
//! or XML), facilities (BPE, CSV, GeoJSON), population (Filosofi squares, weighted addresses)
//! and neighbourhoods; and what they give: each square's walking time to the nearest facility of
//! each theme (JSON, CSV, GeoJSON for the map), the shares of population within 15 minutes per
//! commune and neighbourhood, the gaps by theme or kind of facility, isochrones from a point, and
//! the effect of a facility added at a point.
//!
//! A commune another commune's agent cannot see answers 404; an import needs `modify` in the
//! commune, and a bad file changes nothing (400 naming the lines at fault).

use std::collections::BTreeMap;

use agora_model::permissions::Action;
use agora_proximity::access::{Selector, isochrone};
use agora_proximity::facilities::Theme;
use agora_query::proximity::{AreaShares, Data, Format};
use agora_store::decisions::Layer;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::commerce_report::csv_field;
use crate::doc::{BadRequest, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::indicators::csv_response;
use crate::ingest::body_bytes;
use crate::policy::{Principal, Scoped, Who};

/// The commune as the caller sees it: (INSEE code, name), or 404.
fn commune_of(s: &AppState, insee: &str) -> ApiResult<(String, String)> {
    s.catalog
        .communes()
        .into_iter()
        .find(|c| c.insee.as_str() == insee)
        .map(|c| (c.insee.as_str().to_string(), c.name))
        .ok_or_else(|| ApiError::NotFound(format!("unknown commune {insee:?}")))
}

fn may_modify(who: &Principal, insee: &str) -> ApiResult<()> {
    let code =
        agora_model::InseeCode::parse(insee).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    who.check(Action::Modify, Some(&code), None)
}

fn geojson(features: Vec<Value>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
        .into_response()
}

fn round(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

/// A commune's 15-minute city.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProximitySummary {
    /// The commune's INSEE code.
    commune: String,
    /// Its name.
    name: String,
    /// What was imported, by whom, when, and what each import read and left out.
    layers: Vec<Layer>,
    /// How walks are measured: speed (km/h), the limit and bands (minutes), the farthest a
    /// square or facility may be from a street (m).
    settings: Value,
    /// Facilities per theme, and those too far from any street to count.
    facilities: BTreeMap<String, usize>,
    /// Facilities farther than the attachment distance from the network (not counted).
    facilities_off_network: usize,
    /// The shares within the limit: the commune first, then each neighbourhood.
    areas: Vec<AreaShares>,
    /// Why no figure can be computed yet (a layer missing), when so.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<String>,
}

async fn data(s: &AppState, insee: &str) -> ApiResult<std::sync::Arc<Data>> {
    Ok(s.proximity.data(insee).await?)
}

/// The 15-minute city of a commune
///
/// What was imported (network, facilities, population, neighbourhoods, with what each import
/// read and left out), the settings, and the share of population within the limit (15 minutes'
/// walk by default) of each theme and of all four, for the commune and each neighbourhood. The
/// population off the network (farther than the attachment distance from any street) is counted
/// apart: `coverage` says the share whose access is known.
#[utoipa::path(get, path = "/api/v1/proximity/{commune}", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code")),
    responses(
        (status = 200, description = "The commune's 15-minute city", body = ProximitySummary),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn summary(Scoped(s): Scoped, Path(insee): Path<String>) -> ApiResult<Response> {
    let (insee, name) = commune_of(&s, &insee)?;
    let d = data(&s, &insee).await?;
    let settings = &s.proximity.settings;
    let mut facilities = BTreeMap::new();
    for f in &d.facilities {
        *facilities.entry(f.theme.as_str().to_string()).or_insert(0) += 1;
    }
    let out = tokio::task::spawn_blocking({
        let d = d.clone();
        let settings = settings.clone();
        move || match d.area_shares(&settings, &insee, &name) {
            Ok((areas, off)) => (insee, name, areas.clone(), *off, None),
            Err(e) => (insee, name, Vec::new(), 0, Some(e.to_string())),
        }
    })
    .await
    .map_err(joined)?;
    Ok(axum::Json(ProximitySummary {
        commune: out.0,
        name: out.1,
        layers: d.layers.clone(),
        settings: json!({
            "speed_kmh": settings.speed_kmh,
            "limit_min": settings.limit_min,
            "bands_min": settings.bands_min,
            "attach_m": settings.attach_m,
        }),
        facilities,
        facilities_off_network: out.3,
        areas: out.2,
        missing: out.4,
    })
    .into_response())
}

/// The records of a published accessibility dataset: every square of its commune.
pub(crate) async fn open_data_rows(
    s: &AppState,
    d: &agora_store::opendata::Dataset,
) -> ApiResult<Vec<agora_opendata::odsql::Row>> {
    use agora_opendata::odsql::V;
    let Some(insee) = d.commune.clone() else { return Ok(Vec::new()) };
    let data = s.proximity.data(&insee).await?;
    let settings = s.proximity.settings.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<Vec<agora_opendata::odsql::Row>> {
        let Ok(access) = data.squares_access(&settings) else { return Ok(Vec::new()) };
        Ok(access
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let sq = &data.squares[i];
                let m = |t: Theme| a.minutes.get(&t).map_or(V::Null, |v| V::Num(round(*v, 1)));
                vec![
                    V::text(a.id.as_str()),
                    V::text(insee.as_str()),
                    data.square_area[i].map_or(V::Null, |k| V::text(data.areas[k].code.as_str())),
                    V::Geo(round(sq.lat, 6), round(sq.lon, 6)),
                    V::Num(round(a.population, 1)),
                    m(Theme::Commerce),
                    m(Theme::Health),
                    m(Theme::Social),
                    m(Theme::Leisure),
                    a.themes_within.map_or(V::Null, |n| V::Num(f64::from(n))),
                    V::text(if a.off_network { "oui" } else { "non" }),
                ]
            })
            .collect())
    })
    .await
    .map_err(joined)?
}

/// The answer's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FormatParam {
    /// `json` (default), `csv` or `geojson`.
    format: Option<String>,
}

/// Each square's walking times
///
/// For every populated square (or address): its population, neighbourhood, minutes to the
/// nearest facility of each theme (absent when none is reachable), the minutes to reach all
/// four, how many themes are within the limit (the map's score, 0–4), and whether it is off
/// the network. GeoJSON gives the squares as 200 m polygons (addresses as points), for the map.
#[utoipa::path(get, path = "/api/v1/proximity/{commune}/squares", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code"), FormatParam),
    responses(
        (status = 200, description = "The squares", content(
            (Value = "application/json"), (String = "text/csv"), (Value = "application/geo+json"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn squares(
    Scoped(s): Scoped,
    Path(insee): Path<String>,
    Query(p): Query<FormatParam>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    let format = p.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv" | "geojson") {
        return Err(ApiError::BadRequest(format!("format {format:?}: use json, csv or geojson")));
    }
    let d = data(&s, &insee).await?;
    let settings = s.proximity.settings.clone();
    let (rows, limit) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let rows: Vec<(agora_proximity::access::SquareAccess, Option<String>, Value)> = d
            .squares_access(&settings)?
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, a)| {
                let sq = &d.squares[i];
                let area = d.square_area[i].map(|k| d.areas[k].code.clone());
                (a, area, square_geometry(sq))
            })
            .collect();
        Ok((rows, settings.limit_min))
    })
    .await
    .map_err(joined)??;
    Ok(match format.as_str() {
        "csv" => {
            let mut out = String::from(
                "square,population,neighbourhood,off_network,commerce_min,health_min,social_min,leisure_min,all_themes_min,themes_within\n",
            );
            for (a, area, _) in &rows {
                let m = |t: Theme| {
                    a.minutes.get(&t).map(|v| round(*v, 1).to_string()).unwrap_or_default()
                };
                out += &format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&a.id),
                    round(a.population, 1),
                    csv_field(area.as_deref().unwrap_or("")),
                    a.off_network,
                    m(Theme::Commerce),
                    m(Theme::Health),
                    m(Theme::Social),
                    m(Theme::Leisure),
                    a.all_themes.map(|v| round(v, 1).to_string()).unwrap_or_default(),
                    a.themes_within.map(|n| n.to_string()).unwrap_or_default()
                );
            }
            csv_response(out)
        }
        "geojson" => geojson(
            rows.into_iter()
                .map(|(a, area, g)| {
                    json!({"type": "Feature", "geometry": g, "properties": {
                        "id": a.id, "population": a.population, "neighbourhood": area,
                        "off_network": a.off_network, "minutes": a.minutes,
                        "all_themes": a.all_themes, "themes_within": a.themes_within,
                        "limit_min": limit}})
                })
                .collect(),
        ),
        _ => axum::Json(json!({
            "limit_min": limit,
            "squares": rows.into_iter().map(|(a, area, _)| {
                let mut v = serde_json::to_value(&a).unwrap_or_default();
                v["neighbourhood"] = json!(area);
                v
            }).collect::<Vec<_>>(),
        }))
        .into_response(),
    })
}

fn square_geometry(sq: &agora_proximity::population::Square) -> Value {
    match agora_proximity::population::parse_square_id(&sq.id) {
        Some((e, n, side)) => {
            let side = f64::from(side);
            let corner = |dx: f64, dy: f64| {
                let (lon, lat) = agora_proximity::project::laea_to_wgs84(e + dx, n + dy);
                json!([round(lon, 6), round(lat, 6)])
            };
            json!({"type": "Polygon", "coordinates": [[corner(0.0, 0.0), corner(side, 0.0),
                corner(side, side), corner(0.0, side), corner(0.0, 0.0)]]})
        }
        None => json!({"type": "Point", "coordinates": [round(sq.lon, 6), round(sq.lat, 6)]}),
    }
}

/// The facilities of a commune
///
/// Every facility imported (all datasets), as GeoJSON points with their theme, kind and name.
#[utoipa::path(get, path = "/api/v1/proximity/{commune}/facilities", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code")),
    responses(
        (status = 200, description = "The facilities", content((Value = "application/geo+json"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn facilities(
    Scoped(s): Scoped,
    Path(insee): Path<String>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    let d = data(&s, &insee).await?;
    Ok(geojson(
        d.facilities
            .iter()
            .map(|f| {
                json!({"type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                    "properties": {"id": f.id, "name": f.name, "theme": f.theme, "kind": f.kind}})
            })
            .collect(),
    ))
}

/// Which facilities a question is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WhichParams {
    /// A theme: `commerce`, `health`, `social` or `leisure`.
    theme: Option<String>,
    /// Or one kind of facility (`pharmacie`, `D301`…), as imported.
    kind: Option<String>,
    /// Longitude of the point (isochrones, what-if).
    lon: Option<f64>,
    /// Latitude of the point.
    lat: Option<f64>,
}

fn selector(p: &WhichParams, d: &Data) -> ApiResult<Selector> {
    match (&p.theme, &p.kind) {
        (Some(t), None) => {
            Ok(Selector::Theme(Theme::parse(t).map_err(|e| ApiError::BadRequest(e.to_string()))?))
        }
        (None, Some(k)) => {
            if d.facilities.iter().any(|f| &f.kind == k) {
                Ok(Selector::Kind(k.clone()))
            } else {
                let mut kinds: Vec<&str> = d.facilities.iter().map(|f| f.kind.as_str()).collect();
                kinds.sort_unstable();
                kinds.dedup();
                Err(ApiError::BadRequest(format!(
                    "no facility of kind {k:?} in this commune (kinds: {})",
                    kinds.join(", ")
                )))
            }
        }
        _ => Err(ApiError::BadRequest("give theme or kind (one of them)".into())),
    }
}

fn point(p: &WhichParams) -> ApiResult<(f64, f64)> {
    match (p.lon, p.lat) {
        (Some(lon), Some(lat)) if lon.abs() <= 180.0 && lat.abs() <= 90.0 => Ok((lon, lat)),
        _ => Err(ApiError::BadRequest("lon and lat are needed, in degrees (WGS 84)".into())),
    }
}

/// Gaps: where people lack a facility within the limit
///
/// Groups of neighbouring squares beyond the limit (15 minutes by default) from the nearest
/// facility of a theme or kind, largest population first: "no pharmacy within 15 minutes for
/// 2,300 people here". `best_minutes` is the shortest walk in the group (absent: none reachable).
#[utoipa::path(get, path = "/api/v1/proximity/{commune}/gaps", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code"), WhichParams),
    responses(
        (status = 200, description = "The gaps", body = Value),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn gaps(
    Scoped(s): Scoped,
    Path(insee): Path<String>,
    Query(p): Query<WhichParams>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    let d = data(&s, &insee).await?;
    let which = selector(&p, &d)?;
    let settings = s.proximity.settings.clone();
    let out = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let study = d.study(&settings)?;
        let field = study.field(&which);
        let gaps = study.gaps(&field);
        let people: f64 = gaps.iter().map(|g| g.population).sum();
        Ok(json!({
            "limit_min": settings.limit_min,
            "facilities": field.facilities,
            "population_in_gaps": people,
            "gaps": gaps.iter().map(|g| {
                let mut v = serde_json::to_value(g).unwrap_or_default();
                v["neighbourhood"] = json!(d.area_at(g.lon, g.lat).map(|a| a.name.clone()));
                v
            }).collect::<Vec<_>>(),
        }))
    })
    .await
    .map_err(joined)??;
    Ok(axum::Json(out).into_response())
}

/// Walking isochrones from a point
///
/// The streets reachable within each band (5, 10 and 15 minutes by default) from a point, as
/// GeoJSON lines (one feature per band, its kilometres of street and the people living within
/// it). 400 when the point is farther than the attachment distance from any street.
#[utoipa::path(get, path = "/api/v1/proximity/{commune}/isochrone", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code"), WhichParams),
    responses(
        (status = 200, description = "One feature per band", content((Value = "application/geo+json"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn isochrones(
    Scoped(s): Scoped,
    Path(insee): Path<String>,
    Query(p): Query<WhichParams>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    let (lon, lat) = point(&p)?;
    let d = data(&s, &insee).await?;
    let settings = s.proximity.settings.clone();
    let bands = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let net = d.network.as_ref().ok_or_else(|| {
            ApiError::BadRequest("no walking network imported for this commune yet".into())
        })?;
        isochrone(net, &d.squares, &settings, lon, lat).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the point is farther than {} m from any street of the network",
                settings.attach_m
            ))
        })
    })
    .await
    .map_err(joined)??;
    Ok(geojson(
        bands
            .into_iter()
            .rev()
            .map(|b| {
                let lines: Vec<Value> = b
                    .lines
                    .iter()
                    .map(|l| l.iter().map(|p| json!([round(p.0, 6), round(p.1, 6)])).collect())
                    .collect();
                json!({"type": "Feature",
                    "geometry": {"type": "MultiLineString", "coordinates": lines},
                    "properties": {"minutes": b.minutes, "km": round(b.km, 2), "population": round(b.population, 0)}})
            })
            .collect(),
    ))
}

/// What if a facility were added here?
///
/// The squares whose walk to the nearest facility of the theme or kind would fall if one were
/// added at the point, from how many minutes to how many, the squares and people brought within
/// the limit, and the share of the commune's population within it before and after. Nothing is
/// stored.
#[utoipa::path(get, path = "/api/v1/proximity/{commune}/what-if", tag = "decision makers",
    params(("commune" = String, Path, description = "INSEE code"), WhichParams),
    responses(
        (status = 200, description = "What would change", body = agora_proximity::access::WhatIf),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn what_if(
    Scoped(s): Scoped,
    Path(insee): Path<String>,
    Query(p): Query<WhichParams>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    let (lon, lat) = point(&p)?;
    let d = data(&s, &insee).await?;
    let which = selector(&p, &d)?;
    let settings = s.proximity.settings.clone();
    let w = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        let study = d.study(&settings)?;
        let field = study.field(&which);
        Ok(study.what_if(&field, lon, lat))
    })
    .await
    .map_err(joined)??;
    Ok(axum::Json(w).into_response())
}

/// How an import is read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImportParams {
    /// Facilities: `bpe` (INSEE's BPE, `;`-separated), `csv` or `geojson`; population:
    /// `filosofi` (INSEE's 200 m squares) or `csv` (addresses with a weight).
    format: Option<String>,
}

fn imported(layer: Layer) -> ApiResult<Response> {
    Ok((StatusCode::OK, axum::Json(layer)).into_response())
}

fn joined(e: tokio::task::JoinError) -> ApiError {
    ApiError::Internal(agora_store::Error::Internal(format!("a computation failed: {e}")))
}

/// Import a commune's walking network
///
/// An OpenStreetMap extract of the commune and its surroundings, `.osm.pbf` or OSM XML (told
/// apart by their first bytes), replacing the commune's network. Kept: the ways pedestrians may
/// use (one-way streets both ways; no motorways, private or closed ways). The answer says how
/// many nodes and ways were read and kept; a corrupt file is refused (400) and changes nothing.
#[utoipa::path(put, path = "/api/v1/proximity/{commune}/network", tag = "decision makers",
    security(("bearer" = [])),
    params(("commune" = String, Path, description = "INSEE code")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The extract, PBF or XML"),
    responses(
        (status = 200, description = "What was imported", body = Layer),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_network(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(insee): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    may_modify(&who, &insee)?;
    let body = body_bytes(&s, &headers, body)?;
    let layer =
        s.proximity.import_network(&insee, body.to_vec(), &who.actor, s.clock.now()).await?;
    imported(layer)
}

/// Import facilities
///
/// A dataset of facilities (`bpe`, `csv` or `geojson`), replacing the commune's dataset of that
/// name (a city may keep INSEE's BPE and its own parks apart). BPE codes are mapped to the four
/// themes by `[proximity.bpe]` (a default is shipped); a code it neither maps nor ignores
/// refuses the file, naming it. Facilities of other communes are kept within 2 km of the
/// commune's streets.
#[utoipa::path(put, path = "/api/v1/proximity/{commune}/facilities/{dataset}", tag = "decision makers",
    security(("bearer" = [])),
    params(("commune" = String, Path, description = "INSEE code"),
        ("dataset" = String, Path, description = "The dataset's name (`bpe`, `parks`)"), ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The file"),
    responses(
        (status = 200, description = "What was imported", body = Layer),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_facilities(
    Scoped(s): Scoped,
    Who(who): Who,
    Path((insee, dataset)): Path<(String, String)>,
    Query(p): Query<ImportParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    may_modify(&who, &insee)?;
    let format = Format::parse(p.format.as_deref().unwrap_or("bpe"))?;
    let body = body_bytes(&s, &headers, body)?;
    let layer = s
        .proximity
        .import_facilities(&insee, &dataset, format, &body, &who.actor, s.clock.now())
        .await?;
    imported(layer)
}

/// Import the population
///
/// INSEE's gridded population (`filosofi`: the 200 m squares' `Idcar_200m` and `Ind`, with
/// `lcog_geo` to keep the commune's squares) or addresses with a weight (`csv`: `lon`, `lat`,
/// `weight`), replacing the commune's.
#[utoipa::path(put, path = "/api/v1/proximity/{commune}/population", tag = "decision makers",
    security(("bearer" = [])),
    params(("commune" = String, Path, description = "INSEE code"), ImportParams),
    request_body(content = String, content_type = "text/csv", description = "The file"),
    responses(
        (status = 200, description = "What was imported", body = Layer),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_population(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(insee): Path<String>,
    Query(p): Query<ImportParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    may_modify(&who, &insee)?;
    let format = Format::parse(p.format.as_deref().unwrap_or("filosofi"))?;
    let body = body_bytes(&s, &headers, body)?;
    let layer =
        s.proximity.import_population(&insee, format, &body, &who.actor, s.clock.now()).await?;
    imported(layer)
}

/// Import neighbourhoods
///
/// A GeoJSON FeatureCollection of polygons (IRIS, or the city's quarters) with `code` and
/// `name`, replacing the commune's: the shares are then given per neighbourhood too.
#[utoipa::path(put, path = "/api/v1/proximity/{commune}/areas", tag = "decision makers",
    security(("bearer" = [])),
    params(("commune" = String, Path, description = "INSEE code")),
    request_body(content = Value, content_type = "application/geo+json", description = "The neighbourhoods"),
    responses(
        (status = 200, description = "What was imported", body = Layer),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_areas(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(insee): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let (insee, _) = commune_of(&s, &insee)?;
    may_modify(&who, &insee)?;
    let body = body_bytes(&s, &headers, body)?;
    let layer = s.proximity.import_areas(&insee, &body, &who.actor, s.clock.now()).await?;
    imported(layer)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    summary,
    squares,
    facilities,
    gaps,
    isochrones,
    what_if,
    import_network,
    import_facilities,
    import_population,
    import_areas
))]
pub(crate) struct Doc;
