//! Walking access: for every populated square, the walking time to the nearest facility of each
//! theme (one Dijkstra from all of a theme's facilities at once); the share of population within
//! 15 minutes per area; the gaps (neighbouring squares beyond the limit, with their population);
//! the effect of a facility added at a point (a Dijkstra pruned where it does not help); and
//! isochrones from a point.
//!
//! Squares and facilities are attached to their nearest network node, the straight line to it
//! walked at the same speed; those farther than [`Settings::attach_m`] from any street are *off
//! the network*: their time is unknown, they are counted apart and the shares say their coverage
//! — never a zero, never a "within 15 minutes".

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::facilities::{Facility, Theme};
use crate::network::Network;
use crate::population::Square;
use crate::project::wgs84_to_laea;
use crate::{Error, Result};

/// How access is measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Walking speed, km/h (4.5).
    pub speed_kmh: f64,
    /// Farthest a square or facility may be from a street node, metres (300).
    pub attach_m: f64,
    /// The limit, minutes (15).
    pub limit_min: f64,
    /// The isochrones' bands, minutes (5, 10, 15).
    pub bands_min: Vec<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            speed_kmh: 4.5,
            attach_m: 300.0,
            limit_min: 15.0,
            bands_min: vec![5.0, 10.0, 15.0],
        }
    }
}

impl Settings {
    /// Checks that speeds, distances and bands are positive and finite.
    pub fn check(&self) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !ok(self.speed_kmh) || self.speed_kmh > 20.0 {
            return Err(Error::invalid(format!(
                "walking speed {} km/h: between 0 and 20",
                self.speed_kmh
            )));
        }
        if !ok(self.attach_m) || !ok(self.limit_min) || self.bands_min.iter().any(|b| !ok(*b)) {
            return Err(Error::invalid(
                "the attachment distance, the limit and the bands must be positive",
            ));
        }
        Ok(())
    }

    /// Metres walked in a minute.
    pub fn metres_per_minute(&self) -> f64 {
        self.speed_kmh * 1000.0 / 60.0
    }
}

/// Which facilities: a theme, or one kind (`pharmacie`, `D301`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// All facilities of a theme.
    Theme(Theme),
    /// The facilities of one kind.
    Kind(String),
}

impl Selector {
    fn matches(&self, f: &Facility) -> bool {
        match self {
            Selector::Theme(t) => f.theme == *t,
            Selector::Kind(k) => f.kind == *k,
        }
    }
}

/// Shortest distances from a set of facilities to every node.
#[derive(Debug, Clone)]
pub struct Field {
    /// Metres from the nearest facility to each node (`INFINITY` when none is reachable).
    pub metres: Vec<f64>,
    /// Which facility (index into the study's facilities), `u32::MAX` when none.
    pub nearest: Vec<u32>,
    /// The facilities it counts (attached to the network).
    pub facilities: usize,
}

/// A study: a network, facilities and population, attached, with each theme's field.
#[derive(Debug, Clone)]
pub struct Study<'a> {
    /// The network.
    pub network: &'a Network,
    /// The facilities.
    pub facilities: &'a [Facility],
    /// The squares.
    pub squares: &'a [Square],
    /// The settings.
    pub settings: Settings,
    square_at: Vec<Option<(u32, f64)>>,
    facility_at: Vec<Option<(u32, f64)>>,
    by_node: HashMap<u32, Vec<u32>>,
    themes: BTreeMap<Theme, Field>,
}

/// A square's access: minutes to the nearest facility of each theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SquareAccess {
    /// The square's id.
    pub id: String,
    /// Its population.
    pub population: f64,
    /// Minutes to the nearest facility of each theme; absent when none is reachable, and all
    /// absent when the square is off the network.
    pub minutes: BTreeMap<Theme, f64>,
    /// Whether the square is farther than the attachment distance from any street.
    pub off_network: bool,
    /// Minutes to reach all four themes (the largest of the four); absent if one is missing.
    pub all_themes: Option<f64>,
    /// Themes within the limit (0–4): the square's score on the map; absent off the network
    /// (its access is unknown, not nil).
    pub themes_within: Option<u8>,
}

/// The population of an area and the share of it within the limit of each theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shares {
    /// Population counted (all squares of the area).
    pub population: f64,
    /// Population off the network (its access unknown): left out of the shares.
    pub off_network: f64,
    /// Share of the population on the network within the limit of each theme, 0–1; absent when
    /// no facility of the theme was imported (a gap in the data, not a city without shops) or
    /// nobody here lives on the network.
    pub within: BTreeMap<Theme, Option<f64>>,
    /// Share within the limit of all four themes; absent when one theme is.
    pub all_themes: Option<f64>,
    /// Share of the population whose access is known (1 − off the network / population); absent
    /// without population.
    pub coverage: Option<f64>,
}

/// Squares next to one another, all beyond the limit for one theme or kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Gap {
    /// People in it.
    pub population: f64,
    /// Its squares' ids.
    pub squares: Vec<String>,
    /// Its population-weighted centre (longitude).
    pub lon: f64,
    /// Its centre's latitude.
    pub lat: f64,
    /// The shortest walk from its squares to the nearest such facility, minutes (absent if none
    /// is reachable).
    pub best_minutes: Option<f64>,
    /// The longest.
    pub worst_minutes: Option<f64>,
}

/// What a facility added at a point would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhatIf {
    /// Whether the point is within reach of the network (else nothing changes, and this says
    /// why).
    pub attached: bool,
    /// Squares whose time falls: (id, minutes before — absent if unreachable —, after).
    pub changed: Vec<(String, Option<f64>, f64)>,
    /// Squares brought within the limit.
    pub newly_within: Vec<String>,
    /// People brought within the limit.
    pub population_gained: f64,
    /// The share within the limit over all squares studied, before (absent: nobody on the
    /// network).
    pub share_before: Option<f64>,
    /// After.
    pub share_after: Option<f64>,
}

impl<'a> Study<'a> {
    /// Attaches everything and computes each theme's field.
    pub fn new(
        network: &'a Network,
        facilities: &'a [Facility],
        squares: &'a [Square],
        settings: Settings,
    ) -> Result<Study<'a>> {
        settings.check()?;
        let square_at: Vec<_> =
            squares.iter().map(|s| network.attach(s.lon, s.lat, settings.attach_m)).collect();
        let facility_at: Vec<_> =
            facilities.iter().map(|f| network.attach(f.lon, f.lat, settings.attach_m)).collect();
        let mut by_node: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, a) in square_at.iter().enumerate() {
            if let Some((n, _)) = a {
                by_node.entry(*n).or_default().push(i as u32);
            }
        }
        let mut study = Study {
            network,
            facilities,
            squares,
            settings,
            square_at,
            facility_at,
            by_node,
            themes: BTreeMap::new(),
        };
        for t in Theme::ALL {
            let f = study.field(&Selector::Theme(t));
            study.themes.insert(t, f);
        }
        Ok(study)
    }

    /// Facilities farther than the attachment distance from any street (not counted).
    pub fn facilities_off_network(&self) -> Vec<&Facility> {
        self.facility_at
            .iter()
            .zip(self.facilities)
            .filter(|(a, _)| a.is_none())
            .map(|(_, f)| f)
            .collect()
    }

    /// The field of the facilities a selector picks.
    pub fn field(&self, which: &Selector) -> Field {
        let mut sources = Vec::new();
        let mut index = Vec::new();
        for (i, f) in self.facilities.iter().enumerate() {
            if which.matches(f)
                && let Some((node, m)) = self.facility_at[i]
            {
                sources.push((node, m));
                index.push(i as u32);
            }
        }
        let (metres, from) = self.network.distances(&sources, f64::INFINITY);
        let nearest =
            from.into_iter().map(|s| if s == u32::MAX { s } else { index[s as usize] }).collect();
        Field { metres, nearest, facilities: sources.len() }
    }

    /// A theme's field, computed at construction.
    pub fn theme(&self, t: Theme) -> &Field {
        &self.themes[&t]
    }

    /// Minutes from a square to the nearest facility of a field; `None` if off the network or
    /// none is reachable.
    pub fn minutes(&self, square: usize, field: &Field) -> Option<f64> {
        let (node, m) = self.square_at[square]?;
        let d = field.metres[node as usize];
        d.is_finite().then(|| (d + m) / self.settings.metres_per_minute())
    }

    /// Whether a square is off the network.
    pub fn off_network(&self, square: usize) -> bool {
        self.square_at[square].is_none()
    }

    /// Every square's access.
    pub fn squares(&self) -> Vec<SquareAccess> {
        (0..self.squares.len())
            .map(|i| {
                let minutes: BTreeMap<Theme, f64> = Theme::ALL
                    .iter()
                    .filter_map(|t| self.minutes(i, self.theme(*t)).map(|m| (*t, m)))
                    .collect();
                let all_themes =
                    (minutes.len() == 4).then(|| minutes.values().copied().fold(0.0, f64::max));
                SquareAccess {
                    id: self.squares[i].id.clone(),
                    population: self.squares[i].population,
                    themes_within: (!self.off_network(i)).then(|| {
                        minutes.values().filter(|m| **m <= self.settings.limit_min).count() as u8
                    }),
                    minutes,
                    off_network: self.off_network(i),
                    all_themes,
                }
            })
            .collect()
    }

    /// The shares within the limit of the squares `pick` keeps.
    pub fn shares(&self, pick: impl Fn(usize, &Square) -> bool) -> Shares {
        let limit = self.settings.limit_min;
        let (mut population, mut off) = (0.0, 0.0);
        let mut within: BTreeMap<Theme, f64> = Theme::ALL.iter().map(|t| (*t, 0.0)).collect();
        let mut all = 0.0;
        for (i, s) in self.squares.iter().enumerate() {
            if !pick(i, s) {
                continue;
            }
            population += s.population;
            if self.off_network(i) {
                off += s.population;
                continue;
            }
            let mut every = true;
            for t in Theme::ALL {
                if self.minutes(i, self.theme(t)).is_some_and(|m| m <= limit) {
                    *within.get_mut(&t).expect("every theme") += s.population;
                } else {
                    every = false;
                }
            }
            if every {
                all += s.population;
            }
        }
        let on = population - off;
        let imported = |t: Theme| self.theme(t).facilities > 0;
        let share = |v: f64| (on > 0.0).then(|| v / on);
        Shares {
            population,
            off_network: off,
            within: within
                .into_iter()
                .map(|(t, v)| (t, if imported(t) { share(v) } else { None }))
                .collect(),
            all_themes: if Theme::ALL.iter().all(|t| imported(*t)) { share(all) } else { None },
            coverage: (population > 0.0).then(|| on / population),
        }
    }

    /// The gaps of a field: groups of neighbouring squares (sharing a side or a corner on
    /// INSEE's 200 m grid) on the network, populated, beyond the limit; largest population first.
    pub fn gaps(&self, field: &Field) -> Vec<Gap> {
        let limit = self.settings.limit_min;
        let mut cells: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
        for (i, s) in self.squares.iter().enumerate() {
            if self.off_network(i) || s.population <= 0.0 {
                continue;
            }
            if self.minutes(i, field).is_some_and(|m| m <= limit) {
                continue;
            }
            let (x, y) = wgs84_to_laea(s.lon, s.lat);
            cells
                .entry(((x / 200.0).floor() as i64, (y / 200.0).floor() as i64))
                .or_default()
                .push(i);
        }
        let mut seen = std::collections::HashSet::new();
        let mut keys: Vec<(i64, i64)> = cells.keys().copied().collect();
        keys.sort_unstable();
        let mut gaps = Vec::new();
        for start in keys {
            if !seen.insert(start) {
                continue;
            }
            let mut stack = vec![start];
            let mut members = Vec::new();
            while let Some(c) = stack.pop() {
                members.extend(cells[&c].iter().copied());
                for dx in -1..=1 {
                    for dy in -1..=1 {
                        let n = (c.0 + dx, c.1 + dy);
                        if cells.contains_key(&n) && seen.insert(n) {
                            stack.push(n);
                        }
                    }
                }
            }
            members.sort_unstable();
            let population: f64 = members.iter().map(|i| self.squares[*i].population).sum();
            let (mut lon, mut lat) = (0.0, 0.0);
            for i in &members {
                let s = &self.squares[*i];
                lon += s.lon * s.population / population;
                lat += s.lat * s.population / population;
            }
            let times: Vec<f64> = members.iter().filter_map(|i| self.minutes(*i, field)).collect();
            gaps.push(Gap {
                population,
                squares: members.iter().map(|i| self.squares[*i].id.clone()).collect(),
                lon,
                lat,
                best_minutes: times.iter().copied().reduce(f64::min),
                worst_minutes: (times.len() == members.len())
                    .then(|| times.iter().copied().fold(0.0, f64::max)),
            });
        }
        gaps.sort_by(|a, b| b.population.total_cmp(&a.population));
        gaps
    }

    /// What a facility of a field's kind added at a point would change.
    pub fn what_if(&self, field: &Field, lon: f64, lat: f64) -> WhatIf {
        let limit = self.settings.limit_min;
        let mpm = self.settings.metres_per_minute();
        let on: Vec<usize> = (0..self.squares.len()).filter(|i| !self.off_network(*i)).collect();
        let total: f64 = on.iter().map(|i| self.squares[*i].population).sum();
        let before: f64 = on
            .iter()
            .filter(|i| self.minutes(**i, field).is_some_and(|m| m <= limit))
            .map(|i| self.squares[*i].population)
            .sum();
        let share = |v: f64| (total > 0.0).then(|| v / total);
        let Some(at) = self.network.attach(lon, lat, self.settings.attach_m) else {
            return WhatIf {
                attached: false,
                changed: Vec::new(),
                newly_within: Vec::new(),
                population_gained: 0.0,
                share_before: share(before),
                share_after: share(before),
            };
        };
        // Nodes farther than the limit plus the longest attachment cannot bring a square within
        // it, but they can still shorten a longer walk: the search is bounded by the gain only.
        let better = self.network.improvements(&field.metres, at, f64::INFINITY);
        let mut changed = Vec::new();
        let mut newly_within = Vec::new();
        let mut gained = 0.0;
        for (node, d) in better {
            for &sq in self.by_node.get(&node).map(Vec::as_slice).unwrap_or_default() {
                let sq = sq as usize;
                let (_, m) = self.square_at[sq].expect("attached");
                let old = self.minutes(sq, field);
                let new = (d + m) / mpm;
                changed.push((self.squares[sq].id.clone(), old, new));
                if new <= limit && old.is_none_or(|o| o > limit) {
                    newly_within.push(self.squares[sq].id.clone());
                    gained += self.squares[sq].population;
                }
            }
        }
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        newly_within.sort();
        WhatIf {
            attached: true,
            changed,
            newly_within,
            population_gained: gained,
            share_before: share(before),
            share_after: share(before + gained),
        }
    }
}

/// One band of an isochrone: the street pieces reachable within its minutes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Band {
    /// The band's limit, minutes.
    pub minutes: f64,
    /// The pieces of street reachable, each a line of (longitude, latitude).
    pub lines: Vec<Vec<(f64, f64)>>,
    /// Kilometres of street reachable.
    pub km: f64,
    /// People living within it (squares whose walk from the point is within the band).
    pub population: f64,
}

/// Walking isochrones from a point: for each band, the streets reachable; `None` if the point
/// is farther than the attachment distance from the network.
pub fn isochrone(
    network: &Network,
    squares: &[Square],
    settings: &Settings,
    lon: f64,
    lat: f64,
) -> Option<Vec<Band>> {
    let (node, m) = network.attach(lon, lat, settings.attach_m)?;
    let mpm = settings.metres_per_minute();
    let top = settings.bands_min.iter().copied().fold(0.0, f64::max) * mpm;
    let (dist, _) = network.distances(&[(node, m)], top);
    let lerp =
        |a: (f64, f64), b: (f64, f64), t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
    let mut bands = Vec::new();
    for &minutes in &settings.bands_min {
        let limit = minutes * mpm;
        let mut lines = Vec::new();
        let mut metres = 0.0;
        for &(a, b, len) in network.edges() {
            let len = f64::from(len);
            let (da, db) = (dist[a as usize], dist[b as usize]);
            let (pa, pb) = (network.point(a), network.point(b));
            let ra = (limit - da).max(0.0);
            let rb = (limit - db).max(0.0);
            if ra + rb >= len && (da <= limit || db <= limit) {
                lines.push(vec![pa, pb]);
                metres += len;
                continue;
            }
            if len <= 0.0 {
                continue;
            }
            if da <= limit && ra > 0.0 {
                lines.push(vec![pa, lerp(pa, pb, ra / len)]);
                metres += ra;
            }
            if db <= limit && rb > 0.0 {
                lines.push(vec![pb, lerp(pb, pa, rb / len)]);
                metres += rb;
            }
        }
        let population = squares
            .iter()
            .filter_map(|s| {
                let (n, sm) = network.attach(s.lon, s.lat, settings.attach_m)?;
                (dist[n as usize] + sm <= limit).then_some(s.population)
            })
            .sum();
        bands.push(Band { minutes, lines, km: metres / 1000.0, population });
    }
    Some(bands)
}
