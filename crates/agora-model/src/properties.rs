//! The catalogue of observed properties: canonical snake_case names, UCUM units, value kinds, valid
//! ranges, aliases (`pm25`, `PM2.5`, `P2` → `pm2_5`) and unit conversions applied to every source.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::{PropertyName, Value, ValueKind};

/// Properties about the device itself (battery, radio link, frame counter) rather than the place
/// it measures. Operators see them; the public map and open data leave them out.
pub fn is_device_internal(property: &str) -> bool {
    matches!(property, "battery" | "battery_voltage" | "rssi" | "snr" | "f_cnt" | "gateways")
}

/// Whether means of a property are energy means, `10·log10(mean(10^(L/10)))`: sound levels in
/// decibels (LAeq over a longer period). A radio signal-to-noise ratio, also in dB, is a
/// device-internal figure averaged as it is.
pub fn is_sound_level(property: &str, unit: &str) -> bool {
    unit == "dB" && !is_device_internal(property)
}

/// The tolerance of a built-in property: what low-cost sensors' noise puts just outside the
/// valid range. Concentrations read a little below zero (an optical PM sensor's offset, a gas
/// cell's drift), shares a little beyond 0–100 % (a humidity probe in fog reads 100.4 %).
/// Counts, sound levels and temperatures have none: out of range, they are garbage.
fn default_tolerance(name: &str, unit: &str) -> Option<f64> {
    match unit {
        "ug/m3" => Some(2.0),
        "mg/m3" => Some(0.2),
        "%" if name == "relative_humidity" => Some(3.0),
        "%" => Some(2.0),
        _ => None,
    }
}

/// One observed property and how values of it are validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PropertyDef {
    /// Canonical snake_case name.
    pub name: PropertyName,
    /// Canonical unit, in UCUM (`ug/m3`, `Cel`, `dB`, `%`).
    pub unit: String,
    /// The kind of value stored.
    pub kind: ValueKind,
    /// Lowest physically valid value (numeric kinds).
    pub min: Option<f64>,
    /// Highest physically valid value (numeric kinds).
    pub max: Option<f64>,
    /// How far outside `[min, max]` (in the canonical unit) a reading is measurement noise:
    /// kept, flagged `out_of_range`; farther, it is refused. `None`: no tolerance.
    pub tolerance: Option<f64>,
    /// Other names this property is known by in the wild.
    pub aliases: Vec<String>,
    /// One line for people.
    pub description: String,
    /// Whether this property was registered automatically on first write (not built in).
    pub auto_registered: bool,
}

/// A conversion from a source unit to a property's canonical unit: `canonical = v * factor + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitConversion {
    /// Multiplier.
    pub factor: f64,
    /// Added after multiplying.
    pub offset: f64,
}

impl UnitConversion {
    const IDENTITY: Self = Self { factor: 1.0, offset: 0.0 };
    const fn scale(factor: f64) -> Self {
        Self { factor, offset: 0.0 }
    }
    /// Apply to a value. The result is rounded to 12 significant digits, so that 10 ppb of NO2
    /// is stored as 19.1 µg/m³ and not 19.099999999999998; no sensor is that precise.
    pub fn apply(self, v: f64) -> f64 {
        if self.factor == 1.0 && self.offset == 0.0 {
            return v;
        }
        let r = v * self.factor + self.offset;
        if r == 0.0 || !r.is_finite() {
            return r;
        }
        let scale = 10f64.powi(11 - r.abs().log10().floor() as i32);
        if !scale.is_finite() || scale == 0.0 {
            return r;
        }
        (r * scale).round() / scale
    }
}

/// What a name in a payload resolved to.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedProperty<'a> {
    /// The property definition.
    pub def: &'a PropertyDef,
}

/// Built-in properties: (name, unit, kind, min, max, aliases, description).
type Builtin =
    (&'static str, &'static str, ValueKind, f64, f64, &'static [&'static str], &'static str);

const F: ValueKind = ValueKind::Float;
const I: ValueKind = ValueKind::Integer;
const B: ValueKind = ValueKind::Boolean;
const S: ValueKind = ValueKind::String;
const NA: f64 = f64::NAN;

const BUILTIN: &[Builtin] = &[
    // Air quality (µg/m³ at 20 °C, 1013 hPa; CO in mg/m³).
    ("pm1", "ug/m3", F, 0.0, 2000.0, &["pm1_0", "pm_1", "p0"], "particulate matter < 1 µm"),
    (
        "pm2_5",
        "ug/m3",
        F,
        0.0,
        2000.0,
        &["pm25", "pm2.5", "pm_2_5", "p2"],
        "fine particles < 2.5 µm",
    ),
    ("pm10", "ug/m3", F, 0.0, 2000.0, &["pm_10", "p1"], "particulate matter < 10 µm"),
    ("no2", "ug/m3", F, 0.0, 2000.0, &["nitrogen_dioxide"], "nitrogen dioxide"),
    ("no", "ug/m3", F, 0.0, 2000.0, &["nitrogen_monoxide"], "nitrogen monoxide"),
    ("o3", "ug/m3", F, 0.0, 1000.0, &["ozone"], "ozone"),
    ("so2", "ug/m3", F, 0.0, 2000.0, &["sulfur_dioxide"], "sulphur dioxide"),
    ("co", "mg/m3", F, 0.0, 500.0, &["carbon_monoxide"], "carbon monoxide"),
    ("co2", "ppm", F, 0.0, 10000.0, &["carbon_dioxide"], "carbon dioxide"),
    (
        "aqi",
        "1",
        F,
        0.0,
        10.0,
        &["air_quality_index", "airqualityindex"],
        "air-quality index level",
    ),
    // Weather.
    ("temperature", "Cel", F, -50.0, 70.0, &["temp", "t", "air_temperature"], "air temperature"),
    (
        "relative_humidity",
        "%",
        F,
        0.0,
        100.0,
        &["humidity", "rh", "relativehumidity", "hum"],
        "relative humidity",
    ),
    (
        "pressure",
        "hPa",
        F,
        300.0,
        1100.0,
        &["atmospheric_pressure", "air_pressure", "atmosphericpressure"],
        "atmospheric pressure",
    ),
    ("wind_speed", "m/s", F, 0.0, 100.0, &["windspeed"], "wind speed"),
    ("wind_direction", "deg", F, 0.0, 360.0, &["winddirection"], "wind direction, from north"),
    (
        "precipitation",
        "mm",
        F,
        0.0,
        500.0,
        &["rain", "rainfall"],
        "precipitation over the reporting period",
    ),
    ("illuminance", "lx", F, 0.0, 200000.0, &["lux", "light"], "illuminance"),
    ("solar_radiation", "W/m2", F, 0.0, 2000.0, &["solarradiation"], "global solar radiation"),
    // Noise.
    (
        "laeq",
        "dB",
        F,
        0.0,
        194.0,
        &["la_eq", "leq", "noise", "noise_level"],
        "A-weighted equivalent level over the period",
    ),
    ("lamax", "dB", F, 0.0, 194.0, &["la_max"], "A-weighted maximum level"),
    ("lamin", "dB", F, 0.0, 194.0, &["la_min"], "A-weighted minimum level"),
    ("la10", "dB", F, 0.0, 194.0, &["l10"], "level exceeded 10 % of the time"),
    ("la50", "dB", F, 0.0, 194.0, &["l50"], "level exceeded 50 % of the time"),
    ("la90", "dB", F, 0.0, 194.0, &["l90"], "level exceeded 90 % of the time"),
    // Pedestrian flows.
    (
        "people_in",
        "{count}",
        I,
        0.0,
        1.0e7,
        &["peoplecounttowards", "people_count_towards", "count_in"],
        "people counted towards the place",
    ),
    (
        "people_out",
        "{count}",
        I,
        0.0,
        1.0e7,
        &["peoplecountaway", "people_count_away", "count_out"],
        "people counted away from the place",
    ),
    (
        "people_count",
        "{count}",
        I,
        0.0,
        1.0e7,
        &["peoplecount"],
        "people counted (both directions)",
    ),
    // Street lighting.
    ("power_w", "W", F, 0.0, 1.0e6, &["power", "active_power"], "electrical power drawn"),
    (
        "energy_wh",
        "Wh",
        F,
        0.0,
        1.0e12,
        &["energy", "energy_consumption"],
        "cumulative energy drawn",
    ),
    ("lamp_on", "1", B, NA, NA, &["power_state", "powerstate"], "whether the lamp is lit"),
    (
        "dimming_level",
        "%",
        F,
        0.0,
        100.0,
        &["illuminance_level", "illuminancelevel", "dimming"],
        "lamp output as a share of full power",
    ),
    (
        "lamp_status",
        "1",
        S,
        NA,
        NA,
        &["streetlight_status"],
        "lamp state (ok, defectiveLamp, columnIssue, …)",
    ),
    // Cleanliness.
    (
        "fill_level",
        "%",
        F,
        0.0,
        100.0,
        &["fillinglevel", "filling_level", "fill"],
        "bin filling level",
    ),
    ("bin_temperature", "Cel", F, -50.0, 150.0, &[], "temperature inside a bin (fire detection)"),
    // Green spaces.
    (
        "soil_moisture",
        "%",
        F,
        0.0,
        100.0,
        &["soil_moisture_vwc", "soilmoisturevwc", "vwc"],
        "volumetric soil water content",
    ),
    ("soil_temperature", "Cel", F, -30.0, 70.0, &["soiltemperature"], "soil temperature"),
    ("irrigation_on", "1", B, NA, NA, &["valve_open"], "whether irrigation is running"),
    // Device health and radio.
    ("battery", "%", F, 0.0, 100.0, &["battery_level", "bat", "batterylevel"], "battery charge"),
    ("battery_voltage", "V", F, 0.0, 60.0, &["vbat"], "battery voltage"),
    ("rssi", "dBm", F, -200.0, 50.0, &[], "received signal strength"),
    ("snr", "dB", F, -50.0, 50.0, &["lora_snr"], "signal-to-noise ratio"),
    (
        "f_cnt",
        "{count}",
        I,
        0.0,
        4294967295.0,
        &["fcnt", "frame_counter"],
        "LoRaWAN uplink frame counter",
    ),
    (
        "gateways",
        "{count}",
        I,
        0.0,
        10000.0,
        &["gateway_count"],
        "LoRaWAN gateways that heard the uplink",
    ),
    ("status", "1", S, NA, NA, &["state"], "device-reported status"),
];

/// Unit spellings accepted for each canonical unit, mapped to their conversion.
fn unit_conversion(property: &str, canonical: &str, unit: &str) -> Option<UnitConversion> {
    let u = unit.trim();
    let norm = u.replace(['µ', 'μ'], "u").replace('³', "3").replace('²', "2").to_ascii_lowercase();
    let n = norm.as_str();
    if n == canonical.to_ascii_lowercase() || n.is_empty() {
        return Some(UnitConversion::IDENTITY);
    }
    let c = match canonical {
        "ug/m3" => match n {
            "ug/m3" | "ug.m-3" | "ugm3" | "ug/m^3" => UnitConversion::IDENTITY,
            "mg/m3" => UnitConversion::scale(1000.0),
            // Gas conversions at 20 °C and 1013 hPa (European reporting conditions).
            "ppb" => match property {
                "no2" => UnitConversion::scale(1.91),
                "o3" => UnitConversion::scale(2.00),
                "so2" => UnitConversion::scale(2.66),
                "no" => UnitConversion::scale(1.25),
                _ => return None,
            },
            _ => return None,
        },
        "mg/m3" => match n {
            "mg/m3" | "mg.m-3" => UnitConversion::IDENTITY,
            "ug/m3" => UnitConversion::scale(0.001),
            "ppm" if property == "co" => UnitConversion::scale(1.16),
            "ppb" if property == "co" => UnitConversion::scale(0.00116),
            _ => return None,
        },
        "Cel" => match n {
            "cel" | "°c" | "c" | "degc" | "celsius" => UnitConversion::IDENTITY,
            "[degf]" | "°f" | "f" | "degf" | "fahrenheit" => {
                UnitConversion { factor: 5.0 / 9.0, offset: -32.0 * 5.0 / 9.0 }
            }
            "k" | "kelvin" => UnitConversion { factor: 1.0, offset: -273.15 },
            _ => return None,
        },
        "%" => match n {
            "%" | "%rh" | "percent" | "pct" | "%el" | "%ef" => UnitConversion::IDENTITY,
            "1" | "/" | "ratio" | "fraction" => UnitConversion::scale(100.0),
            _ => return None,
        },
        "hPa" => match n {
            "hpa" | "mbar" => UnitConversion::IDENTITY,
            "pa" => UnitConversion::scale(0.01),
            "kpa" => UnitConversion::scale(10.0),
            "bar" => UnitConversion::scale(1000.0),
            _ => return None,
        },
        "W" => match n {
            "w" => UnitConversion::IDENTITY,
            "kw" => UnitConversion::scale(1000.0),
            "mw" if u == "mW" => UnitConversion::scale(0.001),
            _ => return None,
        },
        "Wh" => match n {
            "wh" => UnitConversion::IDENTITY,
            "kwh" => UnitConversion::scale(1000.0),
            "j" => UnitConversion::scale(1.0 / 3600.0),
            _ => return None,
        },
        "dB" => match n {
            "db" | "db(a)" | "dba" => UnitConversion::IDENTITY,
            _ => return None,
        },
        "m/s" => match n {
            "m/s" | "m.s-1" => UnitConversion::IDENTITY,
            "km/h" => UnitConversion::scale(1.0 / 3.6),
            _ => return None,
        },
        "V" => match n {
            "v" => UnitConversion::IDENTITY,
            "mv" => UnitConversion::scale(0.001),
            _ => return None,
        },
        _ => return None,
    };
    Some(c)
}

/// The registry of known properties, looked up by canonical name or alias (case-insensitive).
#[derive(Debug, Clone)]
pub struct PropertyRegistry {
    defs: HashMap<String, PropertyDef>,
    aliases: HashMap<String, String>,
}

impl Default for PropertyRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PropertyRegistry {
    /// The built-in catalogue.
    pub fn builtin() -> Self {
        let mut reg = Self { defs: HashMap::new(), aliases: HashMap::new() };
        for &(name, unit, kind, min, max, aliases, description) in BUILTIN {
            let def = PropertyDef {
                name: PropertyName::parse(name).expect("built-in property names are valid"),
                unit: unit.to_owned(),
                kind,
                min: (!min.is_nan()).then_some(min),
                max: (!max.is_nan()).then_some(max),
                tolerance: default_tolerance(name, unit),
                aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
                description: description.to_owned(),
                auto_registered: false,
            };
            reg.insert(def);
        }
        reg
    }

    /// Add or replace a property definition (and its aliases).
    pub fn insert(&mut self, def: PropertyDef) {
        for a in &def.aliases {
            self.aliases.insert(a.to_ascii_lowercase(), def.name.as_str().to_owned());
        }
        self.defs.insert(def.name.as_str().to_owned(), def);
    }

    /// Look a name up: canonical first, then aliases, ignoring case.
    pub fn resolve(&self, name: &str) -> Option<&PropertyDef> {
        if let Some(d) = self.defs.get(name) {
            return Some(d);
        }
        let lower = name.to_ascii_lowercase();
        if let Some(d) = self.defs.get(&lower) {
            return Some(d);
        }
        self.aliases.get(&lower).and_then(|c| self.defs.get(c))
    }

    /// All definitions, sorted by name.
    pub fn all(&self) -> Vec<&PropertyDef> {
        let mut v: Vec<_> = self.defs.values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Validate (and convert) a value for a property: kind, finiteness, unit, valid range.
    /// `unit` is the unit the source declared, if any. Returns the value and its quality flags:
    /// [`quality::OUT_OF_RANGE`](crate::quality::OUT_OF_RANGE) for a reading outside the range
    /// but within the property's tolerance.
    pub fn normalize(
        &self,
        def: &PropertyDef,
        value: Value,
        unit: Option<&str>,
    ) -> Result<(Value, u8)> {
        if let Value::F64(v) = value
            && !v.is_finite()
        {
            return Err(Error::NotFinite(v));
        }
        let got = value.kind();
        let mut value = value.coerce(def.kind).ok_or_else(|| Error::WrongKind {
            property: def.name.to_string(),
            expected: def.kind,
            got,
        })?;
        if let (Some(unit), Value::F64(v)) = (unit, &mut value) {
            let conv = unit_conversion(def.name.as_str(), &def.unit, unit).ok_or_else(|| {
                Error::UnknownUnit {
                    property: def.name.to_string(),
                    unit: unit.to_owned(),
                    canonical: def.unit.clone(),
                }
            })?;
            *v = conv.apply(*v);
        }
        if let Some(x) = value.as_f64()
            && def.kind != ValueKind::Boolean
        {
            let (min, max) = (def.min.unwrap_or(f64::MIN), def.max.unwrap_or(f64::MAX));
            let tol = def.tolerance.unwrap_or(0.0);
            if x < min || x > max {
                if x >= min - tol && x <= max + tol {
                    return Ok((value, crate::quality::OUT_OF_RANGE));
                }
                return Err(Error::OutOfRange {
                    property: def.name.to_string(),
                    value: x,
                    min,
                    max,
                    unit: def.unit.clone(),
                    tolerance: tol,
                });
            }
        }
        Ok((value, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_canonical_names() {
        let r = PropertyRegistry::builtin();
        for a in ["pm2_5", "pm25", "PM2.5", "P2", "pm_2_5"] {
            assert_eq!(r.resolve(a).unwrap().name.as_str(), "pm2_5", "{a}");
        }
        assert_eq!(r.resolve("P1").unwrap().name.as_str(), "pm10");
        assert_eq!(r.resolve("relativeHumidity").unwrap().name.as_str(), "relative_humidity");
        assert!(r.resolve("flux_capacitance").is_none());
    }

    #[test]
    fn unit_conversions() {
        let r = PropertyRegistry::builtin();
        let no2 = r.resolve("no2").unwrap();
        assert_eq!(r.normalize(no2, Value::F64(10.0), Some("ppb")).unwrap(), (Value::F64(19.1), 0));
        let t = r.resolve("temperature").unwrap();
        assert_eq!(r.normalize(t, Value::F64(68.0), Some("°F")).unwrap(), (Value::F64(20.0), 0));
        assert_eq!(r.normalize(t, Value::F64(293.15), Some("K")).unwrap(), (Value::F64(20.0), 0));
        let fill = r.resolve("fill_level").unwrap();
        assert_eq!(r.normalize(fill, Value::F64(0.8), Some("/")).unwrap(), (Value::F64(80.0), 0));
        assert!(r.normalize(t, Value::F64(1.0), Some("furlong")).is_err());
    }

    #[test]
    fn range_kind_and_finiteness_are_checked() {
        let r = PropertyRegistry::builtin();
        let pm = r.resolve("pm10").unwrap();
        assert!(matches!(r.normalize(pm, Value::F64(-3.0), None), Err(Error::OutOfRange { .. })));
        assert!(matches!(r.normalize(pm, Value::F64(f64::NAN), None), Err(Error::NotFinite(_))));
        assert!(matches!(
            r.normalize(pm, Value::Str("high".into()), None),
            Err(Error::WrongKind { .. })
        ));
        assert_eq!(r.normalize(pm, Value::I64(12), None).unwrap(), (Value::F64(12.0), 0));
        let people = r.resolve("people_in").unwrap();
        assert_eq!(r.normalize(people, Value::F64(12.0), None).unwrap(), (Value::I64(12), 0));
        assert!(r.normalize(people, Value::F64(-1.0), None).is_err(), "a count has no tolerance");
    }

    /// Issue 18's examples: a PM sensor's −0.8 µg/m³ and a humidity of 100.4 % are kept,
    /// flagged; −3 µg/m³ and 104 % are refused, the reason naming the tolerance; the edges of
    /// the range and of the tolerance are exact.
    #[test]
    fn readings_a_little_out_of_range_are_kept_flagged() {
        use crate::quality::OUT_OF_RANGE;
        let r = PropertyRegistry::builtin();
        let pm = r.resolve("pm2_5").unwrap();
        assert_eq!(
            r.normalize(pm, Value::F64(-0.8), None).unwrap(),
            (Value::F64(-0.8), OUT_OF_RANGE)
        );
        assert_eq!(r.normalize(pm, Value::F64(0.0), None).unwrap(), (Value::F64(0.0), 0));
        assert_eq!(r.normalize(pm, Value::F64(-2.0), None).unwrap().1, OUT_OF_RANGE);
        let e = r.normalize(pm, Value::F64(-3.0), None).unwrap_err().to_string();
        assert!(e.contains("tolerance of 2 ug/m3"), "{e}");
        let rh = r.resolve("relative_humidity").unwrap();
        assert_eq!(
            r.normalize(rh, Value::F64(100.4), None).unwrap(),
            (Value::F64(100.4), OUT_OF_RANGE)
        );
        assert_eq!(r.normalize(rh, Value::F64(100.0), None).unwrap().1, 0);
        assert!(r.normalize(rh, Value::F64(104.0), None).is_err());
        // Converted first, then checked: 0.99 of a fill "/" is 99 %, 1.01 is 101 % (flagged).
        let fill = r.resolve("fill_level").unwrap();
        assert_eq!(r.normalize(fill, Value::F64(1.01), Some("/")).unwrap().1, OUT_OF_RANGE);
        // Sound levels and temperatures have no tolerance.
        let laeq = r.resolve("laeq").unwrap();
        let e = r.normalize(laeq, Value::F64(-0.1), None).unwrap_err().to_string();
        assert!(!e.contains("tolerance"), "{e}");
    }
}
