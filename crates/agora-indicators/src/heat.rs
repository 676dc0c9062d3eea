//! Heat indicators: the US National Weather Service's heat index, Environment Canada's humidex,
//! heatwave (canicule) days from 3-day running means of daily minima and maxima, and tropical
//! nights.
//!
//! The heat index follows the NWS algorithm as its online calculator computes it (and MetPy, which
//! matches the calculator on every cell of the NWS chart's grid): in °F, the simple formula
//! 0.5·(T + 61 + 1.2·(T − 68) + 0.094·RH) below 79 °F, Rothfusz's regression above, then the
//! low-humidity adjustment (RH ≤ 13 %, 80–112 °F) or the high-humidity one (RH > 85 %, 80–87 °F);
//! at or below 40 °F the temperature itself. Humidex = T + 0.5555·(e − 10),
//! e = 6.11·exp(5417.7530·(1/273.16 − 1/Td)), Td the dew point in kelvins, itself from T and RH by
//! Bolton's (1980) form of the Magnus formula.

use serde::Serialize;

use crate::{Error, Result};

fn check(what: &str, v: f64, lo: f64, hi: f64) -> Result<f64> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(Error::Invalid(format!("{what} {v} is outside {lo}–{hi}")))
    }
}

/// The heat index (°F) of a temperature (°F) and a relative humidity (%).
pub fn heat_index_f(t: f64, rh: f64) -> Result<f64> {
    let t = check("temperature (°F)", t, -100.0, 200.0)?;
    let rh = check("relative humidity (%)", rh, 0.0, 100.0)?;
    if t <= 40.0 {
        return Ok(t);
    }
    // Steadman's simple formula (already the average of his value and the temperature).
    let simple = -10.3 + 1.1 * t + 0.047 * rh;
    let mut hi = if simple < 79.0 {
        simple
    } else {
        -42.379 + 2.049_015_23 * t + 10.143_331_27 * rh
            - 0.224_755_41 * t * rh
            - 0.006_837_83 * t * t
            - 0.054_817_17 * rh * rh
            + 0.001_228_74 * t * t * rh
            + 0.000_852_82 * t * rh * rh
            - 0.000_001_99 * t * t * rh * rh
    };
    if rh <= 13.0 && (80.0..=112.0).contains(&t) {
        hi -= (13.0 - rh) / 4.0 * ((17.0 - (t - 95.0).abs()) / 17.0).sqrt();
    } else if rh > 85.0 && (80.0..=87.0).contains(&t) {
        hi += (rh - 85.0) / 10.0 * ((87.0 - t) / 5.0);
    }
    Ok(hi)
}

/// The heat index (°C) of a temperature (°C) and a relative humidity (%), computed in °F.
pub fn heat_index_c(t: f64, rh: f64) -> Result<f64> {
    let f = heat_index_f(t * 9.0 / 5.0 + 32.0, rh)?;
    Ok((f - 32.0) * 5.0 / 9.0)
}

/// The dew point (°C) of a temperature (°C) and a relative humidity (%), by Bolton (1980).
pub fn dew_point_c(t: f64, rh: f64) -> Result<f64> {
    let t = check("temperature (°C)", t, -80.0, 70.0)?;
    let rh = check("relative humidity (%)", rh, 0.0, 100.0)?;
    if rh == 0.0 {
        return Err(Error::Invalid("a relative humidity of 0 % has no dew point".into()));
    }
    let e = rh / 100.0 * 6.112 * (17.67 * t / (t + 243.5)).exp();
    let x = (e / 6.112).ln();
    Ok(243.5 * x / (17.67 - x))
}

/// The humidex of a temperature and a dew point (°C).
pub fn humidex(t: f64, dew_point: f64) -> Result<f64> {
    let t = check("temperature (°C)", t, -80.0, 70.0)?;
    let td = check("dew point (°C)", dew_point, -100.0, 70.0)?;
    let e = 6.11 * (5417.7530 * (1.0 / 273.16 - 1.0 / (td + 273.15))).exp();
    Ok(t + 0.5555 * (e - 10.0))
}

/// The humidex of a temperature (°C) and a relative humidity (%).
pub fn humidex_rh(t: f64, rh: f64) -> Result<f64> {
    humidex(t, dew_point_c(t, rh)?)
}

/// Heatwave thresholds: the 3-day running means of daily minimum and maximum temperatures
/// (Météo-France's biometeorological indicators, IBMn and IBMx) that must both be reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaniculeThresholds {
    /// Threshold of the mean of minima, °C.
    pub min: f64,
    /// Threshold of the mean of maxima, °C.
    pub max: f64,
}

impl CaniculeThresholds {
    /// Bouches-du-Rhône (Aix-en-Provence, Marseille): 24 / 35 °C.
    pub const BOUCHES_DU_RHONE: CaniculeThresholds = CaniculeThresholds { min: 24.0, max: 35.0 };
}

/// A night whose minimum reaches this is tropical, °C.
pub const TROPICAL_NIGHT: f64 = 20.0;

/// One day's heat status.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatDay {
    /// Mean of this day's and the two previous days' minima; absent unless all three are known.
    pub ibm_min: Option<f64>,
    /// The same for maxima.
    pub ibm_max: Option<f64>,
    /// Whether both means reach their thresholds (a canicule day); absent when a mean is.
    pub canicule: Option<bool>,
    /// Whether the day's minimum reaches 20 °C; absent without a minimum.
    pub tropical_night: Option<bool>,
}

/// Heat status of consecutive days from their `(minimum, maximum)` temperatures (`None`: not
/// measured). A running mean needs its three days: a gap is never filled.
pub fn heat_days(days: &[Option<(f64, f64)>], th: &CaniculeThresholds) -> Vec<HeatDay> {
    (0..days.len())
        .map(|i| {
            let window = (i >= 2).then(|| &days[i - 2..=i]);
            let means = window.and_then(|w| {
                let v: Option<Vec<(f64, f64)>> = w.iter().copied().collect();
                v.map(|v| {
                    let n = v.len() as f64;
                    (v.iter().map(|d| d.0).sum::<f64>() / n, v.iter().map(|d| d.1).sum::<f64>() / n)
                })
            });
            HeatDay {
                ibm_min: means.map(|m| m.0),
                ibm_max: means.map(|m| m.1),
                canicule: means.map(|(n, x)| n >= th.min && x >= th.max),
                tropical_night: days[i].map(|(min, _)| min >= TROPICAL_NIGHT),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humidex_spot_checks_published() {
        // Published examples (Environment Canada's formula, rounded to integers as it reports):
        // 30 °C with a 15 °C dew point → 34; 30/25 → 42; 43/28 → 59; 36/10 → 37.
        for (t, td, h) in
            [(30.0, 15.0, 34.0), (30.0, 25.0, 42.0), (43.0, 28.0, 59.0), (36.0, 10.0, 37.0)]
        {
            assert_eq!(humidex(t, td).unwrap().round(), h, "{t}/{td}");
        }
    }

    #[test]
    fn canicule_needs_three_known_days_and_both_means() {
        let th = CaniculeThresholds::BOUCHES_DU_RHONE;
        let days = [
            Some((22.0, 34.0)),
            Some((25.0, 36.0)),
            Some((25.0, 37.0)), // means 24.0 and 35.67: canicule (thresholds reached, ≥)
            Some((26.0, 33.0)), // means 25.33 and 35.33: still
            None,
            Some((27.0, 38.0)), // a gap in the window: no mean, no verdict
            Some((27.0, 38.0)),
            Some((27.0, 38.0)), // the window is whole again
        ];
        let d = heat_days(&days, &th);
        assert_eq!(d[0].canicule, None);
        assert_eq!(d[1].canicule, None);
        assert_eq!(d[2].canicule, Some(true));
        assert!((d[2].ibm_min.unwrap() - 24.0).abs() < 1e-12);
        assert_eq!(d[3].canicule, Some(true));
        assert_eq!((d[4].canicule, d[5].canicule, d[6].canicule), (None, None, None));
        assert_eq!(d[7].canicule, Some(true));
        assert_eq!(d[0].tropical_night, Some(true));
        assert_eq!(d[4].tropical_night, None);
        let cool = heat_days(&[Some((18.0, 36.0)); 3], &th);
        assert_eq!((cool[2].canicule, cool[2].tropical_night), (Some(false), Some(false)));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(heat_index_f(90.0, 120.0).unwrap_err().to_string().contains("relative humidity"));
        assert!(humidex(f64::NAN, 10.0).is_err());
        assert!(dew_point_c(20.0, 0.0).is_err());
    }
}
