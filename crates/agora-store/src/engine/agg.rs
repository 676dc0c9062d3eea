//! Aggregates (count, min, max, sum, first, last) over a bucket of points, and how they combine.

use serde::Serialize;

/// The summary of the points of one bucket. Combining two summaries of disjoint point sets gives
/// the summary of their union, which is what makes rollups reusable for any coarser bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Agg {
    /// Number of points.
    pub count: u64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of values.
    pub sum: f64,
    /// Value of the earliest point.
    pub first: f64,
    /// Value of the latest point.
    pub last: f64,
    /// Time of the earliest point (ns).
    pub first_ts: i64,
    /// Time of the latest point (ns).
    pub last_ts: i64,
}

/// The aggregation functions the query API offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    /// Arithmetic mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum.
    Sum,
    /// Number of points.
    Count,
    /// Earliest value.
    First,
    /// Latest value.
    Last,
}

impl std::str::FromStr for AggFn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "mean" | "avg" => Self::Mean,
            "min" => Self::Min,
            "max" => Self::Max,
            "sum" => Self::Sum,
            "count" => Self::Count,
            "first" => Self::First,
            "last" => Self::Last,
            _ => {
                return Err(format!(
                    "unknown aggregate function {s:?}: use mean, min, max, sum, count, first or last"
                ));
            }
        })
    }
}

impl Agg {
    /// The summary of a single point.
    pub fn one(ts: i64, v: f64) -> Self {
        Self { count: 1, min: v, max: v, sum: v, first: v, last: v, first_ts: ts, last_ts: ts }
    }

    /// Add one point.
    pub fn add(&mut self, ts: i64, v: f64) {
        self.merge(&Self::one(ts, v));
    }

    /// Combine with the summary of a disjoint set of points.
    pub fn merge(&mut self, o: &Agg) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        if o.first_ts < self.first_ts {
            self.first = o.first;
            self.first_ts = o.first_ts;
        }
        if o.last_ts >= self.last_ts {
            self.last = o.last;
            self.last_ts = o.last_ts;
        }
    }

    /// The value of one aggregation function.
    pub fn value(&self, f: AggFn) -> f64 {
        match f {
            AggFn::Mean => self.sum / self.count as f64,
            AggFn::Min => self.min,
            AggFn::Max => self.max,
            AggFn::Sum => self.sum,
            AggFn::Count => self.count as f64,
            AggFn::First => self.first,
            AggFn::Last => self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_summaries_equals_summarizing_the_union() {
        let pts = [(1, 3.0), (2, -1.0), (3, 7.5), (4, 2.0)];
        let mut all = Agg::one(pts[0].0, pts[0].1);
        pts[1..].iter().for_each(|&(t, v)| all.add(t, v));
        let mut a = Agg::one(3, 7.5);
        a.add(1, 3.0);
        let mut b = Agg::one(4, 2.0);
        b.add(2, -1.0);
        b.merge(&a);
        assert_eq!(b, all);
        assert_eq!(all.value(AggFn::Mean), 2.875);
        assert_eq!(all.value(AggFn::First), 3.0);
        assert_eq!(all.value(AggFn::Last), 2.0);
    }
}
