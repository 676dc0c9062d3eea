//! The city's environmental indicators, as their official texts define them: the European Air
//! Quality Index and the French ATMO index ([`air`]), noise levels by period and percentile
//! ([`noise`]), heat index, humidex and heatwave days ([`heat`]), and the spatial interpolation of
//! a heat-island map, with its cross-validation error ([`interp`]); and the urban services:
//! street lighting against the sun ([`lighting`], [`sun`]), bins ([`bins`]) and irrigation
//! ([`irrigation`]); and the well-being index, the OECD way ([`wellbeing`]). Each is a pure function of values (no storage, no clock), so that it is tested
//! against the published tables, and so that the API, the dashboard and alert rules all decide it
//! in one place. Reading the values (hourly means, a day's maximum, in Europe/Paris days) is the
//! query layer's job; gaps are the caller's to report: a function here never sees a missing value
//! as zero, it is given what exists and says what was missing.

pub mod air;
pub mod bins;
pub mod calendar;
mod error;
pub mod footfall;
pub mod heat;
pub mod impact;
pub mod interp;
pub mod irrigation;
pub mod lighting;
pub mod noise;
pub mod profile;
pub mod sun;
pub mod wellbeing;

pub use error::{Error, Result};
