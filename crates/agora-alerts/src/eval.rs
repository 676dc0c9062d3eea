//! Rule evaluation. Point conditions (threshold, state, sustained, rate) are evaluated inline as
//! each batch is stored — a map from property to rules and a cached series → device lookup keep
//! that cheap — and window, no-data and forecast conditions on a schedule (`tick`). The state of
//! each (rule, device) is small, serializable and saved, so that it survives a restart.
//!
//! Evaluation emits transitions (open, resolve) at data time; the manager turns them into alerts.
//! A point older than the newest one seen for its (rule, device) cannot change the present; it
//! is handed to the manager, which replays the stored data around it so that the history of
//! alerts is the one in-order data would have given.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use agora_model::{IdMap, SeriesId, Timestamp, Value};
use agora_store::{Catalog, SeriesStore};
use serde::{Deserialize, Serialize};

use agora_query::summaries;
use agora_query::{Averaging, Every, ReportingPeriod, TimeRange};

use crate::rule::{Condition, Indicator, Op, Rule, Span, WindowFn, Zone};

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
        /// What the alert says beyond the value (a forecast's interval).
        note: Option<String>,
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
    device: Arc<str>,
    /// The device's number in the evaluator (states are keyed by it).
    device_ix: u32,
    property: Arc<str>,
    /// The rules a point of this series must visit (by index), with their leaves on its
    /// property, worked out once.
    candidates: Vec<(usize, Vec<u16>)>,
    /// What a point must be for a candidate at rest to wake up.
    watch: Watch,
}

/// The values that can wake a threshold or sustained leaf at rest on a series, summed up over
/// all its candidate rules: the common point — inside every limit — is judged in four
/// comparisons, whatever the number of rules.
#[derive(Debug, Clone, Copy)]
struct Band {
    /// Lowest limit of the `>` (and of the `>=`) leaves: a value at or below (below) it leaves
    /// them at rest.
    gt: f64,
    ge: f64,
    /// Highest limit of the `<` (and of the `<=`) leaves.
    lt: f64,
    le: f64,
    /// A leaf the limits cannot sum up (state, `==`, `!=`): every point visits the candidates.
    always: bool,
    /// Rate leaves look at the series: its recent points are kept.
    rates: bool,
}

impl Default for Band {
    fn default() -> Self {
        Self {
            gt: f64::INFINITY,
            ge: f64::INFINITY,
            lt: f64::NEG_INFINITY,
            le: f64::NEG_INFINITY,
            always: false,
            rates: false,
        }
    }
}

impl Band {
    /// Narrow the band by a leaf `op limit`.
    fn add(&mut self, op: Op, limit: f64) {
        match op {
            Op::Gt => self.gt = self.gt.min(limit),
            Op::Ge => self.ge = self.ge.min(limit),
            Op::Lt => self.lt = self.lt.max(limit),
            Op::Le => self.le = self.le.max(limit),
            Op::Eq | Op::Ne => self.always = true,
        }
    }

    /// Whether a value may wake a threshold or sustained leaf (or a state leaf).
    fn wakes(&self, x: Option<f64>) -> bool {
        let Some(x) = x else { return self.always };
        self.always || !(x <= self.gt && x < self.ge && x >= self.lt && x > self.le)
    }
}

/// What can wake the candidate rules of a series.
#[derive(Debug, Default)]
struct Watch {
    band: Band,
    /// The rate leaves, summed up per duration: (over, the changes that wake one of them).
    rates: Vec<(i64, Band)>,
    /// How much history the rate leaves need (0 when none).
    keep: i64,
}

impl Watch {
    fn new<'a>(leaves: impl Iterator<Item = &'a Leaf>) -> Self {
        let mut w = Self::default();
        let b = &mut w.band;
        for leaf in leaves {
            match *leaf {
                Leaf::Threshold { op, value, .. } | Leaf::Sustained { op, value, .. } => {
                    b.add(op, value);
                }
                Leaf::Rate { op, value, over, .. } => {
                    match w.rates.iter_mut().find(|(o, _)| *o == over) {
                        Some((_, changes)) => changes.add(op, value),
                        None => {
                            let mut changes = Band::default();
                            changes.add(op, value);
                            w.rates.push((over, changes));
                        }
                    }
                    w.keep = w.keep.max(over);
                    b.rates = true;
                }
                Leaf::State { .. } => b.always = true,
                _ => {}
            }
        }
        w
    }

    /// Whether a change of the series wakes a rate leaf (`hist` holds its recent points, this
    /// one included).
    fn rate_wakes(&self, x: Option<f64>, t: i64, hist: &VecDeque<(i64, f64)>) -> bool {
        x.is_some_and(|x| {
            self.rates.iter().any(|(over, changes)| {
                rate_change(hist, t, x, *over).is_some_and(|c| changes.wakes(Some(c)))
            })
        })
    }
}

/// The change of a series over `over` before `t`: from the newest point at or before
/// `t − over` to `x`.
fn rate_change(hist: &VecDeque<(i64, f64)>, t: i64, x: f64, over: i64) -> Option<f64> {
    let n = hist.partition_point(|(ts, _)| *ts <= t - over);
    let change = x - hist.get(n.checked_sub(1)?)?.1;
    change.is_finite().then_some(change)
}

/// Add a point to a series' recent points (kept in time order) and forget those older than
/// needed: the newest point at or before `newest − keep` stays, as the base of a change.
fn remember(hist: &mut VecDeque<(i64, f64)>, t: i64, x: f64, keep: i64) {
    if hist.back().is_none_or(|(b, _)| *b <= t) {
        hist.push_back((t, x));
    } else {
        let at = hist.partition_point(|(ts, _)| *ts <= t);
        hist.insert(at, (t, x));
    }
    let newest = hist.back().map_or(t, |(b, _)| *b);
    while hist.get(1).is_some_and(|(ts, _)| *ts <= newest - keep) {
        hist.pop_front();
    }
}

/// What the evaluator keeps of a series between its points. The fields a point at rest needs
/// are here, not behind `meta`, so that such a point touches this entry only.
#[derive(Debug, Default)]
struct SeriesEntry {
    /// The generation of the rules `meta` was worked out for (0: never).
    rules: u64,
    /// Newest point time, to tell late points.
    newest: i64,
    /// The device's number.
    device_ix: u32,
    /// `meta.watch.band`.
    band: Band,
    /// `None`: no rule looks at it.
    meta: Option<Arc<SeriesMeta>>,
    /// Recent points, when a rate rule looks at it.
    hist: VecDeque<(i64, f64)>,
}

/// Where a device stands, as scopes see it: kind, site, commune.
type Placement = (String, Option<String>, Option<String>);

fn placement(d: &agora_store::catalog::Device) -> Placement {
    let site = d.site.as_ref().map(ToString::to_string);
    (d.kind.to_string(), site, d.commune.as_ref().map(ToString::to_string))
}

/// The devices the evaluator has met, numbered.
#[derive(Debug, Default)]
struct Devices {
    ix: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// Per device number: how many rules hold a state for it.
    held: Vec<u32>,
    /// Per device number: where it stood when its series' rules were worked out.
    placed: Vec<Option<Placement>>,
}

impl Devices {
    fn ix(&mut self, name: &str) -> u32 {
        if let Some(i) = self.ix.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        let a: Arc<str> = Arc::from(name);
        self.names.push(a.clone());
        self.held.push(0);
        self.placed.push(None);
        self.ix.insert(a, i);
        i
    }
}

#[derive(Debug, Clone)]
enum Leaf {
    Threshold { property: String, op: Op, value: f64 },
    State { property: String, op: Op, value: serde_json::Value },
    Sustained { property: String, op: Op, value: f64, dur: i64 },
    Rate { property: String, op: Op, value: f64, over: i64 },
    Window { property: String, func: WindowFn, every: Every, op: Op, value: f64, count: u32 },
    NoData { periods: Option<f64>, dur: Option<i64> },
    Forecast { property: String, horizon: std::time::Duration, op: Op, value: f64 },
    Anomaly { property: String },
    Indicator { name: Indicator, op: Op, value: f64 },
}

impl Leaf {
    fn property(&self) -> Option<&str> {
        match self {
            Self::Threshold { property, .. }
            | Self::State { property, .. }
            | Self::Sustained { property, .. }
            | Self::Rate { property, .. }
            | Self::Window { property, .. } => Some(property),
            Self::Forecast { property, .. } | Self::Anomaly { property } => Some(property),
            Self::NoData { .. } | Self::Indicator { .. } => None,
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
    match c {
        Condition::Threshold { property, op, value } => {
            push(Leaf::Threshold { property: property.to_string(), op: *op, value: *value })
        }
        Condition::State { property, op, value } => {
            push(Leaf::State { property: property.to_string(), op: *op, value: value.clone() })
        }
        Condition::Sustained { property, op, value, duration } => push(Leaf::Sustained {
            property: property.to_string(),
            op: *op,
            value: *value,
            dur: duration.as_nanos(),
        }),
        Condition::Rate { property, op, value, over } => push(Leaf::Rate {
            property: property.to_string(),
            op: *op,
            value: *value,
            over: over.as_nanos(),
        }),
        Condition::Window { property, func, every, tz, op, value, count } => push(Leaf::Window {
            property: property.to_string(),
            func: *func,
            every: Every::new(every.duration(), Some(tz.unwrap_or(Zone::PARIS).0)),
            op: *op,
            value: *value,
            count: *count,
        }),
        Condition::NoData { periods, duration } => {
            push(Leaf::NoData { periods: *periods, dur: duration.map(Span::as_nanos) })
        }
        Condition::Forecast { property, horizon, op, value } => push(Leaf::Forecast {
            property: property.to_string(),
            horizon: horizon.duration(),
            op: *op,
            value: *value,
        }),
        Condition::Anomaly { property } => push(Leaf::Anomaly { property: property.to_string() }),
        Condition::Indicator { name, op, value } => {
            push(Leaf::Indicator { name: *name, op: *op, value: *value })
        }
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
    /// The properties of its point conditions.
    props: Vec<String>,
    /// How much history its rate conditions need.
    rate_keep: i64,
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
        let rate_keep = leaves
            .iter()
            .map(|l| if let Leaf::Rate { over, .. } = l { *over } else { 0 })
            .max()
            .unwrap_or(0);
        let min_ns = rule.min_duration_ns();
        let mut props: Vec<String> = leaves
            .iter()
            .filter(|l| l.is_point())
            .filter_map(|l| l.property().map(str::to_owned))
            .collect();
        props.sort();
        props.dedup();
        Self { rule, leaves, expr, min_ns, lookback: lookback + min_ns, props, rate_keep }
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

    /// Indices of the point leaves on a property.
    fn leaves_on(&self, property: &str) -> Vec<u16> {
        (0..self.leaves.len())
            .filter(|&i| self.leaves[i].is_point() && self.leaves[i].property() == Some(property))
            .map(|i| i as u16)
            .collect()
    }

    /// The point properties of this rule.
    pub(crate) fn point_properties(&self) -> &[String] {
        &self.props
    }
}

/// What a leaf remembers for one device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct LeafState {
    truth: bool,
    /// Since when the raw condition holds (sustained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_since: Option<i64>,
    /// Completed windows: start → (holds, value). Not saved: re-read from storage each tick.
    #[serde(skip)]
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
    /// What the alert says of the value beyond it (a forecast's interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl KeyState {
    /// Whether it holds anything a restart must not lose (else it need not be saved).
    pub(crate) fn worth_saving(&self) -> bool {
        self.open
            || self.suppressed
            || self.since.is_some()
            || self.leaves.iter().any(|l| l.truth || l.raw_since.is_some())
    }
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

/// Feed one point to the given point leaves of `c` (those on the point's property); `hist`
/// holds the recent points of its series, this one included (for rates).
fn feed_leaves(
    c: &Compiled,
    st: &mut KeyState,
    ix: &[u16],
    property: &str,
    (t, v): (i64, &Value),
    hist: &VecDeque<(i64, f64)>,
) -> bool {
    let hyst = c.rule.hysteresis;
    let mut touched = false;
    if st.leaves.len() != c.leaves.len() {
        st.leaves = vec![LeafState::default(); c.leaves.len()];
    }
    for &i in ix {
        let (leaf, ls) = (&c.leaves[usize::from(i)], &mut st.leaves[usize::from(i)]);
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
                    let change = rate_change(hist, t, x, *over).filter(|c| op.holds(*c, *value));
                    ls.truth = change.is_some();
                    if change.is_some() {
                        st.value = change;
                    }
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
                note: st.note.clone(),
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
/// The scheduled leaves (windows, silence, forecasts, indicators) are not fed by points: they keep
/// the state they have in `current`, so that a late point does not make them forget.
pub(crate) fn replay(
    c: &Compiled,
    key: &str,
    points: &[(i64, String, Value)],
    current: Option<&KeyState>,
) -> (Vec<Episode>, KeyState) {
    let mut st = KeyState::default();
    if let Some(cur) = current.filter(|cur| cur.leaves.len() == c.leaves.len()) {
        st.leaves = vec![LeafState::default(); c.leaves.len()];
        for (i, leaf) in c.leaves.iter().enumerate() {
            if !leaf.is_point() {
                st.leaves[i] = cur.leaves[i].clone();
            }
        }
    }
    let mut episodes: Vec<Episode> = Vec::new();
    let mut out = Vec::new();
    let mut hists: HashMap<&str, VecDeque<(i64, f64)>> = HashMap::new();
    for (t, p, v) in points {
        let hist = hists.entry(p.as_str()).or_default();
        if let (Some(x), true) = (num(v), c.rate_keep > 0) {
            remember(hist, *t, x, c.rate_keep);
        }
        if feed_leaves(c, &mut st, &c.leaves_on(p), p, (*t, v), hist) {
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

/// Whether a point could make a point leaf of `c` on `property` hold. A key at rest (no state)
/// stays at rest when this is false.
fn may_trigger(
    c: &Compiled,
    ix: &[u16],
    (t, v): (i64, &Value),
    hist: &VecDeque<(i64, f64)>,
) -> bool {
    ix.iter().any(|&i| match &c.leaves[usize::from(i)] {
        Leaf::Threshold { op, value, .. } | Leaf::Sustained { op, value, .. } => {
            num(v).is_some_and(|x| op.holds(x, *value))
        }
        Leaf::State { op, value, .. } => same_state(v, value) != (*op == Op::Ne),
        Leaf::Rate { op, value, over, .. } => num(v)
            .and_then(|x| rate_change(hist, t, x, *over))
            .is_some_and(|change| op.holds(change, *value)),
        _ => false,
    })
}

/// What rules make of a series, worked out from the catalog.
fn series_meta(
    catalog: &dyn Catalog,
    s: SeriesId,
    rules: &[Arc<Compiled>],
    by_property: &HashMap<String, Vec<usize>>,
    devices: &mut Devices,
) -> Option<Arc<SeriesMeta>> {
    catalog.series_info(s).and_then(|info| {
        let d = catalog.device(info.device.as_str())?;
        let (kind, site, commune) = placement(&d);
        let candidates: Vec<(usize, Vec<u16>)> = by_property
            .get(info.property.as_str())
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| {
                        rules[i].in_scope(
                            &kind,
                            info.device.as_str(),
                            site.as_deref(),
                            commune.as_deref(),
                        )
                    })
                    .map(|i| (i, rules[i].leaves_on(info.property.as_str())))
                    .collect()
            })
            .unwrap_or_default();
        if candidates.is_empty() {
            return None;
        }
        let watch = Watch::new(
            candidates
                .iter()
                .flat_map(|(i, ix)| ix.iter().map(|l| &rules[*i].leaves[usize::from(*l)])),
        );
        let device_ix = devices.ix(info.device.as_str());
        devices.placed[device_ix as usize] = Some((kind, site, commune));
        Some(Arc::new(SeriesMeta {
            device: Arc::from(info.device.as_str()),
            device_ix,
            property: Arc::from(info.property.as_str()),
            candidates,
            watch,
        }))
    })
}

/// The evaluator: compiled rules, per-(rule, device) states.
///
/// The hot path works on numbers: each series is resolved once to its device's number, the
/// list of rules its points must visit and what would wake them; states are keyed by device
/// number. Only keys that are not at rest have a state: a key whose leaves are all false, with
/// no alert open and nothing pending, is removed, so memory follows the devices that matter.
/// A point of a device with no state that wakes no rule — nearly every point — costs one map
/// lookup and a few comparisons, however many rules look at it.
#[derive(Debug, Default)]
pub(crate) struct Evaluator {
    pub(crate) rules: Vec<Arc<Compiled>>,
    series: IdMap<u32, SeriesEntry>,
    devices: Devices,
    /// Bumped at each change of the rules: series work out their candidates again.
    generation: u64,
    /// The catalog's `devices_version` when devices were last checked for moves.
    devices_version: u64,
    /// Per rule (same order as `rules`): device number → state.
    states: Vec<IdMap<u32, KeyState>>,
    /// Per rule: keys changed since the last save.
    dirty: Vec<IdMap<u32, ()>>,
    /// Rules with point conditions on each property.
    by_property: HashMap<String, Vec<usize>>,
    /// Keys whose state is saved in the store.
    pub(crate) saved: HashSet<(String, String)>,
    /// Whether some rule has a window condition (then stored points are tracked in `touched`).
    has_windows: bool,
    /// Per series: the oldest point stored since the last scheduled tick, so that the tick reads
    /// again only the windows data arrived in.
    touched: IdMap<u32, i64>,
    /// Completed windows of each (rule, device, leaf) as of the last tick.
    window_cache: HashMap<(String, String, usize), CachedWindows>,
    /// End of the last completed window of each (rule, leaf) at the last tick.
    window_ends: HashMap<(String, usize), i64>,
    /// The catalog's `devices_version` at the last scheduled tick.
    tick_devices_version: Option<u64>,
}

/// The completed windows of a window leaf for one device, up to `end`.
#[derive(Debug, Clone)]
struct CachedWindows {
    windows: Windows,
    end: i64,
    /// When they were computed.
    at: i64,
}

/// Late data recomputes an indicator at most once a minute per (rule, device).
const LATE_RECOMPUTE_NS: i64 = 60_000_000_000;

impl Evaluator {
    fn pos(&self, rule: &str) -> Option<usize> {
        self.rules.iter().position(|c| c.rule.id == rule)
    }

    /// Replace the rules; states of rules that changed start afresh.
    pub(crate) fn set_rules(&mut self, rules: Vec<Rule>) {
        let mut old: HashMap<String, (Rule, IdMap<u32, KeyState>)> = HashMap::new();
        for (c, st) in self.rules.iter().zip(std::mem::take(&mut self.states)) {
            old.insert(c.rule.id.clone(), (c.rule.clone(), st));
        }
        self.rules =
            rules.into_iter().filter(|r| r.enabled).map(|r| Arc::new(Compiled::new(r))).collect();
        // Completed windows stay known for the rules that did not change.
        let unchanged: HashSet<String> = self
            .rules
            .iter()
            .filter(|c| old.get(&c.rule.id).is_some_and(|(r, _)| *r == c.rule))
            .map(|c| c.rule.id.clone())
            .collect();
        self.window_cache.retain(|k, _| unchanged.contains(&k.0));
        self.window_ends.retain(|k, _| unchanged.contains(&k.0));
        self.states = self
            .rules
            .iter()
            .map(|c| match old.remove(&c.rule.id) {
                Some((r, st)) if r == c.rule => st,
                // A changed rule keeps knowing which alerts are open, so that it resolves them
                // rather than opening duplicates.
                Some((_, st)) => st
                    .into_iter()
                    .filter(|(_, s)| s.open)
                    .map(|(k, _)| (k, KeyState { open: true, ..Default::default() }))
                    .collect(),
                None => IdMap::default(),
            })
            .collect();
        self.dirty = vec![IdMap::default(); self.rules.len()];
        self.has_windows = self.rules.iter().any(|c| {
            c.leaves.iter().any(|l| matches!(l, Leaf::Window { .. } | Leaf::Indicator { .. }))
        });
        self.devices.held.iter_mut().for_each(|n| *n = 0);
        for k in self.states.iter().flat_map(|m| m.keys()) {
            self.devices.held[*k as usize] += 1;
        }
        self.by_property.clear();
        for (i, c) in self.rules.iter().enumerate() {
            for p in c.point_properties() {
                self.by_property.entry(p.clone()).or_default().push(i);
            }
        }
        // Candidate lists depend on the rules: work them out again as points come (recent
        // points and times are kept).
        self.generation += 1;
    }

    /// Evaluate stored points.
    pub(crate) fn on_points(
        &mut self,
        catalog: &dyn Catalog,
        batch: &[(SeriesId, Timestamp, Value, u8)],
        out: &mut Vec<Transition>,
    ) {
        if self.rules.is_empty() {
            return;
        }
        if self.has_windows {
            // Flagged points too: one may replace a point a window summed.
            for (s, t, ..) in batch {
                let oldest = self.touched.entry(s.0).or_insert(i64::MAX);
                *oldest = (*oldest).min(t.as_nanos());
            }
        }
        for (s, t, v, flags) in batch {
            if *flags != 0 {
                continue;
            }
            let Self { series, rules, states, devices, dirty, by_property, generation, .. } = self;
            let entry = series.entry(s.0).or_default();
            if entry.rules != *generation {
                entry.meta = series_meta(catalog, *s, rules, by_property, devices);
                entry.rules = *generation;
                if let Some(m) = &entry.meta {
                    (entry.device_ix, entry.band) = (m.device_ix, m.watch.band);
                }
            }
            let t = t.as_nanos();
            let late = t < entry.newest;
            entry.newest = entry.newest.max(t);
            let x = num(v);
            let band = entry.band;
            let k = entry.device_ix;
            let held = &mut devices.held;
            let at_rest = held.get(k as usize).is_none_or(|n| *n == 0);
            if at_rest && !late && !band.rates && !band.wakes(x) {
                // The common case: nothing to do, and `meta` not even read.
                continue;
            }
            let Some(meta) = entry.meta.as_deref() else { continue };
            if let (Some(x), true) = (x, band.rates) {
                remember(&mut entry.hist, t, x, meta.watch.keep);
            }
            let hist = &entry.hist;
            // A late point may change the changes measured after it: rate rules replay it.
            let wake_all = late && band.rates;
            if at_rest && !wake_all && !band.wakes(x) && !meta.watch.rate_wakes(x, t, hist) {
                continue;
            }
            for (i, ix) in &meta.candidates {
                let i = *i;
                let c = &rules[i];
                let states = &mut states[i];
                let was = match states.get(&k) {
                    None if !wake_all && !may_trigger(c, ix, (t, v), hist) => continue,
                    None => false,
                    Some(st) => st.worth_saving(),
                };
                if late {
                    out.push(Transition::Late {
                        rule: c.rule.id.clone(),
                        key: meta.device.to_string(),
                        from: t,
                    });
                    continue;
                }
                let st = states.entry(k).or_insert_with(|| {
                    held[k as usize] += 1;
                    KeyState::default()
                });
                feed_leaves(c, st, ix, &meta.property, (t, v), hist);
                st.last_t = t;
                settle(c, &meta.device, st, t, out);
                let now = st.worth_saving();
                if !now {
                    states.remove(&k);
                    held[k as usize] -= 1;
                }
                if was || now {
                    dirty[i].insert(k, ());
                }
            }
        }
    }

    /// Notice devices moved to another kind, site or commune since their series' rules were
    /// worked out: the rules of every series are worked out again (moves are rare), and the
    /// rules that no longer cover a moved device forget it, resolving its open alert at `now`.
    pub(crate) fn refresh_scopes(
        &mut self,
        catalog: &dyn Catalog,
        now: i64,
        out: &mut Vec<Transition>,
    ) {
        let version = catalog.devices_version();
        if version == self.devices_version {
            return;
        }
        self.devices_version = version;
        let mut moved = Vec::new();
        for (k, (name, placed)) in
            self.devices.names.iter().zip(self.devices.placed.iter_mut()).enumerate()
        {
            let Some(seen) = placed else { continue };
            if let Some(p) = catalog.device(name).map(|d| placement(&d)).filter(|p| p != seen) {
                tracing::info!(device = %name, "device moved: its alert rules are worked out again");
                *seen = p;
                moved.push(k as u32);
            }
        }
        if moved.is_empty() {
            return;
        }
        self.generation += 1;
        for k in moved {
            let name = self.devices.names[k as usize].clone();
            let Some((kind, site, commune)) = self.devices.placed[k as usize].clone() else {
                continue;
            };
            for (i, c) in self.rules.iter().enumerate() {
                if c.in_scope(&kind, &name, site.as_deref(), commune.as_deref()) {
                    continue;
                }
                if let Some(st) = self.states[i].remove(&k) {
                    self.devices.held[k as usize] -= 1;
                    self.dirty[i].insert(k, ());
                    if st.open {
                        out.push(Transition::Resolve {
                            rule: c.rule.id.clone(),
                            key: name.to_string(),
                            at: now,
                        });
                    }
                }
            }
        }
    }

    /// The state of a key, created at rest when absent.
    pub(crate) fn state_mut(&mut self, rule: &str, key: &str) -> Option<&mut KeyState> {
        let i = self.pos(rule)?;
        let k = self.devices.ix(key);
        self.dirty[i].insert(k, ());
        let held = &mut self.devices.held[k as usize];
        Some(self.states[i].entry(k).or_insert_with(|| {
            *held += 1;
            KeyState::default()
        }))
    }

    /// Replace a key's state (after a replay, or at start).
    pub(crate) fn set_state(&mut self, rule: &str, key: &str, st: KeyState) {
        if let Some(s) = self.state_mut(rule, key) {
            *s = st;
        }
    }

    /// Mark a key's alert as closed by hand: no new alert until the condition clears.
    pub(crate) fn closed_by_hand(&mut self, rule: &str, key: &str) {
        if let Some(st) = self.state_mut(rule, key) {
            st.open = false;
            st.suppressed = st.since.is_some();
        }
    }

    /// Every state (rule, key, state).
    pub(crate) fn states_mut(&mut self) -> impl Iterator<Item = (&str, &str, &mut KeyState)> {
        let names = &self.devices.names;
        self.rules.iter().zip(self.states.iter_mut()).flat_map(move |(c, m)| {
            m.iter_mut().map(move |(k, s)| (c.rule.id.as_str(), &*names[*k as usize], s))
        })
    }

    /// The keys changed since the last call, with their state when it is worth saving.
    pub(crate) fn take_dirty(&mut self) -> Vec<((String, String), Option<String>)> {
        let mut out = Vec::new();
        for ((c, dirty), states) in self.rules.iter().zip(self.dirty.iter_mut()).zip(&self.states) {
            for (k, ()) in dirty.drain() {
                let st = states
                    .get(&k)
                    .filter(|s| s.worth_saving())
                    .and_then(|s| serde_json::to_string(s).ok());
                out.push(((c.rule.id.clone(), self.devices.names[k as usize].to_string()), st));
            }
        }
        out
    }
}

/// Scheduled evaluation of the leaves that data arrival cannot settle: windows (completed ones,
/// the last 48 re-read each time so late points count), silence, forecasts.
///
/// Completed windows are kept between ticks: a rule with only window conditions visits every
/// device when one of its windows completes, and otherwise only the devices that received points
/// in an already completed window (late data); points in the window still running change
/// nothing until it completes.
pub(crate) async fn tick(
    ev: &parking_lot::Mutex<Evaluator>,
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    forecaster: Option<&dyn crate::Forecaster>,
    indicators: &agora_query::heat::IndicatorsConfig,
    now: i64,
    out: &mut Vec<Transition>,
) {
    let (rules, touched, moved) = {
        let mut e = ev.lock();
        let rules: Vec<Arc<Compiled>> =
            e.rules.iter().filter(|c| c.leaves.iter().any(|l| !l.is_point())).cloned().collect();
        // A device added, moved or changed may enter a rule's scope: visit every device once.
        let version = catalog.devices_version();
        let moved = e.tick_devices_version.replace(version) != Some(version);
        (rules, std::mem::take(&mut e.touched), moved)
    };
    if rules.is_empty() {
        return;
    }
    let devices = catalog.devices(&Default::default());
    for c in rules {
        let visit = if moved { None } else { devices_to_visit(ev, catalog, &c, &touched, now) };
        for d in &devices {
            if visit.as_ref().is_some_and(|v| !v.contains(d.id.as_str())) {
                continue;
            }
            if !c.in_scope(
                d.kind.as_str(),
                d.id.as_str(),
                d.site.as_ref().map(|x| x.as_str()),
                d.commune.as_ref().map(|x| x.as_str()),
            ) {
                continue;
            }
            let mut window_results: Vec<(usize, Windows, bool)> = Vec::new();
            let mut nodata: Vec<(usize, bool, i64)> = Vec::new();
            // The forecast value that made a forecast leaf hold, for the alert it opens.
            let mut forecast_value: Option<(String, f64, f64, f64)> = None;
            let mut applicable = false;
            // A read failed: this device is left as it is and read again at the next tick.
            let mut failed = false;
            for (i, leaf) in c.leaves.iter().enumerate() {
                match leaf {
                    Leaf::Window { property, func, every, op, value, count } => {
                        let Some(s) =
                            catalog.lookup_series(&[(d.id.as_str(), property.as_str())])[0]
                        else {
                            continue;
                        };
                        applicable = true;
                        let f = func.agg_fn();
                        let averaging = catalog.series_info(s).map_or(Averaging::Arithmetic, |x| {
                            Averaging::of(x.property.as_str(), &x.unit, f)
                        });
                        let keep = i64::from(*count) + 47;
                        let last_end = every.floor(Timestamp::from_nanos(now));
                        let back = i64::try_from(every.nominal().as_nanos()).unwrap_or(i64::MAX);
                        let first =
                            every.floor(last_end.saturating_add_nanos(-keep.saturating_mul(back)));
                        // Completed windows are read again only when new ones completed or
                        // points arrived in them (late data) since the last tick.
                        let cache_key = (c.rule.id.clone(), d.id.to_string(), i);
                        let cached = ev.lock().window_cache.get(&cache_key).cloned();
                        let from = match &cached {
                            None => first,
                            Some(w) => {
                                let mut from = Timestamp::from_nanos(w.end);
                                if let Some(t) = touched.get(&s.0) {
                                    from = from.min(every.floor(Timestamp::from_nanos(*t)));
                                }
                                from.max(first)
                            }
                        };
                        // Nothing new: the episodes are the ones already reconciled.
                        let changed = from < last_end;
                        let mut flags = cached.map(|w| w.windows).unwrap_or_default();
                        flags.retain(|k, _| *k >= first.as_nanos() && *k < from.as_nanos());
                        // All the windows to read in one pass over the store (one bucket each).
                        let mut complete = true;
                        if from < last_end {
                            let range = TimeRange { from, to: last_end };
                            match summaries(store, s, range, *every, averaging).await {
                                Ok(parts) => {
                                    for (start, a) in parts.iter().filter(|(_, a)| a.count > 0) {
                                        let v = averaging.value(a, f);
                                        // A window counts only when the rule applies at its
                                        // start (its schedule: night hours for Lnight).
                                        let holds =
                                            op.holds(v, *value) && c.active(start.as_nanos());
                                        flags.insert(start.as_nanos(), (holds, v));
                                    }
                                }
                                Err(_) => complete = false,
                            }
                        }
                        let mut e = ev.lock();
                        if !complete {
                            // Read again at the next tick: mark the series as touched since its
                            // first window.
                            e.window_cache.remove(&cache_key);
                            let t = e.touched.entry(s.0).or_insert(first.as_nanos());
                            *t = (*t).min(first.as_nanos());
                            failed = true;
                            break;
                        }
                        // Computed with the rule as it was when the tick started: kept only if
                        // it was not changed meanwhile.
                        if e.rules.iter().any(|r| Arc::ptr_eq(r, &c)) {
                            let w = CachedWindows {
                                windows: flags.clone(),
                                end: last_end.as_nanos(),
                                at: now,
                            };
                            e.window_cache.insert(cache_key, w);
                        }
                        drop(e);
                        window_results.push((i, flags, changed));
                    }
                    Leaf::Indicator { name, op, value } => {
                        let series = crate::indicators::series(catalog, *name, d.id.as_str());
                        if series.is_empty() {
                            continue;
                        }
                        applicable = true;
                        let until = crate::indicators::completed_until(*name, now);
                        let cache_key = (c.rule.id.clone(), d.id.to_string(), i);
                        let cached = ev.lock().window_cache.get(&cache_key).cloned();
                        // Computed again when a period completed, or when points arrived in
                        // completed ones (late data) since the last tick.
                        let late =
                            series.iter().any(|s| touched.get(&s.0).is_some_and(|t| *t < until));
                        let flags = match cached {
                            Some(w) if w.end == until && !late => {
                                window_results.push((i, w.windows, false));
                                continue;
                            }
                            // Late data again within a minute of the last computation (a device
                            // sending its history): computed once the minute is over, not at
                            // every tick; the points stay marked as arrived meanwhile.
                            Some(w) if w.end == until && now - w.at < LATE_RECOMPUTE_NS => {
                                let mut e = ev.lock();
                                for s in &series {
                                    if let Some(t) = touched.get(&s.0) {
                                        let m = e.touched.entry(s.0).or_insert(*t);
                                        *m = (*m).min(*t);
                                    }
                                }
                                drop(e);
                                window_results.push((i, w.windows, false));
                                continue;
                            }
                            _ => {
                                let got = crate::indicators::periods(
                                    *name, catalog, store, d, until, indicators,
                                )
                                .await;
                                let Ok(periods) = got else {
                                    // Read again at the next tick: every device is visited.
                                    let mut e = ev.lock();
                                    e.window_cache.remove(&cache_key);
                                    e.window_ends.remove(&(c.rule.id.clone(), i));
                                    failed = true;
                                    break;
                                };
                                periods
                                    .into_iter()
                                    .map(|(start, v)| {
                                        (start, (op.holds(v, *value) && c.active(start), v))
                                    })
                                    .collect::<Windows>()
                            }
                        };
                        let mut e = ev.lock();
                        if e.rules.iter().any(|r| Arc::ptr_eq(r, &c)) {
                            let w = CachedWindows { windows: flags.clone(), end: until, at: now };
                            e.window_cache.insert(cache_key, w);
                        }
                        drop(e);
                        window_results.push((i, flags, true));
                    }
                    Leaf::NoData { periods, dur } => {
                        applicable = true;
                        let period = ReportingPeriod::of(d).0.as_secs_f64();
                        let limit =
                            dur.unwrap_or_else(|| (periods.unwrap_or(3.0) * period * 1e9) as i64);
                        let seen = d.last_seen.map_or(d.created_at.as_nanos(), Timestamp::as_nanos);
                        nodata.push((i, now - seen > limit, seen.saturating_add(limit)));
                    }
                    Leaf::Forecast { property, horizon, op, value } => {
                        // Without a forecaster, a forecast never holds.
                        applicable = true;
                        let predicted = forecaster.and_then(|f| {
                            let s =
                                catalog.lookup_series(&[(d.id.as_str(), property.as_str())])[0]?;
                            f.forecast_interval(s, *horizon)
                        });
                        // Unknown (not made yet after a restart, or refused): the leaf keeps its
                        // last state, so that an open alert does not close for want of a forecast.
                        if let Some((p, lo, hi)) = predicted {
                            let holds = op.holds(p, *value);
                            if holds {
                                forecast_value = Some((property.clone(), p, lo, hi));
                            }
                            nodata.push((i, holds, now));
                        }
                    }
                    Leaf::Anomaly { property } => {
                        applicable = true;
                        let found = forecaster.and_then(|f| {
                            let s =
                                catalog.lookup_series(&[(d.id.as_str(), property.as_str())])[0]?;
                            f.anomaly(s)
                        });
                        // Unknown: the leaf keeps its last state, as for forecasts.
                        if let Some(found) = found {
                            nodata.push((i, found, now));
                        }
                    }
                    _ => {}
                }
            }
            // Windows that did not change and no silence or forecast to check: nothing to settle
            // (and no alert to reconcile: that reads the alert store).
            if failed || !applicable || (nodata.is_empty() && window_results.iter().all(|w| !w.2)) {
                continue;
            }
            let key = d.id.to_string();
            let mut e = ev.lock();
            let Some(st) = e.state_mut(&c.rule.id, &key) else { continue };
            if st.leaves.len() != c.leaves.len() {
                st.leaves = vec![LeafState::default(); c.leaves.len()];
            }
            // When the condition changed: the end of the latest period read (each leaf's), or
            // now without one.
            let mut latest_end: Option<i64> = None;
            for (i, flags, _) in window_results {
                let (count, property) = match &c.leaves[i] {
                    Leaf::Window { count, property, .. } => (*count as usize, property.clone()),
                    Leaf::Indicator { name, .. } => (1, name.as_str().to_owned()),
                    _ => continue,
                };
                let end_of = |start: i64| match &c.leaves[i] {
                    Leaf::Window { every, .. } => {
                        every.end(Timestamp::from_nanos(start)).as_nanos()
                    }
                    Leaf::Indicator { name, .. } => crate::indicators::period_end(*name, start),
                    _ => start,
                };
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
                    let end = end_of(start);
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
                // An alert opened before the periods read (a gap longer than the look-back) is
                // not among the episodes: the first period that does not hold ends it.
                let first_start = flags.keys().next().copied();
                let before = st.since.zip(first_start).is_none_or(|(since, first)| since < first);
                let stale_end = (st.open && before && c.leaves.len() == 1)
                    .then(|| {
                        let first_holds = flags.values().next().is_some_and(|f| f.0);
                        let first_break =
                            flags.iter().find(|(_, f)| !f.0).map(|(start, _)| end_of(*start));
                        if first_holds { None } else { first_break }
                    })
                    .flatten();
                st.leaves[i].truth = holds_now;
                st.leaves[i].windows = flags;
                latest_end = latest_end.max(prev_end);
                if c.leaves.len() == 1 {
                    let range_from = st.leaves[i].windows.keys().next().copied().unwrap_or(now);
                    if let Some(at) = stale_end {
                        out.push(Transition::Resolve {
                            rule: c.rule.id.clone(),
                            key: key.clone(),
                            at,
                        });
                    }
                    st.open = holds_now;
                    st.since = episodes.last().filter(|e| e.1.is_none()).map(|e| e.0);
                    out.push(Transition::Episodes {
                        rule: c.rule.id.clone(),
                        key: key.clone(),
                        episodes,
                        range_from,
                        property,
                    });
                }
            }
            let mut at = latest_end.unwrap_or(now);
            if let Some((property, v, lo, hi)) = forecast_value {
                st.value = Some(v);
                st.property = Some(property);
                st.note = (lo.is_finite() && hi.is_finite()).then(|| {
                    let r = |x: f64| (x * 10.0).round() / 10.0;
                    format!("prévision, intervalle à 95 % : {} à {}", r(lo), r(hi))
                });
            }
            // Silence and forecasts: (leaf, holds, since when).
            for (i, silent, since) in nodata {
                st.leaves[i].truth = silent;
                if silent {
                    at = since;
                }
            }
            if c.leaves.len() > 1
                || matches!(
                    c.leaves[0],
                    Leaf::NoData { .. } | Leaf::Forecast { .. } | Leaf::Anomaly { .. }
                )
            {
                settle(&c, &key, st, at.min(now), out);
            }
        }
    }
}

/// The devices a tick must visit for a rule: all of them (`None`) when it watches silence or
/// forecasts, or when one of its windows completed since the last tick; otherwise only those with
/// points stored in an already completed window since the last tick.
fn devices_to_visit(
    ev: &parking_lot::Mutex<Evaluator>,
    catalog: &dyn Catalog,
    c: &Compiled,
    touched: &IdMap<u32, i64>,
    now: i64,
) -> Option<HashSet<String>> {
    let mut ends = Vec::new();
    for (i, leaf) in c.leaves.iter().enumerate() {
        match leaf {
            Leaf::Window { every, .. } => {
                ends.push((i, every.floor(Timestamp::from_nanos(now)).as_nanos()));
            }
            Leaf::Indicator { name, .. } => {
                ends.push((i, crate::indicators::completed_until(*name, now)));
            }
            Leaf::NoData { .. } | Leaf::Forecast { .. } | Leaf::Anomaly { .. } => return None,
            _ => {}
        }
    }
    let mut e = ev.lock();
    let mut completed = false;
    for (i, end) in &ends {
        let seen = e.window_ends.insert((c.rule.id.clone(), *i), *end);
        completed |= seen != Some(*end);
    }
    drop(e);
    if completed {
        return None;
    }
    let latest_end = ends.iter().map(|(_, end)| *end).max()?;
    let late: Vec<SeriesId> =
        touched.iter().filter(|(_, t)| **t < latest_end).map(|(s, _)| SeriesId(*s)).collect();
    Some(
        late.into_iter()
            .filter_map(|s| catalog.series_info(s))
            .map(|i| i.device.to_string())
            .collect(),
    )
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
        replay(c, "d", &p, None).0
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

    /// When an alert opened and, if it did, resolved.
    type Span = (i64, Option<i64>);

    /// A small deterministic generator for the randomized comparison below.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    /// A random point condition; `==` and `!=` (which wake on every point) are rarer, rates
    /// hold on large changes only, so that most points leave most rules at rest.
    fn random_leaf(g: &mut Lcg) -> serde_json::Value {
        let property = ["pm10", "no2"][g.below(2) as usize];
        let op = [">", ">=", "<", "<=", ">", "<", "==", "!="][g.below(8) as usize];
        // The data walk between 0 and 100 around 50: limits near the edges are seldom crossed.
        let (value, change) = match op {
            ">" | ">=" => (60.0 + g.below(40) as f64, 10.0 + g.below(30) as f64),
            "<" | "<=" => (g.below(40) as f64, -10.0 - g.below(30) as f64),
            _ => (g.below(100) as f64, g.below(21) as f64 - 10.0),
        };
        match g.below(3) {
            0 => serde_json::json!({"threshold": {"property": property, "op": op, "value": value}}),
            1 => {
                serde_json::json!({"sustained": {"property": property, "op": op, "value": value, "for": "3m"}})
            }
            _ => {
                serde_json::json!({"rate": {"property": property, "op": op, "value": change, "over": "5m"}})
            }
        }
    }

    /// The live path skips the points that wake no rule at rest; the replay feeds every point.
    /// Over random rules (every operator, thresholds, sustained levels, rates, combinations,
    /// hysteresis, minimum durations) and random data, both must give the same alerts.
    #[tokio::test]
    async fn live_evaluation_gives_what_feeding_every_point_gives() {
        use agora_model::ValueKind;
        use agora_store::catalog::{Device, SqliteCatalog};
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
        let devices = ["aq-1", "aq-2", "aq-3"];
        let mut ids = Vec::new();
        for d in devices {
            catalog
                .upsert_device(Device {
                    id: d.parse().unwrap(),
                    kind: "air_quality".parse().unwrap(),
                    name: None,
                    site: None,
                    commune: None,
                    lat: None,
                    lon: None,
                    metadata: serde_json::json!({}),
                    created_at: Timestamp::from_nanos(0),
                    last_seen: None,
                })
                .await
                .unwrap();
            for p in ["pm10", "no2"] {
                let s = catalog
                    .create_series(
                        &d.parse().unwrap(),
                        &p.parse().unwrap(),
                        ValueKind::Float,
                        "ug/m3",
                        None,
                    )
                    .await
                    .unwrap();
                ids.push((d, p, s.id));
            }
        }
        let m = 60_000_000_000;
        let mut g = Lcg(7);
        let mut opened = 0;
        for case in 0..300 {
            let rules: Vec<Rule> = (0..1 + g.below(5))
                .map(|i| {
                    let condition = match g.below(4) {
                        0 => serde_json::json!({"all": [random_leaf(&mut g), random_leaf(&mut g)]}),
                        1 => serde_json::json!({"any": [random_leaf(&mut g), random_leaf(&mut g)]}),
                        _ => random_leaf(&mut g),
                    };
                    let hysteresis = [0.0, 5.0][g.below(2) as usize];
                    let mut r = serde_json::json!({"id": format!("r{i}"), "condition": condition,
                        "scope": {"kind": "air_quality"}, "hysteresis": hysteresis});
                    if g.below(3) == 0 {
                        r["min_duration"] = serde_json::json!("2m");
                    }
                    serde_json::from_value(r).unwrap()
                })
                .collect();
            let mut ev = Evaluator::default();
            ev.set_rules(rules.clone());
            // A random walk per series, points in time order, interleaved.
            let mut level: Vec<f64> = ids.iter().map(|_| 30.0 + g.below(40) as f64).collect();
            let mut batch = Vec::new();
            for step in 0..60 {
                for (j, (_, _, s)) in ids.iter().enumerate() {
                    level[j] = (level[j] + g.below(21) as f64 - 10.0).clamp(0.0, 100.0);
                    level[j] += ((50.0 - level[j]) / 10.0).round();
                    batch.push((*s, Timestamp::from_nanos(step * m), Value::F64(level[j]), 0u8));
                }
            }
            let mut out = Vec::new();
            for (n, chunk) in batch.chunks(17).enumerate() {
                if n == 10 {
                    // The same rules again, as after an edit of another rule: states and recent
                    // points are kept, candidates worked out anew.
                    ev.set_rules(rules.clone());
                }
                ev.on_points(&catalog, chunk, &mut out);
            }
            let mut live: BTreeMap<(String, String), Vec<Span>> = BTreeMap::new();
            for tr in out {
                match tr {
                    Transition::Open { rule, key, at, .. } => {
                        live.entry((rule, key)).or_default().push((at, None));
                    }
                    Transition::Resolve { rule, key, at } => {
                        let e = live.entry((rule, key)).or_default();
                        e.last_mut().expect("resolved after opened").1 = Some(at);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            for c in &ev.rules {
                for d in devices {
                    let points: Vec<(i64, String, Value)> = batch
                        .iter()
                        .filter_map(|(s, t, v, _)| {
                            let (dev, p, _) = ids.iter().find(|x| x.2 == *s)?;
                            (*dev == d).then(|| (t.as_nanos(), (*p).to_owned(), v.clone()))
                        })
                        .collect();
                    let want: Vec<Span> =
                        replay(c, d, &points, None).0.into_iter().map(|e| (e.0, e.1)).collect();
                    let got = live.remove(&(c.rule.id.clone(), d.to_owned())).unwrap_or_default();
                    assert_eq!(got, want, "case {case}, rule {:?}, device {d}", c.rule.condition);
                    opened += want.len();
                }
            }
        }
        assert!(opened > 300, "the random rules open alerts ({opened})");
    }

    /// Pieces of rules, good and bad, from which random rules are put together.
    const DURATIONS: [&str; 9] =
        ["30s", "15m", "1h", "1d", "0s", "366d", "367d", "x", "9999999999999999999w"];
    const NUMBERS: [f64; 7] = [0.0, -1.0, 180.0, 1e308, -1e308, f64::MIN_POSITIVE, 55.5];

    fn random_condition(g: &mut Lcg, depth: u32) -> serde_json::Value {
        let pick = |g: &mut Lcg, v: &[&str]| v[g.below(v.len() as u64) as usize].to_owned();
        let property = pick(g, &["o3", "laeq", "lamp_status", "nope", ""]);
        let op = pick(g, &[">", "<=", "==", "!=", "=>"]);
        let value = NUMBERS[g.below(NUMBERS.len() as u64) as usize];
        let d = DURATIONS[g.below(DURATIONS.len() as u64) as usize];
        match g.below(if depth > 2 { 7 } else { 9 }) {
            0 => serde_json::json!({"threshold": {"property": property, "op": op, "value": value}}),
            1 => {
                serde_json::json!({"state": {"property": property, "op": op, "value": pick(g, &["defectiveLamp", ""])}})
            }
            2 => {
                serde_json::json!({"sustained": {"property": property, "op": op, "value": value, "for": d}})
            }
            3 => {
                serde_json::json!({"rate": {"property": property, "op": op, "value": value, "over": d}})
            }
            4 => serde_json::json!({"window": {"property": property, "op": op, "value": value,
                "every": d, "fn": pick(g, &["mean", "max", "min"]), "count": g.below(4),
                "tz": pick(g, &["Europe/Paris", "Mars/Olympus"])}}),
            5 => serde_json::json!({"no_data": {"for": d}}),
            6 => {
                serde_json::json!({"forecast": {"property": property, "op": op, "value": value, "horizon": d}})
            }
            7 => {
                serde_json::json!({"all": (0..g.below(3)).map(|_| random_condition(g, depth + 1)).collect::<Vec<_>>()})
            }
            _ => {
                serde_json::json!({"any": (0..g.below(3)).map(|_| random_condition(g, depth + 1)).collect::<Vec<_>>()})
            }
        }
    }

    /// Any rule a client may send is either refused with a message or evaluates without
    /// panicking, on numbers, states, extreme values and out-of-order times.
    #[test]
    fn random_rules_are_refused_or_evaluate() {
        let known = |p: &str| ["o3", "laeq", "lamp_status"].contains(&p);
        let mut g = Lcg(11);
        let (mut valid, mut refused) = (0, 0);
        for _ in 0..3_000 {
            let mut r = serde_json::json!({"id": "r", "condition": random_condition(&mut g, 0)});
            if g.below(2) == 0 {
                r["min_duration"] = serde_json::json!(DURATIONS[g.below(9) as usize]);
            }
            if g.below(3) == 0 {
                let from = ["22:00", "25:00", "06:00"][g.below(3) as usize];
                let day = ["mon", "lundi"][g.below(2) as usize];
                r["schedule"] = serde_json::json!({"from": from, "to": "06:00", "days": [day]});
            }
            let hysteresis = [0.0, 2.5, -1.0][g.below(3) as usize];
            r["hysteresis"] = serde_json::json!(hysteresis);
            let rule: Rule = match serde_json::from_value(r) {
                Ok(x) => x,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    refused += 1;
                    continue;
                }
            };
            if let Err(e) = rule.check(&known) {
                assert!(!e.0.is_empty());
                refused += 1;
                continue;
            }
            valid += 1;
            let c = Compiled::new(rule);
            let points: Vec<(i64, String, Value)> = (0..40)
                .map(|i| {
                    let t = (g.below(100) as i64 - 50) * 60_000_000_000 + i64::from(i);
                    let v = match g.below(4) {
                        0 => Value::F64(NUMBERS[g.below(7) as usize]),
                        1 => Value::Str("defectiveLamp".into()),
                        2 => Value::Bool(true),
                        _ => Value::F64(g.below(300) as f64),
                    };
                    (t, ["o3", "laeq", "lamp_status"][g.below(3) as usize].to_owned(), v)
                })
                .collect();
            let _ = replay(&c, "d", &points, None);
        }
        assert!(
            valid > 300 && refused > 300,
            "both kinds are exercised: {valid} valid, {refused} refused"
        );
    }
}
