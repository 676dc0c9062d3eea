//! Storage for agora: the embedded time-series engine and the catalog, each behind a trait so that
//! a PostgreSQL deployment can swap them without touching the API layer.

pub mod alerts;
pub mod audit;
pub mod catalog;
pub mod commerce;
pub mod decisions;
pub mod engine;
mod error;
pub mod format;
pub mod opendata;
pub mod reports;
pub mod schedules;
pub mod visitors;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use agora_model::{SeriesId, Timestamp, Value};
use async_trait::async_trait;

pub use catalog::{Catalog, SqliteCatalog};
pub use engine::{Agg, AggFn, Engine, EngineConfig, EngineSnapshot, EngineStats, StorageHealth};
pub use error::{Error, Result};

/// Something that must see every stored batch, in order, without loss (alert rules). It is
/// called in the writer's task: it should hand the batch over (a channel) rather than work on it.
pub trait BatchObserver: Send + Sync + std::fmt::Debug {
    /// A batch was stored durably.
    fn stored(&self, batch: Arc<StoredBatch>);
}

/// Several observers of stored batches, each handed every batch in turn.
#[derive(Debug)]
pub struct Observers(pub Vec<Arc<dyn BatchObserver>>);

impl BatchObserver for Observers {
    fn stored(&self, batch: Arc<StoredBatch>) {
        for o in &self.0 {
            o.stored(batch.clone());
        }
    }
}

/// Points of one batch, as stored: series, time, value, quality flags.
pub type StoredBatch = Vec<(SeriesId, Timestamp, Value, u8)>;

/// Where points live. The embedded [`Engine`] implements it; a PostgreSQL store can later.
#[async_trait]
pub trait SeriesStore: Send + Sync + Debug {
    /// Write points; returns once they are durable.
    async fn write(&self, points: Vec<(SeriesId, Timestamp, Value)>) -> Result<()>;
    /// Write points with quality flags (`agora_model::quality`); returns once they are durable.
    /// Flagged points are kept, but left out of reads and summaries unless asked for.
    async fn write_flagged(&self, points: Vec<(SeriesId, Timestamp, Value, u8)>) -> Result<()>;
    /// Raw points with their quality flags, flagged ones included.
    async fn read_with_flags(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, Value, u8)>>;
    /// Raw points with `from <= t < to`, oldest first, at most `limit`.
    async fn read(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, Value)>>;
    /// Numeric raw points, unflagged, with `from <= t < to`, oldest first, at most `limit`.
    async fn read_numbers(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, f64)>>;
    /// Summaries in buckets of `every` aligned on the epoch, over `from <= t < to`.
    async fn aggregate(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        every: Duration,
    ) -> Result<Vec<(Timestamp, Agg)>>;
    /// The latest point of each series.
    fn latest(&self, series: &[SeriesId]) -> Vec<Option<(Timestamp, Value)>>;
    /// The first timestamp of each series (`None`: no data), without decoding: what a
    /// dataset's temporal coverage starts from.
    fn first_times(&self, series: &[SeriesId]) -> Vec<Option<Timestamp>>;
    /// How many raw points of a series lie in `from <= t < to`, from the index (an upper bound,
    /// without decoding): what a query over raw points would have to read.
    fn raw_points_in(&self, s: SeriesId, from: Timestamp, to: Timestamp) -> u64;
    /// What the store holds.
    fn stats(&self) -> EngineStats;
    /// Whether writes are accepted (free space, failures), as of the last upkeep.
    fn health(&self) -> StorageHealth;
    /// Bytes on disk and points of some series, in persisted storage.
    fn usage(&self, series: &[SeriesId]) -> (u64, u64);
    /// Set a series' raw-point retention (`None`: default).
    fn set_raw_retention(&self, s: SeriesId, keep: Option<Duration>);
    /// Persist everything in memory.
    async fn flush(&self) -> Result<()>;
    /// Check the disk and flush if the head is due.
    async fn flush_due(&self) -> Result<()>;
    /// Compact (and apply retention) if due. It may take a while and runs apart from flushes:
    /// writes and flushes go on meanwhile.
    async fn compact_due(&self) -> Result<()>;
    /// Run background upkeep if due (flush, compaction, retention).
    async fn maintain(&self) -> Result<()> {
        self.flush_due().await?;
        self.compact_due().await
    }
    /// Resolves when in-memory data has grown enough to be flushed now.
    async fn flush_wanted(&self);
    /// Resolves after the next flush, when a compaction may have become due.
    async fn flushed(&self);
    /// Flush and stop accepting writes.
    async fn close(&self) -> Result<()>;
    /// Copy a consistent image of the stored points into `dir`, a new directory, while writes go
    /// on (see [`Engine::snapshot`]).
    async fn snapshot(&self, dir: &std::path::Path) -> Result<EngineSnapshot> {
        Err(Error::Invalid(format!("this store cannot copy itself into {}", dir.display())))
    }
}

#[async_trait]
impl SeriesStore for std::sync::Arc<Engine> {
    async fn write(&self, points: Vec<(SeriesId, Timestamp, Value)>) -> Result<()> {
        let pts = points.into_iter().map(|(s, t, v)| (s, t.as_nanos(), v, 0)).collect();
        Engine::write(self, pts).await
    }
    async fn write_flagged(&self, points: Vec<(SeriesId, Timestamp, Value, u8)>) -> Result<()> {
        let pts = points.into_iter().map(|(s, t, v, f)| (s, t.as_nanos(), v, f)).collect();
        Engine::write(self, pts).await
    }
    async fn read_with_flags(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, Value, u8)>> {
        let e = self.clone();
        let (f, t) = (from.as_nanos(), to.as_nanos());
        let v = blocking(move || Engine::read_with_flags(&e, s, f, t, limit)).await?;
        Ok(v.into_iter().map(|(t, v, q)| (Timestamp::from_nanos(t), v, q)).collect())
    }
    async fn read(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, Value)>> {
        let e = self.clone();
        let (f, t) = (from.as_nanos(), to.as_nanos());
        let v = blocking(move || Engine::read(&e, s, f, t, limit)).await?;
        Ok(v.into_iter().map(|(t, v)| (Timestamp::from_nanos(t), v)).collect())
    }
    async fn read_numbers(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, f64)>> {
        let e = self.clone();
        let (f, t) = (from.as_nanos(), to.as_nanos());
        blocking(move || Engine::read_numbers(&e, s, f, t, limit)).await
    }
    async fn aggregate(
        &self,
        s: SeriesId,
        from: Timestamp,
        to: Timestamp,
        every: Duration,
    ) -> Result<Vec<(Timestamp, Agg)>> {
        summaries(self, s, from, to, every, Engine::aggregate).await
    }
    fn latest(&self, series: &[SeriesId]) -> Vec<Option<(Timestamp, Value)>> {
        Engine::latest(self, series)
            .into_iter()
            .map(|o| o.map(|(t, v)| (Timestamp::from_nanos(t), v)))
            .collect()
    }
    fn first_times(&self, series: &[SeriesId]) -> Vec<Option<Timestamp>> {
        Engine::first_times(self, series)
            .into_iter()
            .map(|o| o.map(Timestamp::from_nanos))
            .collect()
    }
    fn raw_points_in(&self, s: SeriesId, from: Timestamp, to: Timestamp) -> u64 {
        Engine::raw_points_in(self, s, from.as_nanos(), to.as_nanos())
    }
    fn stats(&self) -> EngineStats {
        Engine::stats(self)
    }
    fn health(&self) -> StorageHealth {
        Engine::health(self)
    }
    fn usage(&self, series: &[SeriesId]) -> (u64, u64) {
        Engine::usage(self, series)
    }
    fn set_raw_retention(&self, s: SeriesId, keep: Option<Duration>) {
        Engine::set_raw_retention(self, s, keep);
    }
    async fn flush(&self) -> Result<()> {
        let e = self.clone();
        blocking(move || Engine::flush(&e)).await
    }
    async fn flush_due(&self) -> Result<()> {
        let e = self.clone();
        blocking(move || {
            e.check_disk();
            if e.needs_flush() {
                Engine::flush(&e)?;
            }
            Ok(())
        })
        .await
    }
    async fn compact_due(&self) -> Result<()> {
        let e = self.clone();
        blocking(move || if e.needs_compaction() { e.compact() } else { Ok(()) }).await
    }
    async fn flush_wanted(&self) {
        Engine::flush_wanted(self).await;
    }
    async fn flushed(&self) {
        Engine::flushed(self).await;
    }
    async fn close(&self) -> Result<()> {
        let e = self.clone();
        blocking(move || Engine::close(&e)).await
    }
    async fn snapshot(&self, dir: &std::path::Path) -> Result<EngineSnapshot> {
        let (e, dir) = (self.clone(), dir.to_path_buf());
        blocking(move || Engine::snapshot(&e, &dir)).await
    }
}

/// One of the engine's bucketed summaries: (series, from, to, every) in nanoseconds.
type SummaryFn = fn(&Engine, SeriesId, i64, i64, i64) -> Result<Vec<(i64, Agg)>>;

/// Run one of the engine's bucketed summaries on a blocking thread, converting times.
async fn summaries(
    e: &std::sync::Arc<Engine>,
    s: SeriesId,
    from: Timestamp,
    to: Timestamp,
    every: Duration,
    f: SummaryFn,
) -> Result<Vec<(Timestamp, Agg)>> {
    let e = e.clone();
    let (from, to) = (from.as_nanos(), to.as_nanos());
    let every = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX);
    let v = blocking(move || f(&e, s, from, to, every)).await?;
    Ok(v.into_iter().map(|(t, a)| (Timestamp::from_nanos(t), a)).collect())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("storage task failed: {e}")))?
}
