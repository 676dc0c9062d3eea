//! The Opendatasoft Explore API v2.1, over the datasets an operator published: what reusers'
//! code and notebooks already call (`/api/explore/v2.1/catalog/datasets…`), with the real API's
//! answers (`total_count`, `results`, flat records), its parameters (`select`, `where` repeated,
//! `group_by`, `order_by`, `limit` ≤ 100 and `offset + limit` ≤ 10,000, `refine`, `exclude`,
//! `timezone`) and its errors (`{"error_code", "message"}`: `ODSQLSyntaxError`, `ODSQLError`,
//! `InvalidRESTParameterError`, `NotFoundResource`).
//!
//! Only published datasets exist here: an unpublished one is answered exactly like one that
//! does not exist. Exports stream: rows are written into a buffer sent as it fills, through a
//! small channel, so a year of minute data leaves memory flat; a failure midway cuts the
//! transfer (the client sees an incomplete download, never a short file that looks whole).
//! At most [`EXPORTS`] exports run at once; beyond, 429 with `Retry-After`.

use std::sync::Arc;

use agora_opendata::explore::{self as ex, Format, Writer};
use agora_opendata::odsql::{Cmp, Expr, FieldType, Lit, OdsqlError, Query};
use agora_opendata::records::Records;
use agora_store::opendata::{Dataset, DatasetKind};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::AppState;

/// Exports running at once, at most.
pub const EXPORTS: usize = 2;
/// Longest query string accepted.
const MAX_QUERY_STRING: usize = 32 << 10;
/// Most `where`, `refine`, `exclude` or `facet` parameters of one request.
const MAX_REPEATED: usize = 16;
/// Records and facets scans running at once, at most; beyond, they wait their turn.
const SCANS: usize = 4;
/// Longest a records or facets scan may read before it is refused as too broad.
const SCAN_TIME: std::time::Duration = std::time::Duration::from_secs(20);
/// Longest an export waits for a client to take its next bytes.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

static SCAN_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(SCANS));

/// A scan slot, waited for at most 10 s (else 429).
async fn scan_slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), SCAN_SLOTS.acquire()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(ExploreError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TooManyRequests",
            message: format!("{SCANS} queries are running; try again shortly"),
            retry_after: Some(5),
        }),
    }
}

/// An error of the Explore API, in the real API's shape.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ExploreErrorBody {
    /// `ODSQLSyntaxError`, `ODSQLError`, `InvalidRESTParameterError`, `NotFoundResource`,
    /// `TooManyRequests`, `InternalServerError`.
    error_code: String,
    /// What is wrong, naming the parameter or the clause.
    message: String,
}

/// A bad parameter or ODSQL clause.
#[derive(utoipa::ToResponse)]
#[response(
    description = "A parameter or an ODSQL clause is invalid: `error_code` and `message` say which",
    content_type = "application/json"
)]
#[allow(dead_code)]
pub(crate) struct ExploreBadRequest(ExploreErrorBody);

/// Nothing published by that name.
#[derive(utoipa::ToResponse)]
#[response(
    description = "No published dataset (or record) by that identifier",
    content_type = "application/json"
)]
#[allow(dead_code)]
pub(crate) struct ExploreNotFound(ExploreErrorBody);

/// Too many queries or exports at once, or too many requests from one address.
#[derive(utoipa::ToResponse)]
#[response(
    description = "Too many queries or exports at once, or a rate limit reached; retry after `Retry-After` seconds",
    content_type = "application/json"
)]
#[allow(dead_code)]
pub(crate) struct ExploreTooMany(ExploreErrorBody);

/// The parameters of a records query (the Explore API v2.1's).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct RecordsParams {
    /// Fields and expressions answered (ODSQL): `date, pm10`, `avg(pm10) as mean`.
    select: Option<String>,
    /// A condition (ODSQL): `pm10 > 50 and date >= date'2026-01'`; repeat it to and them.
    #[serde(rename = "where")]
    #[param(rename = "where")]
    filter: Option<String>,
    /// Groups (ODSQL): `site_name`, `month(date) as m`.
    group_by: Option<String>,
    /// Order (ODSQL): `m desc`, `count(*) desc`.
    order_by: Option<String>,
    /// Rows answered: -1 to 100 (20,000 with `group_by`); default 10.
    limit: Option<i64>,
    /// Rows skipped; `offset + limit` ≤ 10,000 (20,000 with `group_by`).
    offset: Option<i64>,
    /// `facet:value` (`date:2026/05`), repeatable.
    refine: Option<String>,
    /// `facet:value` left out, repeatable.
    exclude: Option<String>,
    /// IANA time zone of dates answered and read (default UTC).
    timezone: Option<String>,
}

/// A refusal, in the real API's shape.
#[derive(Debug)]
pub(crate) struct ExploreError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ExploreError {
    fn param(message: String) -> Self {
        ExploreError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidRESTParameterError",
            message,
            retry_after: None,
        }
    }
    fn not_found(message: String) -> Self {
        ExploreError {
            status: StatusCode::NOT_FOUND,
            code: "NotFoundResource",
            message,
            retry_after: None,
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "explore API");
        ExploreError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalServerError",
            message: "the server could not read the data; try again later".into(),
            retry_after: None,
        }
    }
}

impl From<OdsqlError> for ExploreError {
    fn from(e: OdsqlError) -> Self {
        ExploreError {
            status: StatusCode::BAD_REQUEST,
            code: e.code(),
            message: e.to_string(),
            retry_after: None,
        }
    }
}

impl From<ex::Error> for ExploreError {
    fn from(e: ex::Error) -> Self {
        match e {
            ex::Error::Odsql(e) => e.into(),
            ex::Error::Read(agora_query::Error::Invalid(m)) => ExploreError::param(m),
            ex::Error::TooLong => ExploreError::param(ex::Error::TooLong.to_string()),
            ex::Error::Read(e) => ExploreError::internal(e),
        }
    }
}

impl IntoResponse for ExploreError {
    fn into_response(self) -> Response {
        let mut r =
            (self.status, axum::Json(json!({"error_code": self.code, "message": self.message})))
                .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

type Result<T> = std::result::Result<T, ExploreError>;

/// The request's parameters, repeated ones kept (`where`, `refine`, `exclude`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY_STRING {
            return Err(ExploreError::param(format!(
                "the query string is longer than {MAX_QUERY_STRING} bytes"
            )));
        }
        let p = serde_urlencoded::from_str::<Vec<(String, String)>>(&raw)
            .map(Params)
            .map_err(|e| ExploreError::param(format!("the query string does not decode: {e}")))?;
        for key in ["where", "refine", "exclude", "facet"] {
            if p.all(key).len() > MAX_REPEATED {
                return Err(ExploreError::param(format!(
                    "Invalid value for {key} API parameter: at most {MAX_REPEATED} are accepted."
                )));
            }
        }
        Ok(p)
    }
    fn one(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
    fn int(&self, key: &str) -> Result<Option<i64>> {
        self.one(key)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    ExploreError::param(format!(
                        "Invalid value for {key} API parameter: {v} is not an integer."
                    ))
                })
            })
            .transpose()
    }
    fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.one(key) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ExploreError::param(format!(
                "Invalid value for {key} API parameter: {v} was found but true or false is expected."
            ))),
        }
    }
    fn timezone(&self) -> Result<Tz> {
        match self.one("timezone") {
            None | Some("") => Ok(Tz::UTC),
            Some(t) => t.parse::<Tz>().map_err(|_| {
                ExploreError::param(format!(
                    "Invalid value for timezone API parameter: unknown time zone {t}."
                ))
            }),
        }
    }
}

/// A published dataset, or the real API's 404.
async fn published(s: &AppState, id: &str) -> Result<Dataset> {
    match s.datasets.get(id).await {
        Ok(Some(d)) if d.published => Ok(d),
        Ok(_) => {
            Err(ExploreError::not_found(format!("The requested dataset {id} does not exist.")))
        }
        Err(e) => Err(ExploreError::internal(e)),
    }
}

/// What a request on one dataset asks: its parameters, time zone, the dataset's records and the
/// query.
struct Asked {
    p: Params,
    tz: Tz,
    rec: Records,
    q: Query,
}

async fn asked(s: &AppState, id: &str, raw: Option<String>) -> Result<Asked> {
    let p = Params::parse(raw)?;
    let tz = p.timezone()?;
    let d = published(s, id).await?;
    let rec = records_of(s, &d).await?;
    let q = query_of(&p, &rec, tz)?;
    Ok(Asked { p, tz, rec, q })
}

async fn records_of(s: &AppState, d: &Dataset) -> Result<Records> {
    crate::open_data::dataset_records(s, d).await.map_err(ExploreError::internal)
}

/// The query of the parameters, with `refine` and `exclude` turned into conditions.
fn query_of(p: &Params, rec: &Records, tz: Tz) -> Result<Query> {
    let wheres = p.all("where");
    let mut q = Query::parse(p.one("select"), &wheres, p.one("group_by"), p.one("order_by"))?;
    for (key, negate) in [("refine", false), ("exclude", true)] {
        for r in p.all(key) {
            let cond = facet_condition(rec, r, tz, key)?;
            let cond = if negate { Expr::Not(Box::new(cond)) } else { cond };
            q.filter = Some(match q.filter.take() {
                None => cond,
                Some(f) => Expr::And(Box::new(f), Box::new(cond)),
            });
        }
    }
    Ok(q)
}

/// `field:value` as a condition: a date field takes `2024`, `2024/05` or `2024/05/01` (that
/// year, month or day in the request's time zone), other fields their exact value.
fn facet_condition(rec: &Records, r: &str, tz: Tz, key: &str) -> Result<Expr> {
    let Some((name, value)) = r.split_once(':') else {
        return Err(ExploreError::param(format!(
            "Invalid value for {key} API parameter: {r} (expected facet:value)."
        )));
    };
    let Some(f) = rec.fields.iter().find(|f| f.name == name) else {
        return Err(ExploreError::param(format!(
            "Invalid value for {key} API parameter: {name} is not a facet of this dataset."
        )));
    };
    let field = Box::new(Expr::Field(name.to_owned()));
    match f.ftype {
        FieldType::DateTime | FieldType::Date => {
            let parts: Vec<&str> = value.split('/').collect();
            let bad = || {
                ExploreError::param(format!(
                    "Invalid value for {key} API parameter: {value} is not a date (2024, 2024/05 or 2024/05/01)."
                ))
            };
            // Years, months and days fit in 16 bits: `y + 1` below never overflows.
            let nums: Vec<u32> = parts
                .iter()
                .map(|x| x.parse::<u16>().map(u32::from).map_err(|_| bad()))
                .collect::<Result<_>>()?;
            let day = |y: u32, m: u32, d: u32| {
                chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
                    .filter(|x| (1..=9998).contains(&x.year()))
            };
            let (first, next) = match nums[..] {
                [y] => (day(y, 1, 1), day(y + 1, 1, 1)),
                [y, m] if (1..=12).contains(&m) => {
                    (day(y, m, 1), if m == 12 { day(y + 1, 1, 1) } else { day(y, m + 1, 1) })
                }
                [y, m, d] => (day(y, m, d), day(y, m, d).and_then(|x| x.succ_opt())),
                _ => (None, None),
            };
            let (Some(first), Some(next)) = (first, next) else { return Err(bad()) };
            // A date field's value is its day at midnight UTC: its refinements are read in UTC;
            // a datetime's, in the request's time zone.
            let text = |d: chrono::NaiveDate| {
                if f.ftype == FieldType::Date { format!("{d}T00:00:00Z") } else { d.to_string() }
            };
            let _ = tz;
            let (lo, hi) = (text(first), text(next));
            Ok(Expr::InRange {
                e: field,
                lo: Some(Box::new(Expr::Lit(Lit::Date(lo)))),
                lo_incl: true,
                hi: Some(Box::new(Expr::Lit(Lit::Date(hi)))),
                hi_incl: false,
            })
        }
        FieldType::Int | FieldType::Double => {
            let n: f64 = value.parse().map_err(|_| {
                ExploreError::param(format!(
                    "Invalid value for {key} API parameter: {value} is not a number."
                ))
            })?;
            Ok(Expr::Cmp(Cmp::Eq, field, Box::new(Expr::Lit(Lit::Num(n)))))
        }
        _ => Ok(Expr::Cmp(Cmp::Eq, field, Box::new(Expr::Lit(Lit::Text(value.to_owned()))))),
    }
}

/// `limit` and `offset` as the real API checks them.
fn paging(p: &Params, grouped: bool) -> Result<(usize, usize)> {
    let max: i64 = if grouped { 20_000 } else { 100 };
    let window: i64 = if grouped { 20_000 } else { 10_000 };
    let limit = p.int("limit")?.unwrap_or(10);
    if !(-1..=max).contains(&limit) {
        return Err(ExploreError::param(format!(
            "Invalid value for limit API parameter: {limit} was found but -1 <= limit <= {max} is expected."
        )));
    }
    let limit = if limit == -1 { max } else { limit };
    let offset = p.int("offset")?.unwrap_or(0);
    if offset < 0 {
        return Err(ExploreError::param(format!(
            "Invalid value for offset API parameter: {offset} was found but offset >= 0 is expected."
        )));
    }
    if offset > window - limit {
        return Err(ExploreError::param(format!(
            "Invalid value for offset API parameter: offset + limit must be at most {window} ({} was found); use the exports to read more.",
            offset.saturating_add(limit)
        )));
    }
    Ok((offset as usize, limit as usize))
}

fn licence_of(d: &Dataset) -> (&'static str, &'static str) {
    agora_opendata::dataset::LICENCES
        .iter()
        .find(|l| l.0 == d.licence)
        .map_or(("", ""), |l| (l.1, l.2))
}

/// A dataset as the real API describes it.
pub(crate) fn dataset_json(s: &AppState, d: &Dataset, rec: Option<&Records>) -> Value {
    let fields: Vec<Value> = agora_opendata::dataset::fields(d)
        .iter()
        .map(|f| {
            let mut annotations = Map::new();
            if f.facet {
                annotations.insert("facet".into(), json!([]));
            }
            if let Some(u) = &f.unit {
                annotations.insert("unit".into(), json!([u]));
            }
            json!({"name": f.name, "label": f.label, "type": f.ftype.as_str(),
                   "description": f.description, "annotations": annotations})
        })
        .collect();
    let (licence, licence_url) = licence_of(d);
    let mut features = vec!["analyze"];
    if d.kind == DatasetKind::Measurements {
        features.push("timeserie");
    }
    features.push("geo");
    let territory: Vec<String> = match (&d.commune, &d.site) {
        (_, Some(site)) => s
            .catalog
            .sites()
            .iter()
            .filter(|x| x.id.as_str() == site)
            .map(|x| x.name.clone())
            .collect(),
        (Some(c), None) => s
            .catalog
            .communes()
            .iter()
            .filter(|x| x.insee.as_str() == c)
            .map(|x| x.name.clone())
            .collect(),
        (None, None) => s.catalog.communes().iter().map(|x| x.name.clone()).collect(),
    };
    let range = rec.and_then(|r| r.range());
    let time = |t: agora_model::Timestamp| ex::datetime_text(t.as_nanos(), Tz::UTC);
    json!({
        "dataset_id": d.id,
        "dataset_uid": format!("da_{}", d.id),
        "attachments": [],
        "has_records": rec.is_none_or(|r| r.dataset.kind != DatasetKind::Measurements || range.is_some()),
        "data_visible": true,
        "features": features,
        "metas": {"default": {
            "title": d.title,
            "description": d.description,
            "keyword": d.keywords,
            "theme": [d.theme.as_str()],
            "publisher": d.publisher.clone().unwrap_or_else(|| s.config.open_data.publisher.clone()),
            "contact_email": d.contact_email.clone().unwrap_or_else(|| s.config.open_data.contact_email.clone()),
            "license": licence,
            "license_url": licence_url,
            "language": "fr",
            "timezone": "UTC",
            "territory": territory,
            "modified": time(d.modified_at),
            "metadata_processed": time(d.modified_at),
            "data_processed": range.map(|r| time(r.to)),
            "temporal_coverage_start": range.map(|r| time(r.from)),
            "temporal_coverage_end": range.map(|r| time(r.to)),
            "resolution": (d.kind == DatasetKind::Measurements).then(|| d.resolution.as_str()),
            "embargo_hours": d.embargo_hours,
        }},
        "fields": fields,
    })
}

/// The catalogue: published datasets, searchable
///
/// Opendatasoft Explore API v2.1: `where`, `order_by`, `refine`, `limit` and `offset` over the
/// catalogue's fields (`dataset_id`, `title`, `description`, `keyword`, `theme`, `publisher`,
/// `license`, `modified`, `commune`, `site`, `resolution`).
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets", tag = "open-data",
    params(RecordsParams),
    responses(
        (status = 200, description = "`total_count` and `results`, the datasets as the real API describes them", body = Object),
        (status = 400, response = ExploreBadRequest),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn datasets(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let p = Params::parse(raw)?;
    let tz = p.timezone()?;
    let all = s.datasets.list().await.map_err(ExploreError::internal)?;
    let published: Vec<Dataset> = all.into_iter().filter(|d| d.published).collect();
    // The catalogue is itself a small dataset: the same ODSQL runs over its rows.
    let (fields, rows) = catalogue_rows(&s, &published);
    let wheres = p.all("where");
    let mut q = Query::parse(None, &wheres, None, p.one("order_by"))?;
    for r in p.all("refine") {
        let (k, v) = r.split_once(':').ok_or_else(|| {
            ExploreError::param(format!(
                "Invalid value for refine API parameter: {r} (expected facet:value)."
            ))
        })?;
        if !fields.iter().any(|f| f.name == k) {
            return Err(ExploreError::param(format!(
                "Invalid value for refine API parameter: {k} is not a facet of the catalogue."
            )));
        }
        let cond = Expr::Cmp(
            Cmp::Eq,
            Box::new(Expr::Field(k.to_owned())),
            Box::new(Expr::Lit(Lit::Text(v.to_owned()))),
        );
        q.filter = Some(match q.filter.take() {
            None => cond,
            Some(f) => Expr::And(Box::new(f), Box::new(cond)),
        });
    }
    let c = agora_opendata::odsql::compile(&q, &fields, tz)?;
    let (offset, limit) = paging(&p, false)?;
    let mut run = c.run(Some(offset + limit));
    let mut kept = Vec::new();
    let mut n = 0;
    for (i, row) in rows.iter().enumerate() {
        if run.push(row)?.is_some() {
            if n >= offset && kept.len() < limit {
                kept.push(i);
            }
            n += 1;
        }
    }
    let ordered: Vec<usize> = if c.streams() {
        kept
    } else {
        // Ordered: the projection's first column is the dataset id.
        let o = run.finish();
        o.rows
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|r| match &r[0] {
                agora_opendata::odsql::V::Text(id) => published.iter().position(|d| d.id == **id),
                _ => None,
            })
            .collect()
    };
    let mut results = Vec::new();
    for i in ordered {
        let rec = records_of(&s, &published[i]).await?;
        results.push(dataset_json(&s, &published[i], Some(&rec)));
    }
    Ok(json_body(&Catalogue { total_count: n, results }))
}

/// The catalogue's fields and rows, for `where`, `order_by` and `refine` on the list.
fn catalogue_rows(
    s: &AppState,
    ds: &[Dataset],
) -> (Vec<agora_opendata::odsql::Field>, Vec<Vec<agora_opendata::odsql::V>>) {
    use agora_opendata::odsql::{Field, V};
    let f = |name: &str, ftype| Field {
        name: name.into(),
        label: name.into(),
        ftype,
        description: None,
        unit: None,
        facet: true,
    };
    let fields = vec![
        f("dataset_id", FieldType::Text),
        f("title", FieldType::Text),
        f("description", FieldType::Text),
        f("keyword", FieldType::Text),
        f("theme", FieldType::Text),
        f("publisher", FieldType::Text),
        f("license", FieldType::Text),
        f("modified", FieldType::DateTime),
        f("commune", FieldType::Text),
        f("site", FieldType::Text),
        f("resolution", FieldType::Text),
    ];
    let opt = |x: &Option<String>| x.as_deref().map_or(V::Null, V::text);
    let rows = ds
        .iter()
        .map(|d| {
            vec![
                V::text(d.id.as_str()),
                V::text(d.title.as_str()),
                V::text(d.description.as_str()),
                V::text(d.keywords.join(", ")),
                V::text(d.theme.as_str()),
                V::text(
                    d.publisher.clone().unwrap_or_else(|| s.config.open_data.publisher.clone()),
                ),
                V::text(licence_of(d).0),
                V::Time(d.modified_at.as_nanos()),
                opt(&d.commune),
                opt(&d.site),
                if d.kind == DatasetKind::Measurements {
                    V::text(d.resolution.as_str())
                } else {
                    V::Null
                },
            ]
        })
        .collect();
    (fields, rows)
}

/// One published dataset
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset")),
    responses(
        (status = 200, description = "Its metadata (`metas.default`) and fields", body = Object),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn dataset(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let d = published(&s, &id).await?;
    let rec = records_of(&s, &d).await?;
    Ok(axum::Json(dataset_json(&s, &d, Some(&rec))).into_response())
}

/// A dataset's records
///
/// Filtered, aggregated, grouped and ordered with ODSQL, as on Opendatasoft's Explore API v2.1.
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}/records", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset"), RecordsParams),
    responses(
        (status = 200, description = "`total_count` and `results`, flat records", body = Object),
        (status = 400, response = ExploreBadRequest),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn records(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let Asked { p, tz, rec, q } = asked(&s, &id, raw).await?;
    let grouped = !q.group_by.is_empty();
    let (offset, limit) = paging(&p, grouped)?;
    let _slot = scan_slot().await?;
    let deadline = std::time::Instant::now() + SCAN_TIME;
    let a = ex::answer(&rec, s.store.as_ref(), &q, tz, offset, limit, Some(deadline)).await?;
    let results: Vec<ex::JsonRow> = a
        .rows
        .iter()
        .map(|row| ex::JsonRow { keys: &a.keys, types: &a.types, row, tz, skip: None })
        .collect();
    Ok(json_body(&Answer { total_count: a.total, results }))
}

/// One record
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}/records/{record_id}", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset"),
           ("record_id" = String, Path, description = "`device@2026-05-01T10:00:00Z`, or a place's or device's id"),
           ("select" = Option<String>, Query, description = "Fields answered (ODSQL)"),
           ("timezone" = Option<String>, Query, description = "IANA time zone of dates (default UTC)")),
    responses(
        (status = 200, description = "The record", body = Object),
        (status = 400, response = ExploreBadRequest),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn record(
    State(s): State<AppState>,
    Path((id, record_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let p = Params::parse(raw)?;
    let tz = p.timezone()?;
    let d = published(&s, &id).await?;
    let rec = records_of(&s, &d).await?;
    let missing =
        || ExploreError::not_found(format!("The requested record {record_id} does not exist."));
    let q = Query::parse(p.one("select"), &[], None, None)?;
    let c = agora_opendata::odsql::compile(&q, &rec.fields, tz)?;
    if c.is_grouped() {
        return Err(ExploreError::param("a single record cannot be aggregated".into()));
    }
    let windows = match d.kind {
        DatasetKind::Measurements => vec![rec.locate(&record_id).ok_or_else(missing)?.0],
        _ => rec.windows(None, None),
    };
    for w in windows {
        for row in rec.window(s.store.as_ref(), w).await.map_err(ExploreError::internal)? {
            if rec.record_id(&row) == record_id {
                let n = c.answered();
                let keys: Vec<String> = c.columns[..n].iter().map(|c| c.key.clone()).collect();
                let types: Vec<_> = c.columns[..n].iter().map(|c| c.ty).collect();
                let out = c.project(&row);
                return Ok(json_body(&ex::JsonRow {
                    keys: &keys,
                    types: &types,
                    row: &out,
                    tz,
                    skip: None,
                }));
            }
        }
    }
    Err(missing())
}

/// The export formats of a dataset
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset")),
    responses(
        (status = 200, description = "`_links` to each format", body = Object),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn export_formats(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let _ = published(&s, &id).await?;
    let links: Vec<Value> = ["csv", "json", "jsonl", "geojson", "parquet"]
        .iter()
        .map(|f| json!({"rel": f, "href": format!("/api/explore/v2.1/catalog/datasets/{id}/exports/{f}")}))
        .collect();
    Ok(axum::Json(json!({"_links": links})).into_response())
}

/// A whole dataset (or what `where` keeps), streamed
///
/// `csv` (`;` and a BOM; `delimiter`, `with_bom`), `json`, `jsonl`, `geojson` or `parquet`; every
/// record unless `limit` is set. Answers carry an `ETag`; `If-None-Match` with it answers 304.
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports/{format}", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset"),
           ("format" = String, Path, description = "`csv`, `json`, `jsonl`, `geojson` or `parquet`"),
           RecordsParams,
           ("delimiter" = Option<String>, Query, description = "CSV: `;` (default), `,`, `|` or a tab"),
           ("with_bom" = Option<bool>, Query, description = "CSV: a byte-order mark first (default true)")),
    responses(
        (status = 200, description = "The records", content(
            (String = "text/csv"), (Object = "application/json"), (String = "application/jsonl"),
            (Object = "application/geo+json"), (String = "application/vnd.apache.parquet"))),
        (status = 304, description = "Unchanged since the `ETag` sent"),
        (status = 400, response = ExploreBadRequest),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn export(
    State(s): State<AppState>,
    Path((id, format)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let p = Params::parse(raw)?;
    let tz = p.timezone()?;
    let d = published(&s, &id).await?;
    let mut fmt = Format::parse(&format).ok_or_else(|| {
        ExploreError::param(format!(
            "Invalid value for format: {format} is not an export format of this server (csv, json, jsonl, geojson, parquet)."
        ))
    })?;
    if let Format::Csv { delimiter, bom } = &mut fmt {
        if let Some(x) = p.one("delimiter") {
            *delimiter = match x {
                ";" => b';',
                "," => b',',
                "\t" => b'\t',
                "|" => b'|',
                _ => {
                    return Err(ExploreError::param(format!(
                        "Invalid value for delimiter API parameter: {x:?} was found but one of ; , | or a tab is expected."
                    )));
                }
            };
        }
        *bom = p.flag("with_bom", true)?;
    }
    let rec = records_of(&s, &d).await?;
    let q = query_of(&p, &rec, tz)?;
    let c = ex::prepare(&rec, &q, tz)?;
    let limit = match p.int("limit")?.unwrap_or(-1) {
        -1 => None,
        n if n >= 0 => Some(n as u64),
        n => {
            return Err(ExploreError::param(format!(
                "Invalid value for limit API parameter: {n} was found but limit >= -1 is expected."
            )));
        }
    };
    if !c.streams() && !c.is_grouped() && limit.is_none_or(|l| l > 100_000) {
        return Err(ExploreError::param(
            "an export with order_by must set a limit of at most 100000 (rows are written in date order otherwise)".into(),
        ));
    }
    // The same data asked again: the same entity tag, so a client can skip the download.
    let etag = export_etag(&d, &rec, raw_for_etag(&p), &format);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|x| x.trim() == etag))
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let Ok(permit) = s.exports.clone().try_acquire_owned() else {
        return Err(ExploreError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TooManyRequests",
            message: format!("{EXPORTS} exports are running; try again shortly"),
            retry_after: Some(10),
        });
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let store = s.store.clone();
    let windows = ex::windows_for(&rec, &q, tz);
    tokio::spawn(async move {
        let _permit = permit;
        let mut w = Writer::new(fmt, &c, tz);
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        w.start(&mut buf);
        let mut run = c.run(limit.map(|l| l as usize));
        let full = |w: &Writer| limit.is_some_and(|l| w.rows() >= l);
        'windows: for win in windows {
            let rows = match rec.window(store.as_ref(), win).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, dataset = %rec.dataset.id, "export cut");
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            for row in rows {
                if full(&w) {
                    break 'windows;
                }
                match run.push_owned(row) {
                    Ok(Some(out)) => w.row_owned(out, &mut buf),
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                }
                if buf.len() >= CHUNK {
                    if !send(&tx, std::mem::take(&mut buf)).await {
                        return; // The client left, or stopped reading.
                    }
                    buf.reserve(CHUNK + 4096);
                }
            }
        }
        if !c.streams() {
            for out in run.finish().rows {
                if full(&w) {
                    break;
                }
                w.row_owned(out, &mut buf);
                if buf.len() >= CHUNK && !send(&tx, std::mem::take(&mut buf)).await {
                    return;
                }
            }
        }
        w.finish(&mut buf);
        send(&tx, buf).await;
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let name = format!("attachment; filename=\"{}.{}\"", d.id, fmt.extension());
    Ok((
        [
            (header::CONTENT_TYPE, fmt.media_type().to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::ETAG, etag),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The catalogue's answer: `total_count` first, as the real API writes it.
#[derive(serde::Serialize)]
struct Catalogue {
    total_count: usize,
    results: Vec<Value>,
}

/// A records answer: `total_count` first, as the real API writes it.
#[derive(serde::Serialize)]
struct Answer<'a> {
    total_count: u64,
    results: Vec<ex::JsonRow<'a>>,
}

fn json_body(v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => ExploreError::internal(e).into_response(),
    }
}

/// Hand bytes to the response; false when the client left or took no bytes for a minute (the
/// export then stops and frees its slot).
async fn send(tx: &tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>, bytes: Vec<u8>) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(bytes))).await, Ok(Ok(())))
}

/// Bytes sent at a time.
const CHUNK: usize = 256 << 10;

fn raw_for_etag(p: &Params) -> String {
    let mut v: Vec<String> = p.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v.join("&")
}

fn export_etag(d: &Dataset, rec: &Records, query: String, format: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        d.id.as_str(),
        d.modified_at.as_nanos(),
        rec.range().map(|r| (r.from.as_nanos(), r.to.as_nanos())),
        query,
        format,
    )
        .hash(&mut h);
    format!("W/\"{:016x}\"", h.finish())
}

/// The facets of a dataset's records
#[utoipa::path(get, path = "/api/explore/v2.1/catalog/datasets/{dataset_id}/facets", tag = "open-data",
    params(("dataset_id" = String, Path, description = "The dataset"),
           ("facet" = Option<String>, Query, description = "A facet field (`device_id`, `site_name`…), repeatable"),
           RecordsParams),
    responses(
        (status = 200, description = "Each facet's values and counts, the most frequent first (100 at most)", body = Object),
        (status = 400, response = ExploreBadRequest),
        (status = 404, response = ExploreNotFound),
        (status = 429, response = ExploreTooMany),
    ))]
pub(crate) async fn facets(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let Asked { p, tz, rec, q } = asked(&s, &id, raw).await?;
    let asked = p.all("facet");
    let facet_fields: Vec<usize> = rec
        .fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.facet && (asked.is_empty() || asked.contains(&f.name.as_str())))
        .map(|(i, _)| i)
        .collect();
    if let Some(bad) = asked.iter().find(|a| !rec.fields.iter().any(|f| f.name == **a && f.facet)) {
        return Err(ExploreError::param(format!(
            "Invalid value for facet API parameter: {bad} is not a facet of this dataset."
        )));
    }
    let _slot = scan_slot().await?;
    let deadline = std::time::Instant::now() + SCAN_TIME;
    let c =
        ex::prepare(&rec, &Query { select: agora_opendata::odsql::Select::All, ..q.clone() }, tz)?;
    let mut counts: Vec<std::collections::BTreeMap<String, u64>> =
        vec![Default::default(); facet_fields.len()];
    for w in ex::windows_for(&rec, &q, tz) {
        if std::time::Instant::now() > deadline {
            return Err(ExploreError::param(format!(
                "the facets took longer than {} s to count: narrow them with where on date",
                SCAN_TIME.as_secs()
            )));
        }
        for row in rec.window(s.store.as_ref(), w).await.map_err(ExploreError::internal)? {
            if !c.matches(&row) {
                continue;
            }
            for (k, &i) in facet_fields.iter().enumerate() {
                let key = match &row[i] {
                    agora_opendata::odsql::V::Text(t) => t.to_string(),
                    agora_opendata::odsql::V::Num(n) => n.to_string(),
                    agora_opendata::odsql::V::Time(t) => ex::datetime_text(*t, tz)[..4].to_owned(),
                    agora_opendata::odsql::V::Bool(b) => b.to_string(),
                    _ => continue,
                };
                *counts[k].entry(key).or_default() += 1;
            }
        }
    }
    let refined: Vec<&str> = p.all("refine");
    let facets: Vec<Value> = facet_fields
        .iter()
        .zip(counts)
        .map(|(&i, m)| {
            let name = &rec.fields[i].name;
            let mut values: Vec<(String, u64)> = m.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            values.truncate(FACET_VALUES);
            let items: Vec<Value> = values
                .into_iter()
                .map(|(v, n)| {
                    let state = if refined.contains(&format!("{name}:{v}").as_str()) {
                        "refined"
                    } else {
                        "displayed"
                    };
                    json!({"name": v, "value": v, "count": n, "state": state})
                })
                .collect();
            json!({"name": name, "facets": items})
        })
        .collect();
    Ok(axum::Json(json!({"_links": [], "facets": facets})).into_response())
}

/// Values answered per facet, the most frequent first.
const FACET_VALUES: usize = 100;

/// Export slots shared by every export.
pub fn export_slots() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(EXPORTS))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(datasets, dataset, records, record, export_formats, export, facets),
    components(
        schemas(ExploreErrorBody),
        responses(ExploreBadRequest, ExploreNotFound, ExploreTooMany)
    )
)]
pub(crate) struct Doc;
