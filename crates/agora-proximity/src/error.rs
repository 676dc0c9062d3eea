//! Errors of the imports and computations: input that cannot be read, named with where it failed.

/// Why a file or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A file that is not what it claims (a corrupt PBF, XML that does not parse, a CSV without
    /// its columns, a code that the mapping does not know), with where and why.
    #[error("{0}")]
    Invalid(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Invalid`] with its reason.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::Invalid(reason.into())
    }
}
