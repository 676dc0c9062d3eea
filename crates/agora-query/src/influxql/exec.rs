//! Answering InfluxQL statements over agora's model: measurements are the device kinds that have
//! series, the tags are `device`, `site` and `commune`, fields are the properties the devices of
//! a kind have series for. Aggregates go through [`summaries`](crate::summaries) (energy means
//! for sound levels, hourly rollups for whole hours) within the raw-point [`Budget`]; raw points
//! through the store's reads. Empty buckets are gaps, answered as `fill` says (null by default),
//! never as zeros — except for `count`, whose empty bucket counts 0 points, as InfluxDB answers.
//!
//! The statements of one request share one [`Context`]: one snapshot of the catalog, one
//! raw-point budget, one cap on the values answered (times included) and one deadline, checked
//! between devices and series. Each cap is checked before the work it bounds, from what the
//! statement asks (buckets × series × columns, the rows `LIMIT` needs), so that a query over the
//! limits is refused before it allocates, with a message naming the limit.
//!
//! Not done as InfluxDB does, and why: `tz()` moves the buckets of whole days to local midnight
//! and is applied when times are written out, but buckets shorter than a day stay aligned on the
//! UTC epoch (the same for zones whose offset is a whole number of hours and intervals that
//! divide an hour); `min`/`max` without `GROUP BY time` answer the range's start as their time,
//! not the time of the extreme point (rollups do not keep it); `time` conditions in `SHOW`
//! statements are ignored (the catalog lists devices, not when they reported).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agora_model::{Timestamp, Value, ValueKind};
use agora_store::catalog::{Device, DeviceFilter, SeriesInfo};
use agora_store::{Agg, AggFn, Catalog, SeriesStore};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::{
    Expr, Fill, GroupTime, Hint, Op, Regex, Select, ShowFieldKeys, ShowMeasurements, ShowTagKeys,
    ShowTagValues, Source, Statement, TagDimension,
};
use crate::summary::merge_into;
use crate::{Averaging, Budget, Error, Every, Result, TimeRange, summaries};

/// The tags every measurement can have, sorted: where line protocol puts a device.
const TAG_KEYS: [&str; 3] = ["commune", "device", "site"];
/// The most time buckets one series may have.
const MAX_BUCKETS: i64 = 100_000;
const DAY_NS: i64 = 86_400_000_000_000;

/// What the statements of a request are answered from, and the limits they share.
pub struct ContextArgs<'a> {
    /// Devices, places and series.
    pub catalog: &'a dyn Catalog,
    /// The points.
    pub store: &'a dyn SeriesStore,
    /// What `now()` is.
    pub now: Timestamp,
    /// The most raw points the statements may decode, all together.
    pub budget: Budget,
    /// The most rows of raw points one series may have (beyond it the statement is refused,
    /// saying to add `LIMIT` or narrow the range).
    pub max_rows: usize,
    /// The most values (cells, times included) the statements may answer, all together.
    pub max_cells: usize,
    /// When the request must be over.
    pub deadline: Deadline,
    /// The canonical name of a property or alias (`PM2.5` → `pm2_5`), when known.
    pub canonical: &'a (dyn Fn(&str) -> Option<String> + Send + Sync),
}

impl std::fmt::Debug for ContextArgs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextArgs")
            .field("now", &self.now)
            .field("budget", &self.budget)
            .field("max_rows", &self.max_rows)
            .field("max_cells", &self.max_cells)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What the statements of one request are answered from: the sources and limits of
/// [`ContextArgs`], one snapshot of the catalog taken when first needed, and what the statements
/// so far have used of the budgets.
pub struct Context<'a> {
    catalog: &'a dyn Catalog,
    store: &'a dyn SeriesStore,
    now: Timestamp,
    budget: Budget,
    max_rows: usize,
    max_cells: usize,
    deadline: Deadline,
    canonical: &'a (dyn Fn(&str) -> Option<String> + Send + Sync),
    meta: OnceLock<Meta>,
    /// Raw points counted against the budget so far.
    raw_points: AtomicU64,
    /// Values answered so far.
    cells: AtomicUsize,
}

impl<'a> Context<'a> {
    /// A context for one request's statements.
    pub fn new(args: ContextArgs<'a>) -> Self {
        let ContextArgs { catalog, store, now, budget, max_rows, max_cells, deadline, canonical } =
            args;
        Self {
            catalog,
            store,
            now,
            budget,
            max_rows,
            max_cells,
            deadline,
            canonical,
            meta: OnceLock::new(),
            raw_points: AtomicU64::new(0),
            cells: AtomicUsize::new(0),
        }
    }

    /// The catalog as this request sees it, loaded once for all its statements.
    fn meta(&self) -> &Meta {
        self.meta.get_or_init(|| Meta::load(self.catalog))
    }

    /// Values the statements may still answer.
    fn cells_left(&self) -> usize {
        self.max_cells.saturating_sub(self.cells.load(Ordering::Relaxed))
    }

    /// Count `n` values answered, or refuse them past the cap.
    fn spend_cells(&self, n: usize) -> Result<()> {
        let left = self.cells_left();
        if n > left {
            return Err(too_many_cells(self, n, left));
        }
        self.cells.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Count `n` raw points about to be decoded, or refuse them past the budget.
    fn spend_raw(&self, n: u64) -> Result<()> {
        let used = self.raw_points.load(Ordering::Relaxed).saturating_add(n);
        if used > self.budget.max_points {
            return Err(over_budget(self));
        }
        self.raw_points.store(used, Ordering::Relaxed);
        Ok(())
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("budget", &self.budget)
            .field("max_rows", &self.max_rows)
            .field("max_cells", &self.max_cells)
            .field("deadline", &self.deadline)
            .field("raw_points", &self.raw_points)
            .field("cells", &self.cells)
            .finish_non_exhaustive()
    }
}

/// When a request must be over: its statements stop between devices and series once it has
/// passed, each answering a statement error.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The instant (`None`: too far to represent, never).
    at: Option<Instant>,
    /// How long the request was given, for the message.
    limit: Duration,
}

impl Deadline {
    /// `limit` from now. `Duration::ZERO` is a deadline already past.
    pub fn after(limit: Duration) -> Self {
        Self { at: Instant::now().checked_add(limit), limit }
    }

    /// Refuse to go on once the deadline has passed.
    fn check(&self) -> Result<()> {
        match self.at {
            Some(at) if Instant::now() >= at => Err(Error::TooLarge(format!(
                "query took longer than {} s: use a shorter range, fewer devices (WHERE on \
                 device, site or commune), fewer or shorter regexes, or a longer GROUP BY time() \
                 interval",
                self.limit.as_secs_f64()
            ))),
            _ => Ok(()),
        }
    }
}

/// One value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing (an empty bucket, a missing field).
    Null,
    /// An instant (the `time` column).
    Time(Timestamp),
    /// A number.
    Float(f64),
    /// A whole number (counts, integer fields).
    Integer(i64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
}

/// One series of an answer: InfluxDB's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The measurement (or `measurements`, `databases`); absent for retention policies.
    pub name: Option<String>,
    /// The `GROUP BY` tags and their values.
    pub tags: Option<BTreeMap<String, String>>,
    /// Column names; `time` first when there is one.
    pub columns: Vec<String>,
    /// Rows.
    pub values: Vec<Vec<Cell>>,
}

/// The answer to one statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Its series (none: nothing matched).
    pub series: Vec<Series>,
    /// The `tz()` its times are written in.
    pub tz: Option<Tz>,
}

/// Answer one statement of the request `ctx` is for; what it answers counts against the
/// request's caps.
pub async fn execute(ctx: &Context<'_>, stmt: &Statement) -> Result<Answer> {
    ctx.deadline.check()?;
    let answer = statement(ctx, stmt).await?;
    ctx.spend_cells(cells_of(&answer.series))?;
    Ok(answer)
}

/// The values of some series, times included.
fn cells_of(series: &[Series]) -> usize {
    series.iter().map(|s| s.values.iter().map(Vec::len).sum::<usize>()).sum()
}

async fn statement(ctx: &Context<'_>, stmt: &Statement) -> Result<Answer> {
    let meta = || ctx.meta();
    let series = match stmt {
        Statement::ShowDatabases => vec![Series {
            name: Some("databases".into()),
            tags: None,
            columns: vec!["name".into()],
            values: vec![vec![Cell::Str("agora".into())]],
        }],
        Statement::ShowRetentionPolicies { .. } => vec![Series {
            name: None,
            tags: None,
            columns: ["name", "duration", "shardGroupDuration", "replicaN", "default"]
                .map(String::from)
                .to_vec(),
            values: vec![vec![
                Cell::Str("autogen".into()),
                Cell::Str("0s".into()),
                Cell::Str("168h0m0s".into()),
                Cell::Integer(1),
                Cell::Bool(true),
            ]],
        }],
        Statement::CreateDatabase { .. } => Vec::new(),
        Statement::ShowMeasurements(s) => show_measurements(ctx, meta(), s)?,
        Statement::ShowTagKeys(s) => show_tag_keys(ctx, meta(), s)?,
        Statement::ShowTagValues(s) => show_tag_values(ctx, meta(), s)?,
        Statement::ShowFieldKeys(s) => show_field_keys(meta(), s),
        Statement::Select(s) => {
            return Ok(Answer { series: select(ctx, meta(), s).await?, tz: s.tz });
        }
    };
    Ok(Answer { series, tz: None })
}

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(msg.into()))
}

/// The catalog as one request sees it.
struct Meta {
    /// Devices with at least one series, sorted by id.
    devices: Vec<Device>,
    /// Series by device id.
    series: HashMap<String, Vec<SeriesInfo>>,
}

impl Meta {
    fn load(catalog: &dyn Catalog) -> Self {
        let mut series: HashMap<String, Vec<SeriesInfo>> = HashMap::new();
        for s in catalog.all_series() {
            series.entry(s.device.as_str().to_owned()).or_default().push(s);
        }
        let devices = catalog
            .devices(&DeviceFilter::default())
            .into_iter()
            .filter(|d| series.contains_key(d.id.as_str()))
            .collect();
        Self { devices, series }
    }

    /// Measurements present: kinds of devices with series.
    fn kinds(&self) -> BTreeSet<String> {
        self.devices.iter().map(|d| d.kind.as_str().to_owned()).collect()
    }

    /// The measurements sources name (all when none), sorted.
    fn measurements(&self, sources: &[Source]) -> Vec<String> {
        let kinds = self.kinds();
        if sources.is_empty() {
            return kinds.into_iter().collect();
        }
        kinds.into_iter().filter(|k| sources.iter().any(|s| s.measurement.matches(k))).collect()
    }

    fn devices_of(&self, kind: &str) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(move |d| d.kind.as_str() == kind)
    }

    fn series_of(&self, device: &Device) -> &[SeriesInfo] {
        self.series.get(device.id.as_str()).map_or(&[], Vec::as_slice)
    }

    /// The fields of a measurement: properties its devices have series for, with their kinds.
    fn fields(&self, kind: &str) -> BTreeMap<String, ValueKind> {
        let mut out = BTreeMap::new();
        for d in self.devices_of(kind) {
            for s in self.series_of(d) {
                out.entry(s.property.as_str().to_owned()).or_insert(s.kind);
            }
        }
        out
    }

    /// The series of a device's property.
    fn series(&self, device: &Device, property: &str) -> Option<&SeriesInfo> {
        self.series_of(device).iter().find(|s| s.property.as_str() == property)
    }

    /// The devices of a measurement that pass a condition on tags.
    fn matching(&self, ctx: &Context<'_>, kind: &str, cond: Option<&Expr>) -> Result<Vec<&Device>> {
        let Some(cond) = cond else { return Ok(self.devices_of(kind).collect()) };
        let fields = self.fields(kind);
        check_condition(ctx, cond, &fields)?;
        let mut memo = Matches::default();
        let mut out = Vec::new();
        for d in self.devices_of(kind) {
            ctx.deadline.check()?;
            if eval_condition(cond, d, &mut memo) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The tag keys the devices have.
    fn tag_keys(devices: &[&Device]) -> Vec<&'static str> {
        TAG_KEYS
            .into_iter()
            .filter(|k| devices.iter().any(|d| !tag_value(d, k).is_empty()))
            .collect()
    }
}

/// A device's value of a tag (`""` when it has none, as InfluxDB answers a missing tag).
fn tag_value<'a>(d: &'a Device, key: &str) -> &'a str {
    match key {
        "device" => d.id.as_str(),
        "site" => d.site.as_ref().map_or("", |s| s.as_str()),
        "commune" => d.commune.as_ref().map_or("", |c| c.as_str()),
        _ => "",
    }
}

fn canonical(ctx: &Context<'_>, name: &str) -> String {
    (ctx.canonical)(name).unwrap_or_else(|| name.to_owned())
}

/// Whether a name in a condition is a field: a `::field` hint, or a property of the measurement
/// that is not one of the tags. Any other name is a tag (an unknown one has the value `""`).
fn is_field(
    ctx: &Context<'_>,
    name: &str,
    hint: Option<Hint>,
    fields: &BTreeMap<String, ValueKind>,
) -> bool {
    match hint {
        Some(Hint::Tag) => false,
        Some(Hint::Field | Hint::Type) => true,
        None => !TAG_KEYS.contains(&name) && fields.contains_key(&canonical(ctx, name)),
    }
}

fn is_time(e: &Expr) -> bool {
    matches!(e, Expr::Var { name, .. } if name.eq_ignore_ascii_case("time"))
}

fn mentions_time(e: &Expr) -> bool {
    match e {
        Expr::Binary { lhs, rhs, .. } => mentions_time(lhs) || mentions_time(rhs),
        Expr::Paren(e) => mentions_time(e),
        e => is_time(e),
    }
}

/// The time range of a condition: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, Default)]
struct Bounds {
    from: Option<i64>,
    to: Option<i64>,
}

/// Split a condition into its time bounds and the rest (tags), which must be combined with AND
/// at the top, as InfluxDB requires.
fn split_condition(cond: Option<&Expr>, now: Timestamp) -> Result<(Option<Expr>, Bounds)> {
    let mut bounds = Bounds::default();
    let mut rest = Vec::new();
    if let Some(c) = cond {
        split(c, now, &mut bounds, &mut rest)?;
    }
    let rest = rest.into_iter().reduce(|a, b| Expr::Binary {
        op: Op::And,
        lhs: Box::new(a),
        rhs: Box::new(b),
    });
    Ok((rest, bounds))
}

fn split(e: &Expr, now: Timestamp, b: &mut Bounds, rest: &mut Vec<Expr>) -> Result<()> {
    match e {
        Expr::Binary { op: Op::And, lhs, rhs } => {
            split(lhs, now, b, rest)?;
            split(rhs, now, b, rest)
        }
        Expr::Paren(inner) if mentions_time(inner) => split(inner, now, b, rest),
        Expr::Binary { op, lhs, rhs } if op.is_comparison() && (is_time(lhs) || is_time(rhs)) => {
            // `value op time` reads as `time op' value`.
            let (op, value) = if is_time(lhs) {
                (*op, &**rhs)
            } else {
                let flipped = match op {
                    Op::Lt => Op::Gt,
                    Op::Lte => Op::Gte,
                    Op::Gt => Op::Lt,
                    Op::Gte => Op::Lte,
                    o => *o,
                };
                (flipped, &**lhs)
            };
            let v = time_value(value, now)?;
            let (from, to) = match op {
                Op::Gt => (Some(v.saturating_add(1)), None),
                Op::Gte => (Some(v), None),
                Op::Lt => (None, Some(v)),
                Op::Lte => (None, Some(v.saturating_add(1))),
                Op::Eq => (Some(v), Some(v.saturating_add(1))),
                _ => {
                    return invalid(
                        "time can be compared with >, >=, <, <= and = only (not !=, =~ or !~)",
                    );
                }
            };
            if let Some(f) = from {
                b.from = Some(b.from.map_or(f, |x| x.max(f)));
            }
            if let Some(t) = to {
                b.to = Some(b.to.map_or(t, |x| x.min(t)));
            }
            Ok(())
        }
        e if mentions_time(e) => invalid(
            "time conditions must be combined with the rest by AND (not OR), e.g. \
             (\"device\" = 'a' OR \"device\" = 'b') AND time >= now() - 6h",
        ),
        e => {
            rest.push(e.clone());
            Ok(())
        }
    }
}

/// An instant in a time condition, in nanoseconds since the epoch: `now()`, `now() - 6h`, an
/// epoch with a unit (`1700000000000ms`), bare nanoseconds, or a date-time in quotes.
fn time_value(e: &Expr, now: Timestamp) -> Result<i64> {
    let bad = || {
        invalid(
            "bad time in a condition: use now() - 6h, an epoch with a unit (1700000000000ms), \
             nanoseconds, or an RFC 3339 time in single quotes",
        )
    };
    match e {
        Expr::Duration(ns) | Expr::Integer(ns) => Ok(*ns),
        Expr::Float(f) if f.is_finite() => Ok(*f as i64),
        Expr::Str(s) => parse_instant(s).ok_or(()).or_else(|()| {
            invalid(format!(
                "bad time {s:?}: use RFC 3339 ('2026-01-01T00:00:00Z') or '2026-01-01 00:00:00'"
            ))
        }),
        Expr::Call { name, args } if name == "now" && args.is_empty() => Ok(now.as_nanos()),
        Expr::Paren(inner) => time_value(inner, now),
        Expr::Binary { op: op @ (Op::Add | Op::Sub), lhs, rhs } => {
            let (a, b) = (time_value(lhs, now)?, time_value(rhs, now)?);
            let v = if *op == Op::Add { a.checked_add(b) } else { a.checked_sub(b) };
            v.map_or_else(
                || {
                    invalid(format!(
                        "time {} out of range: times run from 1677-09-21 to 2262-04-11",
                        describe(e)
                    ))
                },
                Ok,
            )
        }
        _ => bad(),
    }
}

/// RFC 3339, or InfluxQL's other forms: `2026-01-01 00:00:00[.fff]` and `2026-01-01` (UTC).
fn parse_instant(s: &str) -> Option<i64> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Some(t.as_nanos());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?.and_hms_opt(0, 0, 0))?;
    naive.and_utc().timestamp_nanos_opt()
}

/// Refuse what a tag condition cannot be: conditions on fields, comparisons of two names,
/// arithmetic.
fn check_condition(
    ctx: &Context<'_>,
    e: &Expr,
    fields: &BTreeMap<String, ValueKind>,
) -> Result<()> {
    match e {
        Expr::Paren(inner) => check_condition(ctx, inner, fields),
        Expr::Binary { op: Op::And | Op::Or, lhs, rhs } => {
            check_condition(ctx, lhs, fields)?;
            check_condition(ctx, rhs, fields)
        }
        Expr::Bool(_) => Ok(()),
        Expr::Binary { op, lhs, rhs } if op.is_comparison() => {
            let (name, hint, value) = match (&**lhs, &**rhs) {
                (Expr::Var { name, hint }, v) | (v, Expr::Var { name, hint })
                    if !matches!(v, Expr::Var { .. }) =>
                {
                    (name, *hint, v)
                }
                (Expr::Var { .. }, Expr::Var { .. }) => {
                    return invalid(
                        "a condition compares two names: put values in single quotes, e.g. \
                         \"device\" = 'aq-01' (double quotes name a tag or field)",
                    );
                }
                _ => return invalid(format!("unsupported condition {}", describe(e))),
            };
            if is_field(ctx, name, hint, fields) {
                return invalid(format!(
                    "conditions on fields ({name}) are not supported: filter on the tags device, \
                     site and commune, and on time"
                ));
            }
            match value {
                Expr::Str(_)
                | Expr::Regex(_)
                | Expr::Integer(_)
                | Expr::Float(_)
                | Expr::Bool(_) => Ok(()),
                _ => invalid(format!("unsupported condition {}", describe(e))),
            }
        }
        _ => invalid(format!("unsupported condition {}", describe(e))),
    }
}

/// What the regexes of a condition answered, by regex and tag value: each regex is matched
/// once per distinct value (a site's or a commune's is shared by many devices).
#[derive(Default)]
struct Matches<'a> {
    known: HashMap<(*const Regex, &'a str), bool>,
    /// Regex matches run (the rest were known).
    runs: usize,
}

impl<'a> Matches<'a> {
    fn is_match(&mut self, r: &Regex, text: &'a str) -> bool {
        *self.known.entry((std::ptr::from_ref(r), text)).or_insert_with(|| {
            self.runs += 1;
            r.is_match(text)
        })
    }
}

/// Whether a device passes a checked condition on tags.
fn eval_condition<'a>(e: &Expr, d: &'a Device, memo: &mut Matches<'a>) -> bool {
    match e {
        Expr::Paren(inner) => eval_condition(inner, d, memo),
        Expr::Binary { op: Op::And, lhs, rhs } => {
            eval_condition(lhs, d, memo) && eval_condition(rhs, d, memo)
        }
        Expr::Binary { op: Op::Or, lhs, rhs } => {
            eval_condition(lhs, d, memo) || eval_condition(rhs, d, memo)
        }
        Expr::Bool(b) => *b,
        Expr::Binary { op, lhs, rhs } => {
            let (name, value, op) = match (&**lhs, &**rhs) {
                (Expr::Var { name, .. }, v) => (name, v, *op),
                (v, Expr::Var { name, .. }) => {
                    let flipped = match op {
                        Op::Lt => Op::Gt,
                        Op::Lte => Op::Gte,
                        Op::Gt => Op::Lt,
                        Op::Gte => Op::Lte,
                        o => *o,
                    };
                    (name, v, flipped)
                }
                _ => return false,
            };
            let tag = tag_value(d, name);
            match (op, value) {
                (Op::EqRegex, Expr::Regex(r)) => memo.is_match(r, tag),
                (Op::NeqRegex, Expr::Regex(r)) => !memo.is_match(r, tag),
                (op, Expr::Str(s)) => {
                    let s = s.as_str();
                    match op {
                        Op::Eq => tag == s,
                        Op::Neq => tag != s,
                        Op::Lt => tag < s,
                        Op::Lte => tag <= s,
                        Op::Gt => tag > s,
                        Op::Gte => tag >= s,
                        _ => false,
                    }
                }
                // A tag is a string: compared with a number or a boolean, it matches nothing.
                _ => false,
            }
        }
        _ => false,
    }
}

/// An expression written back, for error messages.
fn describe(e: &Expr) -> String {
    match e {
        Expr::Var { name, .. } => format!("\"{name}\""),
        Expr::Call { name, args } => {
            format!("{name}({})", args.iter().map(describe).collect::<Vec<_>>().join(", "))
        }
        Expr::Wildcard(_) => "*".into(),
        Expr::Float(f) => f.to_string(),
        Expr::Integer(n) => n.to_string(),
        Expr::Duration(ns) => duration_text(*ns),
        Expr::Str(s) => format!("'{s}'"),
        Expr::Bool(b) => b.to_string(),
        Expr::Regex(r) => format!("/{}/", r.as_str()),
        Expr::Paren(e) => format!("({})", describe(e)),
        Expr::Binary { op, lhs, rhs } => {
            let o = match op {
                Op::Add => "+",
                Op::Sub => "-",
                Op::Mul => "*",
                Op::Div => "/",
                Op::Mod => "%",
                Op::Eq => "=",
                Op::Neq => "!=",
                Op::Lt => "<",
                Op::Lte => "<=",
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::EqRegex => "=~",
                Op::NeqRegex => "!~",
                Op::And => "AND",
                Op::Or => "OR",
            };
            format!("{} {o} {}", describe(lhs), describe(rhs))
        }
    }
}

/// `LIMIT` and `OFFSET` applied to a list.
fn page<T>(items: Vec<T>, limit: Option<u64>, offset: Option<u64>) -> Vec<T> {
    let skip = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let take =
        limit.filter(|&l| l > 0).map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    items.into_iter().skip(skip).take(take).collect()
}

fn show_measurements(ctx: &Context<'_>, meta: &Meta, s: &ShowMeasurements) -> Result<Vec<Series>> {
    let (cond, _) = split_condition(s.condition.as_ref(), ctx.now)?;
    let mut names = Vec::new();
    for kind in meta.kinds() {
        ctx.deadline.check()?;
        if s.with.as_ref().is_some_and(|w| !w.matches(&kind)) {
            continue;
        }
        if cond.is_some() && meta.matching(ctx, &kind, cond.as_ref())?.is_empty() {
            continue;
        }
        names.push(vec![Cell::Str(kind)]);
    }
    let values = page(names, s.limit, s.offset);
    Ok(one_series(Some("measurements"), &["name"], values))
}

fn one_series(name: Option<&str>, columns: &[&str], values: Vec<Vec<Cell>>) -> Vec<Series> {
    if values.is_empty() {
        return Vec::new();
    }
    vec![Series {
        name: name.map(String::from),
        tags: None,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        values,
    }]
}

fn show_tag_keys(ctx: &Context<'_>, meta: &Meta, s: &ShowTagKeys) -> Result<Vec<Series>> {
    let (cond, _) = split_condition(s.condition.as_ref(), ctx.now)?;
    let mut out = Vec::new();
    for kind in meta.measurements(&s.sources) {
        ctx.deadline.check()?;
        let devices = meta.matching(ctx, &kind, cond.as_ref())?;
        let keys: Vec<Vec<Cell>> =
            Meta::tag_keys(&devices).into_iter().map(|k| vec![Cell::Str(k.into())]).collect();
        out.extend(one_series(Some(&kind), &["tagKey"], page(keys, s.limit, s.offset)));
    }
    Ok(out)
}

fn show_tag_values(ctx: &Context<'_>, meta: &Meta, s: &ShowTagValues) -> Result<Vec<Series>> {
    let (cond, _) = split_condition(s.condition.as_ref(), ctx.now)?;
    let mut out = Vec::new();
    for kind in meta.measurements(&s.sources) {
        ctx.deadline.check()?;
        let devices = meta.matching(ctx, &kind, cond.as_ref())?;
        let mut pairs = BTreeSet::new();
        for key in TAG_KEYS.into_iter().filter(|k| s.key.matches(k)) {
            for d in &devices {
                let v = tag_value(d, key);
                if !v.is_empty() {
                    pairs.insert((key, v));
                }
            }
        }
        let values = pairs
            .into_iter()
            .map(|(k, v)| vec![Cell::Str(k.into()), Cell::Str(v.into())])
            .collect();
        out.extend(one_series(Some(&kind), &["key", "value"], page(values, s.limit, s.offset)));
    }
    Ok(out)
}

fn show_field_keys(meta: &Meta, s: &ShowFieldKeys) -> Vec<Series> {
    let mut out = Vec::new();
    for kind in meta.measurements(&s.sources) {
        let values = meta
            .fields(&kind)
            .into_iter()
            .map(|(name, k)| vec![Cell::Str(name), Cell::Str(k.as_str().into())])
            .collect();
        out.extend(one_series(
            Some(&kind),
            &["fieldKey", "fieldType"],
            page(values, s.limit, s.offset),
        ));
    }
    out
}

/// The aggregate functions agora answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Func {
    Mean,
    Median,
    Count,
    Sum,
    Min,
    Max,
    First,
    Last,
}

impl Func {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "mean" => Self::Mean,
            "median" => Self::Median,
            "count" => Self::Count,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "first" => Self::First,
            "last" => Self::Last,
            _ => return None,
        })
    }

    /// The store's function; `None` for the median, computed from raw points.
    fn agg(self) -> Option<AggFn> {
        Some(match self {
            Self::Mean => AggFn::Mean,
            Self::Median => return None,
            Self::Count => AggFn::Count,
            Self::Sum => AggFn::Sum,
            Self::Min => AggFn::Min,
            Self::Max => AggFn::Max,
            Self::First => AggFn::First,
            Self::Last => AggFn::Last,
        })
    }
}

const FUNCTIONS: &str = "mean, median, count, sum, min, max, first and last";

/// Column names as InfluxDB gives them: the alias, else the function (or field) names joined by
/// `_`; a repeated name gets `_1`, `_2`…
fn column_names(fields: &[super::Field]) -> Vec<String> {
    fn base(e: &Expr, out: &mut Vec<String>) {
        match e {
            Expr::Call { name, .. } => out.push(name.clone()),
            Expr::Var { name, .. } => out.push(name.clone()),
            Expr::Binary { lhs, rhs, .. } => {
                base(lhs, out);
                base(rhs, out);
            }
            Expr::Paren(e) => base(e, out),
            _ => {}
        }
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Option<String>> = fields.iter().map(|f| f.alias.clone()).collect();
    for a in out.iter().flatten() {
        names.insert(a.clone(), 1);
    }
    for (i, f) in fields.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let mut parts = Vec::new();
        base(&f.expr, &mut parts);
        let mut name = parts.join("_");
        if let Some(&count) = names.get(&name) {
            let mut count = count;
            loop {
                let resolved = format!("{name}_{count}");
                if !names.contains_key(&resolved) {
                    names.insert(name.clone(), count + 1);
                    name = resolved;
                    break;
                }
                count += 1;
            }
        }
        *names.entry(name.clone()).or_insert(0) += 1;
        out[i] = Some(name);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

fn has_call(e: &Expr) -> bool {
    match e {
        Expr::Call { .. } => true,
        Expr::Binary { lhs, rhs, .. } => has_call(lhs) || has_call(rhs),
        Expr::Paren(e) => has_call(e),
        _ => false,
    }
}

fn has_var(e: &Expr) -> bool {
    match e {
        Expr::Var { .. } | Expr::Wildcard(_) => true,
        Expr::Binary { lhs, rhs, .. } => has_var(lhs) || has_var(rhs),
        Expr::Paren(e) => has_var(e),
        _ => false,
    }
}

/// Arithmetic on numbers; `None` stays `None` (a gap is not a zero), as does a division by zero.
fn arith(op: Op, a: f64, b: f64) -> Option<f64> {
    let v = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div if b != 0.0 => a / b,
        Op::Mod if b != 0.0 => a % b,
        _ => return None,
    };
    v.is_finite().then_some(v)
}

/// The value of a selected expression, given the values of its calls or fields.
fn eval_number(e: &Expr, leaf: &mut dyn FnMut(&Expr) -> Option<f64>) -> Option<f64> {
    match e {
        Expr::Integer(n) => Some(*n as f64),
        Expr::Float(f) => Some(*f),
        Expr::Paren(e) => eval_number(e, leaf),
        Expr::Binary { op, lhs, rhs } => {
            let a = eval_number(lhs, leaf);
            let b = eval_number(rhs, leaf);
            arith(*op, a?, b?)
        }
        e => leaf(e),
    }
}

/// Buckets of `GROUP BY time(…)`: fixed lengths aligned on the epoch plus the offset, or whole
/// local days under `tz()`.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Fixed { interval: i64, offset: i64 },
    Days { days: i64, offset_days: i64, tz: Tz },
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

impl Plan {
    fn new(g: GroupTime, tz: Option<Tz>) -> Result<Self> {
        let offset = g.offset.rem_euclid(g.interval);
        match tz {
            Some(tz) if g.interval % DAY_NS == 0 => {
                if offset % DAY_NS != 0 {
                    return invalid(
                        "with tz(), the offset of time() on whole days must be whole days too",
                    );
                }
                Ok(Self::Days { days: g.interval / DAY_NS, offset_days: offset / DAY_NS, tz })
            }
            _ => Ok(Self::Fixed { interval: g.interval, offset }),
        }
    }

    fn nominal(&self) -> i64 {
        match *self {
            Self::Fixed { interval, .. } => interval,
            Self::Days { days, .. } => days.saturating_mul(DAY_NS),
        }
    }

    /// The buckets to ask the query layer for — these, or finer ones that nest in them — and
    /// their length in nanoseconds (a day for local days, some of which last 23 or 25 hours).
    fn fine(&self) -> (i64, Every) {
        match *self {
            Self::Fixed { interval, offset } => {
                let step = if offset == 0 { interval } else { gcd(interval, offset) };
                (step, Every::Fixed(Duration::from_nanos(step.unsigned_abs())))
            }
            Self::Days { tz, .. } => (DAY_NS, Every::new(Duration::from_secs(86_400), Some(tz))),
        }
    }

    /// Start of the bucket holding `t`.
    fn floor(&self, t: Timestamp) -> Timestamp {
        match *self {
            Self::Fixed { interval, offset } => {
                let ns = t.as_nanos();
                let k = ns.saturating_sub(offset).div_euclid(interval);
                Timestamp::from_nanos(k.saturating_mul(interval).saturating_add(offset))
            }
            Self::Days { days, offset_days, tz } => {
                let date = t.to_datetime().with_timezone(&tz).date_naive();
                let e = (date - epoch_date()).num_days();
                let g = (e - offset_days).div_euclid(days) * days + offset_days;
                day_start(epoch_date(), g, tz).unwrap_or(t)
            }
        }
    }

    /// Start of the bucket after the one starting at `start`.
    fn next(&self, start: Timestamp) -> Timestamp {
        match *self {
            Self::Fixed { interval, .. } => start.saturating_add_nanos(interval),
            Self::Days { days, tz, .. } => {
                let date = start.to_datetime().with_timezone(&tz).date_naive();
                let e = (date - epoch_date()).num_days();
                day_start(epoch_date(), e + days, tz).unwrap_or(Timestamp::from_nanos(i64::MAX))
            }
        }
    }
}

/// A duration as InfluxQL writes it, in the longest unit that divides it: `1h`, `15m`, `1ns`.
fn duration_text(ns: i64) -> String {
    let units = [
        ("w", 604_800_000_000_000),
        ("d", DAY_NS),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("u", 1_000),
    ];
    match units.iter().find(|(_, u)| ns != 0 && ns % u == 0) {
        Some((name, u)) => format!("{}{name}", ns / u),
        None => format!("{ns}ns"),
    }
}

/// The first instant of the local day `days` after `base` in `tz`.
fn day_start(base: NaiveDate, days: i64, tz: Tz) -> Option<Timestamp> {
    let date = if days >= 0 {
        base.checked_add_days(chrono::Days::new(days.unsigned_abs()))?
    } else {
        base.checked_sub_days(chrono::Days::new(days.unsigned_abs()))?
    };
    let noon = tz.from_local_datetime(&date.and_hms_opt(12, 0, 0)?).earliest()?;
    let t = Timestamp::from_datetime(&noon)?;
    Some(Every::new(Duration::from_secs(86_400), Some(tz)).floor(t))
}

/// A selected aggregate: a function of a property.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Slot {
    func: Func,
    property: String,
}

/// Per bucket, a slot's value and, for `first`/`last`, the time of that point.
type SlotValues = BTreeMap<Timestamp, (f64, i64)>;

/// The devices of one output series, by tag set.
type Groups<'m> = BTreeMap<Vec<(String, String)>, Vec<&'m Device>>;

async fn select(ctx: &Context<'_>, meta: &Meta, s: &Select) -> Result<Vec<Series>> {
    let (cond, bounds) = split_condition(s.condition.as_ref(), ctx.now)?;
    let aggregate = s.fields.iter().any(|f| has_call(&f.expr));
    if aggregate {
        if let Some(f) = s.fields.iter().find(|f| !has_call(&f.expr)) {
            return invalid(format!(
                "mixing aggregate and non-aggregate queries is not supported ({} is not in a \
                 function)",
                describe(&f.expr)
            ));
        }
    } else if s.group_time.is_some() {
        return invalid("GROUP BY time() requires an aggregate function (e.g. mean(\"pm10\"))");
    }
    let names = column_names(&s.fields);
    let mut out = Vec::new();
    // The values this statement may still answer: what the request has left.
    let mut cells_left = ctx.cells_left();
    for kind in meta.measurements(&s.sources) {
        ctx.deadline.check()?;
        let devices = meta.matching(ctx, &kind, cond.as_ref())?;
        if devices.is_empty() {
            continue;
        }
        let fields = meta.fields(&kind);
        let tag_keys = group_keys(s, &devices);
        let mut groups: Groups<'_> = BTreeMap::new();
        for d in devices {
            let key = tag_keys.iter().map(|k| (k.clone(), tag_value(d, k).to_owned())).collect();
            groups.entry(key).or_default().push(d);
        }
        let scope = Scope { s, names: &names, kind: &kind, fields: &fields, groups: &groups };
        let series = if aggregate {
            select_aggregate(ctx, meta, &scope, bounds, &mut cells_left).await?
        } else {
            select_raw(ctx, meta, &scope, bounds, &mut cells_left).await?
        };
        out.extend(series);
    }
    Ok(page(out, s.slimit, s.soffset))
}

/// What a `SELECT` works on for one measurement.
struct Scope<'s, 'm> {
    s: &'s Select,
    /// The column names of `s.fields`.
    names: &'s [String],
    /// The measurement.
    kind: &'s str,
    /// Its fields.
    fields: &'s BTreeMap<String, ValueKind>,
    /// Its devices that pass the condition, by output series.
    groups: &'s Groups<'m>,
}

/// Count the raw points of these series over `range` against the request's budget, before
/// anything is read.
fn check_budget(
    ctx: &Context<'_>,
    series: &[agora_model::SeriesId],
    range: TimeRange,
) -> Result<()> {
    let mut n = 0u64;
    for id in series {
        n = n.saturating_add(ctx.store.raw_points_in(*id, range.from, range.to));
        if n > ctx.budget.max_points {
            break;
        }
    }
    ctx.spend_raw(n)
}

fn over_budget(ctx: &Context<'_>) -> Error {
    Error::TooLarge(format!(
        "this query would read more than {} raw points (all the statements of a request \
         together): use a shorter range, fewer devices (WHERE on device, site or commune), or \
         GROUP BY time() in whole hours, which comes from the hourly rollups (not for means of \
         sound levels)",
        ctx.budget.max_points
    ))
}

/// A refusal of `want` more values when `left` are left.
fn too_many_cells(ctx: &Context<'_>, want: usize, left: usize) -> Error {
    Error::TooLarge(format!(
        "this query answers more than {} values in all (times included, all the statements of a \
         request together; this statement would answer up to {want} with {left} left): use a \
         longer GROUP BY time() interval, a shorter range, fewer fields, fewer series (WHERE on \
         device, site or commune) or SLIMIT",
        ctx.max_cells
    ))
}

/// The `GROUP BY` tag keys, sorted and without repeats (`*`: the tags the devices have).
fn group_keys(s: &Select, devices: &[&Device]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for t in &s.group_tags {
        match t {
            TagDimension::Tag(k) => {
                keys.insert(k.clone());
            }
            TagDimension::All => keys.extend(Meta::tag_keys(devices).into_iter().map(String::from)),
        }
    }
    keys.into_iter().collect()
}

fn series_out(
    kind: &str,
    s: &Select,
    key: &[(String, String)],
    names: &[String],
    mut rows: Vec<Vec<Cell>>,
) -> Series {
    if s.descending {
        rows.reverse();
    }
    let rows = page(rows, s.limit, s.offset);
    let mut columns = vec!["time".to_owned()];
    columns.extend(names.iter().cloned());
    Series {
        name: Some(kind.to_owned()),
        tags: (!s.group_tags.is_empty()).then(|| key.iter().cloned().collect()),
        columns,
        values: rows,
    }
}

/// A selected field of an aggregate: its call's function and property.
fn slot_of(ctx: &Context<'_>, e: &Expr, fields: &BTreeMap<String, ValueKind>) -> Result<Slot> {
    let Expr::Call { name, args } = e else {
        return invalid(format!("unsupported expression {}", describe(e)));
    };
    let Some(func) = Func::of(name) else {
        return invalid(format!(
            "unsupported function {name}(): agora answers {FUNCTIONS} (of one field each)"
        ));
    };
    let property = match args.as_slice() {
        [Expr::Var { hint: Some(Hint::Tag), name: v }] => {
            return invalid(format!("{name}() of the tag {v}: aggregate a field"));
        }
        [Expr::Var { name: v, .. }] => canonical(ctx, v),
        [Expr::Wildcard(_)] => {
            return invalid(format!(
                "{name}(*) is not supported: name the field, e.g. {name}(\"pm10\")"
            ));
        }
        _ => {
            return invalid(format!(
                "{name}() takes one field, e.g. {name}(\"pm10\") (got {})",
                describe(e)
            ));
        }
    };
    if fields.get(&property) == Some(&ValueKind::String) {
        return invalid(format!(
            "{name}() of the string field {property} is not supported: select it raw"
        ));
    }
    Ok(Slot { func, property })
}

fn collect_calls<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Call { .. } => out.push(e),
        Expr::Binary { lhs, rhs, .. } => {
            collect_calls(lhs, out);
            collect_calls(rhs, out);
        }
        Expr::Paren(e) => collect_calls(e, out),
        _ => {}
    }
}

async fn select_aggregate(
    ctx: &Context<'_>,
    meta: &Meta,
    scope: &Scope<'_, '_>,
    bounds: Bounds,
    cells_left: &mut usize,
) -> Result<Vec<Series>> {
    let Scope { s, names, kind, fields, groups } = *scope;
    // What each column computes.
    let mut slots: BTreeSet<Slot> = BTreeSet::new();
    let mut column_slots: Vec<Vec<(&Expr, Slot)>> = Vec::new();
    for f in &s.fields {
        let mut calls = Vec::new();
        collect_calls(&f.expr, &mut calls);
        let mut here = Vec::new();
        for c in calls {
            let slot = slot_of(ctx, c, fields)?;
            slots.insert(slot.clone());
            here.push((c, slot));
        }
        if has_var_outside_calls(&f.expr) {
            return invalid(format!(
                "mixing aggregate and non-aggregate queries is not supported ({})",
                describe(&f.expr)
            ));
        }
        column_slots.push(here);
    }
    let plan = s.group_time.map(|g| Plan::new(g, s.tz)).transpose()?;
    let from = match (bounds.from, plan) {
        (Some(f), _) => f,
        (None, Some(_)) => {
            return invalid(
                "GROUP BY time() needs a lower time bound: add e.g. WHERE time >= now() - 6h",
            );
        }
        (None, None) => 0,
    };
    let to = bounds.to.unwrap_or(if plan.is_some() {
        ctx.now.as_nanos().saturating_add(1)
    } else {
        i64::MAX
    });
    if from >= to {
        return Ok(Vec::new());
    }
    let range = TimeRange::new(Timestamp::from_nanos(from), Timestamp::from_nanos(to))?;
    // The rows of each series: its buckets, or one.
    let mut buckets: i128 = 1;
    let every = match plan {
        Some(p) => {
            let span = i128::from(to) - i128::from(p.floor(range.from).as_nanos());
            let n = span / i128::from(p.nominal().max(1));
            if n > i128::from(MAX_BUCKETS) {
                return invalid(format!(
                    "GROUP BY time() makes {n} buckets over this range: at most {MAX_BUCKETS}, \
                     use a longer interval or a shorter range"
                ));
            }
            // The store sums buckets aligned on the epoch: an offset (or local days) makes it
            // sum finer ones that nest in the buckets asked for, one summary each.
            let (step, fine) = p.fine();
            let n_fine = span / i128::from(step.max(1));
            if n_fine > i128::from(MAX_BUCKETS) {
                return invalid(match (s.group_time, plan) {
                    (Some(g), Some(Plan::Fixed { .. })) => format!(
                        "GROUP BY time({}, {}) is summed from buckets of {}, where buckets of the \
                         interval and of the offset meet: {n_fine} of them over this range, at \
                         most {MAX_BUCKETS}; use an offset in a longer unit (e.g. time(1h, 15m)) \
                         or a shorter range",
                        duration_text(g.interval),
                        duration_text(g.offset),
                        duration_text(step),
                    ),
                    _ => format!(
                        "GROUP BY time() under tz() is summed from local days: {n_fine} of them \
                         over this range, at most {MAX_BUCKETS}; use a shorter range"
                    ),
                });
            }
            // The last bucket may hold the range's end only in part.
            buckets = n + 1;
            fine
        }
        // One bucket for the whole range, summed from days (whole hours come from rollups).
        None => Every::Fixed(Duration::from_secs(86_400)),
    };
    // Every row may be answered (fill(none) leaves out only the buckets no point falls in): the
    // values are counted before any is computed.
    let width = s.fields.len() + 1;
    let most = buckets.saturating_mul(groups.len() as i128).saturating_mul(width as i128);
    if most > *cells_left as i128 {
        return Err(too_many_cells(ctx, usize::try_from(most).unwrap_or(usize::MAX), *cells_left));
    }
    // How each property is averaged, from its unit.
    let unit_of = |property: &str| {
        groups.values().flatten().find_map(|d| meta.series(d, property)).map(|i| i.unit.clone())
    };
    let averaging = |slot: &Slot| match (slot.func.agg(), unit_of(&slot.property)) {
        (Some(f), Some(u)) => Averaging::of(&slot.property, &u, f),
        _ => Averaging::Arithmetic,
    };
    // Every raw point this statement decodes, counted before anything is read.
    let mut raw = Vec::new();
    for slot in &slots {
        let reads_raw = slot.func == Func::Median || Budget::reads_raw(every, averaging(slot));
        if !reads_raw {
            continue;
        }
        for d in groups.values().flatten() {
            raw.extend(meta.series(d, &slot.property).map(|i| i.id));
        }
    }
    check_budget(ctx, &raw, range)?;

    let bucket = |t: Timestamp| match plan {
        Some(p) => p.floor(t),
        None => range.from,
    };
    let lone_selector = match column_slots.as_slice() {
        [one]
            if one.len() == 1
                && matches!(s.fields[0].expr, Expr::Call { .. })
                && plan.is_none() =>
        {
            matches!(one[0].1.func, Func::First | Func::Last)
        }
        _ => false,
    };
    let mut out = Vec::new();
    for (key, devices) in groups {
        // Summaries per (property, averaging), shared by the slots that need them.
        let mut summed: HashMap<(String, &str), BTreeMap<Timestamp, Agg>> = HashMap::new();
        let mut values: HashMap<Slot, SlotValues> = HashMap::new();
        for slot in &slots {
            let v = if slot.func == Func::Median {
                medians(ctx, meta, devices, &slot.property, range, &bucket).await?
            } else {
                let avg = averaging(slot);
                let k = (slot.property.clone(), avg.as_str());
                if !summed.contains_key(&k) {
                    let mut acc: BTreeMap<Timestamp, Agg> = BTreeMap::new();
                    for d in devices {
                        let Some(info) = meta.series(d, &slot.property) else { continue };
                        ctx.deadline.check()?;
                        let parts = summaries(ctx.store, info.id, range, every, avg).await?;
                        merge_into(
                            &mut acc,
                            parts.into_iter().map(|(t, a)| (bucket(t), a)).collect(),
                        );
                    }
                    summed.insert(k.clone(), acc);
                }
                let f = slot.func.agg().unwrap_or(AggFn::Mean);
                summed[&k]
                    .iter()
                    .filter(|(_, a)| a.count > 0)
                    .map(|(t, a)| {
                        let ts = match f {
                            AggFn::First => a.first_ts,
                            AggFn::Last => a.last_ts,
                            _ => t.as_nanos(),
                        };
                        (*t, (avg.value(a, f), ts))
                    })
                    .collect()
            };
            values.insert(slot.clone(), v);
        }
        // The buckets with data, and those answered.
        let with_data: BTreeSet<Timestamp> =
            values.values().flat_map(|v| v.keys().copied()).collect();
        if with_data.is_empty() {
            continue;
        }
        let times: Vec<Timestamp> = match plan {
            Some(p) if s.fill != Fill::None => {
                let mut t = p.floor(range.from);
                let mut all = Vec::new();
                while t < range.to {
                    all.push(t);
                    let n = p.next(t);
                    if n <= t {
                        break;
                    }
                    t = n;
                }
                all
            }
            _ => with_data.into_iter().collect(),
        };
        // Counted before: this only guards the estimate (local days of 23 hours).
        let cells = times.len().saturating_mul(width);
        if cells > *cells_left {
            return Err(too_many_cells(ctx, cells, *cells_left));
        }
        *cells_left -= cells;
        // Columns of numbers, bucket by bucket.
        let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
        for (f, slots_here) in s.fields.iter().zip(&column_slots) {
            let col = times
                .iter()
                .map(|t| {
                    eval_number(&f.expr, &mut |call: &Expr| {
                        let (_, slot) = slots_here.iter().find(|(c, _)| std::ptr::eq(*c, call))?;
                        match values.get(slot).and_then(|v| v.get(t)) {
                            Some(v) => Some(v.0).filter(|v| v.is_finite()),
                            // A bucket without points counts 0 of them: a fact, not a gap that
                            // fill() would fill (InfluxDB answers the same).
                            None if slot.func == Func::Count => Some(0.0),
                            None => None,
                        }
                    })
                })
                .collect();
            columns.push(col);
        }
        fill(&mut columns, &times, s.fill, plan.is_some());
        let integer_column: Vec<bool> = s
            .fields
            .iter()
            .zip(&column_slots)
            .map(|(f, here)| match (&f.expr, here.as_slice()) {
                (Expr::Call { .. }, [(_, slot)]) => {
                    slot.func == Func::Count
                        || (fields.get(&slot.property) == Some(&ValueKind::Integer)
                            && !matches!(slot.func, Func::Mean | Func::Median))
                }
                _ => false,
            })
            .collect();
        let mut rows = Vec::with_capacity(times.len());
        for (i, t) in times.iter().enumerate() {
            let time = if lone_selector {
                let slot = &column_slots[0][0].1;
                values.get(slot).and_then(|v| v.get(t)).map_or(*t, |v| Timestamp::from_nanos(v.1))
            } else {
                *t
            };
            let mut row = vec![Cell::Time(time)];
            for (c, col) in columns.iter().enumerate() {
                row.push(match col[i] {
                    None => Cell::Null,
                    Some(v) if integer_column[c] && v.fract() == 0.0 && v.abs() < 9.0e15 => {
                        Cell::Integer(v as i64)
                    }
                    Some(v) => Cell::Float(v),
                });
            }
            rows.push(row);
        }
        out.push(series_out(kind, s, key, names, rows));
    }
    Ok(out)
}

fn has_var_outside_calls(e: &Expr) -> bool {
    match e {
        Expr::Call { .. } => false,
        Expr::Var { .. } | Expr::Wildcard(_) => true,
        Expr::Binary { lhs, rhs, .. } => has_var_outside_calls(lhs) || has_var_outside_calls(rhs),
        Expr::Paren(e) => has_var_outside_calls(e),
        _ => false,
    }
}

/// Medians per bucket of the raw points of a group's devices (checked against the budget
/// before).
async fn medians(
    ctx: &Context<'_>,
    meta: &Meta,
    devices: &[&Device],
    property: &str,
    range: TimeRange,
    bucket: &(dyn Fn(Timestamp) -> Timestamp + Sync),
) -> Result<SlotValues> {
    let mut by_bucket: BTreeMap<Timestamp, Vec<f64>> = BTreeMap::new();
    for d in devices {
        let Some(info) = meta.series(d, property) else { continue };
        ctx.deadline.check()?;
        let limit = usize::try_from(ctx.budget.max_points).unwrap_or(usize::MAX).saturating_add(1);
        for (t, v) in ctx.store.read_numbers(info.id, range.from, range.to, limit).await? {
            if v.is_finite() {
                by_bucket.entry(bucket(t)).or_default().push(v);
            }
        }
    }
    Ok(by_bucket
        .into_iter()
        .map(|(t, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let m = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
            (t, (m, t.as_nanos()))
        })
        .collect())
}

/// Answer empty buckets as `fill` says. Without `GROUP BY time` there is one bucket, with data.
fn fill(columns: &mut [Vec<Option<f64>>], times: &[Timestamp], how: Fill, by_time: bool) {
    if !by_time {
        return;
    }
    for col in columns.iter_mut() {
        match how {
            Fill::Null | Fill::None => {}
            Fill::Number(n) => col.iter_mut().filter(|v| v.is_none()).for_each(|v| *v = Some(n)),
            Fill::Previous => {
                let mut last = None;
                for v in col.iter_mut() {
                    match v {
                        Some(x) => last = Some(*x),
                        None => *v = last,
                    }
                }
            }
            Fill::Linear => {
                let known: Vec<usize> = (0..col.len()).filter(|&i| col[i].is_some()).collect();
                for w in known.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    let (va, vb) = (col[a].unwrap_or_default(), col[b].unwrap_or_default());
                    let (ta, tb) = (times[a].as_nanos() as f64, times[b].as_nanos() as f64);
                    for i in a + 1..b {
                        let ti = times[i].as_nanos() as f64;
                        col[i] = Some(va + (vb - va) * (ti - ta) / (tb - ta));
                    }
                }
            }
        }
    }
}

/// What a raw column shows.
enum RawColumn {
    /// An expression of fields (a field alone, or with arithmetic).
    Fields(Expr),
    /// A tag's value.
    Tag(String),
}

async fn select_raw(
    ctx: &Context<'_>,
    meta: &Meta,
    scope: &Scope<'_, '_>,
    bounds: Bounds,
    cells_left: &mut usize,
) -> Result<Vec<Series>> {
    let Scope { s, names, kind, fields, groups } = *scope;
    // The columns, `*` expanded to every field and tag, sorted by name as InfluxDB does.
    let mut columns: Vec<(String, RawColumn)> = Vec::new();
    let all_devices: Vec<&Device> = groups.values().flatten().copied().collect();
    for (f, name) in s.fields.iter().zip(names) {
        match &f.expr {
            Expr::Wildcard(hint) => {
                let mut all: Vec<(String, RawColumn)> = Vec::new();
                if *hint != Some(Hint::Tag) {
                    for p in fields.keys() {
                        all.push((
                            p.clone(),
                            RawColumn::Fields(Expr::Var { name: p.clone(), hint: None }),
                        ));
                    }
                }
                if *hint != Some(Hint::Field) {
                    for k in Meta::tag_keys(&all_devices) {
                        all.push((k.to_owned(), RawColumn::Tag(k.to_owned())));
                    }
                }
                all.sort_by(|a, b| a.0.cmp(&b.0));
                columns.extend(all);
            }
            Expr::Var { name: v, hint }
                if !is_field(ctx, v, *hint, fields) && *hint != Some(Hint::Field) =>
            {
                columns.push((name.clone(), RawColumn::Tag(v.clone())));
            }
            e => {
                check_raw_expr(e)?;
                columns.push((name.clone(), RawColumn::Fields(e.clone())));
            }
        }
    }
    // The properties read.
    let mut props: BTreeSet<String> = BTreeSet::new();
    for (_, c) in &columns {
        if let RawColumn::Fields(e) = c {
            collect_vars(e, &mut |v| {
                props.insert(canonical(ctx, v));
            });
        }
    }
    let props: Vec<String> = props.into_iter().filter(|p| fields.contains_key(p)).collect();
    if props.is_empty() {
        // Only tags, or fields no device of this kind has: InfluxDB answers nothing.
        return Ok(Vec::new());
    }
    let from = bounds.from.unwrap_or(i64::MIN);
    let to = bounds.to.unwrap_or(i64::MAX);
    if from >= to {
        return Ok(Vec::new());
    }
    let range = TimeRange::new(Timestamp::from_nanos(from), Timestamp::from_nanos(to))?;
    let limit = s.limit.filter(|&l| l > 0);
    let need = limit
        .map(|l| usize::try_from(l.saturating_add(s.offset.unwrap_or(0))).unwrap_or(usize::MAX));
    // The rows an output series is built from: those LIMIT and OFFSET reach, and never more than
    // one past the cap (which refuses the statement).
    let keep = need.unwrap_or(usize::MAX).min(ctx.max_rows.saturating_add(1));
    let side = if s.descending && need.is_some() { Side::Newest } else { Side::Oldest };
    let width = columns.len() + 1;
    let mut out = Vec::new();
    for (key, devices) in groups {
        ctx.deadline.check()?;
        let read = Read { props: &props, range, keep, side };
        let rows = read_rows(ctx, meta, devices, &read).await?;
        if rows.len() > ctx.max_rows {
            return Err(Error::TooLarge(format!(
                "this query reads more than {} points of one series (all the points in the range \
                 without LIMIT, else LIMIT plus OFFSET): add or lower LIMIT, narrow the time \
                 range, or aggregate with GROUP BY time()",
                ctx.max_rows
            )));
        }
        if rows.is_empty() {
            continue;
        }
        let answered = rows
            .len()
            .saturating_sub(usize::try_from(s.offset.unwrap_or(0)).unwrap_or(usize::MAX))
            .min(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)));
        let cells = answered.saturating_mul(width);
        if cells > *cells_left {
            return Err(too_many_cells(ctx, cells, *cells_left));
        }
        *cells_left -= cells;
        let by_device: HashMap<&str, &Device> =
            devices.iter().map(|d| (d.id.as_str(), *d)).collect();
        let mut out_rows = Vec::with_capacity(rows.len());
        for ((t, dev), vals) in rows {
            let value_of = |v: &str| -> Option<&Value> {
                let p = canonical(ctx, v);
                let i = props.iter().position(|x| *x == p)?;
                vals[i].as_ref()
            };
            let mut row = vec![Cell::Time(t)];
            for (_, c) in &columns {
                row.push(match c {
                    RawColumn::Tag(k) => {
                        let v = by_device.get(dev).map_or("", |d| tag_value(d, k));
                        if v.is_empty() { Cell::Null } else { Cell::Str(v.to_owned()) }
                    }
                    RawColumn::Fields(Expr::Var { name, .. }) => match value_of(name) {
                        None => Cell::Null,
                        Some(Value::F64(f)) if f.is_finite() => Cell::Float(*f),
                        Some(Value::F64(_)) => Cell::Null,
                        Some(Value::I64(n)) => Cell::Integer(*n),
                        Some(Value::Bool(b)) => Cell::Bool(*b),
                        Some(Value::Str(s)) => Cell::Str(s.to_string()),
                    },
                    RawColumn::Fields(e) => {
                        let v = eval_number(e, &mut |leaf: &Expr| match leaf {
                            Expr::Var { name, .. } => value_of(name)?.as_f64(),
                            _ => None,
                        });
                        v.map_or(Cell::Null, Cell::Float)
                    }
                });
            }
            out_rows.push(row);
        }
        let mut names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
        dedupe(&mut names);
        out.push(series_out(kind, s, key, &names, out_rows));
    }
    Ok(out)
}

/// Which end of a range raw rows are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The oldest points (`ORDER BY time ASC`, or every point).
    Oldest,
    /// The newest (`ORDER BY time DESC` with `LIMIT`).
    Newest,
}

/// What raw rows to read.
struct Read<'p> {
    /// The properties, one value each per row.
    props: &'p [String],
    range: TimeRange,
    /// The most rows kept.
    keep: usize,
    side: Side,
}

/// Raw rows of the devices of an output series, by (time, device), one value per property:
/// the `keep` oldest or newest. At most `keep` points are read from each series and at most
/// `keep` rows are held; reading stops as soon as `keep` rows past the statement's cap are held.
async fn read_rows<'d>(
    ctx: &Context<'_>,
    meta: &Meta,
    devices: &[&'d Device],
    read: &Read<'_>,
) -> Result<BTreeMap<(Timestamp, &'d str), Vec<Option<Value>>>> {
    let Read { props, range, keep, side } = *read;
    let mut rows: BTreeMap<(Timestamp, &'d str), Vec<Option<Value>>> = BTreeMap::new();
    for d in devices {
        for (pi, p) in props.iter().enumerate() {
            let Some(info) = meta.series(d, p) else { continue };
            ctx.deadline.check()?;
            let points = match side {
                Side::Oldest => {
                    let n = ctx.store.raw_points_in(info.id, range.from, range.to);
                    ctx.spend_raw(n.min(keep as u64))?;
                    ctx.store.read(info.id, range.from, range.to, keep).await?
                }
                Side::Newest => read_newest(ctx, info.id, range, keep).await?,
            };
            for (t, v) in points {
                rows.entry((t, d.id.as_str())).or_insert_with(|| vec![None; props.len()])[pi] =
                    Some(v);
            }
            // The rows kept are the oldest (newest) of all the series read so far: a row among
            // them has its values from every series, which each gave its `keep` oldest (newest).
            while rows.len() > keep {
                match side {
                    Side::Oldest => rows.pop_last(),
                    Side::Newest => rows.pop_first(),
                };
            }
            if rows.len() > ctx.max_rows {
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}

/// The newest `keep` points of a series in `range`, oldest first.
///
/// The store reads oldest first, so windows are read back from the end of the range, each page
/// by page keeping only the newest points: first the narrowest window the index says holds the
/// points wanted — exact, unless the index counts a whole block of which the window holds only a
/// part — then, while points are missing, windows eight times as wide as the one before (at
/// least a second), so that a block reaching far back costs a few windows, not one per
/// nanosecond. What each window may hold is counted against the raw-point budget before it is
/// read.
async fn read_newest(
    ctx: &Context<'_>,
    id: agora_model::SeriesId,
    range: TimeRange,
    keep: usize,
) -> Result<Vec<(Timestamp, Value)>> {
    let from = range.from.as_nanos();
    let mut hi = range.to.as_nanos();
    // The least width of the next window.
    let mut grow: i64 = 0;
    // Newest window first.
    let mut windows: Vec<VecDeque<(Timestamp, Value)>> = Vec::new();
    let mut got = 0;
    while got < keep && hi > from {
        ctx.deadline.check()?;
        let wanted = keep - got;
        let narrowest = narrowest_window(ctx.store, id, from, hi, wanted as u64);
        let lo = narrowest.min(hi.saturating_sub(grow)).max(from);
        ctx.spend_raw(ctx.store.raw_points_in(
            id,
            Timestamp::from_nanos(lo),
            Timestamp::from_nanos(hi),
        ))?;
        let newest = newest_in(ctx, id, lo, hi, wanted).await?;
        got += newest.len();
        windows.push(newest);
        grow = hi.saturating_sub(lo).saturating_mul(8).max(1_000_000_000);
        hi = lo;
    }
    Ok(windows.into_iter().rev().flatten().collect())
}

/// The latest start `lo` in `from..hi` of a window `lo..hi` the index says holds at least `n`
/// points of the series (`from` when the whole range holds fewer).
fn narrowest_window(
    store: &dyn SeriesStore,
    id: agora_model::SeriesId,
    from: i64,
    hi: i64,
    n: u64,
) -> i64 {
    let count =
        |lo: i64| store.raw_points_in(id, Timestamp::from_nanos(lo), Timestamp::from_nanos(hi));
    if count(from) < n {
        return from;
    }
    // count(a) >= n; the answer is in a..=b.
    let (mut a, mut b) = (from, hi - 1);
    while a < b {
        let mid = (i128::from(a) + (i128::from(b) - i128::from(a) + 1) / 2) as i64;
        if count(mid) >= n {
            a = mid;
        } else {
            b = mid - 1;
        }
    }
    a
}

/// The newest `keep` points of a series in `lo..hi`, read oldest first page by page.
async fn newest_in(
    ctx: &Context<'_>,
    id: agora_model::SeriesId,
    lo: i64,
    hi: i64,
    keep: usize,
) -> Result<VecDeque<(Timestamp, Value)>> {
    let page = keep.clamp(1_024, 65_536);
    let mut out = VecDeque::new();
    let mut start = lo;
    loop {
        ctx.deadline.check()?;
        let points = ctx
            .store
            .read(id, Timestamp::from_nanos(start), Timestamp::from_nanos(hi), page)
            .await?;
        let full = points.len() == page;
        let last = points.last().map(|p| p.0.as_nanos());
        for p in points {
            if out.len() == keep {
                out.pop_front();
            }
            out.push_back(p);
        }
        match last {
            Some(t) if full && t < hi - 1 => start = t + 1,
            _ => return Ok(out),
        }
    }
}

/// Columns of `*` may repeat a name selected beside it: number the repeats.
fn dedupe(names: &mut [String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for n in names.iter_mut() {
        let c = seen.entry(n.clone()).or_insert(0);
        if *c > 0 {
            *n = format!("{n}_{c}");
        }
        *c += 1;
    }
}

fn collect_vars(e: &Expr, f: &mut dyn FnMut(&str)) {
    match e {
        Expr::Var { name, .. } => f(name),
        Expr::Binary { lhs, rhs, .. } => {
            collect_vars(lhs, f);
            collect_vars(rhs, f);
        }
        Expr::Paren(e) => collect_vars(e, f),
        _ => {}
    }
}

/// A raw column may be a field, or arithmetic on fields and numbers.
fn check_raw_expr(e: &Expr) -> Result<()> {
    match e {
        Expr::Var { .. } | Expr::Integer(_) | Expr::Float(_) => Ok(()),
        Expr::Paren(e) => check_raw_expr(e),
        Expr::Binary { op: Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod, lhs, rhs } => {
            check_raw_expr(lhs)?;
            check_raw_expr(rhs)
        }
        e if !has_var(e) => {
            invalid(format!("select a field, not only a constant ({})", describe(e)))
        }
        e => invalid(format!("unsupported expression {}", describe(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::influxql::{Statement, parse};

    fn condition(q: &str) -> Option<Expr> {
        let Statement::Select(s) = parse(q).unwrap().statements.remove(0) else { panic!() };
        s.condition
    }

    const NOW: i64 = 1_767_225_600_000_000_000;

    #[test]
    fn time_conditions_in_every_form_grafana_sends() {
        let now = Timestamp::from_nanos(NOW);
        let bounds = |q: &str| {
            let (rest, b) = split_condition(condition(q).as_ref(), now).unwrap();
            (rest.is_some(), b.from, b.to)
        };
        let ms = 1_000_000i64;
        // Both bounds included: `to` is the first instant excluded.
        assert_eq!(
            bounds("SELECT x FROM m WHERE time >= 1700000000000ms and time <= 1700003600000ms"),
            (false, Some(1_700_000_000_000 * ms), Some(1_700_003_600_000 * ms + 1))
        );
        assert_eq!(
            bounds("SELECT x FROM m WHERE time >= now() - 6h and time <= now()"),
            (false, Some(NOW - 6 * 3_600_000 * ms), Some(NOW + 1))
        );
        assert_eq!(
            bounds("SELECT x FROM m WHERE time > now() - 1h"),
            (false, Some(NOW - 3_600_000 * ms + 1), None)
        );
        assert_eq!(
            bounds(
                "SELECT x FROM m WHERE \"lol\" = 'sob' AND time >= 123456780 AND time <= 123456789"
            ),
            (true, Some(123_456_780), Some(123_456_790))
        );
        assert_eq!(
            bounds("SELECT x FROM m WHERE time > '2023-11-14T22:13:20Z' AND time < '2023-11-15'"),
            (false, Some(1_700_000_000_000 * ms + 1), Some(1_700_006_400_000 * ms))
        );
        assert_eq!(
            bounds("SELECT x FROM m WHERE ('2023-11-14 22:13:20' <= time) AND time < now() + 1m"),
            (false, Some(1_700_000_000_000 * ms), Some(NOW + 60_000 * ms))
        );
        // Several lower bounds: the latest wins.
        assert_eq!(
            bounds("SELECT x FROM m WHERE time >= 5 AND (a = 'b' AND time >= 7)"),
            (true, Some(7), None)
        );
        for (q, why) in [
            ("SELECT x FROM m WHERE a = 'b' OR time > 5", "AND (not OR)"),
            ("SELECT x FROM m WHERE time != 5", "compared with"),
            ("SELECT x FROM m WHERE time > 'yesterday'", "bad time"),
            ("SELECT x FROM m WHERE time > mean(x)", "bad time"),
            (
                "SELECT x FROM m WHERE time > now() - 106751d - 106751d",
                "time now() - 106751d - 106751d out of range: times run from 1677-09-21 to \
                 2262-04-11",
            ),
        ] {
            let e = split_condition(condition(q).as_ref(), now).unwrap_err().to_string();
            assert!(e.contains(why), "{q}: {e}");
        }
    }

    #[test]
    fn buckets_with_offsets_and_local_days() {
        let min = 60_000_000_000i64;
        let t0 = Timestamp::from_nanos(NOW);
        let p = Plan::new(GroupTime { interval: 2 * min, offset: min }, None).unwrap();
        assert_eq!(p.floor(t0), t0.saturating_add_nanos(-min));
        assert_eq!(p.floor(t0.saturating_add_nanos(min)), t0.saturating_add_nanos(min));
        assert_eq!(p.fine(), (min, Every::Fixed(Duration::from_secs(60))));
        // A negative offset is the same as interval minus it.
        let q = Plan::new(GroupTime { interval: 2 * min, offset: -min }, None).unwrap();
        assert_eq!(q.floor(t0), p.floor(t0));
        // Whole days under tz(): local midnight, 23 hours on the day the clocks go forward.
        let paris = chrono_tz::Europe::Paris;
        let d = Plan::new(GroupTime { interval: DAY_NS, offset: 0 }, Some(paris)).unwrap();
        let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
        assert_eq!(d.floor(at("2026-03-29T12:00:00Z")), at("2026-03-28T23:00:00Z"));
        assert_eq!(d.next(at("2026-03-28T23:00:00Z")), at("2026-03-29T22:00:00Z"));
        // Weeks under tz() begin on Thursdays, as InfluxDB's (the epoch was a Thursday).
        let w = Plan::new(GroupTime { interval: 7 * DAY_NS, offset: 0 }, Some(paris)).unwrap();
        // Thursday 1 January 2026 is 20454 = 7 × 2922 days after the epoch.
        assert_eq!(w.floor(at("2026-01-06T12:00:00Z")), at("2025-12-31T23:00:00Z"));
        assert_eq!(w.next(at("2025-12-31T23:00:00Z")), at("2026-01-07T23:00:00Z"));
        assert!(
            Plan::new(GroupTime { interval: DAY_NS, offset: 3_600_000_000_000 }, Some(paris))
                .is_err()
        );
    }

    #[test]
    fn fills() {
        let t: Vec<Timestamp> = (0..5).map(|i| Timestamp::from_nanos(i * 10)).collect();
        let col = vec![None, Some(1.0), None, None, Some(4.0)];
        let run = |how| {
            let mut c = vec![col.clone()];
            fill(&mut c, &t, how, true);
            c.remove(0)
        };
        assert_eq!(run(Fill::Null), col);
        assert_eq!(run(Fill::Previous), vec![None, Some(1.0), Some(1.0), Some(1.0), Some(4.0)]);
        assert_eq!(run(Fill::Linear), vec![None, Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(
            run(Fill::Number(-1.0)),
            vec![Some(-1.0), Some(1.0), Some(-1.0), Some(-1.0), Some(4.0)]
        );
    }

    #[test]
    fn column_names_as_influxdb_gives_them() {
        let Statement::Select(s) = parse(
            "SELECT mean(a), mean(b) AS mean_1, mean(c), max(a) + min(a), \"raw\", mean(d) AS x FROM m",
        )
        .unwrap()
        .statements
        .remove(0) else {
            panic!()
        };
        assert_eq!(column_names(&s.fields), ["mean", "mean_1", "mean_2", "max_min", "raw", "x"]);
    }
    #[test]
    fn each_regex_runs_once_per_distinct_tag_value() {
        let device = |i: usize| Device {
            id: agora_model::DeviceId::parse(&format!("aq-{i:03}")).unwrap(),
            kind: agora_model::DeviceKind::parse("air_quality").unwrap(),
            name: None,
            site: Some(
                agora_model::SiteId::parse(if i.is_multiple_of(2) { "centre" } else { "port" })
                    .unwrap(),
            ),
            commune: None,
            lat: None,
            lon: None,
            metadata: serde_json::Value::Null,
            created_at: Timestamp::from_nanos(NOW),
            last_seen: None,
        };
        let devices: Vec<Device> = (0..100).map(device).collect();
        let cond =
            condition(r#"SELECT x FROM m WHERE "site" =~ /^c/ AND "device" !~ /7$/"#).unwrap();
        let mut memo = Matches::default();
        let passed = devices.iter().filter(|d| eval_condition(&cond, d, &mut memo)).count();
        // The even ids are in the centre, and none of them ends in 7.
        assert_eq!(passed, 50);
        // The site's regex ran for its two values; the device's for the 50 devices it was asked
        // about (AND stops at the site for the others).
        assert_eq!(memo.runs, 2 + 50);
    }

    mod over_a_store {
        use std::sync::Arc;

        use agora_model::{DeviceId, DeviceKind, MockClock, PropertyName, SeriesId};
        use agora_store::{Engine, EngineConfig, SqliteCatalog};

        use super::*;

        const SEC: i64 = 1_000_000_000;

        /// A catalog and a store in a temporary directory.
        struct Fixture {
            _dir: tempfile::TempDir,
            catalog: SqliteCatalog,
            store: Arc<Engine>,
        }

        async fn fixture() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let catalog = SqliteCatalog::open(dir.path()).await.unwrap();
            let mut cfg = EngineConfig::new(dir.path().join("engine"));
            cfg.fsync = false;
            // Tests must not depend on how full the machine's disk is.
            cfg.min_free_bytes = 0;
            let store =
                Arc::new(Engine::open(cfg, MockClock::new(Timestamp::from_nanos(NOW))).unwrap());
            Fixture { _dir: dir, catalog, store }
        }

        /// What a request may use, in `Context::new`'s terms.
        #[derive(Clone, Copy)]
        struct Limits {
            max_points: u64,
            max_rows: usize,
            max_cells: usize,
            deadline: Duration,
        }

        const ROOMY: Limits = Limits {
            max_points: 1_000_000,
            max_rows: 100_000,
            max_cells: 2_000_000,
            deadline: Duration::from_secs(3600),
        };

        fn none(_: &str) -> Option<String> {
            None
        }

        impl Fixture {
            /// A device of `kind` with a `pm10` series, and its points (seconds before `NOW`,
            /// value).
            async fn device(&self, id: &str, kind: &str, points: &[(i64, f64)]) -> SeriesId {
                let device = Device {
                    id: DeviceId::parse(id).unwrap(),
                    kind: DeviceKind::parse(kind).unwrap(),
                    name: None,
                    site: None,
                    commune: None,
                    lat: None,
                    lon: None,
                    metadata: serde_json::Value::Null,
                    created_at: Timestamp::from_nanos(NOW),
                    last_seen: None,
                };
                self.catalog.upsert_device(device.clone()).await.unwrap();
                let pm10 = PropertyName::parse("pm10").unwrap();
                let info = self
                    .catalog
                    .create_series(&device.id, &pm10, ValueKind::Float, "ug/m3", None)
                    .await
                    .unwrap();
                let pts = points
                    .iter()
                    .map(|&(ago, v)| {
                        (info.id, Timestamp::from_nanos(NOW - ago * SEC), Value::F64(v))
                    })
                    .collect();
                self.store.write(pts).await.unwrap();
                info.id
            }

            fn context(&self, l: Limits) -> Context<'_> {
                Context::new(ContextArgs {
                    catalog: &self.catalog,
                    store: &self.store,
                    now: Timestamp::from_nanos(NOW),
                    budget: Budget { max_points: l.max_points },
                    max_rows: l.max_rows,
                    max_cells: l.max_cells,
                    deadline: Deadline::after(l.deadline),
                    canonical: &none,
                })
            }
        }

        async fn run(ctx: &Context<'_>, q: &str) -> Result<Vec<Series>> {
            let stmt = parse(q).unwrap().statements.remove(0);
            execute(ctx, &stmt).await.map(|a| a.series)
        }

        fn times(series: &Series) -> Vec<i64> {
            series
                .values
                .iter()
                .map(|r| match r[0] {
                    Cell::Time(t) => (t.as_nanos() - NOW) / SEC,
                    _ => panic!("{r:?}"),
                })
                .collect()
        }

        #[tokio::test]
        async fn a_deadline_already_past_answers_a_statement_error() {
            let f = fixture().await;
            f.device("aq-1", "air_quality", &[(60, 10.0)]).await;
            let past = Limits { deadline: Duration::ZERO, ..ROOMY };
            for q in [
                r#"SELECT mean("pm10") FROM "air_quality" WHERE time > now() - 1h GROUP BY time(1m)"#,
                r#"SELECT "pm10" FROM "air_quality""#,
                "SHOW MEASUREMENTS",
                "SHOW DATABASES",
            ] {
                let e = run(&f.context(past), q).await.unwrap_err().to_string();
                assert!(e.starts_with("query took longer than 0 s: "), "{q}: {e}");
            }
            let ctx = f.context(ROOMY);
            assert_eq!(run(&ctx, r#"SELECT "pm10" FROM "air_quality""#).await.unwrap().len(), 1);
        }

        #[tokio::test]
        async fn a_request_reads_the_catalog_once() {
            let f = fixture().await;
            f.device("aq-1", "air_quality", &[(60, 10.0)]).await;
            let ctx = f.context(ROOMY);
            let kinds = |s: Vec<Series>| -> Vec<Vec<Cell>> { s[0].values.clone() };
            let air = vec![vec![Cell::Str("air_quality".into())]];
            assert_eq!(kinds(run(&ctx, "SHOW MEASUREMENTS").await.unwrap()), air);
            // A device added while the request runs: its later statements answer from the
            // catalog as the first one found it.
            f.device("n-1", "noise", &[(60, 50.0)]).await;
            assert_eq!(kinds(run(&ctx, "SHOW MEASUREMENTS").await.unwrap()), air);
            let both = kinds(run(&f.context(ROOMY), "SHOW MEASUREMENTS").await.unwrap());
            assert_eq!(both.len(), 2);
        }

        #[tokio::test]
        async fn budgets_are_shared_by_measurements_and_statements() {
            let f = fixture().await;
            f.device("aq-1", "air_quality", &[(10, 1.0), (20, 2.0), (30, 3.0)]).await;
            f.device("wx-1", "weather", &[(10, 1.0), (20, 2.0)]).await;
            let small = Limits { max_points: 4, ..ROOMY };
            let median = |from: &str| {
                format!(r#"SELECT median("pm10") FROM {from} WHERE time > now() - 1h"#)
            };
            // Three points and two: each alone is under 4, both together are not.
            for from in [r#""air_quality""#, r#""weather""#] {
                assert_eq!(run(&f.context(small), &median(from)).await.unwrap().len(), 1);
            }
            let e = run(&f.context(small), &median("/.*/")).await.unwrap_err().to_string();
            assert!(e.contains("more than 4 raw points (all the statements of a request"), "{e}");
            let ctx = f.context(small);
            run(&ctx, &median(r#""air_quality""#)).await.unwrap();
            let e = run(&ctx, &median(r#""weather""#)).await.unwrap_err().to_string();
            assert!(e.contains("more than 4 raw points"), "{e}");
            // Values answered: 3 rows of 2 values, then 2 of 2, under a cap of 8.
            let few = Limits { max_cells: 8, ..ROOMY };
            let raw = |from: &str| format!(r#"SELECT "pm10" FROM "{from}""#);
            let ctx = f.context(few);
            run(&ctx, &raw("air_quality")).await.unwrap();
            let e = run(&ctx, &raw("weather")).await.unwrap_err().to_string();
            assert!(
                e.contains("more than 8 values in all") && e.contains("up to 4 with 2 left"),
                "{e}"
            );
        }

        #[tokio::test]
        async fn raw_reads_stop_at_the_row_cap() {
            let f = fixture().await;
            // Twenty devices of ten points each; at most five rows a series.
            let points: Vec<(i64, f64)> = (1..=10).map(|i| (i, i as f64)).collect();
            for d in 0..20 {
                f.device(&format!("b-{d:02}"), "big", &points).await;
            }
            let limits = Limits { max_rows: 5, ..ROOMY };
            for q in [
                r#"SELECT "pm10" FROM "big""#,
                r#"SELECT "pm10" FROM "big" LIMIT 100000000"#,
                r#"SELECT "pm10" FROM "big" ORDER BY time DESC LIMIT 100000000"#,
                r#"SELECT "pm10" FROM "big" LIMIT 3 OFFSET 3"#,
            ] {
                let ctx = f.context(limits);
                let e = run(&ctx, q).await.unwrap_err().to_string();
                assert!(e.contains("more than 5 points of one series"), "{q}: {e}");
                // The first series read gave six points (one past the cap), and reading
                // stopped: not the 200 points in the range.
                assert_eq!(ctx.raw_points.load(Ordering::Relaxed), 6, "{q}");
            }
            // Under the cap: three points read from each series, three rows answered.
            let ctx = f.context(limits);
            let s = run(&ctx, r#"SELECT "pm10" FROM "big" LIMIT 3"#).await.unwrap();
            assert_eq!(times(&s[0]), [-10, -10, -10]);
            assert_eq!(ctx.raw_points.load(Ordering::Relaxed), 20 * 3);
            let s = run(&ctx, r#"SELECT "pm10" FROM "big" WHERE "device" = 'b-07' ORDER BY time DESC LIMIT 2 OFFSET 1"#)
                .await
                .unwrap();
            assert_eq!(times(&s[0]), [-2, -3]);
        }

        #[tokio::test]
        async fn order_by_time_desc_reads_the_newest_points_only() {
            let f = fixture().await;
            // Two hundred points a millisecond apart two hours ago (0 to 199), and one (-1) an
            // hour ago; at most a hundred rows a series.
            let id = f.device("aq-1", "air_quality", &[(3600, -1.0)]).await;
            let t0 = NOW - 7200 * SEC;
            let burst = (0..200)
                .map(|i| (id, Timestamp::from_nanos(t0 + i * 1_000_000), Value::F64(i as f64)))
                .collect();
            f.store.write(burst).await.unwrap();
            let limits = Limits { max_rows: 100, ..ROOMY };
            let q = |cond: &str, n: usize| {
                format!(
                    r#"SELECT "pm10" FROM "air_quality" WHERE time > now() - 3h {cond} ORDER BY time DESC LIMIT {n}"#
                )
            };
            let values =
                |s: &Series| -> Vec<Cell> { s.values.iter().map(|r| r[1].clone()).collect() };
            // The newest point: one read, whatever lies before it.
            let ctx = f.context(limits);
            let s = run(&ctx, &q("", 1)).await.unwrap();
            assert_eq!(values(&s[0]), [Cell::Float(-1.0)]);
            assert_eq!(ctx.raw_points.load(Ordering::Relaxed), 1);
            // Before the lone point: the newest of the burst, although the burst holds more than
            // the cap.
            let ctx = f.context(limits);
            let s = run(&ctx, &q("AND time < now() - 90m", 3)).await.unwrap();
            assert_eq!(values(&s[0]), [Cell::Float(199.0), Cell::Float(198.0), Cell::Float(197.0)]);
            assert_eq!(ctx.raw_points.load(Ordering::Relaxed), 3);
            // The same once flushed. The index now counts whole chunks: that day's chunk holds
            // the burst and the lone point (201), so the narrowest window it promises three
            // points in is the nanosecond before the range's end, which holds none; the next
            // window, a second wide, holds them. The chunk is counted for each window read.
            f.store.flush().await.unwrap();
            let ctx = f.context(limits);
            let s = run(&ctx, &q("AND time < now() - 7200s + 150ms", 3)).await.unwrap();
            assert_eq!(values(&s[0]), [Cell::Float(149.0), Cell::Float(148.0), Cell::Float(147.0)]);
            assert_eq!(ctx.raw_points.load(Ordering::Relaxed), 2 * 201);
        }
    }
}
