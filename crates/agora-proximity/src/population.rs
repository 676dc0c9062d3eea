//! Where people live: INSEE's gridded population (Filosofi, 200 m squares of the European grid,
//! identified as `CRS3035RES200mN2029800E4254200`: resolution, then the northing and easting of
//! the square's south-west corner in EPSG:3035), or addresses with a weight (dwellings, residents);
//! and the neighbourhoods they are counted in (a GeoJSON of polygons, IRIS or the city's own
//! quarters). Every file is read whole before anything is returned: one bad line refuses it.

use serde::{Deserialize, Serialize};

use crate::files::{column, columns, reader, refuse};
use crate::project::laea_to_wgs84;
use crate::{Error, Result};

/// A populated square or address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Square {
    /// Its identifier (INSEE's square id, or the address's).
    pub id: String,
    /// Longitude of its centre (WGS 84).
    pub lon: f64,
    /// Latitude of its centre.
    pub lat: f64,
    /// Its population (INSEE's estimate is not an integer) or weight.
    pub population: f64,
    /// The square's side in metres (200), or 0 for an address.
    pub side_m: u32,
    /// The INSEE code of its commune, when the source gives it.
    #[serde(default)]
    pub commune: Option<String>,
}

/// The south-west corner (easting, northing) and side of an INSEE square id.
pub fn parse_square_id(id: &str) -> Option<(f64, f64, u32)> {
    let rest = id.trim().strip_prefix("CRS3035RES")?;
    let (side, rest) = rest.split_once("mN")?;
    let (north, east) = rest.split_once('E')?;
    let side: u32 = side.parse().ok().filter(|s| *s > 0)?;
    Some((east.parse().ok()?, north.parse().ok()?, side))
}

/// The INSEE id of the 200 m square holding a point.
pub fn square_id_at(lon: f64, lat: f64) -> String {
    let (x, y) = crate::project::wgs84_to_laea(lon, lat);
    let (e, n) = ((x / 200.0).floor() * 200.0, (y / 200.0).floor() * 200.0);
    format!("CRS3035RES200mN{n:.0}E{e:.0}")
}

/// Reads INSEE's Filosofi 200 m squares CSV: the square's id (`Idcar_200m`, or `IdINSPIRE`), its
/// population (`Ind`, or `Ind_c` in the 2010 vintage) and, when present, its commune (`lcog_geo`,
/// whose first code is kept when a square straddles communes). Squares may have another side
/// (INSEE's 1 km files): their centre is taken.
pub fn read_filosofi(bytes: &[u8]) -> Result<Vec<Square>> {
    let mut rdr = reader(bytes);
    let cols = columns(&mut rdr, "Filosofi")?;
    let find = |names: &[&str]| column(&cols, names);
    let id_c = find(&["idcar_200m", "idinspire", "idcar_1km", "id"]).ok_or_else(|| {
        Error::invalid("Filosofi: no Idcar_200m column: is it INSEE's gridded population?")
    })?;
    let ind_c = find(&["ind", "ind_c", "population"])
        .ok_or_else(|| Error::invalid("Filosofi: no Ind column (the number of individuals)"))?;
    let com_c = find(&["lcog_geo", "depcom", "commune"]);
    let mut out = Vec::new();
    let mut faults = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                faults.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let id = rec.get(id_c).unwrap_or_default().trim();
        let Some((e, n, side)) = parse_square_id(id) else {
            faults.push(format!(
                "line {line}: {id:?} is not an INSEE square id (CRS3035RES200mN…E…)"
            ));
            continue;
        };
        let pop = rec.get(ind_c).unwrap_or_default().trim().replace(',', ".");
        let pop = match pop.parse::<f64>() {
            Ok(p) if p.is_finite() && p >= 0.0 => p,
            _ => {
                faults.push(format!("line {line}: population {pop:?} is not a number of people"));
                continue;
            }
        };
        if !seen.insert(id.to_string()) {
            faults.push(format!("line {line}: square {id} is listed twice"));
            continue;
        }
        let half = f64::from(side) / 2.0;
        let (lon, lat) = laea_to_wgs84(e + half, n + half);
        if !(lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0) {
            faults.push(format!("line {line}: square {id} is not on the European grid"));
            continue;
        }
        let commune = com_c
            .and_then(|c| rec.get(c))
            .map(str::trim)
            .and_then(|s| s.get(..5))
            .map(str::to_string);
        out.push(Square { id: id.to_string(), lon, lat, population: pop, side_m: side, commune });
    }
    if !faults.is_empty() {
        return Err(refuse("Filosofi", faults));
    }
    if out.is_empty() {
        return Err(Error::invalid("Filosofi: the file has no square"));
    }
    Ok(out)
}

/// Reads addresses with a weight: `lon`/`longitude`, `lat`/`latitude`, `weight` (or
/// `population`, `dwellings`/`logements`); optional `id`, `commune`.
pub fn read_addresses(bytes: &[u8]) -> Result<Vec<Square>> {
    let mut rdr = reader(bytes);
    let cols = columns(&mut rdr, "addresses")?;
    let find = |names: &[&str]| column(&cols, names);
    let need = |names: &[&str], what: &str| {
        find(names).ok_or_else(|| Error::invalid(format!("addresses: no {what} column")))
    };
    let lon_c = need(&["lon", "longitude", "x"], "lon")?;
    let lat_c = need(&["lat", "latitude", "y"], "lat")?;
    let w_c = need(&["weight", "population", "dwellings", "logements", "poids"], "weight")?;
    let (id_c, com_c) = (find(&["id"]), find(&["commune", "insee", "code_insee", "depcom"]));
    let mut out = Vec::new();
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
        let num = |c: usize| {
            rec.get(c).unwrap_or_default().trim().parse::<f64>().ok().filter(|v| v.is_finite())
        };
        match (num(lon_c), num(lat_c), num(w_c)) {
            (Some(lon), Some(lat), Some(w))
                if lon.abs() <= 180.0 && lat.abs() <= 90.0 && w >= 0.0 =>
            {
                let field = |c: Option<usize>| {
                    c.and_then(|c| rec.get(c)).map(str::trim).filter(|s| !s.is_empty())
                };
                out.push(Square {
                    id: field(id_c).map_or_else(|| format!("address-{line}"), str::to_string),
                    lon,
                    lat,
                    population: w,
                    side_m: 0,
                    commune: field(com_c).map(str::to_string),
                });
            }
            _ => faults.push(format!("line {line}: lon, lat and a weight of 0 or more are needed")),
        }
    }
    if !faults.is_empty() {
        return Err(refuse("addresses", faults));
    }
    if out.is_empty() {
        return Err(Error::invalid("addresses: the file has no address"));
    }
    Ok(out)
}

/// A neighbourhood (or any area the population is counted in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Area {
    /// Its code (`code`, `id`, or IRIS's `code_iris`).
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its commune's INSEE code, when given.
    #[serde(default)]
    pub commune: Option<String>,
    /// Its polygons: each an outer ring then holes, of (longitude, latitude).
    pub polygons: Vec<Vec<Vec<(f64, f64)>>>,
}

impl Area {
    /// Whether the area holds a point (even–odd rule: holes are outside).
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        self.polygons
            .iter()
            .any(|rings| rings.iter().filter(|ring| crossings(ring, lon, lat)).count() % 2 == 1)
    }
}

fn crossings(ring: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = ring.len();
    for i in 0..n {
        let (a, b) = (ring[i], ring[(i + n - 1) % n]);
        if (a.1 > y) != (b.1 > y) && x < (b.0 - a.0) * (y - a.1) / (b.1 - a.1) + a.0 {
            inside = !inside;
        }
    }
    inside
}

/// Reads neighbourhoods from a GeoJSON FeatureCollection of Polygons or MultiPolygons with the
/// properties `code` (or `id`, `code_iris`), `name` (or `nom`, `nom_iris`) and optionally
/// `commune` (or `insee_com`).
pub fn read_areas(bytes: &[u8]) -> Result<Vec<Area>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("neighbourhoods GeoJSON: not JSON: {e}")))?;
    let features = doc
        .get("features")
        .and_then(|f| f.as_array())
        .ok_or_else(|| Error::invalid("neighbourhoods GeoJSON: not a FeatureCollection"))?;
    let mut out = Vec::new();
    let mut faults = Vec::new();
    for (i, f) in features.iter().enumerate() {
        let props = f.get("properties").cloned().unwrap_or_default();
        let text = |keys: &[&str]| {
            keys.iter().find_map(|k| match props.get(*k) {
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                    Some(s.trim().to_string())
                }
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        };
        let Some(code) = text(&["code", "id", "code_iris"]) else {
            faults.push(format!("feature {i}: no code"));
            continue;
        };
        let name = text(&["name", "nom", "nom_iris"]).unwrap_or_else(|| code.clone());
        match polygons(f.get("geometry")) {
            Ok(polygons) => {
                out.push(Area { code, name, commune: text(&["commune", "insee_com"]), polygons })
            }
            Err(e) => faults.push(format!("feature {i} ({code}): {e}")),
        }
    }
    let mut codes = std::collections::HashSet::new();
    for a in &out {
        if !codes.insert(a.code.clone()) {
            faults.push(format!("code {:?} is used twice", a.code));
        }
    }
    if !faults.is_empty() {
        return Err(refuse("neighbourhoods", faults));
    }
    Ok(out)
}

type Polygons = Vec<Vec<Vec<(f64, f64)>>>;

fn polygons(g: Option<&serde_json::Value>) -> std::result::Result<Polygons, String> {
    let g = g.ok_or("no geometry")?;
    let ring = |r: &serde_json::Value| -> std::result::Result<Vec<(f64, f64)>, String> {
        let pts: Vec<(f64, f64)> = r
            .as_array()
            .ok_or("a ring is not a list")?
            .iter()
            .map(|p| {
                match p.as_array().map(|a| {
                    (a.first().and_then(|v| v.as_f64()), a.get(1).and_then(|v| v.as_f64()))
                }) {
                    Some((Some(x), Some(y))) if x.abs() <= 180.0 && y.abs() <= 90.0 => Ok((x, y)),
                    _ => Err("a position is not [lon, lat]".to_string()),
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        if pts.len() < 4 {
            return Err("a ring has fewer than 4 positions".into());
        }
        Ok(pts)
    };
    let polygon = |p: &serde_json::Value| -> std::result::Result<Vec<Vec<(f64, f64)>>, String> {
        p.as_array().ok_or("a polygon is not a list of rings")?.iter().map(ring).collect()
    };
    let coords = g.get("coordinates").ok_or("a geometry without coordinates")?;
    match g.get("type").and_then(|t| t.as_str()) {
        Some("Polygon") => Ok(vec![polygon(coords)?]),
        Some("MultiPolygon") => {
            coords.as_array().ok_or("bad multipolygon")?.iter().map(polygon).collect()
        }
        other => Err(format!("geometry {other:?}: a neighbourhood is a Polygon or a MultiPolygon")),
    }
}
