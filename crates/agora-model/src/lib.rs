//! Domain types shared by every agora crate: identifiers, timestamps, values, observed properties.
//!
//! Everything coming from outside is parsed into these types at the edge (`FromStr`/`TryFrom`), so
//! the core never re-validates strings. This crate does no I/O.

mod clock;
mod error;
mod hash;
mod ids;
#[cfg(feature = "openapi")]
mod openapi;
pub mod permissions;
mod properties;
pub mod quality;
mod time;
mod value;

pub use clock::{Clock, MockClock, SystemClock};
pub use error::{Error, Result};
pub use hash::{IdHasher, IdMap};
pub use ids::{DeviceId, DeviceKind, InseeCode, PropertyName, SeriesId, SiteId};
pub use properties::{
    PropertyDef, PropertyRegistry, ResolvedProperty, UnitConversion, is_device_internal,
    is_sound_level,
};
pub use time::{Precision, Timestamp};
pub use value::{Value, ValueKind};

/// One measurement of one property by one device, after harmonization.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The device that measured it.
    pub device: DeviceId,
    /// The canonical property name.
    pub property: PropertyName,
    /// When it was measured, in UTC.
    pub time: Timestamp,
    /// The value, in the property's canonical unit.
    pub value: Value,
}
