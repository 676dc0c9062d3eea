//! Footfall for the commerce department: a day's passers-by at a counter, a place or a commune,
//! compared with days of the same weekday and with the same period a year before
//! (`agora_indicators::footfall`), in the calendar's context (public holidays).

use agora_indicators::calendar;
use agora_indicators::footfall::{self, Comparison, Period};
use agora_model::DeviceId;
use agora_query::footfall::Direction;
use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::doc::{BadRequest, NotFound, Reads};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::policy::Scoped;

/// Which footfall to compare.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CompareParams {
    /// One counter.
    device: Option<String>,
    /// A place: its counters together.
    site: Option<String>,
    /// A commune (INSEE code): its counters together.
    commune: Option<String>,
    /// The day (`YYYY-MM-DD`, Europe/Paris; default: today).
    #[param(value_type = Option<String>, format = Date)]
    date: Option<NaiveDate>,
    /// `total` (default: both ways), `in` or `out`.
    direction: Option<String>,
    /// Reference days the 4-week mean passes over (each replaced by the same weekday a week
    /// earlier), comma-separated: `holidays` (public holidays), `school_holidays`, `events`
    /// (declared events; markets recur and stay); `none`. Default `holidays,events`. A day is
    /// passed over only when `date` is not of the same kind.
    exclude: Option<String>,
}

/// A day's footfall against its references.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CompareAnswer {
    /// What was counted (`site hotel-de-ville`).
    area: String,
    /// The counters summed.
    #[schema(value_type = Vec<String>)]
    counters: Vec<DeviceId>,
    /// The day.
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    /// Its weekday (`saturday`).
    weekday: String,
    /// The public holiday it is, if any (`Lundi de Pâques`).
    holiday: Option<&'static str>,
    /// Passages counted.
    direction: Direction,
    /// Against the same weekday a week before.
    vs_last_week: Comparison,
    /// Against the mean of the same weekday over the 4 weeks before.
    vs_4_weeks: Comparison,
    /// Against the same weekday 52 weeks (364 days) before.
    vs_last_year: Comparison,
    /// Monday to this day, against the same days 364 days before.
    week_to_date: Comparison,
    /// The 1st of the month to this day, likewise.
    month_to_date: Comparison,
    /// 1 January to this day, likewise.
    year_to_date: Comparison,
    /// Days without a count, with the counters that had no data (never counted as zero).
    #[schema(value_type = Object)]
    missing: std::collections::BTreeMap<NaiveDate, Vec<DeviceId>>,
    /// What the reader should know of the days compared: a reference day that was a public
    /// holiday, in school holidays or had an event when `date` did not (or the reverse).
    notes: Vec<String>,
}

/// A day's footfall, compared
///
/// The passers-by of a counter, a place (the sum of its counters, except those marked
/// `"adds_to_place": false`) or a commune on one day (Europe/Paris), against the same weekday a
/// week before, the mean of the same weekday over the 4 weeks before, and the same weekday 52
/// weeks before; and the week, month and year to date against the same days 364 days before
/// (weekdays aligned). A day on which a counter had no data has no count: it is listed under
/// `missing` and left out of both sides of a comparison, never counted as zero.
#[utoipa::path(get, path = "/api/v1/commerce/compare", tag = "indicators", security((), ("bearer" = [])),
    params(CompareParams),
    responses(
        (status = 200, description = "The day and its comparisons", body = CompareAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn compare(
    Scoped(s): Scoped,
    Query(p): Query<CompareParams>,
) -> ApiResult<Json<CompareAnswer>> {
    let (area, area_name) = crate::indicators::area_of(
        &s,
        p.device.as_deref(),
        p.site.as_deref(),
        p.commune.as_deref(),
    )?;
    let (tz, today) = paris_today(&s);
    let date = not_after_today("date", p.date.unwrap_or(today), today)?;
    let direction = Direction::parse(p.direction.as_deref().unwrap_or("total"))?;
    // From the first day a comparison needs: 1 January's aligned day of the year before (the
    // earliest of all: the other references are within 364 days of `date`).
    let start = footfall::period_start(Period::Year, date)
        .checked_sub_days(Days::new(364))
        .ok_or_else(|| ApiError::BadRequest(format!("{date} is out of range")))?;
    let f = agora_query::footfall::daily(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &area,
        direction,
        start,
        date,
        tz,
    )
    .await
    .map_err(|e| match e {
        agora_query::Error::Invalid(m) => ApiError::NotFound(m),
        other => other.into(),
    })?;
    let d = &f.daily;
    let mut exclude = (true, false, true);
    if let Some(e) = p.exclude.as_deref() {
        exclude = (false, false, false);
        for x in e.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            match x {
                "holidays" => exclude.0 = true,
                "school_holidays" => exclude.1 = true,
                "events" => exclude.2 = true,
                "none" => {}
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "exclude {other:?}: use holidays, school_holidays, events or none"
                    )));
                }
            }
        }
    }
    let (_, _, school) = crate::commerce_calendar::school_holidays_of(&s).await?;
    let (site, commune) = area_place(&s, &area);
    let events: Vec<agora_store::commerce::CalendarEvent> =
        crate::commerce_calendar::visible_events(&s)
            .await?
            .into_iter()
            .filter(|e| e.kind == "event")
            .filter(|e| match (&commune, &site) {
                (Some(c), site) => e.concerns(c, site.as_deref()),
                _ => false,
            })
            .collect();
    let event_on = |x: NaiveDate| -> Vec<&str> {
        events.iter().filter(|e| e.on(x)).map(|e| e.name.as_str()).collect()
    };
    let kinds = |x: NaiveDate| {
        (calendar::holiday(x).is_some(), school.on(x).is_some(), !event_on(x).is_empty())
    };
    let this = kinds(date);
    let skip = |x: NaiveDate| {
        let k = kinds(x);
        (exclude.0 && k.0 && !this.0)
            || (exclude.1 && k.1 && !this.1)
            || (exclude.2 && k.2 && !this.2)
    };
    let mut notes = Vec::new();
    let describe = |x: NaiveDate| {
        let mut parts = Vec::new();
        if let Some(h) = calendar::holiday(x) {
            parts.push(format!("jour férié ({})", h.name_fr()));
        }
        if let Some(v) = school.on(x) {
            parts.push(format!("vacances scolaires ({})", v.name));
        }
        for e in event_on(x) {
            parts.push(format!("événement ({e})"));
        }
        parts
    };
    for (what, x) in [
        ("le jour comparé", Some(date)),
        ("la semaine dernière", date.checked_sub_days(Days::new(7))),
        ("il y a 52 semaines", date.checked_sub_days(Days::new(364))),
    ] {
        let Some(x) = x else { continue };
        if x != date && kinds(x) == this {
            continue;
        }
        let parts = describe(x);
        if !parts.is_empty() {
            notes.push(format!("{x}, {what} : {}", parts.join(", ")));
        }
    }
    Ok(Json(CompareAnswer {
        area: area_name,
        counters: f.counters.clone(),
        date,
        weekday: weekday_name(date.weekday()).to_owned(),
        holiday: calendar::holiday(date).map(calendar::Holiday::name_fr),
        direction,
        vs_last_week: footfall::vs_last_week(d, date),
        vs_4_weeks: footfall::vs_same_weekdays_skipping(d, date, 4, &skip),
        vs_last_year: footfall::vs_last_year(d, date),
        week_to_date: footfall::period_to_date(d, Period::Week, date),
        month_to_date: footfall::period_to_date(d, Period::Month, date),
        year_to_date: footfall::period_to_date(d, Period::Year, date),
        missing: f.missing,
        notes,
    }))
}

/// The place and the commune of an area (a counter's place and commune).
fn area_place(
    s: &crate::AppState,
    area: &agora_query::air::Area,
) -> (Option<String>, Option<String>) {
    match area {
        agora_query::air::Area::Site(x) => {
            let c =
                s.catalog.sites().into_iter().find(|y| y.id == *x).map(|y| y.commune.to_string());
            (Some(x.to_string()), c)
        }
        agora_query::air::Area::Commune(c) => (None, Some(c.to_string())),
        agora_query::air::Area::Device(d) => {
            let dev = s.catalog.device(d.as_str());
            (
                dev.as_ref().and_then(|x| x.site.as_ref()).map(ToString::to_string),
                dev.and_then(|x| x.commune).map(|c| c.to_string()),
            )
        }
    }
}

/// An impact study to run.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImpactParams {
    /// The place of the intervention.
    site: String,
    /// Control places, comma-separated (places the intervention did not touch). Empty or
    /// absent: the place against itself 52 weeks before (weaker evidence).
    controls: Option<String>,
    /// The first day of the intervention (`YYYY-MM-DD`).
    #[param(value_type = String, format = Date)]
    start: NaiveDate,
    /// Days before it compared with (default 182).
    before_days: Option<u32>,
    /// Days from it on (default 182, cut at yesterday).
    after_days: Option<u32>,
    /// `total` (default), `in` or `out`.
    direction: Option<String>,
}

/// A day of the study: the treated place, its controls, and what the treated place would have
/// counted without the intervention (after it).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StudyDay {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    treated: Option<f64>,
    /// The controls' sum (or, without controls, the place 364 days before).
    controls: Option<f64>,
    counterfactual: Option<f64>,
    /// Why the day is left out of the estimate (an event at one of the places, a public or
    /// school holiday not on the same day the year before).
    excluded: Option<String>,
}

/// An impact study's result.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImpactAnswer {
    /// The place of the intervention, its controls, and the intervention's first day.
    site: String,
    controls: Vec<String>,
    #[schema(value_type = String, format = Date)]
    start: NaiveDate,
    /// `controls` (difference in differences against control places) or `last_year` (the place
    /// against itself 52 weeks before: weaker evidence).
    design: &'static str,
    /// How it was estimated, in words for the report.
    method: &'static str,
    /// What the reader must keep in mind.
    caveats: Vec<String>,
    /// The estimate.
    effect: agora_indicators::impact::Effect,
    /// The days compared.
    days: Vec<StudyDay>,
}

/// What a study compares.
pub(crate) struct Study<'a> {
    pub(crate) site: &'a str,
    pub(crate) controls: &'a [String],
    pub(crate) start: NaiveDate,
    pub(crate) before_days: Option<u32>,
    pub(crate) after_days: Option<u32>,
    pub(crate) direction: Direction,
}

/// Control places a study compares with, at most.
const MAX_CONTROLS: usize = 10;

const METHOD_CONTROLS: &str = "différence de différences du logarithme de la fréquentation \
     journalière (lieu / lieux témoins), après contre avant ; intervalle à 95 % par variance de \
     Newey–West préblanchie et loi de Student ; test placebo au milieu de la période avant";
const METHOD_LAST_YEAR: &str = "série temporelle interrompue : la fréquentation journalière du \
     lieu rapportée à celle du même jour de la semaine 52 semaines plus tôt, après contre avant ; \
     intervalle à 95 % par variance de Newey–West préblanchie et loi de Student";

/// Run a study: read the days, leave out those an event or the calendar would bias, estimate.
pub(crate) async fn run_study(s: &crate::AppState, q: Study<'_>) -> ApiResult<ImpactAnswer> {
    let (tz, today) = paris_today(s);
    sane_date("start", q.start)?;
    if q.controls.len() > MAX_CONTROLS {
        return Err(ApiError::BadRequest(format!(
            "{} control places: {MAX_CONTROLS} at most",
            q.controls.len()
        )));
    }
    for (i, c) in q.controls.iter().enumerate() {
        if q.controls[..i].contains(c) {
            return Err(ApiError::BadRequest(format!("control {c} is named twice")));
        }
    }
    if q.start >= today {
        return Err(ApiError::BadRequest(format!(
            "the intervention starts {}: a study needs days after it, up to yesterday ({today} is today)",
            q.start
        )));
    }
    if q.controls.iter().any(|c| c == q.site) {
        return Err(ApiError::BadRequest(format!(
            "{} is the treated place: a control place is one the intervention did not touch",
            q.site
        )));
    }
    let design = agora_indicators::impact::Design {
        before_days: q.before_days.unwrap_or(182).clamp(28, 3 * 365),
        after_days: q.after_days.unwrap_or(182).clamp(28, 3 * 365),
        ..agora_indicators::impact::Design::at(q.start)
    };
    let first = q.start.checked_sub_days(Days::new(u64::from(design.before_days)));
    let last = q.start.checked_add_days(Days::new(u64::from(design.after_days) - 1));
    let (Some(first), Some(last)) = (first, last) else {
        return Err(ApiError::BadRequest(format!("{} is out of range", q.start)));
    };
    let last = last.min(today.pred_opt().unwrap_or(today));
    let last_year = q.controls.is_empty();
    let read_from = if last_year {
        first
            .checked_sub_days(Days::new(364))
            .ok_or_else(|| ApiError::BadRequest(format!("{} is out of range", q.start)))?
    } else {
        first
    };
    let read = |site: &str| {
        let s = s.clone();
        let site = site.to_owned();
        async move {
            let (area, _) = crate::indicators::area_of(&s, None, Some(&site), None)?;
            agora_query::footfall::daily(
                s.catalog.as_ref(),
                s.store.as_ref(),
                &area,
                q.direction,
                read_from,
                last,
                tz,
            )
            .await
            .map(|f| f.daily)
            .map_err(|e| match e {
                agora_query::Error::Invalid(m) => ApiError::NotFound(format!("{site}: {m}")),
                other => other.into(),
            })
        }
    };
    let whole = read(q.site).await?;
    if !whole.range(first..q.start).any(|(_, v)| v.is_some()) {
        return Err(ApiError::BadRequest(format!(
            "{} has no footfall before {}: there is nothing to compare the days after with",
            q.site, q.start
        )));
    }
    let mut treated: footfall::Daily = whole.range(first..=last).map(|(d, v)| (*d, *v)).collect();
    let mut control = footfall::Daily::new();
    let mut excluded: std::collections::BTreeMap<NaiveDate, String> = Default::default();
    let mut caveats = Vec::new();
    if last_year {
        for d in treated.keys() {
            control.insert(*d, whole.get(&(*d - chrono::Duration::days(364))).copied().flatten());
        }
        let (_, _, school) = crate::commerce_calendar::school_holidays_of(s).await?;
        for d in treated.keys() {
            let before = *d - chrono::Duration::days(364);
            let h = (calendar::holiday(*d), calendar::holiday(before));
            if h.0 != h.1 {
                let name = h.0.or(h.1).map(calendar::Holiday::name_fr).unwrap_or_default();
                excluded
                    .insert(*d, format!("jour férié ({name}) d'un seul côté de la comparaison"));
            } else if school.on(*d).is_some() != school.on(before).is_some() {
                excluded.insert(*d, "vacances scolaires d'un seul côté de la comparaison".into());
            }
        }
        caveats.push(
            "Sans lieu témoin, le lieu est comparé à lui-même un an plus tôt : tout ce qui a changé \
             en ville dans l'année (météo, conjoncture, travaux) est attribué à l'intervention. \
             C'est une preuve plus faible qu'une comparaison avec des lieux témoins."
                .into(),
        );
    } else {
        for c in q.controls {
            let series = read(c).await?;
            for (d, v) in series {
                let e = control.entry(d).or_insert(Some(0.0));
                *e = match (*e, v) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
            }
        }
    }
    // Events at some of the places compared (not all: then they cancel) bias the ratio.
    let places: Vec<&str> =
        std::iter::once(q.site).chain(q.controls.iter().map(String::as_str)).collect();
    let communes: Vec<(String, String)> = s
        .catalog
        .sites()
        .into_iter()
        .filter(|x| places.contains(&x.id.as_str()))
        .map(|x| (x.id.to_string(), x.commune.to_string()))
        .collect();
    for e in crate::commerce_calendar::visible_events(s).await? {
        if e.kind != "event" {
            continue;
        }
        let touched = communes.iter().filter(|(site, c)| e.concerns(c, Some(site))).count();
        let all = if last_year { false } else { touched == communes.len() };
        if touched == 0 || all {
            continue;
        }
        for d in treated.keys() {
            let shifted = *d - chrono::Duration::days(364);
            if e.on(*d) || (last_year && e.on(shifted)) {
                excluded.entry(*d).or_insert_with(|| format!("événement : {}", e.name));
            }
        }
    }
    for d in excluded.keys() {
        treated.remove(d);
        control.remove(d);
    }
    if !excluded.is_empty() {
        caveats.push(format!(
            "{} jour(s) écarté(s) de l'estimation (événements, jours fériés ou vacances ne tombant \
             pas des deux côtés de la comparaison).",
            excluded.len()
        ));
    }
    let effect = agora_indicators::impact::estimate(&treated, &[&control], &design)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !effect.parallel_before {
        caveats.push(format!(
            "Avant l'intervention, le lieu et sa référence n'évoluaient pas en parallèle (placebo : \
             {:+.1} %, intervalle {:+.1} % à {:+.1} %) : l'estimation est à lire avec prudence.",
            effect.placebo_pct, effect.placebo_interval_pct.0, effect.placebo_interval_pct.1
        ));
    }
    if effect.days_missing > 0 {
        caveats.push(format!(
            "{} jour(s) sans comptage complet, laissés de côté (jamais comptés comme zéro).",
            effect.days_missing
        ));
    }
    let factor = 1.0 + effect.change_pct / 100.0;
    let days = whole
        .range(first..=last)
        .map(|(d, t)| StudyDay {
            date: *d,
            treated: *t,
            controls: if last_year {
                whole.get(&(*d - chrono::Duration::days(364))).copied().flatten()
            } else {
                control.get(d).copied().flatten()
            },
            counterfactual: (*d >= q.start && !excluded.contains_key(d))
                .then(|| t.map(|v| v / factor))
                .flatten(),
            excluded: excluded.get(d).cloned(),
        })
        .collect();
    Ok(ImpactAnswer {
        site: q.site.to_owned(),
        controls: q.controls.to_vec(),
        start: q.start,
        design: if last_year { "last_year" } else { "controls" },
        method: if last_year { METHOD_LAST_YEAR } else { METHOD_CONTROLS },
        caveats,
        effect,
        days,
    })
}

/// The effect of an intervention on a place's footfall
///
/// Difference in differences of the daily footfall (log of the place's count over its controls',
/// after against before): weekdays, holidays and city-wide days cancel in the ratio. The 95 %
/// interval accounts for serial correlation (prewhitened Newey–West, Student's t on the effective
/// days); a placebo in the middle of the period before says whether the place and its controls
/// moved in parallel before. Without controls, the place is compared with itself 52 weeks before
/// (an interrupted time series, weaker evidence; days whose holidays differ are left out). Days
/// of an event at some of the places are left out; days missing on either side are left out and
/// counted.
#[utoipa::path(get, path = "/api/v1/commerce/impact", tag = "indicators", security((), ("bearer" = [])),
    params(ImpactParams),
    responses(
        (status = 200, description = "The estimate and the days compared", body = ImpactAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn impact(
    Scoped(s): Scoped,
    Query(p): Query<ImpactParams>,
) -> ApiResult<Json<ImpactAnswer>> {
    let controls: Vec<String> = p
        .controls
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let direction = Direction::parse(p.direction.as_deref().unwrap_or("total"))?;
    let study = Study {
        site: &p.site,
        controls: &controls,
        start: p.start,
        before_days: p.before_days,
        after_days: p.after_days,
        direction,
    };
    Ok(Json(run_study(&s, study).await?))
}

/// How a declared intervention's study is served.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StudyParams {
    /// `json` (default), `csv` (the days) or `html` (the printable report).
    format: Option<String>,
}

/// The impact study of a declared intervention
///
/// As `/api/v1/commerce/impact`, for the intervention's place, controls and start day, over 182
/// days before and after. `format=csv` gives the days compared; `format=html` the report for
/// the commerce department, to print.
#[utoipa::path(get, path = "/api/v1/commerce/interventions/{id}/study", tag = "indicators", security((), ("bearer" = [])),
    params(("id" = i64, Path, description = "The intervention"), StudyParams),
    responses(
        (status = 200, description = "The study (or CSV, or HTML)", body = ImpactAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn study(
    Scoped(s): Scoped,
    crate::extract::Path(id): crate::extract::Path<i64>,
    Query(p): Query<StudyParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let found =
        crate::commerce_calendar::visible_interventions(&s).await?.into_iter().find(|i| i.id == id);
    let iv = found.ok_or_else(|| ApiError::NotFound(format!("no intervention {id}")))?;
    let q = Study {
        site: &iv.site,
        controls: &iv.controls,
        start: iv.start_day,
        before_days: None,
        after_days: None,
        direction: Direction::Total,
    };
    let a = run_study(&s, q).await?;
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(a).into_response()),
        Some("csv") => {
            let mut out = String::from("date,treated,reference,counterfactual,excluded\n");
            let n = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_default();
            for d in &a.days {
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    d.date,
                    n(d.treated),
                    n(d.controls),
                    n(d.counterfactual),
                    crate::commerce_report::csv_field(d.excluded.as_deref().unwrap_or(""))
                ));
            }
            let file = format!("attachment; filename=\"etude-impact-{id}.csv\"");
            Ok((
                [
                    (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (axum::http::header::CONTENT_DISPOSITION, file),
                ],
                out,
            )
                .into_response())
        }
        Some("html") => {
            let html = crate::commerce_report::render(&iv, &a);
            Ok(([(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], html)
                .into_response())
        }
        Some(f) => Err(ApiError::BadRequest(format!("format {f:?}: use json, csv or html"))),
    }
}

impl ImpactAnswer {
    pub(crate) fn days(
        &self,
    ) -> impl Iterator<Item = (NaiveDate, Option<f64>, Option<f64>, bool)> + '_ {
        self.days.iter().map(|d| (d.date, d.treated, d.counterfactual, d.excluded.is_some()))
    }
    pub(crate) fn effect(&self) -> &agora_indicators::impact::Effect {
        &self.effect
    }
    pub(crate) fn caveats(&self) -> &[String] {
        &self.caveats
    }
    pub(crate) fn method(&self) -> &'static str {
        self.method
    }
    pub(crate) fn last_year(&self) -> bool {
        self.design == "last_year"
    }
}

/// Which profile.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProfileParams {
    /// One counter.
    device: Option<String>,
    /// A place: its counters together.
    site: Option<String>,
    /// A commune (INSEE code): its counters together.
    commune: Option<String>,
    /// The day drawn against its typical day (`YYYY-MM-DD`; default: today).
    #[param(value_type = Option<String>, format = Date)]
    date: Option<NaiveDate>,
    /// Weeks before `date` the heat map and the typical day are computed over (default 12, at
    /// most 53).
    weeks: Option<u32>,
    /// `total` (default), `in` or `out`.
    direction: Option<String>,
}

/// The shape of a place's footfall.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProfileAnswer {
    area: String,
    #[schema(value_type = Vec<String>)]
    counters: Vec<DeviceId>,
    /// The period the profiles are computed over (the weeks before `date`).
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    /// Mean passers-by per hour: `heat_map[weekday from Monday][hour]` (public holidays left out).
    heat_map: Vec<Vec<agora_indicators::profile::Cell>>,
    /// The day drawn.
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    weekday: String,
    holiday: Option<&'static str>,
    school_holiday: Option<String>,
    /// Events that day at the place or its commune.
    events: Vec<String>,
    /// Its hours so far (`null`: an hour without data from every counter, or to come).
    today: Vec<Option<f64>>,
    /// So far that day (its complete hours), and the sum of the typical day's hourly medians
    /// over the same hours.
    so_far: Option<f64>,
    usual_so_far: Option<f64>,
    /// The typical day of that weekday: median and 10th–90th percentiles of each hour, over the
    /// same weekdays of the period (public holidays left out).
    typical: Vec<agora_indicators::profile::TypicalHour>,
}

/// A place's footfall profile: heat map and typical day
///
/// The weekday × hour heat map of the weeks before `date` (mean passers-by per hour), and the
/// typical day of `date`'s weekday (median and 10th–90th percentiles of each hour over those
/// weeks) with `date`'s hours so far drawn against it — "passants aujourd'hui" against the
/// usual for that weekday. Hours without data are left out and counted, never zero.
#[utoipa::path(get, path = "/api/v1/commerce/profile", tag = "indicators", security((), ("bearer" = [])),
    params(ProfileParams),
    responses(
        (status = 200, description = "The profile", body = ProfileAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn profile(
    Scoped(s): Scoped,
    Query(p): Query<ProfileParams>,
) -> ApiResult<Json<ProfileAnswer>> {
    use chrono::Timelike;
    let (area, area_name) = crate::indicators::area_of(
        &s,
        p.device.as_deref(),
        p.site.as_deref(),
        p.commune.as_deref(),
    )?;
    let (tz, today) = paris_today(&s);
    let date = not_after_today("date", p.date.unwrap_or(today), today)?;
    let weeks = p.weeks.unwrap_or(12);
    if !(1..=53).contains(&weeks) {
        return Err(ApiError::BadRequest(format!("weeks={weeks}: use 1 to 53")));
    }
    let direction = Direction::parse(p.direction.as_deref().unwrap_or("total"))?;
    let from = date - chrono::Duration::days(7 * i64::from(weeks));
    let to = date.pred_opt().unwrap_or(date);
    let h = agora_query::footfall::hourly(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &area,
        direction,
        from,
        date,
        tz,
    )
    .await
    .map_err(|e| match e {
        agora_query::Error::Invalid(m) => ApiError::NotFound(m),
        other => other.into(),
    })?;
    let keep = |d: NaiveDate| d <= to && calendar::holiday(d).is_none();
    let heat_map = agora_indicators::profile::heat_map(&h.hours, &keep);
    let typical = agora_indicators::profile::typical_day(&h.hours, date.weekday(), &keep);
    let now_hour =
        if date == today { s.clock.now().to_datetime().with_timezone(&tz).hour() } else { 23 };
    let today_hours: Vec<Option<f64>> = (0..24)
        // An hour the clocks skip (spring) has no key: nobody passed in it.
        .map(|hr| {
            if hr > now_hour {
                None
            } else {
                h.hours.get(&(date, hr)).copied().unwrap_or(Some(0.0))
            }
        })
        .collect();
    // Complete hours only (the current one is still being counted).
    let done = if date == today { now_hour } else { 24 };
    let so_far: Option<f64> = (0..done as usize).map(|i| today_hours[i]).sum();
    let usual_so_far: Option<f64> = typical.iter().take(done as usize).map(|t| t.median).sum();
    let (_, _, school) = crate::commerce_calendar::school_holidays_of(&s).await?;
    let (site_id, commune) = area_place(&s, &area);
    let events = match &commune {
        Some(c) => crate::commerce_calendar::visible_events(&s)
            .await?
            .into_iter()
            .filter(|e| {
                e.on(date)
                    && (e.concerns(c, site_id.as_deref()) || site_id.is_none() && e.commune == *c)
            })
            .map(|e| e.name)
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(ProfileAnswer {
        area: area_name,
        counters: h.counters,
        from,
        to,
        heat_map,
        date,
        weekday: weekday_name(date.weekday()).to_owned(),
        holiday: calendar::holiday(date).map(calendar::Holiday::name_fr),
        school_holiday: school.on(date).map(|x| x.name.clone()),
        events,
        today: today_hours,
        so_far: (done > 0).then_some(so_far).flatten(),
        usual_so_far: (done > 0).then_some(usual_so_far).flatten(),
        typical,
    }))
}

/// Which ranking.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FootfallRankingParams {
    /// First day (`YYYY-MM-DD`; default: 7 days before `to`).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// Last day (default: yesterday).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
    /// First day of the reference period the index is 100 on (default: `from` 364 days before).
    #[param(value_type = Option<String>, format = Date)]
    ref_from: Option<NaiveDate>,
    /// Its last day (default: `to` 364 days before).
    #[param(value_type = Option<String>, format = Date)]
    ref_to: Option<NaiveDate>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// A place in the ranking.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RankedPlace {
    site: String,
    name: String,
    /// Its commune (INSEE code) and the commune's name.
    commune: String,
    commune_name: Option<String>,
    /// Mean passers-by a day over the period's days with a count.
    per_day: Option<f64>,
    /// Days with a count, and days without.
    days: usize,
    days_missing: usize,
    /// Mean a day over the reference period.
    reference_per_day: Option<f64>,
    /// 100 × per_day / reference_per_day.
    index: Option<f64>,
}

/// The ranking of places.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FootfallRanking {
    #[schema(value_type = String, format = Date)]
    from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    to: NaiveDate,
    #[schema(value_type = String, format = Date)]
    ref_from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    ref_to: NaiveDate,
    /// By passers-by a day, busiest first (places without a count last).
    places: Vec<RankedPlace>,
}

/// Places ranked by footfall, with their index
///
/// Every place with pedestrian counters, by mean passers-by a day over a period, with its
/// footfall index (100 = the place's own mean a day over the reference period, by default the
/// same days 52 weeks before), so that places of different size compare on one scale.
#[utoipa::path(get, path = "/api/v1/commerce/ranking", tag = "indicators", security((), ("bearer" = [])),
    params(FootfallRankingParams),
    responses(
        (status = 200, description = "The ranking (or CSV with `format=csv`)", body = FootfallRanking),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn ranking(
    Scoped(s): Scoped,
    Query(p): Query<FootfallRankingParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let (tz, today) = paris_today(&s);
    let to = not_after_today("to", p.to.unwrap_or(today.pred_opt().unwrap_or(today)), today)?;
    let from = sane_date("from", p.from.unwrap_or(to - chrono::Duration::days(6)))?;
    period(("from", "to"), (from, to))?;
    let ref_from = sane_date("ref_from", p.ref_from.unwrap_or(from - chrono::Duration::days(364)))?;
    let ref_to = sane_date("ref_to", p.ref_to.unwrap_or(to - chrono::Duration::days(364)))?;
    period(("ref_from", "ref_to"), (ref_from, ref_to))?;
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => return Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
    };
    let mut places = Vec::new();
    let communes = s.catalog.communes();
    for site in s.catalog.sites() {
        let area = agora_query::air::Area::Site(site.id.clone());
        if agora_query::footfall::counters(s.catalog.as_ref(), &area).is_err() {
            continue;
        }
        // Each period read apart: they may be years apart.
        let read = |a, b| {
            agora_query::footfall::daily(
                s.catalog.as_ref(),
                s.store.as_ref(),
                &area,
                Direction::Total,
                a,
                b,
                tz,
            )
        };
        let mut f = read(from, to).await?.daily;
        f.extend(read(ref_from, ref_to).await?.daily);
        let (per_day, days) = footfall::mean_per_day(&f, from, to);
        let (reference_per_day, _) = footfall::mean_per_day(&f, ref_from, ref_to);
        places.push(RankedPlace {
            site: site.id.to_string(),
            name: site.name.clone(),
            commune: site.commune.to_string(),
            commune_name: communes.iter().find(|c| c.insee == site.commune).map(|c| c.name.clone()),
            per_day,
            days,
            days_missing: (to - from).num_days() as usize + 1 - days,
            reference_per_day,
            index: footfall::period_index(&f, (from, to), (ref_from, ref_to)),
        });
    }
    places.sort_by(|a, b| match (a.per_day, b.per_day) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.site.cmp(&b.site),
    });
    if csv {
        let mut out = String::from("rank,site,per_day,days,days_missing,reference_per_day,index\n");
        let n = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
        for (i, r) in places.iter().enumerate() {
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                i + 1,
                r.site,
                n(r.per_day),
                r.days,
                r.days_missing,
                n(r.reference_per_day),
                n(r.index)
            ));
        }
        return Ok(
            ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
        );
    }
    Ok(Json(FootfallRanking { from, to, ref_from, ref_to, places }).into_response())
}

/// Which footfall series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SeriesParams {
    /// One counter.
    device: Option<String>,
    /// A place: its counters together.
    site: Option<String>,
    /// A commune (INSEE code): its counters together.
    commune: Option<String>,
    /// First day (`YYYY-MM-DD`, Europe/Paris; default: 6 days before `to`).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// Last day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
    /// `15m`, `1h`, `1d` (default), `1w` or `1mo`.
    every: Option<String>,
    /// `total` (default), `in` or `out`.
    direction: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// A footfall series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SeriesAnswer {
    area: String,
    #[schema(value_type = Vec<String>)]
    counters: Vec<DeviceId>,
    direction: Direction,
    every: agora_query::footfall::Step,
    buckets: Vec<agora_query::footfall::Bucket>,
}

/// Footfall over time
///
/// The passers-by of a counter, a place or a commune in buckets of 15 minutes or an hour (over
/// 92 days at most; 15 minutes for signed-in callers only, the public sees hours at the finest),
/// local days, weeks (Monday to Sunday) or months. A bucket in which a counter
/// had no data has no count (`null`) and names the counters under `missing`: never a partial sum
/// shown as the whole, never zero visitors.
#[utoipa::path(get, path = "/api/v1/commerce/footfall", tag = "indicators", security((), ("bearer" = [])),
    params(SeriesParams),
    responses(
        (status = 200, description = "The series (or CSV with `format=csv`)", body = SeriesAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn series(
    Scoped(s): Scoped,
    crate::policy::MaybeWho(who): crate::policy::MaybeWho,
    Query(p): Query<SeriesParams>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let (area, area_name) = crate::indicators::area_of(
        &s,
        p.device.as_deref(),
        p.site.as_deref(),
        p.commune.as_deref(),
    )?;
    let (tz, today) = paris_today(&s);
    let to = not_after_today("to", p.to.unwrap_or(today), today)?;
    let from = sane_date("from", p.from.unwrap_or(to - chrono::Duration::days(6)))?;
    if (to - from).num_days() > 3 * 366 {
        return Err(ApiError::BadRequest("a series spans three years at most".into()));
    }
    let step = agora_query::footfall::Step::parse(p.every.as_deref().unwrap_or("1d"))?;
    if step == agora_query::footfall::Step::Quarter
        && !who.as_ref().is_some_and(|w| w.grant.may(agora_model::permissions::Action::View))
    {
        return Err(ApiError::Forbidden(
            "the public sees footfall per hour at the finest: sign in for 15-minute counts".into(),
        ));
    }
    let direction = Direction::parse(p.direction.as_deref().unwrap_or("total"))?;
    let (counters, buckets) = agora_query::footfall::series(
        s.catalog.as_ref(),
        s.store.as_ref(),
        &area,
        direction,
        (from, to),
        step,
        tz,
    )
    .await
    .map_err(|e| match e {
        agora_query::Error::Invalid(m) if m.contains("no pedestrian counter") => {
            ApiError::NotFound(m)
        }
        other => other.into(),
    })?;
    match p.format.as_deref() {
        None | Some("json") => {
            Ok(Json(SeriesAnswer { area: area_name, counters, direction, every: step, buckets })
                .into_response())
        }
        Some("csv") => {
            let mut out = String::from("start,count,missing\n");
            for b in &buckets {
                let missing: Vec<&str> = b.missing.iter().map(DeviceId::as_str).collect();
                out.push_str(&format!(
                    "{},{},{}\n",
                    b.start,
                    b.count.map(|c| c.to_string()).unwrap_or_default(),
                    missing.join(" ")
                ));
            }
            Ok(([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], out)
                .into_response())
        }
        Some(f) => Err(ApiError::BadRequest(format!("format {f:?}: use json or csv"))),
    }
}

/// Which index series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IndexParams {
    /// First day (`YYYY-MM-DD`; default: 52 weeks before `to`).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// Last day (default: yesterday).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
    /// `1d`, `1w` (default: Monday to Sunday) or `1mo`.
    every: Option<String>,
    /// First day of the reference period the index is 100 on (default: `from`).
    #[param(value_type = Option<String>, format = Date)]
    ref_from: Option<NaiveDate>,
    /// Its last day (default: `to`).
    #[param(value_type = Option<String>, format = Date)]
    ref_to: Option<NaiveDate>,
}

/// A bucket of an index series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndexBucket {
    /// Its first day.
    #[schema(value_type = String, format = Date)]
    start: NaiveDate,
    /// 100 × its mean passers-by a day / the reference period's (`null`: no day with a count).
    index: Option<f64>,
    /// Days with a count in it.
    days: usize,
}

/// A place's index series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndexSeries {
    site: String,
    name: String,
    /// Its mean passers-by a day over the reference period (the index's 100).
    reference_per_day: Option<f64>,
    buckets: Vec<IndexBucket>,
}

/// The places' index series.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndexAnswer {
    #[schema(value_type = String, format = Date)]
    ref_from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    ref_to: NaiveDate,
    places: Vec<IndexSeries>,
}

/// The footfall index of every place over time
///
/// For each place with counters, per day, week or month: 100 × its mean passers-by a day / its
/// own mean a day over the reference period (by default the period shown), so that places of
/// different size are drawn on one chart. Days without a count are left out of both means.
#[utoipa::path(get, path = "/api/v1/commerce/index", tag = "indicators", security((), ("bearer" = [])),
    params(IndexParams),
    responses(
        (status = 200, description = "The series", body = IndexAnswer),
        (status = 400, response = BadRequest),
        Reads,
    ))]
pub(crate) async fn index(
    Scoped(s): Scoped,
    Query(p): Query<IndexParams>,
) -> ApiResult<Json<IndexAnswer>> {
    let (tz, today) = paris_today(&s);
    let to = not_after_today("to", p.to.unwrap_or(today.pred_opt().unwrap_or(today)), today)?;
    let from = sane_date("from", p.from.unwrap_or(to - chrono::Duration::days(364)))?;
    period(("from", "to"), (from, to))?;
    let ref_from = sane_date("ref_from", p.ref_from.unwrap_or(from))?;
    let ref_to = sane_date("ref_to", p.ref_to.unwrap_or(to))?;
    period(("ref_from", "ref_to"), (ref_from, ref_to))?;
    let step = agora_query::footfall::Step::parse(p.every.as_deref().unwrap_or("1w"))?;
    let key = |d: NaiveDate| match step {
        agora_query::footfall::Step::Week => {
            d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()))
        }
        agora_query::footfall::Step::Month => d.with_day(1).unwrap_or(d),
        _ => d,
    };
    if matches!(step, agora_query::footfall::Step::Quarter | agora_query::footfall::Step::Hour) {
        return Err(ApiError::BadRequest("every: use 1d, 1w or 1mo".into()));
    }
    let mut places = Vec::new();
    for site in s.catalog.sites() {
        let area = agora_query::air::Area::Site(site.id.clone());
        if agora_query::footfall::counters(s.catalog.as_ref(), &area).is_err() {
            continue;
        }
        let read = |a, b| {
            agora_query::footfall::daily(
                s.catalog.as_ref(),
                s.store.as_ref(),
                &area,
                Direction::Total,
                a,
                b,
                tz,
            )
        };
        let mut f = read(from, to).await?.daily;
        f.extend(read(ref_from, ref_to).await?.daily);
        let (reference_per_day, _) = footfall::mean_per_day(&f, ref_from, ref_to);
        // Buckets: from each bucket's first day (cut at `from`) to its last (cut at `to`).
        let mut starts: Vec<NaiveDate> = Vec::new();
        let mut d = from;
        while d <= to {
            if starts.last() != Some(&key(d)) {
                starts.push(key(d));
            }
            d = d.succ_opt().unwrap_or(to + chrono::Duration::days(1));
        }
        let buckets = starts
            .iter()
            .enumerate()
            .map(|(i, start)| {
                let a = (*start).max(from);
                let b = starts.get(i + 1).map_or(to, |n| *n - chrono::Duration::days(1)).min(to);
                let (_, days) = footfall::mean_per_day(&f, a, b);
                IndexBucket {
                    start: *start,
                    index: footfall::period_index(&f, (a, b), (ref_from, ref_to)),
                    days,
                }
            })
            .collect();
        places.push(IndexSeries {
            site: site.id.to_string(),
            name: site.name.clone(),
            reference_per_day,
            buckets,
        });
    }
    Ok(Json(IndexAnswer { ref_from, ref_to, places }))
}

/// Which counters to check.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HealthParams {
    /// The counters of a place.
    site: Option<String>,
    /// The counters of a commune (INSEE code); neither: every counter the caller sees.
    commune: Option<String>,
    /// The day judged (`YYYY-MM-DD`; default: today, its complete hours).
    #[param(value_type = Option<String>, format = Date)]
    date: Option<NaiveDate>,
}

/// A counter's day, judged.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CounterHealth {
    #[schema(value_type = String)]
    device: DeviceId,
    site: Option<String>,
    /// Hours of the day with data, compared.
    hours: usize,
    /// What is wrong (empty: nothing).
    problems: Vec<agora_indicators::profile::CounterProblem>,
}

/// The counters' health.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthAnswer {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    /// Every counter checked, those with problems first.
    counters: Vec<CounterHealth>,
}

/// Pedestrian counters to check
///
/// Each counter's day against its own typical day for that weekday (the medians of the 8 same
/// weekdays before, public holidays left out): flagged when it counted zero for 3 hours or more
/// in a row when it usually counts people then, or under 30 % of its usual count over the hours
/// it reported. A counter that reports nothing is the fleet's silent device, not judged here.
#[utoipa::path(get, path = "/api/v1/commerce/counters", tag = "indicators", security(("bearer" = [])),
    params(HealthParams),
    responses(
        (status = 200, description = "The counters, judged", body = HealthAnswer),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn counters_health(
    Scoped(s): Scoped,
    Query(p): Query<HealthParams>,
) -> ApiResult<Json<HealthAnswer>> {
    use chrono::Timelike;
    let (tz, today) = paris_today(&s);
    let date = not_after_today("date", p.date.unwrap_or(today), today)?;
    let filter = agora_store::catalog::DeviceFilter {
        kind: agora_model::DeviceKind::parse(agora_query::footfall::COUNTER_KIND).ok(),
        ..Default::default()
    };
    let mut devices = s.catalog.devices(&filter);
    if let Some(site) = &p.site {
        let id =
            agora_model::SiteId::parse(site).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if !s.catalog.sites().iter().any(|x| x.id == id) {
            return Err(ApiError::NotFound(format!("no place {id}")));
        }
        devices.retain(|d| d.site.as_ref() == Some(&id));
    }
    if let Some(c) = &p.commune {
        let c =
            agora_model::InseeCode::parse(c).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        devices.retain(|d| d.commune.as_ref() == Some(&c));
    }
    // Today: the hours that are over.
    let last_hour =
        if date == today { s.clock.now().to_datetime().with_timezone(&tz).hour() } else { 24 };
    let from = date - chrono::Duration::days(56);
    let rules = agora_indicators::profile::HealthRules::default();
    let mut out = Vec::new();
    for d in devices {
        let area = agora_query::air::Area::Device(d.id.clone());
        let h = agora_query::footfall::hourly(
            s.catalog.as_ref(),
            s.store.as_ref(),
            &area,
            Direction::Total,
            from,
            date,
            tz,
        )
        .await?;
        let keep = |x: NaiveDate| x < date && calendar::holiday(x).is_none();
        let typical = agora_indicators::profile::typical_day(&h.hours, date.weekday(), &keep);
        let hours: Vec<Option<f64>> =
            (0..24)
                .map(|hr| {
                    if hr < last_hour { h.hours.get(&(date, hr)).copied().flatten() } else { None }
                })
                .collect();
        out.push(CounterHealth {
            site: d.site.as_ref().map(ToString::to_string),
            hours: hours.iter().flatten().count(),
            problems: agora_indicators::profile::counter_health(&hours, &typical, &rules),
            device: d.id,
        });
    }
    // Those with problems first.
    out.sort_by(|a, b| {
        a.problems.is_empty().cmp(&b.problems.is_empty()).then(a.device.cmp(&b.device))
    });
    Ok(Json(HealthAnswer { date, counters: out }))
}

/// The dates the observatory serves: 1970 to 2200 (a timestamp's range is 1677–2262; data
/// before 1970 is not a city's sensors'). Outside, a date is refused by name.
pub(crate) fn sane_date(what: &str, d: NaiveDate) -> ApiResult<NaiveDate> {
    let (lo, hi) = (
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date"),
        NaiveDate::from_ymd_opt(2200, 12, 31).expect("a valid date"),
    );
    if d < lo || d > hi {
        return Err(ApiError::BadRequest(format!("{what} {d} is out of range (1970 to 2200)")));
    }
    Ok(d)
}

/// A day asked for (`what`), up to today: refused when out of range or in the future.
fn not_after_today(what: &str, d: NaiveDate, today: NaiveDate) -> ApiResult<NaiveDate> {
    let d = sane_date(what, d)?;
    if d > today {
        return Err(ApiError::BadRequest(format!(
            "{what} {d} is in the future (today is {today} in Europe/Paris)"
        )));
    }
    Ok(d)
}

/// A period of one day to three years, first day first.
fn period(names: (&str, &str), (from, to): (NaiveDate, NaiveDate)) -> ApiResult<()> {
    if from > to || (to - from).num_days() > 3 * 366 {
        return Err(ApiError::BadRequest(format!(
            "{} {from} to {} {to}: a period of 1 day to three years",
            names.0, names.1
        )));
    }
    Ok(())
}

/// Footfall's days are Paris days: the zone, and today there.
pub(crate) fn paris_today(s: &crate::AppState) -> (chrono_tz::Tz, NaiveDate) {
    let tz = chrono_tz::Europe::Paris;
    (tz, s.clock.now().to_datetime().with_timezone(&tz).date_naive())
}

fn weekday_name(w: chrono::Weekday) -> &'static str {
    use chrono::Weekday as W;
    match w {
        W::Mon => "monday",
        W::Tue => "tuesday",
        W::Wed => "wednesday",
        W::Thu => "thursday",
        W::Fri => "friday",
        W::Sat => "saturday",
        W::Sun => "sunday",
    }
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(compare, impact, series, study, profile, ranking, index, counters_health))]
pub(crate) struct Doc;
