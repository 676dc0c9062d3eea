//! The InfluxQL lexer and parser, by hand: tokens are scanned on demand from a position, because
//! whether `/` starts a regex or divides depends on where the parser is (after `=~`, `FROM`,
//! `WITH MEASUREMENT =~`), as in InfluxDB's own parser. Errors read like InfluxDB's: `error
//! parsing query: found X, expected Y at line L, char C` (C counts characters from 1).

use chrono_tz::Tz;

use super::{
    Expr, Field, Fill, GroupTime, Hint, KeyMatch, NameMatch, Op, Query, Select, ShowFieldKeys,
    ShowMeasurements, ShowTagKeys, ShowTagValues, Source, Statement, TagDimension,
};
use crate::{Error, Result};

/// The longest query accepted, in characters (deeply nested parentheses recurse).
const MAX_QUERY: usize = 1 << 20;
/// The deepest nesting of parentheses and operators accepted.
const MAX_DEPTH: usize = 128;
/// The most binary operators in one statement. A chain `a OR b OR …` is parsed in a loop but
/// makes a tree as deep as it is long, which evaluating (and dropping) walks recursively: this
/// bounds that depth, far above what a dashboard writes.
const MAX_OPERATORS: usize = 2_000;
/// The most statements in one query.
const MAX_STATEMENTS: usize = 100;
/// The most expressions one `SELECT` selects: each is a column of every row answered.
const MAX_FIELDS: usize = 64;
/// The most tags one `GROUP BY` names (agora has three; InfluxDB answers `""` for the others).
const MAX_GROUP_TAGS: usize = 32;
/// The most measurements one `FROM` names.
const MAX_SOURCES: usize = 64;
/// The most keys of `WITH KEY IN (…)`.
const MAX_IN_KEYS: usize = 64;
/// The most arguments of a function call (InfluxQL's functions take at most a few).
const MAX_CALL_ARGS: usize = 8;
/// The most characters of regexes in one statement: each is matched against every device's
/// tags, so their total size bounds the work of a condition.
const MAX_REGEX_CHARS: usize = 8_192;

/// Parse a query: statements separated by `;`.
pub fn parse(q: &str) -> Result<Query> {
    if q.len() > MAX_QUERY {
        return Err(Error::Invalid(format!(
            "error parsing query: the query is longer than {MAX_QUERY} bytes"
        )));
    }
    let mut p = Parser { src: q.chars().collect(), pos: 0, depth: 0, ops: 0, regex_chars: 0 };
    let mut statements = Vec::new();
    loop {
        if statements.len() == MAX_STATEMENTS {
            let t = p.peek();
            return Err(p.error(&t, &format!("EOF (at most {MAX_STATEMENTS} statements)")));
        }
        p.ops = 0;
        p.regex_chars = 0;
        statements.push(p.statement()?);
        let t = p.next();
        match t.tok {
            Tok::Eof => break,
            Tok::Op(";") => {
                if p.peek().tok == Tok::Eof {
                    break;
                }
            }
            _ => return Err(p.error(&t, "; or EOF")),
        }
    }
    Ok(Query { statements })
}

/// Bare words that are keywords (InfluxQL's list): they must be double-quoted to be names.
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BY",
    "CARDINALITY",
    "CONTINUOUS",
    "CREATE",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DESTINATIONS",
    "DIAGNOSTICS",
    "DISTINCT",
    "DROP",
    "DURATION",
    "END",
    "EVERY",
    "EXACT",
    "EXPLAIN",
    "FALSE",
    "FIELD",
    "FOR",
    "FROM",
    "GRANT",
    "GRANTS",
    "GROUP",
    "GROUPS",
    "IN",
    "INF",
    "INSERT",
    "INTO",
    "KEY",
    "KEYS",
    "KILL",
    "LIMIT",
    "MEASUREMENT",
    "MEASUREMENTS",
    "NAME",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "PASSWORD",
    "POLICIES",
    "POLICY",
    "PRIVILEGES",
    "QUERIES",
    "QUERY",
    "READ",
    "REPLICATION",
    "RESAMPLE",
    "RETENTION",
    "REVOKE",
    "SELECT",
    "SERIES",
    "SET",
    "SHARD",
    "SHARDS",
    "SHOW",
    "SLIMIT",
    "SOFFSET",
    "STATS",
    "SUBSCRIPTION",
    "SUBSCRIPTIONS",
    "TAG",
    "TO",
    "TRUE",
    "USER",
    "USERS",
    "VALUES",
    "WHERE",
    "WITH",
    "WRITE",
];

/// A token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    /// A bare name that is not a keyword.
    Ident(String),
    /// A double-quoted name.
    Quoted(String),
    /// A bare keyword, upper-case.
    Keyword(&'static str),
    Integer(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    Str(String),
    /// `$name`.
    Param,
    /// Punctuation and operators.
    Op(&'static str),
    /// Something that cannot be a token; the text says what.
    Bad(String),
}

/// A token with where it is.
#[derive(Debug, Clone)]
struct Scanned {
    tok: Tok,
    start: usize,
    end: usize,
}

struct Parser {
    src: Vec<char>,
    pos: usize,
    depth: usize,
    /// Binary operators so far in this statement.
    ops: usize,
    /// Characters of regexes so far in this statement.
    regex_chars: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Nanoseconds per duration unit.
fn unit_ns(u: &str) -> Option<i64> {
    Some(match u {
        "ns" => 1,
        "u" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

/// Why a duration literal is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BadDuration {
    /// Not digits and units.
    Syntax,
    /// More nanoseconds than an `i64` holds (about 292 years).
    OutOfRange,
}

/// A duration literal as InfluxQL writes it: `5m`, `1h30m`, `1700000000000ms`.
fn parse_duration_literal(s: &str) -> Result<i64, BadDuration> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut overflow = false;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(BadDuration::Syntax);
        }
        let digits: String = chars[start..i].iter().collect();
        let ustart = i;
        while i < chars.len() && !chars[i].is_ascii_digit() {
            i += 1;
        }
        let unit: String = chars[ustart..i].iter().collect();
        let ns = unit_ns(&unit).ok_or(BadDuration::Syntax)?;
        // Every unit is checked before an overflow is reported: `99999999999999y` is a bad
        // unit, not a long duration.
        match digits.parse::<i64>().ok().and_then(|n| n.checked_mul(ns)) {
            Some(v) => match total.checked_add(v) {
                Some(t) => total = t,
                None => overflow = true,
            },
            None => overflow = true,
        }
    }
    if overflow { Err(BadDuration::OutOfRange) } else { Ok(total) }
}

/// The longest duration there is, in whole days: `i64::MAX` nanoseconds.
const MAX_DURATION_DAYS: i64 = i64::MAX / 86_400_000_000_000;

impl Parser {
    fn at(&self, i: usize) -> Option<char> {
        self.src.get(i).copied()
    }

    /// Skip blanks and `--` comments from `i`.
    fn skip_blank(&self, mut i: usize) -> usize {
        loop {
            match self.at(i) {
                Some(c) if c.is_whitespace() => i += 1,
                Some('-') if self.at(i + 1) == Some('-') => {
                    while self.at(i).is_some_and(|c| c != '\n') {
                        i += 1;
                    }
                }
                _ => return i,
            }
        }
    }

    /// The token at `self.pos`.
    fn peek(&self) -> Scanned {
        self.scan(self.pos)
    }

    /// The token at `self.pos`, consumed.
    fn next(&mut self) -> Scanned {
        let t = self.peek();
        self.pos = t.end;
        t
    }

    fn scan(&self, from: usize) -> Scanned {
        let start = self.skip_blank(from);
        let (tok, end) = self.scan_at(start);
        Scanned { tok, start, end }
    }

    fn scan_at(&self, i: usize) -> (Tok, usize) {
        let Some(c) = self.at(i) else { return (Tok::Eof, i) };
        let next = self.at(i + 1);
        let op = |s: &'static str| (Tok::Op(s), i + s.chars().count());
        match c {
            '=' if next == Some('~') => op("=~"),
            '=' => op("="),
            '!' if next == Some('=') => op("!="),
            '!' if next == Some('~') => op("!~"),
            '<' if next == Some('>') => op("<>"),
            '<' if next == Some('=') => op("<="),
            '<' => op("<"),
            '>' if next == Some('=') => op(">="),
            '>' => op(">"),
            ':' if next == Some(':') => op("::"),
            '+' => op("+"),
            '-' => op("-"),
            '*' => op("*"),
            '/' => op("/"),
            '%' => op("%"),
            '&' => op("&"),
            '|' => op("|"),
            '^' => op("^"),
            '(' => op("("),
            ')' => op(")"),
            ',' => op(","),
            ';' => op(";"),
            '.' if !next.is_some_and(|d| d.is_ascii_digit()) => op("."),
            '"' => match self.scan_quoted(i, '"') {
                Ok((s, end)) => (Tok::Quoted(s), end),
                Err((why, end)) => (Tok::Bad(why), end),
            },
            '\'' => match self.scan_quoted(i, '\'') {
                Ok((s, end)) => (Tok::Str(s), end),
                Err((why, end)) => (Tok::Bad(why), end),
            },
            '$' => {
                let mut j = i + 1;
                while self.at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                (Tok::Param, j)
            }
            c if c.is_ascii_digit() || c == '.' => self.scan_number(i),
            c if is_ident_start(c) => {
                let mut j = i;
                while self.at(j).is_some_and(is_ident_char) {
                    j += 1;
                }
                let word: String = self.src[i..j].iter().collect();
                let upper = word.to_ascii_uppercase();
                match KEYWORDS.iter().find(|k| **k == upper) {
                    Some(k) => (Tok::Keyword(k), j),
                    None => (Tok::Ident(word), j),
                }
            }
            _ => (Tok::Bad(c.to_string()), i + 1),
        }
    }

    /// A quoted string or name from the quote at `i`: escapes `\\`, `\n`, `\'`, `\"`.
    fn scan_quoted(&self, i: usize, quote: char) -> Result<(String, usize), (String, usize)> {
        let mut out = String::new();
        let mut j = i + 1;
        let what = if quote == '"' { "quoted identifier" } else { "string" };
        loop {
            match self.at(j) {
                None | Some('\n') => return Err((format!("unterminated {what}"), j)),
                Some('\\') => {
                    match self.at(j + 1) {
                        Some('n') => out.push('\n'),
                        Some('\\') => out.push('\\'),
                        Some('\'') => out.push('\''),
                        Some('"') => out.push('"'),
                        Some(c) => return Err((format!("bad escape \\{c} in a {what}"), j + 2)),
                        None => return Err((format!("unterminated {what}"), j + 1)),
                    }
                    j += 2;
                }
                Some(c) if c == quote => return Ok((out, j + 1)),
                Some(c) => {
                    out.push(c);
                    j += 1;
                }
            }
        }
    }

    /// An integer, a decimal number or a duration (digits followed by letters).
    fn scan_number(&self, i: usize) -> (Tok, usize) {
        let mut j = i;
        while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
            j += 1;
        }
        let mut decimal = false;
        if self.at(j) == Some('.') && self.at(j + 1).is_some_and(|c| c.is_ascii_digit()) {
            decimal = true;
            j += 1;
            while self.at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
        }
        let text: String = self.src[i..j].iter().collect();
        if decimal {
            return match text.parse::<f64>() {
                Ok(f) => (Tok::Float(f), j),
                Err(_) => (Tok::Bad(text), j),
            };
        }
        if self.at(j).is_some_and(|c| c.is_alphabetic() || c == 'µ') {
            // Digits and letters run together form one duration token, checked as a whole.
            while self.at(j).is_some_and(|c| c.is_alphanumeric() || c == 'µ') {
                j += 1;
            }
            let text: String = self.src[i..j].iter().collect();
            return match parse_duration_literal(&text) {
                Ok(ns) => (Tok::Duration(ns), j),
                Err(BadDuration::Syntax) => (
                    Tok::Bad(format!(
                        "invalid duration {text} (a whole number and ns, u, µ, ms, s, m, h, d or \
                         w: write 365d for a year)"
                    )),
                    j,
                ),
                Err(BadDuration::OutOfRange) => (
                    Tok::Bad(format!(
                        "duration {text} out of range (at most {MAX_DURATION_DAYS}d, about 292 \
                         years)"
                    )),
                    j,
                ),
            };
        }
        match text.parse::<i64>() {
            Ok(n) => (Tok::Integer(n), j),
            Err(_) => (Tok::Bad(format!("integer {text} out of range")), j),
        }
    }

    /// A regex `/…/` at the current position, `\/` standing for `/`.
    fn regex(&mut self) -> Result<super::Regex> {
        let start = self.skip_blank(self.pos);
        if self.at(start) != Some('/') {
            let t = self.peek();
            return Err(self.error(&t, "regex"));
        }
        let mut pattern = String::new();
        let mut j = start + 1;
        loop {
            match self.at(j) {
                None | Some('\n') => {
                    let t = Scanned { tok: Tok::Bad("unterminated regex".into()), start, end: j };
                    return Err(self.error(&t, "regex"));
                }
                Some('\\') if self.at(j + 1) == Some('/') => {
                    pattern.push('/');
                    j += 2;
                }
                Some('\\') => {
                    pattern.push('\\');
                    if let Some(c) = self.at(j + 1) {
                        pattern.push(c);
                    }
                    j += 2;
                }
                Some('/') => {
                    j += 1;
                    break;
                }
                Some(c) => {
                    pattern.push(c);
                    j += 1;
                }
            }
        }
        let re = super::Regex::new(&pattern).map_err(|why| {
            let (line, col) = self.line_char(start);
            Error::Invalid(format!(
                "error parsing query: unsupported regex /{pattern}/: {why} (agora's regexes: \
                 literals, escaped characters, ., [classes], (a|b), *, +, ?, ^, $ and (?i)) at \
                 line {line}, char {col}"
            ))
        })?;
        self.regex_chars += pattern.chars().count();
        if self.regex_chars > MAX_REGEX_CHARS {
            let (line, col) = self.line_char(start);
            return Err(Error::Invalid(format!(
                "error parsing query: regexes too long: at most {MAX_REGEX_CHARS} characters of \
                 regexes in a statement (a list of values such as /^(a|b|c)$/ can often be a \
                 shorter pattern) at line {line}, char {col}"
            )));
        }
        self.pos = j;
        Ok(re)
    }

    fn line_char(&self, at: usize) -> (usize, usize) {
        let before = &self.src[..at.min(self.src.len())];
        let line = before.iter().filter(|&&c| c == '\n').count() + 1;
        let col = at - before.iter().rposition(|&c| c == '\n').map_or(0, |p| p + 1) + 1;
        (line, col)
    }

    fn error(&self, found: &Scanned, expected: &str) -> Error {
        let (line, col) = self.line_char(found.start);
        let what = match &found.tok {
            Tok::Eof => "EOF".to_owned(),
            Tok::Keyword(k) => (*k).to_owned(),
            Tok::Bad(why) => why.clone(),
            Tok::Param => {
                let text: String = self.src[found.start..found.end].iter().collect();
                format!(
                    "{text} (a bound parameter: agora takes no params; Grafana's macros such as \
                     $timeFilter are expanded by Grafana itself)"
                )
            }
            _ => self.src[found.start..found.end].iter().collect(),
        };
        Error::Invalid(format!(
            "error parsing query: found {what}, expected {expected} at line {line}, char {col}"
        ))
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek().tok, Tok::Keyword(k) if k == kw)
    }

    /// Consume the keyword `kw` if it is next.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.is_keyword(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        let t = self.next();
        match t.tok {
            Tok::Keyword(k) if k == kw => Ok(()),
            _ => Err(self.error(&t, kw)),
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek().tok, Tok::Op(o) if o == op)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.next();
            true
        } else {
            false
        }
    }

    fn expect_op(&mut self, op: &str) -> Result<()> {
        let t = self.next();
        match t.tok {
            Tok::Op(o) if o == op => Ok(()),
            _ => Err(self.error(&t, op)),
        }
    }

    /// Whether the next token is the bare word `w` (not a keyword: `fill`, `tz`, `time`).
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(w))
    }

    /// A name: bare or double-quoted.
    fn ident(&mut self) -> Result<String> {
        let t = self.next();
        match t.tok {
            Tok::Ident(s) | Tok::Quoted(s) => Ok(s),
            _ => Err(self.error(&t, "identifier")),
        }
    }

    fn unsigned(&mut self) -> Result<u64> {
        let t = self.next();
        match t.tok {
            Tok::Integer(n) if n >= 0 => Ok(n as u64),
            _ => Err(self.error(&t, "integer")),
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        let t = self.next();
        match t.tok {
            Tok::Keyword("SELECT") => Ok(Statement::Select(Box::new(self.select()?))),
            Tok::Keyword("SHOW") => self.show(),
            Tok::Keyword("CREATE") => self.create(),
            _ => Err(self.error(
                &t,
                "SELECT, SHOW or CREATE DATABASE (agora answers reads; write with /write)",
            )),
        }
    }

    fn create(&mut self) -> Result<Statement> {
        let t = self.next();
        if t.tok != Tok::Keyword("DATABASE") {
            return Err(self.error(&t, "DATABASE (agora creates nothing else through InfluxQL)"));
        }
        let name = self.ident()?;
        if self.eat_keyword("WITH") {
            // Options of a database that agora does not create: parsed, then ignored.
            let mut any = false;
            loop {
                if self.eat_keyword("DURATION") {
                    self.duration_or_inf()?;
                } else if self.eat_keyword("REPLICATION") {
                    self.unsigned()?;
                } else if self.eat_keyword("SHARD") {
                    self.expect_keyword("DURATION")?;
                    self.duration_or_inf()?;
                } else if self.eat_keyword("NAME") {
                    self.ident()?;
                } else if any {
                    break;
                } else {
                    let t = self.peek();
                    return Err(self.error(&t, "DURATION, NAME, REPLICATION, SHARD"));
                }
                any = true;
            }
        }
        Ok(Statement::CreateDatabase { name })
    }

    fn duration_or_inf(&mut self) -> Result<()> {
        let t = self.next();
        match t.tok {
            Tok::Duration(_) | Tok::Keyword("INF") => Ok(()),
            _ => Err(self.error(&t, "duration")),
        }
    }

    fn show(&mut self) -> Result<Statement> {
        let t = self.next();
        let expected = "DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, RETENTION \
                        POLICIES (the SHOW statements agora answers)";
        match t.tok {
            Tok::Keyword("DATABASES") => Ok(Statement::ShowDatabases),
            Tok::Keyword("RETENTION") => {
                self.expect_keyword("POLICIES")?;
                let on = self.on()?;
                Ok(Statement::ShowRetentionPolicies { on })
            }
            Tok::Keyword("MEASUREMENTS") => {
                self.on()?;
                let mut with = None;
                if self.eat_keyword("WITH") {
                    self.expect_keyword("MEASUREMENT")?;
                    let t = self.next();
                    with = Some(match t.tok {
                        Tok::Op("=") => NameMatch::Name(self.ident()?),
                        Tok::Op("=~") => NameMatch::Regex(self.regex()?),
                        _ => return Err(self.error(&t, "= or =~")),
                    });
                }
                let condition = self.where_clause()?;
                let (limit, offset) = self.limit_offset()?;
                Ok(Statement::ShowMeasurements(ShowMeasurements { with, condition, limit, offset }))
            }
            Tok::Keyword("TAG") => {
                let t = self.next();
                match t.tok {
                    Tok::Keyword("KEYS") => {
                        self.on()?;
                        let sources = self.optional_from()?;
                        let condition = self.where_clause()?;
                        let (limit, offset) = self.limit_offset()?;
                        Ok(Statement::ShowTagKeys(ShowTagKeys {
                            sources,
                            condition,
                            limit,
                            offset,
                        }))
                    }
                    Tok::Keyword("VALUES") => {
                        self.on()?;
                        let sources = self.optional_from()?;
                        self.expect_keyword("WITH")?;
                        self.expect_keyword("KEY")?;
                        let key = self.key_match()?;
                        let condition = self.where_clause()?;
                        let (limit, offset) = self.limit_offset()?;
                        Ok(Statement::ShowTagValues(ShowTagValues {
                            sources,
                            key,
                            condition,
                            limit,
                            offset,
                        }))
                    }
                    _ => Err(self.error(&t, "KEYS, VALUES")),
                }
            }
            Tok::Keyword("FIELD") => {
                self.expect_keyword("KEYS")?;
                self.on()?;
                let sources = self.optional_from()?;
                let (limit, offset) = self.limit_offset()?;
                Ok(Statement::ShowFieldKeys(ShowFieldKeys { sources, limit, offset }))
            }
            _ => Err(self.error(&t, expected)),
        }
    }

    /// `[ON db]`.
    fn on(&mut self) -> Result<Option<String>> {
        if self.eat_keyword("ON") { Ok(Some(self.ident()?)) } else { Ok(None) }
    }

    /// `[FROM sources]`.
    fn optional_from(&mut self) -> Result<Vec<Source>> {
        if self.eat_keyword("FROM") { self.sources() } else { Ok(Vec::new()) }
    }

    /// `[WHERE expr]`.
    fn where_clause(&mut self) -> Result<Option<Expr>> {
        if self.eat_keyword("WHERE") { Ok(Some(self.expr(1)?)) } else { Ok(None) }
    }

    /// `[LIMIT n] [OFFSET n]`.
    fn limit_offset(&mut self) -> Result<(Option<u64>, Option<u64>)> {
        let limit = if self.eat_keyword("LIMIT") { Some(self.unsigned()?) } else { None };
        let offset = if self.eat_keyword("OFFSET") { Some(self.unsigned()?) } else { None };
        Ok((limit, offset))
    }

    fn key_match(&mut self) -> Result<KeyMatch> {
        let t = self.next();
        let key = |p: &mut Self| -> Result<String> {
            let t = p.next();
            match t.tok {
                Tok::Ident(s) | Tok::Quoted(s) | Tok::Str(s) => Ok(s),
                _ => Err(p.error(&t, "identifier")),
            }
        };
        Ok(match t.tok {
            Tok::Op("=") => KeyMatch::Eq(key(self)?),
            Tok::Op("!=" | "<>") => KeyMatch::Neq(key(self)?),
            Tok::Op("=~") => KeyMatch::Regex(self.regex()?),
            Tok::Op("!~") => KeyMatch::NotRegex(self.regex()?),
            Tok::Keyword("IN") => {
                self.expect_op("(")?;
                let mut keys = vec![key(self)?];
                while self.eat_op(",") {
                    if keys.len() == MAX_IN_KEYS {
                        let t = self.peek();
                        return Err(
                            self.error(&t, &format!(") (at most {MAX_IN_KEYS} keys in IN)"))
                        );
                    }
                    keys.push(key(self)?);
                }
                self.expect_op(")")?;
                KeyMatch::In(keys)
            }
            _ => return Err(self.error(&t, "=, !=, =~, !~, IN")),
        })
    }

    fn sources(&mut self) -> Result<Vec<Source>> {
        let mut out = vec![self.source()?];
        while self.is_op(",") {
            if out.len() == MAX_SOURCES {
                let t = self.peek();
                return Err(
                    self.error(&t, &format!("WHERE (at most {MAX_SOURCES} measurements in FROM)"))
                );
            }
            self.next();
            out.push(self.source()?);
        }
        Ok(out)
    }

    /// `m`, `"rp"."m"`, `"db"."rp"."m"`, `"db".."m"`, `/re/`, `"rp"./re/`.
    fn source(&mut self) -> Result<Source> {
        let mut parts: Vec<String> = Vec::new();
        let measurement = loop {
            let start = self.skip_blank(self.pos);
            if self.at(start) == Some('/') {
                break NameMatch::Regex(self.regex()?);
            }
            let t = self.next();
            let name = match t.tok {
                Tok::Ident(s) | Tok::Quoted(s) => s,
                _ => return Err(self.error(&t, "identifier, regex")),
            };
            if !self.is_op(".") {
                break NameMatch::Name(name);
            }
            parts.push(name);
            self.next();
            // `db..m`: the default retention policy.
            if self.is_op(".") {
                self.next();
                parts.push(String::new());
            }
            if parts.len() > 2 {
                let t = self.peek();
                return Err(self.error(&t, "a measurement (at most db.rp.measurement)"));
            }
        };
        let mut parts = parts.into_iter().map(|p| (!p.is_empty()).then_some(p));
        let (database, retention_policy) = match parts.len() {
            2 => (parts.next().flatten(), parts.next().flatten()),
            1 => (None, parts.next().flatten()),
            _ => (None, None),
        };
        Ok(Source { database, retention_policy, measurement })
    }

    fn select(&mut self) -> Result<Select> {
        let mut fields = vec![self.field()?];
        while self.is_op(",") {
            if fields.len() == MAX_FIELDS {
                let t = self.peek();
                return Err(self.error(
                    &t,
                    &format!(
                        "FROM (at most {MAX_FIELDS} fields in a SELECT: each is a column of every \
                         row)"
                    ),
                ));
            }
            self.next();
            fields.push(self.field()?);
        }
        if self.is_keyword("INTO") {
            let t = self.peek();
            return Err(self.error(&t, "FROM (SELECT … INTO writes: agora's InfluxQL only reads)"));
        }
        self.expect_keyword("FROM")?;
        let sources = self.sources()?;
        let condition = self.where_clause()?;
        let mut select = Select {
            fields,
            sources,
            condition,
            group_time: None,
            group_tags: Vec::new(),
            fill: Fill::Null,
            descending: false,
            limit: None,
            offset: None,
            slimit: None,
            soffset: None,
            tz: None,
        };
        if self.eat_keyword("GROUP") {
            self.expect_keyword("BY")?;
            loop {
                self.dimension(&mut select)?;
                if !self.eat_op(",") {
                    break;
                }
            }
        }
        if self.is_word("fill") {
            self.next();
            self.expect_op("(")?;
            let t = self.next();
            select.fill = match &t.tok {
                Tok::Ident(w) if w.eq_ignore_ascii_case("null") => Fill::Null,
                Tok::Ident(w) if w.eq_ignore_ascii_case("none") => Fill::None,
                Tok::Ident(w) if w.eq_ignore_ascii_case("previous") => Fill::Previous,
                Tok::Ident(w) if w.eq_ignore_ascii_case("linear") => Fill::Linear,
                Tok::Integer(n) => Fill::Number(*n as f64),
                Tok::Float(f) => Fill::Number(*f),
                Tok::Op("-") => {
                    let n = self.next();
                    match n.tok {
                        Tok::Integer(n) => Fill::Number(-(n as f64)),
                        Tok::Float(f) => Fill::Number(-f),
                        _ => return Err(self.error(&n, "number")),
                    }
                }
                _ => return Err(self.error(&t, "null, none, previous, linear or a number")),
            };
            self.expect_op(")")?;
        }
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            let t = self.next();
            match &t.tok {
                Tok::Ident(w) | Tok::Quoted(w) if w.eq_ignore_ascii_case("time") => {}
                _ => return Err(self.error(&t, "time (only ORDER BY time is supported)")),
            }
            if self.eat_keyword("DESC") {
                select.descending = true;
            } else {
                self.eat_keyword("ASC");
            }
        }
        (select.limit, select.offset) = self.limit_offset()?;
        if self.eat_keyword("SLIMIT") {
            select.slimit = Some(self.unsigned()?);
        }
        if self.eat_keyword("SOFFSET") {
            select.soffset = Some(self.unsigned()?);
        }
        if self.is_word("tz") {
            self.next();
            self.expect_op("(")?;
            let t = self.next();
            let Tok::Str(zone) = &t.tok else { return Err(self.error(&t, "string")) };
            select.tz = Some(zone.parse::<Tz>().map_err(|_| {
                let (line, col) = self.line_char(t.start);
                Error::Invalid(format!(
                    "error parsing query: unable to find time zone {zone} (use an IANA name such \
                     as Europe/Paris) at line {line}, char {col}"
                ))
            })?);
            self.expect_op(")")?;
        }
        Ok(select)
    }

    /// One `GROUP BY` item: `time(d[, offset])`, a tag, or `*`.
    fn dimension(&mut self, select: &mut Select) -> Result<()> {
        let t = self.peek();
        if self.is_word("time") && self.scan(t.end).tok == Tok::Op("(") {
            self.next();
            self.next();
            let d = self.next();
            let interval = match d.tok {
                Tok::Duration(ns) if ns > 0 => ns,
                _ => return Err(self.error(&d, "duration")),
            };
            let mut offset = 0;
            if self.eat_op(",") {
                let negative = self.eat_op("-");
                let o = self.next();
                offset = match o.tok {
                    Tok::Duration(ns) => ns,
                    Tok::Integer(0) => 0,
                    _ => return Err(self.error(&o, "duration")),
                };
                if negative {
                    offset = -offset;
                }
            }
            self.expect_op(")")?;
            if select.group_time.is_some() {
                return Err(self.error(&t, "one time() only"));
            }
            select.group_time = Some(GroupTime { interval, offset });
            return Ok(());
        }
        if select.group_tags.len() == MAX_GROUP_TAGS {
            return Err(self
                .error(&t, &format!("no more tags (at most {MAX_GROUP_TAGS} tags in GROUP BY)")));
        }
        if self.eat_op("*") {
            select.group_tags.push(TagDimension::All);
            return Ok(());
        }
        if self.at(t.start) == Some('/') {
            return Err(
                self.error(&t, "time(), a tag or * (grouping by a regex of tags is not supported)")
            );
        }
        let name = self.ident()?;
        self.hint()?;
        select.group_tags.push(TagDimension::Tag(name));
        Ok(())
    }

    /// An optional `::type` after a name.
    fn hint(&mut self) -> Result<Option<Hint>> {
        if !self.eat_op("::") {
            return Ok(None);
        }
        let t = self.next();
        let word = match &t.tok {
            Tok::Ident(w) => w.to_ascii_lowercase(),
            Tok::Keyword(k) => k.to_ascii_lowercase(),
            _ => String::new(),
        };
        Ok(Some(match word.as_str() {
            "tag" => Hint::Tag,
            "field" => Hint::Field,
            "float" | "integer" | "unsigned" | "string" | "boolean" => Hint::Type,
            _ => {
                return Err(self.error(&t, "tag, field, float, integer, unsigned, string, boolean"));
            }
        }))
    }

    fn field(&mut self) -> Result<Field> {
        let expr = if self.is_op("*") {
            self.next();
            Expr::Wildcard(self.hint()?)
        } else {
            self.expr(1)?
        };
        let alias = if self.eat_keyword("AS") { Some(self.ident()?) } else { None };
        Ok(Field { expr, alias })
    }

    /// The binary operator next, with its precedence (InfluxQL's: OR < AND < comparisons < + -
    /// < * / %).
    fn binary_op(&self) -> Option<(Op, u8)> {
        Some(match self.peek().tok {
            Tok::Keyword("OR") => (Op::Or, 1),
            Tok::Keyword("AND") => (Op::And, 2),
            Tok::Op("=") => (Op::Eq, 4),
            Tok::Op("!=" | "<>") => (Op::Neq, 4),
            Tok::Op("<") => (Op::Lt, 4),
            Tok::Op("<=") => (Op::Lte, 4),
            Tok::Op(">") => (Op::Gt, 4),
            Tok::Op(">=") => (Op::Gte, 4),
            Tok::Op("=~") => (Op::EqRegex, 4),
            Tok::Op("!~") => (Op::NeqRegex, 4),
            Tok::Op("+") => (Op::Add, 5),
            Tok::Op("-") => (Op::Sub, 5),
            Tok::Op("*") => (Op::Mul, 6),
            Tok::Op("/") => (Op::Div, 6),
            Tok::Op("%") => (Op::Mod, 6),
            _ => return None,
        })
    }

    /// An expression whose operators bind at least as tightly as `min`.
    fn expr(&mut self, min: u8) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let t = self.peek();
            return Err(self.error(&t, "a shallower expression (too deeply nested)"));
        }
        let mut lhs = self.unary()?;
        while let Some((op, prec)) = self.binary_op() {
            if prec < min {
                break;
            }
            self.ops += 1;
            if self.ops > MAX_OPERATORS {
                let t = self.peek();
                return Err(self.error(
                    &t,
                    &format!("fewer operators (at most {MAX_OPERATORS} in a statement; a regex such as /^(a|b|c)$/ matches many values at once)"),
                ));
            }
            self.next();
            let rhs = if matches!(op, Op::EqRegex | Op::NeqRegex) {
                Expr::Regex(self.regex()?)
            } else {
                self.expr(prec + 1)?
            };
            lhs = Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr> {
        let t = self.next();
        Ok(match t.tok {
            Tok::Op("(") => {
                let e = self.expr(1)?;
                self.expect_op(")")?;
                Expr::Paren(Box::new(e))
            }
            Tok::Op("-") => {
                let n = self.peek();
                match n.tok {
                    Tok::Integer(v) => {
                        self.next();
                        Expr::Integer(-v)
                    }
                    Tok::Float(v) => {
                        self.next();
                        Expr::Float(-v)
                    }
                    Tok::Duration(v) => {
                        self.next();
                        Expr::Duration(-v)
                    }
                    _ => {
                        // Through `expr`, which bounds the nesting: `- - - … x` cannot recurse
                        // without end.
                        let e = self.expr(7)?;
                        Expr::Binary {
                            op: Op::Mul,
                            lhs: Box::new(Expr::Integer(-1)),
                            rhs: Box::new(e),
                        }
                    }
                }
            }
            Tok::Ident(_) | Tok::Keyword("DISTINCT") if self.is_op("(") => {
                let name: String = self.src[t.start..t.end].iter().collect();
                self.next();
                let mut args = Vec::new();
                if !self.eat_op(")") {
                    loop {
                        if self.is_op("*") {
                            self.next();
                            args.push(Expr::Wildcard(self.hint()?));
                        } else {
                            args.push(self.expr(1)?);
                        }
                        if self.eat_op(")") {
                            break;
                        }
                        self.expect_op(",")?;
                        if args.len() == MAX_CALL_ARGS {
                            let t = self.peek();
                            return Err(self.error(
                                &t,
                                &format!(") (at most {MAX_CALL_ARGS} arguments to a function)"),
                            ));
                        }
                    }
                }
                Expr::Call { name: name.to_ascii_lowercase(), args }
            }
            Tok::Ident(name) | Tok::Quoted(name) => Expr::Var { name, hint: self.hint()? },
            Tok::Integer(v) => Expr::Integer(v),
            Tok::Float(v) => Expr::Float(v),
            Tok::Duration(v) => Expr::Duration(v),
            Tok::Str(s) => Expr::Str(s),
            Tok::Keyword("TRUE") => Expr::Bool(true),
            Tok::Keyword("FALSE") => Expr::Bool(false),
            _ => return Err(self.error(&t, "identifier, string, number, bool")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(q: &str) -> Statement {
        let mut parsed = parse(q).unwrap_or_else(|e| panic!("{q}\n{e}"));
        assert_eq!(parsed.statements.len(), 1, "{q}");
        parsed.statements.remove(0)
    }

    fn select(q: &str) -> Select {
        match one(q) {
            Statement::Select(s) => *s,
            other => panic!("{q}: {other:?}"),
        }
    }

    fn err(q: &str) -> String {
        parse(q).map(|p| format!("{p:?}")).expect_err(q).to_string()
    }

    fn var(name: &str, hint: Option<Hint>) -> Expr {
        Expr::Var { name: name.into(), hint }
    }

    fn call(name: &str, arg: &str) -> Expr {
        Expr::Call { name: name.into(), args: vec![var(arg, None)] }
    }

    fn bin(op: Op, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
    }

    const MS: i64 = 1_000_000;

    /// `time >= a ms and time <= b ms`, as Grafana's backend writes `$timeFilter`.
    fn time_filter(a: i64, b: i64) -> Expr {
        bin(
            Op::And,
            bin(Op::Gte, var("time", None), Expr::Duration(a * MS)),
            bin(Op::Lte, var("time", None), Expr::Duration(b * MS)),
        )
    }

    fn name(m: &str) -> NameMatch {
        NameMatch::Name(m.into())
    }

    fn source(rp: Option<&str>, m: &str) -> Source {
        Source { database: None, retention_policy: rp.map(Into::into), measurement: name(m) }
    }

    // Fixture 1 of the research report: the default builder query.
    #[test]
    fn fixture_1_default_builder() {
        let s = select(
            r#"SELECT mean("value") FROM "air_quality" WHERE time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(5s) fill(null) ORDER BY time ASC"#,
        );
        assert_eq!(s.fields, vec![Field { expr: call("mean", "value"), alias: None }]);
        assert_eq!(s.sources, vec![source(None, "air_quality")]);
        assert_eq!(s.condition, Some(time_filter(1_700_000_000_000, 1_700_003_600_000)));
        assert_eq!(s.group_time, Some(GroupTime { interval: 5_000 * MS, offset: 0 }));
        assert!(s.group_tags.is_empty());
        assert_eq!(s.fill, Fill::Null);
        assert!(!s.descending);
    }

    #[test]
    fn fixture_2_tag_filter_and_group_by_tag() {
        let s = select(
            r#"SELECT mean("pm25") FROM "air_quality" WHERE "district"::tag = 'centre' AND time >= 1700000000000ms and time <= 1700021600000ms GROUP BY time(20s), "sensor_id"::tag fill(null) ORDER BY time ASC"#,
        );
        // AND is left-associative: ((district = centre AND time >= a) AND time <= b).
        let Some(Expr::Binary { op: Op::And, lhs, .. }) = &s.condition else { panic!() };
        let Expr::Binary { op: Op::And, lhs: tag, .. } = &**lhs else { panic!() };
        assert_eq!(
            **tag,
            bin(Op::Eq, var("district", Some(Hint::Tag)), Expr::Str("centre".into()))
        );
        assert_eq!(s.group_tags, vec![TagDimension::Tag("sensor_id".into())]);
        assert_eq!(s.group_time.unwrap().interval, 20_000 * MS);
    }

    #[test]
    fn fixture_3_or_in_parentheses_and_retention_policy() {
        let s = select(
            r#"SELECT max("level") FROM "autogen"."noise" WHERE ("sensor_id"::tag =~ /^(s1|s2)$/ OR "district"::tag = 'north') AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(1m), "sensor_id"::tag fill(none) ORDER BY time ASC"#,
        );
        assert_eq!(s.sources, vec![source(Some("autogen"), "noise")]);
        assert_eq!(s.fill, Fill::None);
        let Some(Expr::Binary { op: Op::And, lhs, .. }) = &s.condition else { panic!() };
        let Expr::Binary { op: Op::And, lhs: paren, .. } = &**lhs else { panic!() };
        let Expr::Paren(inner) = &**paren else { panic!("{paren:?}") };
        let Expr::Binary { op: Op::Or, lhs: re, rhs: eq } = &**inner else { panic!() };
        let Expr::Binary { op: Op::EqRegex, rhs, .. } = &**re else { panic!() };
        let Expr::Regex(r) = &**rhs else { panic!() };
        assert_eq!(r.as_str(), "^(s1|s2)$");
        assert!(r.is_match("s2") && !r.is_match("s3"));
        assert!(matches!(&**eq, Expr::Binary { op: Op::Eq, .. }));
    }

    #[test]
    fn fixture_4_aliases_math_desc_limits_tz() {
        let s = select(
            r#"SELECT mean("temperature") AS "avg", max("temperature") AS "max", last("battery") / 100 FROM "weather" WHERE time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(10m) fill(previous) ORDER BY time DESC limit 100 slimit 10 tz('Europe/Paris')"#,
        );
        assert_eq!(s.fields.len(), 3);
        assert_eq!(s.fields[0].alias.as_deref(), Some("avg"));
        assert_eq!(s.fields[1].alias.as_deref(), Some("max"));
        assert_eq!(s.fields[2].expr, bin(Op::Div, call("last", "battery"), Expr::Integer(100)));
        assert_eq!(s.fill, Fill::Previous);
        assert!(s.descending);
        assert_eq!((s.limit, s.slimit), (Some(100), Some(10)));
        assert_eq!(s.tz, Some(chrono_tz::Europe::Paris));
    }

    #[test]
    fn fixture_5_raw_values() {
        let s = select(
            r#"SELECT "temperature" FROM "weather" WHERE "station"::tag = 'st-01' AND time >= 1700000000000ms and time <= 1700003600000ms ORDER BY time ASC"#,
        );
        assert_eq!(s.fields[0].expr, var("temperature", None));
        assert!(s.group_time.is_none());
    }

    #[test]
    fn fixture_6_nested_call_parses_and_is_refused_when_run() {
        let s = select(
            r#"SELECT derivative(mean("bytes"), 1s) FROM "net" WHERE time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(5s), "iface" fill(null)"#,
        );
        assert_eq!(
            s.fields[0].expr,
            Expr::Call {
                name: "derivative".into(),
                args: vec![call("mean", "bytes"), Expr::Duration(1_000 * MS)]
            }
        );
        assert_eq!(s.group_tags, vec![TagDimension::Tag("iface".into())]);
    }

    #[test]
    fn fixture_7_backend_unit_test_strings() {
        let s = select(
            r#"SELECT mean("value") FROM "policy"."cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(10s) fill(null)"#,
        );
        assert_eq!(s.sources, vec![source(Some("policy"), "cpu")]);
        let s = select(
            r#"SELECT mean("value") FROM "cpu" WHERE ("hostname" = 'server1' OR "hostname" = 'server2') AND time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(5s), "datacenter" fill(null)"#,
        );
        assert_eq!(s.group_tags, vec![TagDimension::Tag("datacenter".into())]);
        let s = select(
            r#"SELECT mean("value") FROM "cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms GROUP BY time(5s) ORDER BY time ASC limit 1 slimit 1 tz('Europe/Paris')"#,
        );
        assert_eq!((s.limit, s.slimit, s.tz), (Some(1), Some(1), Some(chrono_tz::Europe::Paris)));
        let s = select(
            r#"SELECT mean("value") / 100 FROM "cpu" WHERE time >= 1596240000000ms and time <= 1596240300000ms"#,
        );
        assert_eq!(s.fields[0].expr, bin(Op::Div, call("mean", "value"), Expr::Integer(100)));
    }

    #[test]
    fn fixture_8_grafana_mock() {
        let s = select(
            r#"SELECT mean("value") AS "ALIAS1", mean("value") AS "ALIAS2" FROM "bar"."cpu" WHERE time >= 1686582333244ms and time <= 1686583233244ms GROUP BY time(500ms), "geohash"::tag fill(null) ORDER BY time ASC"#,
        );
        assert_eq!(s.group_time.unwrap().interval, 500 * MS);
        assert_eq!(s.fields[1].alias.as_deref(), Some("ALIAS2"));
    }

    #[test]
    fn fixture_9_adhoc_filter_with_nanosecond_integers() {
        let s = select(
            r#"SELECT "gauge" FROM "a"."b" WHERE "lol" = 'sob' AND time >= 123456780 AND time <= 123456789"#,
        );
        assert_eq!(s.sources, vec![source(Some("a"), "b")]);
        let Some(Expr::Binary { rhs, .. }) = &s.condition else { panic!() };
        assert_eq!(**rhs, bin(Op::Lte, var("time", None), Expr::Integer(123_456_789)));
    }

    #[test]
    fn fixture_10_metadata_and_health() {
        assert_eq!(
            one("SHOW measurements"),
            Statement::ShowMeasurements(ShowMeasurements {
                with: None,
                condition: None,
                limit: None,
                offset: None
            })
        );
        let Statement::ShowMeasurements(m) = one("SHOW MEASUREMENTS LIMIT 100") else { panic!() };
        assert_eq!(m.limit, Some(100));
        let Statement::ShowMeasurements(m) =
            one("SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)air/ LIMIT 100")
        else {
            panic!()
        };
        let Some(NameMatch::Regex(r)) = &m.with else { panic!() };
        assert!(r.is_match("AIR_quality"));
        let Statement::ShowMeasurements(m) = one(
            r#"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)air/ WHERE "district"::tag = 'centre' LIMIT 100"#,
        ) else {
            panic!()
        };
        assert!(m.condition.is_some());
        let Statement::ShowMeasurements(m) =
            one(r"SHOW MEASUREMENTS WITH MEASUREMENT =~ /(?i)abc\/edf\// LIMIT 100")
        else {
            panic!()
        };
        let Some(NameMatch::Regex(r)) = &m.with else { panic!() };
        assert_eq!(r.as_str(), "(?i)abc/edf/");
        assert_eq!(
            one(r#"SHOW TAG KEYS FROM "air_quality""#),
            Statement::ShowTagKeys(ShowTagKeys {
                sources: vec![source(None, "air_quality")],
                condition: None,
                limit: None,
                offset: None
            })
        );
        let Statement::ShowTagKeys(k) = one(r#"SHOW TAG KEYS FROM "one_week"."air_quality""#)
        else {
            panic!()
        };
        assert_eq!(k.sources, vec![source(Some("one_week"), "air_quality")]);
        let Statement::ShowTagKeys(k) = one("SHOW TAG KEYS") else { panic!() };
        assert!(k.sources.is_empty());
        let Statement::ShowTagKeys(k) = one("SHOW TAG KEYS FROM /.*/") else { panic!() };
        assert!(matches!(&k.sources[0].measurement, NameMatch::Regex(r) if r.is_match("x")));
        let Statement::ShowTagKeys(k) = one(r#"SHOW TAG KEYS FROM "cpu" WHERE time > now() - 1h"#)
        else {
            panic!()
        };
        assert_eq!(
            k.condition,
            Some(bin(
                Op::Gt,
                var("time", None),
                bin(
                    Op::Sub,
                    Expr::Call { name: "now".into(), args: vec![] },
                    Expr::Duration(3_600_000 * MS)
                )
            ))
        );
        for q in [
            r#"SHOW FIELD KEYS FROM "air_quality""#,
            r#"SHOW FIELD KEYS FROM "one_week"."air_quality""#,
            "SHOW FIELD KEYS",
        ] {
            assert!(matches!(one(q), Statement::ShowFieldKeys(_)), "{q}");
        }
        let Statement::ShowTagValues(v) = one(r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "app""#)
        else {
            panic!()
        };
        assert_eq!(v.key, KeyMatch::Eq("app".into()));
        let Statement::ShowTagValues(v) = one(
            r#"SHOW TAG VALUES FROM "air_quality" WITH KEY = "sensor_id" WHERE "district"::tag = 'centre'"#,
        ) else {
            panic!()
        };
        assert_eq!(v.sources, vec![source(None, "air_quality")]);
        assert!(v.condition.is_some());
        let Statement::ShowTagValues(v) = one(
            r#"SHOW TAG VALUES FROM "one_week"."cpu" WITH KEY = "app" WHERE "host" =~ /server.*/"#,
        ) else {
            panic!()
        };
        assert_eq!(v.sources[0].retention_policy.as_deref(), Some("one_week"));
        let Statement::ShowTagValues(v) = one(
            r#"SHOW TAG VALUES FROM "cpu" WITH KEY = "host" WHERE "region"::tag = 'eu' AND time > now() - 1h"#,
        ) else {
            panic!()
        };
        assert!(v.condition.is_some());
        let Statement::ShowTagValues(v) = one(r#"SHOW TAG VALUES WITH KEY = "district""#) else {
            panic!()
        };
        assert!(v.sources.is_empty());
        let Statement::ShowTagValues(v) = one(r#"SHOW TAG VALUES WITH KEY IN ("device", "site")"#)
        else {
            panic!()
        };
        assert_eq!(v.key, KeyMatch::In(vec!["device".into(), "site".into()]));
        assert_eq!(
            one(r#"SHOW RETENTION POLICIES on "iot""#),
            Statement::ShowRetentionPolicies { on: Some("iot".into()) }
        );
        assert_eq!(one("show databases"), Statement::ShowDatabases);
        assert_eq!(
            one(r#"CREATE DATABASE "telegraf""#),
            Statement::CreateDatabase { name: "telegraf".into() }
        );
        assert_eq!(
            one("CREATE DATABASE mydb WITH DURATION 7d REPLICATION 1 SHARD DURATION 1d NAME x"),
            Statement::CreateDatabase { name: "mydb".into() }
        );
    }

    #[test]
    fn fixture_11_legacy_frontend_two_statements() {
        let q = parse(
            r#"SELECT mean("value") FROM "cpu" WHERE time >= now() - 6h and time <= now() GROUP BY time(20s) fill(null);SELECT max("value") FROM "cpu" WHERE ("host" = 'a') AND time >= now() - 6h and time <= now() GROUP BY time(20s) fill(null)"#,
        )
        .unwrap();
        assert_eq!(q.statements.len(), 2);
        assert!(q.statements.iter().all(|s| matches!(s, Statement::Select(_))));
        // A trailing semicolon is fine.
        assert_eq!(parse("SHOW DATABASES;").unwrap().statements.len(), 1);
    }

    #[test]
    fn literals_and_precedence() {
        let s = select(
            r"SELECT a FROM m WHERE t = 'it\'s \\ ok' AND time > '2023-11-14T22:13:20Z' AND x = 1.5 OR y = -2 AND z = true",
        );
        // OR binds loosest: (… AND … AND …) OR (y = -2 AND z = true).
        let Some(Expr::Binary { op: Op::Or, lhs, rhs }) = s.condition else { panic!() };
        assert_eq!(
            *rhs,
            bin(
                Op::And,
                bin(Op::Eq, var("y", None), Expr::Integer(-2)),
                bin(Op::Eq, var("z", None), Expr::Bool(true))
            )
        );
        let Expr::Binary { op: Op::And, lhs: first, .. } = *lhs else { panic!() };
        let Expr::Binary { op: Op::And, lhs: t, .. } = *first else { panic!() };
        assert_eq!(*t, bin(Op::Eq, var("t", None), Expr::Str(r"it's \ ok".into())));
        let s = select("SELECT mean(x) * 2 + 1 FROM m GROUP BY time(1h30m, -15m)");
        assert_eq!(
            s.fields[0].expr,
            bin(Op::Add, bin(Op::Mul, call("mean", "x"), Expr::Integer(2)), Expr::Integer(1))
        );
        assert_eq!(
            s.group_time,
            Some(GroupTime { interval: 5_400_000 * MS, offset: -900_000 * MS })
        );
        let s = select(r#"SELECT "a b"::field, * FROM "db".."m" fill(-1.5)"#);
        assert_eq!(s.fields[0].expr, var("a b", Some(Hint::Field)));
        assert_eq!(s.fields[1].expr, Expr::Wildcard(None));
        assert_eq!(
            s.sources[0],
            Source { database: Some("db".into()), retention_policy: None, measurement: name("m") }
        );
        assert_eq!(s.fill, Fill::Number(-1.5));
        let s = select(
            "select COUNT(v) from m group by * fill(0) order by time desc limit 3 offset 2 slimit 1 soffset 1 -- a comment",
        );
        assert_eq!(s.fields[0].expr, call("count", "v"));
        assert_eq!(s.group_tags, vec![TagDimension::All]);
        assert_eq!((s.limit, s.offset, s.slimit, s.soffset), (Some(3), Some(2), Some(1), Some(1)));
        assert_eq!(s.fill, Fill::Number(0.0));
        let s = select("SELECT v FROM a, /^b/ WHERE time > 5u");
        assert_eq!(s.sources.len(), 2);
        let s = select("SELECT v FROM m WHERE \"t\" = 'x'\n  AND time >= now() - 7d");
        assert!(s.condition.is_some());
    }

    #[test]
    fn errors_name_the_token_and_position() {
        assert_eq!(
            err("SELECT x"),
            "error parsing query: found EOF, expected FROM at line 1, char 9"
        );
        assert_eq!(
            err("SELECT FROM m"),
            "error parsing query: found FROM, expected identifier, string, number, bool at line 1, char 8"
        );
        assert!(err("DROP DATABASE x").starts_with(
            "error parsing query: found DROP, expected SELECT, SHOW or CREATE DATABASE"
        ));
        assert!(err("SHOW SERIES").contains("found SERIES, expected DATABASES, MEASUREMENTS"));
        assert!(
            err("SELECT x FROM m\nWHERE a = 'b").ends_with("at line 2, char 11"),
            "{}",
            err("SELECT x FROM m\nWHERE a = 'b")
        );
        assert!(err("SELECT x FROM m WHERE a = 'b").contains("found unterminated string"));
        assert!(err("SELECT mean(x) FROM m GROUP BY time(1y)").contains("invalid duration 1y"));
        assert!(
            err("SELECT x FROM m WHERE $timeFilter")
                .contains("found $timeFilter (a bound parameter")
        );
        assert!(
            err("SELECT x FROM m WHERE a =~ /x{2}/")
                .contains("unsupported regex /x{2}/: counted repetitions")
        );
        assert!(err("SELECT x FROM m WHERE a =~ 'x'").contains("expected regex"));
        assert!(
            err("SELECT x FROM m tz('Mars/Olympus')")
                .contains("unable to find time zone Mars/Olympus")
        );
        assert!(err("SELECT x FROM m ORDER BY x").contains("only ORDER BY time"));
        assert!(err("SELECT x INTO y FROM m").contains("found INTO"));
        assert!(
            err("SELECT x FROM m fill(zero)")
                .contains("expected null, none, previous, linear or a number")
        );
        assert!(err("SHOW DATABASES;;").contains("found ;, expected SELECT"));
        assert!(err("SHOW DATABASES x").contains("found x, expected ; or EOF"));
        assert!(err("").contains("found EOF"));
        assert!(err("SELECT x FROM a.b.c.d").contains("at most db.rp.measurement"));
        assert!(err("SELECT x FROM m GROUP BY /re/").contains("regex of tags"));
        let deep = format!("SELECT x FROM m WHERE {}a = 'b'{}", "(".repeat(500), ")".repeat(500));
        assert!(err(&deep).contains("too deeply nested"));
        let long = format!("SELECT x FROM m WHERE a = '0'{}", " OR a = '1'".repeat(1500));
        assert!(err(&long).contains("at most 2000 in a statement"));
        let ok = format!("SELECT x FROM m WHERE a = '0'{}", " OR a = '1'".repeat(900));
        assert!(parse(&ok).is_ok());
        assert_eq!(parse(&"SHOW DATABASES;".repeat(100)).unwrap().statements.len(), 100);
        assert!(err(&"SHOW DATABASES;".repeat(101)).contains("at most 100 statements"));
    }

    #[test]
    fn sizes_are_capped_and_the_caps_named() {
        let fields = |n: usize| vec![r#"mean("pm10")"#; n].join(", ");
        let q = |n: usize| format!("SELECT {} FROM m GROUP BY time(1h)", fields(n));
        assert_eq!(select(&q(64)).fields.len(), 64);
        let e = err(&q(1000));
        assert!(e.contains("at most 64 fields in a SELECT"), "{e}");
        let tags = |n: usize| (0..n).map(|i| format!("a{i}")).collect::<Vec<_>>().join(", ");
        let q = |n: usize| format!("SELECT mean(x) FROM m GROUP BY time(1h), {}", tags(n));
        assert_eq!(select(&q(32)).group_tags.len(), 32);
        let e = err(&q(33));
        assert!(
            e.contains("found a32, expected no more tags (at most 32 tags in GROUP BY)"),
            "{e}"
        );
        let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\"")).collect::<Vec<_>>().join(", ");
        assert!(parse(&format!("SHOW TAG VALUES WITH KEY IN ({})", keys(64))).is_ok());
        let e = err(&format!("SHOW TAG VALUES WITH KEY IN ({})", keys(65)));
        assert!(e.contains("at most 64 keys in IN"), "{e}");
        let args = |n: usize| vec!["1"; n].join(", ");
        assert!(parse(&format!("SELECT f({}) FROM m", args(8))).is_ok());
        let e = err(&format!("SELECT f({}) FROM m", args(9)));
        assert!(e.contains("at most 8 arguments to a function"), "{e}");
        let sources = |n: usize| (0..n).map(|i| format!("m{i}")).collect::<Vec<_>>().join(", ");
        assert!(parse(&format!("SELECT x FROM {}", sources(64))).is_ok());
        let e = err(&format!("SELECT x FROM {}", sources(65)));
        assert!(e.contains("at most 64 measurements in FROM"), "{e}");
        // Regexes: 8192 characters in a statement, counted again in the next one.
        let re = |n: usize| format!("/^{}$/", "a".repeat(n - 2));
        let cond = |n: usize, k: usize| vec![format!("d =~ {}", re(n)); k].join(" OR ");
        let ok = format!("SELECT x FROM m WHERE {}", cond(4096, 2));
        assert!(parse(&format!("{ok}; {ok}")).is_ok());
        let e = err(&format!("SELECT x FROM m WHERE {} OR d =~ /x/", cond(4096, 2)));
        assert!(e.contains("at most 8192 characters of regexes in a statement"), "{e}");
        // The review's 240 patterns of 2047 characters, under the 2000-operator cap.
        let e = err(&format!("SELECT x FROM m WHERE {}", cond(2047, 240)));
        assert!(e.contains("at most 8192 characters of regexes"), "{e}");
        // A duration past 292 years says so, rather than asking for another unit.
        let e = err("SELECT x FROM m WHERE time > now() - 100000000d");
        assert!(e.contains("found duration 100000000d out of range (at most 106751d"), "{e}");
        assert!(!e.contains("365d"), "{e}");
    }

    #[test]
    fn deep_queries_are_refused_on_a_small_stack() {
        // The parser runs on a Tokio worker (2 MiB of stack), before a token is looked at only
        // for CREATE DATABASE and under public reads: neither the query nor its regexes may
        // recurse without bound.
        let errors = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let regex = format!("SELECT x FROM /{}/", "(".repeat(4000));
                let parens = format!(
                    "SELECT x FROM m WHERE {}a = 'b'{}",
                    "(".repeat(4000),
                    ")".repeat(4000)
                );
                // (`--` would start a comment.)
                let minus = format!("SELECT {}x FROM m", "- ".repeat(4000));
                [err(&regex), err(&parens), err(&minus)]
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(errors[0].contains("groups nested more than 32 deep"), "{}", errors[0]);
        assert!(errors[1].contains("too deeply nested"), "{}", errors[1]);
        assert!(errors[2].contains("too deeply nested"), "{}", errors[2]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_literal("1700000000000ms"), Ok(1_700_000_000_000 * MS));
        assert_eq!(parse_duration_literal("1h30m"), Ok(5_400_000 * MS));
        assert_eq!(parse_duration_literal("10µ"), Ok(10_000));
        assert_eq!(parse_duration_literal("5ns"), Ok(5));
        assert_eq!(parse_duration_literal("1y"), Err(BadDuration::Syntax));
        assert_eq!(parse_duration_literal("99999999999999y"), Err(BadDuration::Syntax));
        assert_eq!(parse_duration_literal("99999999999999w"), Err(BadDuration::OutOfRange));
        assert_eq!(parse_duration_literal("99999999999999999999ns"), Err(BadDuration::OutOfRange));
        assert_eq!(parse_duration_literal("106751d"), Ok(106_751 * 86_400_000 * MS));
        assert_eq!(parse_duration_literal("106752d"), Err(BadDuration::OutOfRange));
        assert_eq!(parse_duration_literal("106751d23h"), Ok((106_751 * 24 + 23) * 3_600_000 * MS));
        assert_eq!(parse_duration_literal("106751d24h"), Err(BadDuration::OutOfRange));
    }

    mod never_panics {
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn on_arbitrary_text(q in "\\PC{0,200}") {
                let _ = super::parse(&q);
            }

            #[test]
            fn on_query_like_text(q in "(SELECT|SHOW|WHERE|FROM|GROUP BY|time|fill|\\(|\\)|\"a\"|'b'|/c/|=~|=|AND|OR|[0-9]+(ms|s|h)?|,|;|::tag|\\*|-| ){0,40}") {
                let _ = super::parse(&q);
            }
        }
    }
}
