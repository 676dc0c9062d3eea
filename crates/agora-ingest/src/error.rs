//! Errors of ingestion. Input refused is a [`Refusal`]: words for whoever sent it, naming the
//! value and what was expected; it is answered (400, a dead letter), never logged as a fault.
//! Configuration mistakes and connection failures are [`Error`]s.

/// Why input (a body, a message, a line, a value) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Refusal {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::ops::Deref for Refusal {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Refusal> for String {
    fn from(r: Refusal) -> Self {
        r.0
    }
}

/// What can go wrong in ingestion besides refused input.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is wrong (a subscription's certificates, a network list); the message
    /// names the setting.
    #[error("{0}")]
    Config(String),
    /// A connection to a client or a broker broke, or a client broke the protocol.
    #[error("{0}")]
    Connection(String),
    /// A call to a device found no connection, gateway or recent poll to take it.
    #[error("device {0} is not connected")]
    NotConnected(String),
    /// A call was delivered to a device, which did not answer in time.
    #[error("device {device} did not answer within {after:?}")]
    NoAnswer {
        /// The device.
        device: String,
        /// How long it was waited for.
        after: std::time::Duration,
    },
    /// Too many calls to devices wait for answers.
    #[error("too many calls to devices are waiting for answers; try again later")]
    Busy,
}
