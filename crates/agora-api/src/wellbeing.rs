//! The well-being index (`agora_query::wellbeing`): per place, neighbourhood or commune and per
//! month, with its dimensions, its indicators' values and scores, what is missing, and the
//! definition (indicators, ranges, weights — the version) it was computed with; its history and
//! what moved it; the robustness of the ranks; the definition's versions, and a new one saved by
//! an operator; survey results imported from CSV.

use std::collections::BTreeMap;

use agora_model::permissions::Action;
use agora_query::wellbeing::{self as wq, DefinitionBody};
use agora_store::decisions::SurveyResult;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::ingest::body_bytes;
use crate::policy::{Scoped, Who};

/// A definition and its version (0: the one shipped).
async fn definition(s: &AppState, version: Option<i64>) -> ApiResult<(i64, DefinitionBody)> {
    let versions = s.proximity.store().definitions().await?;
    let pick = match version {
        None => versions.last(),
        Some(0) => None,
        Some(v) => Some(
            versions
                .iter()
                .find(|d| d.version == v)
                .ok_or_else(|| ApiError::NotFound(format!("no version {v} of the definition")))?,
        ),
    };
    match pick {
        None => Ok((0, DefinitionBody::default())),
        Some(d) => Ok((
            d.version,
            serde_json::from_value(d.body.clone())
                .map_err(|e| ApiError::BadRequest(format!("version {}: {e}", d.version)))?,
        )),
    }
}

/// The month before the current one (the last complete month), in Paris.
fn last_month(s: &AppState) -> NaiveDate {
    let today = s.clock.now().to_datetime().with_timezone(&chrono_tz::Europe::Paris).date_naive();
    let first = today.with_day(1).unwrap_or(today);
    first.checked_sub_months(chrono::Months::new(1)).unwrap_or(first)
}

fn month_of(s: &AppState, m: Option<&str>) -> ApiResult<NaiveDate> {
    match m {
        None => Ok(last_month(s)),
        Some(m) => within(s, wq::parse_month(m)?),
    }
}

/// Months are read from the sensors once and kept: only the ten years before this month and this
/// month may be asked (the index of a future month or of 1900 has nothing to read, and each month
/// kept costs memory).
fn within(s: &AppState, m: NaiveDate) -> ApiResult<NaiveDate> {
    let current = last_month(s).checked_add_months(chrono::Months::new(1)).unwrap_or(m);
    let first = current.checked_sub_months(chrono::Months::new(120)).unwrap_or(m);
    if m < first || m > current {
        return Err(ApiError::BadRequest(format!(
            "month {}: from {} to {}",
            m.format("%Y-%m"),
            first.format("%Y-%m"),
            current.format("%Y-%m")
        )));
    }
    Ok(m)
}

/// Each place's share of its neighbourhood's people within 15 minutes of all four themes (or of
/// the people within 1 km when the commune has no neighbourhoods), with the day its commune's
/// data were last imported. The imports describe the city as it is (INSEE's yearly files describe
/// the year before their release): the share counts for the months from 12 months before that day
/// on, and is missing before — the index of an old month is not made of today's streets.
async fn proximity_by_place(s: &AppState) -> ApiResult<BTreeMap<String, (f64, NaiveDate)>> {
    let mut out = BTreeMap::new();
    let sites = s.catalog.sites();
    let mut communes: Vec<String> = sites.iter().map(|x| x.commune.as_str().to_string()).collect();
    communes.sort();
    communes.dedup();
    for c in communes {
        let d = s.proximity.data(&c).await?;
        if d.network.is_none() || d.squares.is_empty() {
            continue;
        }
        let imported = d
            .layers
            .iter()
            .filter(|l| l.layer != "areas")
            .map(|l| l.imported_at)
            .max()
            .map(|t| t.to_datetime().date_naive())
            .unwrap_or_default();
        let here: Vec<(String, f64, f64)> = sites
            .iter()
            .filter(|x| x.commune.as_str() == c)
            .filter_map(|x| Some((x.id.as_str().to_string(), x.lon?, x.lat?)))
            .collect();
        let settings = s.proximity.settings.clone();
        let shares = tokio::task::spawn_blocking(move || -> Vec<(String, f64)> {
            here.into_iter()
                .filter_map(|(id, lon, lat)| {
                    d.place_share(&settings, &id, lon, lat).ok().flatten().map(|v| (id, v))
                })
                .collect()
        })
        .await
        .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?;
        out.extend(shares.into_iter().map(|(id, v)| (id, (v, imported))));
    }
    Ok(out)
}

/// The units of a level and month with their values.
async fn units_at(s: &AppState, level: &str, month: NaiveDate) -> ApiResult<Vec<wq::Unit>> {
    let now = s.clock.now().as_nanos().div_euclid(1_000_000_000);
    let this = s.wellbeing.month(month, now).await?;
    let mut earlier = Vec::new();
    for k in 1..=12 {
        if let Some(m) = month.checked_sub_months(chrono::Months::new(k)) {
            earlier.push(s.wellbeing.month(m, now).await?);
        }
    }
    let surveys = s.proximity.store().surveys().await?;
    let next = month.checked_add_months(chrono::Months::new(1)).unwrap_or(month);
    let at = wq::surveys_at(&surveys, next);
    let prox: BTreeMap<String, f64> = proximity_by_place(s)
        .await?
        .into_iter()
        .filter(|(_, (_, on))| {
            on.checked_sub_months(chrono::Months::new(12)).is_some_and(|from| next > from)
        })
        .map(|(id, (v, _))| (id, v))
        .collect();
    let values = wq::place_values(&this, &earlier, &at, &prox);
    let sites = s.catalog.sites();
    let communes: BTreeMap<String, String> =
        s.catalog.communes().into_iter().map(|c| (c.insee.as_str().to_string(), c.name)).collect();
    let mut areas = BTreeMap::new();
    if level == "neighbourhood" {
        for c in communes.keys() {
            let d = s.proximity.data(c).await?;
            areas.insert(c.clone(), d.areas.clone());
        }
    }
    Ok(wq::units(level, &sites, &communes, &areas, &values)?)
}

/// The records of a published well-being dataset: every place of its scope, for each of the 12
/// months before the current one, with the definition in force.
pub(crate) async fn open_data_rows(
    s: &AppState,
    d: &agora_store::opendata::Dataset,
) -> ApiResult<Vec<agora_opendata::odsql::Row>> {
    use agora_opendata::odsql::V;
    let (version, body) = definition(s, None).await?;
    let def = body.definition()?;
    let last = last_month(s);
    let sites = s.catalog.sites();
    let mut rows = Vec::new();
    for back in (0..12).rev() {
        let Some(month) = last.checked_sub_months(chrono::Months::new(back)) else { continue };
        let units = units_at(s, "place", month).await?;
        for u in wq::score(&def, units) {
            let Some(site) = sites.iter().find(|x| x.id.as_str() == u.unit.id) else { continue };
            if d.commune.as_deref().is_some_and(|c| c != site.commune.as_str())
                || d.site.as_deref().is_some_and(|x| x != site.id.as_str())
            {
                continue;
            }
            let num = |v: Option<f64>| v.map_or(V::Null, |x| V::Num((x * 100.0).round() / 100.0));
            let commune_name = s
                .catalog
                .communes()
                .into_iter()
                .find(|c| c.insee == site.commune)
                .map_or(V::Null, |c| V::text(c.name));
            let mut row = vec![
                V::text(month.format("%Y-%m").to_string()),
                V::text(site.id.as_str()),
                V::text(site.name.as_str()),
                V::text(site.commune.as_str()),
                commune_name,
                match (site.lat, site.lon) {
                    (Some(a), Some(b)) => V::Geo(a, b),
                    _ => V::Null,
                },
                num(u.index),
            ];
            for k in ["environment", "vitality", "services", "cleanliness", "perceived"] {
                row.push(num(u.dimensions.get(k).copied().flatten()));
            }
            row.push(num(Some(u.weight_coverage)));
            row.push(V::text(u.missing.join(", ")));
            row.push(V::Num(version as f64));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Query of the index.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IndexParams {
    /// `place` (default), `neighbourhood` or `commune`.
    level: Option<String>,
    /// The month, `YYYY-MM` (default: the last complete month).
    month: Option<String>,
    /// The definition's version (default: the current one; 0: the one shipped).
    version: Option<i64>,
}

/// The index of a month.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WellbeingIndex)]
pub(crate) struct IndexAnswer {
    /// The month.
    month: String,
    /// The level.
    level: String,
    /// The definition's version it was computed with.
    version: i64,
    /// The definition: indicators, ranges, directions, weights.
    definition: DefinitionBody,
    /// Each unit, best first.
    units: Vec<wq::Scored>,
}

/// The well-being index
///
/// Per place, neighbourhood or commune for a month: the index (0–100) and each dimension
/// (environment, vitality, services, cleanliness, perceived), each indicator's value and
/// normalised score, the coverage of the indicators and of the weights, what is missing (never
/// counted as zero: the dimension is the mean of the indicators present, the index the weighted
/// mean of the dimensions present, and no index below the minimum coverage), the rank, and the
/// definition with its version. The OECD's method: min–max over declared ranges, inverted when
/// lower is better.
#[utoipa::path(get, path = "/api/v1/wellbeing", tag = "decision makers",
    params(IndexParams),
    responses(
        (status = 200, description = "The index of the month", body = IndexAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn index(Scoped(s): Scoped, Query(p): Query<IndexParams>) -> ApiResult<Response> {
    let level = p.level.unwrap_or_else(|| "place".into());
    let month = month_of(&s, p.month.as_deref())?;
    let (version, body) = definition(&s, p.version).await?;
    let def = body.definition()?;
    let mut units = wq::score(&def, units_at(&s, &level, month).await?);
    units.sort_by_key(|u| u.rank.unwrap_or(usize::MAX));
    Ok(axum::Json(IndexAnswer {
        month: month.format("%Y-%m").to_string(),
        level,
        version,
        definition: body,
        units,
    })
    .into_response())
}

/// Query of a history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryParams {
    /// `place` (default), `neighbourhood` or `commune`.
    level: Option<String>,
    /// The unit's id (a place's id, `INSEE:code` of a neighbourhood, an INSEE code).
    id: String,
    /// First month, `YYYY-MM` (default: 11 months before `to`).
    from: Option<String>,
    /// Last month (default: the last complete month).
    to: Option<String>,
    /// The definition's version (default: the current one).
    version: Option<i64>,
}

/// One month of a unit's history.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HistoryMonth {
    /// The month.
    month: String,
    /// The index, 0–100.
    index: Option<f64>,
    /// Each dimension, 0–100.
    dimensions: BTreeMap<String, Option<f64>>,
    /// What each dimension added to the index's change since the month before (points of 0–100;
    /// absent when the dimension is missing in either month).
    contributions: BTreeMap<String, Option<f64>>,
    /// Share of the weights present.
    weight_coverage: f64,
    /// Indicators missing.
    missing: Vec<String>,
}

/// The well-being index's history
///
/// A unit's index month by month with the same definition (its version said), each dimension,
/// and what moved it: each dimension's contribution to the change from the month before (its
/// weight × its change). `trend_per_year` is the least-squares slope of the index over the
/// months that have one (points per year).
#[utoipa::path(get, path = "/api/v1/wellbeing/history", tag = "decision makers",
    params(HistoryParams),
    responses(
        (status = 200, description = "The history", body = Value),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn history(
    Scoped(s): Scoped,
    Query(p): Query<HistoryParams>,
) -> ApiResult<Response> {
    let level = p.level.unwrap_or_else(|| "place".into());
    let to = month_of(&s, p.to.as_deref())?;
    let from = match p.from.as_deref() {
        Some(m) => within(&s, wq::parse_month(m)?)?,
        None => to.checked_sub_months(chrono::Months::new(11)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    if (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32 >= 36 {
        return Err(ApiError::BadRequest("a history spans at most 36 months".into()));
    }
    let (version, body) = definition(&s, p.version).await?;
    let def = body.definition()?;
    let mut months = Vec::new();
    let mut prev: Option<agora_indicators::wellbeing::Scored> = None;
    let mut name = None;
    let mut m = from;
    while m <= to {
        let units = units_at(&s, &level, m).await?;
        let unit = units.into_iter().find(|u| u.id == p.id);
        if name.is_none() {
            name = unit.as_ref().map(|u| u.name.clone());
        }
        let values = unit.map(|u| u.values).unwrap_or_default();
        let sc = agora_indicators::wellbeing::score(&def, &values);
        let contributions = match &prev {
            Some(b) => agora_indicators::wellbeing::contributions(&def, b, &sc)
                .into_iter()
                .map(|(k, v)| (k, v.map(|x| 100.0 * x)))
                .collect(),
            None => BTreeMap::new(),
        };
        months.push(HistoryMonth {
            month: m.format("%Y-%m").to_string(),
            index: sc.index.map(|x| 100.0 * x),
            dimensions: sc
                .dimensions
                .iter()
                .map(|(k, v)| (k.clone(), v.map(|x| 100.0 * x)))
                .collect(),
            contributions,
            weight_coverage: sc.weight_coverage,
            missing: sc.missing.clone(),
        });
        prev = Some(sc);
        m = m.checked_add_months(chrono::Months::new(1)).unwrap_or(to.succ_opt().unwrap_or(to));
    }
    let Some(name) = name else {
        return Err(ApiError::NotFound(format!(
            "no {level} {:?} with values in these months",
            p.id
        )));
    };
    let pts: Vec<(f64, f64)> =
        months.iter().enumerate().filter_map(|(i, h)| h.index.map(|x| (i as f64, x))).collect();
    let trend = (pts.len() >= 3).then(|| {
        let n = pts.len() as f64;
        let (mx, my) =
            (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        12.0 * sxy / sxx
    });
    Ok(axum::Json(json!({
        "id": p.id, "name": name, "level": level, "version": version, "definition": body,
        "months": months, "trend_per_year": trend,
    }))
    .into_response())
}

/// Query of the sensitivity analysis.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SensitivityParams {
    /// `place` (default), `neighbourhood` or `commune`.
    level: Option<String>,
    /// The month (default: the last complete month).
    month: Option<String>,
    /// The definition's version.
    version: Option<i64>,
    /// Random perturbations of the weights (default 200, at most 2,000).
    trials: Option<usize>,
}

/// How stable the ranks are
///
/// For each unit: its rank with the published weights, with equal weights, with each dimension
/// left out (the others rescaled), and its best and worst rank over random perturbations of the
/// weights (each × a uniform factor in 0.5–1.5, rescaled to 1; a fixed seed, so the answer is
/// reproducible).
#[utoipa::path(get, path = "/api/v1/wellbeing/sensitivity", tag = "decision makers",
    params(SensitivityParams),
    responses(
        (status = 200, description = "Each unit's ranks", body = Value),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn sensitivity(
    Scoped(s): Scoped,
    Query(p): Query<SensitivityParams>,
) -> ApiResult<Response> {
    let level = p.level.unwrap_or_else(|| "place".into());
    let month = month_of(&s, p.month.as_deref())?;
    let trials = p.trials.unwrap_or(200);
    if trials > 2000 {
        return Err(ApiError::BadRequest("at most 2,000 trials".into()));
    }
    let (version, body) = definition(&s, p.version).await?;
    let def = body.definition()?;
    let units = units_at(&s, &level, month).await?;
    let values: Vec<BTreeMap<String, f64>> = units.iter().map(|u| u.values.clone()).collect();
    let st = agora_indicators::wellbeing::stability(&def, &values, trials);
    let rows: Vec<Value> = units
        .iter()
        .zip(st)
        .map(|(u, x)| {
            json!({"id": u.id, "name": u.name, "rank": x.rank, "rank_equal_weights": x.rank_equal_weights,
                "rank_without": x.rank_without,
                "rank_range": x.rank_range.map(|(a, b)| json!({"best": a, "worst": b}))})
        })
        .collect();
    Ok(axum::Json(
        json!({"month": month.format("%Y-%m").to_string(), "level": level, "version": version,
        "trials": trials, "units": rows}),
    )
    .into_response())
}

/// The definition's versions
///
/// The current definition and every version saved, with who saved it, when and why. Version 0 is
/// the one shipped, in force until an operator saves one.
#[utoipa::path(get, path = "/api/v1/wellbeing/definition", tag = "decision makers",
    responses(
        (status = 200, description = "The current definition and the versions", body = Value),
        Reads,
    ))]
pub(crate) async fn get_definition(Scoped(s): Scoped) -> ApiResult<Response> {
    let (version, body) = definition(&s, None).await?;
    let versions = s.proximity.store().definitions().await?;
    Ok(axum::Json(
        json!({"version": version, "definition": body, "shipped": DefinitionBody::default(),
        "versions": versions}),
    )
    .into_response())
}

/// A new version of the definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewDefinition {
    /// The definition.
    definition: DefinitionBody,
    /// Why it changes (kept with it).
    reason: String,
}

/// Save a new version of the definition
///
/// Indicators, ranges, directions and weights (summing to 1), with the reason. The previous
/// versions stay: any figure can be computed again with the version it was published with. The
/// Métropole's administrators only (the index compares communes).
#[utoipa::path(put, path = "/api/v1/wellbeing/definition", tag = "decision makers",
    security(("bearer" = [])),
    request_body = NewDefinition,
    responses(
        (status = 201, description = "The new version", body = Value),
        Writes,
    ))]
pub(crate) async fn put_definition(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(b): Json<NewDefinition>,
) -> ApiResult<Response> {
    b.definition.definition()?;
    let reason = b.reason.trim();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::BadRequest(
            "say why the definition changes (1 to 500 characters)".into(),
        ));
    }
    let body = serde_json::to_value(&b.definition).unwrap_or_default();
    let version =
        s.proximity.store().add_definition(&body, reason, &who.actor, s.clock.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"version": version, "definition": b.definition})))
        .into_response())
}

/// Import survey results
///
/// A CSV with the columns `place`, `date` (`YYYY-MM-DD`), `question` (the indicator it feeds,
/// `survey_satisfaction`), `score`, and optionally `respondents`. All lines or none: an unknown
/// place, a bad date or score refuses the file, naming the lines. A result counts in the index
/// for the 12 months after its date. A place the caller cannot see answers 404.
#[utoipa::path(post, path = "/api/v1/wellbeing/surveys", tag = "decision makers",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "The results",
        example = json!("place,date,question,score,respondents\nhotel-de-ville,2026-05-20,survey_satisfaction,7.2,312\n")),
    responses(
        (status = 201, description = "How many results were kept", body = Value),
        (status = 404, response = NotFound),
        Writes,
    ))]
pub(crate) async fn import_surveys(
    Scoped(s): Scoped,
    Who(who): Who,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body_bytes(&s, &headers, body)?;
    let sites = s.catalog.sites();
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(&body[..]);
    let headers =
        rdr.headers().map_err(|e| ApiError::BadRequest(format!("the header line: {e}")))?.clone();
    let col = |n: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(n));
    let (Some(pc), Some(dc), Some(qc), Some(sc)) =
        (col("place"), col("date"), col("question"), col("score"))
    else {
        return Err(ApiError::BadRequest(
            "the columns place, date, question and score are needed".into(),
        ));
    };
    let rc = col("respondents");
    let mut results = Vec::new();
    let mut faults = Vec::new();
    let mut unknown_place = false;
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let f = |c: usize| rec.get(c).unwrap_or_default().to_string();
        let place = f(pc);
        let Some(site) = sites.iter().find(|x| x.id.as_str() == place) else {
            faults.push(format!("line {line}: unknown place {place:?}"));
            unknown_place = true;
            continue;
        };
        if let Err(e) = who.check(Action::Modify, Some(&site.commune), None) {
            faults.push(format!("line {line}: {e}"));
            continue;
        }
        let date = match NaiveDate::parse_from_str(&f(dc), "%Y-%m-%d") {
            // Written back in one form, so that dates compare as text.
            Ok(d) => d.format("%Y-%m-%d").to_string(),
            Err(_) => {
                faults.push(format!("line {line}: date {:?} is not YYYY-MM-DD", f(dc)));
                continue;
            }
        };
        let question = f(qc);
        if !question.starts_with("survey_") || question.len() > 64 {
            faults.push(format!(
                "line {line}: question {question:?} must be an indicator id starting with survey_"
            ));
            continue;
        }
        let Ok(score) = f(sc).replace(',', ".").parse::<f64>() else {
            faults.push(format!("line {line}: score {:?} is not a number", f(sc)));
            continue;
        };
        if !score.is_finite() {
            faults.push(format!("line {line}: score is not a number"));
            continue;
        }
        let respondents = match rc.map(f).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    faults.push(format!("line {line}: respondents {v:?} is not a count"));
                    continue;
                }
            },
        };
        results.push(SurveyResult { place, date, question, score, respondents });
    }
    if !faults.is_empty() {
        let n = faults.len();
        faults.truncate(10);
        let message = format!("nothing imported, {n} faults: {}", faults.join("; "));
        // A place the caller cannot see is not found, as everywhere else.
        return Err(if unknown_place {
            ApiError::NotFound(message)
        } else {
            ApiError::BadRequest(message)
        });
    }
    if results.is_empty() {
        return Err(ApiError::BadRequest("the file has no result".into()));
    }
    s.proximity.store().put_surveys(&results, &who.actor, s.clock.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"imported": results.len()}))).into_response())
}

/// Survey results
///
/// Every survey result of the places the caller sees.
#[utoipa::path(get, path = "/api/v1/wellbeing/surveys", tag = "decision makers",
    responses(
        (status = 200, description = "The results", body = [SurveyResult]),
        Reads,
    ))]
pub(crate) async fn surveys(Scoped(s): Scoped) -> ApiResult<Response> {
    let sites: std::collections::HashSet<String> =
        s.catalog.sites().into_iter().map(|x| x.id.as_str().to_string()).collect();
    let all = s.proximity.store().surveys().await?;
    let mine: Vec<SurveyResult> = all.into_iter().filter(|r| sites.contains(&r.place)).collect();
    Ok(axum::Json(mine).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    index,
    history,
    sensitivity,
    get_definition,
    put_definition,
    import_surveys,
    surveys
))]
pub(crate) struct Doc;
