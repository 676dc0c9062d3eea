//! Ingest for agora: decoders of the formats devices and gateways speak (InfluxDB line protocol,
//! SenML, agora's native JSON), and the pipeline that harmonizes what they decoded (aliases,
//! units, ranges, timestamps), registers new devices and series, writes to the store and keeps
//! every rejected input as a dead letter.
//!
//! Decoders never touch the store: they turn bytes into [`Record`]s and [`LineError`]s. Only the
//! [`Pipeline`] does I/O.

pub mod json;
pub mod line_protocol;
mod pipeline;
mod record;
pub mod senml;

pub use pipeline::{IngestCounters, IngestReport, Pipeline, PipelineConfig, Source};
pub use record::{Decoded, Field, LineError, Record};
