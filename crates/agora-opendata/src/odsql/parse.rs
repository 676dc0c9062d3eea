//! The ODSQL lexer and parser, by hand. Keywords and function names are case-insensitive,
//! spaces optional; field names are letters, digits and `_`, or anything between backquotes
//! (`` `and` ``, `` `12` ``); strings take single or double quotes with `\` escapes. Errors
//! read like the real API's: `unexpected X at position N in <clause>`, N counting characters
//! from 0.

use super::{Arith, Clause, Cmp, Expr, Item, Lit, OdsqlError, Order, Select};

/// The longest clause accepted, in characters.
const MAX_CLAUSE: usize = 16_384;
/// The deepest nesting of parentheses, operators and calls.
const MAX_DEPTH: usize = 64;
/// The most items of a select, a group_by, an order_by or an `in` list.
const MAX_ITEMS: usize = 256;
/// The most binary operators (`and`, `or`, `+`…) in one clause: a chain of them makes a tree
/// as deep as it is long, which checking, answering and dropping walk recursively.
const MAX_OPERATORS: usize = 256;

/// Words that must be backquoted to be field names (the real API's list).
const KEYWORDS: &[&str] = &[
    "and",
    "as",
    "asc",
    "avg",
    "by",
    "count",
    "date_format",
    "day",
    "dayofweek",
    "desc",
    "distinct",
    "equi",
    "false",
    "group",
    "hour",
    "ifnull",
    "or",
    "limit",
    "lower",
    "max",
    "millisecond",
    "min",
    "minute",
    "month",
    "not",
    "null",
    "quarter",
    "range",
    "search",
    "second",
    "select",
    "sum",
    "top",
    "true",
    "upper",
    "where",
    "year",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (its case kept; compare lowercased).
    Word(String),
    /// A backquoted name.
    Quoted(String),
    Str(String),
    Num(f64),
    /// `date'…'`
    Date(String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Position of its first character.
    pos: usize,
    /// Position after it.
    end: usize,
}

struct Parser<'a> {
    src: Vec<char>,
    text: &'a str,
    pos: usize,
    /// Position after the last token consumed.
    last_end: usize,
    depth: usize,
    /// Binary operators read so far.
    ops: usize,
    clause: Clause,
}

/// Parse a `where` clause.
pub fn parse_where(text: &str) -> Result<Expr, OdsqlError> {
    let mut p = Parser::new(text, Clause::Where)?;
    let e = p.expr()?;
    p.end()?;
    Ok(e)
}

/// Parse a `select` clause.
pub fn parse_select(text: &str) -> Result<Select, OdsqlError> {
    let mut p = Parser::new(text, Clause::Select)?;
    let t = p.peek()?;
    if t.tok == Tok::Punct("*") {
        p.next()?;
        if p.peek()?.tok == Tok::Eof {
            return Ok(Select::All);
        }
        let t = p.peek()?;
        return Err(p.unexpected(&t));
    }
    let items = p.items(true)?;
    p.end()?;
    Ok(Select::Items(items))
}

/// Parse a `group_by` clause.
pub fn parse_group_by(text: &str) -> Result<Vec<Item>, OdsqlError> {
    let mut p = Parser::new(text, Clause::GroupBy)?;
    let items = p.items(true)?;
    p.end()?;
    Ok(items)
}

/// Parse an `order_by` clause.
pub fn parse_order_by(text: &str) -> Result<Vec<Order>, OdsqlError> {
    let mut p = Parser::new(text, Clause::OrderBy)?;
    let mut out = Vec::new();
    loop {
        let start = p.peek()?.pos;
        let expr = p.expr()?;
        let text = p.slice(start, p.last_end);
        let desc = match p.peek()?.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("desc") => {
                p.next()?;
                true
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("asc") => {
                p.next()?;
                false
            }
            _ => false,
        };
        out.push(Order { expr, text, desc });
        if out.len() > MAX_ITEMS {
            return Err(OdsqlError::malformed(p.clause, format!("more than {MAX_ITEMS} items")));
        }
        if !p.eat(",")? {
            break;
        }
    }
    p.end()?;
    Ok(out)
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, clause: Clause) -> Result<Self, OdsqlError> {
        let src: Vec<char> = text.chars().collect();
        if src.len() > MAX_CLAUSE {
            return Err(OdsqlError::malformed(
                clause,
                format!("the clause is longer than {MAX_CLAUSE} characters"),
            ));
        }
        Ok(Parser { src, text, pos: 0, last_end: 0, depth: 0, ops: 0, clause })
    }
}

impl Parser<'_> {
    fn slice(&self, from: usize, to: usize) -> String {
        self.src[from.min(self.src.len())..to.min(self.src.len())]
            .iter()
            .collect::<String>()
            .trim()
            .to_owned()
    }

    fn syntax(&self, detail: String) -> OdsqlError {
        OdsqlError::Syntax { detail, clause: self.clause }
    }

    fn unexpected(&self, t: &Token) -> OdsqlError {
        let what = if t.end > t.pos {
            self.src[t.pos..t.end.min(self.src.len())].iter().collect()
        } else {
            "end of input".to_owned()
        };
        self.syntax(format!("unexpected {what} at position {} in {}", t.pos, self.text))
    }

    fn skip_space(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    /// The next token, consumed.
    fn next(&mut self) -> Result<Token, OdsqlError> {
        let t = self.scan()?;
        self.pos = t.end;
        self.last_end = t.end;
        Ok(t)
    }

    /// The next token, not consumed.
    fn peek(&mut self) -> Result<Token, OdsqlError> {
        let save = self.pos;
        let t = self.scan();
        self.pos = save;
        t
    }

    fn eat(&mut self, punct: &str) -> Result<bool, OdsqlError> {
        if matches!(self.peek()?.tok, Tok::Punct(p) if p == punct) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn eat_word(&mut self, word: &str) -> Result<bool, OdsqlError> {
        if matches!(&self.peek()?.tok, Tok::Word(w) if w.eq_ignore_ascii_case(word)) {
            self.next()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn expect(&mut self, punct: &str) -> Result<(), OdsqlError> {
        let t = self.next()?;
        match t.tok {
            Tok::Punct(p) if p == punct => Ok(()),
            _ => Err(self.unexpected(&t)),
        }
    }

    fn end(&mut self) -> Result<(), OdsqlError> {
        let t = self.next()?;
        if t.tok == Tok::Eof { Ok(()) } else { Err(self.unexpected(&t)) }
    }

    fn scan(&mut self) -> Result<Token, OdsqlError> {
        self.skip_space();
        let start = self.pos;
        let src = &self.src;
        let Some(&c) = src.get(start) else {
            return Ok(Token { tok: Tok::Eof, pos: start, end: start });
        };
        let tok = |tok, end| Ok(Token { tok, pos: start, end });
        if c.is_ascii_digit() || (c == '.' && src.get(start + 1).is_some_and(char::is_ascii_digit))
        {
            let mut i = start;
            while i < src.len() && src[i].is_ascii_digit() {
                i += 1;
            }
            if i < src.len() && src[i] == '.' && src.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < src.len() && src[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < src.len() && (src[i] == 'e' || src[i] == 'E') {
                let mut j = i + 1;
                if j < src.len() && (src[j] == '+' || src[j] == '-') {
                    j += 1;
                }
                if j < src.len() && src[j].is_ascii_digit() {
                    while j < src.len() && src[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let text: String = src[start..i].iter().collect();
            // A number glued to letters (`12abc`) is not a name: names start with a letter.
            if i < src.len() && (src[i].is_alphanumeric() || src[i] == '_') {
                let t = Token { tok: Tok::Eof, pos: i, end: i + 1 };
                return Err(self.unexpected(&t));
            }
            return match text.parse::<f64>() {
                Ok(n) if n.is_finite() => tok(Tok::Num(n), i),
                _ => Err(self.syntax(format!(
                    "number {text} out of range at position {start} in {}",
                    self.text
                ))),
            };
        }
        if c.is_alphabetic() || c == '_' {
            let mut i = start;
            while i < src.len() && (src[i].is_alphanumeric() || src[i] == '_') {
                i += 1;
            }
            let word: String = src[start..i].iter().collect();
            // `date'…'` and `geom'…'`: a literal glued to its quote.
            if i < src.len() && (src[i] == '\'' || src[i] == '"') {
                let lower = word.to_ascii_lowercase();
                if lower == "date" || lower == "geom" {
                    let (s, end) = self.string(i)?;
                    if lower == "geom" {
                        return Err(OdsqlError::malformed(
                            self.clause,
                            "geometry literals (geom'…') are not supported: agora's datasets \
                             hold points; filter on lat and lon",
                        ));
                    }
                    return tok(Tok::Date(s), end);
                }
            }
            return tok(Tok::Word(word), i);
        }
        match c {
            '`' => {
                let mut s = String::new();
                let mut i = start + 1;
                loop {
                    match src.get(i) {
                        None => {
                            return Err(self.syntax(format!(
                                "unterminated backquoted name at position {start} in {}",
                                self.text
                            )));
                        }
                        Some('\\') if src.get(i + 1) == Some(&'`') => {
                            s.push('`');
                            i += 2;
                        }
                        Some('`') => break,
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                tok(Tok::Quoted(s), i + 1)
            }
            '"' | '\'' => {
                let (s, end) = self.string(start)?;
                tok(Tok::Str(s), end)
            }
            _ => {
                let two: String = src[start..(start + 2).min(src.len())].iter().collect();
                for p in ["..", "<=", ">=", "!=", "<>"] {
                    if two == p {
                        return tok(Tok::Punct(p), start + 2);
                    }
                }
                for p in ["(", ")", ",", "[", "]", "*", "+", "-", "/", "=", "<", ">", ":"] {
                    if p.starts_with(c) {
                        return tok(Tok::Punct(p), start + 1);
                    }
                }
                let t = Token { tok: Tok::Eof, pos: start, end: start + 1 };
                Err(self.unexpected(&t))
            }
        }
    }

    /// A quoted string starting at `at` (its quote): its text and the position after it.
    fn string(&self, at: usize) -> Result<(String, usize), OdsqlError> {
        let q = self.src[at];
        let mut s = String::new();
        let mut i = at + 1;
        loop {
            match self.src.get(i) {
                None => {
                    return Err(self
                        .syntax(format!("unterminated string at position {at} in {}", self.text)));
                }
                Some('\\') => {
                    match self.src.get(i + 1) {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(&ch) => s.push(ch),
                        // A backslash ends the text: the string is unterminated.
                        None => {
                            i += 1;
                            continue;
                        }
                    }
                    i += 2;
                }
                Some(&ch) if ch == q => return Ok((s, i + 1)),
                Some(&ch) => {
                    s.push(ch);
                    i += 1;
                }
            }
        }
    }

    fn items(&mut self, aliases: bool) -> Result<Vec<Item>, OdsqlError> {
        let mut out = Vec::new();
        loop {
            let start = self.peek()?.pos;
            let expr = self.expr()?;
            let text = self.slice(start, self.last_end);
            let alias = if aliases && self.eat_word("as")? {
                let t = self.next()?;
                match t.tok.clone() {
                    Tok::Word(w) if !is_keyword(&w) => Some(w),
                    // A quoted alias is a name too: letters, digits and `_` (it becomes a key
                    // of JSON answers and a column of CSV and Parquet exports).
                    Tok::Quoted(w) | Tok::Str(w)
                        if !w.is_empty()
                            && w.len() <= 64
                            && w.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                    {
                        Some(w)
                    }
                    _ => return Err(self.unexpected(&t)),
                }
            } else {
                None
            };
            out.push(Item { expr, alias, text });
            if out.len() > MAX_ITEMS {
                return Err(OdsqlError::malformed(
                    self.clause,
                    format!("more than {MAX_ITEMS} items"),
                ));
            }
            if !self.eat(",")? {
                return Ok(out);
            }
        }
    }

    fn operator(&mut self) -> Result<(), OdsqlError> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(OdsqlError::malformed(
                self.clause,
                format!("more than {MAX_OPERATORS} operators in one clause"),
            ));
        }
        Ok(())
    }

    fn deeper(&mut self) -> Result<(), OdsqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(OdsqlError::malformed(
                self.clause,
                format!("expressions nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// `or`, the loosest.
    fn expr(&mut self) -> Result<Expr, OdsqlError> {
        self.deeper()?;
        let mut e = self.and()?;
        while self.eat_word("or")? {
            self.operator()?;
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        self.depth -= 1;
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, OdsqlError> {
        let mut e = self.not()?;
        while self.eat_word("and")? {
            self.operator()?;
            let r = self.not()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, OdsqlError> {
        if self.eat_word("not")? {
            self.deeper()?;
            let e = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, OdsqlError> {
        let l = self.additive()?;
        let t = self.peek()?;
        let cmp = match &t.tok {
            Tok::Punct("=") | Tok::Punct(":") => Some(Cmp::Eq),
            Tok::Punct("!=") | Tok::Punct("<>") => Some(Cmp::Ne),
            Tok::Punct("<") => Some(Cmp::Lt),
            Tok::Punct("<=") => Some(Cmp::Le),
            Tok::Punct(">") => Some(Cmp::Gt),
            Tok::Punct(">=") => Some(Cmp::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            self.next()?;
            let r = self.additive()?;
            return Ok(Expr::Cmp(op, Box::new(l), Box::new(r)));
        }
        if self.eat_word("is")? {
            let negated = self.eat_word("not")?;
            let t = self.next()?;
            return match &t.tok {
                Tok::Word(w) if w.eq_ignore_ascii_case("null") => {
                    Ok(Expr::IsNull(Box::new(l), negated))
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("true") => {
                    Ok(Expr::IsBool(Box::new(l), !negated))
                }
                Tok::Word(w) if w.eq_ignore_ascii_case("false") => {
                    Ok(Expr::IsBool(Box::new(l), negated))
                }
                _ => Err(self.unexpected(&t)),
            };
        }
        let negated = {
            let save = self.pos;
            if self.eat_word("not")? {
                if matches!(&self.peek()?.tok, Tok::Word(w) if w.eq_ignore_ascii_case("in") || w.eq_ignore_ascii_case("like"))
                {
                    true
                } else {
                    self.pos = save;
                    false
                }
            } else {
                false
            }
        };
        let wrap = |e: Expr| if negated { Expr::Not(Box::new(e)) } else { e };
        if self.eat_word("in")? {
            return self.in_rest(l).map(wrap);
        }
        if self.eat_word("like")? {
            let t = self.next()?;
            return match t.tok {
                Tok::Str(s) => Ok(wrap(Expr::Like(Box::new(l), s))),
                _ => Err(self.unexpected(&t)),
            };
        }
        Ok(l)
    }

    fn in_rest(&mut self, l: Expr) -> Result<Expr, OdsqlError> {
        let t = self.next()?;
        match t.tok {
            Tok::Punct("(") => {
                let mut list = Vec::new();
                loop {
                    list.push(self.additive()?);
                    if list.len() > MAX_ITEMS {
                        return Err(OdsqlError::malformed(
                            self.clause,
                            format!("more than {MAX_ITEMS} values in a list"),
                        ));
                    }
                    if !self.eat(",")? {
                        break;
                    }
                }
                self.expect(")")?;
                Ok(Expr::InList(Box::new(l), list))
            }
            Tok::Punct("[") | Tok::Punct("]") => {
                let lo_incl = t.tok == Tok::Punct("[");
                let lo = self.bound()?;
                let sep = self.next()?;
                match &sep.tok {
                    Tok::Punct("..") => {}
                    Tok::Word(w) if w.eq_ignore_ascii_case("to") => {}
                    _ => return Err(self.unexpected(&sep)),
                }
                let hi = self.bound()?;
                let close = self.next()?;
                let hi_incl = match close.tok {
                    Tok::Punct("]") => true,
                    Tok::Punct("[") => false,
                    _ => return Err(self.unexpected(&close)),
                };
                Ok(Expr::InRange { e: Box::new(l), lo, lo_incl, hi, hi_incl })
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    /// A range bound: an expression or `*`.
    fn bound(&mut self) -> Result<Option<Box<Expr>>, OdsqlError> {
        if self.eat("*")? {
            return Ok(None);
        }
        Ok(Some(Box::new(self.additive()?)))
    }

    fn additive(&mut self) -> Result<Expr, OdsqlError> {
        let mut e = self.multiplicative()?;
        loop {
            let op = if self.eat("+")? {
                Arith::Add
            } else if self.eat("-")? {
                Arith::Sub
            } else {
                return Ok(e);
            };
            self.operator()?;
            let r = self.multiplicative()?;
            e = Expr::Arith(op, Box::new(e), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, OdsqlError> {
        let mut e = self.unary()?;
        loop {
            let op = if self.eat("*")? {
                Arith::Mul
            } else if self.eat("/")? {
                Arith::Div
            } else {
                return Ok(e);
            };
            self.operator()?;
            let r = self.unary()?;
            e = Expr::Arith(op, Box::new(e), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, OdsqlError> {
        if self.eat("-")? {
            self.deeper()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(match e {
                Expr::Lit(Lit::Num(n)) => Expr::Lit(Lit::Num(-n)),
                e => Expr::Neg(Box::new(e)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, OdsqlError> {
        let t = self.next()?;
        match t.tok.clone() {
            Tok::Num(n) => Ok(Expr::Lit(Lit::Num(n))),
            Tok::Str(s) => Ok(Expr::Lit(Lit::Text(s))),
            Tok::Date(s) => Ok(Expr::Lit(Lit::Date(s))),
            Tok::Quoted(name) => Ok(Expr::Field(name)),
            Tok::Punct("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Word(w) => {
                let lower = w.to_ascii_lowercase();
                if self.peek()?.tok == Tok::Punct("(") {
                    self.next()?;
                    return self.call(lower);
                }
                match lower.as_str() {
                    "null" => Ok(Expr::Lit(Lit::Null)),
                    "true" => Ok(Expr::Lit(Lit::Bool(true))),
                    "false" => Ok(Expr::Lit(Lit::Bool(false))),
                    _ if is_keyword(&lower) => Err(self.unexpected(&t)),
                    _ => Ok(Expr::Field(w)),
                }
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    /// The arguments of `name(`, its parenthesis consumed.
    fn call(&mut self, name: String) -> Result<Expr, OdsqlError> {
        self.deeper()?;
        let mut name = name;
        let mut args = Vec::new();
        if name == "count" && self.eat_word("distinct")? {
            name = "count_distinct".into();
        }
        if !self.eat(")")? {
            loop {
                if self.eat("*")? {
                    args.push(Expr::Star);
                } else {
                    args.push(self.expr()?);
                }
                if args.len() > 16 {
                    return Err(OdsqlError::malformed(
                        self.clause,
                        format!("{name}() given more than 16 arguments"),
                    ));
                }
                if !self.eat(",")? {
                    break;
                }
            }
            self.expect(")")?;
        }
        self.depth -= 1;
        Ok(Expr::Call(name, args))
    }
}

fn is_keyword(w: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(n: &str) -> Box<Expr> {
        Box::new(Expr::Field(n.into()))
    }
    fn num(n: f64) -> Box<Expr> {
        Box::new(Expr::Lit(Lit::Num(n)))
    }

    #[test]
    fn precedence_and_comparisons() {
        let e = parse_where("pm10 > 50 or no2 >= 40 and not site_id = 'x'").unwrap();
        let expected = Expr::Or(
            Box::new(Expr::Cmp(Cmp::Gt, f("pm10"), num(50.0))),
            Box::new(Expr::And(
                Box::new(Expr::Cmp(Cmp::Ge, f("no2"), num(40.0))),
                Box::new(Expr::Not(Box::new(Expr::Cmp(
                    Cmp::Eq,
                    f("site_id"),
                    Box::new(Expr::Lit(Lit::Text("x".into()))),
                )))),
            )),
        );
        assert_eq!(e, expected);
        assert_eq!(parse_where("(a=1)").unwrap(), Expr::Cmp(Cmp::Eq, f("a"), num(1.0)));
        assert_eq!(
            parse_where("`and`: \"v\"").unwrap(),
            Expr::Cmp(Cmp::Eq, f("and"), Box::new(Expr::Lit(Lit::Text("v".into()))))
        );
        assert_eq!(parse_where("a <> -2").unwrap(), Expr::Cmp(Cmp::Ne, f("a"), num(-2.0)));
        assert_eq!(
            parse_where("a*2+1 = 3").unwrap(),
            Expr::Cmp(
                Cmp::Eq,
                Box::new(Expr::Arith(
                    Arith::Add,
                    Box::new(Expr::Arith(Arith::Mul, f("a"), num(2.0))),
                    num(1.0)
                )),
                num(3.0)
            )
        );
    }

    #[test]
    fn ranges_lists_nulls_dates() {
        assert_eq!(
            parse_where("pm10 IN ]1..10[").unwrap(),
            Expr::InRange {
                e: f("pm10"),
                lo: Some(num(1.0)),
                lo_incl: false,
                hi: Some(num(10.0)),
                hi_incl: false
            }
        );
        assert_eq!(
            parse_where("date in [date'2024' TO *]").unwrap(),
            Expr::InRange {
                e: f("date"),
                lo: Some(Box::new(Expr::Lit(Lit::Date("2024".into())))),
                lo_incl: true,
                hi: None,
                hi_incl: true
            }
        );
        assert_eq!(
            parse_where("site_id not in ('a', \"b\")").unwrap(),
            Expr::Not(Box::new(Expr::InList(
                f("site_id"),
                vec![Expr::Lit(Lit::Text("a".into())), Expr::Lit(Lit::Text("b".into()))]
            )))
        );
        assert_eq!(parse_where("pm10 is not null").unwrap(), Expr::IsNull(f("pm10"), true));
        assert_eq!(
            parse_where("name like 'Don\\'t'").unwrap(),
            Expr::Like(f("name"), "Don't".into())
        );
        assert_eq!(
            parse_where("search(*, \"rotonde\")").unwrap(),
            Expr::Call("search".into(), vec![Expr::Star, Expr::Lit(Lit::Text("rotonde".into()))])
        );
    }

    #[test]
    fn select_group_order() {
        let Select::Items(items) =
            parse_select("year(date) as y, count(*), AVG(pm10) AS mean").unwrap()
        else {
            panic!()
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].key(), "y");
        assert_eq!(items[1].key(), "count(*)");
        assert_eq!(items[1].expr, Expr::Call("count".into(), vec![Expr::Star]));
        assert_eq!(items[2].expr, Expr::Call("avg".into(), vec![Expr::Field("pm10".into())]));
        assert_eq!(parse_select(" * ").unwrap(), Select::All);
        let g = parse_group_by("date_format(date, 'yyyy-MM') as m, site_id").unwrap();
        assert_eq!((g[0].key(), g[1].key()), ("m", "site_id"));
        let o = parse_order_by("count(*) DESC, site_id").unwrap();
        assert!(o[0].desc && !o[1].desc);
        assert_eq!(o[0].text, "count(*)");
        assert_eq!(
            parse_select("count(distinct device_id)").unwrap(),
            Select::Items(vec![Item {
                expr: Expr::Call("count_distinct".into(), vec![Expr::Field("device_id".into())]),
                alias: None,
                text: "count(distinct device_id)".into(),
            }])
        );
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let e = parse_where("contains(objet, \"espaces verts\")");
        // A call parses; it is refused when compiled against the dataset (unknown function).
        assert!(e.is_ok());
        let e = parse_where("pm10 > (3))").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ODSQL syntax exception: unexpected ) at position 10 in pm10 > (3)). Clause(s) \
             containing the error(s): where."
        );
        assert_eq!(e.code(), "ODSQLSyntaxError");
        let e = parse_where("pm10 >").unwrap_err().to_string();
        assert!(e.contains("unexpected end of input at position 6"), "{e}");
        let e = parse_where("a = 'open").unwrap_err().to_string();
        assert!(e.contains("unterminated string at position 4"), "{e}");
        let e = parse_where("a = 'x\\").unwrap_err().to_string();
        assert!(e.contains("unterminated string at position 4"), "a final backslash: {e}");
        let e = parse_select("pm10 as and").unwrap_err().to_string();
        assert!(e.contains("unexpected and at position 8") && e.ends_with("select."), "{e}");
        let e = parse_where("and = 1").unwrap_err().to_string();
        assert!(e.contains("unexpected and at position 0"), "{e}");
        let e = parse_where("a = 1 # b").unwrap_err().to_string();
        assert!(e.contains("unexpected # at position 6"), "{e}");
        let chain = vec!["1"; 300].join("+");
        assert!(parse_where(&chain).unwrap_err().to_string().contains("more than 256 operators"));
        let chain = vec!["a = 1"; 300].join(" and ");
        assert!(parse_where(&chain).unwrap_err().to_string().contains("more than 256 operators"));
        let e = parse_select("pm10 as \"=HYPERLINK(1)\"").unwrap_err().to_string();
        assert!(e.contains("unexpected \"=HYPERLINK(1)\""), "{e}");
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_where(&deep).unwrap_err().to_string().contains("nested deeper"));
    }

    /// The examples of the ODSQL reference (Explore API v2.1's OpenAPI document, its
    /// `info.description`; `docs/open-data-standards.md` part 2.4), as written there: those of
    /// the subset agora answers parse; those outside it parse too and are refused when compiled
    /// (tested in `eval.rs`), or are refused here by name (geometry literals).
    #[test]
    fn the_reference_examples_parse() {
        for w in [
            "`12` > 10",
            "`and`: \"value\"",
            "\"Word\"",
            "'Using single quotes'",
            "'Don\\'t worry'",
            "my_date >= date'2017-04-03T08:02'",
            "my_date > date'2018/04/01'",
            "my_date in [date'1972'..date'2017']",
            "my_boolean_field: FALSE",
            "my_boolean_field",
            "my_boolean_field is true",
            "film_name like \"star\"",
            "my_field IN [1..10]",
            "my_field IN ]1..10[",
            "my_field IN [1 TO 10[",
            "date_field IN [date'2017'..date'2018']",
            "my_field IN (\"Paris\", \"Nantes\", \"Lorient\")",
            "my_field is null",
            "my_field is not null",
            "search(title, \"bok of secret\")",
            "search(*, 'olympic')",
            "\"tree\" AND NOT \"dog\"",
            "startswith(name, \"Sain\")",
            "date_format(d,'dd') = '08'",
            "population > 1000 and (country = 'FR' or country = 'BE')",
        ] {
            parse_where(w).unwrap_or_else(|e| panic!("{w}: {e}"));
        }
        for s in [
            "count(*)",
            "avg(population) as mean, max(population)",
            "sum(records_count)",
            "year(date) as y, count(*) as n",
            "date_format(date_field, 'dd/MM/YYYY')",
            "population * 2 as double, name",
            "count(distinct name)",
        ] {
            parse_select(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        for g in [
            "country",
            "year(date) as y",
            "date_format(date_field, \"YYYY-MM-dd'T'HH\")",
            "month(d), country",
        ] {
            parse_group_by(g).unwrap_or_else(|e| panic!("{g}: {e}"));
        }
        for o in ["sum(age) desc, name asc", "count(*) DESC", "y"] {
            parse_order_by(o).unwrap_or_else(|e| panic!("{o}: {e}"));
        }
        let e = parse_where("distance(geo, geom'POINT(1 1)', 10km)").unwrap_err();
        assert!(e.to_string().contains("geometry literals"), "{e}");
    }

    proptest::proptest! {
        /// Whatever the text, parsing returns (no panic, no overflow).
        #[test]
        fn any_text_parses_or_errs(s in "\\PC{0,80}") {
            let _ = parse_where(&s);
            let _ = parse_select(&s);
            let _ = parse_group_by(&s);
            let _ = parse_order_by(&s);
        }

        /// Texts made of ODSQL's own pieces, the likelier to reach deep paths.
        #[test]
        fn odsql_like_text_parses_or_errs(parts in proptest::collection::vec(proptest::sample::select(vec![
            "pm10", "date", "(", ")", "and", "or", "not", "in", "[", "]", "..", "=", ">", "'x'",
            "date'2024'", "1", "2.5", ",", "count(*)", "avg(", "as", "is", "null", "*", "-", "`a`",
            "like", "search(", ":",
        ]), 0..30)) {
            let s = parts.join(" ");
            let _ = parse_where(&s);
            let _ = parse_select(&s);
            let _ = parse_order_by(&s);
        }
    }
}
