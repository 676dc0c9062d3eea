//! Ingest for agora: decoders of the formats devices and gateways speak (InfluxDB line protocol,
//! SenML, agora's native JSON, Sensor.Community, ChirpStack v4 with Cayenne LPP or byte layouts,
//! ThingsBoard), and the pipeline that harmonizes what they decoded (aliases,
//! units, ranges, timestamps), registers new devices and series, writes to the store and keeps
//! every rejected input as a dead letter.
//!
//! Decoders never touch the store: they turn bytes into [`Record`]s and [`LineError`]s. Only the
//! [`Pipeline`] does I/O.

pub mod cayenne_lpp;
pub mod chirpstack;
pub mod csv;
mod error;
pub mod format;
pub mod json;
pub mod limits;
pub mod line_protocol;
#[cfg(feature = "mqtt")]
pub mod mqtt;
mod pipeline;
mod record;
pub mod senml;
pub mod sensor_community;
mod state;
pub mod thingsboard;
pub mod tls;

pub use error::{Error, Refusal};
pub use format::{Decoders, Format, Message, MessageFormat};
pub use pipeline::{
    FlagTally, IngestCounters, IngestReport, LISTED_REFUSALS, Pipeline, PipelineConfig, Source,
};
pub use record::{Decoded, Field, LineError, Record};
