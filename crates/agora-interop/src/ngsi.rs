//! The NGSI-LD query language (`q`, ETSI GS CIM 009 §4.9), in the subset brokers answer:
//! `;` (and), `|` (or, binding looser), parentheses; a term is an attribute (it exists) or
//! `attribute op value` with `== != > >= < <=`; values are JSON numbers, `"strings"`, `true`,
//! `false`, date-times (`2026-01-01T00:00:00Z`, unquoted), ranges `10..20` (inclusive, with
//! `==` and `!=`) and lists `"a","b"` (equal to any); attribute paths `pm10`,
//! `pm10.observedAt` (a sub-attribute), `address[city]` (a member of a JSON value). The pattern
//! operators `~=` and `!~=` are refused as not supported.
//!
//! [`parse`] is bounded (4 KiB, 32 levels, 256 terms) and never panics; [`Query::matches`] asks
//! a [`Row`] for each attribute path. A type mismatch never matches (`!=`: matches).

use std::fmt;

use crate::sta::filter::{Row, Val, parse_time};

/// Longest `q` accepted, in bytes.
pub const MAX_Q_LEN: usize = 4 << 10;
const MAX_DEPTH: usize = 32;
const MAX_TERMS: usize = 256;

/// A parsed `q`.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// All must hold (`;`).
    And(Vec<Query>),
    /// One must hold (`|`).
    Or(Vec<Query>),
    /// The attribute exists.
    Exists(Vec<String>),
    /// `path op value`.
    Compare(Vec<String>, Op, Operand),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// The right side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// One value.
    One(Val),
    /// `a..b`, inclusive.
    Range(Val, Val),
    /// `a,b,c`: any of them.
    List(Vec<Val>),
}

/// Why a `q` was refused (NGSI-LD's `BadRequestData`, or `OperationNotSupported`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QError {
    /// What is wrong, and where.
    pub message: String,
    /// Part of the language agora does not answer.
    pub unsupported: bool,
}

impl fmt::Display for QError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for QError {}

fn bad<T>(message: impl Into<String>) -> Result<T, QError> {
    Err(QError { message: message.into(), unsupported: false })
}

/// Parse a `q` expression.
pub fn parse(text: &str) -> Result<Query, QError> {
    if text.len() > MAX_Q_LEN {
        return bad(format!("q is longer than {MAX_Q_LEN} bytes"));
    }
    if text.trim().is_empty() {
        return bad("q is empty");
    }
    let mut p = P { s: text.as_bytes(), text, pos: 0, depth: 0, terms: 0 };
    let q = p.or()?;
    p.ws();
    if p.pos < p.s.len() {
        return bad(format!("unexpected {:?} at position {} of q", p.rest(), p.pos));
    }
    Ok(q)
}

struct P<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
    terms: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn rest(&self) -> String {
        self.text[self.pos..].chars().take(12).collect()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Query, QError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return bad(format!("q is nested more than {MAX_DEPTH} levels deep"));
        }
        let mut parts = vec![self.and()?];
        while self.eat(b'|') {
            parts.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::Or(parts) })
    }

    fn and(&mut self) -> Result<Query, QError> {
        let mut parts = vec![self.term()?];
        while self.eat(b';') {
            parts.push(self.term()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Query::And(parts) })
    }

    fn term(&mut self) -> Result<Query, QError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return bad(format!("q has more than {MAX_TERMS} terms"));
        }
        if self.eat(b'(') {
            let q = self.or()?;
            if !self.eat(b')') {
                return bad(format!("expected ')' at position {} of q", self.pos));
            }
            return Ok(q);
        }
        let path = self.path()?;
        self.ws();
        let rest = &self.s[self.pos..];
        let (op, len) = if rest.starts_with(b"==") {
            (Some(Op::Eq), 2)
        } else if rest.starts_with(b"!=") {
            (Some(Op::Ne), 2)
        } else if rest.starts_with(b">=") {
            (Some(Op::Ge), 2)
        } else if rest.starts_with(b"<=") {
            (Some(Op::Le), 2)
        } else if rest.starts_with(b">") {
            (Some(Op::Gt), 1)
        } else if rest.starts_with(b"<") {
            (Some(Op::Lt), 1)
        } else if rest.starts_with(b"~=") || rest.starts_with(b"!~=") {
            return Err(QError {
                message: "the pattern operators ~= and !~= are not supported".into(),
                unsupported: true,
            });
        } else {
            (None, 0)
        };
        let Some(op) = op else { return Ok(Query::Exists(path)) };
        self.pos += len;
        let first = self.value()?;
        self.ws();
        if self.s[self.pos..].starts_with(b"..") {
            if !matches!(op, Op::Eq | Op::Ne) {
                return bad("a range a..b goes with == or != only");
            }
            self.pos += 2;
            let last = self.value()?;
            return Ok(Query::Compare(path, op, Operand::Range(first, last)));
        }
        if self.s.get(self.pos) == Some(&b',') {
            if !matches!(op, Op::Eq | Op::Ne) {
                return bad("a list a,b goes with == or != only");
            }
            let mut list = vec![first];
            while self.eat(b',') {
                list.push(self.value()?);
                if list.len() > MAX_TERMS {
                    return bad(format!("a list in q has more than {MAX_TERMS} values"));
                }
            }
            return Ok(Query::Compare(path, op, Operand::List(list)));
        }
        Ok(Query::Compare(path, op, Operand::One(first)))
    }

    /// `name(.name)*([name(.name)*])?`
    fn path(&mut self) -> Result<Vec<String>, QError> {
        self.ws();
        let start = self.pos;
        let mut out = Vec::new();
        let name = |p: &mut Self| -> Result<String, QError> {
            let s = p.pos;
            while p.s.get(p.pos).is_some_and(|c| {
                c.is_ascii_alphanumeric() || *c == b'_' || *c == b':' || *c >= 0x80
            }) {
                p.pos += 1;
            }
            if s == p.pos {
                return bad(format!("expected an attribute name at position {s} of q"));
            }
            Ok(p.text.get(s..p.pos).map(str::to_owned).unwrap_or_default())
        };
        out.push(name(self)?);
        while self.s.get(self.pos) == Some(&b'.') && self.s.get(self.pos + 1) != Some(&b'.') {
            self.pos += 1;
            out.push(name(self)?);
        }
        if self.s.get(self.pos) == Some(&b'[') {
            self.pos += 1;
            out.push(name(self)?);
            while self.s.get(self.pos) == Some(&b'.') {
                self.pos += 1;
                out.push(name(self)?);
            }
            if self.s.get(self.pos) != Some(&b']') {
                return bad(format!("expected ']' at position {} of q", self.pos));
            }
            self.pos += 1;
        }
        if self.s.get(self.pos) == Some(&b'{') {
            return Err(QError {
                message: format!(
                    "linked-entity paths ({{…}}) at position {start} are not supported"
                ),
                unsupported: true,
            });
        }
        Ok(out)
    }

    fn value(&mut self) -> Result<Val, QError> {
        self.ws();
        let start = self.pos;
        match self.s.get(self.pos) {
            None => bad("q ends where a value was expected"),
            Some(b'"') => {
                let mut out = String::new();
                let mut i = self.pos + 1;
                let mut from = i;
                while i < self.s.len() {
                    match self.s[i] {
                        b'\\' if i + 1 < self.s.len() => {
                            out.push_str(&self.text[from..i]);
                            i += 1;
                            from = i;
                            i += 1;
                        }
                        b'"' => {
                            out.push_str(&self.text[from..i]);
                            self.pos = i + 1;
                            return Ok(Val::Str(out));
                        }
                        _ => i += 1,
                    }
                }
                bad(format!("unterminated string at position {start} of q"))
            }
            Some(_) => {
                while self
                    .s
                    .get(self.pos)
                    .is_some_and(|c| !b";|)(,".contains(c) && !c.is_ascii_whitespace())
                {
                    // Stop before a range's `..` (but keep a number's decimal point).
                    if self.s[self.pos..].starts_with(b"..") {
                        break;
                    }
                    self.pos += 1;
                }
                let word = &self.text[start..self.pos];
                match word {
                    "" => bad(format!("expected a value at position {start} of q")),
                    "true" => Ok(Val::Bool(true)),
                    "false" => Ok(Val::Bool(false)),
                    w if w.len() >= 11 && w.as_bytes()[4] == b'-' && w.as_bytes()[10] == b'T' => parse_time(w)
                        .map(Val::Time)
                        .ok_or_else(|| QError {
                            message: format!("bad date-time {w:?} at position {start} of q: expected e.g. 2026-01-01T00:00:00Z"),
                            unsupported: false,
                        }),
                    w => match w.parse::<f64>() {
                        Ok(x) if x.is_finite() => Ok(Val::Num(x)),
                        // A bare word is a URI (a relationship's object).
                        _ if w.contains(':') => Ok(Val::Str(w.to_owned())),
                        _ => bad(format!("bad value {w:?} at position {start} of q: a number, a \"string\", true, false or a date-time")),
                    },
                }
            }
        }
    }
}

impl Query {
    /// Whether the entity a row describes matches.
    pub fn matches(&self, row: &dyn Row) -> bool {
        match self {
            Query::And(v) => v.iter().all(|q| q.matches(row)),
            Query::Or(v) => v.iter().any(|q| q.matches(row)),
            Query::Exists(p) => row.get(p) != Val::Null,
            Query::Compare(p, op, rhs) => {
                let v = row.get(p);
                if v == Val::Null {
                    return false;
                }
                let holds = match rhs {
                    Operand::One(x) => match op {
                        Op::Eq | Op::Ne => same(&v, x),
                        _ => order(&v, x).is_some_and(|o| match op {
                            Op::Gt => o.is_gt(),
                            Op::Ge => o.is_ge(),
                            Op::Lt => o.is_lt(),
                            _ => o.is_le(),
                        }),
                    },
                    Operand::Range(a, b) => {
                        order(&v, a).is_some_and(|o| o.is_ge())
                            && order(&v, b).is_some_and(|o| o.is_le())
                    }
                    Operand::List(l) => l.iter().any(|x| same(&v, x)),
                };
                if *op == Op::Ne { !holds } else { holds }
            }
        }
    }
}

fn same(a: &Val, b: &Val) -> bool {
    order(a, b).is_some_and(|o| o.is_eq())
}

fn order(a: &Val, b: &Val) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Str(s)) => parse_time(s).map(|y| x.cmp(&y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct R(HashMap<String, Val>);

    impl Row for R {
        fn get(&self, path: &[String]) -> Val {
            self.0.get(&path.join(".")).cloned().unwrap_or(Val::Null)
        }
    }

    fn tower(name: &str, full: bool, level: f64) -> R {
        R(HashMap::from([
            ("name".into(), Val::Str(name.into())),
            ("almostFull".into(), Val::Bool(full)),
            ("airQualityLevel".into(), Val::Num(level)),
            (
                "airQualityLevel.observedAt".into(),
                Val::Time(parse_time("2026-01-01T10:00:00Z").unwrap()),
            ),
            ("locatedIn".into(), Val::Str("urn:ngsi-ld:City:Pisa".into())),
            ("address.city".into(), Val::Str("Pisa".into())),
        ]))
    }

    fn yes(q: &str, r: &R) -> bool {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}")).matches(r)
    }

    #[test]
    fn the_test_suites_examples() {
        // ETSI's NGSI-LD test suite, 019_09: the q cases it sends.
        let pisa = tower("Pisa Tower", false, 5.0);
        let eiffel = tower("Eiffel Tower", true, 3.0);
        assert!(yes(r#"name=="Pisa Tower""#, &pisa) && !yes(r#"name=="Pisa Tower""#, &eiffel));
        assert!(yes(r#"name=="Pisa Tower";almostFull==false"#, &pisa));
        assert!(!yes(r#"name=="Eiffel Tower";almostFull==false"#, &eiffel));
        let either = r#"(name=="Pisa Tower"|name=="Eiffel Tower");almostFull==false"#;
        assert!(yes(either, &pisa) && !yes(either, &eiffel));
        assert!(yes("airQualityLevel>=4;airQualityLevel<7", &pisa));
        assert!(!yes("airQualityLevel>=4;airQualityLevel<7", &eiffel));
        assert!(yes("locatedIn==urn:ngsi-ld:City:Pisa", &pisa));
    }

    #[test]
    fn the_rest_of_the_language() {
        let pisa = tower("Pisa Tower", false, 5.0);
        assert!(yes("airQualityLevel==4..6", &pisa) && !yes("airQualityLevel==6..9", &pisa));
        assert!(yes("airQualityLevel!=6..9", &pisa));
        assert!(yes(r#"name=="Rome Tower","Pisa Tower""#, &pisa));
        assert!(yes("airQualityLevel==1,5,7", &pisa));
        assert!(yes("airQualityLevel.observedAt>=2026-01-01T09:00:00Z", &pisa));
        assert!(!yes("airQualityLevel.observedAt>2026-01-01T10:00:00Z", &pisa));
        assert!(yes("address[city]==\"Pisa\"", &pisa));
        assert!(yes("airQualityLevel", &pisa) && !yes("noSuchThing", &pisa));
        assert!(!yes("name>3", &pisa), "a type mismatch never matches");
        assert!(yes("name!=3", &pisa));
        assert!(!yes("noSuchThing!=3", &pisa), "a missing attribute matches nothing");
        assert!(yes(r#"name=="Pisa \"Tower\"""#, &tower("Pisa \"Tower\"", false, 1.0)));
        assert!(
            yes("airQualityLevel==5|airQualityLevel==6;almostFull==true", &pisa),
            "; binds tighter than |"
        );
    }

    #[test]
    fn garbage_is_refused_with_where_and_why() {
        for (q, why) in [
            ("", "empty"),
            ("a==", "ends where a value was expected"),
            ("(a==1", "expected ')'"),
            ("a==1)", "unexpected \")\""),
            ("a==\"x", "unterminated string"),
            ("a==x", "bad value \"x\""),
            ("a>1..2", "range a..b goes with == or !="),
            ("a<1,2", "list a,b goes with == or !="),
            ("a.observedAt>2026-13-01T00:00:00Z", "bad date-time"),
            ("==1", "expected an attribute name"),
            ("a[b==1", "expected ']'"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.message.contains(why) && !e.unsupported, "{q:?}: {}", e.message);
        }
        assert!(parse("a~=\"x.*\"").unwrap_err().unsupported);
        assert!(parse("a{b}==1").unwrap_err().unsupported);
        let deep = format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(parse(&deep).unwrap_err().message.contains("nested more than 32"));
        let many = vec!["a==1"; 300].join(";");
        assert!(parse(&many).unwrap_err().message.contains("more than 256 terms"));
        assert!(parse(&"a".repeat(5000)).unwrap_err().message.contains("longer than"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            if let Ok(q) = parse(&s) {
                let _ = q.matches(&tower("x", true, 1.0));
            }
        }

        #[test]
        fn never_panics_on_q_shaped_text(s in "(name|a|\\.|observedAt|\\[|\\]|==|!=|>=|<|;|\\||\\(|\\)|,|\\.\\.|\"x\"|1|2\\.5|true|2026-01-01T00:00:00Z|urn:a:b| ){0,24}") {
            if let Ok(q) = parse(&s) {
                let _ = q.matches(&tower("x", true, 1.0));
            }
        }
    }
}
