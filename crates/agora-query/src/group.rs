//! Grouping devices by place, commune or kind.

use agora_store::catalog::Device;

use crate::Error;

/// What devices are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Their place.
    Site,
    /// Their commune.
    Commune,
    /// Their kind.
    Kind,
}

impl std::str::FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "site" => Ok(Self::Site),
            "commune" => Ok(Self::Commune),
            "kind" => Ok(Self::Kind),
            _ => Err(Error::Invalid(format!("bad group_by {s:?}: use site, commune or kind"))),
        }
    }
}

impl GroupBy {
    /// The group of a device; `None` when it has no place (or commune).
    pub fn key(self, d: &Device) -> Option<String> {
        match self {
            Self::Site => d.site.as_ref().map(ToString::to_string),
            Self::Commune => d.commune.as_ref().map(ToString::to_string),
            Self::Kind => Some(d.kind.to_string()),
        }
    }

    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Site => "site",
            Self::Commune => "commune",
            Self::Kind => "kind",
        }
    }
}
