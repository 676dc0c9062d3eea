//! Rule evaluation. Point conditions (threshold, state, sustained, rate) are evaluated inline as
//! each batch is stored — a map from property to rules and a cached series → device lookup keep
//! that cheap — and window, no-data and forecast conditions on a schedule (`tick`). The state of
//! each (rule, device) is small, serializable and saved, so that it survives a restart.
//!
//! Evaluation emits transitions (open, resolve) at data time; the manager turns them into alerts.
//! A point older than the newest one seen for its (rule, device) cannot change the present; it
//! is handed to the manager, which replays the stored data around it so that the history of
//! alerts is the one in-order data would have given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use agora_model::{IdMap, SeriesId, Timestamp, Value};
use agora_store::{Catalog, SeriesStore};
use serde::{Deserialize, Serialize};

use crate::rule::{Condition, Op, Rule, WindowFn, parse_duration};

const HOUR_NS: i64 = 3_600_000_000_000;

/// A period when a condition held: start, end once over, the value that made it hold.
pub(crate) type Episode = (i64, Option<i64>, Option<f64>);

/// Completed windows of a leaf: start → (holds, value).
type Windows = BTreeMap<i64, (bool, f64)>;

/// What the evaluator asks the manager to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    /// The condition started to hold at `at` (data time).
    Open {
        /// Rule.
        rule: String,
        /// Device (scope key).
        key: String,
        /// When.
        at: i64,
        /// The value that made it hold.
        value: Option<f64>,
        /// Its property.
        property: Option<String>,
    },
    /// The condition stopped holding at `at`.
    Resolve {
        /// Rule.
        rule: String,
        /// Device.
        key: String,
        /// When.
        at: i64,
    },
    /// A point arrived older than the newest one seen: replay from `from`.
    Late {
        /// Rule.
        rule: String,
        /// Device.
        key: String,
        /// The late point's time.
        from: i64,
    },
    /// Episodes computed from completed windows over `[range_from, range_to)`: the alerts of that
    /// range must match them.
    Episodes {
        /// Rule.
        rule: String,
        /// Device.
        key: String,
        /// (start, end if over, value).
        episodes: Vec<Episode>,
        /// Start of the range they cover.
        range_from: i64,
        /// Property.
        property: String,
    },
}

/// A device as rules see it.
#[derive(Debug)]
pub(crate) struct SeriesMeta {
    pub(crate) device: Arc<str>,
    pub(crate) property: Arc<str>,
    kind: String,
    site: Option<String>,
    commune: Option<String>,
}

#[derive(Debug, Clone)]
enum Leaf {
    Threshold {
        property: String,
        op: Op,
        value: f64,
    },
    State {
        property: String,
        op: Op,
        value: serde_json::Value,
    },
    Sustained {
        property: String,
        op: Op,
        value: f64,
        dur: i64,
    },
    Rate {
        property: String,
        op: Op,
        value: f64,
        over: i64,
    },
    Window {
        property: String,
        func: WindowFn,
        every: i64,
        tz: chrono_tz::Tz,
        op: Op,
        value: f64,
        count: u32,
    },
    NoData {
        periods: Option<f64>,
        dur: Option<i64>,
    },
    Forecast,
}

impl Leaf {
    fn property(&self) -> Option<&str> {
        match self {
            Self::Threshold { property, .. }
            | Self::State { property, .. }
            | Self::Sustained { property, .. }
            | Self::Rate { property, .. }
            | Self::Window { property, .. } => Some(property),
            Self::NoData { .. } | Self::Forecast => None,
        }
    }

    fn is_point(&self) -> bool {
        matches!(
            self,
            Self::Threshold { .. }
                | Self::State { .. }
                | Self::Sustained { .. }
                | Self::Rate { .. }
        )
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Leaf(usize),
    All(Vec<Expr>),
    Any(Vec<Expr>),
}

impl Expr {
    fn eval(&self, leaves: &[LeafState]) -> bool {
        match self {
            Self::Leaf(i) => leaves.get(*i).is_some_and(|l| l.truth),
            Self::All(v) => v.iter().all(|e| e.eval(leaves)),
            Self::Any(v) => v.iter().any(|e| e.eval(leaves)),
        }
    }
}

fn compile(c: &Condition, leaves: &mut Vec<Leaf>) -> Expr {
    let mut push = |l: Leaf| {
        leaves.push(l);
        Expr::Leaf(leaves.len() - 1)
    };
    let d = |s: &str| parse_duration(s).map_or(0, |d| d.as_nanos() as i64);
    match c {
        Condition::Threshold { property, op, value } => {
            push(Leaf::Threshold { property: property.clone(), op: *op, value: *value })
        }
        Condition::State { property, op, value } => {
            push(Leaf::State { property: property.clone(), op: *op, value: value.clone() })
        }
        Condition::Sustained { property, op, value, duration } => push(Leaf::Sustained {
            property: property.clone(),
            op: *op,
            value: *value,
            dur: d(duration),
        }),
        Condition::Rate { property, op, value, over } => {
            push(Leaf::Rate { property: property.clone(), op: *op, value: *value, over: d(over) })
        }
        Condition::Window { property, func, every, tz, op, value, count } => push(Leaf::Window {
            property: property.clone(),
            func: *func,
            every: d(every),
            tz: tz.as_deref().unwrap_or("Europe/Paris").parse().unwrap_or(chrono_tz::Europe::Paris),
            op: *op,
            value: *value,
            count: *count,
        }),
        Condition::NoData { periods, duration } => {
            push(Leaf::NoData { periods: *periods, dur: duration.as_deref().map(d) })
        }
        Condition::Forecast { .. } => push(Leaf::Forecast),
        Condition::All(v) => Expr::All(v.iter().map(|c| compile(c, leaves)).collect()),
        Condition::Any(v) => Expr::Any(v.iter().map(|c| compile(c, leaves)).collect()),
    }
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) rule: Rule,
    leaves: Vec<Leaf>,
    expr: Expr,
    min_ns: i64,
    /// How far back a replay must start to rebuild the state (sustained and rate durations).
    lookback: i64,
}

impl Compiled {
    pub(crate) fn new(rule: Rule) -> Self {
        let mut leaves = Vec::new();
        let expr = compile(&rule.condition, &mut leaves);
        let lookback = leaves
            .iter()
            .map(|l| match l {
                Leaf::Sustained { dur, .. } => *dur,
                Leaf::Rate { over, .. } => *over,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let min_ns = rule.min_duration_ns();
        Self { rule, leaves, expr, min_ns, lookback: lookback + min_ns }
    }

    /// How far before a late point a replay starts.
    pub(crate) fn lookback_ns(&self) -> i64 {
        self.lookback
    }

    fn in_scope(
        &self,
        kind: &str,
        device: &str,
        site: Option<&str>,
        commune: Option<&str>,
    ) -> bool {
        let s = &self.rule.scope;
        s.device.as_deref().is_none_or(|d| d == device)
            && s.kind.as_deref().is_none_or(|k| k == kind)
            && s.site.as_deref().is_none_or(|x| site == Some(x))
            && s.commune.as_deref().is_none_or(|c| commune == Some(c))
    }

    fn active(&self, t: i64) -> bool {
        self.rule.schedule.as_ref().is_none_or(|s| s.covers(t))
    }

    /// The point properties of this rule.
    pub(crate) fn point_properties(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .leaves
            .iter()
            .filter(|l| l.is_point())
            .filter_map(|l| l.property().map(str::to_owned))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// What a leaf remembers for one device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct LeafState {
    truth: bool,
    /// Since when the raw condition holds (sustained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_since: Option<i64>,
    /// Recent points (rate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hist: Vec<(i64, f64)>,
    /// Completed windows: start → (holds, value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    windows: Windows,
}

/// What is remembered of one (rule, device).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct KeyState {
    leaves: Vec<LeafState>,
    /// When the whole condition started to hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<i64>,
    /// An alert is open (or acknowledged) for it.
    pub(crate) open: bool,
    /// Closed by hand while the condition still held: no new alert until it clears.
    #[serde(default)]
    pub(crate) suppressed: bool,
    /// Newest point time seen.
    last_t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    property: Option<String>,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::F64(x) => Some(*x),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        other => other.as_f64(),
    }
}

fn same_state(v: &Value, want: &serde_json::Value) -> bool {
    match (v, want) {
        (Value::Str(s), serde_json::Value::String(w)) => s == w,
        (Value::Bool(b), serde_json::Value::Bool(w)) => b == w,
        (v, serde_json::Value::Number(n)) => num(v).zip(n.as_f64()).is_some_and(|(a, b)| a == b),
        _ => false,
    }
}

/// Feed one point to the leaves of `c` on `property`; returns whether a point leaf was touched.
fn feed(c: &Compiled, st: &mut KeyState, property: &str, t: i64, v: &Value) -> bool {
    let hyst = c.rule.hysteresis;
    let mut touched = false;
    if st.leaves.len() != c.leaves.len() {
        st.leaves = vec![LeafState::default(); c.leaves.len()];
    }
    for (leaf, ls) in c.leaves.iter().zip(st.leaves.iter_mut()) {
        if leaf.property() != Some(property) || !leaf.is_point() {
            continue;
        }
        touched = true;
        let x = num(v);
        match leaf {
            Leaf::Threshold { op, value, .. } => {
                if let Some(x) = x {
                    ls.truth =
                        if ls.truth { !op.cleared(x, *value, hyst) } else { op.holds(x, *value) };
                    if ls.truth {
                        st.value = Some(x);
                    }
                }
            }
            Leaf::State { op, value, .. } => {
                let same = same_state(v, value);
                ls.truth = if *op == Op::Ne { !same } else { same };
                st.value = x;
            }
            Leaf::Sustained { op, value, dur, .. } => {
                if let Some(x) = x {
                    let raw = if ls.raw_since.is_some() {
                        !op.cleared(x, *value, hyst)
                    } else {
                        op.holds(x, *value)
                    };
                    if raw {
                        let since = *ls.raw_since.get_or_insert(t);
                        ls.truth = t - since >= *dur;
                        st.value = Some(x);
                    } else {
                        ls.raw_since = None;
                        ls.truth = false;
                    }
                }
            }
            Leaf::Rate { op, value, over, .. } => {
                if let Some(x) = x {
                    ls.hist.push((t, x));
                    // Keep the newest point at or before t − over, and everything after it.
                    let cut = ls.hist.iter().rposition(|(ts, _)| *ts <= t - over);
                    if let Some(i) = cut {
                        ls.hist.drain(..i);
                    }
                    ls.truth = match ls.hist.first() {
                        Some(&(ts, base)) if ts <= t - over => {
                            let change = x - base;
                            if change.is_finite() && op.holds(change, *value) {
                                st.value = Some(change);
                                true
                            } else {
                                false
                            }
                        }
                        _ => false,
                    };
                }
            }
            _ => {}
        }
    }
    if touched {
        st.property.get_or_insert_with(|| property.to_owned());
    }
    touched
}

/// After the leaves changed at time `t`: open or resolve.
fn settle(c: &Compiled, key: &str, st: &mut KeyState, t: i64, out: &mut Vec<Transition>) {
    let holds = c.active(t) && c.expr.eval(&st.leaves);
    if holds {
        let since = *st.since.get_or_insert(t);
        if !st.open && !st.suppressed && t - since >= c.min_ns {
            st.open = true;
            out.push(Transition::Open {
                rule: c.rule.id.clone(),
                key: key.to_owned(),
                at: since,
                value: st.value,
                property: st.property.clone(),
            });
        }
    } else {
        st.since = None;
        st.suppressed = false;
        if st.open {
            st.open = false;
            out.push(Transition::Resolve { rule: c.rule.id.clone(), key: key.to_owned(), at: t });
        }
    }
}

/// Replay points (time order) through a fresh state; returns the episodes and the final state.
pub(crate) fn replay(
    c: &Compiled,
    key: &str,
    points: &[(i64, String, Value)],
) -> (Vec<Episode>, KeyState) {
    let mut st = KeyState::default();
    let mut episodes: Vec<Episode> = Vec::new();
    let mut out = Vec::new();
    for (t, p, v) in points {
        if feed(c, &mut st, p, *t, v) {
            st.last_t = st.last_t.max(*t);
            settle(c, key, &mut st, *t, &mut out);
            for tr in out.drain(..) {
                match tr {
                    Transition::Open { at, value, .. } => episodes.push((at, None, value)),
                    Transition::Resolve { at, .. } => {
                        if let Some(e) = episodes.last_mut() {
                            e.1 = Some(at);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    (episodes, st)
}

/// The evaluator: compiled rules, per-(rule, device) states.
#[derive(Debug, Default)]
pub(crate) struct Evaluator {
    pub(crate) rules: Vec<Arc<Compiled>>,
    by_property: HashMap<String, Vec<usize>>,
    series: IdMap<u32, Option<Arc<SeriesMeta>>>,
    pub(crate) states: HashMap<(String, String), KeyState>,
    pub(crate) dirty: HashSet<(String, String)>,
}

impl Evaluator {
    /// Replace the rules; states of rules that changed start afresh.
    pub(crate) fn set_rules(&mut self, rules: Vec<Rule>) {
        let old: HashMap<String, Rule> =
            self.rules.iter().map(|c| (c.rule.id.clone(), c.rule.clone())).collect();
        self.rules =
            rules.into_iter().filter(|r| r.enabled).map(|r| Arc::new(Compiled::new(r))).collect();
        let keep: HashSet<String> = self
            .rules
            .iter()
            .filter(|c| old.get(&c.rule.id) == Some(&c.rule))
            .map(|c| c.rule.id.clone())
            .collect();
        let open: HashSet<(String, String)> =
            self.states.iter().filter(|(_, s)| s.open).map(|(k, _)| k.clone()).collect();
        self.states.retain(|(r, _), _| keep.contains(r));
        // A changed rule keeps knowing which alerts are open, so it resolves them rather than
        // opening duplicates.
        for (r, k) in open {
            if !keep.contains(&r) && self.rules.iter().any(|c| c.rule.id == r) {
                self.states.insert((r, k), KeyState { open: true, ..Default::default() });
            }
        }
        self.by_property.clear();
        for (i, c) in self.rules.iter().enumerate() {
            for p in c.point_properties() {
                self.by_property.entry(p).or_default().push(i);
            }
        }
    }

    fn meta(&mut self, catalog: &dyn Catalog, s: SeriesId) -> Option<Arc<SeriesMeta>> {
        if let Some(m) = self.series.get(&s.0) {
            return m.clone();
        }
        let m = catalog.series_info(s).and_then(|info| {
            let d = catalog.device(info.device.as_str())?;
            Some(Arc::new(SeriesMeta {
                device: Arc::from(info.device.as_str()),
                property: Arc::from(info.property.as_str()),
                kind: d.kind.to_string(),
                site: d.site.map(|x| x.to_string()),
                commune: d.commune.map(|x| x.to_string()),
            }))
        });
        self.series.insert(s.0, m.clone());
        m
    }

    /// Evaluate stored points.
    pub(crate) fn on_points(
        &mut self,
        catalog: &dyn Catalog,
        batch: &[(SeriesId, Timestamp, Value, u8)],
        out: &mut Vec<Transition>,
    ) {
        if self.by_property.is_empty() {
            return;
        }
        for (s, t, v, flags) in batch {
            if *flags != 0 {
                continue;
            }
            let Some(meta) = self.meta(catalog, *s) else { continue };
            let Some(idx) = self.by_property.get(&*meta.property) else { continue };
            let t = t.as_nanos();
            for &i in idx {
                let c = &self.rules[i];
                if !c.in_scope(
                    &meta.kind,
                    &meta.device,
                    meta.site.as_deref(),
                    meta.commune.as_deref(),
                ) {
                    continue;
                }
                let k = (c.rule.id.clone(), meta.device.to_string());
                let st = self.states.entry(k.clone()).or_default();
                if t < st.last_t {
                    out.push(Transition::Late { rule: k.0, key: k.1, from: t });
                    continue;
                }
                feed(c, st, &meta.property, t, v);
                st.last_t = t;
                settle(c, &meta.device, st, t, out);
                self.dirty.insert(k);
            }
        }
    }

    /// Replace a key's state (after a replay).
    pub(crate) fn set_state(&mut self, rule: &str, key: &str, st: KeyState) {
        let k = (rule.to_owned(), key.to_owned());
        self.states.insert(k.clone(), st);
        self.dirty.insert(k);
    }

    /// Mark a key's alert as closed by hand: no new alert until the condition clears.
    pub(crate) fn closed_by_hand(&mut self, rule: &str, key: &str) {
        let k = (rule.to_owned(), key.to_owned());
        let st = self.states.entry(k.clone()).or_default();
        st.open = false;
        st.suppressed = st.since.is_some();
        self.dirty.insert(k);
    }
}

/// Scheduled evaluation of the leaves that data arrival cannot settle: windows (completed ones,
/// the last 48 re-read each time so late points count), silence, forecasts.
pub(crate) async fn tick(
    ev: &parking_lot::Mutex<Evaluator>,
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    now: i64,
    out: &mut Vec<Transition>,
) {
    let rules: Vec<Arc<Compiled>> = ev
        .lock()
        .rules
        .iter()
        .filter(|c| c.leaves.iter().any(|l| !l.is_point()))
        .cloned()
        .collect();
    if rules.is_empty() {
        return;
    }
    let devices = catalog.devices(&Default::default());
    for c in rules {
        for d in &devices {
            if !c.in_scope(
                d.kind.as_str(),
                d.id.as_str(),
                d.site.as_ref().map(|x| x.as_str()),
                d.commune.as_ref().map(|x| x.as_str()),
            ) {
                continue;
            }
            let mut window_results: Vec<(usize, Windows)> = Vec::new();
            let mut nodata: Vec<(usize, bool, i64)> = Vec::new();
            let mut applicable = false;
            for (i, leaf) in c.leaves.iter().enumerate() {
                match leaf {
                    Leaf::Window { property, func, every, tz, op, value, count } => {
                        let Some(s) =
                            catalog.lookup_series(&[(d.id.as_str(), property.as_str())])[0]
                        else {
                            continue;
                        };
                        applicable = true;
                        let unit_db = catalog.series_info(s).is_some_and(|x| x.unit == "dB");
                        let keep = i64::from(*count) + 47;
                        let last_end = window_floor(now, *every, *tz);
                        let first = window_floor(last_end - keep * every, *every, *tz);
                        let mut flags = BTreeMap::new();
                        let mut start = first;
                        while start < last_end {
                            let end = window_end(start, *every, *tz);
                            if let Some(v) =
                                window_value(store, s, start, end, *func, unit_db).await
                            {
                                flags.insert(start, (op.holds(v, *value), v));
                            }
                            start = end;
                        }
                        window_results.push((i, flags));
                    }
                    Leaf::NoData { periods, dur } => {
                        applicable = true;
                        let period = d
                            .metadata
                            .get("period_s")
                            .and_then(serde_json::Value::as_f64)
                            .filter(|p| *p > 0.0)
                            .unwrap_or(3600.0);
                        let limit =
                            dur.unwrap_or_else(|| (periods.unwrap_or(3.0) * period * 1e9) as i64);
                        let seen = d.last_seen.map_or(d.created_at.as_nanos(), Timestamp::as_nanos);
                        nodata.push((i, now - seen > limit, seen + limit));
                    }
                    _ => {}
                }
            }
            if !applicable {
                continue;
            }
            let key = d.id.to_string();
            let mut e = ev.lock();
            let st = e.states.entry((c.rule.id.clone(), key.clone())).or_default();
            if st.leaves.len() != c.leaves.len() {
                st.leaves = vec![LeafState::default(); c.leaves.len()];
            }
            let mut at = now;
            for (i, flags) in window_results {
                let Leaf::Window { count, every, tz, property, .. } = &c.leaves[i] else {
                    continue;
                };
                let count = *count as usize;
                // Episodes: from the end of the `count`-th window in a row that holds, to the
                // end of the first window that does not. A window without data breaks a run
                // being counted but does not end an episode.
                let mut episodes: Vec<Episode> = Vec::new();
                let (mut run, mut worst, mut prev_end) = (0usize, f64::NAN, None::<i64>);
                for (&start, &(holds, v)) in &flags {
                    if prev_end != Some(start) {
                        run = 0;
                        worst = f64::NAN;
                    }
                    let end = window_end(start, *every, *tz);
                    if holds {
                        run += 1;
                        worst = worst.max(v);
                        let open = episodes.last().is_some_and(|e| e.1.is_none());
                        if run >= count && !open {
                            episodes.push((end, None, Some(worst)));
                        }
                    } else {
                        // Known once this window is complete.
                        if let Some(e) = episodes.last_mut().filter(|e| e.1.is_none()) {
                            e.1 = Some(end);
                        }
                        run = 0;
                        worst = f64::NAN;
                    }
                    prev_end = Some(end);
                }
                let holds_now = episodes.last().is_some_and(|e| e.1.is_none());
                st.leaves[i].truth = holds_now;
                st.leaves[i].windows = flags;
                if let Some(p) = prev_end {
                    at = p;
                }
                if c.leaves.len() == 1 {
                    let range_from = st.leaves[i].windows.keys().next().copied().unwrap_or(now);
                    st.open = holds_now;
                    st.since = episodes.last().filter(|e| e.1.is_none()).map(|e| e.0);
                    out.push(Transition::Episodes {
                        rule: c.rule.id.clone(),
                        key: key.clone(),
                        episodes,
                        range_from,
                        property: property.clone(),
                    });
                }
            }
            for (i, silent, since) in nodata {
                st.leaves[i].truth = silent;
                if silent {
                    at = since;
                }
            }
            if c.leaves.len() > 1 || matches!(c.leaves[0], Leaf::NoData { .. } | Leaf::Forecast) {
                settle(&c, &key, st, at.min(now), out);
            }
            e.dirty.insert((c.rule.id.clone(), key));
        }
    }
}

/// End of the window starting at `start` (a local day lasts 23 or 25 hours on clock changes).
pub(crate) fn window_end(start: i64, every: i64, tz: chrono_tz::Tz) -> i64 {
    if every >= 86_400_000_000_000 {
        window_floor(start + every + every / 2, every, tz)
    } else {
        start + every
    }
}

/// Start of the window containing `t`: days start at local midnight in `tz`, shorter windows
/// are aligned on the epoch (whole hours everywhere in France's offsets).
pub(crate) fn window_floor(t: i64, every: i64, tz: chrono_tz::Tz) -> i64 {
    use chrono::TimeZone;
    if every >= 86_400_000_000_000 {
        let local = chrono::DateTime::from_timestamp_nanos(t).with_timezone(&tz);
        let midnight = local.date_naive().and_hms_opt(0, 0, 0).expect("midnight exists");
        tz.from_local_datetime(&midnight)
            .earliest()
            .map_or(t - t.rem_euclid(every), |d| d.timestamp_nanos_opt().unwrap_or(t))
    } else {
        t - t.rem_euclid(every)
    }
}

async fn window_value(
    store: &dyn SeriesStore,
    s: SeriesId,
    start: i64,
    end: i64,
    func: WindowFn,
    energy: bool,
) -> Option<f64> {
    let (from, to) = (Timestamp::from_nanos(start), Timestamp::from_nanos(end));
    let whole_hours = (end - start) % HOUR_NS == 0 && start % HOUR_NS == 0;
    let step = std::time::Duration::from_nanos((end - start) as u64);
    let parts = if energy && func == WindowFn::Mean {
        store.aggregate_energy(s, from, to, step).await.ok()?
    } else if whole_hours {
        store.aggregate(s, from, to, std::time::Duration::from_secs(3600)).await.ok()?
    } else {
        store.aggregate(s, from, to, step).await.ok()?
    };
    let mut it = parts.into_iter().map(|(_, a)| a);
    let mut a = it.next()?;
    for x in it {
        a.merge(&x);
    }
    if a.count == 0 {
        return None;
    }
    Some(match func {
        WindowFn::Mean if energy => 10.0 * (a.sum / a.count as f64).log10(),
        WindowFn::Mean => a.sum / a.count as f64,
        WindowFn::Max => a.max,
        WindowFn::Min => a.min,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(c: serde_json::Value, extra: serde_json::Value) -> Compiled {
        let mut r = serde_json::json!({"id": "r", "condition": c});
        if let (Some(o), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Compiled::new(serde_json::from_value(r).unwrap())
    }

    fn run(c: &Compiled, pts: &[(i64, f64)]) -> Vec<Episode> {
        let p: Vec<(i64, String, Value)> =
            pts.iter().map(|(t, v)| (*t, "pm10".to_owned(), Value::F64(*v))).collect();
        replay(c, "d", &p).0
    }

    #[test]
    fn threshold_with_hysteresis_does_not_flap() {
        let c = compiled(
            serde_json::json!({"threshold": {"property": "pm10", "op": ">", "value": 50.0}}),
            serde_json::json!({"hysteresis": 5.0}),
        );
        let e =
            run(&c, &[(1, 40.0), (2, 51.0), (3, 49.0), (4, 52.0), (5, 46.0), (6, 44.0), (7, 60.0)]);
        assert_eq!(e, vec![(2, Some(6), Some(51.0)), (7, None, Some(60.0))]);
        let c = compiled(
            serde_json::json!({"threshold": {"property": "pm10", "op": ">", "value": 50.0}}),
            serde_json::json!({}),
        );
        assert_eq!(
            run(&c, &[(2, 51.0), (3, 49.0), (4, 52.0)]).len(),
            2,
            "without hysteresis it flaps"
        );
    }

    #[test]
    fn sustained_and_min_duration() {
        let m = 60_000_000_000;
        let c = compiled(
            serde_json::json!({"sustained": {"property": "pm10", "op": ">", "value": 55.0, "for": "30m"}}),
            serde_json::json!({}),
        );
        let pts: Vec<(i64, f64)> =
            (0..40).map(|i| (i * m, if i == 10 { 50.0 } else { 60.0 })).collect();
        // Broken at minute 10, then held from 11: true at minute 41 — never within 40 minutes.
        assert!(run(&c, &pts).is_empty());
        let pts: Vec<(i64, f64)> = (0..40).map(|i| (i * m, 60.0)).collect();
        assert_eq!(run(&c, &pts), vec![(30 * m, None, Some(60.0))]);
        let c = compiled(
            serde_json::json!({"threshold": {"property": "pm10", "op": ">", "value": 55.0}}),
            serde_json::json!({"min_duration": "5m"}),
        );
        let e = run(&c, &(0..10).map(|i| (i * m, 60.0)).collect::<Vec<_>>());
        assert_eq!(e, vec![(0, None, Some(60.0))], "opened once held 5 min, dated from the start");
    }

    #[test]
    fn rate_of_change() {
        let h = 3_600_000_000_000;
        let c = compiled(
            serde_json::json!({"rate": {"property": "pm10", "op": ">", "value": 5.0, "over": "1h"}}),
            serde_json::json!({}),
        );
        let e = run(
            &c,
            &[(0, 10.0), (h / 2, 12.0), (h, 14.0), (h + h / 2, 20.0), (2 * h, 21.0), (3 * h, 21.0)],
        );
        assert_eq!(e, vec![(h + h / 2, Some(3 * h), Some(8.0))]);
    }

    #[test]
    fn window_floor_in_paris_days() {
        // 2026-07-01T12:00Z → Paris midnight is 2026-06-30T22:00Z.
        let t = 1_782_907_200_000_000_000;
        let f = window_floor(t, 86_400_000_000_000, chrono_tz::Europe::Paris);
        assert_eq!(f, 1_782_856_800_000_000_000);
        assert_eq!(window_floor(t + 1, HOUR_NS, chrono_tz::Europe::Paris), t);
    }
}
