//! Facilities — shops, doctors, schools, parks — each in one of the four themes of the 15-minute
//! city (commerce, health, social facilities, leisure), read from a CSV, a GeoJSON file or
//! INSEE's *Base permanente des équipements* (BPE). BPE codes (`TYPEQU`, a letter and three digits:
//! `D301` is a pharmacy) are mapped to a theme by a [`Mapping`] of codes or code prefixes, the
//! longest one winning; codes the mapping ignores (transport, tourism) are counted and left out;
//! a code it neither maps nor ignores refuses the whole file, so that a new BPE vintage is
//! noticed, not half read. Every file is read whole before anything is returned: one bad line
//! refuses it, with the lines named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::files::{column, columns, reader, refuse};
use crate::project::lambert93_to_wgs84;
use crate::{Error, Result};

/// The four themes of the 15-minute city (Aix-en-Provence, 2023).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ProximityTheme))]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Shops and services to people (bakeries, grocers, hairdressers, banks…).
    Commerce,
    /// Doctors, pharmacies, laboratories, health centres.
    Health,
    /// Schools, crèches, social services, public services.
    Social,
    /// Sport, culture, parks and play areas.
    Leisure,
}

impl Theme {
    /// All four, in order.
    pub const ALL: [Theme; 4] = [Theme::Commerce, Theme::Health, Theme::Social, Theme::Leisure];

    /// Its identifier (`commerce`, `health`, `social`, `leisure`).
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Commerce => "commerce",
            Theme::Health => "health",
            Theme::Social => "social",
            Theme::Leisure => "leisure",
        }
    }

    /// Its French name, for the decision makers' pages.
    pub fn label_fr(self) -> &'static str {
        match self {
            Theme::Commerce => "Commerces",
            Theme::Health => "Santé",
            Theme::Social => "Équipements sociaux",
            Theme::Leisure => "Loisirs",
        }
    }

    /// The theme of an identifier, with its French names accepted.
    pub fn parse(s: &str) -> Result<Theme> {
        match s.trim().to_lowercase().as_str() {
            "commerce" | "commerces" => Ok(Theme::Commerce),
            "health" | "santé" | "sante" => Ok(Theme::Health),
            "social" | "équipements sociaux" | "equipements sociaux" => Ok(Theme::Social),
            "leisure" | "loisirs" | "loisir" => Ok(Theme::Leisure),
            other => Err(Error::invalid(format!(
                "theme {other:?} is not one of commerce, health, social, leisure"
            ))),
        }
    }
}

/// A facility.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facility {
    /// Its identifier, unique in its import.
    pub id: String,
    /// Its name, when the source gives one.
    #[serde(default)]
    pub name: Option<String>,
    /// Its theme.
    pub theme: Theme,
    /// Its kind (`D301`, `pharmacie`, `parc`…): gaps are told by kind too.
    pub kind: String,
    /// Longitude (WGS 84).
    pub lon: f64,
    /// Latitude (WGS 84).
    pub lat: f64,
    /// The INSEE code of its commune, when the source gives it.
    #[serde(default)]
    pub commune: Option<String>,
}

/// Where a BPE code goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// Left out (transport, tourism…).
    Ignored(Ignore),
    /// A theme and the kind's French name.
    Theme {
        /// The theme.
        theme: Theme,
        /// The kind's name (`pharmacie`); the code when absent.
        #[serde(default)]
        label: Option<String>,
    },
}

/// The word `"ignore"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ignore {
    /// Left out.
    Ignore,
}

/// BPE codes or prefixes of codes → theme (the longest prefix wins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mapping(pub BTreeMap<String, Target>);

impl Default for Mapping {
    /// The mapping shipped: INSEE's BPE typology (2021 onwards) by domain and subdomain, with the
    /// usual names of the kinds a resident looks for.
    fn default() -> Self {
        use Theme::*;
        let mut m = BTreeMap::new();
        let mut put = |code: &str, theme: Option<Theme>, label: Option<&str>| {
            m.insert(
                code.to_string(),
                match theme {
                    Some(theme) => Target::Theme { theme, label: label.map(str::to_string) },
                    None => Target::Ignored(Ignore::Ignore),
                },
            );
        };
        // A: services to people. Public services are social; banks, post offices, craftsmen
        // and personal services are commerce; building trades and car repairs are left out.
        put("A1", Some(Social), None);
        put("A101", Some(Social), Some("police"));
        put("A104", Some(Social), Some("gendarmerie"));
        put("A2", Some(Commerce), None);
        put("A203", Some(Commerce), Some("banque"));
        put("A206", Some(Social), Some("bureau de poste"));
        put("A207", Some(Social), Some("relais poste"));
        put("A208", Some(Social), Some("agence postale"));
        put("A3", None, None);
        put("A4", None, None);
        put("A5", Some(Commerce), None);
        put("A501", Some(Commerce), Some("coiffure"));
        put("A504", Some(Commerce), Some("restaurant"));
        put("A506", Some(Commerce), Some("pressing, laverie"));
        // B: shops.
        put("B", Some(Commerce), None);
        put("B104", Some(Commerce), Some("hypermarché"));
        put("B105", Some(Commerce), Some("supermarché"));
        put("B201", Some(Commerce), Some("supérette"));
        put("B202", Some(Commerce), Some("épicerie"));
        put("B203", Some(Commerce), Some("boulangerie"));
        put("B204", Some(Commerce), Some("boucherie"));
        put("B206", Some(Commerce), Some("poissonnerie"));
        put("B316", None, None);
        // C: education. Schools and secondary schools are social facilities; higher education
        // and training are not a 15-minute need.
        put("C1", Some(Social), None);
        put("C101", Some(Social), Some("école maternelle"));
        put("C104", Some(Social), Some("école élémentaire"));
        put("C2", Some(Social), None);
        put("C201", Some(Social), Some("collège"));
        put("C3", Some(Social), None);
        put("C301", Some(Social), Some("lycée"));
        put("C4", None, None);
        put("C5", None, None);
        put("C6", None, None);
        put("C7", None, None);
        // D: health and social action.
        put("D1", Some(Health), None);
        put("D106", Some(Health), Some("urgences"));
        put("D108", Some(Health), Some("centre de santé"));
        put("D113", Some(Health), Some("maison de santé"));
        put("D2", Some(Health), None);
        put("D201", Some(Health), Some("médecin généraliste"));
        put("D221", Some(Health), Some("chirurgien-dentiste"));
        put("D231", Some(Health), Some("infirmier"));
        put("D232", Some(Health), Some("masseur-kinésithérapeute"));
        put("D3", Some(Health), None);
        put("D301", Some(Health), Some("pharmacie"));
        put("D302", Some(Health), Some("laboratoire d'analyses"));
        put("D303", None, None);
        put("D4", Some(Social), None);
        put("D5", Some(Social), None);
        put("D502", Some(Social), Some("crèche"));
        put("D6", Some(Social), None);
        put("D7", Some(Social), None);
        put("D8", Some(Social), None);
        put("D9", Some(Social), None);
        // E: transport; G: tourism.
        put("E", None, None);
        put("G", None, None);
        // F: sport, leisure, culture.
        put("F1", Some(Leisure), None);
        put("F101", Some(Leisure), Some("piscine"));
        put("F111", Some(Leisure), Some("terrain de jeux"));
        put("F120", Some(Leisure), Some("salle de remise en forme"));
        put("F121", Some(Leisure), Some("gymnase"));
        put("F2", Some(Leisure), None);
        put("F3", Some(Leisure), None);
        put("F303", Some(Leisure), Some("cinéma"));
        put("F307", Some(Leisure), Some("bibliothèque"));
        Mapping(m)
    }
}

impl Mapping {
    /// Where a code goes, by its longest prefix in the mapping; `None` when no prefix matches.
    pub fn target(&self, code: &str) -> Option<(&str, &Target)> {
        (1..=code.len())
            .rev()
            .filter_map(|n| code.get(..n))
            .find_map(|p| self.0.get_key_value(p).map(|(k, t)| (k.as_str(), t)))
    }

    /// Checks the mapping: keys are code prefixes (a capital letter then digits).
    pub fn check(&self) -> Result<()> {
        for k in self.0.keys() {
            let mut c = k.chars();
            let ok = c.next().is_some_and(|c| c.is_ascii_uppercase())
                && c.all(|c| c.is_ascii_digit())
                && k.len() <= 4;
            if !ok {
                return Err(Error::invalid(format!(
                    "BPE mapping: {k:?} is not a BPE code or prefix (a capital letter and up to three digits)"
                )));
            }
        }
        Ok(())
    }
}

/// What an import read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacilityImport {
    /// The facilities kept.
    pub facilities: Vec<Facility>,
    /// Lines or features left out because the mapping ignores their code.
    pub ignored: usize,
    /// Lines without a position (BPE's non-located equipment): left out, and counted.
    pub not_located: usize,
}

fn position(lon: f64, lat: f64) -> std::result::Result<(f64, f64), String> {
    if lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0 {
        Ok((lon, lat))
    } else {
        Err(format!("{lon}, {lat} is not a longitude and a latitude"))
    }
}

/// Reads INSEE's BPE CSV (`;`-separated; `TYPEQU`, `DEPCOM`, and `LONGITUDE`/`LATITUDE` or
/// `LAMBERT_X`/`LAMBERT_Y` in Lambert-93; `NOMRS` as the name when present).
pub fn read_bpe(bytes: &[u8], mapping: &Mapping) -> Result<FacilityImport> {
    let mut rdr = reader(bytes);
    let cols = columns(&mut rdr, "BPE")?;
    let typ = column(&cols, &["typequ"]).ok_or_else(|| {
        Error::invalid("BPE: no TYPEQU column: is it INSEE's Base permanente des équipements?")
    })?;
    let lon = column(&cols, &["longitude"]);
    let lat = column(&cols, &["latitude"]);
    let lx = column(&cols, &["lambert_x"]);
    let ly = column(&cols, &["lambert_y"]);
    if !(lon.is_some() && lat.is_some() || lx.is_some() && ly.is_some()) {
        return Err(Error::invalid("BPE: no LONGITUDE/LATITUDE nor LAMBERT_X/LAMBERT_Y columns"));
    }
    let epsg = column(&cols, &["epsg"]);
    let depcom = column(&cols, &["depcom"]);
    let name = column(&cols, &["nomrs"]);
    let mut out = FacilityImport::default();
    let mut faults = Vec::new();
    let mut unknown: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field =
            |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let code = field(Some(typ)).unwrap_or_default().to_uppercase();
        let (theme, label) = match mapping.target(&code) {
            Some((_, Target::Ignored(_))) => {
                out.ignored += 1;
                continue;
            }
            Some((key, Target::Theme { theme, label })) => {
                (*theme, if key == code { label.clone() } else { None })
            }
            None => {
                unknown.entry(code).or_default().push(line);
                continue;
            }
        };
        let number = |c: Option<usize>| field(c).map(|s| s.replace(',', ".").parse::<f64>());
        let pos = match (number(lon), number(lat), number(lx), number(ly)) {
            (Some(Ok(x)), Some(Ok(y)), _, _) => position(x, y),
            (_, _, Some(Ok(x)), Some(Ok(y))) => {
                if let Some(e) = field(epsg)
                    && e != "2154"
                {
                    Err(format!("LAMBERT_X/LAMBERT_Y in EPSG:{e}, only Lambert-93 (2154) is read"))
                } else {
                    let (lo, la) = lambert93_to_wgs84(x, y);
                    position(lo, la)
                }
            }
            (Some(Err(_)), ..)
            | (_, Some(Err(_)), ..)
            | (.., Some(Err(_)), _)
            | (.., Some(Err(_))) => Err("a coordinate is not a number".to_string()),
            _ => {
                out.not_located += 1;
                continue;
            }
        };
        match pos {
            Ok((lo, la)) => out.facilities.push(Facility {
                id: format!("bpe-{line}"),
                name: field(name).map(str::to_string),
                theme,
                kind: label.unwrap_or_else(|| code.clone()),
                lon: lo,
                lat: la,
                commune: field(depcom).map(str::to_string),
            }),
            Err(e) => faults.push(format!("line {line}: {e}")),
        }
    }
    for (code, lines) in unknown {
        let shown: Vec<String> = lines.iter().take(3).map(u64::to_string).collect();
        faults.push(format!(
            "code {code:?} (lines {}{}) is neither mapped to a theme nor ignored in [proximity.bpe]",
            shown.join(", "),
            if lines.len() > 3 { ", …" } else { "" }
        ));
    }
    if !faults.is_empty() {
        return Err(refuse("BPE", faults));
    }
    Ok(out)
}

/// Reads a CSV of facilities: `theme` (commerce, health, social, leisure — or their French
/// names), `lon`/`longitude`, `lat`/`latitude`; optional `kind`, `name`, `id`, `commune`.
pub fn read_csv(bytes: &[u8]) -> Result<FacilityImport> {
    let mut rdr = reader(bytes);
    let cols = columns(&mut rdr, "facilities CSV")?;
    let need = |names: &[&str], what: &str| {
        column(&cols, names)
            .ok_or_else(|| Error::invalid(format!("facilities CSV: no {what} column")))
    };
    let (theme_c, lon_c, lat_c) = (
        need(&["theme"], "theme")?,
        need(&["lon", "longitude"], "lon")?,
        need(&["lat", "latitude"], "lat")?,
    );
    let (kind_c, name_c, id_c, commune_c) = (
        column(&cols, &["kind", "type"]),
        column(&cols, &["name", "nom"]),
        column(&cols, &["id"]),
        column(&cols, &["commune", "insee", "depcom"]),
    );
    let mut out = FacilityImport::default();
    let mut faults = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let field =
            |c: Option<usize>| c.and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let theme = match Theme::parse(field(Some(theme_c)).unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let num = |c| field(Some(c)).and_then(|s| s.parse::<f64>().ok());
        let (lon, lat) = match num(lon_c).zip(num(lat_c)).map(|(x, y)| position(x, y)) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
            None => {
                faults.push(format!("line {line}: lon and lat must be numbers"));
                continue;
            }
        };
        out.facilities.push(Facility {
            id: field(id_c).map_or_else(|| format!("csv-{line}"), str::to_string),
            name: field(name_c).map(str::to_string),
            theme,
            kind: field(kind_c).unwrap_or(theme.as_str()).to_string(),
            lon,
            lat,
            commune: field(commune_c).map(str::to_string),
        });
    }
    if !faults.is_empty() {
        return Err(refuse("facilities CSV", faults));
    }
    Ok(out)
}

/// Reads a GeoJSON FeatureCollection of facilities: `Point` features (a polygon — a park — by
/// the mean of its outer ring's vertices) with the properties `theme`, and optionally `kind`,
/// `name`, `id`, `commune`.
pub fn read_geojson(bytes: &[u8]) -> Result<FacilityImport> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("facilities GeoJSON: not JSON: {e}")))?;
    let features = doc.get("features").and_then(|f| f.as_array()).ok_or_else(|| {
        Error::invalid("facilities GeoJSON: not a FeatureCollection (no \"features\" list)")
    })?;
    let mut out = FacilityImport::default();
    let mut faults = Vec::new();
    for (i, f) in features.iter().enumerate() {
        let props = f.get("properties").cloned().unwrap_or_default();
        let text = |k: &str| {
            props.get(k).and_then(|v| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        let theme = match Theme::parse(&text("theme").unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => {
                faults.push(format!("feature {i}: {e}"));
                continue;
            }
        };
        let point = match feature_point(f.get("geometry")) {
            Ok(p) => p,
            Err(e) => {
                faults.push(format!("feature {i}: {e}"));
                continue;
            }
        };
        out.facilities.push(Facility {
            id: text("id")
                .or_else(|| f.get("id").and_then(|v| v.as_str().map(str::to_string)))
                .unwrap_or_else(|| format!("geojson-{i}")),
            name: text("name").or_else(|| text("nom")),
            theme,
            kind: text("kind").unwrap_or_else(|| theme.as_str().to_string()),
            lon: point.0,
            lat: point.1,
            commune: text("commune"),
        });
    }
    if !faults.is_empty() {
        return Err(refuse("facilities GeoJSON", faults));
    }
    Ok(out)
}

fn feature_point(g: Option<&serde_json::Value>) -> std::result::Result<(f64, f64), String> {
    let g = g.ok_or("no geometry")?;
    let coords = g.get("coordinates").ok_or("a geometry without coordinates")?;
    let pair = |v: &serde_json::Value| -> std::result::Result<(f64, f64), String> {
        let a = v.as_array().filter(|a| a.len() >= 2).ok_or("a position is not [lon, lat]")?;
        position(
            a[0].as_f64().ok_or("lon is not a number")?,
            a[1].as_f64().ok_or("lat is not a number")?,
        )
    };
    match g.get("type").and_then(|t| t.as_str()) {
        Some("Point") => pair(coords),
        Some("Polygon") | Some("MultiPolygon") => {
            let mut ring = coords;
            if g["type"] == "MultiPolygon" {
                ring = ring.get(0).ok_or("an empty multipolygon")?;
            }
            let ring = ring.get(0).and_then(|r| r.as_array()).ok_or("a polygon without a ring")?;
            let mut pts = ring.iter().map(pair).collect::<std::result::Result<Vec<_>, _>>()?;
            // A closed ring repeats its first vertex last: count it once.
            if pts.len() > 1 && pts.first() == pts.last() {
                pts.pop();
            }
            if pts.is_empty() {
                return Err("an empty ring".into());
            }
            let n = pts.len() as f64;
            Ok((pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n))
        }
        other => Err(format!("geometry {other:?}: a facility is a Point or a Polygon")),
    }
}
