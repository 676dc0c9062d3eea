//! What decoders produce: records of fields for one device at one time, and rejected lines.

use std::borrow::Cow;

use agora_model::{Timestamp, Value};
use serde::Serialize;

/// One value of a record, named as the source named it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    /// The property name or alias as sent (`PM2.5`, `temperature`).
    pub name: Cow<'a, str>,
    /// The value as sent.
    pub value: Value,
    /// The unit the source declared, if any.
    pub unit: Option<Cow<'a, str>>,
}

/// Values measured by one device at one time, before harmonization.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// Line (or record) number in the payload, 1-based, for error reports.
    pub line: u32,
    /// The device identifier as sent.
    pub device: Cow<'a, str>,
    /// The device kind, for auto-registration (the InfluxDB measurement).
    pub kind: Option<Cow<'a, str>>,
    /// The site, for auto-registration.
    pub site: Option<Cow<'a, str>>,
    /// The commune, for auto-registration.
    pub commune: Option<Cow<'a, str>>,
    /// When the values were measured; `None` means "now".
    pub time: Option<Timestamp>,
    /// The values.
    pub fields: Vec<Field<'a>>,
}

/// A line or record that was refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineError {
    /// Line (or record) number, 1-based.
    pub line: u32,
    /// What was wrong, naming the offending value.
    pub reason: String,
    /// The offending input (for the dead-letter log; not serialized in API answers).
    #[serde(skip)]
    pub raw: String,
}

/// The output of a decoder: what it understood, and what it refused.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    /// Records to harmonize and store.
    pub records: Vec<Record<'a>>,
    /// Refused lines or records.
    pub errors: Vec<LineError>,
}
