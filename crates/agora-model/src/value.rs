//! Observed values: numbers (the fast path), integers, booleans and short string states.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stored value. Numeric values are always finite.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A floating-point measurement (the common case).
    F64(f64),
    /// An integer (counters, `f_cnt`).
    I64(i64),
    /// A boolean state (lamp on/off).
    Bool(bool),
    /// A short string state (`defectiveLamp`, `ok`).
    Str(String),
}

/// The kind of a value, fixed per series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ValueKind {
    /// `f64`.
    Float,
    /// `i64`.
    Integer,
    /// `bool`.
    Boolean,
    /// Short string.
    String,
}

impl ValueKind {
    /// Stable name, as stored in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::String => "string",
        }
    }
    /// Inverse of [`ValueKind::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "float" => Self::Float,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "string" => Self::String,
            _ => return None,
        })
    }
    /// Byte tag used by the storage engine.
    pub fn tag(self) -> u8 {
        match self {
            Self::Float => 0,
            Self::Integer => 1,
            Self::Boolean => 2,
            Self::String => 3,
        }
    }
    /// Inverse of [`ValueKind::tag`].
    pub fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            0 => Self::Float,
            1 => Self::Integer,
            2 => Self::Boolean,
            3 => Self::String,
            _ => return None,
        })
    }
    /// Whether values of this kind can be averaged (booleans count as 0/1).
    pub fn is_numeric(self) -> bool {
        !matches!(self, Self::String)
    }
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Value {
    /// The kind of this value.
    pub fn kind(&self) -> ValueKind {
        match self {
            Self::F64(_) => ValueKind::Float,
            Self::I64(_) => ValueKind::Integer,
            Self::Bool(_) => ValueKind::Boolean,
            Self::Str(_) => ValueKind::String,
        }
    }
    /// The value as a number for aggregation (booleans are 0/1, strings have none).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::F64(v) => Some(*v),
            Self::I64(v) => Some(*v as f64),
            Self::Bool(v) => Some(f64::from(u8::from(*v))),
            Self::Str(_) => None,
        }
    }
    /// Convert to `kind` where that loses nothing meaningful (integer ↔ float, 0/1 ↔ boolean).
    pub fn coerce(self, kind: ValueKind) -> Option<Value> {
        if self.kind() == kind {
            return Some(self);
        }
        match (self, kind) {
            (Self::I64(v), ValueKind::Float) => Some(Self::F64(v as f64)),
            (Self::F64(v), ValueKind::Integer) if v.fract() == 0.0 && v.abs() < 9.0e15 => {
                Some(Self::I64(v as i64))
            }
            (Self::Bool(b), ValueKind::Float) => Some(Self::F64(f64::from(u8::from(b)))),
            (Self::Bool(b), ValueKind::Integer) => Some(Self::I64(i64::from(b))),
            (Self::I64(v @ (0 | 1)), ValueKind::Boolean) => Some(Self::Bool(v == 1)),
            _ => None,
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::F64(v) => s.serialize_f64(*v),
            Self::I64(v) => s.serialize_i64(*v),
            Self::Bool(v) => s.serialize_bool(*v),
            Self::Str(v) => s.serialize_str(v),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::F64(v) => write!(f, "{v}"),
            Self::I64(v) => write!(f, "{v}i"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(v) => write!(f, "{v:?}"),
        }
    }
}
