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
    let tz = chrono_tz::Europe::Paris;
    let today = s.clock.now().to_datetime().with_timezone(&tz).date_naive();
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
#[openapi(paths(compare))]
pub(crate) struct Doc;
