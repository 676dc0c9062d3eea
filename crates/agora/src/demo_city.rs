//! A synthetic town for the 15-minute city — streets, facilities, population, neighbourhoods —
//! written in the formats a city imports (OSM XML, INSEE's BPE and Filosofi CSV, GeoJSON), so
//! that the demo and the benchmark go through the real imports. Nothing is downloaded: every
//! position is a pure function of the seed.
//!
//! The streets are a jittered grid with some blocks missing, a main road every fifth line (one
//! way, walkable both ways), a motorway that pedestrians may not use and footpaths across some
//! blocks. Facilities are denser towards the centre; one sector has no pharmacy, so that the gaps
//! show. People live everywhere, more in the centre.

use std::fmt::Write as _;

/// What to build.
#[derive(Debug, Clone)]
pub struct CitySpec {
    /// The centre (longitude, latitude).
    pub centre: (f64, f64),
    /// Street nodes along each side of the grid.
    pub side: usize,
    /// Metres between two streets.
    pub spacing_m: f64,
    /// Facilities to place.
    pub facilities: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Communes: (INSEE code, longitude east of which the town is that commune's); the first
    /// holds everything west of the others.
    pub communes: Vec<(String, f64)>,
}

/// The files of the town.
#[derive(Debug, Clone)]
pub struct CityFiles {
    /// OSM XML of the streets.
    pub osm_xml: Vec<u8>,
    /// INSEE BPE CSV of the facilities.
    pub bpe_csv: String,
    /// GeoJSON of the parks (leisure).
    pub parks_geojson: String,
    /// INSEE Filosofi 200 m squares CSV.
    pub filosofi_csv: String,
    /// GeoJSON of the neighbourhoods, per commune.
    pub areas_geojson: Vec<(String, String)>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(key: u64) -> f64 {
    (mix(key) >> 11) as f64 / (1u64 << 53) as f64
}

/// BPE codes of the town's facilities and their shares.
const KINDS: [(&str, f64); 21] = [
    ("B203", 0.14),
    ("B202", 0.07),
    ("B105", 0.03),
    ("A501", 0.08),
    ("A504", 0.10),
    ("A203", 0.03),
    ("D201", 0.09),
    ("D301", 0.05),
    ("D221", 0.04),
    ("D231", 0.05),
    ("C101", 0.03),
    ("C104", 0.03),
    ("C201", 0.01),
    ("D502", 0.02),
    ("A206", 0.01),
    ("F121", 0.02),
    ("F111", 0.04),
    ("F307", 0.01),
    ("F303", 0.01),
    ("E107", 0.01),
    ("G102", 0.13),
];

impl CitySpec {
    fn metres_per_degree(&self) -> (f64, f64) {
        (111_195.0 * self.centre.1.to_radians().cos(), 111_195.0)
    }

    /// A point `dx`, `dy` metres east and north of the centre.
    pub fn at(&self, dx: f64, dy: f64) -> (f64, f64) {
        let (kx, ky) = self.metres_per_degree();
        (self.centre.0 + dx / kx, self.centre.1 + dy / ky)
    }

    fn half(&self) -> f64 {
        (self.side as f64 - 1.0) * self.spacing_m / 2.0
    }

    /// Half the side of the centre neighbourhood, metres.
    pub fn centre_half(&self) -> f64 {
        (self.half() + self.spacing_m) * 0.35
    }

    fn commune_at(&self, lon: f64) -> &str {
        self.communes
            .iter()
            .rev()
            .find(|(_, east_of)| lon >= *east_of)
            .or(self.communes.first())
            .map(|c| c.0.as_str())
            .unwrap_or("")
    }

    /// The town's files.
    pub fn build(&self) -> CityFiles {
        CityFiles {
            osm_xml: self.streets(),
            bpe_csv: self.bpe(),
            parks_geojson: self.parks(),
            filosofi_csv: self.population(),
            areas_geojson: self.areas(),
        }
    }

    fn streets(&self) -> Vec<u8> {
        let n = self.side;
        let id = |i: usize, j: usize| (i * n + j + 1) as u64;
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<osm version=\"0.6\" generator=\"agora demo\">\n",
        );
        let half = self.half();
        for i in 0..n {
            for j in 0..n {
                let k = self.seed ^ id(i, j);
                let jx = (unit(k ^ 1) - 0.5) * 0.2 * self.spacing_m;
                let jy = (unit(k ^ 2) - 0.5) * 0.2 * self.spacing_m;
                let (lon, lat) = self.at(
                    j as f64 * self.spacing_m - half + jx,
                    i as f64 * self.spacing_m - half + jy,
                );
                let _ =
                    writeln!(xml, "<node id=\"{}\" lat=\"{lat:.7}\" lon=\"{lon:.7}\"/>", id(i, j));
            }
        }
        let mut way = 1u64;
        let mut segment = |xml: &mut String, a: u64, b: u64, tags: &str| {
            let _ =
                writeln!(xml, "<way id=\"{way}\"><nd ref=\"{a}\"/><nd ref=\"{b}\"/>{tags}</way>");
            way += 1;
        };
        for i in 0..n {
            for j in 0..n {
                for (di, dj, salt) in [(0usize, 1usize, 3u64), (1, 0, 4)] {
                    let (i2, j2) = (i + di, j + dj);
                    if i2 >= n || j2 >= n {
                        continue;
                    }
                    let main = if di == 0 { i % 5 == 0 } else { j % 5 == 0 };
                    // Some blocks are joined: a street missing (never a main one).
                    if !main && unit(self.seed ^ id(i, j) ^ (salt << 40)) < 0.08 {
                        continue;
                    }
                    let tags = if main {
                        "<tag k=\"highway\" v=\"primary\"/><tag k=\"oneway\" v=\"yes\"/>"
                    } else {
                        "<tag k=\"highway\" v=\"residential\"/>"
                    };
                    segment(&mut xml, id(i, j), id(i2, j2), tags);
                }
                // A footpath across one block in six.
                if i + 1 < n && j + 1 < n && unit(self.seed ^ id(i, j) ^ (5 << 40)) < 0.16 {
                    segment(
                        &mut xml,
                        id(i, j),
                        id(i + 1, j + 1),
                        "<tag k=\"highway\" v=\"footway\"/>",
                    );
                }
            }
        }
        // A motorway along the south edge, and a private drive: neither walkable.
        let base = (n * n + 1) as u64;
        let (w, s) = self.at(-half - 400.0, -half - 300.0);
        let (e, _) = self.at(half + 400.0, -half - 300.0);
        let _ = writeln!(xml, "<node id=\"{base}\" lat=\"{s:.7}\" lon=\"{w:.7}\"/>");
        let _ = writeln!(xml, "<node id=\"{}\" lat=\"{s:.7}\" lon=\"{e:.7}\"/>", base + 1);
        segment(&mut xml, base, base + 1, "<tag k=\"highway\" v=\"motorway\"/>");
        segment(
            &mut xml,
            id(0, 0),
            base,
            "<tag k=\"highway\" v=\"service\"/><tag k=\"access\" v=\"private\"/>",
        );
        xml.push_str("</osm>\n");
        xml.into_bytes()
    }

    fn bpe(&self) -> String {
        let mut out = String::from("AN;DEPCOM;TYPEQU;NOMRS;LONGITUDE;LATITUDE;QUALITE_XY\n");
        let half = self.half();
        let total: f64 = KINDS.iter().map(|k| k.1).sum();
        for f in 0..self.facilities {
            let k = self.seed ^ 0xFAC ^ (f as u64) << 8;
            let mut pick = unit(k ^ 1) * total;
            let code = KINDS.iter().find(|(_, w)| {
                pick -= w;
                pick < 0.0
            });
            let code = code.map_or("B203", |c| c.0);
            // Denser towards the centre.
            let r = half * unit(k ^ 2).powf(0.8);
            let a = std::f64::consts::TAU * unit(k ^ 3);
            let (dx, dy) = (r * a.cos(), r * a.sin());
            // No pharmacy in the south-east quarter beyond 600 m: a gap to find.
            if code == "D301" && dx > 600.0 && dy < -600.0 {
                continue;
            }
            let (lon, lat) = self.at(dx, dy);
            let _ = writeln!(out, "2024;{};{code};;{lon:.6};{lat:.6};Bonne", self.commune_at(lon));
        }
        // Two equipments without a position, as INSEE ships some.
        let _ = writeln!(out, "2024;{};B203;;;;Non géolocalisé", self.communes[0].0);
        let _ = writeln!(out, "2024;{};D201;;;;Non géolocalisé", self.communes[0].0);
        out
    }

    fn parks(&self) -> String {
        let half = self.half();
        let mut features = Vec::new();
        for p in 0..(self.side / 6).max(2) {
            let k = self.seed ^ 0xBA4C ^ (p as u64) << 8;
            let (cx, cy) = ((unit(k ^ 1) - 0.5) * 1.6 * half, (unit(k ^ 2) - 0.5) * 1.6 * half);
            let s = self.spacing_m * (0.5 + unit(k ^ 3));
            let ring: Vec<[f64; 2]> =
                [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0)]
                    .iter()
                    .map(|(a, b)| {
                        let (lon, lat) = self.at(cx + a * s, cy + b * s);
                        [lon, lat]
                    })
                    .collect();
            features.push(serde_json::json!({"type": "Feature",
                "properties": {"theme": "leisure", "kind": "parc", "name": format!("Parc {}", p + 1)},
                "geometry": {"type": "Polygon", "coordinates": [ring]}}));
        }
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
    }

    fn population(&self) -> String {
        let half = self.half();
        let (w, s) = self.at(-half, -half);
        let (e, n) = self.at(half, half);
        let (x0, y0) = agora_proximity::project::wgs84_to_laea(w, s);
        let (x1, y1) = agora_proximity::project::wgs84_to_laea(e, n);
        let mut out = String::from("Idcar_200m;Idcar_1km;I_est_200;lcog_geo;Ind;Men\n");
        let mut y = (y0 / 200.0).ceil() * 200.0;
        while y + 200.0 <= y1 {
            let mut x = (x0 / 200.0).ceil() * 200.0;
            while x + 200.0 <= x1 {
                let k = self.seed ^ ((x as u64) << 20) ^ (y as u64);
                let (lon, lat) = agora_proximity::project::laea_to_wgs84(x + 100.0, y + 100.0);
                let d = agora_proximity::project::haversine_m((lon, lat), self.centre);
                if unit(k ^ 7) > 0.1 {
                    let people = (140.0 * (-d / 1800.0).exp() * (0.4 + unit(k ^ 8)) * 10.0).round()
                        / 10.0
                        + 3.0;
                    let _ = writeln!(
                        out,
                        "CRS3035RES200mN{y:.0}E{x:.0};CRS3035RES1000mN{:.0}E{:.0};0;{};{people:.1};{:.1}",
                        (y / 1000.0).floor() * 1000.0,
                        (x / 1000.0).floor() * 1000.0,
                        self.commune_at(lon),
                        people / 2.2
                    );
                }
                x += 200.0;
            }
            y += 200.0;
        }
        out
    }

    fn areas(&self) -> Vec<(String, String)> {
        let half = self.half() + self.spacing_m;
        let names = ["Centre", "Nord", "Sud", "Ouest", "Est"];
        let rect = |w: f64, s: f64, e: f64, n: f64| {
            let p = |dx: f64, dy: f64| {
                let (lon, lat) = self.at(dx, dy);
                [lon, lat]
            };
            serde_json::json!({"type": "Polygon", "coordinates": [[p(w, s), p(e, s), p(e, n), p(w, n), p(w, s)]]})
        };
        let c = self.centre_half();
        // A centre square; north and south of it up to the centre's east edge; west of it; and
        // everything east of the centre's east edge (where the second commune begins).
        let shapes = [
            rect(-c, -c, c, c),
            rect(-half, c, c, half),
            rect(-half, -half, c, -c),
            rect(-half, -c, -c, c),
            rect(c, -half, half, half),
        ];
        let mids = [
            (0.0, 0.0),
            ((c - half) / 2.0, half * 0.7),
            ((c - half) / 2.0, -half * 0.7),
            (-half * 0.7, 0.0),
            (half * 0.7, 0.0),
        ];
        let mut by_commune: Vec<(String, Vec<serde_json::Value>)> =
            self.communes.iter().map(|(c, _)| (c.clone(), Vec::new())).collect();
        for (i, ((name, g), mid)) in names.iter().zip(shapes).zip(mids).enumerate() {
            let (lon, _) = self.at(mid.0, mid.1);
            let commune = self.commune_at(lon).to_string();
            if let Some(list) = by_commune.iter_mut().find(|(c, _)| *c == commune) {
                list.1.push(serde_json::json!({"type": "Feature",
                    "properties": {"code": format!("{}", i + 1), "name": name, "commune": commune},
                    "geometry": g}));
            }
        }
        by_commune
            .into_iter()
            .filter(|(_, f)| !f.is_empty())
            .map(|(c, f)| {
                (c, serde_json::json!({"type": "FeatureCollection", "features": f}).to_string())
            })
            .collect()
    }
}

/// The demo's town: 45 streets a side, 110 m apart, around Aix's centre, its eastern part in Le
/// Tholonet (the Vallée de la Torse), with 320 facilities.
pub fn demo_spec() -> CitySpec {
    let mut spec = CitySpec {
        centre: (5.4474, 43.5290),
        side: 45,
        spacing_m: 110.0,
        facilities: 320,
        seed: 13001,
        communes: vec![("13001".into(), -180.0)],
    };
    let split = spec.at(spec.centre_half(), 0.0).0;
    spec.communes.push(("13109".into(), split));
    spec
}

/// Imports the town into each of its communes, through the real import paths.
/// Returns each commune's facilities kept.
pub async fn import(
    state: &agora_api::AppState,
    spec: &CitySpec,
) -> anyhow::Result<Vec<(String, usize)>> {
    let files = spec.build();
    let by = "demo";
    let now = state.clock.now();
    let p = &state.proximity;
    let mut facilities = Vec::new();
    for (insee, _) in &spec.communes {
        p.import_network(insee, files.osm_xml.clone(), by, now).await?;
        let l = p
            .import_facilities(
                insee,
                "bpe",
                agora_query::proximity::Format::Bpe,
                files.bpe_csv.as_bytes(),
                by,
                now,
            )
            .await?;
        facilities.push((insee.clone(), l.items as usize));
        p.import_facilities(
            insee,
            "parcs",
            agora_query::proximity::Format::GeoJson,
            files.parks_geojson.as_bytes(),
            by,
            now,
        )
        .await?;
        p.import_population(
            insee,
            agora_query::proximity::Format::Filosofi,
            files.filosofi_csv.as_bytes(),
            by,
            now,
        )
        .await?;
        if let Some((_, g)) = files.areas_geojson.iter().find(|(c, _)| c == insee) {
            p.import_areas(insee, g.as_bytes(), by, now).await?;
        }
    }
    Ok(facilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_town_parses_and_has_its_gap() {
        let spec = demo_spec();
        let f = spec.build();
        let (net, stats) = agora_proximity::osm::read(&f.osm_xml).unwrap();
        assert!(net.segments() > 3000, "{}", net.segments());
        assert_eq!(stats.walkable_ways + 2, stats.ways);
        let bpe = agora_proximity::facilities::read_bpe(f.bpe_csv.as_bytes(), &Default::default())
            .unwrap();
        assert_eq!(bpe.not_located, 2);
        assert!(bpe.ignored > 0);
        let squares =
            agora_proximity::population::read_filosofi(f.filosofi_csv.as_bytes()).unwrap();
        assert!(squares.iter().any(|s| s.commune.as_deref() == Some("13109")));
        assert_eq!(f.areas_geojson.len(), 2);
        for (_, g) in &f.areas_geojson {
            agora_proximity::population::read_areas(g.as_bytes()).unwrap();
        }
    }
}
