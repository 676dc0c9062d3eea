//! The walking network: street segments between OpenStreetMap nodes, walkable both ways, with
//! their length in metres; the points of the map attached to their nearest node; and shortest
//! walking distances (Dijkstra's algorithm from one or many sources at once).
//!
//! Small islands — a footway in a closed courtyard, a path cut by the extract's edge — would
//! strand whatever is attached to them: components with fewer nodes than the smaller of 50 and
//! the largest component are left out at construction, and counted.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::project::haversine_m;
use crate::{Error, Result};

/// Metres of a grid cell of the attachment index.
const CELL_M: f64 = 100.0;

/// A walking network (see the module's text).
#[derive(Debug, Clone)]
pub struct Network {
    points: Vec<(f64, f64)>,
    edges: Vec<(u32, u32, f32)>,
    offsets: Vec<u32>,
    adjacent: Vec<(u32, f32)>,
    islands: usize,
    grid: Grid,
}

#[derive(Debug, Clone, Default)]
struct Grid {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
    cells: HashMap<(i32, i32), Vec<u32>>,
}

impl Grid {
    fn new(points: &[(f64, f64)]) -> Grid {
        let lon0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let lat0 = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let lat_max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let mid = ((lat0 + lat_max) / 2.0).to_radians();
        let mut g =
            Grid { lon0, lat0, kx: 111_320.0 * mid.cos(), ky: 110_574.0, cells: HashMap::new() };
        for (i, p) in points.iter().enumerate() {
            g.cells.entry(g.cell(g.xy(*p))).or_default().push(i as u32);
        }
        g
    }

    fn xy(&self, p: (f64, f64)) -> (f64, f64) {
        ((p.0 - self.lon0) * self.kx, (p.1 - self.lat0) * self.ky)
    }

    fn cell(&self, (x, y): (f64, f64)) -> (i32, i32) {
        ((x / CELL_M).floor() as i32, (y / CELL_M).floor() as i32)
    }
}

#[derive(PartialEq)]
struct Entry(f64, u32);
impl Eq for Entry {}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Network {
    /// The network of these points (longitude, latitude) and segments between them (by index),
    /// islands left out; segments' lengths are great-circle distances.
    pub fn from_edges(points: Vec<(f64, f64)>, edges: &[(u32, u32)]) -> Network {
        let n = points.len();
        // Connected components (union–find).
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn root(parent: &mut [u32], mut i: u32) -> u32 {
            while parent[i as usize] != i {
                parent[i as usize] = parent[parent[i as usize] as usize];
                i = parent[i as usize];
            }
            i
        }
        for &(a, b) in edges {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb) as usize] = ra.min(rb);
            }
        }
        let mut size = vec![0usize; n];
        for i in 0..n as u32 {
            size[root(&mut parent, i) as usize] += 1;
        }
        let largest = size.iter().copied().max().unwrap_or(0);
        let keep_at = largest.min(50);
        let mut renumber = vec![u32::MAX; n];
        let mut kept = Vec::new();
        for i in 0..n as u32 {
            if size[root(&mut parent, i) as usize] >= keep_at {
                renumber[i as usize] = kept.len() as u32;
                kept.push(points[i as usize]);
            }
        }
        let islands = n - kept.len();
        let mut list: Vec<(u32, u32, f32)> = edges
            .iter()
            .filter(|(a, b)| renumber[*a as usize] != u32::MAX && a != b)
            .map(|&(a, b)| {
                let (a, b) = (renumber[a as usize], renumber[b as usize]);
                let m = haversine_m(kept[a as usize], kept[b as usize]) as f32;
                (a.min(b), a.max(b), m)
            })
            .collect();
        list.sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(x.2.total_cmp(&y.2)));
        list.dedup_by(|x, y| x.0 == y.0 && x.1 == y.1);
        Network::from_parts(kept, list, islands)
    }

    fn from_parts(points: Vec<(f64, f64)>, edges: Vec<(u32, u32, f32)>, islands: usize) -> Network {
        let n = points.len();
        let mut degree = vec![0u32; n + 1];
        for &(a, b, _) in &edges {
            degree[a as usize + 1] += 1;
            degree[b as usize + 1] += 1;
        }
        for i in 0..n {
            degree[i + 1] += degree[i];
        }
        let offsets = degree;
        let mut fill = offsets.clone();
        let mut adjacent = vec![(0u32, 0f32); edges.len() * 2];
        for &(a, b, m) in &edges {
            adjacent[fill[a as usize] as usize] = (b, m);
            fill[a as usize] += 1;
            adjacent[fill[b as usize] as usize] = (a, m);
            fill[b as usize] += 1;
        }
        let grid = Grid::new(&points);
        Network { points, edges, offsets, adjacent, islands, grid }
    }

    /// Nodes of the network.
    pub fn nodes(&self) -> usize {
        self.points.len()
    }

    /// Street segments (between two consecutive nodes of a way).
    pub fn segments(&self) -> usize {
        self.edges.len()
    }

    /// Nodes left out as islands.
    pub fn islands(&self) -> usize {
        self.islands
    }

    /// A node's (longitude, latitude).
    pub fn point(&self, node: u32) -> (f64, f64) {
        self.points[node as usize]
    }

    /// The segments: two nodes and the length in metres.
    pub fn edges(&self) -> &[(u32, u32, f32)] {
        &self.edges
    }

    /// A node's neighbours and the segments' lengths.
    pub fn neighbours(&self, node: u32) -> &[(u32, f32)] {
        let (a, b) = (self.offsets[node as usize], self.offsets[node as usize + 1]);
        &self.adjacent[a as usize..b as usize]
    }

    /// The bounding box (west, south, east, north).
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        self.points
            .iter()
            .fold((f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY), |b, p| {
                (b.0.min(p.0), b.1.min(p.1), b.2.max(p.0), b.3.max(p.1))
            })
    }

    /// The node nearest a point and its distance in metres, if one lies within `max_m`.
    pub fn attach(&self, lon: f64, lat: f64, max_m: f64) -> Option<(u32, f64)> {
        let g = &self.grid;
        let xy = g.xy((lon, lat));
        let (cx, cy) = g.cell(xy);
        let rings = (max_m / CELL_M).ceil() as i32 + 1;
        let mut best: Option<(u32, f64)> = None;
        for r in 0..=rings {
            if let Some((_, d)) = best
                && (f64::from(r) - 1.0) * CELL_M > d
            {
                break;
            }
            for dx in -r..=r {
                for dy in -r..=r {
                    if dx.abs() != r && dy.abs() != r {
                        continue;
                    }
                    let Some(list) = g.cells.get(&(cx + dx, cy + dy)) else { continue };
                    for &i in list {
                        let p = g.xy(self.points[i as usize]);
                        let d = ((p.0 - xy.0).powi(2) + (p.1 - xy.1).powi(2)).sqrt();
                        if best.is_none_or(|(bi, bd)| d < bd || (d == bd && i < bi)) {
                            best = Some((i, d));
                        }
                    }
                }
            }
        }
        best.filter(|(_, d)| *d <= max_m)
    }

    /// Shortest walking distance in metres from the nearest of the sources (a node and the metres
    /// already walked to reach it) to every node, and which source it is; nodes farther than
    /// `limit_m` or unreachable are `INFINITY` and `u32::MAX`.
    pub fn distances(&self, sources: &[(u32, f64)], limit_m: f64) -> (Vec<f64>, Vec<u32>) {
        let n = self.points.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut from = vec![u32::MAX; n];
        let mut heap = BinaryHeap::new();
        for (s, &(node, d)) in sources.iter().enumerate() {
            if d < dist[node as usize] && d <= limit_m {
                dist[node as usize] = d;
                from[node as usize] = s as u32;
                heap.push(Entry(d, node));
            }
        }
        while let Some(Entry(d, u)) = heap.pop() {
            if d > dist[u as usize] {
                continue;
            }
            for &(v, m) in self.neighbours(u) {
                let nd = d + f64::from(m);
                if nd < dist[v as usize] && nd <= limit_m {
                    dist[v as usize] = nd;
                    from[v as usize] = from[u as usize];
                    heap.push(Entry(nd, v));
                }
            }
        }
        (dist, from)
    }

    /// The nodes a new source (a node and the metres to it) brings closer than `current`, and
    /// their new distance, within `limit_m`: Dijkstra pruned wherever the new source is not
    /// better, so a what-if costs only the neighbourhood it changes.
    pub fn improvements(
        &self,
        current: &[f64],
        source: (u32, f64),
        limit_m: f64,
    ) -> Vec<(u32, f64)> {
        let mut best: HashMap<u32, f64> = HashMap::new();
        let mut heap = BinaryHeap::new();
        if source.1 < current[source.0 as usize] && source.1 <= limit_m {
            best.insert(source.0, source.1);
            heap.push(Entry(source.1, source.0));
        }
        while let Some(Entry(d, u)) = heap.pop() {
            if best.get(&u).is_some_and(|b| d > *b) {
                continue;
            }
            for &(v, m) in self.neighbours(u) {
                let nd = d + f64::from(m);
                if nd < current[v as usize] && nd <= limit_m && best.get(&v).is_none_or(|b| nd < *b)
                {
                    best.insert(v, nd);
                    heap.push(Entry(nd, v));
                }
            }
        }
        let mut out: Vec<(u32, f64)> = best.into_iter().collect();
        out.sort_unstable_by_key(|p| p.0);
        out
    }

    /// The network as bytes, to keep (`AGWN`, a version, the points and the segments, little
    /// endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.points.len() * 16 + self.edges.len() * 12);
        out.extend_from_slice(b"AGWN\x01");
        out.extend_from_slice(&(self.points.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.edges.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.islands as u64).to_le_bytes());
        for p in &self.points {
            out.extend_from_slice(&p.0.to_le_bytes());
            out.extend_from_slice(&p.1.to_le_bytes());
        }
        for e in &self.edges {
            out.extend_from_slice(&e.0.to_le_bytes());
            out.extend_from_slice(&e.1.to_le_bytes());
            out.extend_from_slice(&e.2.to_le_bytes());
        }
        out
    }

    /// A network kept by [`Network::to_bytes`]; anything else is refused.
    pub fn from_bytes(bytes: &[u8]) -> Result<Network> {
        let bad = || Error::invalid("the stored walking network is damaged");
        let rest = bytes.strip_prefix(b"AGWN\x01").ok_or_else(bad)?;
        let u64_at = |i: usize| -> Result<u64> {
            Ok(u64::from_le_bytes(
                rest.get(i..i + 8).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            ))
        };
        let (n, m, islands) = (u64_at(0)? as usize, u64_at(8)? as usize, u64_at(16)? as usize);
        let body = &rest[24..];
        if body.len() != n.checked_mul(16).ok_or_else(bad)? + m.checked_mul(12).ok_or_else(bad)? {
            return Err(bad());
        }
        let f64_at = |i: usize| f64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
        let points: Vec<(f64, f64)> =
            (0..n).map(|i| (f64_at(i * 16), f64_at(i * 16 + 8))).collect();
        let base = n * 16;
        let mut edges = Vec::with_capacity(m);
        for k in 0..m {
            let at = base + k * 12;
            let (a, b) = (u32_at(at), u32_at(at + 4));
            let len = f32::from_le_bytes(body[at + 8..at + 12].try_into().expect("4 bytes"));
            if a as usize >= n || b as usize >= n || !(len.is_finite() && len >= 0.0) {
                return Err(bad());
            }
            edges.push((a, b, len));
        }
        Ok(Network::from_parts(points, edges, islands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ladder of 100 m rungs: two rails of `n` nodes 100 m apart east–west.
    type Line = (Vec<(f64, f64)>, Vec<(u32, u32)>);

    fn grid_points(n: usize) -> Line {
        // Metres per degree on the haversine's sphere.
        let step = 100.0 / (6_371_008.8f64.to_radians() * 43.5f64.to_radians().cos());
        let mut pts = Vec::new();
        let mut edges = Vec::new();
        for i in 0..n {
            pts.push((5.4 + step * i as f64, 43.5));
            if i > 0 {
                edges.push(((i - 1) as u32, i as u32));
            }
        }
        (pts, edges)
    }

    #[test]
    fn a_line_of_100_m_segments_and_an_island_left_out() {
        let (mut pts, mut edges) = grid_points(60);
        pts.push((5.0, 43.0));
        pts.push((5.0001, 43.0));
        edges.push((60, 61));
        let net = Network::from_edges(pts, &edges);
        assert_eq!((net.nodes(), net.segments(), net.islands()), (60, 59, 2));
        let (d, from) = net.distances(&[(0, 0.0)], f64::INFINITY);
        assert!((d[59] - 5_900.0).abs() < 1.0, "{}", d[59]);
        assert_eq!(from[59], 0);
        let (d, _) = net.distances(&[(0, 0.0)], 1_000.0);
        assert!(d[10].is_finite() && d[11].is_infinite());
        let (n, m) = net.attach(5.4 + 0.0001, 43.5001, 300.0).unwrap();
        assert_eq!(n, 0);
        assert!(m > 10.0 && m < 20.0, "{m}");
        assert_eq!(net.attach(5.0, 43.0, 300.0), None);
        let back = Network::from_bytes(&net.to_bytes()).unwrap();
        assert_eq!(back.edges(), net.edges());
        assert!(Network::from_bytes(&net.to_bytes()[..40]).is_err());
    }

    #[test]
    fn improvements_are_only_the_nodes_a_new_source_brings_closer() {
        let (pts, edges) = grid_points(60);
        let net = Network::from_edges(pts, &edges);
        let (current, _) = net.distances(&[(0, 0.0)], f64::INFINITY);
        // A source at node 41: nodes 21.. are closer to it than to node 0.
        let better = net.improvements(&current, (41, 0.0), f64::INFINITY);
        let nodes: Vec<u32> = better.iter().map(|p| p.0).collect();
        assert_eq!(nodes, (21..60).collect::<Vec<u32>>());
        let (both, _) = net.distances(&[(0, 0.0), (41, 0.0)], f64::INFINITY);
        for (n, d) in better {
            assert!((both[n as usize] - d).abs() < 1e-6);
        }
    }
}
