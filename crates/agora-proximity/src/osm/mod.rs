//! OpenStreetMap extracts read into a walking network: the PBF format ([`pbf`]) and OSM XML
//! ([`xml`]) both feed one [`Collector`], which keeps every node's position and the ways a
//! pedestrian may walk ([`walkable`]), then builds the [`Network`].
//!
//! What a pedestrian may walk, following OSM's access tags and France's defaults: any `highway`
//! except motorways and their links, roads under construction or only proposed, raceways and bus
//! guideways; `foot=no`, `access=no|private` (unless `foot` allows it) and `motorroad=yes` close a
//! way; cycleways and bridleways only where `foot` allows. One-way streets are walkable both
//! ways: `oneway` binds vehicles, not pedestrians.

pub mod pbf;
pub mod xml;

use crate::network::Network;
use crate::{Error, Result};

/// Whether pedestrians may use a way with these tags (see the module's text).
pub fn walkable<'a>(tag: impl Fn(&str) -> Option<&'a str>) -> bool {
    let Some(highway) = tag("highway") else { return false };
    let foot = tag("foot");
    if matches!(foot, Some("no" | "private" | "use_sidepath")) {
        return false;
    }
    let foot_allowed = matches!(foot, Some("yes" | "designated" | "permissive" | "destination"));
    if matches!(
        highway,
        "motorway"
            | "motorway_link"
            | "construction"
            | "proposed"
            | "planned"
            | "abandoned"
            | "razed"
            | "raceway"
            | "bus_guideway"
            | "busway"
            | "escape"
    ) {
        return false;
    }
    if foot_allowed {
        return true;
    }
    if matches!(tag("access"), Some("no" | "private")) || tag("motorroad") == Some("yes") {
        return false;
    }
    !matches!(highway, "cycleway" | "bridleway")
}

/// What an import read and kept, said with the network.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OsmStats {
    /// Nodes read.
    pub nodes: u64,
    /// Ways read.
    pub ways: u64,
    /// Ways kept as walkable.
    pub walkable_ways: u64,
    /// References of kept ways to a node absent from the extract (a way leaving the extract): the
    /// way is cut there.
    pub missing_nodes: u64,
}

/// Most nodes an extract may hold: a commune and its surroundings hold a few million (Aix's
/// bounding box about 1.5 M); beyond, the file is a region's and should be cut first. Bounds the
/// memory a small compressed file could claim (24 bytes a node).
pub const MAX_NODES: u64 = 20_000_000;
/// Most node references of kept ways.
pub const MAX_REFS: u64 = 40_000_000;

/// Receives an extract's nodes and ways in any order and builds the walking network.
#[derive(Debug, Default)]
pub struct Collector {
    nodes: Vec<(i64, f64, f64)>,
    sorted: bool,
    ways: Vec<Vec<i64>>,
    refs: u64,
    stats: OsmStats,
}

fn too_big() -> Error {
    Error::invalid(format!(
        "the extract holds more than {MAX_NODES} nodes or {MAX_REFS} references of walkable ways: \
         cut the commune out first (osmium extract -b west,south,east,north)"
    ))
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Collector { sorted: true, ..Default::default() }
    }

    /// A node and its position; refused outside the WGS 84 range.
    pub fn node(&mut self, id: i64, lon: f64, lat: f64) -> Result<()> {
        if !(lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0) {
            return Err(Error::invalid(format!(
                "node {id}: position {lon}, {lat} is not a longitude and latitude"
            )));
        }
        if self.stats.nodes >= MAX_NODES {
            return Err(too_big());
        }
        if let Some(&(last, _, _)) = self.nodes.last()
            && last >= id
        {
            self.sorted = false;
        }
        self.nodes.push((id, lon, lat));
        self.stats.nodes += 1;
        Ok(())
    }

    /// A way, its node references in order, and whether a pedestrian may walk it.
    pub fn way(&mut self, refs: Vec<i64>, walkable: bool) -> Result<()> {
        self.stats.ways += 1;
        if walkable && refs.len() >= 2 {
            self.refs += refs.len() as u64;
            if self.refs > MAX_REFS {
                return Err(too_big());
            }
            self.stats.walkable_ways += 1;
            self.ways.push(refs);
        }
        Ok(())
    }

    /// The walking network of what was read, and what was read.
    pub fn finish(mut self) -> Result<(Network, OsmStats)> {
        if !self.sorted {
            self.nodes.sort_unstable_by_key(|n| n.0);
            self.nodes.dedup_by_key(|n| n.0);
        }
        let find = |id: i64| self.nodes.binary_search_by_key(&id, |n| n.0).ok();
        let mut index = std::collections::HashMap::new();
        let mut points: Vec<(f64, f64)> = Vec::new();
        let mut edges: Vec<(u32, u32)> = Vec::new();
        for refs in &self.ways {
            let mut prev: Option<u32> = None;
            for &r in refs {
                let Some(at) = find(r) else {
                    self.stats.missing_nodes += 1;
                    prev = None;
                    continue;
                };
                let i = *index.entry(r).or_insert_with(|| {
                    points.push((self.nodes[at].1, self.nodes[at].2));
                    (points.len() - 1) as u32
                });
                if let Some(p) = prev
                    && p != i
                {
                    edges.push((p, i));
                }
                prev = Some(i);
            }
        }
        if edges.is_empty() {
            return Err(Error::invalid(
                "the extract has no walkable way with its nodes: is it an OpenStreetMap extract of a town?",
            ));
        }
        Ok((Network::from_edges(points, &edges), self.stats))
    }
}

/// Reads an extract, PBF or XML (told apart by their first bytes), into a walking network.
pub fn read(bytes: &[u8]) -> Result<(Network, OsmStats)> {
    let head = bytes.iter().take(64).copied().find(|b| !b.is_ascii_whitespace());
    if head == Some(b'<') { xml::read(bytes) } else { pbf::read(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
    }

    #[test]
    fn pedestrians_walk_streets_and_paths_not_motorways_or_private_ways() {
        assert!(walkable(tags(&[("highway", "residential"), ("oneway", "yes")])));
        assert!(walkable(tags(&[("highway", "footway")])));
        assert!(walkable(tags(&[("highway", "steps")])));
        assert!(!walkable(tags(&[("highway", "motorway")])));
        assert!(!walkable(tags(&[("highway", "motorway_link")])));
        assert!(!walkable(tags(&[("highway", "service"), ("access", "private")])));
        assert!(walkable(tags(&[("highway", "service"), ("access", "private"), ("foot", "yes")])));
        assert!(!walkable(tags(&[("highway", "primary"), ("foot", "no")])));
        assert!(!walkable(tags(&[("highway", "trunk"), ("motorroad", "yes")])));
        assert!(!walkable(tags(&[("highway", "cycleway")])));
        assert!(walkable(tags(&[("highway", "cycleway"), ("foot", "designated")])));
        assert!(!walkable(tags(&[("building", "yes")])));
    }

    #[test]
    fn ways_cut_at_missing_nodes_keep_their_other_segments() {
        let mut c = Collector::new();
        c.node(3, 5.0, 43.0).unwrap();
        c.node(1, 5.001, 43.0).unwrap();
        c.node(2, 5.002, 43.0).unwrap();
        c.way(vec![1, 2, 99, 3], true).unwrap();
        c.way(vec![1, 3], false).unwrap();
        let (net, stats) = c.finish().unwrap();
        assert_eq!((net.nodes(), net.segments()), (2, 1));
        assert_eq!((stats.ways, stats.walkable_ways, stats.missing_nodes), (2, 1, 1));
        assert!(Collector::new().node(1, 200.0, 0.0).is_err());
    }
}
