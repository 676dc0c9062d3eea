//! The read side of agora: everything that turns stored points into the figures people read.
//!
//! The API, the dashboard views and alert evaluation all ask here, so that a rule is decided in
//! one place: time ranges and durations ([`time`]), bucket planning in UTC or in local days
//! ([`buckets`]), summaries with energy means for sound levels ([`summary`]), grouping by
//! place, commune or kind ([`group`]), what state a device is in ([`fleet`]), and the
//! air-quality indices of a device, place or commune ([`air`]). Other indicators,
//! forecasts and open data are built on it, and so is InfluxQL ([`influxql`]), which Grafana's
//! InfluxDB data source reads with.
//!
//! It depends on the model and on the store's traits only; it does no HTTP.

pub mod air;
pub mod buckets;
pub mod days;
mod error;
pub mod fleet;
pub mod footfall;
pub mod forecast;
pub mod forecasts;
pub mod group;
pub mod heat;
pub mod influxql;
pub mod noise;
pub mod proximity;
pub mod regulatory;
pub mod services;
pub mod summary;
pub mod time;
pub mod wellbeing;

pub use buckets::Every;
pub use error::{Error, Result};
pub use fleet::{DeviceStatus, ReportingPeriod, device_state, is_fault};
pub use group::GroupBy;
pub use summary::{Averaging, Budget, summaries};
pub use time::{TimeRange, parse_duration, parse_time};
