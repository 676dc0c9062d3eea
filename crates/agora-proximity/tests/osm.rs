//! OpenStreetMap extracts read into the expected walking network: OSM XML written here, and the
//! same quarter encoded as PBF by libosmium (`fixtures/make_fixtures.py`) three ways; shortest
//! walks checked against a plain Dijkstra written in this test; corrupt files refused by name.

use agora_proximity::network::Network;
use agora_proximity::osm;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

/// The network's segments as coordinates (rounded to 1e-7°) and lengths, sorted: comparable
/// whatever the node numbering.
type Shape = Vec<((i64, i64), (i64, i64), i64)>;

fn shape(net: &Network) -> Shape {
    let key = |p: (f64, f64)| ((p.0 * 1e7).round() as i64, (p.1 * 1e7).round() as i64);
    let mut v: Vec<_> = net
        .edges()
        .iter()
        .map(|&(a, b, m)| {
            let (pa, pb) = (key(net.point(a)), key(net.point(b)));
            (pa.min(pb), pa.max(pb), (f64::from(m) * 100.0).round() as i64)
        })
        .collect();
    v.sort_unstable();
    v
}

/// Dijkstra on a dense matrix, O(n²), independent of the crate's heap-based one.
fn plain_dijkstra(n: usize, edges: &[(u32, u32, f32)], from: usize) -> Vec<f64> {
    let mut w = vec![vec![f64::INFINITY; n]; n];
    for &(a, b, m) in edges {
        let m = f64::from(m);
        w[a as usize][b as usize] = w[a as usize][b as usize].min(m);
        w[b as usize][a as usize] = w[b as usize][a as usize].min(m);
    }
    let mut dist = vec![f64::INFINITY; n];
    let mut done = vec![false; n];
    dist[from] = 0.0;
    for _ in 0..n {
        let Some(u) = (0..n)
            .filter(|i| !done[*i] && dist[*i].is_finite())
            .min_by(|a, b| dist[*a].total_cmp(&dist[*b]))
        else {
            break;
        };
        done[u] = true;
        for v in 0..n {
            if dist[u] + w[u][v] < dist[v] {
                dist[v] = dist[u] + w[u][v];
            }
        }
    }
    dist
}

#[test]
fn an_osm_xml_file_written_here_gives_the_expected_graph() {
    // A one-way street A→B→C, a footway C–D, a motorway D–E, a private drive B–F, a cycleway
    // C–G, and a way whose node H is not in the file.
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
  <node id="1" lat="43.5000000" lon="5.4000000"/>
  <node id="2" lat="43.5000000" lon="5.4010000"/>
  <node id="3" lat="43.5000000" lon="5.4020000"><tag k="highway" v="crossing"/></node>
  <node id="4" lat="43.5010000" lon="5.4020000"/>
  <node id="5" lat="43.5020000" lon="5.4020000"/>
  <node id="6" lat="43.4990000" lon="5.4010000"/>
  <node id="7" lat="43.4990000" lon="5.4030000"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="footway"/></way>
  <way id="12"><nd ref="4"/><nd ref="5"/><tag k="highway" v="motorway"/></way>
  <way id="13"><nd ref="2"/><nd ref="6"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="14"><nd ref="3"/><nd ref="7"/><tag k="highway" v="cycleway"/></way>
  <way id="15"><nd ref="4"/><nd ref="99"/><tag k="highway" v="path"/></way>
</osm>"#;
    let dir = std::env::temp_dir().join(format!("agora-osm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.osm");
    std::fs::write(&path, xml).unwrap();
    let (net, stats) = osm::read(&std::fs::read(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!((stats.nodes, stats.ways, stats.walkable_ways, stats.missing_nodes), (7, 6, 3, 1));
    // Nodes 1, 2, 3, 4 and the segments 1–2, 2–3, 3–4: no motorway, private drive or cycleway.
    assert_eq!((net.nodes(), net.segments(), net.islands()), (4, 3, 0));
    let find = |lon: f64, lat: f64| net.attach(lon, lat, 1.0).unwrap().0;
    let (a, c, d) = (find(5.4, 43.5), find(5.402, 43.5), find(5.402, 43.501));
    // The one-way street is walked against its direction: from C back to A.
    let (dist, _) = net.distances(&[(c, 0.0)], f64::INFINITY);
    let ac = 2.0
        * 6_371_008.8
        * ((0.001f64.to_radians() / 2.0).sin() * 43.5f64.to_radians().cos()).asin();
    assert!((dist[a as usize] - 2.0 * ac).abs() < 0.01, "{} vs {}", dist[a as usize], 2.0 * ac);
    assert!((dist[d as usize] - 111.19).abs() < 0.1, "{}", dist[d as usize]);
}

#[test]
fn the_fixture_quarter_is_a_6_by_6_grid_and_walks_are_the_plain_dijkstras() {
    let (net, stats) = osm::read(&fixture("quarter.osm")).unwrap();
    assert_eq!((net.nodes(), net.segments(), net.islands()), (36, 60, 0));
    assert_eq!((stats.ways, stats.walkable_ways), (14, 12));
    for from in [0u32, 7, 35] {
        let (dist, _) = net.distances(&[(from, 0.0)], f64::INFINITY);
        let want = plain_dijkstra(net.nodes(), net.edges(), from as usize);
        for (got, want) in dist.iter().zip(&want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
    // Corner to corner: ten 80 m blocks.
    let sw = net.attach(5.447, 43.527, 1.0).unwrap().0;
    let (dist, _) = net.distances(&[(sw, 0.0)], f64::INFINITY);
    let far = dist.iter().copied().fold(0.0, f64::max);
    assert!((far - 800.0).abs() < 0.5, "{far}");
}

#[test]
fn the_pbf_encodings_written_by_libosmium_give_the_same_network_as_the_xml() {
    let (xml, _) = osm::read(&fixture("quarter.osm")).unwrap();
    for name in ["quarter.osm.pbf", "quarter-plain.osm.pbf", "quarter-raw.osm.pbf"] {
        let (pbf, stats) = osm::read(&fixture(name)).unwrap();
        assert_eq!(shape(&pbf), shape(&xml), "{name}");
        assert_eq!((stats.nodes, stats.ways, stats.walkable_ways), (39, 14, 12), "{name}");
    }
}

#[test]
fn corrupt_extracts_are_refused_with_what_is_wrong() {
    let pbf = fixture("quarter.osm.pbf");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut short", pbf[..pbf.len() - 40].to_vec()),
        ("empty", Vec::new()),
        ("random", (0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("a text file", b"hello, this is not a map\n".to_vec()),
        ("XML not OSM", b"<gpx><trk/></gpx>".to_vec()),
        ("XML cut short", fixture("quarter.osm")[..3000].to_vec()),
    ];
    for (what, bytes) in cases {
        let err = osm::read(&bytes).expect_err(what).to_string();
        assert!(
            err.starts_with("OSM PBF") || err.starts_with("OSM XML") || err.contains("walkable"),
            "{what}: {err}"
        );
    }
    // Every byte of the uncompressed file flipped in turn (zlib's checksum would refuse most
    // flips of the other before the decoder sees them): an error or a network, never a panic;
    // and some flips must reach the decoder's own checks.
    let raw = fixture("quarter-raw.osm.pbf");
    let mut refused = 0;
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] ^= 0x5a;
        if let Err(e) = osm::read(&bad) {
            assert!(
                e.to_string().starts_with("OSM PBF")
                    || e.to_string().contains("walkable")
                    || e.to_string().starts_with("node"),
                "{e}"
            );
            refused += 1;
        }
    }
    assert!(refused > raw.len() / 10, "{refused} of {} flips refused", raw.len());
}

#[test]
fn projections_agree_with_proj_within_a_centimetre() {
    let text = String::from_utf8(fixture("projections.csv")).unwrap();
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let (lon, lat) = if f[0] == 2154.0 {
            agora_proximity::project::lambert93_to_wgs84(f[1], f[2])
        } else {
            agora_proximity::project::laea_to_wgs84(f[1], f[2])
        };
        assert!((lon - f[3]).abs() < 1e-7 && (lat - f[4]).abs() < 1e-7, "{line}: {lon} {lat}");
        if f[0] == 3035.0 {
            let (x, y) = agora_proximity::project::wgs84_to_laea(f[3], f[4]);
            assert!((x - f[1]).abs() < 0.01 && (y - f[2]).abs() < 0.01, "{line}: {x} {y}");
        }
        n += 1;
    }
    assert_eq!(n, 13);
}
