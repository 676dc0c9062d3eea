//! Walks between points on the walking network: the shortest, a tour through stops in order,
//! and the cool route ("parcours frais") of a hot afternoon.
//!
//! A cool route weighs each segment by the heat a walker feels on it: its length times
//! `1 + heat_weight × (t − t_min)`, where `t` is the segment's felt temperature (the mean of its
//! two ends' temperatures from the heat-island map, less `cooling_c` within `cool_radius_m` of
//! shade, a fountain or drinking water) and `t_min` the coolest segment's. The cost is a length
//! times a factor of at least 1, growing with the heat: a longer way is taken only when it saves
//! more heat than it adds length, so the route chosen is never hotter, in felt temperature
//! averaged over its length, than the shortest one (whose length is the least); on a map of one
//! temperature every factor is 1 and it is the shortest route itself.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::network::Network;

/// A walk: the nodes it goes through, its line (longitude, latitude) and its length.
#[derive(Debug, Clone, PartialEq)]
pub struct Walk {
    /// The network's nodes, in order (empty for a straight line).
    pub nodes: Vec<u32>,
    /// The line walked, from the start to the end.
    pub line: Vec<(f64, f64)>,
    /// Metres.
    pub length_m: f64,
    /// Whether some of it is a straight line (a stop off the network, or no network).
    pub straight: bool,
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

/// Metres between two (longitude, latitude) points (haversine, mean Earth radius).
pub use crate::project::haversine_m as distance_m;

/// The cheapest way from `from` to `to`, each segment costing its length times `factor(u, v)`
/// (at least 1); `None` when `to` cannot be reached. Ties go to the lower node number, so the
/// answer is the same every time.
pub fn cheapest(
    net: &Network,
    from: u32,
    to: u32,
    factor: impl Fn(u32, u32) -> f64,
) -> Option<Vec<u32>> {
    let n = net.nodes();
    if from as usize >= n || to as usize >= n {
        return None;
    }
    let mut cost = vec![f64::INFINITY; n];
    let mut prev = vec![u32::MAX; n];
    let mut heap = BinaryHeap::new();
    cost[from as usize] = 0.0;
    heap.push(Entry(0.0, from));
    while let Some(Entry(c, u)) = heap.pop() {
        if c > cost[u as usize] {
            continue;
        }
        if u == to {
            break;
        }
        for &(v, m) in net.neighbours(u) {
            let nc = c + f64::from(m) * factor(u, v);
            if nc < cost[v as usize] {
                cost[v as usize] = nc;
                prev[v as usize] = u;
                heap.push(Entry(nc, v));
            }
        }
    }
    if !cost[to as usize].is_finite() {
        return None;
    }
    let mut path = vec![to];
    let mut at = to;
    while at != from {
        at = prev[at as usize];
        path.push(at);
    }
    path.reverse();
    Some(path)
}

/// The walk along nodes, from point `a` to point `b` (each joined to its node by a straight
/// piece).
fn walk_of(net: &Network, nodes: Vec<u32>, a: (f64, f64), b: (f64, f64)) -> Walk {
    let mut line = vec![a];
    line.extend(nodes.iter().map(|&x| net.point(x)));
    line.push(b);
    line.dedup();
    let length_m = line.windows(2).map(|w| distance_m(w[0], w[1])).sum();
    Walk { nodes, line, length_m, straight: false }
}

fn straight(a: (f64, f64), b: (f64, f64)) -> Walk {
    Walk { nodes: Vec::new(), line: vec![a, b], length_m: distance_m(a, b), straight: true }
}

/// The shortest walk from `a` to `b` (longitude, latitude) on the network, each joined to the
/// nearest node within `attach_m`; a straight line when there is no network, a point is too far
/// from it or the two are not connected.
pub fn shortest(net: Option<&Network>, a: (f64, f64), b: (f64, f64), attach_m: f64) -> Walk {
    let Some(net) = net else { return straight(a, b) };
    let (Some((na, _)), Some((nb, _))) =
        (net.attach(a.0, a.1, attach_m), net.attach(b.0, b.1, attach_m))
    else {
        return straight(a, b);
    };
    match cheapest(net, na, nb, |_, _| 1.0) {
        Some(nodes) => walk_of(net, nodes, a, b),
        None => straight(a, b),
    }
}

/// A tour through stops in their order: one shortest walk per leg, joined.
pub fn tour(net: Option<&Network>, stops: &[(f64, f64)], attach_m: f64) -> Walk {
    let mut out = Walk { nodes: Vec::new(), line: Vec::new(), length_m: 0.0, straight: false };
    for leg in stops.windows(2) {
        let w = shortest(net, leg[0], leg[1], attach_m);
        out.length_m += w.length_m;
        out.straight |= w.straight;
        out.nodes.extend(w.nodes);
        let skip = usize::from(!out.line.is_empty());
        out.line.extend(w.line.into_iter().skip(skip));
    }
    if stops.len() == 1 {
        out.line = vec![stops[0]];
    }
    out
}

/// How a cool route weighs heat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoolSettings {
    /// How much more a metre costs per degree above the coolest segment (0.15: a segment 2 °C
    /// hotter costs 30 % more than its length).
    pub heat_weight: f64,
    /// Degrees cooler a walker feels within `cool_radius_m` of shade, a fountain or drinking
    /// water.
    pub cooling_c: f64,
    /// Metres.
    pub cool_radius_m: f64,
}

impl Default for CoolSettings {
    fn default() -> Self {
        Self { heat_weight: 0.15, cooling_c: 2.0, cool_radius_m: 30.0 }
    }
}

/// The felt temperature of each node: `temperature(lon, lat)` (none: the mean of the others),
/// less the cooling near a cool point.
pub fn felt(
    net: &Network,
    temperature: impl Fn(f64, f64) -> Option<f64>,
    cool_points: &[(f64, f64)],
    s: &CoolSettings,
) -> Vec<f64> {
    let raw: Vec<Option<f64>> = (0..net.nodes() as u32)
        .map(|i| {
            let (lon, lat) = net.point(i);
            temperature(lon, lat).filter(|t| t.is_finite())
        })
        .collect();
    let known: Vec<f64> = raw.iter().flatten().copied().collect();
    let mean = if known.is_empty() { 0.0 } else { known.iter().sum::<f64>() / known.len() as f64 };
    raw.iter()
        .enumerate()
        .map(|(i, t)| {
            let p = net.point(i as u32);
            let cool = cool_points.iter().any(|c| distance_m(p, *c) <= s.cool_radius_m);
            t.unwrap_or(mean) - if cool { s.cooling_c } else { 0.0 }
        })
        .collect()
}

/// A walk's felt temperature averaged over its length on the network (each segment at the mean
/// of its two ends; the pieces joining the points to the network are the same for every route
/// between them and are left out), °C; `None` for a walk with no segment.
pub fn exposure(net: &Network, w: &Walk, node_felt: &[f64]) -> Option<f64> {
    let mut sum = 0.0;
    let mut len = 0.0;
    for pair in w.nodes.windows(2) {
        let m = distance_m(net.point(pair[0]), net.point(pair[1]));
        sum += m * (node_felt[pair[0] as usize] + node_felt[pair[1] as usize]) / 2.0;
        len += m;
    }
    (len > 0.0).then(|| sum / len)
}

/// The cool route and the shortest from `a` to `b`, with the felt temperature of each node;
/// `None` when a point is off the network or the two are not connected.
pub fn cool(
    net: &Network,
    a: (f64, f64),
    b: (f64, f64),
    attach_m: f64,
    node_felt: &[f64],
    s: &CoolSettings,
) -> Option<(Walk, Walk)> {
    let (na, _) = net.attach(a.0, a.1, attach_m)?;
    let (nb, _) = net.attach(b.0, b.1, attach_m)?;
    let shortest = walk_of(net, cheapest(net, na, nb, |_, _| 1.0)?, a, b);
    let coolest = node_felt.iter().copied().fold(f64::INFINITY, f64::min);
    let w = s.heat_weight.max(0.0);
    let factor = |u: u32, v: u32| {
        let t = (node_felt[u as usize] + node_felt[v as usize]) / 2.0;
        1.0 + w * (t - coolest).max(0.0)
    };
    let cool = walk_of(net, cheapest(net, na, nb, factor)?, a, b);
    Some((cool, shortest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ladder of two parallel streets 100 m apart joined at both ends and in the middle:
    /// south street nodes 0..=4, north street 5..=9, rungs 0–5, 2–7, 4–9.
    fn ladder() -> Network {
        let mut points = Vec::new();
        for row in 0..2 {
            for i in 0..5 {
                points.push((5.44 + 0.001 * f64::from(i), 43.52 + 0.0009 * f64::from(row)));
            }
        }
        let mut edges = Vec::new();
        for row in 0..2u32 {
            for i in 0..4u32 {
                edges.push((row * 5 + i, row * 5 + i + 1));
            }
        }
        edges.extend([(0, 5), (2, 7), (4, 9)]);
        Network::from_edges(points, &edges)
    }

    #[test]
    fn the_shortest_walk_follows_the_street_and_a_uniform_heat_changes_nothing() {
        let net = ladder();
        let a = net.point(0);
        let b = net.point(4);
        let w = shortest(Some(&net), a, b, 50.0);
        assert_eq!(w.nodes, [0, 1, 2, 3, 4]);
        assert!(!w.straight);
        let felt = vec![31.0; net.nodes()];
        let (cool_w, short) = cool(&net, a, b, 50.0, &felt, &CoolSettings::default()).unwrap();
        assert_eq!(cool_w, short);
        assert!((exposure(&net, &cool_w, &felt).unwrap() - 31.0).abs() < 1e-9);
    }

    #[test]
    fn a_hot_street_is_avoided_when_the_detour_is_worth_it() {
        let net = ladder();
        let (a, b) = (net.point(0), net.point(4));
        // The south street is 6 °C hotter than the north one.
        let felt: Vec<f64> = (0..10).map(|i| if i < 5 { 36.0 } else { 30.0 }).collect();
        let s = CoolSettings::default();
        let (cool_w, short) = cool(&net, a, b, 50.0, &felt, &s).unwrap();
        assert_eq!(short.nodes, [0, 1, 2, 3, 4]);
        assert_eq!(cool_w.nodes, [0, 5, 6, 7, 8, 9, 4]);
        // Worked by hand: 400 m on the street against 200 m of rungs (half at 33 °C at each end)
        // and 400 m at 30 °C.
        let cool_t = exposure(&net, &cool_w, &felt).unwrap();
        let r = distance_m(net.point(0), net.point(5));
        let l = cool_w.length_m - 2.0 * r;
        let expected = (2.0 * r * 33.0 + l * 30.0) / (2.0 * r + l);
        assert!((cool_t - expected).abs() < 1e-9, "{cool_t} {expected}");
        assert!((exposure(&net, &short, &felt).unwrap() - 36.0).abs() < 1e-9);
        // A weak weight keeps the shortest way: 200 m more is not worth 6 °C × 0.01.
        let weak = CoolSettings { heat_weight: 0.01, ..s };
        let (w2, _) = cool(&net, a, b, 50.0, &felt, &weak).unwrap();
        assert_eq!(w2.nodes, short.nodes);
    }

    #[test]
    fn shade_and_fountains_cool_the_street_next_to_them() {
        let net = ladder();
        let t = |_: f64, _: f64| Some(34.0);
        let fountain = net.point(7);
        let f = felt(&net, t, &[fountain], &CoolSettings::default());
        assert_eq!(f[7], 32.0);
        assert_eq!(f[6], 34.0);
        // No temperature known anywhere: every node at the same value, the route the shortest.
        let f = felt(&net, |_, _| None, &[], &CoolSettings::default());
        assert!(f.iter().all(|x| *x == 0.0));
    }

    proptest::proptest! {
        /// On any grid of streets with any temperatures, the cool route is never hotter on
        /// average than the shortest, never shorter, and is the shortest on a uniform map.
        #[test]
        fn a_cool_route_is_never_hotter_than_the_shortest(
            temps in proptest::collection::vec(25.0f64..40.0, 36),
            gone in proptest::collection::vec(proptest::bool::weighted(0.15), 60),
            from in 0u32..36,
            to in 0u32..36,
            weight in 0.0f64..1.0,
        ) {
            // A 6 × 6 grid, 80 m apart, some streets closed.
            let points: Vec<(f64, f64)> = (0..36)
                .map(|i| (5.44 + 0.001 * f64::from(i % 6), 43.52 + 0.00072 * f64::from(i / 6)))
                .collect();
            let mut edges = Vec::new();
            let mut k = 0;
            for i in 0..36u32 {
                if i % 6 < 5 {
                    if !gone[k] { edges.push((i, i + 1)); }
                    k += 1;
                }
                if i / 6 < 5 {
                    if !gone[k] { edges.push((i, i + 6)); }
                    k += 1;
                }
            }
            let net = Network::from_edges(points.clone(), &edges);
            let s = CoolSettings { heat_weight: weight, ..CoolSettings::default() };
            let (a, b) = (points[from as usize], points[to as usize]);
            // Nodes of the network (islands are left out, so find them again by position).
            let felt: Vec<f64> = (0..net.nodes() as u32)
                .map(|n| {
                    let p = net.point(n);
                    temps[points.iter().position(|q| *q == p).unwrap()]
                })
                .collect();
            if let Some((c, sh)) = cool(&net, a, b, 10.0, &felt, &s) {
                proptest::prop_assert!(c.length_m >= sh.length_m - 1e-6);
                if let (Some(tc), Some(ts)) = (exposure(&net, &c, &felt), exposure(&net, &sh, &felt)) {
                    proptest::prop_assert!(tc <= ts + 1e-9, "cool {tc} > shortest {ts}");
                }
                let flat = vec![31.5; felt.len()];
                let (c2, sh2) = cool(&net, a, b, 10.0, &flat, &s).unwrap();
                proptest::prop_assert_eq!(c2, sh2);
            }
        }
    }

    #[test]
    fn a_tour_joins_its_legs_and_goes_straight_where_there_is_no_street() {
        let net = ladder();
        let stops = [net.point(0), net.point(4), net.point(9)];
        let w = tour(Some(&net), &stops, 50.0);
        assert_eq!(w.nodes, [0, 1, 2, 3, 4, 4, 9]);
        assert!(!w.straight);
        assert!(
            (w.length_m - (distance_m(stops[0], stops[1]) + distance_m(stops[1], stops[2]))).abs()
                < 1e-6
        );
        let far = (5.6, 43.6);
        let w = tour(Some(&net), &[net.point(0), far], 50.0);
        assert!(w.straight);
        assert_eq!(w.line, vec![net.point(0), far]);
        let w = tour(None, &stops, 50.0);
        assert!(w.straight);
        assert_eq!(w.line.len(), 3);
    }
}
