//! `$filter`: the OData expression language of SensorThings API 1.1 (OGC 18-088 §9.3.3.5), as
//! FROST-Server reads it. Comparison (`eq ne gt ge lt le`), logical (`and or not`), arithmetic
//! (`add sub mul div mod`, unary `-`), parentheses; literals: numbers, `'strings'` (`''` for a
//! quote), `true false null`, date-times (`2026-01-01T00:00:00Z`, an offset or `Z` required),
//! dates (`2026-01-01`), `duration'P1DT2H'`, `geography'POINT (5.44 43.52)'`; paths
//! (`result`, `Datastream/id`, `properties/owner`); the string, date, math and spatial
//! functions of the standard (`st_touches`, `st_overlaps`, `st_crosses`, `st_relate` and the
//! interval functions are refused as not supported).
//!
//! [`parse`] builds an [`Expr`] (bounded: 8 KiB of text, 64 levels, 1,000 nodes) and [`eval`]
//! answers it for one entity, whose properties a [`Row`] gives. Nulls compare as OData says:
//! `null eq null`, anything else with null is false (`ne`: true). Comparing different types is
//! false, never an error: the entity does not match.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::geo::Geometry;

/// Longest `$filter` accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 << 10;
const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 1_000;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Val),
    /// A property, or a path through navigation properties (`Datastream/id`).
    Path(Vec<String>),
    /// `not e`
    Not(Box<Expr>),
    /// `-e`
    Neg(Box<Expr>),
    /// `a op b`
    Bin(Op, Box<Expr>, Box<Expr>),
    /// `f(args)`
    Call(Func, Vec<Expr>),
}

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// No value.
    Null,
    /// `true`, `false`.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string; also dates (`YYYY-MM-DD`) and times of day (`hh:mm:ss`), which compare as text.
    Str(String),
    /// An instant, in nanoseconds since the epoch (UTC).
    Time(i64),
    /// A duration, in nanoseconds.
    Duration(i64),
    /// A geometry.
    Geo(Geometry),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The functions of the standard that agora answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Func {
    Substringof,
    Endswith,
    Startswith,
    Length,
    Indexof,
    Substring,
    Tolower,
    Toupper,
    Trim,
    Concat,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Fractionalseconds,
    Date,
    Time,
    Totaloffsetminutes,
    Now,
    Mindatetime,
    Maxdatetime,
    Round,
    Floor,
    Ceiling,
    GeoDistance,
    GeoLength,
    GeoIntersects,
    StEquals,
    StDisjoint,
    StWithin,
    StIntersects,
    StContains,
}

impl Func {
    fn of(name: &str) -> Option<(Func, usize, usize)> {
        use Func::*;
        Some(match name.to_ascii_lowercase().as_str() {
            "substringof" => (Substringof, 2, 2),
            "endswith" => (Endswith, 2, 2),
            "startswith" => (Startswith, 2, 2),
            "length" => (Length, 1, 1),
            "indexof" => (Indexof, 2, 2),
            "substring" => (Substring, 2, 3),
            "tolower" => (Tolower, 1, 1),
            "toupper" => (Toupper, 1, 1),
            "trim" => (Trim, 1, 1),
            "concat" => (Concat, 2, 2),
            "year" => (Year, 1, 1),
            "month" => (Month, 1, 1),
            "day" => (Day, 1, 1),
            "hour" => (Hour, 1, 1),
            "minute" => (Minute, 1, 1),
            "second" => (Second, 1, 1),
            "fractionalseconds" => (Fractionalseconds, 1, 1),
            "date" => (Date, 1, 1),
            "time" => (Time, 1, 1),
            "totaloffsetminutes" => (Totaloffsetminutes, 1, 1),
            "now" => (Now, 0, 0),
            "mindatetime" => (Mindatetime, 0, 0),
            "maxdatetime" => (Maxdatetime, 0, 0),
            "round" => (Round, 1, 1),
            "floor" => (Floor, 1, 1),
            "ceiling" => (Ceiling, 1, 1),
            "geo.distance" => (GeoDistance, 2, 2),
            "geo.length" => (GeoLength, 1, 1),
            "geo.intersects" => (GeoIntersects, 2, 2),
            "st_equals" => (StEquals, 2, 2),
            "st_disjoint" => (StDisjoint, 2, 2),
            "st_within" => (StWithin, 2, 2),
            "st_intersects" => (StIntersects, 2, 2),
            "st_contains" => (StContains, 2, 2),
            _ => return None,
        })
    }
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// What is wrong, and where (a byte position in the expression).
    pub message: String,
    /// The expression uses a part of the standard agora does not answer (HTTP 501, not 400).
    pub unsupported: bool,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FilterError {}

fn bad<T>(message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { message: message.into(), unsupported: false })
}

fn unsupported<T>(message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { message: message.into(), unsupported: true })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Val),
    Ident(String),
    Open,
    Close,
    Comma,
    Slash,
    Minus,
}

/// Parse a `$filter` expression.
pub fn parse(text: &str) -> Result<Expr, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return bad(format!("$filter is longer than {MAX_FILTER_LEN} bytes"));
    }
    let toks = lex(text)?;
    let mut p = Parser { toks, pos: 0, depth: 0, nodes: 0 };
    if p.toks.is_empty() {
        return bad("$filter is empty");
    }
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return bad(format!("unexpected {} after the end of the expression", p.describe(p.pos)));
    }
    Ok(e)
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                out.push((i, Tok::Open));
                i += 1;
            }
            b')' => {
                out.push((i, Tok::Close));
                i += 1;
            }
            b',' => {
                out.push((i, Tok::Comma));
                i += 1;
            }
            b'/' => {
                out.push((i, Tok::Slash));
                i += 1;
            }
            b'-' => {
                out.push((i, Tok::Minus));
                i += 1;
            }
            b'\'' => {
                let (s, end) = quoted(text, i)?;
                out.push((start, Tok::Lit(Val::Str(s))));
                i = end;
            }
            b'0'..=b'9' => {
                let (v, end) = number_or_time(text, i)?;
                out.push((start, Tok::Lit(v)));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'$' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.@$".contains(&b[i])) {
                    i += 1;
                }
                let word = &text[start..i];
                let lower = word.to_ascii_lowercase();
                // Typed literals: geography'…', geometry'…', duration'…'.
                if i < b.len()
                    && b[i] == b'\''
                    && matches!(lower.as_str(), "geography" | "geometry" | "duration")
                {
                    let (s, end) = quoted(text, i)?;
                    i = end;
                    let v = if lower == "duration" {
                        Val::Duration(duration(&s).ok_or_else(|| FilterError {
                            message: format!("bad duration {s:?} at position {start}: expected ISO 8601 like P1DT2H30M"),
                            unsupported: false,
                        })?)
                    } else {
                        Val::Geo(Geometry::from_wkt(&s).map_err(|e| FilterError {
                            message: format!("bad geometry at position {start}: {e}"),
                            unsupported: false,
                        })?)
                    };
                    out.push((start, Tok::Lit(v)));
                    continue;
                }
                let tok = match lower.as_str() {
                    "true" => Tok::Lit(Val::Bool(true)),
                    "false" => Tok::Lit(Val::Bool(false)),
                    "null" => Tok::Lit(Val::Null),
                    _ => Tok::Ident(word.to_owned()),
                };
                out.push((start, tok));
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return bad(format!("unexpected character {ch:?} at position {i}"));
            }
        }
        if out.len() > MAX_NODES * 2 {
            return bad(format!("$filter has more than {} tokens", MAX_NODES * 2));
        }
    }
    Ok(out)
}

/// A quoted string from `b[at] == '\''`; `''` is a quote. Returns it and the position after.
fn quoted(text: &str, at: usize) -> Result<(String, usize), FilterError> {
    let b = text.as_bytes();
    let mut s = String::new();
    let mut i = at + 1;
    let mut from = i;
    while i < b.len() {
        if b[i] == b'\'' {
            s.push_str(&text[from..i]);
            if b.get(i + 1) == Some(&b'\'') {
                s.push('\'');
                i += 2;
                from = i;
                continue;
            }
            return Ok((s, i + 1));
        }
        i += 1;
    }
    bad(format!("unterminated string starting at position {at}"))
}

/// A number, a date (`2026-01-01`) or a date-time (`2026-01-01T10:00:00+01:00`).
fn number_or_time(text: &str, at: usize) -> Result<(Val, usize), FilterError> {
    let b = text.as_bytes();
    let mut i = at;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b":.-+".contains(&b[i])) {
        // A sign belongs to an exponent or a time offset, not to an operator (operators are words).
        i += 1;
    }
    let word = &text[at..i];
    if word.len() >= 10 && word.as_bytes()[4] == b'-' && word.as_bytes()[7] == b'-' {
        if word.len() == 10 {
            return match NaiveDate::parse_from_str(word, "%Y-%m-%d") {
                Ok(_) => Ok((Val::Str(word.to_owned()), i)),
                Err(_) => bad(format!("bad date {word:?} at position {at}")),
            };
        }
        return match parse_time(word) {
            Some(t) => Ok((Val::Time(t), i)),
            None => bad(format!(
                "bad date-time {word:?} at position {at}: expected e.g. 2026-01-01T10:00:00Z (with Z or an offset)"
            )),
        };
    }
    match word.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((Val::Num(x), i)),
        _ => bad(format!("bad number {word:?} at position {at}")),
    }
}

/// An ISO 8601 date-time with `Z` or an offset (seconds optional), in nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    // Date-times are ASCII; anything else is not one (and must not be sliced by byte).
    if !s.is_ascii() {
        return None;
    }
    let with_seconds;
    let s = if s.len() >= 16
        && s.as_bytes().get(16).is_none_or(|c| *c != b':')
        && s.as_bytes()[13] == b':'
    {
        // hh:mm without seconds: add them for the RFC 3339 parser.
        with_seconds = format!("{}:00{}", &s[..16], &s[16..]);
        with_seconds.as_str()
    } else {
        s
    };
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    t.timestamp_nanos_opt()
}

/// An ISO 8601 duration (`P1DT2H30M10.5S`; no years or months: their length varies).
fn duration(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ns: f64 = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, k) = units.iter().find(|(u, _)| *u == c)?;
                ns += num.parse::<f64>().ok()? * k;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(days, &[('W', 7.0 * 86_400e9), ('D', 86_400e9)])?;
    if let Some(t) = time {
        take(t, &[('H', 3_600e9), ('M', 60e9), ('S', 1e9)])?;
    }
    (any && ns.abs() < 9.0e18).then_some(ns as i64)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
    nodes: usize,
}

impl Parser {
    fn describe(&self, at: usize) -> String {
        match self.toks.get(at) {
            None => "end of the expression".into(),
            Some((p, t)) => {
                let what = match t {
                    Tok::Lit(v) => format!("{v:?}"),
                    Tok::Ident(w) => format!("{w:?}"),
                    Tok::Open => "'('".into(),
                    Tok::Close => "')'".into(),
                    Tok::Comma => "','".into(),
                    Tok::Slash => "'/'".into(),
                    Tok::Minus => "'-'".into(),
                };
                format!("{what} at position {p}")
            }
        }
    }

    fn node(&mut self) -> Result<(), FilterError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return bad(format!("$filter has more than {MAX_NODES} terms"));
        }
        Ok(())
    }

    fn keyword(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Ident(w))) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn binary(
        &mut self,
        ops: &[(&str, Op)],
        next: fn(&mut Self) -> Result<Expr, FilterError>,
        chain: bool,
    ) -> Result<Expr, FilterError> {
        let mut left = next(self)?;
        while let Some(k) = self.keyword() {
            let Some(&(_, op)) = ops.iter().find(|(w, _)| *w == k) else { break };
            self.pos += 1;
            self.node()?;
            let right = next(self)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right));
            if !chain {
                // Comparisons do not chain: `a eq b eq c` is an error, as in OData.
                if let Some(k) = self.keyword()
                    && ops.iter().any(|(w, _)| *w == k)
                {
                    return bad(format!(
                        "comparisons cannot be chained: {}",
                        self.describe(self.pos)
                    ));
                }
                break;
            }
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return bad(format!("$filter is nested more than {MAX_DEPTH} levels deep"));
        }
        let e = self.binary(&[("or", Op::Or)], Self::and, true);
        self.depth -= 1;
        e
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        self.binary(&[("and", Op::And)], Self::equality, true)
    }

    fn equality(&mut self) -> Result<Expr, FilterError> {
        self.binary(&[("eq", Op::Eq), ("ne", Op::Ne)], Self::relational, false)
    }

    fn relational(&mut self) -> Result<Expr, FilterError> {
        self.binary(
            &[("gt", Op::Gt), ("ge", Op::Ge), ("lt", Op::Lt), ("le", Op::Le)],
            Self::additive,
            false,
        )
    }

    fn additive(&mut self) -> Result<Expr, FilterError> {
        self.binary(&[("add", Op::Add), ("sub", Op::Sub)], Self::multiplicative, true)
    }

    fn multiplicative(&mut self) -> Result<Expr, FilterError> {
        self.binary(&[("mul", Op::Mul), ("div", Op::Div), ("mod", Op::Mod)], Self::unary, true)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword().as_deref() == Some("not") {
            self.pos += 1;
            self.node()?;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return bad(format!("$filter is nested more than {MAX_DEPTH} levels deep"));
            }
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if matches!(self.toks.get(self.pos), Some((_, Tok::Minus))) {
            self.pos += 1;
            self.node()?;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return bad(format!("$filter is nested more than {MAX_DEPTH} levels deep"));
            }
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        self.node()?;
        let at = self.pos;
        let Some((_, tok)) = self.toks.get(self.pos).cloned() else {
            return bad("the expression ends too early");
        };
        self.pos += 1;
        match tok {
            Tok::Lit(v) => Ok(Expr::Lit(v)),
            Tok::Open => {
                let e = self.or()?;
                self.close(at)?;
                Ok(e)
            }
            Tok::Ident(w) if matches!(self.toks.get(self.pos), Some((_, Tok::Open))) => {
                self.call(&w, at)
            }
            Tok::Ident(w) => {
                if OPERATORS.contains(&w.to_ascii_lowercase().as_str()) {
                    return bad(format!("expected a value, found operator {}", self.describe(at)));
                }
                let mut path = vec![w];
                while matches!(self.toks.get(self.pos), Some((_, Tok::Slash))) {
                    self.pos += 1;
                    match self.toks.get(self.pos) {
                        Some((_, Tok::Ident(w))) => {
                            path.push(w.clone());
                            self.pos += 1;
                        }
                        _ => {
                            return bad(format!(
                                "expected a property name after '/', found {}",
                                self.describe(self.pos)
                            ));
                        }
                    }
                }
                Ok(Expr::Path(path))
            }
            _ => bad(format!("expected a value, found {}", self.describe(at))),
        }
    }

    fn close(&mut self, opened: usize) -> Result<(), FilterError> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Close)) => {
                self.pos += 1;
                Ok(())
            }
            _ => bad(format!(
                "expected ')' closing {}, found {}",
                self.describe(opened),
                self.describe(self.pos)
            )),
        }
    }

    fn call(&mut self, name: &str, at: usize) -> Result<Expr, FilterError> {
        let lower = name.to_ascii_lowercase();
        let Some((f, min, max)) = Func::of(&lower) else {
            if matches!(
                lower.as_str(),
                "st_touches"
                    | "st_overlaps"
                    | "st_crosses"
                    | "st_relate"
                    | "before"
                    | "after"
                    | "meets"
                    | "during"
                    | "overlaps"
                    | "starts"
                    | "finishes"
                    | "any"
                    | "all"
            ) {
                return unsupported(format!("function {name} is not supported"));
            }
            return bad(format!("unknown function {name} at position {}", self.toks[at].0));
        };
        self.pos += 1; // (
        let mut args = Vec::new();
        if !matches!(self.toks.get(self.pos), Some((_, Tok::Close))) {
            loop {
                args.push(self.or()?);
                match self.toks.get(self.pos) {
                    Some((_, Tok::Comma)) => self.pos += 1,
                    _ => break,
                }
            }
        }
        self.close(at)?;
        if args.len() < min || args.len() > max {
            let n = if min == max { min.to_string() } else { format!("{min} or {max}") };
            return bad(format!("{name} takes {n} arguments, not {}", args.len()));
        }
        Ok(Expr::Call(f, args))
    }
}

const OPERATORS: &[&str] =
    &["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod"];

/// The properties of the entity an expression is evaluated for.
pub trait Row {
    /// The value at `path` (`["result"]`, `["Datastream", "id"]`); `Null` when there is none.
    fn get(&self, path: &[String]) -> Val;
}

/// Whether the entity matches.
pub fn matches(e: &Expr, row: &dyn Row, now: i64) -> bool {
    eval(e, row, now) == Val::Bool(true)
}

/// The value of an expression for one entity (`now`: nanoseconds since the epoch, for `now()`).
pub fn eval(e: &Expr, row: &dyn Row, now: i64) -> Val {
    match e {
        Expr::Lit(v) => v.clone(),
        Expr::Path(p) => row.get(p),
        Expr::Not(x) => match eval(x, row, now) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Null,
        },
        Expr::Neg(x) => match eval(x, row, now) {
            Val::Num(n) => Val::Num(-n),
            Val::Duration(d) => Val::Duration(d.saturating_neg()),
            _ => Val::Null,
        },
        Expr::Bin(op, a, b) => {
            let a = eval(a, row, now);
            // Short-circuit the logical operators (null counts as false for filtering).
            match (op, &a) {
                (Op::And, Val::Bool(false)) => return Val::Bool(false),
                (Op::Or, Val::Bool(true)) => return Val::Bool(true),
                _ => {}
            }
            binary(*op, a, eval(b, row, now))
        }
        Expr::Call(f, args) => {
            let args: Vec<Val> = args.iter().map(|a| eval(a, row, now)).collect();
            call(*f, &args, now)
        }
    }
}

fn binary(op: Op, a: Val, b: Val) -> Val {
    use std::cmp::Ordering::*;
    let truth = |v: &Val| matches!(v, Val::Bool(true));
    match op {
        Op::And => Val::Bool(truth(&a) && truth(&b)),
        Op::Or => Val::Bool(truth(&a) || truth(&b)),
        Op::Eq | Op::Ne => {
            let same = match (&a, &b) {
                (Val::Null, Val::Null) => true,
                (Val::Null, _) | (_, Val::Null) => false,
                (Val::Geo(x), Val::Geo(y)) => x.equals(y),
                _ => compare(&a, &b) == Some(Equal),
            };
            Val::Bool(same == (op == Op::Eq))
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let Some(o) = compare(&a, &b) else { return Val::Bool(false) };
            Val::Bool(match op {
                Op::Gt => o == Greater,
                Op::Ge => o != Less,
                Op::Lt => o == Less,
                _ => o != Greater,
            })
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => arithmetic(op, a, b),
    }
}

fn arithmetic(op: Op, a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => {
            let r = match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div => x / y,
                _ => x % y,
            };
            if r.is_finite() { Val::Num(r) } else { Val::Null }
        }
        (Val::Time(t), Val::Duration(d)) if op == Op::Add => {
            t.checked_add(d).map_or(Val::Null, Val::Time)
        }
        (Val::Time(t), Val::Duration(d)) if op == Op::Sub => {
            t.checked_sub(d).map_or(Val::Null, Val::Time)
        }
        (Val::Time(t), Val::Time(u)) if op == Op::Sub => {
            t.checked_sub(u).map_or(Val::Null, Val::Duration)
        }
        (Val::Duration(d), Val::Duration(e)) if op == Op::Add => {
            d.checked_add(e).map_or(Val::Null, Val::Duration)
        }
        (Val::Duration(d), Val::Duration(e)) if op == Op::Sub => {
            d.checked_sub(e).map_or(Val::Null, Val::Duration)
        }
        _ => Val::Null,
    }
}

/// Order two values of the same type (a string compared with an instant is read as one).
fn compare(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) | (Val::Duration(x), Val::Duration(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Str(s)) => parse_time(s).map(|y| x.cmp(&y)),
        (Val::Str(s), Val::Time(y)) => parse_time(s).map(|x| x.cmp(y)),
        _ => None,
    }
}

fn datetime(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

fn call(f: Func, a: &[Val], now: i64) -> Val {
    use Func::*;
    let s = |i: usize| match a.get(i) {
        Some(Val::Str(s)) => Some(s.as_str()),
        _ => None,
    };
    let n = |i: usize| match a.get(i) {
        Some(Val::Num(x)) => Some(*x),
        _ => None,
    };
    let t = |i: usize| match a.get(i) {
        Some(Val::Time(t)) => Some(datetime(*t)),
        Some(Val::Str(x)) => parse_time(x).map(datetime),
        _ => None,
    };
    let g = |i: usize| match a.get(i) {
        Some(Val::Geo(g)) => Some(g),
        _ => None,
    };
    let num = |x: Option<f64>| x.map_or(Val::Null, Val::Num);
    let text = |x: Option<String>| x.map_or(Val::Null, Val::Str);
    let boolean = |x: Option<bool>| x.map_or(Val::Null, Val::Bool);
    let chars = |x: &str| x.chars().count();
    match f {
        Substringof => boolean(s(0).zip(s(1)).map(|(needle, hay)| hay.contains(needle))),
        Endswith => boolean(s(0).zip(s(1)).map(|(x, y)| x.ends_with(y))),
        Startswith => boolean(s(0).zip(s(1)).map(|(x, y)| x.starts_with(y))),
        Length => num(s(0).map(|x| chars(x) as f64)),
        Indexof => {
            num(s(0).zip(s(1)).map(|(x, y)| x.find(y).map_or(-1.0, |b| chars(&x[..b]) as f64)))
        }
        Substring => {
            let (Some(x), Some(from)) = (s(0), n(1)) else { return Val::Null };
            let from = from.max(0.0) as usize;
            let it = x.chars().skip(from);
            text(Some(match n(2) {
                Some(len) => it.take(len.max(0.0) as usize).collect(),
                None => it.collect(),
            }))
        }
        Tolower => text(s(0).map(str::to_lowercase)),
        Toupper => text(s(0).map(str::to_uppercase)),
        Trim => text(s(0).map(|x| x.trim().to_owned())),
        Concat => text(s(0).zip(s(1)).map(|(x, y)| format!("{x}{y}"))),
        Year => num(t(0).map(|d| d.year() as f64)),
        Month => num(t(0).map(|d| d.month() as f64)),
        Day => num(t(0).map(|d| d.day() as f64)),
        Hour => num(t(0).map(|d| d.hour() as f64)),
        Minute => num(t(0).map(|d| d.minute() as f64)),
        Second => num(t(0).map(|d| d.second() as f64)),
        Fractionalseconds => num(t(0).map(|d| d.nanosecond() as f64 / 1e9)),
        Date => text(t(0).map(|d| d.format("%Y-%m-%d").to_string())),
        Time => text(t(0).map(|d| d.format("%H:%M:%S%.f").to_string())),
        // agora's instants are UTC.
        Totaloffsetminutes => num(t(0).map(|_| 0.0)),
        Now => Val::Time(now),
        Mindatetime => Val::Time(i64::MIN),
        Maxdatetime => Val::Time(i64::MAX),
        Round => num(n(0).map(f64::round)),
        Floor => num(n(0).map(f64::floor)),
        Ceiling => num(n(0).map(f64::ceil)),
        GeoDistance => num(g(0).zip(g(1)).map(|(x, y)| x.distance(y))),
        GeoLength => num(g(0).map(|x| match x {
            Geometry::LineString(v) => v
                .windows(2)
                .map(|w| ((w[1].0 - w[0].0).powi(2) + (w[1].1 - w[0].1).powi(2)).sqrt())
                .sum(),
            _ => 0.0,
        })),
        GeoIntersects | StIntersects => boolean(g(0).zip(g(1)).map(|(x, y)| x.intersects(y))),
        StDisjoint => boolean(g(0).zip(g(1)).map(|(x, y)| !x.intersects(y))),
        StWithin => boolean(g(0).zip(g(1)).map(|(x, y)| x.within(y))),
        StContains => boolean(g(0).zip(g(1)).map(|(x, y)| y.within(x))),
        StEquals => boolean(g(0).zip(g(1)).map(|(x, y)| x.equals(y))),
    }
}

/// The instants `[from, to)` an expression can match on `path` (e.g. `phenomenonTime`), from the
/// comparisons joined by `and` at its top: reads of stored observations start and stop there.
/// Wider than the exact answer when the expression says more (the filter is still applied to
/// every observation read); `(i64::MIN, i64::MAX)` when it says nothing usable.
pub fn time_bounds(e: &Expr, path: &str) -> (i64, i64) {
    let mut b = (i64::MIN, i64::MAX);
    narrow(e, path, &mut b);
    b
}

fn narrow(e: &Expr, path: &str, b: &mut (i64, i64)) {
    let Expr::Bin(op, l, r) = e else { return };
    if *op == Op::And {
        narrow(l, path, b);
        narrow(r, path, b);
        return;
    }
    let is_path = |x: &Expr| matches!(x, Expr::Path(p) if p.len() == 1 && p[0] == path);
    let instant = |x: &Expr| match x {
        Expr::Lit(Val::Time(t)) => Some(*t),
        Expr::Lit(Val::Str(s)) => parse_time(s),
        _ => None,
    };
    // path op t, or t op path (flipped).
    let (op, t) = match (is_path(l), is_path(r)) {
        (true, false) => match instant(r) {
            Some(t) => (*op, t),
            None => return,
        },
        (false, true) => match instant(l) {
            Some(t) => (
                match op {
                    Op::Gt => Op::Lt,
                    Op::Ge => Op::Le,
                    Op::Lt => Op::Gt,
                    Op::Le => Op::Ge,
                    o => *o,
                },
                t,
            ),
            None => return,
        },
        _ => return,
    };
    match op {
        Op::Ge => b.0 = b.0.max(t),
        Op::Gt => b.0 = b.0.max(t.saturating_add(1)),
        Op::Lt => b.1 = b.1.min(t),
        Op::Le => b.1 = b.1.min(t.saturating_add(1)),
        Op::Eq => {
            b.0 = b.0.max(t);
            b.1 = b.1.min(t.saturating_add(1));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct R(HashMap<String, Val>);

    impl Row for R {
        fn get(&self, path: &[String]) -> Val {
            self.0.get(&path.join("/")).cloned().unwrap_or(Val::Null)
        }
    }

    fn row() -> R {
        let t = parse_time("2026-06-01T12:30:15.250Z").unwrap();
        R(HashMap::from([
            ("result".into(), Val::Num(21.5)),
            ("name".into(), Val::Str("Capteur d'air — Rotonde".into())),
            ("phenomenonTime".into(), Val::Time(t)),
            ("Datastream/id".into(), Val::Num(7.0)),
            ("location".into(), Val::Geo(Geometry::Point((5.4474, 43.5297)))),
        ]))
    }

    fn yes(f: &str) -> bool {
        matches(&parse(f).unwrap_or_else(|e| panic!("{f}: {e}")), &row(), 0)
    }

    #[test]
    fn the_standards_examples_and_more() {
        // OGC 18-088 §9.3.3.5.2's examples, on an observation of 21.5.
        assert!(!yes("result lt 10.00"));
        assert!(yes("Datastream/id eq 7"));
        assert!(yes("not startswith(name,'test')"));
        assert!(yes("(result sub 5) gt 10"));
        assert!(yes(
            "result add 1 eq 22.5 and result mul 2 eq 43 and result div 2 eq 10.75 and result mod 2 eq 1.5"
        ));
        assert!(yes(
            "phenomenonTime ge 2026-06-01T00:00:00Z and phenomenonTime le 2026-07-01T00:00:00Z"
        ));
        assert!(yes("phenomenonTime gt 2026-06-01T14:00:00+02:00"), "offsets are read");
        assert!(!yes("phenomenonTime gt 2026-06-01T14:31+02:00"), "seconds are optional");
        assert!(yes(
            "year(phenomenonTime) eq 2026 and month(phenomenonTime) eq 6 and day(phenomenonTime) eq 1"
        ));
        assert!(yes(
            "hour(phenomenonTime) eq 12 and minute(phenomenonTime) eq 30 and second(phenomenonTime) eq 15"
        ));
        assert!(yes(
            "fractionalseconds(phenomenonTime) eq 0.25 and date(phenomenonTime) eq 2026-06-01"
        ));
        assert!(yes("phenomenonTime sub duration'P1D' lt 2026-06-01T00:00:00Z"));
        assert_eq!(parse_time("2026-01-01T10:0é"), None, "not a date-time, and no panic");
        assert!(!yes("phenomenonTime gt '2026-01-01T10:0é'"));
        assert!(yes(
            "substringof('Rotonde', name) and endswith(name, 'onde') and length(name) eq 23"
        ));
        assert!(yes(
            "indexof(name, 'air') eq 10 and substring(name, 10, 3) eq 'air' and tolower('AB') eq 'ab'"
        ));
        assert!(yes("name eq 'Capteur d''air — Rotonde'"), "a doubled quote is a quote");
        assert!(yes("concat(trim('  a '), toupper('b')) eq 'aB'"));
        assert!(yes("round(result) eq 22 and floor(result) eq 21 and ceiling(result) eq 22"));
        assert!(yes(
            "st_within(location, geography'POLYGON ((5.44 43.52, 5.45 43.52, 5.45 43.54, 5.44 43.54, 5.44 43.52))')"
        ));
        assert!(yes(
            "geo.intersects(location, geography'POLYGON ((5.44 43.52, 5.45 43.52, 5.45 43.54, 5.44 43.54, 5.44 43.52))')"
        ));
        assert!(yes("geo.distance(location, geography'POINT(5.4474 43.5397)') lt 0.0101"));
        assert!(!yes("geo.distance(location, geography'POINT(5.4474 43.5397)') lt 0.0099"));
        assert!(yes("missing eq null and not (missing ne null) and not (missing gt 1)"));
        assert!(yes("result gt 1 or missing"), "or short-circuits");
        assert!(!yes("result eq 'x'"), "different types never match");
        assert!(yes("RESULT eq null and result GT 21"), "operators in any case; names are exact");
    }

    #[test]
    fn precedence_follows_odata() {
        // and binds tighter than or; arithmetic tighter than comparison.
        assert!(yes("result eq 0 and result eq 1 or result eq 21.5"));
        assert!(!yes("result eq 0 and (result eq 1 or result eq 21.5)"));
        assert!(yes("result sub 1 mul 2 eq 19.5"));
        assert!(yes("-result eq -21.5 and result add -1.5 eq 20 and - - result eq 21.5"));
    }

    #[test]
    fn time_bounds_come_from_top_level_conjunctions() {
        let t = |s: &str| parse_time(s).unwrap();
        let b = |f: &str| time_bounds(&parse(f).unwrap(), "phenomenonTime");
        assert_eq!(
            b(
                "phenomenonTime ge 2026-01-01T00:00:00Z and phenomenonTime lt 2026-02-01T00:00:00Z and result gt 3"
            ),
            (t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z"))
        );
        assert_eq!(
            b("2026-01-01T00:00:00Z lt phenomenonTime"),
            (t("2026-01-01T00:00:00Z") + 1, i64::MAX)
        );
        assert_eq!(
            b("phenomenonTime le 2026-01-01T00:00:00Z"),
            (i64::MIN, t("2026-01-01T00:00:00Z") + 1)
        );
        assert_eq!(
            b("phenomenonTime ge 2026-01-01T00:00:00Z or result gt 1"),
            (i64::MIN, i64::MAX)
        );
        assert_eq!(b("not (phenomenonTime ge 2026-01-01T00:00:00Z)"), (i64::MIN, i64::MAX));
    }

    #[test]
    fn garbage_is_refused_with_where_and_why() {
        for (f, why) in [
            ("", "empty"),
            ("result gt", "ends too early"),
            ("result gt 1)", "unexpected ')' at position 11"),
            ("(result gt 1", "expected ')'"),
            ("result eq 1 eq 2", "cannot be chained"),
            ("name eq 'open", "unterminated string"),
            ("result gt 1e999", "bad number"),
            ("phenomenonTime gt 2026-13-01T00:00:00Z", "bad date-time"),
            ("phenomenonTime gt 2026-01-01T00:00:00", "with Z or an offset"),
            ("frobnicate(result)", "unknown function frobnicate"),
            ("startswith(name)", "takes 2 arguments, not 1"),
            ("st_within(location, geography'POINT(1)')", "bad geometry"),
            ("result gt 1 # comment", "unexpected character '#'"),
            ("and", "found operator"),
            ("Datastream/", "expected a property name"),
        ] {
            let e = parse(f).unwrap_err();
            assert!(e.message.contains(why), "{f:?}: {}", e.message);
            assert!(!e.unsupported, "{f:?}");
        }
        let e = parse("st_touches(location, geography'POINT(1 2)')").unwrap_err();
        assert!(e.unsupported && e.message.contains("st_touches"));
        let deep = format!("{}result gt 1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("nested more than 64"));
        let nots = format!("{}true", "not ".repeat(100));
        assert!(parse(&nots).unwrap_err().message.contains("nested more than 64"));
        let long = vec!["result gt 1"; 1000].join(" or ");
        assert!(parse(&long).unwrap_err().message.contains("longer than"));
        let many = vec!["1"; 600].join(" add ");
        assert!(parse(&format!("result eq {many}")).unwrap_err().message.contains("more than"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_text(s in "\\PC{0,80}") {
            if let Ok(e) = parse(&s) {
                let _ = eval(&e, &row(), 0);
            }
        }

        #[test]
        fn never_panics_on_filter_shaped_text(
            s in "(result|name|phenomenonTime|Datastream/id|not|and|or|eq|gt|le|add|mul|div|mod|sub|\\(|\\)|,| |'a'|''|1|2.5|-3|2026-01-01T00:00:00Z|2026-01-01|null|true|geo\\.distance|st_within|location|geography'POINT\\(1 2\\)'|duration'P1D'|substring|length|year){0,30}"
        ) {
            if let Ok(e) = parse(&s) {
                let _ = eval(&e, &row(), 0);
                let _ = time_bounds(&e, "phenomenonTime");
            }
        }
    }
}
