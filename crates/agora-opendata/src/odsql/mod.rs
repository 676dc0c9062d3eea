//! ODSQL, the query language of the Opendatasoft Explore API v2.1, in the subset reusers write:
//! `select` (fields, `*`, arithmetic, `count(*)`, `count(f)`, `avg`, `sum`, `min`, `max`, `AS`
//! aliases), `where` (comparisons with `=`/`:`/`!=`/`<>`/`<`/`<=`/`>`/`>=`, `and`/`or`/`not`,
//! `in` lists and ranges `[a..b]`/`]a..b[`, `is [not] null`, date literals `date'2024-05'`,
//! `like`, `search()`, `startswith()`, a bare string as a full-text search), `group_by` (fields,
//! `year()`, `month()`, `day()`, `hour()`, `minute()`, `second()`, `dayofweek()`,
//! `date_format()`, with aliases) and `order_by` (`asc`/`desc`, on aliases and aggregates).
//!
//! [`parse`] reads one clause into the typed AST below with the real API's syntax error:
//! `ODSQL syntax exception: unexpected X at position N in <clause>` (N counts characters from
//! 0). [`eval`] checks a parsed query against a dataset's fields (`Unknown field: x`, functions
//! outside the subset named) and answers it over records, as the real API answers it: nulls
//! never compare, aggregates skip them, groups of null keys exist.

pub mod eval;
mod parse;

pub use eval::{Compiled, Field, FieldType, Outcome, Row, V, compile};
pub use parse::{parse_group_by, parse_order_by, parse_select, parse_where};

/// An ODSQL clause, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clause {
    /// `select`
    Select,
    /// `where`
    Where,
    /// `group_by`
    GroupBy,
    /// `order_by`
    OrderBy,
    /// `refine` or `exclude`
    Refine,
}

impl Clause {
    /// Its name in error messages, as the real API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Clause::Select => "select",
            Clause::Where => "where",
            Clause::GroupBy => "group_by",
            Clause::OrderBy => "order_by",
            Clause::Refine => "refine",
        }
    }
}

/// What is wrong with a query, in the real API's two kinds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OdsqlError {
    /// The text does not parse (`error_code: ODSQLSyntaxError`).
    #[error("ODSQL syntax exception: {detail}. Clause(s) containing the error(s): {}.", clause.as_str())]
    Syntax {
        /// What was found where: `unexpected ) at position 12 in pm10 > (3))`.
        detail: String,
        /// Which clause.
        clause: Clause,
    },
    /// It parses but asks for something this dataset or agora does not have
    /// (`error_code: ODSQLError`).
    #[error("ODSQL query is malformed: {detail}. Clause(s) containing the error(s): {}.", clause.as_str())]
    Malformed {
        /// What: `Unknown field: departement`.
        detail: String,
        /// Which clause.
        clause: Clause,
    },
}

impl OdsqlError {
    /// The real API's `error_code`.
    pub fn code(&self) -> &'static str {
        match self {
            OdsqlError::Syntax { .. } => "ODSQLSyntaxError",
            OdsqlError::Malformed { .. } => "ODSQLError",
        }
    }

    pub(crate) fn malformed(clause: Clause, detail: impl Into<String>) -> Self {
        OdsqlError::Malformed { detail: detail.into(), clause }
    }
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (a division by zero is null)
    Div,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=` or `:`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `null`
    Null,
    /// `true`, `false`
    Bool(bool),
    /// `12`, `5.8`
    Num(f64),
    /// `"Paris"`, `'Paris'`
    Text(String),
    /// `date'2024-05-01T10:00'`: its text, read against the query's time zone when compiled.
    Date(String),
}

/// An expression, in every clause.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field by name.
    Field(String),
    /// A literal.
    Lit(Lit),
    /// `*` (in `count(*)` and `search(*, …)`).
    Star,
    /// A function call, its name lowercased; `count(distinct f)` is `count_distinct`.
    Call(String, Vec<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a + b` …
    Arith(Arith, Box<Expr>, Box<Expr>),
    /// `a = b` …
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `e is null` (false) or `e is not null` (true).
    IsNull(Box<Expr>, bool),
    /// `e is true` / `e is false`.
    IsBool(Box<Expr>, bool),
    /// `e in (a, b, c)`
    InList(Box<Expr>, Vec<Expr>),
    /// `e in [lo..hi]` with each bound inclusive or not; `*` is an open bound.
    InRange {
        /// Tested.
        e: Box<Expr>,
        /// Lower bound (`None`: open).
        lo: Option<Box<Expr>>,
        /// Whether `lo` is included (`[`).
        lo_incl: bool,
        /// Upper bound.
        hi: Option<Box<Expr>>,
        /// Whether `hi` is included (`]`).
        hi_incl: bool,
    },
    /// `e like "text"`
    Like(Box<Expr>, String),
}

/// One item of `select` or `group_by`: an expression, its alias, and its text as written (the
/// answer's key when there is no alias).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
    /// The text written, trimmed.
    pub text: String,
}

impl Item {
    /// The key of its column in answers.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(match &self.expr {
            Expr::Field(f) => f,
            _ => &self.text,
        })
    }
}

/// `select`: every field, or items.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `*` (or no select).
    All,
    /// Items.
    Items(Vec<Item>),
}

/// One item of `order_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The expression (a field, an alias, an aggregate).
    pub expr: Expr,
    /// Its text, to match a select item's.
    pub text: String,
    /// `desc`
    pub desc: bool,
}

/// A whole query, as the records endpoint's parameters give it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `select`
    pub select: Select,
    /// Every `where` (they are and-ed).
    pub filter: Option<Expr>,
    /// `group_by`
    pub group_by: Vec<Item>,
    /// `order_by`
    pub order_by: Vec<Order>,
}

impl Query {
    /// A query of every field of every record, in the dataset's order.
    pub fn all() -> Self {
        Query { select: Select::All, filter: None, group_by: Vec::new(), order_by: Vec::new() }
    }

    /// Parse the parameters of a request (every `where` is and-ed, as on the real API).
    pub fn parse(
        select: Option<&str>,
        wheres: &[&str],
        group_by: Option<&str>,
        order_by: Option<&str>,
    ) -> Result<Self, OdsqlError> {
        let select = match select {
            Some(s) if !s.trim().is_empty() => parse_select(s)?,
            _ => Select::All,
        };
        let mut filter: Option<Expr> = None;
        for w in wheres.iter().filter(|w| !w.trim().is_empty()) {
            let e = parse_where(w)?;
            filter = Some(match filter {
                None => e,
                Some(f) => Expr::And(Box::new(f), Box::new(e)),
            });
        }
        let group_by = match group_by {
            Some(g) if !g.trim().is_empty() => parse_group_by(g)?,
            _ => Vec::new(),
        };
        let order_by = match order_by {
            Some(o) if !o.trim().is_empty() => parse_order_by(o)?,
            _ => Vec::new(),
        };
        Ok(Query { select, filter, group_by, order_by })
    }
}

/// Bounds on `field` implied by a condition, `[lo, hi)` in ns (each `None` when unbounded): a
/// superset of the times of the records it can match, so a scan may skip the rest. Only
/// conditions and-ed at the top are read; anything else bounds nothing.
pub fn time_bounds(e: Option<&Expr>, field: &str, tz: chrono_tz::Tz) -> (Option<i64>, Option<i64>) {
    let mut lo: Option<i64> = None;
    let mut hi: Option<i64> = None;
    let mut conds = Vec::new();
    let mut stack: Vec<&Expr> = e.into_iter().collect();
    while let Some(x) = stack.pop() {
        match x {
            Expr::And(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            other => conds.push(other),
        }
    }
    let date = |e: &Expr| match e {
        Expr::Lit(Lit::Date(s)) | Expr::Lit(Lit::Text(s)) => eval::parse_date(s, tz),
        _ => None,
    };
    let is_field = |e: &Expr| matches!(e, Expr::Field(f) if f == field);
    let mut at_least = |t: i64| lo = Some(lo.map_or(t, |l| l.max(t)));
    let mut below = |t: i64| hi = Some(hi.map_or(t, |h| h.min(t)));
    for c in conds {
        match c {
            Expr::Cmp(op, a, b) => {
                // `date op t`, or `t op date` read backwards.
                let (op, t) = if is_field(a) {
                    (*op, date(b))
                } else if is_field(b) {
                    let flipped = match op {
                        Cmp::Lt => Cmp::Gt,
                        Cmp::Le => Cmp::Ge,
                        Cmp::Gt => Cmp::Lt,
                        Cmp::Ge => Cmp::Le,
                        o => *o,
                    };
                    (flipped, date(a))
                } else {
                    continue;
                };
                let Some(t) = t else { continue };
                match op {
                    Cmp::Eq => {
                        at_least(t);
                        below(t.saturating_add(1));
                    }
                    Cmp::Gt | Cmp::Ge => at_least(t),
                    Cmp::Lt => below(t),
                    Cmp::Le => below(t.saturating_add(1)),
                    Cmp::Ne => {}
                }
            }
            Expr::InRange { e, lo: l, hi: h, .. } if is_field(e) => {
                if let Some(t) = l.as_deref().and_then(date) {
                    at_least(t);
                }
                if let Some(t) = h.as_deref().and_then(date) {
                    below(t.saturating_add(1));
                }
            }
            _ => {}
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_come_from_top_level_conditions_only() {
        let tz = chrono_tz::Tz::UTC;
        let b = |w: &str| time_bounds(Some(&parse_where(w).unwrap()), "date", tz);
        let t = |s: &str| eval::parse_date(s, tz);
        assert_eq!(b("date >= date'2024' and date < date'2024-03'"), (t("2024"), t("2024-03")));
        assert_eq!(b("date'2024-02' <= date and pm10 > 3"), (t("2024-02"), None));
        assert_eq!(
            b("date in [date'2024' .. date'2024-06']"),
            (t("2024"), t("2024-06").map(|x| x + 1))
        );
        assert_eq!(b("date >= date'2024' or pm10 > 3"), (None, None), "an or bounds nothing");
        assert_eq!(b("not date >= date'2024'"), (None, None));
    }
}
