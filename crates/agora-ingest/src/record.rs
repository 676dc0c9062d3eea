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
    /// Whether `raw` is a native JSON observation (written by the pipeline) rather than input in
    /// the source's own format; it decides how the dead letter is replayed.
    #[serde(skip)]
    pub raw_is_json: bool,
}

impl LineError {
    /// An error about input in the source's format.
    pub fn new(line: u32, reason: String, raw: String) -> Self {
        Self { line, reason, raw, raw_is_json: false }
    }
}

impl Record<'_> {
    /// The same record, owning its strings.
    pub fn into_owned(self) -> Record<'static> {
        Record {
            line: self.line,
            device: Cow::Owned(self.device.into_owned()),
            kind: self.kind.map(|k| Cow::Owned(k.into_owned())),
            site: self.site.map(|k| Cow::Owned(k.into_owned())),
            commune: self.commune.map(|k| Cow::Owned(k.into_owned())),
            time: self.time,
            fields: self
                .fields
                .into_iter()
                .map(|f| Field {
                    name: Cow::Owned(f.name.into_owned()),
                    value: f.value,
                    unit: f.unit.map(|u| Cow::Owned(u.into_owned())),
                })
                .collect(),
        }
    }
}

/// The output of a decoder: what it understood, and what it refused.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    /// Records to harmonize and store.
    pub records: Vec<Record<'a>>,
    /// Refused lines or records.
    pub errors: Vec<LineError>,
}

impl Decoded<'_> {
    /// The same, owning its strings (to outlive the bytes it was decoded from).
    pub fn into_owned(self) -> Decoded<'static> {
        Decoded {
            records: self.records.into_iter().map(Record::into_owned).collect(),
            errors: self.errors,
        }
    }
}
