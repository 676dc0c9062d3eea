//! Anomalies: what a series did that its own forecasts, its own past or its neighbours say it
//! should not have.
//!
//! - [`unlikely`]: hours outside the 99.9 % prediction interval for [`SUSTAINED_HOURS`] in a row,
//!   each day forecast from its own start by the method the backtest chose. The backtest's most
//!   extreme errors include the anomalies looked for, so the 99.9 % interval is extrapolated from
//!   quantiles they barely move, as a normal distribution's would be: the 80 % interval widened
//!   × 3.29 / 1.28, or the 1 %–99 % range of all its errors widened × 3.29 / 2.33 about their
//!   median, whichever is wider on each side (errors heavier-tailed than normal, as a daily
//!   profile's on weekends, widen the second).
//! - [`level_shift`]: a change in the mean of daily values (a sensor moved or recalibrated, works
//!   nearby, or, applied to the ratio of two sensors of a place, one drifting from the other).
//!   The test is the CUSUM of Page (1954) in the form of Csörgő and Horváth: the largest
//!   `|S_k − k/m·S_m| / (σ̂·√m)`, which without a change follows Kolmogorov's distribution and
//!   exceeds [`SHIFT_CRITICAL`] with probability 0.1 % for independent days. σ̂ is the days'
//!   spread about the means either side of the most likely change, corrected for their lag-1
//!   autocorrelation (the long-run scale of AR(1) days): days that follow one another, as the
//!   weather's, would otherwise pass for changes (simulated on 35 AR(1) days: 1.4 % false alarms
//!   at ρ = 0.3, 4.5 % at ρ = 0.6, against 8 % and 42 % uncorrected), which callers' least
//!   changes that matter then cut.
//! - [`drift`]: the same test for a change that creeps rather than steps (a sensor's gain growing
//!   a few percent a day): σ̂ is the spread about the mean before the most likely change and about
//!   a straight line after it. About two step means, a ramp's own shape would pass for
//!   autocorrelated noise and hide it: a noise-free ramp over the last 12 of 26 days scores 2.2
//!   against steps, barely over 1.95, and one over the last 16 days 1.77, never found; against
//!   a line it is found whatever its slope. The price is a few more false alarms on
//!   autocorrelated days (simulated on 35 AR(1) days: 2.6 % at ρ = 0.3, 7.5 % at ρ = 0.6), which
//!   callers' least changes that matter then cut.

use serde::Serialize;

use crate::{Backtest, DAY, band_of, forecast};

/// Hours in a row outside the 99.9 % interval before they are an anomaly.
pub const SUSTAINED_HOURS: usize = 3;
/// The 99.9 % interval's half-width over the 80 % one's, for a normal distribution
/// (z 0.9995 = 3.2905, z 0.9 = 1.2816).
const WIDEN_999: f64 = 3.290_527 / 1.281_552;
/// The same over the 98 % interval (z 0.99 = 2.3263).
const WIDEN_999_FROM_98: f64 = 3.290_527 / 2.326_348;
/// Kolmogorov's distribution exceeds this with probability 0.001 (1 − K(1.9495) = 0.001).
pub const SHIFT_CRITICAL: f64 = 1.9495;
/// Days each side of a level shift, at least.
pub const SHIFT_MIN_DAYS: usize = 3;

/// A run of hours the series' forecast found very unlikely.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unlikely {
    /// Index of its first hour.
    pub first: usize,
    /// Index of its last hour.
    pub last: usize,
    /// The reading furthest outside, its forecast and the 99.9 % interval there.
    pub actual: f64,
    /// The forecast at that hour.
    pub expected: f64,
    /// The 99.9 % interval's lower end there.
    pub lo: f64,
    /// Its upper end.
    pub hi: f64,
}

/// Runs of at least [`SUSTAINED_HOURS`] hours, among the last `days` days of `values` (hours
/// aligned so that the series ends on a day boundary or not: each day is the 24 hours from an
/// origin), outside the 99.9 % interval of the forecast made at that day's origin with the
/// backtest's method. An hour without a value ends a run.
pub fn unlikely(bt: &Backtest, values: &[Option<f64>], how: &[u16], days: usize) -> Vec<Unlikely> {
    let n = values.len();
    // Hours found outside are replaced by their forecast before the next day is forecast, so
    // that an anomaly is not echoed the next day by a method that repeats yesterday.
    let mut cleaned = values.to_vec();
    // (hour, actual, expected, lo, hi, outside)
    let mut hours: Vec<(usize, f64, f64, f64, f64, bool)> = Vec::new();
    for k in (1..=days).rev() {
        let Some(origin) = n.checked_sub(k * DAY) else { continue };
        let f = forecast(bt.chosen, &cleaned, how, origin, DAY);
        for (a, x) in f.into_iter().enumerate() {
            let t = origin + a;
            let (Some(y), Some(x), Some(band)) =
                (values.get(t).copied().flatten(), x, bt.bands.get(band_of(a + 1)))
            else {
                continue;
            };
            let mid = x + (band.q[1] + band.q[2]) / 2.0;
            let half = (band.q[2] - band.q[1]) / 2.0 * WIDEN_999;
            let [q01, med, q99] = bt.tails;
            let (lo, hi) = if q01.is_finite() && q99.is_finite() {
                (
                    (mid - half).min(x + med + (q01 - med) * WIDEN_999_FROM_98),
                    (mid + half).max(x + med + (q99 - med) * WIDEN_999_FROM_98),
                )
            } else {
                (mid - half, mid + half)
            };
            let outside = y < lo || y > hi;
            if outside {
                cleaned[t] = Some(x);
            }
            hours.push((t, y, x, lo, hi, outside));
        }
    }
    let mut out = Vec::new();
    let mut run: Vec<(usize, f64, f64, f64, f64, bool)> = Vec::new();
    let mut close = |run: &mut Vec<(usize, f64, f64, f64, f64, bool)>| {
        if run.len() >= SUSTAINED_HOURS {
            let outside = |h: &(usize, f64, f64, f64, f64, bool)| (h.1 - h.4).max(h.3 - h.1);
            let worst = run.iter().max_by(|a, b| outside(a).total_cmp(&outside(b))).expect("a run");
            out.push(Unlikely {
                first: run[0].0,
                last: run[run.len() - 1].0,
                actual: worst.1,
                expected: worst.2,
                lo: worst.3,
                hi: worst.4,
            });
        }
        run.clear();
    };
    for h in hours {
        let follows = run.last().is_none_or(|p| p.0 + 1 == h.0);
        if !h.5 || !follows {
            close(&mut run);
        }
        if h.5 {
            run.push(h);
        }
    }
    close(&mut run);
    out
}

/// A change in the mean of daily values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shift {
    /// Index of the first day after the change.
    pub day: usize,
    /// The median of the days before it.
    pub before: f64,
    /// The median of the days from it on.
    pub after: f64,
    /// The CUSUM statistic (above [`SHIFT_CRITICAL`]: 0.1 % likely without a change).
    pub statistic: f64,
}

/// The most likely change in the mean of `days` (one value a day, `None` where the day was not
/// measured), if the CUSUM test finds one at the 0.1 % level with at least [`SHIFT_MIN_DAYS`]
/// measured days each side.
pub fn level_shift(days: &[Option<f64>]) -> Option<Shift> {
    change(days, false)
}

/// The start of a drift in `days` — a change that may creep rather than step —, if the CUSUM
/// test finds one at the 0.1 % level, the noise measured about a line after the test's split
/// (see the module's notes). `day` is where the ramp starts (the best hinge, at the split or
/// before it) and `before` the median of the days before it; `after` is the median of the days
/// from the split on: for a ramp, its later half.
pub fn drift(days: &[Option<f64>]) -> Option<Shift> {
    change(days, true)
}

/// [`level_shift`], or with `ramp` [`drift`].
fn change(days: &[Option<f64>], ramp: bool) -> Option<Shift> {
    let present: Vec<(usize, f64)> =
        days.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
    let m = present.len();
    if m < 2 * SHIFT_MIN_DAYS {
        return None;
    }
    let total: f64 = present.iter().map(|p| p.1).sum();
    let mut sum = 0.0;
    // The largest bridge (the test's statistic once scaled), and where the change most likely
    // is: the split with the largest likelihood ratio, the bridge weighted by √(k(m − k)/m) (the
    // test's own maximum leans to the middle of the days).
    let (mut bridge_max, mut best): (f64, Option<(usize, f64)>) = (0.0, None);
    for (k, p) in present.iter().enumerate().take(m - 1) {
        sum += p.1;
        let kk = k + 1;
        if kk < SHIFT_MIN_DAYS || m - kk < SHIFT_MIN_DAYS {
            continue;
        }
        let bridge = (sum - kk as f64 / m as f64 * total).abs();
        bridge_max = bridge_max.max(bridge);
        let ratio = bridge / ((kk * (m - kk)) as f64 / m as f64).sqrt();
        if best.is_none_or(|b| ratio > b.1) {
            best = Some((kk, ratio));
        }
    }
    let (k, _) = best?;
    // The scale: the days' spread about the two sides' means, corrected for days that follow
    // one another (a warm week makes the next day warm too): with their lag-1 autocorrelation ρ
    // (Kendall's correction of its bias on few days, + (1 + 3ρ)/n), the long-run σ of AR(1) days
    // is σ·√((1 + ρ)/(1 − ρ)).
    // With `ramp`, the days after it about their least-squares line (by day, gaps kept), one
    // more parameter fitted.
    let mean = |s: &[(usize, f64)]| s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64;
    let m1 = mean(&present[..k]);
    let after = &present[k..];
    let (m2, slope, x0) = if ramp {
        let x0 = after.iter().map(|p| p.0 as f64).sum::<f64>() / after.len() as f64;
        let sxx: f64 = after.iter().map(|p| (p.0 as f64 - x0).powi(2)).sum();
        let sxy: f64 = after.iter().map(|p| (p.0 as f64 - x0) * p.1).sum();
        (mean(after), if sxx > 0.0 { sxy / sxx } else { 0.0 }, x0)
    } else {
        (mean(after), 0.0, 0.0)
    };
    // (m ≥ 2 × SHIFT_MIN_DAYS > fitted.)
    let fitted = usize::from(ramp) + 2;
    let e: Vec<f64> = present
        .iter()
        .enumerate()
        .map(|(i, p)| p.1 - if i < k { m1 } else { m2 + slope * (p.0 as f64 - x0) })
        .collect();
    let var: f64 = e.iter().map(|x| x * x).sum();
    let cov: f64 =
        e.windows(2).enumerate().filter(|(i, _)| i + 1 != k).map(|(_, w)| w[0] * w[1]).sum();
    let rho = if var > 0.0 {
        let r = cov / var;
        (r + (1.0 + 3.0 * r) / m as f64).clamp(0.0, 0.8)
    } else {
        0.0
    };
    let sigma = (var / (m - fitted) as f64).sqrt() * ((1.0 + rho) / (1.0 - rho)).sqrt();
    if sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    let statistic = bridge_max / (sigma * (m as f64).sqrt());
    if statistic <= SHIFT_CRITICAL {
        return None;
    }
    // Medians, so that one exceptional day (a street party) does not pass for a lasting change:
    // its side's median barely moves, and callers compare the medians with the least change
    // that matters.
    let median = |s: &[(usize, f64)]| {
        let mut v: Vec<f64> = s.iter().map(|p| p.1).collect();
        v.sort_by(f64::total_cmp);
        crate::quantile(&v, 0.5)
    };
    // A ramp's most likely split lies inside it: its start is where a line rising from the level
    // before fits best (a hinge), at the split or before it — when that hinge fits the days
    // better than the step and line at the split do (a step stays where it is).
    let start = if ramp { hinge(&present, k, var) } else { k };
    Some(Shift {
        day: present[start].0,
        before: median(&present[..start]),
        after: median(&present[k..]),
        statistic,
    })
}

/// The first day of a ramp ending the days `present` (day index, value) whose change test split
/// them at `k`: among splits `j` from [`SHIFT_MIN_DAYS`] to `k`, the one whose hinge — flat to
/// day `j − 1`, then a straight line — leaves the least squared error (the latest on a tie), if
/// below `bar`, the squared error about the mean before `k` and a line after it; else `k`.
fn hinge(present: &[(usize, f64)], k: usize, bar: f64) -> usize {
    let mut best = (k, bar);
    for j in (SHIFT_MIN_DAYS.min(k)..=k).rev() {
        let flat_to = present[j.saturating_sub(1)].0 as f64;
        let h: Vec<f64> = present.iter().map(|p| (p.0 as f64 - flat_to).max(0.0)).collect();
        let n = present.len() as f64;
        let (hm, ym) = (h.iter().sum::<f64>() / n, present.iter().map(|p| p.1).sum::<f64>() / n);
        let shh: f64 = h.iter().map(|x| (x - hm).powi(2)).sum();
        let shy: f64 = h.iter().zip(present).map(|(x, p)| (x - hm) * (p.1 - ym)).sum();
        let b = if shh > 0.0 { shy / shh } else { 0.0 };
        let sse: f64 = h.iter().zip(present).map(|(x, p)| (p.1 - ym - b * (x - hm)).powi(2)).sum();
        if sse < best.1 {
            best = (j, sse);
        }
    }
    best.0
}

/// Daily means of hourly values, a day starting at each local midnight (`how[i] % 24 == 0`):
/// `None` for a day with fewer than 12 hours measured. With `deseasonalize`, of each hour's
/// departure from the mean of its hour of the week over the whole series, so that a busy Saturday
/// is not a change. Returns the index of each day's first hour with its mean.
pub fn daily_means(
    values: &[Option<f64>],
    how: &[u16],
    deseasonalize: bool,
) -> Vec<(usize, Option<f64>)> {
    let n = values.len().min(how.len());
    let mut profile = vec![(0.0, 0usize); crate::WEEK];
    if deseasonalize {
        for i in 0..n {
            if let Some(v) = values[i] {
                let h = usize::from(how[i]) % crate::WEEK;
                profile[h].0 += v;
                profile[h].1 += 1;
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let start = i;
        let (mut s, mut c) = (0.0, 0usize);
        loop {
            if let Some(v) = values[i] {
                let h = usize::from(how[i]) % crate::WEEK;
                s += if deseasonalize { v - profile[h].0 / profile[h].1 as f64 } else { v };
                c += 1;
            }
            i += 1;
            if i >= n || how[i].is_multiple_of(24) {
                break;
            }
        }
        out.push((start, (c >= 12).then(|| s / c as f64)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{Rng, hows, seasonal};
    use crate::{WEEK, backtest};

    #[test]
    fn a_sustained_departure_is_unlikely_and_a_clean_series_is_not() {
        for seed in 0..8 {
            let v = seasonal(seed, 2.0);
            let how = hows(v.len() + 48);
            let bt = backtest(&v, &how, 28, 48).unwrap();
            let found = unlikely(&bt, &v, &how, 7);
            assert!(found.is_empty(), "seed {seed}: {found:?}");
        }
        // Five hours 30 above the usual, a day and a half ago; a one-hour spike yesterday.
        let mut v = seasonal(3, 2.0);
        let n = v.len();
        for x in &mut v[n - 36..n - 31] {
            *x = Some(x.unwrap() + 30.0);
        }
        v[n - 10] = Some(v[n - 10].unwrap() + 50.0);
        let how = hows(n + 48);
        let bt = backtest(&v, &how, 28, 48).unwrap();
        let found = unlikely(&bt, &v, &how, 7);
        assert_eq!(found.len(), 1, "{found:?}");
        // Repeating yesterday would expect the same five hours again today: they are not
        // echoed as an anomaly of today. (A daily cycle without weekends, which repeating
        // yesterday cannot know.)
        let mut r = Rng(11);
        let mut v: Vec<Option<f64>> = (0..6 * WEEK)
            .map(|i| {
                let h = (i % DAY) as f64;
                Some(
                    50.0 + 20.0 * (2.0 * std::f64::consts::PI * (h - 9.0) / 24.0).sin()
                        + 2.0 * r.normal(),
                )
            })
            .collect();
        for x in &mut v[n - 36..n - 31] {
            *x = Some(x.unwrap() + 30.0);
        }
        // (Its errors are the difference of two hours' noise: σ√2, normal.)
        let sd = 2.0 * std::f64::consts::SQRT_2;
        let q = [-1.96 * sd, -1.2816 * sd, 1.2816 * sd, 1.96 * sd];
        let bands = crate::BANDS
            .iter()
            .map(|(first, last)| crate::Band { first: *first, last: *last, q })
            .collect();
        let tails = [-2.326 * sd, 0.0, 2.326 * sd];
        let naive = Backtest { chosen: crate::Method::NaiveDay, bands, tails, ..bt.clone() };
        let again = unlikely(&naive, &v, &how, 7);
        assert_eq!(again.len(), 1, "{again:?}");
        assert_eq!((again[0].first, again[0].last), (n - 36, n - 32));
        assert_eq!((found[0].first, found[0].last), (n - 36, n - 32));
        assert!(found[0].actual > found[0].hi && found[0].expected < found[0].hi);
    }

    /// 35 days of AR(1) noise about 10 (ρ = 0.6, as a warm week's days), from `seed`.
    fn ar1(seed: u64) -> Vec<Option<f64>> {
        let mut r = Rng(seed);
        let mut x = 0.0;
        (0..35)
            .map(|_| {
                x = 0.6 * x + r.normal();
                Some(10.0 + x)
            })
            .collect()
    }

    #[test]
    fn a_level_shift_is_found_where_it_is_and_noise_has_none() {
        // 35 days of N(10, 1), then +3 from day 22.
        let mut false_alarms = 0;
        for seed in 0..300 {
            let mut r = Rng(1000 + seed);
            let days: Vec<Option<f64>> = (0..35).map(|_| Some(10.0 + r.normal())).collect();
            false_alarms += usize::from(level_shift(&days).is_some());
        }
        // 0.1 % a series (fewer: the test is conservative on 35 days); a few at most.
        assert!(false_alarms <= 3, "{false_alarms} of 300 noise series had a shift");
        // +3 σ from day 22, over 50 series (a day without a value in each): found in every
        // one, at the right day within two in nearly all, with the right size.
        let mut near = 0;
        for seed in 0..50 {
            let mut r = Rng(7 + seed);
            let mut days: Vec<Option<f64>> = (0..35)
                .map(|d| Some(10.0 + r.normal() + if d >= 22 { 3.0 } else { 0.0 }))
                .collect();
            days[5] = None;
            let s = level_shift(&days).expect("a shift of 3 σ");
            near += usize::from((20..=24).contains(&s.day));
            assert!((s.after - s.before - 3.0).abs() < 1.5, "{s:?}");
        }
        assert!(near >= 45, "{near} of 50 changes placed within two days");
        let mut r = Rng(7);
        // A drift (a sensor whose gain creeps up 3 % a day for 12 days) is found too.
        let days: Vec<Option<f64>> =
            (0..35).map(|d| Some(0.02 * r.normal() + 0.03 * (d as f64 - 23.0).max(0.0))).collect();
        assert!(level_shift(&days).is_some());
        // Days that follow one another (AR(1), ρ = 0.6, as a warm week's): no more false alarms
        // for it, the long-run scale taking ρ in.
        let alarms = (0..300).filter(|seed| level_shift(&ar1(5000 + seed)).is_some()).count();
        // About 4.5 % (simulated on 2,000 series), against 42 % with the independent days' scale.
        assert!(alarms <= 25, "{alarms} of 300 autocorrelated series had a shift");
        // One exceptional day is a significant departure, not a change of level: the medians
        // either side say so.
        let mut one: Vec<Option<f64>> = (0..35).map(|_| Some(10.0 + 0.1 * r.normal())).collect();
        one[30] = Some(15.0);
        if let Some(s) = level_shift(&one) {
            assert!((s.after - s.before).abs() < 0.2, "{s:?}");
        }
        // Too few days either side.
        let short: Vec<Option<f64>> = (0..5).map(|d| Some(d as f64)).collect();
        assert_eq!(level_shift(&short), None);
    }

    #[test]
    fn a_drift_is_found_however_long_it_creeps_and_noise_seldom_passes_for_one() {
        // Noise-free ramps over the last 4 to 22 of 26 days: the step test misses the long ones
        // (a ramp's shape passes for autocorrelated days about two means), the drift test finds
        // every one.
        let ramp = |start: usize| -> Vec<Option<f64>> {
            (0..26usize)
                .map(|d| Some((1.0 + 0.025 * d.saturating_sub(start) as f64).ln()))
                .collect()
        };
        assert!(level_shift(&ramp(10)).is_none(), "the step test's blind spot is gone?");
        for start in [4, 8, 10, 14, 18, 22] {
            let s = drift(&ramp(start)).unwrap_or_else(|| panic!("a ramp from day {start}"));
            // Flat to day `start`, rising from the next (a logarithm's curve, which a line
            // from a day earlier may fit as well): found there, the level before it flat.
            assert!((start..=start + 1).contains(&s.day), "{start}: {s:?}");
            assert!(s.before.abs() < 1e-12 && s.after > 0.0, "{start}: {s:?}");
        }
        // 2.5 % a day for 12 days on day-to-day noise of 2 %: found in nearly every series.
        let (mut found, mut near) = (0, 0);
        for seed in 0..100 {
            let mut r = Rng(300 + seed);
            let days: Vec<Option<f64>> = (0..26)
                .map(|d: usize| {
                    Some(0.02 * r.normal() + (1.0f64 + 0.025 * (d.max(14) - 14) as f64).ln())
                })
                .collect();
            if let Some(s) = drift(&days) {
                found += 1;
                near += usize::from((13..=17).contains(&s.day));
            }
        }
        assert!(found >= 97, "{found} of 100 drifts found");
        // Rising from day 15: its start placed within two days in nearly all (99 here).
        assert!(near >= 90, "{near} of {found} drifts' starts within two days");
        // A step is a drift too.
        let mut r = Rng(11);
        let step: Vec<Option<f64>> =
            (0..35).map(|d| Some(r.normal() + if d >= 22 { 3.0 } else { 0.0 })).collect();
        let s = drift(&step).expect("a step");
        assert!((20..=24).contains(&s.day), "{s:?}");
        // Independent days: as rare as the step test's false alarms.
        let mut alarms = 0;
        for seed in 0..300 {
            let mut r = Rng(1000 + seed);
            let days: Vec<Option<f64>> = (0..35).map(|_| Some(10.0 + r.normal())).collect();
            alarms += usize::from(drift(&days).is_some());
        }
        assert!(alarms <= 3, "{alarms} of 300 noise series had a drift");
        // Autocorrelated days (AR(1), ρ = 0.6): a few more than the step test's, which the
        // callers' least drift that matters cuts.
        let alarms = (0..300).filter(|seed| drift(&ar1(5000 + seed)).is_some()).count();
        // (22 of these 300; 7.5 % simulated on 2,000.)
        assert!(alarms <= 30, "{alarms} of 300 autocorrelated series had a drift");
    }

    #[test]
    fn the_critical_value_is_kolmogorovs_at_one_in_a_thousand() {
        // P(K > x) = 2 Σ (−1)^(k−1) e^(−2k²x²) (Kolmogorov, 1933); tables give 1.95 at 0.001.
        let tail = |x: f64| {
            2.0 * (1..100)
                .map(|k: i32| (-1f64).powi(k - 1) * (-2.0 * f64::from(k * k) * x * x).exp())
                .sum::<f64>()
        };
        assert!((tail(SHIFT_CRITICAL) - 0.001).abs() < 2e-6, "{}", tail(SHIFT_CRITICAL));
        // And the usual 5 % value, 1.358.
        assert!((tail(1.358) - 0.05).abs() < 2e-4, "{}", tail(1.358));
    }

    #[test]
    fn daily_means_follow_local_days_and_leave_thin_days_out() {
        let v: Vec<Option<f64>> = (0..3 * DAY).map(|i| Some((i / DAY) as f64)).collect();
        let mut how = hows(3 * DAY);
        // Start at 20:00: a short first day.
        how.rotate_left(20);
        let d = daily_means(&v, &how, false);
        assert_eq!(d[0], (0, None), "4 hours on the first day");
        assert_eq!(d[1].0, 4);
        // Indices 4 to 27: twenty hours of day 0's value (0) and four of day 1's (1).
        assert!((d[1].1.unwrap() - 4.0 / 24.0).abs() < 1e-9, "{d:?}");
        let flat = daily_means(&seasonal(1, 0.0), &hows(6 * WEEK), true);
        assert_eq!(flat.len(), 42);
        assert!(flat.iter().all(|(_, m)| m.unwrap().abs() < 1e-9), "{flat:?}");
    }
}
