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
    let date = p.date.unwrap_or(today);
    if date > today {
        return Err(ApiError::BadRequest(format!(
            "{date} is in the future (today is {today} in Europe/Paris)"
        )));
    }
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
    Ok(Json(CompareAnswer {
        area: area_name,
        counters: f.counters.clone(),
        date,
        weekday: weekday_name(date.weekday()).to_owned(),
        holiday: calendar::holiday(date).map(calendar::Holiday::name_fr),
        direction,
        vs_last_week: footfall::vs_last_week(d, date),
        vs_4_weeks: footfall::vs_same_weekdays(d, date, 4),
        vs_last_year: footfall::vs_last_year(d, date),
        week_to_date: footfall::period_to_date(d, Period::Week, date),
        month_to_date: footfall::period_to_date(d, Period::Month, date),
        year_to_date: footfall::period_to_date(d, Period::Year, date),
        missing: f.missing,
    }))
}

/// An impact study to run.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ImpactParams {
    /// The place of the intervention.
    site: String,
    /// Control places, comma-separated (places the intervention did not touch).
    controls: String,
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
    controls: Option<f64>,
    counterfactual: Option<f64>,
}

/// An impact study's result.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImpactAnswer {
    /// The place of the intervention, its controls, and the intervention's first day.
    site: String,
    controls: Vec<String>,
    #[schema(value_type = String, format = Date)]
    start: NaiveDate,
    /// How it was estimated, in words for the report.
    method: &'static str,
    /// The estimate.
    effect: agora_indicators::impact::Effect,
    /// The days compared.
    days: Vec<StudyDay>,
}

/// The effect of an intervention on a place's footfall
///
/// Difference in differences of the daily footfall (log of the place's count over its controls',
/// after against before): weekdays, holidays and city-wide days cancel in the ratio. The 95 %
/// interval accounts for serial correlation (prewhitened Newey–West, Student's t on the effective
/// days); a placebo in the middle of the period before says whether the place and its controls
/// moved in parallel before. Days missing on either side are left out and counted.
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
    let (tz, today) = paris_today(&s);
    if p.start >= today {
        return Err(ApiError::BadRequest(format!(
            "the intervention starts {}: a study needs days after it, up to yesterday ({today} is today)",
            p.start
        )));
    }
    let controls: Vec<String> =
        p.controls.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    if controls.is_empty() {
        return Err(ApiError::BadRequest("name control places (controls=a,b)".into()));
    }
    if controls.contains(&p.site) {
        return Err(ApiError::BadRequest(format!(
            "{} is the treated place: a control place is one the intervention did not touch",
            p.site
        )));
    }
    let direction = Direction::parse(p.direction.as_deref().unwrap_or("total"))?;
    let design = agora_indicators::impact::Design {
        before_days: p.before_days.unwrap_or(182).clamp(28, 3 * 365),
        after_days: p.after_days.unwrap_or(182).clamp(28, 3 * 365),
        ..agora_indicators::impact::Design::at(p.start)
    };
    let first = p.start.checked_sub_days(Days::new(u64::from(design.before_days)));
    let last = p.start.checked_add_days(Days::new(u64::from(design.after_days) - 1));
    let (Some(first), Some(last)) = (first, last) else {
        return Err(ApiError::BadRequest(format!("{} is out of range", p.start)));
    };
    let last = last.min(today.pred_opt().unwrap_or(today));
    let read = |site: &str| {
        let s = s.clone();
        let site = site.to_owned();
        async move {
            let (area, _) = crate::indicators::area_of(&s, None, Some(&site), None)?;
            agora_query::footfall::daily(
                s.catalog.as_ref(),
                s.store.as_ref(),
                &area,
                direction,
                first,
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
    let treated = read(&p.site).await?;
    let mut series = Vec::new();
    for c in &controls {
        series.push(read(c).await?);
    }
    let refs: Vec<&footfall::Daily> = series.iter().collect();
    let effect = agora_indicators::impact::estimate(&treated, &refs, &design)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let factor = 1.0 + effect.change_pct / 100.0;
    let days = treated
        .iter()
        .map(|(d, t)| {
            let c: Option<f64> = refs.iter().map(|x| x.get(d).copied().flatten()).sum();
            StudyDay {
                date: *d,
                treated: *t,
                controls: c,
                counterfactual: (*d >= p.start).then(|| t.map(|v| v / factor)).flatten(),
            }
        })
        .collect();
    Ok(Json(ImpactAnswer {
        site: p.site,
        controls,
        start: p.start,
        method: "différence de différences du logarithme de la fréquentation (lieu / lieux témoins), \
                 intervalle à 95 % par variance de Newey–West préblanchie et loi de Student",
        effect,
        days,
    }))
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
/// 92 days at most), local days, weeks (Monday to Sunday) or months. A bucket in which a counter
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
    let to = p.to.unwrap_or(today);
    let from = p.from.unwrap_or(to - chrono::Duration::days(6));
    if to > today {
        return Err(ApiError::BadRequest(format!("{to} is in the future (today is {today})")));
    }
    if (to - from).num_days() > 3 * 366 {
        return Err(ApiError::BadRequest("a series spans three years at most".into()));
    }
    let step = agora_query::footfall::Step::parse(p.every.as_deref().unwrap_or("1d"))?;
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

/// Footfall's days are Paris days: the zone, and today there.
fn paris_today(s: &crate::AppState) -> (chrono_tz::Tz, NaiveDate) {
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
#[openapi(paths(compare, impact, series))]
pub(crate) struct Doc;
