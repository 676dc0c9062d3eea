//! The two French projections the imports meet, inverted to WGS 84 longitude and latitude on the
//! GRS 80 ellipsoid (ETRS 89 and RGF 93 coincide with WGS 84 within a metre): Lambert-93
//! (EPSG:2154, the BPE's `LAMBERT_X`/`LAMBERT_Y`) and the European grid's Lambert azimuthal
//! equal-area (EPSG:3035, the corners of INSEE's 200 m squares). Formulas of IOGP's *Guidance
//! note 7-2* (§ 3.2.1.1 and § 3.2.5.1); tested against PROJ (pyproj) by `tests/projections.rs`.

const A: f64 = 6_378_137.0;
const F: f64 = 1.0 / 298.257_222_101;

fn e2() -> f64 {
    F * (2.0 - F)
}

/// Lambert-93 (EPSG:2154) easting and northing in metres → (longitude, latitude) in degrees.
pub fn lambert93_to_wgs84(x: f64, y: f64) -> (f64, f64) {
    let e = e2().sqrt();
    let (phi0, lambda0) = (46.5f64.to_radians(), 3f64.to_radians());
    let (phi1, phi2) = (49f64.to_radians(), 44f64.to_radians());
    let (x0, y0) = (700_000.0, 6_600_000.0);
    let m = |p: f64| p.cos() / (1.0 - e * e * p.sin().powi(2)).sqrt();
    let t = |p: f64| {
        (std::f64::consts::FRAC_PI_4 - p / 2.0).tan()
            / ((1.0 - e * p.sin()) / (1.0 + e * p.sin())).powf(e / 2.0)
    };
    let n = (m(phi1).ln() - m(phi2).ln()) / (t(phi1).ln() - t(phi2).ln());
    let big_f = m(phi1) / (n * t(phi1).powf(n));
    let r0 = A * big_f * t(phi0).powf(n);
    let (dx, dy) = (x - x0, r0 - (y - y0));
    let r = n.signum() * (dx * dx + dy * dy).sqrt();
    let tt = (r / (A * big_f)).powf(1.0 / n);
    let theta = dx.atan2(dy);
    let mut phi = std::f64::consts::FRAC_PI_2 - 2.0 * tt.atan();
    for _ in 0..10 {
        let s = e * phi.sin();
        phi =
            std::f64::consts::FRAC_PI_2 - 2.0 * (tt * ((1.0 - s) / (1.0 + s)).powf(e / 2.0)).atan();
    }
    ((theta / n + lambda0).to_degrees(), phi.to_degrees())
}

struct Laea {
    e: f64,
    qp: f64,
    beta0: f64,
    rq: f64,
    d: f64,
}

const LAEA_LAT0: f64 = 52.0;
const LAEA_LON0: f64 = 10.0;
const LAEA_FE: f64 = 4_321_000.0;
const LAEA_FN: f64 = 3_210_000.0;

fn q(e: f64, phi: f64) -> f64 {
    let s = phi.sin();
    (1.0 - e * e)
        * (s / (1.0 - e * e * s * s) - (1.0 / (2.0 * e)) * ((1.0 - e * s) / (1.0 + e * s)).ln())
}

fn laea() -> Laea {
    let e = e2().sqrt();
    let phi0 = LAEA_LAT0.to_radians();
    let qp = q(e, std::f64::consts::FRAC_PI_2);
    let beta0 = (q(e, phi0) / qp).asin();
    let rq = A * (qp / 2.0).sqrt();
    let d = A * (phi0.cos() / (1.0 - e * e * phi0.sin().powi(2)).sqrt()) / (rq * beta0.cos());
    Laea { e, qp, beta0, rq, d }
}

/// ETRS89-LAEA (EPSG:3035) easting and northing in metres → (longitude, latitude) in degrees.
pub fn laea_to_wgs84(x: f64, y: f64) -> (f64, f64) {
    let Laea { e, beta0, rq, d, .. } = laea();
    let (dx, dy) = (x - LAEA_FE, y - LAEA_FN);
    let rho = ((dx / d).powi(2) + (d * dy).powi(2)).sqrt();
    if rho == 0.0 {
        return (LAEA_LON0, LAEA_LAT0);
    }
    let c = 2.0 * (rho / (2.0 * rq)).asin();
    let beta = (c.cos() * beta0.sin() + d * dy * c.sin() * beta0.cos() / rho).asin();
    let lambda = LAEA_LON0.to_radians()
        + (dx * c.sin())
            .atan2(d * rho * beta0.cos() * c.cos() - d * d * dy * beta0.sin() * c.sin());
    let (e2, e4, e6) = (e * e, e.powi(4), e.powi(6));
    let phi = beta
        + (e2 / 3.0 + 31.0 * e4 / 180.0 + 517.0 * e6 / 5040.0) * (2.0 * beta).sin()
        + (23.0 * e4 / 360.0 + 251.0 * e6 / 3780.0) * (4.0 * beta).sin()
        + (761.0 * e6 / 45360.0) * (6.0 * beta).sin();
    (lambda.to_degrees(), phi.to_degrees())
}

/// (longitude, latitude) in degrees → ETRS89-LAEA (EPSG:3035) easting and northing in metres:
/// which INSEE square a point falls in.
pub fn wgs84_to_laea(lon: f64, lat: f64) -> (f64, f64) {
    let Laea { e, qp, beta0, rq, d } = laea();
    let beta = (q(e, lat.to_radians()) / qp).asin();
    let dl = (lon - LAEA_LON0).to_radians();
    let b =
        rq * (2.0 / (1.0 + beta0.sin() * beta.sin() + beta0.cos() * beta.cos() * dl.cos())).sqrt();
    let x = LAEA_FE + b * d * beta.cos() * dl.sin();
    let y = LAEA_FN + (b / d) * (beta0.cos() * beta.sin() - beta0.sin() * beta.cos() * dl.cos());
    (x, y)
}

/// Distance in metres between two (longitude, latitude) points on the sphere of mean radius.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.1.to_radians(), b.1.to_radians());
    let (dla, dlo) = (la2 - la1, (b.0 - a.0).to_radians());
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guidance_notes_worked_laea_example() {
        // IOGP Guidance note 7-2, § 3.2.5.1: 50°N 5°E → E 3 962 799.45, N 2 999 718.85.
        let (x, y) = wgs84_to_laea(5.0, 50.0);
        assert!((x - 3_962_799.45).abs() < 0.01 && (y - 2_999_718.85).abs() < 0.01, "{x} {y}");
        let (lon, lat) = laea_to_wgs84(3_962_799.45, 2_999_718.85);
        // The inverse series is good to a few millimetres.
        assert!((lon - 5.0).abs() < 1e-7 && (lat - 50.0).abs() < 1e-7, "{lon} {lat}");
    }

    #[test]
    fn lambert93_origin_is_3e_46_5n() {
        let (lon, lat) = lambert93_to_wgs84(700_000.0, 6_600_000.0);
        assert!((lon - 3.0).abs() < 1e-9 && (lat - 46.5).abs() < 1e-9, "{lon} {lat}");
    }
}
