//! Forecasts of hourly series, honest about their accuracy.
//!
//! A series is a run of consecutive hours (`None` where nothing was measured), each with its
//! local hour of the week (0 = Monday 00:00 … 167 = Sunday 23:00), so that the daily and weekly
//! cycles follow the city's clock across summer time. Candidates are the two seasonal naive
//! forecasts (the same hour yesterday, the same hour last week) and a profile model: the mean of
//! each hour of the day, or of the week, or a blend, over the last four weeks, plus what the series
//! did lately above or below it (an exponentially smoothed level), damped as the horizon grows.
//!
//! [`backtest`] replays the last weeks: from each origin (one a day, or closer on a shorter
//! history), each candidate is fitted on
//! the hours before the origin only and forecasts the 48 hours after; the candidate with the lowest
//! mean absolute error on the hours every candidate forecast is chosen — a seasonal naive one when
//! nothing beats it. Its prediction intervals are the quantiles of its own backtest errors at
//! similar horizons, and their coverage is measured leaving each origin's errors out of its own
//! intervals, so that the coverage reported is the one a user would have seen.

use serde::Serialize;

pub mod anomaly;

/// Hours in a day and in a week.
const DAY: usize = 24;
const WEEK: usize = 168;
/// Hours of history a profile is fitted on (four weeks).
const WINDOW: usize = 4 * WEEK;

/// How a forecast is made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Method {
    /// The same hour the day before (two days before beyond 24 hours; up to two weeks back
    /// over missing days). It steps back 24 hours, so for a day after a clock change it is one
    /// local hour off.
    NaiveDay,
    /// The same hour the week before.
    NaiveWeek,
    /// The hour's mean over the last `days` days (28, or fewer for series that drift over days,
    /// like the weather): of the hour of the day (`weekly` at 0), of the hour of the week
    /// (`weekly` at 1) or a blend; plus the recent departure from it, smoothed with `alpha` and
    /// damped by `phi` an hour.
    Profile {
        /// Days the profile is the mean of.
        days: u16,
        /// Weight of the weekly profile against the daily one.
        weekly: f64,
        /// Smoothing of the departure (0–1: higher follows the last hours more).
        alpha: f64,
        /// Damping of the departure per hour ahead (0–1).
        phi: f64,
    },
}

impl Method {
    /// The candidates a backtest chooses among.
    pub const CANDIDATES: [Method; 12] = [
        Method::NaiveDay,
        Method::NaiveWeek,
        Method::Profile { days: 28, weekly: 0.0, alpha: 0.5, phi: 0.9 },
        Method::Profile { days: 28, weekly: 0.5, alpha: 0.5, phi: 0.9 },
        Method::Profile { days: 28, weekly: 1.0, alpha: 0.5, phi: 0.9 },
        Method::Profile { days: 28, weekly: 0.0, alpha: 0.3, phi: 0.97 },
        Method::Profile { days: 28, weekly: 0.5, alpha: 0.3, phi: 0.97 },
        Method::Profile { days: 28, weekly: 1.0, alpha: 0.3, phi: 0.97 },
        Method::Profile { days: 3, weekly: 0.0, alpha: 0.5, phi: 0.95 },
        Method::Profile { days: 7, weekly: 0.0, alpha: 0.5, phi: 0.97 },
        // Levels that last for days (a winter anticyclone's particles): a slow departure, barely
        // damped — yesterday's level with the usual day's shape.
        Method::Profile { days: 28, weekly: 0.0, alpha: 0.1, phi: 0.995 },
        Method::Profile { days: 28, weekly: 0.0, alpha: 0.05, phi: 0.998 },
    ];

    /// Whether it is one of the seasonal naive forecasts.
    pub fn is_naive(self) -> bool {
        matches!(self, Method::NaiveDay | Method::NaiveWeek)
    }

    /// Its name for people.
    pub fn name(self) -> String {
        match self {
            Method::NaiveDay => "seasonal naive (same hour yesterday)".into(),
            Method::NaiveWeek => "seasonal naive (same hour last week)".into(),
            Method::Profile { days, weekly, alpha, phi } => format!(
                "profile of {days} days (weekly weight {weekly}) with a smoothed level (α {alpha}, φ {phi})"
            ),
        }
    }
}

/// Forecast `horizon` hours after `origin` (the index of the first hour forecast) from the hours
/// before it only. `how[i]` is hour `i`'s hour of the week; it must cover `origin + horizon`.
/// `None` where the method has nothing to go on.
pub fn forecast(
    method: Method,
    values: &[Option<f64>],
    how: &[u16],
    origin: usize,
    horizon: usize,
) -> Vec<Option<f64>> {
    let origin = origin.min(values.len());
    let past = &values[..origin];
    let last_before = |t: usize, period: usize| -> Option<f64> {
        // The latest value at t − k·period that is before the origin.
        let mut k = t.saturating_sub(origin) / period + 1;
        while k * period <= t {
            if let Some(v) = past.get(t - k * period).copied().flatten() {
                return Some(v);
            }
            k += 1;
            if k * period > t || t - k * period + 2 * WEEK < origin {
                break;
            }
        }
        None
    };
    match method {
        Method::NaiveDay => (origin..origin + horizon).map(|t| last_before(t, DAY)).collect(),
        Method::NaiveWeek => (origin..origin + horizon).map(|t| last_before(t, WEEK)).collect(),
        Method::Profile { days, weekly, alpha, phi } => {
            let from = origin.saturating_sub((usize::from(days) * DAY).min(WINDOW));
            let (mut day, mut week) = ([(0.0, 0usize); DAY], vec![(0.0, 0usize); WEEK]);
            for i in from..origin {
                if let Some(v) = past[i] {
                    let h = usize::from(how[i]) % WEEK;
                    day[h % DAY].0 += v;
                    day[h % DAY].1 += 1;
                    week[h].0 += v;
                    week[h].1 += 1;
                }
            }
            let mean = |(s, n): (f64, usize)| (n > 0).then(|| s / n as f64);
            let profile = |h: u16| -> Option<f64> {
                let h = usize::from(h) % WEEK;
                let d = mean(day[h % DAY])?;
                Some(match mean(week[h]) {
                    Some(w) => weekly * w + (1.0 - weekly) * d,
                    None => d,
                })
            };
            // The recent departure from the profile, smoothed.
            let mut level = 0.0;
            for i in from..origin {
                if let (Some(v), Some(p)) = (past[i], profile(how[i])) {
                    level = alpha * (v - p) + (1.0 - alpha) * level;
                }
            }
            (origin..origin + horizon)
                .map(|t| {
                    let ahead = (t - origin + 1) as i32;
                    profile(*how.get(t)?).map(|p| p + level * phi.powi(ahead))
                })
                .collect()
        }
    }
}

/// A candidate's accuracy on the backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Score {
    /// The method.
    pub method: Method,
    /// Its name for people.
    pub name: String,
    /// Mean absolute error, in the series' unit (on the hours every candidate forecast).
    pub mae: f64,
    /// Mean absolute scaled error: its MAE scaled by the seasonal naive forecast's (the same hour
    /// yesterday) on the same hours — the scale of Hyndman and Koehler (2006) taken out of
    /// sample, so that below 1 it did better than repeating yesterday, and 1 is naive itself.
    pub mase: f64,
    /// Symmetric mean absolute percentage error, in % (hours where both are zero left out).
    pub smape: f64,
}

/// The outcome of a backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backtest {
    /// The method chosen (the lowest MAE; a seasonal naive one when no model beats it).
    pub chosen: Method,
    /// Whether a model beat both seasonal naive forecasts (otherwise the forecast published is
    /// seasonal naive, and says so).
    pub beats_naive: bool,
    /// Every candidate's scores, best first.
    pub scores: Vec<Score>,
    /// Origins replayed.
    pub origins: usize,
    /// Hours between two origins (24; 18 or 12 when the history is short).
    pub spacing_hours: usize,
    /// Hours compared.
    pub hours: usize,
    /// Share of actual values inside the chosen method's 80 % and 95 % intervals (each origin's
    /// intervals made without its own errors).
    pub coverage_80: f64,
    /// The same for 95 %.
    pub coverage_95: f64,
    /// The chosen method's error quantiles by horizon band, for its intervals.
    #[serde(skip)]
    pub bands: Vec<Band>,
    /// The 1 %, 50 % and 99 % quantiles of all its errors (every horizon): the tails anomalies
    /// are judged against.
    #[serde(skip)]
    pub tails: [f64; 3],
}

/// Error quantiles of a horizon band (hours ahead `first..=last`).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// First hour ahead.
    pub first: usize,
    /// Last.
    pub last: usize,
    /// Quantiles 2.5 %, 10 %, 90 %, 97.5 % of actual − forecast.
    pub q: [f64; 4],
}

/// Hours compared below which no accuracy or interval is given (and a band borrows every
/// horizon's errors).
const MIN_COMPARED: usize = 40;

/// Horizon bands intervals are taken over (hours ahead).
const BANDS: [(usize, usize); 4] = [(1, 3), (4, 12), (13, 24), (25, 48)];

/// Why a backtest or forecast is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Too little history.
    TooShort {
        /// Hours with a value.
        hours: usize,
        /// Hours needed.
        needed: usize,
    },
    /// Too few hours with a value in the days replayed to measure an accuracy or intervals.
    TooFewCompared {
        /// Hours compared.
        hours: usize,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooFewCompared { hours } => write!(
                f,
                "{hours} hours with a value in the days replayed: too few to measure how good a forecast would be"
            ),
            Refusal::TooShort { hours, needed } => write!(
                f,
                "{hours} hours with a value: a forecast needs {needed} (a week of history and the hours replayed)"
            ),
        }
    }
}

/// The `p`-quantile of sorted values (linear interpolation).
pub(crate) fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn band_of(ahead: usize) -> usize {
    BANDS.iter().position(|(a, b)| (*a..=*b).contains(&ahead)).unwrap_or(BANDS.len() - 1)
}

/// Replay `origins` origins — a day apart, or 18 or 12 hours apart on a shorter history — ending
/// `horizon` hours before the end of `values`: fit each candidate on the hours before each origin
/// and forecast `horizon` hours. Refused when there is not a week of hours (half of them with a
/// value) before the first origin, or fewer than 40 hours to compare.
pub fn backtest(
    values: &[Option<f64>],
    how: &[u16],
    origins: usize,
    horizon: usize,
) -> Result<Backtest, Refusal> {
    let n = values.len();
    // From the first value: a week to fit on, then the origins — a day apart when the history
    // allows, closer (18 or 12 hours) when it is shorter, never fewer of them.
    let begins = values.iter().position(Option::is_some).unwrap_or(n);
    let available = n - begins;
    let span = |step: usize| horizon + step * origins.saturating_sub(1);
    let too_short =
        || Refusal::TooShort { hours: values.iter().flatten().count(), needed: WEEK + span(12) };
    let step =
        [DAY, 18, 12].into_iter().find(|s| WEEK + span(*s) <= available).ok_or_else(too_short)?;
    let first_origin = n - span(step);
    if values[begins..first_origin].iter().flatten().count() < WEEK / 2 {
        return Err(too_short());
    }
    let origin_list: Vec<usize> = (0..origins).map(|k| first_origin + k * step).collect();
    // errors[candidate][origin] = (hour ahead, actual, forecast) where all candidates forecast.
    let mut per: Vec<Vec<Vec<(usize, f64, f64)>>> =
        vec![vec![Vec::new(); origin_list.len()]; Method::CANDIDATES.len()];
    for (k, &o) in origin_list.iter().enumerate() {
        let f: Vec<Vec<Option<f64>>> =
            Method::CANDIDATES.iter().map(|m| forecast(*m, values, how, o, horizon)).collect();
        for a in 0..horizon {
            let Some(actual) = values.get(o + a).copied().flatten() else { continue };
            if f.iter().any(|x| x[a].is_none()) {
                continue;
            }
            for (c, x) in f.iter().enumerate() {
                per[c][k].push((a + 1, actual, x[a].expect("checked")));
            }
        }
    }
    let mut scores: Vec<(usize, Score)> = Method::CANDIDATES
        .iter()
        .enumerate()
        .map(|(c, m)| {
            let all: Vec<&(usize, f64, f64)> = per[c].iter().flatten().collect();
            let mae =
                all.iter().map(|(_, y, f)| (y - f).abs()).sum::<f64>() / all.len().max(1) as f64;
            let sm: Vec<f64> = all
                .iter()
                .filter(|(_, y, f)| y.abs() + f.abs() > 0.0)
                .map(|(_, y, f)| 200.0 * (y - f).abs() / (y.abs() + f.abs()))
                .collect();
            let smape = sm.iter().sum::<f64>() / sm.len().max(1) as f64;
            (c, Score { method: *m, name: m.name(), mae, mase: f64::NAN, smape })
        })
        .collect();
    // The MASE's scale: seasonal naive's MAE on the same hours.
    let scale =
        scores.iter().find(|(_, s)| s.method == Method::NaiveDay).map_or(f64::NAN, |(_, s)| s.mae);
    for (_, s) in &mut scores {
        s.mase = if scale > 0.0 { s.mae / scale } else { f64::NAN };
    }
    scores.sort_by(|a, b| a.1.mae.total_cmp(&b.1.mae));
    let (best, chosen) = (scores[0].0, scores[0].1.method);
    let hours = per[best].iter().map(Vec::len).sum();
    // Intervals: the chosen method's error quantiles per horizon band; coverage with each
    // origin's intervals made from the other origins' errors.
    if hours < MIN_COMPARED {
        return Err(Refusal::TooFewCompared { hours });
    }
    let bands_without = |skip: Option<usize>| -> Vec<Band> {
        let errors = |band: Option<usize>| -> Vec<f64> {
            let mut e: Vec<f64> = per[best]
                .iter()
                .enumerate()
                .filter(|(k, _)| Some(*k) != skip)
                .flat_map(|(_, v)| v.iter())
                .filter(|(a, _, _)| band.is_none_or(|b| band_of(*a) == b))
                .map(|(_, y, f)| y - f)
                .collect();
            e.sort_by(f64::total_cmp);
            e
        };
        BANDS
            .iter()
            .enumerate()
            .map(|(b, (first, last))| {
                // A band with too few errors takes every horizon's.
                let mut e = errors(Some(b));
                if e.len() < MIN_COMPARED {
                    e = errors(None);
                }
                Band {
                    first: *first,
                    last: *last,
                    q: [
                        quantile(&e, 0.025),
                        quantile(&e, 0.1),
                        quantile(&e, 0.9),
                        quantile(&e, 0.975),
                    ],
                }
            })
            .collect()
    };
    let (mut in80, mut in95, mut total) = (0usize, 0usize, 0usize);
    for (k, errors) in per[best].iter().enumerate() {
        let bands = bands_without(Some(k));
        for (a, y, f) in errors {
            let q = bands[band_of(*a)].q;
            let e = y - f;
            total += 1;
            in80 += usize::from(q[1] <= e && e <= q[2]);
            in95 += usize::from(q[0] <= e && e <= q[3]);
        }
    }
    let naive_mae = scores
        .iter()
        .filter(|(_, s)| s.method.is_naive())
        .map(|(_, s)| s.mae)
        .fold(f64::INFINITY, f64::min);
    Ok(Backtest {
        chosen,
        beats_naive: !chosen.is_naive() && scores[0].1.mae < naive_mae,
        scores: scores.into_iter().map(|(_, s)| s).collect(),
        origins: origin_list.len(),
        spacing_hours: step,
        hours,
        coverage_80: in80 as f64 / total.max(1) as f64,
        coverage_95: in95 as f64 / total.max(1) as f64,
        bands: bands_without(None),
        tails: {
            let mut e: Vec<f64> = per[best].iter().flatten().map(|(_, y, f)| y - f).collect();
            e.sort_by(f64::total_cmp);
            [quantile(&e, 0.01), quantile(&e, 0.5), quantile(&e, 0.99)]
        },
    })
}

/// An hour forecast, with its intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Predicted {
    /// Hours ahead (1 = the first hour after the last one measured).
    pub ahead: usize,
    /// The forecast.
    pub value: f64,
    /// The 80 % interval.
    pub lo80: f64,
    /// Its upper end.
    pub hi80: f64,
    /// The 95 % interval.
    pub lo95: f64,
    /// Its upper end.
    pub hi95: f64,
}

/// The forecast of the `horizon` hours after the end of `values` with the method a backtest chose,
/// and that backtest's intervals (`how` must cover the hours forecast). `None` for an hour the
/// method has nothing for.
pub fn predict(
    bt: &Backtest,
    values: &[Option<f64>],
    how: &[u16],
    horizon: usize,
) -> Vec<Option<Predicted>> {
    let origin = values.len();
    forecast(bt.chosen, values, how, origin, horizon)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let v = v?;
            let q = bt.bands.get(band_of(i + 1))?.q;
            Some(Predicted {
                ahead: i + 1,
                value: v,
                lo80: v + q[1],
                hi80: v + q[2],
                lo95: v + q[0],
                hi95: v + q[3],
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reproducible standard normal draws (SplitMix64 and Box–Muller).
    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        pub(crate) fn normal(&mut self) -> f64 {
            let (u, v) = (self.unit().max(1e-300), self.unit());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// Hours of the week from a Monday midnight.
    pub(crate) fn hows(n: usize) -> Vec<u16> {
        (0..n).map(|i| (i % WEEK) as u16).collect()
    }

    /// Six weeks of a daily and weekly cycle (weekends busier in the afternoon) with noise σ.
    pub(crate) fn seasonal(seed: u64, sigma: f64) -> Vec<Option<f64>> {
        let mut r = Rng(seed);
        (0..6 * WEEK)
            .map(|i| {
                let h = (i % DAY) as f64;
                let weekend = (i % WEEK) / DAY >= 5;
                let day = 20.0 * (2.0 * std::f64::consts::PI * (h - 9.0) / 24.0).sin();
                let extra = if weekend && (12.0..20.0).contains(&h) { 15.0 } else { 0.0 };
                Some(50.0 + day + extra + sigma * r.normal())
            })
            .collect()
    }

    #[test]
    fn on_a_known_cycle_the_error_is_the_noise_and_the_intervals_cover() {
        // E|N(0, σ)| = σ·√(2/π) ≈ 1.60 for σ = 2: the profile (4 weeks of each hour, ±σ/2)
        // should come within a few tenths; seasonal naive errs by √2 times the noise.
        let sigma = 2.0;
        let mut cov = (0.0, 0.0);
        for seed in 0..5 {
            let v = seasonal(seed, sigma);
            let bt = backtest(&v, &hows(v.len() + 48), 28, 48).unwrap();
            assert!(!bt.chosen.is_naive() && bt.beats_naive, "{bt:?}");
            let best = &bt.scores[0];
            assert!(best.mae < 1.25 * sigma * (2.0 / std::f64::consts::PI).sqrt(), "{best:?}");
            let naive = bt.scores.iter().find(|s| s.method == Method::NaiveDay).unwrap();
            assert!(best.mase < 0.9 && naive.mase == 1.0, "{best:?} against {naive:?}");
            eprintln!("seed {seed}: {} MAE {:.2} (naive {:.2})", best.name, best.mae, naive.mae);
            assert_eq!(bt.origins, 28);
            cov.0 += bt.coverage_80 / 5.0;
            cov.1 += bt.coverage_95 / 5.0;
        }
        eprintln!("intervals' coverage over 5 series: 80 % → {:.3}, 95 % → {:.3}", cov.0, cov.1);
        assert!((cov.0 - 0.80).abs() < 0.04, "80 % intervals cover {:.3}", cov.0);
        assert!((cov.1 - 0.95).abs() < 0.03, "95 % intervals cover {:.3}", cov.1);
    }

    #[test]
    fn where_nothing_beats_repeating_yesterday_agora_publishes_seasonal_naive() {
        // A seasonal random walk: each hour of the day is yesterday's same hour plus noise. The
        // best forecast there is repeats yesterday; no profile beats it, and the backtest says so.
        for seed in 0..3 {
            let mut r = Rng(100 + seed);
            let mut v: Vec<Option<f64>> = Vec::new();
            for i in 0..6 * WEEK {
                let base = if i < DAY { 100.0 } else { v[i - DAY].unwrap() };
                v.push(Some(base + r.normal()));
            }
            let bt = backtest(&v, &hows(v.len() + 48), 28, 48).unwrap();
            assert_eq!(bt.chosen, Method::NaiveDay, "{:?}", bt.scores[0]);
            assert!(!bt.beats_naive);
        }
    }

    #[test]
    fn on_pure_noise_the_mean_beats_repeating_yesterday_and_is_published_as_such() {
        // White noise around a constant: repeating yesterday doubles the noise's variance; the
        // four weeks' mean does not. Falling back to seasonal naive here would publish the worse
        // forecast, so the backtest keeps the model — and its MASE says by how much.
        let mut r = Rng(42);
        let v: Vec<Option<f64>> = (0..6 * WEEK).map(|_| Some(20.0 + r.normal())).collect();
        let bt = backtest(&v, &hows(v.len() + 48), 28, 48).unwrap();
        assert!(bt.beats_naive, "{:?}", bt.scores[0]);
        let naive = bt.scores.iter().find(|s| s.method == Method::NaiveDay).unwrap();
        // E|a − b| for two N(0,1) is 2/√π ≈ 1.13; E|N(0,1)| ≈ 0.80: a ratio near 0.71.
        let ratio = bt.scores[0].mae / naive.mae;
        assert!((0.6..0.8).contains(&ratio), "{ratio}");
    }

    #[test]
    fn a_forecast_never_sees_after_its_origin() {
        let mut v = seasonal(7, 1.0);
        let how = hows(v.len() + 48);
        let origin = v.len() - 100;
        let before: Vec<Vec<Option<f64>>> =
            Method::CANDIDATES.iter().map(|m| forecast(*m, &v, &how, origin, 48)).collect();
        // A spike planted right after the origin changes nothing forecast from it.
        for x in &mut v[origin..origin + 30] {
            *x = Some(1e6);
        }
        for (m, f) in Method::CANDIDATES.iter().zip(&before) {
            assert_eq!(&forecast(*m, &v, &how, origin, 48), f, "{m:?}");
        }
        // The backtest's origins are before the spike's… and a spike before an origin does show.
        let later = forecast(Method::NaiveDay, &v, &how, origin + 40, 48);
        assert!(later.iter().flatten().any(|x| *x == 1e6));
    }

    #[test]
    fn naive_forecasts_repeat_the_day_and_the_week() {
        let v: Vec<Option<f64>> = (0..2 * WEEK).map(|i| Some(i as f64)).collect();
        let how = hows(v.len() + 48);
        let n = v.len();
        let d = forecast(Method::NaiveDay, &v, &how, n, 48);
        assert_eq!(d[0], Some((n - 24) as f64));
        assert_eq!(d[30], Some((n + 30 - 48) as f64), "two days back beyond 24 hours");
        let w = forecast(Method::NaiveWeek, &v, &how, n, 48);
        assert_eq!(w[5], Some((n + 5 - WEEK) as f64));
        // A missing hour yesterday: the day before.
        let mut gap = v.clone();
        gap[n - 24] = None;
        assert_eq!(forecast(Method::NaiveDay, &gap, &how, n, 1)[0], Some((n - 48) as f64));
    }

    #[test]
    fn too_little_history_is_refused() {
        let v: Vec<Option<f64>> = vec![Some(1.0), Some(2.0)];
        let e = backtest(&v, &hows(60), 28, 48).unwrap_err();
        assert_eq!(e, Refusal::TooShort { hours: 2, needed: WEEK + 48 + 27 * 12 });
        // Thirty days (a demo's history): 28 origins 18 hours apart.
        let v = &seasonal(1, 1.0)[..30 * DAY];
        let bt = backtest(v, &hows(v.len() + 48), 28, 48).unwrap();
        assert_eq!((bt.origins, bt.spacing_hours), (28, 18));
        // Six weeks, the first two empty: as thirty days.
        let mut late = seasonal(1, 1.0);
        late[..12 * DAY].fill(None);
        let bt = backtest(&late, &hows(late.len() + 48), 28, 48).unwrap();
        assert_eq!(bt.spacing_hours, 18);
        // A sensor silent for the days replayed: nothing to measure the forecast against.
        let mut silent = seasonal(1, 1.0);
        let n = silent.len();
        silent[n - 30 * DAY..].fill(None);
        silent[n - 1] = Some(1.0);
        let quiet = backtest(&silent, &hows(n + 48), 28, 48).unwrap_err();
        assert!(matches!(quiet, Refusal::TooFewCompared { .. }), "{quiet:?}");
        assert!(e.to_string().starts_with("2 hours with a value"));
    }

    #[test]
    fn predictions_carry_the_backtest_intervals() {
        let v = seasonal(3, 2.0);
        let how = hows(v.len() + 48);
        let bt = backtest(&v, &how, 28, 48).unwrap();
        let p = predict(&bt, &v, &how, 48);
        assert_eq!(p.len(), 48);
        for x in p.iter().flatten() {
            // Ordered (a biased method's interval may not hold its own value: it says the bias).
            assert!(x.lo95 <= x.lo80 && x.lo80 <= x.hi80 && x.hi80 <= x.hi95, "{x:?}");
            assert!(x.lo95 <= x.value && x.value <= x.hi95, "{x:?}");
        }
        // The first hour ahead: about 50 + 20 sin(2π(h − 9)/24) at h = 0 (a Monday midnight).
        let expected = 50.0 + 20.0 * (2.0 * std::f64::consts::PI * (-9.0) / 24.0).sin();
        assert!((p[0].unwrap().value - expected).abs() < 3.0, "{:?} against {expected}", p[0]);
    }
}
