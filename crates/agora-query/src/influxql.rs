//! InfluxQL, the subset that Grafana's InfluxDB data source and InfluxDB 1.x clients send, read
//! over agora's own model: a measurement is a device kind, the tag `device` a device id, the tags
//! `site` and `commune` its place, and a field a property — the mapping line protocol writes
//! with, so that what Telegraf wrote reads back in Grafana.
//!
//! [`parse`] turns a query string (statements separated by `;`) into the typed AST below, with
//! InfluxDB's error messages (`found X, expected Y at line 1, char N`); [`execute`] answers one
//! statement from the catalog and the store through this crate's summaries (energy means for
//! sound levels, the raw-point budget); [`render`] writes the answer in InfluxDB 1.x's JSON
//! shape.
//!
//! Supported: `SELECT` of `mean`, `median`, `count`, `sum`, `min`, `max`, `first`, `last` of a
//! field or of raw fields, with arithmetic on numbers and `AS`; `WHERE` on the tags and on
//! `time`; `GROUP BY time(d[, offset])`, tags and `fill(null|none|previous|linear|n)`; `ORDER BY
//! time`, `LIMIT`, `OFFSET`, `SLIMIT`, `SOFFSET`, `tz()`; `SHOW DATABASES`, `SHOW MEASUREMENTS`,
//! `SHOW TAG KEYS`, `SHOW TAG VALUES`, `SHOW FIELD KEYS`, `SHOW RETENTION POLICIES`; `CREATE
//! DATABASE` (answered, nothing created: agora is one database). Everything else is refused by
//! name: other statements when parsing, other functions and conditions on fields when
//! executing.
//!
//! A query is outside input, often sent by anyone who can reach the server: every size it
//! controls is capped, and each cap is named in the error that enforces it. The parser caps the
//! query's length, nesting (of expressions and of regex groups), operators, statements, fields,
//! `GROUP BY` tags, measurements, `IN` keys, function arguments and regex characters; the
//! statements of one request share a [`Context`] with one raw-point budget, one cap on the
//! values answered and one [`Deadline`], each checked before the work it bounds.

mod exec;
mod parse;
mod regex;
mod render;

pub use exec::{Answer, Cell, Context, ContextArgs, Deadline, Series, execute};
pub use parse::parse;
pub use regex::Regex;
pub use render::{Epoch, StatementResult, render};

/// A query: one or more statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The statements, in order (answered with `statement_id` 0, 1, …).
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `SELECT …`.
    Select(Box<Select>),
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW RETENTION POLICIES [ON db]`.
    ShowRetentionPolicies {
        /// The database named, if any.
        on: Option<String>,
    },
    /// `SHOW MEASUREMENTS …`.
    ShowMeasurements(ShowMeasurements),
    /// `SHOW TAG KEYS …`.
    ShowTagKeys(ShowTagKeys),
    /// `SHOW TAG VALUES …`.
    ShowTagValues(ShowTagValues),
    /// `SHOW FIELD KEYS …`.
    ShowFieldKeys(ShowFieldKeys),
    /// `CREATE DATABASE name [WITH …]`.
    CreateDatabase {
        /// The name given.
        name: String,
    },
}

/// `SELECT fields FROM sources [WHERE …] [GROUP BY …] [fill(…)] [ORDER BY time …] [LIMIT n]
/// [OFFSET n] [SLIMIT n] [SOFFSET n] [tz('…')]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// What is selected.
    pub fields: Vec<Field>,
    /// Which measurements.
    pub sources: Vec<Source>,
    /// The `WHERE` condition.
    pub condition: Option<Expr>,
    /// `GROUP BY time(…)`.
    pub group_time: Option<GroupTime>,
    /// `GROUP BY` tags, in the order written.
    pub group_tags: Vec<TagDimension>,
    /// How empty time buckets are answered (`fill(null)` by default).
    pub fill: Fill,
    /// `ORDER BY time DESC`.
    pub descending: bool,
    /// `LIMIT`: rows per series.
    pub limit: Option<u64>,
    /// `OFFSET`: rows skipped per series.
    pub offset: Option<u64>,
    /// `SLIMIT`: series.
    pub slimit: Option<u64>,
    /// `SOFFSET`: series skipped.
    pub soffset: Option<u64>,
    /// `tz('Area/City')`.
    pub tz: Option<chrono_tz::Tz>,
}

/// One selected expression, with its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
}

/// `GROUP BY time(interval[, offset])`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupTime {
    /// The bucket length (> 0).
    pub interval: i64,
    /// The shift of the buckets from the epoch (may be negative).
    pub offset: i64,
}

/// A `GROUP BY` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagDimension {
    /// A tag by name (`"device"`, `site::tag`).
    Tag(String),
    /// `*`: every tag.
    All,
}

/// `fill(…)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// Empty buckets are answered with `null`.
    Null,
    /// Empty buckets are left out.
    None,
    /// Empty buckets take the previous bucket's value.
    Previous,
    /// Empty buckets are interpolated between their neighbours.
    Linear,
    /// Empty buckets take this number.
    Number(f64),
}

/// A measurement source: `m`, `"rp"."m"`, `"db"."rp"."m"`, `/re/`, `"rp"./re/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The database, if named (agora is one database: any is accepted).
    pub database: Option<String>,
    /// The retention policy, if named (agora has one: any is accepted).
    pub retention_policy: Option<String>,
    /// The measurement.
    pub measurement: NameMatch,
}

/// A name, or a regex over names.
#[derive(Debug, Clone, PartialEq)]
pub enum NameMatch {
    /// Exactly this name.
    Name(String),
    /// Names this regex matches.
    Regex(Regex),
}

impl NameMatch {
    /// Whether `name` is matched.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Regex(r) => r.is_match(name),
        }
    }
}

/// `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT = m | =~ /re/] [WHERE …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowMeasurements {
    /// `WITH MEASUREMENT`.
    pub with: Option<NameMatch>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// `SHOW TAG KEYS [ON db] [FROM …] [WHERE …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagKeys {
    /// `FROM` (all measurements when empty).
    pub sources: Vec<Source>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `LIMIT`: keys per measurement.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// `SHOW TAG VALUES [ON db] [FROM …] WITH KEY … [WHERE …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagValues {
    /// `FROM` (all measurements when empty).
    pub sources: Vec<Source>,
    /// `WITH KEY`.
    pub key: KeyMatch,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `LIMIT`: values per measurement.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// `WITH KEY = k | != k | =~ /re/ | !~ /re/ | IN (a, b)`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    /// `= k`.
    Eq(String),
    /// `!= k`.
    Neq(String),
    /// `IN (a, b)`.
    In(Vec<String>),
    /// `=~ /re/`.
    Regex(Regex),
    /// `!~ /re/`.
    NotRegex(Regex),
}

impl KeyMatch {
    /// Whether the tag key `k` is asked for.
    pub fn matches(&self, k: &str) -> bool {
        match self {
            Self::Eq(x) => x == k,
            Self::Neq(x) => x != k,
            Self::In(xs) => xs.iter().any(|x| x == k),
            Self::Regex(r) => r.is_match(k),
            Self::NotRegex(r) => !r.is_match(k),
        }
    }
}

/// `SHOW FIELD KEYS [ON db] [FROM …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowFieldKeys {
    /// `FROM` (all measurements when empty).
    pub sources: Vec<Source>,
    /// `LIMIT`: keys per measurement.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// An expression: a selected value, or a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field or tag: `pm10`, `"pm10"::field`, `"device"::tag`.
    Var {
        /// Its name.
        name: String,
        /// The `::hint`.
        hint: Option<Hint>,
    },
    /// A function call: `mean("pm10")`, `now()`.
    Call {
        /// The function's name, lower-case.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
    /// `*`, with an optional `::field`/`::tag` hint.
    Wildcard(Option<Hint>),
    /// A number with a fraction.
    Float(f64),
    /// A whole number.
    Integer(i64),
    /// A duration, in nanoseconds (`5m`, `1700000000000ms`).
    Duration(i64),
    /// A string in single quotes.
    Str(String),
    /// `true` or `false`.
    Bool(bool),
    /// A regex `/…/` (right of `=~` and `!~`).
    Regex(Regex),
    /// `lhs op rhs`.
    Binary {
        /// The operator.
        op: Op,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `(expr)`.
    Paren(Box<Expr>),
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    Neq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `=~`.
    EqRegex,
    /// `!~`.
    NeqRegex,
    /// `AND`.
    And,
    /// `OR`.
    Or,
}

impl Op {
    /// Whether it compares (rather than computes or combines).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq
                | Self::Neq
                | Self::Lt
                | Self::Lte
                | Self::Gt
                | Self::Gte
                | Self::EqRegex
                | Self::NeqRegex
        )
    }
}

/// A `::type` hint after an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// `::tag`.
    Tag,
    /// `::field`.
    Field,
    /// `::float`, `::integer`, `::unsigned`, `::string` or `::boolean`: a field of that type.
    Type,
}
