//! Forecasts for alert rules (`forecast` conditions): the highest value forecast for a series
//! within a horizon, from `agora_query::forecast` — the method its backtest chose. Rules ask
//! synchronously, while a forecast reads the store: a series asked for the first time, or whose
//! forecast is from an earlier hour, is (re)computed in the background and answered from then
//! on; each is computed again at most once an hour, when a new hour of data exists.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use agora_model::{Clock, SeriesId};
use agora_store::{Catalog, SeriesStore};
use parking_lot::{Mutex, RwLock};

const HOUR_NS: i64 = 3_600_000_000_000;

/// Forecasts cached per series: the hour they were computed in, and the hourly values ahead
/// (empty: the series cannot be forecast — not a forecast property, or too little history).
#[derive(Debug)]
pub struct ForecastCache {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    clock: Arc<dyn Clock>,
    cache: RwLock<HashMap<SeriesId, (i64, Vec<f64>)>>,
    pending: Mutex<HashSet<SeriesId>>,
    runtime: tokio::runtime::Handle,
}

impl ForecastCache {
    /// On the current Tokio runtime.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            store,
            clock,
            cache: RwLock::default(),
            pending: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Compute a series' forecast in the background (once at a time per series).
    fn refresh(self: &Arc<Self>, series: SeriesId, hour: i64) {
        if !self.pending.lock().insert(series) {
            return;
        }
        let me = self.clone();
        self.runtime.spawn(async move {
            // Cleared however the task ends (a panic would otherwise freeze the series).
            struct Done(Arc<ForecastCache>, SeriesId);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.pending.lock().remove(&self.1);
                }
            }
            let _done = Done(me.clone(), series);
            let values = match me.catalog.series_info(series) {
                Some(info) => agora_query::forecast::forecast(
                    me.catalog.as_ref(),
                    me.store.as_ref(),
                    info.device.as_str(),
                    info.property.as_str(),
                    me.clock.now(),
                    agora_query::forecast::HORIZON,
                    chrono_tz::Europe::Paris,
                )
                .await
                .map(|f| {
                    f.hours.into_iter().map(|(_, p)| p.map_or(f64::NAN, |p| p.value)).collect()
                }),
                None => Ok(Vec::new()),
            };
            let mut cache = me.cache.write();
            match values {
                Ok(v) => {
                    cache.insert(series, (hour, v));
                }
                // A failure keeps the last forecast (an open alert does not close for want of
                // one) and is tried again next hour.
                Err(e) => {
                    tracing::debug!(series = series.0, error = %e, "no forecast for an alert rule");
                    cache.entry(series).or_insert((hour, Vec::new())).0 = hour;
                }
            }
        });
    }
}

/// The cache behind an `Arc`, as the alerts take it.
#[derive(Debug, Clone)]
pub struct Forecasts(pub Arc<ForecastCache>);

impl agora_alerts::Forecaster for Forecasts {
    fn forecast(&self, series: SeriesId, horizon: Duration) -> Option<f64> {
        let hour = self.0.clock.now().as_nanos().div_euclid(HOUR_NS);
        let cached = self.0.cache.read().get(&series).cloned();
        if cached.as_ref().is_none_or(|(h, _)| *h < hour) {
            self.0.refresh(series, hour);
        }
        let (_, values) = cached?;
        let hours = (horizon.as_secs().div_ceil(3600) as usize).clamp(1, values.len().max(1));
        values.iter().take(hours).copied().filter(|v| v.is_finite()).reduce(f64::max)
    }
}
