//! Geometries in WGS 84 longitude/latitude, read from GeoJSON or WKT, and the spatial predicates
//! the standard APIs filter with. Coordinates are planar here (degrees), as OGC's simple features
//! and FROST-Server's `geo.distance` treat them; [`Geometry::distance_m`] gives metres for
//! NGSI-LD's `near;maxDistance`.
//!
//! A geometry holds at most [`MAX_VERTICES`] vertices: a client cannot make the server test a
//! million-point polygon against every device.

use std::fmt;

/// Most vertices of one geometry, all parts together.
pub const MAX_VERTICES: usize = 10_000;

/// A position: longitude, latitude (degrees).
pub type Pos = (f64, f64);

/// A geometry.
#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    /// One position.
    Point(Pos),
    /// Several positions.
    MultiPoint(Vec<Pos>),
    /// A line through positions.
    LineString(Vec<Pos>),
    /// Several lines.
    MultiLineString(Vec<Vec<Pos>>),
    /// An outer ring and holes; each ring closed (first = last).
    Polygon(Vec<Vec<Pos>>),
    /// Several polygons.
    MultiPolygon(Vec<Vec<Vec<Pos>>>),
}

/// Why a geometry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoError(pub String);

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GeoError {}

fn err<T>(m: impl Into<String>) -> Result<T, GeoError> {
    Err(GeoError(m.into()))
}

/// Where a position lies relative to an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Inside,
    Boundary,
    Outside,
}

impl Geometry {
    /// Every vertex.
    fn vertices(&self) -> Vec<Pos> {
        match self {
            Self::Point(p) => vec![*p],
            Self::MultiPoint(v) | Self::LineString(v) => v.clone(),
            Self::MultiLineString(l) | Self::Polygon(l) => l.concat(),
            Self::MultiPolygon(p) => p.iter().flat_map(|r| r.concat()).collect(),
        }
    }

    /// Every segment (lines and rings).
    fn segments(&self) -> Vec<(Pos, Pos)> {
        let of = |v: &Vec<Pos>| v.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>();
        match self {
            Self::Point(_) | Self::MultiPoint(_) => Vec::new(),
            Self::LineString(v) => of(v),
            Self::MultiLineString(l) | Self::Polygon(l) => l.iter().flat_map(of).collect(),
            Self::MultiPolygon(p) => p.iter().flatten().flat_map(of).collect(),
        }
    }

    /// The polygons (outer ring and holes) of an areal geometry.
    fn polygons(&self) -> Vec<&Vec<Vec<Pos>>> {
        match self {
            Self::Polygon(r) => vec![r],
            Self::MultiPolygon(p) => p.iter().collect(),
            _ => Vec::new(),
        }
    }

    fn is_areal(&self) -> bool {
        matches!(self, Self::Polygon(_) | Self::MultiPolygon(_))
    }

    /// Where `p` lies: in an area, on a line or point, or apart.
    fn side(&self, p: Pos) -> Side {
        if self.is_areal() {
            let mut side = Side::Outside;
            for poly in self.polygons() {
                match in_polygon(poly, p) {
                    Side::Inside => return Side::Inside,
                    Side::Boundary => side = Side::Boundary,
                    Side::Outside => {}
                }
            }
            return side;
        }
        let on = match self {
            Self::Point(q) => *q == p,
            Self::MultiPoint(v) => v.contains(&p),
            _ => self.segments().iter().any(|&(a, b)| on_segment(a, b, p)),
        };
        if on { Side::Boundary } else { Side::Outside }
    }

    /// Whether the two share at least one position.
    pub fn intersects(&self, other: &Geometry) -> bool {
        if self.vertices().iter().any(|&p| other.side(p) != Side::Outside)
            || other.vertices().iter().any(|&p| self.side(p) != Side::Outside)
        {
            return true;
        }
        let theirs = other.segments();
        self.segments().iter().any(|&(a, b)| theirs.iter().any(|&(c, d)| segments_meet(a, b, c, d)))
    }

    /// Whether every position of `self` lies in `other` (OGC `within`: on its boundary alone
    /// does not count, some part must be inside).
    pub fn within(&self, other: &Geometry) -> bool {
        let mine = self.vertices();
        let sides: Vec<Side> = mine.iter().map(|&p| other.side(p)).collect();
        if sides.contains(&Side::Outside) {
            return false;
        }
        if !other.is_areal() {
            // Within a line or points: every vertex on it (and, for lines, every segment along it,
            // which holds for the straight pieces checked by their end points when both lie on one
            // segment of `other`).
            return match self {
                Self::Point(_) | Self::MultiPoint(_) => true,
                _ => self.segments().iter().all(|&(a, b)| {
                    other
                        .segments()
                        .iter()
                        .any(|&(c, d)| on_segment(c, d, a) && on_segment(c, d, b))
                }),
            };
        }
        // No edge of `self` may cross the boundary of `other`, and something must be inside.
        let theirs = other.segments();
        let crosses = self
            .segments()
            .iter()
            .any(|&(a, b)| theirs.iter().any(|&(c, d)| segments_cross(a, b, c, d)));
        if crosses {
            return false;
        }
        sides.contains(&Side::Inside)
            || self
                .segments()
                .iter()
                .any(|&(a, b)| other.side(((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)) == Side::Inside)
    }

    /// Whether the two hold the same positions (as sets; each within or on the other).
    pub fn equals(&self, other: &Geometry) -> bool {
        let covers =
            |a: &Geometry, b: &Geometry| b.vertices().iter().all(|&p| a.side(p) != Side::Outside);
        covers(self, other) && covers(other, self)
    }

    /// The shortest planar distance between the two, in degrees (0 when they intersect).
    pub fn distance(&self, other: &Geometry) -> f64 {
        if self.intersects(other) {
            return 0.0;
        }
        let planar = |p: Pos, q: Pos| ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt();
        point_set_distance(self, other, planar)
    }

    /// The shortest distance in metres from `self` to `other` (0 when they intersect), on a
    /// local equirectangular projection: within 0.5 % below a few tens of kilometres, which is
    /// what a city's "near" means.
    pub fn distance_m(&self, other: &Geometry) -> f64 {
        if self.intersects(other) {
            return 0.0;
        }
        let lat0 = self.vertices().first().map_or(0.0, |p| p.1).to_radians();
        let k = lat0.cos();
        let metres = |p: Pos, q: Pos| {
            let dx = (p.0 - q.0).to_radians() * k;
            let dy = (p.1 - q.1).to_radians();
            (dx * dx + dy * dy).sqrt() * 6_371_008.8
        };
        point_set_distance(self, other, metres)
    }

    /// Parse GeoJSON: a geometry object, or a Feature holding one.
    pub fn from_geojson(v: &serde_json::Value) -> Result<Geometry, GeoError> {
        let Some(o) = v.as_object() else { return err("a GeoJSON geometry must be an object") };
        let kind = o.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if kind == "Feature" {
            return match o.get("geometry") {
                Some(g) => Self::from_geojson(g),
                None => err("a GeoJSON Feature without geometry"),
            };
        }
        let c = o
            .get("coordinates")
            .ok_or_else(|| GeoError(format!("GeoJSON {kind:?} without coordinates")))?;
        let mut budget = MAX_VERTICES;
        let g = match kind {
            "Point" => Self::Point(json_pos(c)?),
            "MultiPoint" => Self::MultiPoint(json_line(c, 1, &mut budget)?),
            "LineString" => Self::LineString(json_line(c, 2, &mut budget)?),
            "MultiLineString" => Self::MultiLineString(
                json_list(c)?
                    .iter()
                    .map(|l| json_line(l, 2, &mut budget))
                    .collect::<Result<_, _>>()?,
            ),
            "Polygon" => Self::Polygon(json_polygon(c, &mut budget)?),
            "MultiPolygon" => Self::MultiPolygon(
                json_list(c)?
                    .iter()
                    .map(|p| json_polygon(p, &mut budget))
                    .collect::<Result<_, _>>()?,
            ),
            other => return err(format!("unsupported GeoJSON geometry type {other:?}")),
        };
        Ok(g)
    }

    /// Parse WKT (`POINT (5.44 43.52)`, `POLYGON ((…), (…))`, `MULTIPOLYGON`, …; a third
    /// coordinate is read and ignored).
    pub fn from_wkt(s: &str) -> Result<Geometry, GeoError> {
        let mut w = Wkt { s: s.as_bytes(), pos: 0, budget: MAX_VERTICES };
        let g = w.geometry()?;
        w.ws();
        if w.pos != w.s.len() {
            return err(format!("unexpected text at position {} of the WKT", w.pos));
        }
        Ok(g)
    }

    /// As GeoJSON.
    pub fn to_geojson(&self) -> serde_json::Value {
        let pos = |p: &Pos| serde_json::json!([p.0, p.1]);
        let line = |v: &Vec<Pos>| v.iter().map(pos).collect::<Vec<_>>();
        let rings = |r: &Vec<Vec<Pos>>| r.iter().map(line).collect::<Vec<_>>();
        let (kind, coordinates) = match self {
            Self::Point(p) => ("Point", pos(p)),
            Self::MultiPoint(v) => ("MultiPoint", line(v).into()),
            Self::LineString(v) => ("LineString", line(v).into()),
            Self::MultiLineString(l) => ("MultiLineString", rings(l).into()),
            Self::Polygon(r) => ("Polygon", rings(r).into()),
            Self::MultiPolygon(p) => {
                ("MultiPolygon", p.iter().map(rings).collect::<Vec<_>>().into())
            }
        };
        serde_json::json!({"type": kind, "coordinates": coordinates})
    }
}

fn point_set_distance(a: &Geometry, b: &Geometry, d: impl Fn(Pos, Pos) -> f64) -> f64 {
    let seg = |p: Pos, (s, e): (Pos, Pos)| d(p, closest_on_segment(s, e, p));
    let mut best = f64::INFINITY;
    let (sa, sb) = (a.segments(), b.segments());
    for p in a.vertices() {
        for q in b.vertices() {
            best = best.min(d(p, q));
        }
        for &s in &sb {
            best = best.min(seg(p, s));
        }
    }
    for q in b.vertices() {
        for &s in &sa {
            best = best.min(seg(q, s));
        }
    }
    best
}

fn closest_on_segment(a: Pos, b: Pos, p: Pos) -> Pos {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return a;
    }
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
    (a.0 + t * dx, a.1 + t * dy)
}

fn cross(o: Pos, a: Pos, b: Pos) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

fn on_segment(a: Pos, b: Pos, p: Pos) -> bool {
    cross(a, b, p) == 0.0
        && p.0 >= a.0.min(b.0)
        && p.0 <= a.0.max(b.0)
        && p.1 >= a.1.min(b.1)
        && p.1 <= a.1.max(b.1)
}

/// Whether two segments share a position (touching included).
fn segments_meet(a: Pos, b: Pos, c: Pos, d: Pos) -> bool {
    segments_cross(a, b, c, d)
        || on_segment(a, b, c)
        || on_segment(a, b, d)
        || on_segment(c, d, a)
        || on_segment(c, d, b)
}

/// Whether two segments cross at a single point inside both (touching excluded).
fn segments_cross(a: Pos, b: Pos, c: Pos, d: Pos) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
}

/// Ray casting over the outer ring and the holes.
fn in_polygon(rings: &[Vec<Pos>], p: Pos) -> Side {
    let mut inside = false;
    for (i, ring) in rings.iter().enumerate() {
        let mut crossings = false;
        for w in ring.windows(2) {
            let (a, b) = (w[0], w[1]);
            if on_segment(a, b, p) {
                return Side::Boundary;
            }
            if (a.1 > p.1) != (b.1 > p.1) && p.0 < (b.0 - a.0) * (p.1 - a.1) / (b.1 - a.1) + a.0 {
                crossings = !crossings;
            }
        }
        if i == 0 {
            if !crossings {
                return Side::Outside;
            }
            inside = true;
        } else if crossings {
            // In a hole.
            return Side::Outside;
        }
    }
    if inside { Side::Inside } else { Side::Outside }
}

fn check_pos(lon: f64, lat: f64) -> Result<Pos, GeoError> {
    if !lon.is_finite() || !lat.is_finite() || lon.abs() > 180.0 || lat.abs() > 90.0 {
        return err(format!("position ({lon}, {lat}) is not a WGS 84 longitude and latitude"));
    }
    Ok((lon, lat))
}

fn json_list(v: &serde_json::Value) -> Result<&Vec<serde_json::Value>, GeoError> {
    v.as_array().ok_or_else(|| GeoError("GeoJSON coordinates must be arrays".into()))
}

fn json_pos(v: &serde_json::Value) -> Result<Pos, GeoError> {
    let a = json_list(v)?;
    match (a.first().and_then(|x| x.as_f64()), a.get(1).and_then(|x| x.as_f64()), a.len()) {
        (Some(lon), Some(lat), 2 | 3) => check_pos(lon, lat),
        _ => err("a GeoJSON position is [longitude, latitude] (and an optional altitude)"),
    }
}

fn json_line(v: &serde_json::Value, min: usize, budget: &mut usize) -> Result<Vec<Pos>, GeoError> {
    let a = json_list(v)?;
    take(budget, a.len())?;
    let line: Vec<Pos> = a.iter().map(json_pos).collect::<Result<_, _>>()?;
    if line.len() < min {
        return err(format!("a GeoJSON line needs at least {min} positions"));
    }
    Ok(line)
}

fn json_polygon(v: &serde_json::Value, budget: &mut usize) -> Result<Vec<Vec<Pos>>, GeoError> {
    let rings: Vec<Vec<Pos>> =
        json_list(v)?.iter().map(|r| json_line(r, 4, budget)).collect::<Result<_, _>>()?;
    check_rings(rings)
}

fn check_rings(rings: Vec<Vec<Pos>>) -> Result<Vec<Vec<Pos>>, GeoError> {
    if rings.is_empty() {
        return err("a polygon needs an outer ring");
    }
    for r in &rings {
        if r.len() < 4 || r.first() != r.last() {
            return err("a polygon's ring needs at least 4 positions, the last equal to the first");
        }
    }
    Ok(rings)
}

fn take(budget: &mut usize, n: usize) -> Result<(), GeoError> {
    *budget = budget
        .checked_sub(n)
        .ok_or_else(|| GeoError(format!("geometry has more than {MAX_VERTICES} positions")))?;
    Ok(())
}

/// A WKT reader.
struct Wkt<'a> {
    s: &'a [u8],
    pos: usize,
    budget: usize,
}

impl Wkt<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), GeoError> {
        self.ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            return Ok(());
        }
        err(format!("expected '{}' at position {} of the WKT", c as char, self.pos))
    }

    fn peek(&mut self, c: u8) -> bool {
        self.ws();
        self.s.get(self.pos) == Some(&c)
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.pos]).to_ascii_uppercase()
    }

    fn number(&mut self) -> Result<f64, GeoError> {
        self.ws();
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c)) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or_else(|| GeoError(format!("expected a number at position {start} of the WKT")))
    }

    fn pos(&mut self) -> Result<Pos, GeoError> {
        take(&mut self.budget, 1)?;
        let (lon, lat) = (self.number()?, self.number()?);
        self.ws();
        if self.s.get(self.pos).is_some_and(|c| c.is_ascii_digit() || b"+-.".contains(c)) {
            self.number()?; // altitude
        }
        check_pos(lon, lat)
    }

    /// `(x y, x y, …)`; with `bare_points`, `((x y), (x y))` too (MULTIPOINT).
    fn line(&mut self, bare_points: bool) -> Result<Vec<Pos>, GeoError> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        loop {
            if bare_points && self.peek(b'(') {
                self.expect(b'(')?;
                out.push(self.pos()?);
                self.expect(b')')?;
            } else {
                out.push(self.pos()?);
            }
            if self.peek(b',') {
                self.pos += 1;
                continue;
            }
            self.expect(b')')?;
            return Ok(out);
        }
    }

    fn lines(&mut self) -> Result<Vec<Vec<Pos>>, GeoError> {
        self.expect(b'(')?;
        let mut out = vec![self.line(false)?];
        while self.peek(b',') {
            self.pos += 1;
            out.push(self.line(false)?);
        }
        self.expect(b')')?;
        Ok(out)
    }

    fn geometry(&mut self) -> Result<Geometry, GeoError> {
        let kind = self.word();
        let kind = kind
            .strip_suffix('Z')
            .filter(|k| !k.is_empty() && kind != "Z")
            .map_or(kind.clone(), str::to_owned);
        let _ = self.word(); // a separate "Z"
        Ok(match kind.as_str() {
            "POINT" => {
                self.expect(b'(')?;
                let p = self.pos()?;
                self.expect(b')')?;
                Geometry::Point(p)
            }
            "MULTIPOINT" => Geometry::MultiPoint(self.line(true)?),
            "LINESTRING" => {
                let l = self.line(false)?;
                if l.len() < 2 {
                    return err("a LINESTRING needs at least 2 positions");
                }
                Geometry::LineString(l)
            }
            "MULTILINESTRING" => Geometry::MultiLineString(self.lines()?),
            "POLYGON" => Geometry::Polygon(check_rings(self.lines()?)?),
            "MULTIPOLYGON" => {
                self.expect(b'(')?;
                let mut out = vec![check_rings(self.lines()?)?];
                while self.peek(b',') {
                    self.pos += 1;
                    out.push(check_rings(self.lines()?)?);
                }
                self.expect(b')')?;
                Geometry::MultiPolygon(out)
            }
            "" => return err("expected a WKT geometry (POINT, LINESTRING, POLYGON, MULTI…)"),
            other => return err(format!("unsupported WKT geometry {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkt(s: &str) -> Geometry {
        Geometry::from_wkt(s).unwrap()
    }

    const SQUARE: &str = "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (4 4, 6 4, 6 6, 4 6, 4 4))";

    #[test]
    fn points_in_a_polygon_with_a_hole() {
        let sq = wkt(SQUARE);
        assert!(wkt("POINT (1 1)").within(&sq));
        assert!(!wkt("POINT (5 5)").within(&sq), "in the hole");
        assert!(!wkt("POINT (0 5)").within(&sq), "on the boundary only");
        assert!(wkt("POINT (0 5)").intersects(&sq));
        assert!(!wkt("POINT (11 5)").intersects(&sq));
        assert!(!wkt("POINT(5 5)").intersects(&sq));
    }

    #[test]
    fn lines_and_polygons() {
        let sq = wkt(SQUARE);
        // Crosses the square without a vertex inside it.
        let through = wkt("LINESTRING (-1 2, 11 2)");
        assert!(through.intersects(&sq));
        assert!(!through.within(&sq));
        assert!(wkt("LINESTRING (1 1, 2 2)").within(&sq));
        // Both ends inside, but it passes through the hole: it crosses the hole's boundary.
        assert!(!wkt("LINESTRING (2 5, 8 5)").within(&sq));
        let far = wkt("POLYGON ((20 20, 30 20, 30 30, 20 20))");
        assert!(!far.intersects(&sq));
        assert!((far.distance(&sq) - (200f64).sqrt()).abs() < 1e-9);
        let overlapping = wkt("POLYGON ((8 8, 12 8, 12 12, 8 12, 8 8))");
        assert!(overlapping.intersects(&sq) && !overlapping.within(&sq));
        assert!(wkt("POLYGON ((1 1, 2 1, 2 2, 1 1))").within(&sq));
        assert!(sq.equals(&sq.clone()));
    }

    #[test]
    fn distances() {
        let a = wkt("POINT (0 0)");
        assert_eq!(a.distance(&wkt("POINT (3 4)")), 5.0);
        assert_eq!(a.distance(&wkt("LINESTRING (-1 1, 1 1)")), 1.0);
        // One degree of latitude is 111.195 km on the mean sphere.
        let d = wkt("POINT (5.4474 43.5297)").distance_m(&wkt("POINT (5.4474 44.5297)"));
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        // Along the parallel of 43.5° N, one degree of longitude is R·cos(43.5°)·π/180
        // = 6,371,008.8 × 0.725374 × 0.0174533 = 80,658 m.
        let d = wkt("POINT (5 43.5)").distance_m(&wkt("POINT (6 43.5)"));
        assert!((d - 80_658.0).abs() < 2.0, "{d}");
    }

    #[test]
    fn geojson_and_wkt_agree() {
        let j: serde_json::Value = serde_json::json!({"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]]});
        assert_eq!(Geometry::from_geojson(&j).unwrap(), wkt(SQUARE));
        assert_eq!(Geometry::from_geojson(&wkt(SQUARE).to_geojson()).unwrap(), wkt(SQUARE));
        let f = serde_json::json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.4, 43.5]}});
        assert_eq!(Geometry::from_geojson(&f).unwrap(), Geometry::Point((5.4, 43.5)));
        assert_eq!(wkt("MULTIPOINT ((1 2), (3 4))"), wkt("MULTIPOINT (1 2, 3 4)"));
        assert_eq!(wkt("POINT Z (1 2 3)"), Geometry::Point((1.0, 2.0)));
    }

    #[test]
    fn garbage_is_refused_by_name() {
        for (s, why) in [
            ("", "expected a WKT geometry"),
            ("CIRCLE (1 2)", "unsupported WKT geometry CIRCLE"),
            ("POINT (1)", "expected a number"),
            ("POINT (200 2)", "not a WGS 84"),
            ("POLYGON ((0 0, 1 0, 1 1))", "at least 4 positions"),
            ("POINT (1 2) x", "unexpected text"),
            ("LINESTRING (1 2)", "at least 2 positions"),
        ] {
            let e = Geometry::from_wkt(s).unwrap_err().0;
            assert!(e.contains(why), "{s:?}: {e}");
        }
        let big = format!("LINESTRING ({})", vec!["1 2"; MAX_VERTICES + 1].join(","));
        assert!(Geometry::from_wkt(&big).unwrap_err().0.contains("more than 10000 positions"));
        let j = serde_json::json!({"type": "Point", "coordinates": [1, "x"]});
        assert!(Geometry::from_geojson(&j).is_err());
    }

    proptest::proptest! {
        #[test]
        fn wkt_never_panics(s in "\\PC{0,60}") {
            let _ = Geometry::from_wkt(&s);
        }

        #[test]
        fn wkt_shaped_input_never_panics(s in "(POINT|POLYGON|MULTIPOINT|LINESTRING|MULTIPOLYGON)? ?[(), 0-9.eE+-]{0,60}") {
            if let Ok(g) = Geometry::from_wkt(&s) {
                let p = Geometry::Point((1.0, 1.0));
                let _ = (g.intersects(&p), g.within(&p), p.within(&g), g.distance(&p));
            }
        }
    }
}
