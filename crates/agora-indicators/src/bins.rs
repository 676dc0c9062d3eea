//! Connected bins: collections detected from the fill level's drops, fill rates between them,
//! hours full, the time each bin will take to fill with its uncertainty, the visits a
//! fixed-frequency round wastes, and a collection round ordered from a depot (nearest neighbour,
//! then 2-opt) on distances as the crow flies times a detour factor.
//!
//! Levels are percentages of the bin's volume; times are Unix seconds.

use crate::{Error, Result};

/// A drop of at least this many points between two readings is a collection.
pub const COLLECTION_DROP: f64 = 25.0;
/// A level at least this is full.
pub const FULL: f64 = 100.0;

/// A bin emptied: when (the first low reading) and its level just before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collection {
    /// Time of the first reading after the drop.
    pub t: i64,
    /// Level before the collection (%).
    pub before: f64,
    /// Level after it (%).
    pub after: f64,
}

/// Collections in time-ordered readings: a fall of `min_drop` points or more from one reading to
/// the next, not further apart than `max_gap_s` (a longer silence may hide anything).
pub fn collections(levels: &[(i64, f64)], min_drop: f64, max_gap_s: i64) -> Vec<Collection> {
    levels
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 <= max_gap_s && w[0].1 - w[1].1 >= min_drop)
        .map(|w| Collection { t: w[1].0, before: w[0].1, after: w[1].1 })
        .collect()
}

/// A least-squares line through `(t, level)` points: slope in %/h, its standard error, the
/// level it gives at the last point's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Fill rate, % per hour.
    pub rate: f64,
    /// Standard error of the rate (% per hour); infinite with fewer than three points.
    pub rate_se: f64,
    /// Fitted level at the last reading.
    pub level: f64,
    /// Points fitted.
    pub n: usize,
}

/// Fits a line through readings (saturated ones — at or above 100 % — are left out: a full bin
/// stops rising). `None` with fewer than two points or no time spread.
pub fn fit(levels: &[(i64, f64)]) -> Option<Fit> {
    let pts: Vec<(f64, f64)> =
        levels.iter().filter(|p| p.1 < FULL).map(|&(t, v)| (t as f64 / 3600.0, v)).collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let rate = sxy / sxx;
    let rate_se = if n > 2 {
        let sse: f64 = pts.iter().map(|p| (p.1 - my - rate * (p.0 - mx)).powi(2)).sum();
        (sse / (n - 2) as f64 / sxx).sqrt()
    } else {
        f64::INFINITY
    };
    let last = levels.last().map(|p| p.0 as f64 / 3600.0).unwrap_or(mx);
    Some(Fit { rate, rate_se, level: my + rate * (last - mx), n })
}

/// Fill rate by weekday: Σ rises / Σ hours between consecutive readings in the same fill cycle
/// (no collection between them, no gap longer than `max_gap_s`, the earlier not full), given to
/// the weekday of the interval's start by `weekday` (0 = Monday…6, the caller's time zone).
/// `None` for weekdays never observed.
pub fn rate_by_weekday(
    levels: &[(i64, f64)],
    min_drop: f64,
    max_gap_s: i64,
    weekday: impl Fn(i64) -> usize,
) -> [Option<f64>; 7] {
    let mut sums = [(0.0f64, 0.0f64); 7];
    for w in levels.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        if t1 <= t0 || t1 - t0 > max_gap_s || v0 - v1 >= min_drop || v0 >= FULL {
            continue;
        }
        let d = weekday(t0).min(6);
        sums[d].0 += v1 - v0;
        sums[d].1 += (t1 - t0) as f64 / 3600.0;
    }
    sums.map(|(rise, h)| (h > 0.0).then(|| rise / h))
}

/// Seconds at or above `level` (readings held until the next, within `max_gap_s`).
pub fn seconds_at_least(levels: &[(i64, f64)], level: f64, max_gap_s: i64) -> i64 {
    levels
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 <= max_gap_s && w[0].1 >= level)
        .map(|w| w[1].0 - w[0].0)
        .sum()
}

/// When a bin will reach a level: hours from now, with a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeToLevel {
    /// Current level (fitted, or last reading when the cycle is too short to fit).
    pub level: f64,
    /// Rate used (% per hour).
    pub rate: f64,
    /// Hours until the level; 0 when already there.
    pub hours: f64,
    /// Earliest (fast rate), hours.
    pub earliest: f64,
    /// Latest (slow rate), hours; infinite when the slow rate does not rise.
    pub latest: f64,
    /// Where the rate comes from: `"cycle"` (the current fill cycle) or `"history"`.
    pub basis: &'static str,
}

/// The time until the bin in its current fill cycle `cycle` (readings since its last collection)
/// reaches `target` %, at `now`. The rate is the cycle's own fit when it has at least six readings
/// over six hours, with a 95 % range from its standard error; otherwise the bin's past cycles'
/// `history` rates (their mean, range ± 1.96 standard deviations). `None` with neither.
pub fn time_to(
    cycle: &[(i64, f64)],
    history: &[f64],
    target: f64,
    now: i64,
) -> Option<TimeToLevel> {
    let &(t_last, last) = cycle.last()?;
    let own = fit(cycle).filter(|f| {
        f.n >= 6 && cycle.last().map_or(0, |l| l.0) - cycle[0].0 >= 6 * 3600 && f.rate.is_finite()
    });
    let (level, rate, lo, hi, basis) = if let Some(f) = own {
        let half = 1.96 * f.rate_se;
        (f.level, f.rate, f.rate - half, f.rate + half, "cycle")
    } else {
        let past: Vec<f64> = history.iter().copied().filter(|r| r.is_finite()).collect();
        if past.is_empty() {
            return None;
        }
        let m = past.iter().sum::<f64>() / past.len() as f64;
        let sd = if past.len() > 1 {
            (past.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (past.len() - 1) as f64).sqrt()
        } else {
            0.25 * m.abs()
        };
        (last, m, m - 1.96 * sd, m + 1.96 * sd, "history")
    };
    // Time passed since the last reading counts.
    let elapsed = ((now - t_last) as f64 / 3600.0).max(0.0);
    let hours_at = |r: f64| {
        if level >= target {
            0.0
        } else if r <= 0.0 {
            f64::INFINITY
        } else {
            ((target - level) / r - elapsed).max(0.0)
        }
    };
    Some(TimeToLevel {
        level,
        rate,
        hours: hours_at(rate),
        earliest: hours_at(hi),
        latest: hours_at(lo),
        basis,
    })
}

/// The rates of each complete fill cycle (between two collections) with at least three readings:
/// what [`time_to`] takes as history.
pub fn cycle_rates(levels: &[(i64, f64)], found: &[Collection]) -> Vec<f64> {
    let mut out = Vec::new();
    for w in found.windows(2) {
        let cycle: Vec<(i64, f64)> =
            levels.iter().copied().filter(|p| p.0 >= w[0].t && p.0 < w[1].t).collect();
        if let Some(f) = fit(&cycle).filter(|f| f.n >= 3) {
            out.push(f.rate);
        }
    }
    out
}

/// Visits a round by need would have made, against the visits made: rises summed over the
/// period, divided by what a visit at `threshold` % empties, rounded up.
pub fn visits_needed(levels: &[(i64, f64)], min_drop: f64, max_gap_s: i64, threshold: f64) -> u32 {
    let rise: f64 = levels
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 <= max_gap_s && w[1].1 > w[0].1 && w[0].1 - w[1].1 < min_drop)
        .map(|w| w[1].1.min(FULL) - w[0].1)
        .sum();
    (rise / threshold).ceil().max(0.0) as u32
}

/// Great-circle distance in metres (haversine, mean Earth radius).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) =
        (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// A round: stops in visiting order (indices into the stops given) and its length, from the
/// depot back to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// Indices of the stops, in order.
    pub order: Vec<usize>,
    /// Metres, depot to depot, detour included.
    pub metres: f64,
    /// Metres of the nearest-neighbour round before 2-opt.
    pub nearest_neighbour_metres: f64,
}

/// Orders `stops` (lat, lon) into a round from `depot` and back: nearest neighbour, then 2-opt
/// until no exchange shortens it (bounded passes). Distances are as the crow flies × `detour`.
pub fn round(depot: (f64, f64), stops: &[(f64, f64)], detour: f64) -> Result<Round> {
    if !(1.0..=5.0).contains(&detour) {
        return Err(Error::invalid(format!("the detour factor must be 1 to 5, not {detour}")));
    }
    for &(la, lo) in std::iter::once(&depot).chain(stops) {
        if !(-90.0..=90.0).contains(&la) || !(-180.0..=180.0).contains(&lo) {
            return Err(Error::invalid(format!("({la}, {lo}) is not a position")));
        }
    }
    let n = stops.len();
    // Node 0 is the depot, node i+1 stop i.
    let pts: Vec<(f64, f64)> = std::iter::once(depot).chain(stops.iter().copied()).collect();
    let d = |a: usize, b: usize| distance_m(pts[a], pts[b]);
    let mut tour = vec![0usize];
    let mut left: Vec<usize> = (1..=n).collect();
    while !left.is_empty() {
        let here = *tour.last().unwrap_or(&0);
        let (k, _) = left
            .iter()
            .enumerate()
            .map(|(k, &j)| (k, d(here, j)))
            .fold((0, f64::INFINITY), |best, c| if c.1 < best.1 { c } else { best });
        tour.push(left.swap_remove(k));
    }
    tour.push(0);
    let length = |t: &[usize]| t.windows(2).map(|w| d(w[0], w[1])).sum::<f64>();
    let nn = length(&tour);
    // 2-opt: reverse tour[i..=j] when it shortens the round.
    for _ in 0..50 {
        let mut better = false;
        for i in 1..tour.len().saturating_sub(2) {
            for j in i + 1..tour.len() - 1 {
                let (a, b, c, e) = (tour[i - 1], tour[i], tour[j], tour[j + 1]);
                if d(a, c) + d(b, e) < d(a, b) + d(c, e) - 1e-6 {
                    tour[i..=j].reverse();
                    better = true;
                }
            }
        }
        if !better {
            break;
        }
    }
    let metres = length(&tour) * detour;
    Ok(Round {
        order: tour[1..tour.len() - 1].iter().map(|&i| i - 1).collect(),
        metres,
        nearest_neighbour_metres: nn * detour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;

    /// A bin filling 2 %/h from 5 %, collected every 24 h at 06:00 (t = 0 is a collection).
    fn synthetic(days: i64, rate: f64) -> Vec<(i64, f64)> {
        (0..days * 24).map(|h| (h * H, (5.0 + rate * (h % 24) as f64).min(100.0))).collect()
    }

    #[test]
    fn collections_and_rates_on_a_known_bin() {
        let s = synthetic(5, 2.0);
        let c = collections(&s, COLLECTION_DROP, 3 * H);
        // Collected at 24, 48, 72, 96 h, each from 5 + 2 × 23 = 51 % to 5 %.
        assert_eq!(c.len(), 4);
        assert_eq!(c[0], Collection { t: 24 * H, before: 51.0, after: 5.0 });
        let rates = cycle_rates(&s, &c);
        assert_eq!(rates.len(), 3);
        assert!(rates.iter().all(|r| (r - 2.0).abs() < 1e-9));
        let by_day = rate_by_weekday(&s, COLLECTION_DROP, 3 * H, |t| ((t / (24 * H)) % 7) as usize);
        assert!((by_day[0].unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(by_day[5], None);
        // 5 days filling 46 points each: at 80 % a visit, 230 / 80 → 3 visits instead of 4.
        assert_eq!(visits_needed(&s, COLLECTION_DROP, 3 * H, 80.0), 3);
        // A bin filling 6 %/h is full from 5 + 6 × 16 ≈ 100 (hour 16: 101 → 100) to hour 23.
        let fast = synthetic(1, 6.0);
        assert_eq!(seconds_at_least(&fast, FULL, 3 * H), 7 * H);
    }

    #[test]
    fn time_to_full_from_the_cycle_and_from_history() {
        // 10 h into a cycle at 3 %/h from 10 %: at 40 %, 60 points to go → 20 h.
        let cycle: Vec<(i64, f64)> = (0..=10).map(|h| (h * H, 10.0 + 3.0 * h as f64)).collect();
        let t = time_to(&cycle, &[], 100.0, 10 * H).unwrap();
        assert_eq!(t.basis, "cycle");
        assert!((t.hours - 20.0).abs() < 1e-9, "{t:?}");
        // A perfect line: no uncertainty.
        assert!((t.earliest - t.latest).abs() < 1e-6);
        // Two hours later with no new reading: 18 h.
        assert!((time_to(&cycle, &[], 100.0, 12 * H).unwrap().hours - 18.0).abs() < 1e-9);
        // Noisy readings widen the range around the estimate.
        let noisy: Vec<(i64, f64)> = cycle
            .iter()
            .enumerate()
            .map(|(i, &(t, v))| (t, v + if i % 2 == 0 { 1.5 } else { -1.5 }))
            .collect();
        let n = time_to(&noisy, &[], 100.0, 10 * H).unwrap();
        assert!(n.earliest < n.hours && n.hours < n.latest);
        // Just collected: history's rates (2 and 4 %/h, mean 3) from the last reading.
        let h = time_to(&[(0, 10.0)], &[2.0, 4.0], 100.0, 0).unwrap();
        assert_eq!(h.basis, "history");
        assert!((h.hours - 30.0).abs() < 1e-9);
        assert!(time_to(&[(0, 10.0)], &[], 100.0, 0).is_none());
        // Already full.
        assert_eq!(time_to(&[(0, 100.0)], &[2.0], 80.0, 0).unwrap().hours, 0.0);
    }

    #[test]
    fn a_round_visits_each_bin_once_and_is_no_longer_than_nearest_neighbour() {
        // Nine bins on a 3 × 3 grid 100 m apart and a depot in a corner.
        let dlat = 100.0 / 111_195.0;
        let dlon = dlat / 43.53f64.to_radians().cos();
        let depot = (43.53, 5.44);
        let stops: Vec<(f64, f64)> = (0..9)
            .map(|k| (depot.0 + (k / 3) as f64 * dlat, depot.1 + (k % 3 + 1) as f64 * dlon))
            .collect();
        let r = round(depot, &stops, 1.3).unwrap();
        let mut seen = r.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..9).collect::<Vec<_>>());
        assert!(r.metres <= r.nearest_neighbour_metres + 1e-6);
        // The optimum is 1,000 m (8 steps of 100 m between bins, 100 m out and about 100·√… back):
        // at least the 800 m between bins plus the 100 m out, times the detour.
        assert!(r.metres >= 900.0 * 1.3 - 1.0);
        assert!(round(depot, &stops, 0.5).is_err());
        assert!(round((95.0, 0.0), &stops, 1.3).is_err());
        assert_eq!(round(depot, &[], 1.3).unwrap().order, Vec::<usize>::new());
    }

    #[test]
    fn haversine_against_a_known_distance() {
        // Paris (Notre-Dame) to Marseille (Vieux-Port): about 661 km.
        let d = distance_m((48.8530, 2.3499), (43.2951, 5.3740));
        assert!((d / 1000.0 - 661.0).abs() < 3.0, "{}", d / 1000.0);
    }

    proptest::proptest! {
        #[test]
        fn rounds_of_random_bins(pts in proptest::collection::vec((0.0f64..0.02, 0.0f64..0.03), 0..60)) {
            let stops: Vec<(f64, f64)> = pts.iter().map(|&(a, b)| (43.5 + a, 5.43 + b)).collect();
            let r = round((43.51, 5.445), &stops, 1.0).unwrap();
            let mut seen = r.order.clone();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..stops.len()).collect::<Vec<_>>());
            proptest::prop_assert!(r.metres <= r.nearest_neighbour_metres + 1e-6);
            // Its length is the sum of its legs, recomputed here.
            let mut path = vec![(43.51, 5.445)];
            path.extend(r.order.iter().map(|&i| stops[i]));
            path.push((43.51, 5.445));
            let legs: f64 = path.windows(2).map(|w| distance_m(w[0], w[1])).sum();
            proptest::prop_assert!((legs - r.metres).abs() < 1e-6);
        }
    }
}
