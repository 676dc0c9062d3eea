//! The error type of the domain model: every way an outside string can fail to become a domain value.

/// A value from outside could not be parsed into a domain type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An identifier was empty, too long or used forbidden characters.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        /// Which kind of identifier.
        what: &'static str,
        /// The offending value (truncated).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A timestamp could not be parsed or is out of the representable range.
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// An epoch number whose instant lies outside what a `Timestamp` can hold (1677–2262).
    #[error(
        "epoch {value} read as {unit} is outside the representable range 1677-09-21 to 2262-04-11"
    )]
    EpochOutOfRange {
        /// The epoch number as given.
        value: i64,
        /// The unit it was read in (given or guessed from its magnitude).
        unit: &'static str,
    },
    /// A numeric value is NaN or infinite.
    #[error("value is not finite: {0}")]
    NotFinite(f64),
    /// A value does not have the kind the property expects.
    #[error("property {property} expects a {expected} value, got {got}")]
    WrongKind {
        /// The property.
        property: String,
        /// The kind it expects.
        expected: crate::ValueKind,
        /// The kind that was given.
        got: crate::ValueKind,
    },
    /// A value lies outside the property's physically valid range.
    #[error("{property} value {value} is outside the valid range [{min}, {max}] {unit}{}",
        if *tolerance > 0.0 { format!(", beyond its tolerance of {tolerance} {unit}") } else { String::new() })]
    OutOfRange {
        /// The property.
        property: String,
        /// The value.
        value: f64,
        /// Lowest valid value.
        min: f64,
        /// Highest valid value.
        max: f64,
        /// The canonical unit.
        unit: String,
        /// How far outside the range a reading is still kept (flagged).
        tolerance: f64,
    },
    /// A unit is not known for this property.
    #[error("unit {unit:?} cannot be converted to {property}'s unit {canonical:?}")]
    UnknownUnit {
        /// The property.
        property: String,
        /// The unit given.
        unit: String,
        /// The property's canonical unit.
        canonical: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Truncate an offending value for inclusion in an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
