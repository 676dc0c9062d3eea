//! Summaries of series in buckets, with sound levels averaged as energy end to end: the decision
//! (which series, which functions), the accumulation (Σ 10^(L/10)) and the finishing
//! (10·log10) all live here.

use std::collections::BTreeMap;

use agora_model::{SeriesId, Timestamp};
use agora_store::{Agg, AggFn, SeriesStore};

use crate::{Error, Every, Result, TimeRange};

/// How the values of a bucket are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Averaging {
    /// Sum over count.
    Arithmetic,
    /// Sound levels in dB: the equivalent level 10·log10(Σ 10^(L/10) / n), never an arithmetic
    /// mean of decibels (LAeq,T).
    Energy,
}

impl Averaging {
    /// How `f` must combine the values of `property` (in `unit`): energy for the mean and sum of
    /// sound levels, arithmetic for everything else (min, max, count, first and last are the
    /// same either way, and arithmetic summaries come from the hourly rollups).
    pub fn of(property: &str, unit: &str, f: AggFn) -> Self {
        if matches!(f, AggFn::Mean | AggFn::Sum) && agora_model::is_sound_level(property, unit) {
            Self::Energy
        } else {
            Self::Arithmetic
        }
    }

    /// The value of `f` over a bucket summarized with this averaging.
    pub fn value(self, a: &Agg, f: AggFn) -> f64 {
        match (self, f) {
            (Self::Energy, AggFn::Mean) => 10.0 * (a.sum / a.count as f64).log10(),
            (Self::Energy, AggFn::Sum) => 10.0 * a.sum.log10(),
            _ => a.value(f),
        }
    }

    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arithmetic => "arithmetic",
            Self::Energy => "energy",
        }
    }
}

/// Raw points read at a time when summarizing from raw points.
const PAGE: usize = 65_536;

/// Summaries of one series over `range` in buckets of `every`, oldest first; buckets without
/// points are absent (a gap is never a zero). Arithmetic summaries of whole hours come from the
/// store's hourly rollups; energy summaries decode raw points, page by page. Points flagged by
/// quality checks are left out.
pub async fn summaries(
    store: &dyn SeriesStore,
    s: SeriesId,
    range: TimeRange,
    every: Every,
    averaging: Averaging,
) -> Result<Vec<(Timestamp, Agg)>> {
    match averaging {
        Averaging::Arithmetic => {
            let parts = store.aggregate(s, range.from, range.to, every.store_step()).await?;
            Ok(every.regroup(parts))
        }
        Averaging::Energy => {
            let mut out: Vec<(Timestamp, Agg)> = Vec::new();
            let mut from = range.from;
            loop {
                let page = store.read_numbers(s, from, range.to, PAGE).await?;
                for &(t, level) in &page {
                    if !level.is_finite() {
                        continue;
                    }
                    let mut a = Agg::one(t.as_nanos(), level);
                    a.sum = 10f64.powf(level / 10.0);
                    let start = every.floor(t);
                    match out.last_mut() {
                        Some((b, acc)) if *b == start => acc.merge(&a),
                        _ => out.push((start, a)),
                    }
                }
                match page.last() {
                    Some((t, _)) if page.len() == PAGE => from = t.saturating_add_nanos(1),
                    _ => break,
                }
            }
            Ok(out)
        }
    }
}

/// Reads run at once by [`concurrently`]: each decodes on a blocking thread, so a few keep every
/// core busy without flooding the blocking pool.
const CONCURRENT_READS: usize = 4;

/// `read` of each item, a few at a time, the results in the items' order; the first error stops.
pub async fn concurrently<I, T, Fut>(
    items: impl IntoIterator<Item = I>,
    read: impl FnMut(I) -> Fut,
) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures_util::{StreamExt, TryStreamExt};
    // The futures made first: a stream holding the closure is not provably `Send` to callers
    // that spawn (a known limit of the compiler with borrowed futures).
    let reads: Vec<Fut> = items.into_iter().map(read).collect();
    futures_util::stream::iter(reads).buffered(CONCURRENT_READS).try_collect().await
}

/// One summary of a whole range (a window of an alert rule): `None` when it holds no point.
pub async fn summary(
    store: &dyn SeriesStore,
    s: SeriesId,
    range: TimeRange,
    every: Every,
    averaging: Averaging,
) -> Result<Option<Agg>> {
    let parts = summaries(store, s, range, every, averaging).await?;
    let mut it = parts.into_iter().map(|(_, a)| a);
    let Some(mut a) = it.next() else { return Ok(None) };
    it.for_each(|x| a.merge(&x));
    Ok((a.count > 0).then_some(a))
}

/// Add summaries of disjoint points (another device of a group) bucket by bucket.
pub fn merge_into(acc: &mut BTreeMap<Timestamp, Agg>, parts: Vec<(Timestamp, Agg)>) {
    for (t, a) in parts {
        acc.entry(t).and_modify(|x| x.merge(&a)).or_insert(a);
    }
}

/// The most raw points one query may decode, counted from the store's index before anything is
/// read.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The cap (`[limits] max_query_points`).
    pub max_points: u64,
}

impl Budget {
    /// Whether summaries of these series in `every` with `averaging` decode raw points: energy
    /// means and buckets shorter than an hour do, whole hours come from the rollups.
    pub fn reads_raw(every: Every, averaging: Averaging) -> bool {
        averaging == Averaging::Energy || !every.whole_hours()
    }

    /// Refuse a query that would decode more raw points than the cap, saying how to narrow it.
    pub fn check(
        &self,
        store: &dyn SeriesStore,
        series: &[SeriesId],
        range: TimeRange,
        every: Every,
        averaging: Averaging,
    ) -> Result<()> {
        if Self::reads_raw(every, averaging) {
            self.check_raw(store, series, range)
        } else {
            Ok(())
        }
    }

    /// Refuse reading raw points of these series over `range` beyond the cap.
    pub fn check_raw(
        &self,
        store: &dyn SeriesStore,
        series: &[SeriesId],
        range: TimeRange,
    ) -> Result<()> {
        let cap = self.max_points;
        let mut n = 0u64;
        for id in series {
            n = n.saturating_add(store.raw_points_in(*id, range.from, range.to));
            if n > cap {
                return Err(Error::TooLarge(format!(
                    "this query would read more than {cap} raw points ({} series from {} to {}); \
                     ask for a shorter range, fewer devices, or whole-hour buckets (every=1h, 1d), \
                     which come from the hourly rollups",
                    series.len(),
                    range.from,
                    range.to
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use agora_model::{MockClock, Value};
    use agora_store::{Engine, EngineConfig};

    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    async fn store(
        dir: &std::path::Path,
        points: Vec<(SeriesId, Timestamp, Value)>,
    ) -> Arc<Engine> {
        let clock = MockClock::new(at("2026-02-01T00:00:00Z"));
        let mut cfg = EngineConfig::new(dir);
        cfg.fsync = false;
        // Tests must not depend on how full the machine's disk is.
        cfg.min_free_bytes = 0;
        let e = Arc::new(Engine::open(cfg, clock).unwrap());
        e.write(points).await.unwrap();
        e
    }

    #[tokio::test]
    async fn sound_levels_are_averaged_as_energy() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeriesId(1);
        let t0 = at("2026-01-15T10:00:00Z");
        // 60 and 70 dB for half an hour each: LAeq = 10·log10((10^6 + 10^7) / 2) = 67.40 dB,
        // not the arithmetic 65 dB.
        let pts = (0..3600)
            .map(|i| {
                let t = t0.saturating_add_nanos(i * 1_000_000_000);
                (s, t, Value::F64(if i < 1800 { 60.0 } else { 70.0 }))
            })
            .collect();
        let e = store(dir.path(), pts).await;
        let range = TimeRange::new(t0, t0.saturating_add_nanos(3_600_000_000_000)).unwrap();
        let hour = Every::Fixed(Duration::from_secs(3600));
        let f = AggFn::Mean;
        let energy = Averaging::of("laeq", "dB", f);
        assert_eq!(energy, Averaging::Energy);
        let parts = summaries(&e, s, range, hour, energy).await.unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1.count, 3600);
        let laeq = energy.value(&parts[0].1, f);
        assert!((laeq - 67.4036).abs() < 1e-4, "{laeq}");
        assert_eq!(energy.value(&parts[0].1, AggFn::Max), 70.0);
        let arith = summaries(&e, s, range, hour, Averaging::Arithmetic).await.unwrap();
        assert!((Averaging::Arithmetic.value(&arith[0].1, f) - 65.0).abs() < 1e-9);
        // Max needs no energy.
        assert_eq!(Averaging::of("laeq", "dB", AggFn::Max), Averaging::Arithmetic);
        assert_eq!(Averaging::of("pm10", "ug/m3", f), Averaging::Arithmetic);
    }

    #[tokio::test]
    async fn energy_summaries_page_through_many_points_and_leave_gaps_absent() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeriesId(7);
        let t0 = at("2026-01-15T00:00:00Z");
        // Three hours at 10 points a second, with the middle hour missing: more than two pages.
        let pts: Vec<_> = (0..3 * 36_000)
            .filter(|i| !(36_000..72_000).contains(i))
            .map(|i| (s, t0.saturating_add_nanos(i * 100_000_000), Value::F64(50.0)))
            .collect();
        assert!(pts.len() > PAGE);
        let e = store(dir.path(), pts).await;
        let range = TimeRange::new(t0, t0.saturating_add_nanos(3 * 3_600_000_000_000)).unwrap();
        let parts =
            summaries(&e, s, range, Every::Fixed(Duration::from_secs(3600)), Averaging::Energy)
                .await
                .unwrap();
        let starts: Vec<Timestamp> = parts.iter().map(|p| p.0).collect();
        assert_eq!(starts, vec![t0, t0.saturating_add_nanos(2 * 3_600_000_000_000)]);
        assert!(parts.iter().all(|p| p.1.count == 36_000));
        let level = Averaging::Energy.value(&parts[1].1, AggFn::Mean);
        assert!((level - 50.0).abs() < 1e-9, "{level}");
    }
}
