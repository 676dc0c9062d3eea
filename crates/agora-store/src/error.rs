//! The error type of the store crate.

use std::path::PathBuf;

/// Everything that can go wrong in the engine or the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file on disk is not what the engine wrote (bad magic, checksum, truncated).
    #[error("corrupt {what} in {path}: {reason}")]
    Corrupt {
        /// Which structure.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The numeric codec failed.
    #[error("codec error: {0}")]
    Codec(String),
    /// The catalog database failed.
    #[error("catalog error: {0}")]
    Catalog(#[from] sqlx::Error),
    /// A catalog migration failed.
    #[error("catalog migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Something referenced does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// Kind of thing.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// A request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The caller's role or commune does not allow this; the message says what is missing.
    #[error("{0}")]
    Forbidden(String),
    /// A value or argument given by the caller is invalid; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// Something that should not happen did (a storage task died, the catalog holds data this
    /// version cannot read): a fault of ours, logged, never shown to a caller as their mistake.
    #[error("internal storage fault: {0}")]
    Internal(String),
    /// The engine is shutting down or its WAL writer stopped.
    #[error("the storage engine is closed")]
    Closed,
    /// The write-ahead log could not store a batch (disk full, i/o error): nothing of it was kept.
    #[error("the write-ahead log could not store the batch ({0}); nothing of it was kept")]
    WalFailed(String),
    /// Free space is below the configured reserve: writes are refused until space is freed.
    #[error(
        "free space on the data directory ({free} bytes) is below the reserve ({reserve} bytes); writes are refused until space is freed"
    )]
    DiskFull {
        /// Free bytes at the last check.
        free: u64,
        /// The configured reserve.
        reserve: u64,
    },
    /// Writes arrive faster than the engine can flush them; try again shortly.
    #[error("the storage engine is busy flushing; retry shortly")]
    Busy,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
