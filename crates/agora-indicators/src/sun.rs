//! Sunrise, sunset and civil twilight at a place, by NOAA's solar calculator (the algorithm of
//! Meeus' *Astronomical Algorithms* that NOAA's Global Monitoring Laboratory publishes as its
//! spreadsheet and web calculator): the sun's declination and the equation of time for the
//! Julian century, then the hour angle at which the sun's centre stands at a given zenith.
//! Accurate to about a minute at mid latitudes, which is what street lighting needs; tested
//! against PyEphem (an independent ephemeris) for Aix-en-Provence on the solstices, equinoxes and
//! the days clocks change.
//!
//! Sunrise and sunset are when the sun's upper limb touches the horizon, refraction included: the
//! centre at 90.833° from the zenith, as the almanacs publish them. Civil twilight ends (dusk)
//! and starts (dawn) when the centre is 6° below the horizon: street lamps are expected to be lit
//! from then on.

use chrono::{NaiveDate, NaiveTime};

/// Zenith of sunrise and sunset: 90° plus 50′ (34′ of refraction and 16′ of the sun's radius).
pub const OFFICIAL_ZENITH: f64 = 90.833;
/// Zenith of civil twilight's ends.
pub const CIVIL_ZENITH: f64 = 96.0;

/// A day's sun at a place, in seconds since the Unix epoch (UTC). `None` where the sun does not
/// cross that zenith that day (polar day or night; never at French latitudes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SunDay {
    /// Civil dawn: the sun's centre 6° below the horizon, rising.
    pub civil_dawn: Option<i64>,
    /// Sunrise (upper limb on the horizon, with refraction).
    pub sunrise: Option<i64>,
    /// Solar noon.
    pub noon: i64,
    /// Sunset.
    pub sunset: Option<i64>,
    /// Civil dusk: the sun's centre 6° below the horizon, setting.
    pub civil_dusk: Option<i64>,
}

impl SunDay {
    /// The sun of the UTC calendar day `date` at latitude `lat` and longitude `lon` (degrees,
    /// east positive). For French places the UTC day and the local day hold the same events.
    pub fn at(date: NaiveDate, lat: f64, lon: f64) -> Self {
        let midnight = date.and_time(NaiveTime::MIN).and_utc().timestamp();
        let noon = event(midnight, lat, lon, None);
        let at = |zenith: f64, rising: bool| event(midnight, lat, lon, Some((zenith, rising)));
        SunDay {
            civil_dawn: at(CIVIL_ZENITH, true),
            sunrise: at(OFFICIAL_ZENITH, true),
            noon: noon.unwrap_or(midnight + 43_200),
            sunset: at(OFFICIAL_ZENITH, false),
            civil_dusk: at(CIVIL_ZENITH, false),
        }
    }

    /// Seconds of daylight (sunrise to sunset); 0 or 86,400 in polar night or day.
    pub fn daylight_s(&self) -> i64 {
        match (self.sunrise, self.sunset) {
            (Some(r), Some(s)) => s - r,
            _ => 0,
        }
    }
}

/// The sun's position terms at Julian century `t`: (declination, equation of time in minutes).
fn declination_and_eot(t: f64) -> (f64, f64) {
    let l0 = (280.46646 + t * (36000.76983 + t * 0.0003032)).rem_euclid(360.0);
    let m = 357.52911 + t * (35999.05029 - 0.0001537 * t);
    let e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
    let mr = m.to_radians();
    let c = mr.sin() * (1.914602 - t * (0.004817 + 0.000014 * t))
        + (2.0 * mr).sin() * (0.019993 - 0.000101 * t)
        + (3.0 * mr).sin() * 0.000289;
    let true_long = l0 + c;
    let omega = (125.04 - 1934.136 * t).to_radians();
    let app_long = true_long - 0.00569 - 0.00478 * omega.sin();
    let seconds = 21.448 - t * (46.815 + t * (0.00059 - t * 0.001813));
    let obliq0 = 23.0 + (26.0 + seconds / 60.0) / 60.0;
    let obliq = obliq0 + 0.00256 * omega.cos();
    let decl = (obliq.to_radians().sin() * app_long.to_radians().sin()).asin();
    let y = (obliq.to_radians() / 2.0).tan().powi(2);
    let l0r = l0.to_radians();
    let eot = y * (2.0 * l0r).sin() - 2.0 * e * mr.sin()
        + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
        - 0.5 * y * y * (4.0 * l0r).sin()
        - 1.25 * e * e * (2.0 * mr).sin();
    (decl, 4.0 * eot.to_degrees())
}

/// Julian century of a Unix time (s).
fn century(unix_s: f64) -> f64 {
    let jd = unix_s / 86_400.0 + 2_440_587.5;
    (jd - 2_451_545.0) / 36_525.0
}

/// The time (Unix s) of solar noon (`which` = None) or of the sun's centre at `zenith`, rising or
/// setting, on the UTC day starting at `midnight`. The sun's terms are evaluated at the event's
/// own time, refined three times from noon, as NOAA's web calculator does.
fn event(midnight: i64, lat: f64, lon: f64, which: Option<(f64, bool)>) -> Option<i64> {
    let mut minutes = 720.0 - 4.0 * lon;
    for _ in 0..3 {
        let (decl, eot) = declination_and_eot(century(midnight as f64 + minutes * 60.0));
        let noon = 720.0 - 4.0 * lon - eot;
        minutes = match which {
            None => noon,
            Some((zenith, rising)) => {
                let latr = lat.to_radians();
                let cos_ha =
                    zenith.to_radians().cos() / (latr.cos() * decl.cos()) - latr.tan() * decl.tan();
                if !(-1.0..=1.0).contains(&cos_ha) {
                    return None;
                }
                let ha = cos_ha.acos().to_degrees();
                if rising { noon - 4.0 * ha } else { noon + 4.0 * ha }
            }
        };
    }
    Some(midnight + (minutes * 60.0).round() as i64)
}

/// The sun's elevation above the horizon (degrees, geometric: without refraction) at a Unix time.
pub fn elevation(unix_s: i64, lat: f64, lon: f64) -> f64 {
    let (decl, eot) = declination_and_eot(century(unix_s as f64));
    let minutes_utc = unix_s.rem_euclid(86_400) as f64 / 60.0;
    let true_solar = (minutes_utc + eot + 4.0 * lon).rem_euclid(1440.0);
    let hour_angle = true_solar / 4.0 - 180.0;
    let latr = lat.to_radians();
    let cos_zenith =
        latr.sin() * decl.sin() + latr.cos() * decl.cos() * hour_angle.to_radians().cos();
    90.0 - cos_zenith.clamp(-1.0, 1.0).acos().to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aix-en-Provence, the Rotonde.
    const AIX: (f64, f64) = (43.5263, 5.4454);

    #[test]
    fn days_are_longest_in_june_and_shortest_in_december() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let june = SunDay::at(d(6, 21), AIX.0, AIX.1);
        let dec = SunDay::at(d(12, 21), AIX.0, AIX.1);
        let march = SunDay::at(d(3, 20), AIX.0, AIX.1);
        // About 15 h 21 and 9 h 00 at 43.5° N; the equinox a little over 12 h (refraction).
        assert!((15.2..15.5).contains(&(june.daylight_s() as f64 / 3600.0)));
        assert!((8.9..9.1).contains(&(dec.daylight_s() as f64 / 3600.0)));
        assert!((12.0..12.3).contains(&(march.daylight_s() as f64 / 3600.0)));
        for s in [june, dec, march] {
            let (dawn, rise) = (s.civil_dawn.unwrap(), s.sunrise.unwrap());
            let (set, dusk) = (s.sunset.unwrap(), s.civil_dusk.unwrap());
            assert!(dawn < rise && rise < s.noon && s.noon < set && set < dusk);
            // Civil twilight lasts about half an hour at this latitude.
            assert!((1_500..2_400).contains(&(rise - dawn)), "{}", rise - dawn);
        }
    }

    #[test]
    fn elevation_crosses_the_horizon_at_sunrise() {
        let s = SunDay::at(NaiveDate::from_ymd_opt(2026, 9, 23).unwrap(), AIX.0, AIX.1);
        let rise = s.sunrise.unwrap();
        // At official sunrise the centre is 0.833° below the geometric horizon.
        assert!((elevation(rise, AIX.0, AIX.1) + 0.833).abs() < 0.05);
        assert!((elevation(s.civil_dusk.unwrap(), AIX.0, AIX.1) + 6.0).abs() < 0.05);
        // At noon in late September: 90 − 43.5 − ~0 ≈ 46°.
        assert!((elevation(s.noon, AIX.0, AIX.1) - 46.3).abs() < 0.5);
    }

    #[test]
    fn polar_night_has_no_sunrise() {
        let s = SunDay::at(NaiveDate::from_ymd_opt(2026, 12, 21).unwrap(), 78.2, 15.6);
        assert_eq!((s.sunrise, s.sunset, s.daylight_s()), (None, None, 0));
    }
}
