//! SensorThings resource paths (OGC 18-088 §9.2): `Things`, `Things(7)`, `Things('aq-1')`,
//! `Datastreams(7)/Observations`, `Observations('7-…')/Datastream/Thing`, `Things(7)/name`,
//! `…/$value`, `…/$ref`. A key is an integer, a quoted string (`''` for a quote), or, as some
//! clients send them, a double-quoted or bare string.

use std::fmt;

/// The entity sets of SensorThings 1.1 (MultiDatastreams left out: every agora series measures
/// one property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Set {
    Things,
    Locations,
    HistoricalLocations,
    Datastreams,
    Sensors,
    ObservedProperties,
    Observations,
    FeaturesOfInterest,
}

impl Set {
    /// Every set, in the order the service root lists them.
    pub const ALL: [Set; 8] = [
        Set::Things,
        Set::Locations,
        Set::HistoricalLocations,
        Set::Datastreams,
        Set::Sensors,
        Set::ObservedProperties,
        Set::Observations,
        Set::FeaturesOfInterest,
    ];

    /// Its name in paths.
    pub fn name(self) -> &'static str {
        match self {
            Set::Things => "Things",
            Set::Locations => "Locations",
            Set::HistoricalLocations => "HistoricalLocations",
            Set::Datastreams => "Datastreams",
            Set::Sensors => "Sensors",
            Set::ObservedProperties => "ObservedProperties",
            Set::Observations => "Observations",
            Set::FeaturesOfInterest => "FeaturesOfInterest",
        }
    }

    /// The set named so in a path.
    pub fn of(name: &str) -> Option<Set> {
        Set::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The navigation properties of its entities: name, target set, whether it is one entity.
    pub fn links(self) -> &'static [(&'static str, Set, bool)] {
        use Set::*;
        match self {
            Things => &[
                ("Locations", Locations, false),
                ("HistoricalLocations", HistoricalLocations, false),
                ("Datastreams", Datastreams, false),
            ],
            Locations => {
                &[("Things", Things, false), ("HistoricalLocations", HistoricalLocations, false)]
            }
            HistoricalLocations => &[("Thing", Things, true), ("Locations", Locations, false)],
            Datastreams => &[
                ("Thing", Things, true),
                ("Sensor", Sensors, true),
                ("ObservedProperty", ObservedProperties, true),
                ("Observations", Observations, false),
            ],
            Sensors => &[("Datastreams", Datastreams, false)],
            ObservedProperties => &[("Datastreams", Datastreams, false)],
            Observations => &[
                ("Datastream", Datastreams, true),
                ("FeatureOfInterest", FeaturesOfInterest, true),
            ],
            FeaturesOfInterest => &[("Observations", Observations, false)],
        }
    }

    /// The navigation property `name` of its entities.
    pub fn link(self, name: &str) -> Option<(Set, bool)> {
        self.links().iter().find(|l| l.0 == name).map(|l| (l.1, l.2))
    }
}

/// An entity's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `Datastreams(7)`
    Int(i64),
    /// `Things('aq-1')`
    Str(String),
}

impl Key {
    /// As it is written in a path: `7` or `'aq-1'` (quotes doubled).
    pub fn in_path(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Str(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// As JSON, for `@iot.id`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Key::Int(i) => (*i).into(),
            Key::Str(s) => s.as_str().into(),
        }
    }

    /// The key as text (an integer written out).
    pub fn text(&self) -> String {
        match self {
            Key::Int(i) => i.to_string(),
            Key::Str(s) => s.clone(),
        }
    }
}

/// One step of a path: an entity set or navigation property, and perhaps a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The set or navigation property's name.
    pub name: String,
    /// `(key)` after it.
    pub key: Option<Key>,
}

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// The steps, from the entity set on.
    pub steps: Vec<Step>,
    /// A property of the addressed entity (`Things(1)/name`).
    pub property: Option<String>,
    /// `/$value`: the property's raw value.
    pub value: bool,
    /// `/$ref`: links instead of entities.
    pub reference: bool,
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

/// Most steps a path may have.
const MAX_STEPS: usize = 8;

/// Parse a path below the service root (no leading `/`), e.g. `Things(1)/Datastreams`.
pub fn parse(path: &str) -> Result<ResourcePath, PathError> {
    let bad = |m: String| Err(PathError(m));
    let mut out = ResourcePath::default();
    let mut rest = path.trim_end_matches('/');
    if rest.is_empty() {
        return bad("empty resource path".into());
    }
    let mut set = None::<Set>;
    while !rest.is_empty() {
        if out.steps.len() >= MAX_STEPS {
            return bad(format!("resource path has more than {MAX_STEPS} steps"));
        }
        let (name, after) = split_name(rest);
        if name.is_empty() {
            return bad(format!("expected a name in the resource path at {rest:?}"));
        }
        let (key, after) = if let Some(inner) = after.strip_prefix('(') {
            let (k, after) = key(inner).map_err(|m| PathError(format!("{m} in {name}(…)")))?;
            (Some(k), after)
        } else {
            (None, after)
        };
        if name == "$value" || name == "$ref" {
            if key.is_some() || !after.is_empty() {
                return bad(format!("{name} must end the resource path"));
            }
            if name == "$value" {
                if out.property.is_none() {
                    return bad("$value follows a property: Things(1)/name/$value".into());
                }
                out.value = true;
            } else {
                if out.property.is_some() {
                    return bad("$ref follows an entity or a collection, not a property".into());
                }
                out.reference = true;
            }
            return Ok(out);
        }
        if out.property.is_some() {
            return bad(format!(
                "nothing can follow the property {:?} but $value",
                out.property.unwrap_or_default()
            ));
        }
        match set {
            None => {
                let Some(s) = Set::of(name) else {
                    return bad(format!(
                        "unknown entity set {name:?}: expected one of {}",
                        Set::ALL.map(Set::name).join(", ")
                    ));
                };
                set = Some(s);
                out.steps.push(Step { name: name.to_owned(), key });
            }
            Some(current) => {
                let last_keyed = out.steps.last().is_some_and(|s| s.key.is_some())
                    || current_is_one(&out, current);
                if let Some((target, one)) = current.link(name) {
                    if !last_keyed {
                        return bad(format!(
                            "{name} follows one entity: give a key, e.g. {}(1)/{name}",
                            current.name()
                        ));
                    }
                    if one && key.is_some() {
                        return bad(format!("{name} is one entity: it takes no key"));
                    }
                    set = Some(target);
                    out.steps.push(Step { name: name.to_owned(), key });
                } else if key.is_none() && last_keyed && is_property_name(name) {
                    out.property = Some(name.to_owned());
                } else {
                    return bad(format!(
                        "{} has no navigation property or property {name:?}",
                        current.name()
                    ));
                }
            }
        }
        rest = match after.strip_prefix('/') {
            Some(r) => r,
            None if after.is_empty() => after,
            None => return bad(format!("unexpected {after:?} in the resource path")),
        };
    }
    Ok(out)
}

/// Whether the last step addresses one entity (a keyed step, or a to-one navigation).
fn current_is_one(out: &ResourcePath, _current: Set) -> bool {
    let mut set: Option<Set> = None;
    let mut one = false;
    for s in &out.steps {
        match set {
            None => {
                set = Set::of(&s.name);
                one = s.key.is_some();
            }
            Some(c) => {
                let (t, is_one) = c.link(&s.name).unwrap_or((c, false));
                set = Some(t);
                one = is_one || s.key.is_some();
            }
        }
    }
    one
}

fn is_property_name(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.')
}

fn split_name(s: &str) -> (&str, &str) {
    let end = s.find(['(', '/']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// A key after `(`: returns it and what follows its `)`.
fn key(s: &str) -> Result<(Key, &str), String> {
    if let Some(q) = s.strip_prefix('\'') {
        // 'text' with '' for a quote.
        let mut out = String::new();
        let mut chars = q.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if matches!(chars.peek(), Some((_, '\''))) {
                    chars.next();
                    out.push('\'');
                    continue;
                }
                let after = &q[i + 1..];
                return match after.strip_prefix(')') {
                    Some(a) => Ok((Key::Str(out), a)),
                    None => Err("expected ')' after the quoted key".into()),
                };
            }
            out.push(c);
        }
        return Err("unterminated quoted key".into());
    }
    let end = s.find(')').ok_or("missing ')' after the key")?;
    let raw = &s[..end];
    let after = &s[end + 1..];
    if raw.is_empty() {
        return Err("empty key".into());
    }
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return Ok((Key::Str(inner.to_owned()), after));
    }
    if raw.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return raw
            .parse::<i64>()
            .map(|i| (Key::Int(i), after))
            .map_err(|_| format!("key {raw} is out of range"));
    }
    // A bare string, as some Grafana data sources send ids.
    if raw.chars().all(|c| c.is_alphanumeric() || "-_.:~@".contains(c)) {
        return Ok((Key::Str(raw.to_owned()), after));
    }
    Err(format!("bad key {raw:?}: an integer or a 'quoted string'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(p: &ResourcePath) -> Vec<(String, Option<Key>)> {
        p.steps.iter().map(|s| (s.name.clone(), s.key.clone())).collect()
    }

    #[test]
    fn the_standards_paths() {
        let p = parse("Things").unwrap();
        assert_eq!(steps(&p), vec![("Things".into(), None)]);
        let p = parse("Datastreams(7)/Observations").unwrap();
        assert_eq!(
            steps(&p),
            vec![("Datastreams".into(), Some(Key::Int(7))), ("Observations".into(), None)]
        );
        let p = parse("Things('aq''s-1')/Datastreams(3)/Thing/name/$value").unwrap();
        assert_eq!(p.steps[0].key, Some(Key::Str("aq's-1".into())));
        assert_eq!(p.steps[2].name, "Thing");
        assert_eq!((p.property.as_deref(), p.value), (Some("name"), true));
        let p = parse("Datastreams(1)/Observations/$ref").unwrap();
        assert!(p.reference);
        assert_eq!(parse("Things(\"aq-1\")").unwrap().steps[0].key, Some(Key::Str("aq-1".into())));
        assert_eq!(parse("Things(aq-1)").unwrap().steps[0].key, Some(Key::Str("aq-1".into())));
        assert_eq!(parse("Things(-3)").unwrap().steps[0].key, Some(Key::Int(-3)));
        assert_eq!(parse("Things(1)/").unwrap().steps.len(), 1);
        assert_eq!(Key::Str("a'b".into()).in_path(), "'a''b'");
    }

    #[test]
    fn bad_paths_are_refused_by_name() {
        for (p, why) in [
            ("", "empty"),
            ("Widgets", "unknown entity set \"Widgets\""),
            ("Things/Datastreams", "follows one entity"),
            ("Things(1)/Widgets(2)", "no navigation property or property \"Widgets\""),
            ("Datastreams(1)/Thing(2)", "takes no key"),
            ("Things(1)/name/description", "nothing can follow the property"),
            ("Things/$value", "$value follows a property"),
            ("Things(1)/name/$ref", "$ref follows an entity"),
            ("Things(1", "missing ')'"),
            ("Things('a)", "unterminated"),
            ("Things(<script>)", "bad key"),
            ("Things(99999999999999999999)", "out of range"),
            ("Things(1)x", "unexpected \"x\""),
            ("Things()", "empty key"),
        ] {
            let e = parse(p).unwrap_err().0;
            assert!(e.contains(why), "{p:?}: {e}");
        }
        let long = ["Datastreams(1)/Thing"; 5].join("/");
        assert!(parse(&long).unwrap_err().0.contains("more than 8 steps"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_path_shaped_text(s in "(Things|Datastreams|Observations|Thing|Datastream|name|\\$value|\\$ref|/|\\(|\\)|'|''|1|-|a){0,20}") {
            let _ = parse(&s);
        }
    }
}
