//! Quality flags: what automatic checks say about a point. A flagged point is stored with its
//! flags, left out of reads and summaries by default, and shown on request (`quality=all`).
//! A value a little outside a property's valid range (within its tolerance: a low-cost PM
//! sensor's −0.8 µg/m³, a humidity of 100.4 %) is measurement noise: kept, flagged
//! `out_of_range`. Beyond the tolerance it is refused at ingest with its reason.

/// The same reading for longer than the property ever stays still: a stuck sensor.
pub const STUCK: u8 = 1;
/// A change faster than the property can physically change: a spike or a glitch.
pub const JUMP: u8 = 2;
/// A reading outside the property's valid range, but within its tolerance.
pub const OUT_OF_RANGE: u8 = 4;

/// The names of the flags set in `flags`.
pub fn names(flags: u8) -> Vec<&'static str> {
    let mut v = Vec::new();
    if flags & STUCK != 0 {
        v.push("stuck");
    }
    if flags & JUMP != 0 {
        v.push("jump");
    }
    if flags & OUT_OF_RANGE != 0 {
        v.push("out_of_range");
    }
    v
}

/// The automatic checks of a property.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checks {
    /// A reading repeated for longer than this (seconds) is flagged `stuck`.
    pub stuck_after_s: i64,
    /// A change faster than this (units per second, over at least a minute) is flagged `jump`.
    pub max_rate_per_s: Option<f64>,
}

/// The checks of a canonical property, for continuous physical measurements. Counters, states
/// and levels that legitimately stay constant (bins, lamps) have none.
pub fn checks(property: &str) -> Option<Checks> {
    let c = |stuck_h: f64, rate_per_min: Option<f64>| Checks {
        stuck_after_s: (stuck_h * 3600.0) as i64,
        max_rate_per_s: rate_per_min.map(|r| r / 60.0),
    };
    Some(match property {
        "pm1" | "pm2_5" | "pm10" => c(2.0, Some(500.0)),
        "no2" | "no" | "o3" | "so2" => c(2.0, Some(300.0)),
        "co" => c(3.0, Some(20.0)),
        "temperature" => c(3.0, Some(5.0)),
        "relative_humidity" => c(3.0, Some(25.0)),
        "pressure" => c(6.0, Some(5.0)),
        "laeq" | "lamax" => c(1.0, None),
        "soil_moisture" | "soil_temperature" => c(24.0, None),
        _ => return None,
    })
}
