//! A small regular-expression matcher for the regexes InfluxQL queries carry (`/^aq-01$/`,
//! `/^(aq-01|aq-02)$/`, `/(?i)air/`, `/.*/`, `/server.*/`, escaped characters such as `\.`).
//!
//! The `regex` crate is not in the workspace's dependency tree, and these few forms do not
//! justify adding it: this module parses the RE2 subset Grafana emits — literals, escaped
//! punctuation, `.`, `^`, `$`, character classes (`[a-z]`, `[^…]`, `\d`, `\w`, `\s`), groups
//! `(…)` and `(?:…)`, alternation `|`, the repetitions `*`, `+`, `?` (greedy or lazy, which is
//! the same for a yes/no match) and the flag `(?i)` — and refuses anything else (counted
//! repetitions `{n,m}`, word boundaries, back-references, Unicode classes, other flags) with an
//! error naming it. Matching simulates the compiled program on all threads at once (a Pike
//! machine), so its time is linear in the text whatever the pattern: a query cannot make the
//! server backtrack for ever.

use std::fmt;

/// The longest pattern accepted, in characters: enough for any template-variable list, and a
/// bound on the program's size.
pub(super) const MAX_PATTERN: usize = 4096;
/// The deepest nesting of groups accepted. Parsing, compiling and dropping a pattern recurse once
/// per level: `((((…))))` four thousand deep would overflow a thread's stack, and no regex a
/// dashboard writes nests more than a few groups.
const MAX_NESTING: usize = 32;

/// A compiled regular expression; it matches anywhere in a text unless anchored with `^`/`$`.
#[derive(Clone)]
pub struct Regex {
    source: String,
    prog: Vec<Inst>,
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.source)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Regex {
    /// Compile `pattern`, or say which construct is not supported.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.chars().count() > MAX_PATTERN {
            return Err(format!("longer than {MAX_PATTERN} characters"));
        }
        let mut p = PatternParser { chars: pattern.chars().collect(), i: 0, depth: 0 };
        let mut ci = false;
        let node = p.alternation(&mut ci)?;
        if p.i < p.chars.len() {
            // Only an unmatched `)` stops the top-level alternation early.
            return Err("unmatched )".into());
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog);
        prog.push(Inst::Match);
        Ok(Self { source: pattern.to_owned(), prog })
    }

    /// The pattern as written (between the slashes).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let n = self.prog.len();
        let mut current = Threads::new(n);
        let mut next = Threads::new(n);
        for i in 0..=chars.len() {
            // A new thread starts at every position: the match is unanchored unless `^` says.
            if self.add(&mut current, 0, i, chars.len()) {
                return true;
            }
            let Some(&c) = chars.get(i) else { break };
            next.clear();
            for k in 0..current.list.len() {
                let pc = current.list[k];
                let step = match &self.prog[pc] {
                    Inst::Char(x, ci) => same_char(*x, c, *ci),
                    Inst::Any => c != '\n',
                    Inst::Class(class) => class.matches(c),
                    _ => false,
                };
                if step && self.add(&mut next, pc + 1, i + 1, chars.len()) {
                    return true;
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        false
    }

    /// Add the thread at `pc` and everything reachable from it without reading a character;
    /// true when one of them is a match.
    fn add(&self, t: &mut Threads, pc: usize, pos: usize, len: usize) -> bool {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if t.seen[pc] == t.generation {
                continue;
            }
            t.seen[pc] = t.generation;
            match &self.prog[pc] {
                Inst::Match => return true,
                Inst::Jmp(a) => stack.push(*a),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Start => {
                    if pos == 0 {
                        stack.push(pc + 1);
                    }
                }
                Inst::End => {
                    if pos == len {
                        stack.push(pc + 1);
                    }
                }
                Inst::Char(..) | Inst::Any | Inst::Class(_) => t.list.push(pc),
            }
        }
        false
    }
}

/// The live threads at one position: program counters, and which were added (by generation, so
/// that clearing is O(1)).
struct Threads {
    list: Vec<usize>,
    seen: Vec<u32>,
    generation: u32,
}

impl Threads {
    fn new(n: usize) -> Self {
        Self { list: Vec::with_capacity(n), seen: vec![0; n], generation: 1 }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
    }
}

fn same_char(pattern: char, c: char, ci: bool) -> bool {
    pattern == c || (ci && pattern.to_lowercase().eq(c.to_lowercase()))
}

/// One instruction of the compiled program.
#[derive(Debug, Clone)]
enum Inst {
    Char(char, bool),
    Any,
    Class(Class),
    Start,
    End,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A character class: `[a-z0-9_]`, `[^,]`, `\d`.
#[derive(Debug, Clone)]
struct Class {
    items: Vec<ClassItem>,
    negated: bool,
    ci: bool,
}

#[derive(Debug, Clone, Copy)]
enum ClassItem {
    Range(char, char),
    Perl(Perl, bool),
}

/// The classes `\d`, `\w` and `\s` (ASCII, as in RE2).
#[derive(Debug, Clone, Copy)]
enum Perl {
    Digit,
    Word,
    Space,
}

impl Perl {
    fn matches(self, c: char) -> bool {
        match self {
            Self::Digit => c.is_ascii_digit(),
            Self::Word => c.is_ascii_alphanumeric() || c == '_',
            Self::Space => matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c' | '\x0b'),
        }
    }
}

impl Class {
    fn matches(&self, c: char) -> bool {
        let hit = |c: char| {
            self.items.iter().any(|item| match *item {
                ClassItem::Range(a, b) => a <= c && c <= b,
                ClassItem::Perl(p, negated) => p.matches(c) != negated,
            })
        };
        let mut found = hit(c);
        if !found && self.ci {
            found = c.to_lowercase().any(hit) || c.to_uppercase().any(hit);
        }
        found != self.negated
    }
}

/// The parsed pattern.
#[derive(Debug)]
enum Node {
    Empty,
    Char(char, bool),
    Any,
    Class(Class),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Quest(Box<Node>),
}

struct PatternParser {
    chars: Vec<char>,
    i: usize,
    /// Groups open at `i`.
    depth: usize,
}

impl PatternParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += 1;
        c
    }

    /// `a|b|c` up to the end or an unmatched `)`. `(?i)` turns case-insensitivity on until the
    /// end of the enclosing group, as in RE2.
    fn alternation(&mut self, ci: &mut bool) -> Result<Node, String> {
        let mut alts = vec![self.concat(ci)?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.concat(ci)?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Node::Empty) } else { Node::Alt(alts) })
    }

    fn concat(&mut self, ci: &mut bool) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let Some(atom) = self.atom(ci)? else { continue };
            let mut node = atom;
            while let Some(q) = self.peek() {
                node = match q {
                    '*' => Node::Star(Box::new(node)),
                    '+' => Node::Plus(Box::new(node)),
                    '?' => Node::Quest(Box::new(node)),
                    '{' => {
                        return Err("counted repetitions {n,m} are not supported".into());
                    }
                    _ => break,
                };
                self.i += 1;
                // A lazy repetition matches the same texts.
                if self.peek() == Some('?') {
                    self.i += 1;
                }
                if matches!(self.peek(), Some('*' | '+')) {
                    return Err("a repetition of a repetition is not supported".into());
                }
            }
            items.push(node);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    /// One atom; `None` for a flag group such as `(?i)`, which matches nothing itself.
    fn atom(&mut self, ci: &mut bool) -> Result<Option<Node>, String> {
        let Some(c) = self.bump() else { return Ok(Some(Node::Empty)) };
        Ok(Some(match c {
            '(' => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(format!("groups nested more than {MAX_NESTING} deep"));
                }
                let mut inner_ci = *ci;
                if self.peek() == Some('?') {
                    self.i += 1;
                    let mut flags_on = false;
                    loop {
                        match self.bump() {
                            Some('i') => flags_on = true,
                            Some(')') if flags_on => {
                                self.depth -= 1;
                                *ci = true;
                                return Ok(None);
                            }
                            Some(':') => break,
                            Some(f @ ('m' | 's' | 'U' | '-')) => {
                                return Err(format!("the flag {f:?} is not supported (only (?i))"));
                            }
                            Some('P' | '<') => {
                                return Err("named groups are not supported".into());
                            }
                            Some('=' | '!') => {
                                return Err("look-around assertions are not supported".into());
                            }
                            _ => return Err("bad group syntax after (?".into()),
                        }
                    }
                    if flags_on {
                        inner_ci = true;
                    }
                }
                let node = self.alternation(&mut inner_ci)?;
                if self.bump() != Some(')') {
                    return Err("missing )".into());
                }
                self.depth -= 1;
                node
            }
            '[' => Node::Class(self.class(*ci)?),
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => self.escape(*ci)?,
            '*' | '+' | '?' => return Err(format!("nothing to repeat before {c}")),
            '{' => return Err("counted repetitions {n,m} are not supported".into()),
            _ => Node::Char(c, *ci),
        }))
    }

    /// After a `\` outside a class.
    fn escape(&mut self, ci: bool) -> Result<Node, String> {
        Ok(match self.escaped()? {
            Escaped::Char(c) => Node::Char(c, ci),
            Escaped::Perl(p, negated) => {
                Node::Class(Class { items: vec![ClassItem::Perl(p, negated)], negated: false, ci })
            }
        })
    }

    fn escaped(&mut self) -> Result<Escaped, String> {
        let Some(c) = self.bump() else { return Err("trailing \\".into()) };
        Ok(match c {
            'd' => Escaped::Perl(Perl::Digit, false),
            'D' => Escaped::Perl(Perl::Digit, true),
            'w' => Escaped::Perl(Perl::Word, false),
            'W' => Escaped::Perl(Perl::Word, true),
            's' => Escaped::Perl(Perl::Space, false),
            'S' => Escaped::Perl(Perl::Space, true),
            'n' => Escaped::Char('\n'),
            't' => Escaped::Char('\t'),
            'r' => Escaped::Char('\r'),
            'f' => Escaped::Char('\x0c'),
            'v' => Escaped::Char('\x0b'),
            c if c.is_ascii_punctuation() || c == ' ' => Escaped::Char(c),
            c => return Err(format!("the escape \\{c} is not supported")),
        })
    }

    /// After `[`.
    fn class(&mut self, ci: bool) -> Result<Class, String> {
        let mut class = Class { items: Vec::new(), negated: false, ci };
        if self.peek() == Some('^') {
            self.i += 1;
            class.negated = true;
        }
        let mut first = true;
        loop {
            let Some(c) = self.bump() else { return Err("missing ]".into()) };
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => match self.escaped()? {
                    Escaped::Char(c) => c,
                    Escaped::Perl(p, negated) => {
                        class.items.push(ClassItem::Perl(p, negated));
                        continue;
                    }
                },
                '[' if self.peek() == Some(':') => {
                    return Err("POSIX classes [:name:] are not supported".into());
                }
                c => c,
            };
            let is_range = self.peek() == Some('-') && self.chars.get(self.i + 1) != Some(&']');
            if is_range && self.chars.get(self.i + 1).is_some() {
                self.i += 1;
                let hi = match self.bump() {
                    Some('\\') => match self.escaped()? {
                        Escaped::Char(c) => c,
                        Escaped::Perl(..) => return Err("bad range in a class".into()),
                    },
                    Some(c) => c,
                    None => return Err("missing ]".into()),
                };
                if hi < lo {
                    return Err(format!("bad range {lo}-{hi} in a class"));
                }
                class.items.push(ClassItem::Range(lo, hi));
            } else {
                class.items.push(ClassItem::Range(lo, lo));
            }
        }
        Ok(class)
    }
}

enum Escaped {
    Char(char),
    Perl(Perl, bool),
}

fn compile(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Empty => {}
        Node::Char(c, ci) => prog.push(Inst::Char(*c, *ci)),
        Node::Any => prog.push(Inst::Any),
        Node::Class(c) => prog.push(Inst::Class(c.clone())),
        Node::Start => prog.push(Inst::Start),
        Node::End => prog.push(Inst::End),
        Node::Concat(items) => items.iter().for_each(|n| compile(n, prog)),
        Node::Alt(alts) => {
            // split L1, next; L1: a; jmp end; next: split L2, next2; …
            let mut jumps = Vec::new();
            for (k, alt) in alts.iter().enumerate() {
                if k + 1 < alts.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    compile(alt, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let next = prog.len();
                    prog[split] = Inst::Split(split + 1, next);
                } else {
                    compile(alt, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Star(inner) => {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(inner, prog);
            prog.push(Inst::Jmp(split));
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
        Node::Plus(inner) => {
            let start = prog.len();
            compile(inner, prog);
            let end = prog.len() + 1;
            prog.push(Inst::Split(start, end));
        }
        Node::Quest(inner) => {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(inner, prog);
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, text: &str) -> bool {
        Regex::new(re).unwrap_or_else(|e| panic!("{re}: {e}")).is_match(text)
    }

    #[test]
    fn the_forms_grafana_emits() {
        assert!(m("^aq-01$", "aq-01"));
        assert!(!m("^aq-01$", "aq-011"));
        assert!(!m("^aq-01$", "xaq-01"));
        assert!(m("^(s1|s2)$", "s2"));
        assert!(!m("^(s1|s2)$", "s3"));
        assert!(!m("^(s1|s2)$", "s1s2"));
        assert!(m("(?i)AIR", "air_quality"));
        assert!(m("(?i)air", "AIR_QUALITY"));
        assert!(!m("air", "AIR_QUALITY"));
        assert!(m(".*", ""));
        assert!(m(".*", "anything"));
        assert!(m("server.*", "my-server-1"));
        assert!(m(r"^aq\.01$", "aq.01"));
        assert!(!m(r"^aq\.01$", "aqx01"));
        assert!(m(r"(?i)abc/edf/", "xABC/EDF/y"));
        assert!(m(r"^hotel\-de\-ville$", "hotel-de-ville"));
        assert!(m(r"^\(x\)$", "(x)"));
    }

    #[test]
    fn classes_repetitions_and_groups() {
        assert!(m("^[a-c]+[0-9]?$", "abca7"));
        assert!(!m("^[a-c]+[0-9]?$", "abd"));
        assert!(m(r"^\d\d-\w+$", "12-ab_c"));
        assert!(m("^[^,]*$", "no commas"));
        assert!(!m("^[^,]*$", "a,b"));
        assert!(m("^(?:ab)+$", "ababab"));
        assert!(m("^a(?i:B)c$", "abc"));
        assert!(!m("^a(?i:B)C$", "abc"));
        assert!(m("^x|^y", "yes"));
        assert!(m("^(a|)$", ""));
        assert!(m("^[]a]$", "]"));
        assert!(m("^[a-]$", "-"));
        assert!(m("^colou?r$", "color"));
        assert!(m("^a.*?b$", "axxb"));
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let text = "a".repeat(5000);
        assert!(!m("^(a|a)*(a*)*b$", &text));
        assert!(m("(a*)*", &text));
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        // On a thread with a small stack (2 MiB, a Tokio worker's), as a query reaches it.
        let refused = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let open = Regex::new(&"(".repeat(4000)).unwrap_err();
                let nested = format!("{}x{}", "(".repeat(2000), ")".repeat(2000));
                let closed = Regex::new(&nested).unwrap_err();
                let flags = Regex::new(&"(?:".repeat(1000)).unwrap_err();
                [open, closed, flags]
            })
            .unwrap()
            .join()
            .unwrap();
        for e in refused {
            assert_eq!(e, "groups nested more than 32 deep");
        }
        let deepest = format!("^{}x{}$", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(m(&deepest, "x"));
        // Flag groups close themselves: many of them in a row are not nested.
        assert!(m(&format!("{}x", "(?i)".repeat(100)), "X"));
        let deeper = format!("{}x{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(Regex::new(&deeper).unwrap_err().contains("32"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(re in "[a-c.*+?()|\\[\\]^$\\\\{}:i-]{0,24}", text in "[a-c()-]{0,16}") {
            if let Ok(r) = Regex::new(&re) {
                let _ = r.is_match(&text);
            }
        }

        #[test]
        fn literals_match_themselves(s in "[a-z0-9_-]{0,12}") {
            let r = Regex::new(&format!("^{s}$")).unwrap();
            proptest::prop_assert!(r.is_match(&s));
            let longer = format!("{s}x");
            proptest::prop_assert!(!r.is_match(&longer));
        }
    }

    #[test]
    fn unsupported_constructs_are_named() {
        for (re, why) in [
            ("a{2}", "counted"),
            (r"\bword", "\\b"),
            ("(?P<n>x)", "named"),
            ("(?=x)", "look-around"),
            ("(?s).", "flag"),
            ("(a", "missing )"),
            ("a)", "unmatched"),
            ("[a", "missing ]"),
            ("*a", "nothing to repeat"),
            ("[[:alpha:]]", "POSIX"),
            (r"\pL", "\\p"),
            ("[z-a]", "bad range"),
            ("a**", "repetition of a repetition"),
        ] {
            let e = Regex::new(re).unwrap_err();
            assert!(e.contains(why), "{re}: {e}");
        }
    }
}
