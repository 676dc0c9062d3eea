//! In-memory columns of one series' points, and the merge that makes "last write wins" true.

use agora_model::{Value, ValueKind};

/// Values of one series, one vector per value kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

impl Column {
    pub(crate) fn new(kind: ValueKind) -> Self {
        match kind {
            ValueKind::Float => Self::F64(Vec::new()),
            ValueKind::Integer => Self::I64(Vec::new()),
            ValueKind::Boolean => Self::Bool(Vec::new()),
            ValueKind::String => Self::Str(Vec::new()),
        }
    }

    pub(crate) fn kind(&self) -> ValueKind {
        match self {
            Self::F64(_) => ValueKind::Float,
            Self::I64(_) => ValueKind::Integer,
            Self::Bool(_) => ValueKind::Boolean,
            Self::Str(_) => ValueKind::String,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Self::F64(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::Str(v) => v.len(),
        }
    }

    /// Append a value, coercing it to this column's kind. Returns false when it cannot be stored
    /// here (the pipeline checks kinds first, so this only guards the engine's invariants).
    pub(crate) fn push(&mut self, v: Value) -> bool {
        let Some(v) = v.coerce(self.kind()) else { return false };
        match (self, v) {
            (Self::F64(c), Value::F64(x)) => c.push(x),
            (Self::I64(c), Value::I64(x)) => c.push(x),
            (Self::Bool(c), Value::Bool(x)) => c.push(x),
            (Self::Str(c), Value::Str(x)) => c.push(x),
            _ => return false,
        }
        true
    }

    pub(crate) fn get(&self, i: usize) -> Value {
        match self {
            Self::F64(v) => Value::F64(v[i]),
            Self::I64(v) => Value::I64(v[i]),
            Self::Bool(v) => Value::Bool(v[i]),
            Self::Str(v) => Value::Str(v[i].clone()),
        }
    }

    /// The value at `i` as a number for aggregation.
    pub(crate) fn num(&self, i: usize) -> f64 {
        match self {
            Self::F64(v) => v[i],
            Self::I64(v) => v[i] as f64,
            Self::Bool(v) => f64::from(u8::from(v[i])),
            Self::Str(_) => f64::NAN,
        }
    }

    pub(crate) fn push_from(&mut self, other: &Column, i: usize) {
        match (self, other) {
            (Self::F64(a), Self::F64(b)) => a.push(b[i]),
            (Self::I64(a), Self::I64(b)) => a.push(b[i]),
            (Self::Bool(a), Self::Bool(b)) => a.push(b[i]),
            (Self::Str(a), Self::Str(b)) => a.push(b[i].clone()),
            (a, b) => {
                let v = b.get(i);
                a.push(v);
            }
        }
    }

    pub(crate) fn with_capacity_like(&self, n: usize) -> Self {
        match self {
            Self::F64(_) => Self::F64(Vec::with_capacity(n)),
            Self::I64(_) => Self::I64(Vec::with_capacity(n)),
            Self::Bool(_) => Self::Bool(Vec::with_capacity(n)),
            Self::Str(_) => Self::Str(Vec::with_capacity(n)),
        }
    }
}

/// Points of one series: timestamps and values side by side, and their quality flags.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Points {
    pub(crate) ts: Vec<i64>,
    pub(crate) col: Column,
    /// Quality flags (see `agora_model::quality`), one per point, or empty when none is flagged.
    pub(crate) flags: Vec<u8>,
}

impl Points {
    pub(crate) fn new(kind: ValueKind) -> Self {
        Self { ts: Vec::new(), col: Column::new(kind), flags: Vec::new() }
    }

    /// No points yet, room for `n` (flags are allocated when the first point is flagged).
    pub(crate) fn with_capacity(kind: ValueKind, n: usize) -> Self {
        Self {
            ts: Vec::with_capacity(n),
            col: Column::new(kind).with_capacity_like(n),
            flags: Vec::new(),
        }
    }

    /// Points without flags.
    pub(crate) fn clean(ts: Vec<i64>, col: Column) -> Self {
        Self { ts, col, flags: Vec::new() }
    }

    /// The flags of point `i`.
    pub(crate) fn flag(&self, i: usize) -> u8 {
        self.flags.get(i).copied().unwrap_or(0)
    }

    /// Record the flags of the point just pushed.
    pub(crate) fn push_flag(&mut self, f: u8) {
        if f != 0 && self.flags.is_empty() {
            self.flags = vec![0; self.ts.len() - 1];
        }
        if f != 0 || !self.flags.is_empty() {
            self.flags.push(f);
        }
    }

    /// The same points without the flagged ones.
    pub(crate) fn without_flagged(self) -> Points {
        if self.flags.iter().all(|&f| f == 0) {
            return Points { flags: Vec::new(), ..self };
        }
        let mut out = Points {
            ts: Vec::new(),
            col: self.col.with_capacity_like(self.len()),
            flags: Vec::new(),
        };
        for (i, &t) in self.ts.iter().enumerate() {
            if self.flags[i] == 0 {
                out.ts.push(t);
                out.col.push_from(&self.col, i);
            }
        }
        out
    }

    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether timestamps are strictly increasing (sorted, no duplicates).
    pub(crate) fn is_strictly_sorted(&self) -> bool {
        self.ts.windows(2).all(|w| w[0] < w[1])
    }

    /// Keep only points with `from <= ts < to`, assuming nothing about order.
    pub(crate) fn filter_range(&self, from: i64, to: i64) -> Points {
        let mut out = Points::new(self.col.kind());
        for (i, &t) in self.ts.iter().enumerate() {
            if t >= from && t < to {
                out.ts.push(t);
                out.col.push_from(&self.col, i);
                out.push_flag(self.flag(i));
            }
        }
        out
    }

    /// Merge sources given from oldest to newest: the result is sorted by time and, for equal
    /// timestamps, holds the value from the newest source (the last write wins).
    pub(crate) fn merge(sources: Vec<Points>) -> Option<Points> {
        let mut sources: Vec<Points> = sources.into_iter().filter(|p| p.len() > 0).collect();
        match sources.len() {
            0 => return None,
            1 if sources[0].is_strictly_sorted() => return sources.pop(),
            _ => {}
        }
        let total: usize = sources.iter().map(Points::len).sum();
        // (timestamp, source, index): sorting is stable, so later sources and later positions come
        // after earlier ones with the same timestamp and win the dedup below.
        let mut order: Vec<(i64, u32, u32)> = Vec::with_capacity(total);
        for (s, p) in sources.iter().enumerate() {
            for (i, &t) in p.ts.iter().enumerate() {
                order.push((t, s as u32, i as u32));
            }
        }
        order.sort_by_key(|&(t, _, _)| t);
        let kind = sources.last().map(|p| p.col.kind()).unwrap_or(ValueKind::Float);
        let mut out =
            Points { ts: Vec::with_capacity(total), col: Column::new(kind), flags: Vec::new() };
        for (k, &(t, s, i)) in order.iter().enumerate() {
            if order.get(k + 1).is_some_and(|n| n.0 == t) {
                continue;
            }
            let src = &sources[s as usize];
            out.ts.push(t);
            out.col.push_from(&src.col, i as usize);
            out.push_flag(src.flag(i as usize));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Points {
        Points::clean(v.iter().map(|p| p.0).collect(), Column::F64(v.iter().map(|p| p.1).collect()))
    }

    #[test]
    fn merge_sorts_and_last_write_wins() {
        let old = pts(&[(1, 1.0), (3, 3.0), (5, 5.0)]);
        let new = pts(&[(4, 4.0), (3, 30.0), (1, 10.0), (1, 11.0)]);
        let m = Points::merge(vec![old, new]).unwrap();
        assert_eq!(m, pts(&[(1, 11.0), (3, 30.0), (4, 4.0), (5, 5.0)]));
    }
}
