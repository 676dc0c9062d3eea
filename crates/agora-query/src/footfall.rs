//! Footfall of a counter, a place or a commune: the passers-by its pedestrian counters count,
//! per local day (Europe/Paris), from the store's hourly sums. A place's count is the sum of its
//! counters, except those marked as not adding to it (`"adds_to_place": false` in a device's
//! metadata: a second counter on the same entrance). A day on which one of them has no data at
//! all is a day without a count for the place (a counter down for a day is never zero visitors),
//! and the counters that lacked it are said.

use std::collections::BTreeMap;

use agora_indicators::footfall::Daily;
use agora_model::{DeviceId, Timestamp};
use agora_store::catalog::Device;
use agora_store::{Catalog, SeriesStore};
use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

use crate::air::Area;
use crate::days::LocalDays;
use crate::{Error, Result, TimeRange};

/// The kind of a pedestrian counter.
pub const COUNTER_KIND: &str = "pedestrian_counter";

/// Which passages are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Direction {
    /// Both ways: `people_in` + `people_out`.
    Total,
    /// `people_in`.
    In,
    /// `people_out`.
    Out,
}

impl Direction {
    /// The direction of a name (`total`, `in`, `out`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "total" => Ok(Self::Total),
            "in" => Ok(Self::In),
            "out" => Ok(Self::Out),
            _ => Err(Error::Invalid(format!("direction {s:?}: use total, in or out"))),
        }
    }

    fn properties(self) -> &'static [&'static str] {
        match self {
            Self::Total => &["people_in", "people_out"],
            Self::In => &["people_in"],
            Self::Out => &["people_out"],
        }
    }
}

/// Daily footfall of an area.
#[derive(Debug, Clone)]
pub struct Footfall {
    /// Count per day (`None`: a day without data from one of the counters).
    pub daily: Daily,
    /// The counters summed.
    pub counters: Vec<DeviceId>,
    /// For each day without a count, the counters that had no data.
    pub missing: BTreeMap<NaiveDate, Vec<DeviceId>>,
}

/// The counters of an area that add to its count.
pub fn counters(catalog: &dyn Catalog, area: &Area) -> Result<Vec<Device>> {
    let mut v: Vec<Device> = area
        .devices(catalog)?
        .into_iter()
        .filter(|d| d.kind.as_str() == COUNTER_KIND)
        .filter(|d| {
            matches!(area, Area::Device(_))
                || d.metadata.get("adds_to_place").and_then(serde_json::Value::as_bool)
                    != Some(false)
        })
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    if v.is_empty() {
        return Err(Error::Invalid("no pedestrian counter there".into()));
    }
    Ok(v)
}

/// The daily footfall of `area` from `from` to `to` (local days of `tz`, both included).
pub async fn daily(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    direction: Direction,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<Footfall> {
    if to < from {
        return Err(Error::Invalid(format!("from {from} is after to {to}")));
    }
    let devices = counters(catalog, area)?;
    let start = local_start(from, tz)?;
    let end = local_start(to.checked_add_days(Days::new(1)).unwrap_or(to), tz)?;
    let range = TimeRange { from: start, to: end };
    let days = LocalDays::new(range, tz, 0);
    // Per device, per day: the sum of its counts, when it has any that day.
    let per_device = crate::summary::concurrently(&devices, |d| {
        let keys: Vec<(&str, &str)> =
            direction.properties().iter().map(|p| (d.id.as_str(), *p)).collect();
        let series: Vec<_> = catalog.lookup_series(&keys).into_iter().flatten().collect();
        let days = &days;
        async move {
            let mut sums: BTreeMap<NaiveDate, f64> = BTreeMap::new();
            for s in series {
                let hour = std::time::Duration::from_secs(3600);
                let hours = store.aggregate(s, range.from, range.to, hour).await?;
                for (t, a) in hours {
                    if a.count == 0 {
                        continue;
                    }
                    if let Some((_, day)) = days.of(t) {
                        *sums.entry(day).or_default() += a.sum;
                    }
                }
            }
            Ok::<_, Error>(sums)
        }
    })
    .await?;
    let mut daily = Daily::new();
    let mut missing: BTreeMap<NaiveDate, Vec<DeviceId>> = BTreeMap::new();
    let mut d = from;
    while d <= to {
        let mut total = 0.0;
        for (dev, sums) in devices.iter().zip(&per_device) {
            match sums.get(&d) {
                Some(v) => total += v,
                None => missing.entry(d).or_default().push(dev.id.clone()),
            }
        }
        daily.insert(d, (!missing.contains_key(&d)).then_some(total));
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    Ok(Footfall { daily, counters: devices.into_iter().map(|d| d.id).collect(), missing })
}

fn local_start(d: NaiveDate, tz: Tz) -> Result<Timestamp> {
    use chrono::TimeZone;
    let local = d.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .and_then(|t| Timestamp::from_datetime(&t))
        .ok_or_else(|| Error::Invalid(format!("{d} is out of range")))
}

/// The step of a footfall series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Step {
    /// 15 minutes.
    #[serde(rename = "15m")]
    Quarter,
    /// An hour.
    #[serde(rename = "1h")]
    Hour,
    /// A local day.
    #[serde(rename = "1d")]
    Day,
    /// A week, Monday to Sunday.
    #[serde(rename = "1w")]
    Week,
    /// A calendar month.
    #[serde(rename = "1mo")]
    Month,
}

impl Step {
    /// The step of a name (`15m`, `1h`, `1d`, `1w`, `1mo`).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "15m" => Self::Quarter,
            "1h" => Self::Hour,
            "1d" => Self::Day,
            "1w" => Self::Week,
            "1mo" => Self::Month,
            _ => return Err(Error::Invalid(format!("every {s:?}: use 15m, 1h, 1d, 1w or 1mo"))),
        })
    }
}

/// A bucket of a footfall series: its start, its count (`None` when a counter had no data in
/// it: never a partial sum taken for the whole), and the counters that lacked it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bucket {
    /// Its start: an instant (15 minutes, hours) or a local date (days, weeks, months).
    pub start: String,
    /// Passers-by.
    pub count: Option<f64>,
    /// Counters without data in it.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub missing: Vec<DeviceId>,
}

/// Hourly footfall of an area: per local day and local hour (0–23; on the night the clocks go
/// back, 2 o'clock holds both hours), `None` for an hour in which one of the counters had no data.
#[derive(Debug, Clone)]
pub struct Hourly {
    /// Count per (day, hour).
    pub hours: BTreeMap<(NaiveDate, u32), Option<f64>>,
    /// The counters summed.
    pub counters: Vec<DeviceId>,
}

/// The hourly footfall of `area` from `from` to `to` (local days of `tz`, both included).
pub async fn hourly(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    direction: Direction,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<Hourly> {
    use chrono::Timelike;
    if to < from {
        return Err(Error::Invalid(format!("from {from} is after to {to}")));
    }
    let devices = counters(catalog, area)?;
    let start = local_start(from, tz)?;
    let end = local_start(to.checked_add_days(Days::new(1)).unwrap_or(to), tz)?;
    let local = |t: Timestamp| {
        let l = t.to_datetime().with_timezone(&tz);
        (l.date_naive(), l.hour())
    };
    let per_device = crate::summary::concurrently(&devices, |d| {
        let keys: Vec<(&str, &str)> =
            direction.properties().iter().map(|p| (d.id.as_str(), *p)).collect();
        let series: Vec<_> = catalog.lookup_series(&keys).into_iter().flatten().collect();
        async move {
            let mut sums: BTreeMap<(NaiveDate, u32), f64> = BTreeMap::new();
            for s in series {
                let hour = std::time::Duration::from_secs(3600);
                for (t, a) in store.aggregate(s, start, end, hour).await? {
                    if a.count > 0 {
                        *sums.entry(local(t)).or_default() += a.sum;
                    }
                }
            }
            Ok::<_, Error>(sums)
        }
    })
    .await?;
    let mut hours = BTreeMap::new();
    let mut t = start;
    while t < end {
        let key = local(t);
        let mut total = Some(0.0);
        for sums in &per_device {
            total = match (total, sums.get(&key)) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
        hours.insert(key, total);
        t = t.saturating_add_nanos(3_600_000_000_000);
    }
    Ok(Hourly { hours, counters: devices.into_iter().map(|d| d.id).collect() })
}

/// The footfall of `area` over `days` (local days, first and last included) in buckets of
/// `step`.
pub async fn series(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    direction: Direction,
    (from, to): (NaiveDate, NaiveDate),
    step: Step,
    tz: Tz,
) -> Result<(Vec<DeviceId>, Vec<Bucket>)> {
    if let Step::Quarter | Step::Hour = step {
        if (to - from).num_days() > 92 {
            return Err(Error::Invalid(
                "15-minute and hourly footfall is served over 92 days at most: ask 1d, 1w or 1mo"
                    .into(),
            ));
        }
        let devices = counters(catalog, area)?;
        let every = std::time::Duration::from_secs(if step == Step::Hour { 3600 } else { 900 });
        let (a, b) = (local_start(from, tz)?, local_start(to.succ_opt().unwrap_or(to), tz)?);
        let mut per: BTreeMap<Timestamp, (f64, Vec<bool>)> = BTreeMap::new();
        let mut t = a;
        while t < b {
            per.insert(t, (0.0, vec![false; devices.len()]));
            t = t.saturating_add_nanos(every.as_nanos() as i64);
        }
        for (i, d) in devices.iter().enumerate() {
            let keys: Vec<(&str, &str)> =
                direction.properties().iter().map(|p| (d.id.as_str(), *p)).collect();
            for s in catalog.lookup_series(&keys).into_iter().flatten() {
                for (t, agg) in store.aggregate(s, a, b, every).await? {
                    if agg.count > 0
                        && let Some(e) = per.get_mut(&t)
                    {
                        e.0 += agg.sum;
                        e.1[i] = true;
                    }
                }
            }
        }
        let buckets = per
            .into_iter()
            .map(|(t, (sum, seen))| {
                let missing: Vec<DeviceId> = devices
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| !**s)
                    .map(|(d, _)| d.id.clone())
                    .collect();
                let start = t.to_datetime().with_timezone(&tz).to_rfc3339();
                Bucket { start, count: missing.is_empty().then_some(sum), missing }
            })
            .collect();
        return Ok((devices.into_iter().map(|d| d.id).collect(), buckets));
    }
    let f = daily(catalog, store, area, direction, from, to, tz).await?;
    let key = |d: NaiveDate| -> NaiveDate {
        use chrono::Datelike;
        match step {
            Step::Week => d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Step::Month => d.with_day(1).unwrap_or(d),
            _ => d,
        }
    };
    let mut out: BTreeMap<NaiveDate, (f64, Vec<DeviceId>, bool)> = BTreeMap::new();
    for (d, v) in &f.daily {
        let e = out.entry(key(*d)).or_insert((0.0, Vec::new(), true));
        match v {
            Some(x) => e.0 += x,
            None => {
                e.2 = false;
                for c in f.missing.get(d).into_iter().flatten() {
                    if !e.1.contains(c) {
                        e.1.push(c.clone());
                    }
                }
            }
        }
    }
    let buckets = out
        .into_iter()
        .map(|(d, (sum, missing, whole))| Bucket {
            start: d.to_string(),
            count: whole.then_some(sum),
            missing,
        })
        .collect();
    Ok((f.counters, buckets))
}
