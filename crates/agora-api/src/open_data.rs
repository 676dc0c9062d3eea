//! Publishing open data: the datasets operators define (`/api/v1/open-data/datasets`, checked
//! against the publication rules, within the caller's commune) and the DCAT-AP 3 catalogue of
//! those published (`/api/v1/open-data/dcat`, Turtle, JSON-LD or RDF/XML by content negotiation
//! or by extension), which data.gouv.fr and CKAN/udata harvesters import.

use agora_model::InseeCode;
use agora_model::permissions::Action;
use agora_opendata::dcat::{Entry, Publisher, catalogue};
use agora_opendata::records::Records;
use agora_store::opendata::Dataset;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::doc::{Conflict, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::policy::Who;

fn refuse(e: agora_store::Error) -> ApiError {
    ApiError::from(e)
}

/// The states before and after a change, for the audit trail.
fn note(
    before: Option<&Dataset>,
    after: Option<&Dataset>,
) -> axum::Extension<crate::audit::AuditNote> {
    let json = |d: Option<&Dataset>| d.and_then(|d| serde_json::to_value(d).ok());
    axum::Extension(crate::audit::AuditNote {
        actor: None,
        before: json(before),
        after: json(after),
    })
}

/// The commune a definition is about: its own, or its place's.
fn commune_of(s: &AppState, d: &Dataset) -> Option<InseeCode> {
    if let Some(c) = &d.commune {
        return InseeCode::parse(c).ok();
    }
    let site = d.site.as_ref()?;
    s.catalog.sites().into_iter().find(|x| x.id.as_str() == site).map(|x| x.commune)
}

/// Whether the caller may publish `d`: someone of a commune publishes that commune's data only.
fn may_publish(s: &AppState, who: &crate::policy::Principal, d: &Dataset) -> ApiResult<()> {
    let commune = commune_of(s, d);
    if !who.grant.sees_all() && commune.is_none() {
        return Err(ApiError::Forbidden(format!(
            "a dataset of every commune is the Métropole's to publish; {} publishes its own (set commune)",
            who.grant.tenant_name()
        )));
    }
    who.check(Action::Publish, commune.as_ref(), None)
}

fn checked(s: &AppState, d: &Dataset) -> ApiResult<()> {
    agora_opendata::dataset::check(d, s.catalog.as_ref()).map_err(ApiError::BadRequest)
}

/// The datasets defined, published or not
#[utoipa::path(get, path = "/api/v1/open-data/datasets", tag = "open-data", security(("bearer" = [])),
    responses((status = 200, description = "Every definition, by id", body = [Dataset]), Reads))]
pub(crate) async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Dataset>>> {
    Ok(Json(s.datasets.list().await.map_err(refuse)?))
}

/// One definition
#[utoipa::path(get, path = "/api/v1/open-data/datasets/{id}", tag = "open-data", security(("bearer" = [])),
    params(("id" = String, Path, description = "The dataset's id")),
    responses((status = 200, description = "The definition", body = Dataset), (status = 404, response = NotFound), Reads))]
pub(crate) async fn get_one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Dataset>> {
    s.datasets
        .get(&id)
        .await
        .map_err(refuse)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no dataset {id}")))
}

/// Define a dataset
///
/// Checked against the publication rules: a theme's public properties only (never a device's
/// battery, radio or counters), footfall never finer than hourly, a place and commune that
/// exist, a known licence (`etalab-2.0`, the default, or `odbl-1.0`). It is public once
/// `published` is true.
#[utoipa::path(post, path = "/api/v1/open-data/datasets", tag = "open-data", security(("bearer" = [])),
    request_body = Dataset,
    responses((status = 201, description = "Stored", body = Dataset), (status = 409, response = Conflict), Writes))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Who(who): Who,
    Json(d): Json<Dataset>,
) -> ApiResult<Response> {
    checked(&s, &d)?;
    may_publish(&s, &who, &d)?;
    if s.datasets.get(&d.id).await.map_err(refuse)?.is_some() {
        return Err(ApiError::Conflict(format!("dataset {} exists: PUT it to change it", d.id)));
    }
    let stored = s.datasets.put(d, s.clock.now()).await.map_err(refuse)?;
    Ok((StatusCode::CREATED, note(None, Some(&stored)), Json(stored)).into_response())
}

/// Change a dataset
#[utoipa::path(put, path = "/api/v1/open-data/datasets/{id}", tag = "open-data", security(("bearer" = [])),
    params(("id" = String, Path, description = "The dataset's id")),
    request_body = Dataset,
    responses((status = 200, description = "Stored", body = Dataset), (status = 404, response = NotFound), Writes))]
pub(crate) async fn replace(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
    Json(d): Json<Dataset>,
) -> ApiResult<Response> {
    if d.id != id {
        return Err(ApiError::BadRequest(format!("the body's id {} is not the URL's {id}", d.id)));
    }
    checked(&s, &d)?;
    let Some(before) = s.datasets.get(&id).await.map_err(refuse)? else {
        return Err(ApiError::NotFound(format!("no dataset {id}")));
    };
    may_publish(&s, &who, &before)?;
    may_publish(&s, &who, &d)?;
    let stored = s.datasets.put(d, s.clock.now()).await.map_err(refuse)?;
    Ok((note(Some(&before), Some(&stored)), Json(stored)).into_response())
}

/// Remove a dataset
#[utoipa::path(delete, path = "/api/v1/open-data/datasets/{id}", tag = "open-data", security(("bearer" = [])),
    params(("id" = String, Path, description = "The dataset's id")),
    responses((status = 204, description = "Removed"), (status = 404, response = NotFound), Writes))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let Some(before) = s.datasets.get(&id).await.map_err(refuse)? else {
        return Err(ApiError::NotFound(format!("no dataset {id}")));
    };
    may_publish(&s, &who, &before)?;
    s.datasets.delete(&id).await.map_err(refuse)?;
    Ok((StatusCode::NO_CONTENT, note(Some(&before), None)).into_response())
}

/// The public address links start with.
pub fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(b) = &s.config.open_data.base_url {
        return b.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = if s.config.https { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The catalogue's graph.
async fn graph(s: &AppState, headers: &HeaderMap) -> ApiResult<agora_opendata::dcat::Graph> {
    let cfg = &s.config.open_data;
    let publisher = Publisher {
        base: base_url(s, headers),
        title: cfg.title.clone(),
        description: cfg.description.clone(),
        name: cfg.publisher.clone(),
        email: cfg.contact_email.clone(),
        territory: s
            .catalog
            .communes()
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let sites = s.catalog.sites();
    let communes = s.catalog.communes();
    let mut entries = Vec::new();
    for d in s.datasets.list().await.map_err(refuse)?.into_iter().filter(|d| d.published) {
        // Only the time covered is read here: the computed kinds (the index, the 15-minute city)
        // have none, and are not computed for the catalogue.
        let rec = match d.kind {
            agora_store::opendata::DatasetKind::Wellbeing
            | agora_store::opendata::DatasetKind::Accessibility
            | agora_store::opendata::DatasetKind::Reports
            | agora_store::opendata::DatasetKind::PointsOfInterest
            | agora_store::opendata::DatasetKind::Tours => Records::computed(&d, Vec::new()),
            _ => dataset_records(s, &d).await?,
        };
        let temporal = rec.range().map(|r| (r.from, r.to));
        let here: Vec<_> = sites
            .iter()
            .filter(|x| d.site.as_deref().is_none_or(|id| x.id.as_str() == id))
            .filter(|x| d.commune.as_deref().is_none_or(|c| x.commune.as_str() == c))
            .filter_map(|x| Some((x, x.lat?, x.lon?)))
            .collect();
        let name = match (&d.site, &d.commune) {
            (Some(_), _) => here.first().map(|(x, ..)| x.name.clone()),
            (None, Some(c)) => {
                communes.iter().find(|x| x.insee.as_str() == c).map(|x| x.name.clone())
            }
            (None, None) => {
                Some(communes.iter().map(|x| x.name.clone()).collect::<Vec<_>>().join(", "))
            }
        };
        let spatial = (!here.is_empty()).then(|| {
            let n = here.len() as f64;
            let lat = here.iter().map(|h| h.1).sum::<f64>() / n;
            let lon = here.iter().map(|h| h.2).sum::<f64>() / n;
            let min = |f: fn(&(&agora_store::catalog::Site, f64, f64)) -> f64| {
                here.iter().map(f).fold(f64::INFINITY, f64::min)
            };
            let max = |f: fn(&(&agora_store::catalog::Site, f64, f64)) -> f64| {
                here.iter().map(f).fold(f64::NEG_INFINITY, f64::max)
            };
            (
                name.clone().unwrap_or_default(),
                (lat, lon),
                (min(|h| h.1), min(|h| h.2), max(|h| h.1), max(|h| h.2)),
            )
        });
        entries.push(Entry { dataset: d, temporal, spatial });
    }
    Ok(catalogue(&publisher, &entries))
}

/// Which serialization: by extension, else by `Accept` (Turtle when nothing better is asked).
fn negotiate(ext: Option<&str>, headers: &HeaderMap) -> ApiResult<&'static str> {
    if let Some(e) = ext {
        return match e {
            "ttl" => Ok("text/turtle"),
            "jsonld" => Ok("application/ld+json"),
            "rdf" => Ok("application/rdf+xml"),
            _ => {
                Err(ApiError::NotFound(format!("no catalogue in .{e}: use .ttl, .jsonld or .rdf")))
            }
        };
    }
    let accept = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()).unwrap_or("");
    // The first listed of the types agora writes, weights aside (harvesters list one).
    let mut best: Option<(f32, &'static str)> = None;
    for part in accept.split(',') {
        let mut bits = part.split(';');
        let mt = bits.next().unwrap_or("").trim().to_ascii_lowercase();
        let q: f32 = bits
            .find_map(|b| b.trim().strip_prefix("q=").and_then(|v| v.parse().ok()))
            .unwrap_or(1.0);
        let kind = match mt.as_str() {
            "text/turtle" | "application/x-turtle" => "text/turtle",
            "application/ld+json" | "application/json" => "application/ld+json",
            "application/rdf+xml" | "application/xml" | "text/xml" => "application/rdf+xml",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, kind));
        }
    }
    Ok(best.map_or("text/turtle", |(_, k)| k))
}

async fn serve_catalogue(
    s: &AppState,
    headers: &HeaderMap,
    ext: Option<&str>,
) -> ApiResult<Response> {
    let media = negotiate(ext, headers)?;
    let g = graph(s, headers).await?;
    let body = match media {
        "text/turtle" => g.turtle(),
        "application/ld+json" => g.json_ld().to_string(),
        _ => g.rdf_xml(),
    };
    let ctype = format!("{media}; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, ctype), (header::VARY, "Accept".to_owned())], body).into_response())
}

/// The DCAT-AP 3 catalogue
///
/// Every published dataset with its distributions (CSV, JSON and GeoJSON exports) and the
/// Explore API serving them, in Turtle (default), JSON-LD or RDF/XML as `Accept` asks (also at
/// `dcat.ttl`, `dcat.jsonld` and `dcat.rdf`). Valid against the DCAT-AP 3.0.1 SHACL shapes.
#[utoipa::path(get, path = "/api/v1/open-data/dcat", tag = "open-data",
    responses((status = 200, description = "The catalogue", content(
        (String = "text/turtle"), (serde_json::Value = "application/ld+json"), (String = "application/rdf+xml")))))]
pub(crate) async fn dcat(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    serve_catalogue(&s, &headers, None).await
}

/// The catalogue in Turtle (`/api/v1/open-data/dcat.ttl`).
#[utoipa::path(get, path = "/api/v1/open-data/dcat.ttl", tag = "open-data",
    responses((status = 200, description = "The DCAT-AP 3 catalogue", content((String = "text/turtle")))))]
pub(crate) async fn dcat_ttl(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    serve_catalogue(&s, &headers, Some("ttl")).await
}

/// The catalogue in JSON-LD (`/api/v1/open-data/dcat.jsonld`).
#[utoipa::path(get, path = "/api/v1/open-data/dcat.jsonld", tag = "open-data",
    responses((status = 200, description = "The DCAT-AP 3 catalogue", content((serde_json::Value = "application/ld+json")))))]
pub(crate) async fn dcat_jsonld(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_catalogue(&s, &headers, Some("jsonld")).await
}

/// The catalogue in RDF/XML (`/api/v1/open-data/dcat.rdf`).
#[utoipa::path(get, path = "/api/v1/open-data/dcat.rdf", tag = "open-data",
    responses((status = 200, description = "The DCAT-AP 3 catalogue", content((String = "application/rdf+xml")))))]
pub(crate) async fn dcat_rdf(State(s): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    serve_catalogue(&s, &headers, Some("rdf")).await
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, get_one, create, replace, delete, dcat, dcat_ttl, dcat_jsonld, dcat_rdf))]
pub(crate) struct Doc;

/// A dataset's records: read from the store, or computed from the well-being index and the
/// 15-minute city for those kinds.
pub async fn dataset_records(
    s: &AppState,
    d: &agora_store::opendata::Dataset,
) -> crate::error::ApiResult<Records> {
    use agora_store::opendata::DatasetKind;
    match d.kind {
        DatasetKind::Wellbeing => {
            Ok(Records::computed(d, crate::wellbeing::open_data_rows(s, d).await?))
        }
        DatasetKind::Accessibility => {
            Ok(Records::computed(d, crate::proximity::open_data_rows(s, d).await?))
        }
        DatasetKind::Reports => {
            Ok(Records::computed(d, crate::reports::open_data_rows(s, d).await?))
        }
        DatasetKind::PointsOfInterest | DatasetKind::Tours => {
            Ok(Records::computed(d, crate::visitors::open_data_rows(s, d).await?))
        }
        _ => Ok(Records::open(d, s.catalog.as_ref(), s.store.as_ref(), s.clock.now()).await?),
    }
}
