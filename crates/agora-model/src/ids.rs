//! Identifier newtypes: devices, sites, communes (INSEE codes), device kinds, properties, series.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, shorten};

fn check_id(what: &'static str, s: &str, max: usize) -> Result<()> {
    let err = |reason| Error::InvalidId { what, value: shorten(s), reason };
    if s.is_empty() {
        return Err(err("must not be empty"));
    }
    if s.len() > max {
        return Err(err("is too long"));
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
        return Err(err("may only contain ASCII letters, digits, '-', '_', '.' and ':'"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parse and validate.
            pub fn parse(s: &str) -> Result<Self> {
                check_id($what, s, $max)?;
                Ok(Self(s.to_owned()))
            }
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                check_id($what, &s, $max)?;
                Ok(Self(s))
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A device identifier, unique in the deployment (e.g. `aq-mairie-01` or a LoRaWAN DevEUI).
    DeviceId, "device id", 128
);
string_id!(
    /// A site (a public square or street section) identifier, e.g. `hotel-de-ville`.
    SiteId, "site id", 128
);
string_id!(
    /// A device kind, e.g. `air_quality`, `noise`, `streetlight`; the InfluxDB measurement name.
    DeviceKind, "device kind", 64
);

/// A property name in canonical snake_case (`pm2_5`, `relative_humidity`, `laeq`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PropertyName(String);

impl PropertyName {
    /// Parse a canonical name: lower-case ASCII letters, digits and `_`, starting with a letter.
    pub fn parse(s: &str) -> Result<Self> {
        let err = |reason| Error::InvalidId { what: "property name", value: shorten(s), reason };
        if s.is_empty() {
            return Err(err("must not be empty"));
        }
        if s.len() > 64 {
            return Err(err("is too long"));
        }
        if !s.as_bytes()[0].is_ascii_lowercase() {
            return Err(err("must start with a lower-case letter"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(err("must be snake_case (a-z, 0-9, _)"));
        }
        Ok(Self(s.to_owned()))
    }
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for PropertyName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
impl TryFrom<String> for PropertyName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}
impl From<PropertyName> for String {
    fn from(v: PropertyName) -> String {
        v.0
    }
}
impl fmt::Display for PropertyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A French commune's INSEE code: five characters, digits or `2A`/`2B` for Corsica (e.g. `13001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InseeCode(String);

impl InseeCode {
    /// Parse an INSEE code.
    pub fn parse(s: &str) -> Result<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 5
            && (b[..2].iter().all(u8::is_ascii_digit) || matches!(&b[..2], b"2A" | b"2B"))
            && b[2..].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(Error::InvalidId {
                what: "INSEE code",
                value: shorten(s),
                reason: "must be five characters: digits, or 2A/2B followed by three digits",
            });
        }
        Ok(Self(s.to_owned()))
    }
    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl FromStr for InseeCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
impl TryFrom<String> for InseeCode {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}
impl From<InseeCode> for String {
    fn from(v: InseeCode) -> String {
        v.0
    }
}
impl fmt::Display for InseeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The storage engine's compact handle for one series (device × property), assigned by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesId(pub u32);

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_accept_common_forms_and_refuse_garbage() {
        assert!(DeviceId::parse("aq-mairie-01").is_ok());
        assert!(DeviceId::parse("70B3D57ED0041234").is_ok());
        assert!(DeviceId::parse("esp8266-1234567").is_ok());
        assert!(DeviceId::parse("").is_err());
        assert!(DeviceId::parse("has space").is_err());
        assert!(DeviceId::parse(&"x".repeat(129)).is_err());
        let err = DeviceId::parse("a/b").unwrap_err().to_string();
        assert!(err.contains("\"a/b\""), "{err}");
    }

    #[test]
    fn property_names_are_snake_case() {
        assert!(PropertyName::parse("pm2_5").is_ok());
        assert!(PropertyName::parse("PM2.5").is_err());
        assert!(PropertyName::parse("2x").is_err());
    }

    #[test]
    fn insee_codes() {
        assert!(InseeCode::parse("13001").is_ok());
        assert!(InseeCode::parse("2A004").is_ok());
        assert!(InseeCode::parse("1300").is_err());
        assert!(InseeCode::parse("2C004").is_err());
        assert!(InseeCode::parse("13O01").is_err());
    }
}
