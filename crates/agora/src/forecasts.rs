//! Forecasts for alert rules (`forecast` conditions): the highest value forecast for a series
//! within a horizon, from the forecasting service (`agora_query::forecasts`), which models every
//! forecastable series hourly. Rules ask synchronously, while a model reads the store: a series
//! whose model is missing or from an earlier hour is (re)made in the background and answered
//! from then on. A series agora cannot forecast answers nothing, and a rule's forecast condition
//! then keeps its last state (an open alert does not close for want of a forecast).

use std::sync::Arc;
use std::time::Duration;

use agora_model::SeriesId;
use agora_query::forecasts::Forecasts;

/// The forecasting service as the alerts see it.
#[derive(Debug, Clone)]
pub struct AlertForecasts(pub Arc<Forecasts>);

impl AlertForecasts {
    /// The series' model as last made; one for this hour is made in the background if it is
    /// missing or older.
    fn model(&self, series: SeriesId) -> Option<Arc<agora_query::forecasts::Model>> {
        let cached = self.0.cached(series);
        if cached.as_ref().is_none_or(|m| m.hour < self.0.current_hour()) {
            self.0.refresh(series);
        }
        cached
    }
}

impl agora_alerts::Forecaster for AlertForecasts {
    fn anomaly(&self, series: SeriesId) -> Option<bool> {
        let model = self.model(series)?;
        Some(self.0.has_open_anomaly(&model))
    }

    fn forecast_interval(&self, series: SeriesId, horizon: Duration) -> Option<(f64, f64, f64)> {
        let model = self.model(series)?;
        let f = model.outcome.as_ref().ok()?;
        let hours = (horizon.as_secs().div_ceil(3600) as usize).clamp(1, f.hours.len().max(1));
        f.hours
            .iter()
            .take(hours)
            .filter_map(|(_, p)| *p)
            .max_by(|a, b| a.value.total_cmp(&b.value))
            .map(|p| (p.value, p.lo95, p.hi95))
    }

    fn forecast(&self, series: SeriesId, horizon: Duration) -> Option<f64> {
        let model = self.model(series)?;
        let f = model.outcome.as_ref().ok()?;
        let hours = (horizon.as_secs().div_ceil(3600) as usize).clamp(1, f.hours.len().max(1));
        f.hours.iter().take(hours).filter_map(|(_, p)| p.map(|p| p.value)).reduce(f64::max)
    }
}
