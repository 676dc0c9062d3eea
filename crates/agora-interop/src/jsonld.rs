//! JSON-LD term definitions, as far as NGSI-LD uses them: a flat `@context` (term → IRI, or
//! `{"@id": …}`; compact IRIs like `ngsi-ld:location` through prefixes; `@vocab`) that expands
//! the short names a client writes and compacts the IRIs agora answers with. Contexts that
//! NGSI-LD forbids (scoped, embedded in terms) are not read.

use std::collections::HashMap;

/// The terms of one or more contexts.
#[derive(Debug, Clone, Default)]
pub struct Context {
    terms: HashMap<String, String>,
    iris: HashMap<String, String>,
    vocab: Option<String>,
}

impl Context {
    /// The terms of a context document (`{"@context": {…}}`, or the object itself, or a list of
    /// them, later definitions winning).
    pub fn from_json(v: &serde_json::Value) -> Context {
        let mut c = Context::default();
        c.add(v.get("@context").unwrap_or(v));
        c
    }

    /// Add definitions (later ones win, except where a term is already an IRI of `core`).
    pub fn add(&mut self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Array(list) => list.iter().for_each(|x| self.add(x)),
            serde_json::Value::Object(m) => {
                // Prefixes first (terms may use them), then the terms.
                let raw: Vec<(&String, String)> = m
                    .iter()
                    .filter_map(|(k, d)| {
                        let id = match d {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Object(o) => o.get("@id")?.as_str()?.to_owned(),
                            _ => return None,
                        };
                        Some((k, id))
                    })
                    .collect();
                if let Some(vocab) = m.get("@vocab").and_then(|x| x.as_str()) {
                    self.vocab = Some(vocab.to_owned());
                }
                let prefixes: HashMap<&str, &str> = raw
                    .iter()
                    .filter(|(_, id)| id.ends_with('/') || id.ends_with('#'))
                    .map(|(k, id)| (k.as_str(), id.as_str()))
                    .collect();
                for (k, id) in &raw {
                    if k.starts_with('@') || id.starts_with('@') {
                        continue;
                    }
                    let iri = match id.split_once(':') {
                        Some((p, rest)) if !rest.starts_with("//") => match prefixes.get(p) {
                            Some(base) => format!("{base}{rest}"),
                            None => id.clone(),
                        },
                        _ => id.clone(),
                    };
                    self.terms.insert((*k).clone(), iri);
                }
                self.iris = HashMap::new();
                let mut terms: Vec<(&String, &String)> = self.terms.iter().collect();
                // The shortest term for an IRI, then the first in order: stable answers.
                terms.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
                for (t, iri) in terms {
                    self.iris.entry(iri.clone()).or_insert_with(|| t.clone());
                }
            }
            _ => {}
        }
    }

    /// The IRI of a name a client wrote: a term, a compact IRI (`ngsi-ld:x`), an IRI, or a name
    /// under `@vocab`.
    pub fn expand(&self, name: &str) -> String {
        if let Some(iri) = self.terms.get(name) {
            return iri.clone();
        }
        if let Some((p, rest)) = name.split_once(':') {
            if rest.starts_with("//") || p == "urn" {
                return name.to_owned();
            }
            if let Some(base) = self.terms.get(p) {
                return format!("{base}{rest}");
            }
            return name.to_owned();
        }
        match &self.vocab {
            Some(v) => format!("{v}{name}"),
            None => name.to_owned(),
        }
    }

    /// The name to answer with for an IRI: its term in this context, or the IRI itself.
    pub fn compact(&self, iri: &str) -> String {
        if let Some(t) = self.iris.get(iri) {
            return t.clone();
        }
        if let Some(v) = &self.vocab
            && let Some(rest) = iri.strip_prefix(v.as_str())
            && !rest.is_empty()
            && !self.terms.contains_key(rest)
        {
            return rest.to_owned();
        }
        iri.to_owned()
    }
}

/// An NGSI-LD `idPattern`: a regular expression searched in the id, in the subset brokers'
/// clients send: literals, `.`, `\` escapes, `[…]` classes (ranges, `^` negation), `*`, `+`,
/// `?`, `^`, `$`. Other syntax is refused.
#[derive(Debug, Clone)]
pub struct Pattern {
    items: Vec<(Atom, Rep)>,
    anchored_start: bool,
    anchored_end: bool,
}

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Char(char),
    Class(Vec<(char, char)>, bool),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rep {
    One,
    Star,
    Plus,
    Opt,
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => true,
            Atom::Char(x) => *x == c,
            Atom::Class(ranges, negated) => {
                ranges.iter().any(|(a, b)| (*a..=*b).contains(&c)) != *negated
            }
        }
    }
}

impl Pattern {
    /// Parse a pattern (at most 256 characters).
    pub fn parse(p: &str) -> Result<Pattern, String> {
        if p.chars().count() > 256 {
            return Err("idPattern is longer than 256 characters".into());
        }
        let mut chars: Vec<char> = p.chars().collect();
        let anchored_start = chars.first() == Some(&'^');
        if anchored_start {
            chars.remove(0);
        }
        let anchored_end =
            chars.last() == Some(&'$') && !(chars.len() >= 2 && chars[chars.len() - 2] == '\\');
        if anchored_end {
            chars.pop();
        }
        let mut items: Vec<(Atom, Rep)> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let atom = match chars[i] {
                '.' => Atom::Any,
                '\\' => {
                    i += 1;
                    Atom::Char(*chars.get(i).ok_or("idPattern ends with a lone backslash")?)
                }
                '[' => {
                    let mut j = i + 1;
                    let negated = chars.get(j) == Some(&'^');
                    if negated {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    while j < chars.len() && (chars[j] != ']' || ranges.is_empty()) {
                        let a = chars[j];
                        if chars.get(j + 1) == Some(&'-')
                            && chars.get(j + 2).is_some_and(|c| *c != ']')
                        {
                            ranges.push((a, chars[j + 2]));
                            j += 3;
                        } else {
                            ranges.push((a, a));
                            j += 1;
                        }
                    }
                    if j >= chars.len() {
                        return Err("idPattern has an unclosed [".into());
                    }
                    i = j;
                    Atom::Class(ranges, negated)
                }
                c @ ('(' | ')' | '|' | '{' | '}') => {
                    return Err(format!(
                        "idPattern: {c:?} (groups, alternatives, counts) is not supported"
                    ));
                }
                c @ ('*' | '+' | '?') => return Err(format!("idPattern: {c:?} follows nothing")),
                c => Atom::Char(c),
            };
            i += 1;
            let rep = match chars.get(i) {
                Some('*') => Rep::Star,
                Some('+') => Rep::Plus,
                Some('?') => Rep::Opt,
                _ => Rep::One,
            };
            if rep != Rep::One {
                i += 1;
            }
            items.push((atom, rep));
        }
        Ok(Pattern { items, anchored_start, anchored_end })
    }

    /// Whether the pattern is found in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let starts = if self.anchored_start { 0..=0 } else { 0..=chars.len() };
        // Memo of (item, position) already known to fail: linear in items × length.
        let mut failed = vec![false; (self.items.len() + 1) * (chars.len() + 1)];
        starts.into_iter().any(|st| self.at(0, st, &chars, &mut failed))
    }

    fn at(&self, k: usize, i: usize, s: &[char], failed: &mut [bool]) -> bool {
        let slot = k * (s.len() + 1) + i;
        if failed[slot] {
            return false;
        }
        let ok = match self.items.get(k) {
            None => !self.anchored_end || i == s.len(),
            Some((a, rep)) => {
                let one = i < s.len() && a.matches(s[i]);
                match rep {
                    Rep::One => one && self.at(k + 1, i + 1, s, failed),
                    Rep::Opt => {
                        (one && self.at(k + 1, i + 1, s, failed)) || self.at(k + 1, i, s, failed)
                    }
                    Rep::Star => {
                        (one && self.at(k, i + 1, s, failed)) || self.at(k + 1, i, s, failed)
                    }
                    Rep::Plus => {
                        one && (self.at(k, i + 1, s, failed) || self.at(k + 1, i + 1, s, failed))
                    }
                }
            }
        };
        if !ok {
            failed[slot] = true;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn terms_expand_and_compact_through_prefixes_and_vocab() {
        let core = Context::from_json(&json!({"@context": {
            "ngsi-ld": "https://uri.etsi.org/ngsi-ld/",
            "@vocab": "https://uri.etsi.org/ngsi-ld/default-context/",
            "location": "ngsi-ld:location",
            "observedAt": {"@id": "ngsi-ld:observedAt", "@type": "DateTime"},
            "id": "@id",
        }}));
        assert_eq!(core.expand("location"), "https://uri.etsi.org/ngsi-ld/location");
        assert_eq!(core.expand("observedAt"), "https://uri.etsi.org/ngsi-ld/observedAt");
        assert_eq!(core.expand("ngsi-ld:unitCode"), "https://uri.etsi.org/ngsi-ld/unitCode");
        assert_eq!(core.expand("pm10"), "https://uri.etsi.org/ngsi-ld/default-context/pm10");
        assert_eq!(core.expand("urn:ngsi-ld:Device:a"), "urn:ngsi-ld:Device:a");
        assert_eq!(core.compact("https://uri.etsi.org/ngsi-ld/location"), "location");
        assert_eq!(core.compact("https://uri.etsi.org/ngsi-ld/default-context/pm10"), "pm10");
        let env = "https://smartdatamodels.org/dataModel.Environment/pm10";
        assert_eq!(core.compact(env), env, "unknown to the context: the IRI itself");
        let mut both = core.clone();
        both.add(&json!({"pm10": env}));
        assert_eq!((both.expand("pm10"), both.compact(env)), (env.to_owned(), "pm10".to_owned()));
    }

    #[test]
    fn id_patterns() {
        let m = |p: &str, s: &str| Pattern::parse(p).unwrap().is_match(s);
        assert!(m(".*", "urn:ngsi-ld:Device:a"));
        assert!(m("^urn:ngsi-ld:Device:aq-.*$", "urn:ngsi-ld:Device:aq-12"));
        assert!(!m("^urn:ngsi-ld:Device:aq-.*$", "urn:ngsi-ld:Streetlight:aq-12"));
        assert!(m("Device", "urn:ngsi-ld:Device:x"), "searched, not anchored");
        assert!(m("aq-[0-9]+$", "urn:x:aq-12") && !m("aq-[0-9]+$", "urn:x:aq-12b"));
        assert!(m("aq-[^0-9]", "aq-b") && !m("^aq-[^0-9]", "aq-1"));
        assert!(m("colou?r", "color") && m("colou?r", "colour"));
        assert!(m("a\\.b", "a.b") && !m("a\\.b", "axb"));
        for bad in ["(a|b)", "a{2}", "*a", "[a-", "a\\"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        // No exponential backtracking.
        let p = Pattern::parse(&format!("^{}$", "a*".repeat(30))).unwrap();
        assert!(!p.is_match(&format!("{}b", "a".repeat(200))));
    }

    proptest::proptest! {
        #[test]
        fn patterns_never_panic(p in "[a-c.*+?^$\\[\\]\\\\-]{0,20}", s in "[a-c]{0,20}") {
            if let Ok(p) = Pattern::parse(&p) {
                let _ = p.is_match(&s);
            }
        }
    }
}
