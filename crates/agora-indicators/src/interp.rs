//! Spatial interpolation of a sensor network's values (a heat-island map): inverse distance
//! weighting and ordinary kriging with a variogram fitted to the data (spherical, exponential or
//! gaussian), each judged by its leave-one-out cross-validation error.
//!
//! The conventions are PyKrige's, so that the results can be checked against it: semivariances
//! of all pairs binned in `nlags` (6) equal-width lags from the shortest to the longest distance,
//! each lag at its pairs' mean distance; a model's `range` is its practical range (the
//! exponential's scale is range/3, the gaussian's 4·range/7); the fit minimises the soft-L1 cost
//! ½·Σ 2(√(1 + rᵢ²) − 1) of the residuals at the lags, with psill in [0, 10·max γ̂], range in
//! [0, longest lag] and nugget in [0, max γ̂]; the kriging system has zeros on its diagonal and
//! returns a datum exactly at its own position. Leave-one-out keeps the variogram fitted on all
//! points (each point predicted from the others with it).
//!
//! Coordinates are planar, in metres (project longitude and latitude first).

use serde::Serialize;

use crate::{Error, Result};

/// A measured value at a position (metres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    /// Easting, m.
    pub x: f64,
    /// Northing, m.
    pub y: f64,
    /// The value.
    pub value: f64,
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

/// A variogram model's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Model {
    /// Reaches the sill at the range.
    Spherical,
    /// Reaches 95 % of the partial sill at the range.
    Exponential,
    /// Reaches 95.3 % of the partial sill at the range; smooth at the origin.
    Gaussian,
}

impl Model {
    /// All three.
    pub const ALL: [Model; 3] = [Model::Spherical, Model::Exponential, Model::Gaussian];
}

/// A fitted variogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Variogram {
    /// Its shape.
    pub model: Model,
    /// Partial sill (the sill less the nugget).
    pub psill: f64,
    /// Practical range, m.
    pub range: f64,
    /// Nugget.
    pub nugget: f64,
}

impl Variogram {
    /// γ(d).
    pub fn at(&self, d: f64) -> f64 {
        let (p, r, n) = (self.psill, self.range.max(f64::MIN_POSITIVE), self.nugget);
        match self.model {
            Model::Spherical if d <= r => p * (1.5 * d / r - 0.5 * (d / r).powi(3)) + n,
            Model::Spherical => p + n,
            Model::Exponential => p * (1.0 - (-d / (r / 3.0)).exp()) + n,
            Model::Gaussian => p * (1.0 - (-(d * d) / (4.0 * r / 7.0).powi(2)).exp()) + n,
        }
    }
}

/// The experimental variogram: lags (mean pair distance per bin) and semivariances.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Experimental {
    /// Mean distance of each non-empty bin's pairs, m.
    pub lags: Vec<f64>,
    /// Mean semivariance ½(zᵢ − zⱼ)² of each bin.
    pub semivariance: Vec<f64>,
}

/// Bin all pairs' semivariances into `nlags` equal-width lags.
pub fn experimental(samples: &[Sample], nlags: usize) -> Result<Experimental> {
    if samples.len() < 3 || nlags == 0 {
        return Err(Error::Invalid(format!(
            "a variogram needs at least 3 points and 1 lag, not {} and {nlags}",
            samples.len()
        )));
    }
    let mut pairs = Vec::with_capacity(samples.len() * (samples.len() - 1) / 2);
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            pairs.push((dist((a.x, a.y), (b.x, b.y)), 0.5 * (a.value - b.value).powi(2)));
        }
    }
    let dmin = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let dmax = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let width = (dmax - dmin) / nlags as f64;
    let edge = |k: usize| if k == nlags { dmax + 0.001 } else { dmin + k as f64 * width };
    let mut lags = Vec::new();
    let mut semivariance = Vec::new();
    for k in 0..nlags {
        let (lo, hi) = (edge(k), edge(k + 1));
        let inside: Vec<&(f64, f64)> = pairs.iter().filter(|p| p.0 >= lo && p.0 < hi).collect();
        if !inside.is_empty() {
            let n = inside.len() as f64;
            lags.push(inside.iter().map(|p| p.0).sum::<f64>() / n);
            semivariance.push(inside.iter().map(|p| p.1).sum::<f64>() / n);
        }
    }
    Ok(Experimental { lags, semivariance })
}

/// The soft-L1 cost of a variogram at the experimental lags.
pub fn cost(v: &Variogram, e: &Experimental) -> f64 {
    e.lags
        .iter()
        .zip(&e.semivariance)
        .map(|(l, g)| {
            let r = v.at(*l) - g;
            (1.0 + r * r).sqrt() - 1.0
        })
        .sum()
}

/// Fit a model to the experimental variogram (bounded Nelder–Mead on the soft-L1 cost, started
/// where PyKrige starts, then from the corners of the box: the lowest cost found wins).
pub fn fit(model: Model, e: &Experimental) -> Variogram {
    let gmax = e.semivariance.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let gmin = e.semivariance.iter().copied().fold(f64::INFINITY, f64::min);
    let lmax = e.lags.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let hi = [10.0 * gmax, lmax, gmax];
    let clamp =
        |p: [f64; 3]| [p[0].clamp(0.0, hi[0]), p[1].clamp(0.0, hi[1]), p[2].clamp(0.0, hi[2])];
    let of = |p: [f64; 3]| Variogram { model, psill: p[0], range: p[1], nugget: p[2] };
    let f = |p: [f64; 3]| cost(&of(clamp(p)), e);
    let starts = [
        [gmax - gmin, 0.25 * lmax, gmin],
        [gmax, 0.5 * lmax, 0.0],
        [0.5 * gmax, lmax, 0.5 * gmin],
        [gmax, 0.1 * lmax, 0.0],
    ];
    let mut best = clamp(starts[0]);
    for s in starts {
        let p = clamp(nelder_mead(
            &f,
            clamp(s),
            [0.2 * hi[0].max(1e-9), 0.2 * hi[1].max(1e-9), 0.2 * hi[2].max(1e-9)],
        ));
        if f(p) < f(best) {
            best = p;
        }
    }
    of(best)
}

/// Nelder–Mead minimisation from `x0` with initial steps `step`, restarted from its result (a
/// collapsed simplex can stall short of the minimum).
#[allow(clippy::needless_range_loop)] // three coordinates, indexed alike in several arrays
fn nelder_mead(f: &impl Fn([f64; 3]) -> f64, x0: [f64; 3], step: [f64; 3]) -> [f64; 3] {
    let mut x = x0;
    for _ in 0..3 {
        let mut simplex: Vec<([f64; 3], f64)> = (0..4)
            .map(|i| {
                let mut p = x;
                if i > 0 {
                    p[i - 1] += step[i - 1];
                }
                (p, f(p))
            })
            .collect();
        for _ in 0..2000 {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            if (simplex[3].1 - simplex[0].1).abs() <= 1e-14 * (1.0 + simplex[0].1.abs()) {
                break;
            }
            let mut c = [0.0; 3];
            for (p, _) in &simplex[..3] {
                for k in 0..3 {
                    c[k] += p[k] / 3.0;
                }
            }
            let at = |t: f64| {
                let mut p = [0.0; 3];
                for k in 0..3 {
                    p[k] = c[k] + t * (simplex[3].0[k] - c[k]);
                }
                p
            };
            let r = at(-1.0);
            let fr = f(r);
            if fr < simplex[0].1 {
                let e = at(-2.0);
                let fe = f(e);
                simplex[3] = if fe < fr { (e, fe) } else { (r, fr) };
            } else if fr < simplex[2].1 {
                simplex[3] = (r, fr);
            } else {
                let k = if fr < simplex[3].1 { at(-0.5) } else { at(0.5) };
                let fk = f(k);
                if fk < simplex[3].1.min(fr) {
                    simplex[3] = (k, fk);
                } else {
                    let best = simplex[0].0;
                    for s in simplex.iter_mut().skip(1) {
                        for k in 0..3 {
                            s.0[k] = best[k] + 0.5 * (s.0[k] - best[k]);
                        }
                        s.1 = f(s.0);
                    }
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        x = simplex[0].0;
    }
    x
}

/// A prediction and its kriging variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Estimate {
    /// The predicted value.
    pub value: f64,
    /// The kriging variance (0 at a datum; IDW gives none).
    pub variance: Option<f64>,
}

/// The kriging matrix of `samples` under `v`: γ between points (0 on the diagonal), bordered by
/// ones for the unbiasedness constraint.
fn kriging_matrix(samples: &[Sample], v: &Variogram) -> Vec<f64> {
    let n = samples.len();
    let m = n + 1;
    let mut a = vec![0.0; m * m];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                let d = dist((samples[i].x, samples[i].y), (samples[j].x, samples[j].y));
                a[i * m + j] = v.at(d);
            }
        }
        a[i * m + n] = 1.0;
        a[n * m + i] = 1.0;
    }
    a
}

/// The right-hand side for a prediction at `at`: γ to each point (0 at a datum, so that it is
/// returned as it is, as PyKrige's `exact_values` does), then 1.
fn kriging_rhs(samples: &[Sample], v: &Variogram, at: (f64, f64)) -> Vec<f64> {
    let mut b: Vec<f64> = samples
        .iter()
        .map(|s| {
            let d = dist((s.x, s.y), at);
            if d <= 1e-10 { 0.0 } else { v.at(d) }
        })
        .collect();
    b.push(1.0);
    b
}

fn estimate(samples: &[Sample], w: &[f64], b: &[f64]) -> Estimate {
    let n = samples.len();
    let value = samples.iter().zip(w).map(|(s, l)| s.value * l).sum();
    let variance = w[..n].iter().zip(b).map(|(l, g)| l * g).sum::<f64>() + w[n];
    Estimate { value, variance: Some(variance.max(0.0)) }
}

/// Ordinary kriging of `samples` under `v` at `at`; `None` when the system is singular.
pub fn krige(samples: &[Sample], v: &Variogram, at: (f64, f64)) -> Option<Estimate> {
    Kriger::new(samples, *v).map(|k| k.at(at))
}

/// Ordinary kriging at many positions: the system is factorised once (LU with partial pivoting),
/// then each position costs one pair of triangular solves.
#[derive(Debug, Clone)]
pub struct Kriger<'a> {
    samples: &'a [Sample],
    variogram: Variogram,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl<'a> Kriger<'a> {
    /// Factorise the system; `None` when it is singular.
    pub fn new(samples: &'a [Sample], variogram: Variogram) -> Option<Self> {
        let m = samples.len() + 1;
        let mut a = kriging_matrix(samples, &variogram);
        let scale = a.iter().fold(0.0f64, |x, v| x.max(v.abs())).max(f64::MIN_POSITIVE);
        let mut perm: Vec<usize> = (0..m).collect();
        for col in 0..m {
            let piv =
                (col..m).max_by(|&i, &j| a[i * m + col].abs().total_cmp(&a[j * m + col].abs()))?;
            if a[piv * m + col].abs() <= 1e-12 * scale {
                return None;
            }
            if piv != col {
                for k in 0..m {
                    a.swap(piv * m + k, col * m + k);
                }
                perm.swap(piv, col);
            }
            for row in col + 1..m {
                let f = a[row * m + col] / a[col * m + col];
                a[row * m + col] = f;
                if f != 0.0 {
                    for k in col + 1..m {
                        a[row * m + k] -= f * a[col * m + k];
                    }
                }
            }
        }
        Some(Self { samples, variogram, lu: a, perm })
    }

    /// The prediction at `at`.
    pub fn at(&self, at: (f64, f64)) -> Estimate {
        let m = self.samples.len() + 1;
        let b = kriging_rhs(self.samples, &self.variogram, at);
        let mut y: Vec<f64> = self.perm.iter().map(|&p| b[p]).collect();
        for row in 0..m {
            let s: f64 = (0..row).map(|k| self.lu[row * m + k] * y[k]).sum();
            y[row] -= s;
        }
        for row in (0..m).rev() {
            let s: f64 = (row + 1..m).map(|k| self.lu[row * m + k] * y[k]).sum();
            y[row] = (y[row] - s) / self.lu[row * m + row];
        }
        estimate(self.samples, &y, &b)
    }
}

/// Inverse distance weighting with `power`; a datum is returned at its own position.
pub fn idw(samples: &[Sample], power: f64, at: (f64, f64)) -> Option<Estimate> {
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        let d = dist((s.x, s.y), at);
        if d <= 1e-10 {
            return Some(Estimate { value: s.value, variance: None });
        }
        let w = d.powf(-power);
        num += w * s.value;
        den += w;
    }
    (den > 0.0).then(|| Estimate { value: num / den, variance: None })
}

/// Leave-one-out cross-validation: each point predicted from the others.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CrossValidation {
    /// Root mean square of prediction − observation.
    pub rmse: f64,
    /// Mean of prediction − observation.
    pub bias: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Each point's prediction from the others.
    pub predicted: Vec<f64>,
}

/// Leave-one-out of a predictor; `None` if a prediction fails.
pub fn loocv(
    samples: &[Sample],
    predict: impl Fn(&[Sample], (f64, f64)) -> Option<Estimate>,
) -> Option<CrossValidation> {
    let mut predicted = Vec::with_capacity(samples.len());
    let mut others = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        others.clear();
        others.extend(samples.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| *s));
        predicted.push(predict(&others, (s.x, s.y))?.value);
    }
    let n = samples.len() as f64;
    let errs: Vec<f64> = predicted.iter().zip(samples).map(|(p, s)| p - s.value).collect();
    Some(CrossValidation {
        rmse: (errs.iter().map(|e| e * e).sum::<f64>() / n).sqrt(),
        bias: errs.iter().sum::<f64>() / n,
        mae: errs.iter().map(|e| e.abs()).sum::<f64>() / n,
        predicted,
    })
}

/// A regular grid of cell centres: `nx` × `ny` cells of `dx` × `dy` m, the first centred on
/// (`x0`, `y0`); cells are listed row by row from the south-west.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grid {
    /// Easting of the first cell's centre, m.
    pub x0: f64,
    /// Northing of the first cell's centre, m.
    pub y0: f64,
    /// Cell width, m.
    pub dx: f64,
    /// Cell height, m.
    pub dy: f64,
    /// Cells per row.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
}

impl Grid {
    /// The centre of cell (`i`, `j`).
    pub fn centre(&self, i: usize, j: usize) -> (f64, f64) {
        (self.x0 + i as f64 * self.dx, self.y0 + j as f64 * self.dy)
    }
}

/// Which interpolation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The one with the lowest leave-one-out RMSE.
    Best,
    /// Inverse distance weighting (power 2).
    Idw,
    /// Ordinary kriging with the best-fitting of the three models by leave-one-out RMSE.
    Kriging,
}

/// How one method did in leave-one-out cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assessment {
    /// `idw`, or `kriging` with its variogram.
    pub method: &'static str,
    /// The fitted variogram, for kriging.
    pub variogram: Option<Variogram>,
    /// Root mean square of prediction − observation.
    pub rmse: f64,
    /// Mean of prediction − observation.
    pub bias: f64,
}

/// An interpolated map.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Map {
    /// The method used.
    pub chosen: Assessment,
    /// Every method tried, best first (kriging models that could not be solved are left out).
    pub assessments: Vec<Assessment>,
    /// One estimate per cell, row by row from the south-west.
    pub cells: Vec<Estimate>,
}

/// Interpolate `samples` over `grid`, judging IDW and kriging (three variogram models) by
/// leave-one-out cross-validation. At least 4 samples are needed (a variogram of 3 points has 3
/// pairs).
pub fn map(samples: &[Sample], grid: &Grid, method: Method) -> Result<Map> {
    if samples.len() < 4 {
        return Err(Error::Invalid(format!(
            "a map needs at least 4 sensors with a value, not {}",
            samples.len()
        )));
    }
    let idw_power = 2.0;
    let mut assessments = Vec::new();
    if method != Method::Kriging {
        let cv = loocv(samples, |o, at| idw(o, idw_power, at))
            .ok_or_else(|| Error::Invalid("inverse distance weighting failed".into()))?;
        assessments.push(Assessment {
            method: "idw",
            variogram: None,
            rmse: cv.rmse,
            bias: cv.bias,
        });
    }
    if method != Method::Idw {
        let e = experimental(samples, 6)?;
        for m in Model::ALL {
            let v = fit(m, &e);
            if let Some(cv) = loocv(samples, |o, at| Kriger::new(o, v).map(|k| k.at(at))) {
                assessments.push(Assessment {
                    method: "kriging",
                    variogram: Some(v),
                    rmse: cv.rmse,
                    bias: cv.bias,
                });
            }
        }
    }
    assessments.sort_by(|a, b| a.rmse.total_cmp(&b.rmse));
    let chosen = assessments
        .first()
        .cloned()
        .ok_or_else(|| Error::Invalid("no method could interpolate these values".into()))?;
    let centres = (0..grid.ny).flat_map(|j| (0..grid.nx).map(move |i| (i, j)));
    let cells: Vec<Estimate> = match chosen.variogram {
        Some(v) => {
            let k = Kriger::new(samples, v)
                .ok_or_else(|| Error::Invalid("the kriging system is singular".into()))?;
            centres.map(|(i, j)| k.at(grid.centre(i, j))).collect()
        }
        None => centres
            .map(|(i, j)| idw(samples, idw_power, grid.centre(i, j)).expect("samples exist"))
            .collect(),
    };
    Ok(Map { chosen, assessments, cells })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_at_published_check_values() {
        // PyKrige's variogram functions with psill 1, range 1000, nugget 0.1 (research fixture).
        let cases = [
            (Model::Spherical, [0.1, 0.467187, 0.7875, 1.1, 1.1]),
            (Model::Exponential, [0.1, 0.627633, 0.87687, 1.050213, 1.088891]),
            (Model::Gaussian, [0.1, 0.274203, 0.634957, 1.053229, 1.098983]),
        ];
        for (model, want) in cases {
            let v = Variogram { model, psill: 1.0, range: 1000.0, nugget: 0.1 };
            for (d, w) in [0.0, 250.0, 500.0, 1000.0, 1500.0].into_iter().zip(want) {
                assert!((v.at(d) - w).abs() < 1e-6, "{model:?} at {d}: {} vs {w}", v.at(d));
            }
        }
    }

    #[test]
    fn a_singular_system_is_refused_not_guessed() {
        // Two points at the same place: the kriging matrix has two equal rows.
        let s = [
            Sample { x: 0.0, y: 0.0, value: 1.0 },
            Sample { x: 0.0, y: 0.0, value: 2.0 },
            Sample { x: 10.0, y: 0.0, value: 3.0 },
        ];
        let v = Variogram { model: Model::Spherical, psill: 1.0, range: 100.0, nugget: 0.0 };
        assert!(krige(&s, &v, (5.0, 5.0)).is_none());
    }
}
