//! The DCAT-AP 3 catalogue of the published datasets, as a small RDF graph written in Turtle,
//! JSON-LD (expanded: no remote context to fetch) and RDF/XML.
//!
//! What DCAT-AP 3.0.1's SHACL shapes require shapes the graph (see `docs/open-data-standards.md`):
//! every linked resource carries its `rdf:type` (a licence is a `dct:LicenseDocument`, a
//! contact a `vcard:Kind`, a format a `dct:MediaTypeOrExtent`…), every concept its
//! `skos:prefLabel`, dates are typed `xsd:dateTime`, a distribution has one format, one media
//! type and one licence. The test suite validates the three serializations with pySHACL.

use std::collections::BTreeMap;
use std::fmt::Write;

use agora_model::Timestamp;
use agora_store::opendata::{Dataset, DatasetKind, Resolution, Theme};

use crate::dataset::LICENCES;

const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const XSD: &str = "http://www.w3.org/2001/XMLSchema#";

/// Prefixes used by the graph, for Turtle and RDF/XML.
const PREFIXES: &[(&str, &str)] = &[
    ("rdf", RDF),
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("xsd", XSD),
    ("dcatap", "http://data.europa.eu/r5r/"),
    ("locn", "http://www.w3.org/ns/locn#"),
];

/// An RDF term.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Term {
    /// An IRI.
    Iri(String),
    /// A literal with a datatype IRI (`None`: a plain string) or a language.
    Lit {
        /// Lexical form.
        value: String,
        /// Datatype IRI.
        datatype: Option<String>,
        /// Language tag.
        lang: Option<&'static str>,
    },
}

fn iri(s: impl Into<String>) -> Term {
    Term::Iri(s.into())
}
fn fr(s: impl Into<String>) -> Term {
    Term::Lit { value: s.into(), datatype: None, lang: Some("fr") }
}
fn plain(s: impl Into<String>) -> Term {
    Term::Lit { value: s.into(), datatype: None, lang: None }
}
fn typed(s: impl Into<String>, dt: &str) -> Term {
    let datatype = match dt.strip_prefix("xsd:") {
        Some(local) => format!("{XSD}{local}"),
        None => dt.to_owned(),
    };
    Term::Lit { value: s.into(), datatype: Some(datatype), lang: None }
}
fn datetime(t: Timestamp) -> Term {
    typed(t.to_datetime().format("%Y-%m-%dT%H:%M:%SZ").to_string(), "xsd:dateTime")
}

/// Expand `dct:title` to its IRI.
fn expand(p: &str) -> String {
    let (prefix, local) = p.split_once(':').expect("a prefixed name");
    let ns = PREFIXES.iter().find(|(x, _)| *x == prefix).expect("a known prefix").1;
    format!("{ns}{local}")
}

/// A graph: subjects (IRIs) with their predicates and objects, kept sorted so that every
/// serialization is stable.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: BTreeMap<String, BTreeMap<String, Vec<Term>>>,
}

impl Graph {
    fn add(&mut self, s: &str, p: &str, o: Term) {
        let objects = self.nodes.entry(s.to_owned()).or_default().entry(expand(p)).or_default();
        if !objects.contains(&o) {
            objects.push(o);
        }
    }

    fn a(&mut self, s: &str, class: &str) {
        self.add(s, "rdf:type", iri(expand(class)));
    }

    /// A typed resource with a label, as the shapes want linked resources.
    fn concept(&mut self, s: &str, label: &str, scheme: Option<&str>) {
        self.a(s, "skos:Concept");
        self.add(s, "skos:prefLabel", fr(label));
        if let Some(scheme) = scheme {
            self.add(s, "skos:inScheme", iri(scheme));
        }
    }

    /// Triples, for tests.
    pub fn len(&self) -> usize {
        self.nodes.values().flat_map(|p| p.values()).map(Vec::len).sum()
    }

    /// Whether the graph is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// The deployment's side of the catalogue.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Public address, without a trailing `/` (`https://data.example.fr`).
    pub base: String,
    /// The catalogue's title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Publisher's name.
    pub name: String,
    /// Contact e-mail.
    pub email: String,
    /// The territory covered, in words (the communes' names).
    pub territory: String,
}

/// A published dataset with what the catalogue says of its extent.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The definition.
    pub dataset: Dataset,
    /// First and last instants covered (measurements with data).
    pub temporal: Option<(Timestamp, Timestamp)>,
    /// The places covered.
    pub spatial: Option<Spatial>,
}

/// Places covered: their name, centroid (lat, lon) and bounding box (min lat, min lon, max lat,
/// max lon).
pub type Spatial = (String, (f64, f64), (f64, f64, f64, f64));

const EU: &str = "http://publications.europa.eu/resource/authority";

fn theme_concept(t: Theme) -> (&'static str, &'static str) {
    match t {
        Theme::Air | Theme::Noise | Theme::Weather | Theme::Soil | Theme::Bins => {
            ("ENVI", "Environnement")
        }
        Theme::Lighting => ("ENER", "Énergie"),
        Theme::Footfall => ("SOCI", "Population et société"),
        Theme::Equipment => ("REGI", "Régions et villes"),
    }
}

/// The formats each dataset is distributed in: URL name, EU file type, IANA media type, title.
const FORMATS: &[(&str, &str, &str, &str)] = &[
    ("csv", "CSV", "text/csv", "CSV (séparateur point-virgule)"),
    ("json", "JSON", "application/json", "JSON"),
    ("geojson", "GEOJSON", "application/geo+json", "GeoJSON"),
];

/// Build the catalogue's graph.
pub fn catalogue(p: &Publisher, entries: &[Entry]) -> Graph {
    let mut g = Graph::default();
    let b = &p.base;
    let cat = format!("{b}/open-data#catalog");
    let home = format!("{b}/open-data");
    let agent = format!("{b}/open-data#publisher");
    let contact = format!("{b}/open-data#contact");
    let service = format!("{b}/api/explore/v2.1");
    let fra = format!("{EU}/language/FRA");
    let themes = format!("{EU}/data-theme");

    g.a(&cat, "dcat:Catalog");
    g.add(&cat, "dct:title", fr(&p.title));
    g.add(&cat, "dct:description", fr(&p.description));
    g.add(&cat, "dct:publisher", iri(&agent));
    g.add(&cat, "foaf:homepage", iri(&home));
    g.add(&cat, "dct:language", iri(&fra));
    g.add(&cat, "dcat:themeTaxonomy", iri(&themes));
    g.add(&cat, "dcat:service", iri(&service));
    let issued = entries.iter().map(|e| e.dataset.created_at).min();
    let modified = entries.iter().map(|e| e.dataset.modified_at).max();
    if let Some(t) = issued {
        g.add(&cat, "dct:issued", datetime(t));
    }
    if let Some(t) = modified {
        g.add(&cat, "dct:modified", datetime(t));
    }
    let licences: Vec<&str> = entries.iter().map(|e| e.dataset.licence.as_str()).collect();
    if let Some(first) = licences.first()
        && licences.iter().all(|l| l == first)
        && let Some(l) = LICENCES.iter().find(|l| l.0 == *first)
    {
        g.add(&cat, "dct:license", iri(l.3));
    }

    // The catalogue covers the places its datasets cover.
    let places: Vec<&Spatial> = entries.iter().filter_map(|e| e.spatial.as_ref()).collect();
    if !places.is_empty() {
        let n = places.len() as f64;
        let lat = places.iter().map(|p| p.1.0).sum::<f64>() / n;
        let lon = places.iter().map(|p| p.1.1).sum::<f64>() / n;
        let bbox = places
            .iter()
            .fold((f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY), |b, p| {
                (b.0.min(p.2.0), b.1.min(p.2.1), b.2.max(p.2.2), b.3.max(p.2.3))
            });
        let place = format!("{home}#spatial");
        g.add(&cat, "dct:spatial", iri(&place));
        location(&mut g, &place, &p.territory, (lat, lon), bbox);
    }
    g.a(&home, "foaf:Document");
    g.a(&fra, "dct:LinguisticSystem");
    g.a(&themes, "skos:ConceptScheme");
    g.add(&themes, "dct:title", fr("Thèmes des données (vocabulaire de l'Union européenne)"));
    g.a(&agent, "foaf:Agent");
    g.add(&agent, "foaf:name", fr(&p.name));
    let local = "http://purl.org/adms/publishertype/LocalAuthority";
    g.add(&agent, "dct:type", iri(local));
    g.concept(local, "Collectivité territoriale", None);
    g.a(&contact, "vcard:Kind");
    g.add(&contact, "vcard:fn", fr(&p.name));
    g.add(&contact, "vcard:hasEmail", iri(format!("mailto:{}", p.email)));

    for (id, name, url, eu) in LICENCES {
        if entries.iter().any(|e| e.dataset.licence == *id) {
            g.a(eu, "dct:LicenseDocument");
            g.add(eu, "dct:title", fr(*name));
            g.add(eu, "foaf:page", iri(*url));
            g.a(url, "foaf:Document");
            let attribution = "http://purl.org/adms/licencetype/Attribution";
            g.add(eu, "dct:type", iri(attribution));
            g.concept(attribution, "Attribution", None);
        }
    }

    // The Explore API, the service that serves every dataset.
    g.a(&service, "dcat:DataService");
    g.add(&service, "dct:title", fr("API Explore v2.1 (compatible Opendatasoft)"));
    g.add(&service, "dct:description", fr(
        "Recherche, filtres et agrégats en ODSQL, enregistrements et exports (CSV, JSON, JSON Lines, GeoJSON) des jeux de données publiés.",
    ));
    g.add(&service, "dcat:endpointURL", iri(format!("{service}/")));
    g.add(&service, "dcat:endpointDescription", iri(format!("{home}/api")));
    g.a(&format!("{home}/api"), "foaf:Document");
    g.add(&service, "dcat:landingPage", iri(format!("{home}/api")));
    g.add(&service, "dct:publisher", iri(&agent));
    g.add(&service, "dcat:contactPoint", iri(&contact));
    let explore_std = "https://help.opendatasoft.com/apis/ods-explore-v2/";
    g.add(&service, "dct:conformsTo", iri(explore_std));
    g.a(explore_std, "dct:Standard");
    g.add(&service, "dcat:keyword", fr("API"));
    g.add(&service, "dcat:keyword", fr("ODSQL"));
    g.add(&service, "dcat:theme", iri(format!("{themes}/REGI")));
    g.concept(&format!("{themes}/REGI"), "Régions et villes", Some(&themes));

    for e in entries {
        let d = &e.dataset;
        let page = format!("{home}/datasets/{}", d.id);
        let ds = format!("{page}#dataset");
        g.add(&cat, "dcat:dataset", iri(&ds));
        g.add(&service, "dcat:servesDataset", iri(&ds));
        g.a(&ds, "dcat:Dataset");
        g.add(&ds, "dct:title", fr(&d.title));
        g.add(&ds, "dct:description", fr(&d.description));
        g.add(&ds, "dct:identifier", plain(&d.id));
        for k in &d.keywords {
            g.add(&ds, "dcat:keyword", fr(k));
        }
        let (code, label) = theme_concept(d.theme);
        let theme = format!("{themes}/{code}");
        g.add(&ds, "dcat:theme", iri(&theme));
        g.concept(&theme, label, Some(&themes));
        let publisher = match &d.publisher {
            Some(name) if *name != p.name => {
                let a = format!("{ds}#publisher");
                g.a(&a, "foaf:Agent");
                g.add(&a, "foaf:name", fr(name));
                g.add(&a, "dct:type", iri(local));
                a
            }
            _ => agent.clone(),
        };
        g.add(&ds, "dct:publisher", iri(publisher));
        let contact_of = match &d.contact_email {
            Some(mail) if *mail != p.email => {
                let c = format!("{ds}#contact");
                g.a(&c, "vcard:Kind");
                g.add(&c, "vcard:fn", fr(d.publisher.clone().unwrap_or_else(|| p.name.clone())));
                g.add(&c, "vcard:hasEmail", iri(format!("mailto:{mail}")));
                c
            }
            _ => contact.clone(),
        };
        g.add(&ds, "dcat:contactPoint", iri(contact_of));
        g.add(&ds, "dct:issued", datetime(d.created_at));
        g.add(&ds, "dct:modified", datetime(d.modified_at));
        g.add(&ds, "dct:language", iri(&fra));
        g.add(&ds, "dcat:landingPage", iri(&page));
        g.a(&page, "foaf:Document");
        let freq = format!("{EU}/frequency/{}", crate::dataset::frequency(d));
        g.add(&ds, "dct:accrualPeriodicity", iri(&freq));
        g.a(&freq, "dct:Frequency");
        if d.kind == DatasetKind::Measurements {
            let res = match d.resolution {
                Resolution::Raw => None,
                Resolution::QuarterHour => Some("PT15M"),
                Resolution::Hourly => Some("PT1H"),
                Resolution::Daily => Some("P1D"),
            };
            if let Some(r) = res {
                g.add(&ds, "dcat:temporalResolution", typed(r, "xsd:duration"));
            }
        }
        if let Some((from, to)) = e.temporal {
            let period = format!("{ds}#period");
            g.add(&ds, "dct:temporal", iri(&period));
            g.a(&period, "dct:PeriodOfTime");
            g.add(&period, "dcat:startDate", datetime(from));
            g.add(&period, "dcat:endDate", datetime(to));
        }
        if let Some((name, centroid, bbox)) = &e.spatial {
            let place = format!("{ds}#spatial");
            g.add(&ds, "dct:spatial", iri(&place));
            location(&mut g, &place, name, *centroid, *bbox);
        }
        let licence = LICENCES.iter().find(|l| l.0 == d.licence).map(|l| l.3);
        for (name, eu_type, media, title) in FORMATS {
            let url = format!("{service}/catalog/datasets/{}/exports/{name}", d.id);
            g.add(&ds, "dcat:distribution", iri(&url));
            g.a(&url, "dcat:Distribution");
            g.add(&url, "dct:title", fr(format!("{} — {title}", d.title)));
            g.add(
                &url,
                "dct:description",
                fr(format!("Export complet du jeu de données, en {title}.")),
            );
            g.add(&url, "dcat:accessURL", iri(&url));
            g.add(&url, "dcat:downloadURL", iri(&url));
            g.add(&url, "dcat:accessService", iri(&service));
            let ft = format!("{EU}/file-type/{eu_type}");
            g.add(&url, "dct:format", iri(&ft));
            g.a(&ft, "dct:MediaTypeOrExtent");
            let mt = format!("https://www.iana.org/assignments/media-types/{media}");
            g.add(&url, "dcat:mediaType", iri(&mt));
            g.a(&mt, "dct:MediaType");
            if let Some(l) = licence {
                g.add(&url, "dct:license", iri(l));
            }
            g.add(&url, "dct:modified", datetime(d.modified_at));
            let stable = "http://data.europa.eu/r5r/availability/stable";
            g.add(&url, "dcatap:availability", iri(stable));
            g.concept(stable, "Stable", None);
        }
    }
    g
}

/// A place: its name, centroid and bounding box as WKT (GeoSPARQL literals).
fn location(
    g: &mut Graph,
    place: &str,
    name: &str,
    (lat, lon): (f64, f64),
    (s, w, n, e): (f64, f64, f64, f64),
) {
    g.a(place, "dct:Location");
    g.add(place, "skos:prefLabel", fr(name));
    let wkt = "http://www.opengis.net/ont/geosparql#wktLiteral";
    g.add(place, "dcat:centroid", typed(format!("POINT({lon} {lat})"), wkt));
    g.add(
        place,
        "dcat:bbox",
        typed(format!("POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"), wkt),
    );
}

fn turtle_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// An IRI as Turtle writes it: `<…>` with the characters IRIs may not hold escaped.
fn turtle_iri(s: &str) -> String {
    let mut o = String::from("<");
    for c in s.chars() {
        if matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\') || (c as u32) <= 0x20 {
            let _ = write!(o, "\\u{:04X}", c as u32);
        } else {
            o.push(c);
        }
    }
    o.push('>');
    o
}

fn short(iri: &str) -> Option<String> {
    PREFIXES.iter().find_map(|(p, ns)| {
        iri.strip_prefix(ns)
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .map(|l| format!("{p}:{l}"))
    })
}

impl Graph {
    /// Turtle.
    pub fn turtle(&self) -> String {
        let mut o = String::new();
        for (p, ns) in PREFIXES {
            let _ = writeln!(o, "@prefix {p}: <{ns}> .");
        }
        for (s, preds) in &self.nodes {
            let _ = write!(o, "\n{}", turtle_iri(s));
            let mut first = true;
            for (p, objects) in preds {
                let pred = if p == &format!("{RDF}type") {
                    "a".to_owned()
                } else {
                    short(p).unwrap_or_else(|| turtle_iri(p))
                };
                let objs: Vec<String> = objects
                    .iter()
                    .map(|t| match t {
                        Term::Iri(i) => short(i)
                            .filter(|_| p == &format!("{RDF}type"))
                            .unwrap_or_else(|| turtle_iri(i)),
                        Term::Lit { value, datatype, lang } => {
                            let mut x = format!("\"{}\"", turtle_escape(value));
                            if let Some(l) = lang {
                                x.push('@');
                                x.push_str(l);
                            } else if let Some(dt) = datatype {
                                x.push_str("^^");
                                x.push_str(&short(dt).unwrap_or_else(|| turtle_iri(dt)));
                            }
                            x
                        }
                    })
                    .collect();
                let _ =
                    write!(o, "{}\n    {pred} {}", if first { "" } else { " ;" }, objs.join(", "));
                first = false;
            }
            o.push_str(" .\n");
        }
        o
    }

    /// JSON-LD, expanded (no context to fetch).
    pub fn json_ld(&self) -> serde_json::Value {
        let rdf_type = format!("{RDF}type");
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|(s, preds)| {
                let mut m = serde_json::Map::new();
                m.insert("@id".into(), s.clone().into());
                for (p, objects) in preds {
                    if *p == rdf_type {
                        let types: Vec<serde_json::Value> = objects
                            .iter()
                            .filter_map(|t| match t {
                                Term::Iri(i) => Some(i.clone().into()),
                                _ => None,
                            })
                            .collect();
                        m.insert("@type".into(), types.into());
                        continue;
                    }
                    let values: Vec<serde_json::Value> = objects
                        .iter()
                        .map(|t| match t {
                            Term::Iri(i) => serde_json::json!({"@id": i}),
                            Term::Lit { value, datatype: Some(dt), .. } => {
                                serde_json::json!({"@value": value, "@type": dt})
                            }
                            Term::Lit { value, lang: Some(l), .. } => {
                                serde_json::json!({"@value": value, "@language": l})
                            }
                            Term::Lit { value, .. } => serde_json::json!({"@value": value}),
                        })
                        .collect();
                    m.insert(p.clone(), values.into());
                }
                serde_json::Value::Object(m)
            })
            .collect();
        serde_json::Value::Array(nodes)
    }

    /// RDF/XML.
    pub fn rdf_xml(&self) -> String {
        // Characters XML 1.0 forbids are dropped (definitions refuse them; this is a guard).
        let esc = |s: &str| {
            s.chars()
                .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
                .collect::<String>()
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut o = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF");
        for (p, ns) in PREFIXES {
            let _ = write!(o, "\n    xmlns:{p}=\"{ns}\"");
        }
        o.push_str(">\n");
        for (s, preds) in &self.nodes {
            let _ = writeln!(o, "  <rdf:Description rdf:about=\"{}\">", esc(s));
            for (p, objects) in preds {
                let Some(q) = short(p) else { continue };
                for t in objects {
                    match t {
                        Term::Iri(i) => {
                            let _ = writeln!(o, "    <{q} rdf:resource=\"{}\"/>", esc(i));
                        }
                        Term::Lit { value, datatype, lang } => {
                            let attr = match (datatype, lang) {
                                (Some(dt), _) => format!(" rdf:datatype=\"{}\"", esc(dt)),
                                (_, Some(l)) => format!(" xml:lang=\"{l}\""),
                                _ => String::new(),
                            };
                            let _ = writeln!(o, "    <{q}{attr}>{}</{q}>", esc(value));
                        }
                    }
                }
            }
            o.push_str("  </rdf:Description>\n");
        }
        o.push_str("</rdf:RDF>\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalogue of two datasets, one with its own publisher and contact, with quotes and
    /// line breaks in its texts.
    pub(crate) fn sample() -> Graph {
        let d = |id: &str, theme: &str, kind: &str| -> Dataset {
            serde_json::from_value(serde_json::json!({
                "id": id, "kind": kind, "title": format!("Jeu « {id} »"),
                "description": "Moyennes \"horaires\"\nsur deux lignes <b>&</b>", "theme": theme,
                "keywords": ["air", "capteurs"], "published": true,
                "created_at": 1_700_000_000_000_000_000i64, "modified_at": 1_710_000_000_000_000_000i64,
            }))
            .unwrap()
        };
        let mut other = d("bruit", "noise", "measurements");
        other.publisher = Some("Service environnement".into());
        other.contact_email = Some("bruit@example.fr".into());
        other.licence = "odbl-1.0".into();
        let entries = vec![
            Entry {
                dataset: d("air", "air", "measurements"),
                temporal: Some((
                    Timestamp::from_nanos(1_700_000_000_000_000_000),
                    Timestamp::from_nanos(1_710_000_000_000_000_000),
                )),
                spatial: Some((
                    "Hôtel de Ville".into(),
                    (43.5297, 5.4474),
                    (43.52, 5.44, 43.54, 5.45),
                )),
            },
            Entry { dataset: other, temporal: None, spatial: None },
            Entry { dataset: d("lieux", "equipment", "places"), temporal: None, spatial: None },
        ];
        let p = Publisher {
            base: "https://data.example.fr".into(),
            title: "Données ouvertes".into(),
            description: "Capteurs".into(),
            name: "Ville d'exemple".into(),
            email: "opendata@example.fr".into(),
            territory: "Aix-en-Provence".into(),
        };
        catalogue(&p, &entries)
    }

    #[test]
    fn every_serialization_holds_the_same_triples() {
        let g = sample();
        let ttl = g.turtle();
        assert!(ttl.contains("a dcat:Catalog"), "{ttl}");
        assert!(ttl.contains(r#""Moyennes \"horaires\"\nsur deux lignes <b>&</b>"@fr"#));
        let xml = g.rdf_xml();
        assert!(
            xml.contains("Moyennes &quot;horaires&quot;\nsur deux lignes &lt;b&gt;&amp;&lt;/b&gt;")
        );
        let jsonld = g.json_ld();
        let n: usize = jsonld
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                node.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| *k != "@id")
                    .map(|(_, v)| v.as_array().unwrap().len())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(n, g.len(), "JSON-LD holds every triple");
        // Each distribution: exactly one format, media type and licence (maxCount 1).
        for (s, preds) in &g.nodes {
            if s.contains("/exports/") {
                for p in ["dct:format", "dcat:mediaType", "dct:license"] {
                    assert_eq!(preds[&expand(p)].len(), 1, "{s} {p}");
                }
            }
        }
    }
}
