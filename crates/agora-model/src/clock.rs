//! The injected source of "now", so that tests (and the demo's backfill) control time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::Timestamp;

/// Where the current time comes from. Components never call the system clock directly.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_datetime(&chrono::Utc::now()).unwrap_or(Timestamp::EPOCH)
    }
}

/// A clock that only moves when told to, for deterministic tests.
#[derive(Debug, Default)]
pub struct MockClock(AtomicI64);

impl MockClock {
    /// A mock clock set to `t`.
    pub fn new(t: Timestamp) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(t.as_nanos())))
    }
    /// Set the time.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_nanos(), Ordering::SeqCst);
    }
    /// Move the time forward by `ns` nanoseconds.
    pub fn advance_nanos(&self, ns: i64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::SeqCst))
    }
}
