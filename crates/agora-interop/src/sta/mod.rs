//! OGC SensorThings API 1.1: resource paths ([`path`]), `$filter` ([`filter`]) and the other
//! query options ([`Query`]): `$select`, `$expand` (nested, with options), `$orderby`, `$top`,
//! `$skip`, `$count`, `$resultFormat`.

pub mod filter;
pub mod path;

use filter::{Expr, FilterError};

/// `$top` when a request gives none (FROST-Server's default).
pub const DEFAULT_TOP: usize = 100;
/// The largest page: a larger `$top` is lowered to it, as the standard says (§9.3.3.3).
pub const MAX_TOP: usize = 10_000;
/// Deepest `$expand` nesting.
const MAX_EXPAND_DEPTH: usize = 4;

/// The query options of one request, or of one expanded navigation property.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// `$filter`
    pub filter: Option<Expr>,
    /// `$select`: property and navigation names (`id` for `@iot.id`); `None`: all.
    pub select: Option<Vec<String>>,
    /// `$expand`
    pub expand: Vec<Expand>,
    /// `$orderby`: property paths and whether descending.
    pub orderby: Vec<(Vec<String>, bool)>,
    /// `$top` (at most [`MAX_TOP`]); `None`: [`DEFAULT_TOP`].
    pub top: Option<usize>,
    /// `$skip`
    pub skip: usize,
    /// `$count=true`
    pub count: bool,
    /// `$resultFormat=dataArray`
    pub data_array: bool,
}

impl Query {
    /// The page size.
    pub fn top(&self) -> usize {
        self.top.unwrap_or(DEFAULT_TOP)
    }
}

/// One navigation property to expand, with its own options.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    /// The navigation property (`Datastreams`).
    pub name: String,
    /// Its options.
    pub query: Query,
}

/// Read the query options of a request: `(name, value)` pairs, already percent-decoded.
/// Options agora does not know (`$apply`, `$search`…) are refused as not supported (HTTP 501);
/// parameters that do not start with `$` are left to the caller.
pub fn parse_query(pairs: &[(String, String)]) -> Result<Query, FilterError> {
    let mut q = Query::default();
    let mut seen = Vec::new();
    for (k, v) in pairs {
        if !k.starts_with('$') {
            continue;
        }
        let k = k.to_ascii_lowercase();
        if seen.contains(&k) {
            return bad(format!("{k} is given twice"));
        }
        seen.push(k.clone());
        option(&mut q, &k, v, 0)?;
    }
    Ok(q)
}

fn bad<T>(message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { message: message.into(), unsupported: false })
}

fn option(q: &mut Query, k: &str, v: &str, depth: usize) -> Result<(), FilterError> {
    match k {
        "$filter" => q.filter = Some(filter::parse(v)?),
        "$select" => q.select = Some(names(v, "$select")?),
        "$expand" => q.expand = expand(v, depth)?,
        "$orderby" => q.orderby = orderby(v)?,
        "$top" => {
            let n: usize = v.trim().parse().map_err(|_| FilterError {
                message: format!("$top must be a whole number, not {v:?}"),
                unsupported: false,
            })?;
            q.top = Some(n.min(MAX_TOP));
        }
        "$skip" => {
            q.skip = v.trim().parse().map_err(|_| FilterError {
                message: format!("$skip must be a whole number, not {v:?}"),
                unsupported: false,
            })?;
        }
        "$count" => {
            q.count = match v.trim() {
                "true" => true,
                "false" => false,
                _ => return bad(format!("$count is true or false, not {v:?}")),
            }
        }
        "$resultformat" => {
            q.data_array = match v.trim() {
                "dataArray" => true,
                _ => return bad(format!("$resultFormat can only be dataArray, not {v:?}")),
            }
        }
        other => {
            return Err(FilterError {
                message: format!("query option {other} is not supported"),
                unsupported: true,
            });
        }
    }
    Ok(())
}

fn names(v: &str, what: &str) -> Result<Vec<String>, FilterError> {
    let out: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
    if out.iter().any(|n| {
        n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "_@./".contains(c))
    }) {
        return bad(format!("{what} is a comma-separated list of names, not {v:?}"));
    }
    Ok(out)
}

fn orderby(v: &str) -> Result<Vec<(Vec<String>, bool)>, FilterError> {
    let mut out = Vec::new();
    for part in v.split(',') {
        let mut words = part.split_whitespace();
        let Some(path) = words.next() else {
            return bad(format!("$orderby has an empty term in {v:?}"));
        };
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return bad(format!("$orderby direction is asc or desc, not {other:?}")),
        };
        if words.next().is_some()
            || !path.chars().all(|c| c.is_ascii_alphanumeric() || "_@./".contains(c))
        {
            return bad(format!("$orderby takes property paths with asc or desc, not {part:?}"));
        }
        out.push((path.split('/').map(str::to_owned).collect(), desc));
    }
    Ok(out)
}

/// Split on `sep` outside parentheses and quotes.
fn split_top(v: &str, sep: char) -> Result<Vec<&str>, FilterError> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    for (i, c) in v.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return bad(format!("unbalanced ')' in {v:?}"));
                }
            }
            c if c == sep && !quoted && depth == 0 => {
                out.push(&v[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if depth != 0 || quoted {
        return bad(format!("unbalanced parentheses or quotes in {v:?}"));
    }
    out.push(&v[start..]);
    Ok(out)
}

fn expand(v: &str, depth: usize) -> Result<Vec<Expand>, FilterError> {
    if depth >= MAX_EXPAND_DEPTH {
        return bad(format!("$expand is nested more than {MAX_EXPAND_DEPTH} levels deep"));
    }
    let mut out: Vec<Expand> = Vec::new();
    for item in split_top(v, ',')? {
        let item = item.trim();
        let (path, opts) = match item.find('(') {
            Some(i) if item.ends_with(')') => (&item[..i], Some(&item[i + 1..item.len() - 1])),
            Some(_) => return bad(format!("bad $expand item {item:?}")),
            None => (item, None),
        };
        if path.is_empty() || !path.chars().all(|c| c.is_ascii_alphanumeric() || c == '/') {
            return bad(format!("$expand takes navigation properties, not {item:?}"));
        }
        let mut query = Query::default();
        if let Some(opts) = opts {
            let mut seen = Vec::new();
            for o in split_top(opts, ';')? {
                let Some((k, val)) = o.split_once('=') else {
                    return bad(format!("bad option {o:?} in $expand: expected $name=value"));
                };
                let k = k.trim().to_ascii_lowercase();
                if seen.contains(&k) {
                    return bad(format!("{k} is given twice in $expand"));
                }
                seen.push(k.clone());
                option(&mut query, &k, val, depth + 1)?;
            }
        }
        // `a/b` is `a($expand=b)`: each step counts as a level.
        if depth + path.split('/').count() > MAX_EXPAND_DEPTH {
            return bad(format!("$expand is nested more than {MAX_EXPAND_DEPTH} levels deep"));
        }
        let mut parts = path.split('/').rev();
        let last = parts.next().unwrap_or_default().to_owned();
        let mut e = Expand { name: last, query };
        for p in parts {
            e = Expand { name: p.to_owned(), query: Query { expand: vec![e], ..Query::default() } };
        }
        if e.name.is_empty() {
            return bad(format!("bad $expand item {item:?}"));
        }
        // Two items on the same property merge their expansions.
        match out.iter_mut().find(|x| x.name == e.name) {
            Some(x) => x.query.expand.extend(e.query.expand),
            None => out.push(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<Query, FilterError> {
        parse_query(&pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>())
    }

    #[test]
    fn options_as_the_standard_writes_them() {
        let x = q(&[
            ("$top", "5"),
            ("$skip", "10"),
            ("$count", "true"),
            ("$select", "name,id"),
            ("$orderby", "phenomenonTime desc,id"),
            ("other", "ignored"),
        ])
        .unwrap();
        assert_eq!((x.top(), x.skip, x.count), (5, 10, true));
        assert_eq!(x.select, Some(vec!["name".to_owned(), "id".to_owned()]));
        assert_eq!(
            x.orderby,
            vec![(vec!["phenomenonTime".to_owned()], true), (vec!["id".to_owned()], false)]
        );
        assert_eq!(q(&[("$top", "1000000000")]).unwrap().top(), MAX_TOP, "lowered, not refused");
        assert_eq!(q(&[]).unwrap().top(), DEFAULT_TOP);
        let x = q(&[("$expand", "Datastreams($filter=name eq 'a;b';$top=2;$expand=Observations($top=1)),Locations,Datastreams/Sensor")]).unwrap();
        assert_eq!(x.expand.len(), 2);
        let ds = &x.expand[0];
        assert_eq!((ds.name.as_str(), ds.query.top()), ("Datastreams", 2));
        assert!(ds.query.filter.is_some());
        assert_eq!(
            ds.query.expand.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            vec!["Observations", "Sensor"]
        );
        assert_eq!(ds.query.expand[0].query.top(), 1);
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        for (k, v, why) in [
            ("$top", "-1", "$top must be a whole number"),
            ("$skip", "x", "$skip must be a whole number"),
            ("$count", "yes", "true or false"),
            ("$orderby", "name sideways", "asc or desc"),
            ("$select", "name,,id", "comma-separated list"),
            ("$expand", "Datastreams($top=1", "unbalanced"),
            ("$expand", "Datastreams($top)", "expected $name=value"),
            ("$expand", "a($expand=b($expand=c($expand=d($expand=e))))", "nested more than 4"),
            ("$expand", "Datastreams/Thing/Datastreams/Thing/Datastreams", "nested more than 4"),
            (
                "$expand",
                "Datastreams($expand=Thing/Datastreams/Thing/Datastreams)",
                "nested more than 4",
            ),
            ("$resultFormat", "csv", "dataArray"),
        ] {
            let e = q(&[(k, v)]).unwrap_err();
            assert!(e.message.contains(why) && !e.unsupported, "{k}={v}: {}", e.message);
        }
        let e = q(&[("$apply", "x")]).unwrap_err();
        assert!(e.unsupported && e.message.contains("$apply"));
        assert!(q(&[("$top", "1"), ("$TOP", "2")]).unwrap_err().message.contains("twice"));
    }

    proptest::proptest! {
        #[test]
        fn expand_never_panics(s in "(Datastreams|Observations|/|\\(|\\)|;|,|\\$top=1|\\$filter=|'|result gt 1|\\$expand=){0,20}") {
            let _ = q(&[("$expand", s.as_str())]);
        }
    }
}
