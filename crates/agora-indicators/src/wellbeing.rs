//! The well-being index, built the OECD way (*Handbook on Constructing Composite Indicators*,
//! OECD/JRC 2008): each indicator normalised to 0–1 by min–max over a declared reference range,
//! inverted when lower is better; a dimension is the mean of its indicators; the index is the
//! weighted mean of the dimensions, the weights published with it. Missing indicators are never
//! zeros: a dimension is the mean of those present, the index the weighted mean of the dimensions
//! present with their weights rescaled, and the coverage of both is said. The robustness of the
//! places' ranks is tested by perturbing the weights at random, by equal weights and by leaving
//! each dimension out.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// Whether a higher value of an indicator is better for well-being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Footfall, access to services, survey scores.
    Higher,
    /// Pollution, noise, heat, overflowing bins, lighting faults.
    Lower,
}

/// An indicator of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// Its name (`no2_annual_mean`).
    pub id: String,
    /// Its dimension (`environment`).
    pub dimension: String,
    /// Which way is better.
    pub better: Better,
    /// The reference range normalised to 0–1 (the declared min and max); values outside are
    /// clamped, and said so.
    pub min: f64,
    /// Max of the range.
    pub max: f64,
}

/// The index's definition: its indicators and each dimension's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The indicators.
    pub indicators: Vec<Indicator>,
    /// Weights by dimension, summing to 1.
    pub weights: BTreeMap<String, f64>,
    /// Below this share of the weights present, a place has no index (its dimensions are still
    /// given).
    pub min_coverage: f64,
}

impl Definition {
    /// Checks ranges, directions, dimensions and weights: every indicator's range is finite and
    /// not empty, each indicator's dimension is weighted, each weighted dimension has indicators,
    /// weights are finite, not negative and sum to 1.
    pub fn check(&self) -> Result<()> {
        let mut ids = std::collections::BTreeSet::new();
        for i in &self.indicators {
            if !ids.insert(&i.id) {
                return Err(Error::invalid(format!("indicator {:?} is listed twice", i.id)));
            }
            if !(i.min.is_finite() && i.max.is_finite() && i.max > i.min) {
                return Err(Error::invalid(format!(
                    "indicator {:?}: its reference range must have min < max, not {} – {}",
                    i.id, i.min, i.max
                )));
            }
            if !self.weights.contains_key(&i.dimension) {
                return Err(Error::invalid(format!(
                    "indicator {:?} is in dimension {:?}, which has no weight",
                    i.id, i.dimension
                )));
            }
        }
        let mut sum = 0.0;
        for (d, w) in &self.weights {
            if !w.is_finite() || *w < 0.0 {
                return Err(Error::invalid(format!(
                    "the weight of {d:?} must be 0 or more, not {w}"
                )));
            }
            if !self.indicators.iter().any(|i| &i.dimension == d) {
                return Err(Error::invalid(format!(
                    "dimension {d:?} has a weight but no indicator"
                )));
            }
            sum += w;
        }
        if (sum - 1.0).abs() > 1e-9 {
            return Err(Error::invalid(format!("the weights must sum to 1, not {sum}")));
        }
        if !(0.0..=1.0).contains(&self.min_coverage) {
            return Err(Error::invalid(format!(
                "the minimum coverage is a share from 0 to 1, not {}",
                self.min_coverage
            )));
        }
        Ok(())
    }
}

/// Min–max normalisation to 0–1 over `[min, max]`, inverted when lower is better; a value outside
/// the range is clamped (the second value says so).
pub fn normalise(x: f64, i: &Indicator) -> (f64, bool) {
    let raw = (x - i.min) / (i.max - i.min);
    let clamped = raw.clamp(0.0, 1.0);
    let v = match i.better {
        Better::Higher => clamped,
        Better::Lower => 1.0 - clamped,
    };
    (v, raw != clamped)
}

/// A place's index.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The index, 0–1 (`None` when less than the minimum coverage of the weights is present).
    pub index: Option<f64>,
    /// Each dimension's score (`None`: none of its indicators present).
    pub dimensions: BTreeMap<String, Option<f64>>,
    /// Share of the indicators present.
    pub indicator_coverage: f64,
    /// Share of the weights whose dimension is present.
    pub weight_coverage: f64,
    /// Indicators missing.
    pub missing: Vec<String>,
    /// Indicators outside their reference range (clamped).
    pub clamped: Vec<String>,
}

/// The index of a place from its indicators' values (those it has).
pub fn score(def: &Definition, values: &BTreeMap<String, f64>) -> Scored {
    score_with(def, &def.weights, values)
}

fn score_with(
    def: &Definition,
    weights: &BTreeMap<String, f64>,
    values: &BTreeMap<String, f64>,
) -> Scored {
    let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    let (mut missing, mut clamped) = (Vec::new(), Vec::new());
    for i in &def.indicators {
        let e = sums.entry(i.dimension.as_str()).or_default();
        match values.get(&i.id).filter(|v| v.is_finite()) {
            Some(&x) => {
                let (v, out) = normalise(x, i);
                e.0 += v;
                e.1 += 1;
                if out {
                    clamped.push(i.id.clone());
                }
            }
            None => missing.push(i.id.clone()),
        }
    }
    let dimensions: BTreeMap<String, Option<f64>> = weights
        .keys()
        .map(|d| {
            let s = sums.get(d.as_str()).copied().unwrap_or_default();
            (d.clone(), (s.1 > 0).then(|| s.0 / s.1 as f64))
        })
        .collect();
    let (mut num, mut present) = (0.0, 0.0);
    for (d, w) in weights {
        if let Some(Some(v)) = dimensions.get(d) {
            num += w * v;
            present += w;
        }
    }
    let total: f64 = weights.values().sum();
    let weight_coverage = if total > 0.0 { present / total } else { 0.0 };
    let n = def.indicators.len().max(1);
    Scored {
        index: (present > 0.0 && weight_coverage + 1e-12 >= def.min_coverage)
            .then(|| num / present),
        dimensions,
        indicator_coverage: (n - missing.len()) as f64 / n as f64,
        weight_coverage,
        missing,
        clamped,
    }
}

/// What moved a place's index between two periods: each dimension's contribution, its weight
/// (rescaled over the dimensions present) times its change, so that the contributions sum to the
/// index's change. That holds only when both periods have an index and the same dimensions: when
/// a dimension appears or disappears, the change is partly the coverage's, and no dimension's
/// contribution is given (all `None`).
pub fn contributions(
    def: &Definition,
    before: &Scored,
    after: &Scored,
) -> BTreeMap<String, Option<f64>> {
    let present = |s: &Scored| -> Vec<bool> {
        def.weights.keys().map(|d| s.dimensions.get(d).copied().flatten().is_some()).collect()
    };
    let comparable =
        before.index.is_some() && after.index.is_some() && present(before) == present(after);
    let total: f64 = def
        .weights
        .iter()
        .filter(|(d, _)| after.dimensions.get(*d).copied().flatten().is_some())
        .map(|(_, w)| w)
        .sum();
    def.weights
        .iter()
        .map(|(d, w)| {
            let b = before.dimensions.get(d).copied().flatten();
            let a = after.dimensions.get(d).copied().flatten();
            let c = match (comparable, a, b) {
                (true, Some(a), Some(b)) if total > 0.0 => Some(w / total * (a - b)),
                _ => None,
            };
            (d.clone(), c)
        })
        .collect()
}

/// How stable a place's rank is.
#[derive(Debug, Clone, PartialEq)]
pub struct Stability {
    /// Rank with the published weights (1: best), `None` without an index.
    pub rank: Option<usize>,
    /// Rank with equal weights.
    pub rank_equal_weights: Option<usize>,
    /// Rank with each dimension left out (the others' weights rescaled).
    pub rank_without: BTreeMap<String, Option<usize>>,
    /// Best and worst rank over the random perturbations of the weights (each weight × a uniform
    /// factor in 0.5–1.5, then rescaled to sum 1).
    pub rank_range: Option<(usize, usize)>,
}

fn ranks(scores: &[Option<f64>]) -> Vec<Option<usize>> {
    scores
        .iter()
        .map(|s| s.map(|v| 1 + scores.iter().flatten().filter(|o| **o > v + 1e-12).count()))
        .collect()
}

/// The stability of the places' ranks (`values`, one map of indicator values per place) under
/// `trials` random perturbations of the weights, equal weights and each dimension left out. The
/// perturbations come from a fixed-seed generator: the same inputs give the same answer.
pub fn stability(
    def: &Definition,
    values: &[BTreeMap<String, f64>],
    trials: usize,
) -> Vec<Stability> {
    let with = |w: &BTreeMap<String, f64>| -> Vec<Option<usize>> {
        ranks(&values.iter().map(|v| score_with(def, w, v).index).collect::<Vec<_>>())
    };
    let rescale = |w: BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        let s: f64 = w.values().sum();
        w.into_iter().map(|(k, v)| (k, if s > 0.0 { v / s } else { 0.0 })).collect()
    };
    let base = with(&def.weights);
    let n = def.weights.len().max(1) as f64;
    let equal = with(&def.weights.keys().map(|k| (k.clone(), 1.0 / n)).collect());
    let without: BTreeMap<String, Vec<Option<usize>>> = def
        .weights
        .keys()
        .map(|d| {
            let w = rescale(
                def.weights.iter().filter(|(k, _)| *k != d).map(|(k, v)| (k.clone(), *v)).collect(),
            );
            (d.clone(), with(&w))
        })
        .collect();
    // xorshift64*: a small fixed-seed generator, enough to draw weight factors.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut range: Vec<Option<(usize, usize)>> = base.iter().map(|r| r.map(|r| (r, r))).collect();
    for _ in 0..trials {
        let w =
            rescale(def.weights.iter().map(|(k, v)| (k.clone(), v * (0.5 + uniform()))).collect());
        for (k, r) in with(&w).into_iter().enumerate() {
            if let (Some(r), Some((lo, hi))) = (r, range[k].as_mut()) {
                *lo = (*lo).min(r);
                *hi = (*hi).max(r);
            }
        }
    }
    (0..values.len())
        .map(|k| Stability {
            rank: base[k],
            rank_equal_weights: equal[k],
            rank_without: without.iter().map(|(d, r)| (d.clone(), r[k])).collect(),
            rank_range: range[k],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> Definition {
        let ind = |id: &str, dimension: &str, better, min, max| Indicator {
            id: id.into(),
            dimension: dimension.into(),
            better,
            min,
            max,
        };
        Definition {
            indicators: vec![
                ind("no2", "environment", Better::Lower, 10.0, 50.0),
                ind("lden", "environment", Better::Lower, 45.0, 75.0),
                ind("footfall", "vitality", Better::Higher, 50.0, 150.0),
            ],
            weights: [("environment".to_owned(), 0.6), ("vitality".to_owned(), 0.4)].into(),
            min_coverage: 0.5,
        }
    }

    fn place(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn three_places_by_hand() {
        let d = def();
        d.check().unwrap();
        // A: NO2 20 → 1 − 10/40 = 0.75; Lden 55 → 1 − 10/30 = 0.6667; environment 0.70833;
        // footfall 120 → 0.7; index 0.6 × 0.70833 + 0.4 × 0.7 = 0.705.
        let a = score(&d, &place(&[("no2", 20.0), ("lden", 55.0), ("footfall", 120.0)]));
        assert!((a.dimensions["environment"].unwrap() - 0.708_333_333).abs() < 1e-9);
        assert!((a.index.unwrap() - 0.705).abs() < 1e-12);
        // B: 0.25, 0.16667 → 0.208333; 0.9; index 0.125 + 0.36 = 0.485.
        let b = score(&d, &place(&[("no2", 40.0), ("lden", 70.0), ("footfall", 140.0)]));
        assert!((b.index.unwrap() - 0.485).abs() < 1e-12);
        // C: no NO2 (missing, not zero): environment = Lden 50 → 0.83333 alone; footfall 60 → 0.1;
        // index 0.5 + 0.04 = 0.54; two indicators of three.
        let c = score(&d, &place(&[("lden", 50.0), ("footfall", 60.0)]));
        assert!((c.index.unwrap() - 0.54).abs() < 1e-12);
        assert_eq!(c.missing, vec!["no2".to_owned()]);
        assert!((c.indicator_coverage - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.weight_coverage, 1.0);
        // Without any footfall, 60 % of the weights are there: the index of the environment alone.
        let e = score(&d, &place(&[("no2", 20.0), ("lden", 55.0)]));
        assert!(
            (e.index.unwrap() - 0.708_333_333).abs() < 1e-9
                && (e.weight_coverage - 0.6).abs() < 1e-12
        );
        // With the footfall only (40 % < 50 %), no index.
        assert_eq!(score(&d, &place(&[("footfall", 100.0)])).index, None);
        // Out of range: clamped and said.
        let o = score(&d, &place(&[("no2", 80.0), ("lden", 55.0), ("footfall", 120.0)]));
        assert_eq!(o.clamped, vec!["no2".to_owned()]);
        assert!((o.dimensions["environment"].unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // What moved A → B: environment 0.6 × (0.208333 − 0.708333) = −0.3, vitality
        // 0.4 × (0.9 − 0.7) = +0.08: −0.22, the index's change.
        let c = contributions(&d, &a, &b);
        assert!((c["environment"].unwrap() + 0.3).abs() < 1e-9);
        assert!((c["vitality"].unwrap() - 0.08).abs() < 1e-9);
        assert!(
            (c.values().flatten().sum::<f64>() - (b.index.unwrap() - a.index.unwrap())).abs()
                < 1e-12
        );
        // With the footfall missing in both, the environment alone moves the index: its whole
        // change, not 60 % of it. When a dimension appears, no contribution is made up.
        let e2 = score(&d, &place(&[("no2", 30.0), ("lden", 55.0)]));
        let c = contributions(&d, &e, &e2);
        assert!((c["environment"].unwrap() - (e2.index.unwrap() - e.index.unwrap())).abs() < 1e-12);
        assert_eq!(c["vitality"], None, "missing in both months: no contribution, not a zero");
        assert!(contributions(&d, &e, &a).values().all(Option::is_none));
    }

    #[test]
    fn definitions_are_checked_by_name() {
        let mut d = def();
        d.weights.insert("vitality".into(), 0.5);
        assert!(d.check().unwrap_err().to_string().contains("sum to 1"));
        let mut d = def();
        d.indicators[0].min = 60.0;
        assert!(d.check().unwrap_err().to_string().contains("no2"));
        let mut d = def();
        d.indicators[2].dimension = "services".into();
        assert!(d.check().unwrap_err().to_string().contains("services"));
        let mut d = def();
        d.weights = [("environment".to_owned(), 1.2), ("vitality".to_owned(), -0.2)].into();
        assert!(d.check().unwrap_err().to_string().contains("0 or more"));
    }

    #[test]
    fn rank_stability_with_known_answers() {
        let d = def();
        let places = vec![
            // Best at everything: first under any weights.
            place(&[("no2", 12.0), ("lden", 46.0), ("footfall", 149.0)]),
            // Clean but empty.
            place(&[("no2", 20.0), ("lden", 50.0), ("footfall", 60.0)]),
            // Lively but polluted.
            place(&[("no2", 45.0), ("lden", 72.0), ("footfall", 145.0)]),
        ];
        let s = stability(&d, &places, 200);
        assert_eq!(s[0].rank, Some(1));
        assert_eq!(s[0].rank_range, Some((1, 1)));
        // Published weights (environment 0.6): the clean place second (0.6 × 0.79167 + 0.04 =
        // 0.515 against 0.6 × 0.1125 + 0.38 = 0.4475); without the environment the lively one
        // is second; without the vitality the clean one; equal weights: 0.44583 vs 0.53125.
        // They tie at an environment share of 0.556.
        assert_eq!((s[1].rank, s[2].rank), (Some(2), Some(3)));
        assert_eq!(s[1].rank_without["environment"], Some(3));
        assert_eq!(s[2].rank_without["environment"], Some(2));
        assert_eq!(s[1].rank_without["vitality"], Some(2));
        assert_eq!((s[1].rank_equal_weights, s[2].rank_equal_weights), (Some(3), Some(2)));
        // Perturbed weights (environment 0.6 × 0.5–1.5 against 0.4 × 0.5–1.5) flip them
        // sometimes: both ranks range over 2–3.
        assert_eq!(s[1].rank_range, Some((2, 3)));
        assert_eq!(s[2].rank_range, Some((2, 3)));
        // The same inputs, the same answer.
        assert_eq!(stability(&d, &places, 200), s);
    }
}
