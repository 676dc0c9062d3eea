//! What operators declare for the commerce observatory: market days and events (the calendar
//! footfall is read against), the interventions whose impact is studied, and the school-holiday
//! calendar (zone B ships with agora; an operator may load another). Anyone may read them, as
//! the commerce figures they explain; declaring one takes the right to modify commerce equipment
//! in the place's commune.

use agora_indicators::calendar::{SchoolHoliday, SchoolHolidays};
use agora_model::permissions::{Action, Domain};
use agora_model::{InseeCode, SiteId};
use agora_store::commerce::{CalendarEvent, Intervention, LoadedCalendar, WEEKDAYS};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{BadRequest, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::{MaybeWho, Principal, Scoped, Who};

/// Names are for people: this long at most.
const MAX_NAME: usize = 200;
/// Descriptions likewise.
const MAX_DESCRIPTION: usize = 4000;
/// Declarations a commune keeps at most (each kind): a calendar, not a log.
const MAX_DECLARATIONS: usize = 2_000;

/// The commune of a place the caller sees; unknown places are refused by name.
fn site_commune(s: &AppState, site: &str) -> ApiResult<(SiteId, InseeCode)> {
    let id = SiteId::parse(site).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let found = s.catalog.sites().into_iter().find(|x| x.id == id);
    let site = found.ok_or_else(|| ApiError::NotFound(format!("no place {id}")))?;
    Ok((site.id, site.commune))
}

fn text(what: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(ApiError::BadRequest(format!("{what} is empty")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{what} must be at most {max} characters, without control characters"
        )));
    }
    Ok(v.to_owned())
}

/// A market day or an event to declare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewEvent {
    /// `market` (weekly, on `weekdays`) or `event`.
    kind: String,
    /// Its name (`Marché de Noël`).
    name: String,
    /// Its place; absent: the whole `commune`.
    site: Option<String>,
    /// Its commune (INSEE code), when it is not a place's.
    commune: Option<String>,
    /// Its first day (`YYYY-MM-DD`, Europe/Paris).
    #[schema(value_type = String, format = Date)]
    first_day: NaiveDate,
    /// Its last day (inclusive; default: the first).
    #[schema(value_type = Option<String>, format = Date)]
    last_day: Option<NaiveDate>,
    /// For a market: the weekdays it is held (`tue`, `thu`, `sat`).
    #[serde(default)]
    weekdays: Vec<String>,
}

/// Which events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsParams {
    /// Those of this place (and of its whole commune).
    site: Option<String>,
    /// Those happening on or after this day.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// Those happening on or before this day.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
}

/// The events the caller sees (their communes'), filtered.
pub(crate) async fn visible_events(s: &AppState) -> ApiResult<Vec<CalendarEvent>> {
    let communes: Vec<String> =
        s.catalog.communes().into_iter().map(|c| c.insee.to_string()).collect();
    let sites: Vec<String> = s.catalog.sites().into_iter().map(|x| x.id.to_string()).collect();
    Ok(s.commerce
        .events()
        .await?
        .into_iter()
        .filter(|e| {
            communes.contains(&e.commune) && e.site.as_ref().is_none_or(|x| sites.contains(x))
        })
        .collect())
}

/// Market days and events
///
/// What operators declared, by first day: weekly markets and events (a Christmas market, a
/// festival), for a place or a whole commune. The commerce figures mark the days they fall on,
/// and an impact study leaves out the days of an event at the places it compares.
#[utoipa::path(get, path = "/api/v1/commerce/events", tag = "indicators", security((), ("bearer" = [])),
    params(EventsParams),
    responses((status = 200, description = "The events", body = Vec<CalendarEvent>), (status = 400, response = BadRequest), (status = 404, response = NotFound), Reads))]
pub(crate) async fn events(
    Scoped(s): Scoped,
    MaybeWho(who): MaybeWho,
    Query(p): Query<EventsParams>,
) -> ApiResult<Json<Vec<CalendarEvent>>> {
    let commune = match &p.site {
        Some(site) => Some(site_commune(&s, site)?.1.to_string()),
        None => None,
    };
    let out = visible_events(&s)
        .await?
        .into_iter()
        .filter(|e| match (&commune, &p.site) {
            (Some(c), site) => e.concerns(c, site.as_deref()),
            _ => true,
        })
        .filter(|e| p.from.is_none_or(|f| e.last_day >= f) && p.to.is_none_or(|t| e.first_day <= t))
        .map(|mut e| {
            if !reads(who.as_ref()) {
                e.created_by.clear();
            }
            e
        })
        .collect();
    Ok(Json(out))
}

/// Declare a market day or an event
#[utoipa::path(post, path = "/api/v1/commerce/events", tag = "indicators", security(("bearer" = [])),
    request_body = NewEvent,
    responses((status = 201, description = "Declared", body = CalendarEvent), (status = 404, response = NotFound), Writes))]
pub(crate) async fn add_event(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(e): Json<NewEvent>,
) -> ApiResult<Response> {
    let kind = match e.kind.as_str() {
        "market" | "event" => e.kind.clone(),
        k => return Err(ApiError::BadRequest(format!("kind {k:?}: use market or event"))),
    };
    let name = text("name", &e.name, MAX_NAME)?;
    let (site, commune) = match (&e.site, &e.commune) {
        (Some(site), None) => {
            let (id, c) = site_commune(&s, site)?;
            (Some(id.to_string()), c)
        }
        (None, Some(c)) => {
            let c = InseeCode::parse(c).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            if !s.catalog.communes().iter().any(|x| x.insee == c) {
                return Err(ApiError::NotFound(format!("no commune {c}")));
            }
            (None, c)
        }
        _ => return Err(ApiError::BadRequest("name a site or a commune, not both".into())),
    };
    who.check(Action::Modify, Some(&commune), Some(Domain::Commerce))?;
    let last_day = e.last_day.unwrap_or(e.first_day);
    if last_day < e.first_day {
        return Err(ApiError::BadRequest(format!(
            "last_day {last_day} is before first_day {}",
            e.first_day
        )));
    }
    crate::commerce::sane_date("first_day", e.first_day)?;
    crate::commerce::sane_date("last_day", last_day)?;
    if (last_day - e.first_day).num_days() > 3 * 366 {
        return Err(ApiError::BadRequest("an event lasts three years at most".into()));
    }
    let mut weekdays = Vec::new();
    for w in &e.weekdays {
        let w = w.trim().to_lowercase();
        if !WEEKDAYS.contains(&w.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "weekday {w:?}: use {}",
                WEEKDAYS.join(", ")
            )));
        }
        if !weekdays.contains(&w) {
            weekdays.push(w);
        }
    }
    if kind == "market" && weekdays.is_empty() {
        return Err(ApiError::BadRequest(
            "a market is held on weekdays: name them (weekdays: [\"tue\", \"sat\"])".into(),
        ));
    }
    let of_commune =
        s.commerce.events().await?.iter().filter(|x| x.commune == commune.as_str()).count();
    if of_commune >= MAX_DECLARATIONS {
        return Err(ApiError::Conflict(format!(
            "{MAX_DECLARATIONS} events are declared in {commune}: remove old ones first"
        )));
    }
    let mut ev = CalendarEvent {
        id: 0,
        commune: commune.to_string(),
        site,
        kind,
        name,
        first_day: e.first_day,
        last_day,
        weekdays,
        created_by: who.actor.clone(),
        created_at: s.clock.now(),
    };
    ev.id = s.commerce.add_event(&ev).await?;
    Ok((StatusCode::CREATED, Json(ev)).into_response())
}

/// Whether the caller may read who declared what (the public sees the declarations only).
fn reads(who: Option<&Principal>) -> bool {
    who.is_some_and(|w| w.grant.may(Action::View))
}

/// Who may change a declaration of `commune`.
fn may_change(who: &Principal, commune: &str) -> ApiResult<()> {
    let c = InseeCode::parse(commune)
        .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?;
    who.check(Action::Modify, Some(&c), Some(Domain::Commerce))
}

/// Remove a market day or an event
#[utoipa::path(delete, path = "/api/v1/commerce/events/{id}", tag = "indicators", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The event")),
    responses((status = 204, description = "Removed"), (status = 400, response = BadRequest), (status = 404, response = NotFound), Reads))]
pub(crate) async fn delete_event(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let found = visible_events(&s).await?.into_iter().find(|e| e.id == id);
    let e = found.ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    may_change(&who, &e.commune)?;
    s.commerce.delete_event(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An intervention to declare.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIntervention {
    /// The place it changed.
    site: String,
    /// Its name (`Piétonnisation de la rue Paul Bert`).
    name: String,
    /// What was done.
    #[serde(default)]
    description: String,
    /// Its first day (`YYYY-MM-DD`, Europe/Paris).
    #[schema(value_type = String, format = Date)]
    start_day: NaiveDate,
    /// Places it did not touch, to compare with (none: the place is compared with itself a year
    /// before, which is weaker evidence).
    #[serde(default)]
    controls: Vec<String>,
}

/// The interventions the caller sees.
pub(crate) async fn visible_interventions(s: &AppState) -> ApiResult<Vec<Intervention>> {
    let sites: Vec<String> = s.catalog.sites().into_iter().map(|x| x.id.to_string()).collect();
    Ok(s.commerce.interventions().await?.into_iter().filter(|i| sites.contains(&i.site)).collect())
}

/// Interventions
///
/// The interventions whose effect on footfall is studied (a street made pedestrian, a market
/// moved), by start day. Each has its study at `/api/v1/commerce/interventions/{id}/study`.
#[utoipa::path(get, path = "/api/v1/commerce/interventions", tag = "indicators", security((), ("bearer" = [])),
    responses((status = 200, description = "The interventions", body = Vec<Intervention>), Reads))]
pub(crate) async fn interventions(
    Scoped(s): Scoped,
    MaybeWho(who): MaybeWho,
) -> ApiResult<Json<Vec<Intervention>>> {
    let mut all = visible_interventions(&s).await?;
    if !reads(who.as_ref()) {
        for i in &mut all {
            i.created_by.clear();
        }
    }
    Ok(Json(all))
}

/// Declare an intervention
///
/// Refused: an unknown place, a control equal to the treated place or repeated, a start in the
/// future or without a counter at the place.
#[utoipa::path(post, path = "/api/v1/commerce/interventions", tag = "indicators", security(("bearer" = [])),
    request_body = NewIntervention,
    responses((status = 201, description = "Declared", body = Intervention), (status = 404, response = NotFound), Writes))]
pub(crate) async fn add_intervention(
    Scoped(s): Scoped,
    Who(who): Who,
    Json(i): Json<NewIntervention>,
) -> ApiResult<Response> {
    let (site, commune) = site_commune(&s, &i.site)?;
    who.check(Action::Modify, Some(&commune), Some(Domain::Commerce))?;
    let name = text("name", &i.name, MAX_NAME)?;
    let description = if i.description.trim().is_empty() {
        String::new()
    } else {
        text("description", &i.description, MAX_DESCRIPTION)?
    };
    let today = crate::commerce::paris_today(&s).1;
    crate::commerce::sane_date("start_day", i.start_day)?;
    if i.start_day > today {
        return Err(ApiError::BadRequest(format!(
            "start_day {} is in the future (today is {today}): declare it, and study it, once it has begun",
            i.start_day
        )));
    }
    let mut controls: Vec<String> = Vec::new();
    for c in &i.controls {
        let (id, _) = site_commune(&s, c)?;
        if id == site {
            return Err(ApiError::BadRequest(format!(
                "{id} is the treated place: a control place is one the intervention did not touch"
            )));
        }
        if controls.contains(&id.to_string()) {
            return Err(ApiError::BadRequest(format!("control {id} is named twice")));
        }
        controls.push(id.to_string());
    }
    for x in std::iter::once(&site.to_string()).chain(&controls) {
        let area = agora_query::air::Area::Site(
            SiteId::parse(x)
                .map_err(|e| ApiError::Internal(agora_store::Error::Internal(e.to_string())))?,
        );
        agora_query::footfall::counters(s.catalog.as_ref(), &area)
            .map_err(|_| ApiError::BadRequest(format!("{x} has no pedestrian counter to study")))?;
    }
    let of_commune =
        s.commerce.interventions().await?.iter().filter(|x| x.commune == commune.as_str()).count();
    if of_commune >= MAX_DECLARATIONS {
        return Err(ApiError::Conflict(format!(
            "{MAX_DECLARATIONS} interventions are declared in {commune}: remove old ones first"
        )));
    }
    let mut iv = Intervention {
        id: 0,
        commune: commune.to_string(),
        site: site.to_string(),
        name,
        description,
        start_day: i.start_day,
        controls,
        created_by: who.actor.clone(),
        created_at: s.clock.now(),
    };
    iv.id = s.commerce.add_intervention(&iv).await?;
    Ok((StatusCode::CREATED, Json(iv)).into_response())
}

/// Remove an intervention
#[utoipa::path(delete, path = "/api/v1/commerce/interventions/{id}", tag = "indicators", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The intervention")),
    responses((status = 204, description = "Removed"), (status = 400, response = BadRequest), (status = 404, response = NotFound), Reads))]
pub(crate) async fn delete_intervention(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let found = visible_interventions(&s).await?.into_iter().find(|i| i.id == id);
    let i = found.ok_or_else(|| ApiError::NotFound(format!("no intervention {id}")))?;
    may_change(&who, &i.commune)?;
    s.commerce.delete_intervention(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The school-holiday calendar in use.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SchoolCalendar {
    /// What it is (`zone B`, or the name it was loaded under).
    name: String,
    /// Who loaded it (absent: the calendar agora ships).
    loaded_by: Option<String>,
    /// The holidays, in date order.
    holidays: Vec<SchoolHoliday>,
}

/// The calendar in use: the loaded one, or zone B's.
pub(crate) async fn school_holidays_of(
    s: &AppState,
) -> ApiResult<(String, Option<String>, SchoolHolidays)> {
    match s.commerce.school_calendar().await? {
        Some(c) => {
            let h = SchoolHolidays::parse_csv(&c.csv).map_err(|e| {
                ApiError::Internal(agora_store::Error::Internal(format!(
                    "the loaded school calendar no longer parses: {}",
                    e.join("; ")
                )))
            })?;
            Ok((c.name, Some(c.loaded_by), h))
        }
        None => Ok(("zone B".into(), None, SchoolHolidays::zone_b())),
    }
}

/// School holidays
///
/// The calendar the commerce figures mark school holidays with: zone B's (académie
/// d'Aix-Marseille), which agora ships, unless an operator loaded another.
#[utoipa::path(get, path = "/api/v1/commerce/school-holidays", tag = "indicators", security((), ("bearer" = [])),
    responses((status = 200, description = "The calendar", body = SchoolCalendar), Reads))]
pub(crate) async fn school_holidays(
    Scoped(s): Scoped,
    MaybeWho(who): MaybeWho,
) -> ApiResult<Json<SchoolCalendar>> {
    let (name, loaded_by, h) = school_holidays_of(&s).await?;
    let loaded_by = loaded_by.filter(|_| reads(who.as_ref()));
    Ok(Json(SchoolCalendar { name, loaded_by, holidays: h.periods().to_vec() }))
}

/// Which calendar is loaded.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LoadParams {
    /// Its name (`zone A`).
    name: String,
}

/// Load a school-holiday calendar
///
/// The body is CSV: a header `name,first_day,last_day`, then one holiday a line (dates
/// `YYYY-MM-DD`, days without school, both included). A calendar with any bad line is refused
/// whole, every problem named, and the one in use stays. The Métropole's administrators load it
/// (it serves every commune).
#[utoipa::path(put, path = "/api/v1/commerce/school-holidays", tag = "indicators", security(("bearer" = [])),
    params(LoadParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "Loaded", body = SchoolCalendar), Writes))]
pub(crate) async fn load_school_holidays(
    Scoped(s): Scoped,
    Who(who): Who,
    Query(p): Query<LoadParams>,
    body: String,
) -> ApiResult<Json<SchoolCalendar>> {
    who.check(Action::Modify, None, Some(Domain::Commerce))?;
    let name = text("name", &p.name, MAX_NAME)?;
    let h = SchoolHolidays::parse_csv(&body).map_err(|e| {
        ApiError::BadRequest(format!("the calendar was not loaded: {}", e.join("; ")))
    })?;
    if h.periods().is_empty() {
        return Err(ApiError::BadRequest("the calendar lists no holiday".into()));
    }
    let c = LoadedCalendar {
        name: name.clone(),
        csv: h.to_csv(),
        loaded_by: who.actor.clone(),
        loaded_at: s.clock.now(),
    };
    s.commerce.set_school_calendar(Some(&c)).await?;
    Ok(Json(SchoolCalendar { name, loaded_by: Some(who.actor), holidays: h.periods().to_vec() }))
}

/// Go back to zone B's school holidays
#[utoipa::path(delete, path = "/api/v1/commerce/school-holidays", tag = "indicators", security(("bearer" = [])),
    responses((status = 204, description = "Zone B's calendar is in use again"), Reads))]
pub(crate) async fn reset_school_holidays(
    Scoped(s): Scoped,
    Who(who): Who,
) -> ApiResult<StatusCode> {
    who.check(Action::Modify, None, Some(Domain::Commerce))?;
    s.commerce.set_school_calendar(None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    events,
    add_event,
    delete_event,
    interventions,
    add_intervention,
    delete_intervention,
    school_holidays,
    load_school_holidays,
    reset_school_holidays
))]
pub(crate) struct Doc;
