//! A dataset's records, read from the catalog and the store as the dataset defines them.
//!
//! A measurements dataset has one record per device and period (or per reading, raw): the
//! period's mean of each property (energy mean for sound levels, sum of people counted, the
//! largest LAmax), computed by the same summaries as agora's query API, flagged points left out,
//! periods without a value left null. Only complete periods older than the embargo are public.
//! Records come in time windows, oldest first and by device within a time, so that exports of
//! years of data stream in constant memory and `where` conditions on `date` read only the
//! windows they concern.

use std::sync::Arc;
use std::time::Duration;

use agora_model::{SeriesId, Timestamp};
use agora_query::{Averaging, Every, TimeRange, summaries};
use agora_store::opendata::{Dataset, DatasetKind, Resolution};
use agora_store::{AggFn, Catalog, SeriesStore};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::dataset::{Published, Summary, fields, published, theme_devices, theme_of_kind};
use crate::odsql::{Field, Row, V};

/// Days are local to Paris, as every figure agora shows.
pub const PARIS: Tz = chrono_tz::Europe::Paris;

const NS_PER_S: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS_PER_S;

/// Where a device's records say they are.
#[derive(Debug, Clone)]
struct Place {
    id: Arc<str>,
    site: V,
    site_name: V,
    commune: V,
    commune_name: V,
    geo: V,
}

/// One series read for a measurements dataset.
#[derive(Debug, Clone, Copy)]
struct Column {
    device: usize,
    /// Index of the property among the dataset's published ones.
    prop: usize,
    series: SeriesId,
    averaging: Averaging,
}

/// A dataset's records, ready to be read.
#[derive(Debug, Clone)]
pub struct Records {
    /// The definition.
    pub dataset: Dataset,
    /// Its fields.
    pub fields: Vec<Field>,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// Places and devices: a few records, made at once.
    Static(Vec<Row>),
    Measured {
        devices: Vec<Place>,
        columns: Vec<Column>,
        props: Vec<Published>,
        range: Option<TimeRange>,
    },
}

/// First column of the properties in a measurements record.
const FIRST_PROP: usize = 7;

impl Records {
    /// Gather what `d` covers, as of `now`.
    pub async fn open(
        d: &Dataset,
        catalog: &dyn Catalog,
        store: &dyn SeriesStore,
        now: Timestamp,
    ) -> agora_query::Result<Self> {
        let fields = fields(d);
        let sites = catalog.sites();
        let communes = catalog.communes();
        let commune_name = |insee: &str| {
            communes.iter().find(|c| c.insee.as_str() == insee).map(|c| c.name.clone())
        };
        let text = |s: Option<String>| s.map_or(V::Null, V::text);
        let in_scope = |commune: Option<&str>, site: Option<&str>| {
            d.commune.as_deref().is_none_or(|c| commune == Some(c))
                && d.site.as_deref().is_none_or(|s| site == Some(s))
        };
        let mut devices = catalog.devices(&Default::default());
        devices.sort_by(|a, b| a.id.cmp(&b.id));
        let place_of = |dev: &agora_store::catalog::Device| {
            let site = dev.site.as_ref().and_then(|s| sites.iter().find(|x| &x.id == s));
            let commune = dev
                .commune
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .or_else(|| site.map(|s| s.commune.as_str().to_owned()));
            (site, commune)
        };
        let geo = |lat: Option<f64>, lon: Option<f64>| match (lat, lon) {
            (Some(a), Some(b)) => V::Geo(a, b),
            _ => V::Null,
        };
        let source = match d.kind {
            // Computed from the well-being index and the 15-minute city by the API
            // (`Records::computed`): nothing to read here.
            DatasetKind::Wellbeing
            | DatasetKind::Accessibility
            | DatasetKind::Reports
            | DatasetKind::PointsOfInterest
            | DatasetKind::Tours => Source::Static(Vec::new()),
            DatasetKind::Places => {
                let mut rows = Vec::new();
                for s in &sites {
                    if !in_scope(Some(s.commune.as_str()), Some(s.id.as_str())) {
                        continue;
                    }
                    let mut themes: Vec<&str> = Vec::new();
                    let mut n = 0;
                    for dev in devices.iter().filter(|x| x.site.as_ref() == Some(&s.id)) {
                        if let Some(t) = theme_of_kind(dev.kind.as_str()) {
                            n += 1;
                            if !themes.contains(&t.as_str()) {
                                themes.push(t.as_str());
                            }
                        }
                    }
                    themes.sort_by_key(|t| {
                        agora_store::opendata::Theme::ALL.iter().position(|x| x.as_str() == *t)
                    });
                    rows.push(vec![
                        V::text(s.id.as_str()),
                        V::text(s.name.as_str()),
                        V::text(s.commune.as_str()),
                        text(commune_name(s.commune.as_str())),
                        geo(s.lat, s.lon),
                        V::text(themes.join(", ")),
                        V::Num(n as f64),
                    ]);
                }
                Source::Static(rows)
            }
            DatasetKind::Devices => {
                let mut rows = Vec::new();
                for dev in &devices {
                    let Some(theme) = theme_of_kind(dev.kind.as_str()) else { continue };
                    let (site, commune) = place_of(dev);
                    if !in_scope(commune.as_deref(), site.map(|s| s.id.as_str())) {
                        continue;
                    }
                    let (_, public) = theme_devices(theme);
                    let has = catalog.device_series(dev.id.as_str());
                    let props: Vec<&str> = public
                        .iter()
                        .filter(|p| has.iter().any(|s| s.property.as_str() == p.name))
                        .map(|p| p.name)
                        .collect();
                    rows.push(vec![
                        V::text(dev.id.as_str()),
                        text(dev.name.clone()),
                        V::text(dev.kind.as_str()),
                        V::text(theme.as_str()),
                        text(site.map(|s| s.id.as_str().to_owned())),
                        text(site.map(|s| s.name.clone())),
                        text(commune.clone()),
                        text(commune.as_deref().and_then(commune_name)),
                        geo(dev.lat, dev.lon),
                        V::text(props.join(", ")),
                    ]);
                }
                Source::Static(rows)
            }
            DatasetKind::Measurements => {
                let (kinds, _) = theme_devices(d.theme);
                let props = published(d);
                let mut places = Vec::new();
                let mut columns = Vec::new();
                for dev in devices.iter().filter(|x| kinds.contains(&x.kind.as_str())) {
                    let (site, commune) = place_of(dev);
                    if !in_scope(commune.as_deref(), site.map(|s| s.id.as_str())) {
                        continue;
                    }
                    let series = catalog.device_series(dev.id.as_str());
                    let mut any = false;
                    for (i, p) in props.iter().enumerate() {
                        let Some(s) = series.iter().find(|s| s.property.as_str() == p.name) else {
                            continue;
                        };
                        any = true;
                        let f = if p.summary == Summary::Mean { AggFn::Mean } else { AggFn::Sum };
                        columns.push(Column {
                            device: places.len(),
                            prop: i,
                            series: s.id,
                            averaging: Averaging::of(p.name, &s.unit, f),
                        });
                    }
                    if any {
                        places.push(Place {
                            id: dev.id.as_str().into(),
                            site: text(site.map(|s| s.id.as_str().to_owned())),
                            site_name: text(site.map(|s| s.name.clone())),
                            commune: text(commune.clone()),
                            commune_name: text(commune.as_deref().and_then(commune_name)),
                            geo: geo(dev.lat, dev.lon),
                        });
                    }
                }
                let range = measured_range(d, store, &columns, now).await?;
                Source::Measured { devices: places, columns, props, range }
            }
        };
        Ok(Records { dataset: d.clone(), fields, source })
    }

    /// The records of a dataset computed elsewhere (the well-being index, the 15-minute city),
    /// each row in the order of its fields.
    pub fn computed(d: &Dataset, rows: Vec<Vec<V>>) -> Self {
        Records { dataset: d.clone(), fields: fields(d), source: Source::Static(rows) }
    }

    /// The buckets of the dataset's resolution (`None`: raw readings).
    fn every(&self) -> Option<Every> {
        every_of(self.dataset.resolution)
    }

    /// The time covered by published records (`None`: no record, or not a time series).
    pub fn range(&self) -> Option<TimeRange> {
        match &self.source {
            Source::Measured { range, .. } => *range,
            Source::Static(_) => None,
        }
    }

    /// The windows to read, oldest first, within `[lo, hi)` (ns; `None`: unbounded) — a
    /// superset of the records whose `date` lies there.
    pub fn windows(&self, lo: Option<i64>, hi: Option<i64>) -> Vec<TimeRange> {
        let Source::Measured { range: Some(r), .. } = &self.source else {
            return match &self.source {
                // One window holds every static record.
                Source::Static(_) => {
                    vec![TimeRange { from: Timestamp::from_nanos(0), to: Timestamp::from_nanos(1) }]
                }
                Source::Measured { .. } => Vec::new(),
            };
        };
        // A daily record's date is its local day's midnight in UTC: widen by a day.
        let slack = if self.dataset.resolution == Resolution::Daily { DAY_NS } else { 0 };
        let from = r.from.as_nanos().max(lo.map_or(i64::MIN, |l| l.saturating_sub(slack)));
        let to = r.to.as_nanos().min(hi.map_or(i64::MAX, |h| h.saturating_add(slack)));
        if from >= to {
            return Vec::new();
        }
        let step = match self.dataset.resolution {
            Resolution::Raw => DAY_NS,
            Resolution::QuarterHour => 7 * DAY_NS,
            Resolution::Hourly => 31 * DAY_NS,
            Resolution::Daily => {
                return vec![TimeRange { from: r.from, to: r.to }];
            }
        };
        // Aligned on UTC days, so buckets never straddle two windows.
        let mut out = Vec::new();
        let mut t = from.div_euclid(DAY_NS) * DAY_NS;
        while t < to {
            let end = (t + step).min(r.to.as_nanos());
            out.push(TimeRange {
                from: Timestamp::from_nanos(t.max(r.from.as_nanos())),
                to: Timestamp::from_nanos(end),
            });
            t += step;
        }
        out
    }

    /// The records of one window, by time then device.
    pub async fn window(
        &self,
        store: &dyn SeriesStore,
        w: TimeRange,
    ) -> agora_query::Result<Vec<Row>> {
        let (devices, columns, props) = match &self.source {
            Source::Static(rows) => return Ok(rows.clone()),
            Source::Measured { devices, columns, props, .. } => (devices, columns, props),
        };
        let width = FIRST_PROP + props.len();
        let daily = self.dataset.resolution == Resolution::Daily;
        // Each device's records in time order (its series merged), then the devices merged:
        // every list is sorted already, so no map of all the window's records is built.
        let mut per_device: Vec<std::vec::IntoIter<Row>> = Vec::new();
        let mut i = 0;
        while i < columns.len() {
            let device = columns[i].device;
            let mut lists: Vec<(usize, Vec<(i64, f64)>)> = Vec::new();
            while i < columns.len() && columns[i].device == device {
                let c = &columns[i];
                let points: Vec<(i64, f64)> = match self.every() {
                    None => read_raw(store, c.series, w).await?,
                    Some(every) => {
                        let p = &props[c.prop];
                        summaries(store, c.series, w, every, c.averaging)
                            .await?
                            .into_iter()
                            .map(|(t, a)| {
                                let v = match p.summary {
                                    Summary::Mean => c.averaging.value(&a, AggFn::Mean),
                                    Summary::Sum => a.sum,
                                    Summary::Max => a.max,
                                };
                                (t.as_nanos(), v)
                            })
                            .collect()
                    }
                };
                lists.push((c.prop, points));
                i += 1;
            }
            let dev = &devices[device];
            let mut rows = Vec::with_capacity(lists.iter().map(|l| l.1.len()).max().unwrap_or(0));
            let mut at = vec![0usize; lists.len()];
            while let Some(t) =
                lists.iter().zip(&at).filter_map(|(l, &k)| l.1.get(k).map(|p| p.0)).min()
            {
                let mut row = Vec::with_capacity(width);
                row.extend([
                    V::Time(if daily { local_day_as_utc(t) } else { t }),
                    V::Text(dev.id.clone()),
                    dev.site.clone(),
                    dev.site_name.clone(),
                    dev.commune.clone(),
                    dev.commune_name.clone(),
                    dev.geo.clone(),
                ]);
                row.resize(width, V::Null);
                let mut any = false;
                for ((prop, l), k) in lists.iter().zip(at.iter_mut()) {
                    if let Some(&(pt, v)) = l.get(*k)
                        && pt == t
                    {
                        *k += 1;
                        if v.is_finite() {
                            row[FIRST_PROP + prop] = V::Num(v);
                            any = true;
                        }
                    }
                }
                if any {
                    rows.push(row);
                }
            }
            per_device.push(rows.into_iter());
        }
        // Merge the devices (a handful to a few hundred) by time, then device order.
        let mut heads: Vec<Option<Row>> = per_device.iter_mut().map(Iterator::next).collect();
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>> = heads
            .iter()
            .enumerate()
            .filter_map(|(d, r)| r.as_ref().map(|r| std::cmp::Reverse((time_of(r), d))))
            .collect();
        let mut out = Vec::with_capacity(per_device.iter().map(|d| d.len() + 1).sum());
        while let Some(std::cmp::Reverse((_, d))) = heap.pop() {
            if let Some(r) = heads[d].take() {
                out.push(r);
            }
            heads[d] = per_device[d].next();
            if let Some(r) = &heads[d] {
                heap.push(std::cmp::Reverse((time_of(r), d)));
            }
        }
        Ok(out)
    }

    /// A record's identifier: the place or device id, or `device@date` for measurements.
    pub fn record_id(&self, row: &[V]) -> String {
        let text = |v: &V| match v {
            V::Text(t) => t.to_string(),
            _ => String::new(),
        };
        match self.dataset.kind {
            DatasetKind::Places
            | DatasetKind::Devices
            | DatasetKind::Accessibility
            | DatasetKind::Reports
            | DatasetKind::PointsOfInterest => text(&row[0]),
            DatasetKind::Wellbeing => format!("{}@{}", text(&row[1]), text(&row[0])),
            DatasetKind::Tours => {
                let stop = match row[3] {
                    V::Num(n) => n as i64,
                    _ => 0,
                };
                format!("{}@{stop}", text(&row[0]))
            }
            DatasetKind::Measurements => {
                let V::Time(t) = row[0] else { return String::new() };
                format!("{}@{}", text(&row[1]), record_time(t, self.dataset.resolution))
            }
        }
    }

    /// The window and device that hold the record `id` (measurements), for a single-record
    /// lookup; `None` when it cannot be one of this dataset's.
    pub fn locate(&self, id: &str) -> Option<(TimeRange, String)> {
        let (device, date) = id.rsplit_once('@')?;
        let t = match self.dataset.resolution {
            Resolution::Daily => {
                let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
                day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_nanos_opt()?
            }
            _ => DateTime::parse_from_rfc3339(date).ok()?.timestamp_nanos_opt()?,
        };
        let r = self.range()?;
        let (from, to) = match self.dataset.resolution {
            // The local day holding this date: its midnight is within a day of UTC's.
            Resolution::Daily => (t.checked_sub(DAY_NS)?, t.checked_add(2 * DAY_NS)?),
            Resolution::Raw => (t, t.checked_add(1)?),
            Resolution::QuarterHour => (t, t.checked_add(900 * NS_PER_S)?),
            Resolution::Hourly => (t, t.checked_add(3600 * NS_PER_S)?),
        };
        let from = from.max(r.from.as_nanos());
        let to = to.min(r.to.as_nanos());
        (from < to).then(|| {
            (
                TimeRange { from: Timestamp::from_nanos(from), to: Timestamp::from_nanos(to) },
                device.to_owned(),
            )
        })
    }
}

fn time_of(r: &[V]) -> i64 {
    match r.first() {
        Some(V::Time(t)) => *t,
        _ => i64::MIN,
    }
}

/// The text of a record's time in its id.
fn record_time(t: i64, r: Resolution) -> String {
    let dt = DateTime::<Utc>::from_timestamp_nanos(t);
    match r {
        Resolution::Daily => dt.format("%Y-%m-%d").to_string(),
        Resolution::Raw if t % NS_PER_S != 0 => {
            dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
        _ => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

fn every_of(r: Resolution) -> Option<Every> {
    match r {
        Resolution::Raw => None,
        Resolution::QuarterHour => Some(Every::Fixed(Duration::from_secs(900))),
        Resolution::Hourly => Some(Every::Fixed(Duration::from_secs(3600))),
        Resolution::Daily => Some(Every::new(Duration::from_secs(86_400), Some(PARIS))),
    }
}

/// The local (Paris) day of an instant, as its midnight in UTC: a `date` field's value.
fn local_day_as_utc(t: i64) -> i64 {
    let day = DateTime::<Utc>::from_timestamp_nanos(t).with_timezone(&PARIS).date_naive();
    day.and_hms_opt(0, 0, 0).map_or(t, |d| d.and_utc().timestamp_nanos_opt().unwrap_or(t))
}

/// Raw numeric readings of a series in a window, page by page.
async fn read_raw(
    store: &dyn SeriesStore,
    s: SeriesId,
    w: TimeRange,
) -> agora_query::Result<Vec<(i64, f64)>> {
    const PAGE: usize = 65_536;
    let mut out = Vec::new();
    let mut from = w.from;
    loop {
        let page = store.read_numbers(s, from, w.to, PAGE).await?;
        out.extend(page.iter().map(|(t, v)| (t.as_nanos(), *v)));
        match page.last() {
            Some((t, _)) if page.len() == PAGE => from = t.saturating_add_nanos(1),
            _ => return Ok(out),
        }
    }
}

/// From the first reading of any series to the end of the last complete period older than the
/// embargo.
async fn measured_range(
    d: &Dataset,
    store: &dyn SeriesStore,
    columns: &[Column],
    now: Timestamp,
) -> agora_query::Result<Option<TimeRange>> {
    let until =
        Timestamp::from_nanos(now.as_nanos() - i64::from(d.embargo_hours) * 3600 * NS_PER_S);
    let to = match every_of(d.resolution) {
        None => until,
        Some(e) => e.floor(until),
    };
    // From the index, without decoding a chunk per series (a catalogue lists datasets of a
    // thousand lamps).
    let ids: Vec<SeriesId> = columns.iter().map(|c| c.series).collect();
    let first = store.first_times(&ids).into_iter().flatten().filter(|t| *t < to).min();
    let Some(first) = first else { return Ok(None) };
    let from = match every_of(d.resolution) {
        None => first,
        Some(e) => e.floor(first),
    };
    Ok((from < to).then_some(TimeRange { from, to }))
}
