//! The forecasting service: every forecastable series of the city modelled in the background,
//! once an hour, within a CPU budget, and the anomalies those models and the city's co-located
//! sensors reveal.
//!
//! - **Models**: a series' method is chosen by its backtest ([`crate::forecast::fit`]) each night
//!   (after 03:00 local), or sooner when its history has grown by more than a day since (a new
//!   sensor, a backfill); every other hour the chosen method only forecasts again from the new
//!   hours ([`crate::forecast::predict`]), which costs a fraction of a fit.
//! - **Budget**: fits and forecasts run on Tokio's blocking threads one at a time (one core of
//!   the machine at most), whether the hourly sweep or a request asks, so that ingestion and
//!   queries keep the other; a request for a series whose model is not made yet waits its turn
//!   (behind the series already asked for, a few milliseconds each).
//! - **Anomalies**, refreshed with each model: hours outside the 99.9 % interval for three hours
//!   in a row over the last week ([`agora_forecast::anomaly::unlikely`]); a level shift of a
//!   noise level or a footfall over the six weeks read (the daily means' departure from the
//!   hour-of-week profile, [`agora_forecast::anomaly::level_shift`]); and, after each sweep, a
//!   sensor drifting from the other sensors of its place measuring the same pollutant or
//!   temperature ([`agora_forecast::anomaly::drift`] on its daily means' log-ratio to the median
//!   of the place's sensors, or the difference for temperatures, each sensor's usual offset
//!   taken out first so that one climbing past the others does not drag the median along).
//!   Weather-driven series get no level shift of their own: a week of mistral is not a fault;
//!   the weather cancels out between neighbours, so that drift is looked for there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use agora_forecast::anomaly::drift as drift_from;
use agora_forecast::anomaly::{daily_means, level_shift, unlikely};
use agora_model::{Clock, DeviceId, SeriesId, Timestamp};
use agora_store::{Catalog, SeriesStore};
use chrono::TimeZone;
use chrono_tz::Tz;
use parking_lot::RwLock;
use serde::Serialize;

use crate::forecast::{FORECASTABLE, HORIZON, Hours, SeriesForecast, check, fit, predict};
use crate::{Error, Result};

const HOUR_NS: i64 = 3_600_000_000_000;
/// How long past an hour its readings are waited for before models are made again (ns).
const LATE: i64 = 3 * 60 * 1_000_000_000;
/// How long a series whose model could not be made (a store error) is left before trying again.
const RETRY_NS: i64 = 5 * 60 * 1_000_000_000;
/// Days of readings looked at for unlikely hours.
pub const UNLIKELY_DAYS: usize = 7;
/// Properties whose own level shifts are anomalies, and the least change that is one (in the
/// series' unit, or as a share of its mean level when negative: −0.2 is 20 %).
const SHIFTS: [(&str, f64); 3] = [("laeq", 3.0), ("people_in", -0.2), ("people_out", -0.2)];
/// Properties compared between the sensors of a place, and the least drift that is one (a share
/// of the peers' level, or °C for temperature).
const DRIFTS: [(&str, f64); 5] =
    [("pm10", 0.1), ("pm2_5", 0.1), ("no2", 0.1), ("o3", 0.1), ("temperature", 1.0)];

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AnomalyKind {
    /// Readings outside the 99.9 % interval of their forecast for three hours or more.
    Unlikely,
    /// The series' daily level changed and stayed changed.
    LevelShift,
    /// The sensor drifts from the other sensors of its place.
    Drift,
}

/// An anomaly found in a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Anomaly {
    /// What kind.
    pub kind: AnomalyKind,
    /// The device.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub device: DeviceId,
    /// The property.
    pub property: String,
    /// The device's place.
    pub site: Option<String>,
    /// From (the first hour, or the first day after the change).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    /// To (the end of the last hour; for a shift or a drift, the end of the data read).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to: Timestamp,
    /// Unlikely: the reading furthest outside; level shift: the median daily level since the
    /// change; drift: the sensor's departure from the median of its place's sensors over its
    /// last three days measured, its usual offset from them taken out (%, or °C for
    /// temperatures).
    pub value: f64,
    /// Unlikely: its forecast; level shift: the median daily level before; drift: the median
    /// departure before.
    pub before: f64,
    /// Unlikely: the 99.9 % interval at the reading furthest outside.
    pub interval: Option<(f64, f64)>,
    /// Drift: the sensors compared with.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub peers: Vec<DeviceId>,
    /// Level shift and drift: the CUSUM statistic (above 1.95: 0.1 % likely by chance).
    pub statistic: Option<f64>,
    /// Unlikely: how many of the place's sensors of this property had unlikely hours at the same
    /// time, of how many — from two and half of them, an event the place lived (a pollution
    /// episode, a street party) rather than a sensor's fault, and no `anomaly` rule opens on it.
    pub shared: Option<[usize; 2]>,
}

impl Anomaly {
    /// Whether it is an event the place's sensors share rather than this sensor's.
    pub fn is_event(&self) -> bool {
        self.shared.is_some_and(|[k, n]| k >= 2 && 2 * k >= n)
    }
}

/// A series' model as of an hour.
#[derive(Debug, Clone)]
pub struct Model {
    /// The series.
    pub series: SeriesId,
    /// Its device.
    pub device: DeviceId,
    /// Its property.
    pub property: String,
    /// The device's place.
    pub site: Option<String>,
    /// The hour it forecasts from (hours since the epoch).
    pub hour: i64,
    /// When it was made.
    pub made: Timestamp,
    /// When its method was chosen (its backtest run).
    pub fitted: Timestamp,
    /// The end of the hours it read (the start of the hour under way when it was made).
    pub end: Timestamp,
    /// Hours with a value when it was fitted.
    fitted_hours: usize,
    /// The forecast, or why there is none (too little history…).
    pub outcome: std::result::Result<SeriesForecast, String>,
    /// Daily means (local days), for drift between sensors.
    pub daily: Vec<(Timestamp, Option<f64>)>,
    /// The anomalies of this series alone (unlikely hours, a level shift).
    pub anomalies: Vec<Anomaly>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Stats {
    fits: AtomicU64,
    updates: AtomicU64,
    refused: AtomicU64,
    fit_ns: AtomicU64,
    update_ns: AtomicU64,
    read_ns: AtomicU64,
    sweeps: AtomicU64,
    last_sweep_ms: AtomicU64,
    last_sweep_series: AtomicU64,
    last_sweep_end_s: AtomicU64,
}

/// A snapshot of the service's work, for `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForecastStats {
    /// Backtests run (methods chosen).
    pub fits: u64,
    /// Hourly forecasts made with a method already chosen.
    pub updates: u64,
    /// Series refused (too little history).
    pub refused: u64,
    /// CPU time in fits, updates, and time reading hours, seconds.
    pub fit_seconds: f64,
    /// In updates.
    pub update_seconds: f64,
    /// Reading.
    pub read_seconds: f64,
    /// Sweeps of all series done.
    pub sweeps: u64,
    /// The last sweep's duration, seconds, and series.
    pub last_sweep_seconds: f64,
    /// Series the last sweep modelled.
    pub last_sweep_series: u64,
    /// When it ended (Unix seconds; 0: none yet).
    pub last_sweep_end: u64,
    /// Series with a forecast now.
    pub models: u64,
    /// Anomalies found now.
    pub anomalies: u64,
}

/// The service.
#[derive(Debug)]
pub struct Forecasts {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    clock: Arc<dyn Clock>,
    tz: Tz,
    models: RwLock<HashMap<SeriesId, Arc<Model>>>,
    drift: RwLock<Vec<Anomaly>>,
    budget: Arc<tokio::sync::Semaphore>,
    /// Series being made in the background ([`Forecasts::refresh`]), each once at a time.
    pending: parking_lot::Mutex<std::collections::HashSet<SeriesId>>,
    /// Series whose model could not be made, and when to try again (ns).
    failed: parking_lot::Mutex<HashMap<SeriesId, i64>>,
    /// Unlikely hours most of their place's sensors shared, as of the last sweep: events, on
    /// which `anomaly` rules do not open.
    events: RwLock<std::collections::HashSet<(DeviceId, String, Timestamp)>>,
    stats: Stats,
}

impl Forecasts {
    /// A service with no model yet, for the city's clock in `tz`.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        clock: Arc<dyn Clock>,
        tz: Tz,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            store,
            clock,
            tz,
            models: RwLock::default(),
            drift: RwLock::default(),
            budget: Arc::new(tokio::sync::Semaphore::new(1)),
            pending: Default::default(),
            failed: Default::default(),
            events: Default::default(),
            stats: Stats::default(),
        })
    }

    /// The model of a series as last made, however old.
    pub fn cached(&self, series: SeriesId) -> Option<Arc<Model>> {
        self.models.read().get(&series).cloned()
    }

    /// The hour (since the epoch) whose model is current: a model is made again a few minutes
    /// past each hour ([`LATE`]), once the last hour's readings are in.
    pub fn current_hour(&self) -> i64 {
        (self.clock.now().as_nanos() - LATE).div_euclid(HOUR_NS)
    }

    /// The latest 03:00 local at or before `now`: a fit older than that is redone.
    fn last_night(&self, now: Timestamp) -> i64 {
        let local = now.to_datetime().with_timezone(&self.tz);
        let mut day = local.date_naive();
        loop {
            let at = day
                .and_hms_opt(3, 0, 0)
                .and_then(|t| self.tz.from_local_datetime(&t).earliest())
                .and_then(|t| Timestamp::from_datetime(&t))
                .map_or(i64::MIN, Timestamp::as_nanos);
            if at <= now.as_nanos() {
                return at;
            }
            match day.pred_opt() {
                Some(d) => day = d,
                None => return i64::MIN,
            }
        }
    }

    /// A series' model for this hour: the cached one if made this hour, else made now.
    pub async fn get(&self, series: SeriesId) -> Result<Arc<Model>> {
        let hour = self.current_hour();
        if let Some(m) = self.cached(series).filter(|m| m.hour == hour) {
            return Ok(m);
        }
        let info = self
            .catalog
            .series_info(series)
            .ok_or_else(|| Error::Invalid(format!("no series {}", series.0)))?;
        let property = info.property.to_string();
        check(&property, HORIZON)?;
        // The budget covers reading and fitting; the permit moves into the blocking task, so
        // that a caller who goes away does not free it while the fit runs on.
        let permit =
            self.budget.clone().acquire_owned().await.map_err(|e| Error::Invalid(e.to_string()))?;
        // Made meanwhile by another caller.
        if let Some(m) = self.cached(series).filter(|m| m.hour == hour) {
            return Ok(m);
        }
        let now = self.clock.now();
        let read = Instant::now();
        let hours =
            crate::forecast::read_hours(self.store.as_ref(), series, &property, now, self.tz)
                .await?;
        self.stats.read_ns.fetch_add(read.elapsed().as_nanos() as u64, Relaxed);
        let previous = self.cached(series);
        let measured = hours.values.iter().flatten().count();
        let kept = previous.as_ref().and_then(|p| match &p.outcome {
            Ok(f)
                if p.fitted.as_nanos() >= self.last_night(now)
                    && measured <= p.fitted_hours + 24 =>
            {
                Some((f.backtest.clone(), p.fitted, p.fitted_hours))
            }
            _ => None,
        });
        let site = self.catalog.device(info.device.as_str()).and_then(|d| d.site);
        let refit = kept.is_none();
        let hours_end = hours.at(hours.values.len());
        let started = Instant::now();
        let work = {
            let property = property.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let outcome = match &kept {
                    Some((bt, _, _)) => Ok(predict(&property, &hours, bt.clone())),
                    None => fit(&property, &hours),
                };
                let daily = own_daily(&hours);
                let found = own_anomalies(&property, &hours, outcome.as_ref().ok());
                (outcome, daily, found, kept)
            })
        };
        let (outcome, daily, found, kept) =
            work.await.map_err(|e| Error::Invalid(format!("a forecast failed: {e}")))?;
        let spent = started.elapsed().as_nanos() as u64;
        if refit {
            self.stats.fits.fetch_add(1, Relaxed);
            self.stats.fit_ns.fetch_add(spent, Relaxed);
        } else {
            self.stats.updates.fetch_add(1, Relaxed);
            self.stats.update_ns.fetch_add(spent, Relaxed);
        }
        if outcome.is_err() {
            self.stats.refused.fetch_add(1, Relaxed);
        }
        let (fitted, fitted_hours) = kept.map_or((now, measured), |k| (k.1, k.2));
        let anomalies = found
            .into_iter()
            .map(|(kind, from, to, value, before, interval, statistic)| Anomaly {
                kind,
                device: info.device.clone(),
                property: property.clone(),
                site: site.as_ref().map(|s| s.to_string()),
                from,
                to,
                value,
                before,
                interval,
                peers: Vec::new(),
                statistic,
                shared: None,
            })
            .collect();
        let model = Arc::new(Model {
            series,
            device: info.device.clone(),
            property,
            site: site.map(|s| s.to_string()),
            hour,
            made: now,
            fitted,
            end: hours_end,
            fitted_hours,
            outcome,
            daily,
            anomalies,
        });
        self.models.write().insert(series, model.clone());
        Ok(model)
    }

    /// Make a series' model for this hour in the background, unless it is already being made
    /// (alert rules ask every second; at the turn of an hour every model is stale at once).
    pub fn refresh(self: &Arc<Self>, series: SeriesId) {
        let now = self.clock.now().as_nanos();
        if self.failed.lock().get(&series).is_some_and(|until| *until > now) {
            return;
        }
        if !self.pending.lock().insert(series) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.pending.lock().remove(&series);
            return;
        };
        let me = self.clone();
        rt.spawn(async move {
            // Cleared however the task ends (a panic would otherwise freeze the series).
            struct Done(Arc<Forecasts>, SeriesId);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.pending.lock().remove(&self.1);
                }
            }
            let _done = Done(me.clone(), series);
            if let Err(e) = me.get(series).await {
                tracing::debug!(series = series.0, error = %e, "no model");
                let until = me.clock.now().as_nanos() + RETRY_NS;
                me.failed.lock().insert(series, until);
            }
        });
    }

    /// Model every forecastable series (one at a time), then look for drift between the sensors
    /// of each place. Returns the series modelled.
    pub async fn sweep(&self) -> usize {
        let started = Instant::now();
        let all: Vec<SeriesId> = self
            .catalog
            .all_series()
            .into_iter()
            .filter(|s| FORECASTABLE.contains(&s.property.as_str()))
            .map(|s| s.id)
            .collect();
        let mut done = 0;
        for s in &all {
            match self.get(*s).await {
                Ok(_) => done += 1,
                Err(e) => tracing::debug!(series = s.0, error = %e, "no model"),
            }
        }
        // Series gone from the catalog leave.
        let keep: std::collections::HashSet<SeriesId> = all.into_iter().collect();
        self.models.write().retain(|s, _| keep.contains(s));
        let models: Vec<Arc<Model>> = self.models.read().values().cloned().collect();
        *self.drift.write() = drift(&models, self.clock.now());
        let events = self
            .anomalies()
            .into_iter()
            .filter(Anomaly::is_event)
            .map(|a| (a.device, a.property, a.from))
            .collect();
        *self.events.write() = events;
        self.stats.sweeps.fetch_add(1, Relaxed);
        self.stats.last_sweep_ms.store(started.elapsed().as_millis() as u64, Relaxed);
        self.stats.last_sweep_series.store(done as u64, Relaxed);
        let end_s = self.clock.now().as_nanos().div_euclid(1_000_000_000).max(0) as u64;
        self.stats.last_sweep_end_s.store(end_s, Relaxed);
        done
    }

    /// Sweep every hour (a few minutes past, when the last hour is in) until `stop` turns true,
    /// the first time after `first`.
    pub async fn run(
        self: Arc<Self>,
        first: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut wait = first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            let started = Instant::now();
            let n = self.sweep().await;
            tracing::info!(
                series = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "forecasts made"
            );
            let into_hour = self.clock.now().as_nanos().rem_euclid(HOUR_NS);
            let next = (HOUR_NS - into_hour) + 3 * 60 * 1_000_000_000;
            wait = Duration::from_nanos(next as u64);
        }
    }

    /// Forget every model: the next request or sweep fits each series again (benchmarks, and
    /// after a change of the forecasting code).
    pub fn forget(&self) {
        self.models.write().clear();
        self.drift.write().clear();
    }

    /// Every model as last made.
    pub fn models(&self) -> Vec<Arc<Model>> {
        let mut m: Vec<Arc<Model>> = self.models.read().values().cloned().collect();
        m.sort_by(|a, b| (&a.device, &a.property).cmp(&(&b.device, &b.property)));
        m
    }

    /// Every anomaly found, latest first.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let models: Vec<Arc<Model>> = self.models.read().values().cloned().collect();
        let mut places: HashMap<(String, String), Vec<Arc<Model>>> = HashMap::new();
        for m in &models {
            if let Some(site) = &m.site
                && m.outcome.is_ok()
            {
                places.entry((site.clone(), m.property.clone())).or_default().push(m.clone());
            }
        }
        let mut out: Vec<Anomaly> = Vec::new();
        for m in &models {
            let place = m
                .site
                .as_ref()
                .and_then(|s| places.get(&(s.clone(), m.property.clone())))
                .map_or(&[][..], Vec::as_slice);
            for a in &m.anomalies {
                out.push(Anomaly { shared: shared_by(a, place), ..a.clone() });
            }
        }
        out.extend(self.drift.read().iter().cloned());
        out.sort_by(|a, b| b.to.cmp(&a.to).then(b.from.cmp(&a.from)).then(a.device.cmp(&b.device)));
        out
    }

    /// Whether a model's series has an anomaly reaching its last two hours (a drift or a level
    /// shift lasts to the present; unlikely hours may have ended).
    ///
    /// Unlikely hours most of the place's sensors share are an event, not this sensor's fault,
    /// and do not count.
    pub fn has_open_anomaly(&self, m: &Model) -> bool {
        // Unlikely hours reaching the last complete hour (or the one before it).
        let recent = m.end.saturating_add_nanos(-HOUR_NS);
        let events = self.events.read();
        m.anomalies.iter().any(|a| {
            a.to >= recent && !events.contains(&(a.device.clone(), a.property.clone(), a.from))
        }) || self.drift.read().iter().any(|a| a.device == m.device && a.property == m.property)
    }

    /// What the service did, for `/metrics`.
    pub fn stats(&self) -> ForecastStats {
        // Each lock taken and released on its own: a read lock taken twice on one thread waits
        // behind a writer queued in between.
        let anomalies = self.anomalies().len() as u64;
        let models = self.models.read().values().filter(|m| m.outcome.is_ok()).count() as u64;
        let s = &self.stats;
        let secs = |a: &AtomicU64| a.load(Relaxed) as f64 / 1e9;
        ForecastStats {
            fits: s.fits.load(Relaxed),
            updates: s.updates.load(Relaxed),
            refused: s.refused.load(Relaxed),
            fit_seconds: secs(&s.fit_ns),
            update_seconds: secs(&s.update_ns),
            read_seconds: secs(&s.read_ns),
            sweeps: s.sweeps.load(Relaxed),
            last_sweep_seconds: s.last_sweep_ms.load(Relaxed) as f64 / 1e3,
            last_sweep_series: s.last_sweep_series.load(Relaxed),
            last_sweep_end: s.last_sweep_end_s.load(Relaxed),
            models,
            anomalies,
        }
    }
}

/// A series' daily means (local days).
fn own_daily(hours: &Hours) -> Vec<(Timestamp, Option<f64>)> {
    let n = hours.values.len();
    daily_means(&hours.values, &hours.how[..n], false)
        .into_iter()
        .map(|(i, m)| (hours.at(i), m))
        .collect()
}

type Found = (AnomalyKind, Timestamp, Timestamp, f64, f64, Option<(f64, f64)>, Option<f64>);

/// A series' own anomalies: unlikely hours over the last week (with a forecast), a level shift
/// (noise and footfall).
fn own_anomalies(property: &str, hours: &Hours, f: Option<&SeriesForecast>) -> Vec<Found> {
    let n = hours.values.len();
    let how = &hours.how[..n];
    let mut out = Vec::new();
    if let Some(f) = f {
        for u in unlikely(&f.backtest, &hours.values, &hours.how, UNLIKELY_DAYS) {
            out.push((
                AnomalyKind::Unlikely,
                hours.at(u.first),
                hours.at(u.last + 1),
                u.actual,
                u.expected,
                Some((u.lo, u.hi)),
                None,
            ));
        }
    }
    if let Some((_, least)) = SHIFTS.iter().find(|(p, _)| *p == property) {
        let days = daily_means(&hours.values, how, true);
        let residuals: Vec<Option<f64>> = days.iter().map(|d| d.1).collect();
        if let Some(s) = level_shift(&residuals) {
            // In the series' unit: the raw daily means either side of the change.
            let raw = daily_means(&hours.values, how, false);
            let median = |r: &[(usize, Option<f64>)]| {
                let mut v: Vec<f64> = r.iter().filter_map(|d| d.1).collect();
                v.sort_by(f64::total_cmp);
                match v.len() {
                    0 => f64::NAN,
                    n if n % 2 == 1 => v[n / 2],
                    n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
                }
            };
            let (before, after) = (median(&raw[..s.day]), median(&raw[s.day..]));
            // Still in effect: the last three days measured are as far from the old level (a
            // sensor put right closes it).
            let recent: Vec<Option<f64>> =
                residuals.iter().rev().flatten().take(3).map(|v| Some(*v)).collect();
            let now = median_of(&recent);
            let big = |size: f64| {
                if *least < 0.0 { size >= -least * before.abs() } else { size >= *least }
            };
            if big((s.after - s.before).abs()) && big((now - s.before).abs()) {
                out.push((
                    AnomalyKind::LevelShift,
                    hours.at(days[s.day].0),
                    hours.at(n),
                    after,
                    before,
                    None,
                    Some(s.statistic),
                ));
            }
        }
    }
    out
}

/// Sensors drifting from the others of their place measuring the same property.
///
/// Each day, a sensor's departure is its log-ratio (the difference, for temperatures) to the
/// median of the place's sensors, itself among them. Sensors differ by a few percent from one
/// another for good (their calibration), and one drifting past the others would drag a median
/// made of them along: with six whose offsets span ±12 %, one creeping up 30 % departed by
/// less than 20 %. So the departures are taken twice: first to find each sensor's usual offset
/// (the median of its days, those before its own drift if it has one), then from the median of
/// the sensors with their offsets taken out,
/// about which one that drifts departs by all of its drift and the others by their noise.
fn drift(models: &[Arc<Model>], now: Timestamp) -> Vec<Anomaly> {
    let mut groups: BTreeMap<(String, String), Vec<&Arc<Model>>> = BTreeMap::new();
    for m in models {
        if let Some(site) = &m.site
            && DRIFTS.iter().any(|(p, _)| *p == m.property)
        {
            groups.entry((site.clone(), m.property.clone())).or_default().push(m);
        }
    }
    let mut out = Vec::new();
    for ((site, property), mut members) in groups {
        members.sort_by(|a, b| a.device.cmp(&b.device));
        if members.len() < 2 {
            continue;
        }
        let ratio = property != "temperature";
        let least = DRIFTS.iter().find(|(p, _)| *p == property).map_or(0.1, |d| d.1);
        // Each sensor's days, on the scale compared: logarithms for ratios.
        let by_day: Vec<BTreeMap<Timestamp, f64>> = members
            .iter()
            .map(|m| {
                m.daily
                    .iter()
                    .filter_map(|(t, v)| {
                        let v = (*v)?;
                        if ratio { (v > 0.0).then(|| (*t, v.ln())) } else { Some((*t, v)) }
                    })
                    .collect()
            })
            .collect();
        let days: Vec<Timestamp> = by_day
            .iter()
            .flat_map(|d| d.keys().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let departures = |offsets: &[f64]| -> Vec<Vec<Option<f64>>> {
            (0..members.len())
                .map(|k| {
                    days.iter()
                        .map(|t| {
                            let own = by_day[k].get(t)? - offsets[k];
                            // The median of the place's sensors, this one among them: with three
                            // or more, one drifting sensor does not move it, and only that one
                            // departs from it; with two, both depart by half, and both are named.
                            let peers: Vec<Option<f64>> = by_day
                                .iter()
                                .zip(offsets)
                                .map(|(d, o)| d.get(t).map(|v| v - o))
                                .collect();
                            if peers.iter().flatten().count() < 2 {
                                return None;
                            }
                            Some(own - median_of(&peers))
                        })
                        .collect()
                })
                .collect()
        };
        // A sensor's usual offset: its median departure before its own drift, if it has one
        // (a drift over most of the days read would otherwise pass for its usual standing).
        let offsets: Vec<f64> = departures(&vec![0.0; members.len()])
            .iter()
            .map(|d| match drift_from(d) {
                Some(s) => median_of(&d[..s.day]),
                None => median_of(d),
            })
            .map(|o| if o.is_finite() { o } else { 0.0 })
            .collect();
        for (k, departure) in departures(&offsets).iter().enumerate() {
            let Some(s) = drift_from(departure) else { continue };
            // As big as matters, now: the last three days measured depart that much from before,
            // on the side the change went.
            let recent: Vec<Option<f64>> =
                departure.iter().rev().flatten().take(3).map(|v| Some(*v)).collect();
            let now_at = median_of(&recent);
            let size = |to: f64| if ratio { (to - s.before).exp() - 1.0 } else { to - s.before };
            if size(now_at).abs() < least || size(now_at).signum() != size(s.after).signum() {
                continue;
            }
            let shown = |v: f64| if ratio { 100.0 * (v.exp() - 1.0) } else { v };
            out.push(Anomaly {
                kind: AnomalyKind::Drift,
                device: members[k].device.clone(),
                property: property.clone(),
                site: Some(site.clone()),
                from: days[s.day],
                to: now,
                value: shown(now_at),
                before: shown(s.before),
                interval: None,
                peers: members
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, p)| p.device.clone())
                    .collect(),
                statistic: Some(s.statistic),
                shared: None,
            });
        }
    }
    out
}

/// The median of the values present (NaN without any).
fn median_of(v: &[Option<f64>]) -> f64 {
    let mut x: Vec<f64> = v.iter().flatten().copied().collect();
    x.sort_by(f64::total_cmp);
    match x.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => x[n / 2],
        n => (x[n / 2 - 1] + x[n / 2]) / 2.0,
    }
}

/// How many of the place's sensors of `a`'s property (models in `place`) had unlikely hours
/// overlapping `a`'s, and how many there are.
fn shared_by(a: &Anomaly, place: &[Arc<Model>]) -> Option<[usize; 2]> {
    if a.kind != AnomalyKind::Unlikely || place.len() < 2 {
        return None;
    }
    let k = place
        .iter()
        .filter(|m| {
            m.anomalies
                .iter()
                .any(|b| b.kind == AnomalyKind::Unlikely && b.from < a.to && a.from < b.to)
        })
        .count();
    Some([k, place.len()])
}

/// Tomorrow at a place, from its sensors' forecasts.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tomorrow {
    /// The local day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub day: chrono::NaiveDate,
    /// Tomorrow's ATMO index from the forecast pollutants (absent: no pollutant forecast).
    pub atmo: Option<TomorrowAtmo>,
    /// Tomorrow's temperatures against the commune's canicule thresholds.
    pub heat: Option<TomorrowHeat>,
    /// Tomorrow's footfall against the usual same weekday.
    pub footfall: Option<TomorrowFootfall>,
}

/// Tomorrow's ATMO index.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TomorrowAtmo {
    /// The index of the forecast values (as `/api/v1/indicators/atmo` computes a day's: each
    /// pollutant's worst device, the daily mean for particles, the highest hour for gases).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub index: agora_indicators::air::Index<agora_indicators::air::AtmoClass>,
    /// The class's number (1 bon … 6), French name and colour.
    pub level: Option<u8>,
    /// Its name in French.
    pub label: Option<String>,
    /// Its colour.
    pub colour: Option<String>,
    /// The classes of the same computation with every hour at the low (high) end of its 80 %
    /// interval: a range wider than the day's own 80 % interval (the hours' errors partly
    /// cancel over a day), to read as "could be as good as … or as bad as …".
    pub level_low: Option<u8>,
    /// The high end.
    pub level_high: Option<u8>,
    /// Devices whose forecasts count.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub devices: Vec<DeviceId>,
    /// Devices left out for a pollutant: they drift from the other sensors of the place
    /// (`/api/v1/anomalies`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub excluded: Vec<DeviceId>,
}

/// Tomorrow's temperatures.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TomorrowHeat {
    /// Lowest and highest forecast hourly mean, °C (the place's sensors averaged hour by hour).
    pub t_min: f64,
    /// Highest.
    pub t_max: f64,
    /// The commune's canicule thresholds (of 3-day means of minima and maxima), °C.
    pub threshold_min: f64,
    /// Of maxima.
    pub threshold_max: f64,
    /// Whether tomorrow alone reaches both thresholds: a canicule is then possible (it is
    /// declared on three days' means).
    pub reaches_thresholds: bool,
    /// Devices whose forecasts count.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub devices: Vec<DeviceId>,
}

/// Tomorrow's footfall.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TomorrowFootfall {
    /// Tomorrow's forecast against the mean of the same weekday over the last four weeks
    /// measured, in % (+8: 8 % busier than usual).
    pub vs_usual_percent: f64,
    /// Same weekdays the usual is the mean of.
    pub usual_days: usize,
    /// Counters whose forecasts count (entries).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub devices: Vec<DeviceId>,
}

/// An hour of tomorrow forecast: its start, value, and 80 % interval.
type DayHour = (Timestamp, f64, f64, f64);

/// Hours of a forecast that fall in local day `day`: (value, lo80, hi80).
fn day_hours(
    f: &SeriesForecast,
    day: chrono::NaiveDate,
    tz: Tz,
) -> Vec<(Timestamp, f64, f64, f64)> {
    f.hours
        .iter()
        .filter(|(t, _)| t.to_datetime().with_timezone(&tz).date_naive() == day)
        .filter_map(|(t, p)| p.map(|p| (*t, p.value, p.lo80, p.hi80)))
        .collect()
}

impl Forecasts {
    /// Tomorrow at a place: its devices' models for this hour (made now where the sweep has not).
    /// A pollutant, a temperature or a counter counts when its forecast covers at least 18 of
    /// tomorrow's hours.
    pub async fn tomorrow(
        &self,
        devices: &[agora_store::catalog::Device],
        thresholds: agora_indicators::heat::CaniculeThresholds,
    ) -> Result<Tomorrow> {
        use agora_indicators::air::{Pollutant, atmo};
        let now = self.clock.now().to_datetime().with_timezone(&self.tz);
        let day =
            now.date_naive().succ_opt().ok_or_else(|| Error::Invalid("no tomorrow".into()))?;
        let mut forecasts: Vec<(DeviceId, String, Arc<Model>)> = Vec::new();
        // Only what tomorrow is made of (not the bins and soil of the place).
        const USED: [&str; 6] = ["pm2_5", "pm10", "no2", "o3", "temperature", "people_in"];
        for d in devices {
            for s in self.catalog.device_series(d.id.as_str()) {
                if USED.contains(&s.property.as_str())
                    && let Ok(m) = self.get(s.id).await
                    && m.outcome.is_ok()
                {
                    forecasts.push((d.id.clone(), s.property.to_string(), m));
                }
            }
        }
        let hours_of = |property: &str| -> Vec<(DeviceId, Vec<DayHour>)> {
            forecasts
                .iter()
                .filter(|(_, p, _)| p == property)
                .filter_map(|(d, _, m)| {
                    let h = day_hours(m.outcome.as_ref().ok()?, day, self.tz);
                    (h.len() >= 18).then(|| (d.clone(), h))
                })
                .collect()
        };
        // ATMO: each pollutant's worst device, on the forecast, its low and its high end.
        let mut values: [Vec<(Pollutant, f64)>; 3] = Default::default();
        let mut atmo_devices: Vec<DeviceId> = Vec::new();
        let mut atmo_excluded: Vec<DeviceId> = Vec::new();
        for p in [Pollutant::Pm25, Pollutant::Pm10, Pollutant::No2, Pollutant::O3] {
            // A sensor drifting from the others of the place is left out: its forecast follows
            // its drift, not the air.
            let drifting: Vec<DeviceId> = self
                .drift
                .read()
                .iter()
                .filter(|a| a.property == p.property())
                .map(|a| a.device.clone())
                .collect();
            let (per_device, left): (Vec<_>, Vec<_>) =
                hours_of(p.property()).into_iter().partition(|(d, _)| !drifting.contains(d));
            for (d, _) in left {
                if !atmo_excluded.contains(&d) {
                    atmo_excluded.push(d);
                }
            }
            if per_device.is_empty() {
                continue;
            }
            for (which, v) in values.iter_mut().enumerate() {
                let pick = |h: &(Timestamp, f64, f64, f64)| [h.1, h.2, h.3][which];
                let daily = |hs: &Vec<(Timestamp, f64, f64, f64)>| {
                    if p.atmo_uses_daily_max() {
                        hs.iter().map(pick).fold(f64::NEG_INFINITY, f64::max)
                    } else {
                        hs.iter().map(pick).sum::<f64>() / hs.len() as f64
                    }
                };
                let worst =
                    per_device.iter().map(|(_, h)| daily(h)).fold(f64::NEG_INFINITY, f64::max);
                v.push((p, worst.max(0.0)));
            }
            for (d, _) in per_device {
                if !atmo_devices.contains(&d) {
                    atmo_devices.push(d);
                }
            }
        }
        let atmo = if values[0].is_empty() {
            None
        } else {
            let index = atmo(&values[0]).map_err(|e| Error::Invalid(e.to_string()))?;
            let level =
                |v: &[(Pollutant, f64)]| atmo(v).ok().and_then(|i| i.class).map(|c| c.level());
            Some(TomorrowAtmo {
                level: index.class.map(|c| c.level()),
                label: index.class.map(|c| c.label_fr().to_owned()),
                colour: index.class.map(|c| c.colour().to_owned()),
                level_low: level(&values[1]),
                level_high: level(&values[2]),
                index,
                devices: atmo_devices,
                excluded: atmo_excluded,
            })
        };
        // Heat: the place's sensors averaged hour by hour.
        let temps = hours_of("temperature");
        let heat = if temps.is_empty() {
            None
        } else {
            let mut by_hour: BTreeMap<Timestamp, (f64, usize)> = BTreeMap::new();
            for (_, hs) in &temps {
                for h in hs {
                    let e = by_hour.entry(h.0).or_default();
                    e.0 += h.1;
                    e.1 += 1;
                }
            }
            let means: Vec<f64> = by_hour.values().map(|(s, n)| s / *n as f64).collect();
            let t_min = means.iter().copied().fold(f64::INFINITY, f64::min);
            let t_max = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Some(TomorrowHeat {
                t_min,
                t_max,
                threshold_min: thresholds.min,
                threshold_max: thresholds.max,
                reaches_thresholds: t_min >= thresholds.min && t_max >= thresholds.max,
                devices: temps.into_iter().map(|(d, _)| d).collect(),
            })
        };
        // Footfall: entries forecast against the same weekday's daily means (4 weeks back).
        let counters = hours_of("people_in");
        let mut forecast_sum = 0.0;
        let mut usual_sum = 0.0;
        let mut used = Vec::new();
        let mut usual_days = usize::MAX;
        for (d, hs) in &counters {
            let Some((_, _, m)) = forecasts.iter().find(|(x, p, _)| x == d && p == "people_in")
            else {
                continue;
            };
            let same: Vec<f64> = m
                .daily
                .iter()
                .rev()
                .filter(|(t, _)| {
                    let local = t.to_datetime().with_timezone(&self.tz).date_naive();
                    chrono::Datelike::weekday(&local) == chrono::Datelike::weekday(&day)
                })
                .filter_map(|(_, v)| *v)
                .take(4)
                .collect();
            if same.len() < 2 {
                continue;
            }
            usual_days = usual_days.min(same.len());
            usual_sum += same.iter().sum::<f64>() / same.len() as f64;
            forecast_sum += hs.iter().map(|h| h.1).sum::<f64>() / hs.len() as f64;
            used.push(d.clone());
        }
        let footfall = (!used.is_empty() && usual_sum > 0.0).then(|| TomorrowFootfall {
            vs_usual_percent: 100.0 * (forecast_sum / usual_sum - 1.0),
            usual_days,
            devices: used,
        });
        Ok(Tomorrow { day, atmo, heat, footfall })
    }
}

/// An hour of a place's forecast: the mean of its sensors' forecasts.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaceHour {
    /// Its start.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub time: Timestamp,
    /// The mean of the sensors' forecasts.
    pub value: f64,
    /// The means of their 80 % and 95 % intervals' ends: as wide as the sensors' own, wider
    /// than the mean's (their errors partly cancel), so to read as a cautious range.
    pub interval_80: (f64, f64),
    /// The same for 95 %.
    pub interval_95: (f64, f64),
    /// Sensors whose forecasts the hour is the mean of.
    pub sensors: usize,
}

impl Forecasts {
    /// The forecast of a property at a place: each hour, the mean of its sensors' forecasts (an
    /// hour needs half of the sensors with a forecast). Empty when none has one.
    pub async fn place(
        &self,
        devices: &[agora_store::catalog::Device],
        property: &str,
    ) -> Result<Vec<PlaceHour>> {
        check(property, HORIZON)?;
        let keys: Vec<(&str, &str)> = devices.iter().map(|d| (d.id.as_str(), property)).collect();
        let series: Vec<SeriesId> =
            self.catalog.lookup_series(&keys).into_iter().flatten().collect();
        let mut by_hour: BTreeMap<Timestamp, (f64, [f64; 4], usize)> = BTreeMap::new();
        let mut forecast = 0;
        for s in &series {
            let Ok(m) = self.get(*s).await else { continue };
            let Ok(f) = &m.outcome else { continue };
            forecast += 1;
            for (t, p) in &f.hours {
                if let Some(p) = p {
                    let e = by_hour.entry(*t).or_insert((0.0, [0.0; 4], 0));
                    e.0 += p.value;
                    for (acc, v) in e.1.iter_mut().zip([p.lo80, p.hi80, p.lo95, p.hi95]) {
                        *acc += v;
                    }
                    e.2 += 1;
                }
            }
        }
        Ok(by_hour
            .into_iter()
            .filter(|(_, (_, _, n))| 2 * n >= forecast && *n > 0)
            .map(|(time, (v, b, n))| {
                let k = n as f64;
                PlaceHour {
                    time,
                    value: v / k,
                    interval_80: (b[0] / k, b[1] / k),
                    interval_95: (b[2] / k, b[3] / k),
                    sensors: n,
                }
            })
            .collect())
    }
}
