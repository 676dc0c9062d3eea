//! Errors of the read side: the caller's mistakes, queries over budget, and storage faults kept
//! apart so that each is answered as what it is.

/// What can go wrong while answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is invalid (bad duration, time, range, group); the message says how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// The query would decode more raw points than allowed; the message says how to narrow it.
    #[error("{0}")]
    TooLarge(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] agora_store::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
