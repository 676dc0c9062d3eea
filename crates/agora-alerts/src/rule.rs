//! Alert rules: what to watch (scope), when it is wrong (condition), when it matters (schedule),
//! how to avoid flapping (hysteresis, minimum duration), and what to do (actions). Rules are JSON
//! in the API and TOML in `agora.toml`.
//!
//! A rule is parsed once, into types: durations ([`Span`]), time zones ([`Zone`]), times of day
//! ([`TimeOfDay`]), days ([`Weekday`]) and property names are checked as they are read, so that
//! evaluation never parses again and has nothing to fall back on. `Rule::check` then refuses what
//! needs the catalogue or several fields (unknown properties, impossible windows, bad actions),
//! with a message naming the problem.

use std::fmt;
use std::time::Duration;

use agora_model::PropertyName;
use chrono::{Datelike, NaiveTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rule refused, with the reason.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct RuleError(pub String);

impl std::ops::Deref for RuleError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(msg.into()))
}

/// The longest duration a rule may name (a year, leap or not).
const MAX_DURATION_SECS: u64 = 366 * 86_400;

/// A duration in a rule, written `30s`, `15m`, `1h`, `1d` or `1w`: more than zero, at most 366
/// days. Written back in the largest unit that divides it (`60m` is `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

impl Span {
    /// Parse a duration as rules write it.
    pub fn parse(s: &str) -> Result<Self, RuleError> {
        let d = agora_query::parse_duration(s).map_err(|e| RuleError(e.to_string()))?;
        if d.as_secs() > MAX_DURATION_SECS {
            return bad(format!("bad duration {:?}: at most 366 days", s.trim()));
        }
        Ok(Self(d))
    }

    /// As a `Duration`.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// In nanoseconds (at most 366 days: never overflows).
    pub fn as_nanos(self) -> i64 {
        self.0.as_nanos() as i64
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        let (n, unit) = [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(u, _)| s.is_multiple_of(*u))
            .map_or((s, "s"), |(u, name)| (s / u, name));
        write!(f, "{n}{unit}")
    }
}

/// A time zone, by its IANA name (`Europe/Paris`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub chrono_tz::Tz);

impl Zone {
    /// The zone rules use when they name none.
    pub const PARIS: Self = Self(chrono_tz::Europe::Paris);

    /// Parse an IANA name.
    pub fn parse(s: &str) -> Result<Self, RuleError> {
        s.parse().map(Self).map_err(|_| {
            RuleError(format!("unknown time zone {s:?}: use an IANA name such as Europe/Paris"))
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// A time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(pub NaiveTime);

impl TimeOfDay {
    /// Midnight.
    pub const MIDNIGHT: Self = Self(NaiveTime::MIN);

    /// Parse `HH:MM`.
    pub fn parse(s: &str) -> Result<Self, RuleError> {
        NaiveTime::parse_from_str(s, "%H:%M")
            .map(Self)
            .map_err(|_| RuleError(format!("bad time of day {s:?}: use HH:MM")))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

/// Types a rule reads from text and writes back as text.
macro_rules! text_serde {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
text_serde!(Span, Zone, TimeOfDay);

/// OpenAPI schemas of the types rules read from text.
#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::{PartialSchema, ToSchema};

    fn text(description: &str, pattern: Option<&str>, example: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .pattern(pattern)
            .examples([example])
            .into()
    }

    macro_rules! text_schema {
        ($t:ty, $name:literal, $body:expr) => {
            impl PartialSchema for $t {
                fn schema() -> RefOr<Schema> {
                    $body
                }
            }
            impl ToSchema for $t {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed($name)
                }
            }
        };
    }

    text_schema!(
        super::Span,
        "Span",
        text(
            "A duration: a whole number above zero and s, m (or min), h, d or w; at most 366 days",
            Some("^[0-9]+(s|m|min|h|d|w)$"),
            "15m"
        )
    );
    text_schema!(super::Zone, "Zone", text("An IANA time zone", None, "Europe/Paris"));
    text_schema!(
        super::TimeOfDay,
        "TimeOfDay",
        text("A time of day, HH:MM", Some("^([01][0-9]|2[0-3]):[0-5][0-9]$"), "22:00")
    );
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    fn of(d: chrono::Weekday) -> Self {
        use chrono::Weekday as W;
        match d {
            W::Mon => Self::Mon,
            W::Tue => Self::Tue,
            W::Wed => Self::Wed,
            W::Thu => Self::Thu,
            W::Fri => Self::Fri,
            W::Sat => Self::Sat,
            W::Sun => Self::Sun,
        }
    }
}

/// How grave an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention.
    #[default]
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Comparison of a value with the rule's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Op {
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Different.
    #[serde(rename = "!=")]
    Ne,
}

impl Op {
    /// Whether `v op limit` holds.
    pub fn holds(self, v: f64, limit: f64) -> bool {
        match self {
            Self::Gt => v > limit,
            Self::Ge => v >= limit,
            Self::Lt => v < limit,
            Self::Le => v <= limit,
            Self::Eq => v == limit,
            Self::Ne => v != limit,
        }
    }

    /// Whether a condition that holds has cleared, `margin` beyond the limit (hysteresis).
    pub fn cleared(self, v: f64, limit: f64, margin: f64) -> bool {
        match self {
            Self::Gt | Self::Ge => v < limit - margin || (margin == 0.0 && !self.holds(v, limit)),
            Self::Lt | Self::Le => v > limit + margin || (margin == 0.0 && !self.holds(v, limit)),
            Self::Eq | Self::Ne => !self.holds(v, limit),
        }
    }

    /// The symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => "≥",
            Self::Lt => "<",
            Self::Le => "≤",
            Self::Eq => "=",
            Self::Ne => "≠",
        }
    }
}

/// Which devices a rule watches. Empty: every device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RuleScope))]
pub struct Scope {
    /// One device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Every device of a kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Every device of a site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Every device of a commune.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune: Option<String>,
}

/// Aggregation over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WindowFn {
    /// Mean (energy mean for sound levels).
    #[default]
    Mean,
    /// Largest value.
    Max,
    /// Smallest value.
    Min,
}

impl WindowFn {
    /// The aggregation it computes over a window.
    pub fn agg_fn(self) -> agora_store::AggFn {
        match self {
            Self::Mean => agora_store::AggFn::Mean,
            Self::Max => agora_store::AggFn::Max,
            Self::Min => agora_store::AggFn::Min,
        }
    }
}

/// When a rule is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Condition {
    /// Each point: `property op value`.
    Threshold {
        /// Property.
        property: PropertyName,
        /// Comparison.
        op: Op,
        /// Limit, in the property's unit.
        value: f64,
    },
    /// A reported state: `status == "defectiveLamp"`, `lamp_on == true`.
    State {
        /// Property.
        property: PropertyName,
        /// `==` or `!=`.
        op: Op,
        /// The state (string, boolean or number).
        #[cfg_attr(feature = "openapi", schema(value_type = Value))]
        value: serde_json::Value,
    },
    /// Each point's condition holding without a break for a duration.
    Sustained {
        /// Property.
        property: PropertyName,
        /// Comparison.
        op: Op,
        /// Limit.
        value: f64,
        /// How long, e.g. `30m`.
        #[serde(rename = "for")]
        duration: Span,
    },
    /// Change of a value over a duration: `v(t) − v(t − over) op value`.
    Rate {
        /// Property.
        property: PropertyName,
        /// Comparison of the change.
        op: Op,
        /// Limit of the change.
        value: f64,
        /// Over how long, e.g. `1h`.
        over: Span,
    },
    /// An aggregate over completed windows (`1h` hourly, `1d` days in `tz`), `count` consecutive
    /// windows in a row (3 hours of NO2 above 400).
    Window {
        /// Property.
        property: PropertyName,
        /// Aggregation.
        #[serde(default, rename = "fn")]
        func: WindowFn,
        /// Window length: whole minutes up to a day, e.g. `15m`, `1h`, `1d`.
        every: Span,
        /// Time zone of days (default Europe/Paris).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tz: Option<Zone>,
        /// Comparison.
        op: Op,
        /// Limit.
        value: f64,
        /// Consecutive windows needed (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// The device silent longer than `periods` × its reporting period, or than `for`.
    NoData {
        /// Multiples of the device's period (metadata `period_s`, else one hour).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        periods: Option<f64>,
        /// Or a fixed duration.
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        duration: Option<Span>,
    },
    /// A forecast: `predicted value within horizon op value`. Never true until a forecaster is
    /// plugged in (`Forecaster`).
    Forecast {
        /// Property.
        property: PropertyName,
        /// How far ahead, e.g. `6h`.
        horizon: Span,
        /// Comparison.
        op: Op,
        /// Limit.
        value: f64,
    },
    /// An anomaly of the device's series of `property` found by agora's forecasting service
    /// (`/api/v1/anomalies`): hours outside the 99.9 % interval of their forecast three hours in a
    /// row, a lasting level shift, or a drift from the other sensors of its place. Holds while the
    /// latest hourly model finds one that reaches its last hours.
    Anomaly {
        /// Property.
        property: PropertyName,
    },
    /// An official indicator of the device's readings, computed as `/api/v1/indicators` computes
    /// it, for each completed day (each hour for the EAQI): `indicator op value`. A schedule is
    /// checked at each period's start (midnight for ATMO and canicule, 6 h for Lden and Lnight).
    Indicator {
        /// Which indicator.
        name: Indicator,
        /// Comparison.
        op: Op,
        /// Limit: a class (1 to 6) for ATMO and EAQI, dB(A) for Lden and Lnight, 1 (a canicule
        /// day) or 0 for canicule.
        value: f64,
    },
    /// Every condition.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    All(Vec<Condition>),
    /// At least one condition.
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    Any(Vec<Condition>),
}

fn one() -> u32 {
    1
}

/// An official indicator a rule can watch. Each is known once its period is over: the ATMO index
/// and canicule days at local midnight, Lden and Lnight at 6 h the next morning (the noise day
/// runs from 6 h to 6 h), the EAQI at the end of each hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Indicator {
    /// The French ATMO index of each local day (Europe/Paris): 1 bon, 2 moyen, 3 dégradé,
    /// 4 mauvais, 5 très mauvais, 6 extrêmement mauvais.
    Atmo,
    /// The European Air Quality Index of each hour: 1 good … 6 extremely poor.
    Eaqi,
    /// Lden of each noise day, dB(A).
    Lden,
    /// Lnight of each night (22 h to 6 h), dB(A).
    Lnight,
    /// 1 on a canicule day (the 3-day means of daily minima and maxima reach the commune's
    /// thresholds), 0 on another day with the three days measured.
    Canicule,
    /// 1 on a day a pedestrian counter counted zero for 3 hours or more when people usually pass,
    /// or under 30 % of its typical day (the same weekday's hourly medians over the 8 weeks
    /// before); 0 on a day it counted as usual. Days without data, or without a typical day yet,
    /// have no value.
    CounterHealth,
}

impl Indicator {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Atmo => "atmo",
            Self::Eaqi => "eaqi",
            Self::Lden => "lden",
            Self::Lnight => "lnight",
            Self::Canicule => "canicule",
            Self::CounterHealth => "counter_health",
        }
    }
}

/// When a rule applies, in local time: days of the week and hours (a range may cross midnight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    /// `mon` … `sun`; empty: every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// Start, `HH:MM`.
    #[serde(default = "midnight")]
    pub from: TimeOfDay,
    /// End, `HH:MM` (before `from`: crosses midnight, and the days are those of the start).
    #[serde(default = "midnight")]
    pub to: TimeOfDay,
    /// Time zone (default Europe/Paris).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<Zone>,
}

fn midnight() -> TimeOfDay {
    TimeOfDay::MIDNIGHT
}

/// What an action reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Event {
    /// The alert opened.
    Opened,
    /// Someone acknowledged it.
    Acknowledged,
    /// It ended.
    Resolved,
}

impl Event {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }
}

fn default_events() -> Vec<Event> {
    vec![Event::Opened, Event::Resolved]
}

/// What to do when an alert opens (or is acknowledged, or ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Action {
    /// POST the alert as JSON, signed with HMAC-SHA256 when a secret is set.
    Webhook {
        /// URL.
        url: String,
        /// Shared secret of the `X-Agora-Signature` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
        /// Events (default opened and resolved).
        #[serde(default = "default_events")]
        on: Vec<Event>,
    },
    /// Publish a command to equipment. `{device}`, `{site}` and `{rule}` in the topic and in
    /// string values of the payload are replaced.
    Mqtt {
        /// Topic, e.g. `agora/commands/{device}`.
        topic: String,
        /// Payload (JSON); default: the alert.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<serde_json::Value>,
        /// QoS 0 or 1.
        #[serde(default = "one_u8")]
        qos: u8,
        /// Retain the message.
        #[serde(default)]
        retain: bool,
        /// Events (default opened).
        #[serde(default = "opened_only")]
        on: Vec<Event>,
    },
    /// Call a method on a device (a server-side RPC, as ThingsBoard devices take them) and log its
    /// answer: `{"type": "rpc", "method": "setDimLevel", "params": {"level": 100}}`. The device is
    /// the alert's own unless `device` names another (`{device}`, `{site}` replaced).
    Rpc {
        /// The device to call (default: the alert's device).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// The method, as the device's firmware names it.
        method: String,
        /// Its parameters (JSON; `{device}`, `{site}`, `{rule}` in strings replaced).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<serde_json::Value>,
        /// How long to wait for the answer, in milliseconds (1 to 60,000; default 10,000).
        #[serde(default = "rpc_timeout_ms")]
        timeout_ms: u64,
        /// Events (default opened).
        #[serde(default = "opened_only")]
        on: Vec<Event>,
    },
    /// Send an email through the configured SMTP server.
    Email {
        /// Addresses.
        to: Vec<String>,
        /// Events (default opened and resolved).
        #[serde(default = "default_events")]
        on: Vec<Event>,
    },
}

fn one_u8() -> u8 {
    1
}

fn rpc_timeout_ms() -> u64 {
    10_000
}

fn opened_only() -> Vec<Event> {
    vec![Event::Opened]
}

impl Action {
    /// The events it reacts to.
    pub fn events(&self) -> &[Event] {
        match self {
            Self::Webhook { on, .. }
            | Self::Mqtt { on, .. }
            | Self::Rpc { on, .. }
            | Self::Email { on, .. } => on,
        }
    }

    /// `webhook`, `mqtt`, `rpc` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Mqtt { .. } => "mqtt",
            Self::Rpc { .. } => "rpc",
            Self::Email { .. } => "email",
        }
    }
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rule {
    /// Identifier: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// For people.
    #[serde(default)]
    pub name: String,
    /// Severity of its alerts.
    #[serde(default)]
    pub severity: Severity,
    /// Whether it is evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which devices.
    #[serde(default)]
    pub scope: Scope,
    /// When it is wrong.
    pub condition: Condition,
    /// When it applies (default: always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Margin beyond the limit before a threshold condition clears (in the property's unit).
    #[serde(default)]
    pub hysteresis: f64,
    /// How long the condition must hold before the alert opens, e.g. `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration: Option<Span>,
    /// What to do.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// The built-in template it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

fn yes() -> bool {
    true
}

/// Parse a duration as rules write it (see [`Span`]).
pub fn parse_duration(s: &str) -> Result<Duration, RuleError> {
    Span::parse(s).map(Span::duration)
}

impl Schedule {
    /// Whether the schedule covers time `t_ns`.
    pub fn covers(&self, t_ns: i64) -> bool {
        let (from, to) = (self.from.0, self.to.0);
        let tz = self.tz.unwrap_or(Zone::PARIS).0;
        let local = chrono::DateTime::from_timestamp_nanos(t_ns).with_timezone(&tz);
        let now = local.time();
        let now = NaiveTime::from_hms_opt(now.hour(), now.minute(), now.second()).unwrap_or(now);
        let day = |offset: i64| {
            let wd = if offset == 0 { local.weekday() } else { local.weekday().pred() };
            self.days.is_empty() || self.days.contains(&Weekday::of(wd))
        };
        if from == to {
            return day(0);
        }
        if from < to {
            now >= from && now < to && day(0)
        } else if now >= from {
            day(0)
        } else if now < to {
            // After midnight: the range belongs to the day it started.
            day(-1)
        } else {
            false
        }
    }
}

/// Property names a rule refers to.
pub fn properties(c: &Condition, out: &mut Vec<String>) {
    match c {
        Condition::Threshold { property, .. }
        | Condition::State { property, .. }
        | Condition::Sustained { property, .. }
        | Condition::Rate { property, .. }
        | Condition::Window { property, .. }
        | Condition::Forecast { property, .. }
        | Condition::Anomaly { property } => out.push(property.to_string()),
        Condition::NoData { .. } | Condition::Indicator { .. } => {}
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| properties(c, out)),
    }
}

impl Rule {
    /// Check everything that can be checked without data: identifiers, known properties,
    /// expressions, durations, windows, schedules and actions.
    pub fn check(&self, known_property: &dyn Fn(&str) -> bool) -> Result<(), RuleError> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return bad(format!(
                "bad rule id {:?}: 1 to 64 lower-case letters, digits, - or _",
                self.id
            ));
        }
        check_condition(&self.condition, known_property, 0)?;
        if !self.hysteresis.is_finite() || self.hysteresis < 0.0 {
            return bad(format!("hysteresis must be a number ≥ 0, not {}", self.hysteresis));
        }
        for a in &self.actions {
            check_action(a)?;
        }
        Ok(())
    }

    /// The minimum duration, in nanoseconds (0: none).
    pub fn min_duration_ns(&self) -> i64 {
        self.min_duration.map_or(0, Span::as_nanos)
    }
}

/// Whether an action can work: a webhook's URL, an MQTT topic and QoS, an RPC's method and
/// timeout, an email's addresses.
pub fn check_action(a: &Action) -> Result<(), RuleError> {
    match a {
        Action::Webhook { url, .. } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!(
                    "webhook url {:?} must start with http:// or https://",
                    crate::secrets::mask_url(url)
                ));
            }
        }
        Action::Mqtt { topic, qos, .. } => {
            if topic.is_empty() || topic.contains('#') || topic.contains('+') {
                return bad(format!("bad MQTT topic {topic:?}: no wildcards in a published topic"));
            }
            if *qos > 1 {
                return bad(format!("MQTT qos must be 0 or 1, not {qos}"));
            }
        }
        Action::Rpc { method, timeout_ms, .. } => {
            if method.is_empty() || method.len() > 256 {
                return bad("an rpc action needs a method of 1 to 256 bytes");
            }
            if !(1..=60_000).contains(timeout_ms) {
                return bad(format!("rpc timeout_ms must be 1 to 60000, not {timeout_ms}"));
            }
        }
        Action::Email { to, .. } => {
            if to.is_empty() {
                return bad("an email action needs at least one address in \"to\"");
            }
            if to.len() > 100 {
                return bad("an email action takes at most 100 addresses");
            }
            if let Some((a, e)) =
                to.iter().find_map(|a| a.parse::<lettre::message::Mailbox>().err().map(|e| (a, e)))
            {
                return bad(format!("bad email address {a:?}: {e}"));
            }
        }
    }
    Ok(())
}

fn check_condition(
    c: &Condition,
    known: &dyn Fn(&str) -> bool,
    depth: usize,
) -> Result<(), RuleError> {
    if depth > 8 {
        return bad("conditions nested more than 8 deep");
    }
    let prop = |p: &PropertyName| {
        if known(p.as_str()) { Ok(()) } else { bad(format!("unknown property \"{p}\"")) }
    };
    let finite = |v: f64| {
        if v.is_finite() { Ok(()) } else { bad("the value must be a finite number") }
    };
    match c {
        Condition::Threshold { property, value, .. } => {
            prop(property)?;
            finite(*value)
        }
        Condition::State { property, op, value } => {
            prop(property)?;
            if !matches!(op, Op::Eq | Op::Ne) {
                return bad(format!(
                    "a state condition compares with == or !=, not {}",
                    op.symbol()
                ));
            }
            if !(value.is_string() || value.is_boolean() || value.is_number()) {
                return bad("a state is a string, a boolean or a number");
            }
            Ok(())
        }
        Condition::Sustained { property, value, .. } | Condition::Rate { property, value, .. } => {
            prop(property)?;
            finite(*value)
        }
        Condition::Window { property, every, value, count, .. } => {
            prop(property)?;
            finite(*value)?;
            let s = every.duration().as_secs();
            if !(60..=86_400).contains(&s) || s % 60 != 0 || 86_400 % s != 0 {
                return bad(format!(
                    "impossible window \"{every}\": a whole number of minutes dividing a day, from 1m to 1d"
                ));
            }
            if *count == 0 || *count > 168 {
                return bad(format!("count must be between 1 and 168 windows, not {count}"));
            }
            Ok(())
        }
        Condition::NoData { periods, duration } => match (periods, duration) {
            (Some(p), None) if p.is_finite() && *p > 0.0 => Ok(()),
            (None, Some(_)) => Ok(()),
            _ => bad("no_data needs periods (a number > 0) or for (a duration), one of them"),
        },
        Condition::Forecast { property, horizon, value, .. } => {
            prop(property)?;
            // A rule agora's forecasts can never answer is refused, not left silent.
            let forecastable = agora_query::forecast::FORECASTABLE;
            if !forecastable.contains(&property.as_str()) {
                return bad(format!(
                    "{property} is not forecast: agora forecasts {}",
                    forecastable.join(", ")
                ));
            }
            let most = agora_query::forecast::HORIZON as u64;
            if horizon.duration().as_secs() > most * 3600 {
                return bad(format!("a forecast horizon reaches {most} hours at most"));
            }
            finite(*value)
        }
        Condition::Anomaly { property } => {
            prop(property)?;
            let forecastable = agora_query::forecast::FORECASTABLE;
            if !forecastable.contains(&property.as_str()) {
                return bad(format!(
                    "{property} is not modelled: agora looks for anomalies in {}",
                    forecastable.join(", ")
                ));
            }
            Ok(())
        }
        Condition::Indicator { name, value, .. } => {
            finite(*value)?;
            let (lo, hi) = match name {
                Indicator::Atmo | Indicator::Eaqi => (1.0, 6.0),
                Indicator::Lden | Indicator::Lnight => (0.0, 200.0),
                Indicator::Canicule | Indicator::CounterHealth => (0.0, 1.0),
            };
            if !(lo..=hi).contains(value) {
                return bad(format!(
                    "the {} indicator is compared with a value from {lo} to {hi}, not {value}",
                    name.as_str()
                ));
            }
            Ok(())
        }
        Condition::All(v) | Condition::Any(v) => {
            if v.is_empty() {
                return bad("all/any needs at least one condition");
            }
            v.iter().try_for_each(|c| check_condition(c, known, depth + 1))
        }
    }
}

/// The built-in templates, from French regulations and the cities' needs. Each is a rule,
/// disabled until enabled through `POST /api/v1/rules {"template": ID}` (scope, actions and id
/// may be given there).
pub fn templates() -> Vec<Rule> {
    let json = serde_json::json!([
        {"id": "o3-information", "name": "O3 : seuil d'information (180 µg/m³ en moyenne horaire)", "severity": "warning",
         "condition": {"window": {"property": "o3", "every": "1h", "op": ">", "value": 180.0}}},
        {"id": "o3-alert", "name": "O3 : seuil d'alerte (240 µg/m³ en moyenne horaire)", "severity": "critical",
         "condition": {"window": {"property": "o3", "every": "1h", "op": ">", "value": 240.0}}},
        {"id": "no2-alert", "name": "NO2 : seuil d'alerte (400 µg/m³ trois heures consécutives)", "severity": "critical",
         "condition": {"window": {"property": "no2", "every": "1h", "op": ">", "value": 400.0, "count": 3}}},
        {"id": "pm10-information", "name": "PM10 : seuil d'information (50 µg/m³ en moyenne journalière)", "severity": "warning",
         "condition": {"window": {"property": "pm10", "every": "1d", "tz": "Europe/Paris", "op": ">", "value": 50.0}}},
        {"id": "pm10-alert", "name": "PM10 : seuil d'alerte (80 µg/m³ en moyenne journalière)", "severity": "critical",
         "condition": {"window": {"property": "pm10", "every": "1d", "tz": "Europe/Paris", "op": ">", "value": 80.0}}},
        {"id": "night-noise", "name": "Bruit nocturne (LAeq > 55 dB(A) pendant 30 min entre 22 h et 6 h)", "severity": "warning",
         "condition": {"sustained": {"property": "laeq", "op": ">", "value": 55.0, "for": "30m"}},
         "schedule": {"from": "22:00", "to": "06:00"}, "hysteresis": 2.0},
        {"id": "bin-full", "name": "Bac rempli à 80 % ou plus", "severity": "warning",
         "condition": {"threshold": {"property": "fill_level", "op": ">=", "value": 80.0}}, "hysteresis": 10.0},
        {"id": "lamp-on-in-daylight", "name": "Lampe allumée en plein jour", "severity": "info",
         "condition": {"state": {"property": "lamp_on", "op": "==", "value": true}},
         "schedule": {"from": "11:00", "to": "16:00"}, "min_duration": "30m"},
        {"id": "lamp-off-at-night", "name": "Lampe éteinte en pleine nuit", "severity": "warning",
         "condition": {"state": {"property": "lamp_on", "op": "==", "value": false}},
         "schedule": {"from": "23:00", "to": "05:00"}, "min_duration": "30m"},
        {"id": "lamp-defective", "name": "Lampe défectueuse", "severity": "warning",
         "condition": {"state": {"property": "lamp_status", "op": "==", "value": "defectiveLamp"}}},
        {"id": "soil-dry", "name": "Sol trop sec (humidité < 15 %)", "severity": "warning",
         "condition": {"threshold": {"property": "soil_moisture", "op": "<", "value": 15.0}}, "hysteresis": 2.0},
        {"id": "atmo-bad-day", "name": "Indice ATMO mauvais ou pire sur la journée", "severity": "warning",
         "condition": {"indicator": {"name": "atmo", "op": ">=", "value": 4.0}}},
        {"id": "canicule", "name": "Épisode de canicule (moyennes sur 3 jours des minima et maxima au seuil)", "severity": "critical",
         "condition": {"indicator": {"name": "canicule", "op": "==", "value": 1.0}}},
        {"id": "lnight-high", "name": "Nuit bruyante (Lnight > 55 dB(A))", "severity": "warning",
         "condition": {"indicator": {"name": "lnight", "op": ">", "value": 55.0}}},
        {"id": "counter-suspect", "name": "Compteur piéton suspect (zéro aux heures de passage, ou très en dessous de sa journée type)", "severity": "warning",
         "condition": {"indicator": {"name": "counter_health", "op": "==", "value": 1.0}}},
        {"id": "o3-forecast-information", "name": "O3 : seuil d'information (180 µg/m³) prévu dans les 24 h", "severity": "info",
         "condition": {"forecast": {"property": "o3", "horizon": "24h", "op": ">", "value": 180.0}}},
        {"id": "bin-full-forecast", "name": "Bac prévu plein (90 % ou plus) dans les 12 h", "severity": "info",
         "condition": {"forecast": {"property": "fill_level", "horizon": "12h", "op": ">=", "value": 90.0}}},
        {"id": "air-sensor-anomaly", "name": "Capteur de particules anormal (dérive par rapport à ses voisins, saut de niveau ou lectures invraisemblables)", "severity": "warning",
         "condition": {"any": [{"anomaly": {"property": "pm10"}}, {"anomaly": {"property": "pm2_5"}}]}},
        {"id": "noise-sensor-anomaly", "name": "Sonomètre anormal (saut de niveau ou lectures invraisemblables)", "severity": "warning",
         "condition": {"anomaly": {"property": "laeq"}}},
        {"id": "device-offline", "name": "Objet silencieux (3 périodes sans message)", "severity": "warning",
         "condition": {"no_data": {"periods": 3.0}}},
    ]);
    let mut v: Vec<Rule> = serde_json::from_value(json).expect("the templates are valid (tested)");
    for r in &mut v {
        r.enabled = false;
        r.template = Some(r.id.clone());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(p: &str) -> bool {
        [
            "o3",
            "no2",
            "pm10",
            "pm2_5",
            "laeq",
            "fill_level",
            "lamp_on",
            "lamp_status",
            "soil_moisture",
            "temperature",
        ]
        .contains(&p)
    }

    /// A rule of this condition, checked; the reason when refused.
    fn rule(c: serde_json::Value) -> Result<Rule, RuleError> {
        let r: Rule = serde_json::from_value(serde_json::json!({"id": "r", "condition": c}))
            .map_err(|e| RuleError(e.to_string()))?;
        r.check(&known)?;
        Ok(r)
    }

    #[test]
    fn templates_are_valid() {
        let t = templates();
        assert_eq!(t.len(), 20);
        for r in &t {
            r.check(&known).unwrap_or_else(|e| panic!("{}: {e}", r.id));
            assert!(!r.enabled);
        }
    }

    #[test]
    fn invalid_rules_are_named() {
        assert!(
            rule(serde_json::json!({"threshold": {"property": "nope", "op": ">", "value": 1}}))
                .unwrap_err()
                .contains("unknown property \"nope\"")
        );
        assert!(
            rule(serde_json::json!({"threshold": {"property": "o3", "op": "~", "value": 1}}))
                .unwrap_err()
                .contains("unknown variant")
        );
        assert!(rule(serde_json::json!({"window": {"property": "o3", "every": "7m", "op": ">", "value": 1}})).unwrap_err().contains("impossible window"));
        assert!(rule(serde_json::json!({"window": {"property": "o3", "every": "2d", "op": ">", "value": 1}})).unwrap_err().contains("impossible window"));
        assert!(rule(serde_json::json!({"all": []})).unwrap_err().contains("at least one"));
        assert!(
            rule(serde_json::json!({"state": {"property": "lamp_on", "op": ">", "value": true}}))
                .unwrap_err()
                .contains("== or !=")
        );
        assert!(rule(serde_json::json!({"no_data": {}})).unwrap_err().contains("periods"));
        assert!(
            rule(
                serde_json::json!({"threshold": {"property": "o3", "op": ">", "value": 1}, "x": 1})
            )
            .is_err()
        );
        assert!(rule(serde_json::json!({"any": [{"threshold": {"property": "o3", "op": ">", "value": 1}}, {"no_data": {"for": "2h"}}]})).is_ok());
        for (d, says) in [
            ("18446744073709551615w", "too long"),
            ("367d", "at most 366 days"),
            ("0s", "more than zero"),
            ("5 minutes", "unknown unit"),
            ("٣h", "no number"),
        ] {
            let e = parse_duration(d).unwrap_err().0;
            assert!(e.contains(says), "{d}: {e}");
        }
        assert_eq!(parse_duration("366d").unwrap().as_secs(), 366 * 86_400);
        // Parsed once, as the rule is read: a bad duration, zone, time or day never reaches
        // evaluation (which used to fall back to 0 ns or Europe/Paris).
        for (c, says) in [
            (
                serde_json::json!({"sustained": {"property": "o3", "op": ">", "value": 1, "for": "5x"}}),
                "unknown unit",
            ),
            (
                serde_json::json!({"window": {"property": "o3", "every": "1h", "tz": "Mars/Olympus", "op": ">", "value": 1}}),
                "unknown time zone",
            ),
            (
                serde_json::json!({"forecast": {"property": "o3", "horizon": "0h", "op": ">", "value": 1}}),
                "more than zero",
            ),
            (
                serde_json::json!({"threshold": {"property": "PM 10", "op": ">", "value": 1}}),
                "property name",
            ),
            (
                serde_json::json!({"forecast": {"property": "o3", "horizon": "3d", "op": ">", "value": 1}}),
                "48 hours at most",
            ),
            (
                serde_json::json!({"forecast": {"property": "lamp_on", "horizon": "6h", "op": ">", "value": 1}}),
                "lamp_on is not forecast",
            ),
        ] {
            let e = rule(c).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let sched = |v| serde_json::from_value::<Schedule>(v).map_err(|e| e.to_string());
        assert!(
            sched(serde_json::json!({"from": "25:00"})).unwrap_err().contains("bad time of day")
        );
        assert!(
            sched(serde_json::json!({"days": ["lun"]})).unwrap_err().contains("unknown variant")
        );
    }

    #[test]
    fn typed_fields_are_written_back_as_text() {
        let r = rule(serde_json::json!({"window": {"property": "pm10", "every": "1440m", "tz": "Europe/Paris", "op": ">", "value": 50}})).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["condition"]["window"]["every"], "1d");
        assert_eq!(v["condition"]["window"]["tz"], "Europe/Paris");
        let back: Rule = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        for (text, shown) in [("90s", "90s"), ("60m", "1h"), ("7d", "1w"), ("36h", "36h")] {
            assert_eq!(Span::parse(text).unwrap().to_string(), shown);
        }
        let s: Schedule = serde_json::from_value(
            serde_json::json!({"days": ["sat"], "from": "22:00", "to": "06:00"}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({"days": ["sat"], "from": "22:00", "to": "06:00"})
        );
    }

    #[test]
    fn schedules_cross_midnight() {
        let hm = |t: &str| TimeOfDay::parse(t).unwrap();
        let s = Schedule { days: vec![], from: hm("22:00"), to: hm("06:00"), tz: None };
        // 2026-01-01 is a Thursday; Paris is UTC+1 in winter.
        let at = |h: i64, m: i64| (1_767_225_600 + h * 3600 + m * 60 - 3600) * 1_000_000_000;
        assert!(s.covers(at(23, 0)));
        assert!(s.covers(at(5, 59)));
        assert!(!s.covers(at(6, 0)));
        assert!(!s.covers(at(12, 0)));
        let weekend =
            Schedule { days: vec![Weekday::Sat], from: hm("22:00"), to: hm("06:00"), tz: None };
        assert!(!weekend.covers(at(23, 0)), "Thursday");
        assert!(weekend.covers(at(48 + 23, 0)), "Saturday night");
        assert!(weekend.covers(at(72 + 2, 0)), "Sunday 2 h belongs to Saturday night");
        assert!(!weekend.covers(at(96 + 2, 0)), "Monday 2 h");
    }

    #[test]
    fn hysteresis_clears_beyond_the_margin() {
        assert!(Op::Gt.holds(81.0, 80.0));
        assert!(!Op::Gt.cleared(79.0, 80.0, 5.0));
        assert!(Op::Gt.cleared(74.9, 80.0, 5.0));
        assert!(Op::Lt.cleared(17.1, 15.0, 2.0));
        assert!(Op::Gt.cleared(80.0, 80.0, 0.0));
    }
}
