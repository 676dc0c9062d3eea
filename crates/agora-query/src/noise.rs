//! Noise indicators over stored data: for each day of a device, a place or a commune, the
//! period levels Ld, Le, Ln and Lden (energy means of the hours of each period), the percentile
//! levels L10, L50 and L90 of the raw levels, the night's events (LAmax above a level), and the
//! WHO 2018 road-traffic guideline exceedances; and a ranking of the noisiest places and devices
//! over a span. The definitions are in `agora_indicators::noise`.
//!
//! A "day" here is 24 hours from the start of the day period (6 h local by default) to the next
//! day's start, so that its night is whole (22–6 h): the night of the 2nd is from 22 h on the 2nd
//! to 6 h on the 3rd. Points flagged by quality checks are left out; hours without a level are
//! left out of their period (never counted as silence) and the coverage is reported.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_indicators::noise::{DenLevels, DenPeriods, Period, den_levels, exceeded_level};
use agora_model::{SeriesId, Timestamp};
use agora_store::catalog::Device;
use agora_store::{Catalog, SeriesStore};
use chrono::{NaiveDate, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

use crate::air::Area;
use crate::summary::{Averaging, summaries};
use crate::{Error, Every, Result, TimeRange};

/// The property of equivalent sound levels, and of maximum levels.
/// The property of A-weighted equivalent levels.
pub const LAEQ: &str = "laeq";
const LAMAX: &str = "lamax";
/// WHO 2018 guidelines for road traffic noise.
pub const WHO_LDEN: f64 = 53.0;
/// WHO 2018 guideline for road traffic noise at night.
pub const WHO_LNIGHT: f64 = 45.0;
/// Raw points read at a time.
const PAGE: usize = 65_536;

/// How a day is read.
#[derive(Debug, Clone, Copy)]
pub struct NoiseOptions {
    /// When the day, evening and night start.
    pub periods: DenPeriods,
    /// LAmax above which a peak counts as a night event, dB(A).
    pub event_db: f64,
    /// The local time zone.
    pub tz: Tz,
}

impl Default for NoiseOptions {
    fn default() -> Self {
        Self { periods: DenPeriods::FRANCE, event_db: 80.0, tz: chrono_tz::Europe::Paris }
    }
}

/// One day's noise indicators.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoiseDay {
    /// The day (its day period's date).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: NaiveDate,
    /// Ld, Le, Ln, Lden and the hours they rest on.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub levels: DenLevels,
    /// Level exceeded 10 % of the day (raw levels).
    pub l10: Option<f64>,
    /// Level exceeded half of the day.
    pub l50: Option<f64>,
    /// Level exceeded 90 % of the day (the background).
    pub l90: Option<f64>,
    /// LAmax values above the event level during the night; absent when no LAmax is measured.
    pub night_events: Option<u32>,
    /// Whether Lden exceeds the WHO guideline (53 dB); absent without Lden.
    pub above_who_lden: Option<bool>,
    /// Whether Ln exceeds the WHO night guideline (45 dB); absent without Ln.
    pub above_who_lnight: Option<bool>,
}

/// Raw `(time, value)` points of a series over `range`, page by page.
/// Ranges longer than this are read in parts at once.
const PART_NS: i64 = 7 * 86_400 * 1_000_000_000;
/// At most this many parts.
const MAX_PARTS: i64 = 8;

/// The finite raw levels of a series over `range`, in time order. A long range is read in parts
/// at once (each is decoded on a blocking thread, so a year keeps every core busy).
async fn raw(
    store: &dyn SeriesStore,
    s: SeriesId,
    range: TimeRange,
) -> Result<Vec<(Timestamp, f64)>> {
    let (from, to) = (range.from.as_nanos(), range.to.as_nanos());
    let n = ((to - from) / PART_NS).clamp(1, MAX_PARTS);
    let step = (to - from) / n + 1;
    let parts: Vec<TimeRange> = (0..n)
        .filter_map(|i| {
            let a = from.saturating_add(i * step);
            let b = a.saturating_add(step).min(to);
            (a < b)
                .then(|| TimeRange { from: Timestamp::from_nanos(a), to: Timestamp::from_nanos(b) })
        })
        .collect();
    let read = crate::summary::concurrently(parts, |r| raw_part(store, s, r)).await?;
    Ok(read.into_iter().flatten().collect())
}

async fn raw_part(
    store: &dyn SeriesStore,
    s: SeriesId,
    range: TimeRange,
) -> Result<Vec<(Timestamp, f64)>> {
    let mut out = Vec::new();
    let mut from = range.from;
    loop {
        let page = store.read_numbers(s, from, range.to, PAGE).await?;
        let full = page.len() == PAGE;
        let last = page.last().map(|(t, _)| *t);
        out.extend(page.into_iter().filter(|(_, v)| v.is_finite()));
        match last {
            Some(t) if full => from = t.saturating_add_nanos(1),
            _ => break,
        }
    }
    Ok(out)
}

fn series_of(catalog: &dyn Catalog, devices: &[Device], property: &str) -> Vec<SeriesId> {
    let keys: Vec<(&str, &str)> = devices.iter().map(|d| (d.id.as_str(), property)).collect();
    catalog.lookup_series(&keys).into_iter().flatten().collect()
}

/// The noise indicators of each day of `range` (whole local days, from the day period's start)
/// with at least one level.
pub async fn noise_days(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: TimeRange,
    opts: &NoiseOptions,
) -> Result<Vec<NoiseDay>> {
    let devices = area.devices(catalog)?;
    let laeq = series_of(catalog, &devices, LAEQ);
    let lamax = series_of(catalog, &devices, LAMAX);
    let local = |t: Timestamp| t.to_datetime().with_timezone(&opts.tz);
    // The day a moment belongs to: the date of the day period it follows (days computed once).
    let days = crate::days::LocalDays::new(range, opts.tz, u32::from(opts.periods.day));
    let day_of = |t: Timestamp| days.of(t).map_or_else(|| local(t).date_naive(), |d| d.1);
    // One pass over the raw levels: hourly energy sums (points pooled over the area's devices)
    // and the levels of each day, for the percentiles.
    let hour_ns = 3_600_000_000_000i64;
    let mut hours: BTreeMap<i64, (f64, u64)> = BTreeMap::new();
    let mut levels: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    // The levels and the peaks, read at once.
    let (laeq_points, lamax_points) = futures_util::future::try_join(
        crate::summary::concurrently(laeq.iter().copied(), |s| raw(store, s, range)),
        crate::summary::concurrently(lamax.iter().copied(), |s| raw(store, s, range)),
    )
    .await?;
    for points in laeq_points {
        // Points come in time order: an hour's energy is summed apart and added once it is over,
        // and its day (days start on whole local hours) is found once per hour.
        let (mut hour, mut energy, mut n) = (i64::MIN, 0.0f64, 0u64);
        let mut day: Option<NaiveDate> = None;
        let mut of_day: Vec<f64> = Vec::new();
        for (t, v) in points {
            let h = t.as_nanos().div_euclid(hour_ns) * hour_ns;
            if h != hour {
                if n > 0 {
                    let e = hours.entry(hour).or_default();
                    e.0 += energy;
                    e.1 += n;
                }
                (hour, energy, n) = (h, 0.0, 0);
                let d = day_of(Timestamp::from_nanos(h));
                if day != Some(d) {
                    if let Some(prev) = day {
                        levels.entry(prev).or_default().append(&mut of_day);
                    }
                    day = Some(d);
                }
            }
            energy += 10f64.powf(v / 10.0);
            n += 1;
            of_day.push(v);
        }
        if n > 0 {
            let e = hours.entry(hour).or_default();
            e.0 += energy;
            e.1 += n;
        }
        if let Some(prev) = day {
            levels.entry(prev).or_default().append(&mut of_day);
        }
    }
    let mut by_day: BTreeMap<NaiveDate, Vec<(u8, f64)>> = BTreeMap::new();
    for (t, (energy, n)) in &hours {
        let t = Timestamp::from_nanos(*t);
        let level = 10.0 * (energy / *n as f64).log10();
        by_day.entry(day_of(t)).or_default().push((local(t).hour() as u8, level));
    }
    let mut events: BTreeMap<NaiveDate, u32> = BTreeMap::new();
    let measured_peaks = !lamax.is_empty();
    for points in lamax_points {
        // The level first: most peaks are below it, and the local hour costs a time-zone lookup.
        for (t, v) in points {
            if v > opts.event_db && opts.periods.period_of(local(t).hour() as u8) == Period::Night {
                *events.entry(day_of(t)).or_default() += 1;
            }
        }
    }
    let mut out = Vec::with_capacity(by_day.len());
    for (day, hs) in by_day {
        let levels_of_day = levels.get(&day).map(Vec::as_slice).unwrap_or(&[]);
        let pct = |p| exceeded_level(levels_of_day, p).map_err(|e| Error::Invalid(e.to_string()));
        let den = den_levels(&hs, &opts.periods, 24);
        out.push(NoiseDay {
            day,
            l10: pct(10.0)?,
            l50: pct(50.0)?,
            l90: pct(90.0)?,
            night_events: measured_peaks.then(|| events.get(&day).copied().unwrap_or(0)),
            above_who_lden: den.lden.map(|l| l > WHO_LDEN),
            above_who_lnight: den.ln.map(|l| l > WHO_LNIGHT),
            levels: den,
        });
    }
    Ok(out)
}

/// A place or device to rank: its id, how many devices it pools, and its hourly levels (local
/// hour, dB).
type Candidate = (String, u32, Vec<(u8, f64)>);

/// Which level ranks places and devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RankBy {
    /// Lden over the span.
    Lden,
    /// Ln over the span.
    Lnight,
}

/// One ranked place or device.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ranked {
    /// The place or device.
    pub id: String,
    /// Its level over the span (dB).
    pub level: f64,
    /// Ld, Le, Ln and Lden over the span (each period's hours pooled).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub levels: DenLevels,
}

/// Places and devices of `devices` ranked by their Lden or Ln over `range`, loudest first; those
/// without the level (a period never measured) are left out.
pub async fn ranking(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    devices: &[Device],
    range: TimeRange,
    by: RankBy,
    opts: &NoiseOptions,
) -> Result<(Vec<Ranked>, Vec<Ranked>)> {
    let hour = Every::Fixed(Duration::from_secs(3600));
    let mut per_device: Vec<(Device, Vec<(u8, f64)>)> = Vec::new();
    for d in devices {
        let Some(Some(s)) = catalog.lookup_series(&[(d.id.as_str(), LAEQ)]).into_iter().next()
        else {
            continue;
        };
        let parts = summaries(store, s, range, hour, Averaging::Energy).await?;
        let hs: Vec<(u8, f64)> = parts
            .iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(t, a)| {
                let h = t.to_datetime().with_timezone(&opts.tz).hour() as u8;
                (h, Averaging::Energy.value(a, agora_store::AggFn::Mean))
            })
            .collect();
        if !hs.is_empty() {
            per_device.push((d.clone(), hs));
        }
    }
    let span_hours = (range.span().as_secs() / 3600) as u32;
    // A place's hours are its devices' hours: expected is the span times its devices.
    let rank = |items: Vec<Candidate>| {
        let mut v: Vec<Ranked> = items
            .into_iter()
            .filter_map(|(id, n, hs)| {
                let levels = den_levels(&hs, &opts.periods, span_hours * n);
                let level = match by {
                    RankBy::Lden => levels.lden,
                    RankBy::Lnight => levels.ln,
                }?;
                Some(Ranked { id, level, levels })
            })
            .collect();
        v.sort_by(|a, b| b.level.total_cmp(&a.level).then_with(|| a.id.cmp(&b.id)));
        v
    };
    let mut sites: BTreeMap<String, (u32, Vec<(u8, f64)>)> = BTreeMap::new();
    for (d, hs) in &per_device {
        if let Some(s) = &d.site {
            let e = sites.entry(s.to_string()).or_default();
            e.0 += 1;
            e.1.extend(hs.iter().copied());
        }
    }
    let devices = rank(per_device.into_iter().map(|(d, hs)| (d.id.to_string(), 1, hs)).collect());
    let places = rank(sites.into_iter().map(|(id, (n, hs))| (id, n, hs)).collect());
    Ok((places, devices))
}
