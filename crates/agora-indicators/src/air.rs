//! Air-quality indices: the European Air Quality Index (EEA, 2024 revision; hourly) and the
//! French ATMO index (arrêté of 10 July 2020, in force since 2021; daily).
//!
//! Both class each pollutant by fixed concentration bounds (µg/m³), then take the worst class as
//! the index and name the pollutant(s) responsible. Concentrations are agora's canonical units
//! (µg/m³; gases measured in ppb are converted at 20 °C on the way in). A pollutant not measured
//! is absent from the inputs and listed as missing: the index is the worst of those measured,
//! and says which were not.

use serde::Serialize;

use crate::{Error, Result};

/// The pollutants both indices use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Pollutant {
    /// Particles under 2.5 µm (`pm2_5`).
    #[serde(rename = "pm2_5")]
    Pm25,
    /// Particles under 10 µm (`pm10`).
    Pm10,
    /// Nitrogen dioxide (`no2`).
    No2,
    /// Ozone (`o3`).
    O3,
    /// Sulphur dioxide (`so2`).
    So2,
}

impl Pollutant {
    /// All of them, in the order the indices list them.
    pub const ALL: [Pollutant; 5] =
        [Pollutant::Pm25, Pollutant::Pm10, Pollutant::No2, Pollutant::O3, Pollutant::So2];

    /// agora's property name.
    pub fn property(self) -> &'static str {
        match self {
            Pollutant::Pm25 => "pm2_5",
            Pollutant::Pm10 => "pm10",
            Pollutant::No2 => "no2",
            Pollutant::O3 => "o3",
            Pollutant::So2 => "so2",
        }
    }

    /// The pollutant of an agora property name.
    pub fn of_property(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.property() == name)
    }

    /// Whether the ATMO index takes the day's maximum hourly value (gases) rather than the daily
    /// mean (particles).
    pub fn atmo_uses_daily_max(self) -> bool {
        matches!(self, Pollutant::No2 | Pollutant::O3 | Pollutant::So2)
    }
}

/// A concentration in µg/m³: finite and not negative.
fn checked(p: Pollutant, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::Invalid(format!(
            "{} concentration {v} µg/m³ is not a concentration",
            p.property()
        )))
    }
}

/// The class of `v` among ascending upper bounds, each included in its class: 0 when
/// `v ≤ bounds[0]`, …, `bounds.len()` above the last.
fn class_of(v: f64, bounds: &[f64]) -> usize {
    bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len())
}

/// The six bands of the European Air Quality Index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EaqiBand {
    /// Good.
    Good,
    /// Fair.
    Fair,
    /// Moderate.
    Moderate,
    /// Poor.
    Poor,
    /// Very poor.
    VeryPoor,
    /// Extremely poor.
    ExtremelyPoor,
}

impl EaqiBand {
    const ALL: [EaqiBand; 6] = [
        EaqiBand::Good,
        EaqiBand::Fair,
        EaqiBand::Moderate,
        EaqiBand::Poor,
        EaqiBand::VeryPoor,
        EaqiBand::ExtremelyPoor,
    ];

    /// The band's rank, 1 (good) to 6 (extremely poor).
    pub fn level(self) -> u8 {
        self as u8 + 1
    }

    /// The band's colour, as the EEA draws it (the ATMO index uses the same six colours).
    pub fn colour(self) -> &'static str {
        match self {
            EaqiBand::Good => "#50f0e6",
            EaqiBand::Fair => "#50ccaa",
            EaqiBand::Moderate => "#f0e641",
            EaqiBand::Poor => "#ff5050",
            EaqiBand::VeryPoor => "#960032",
            EaqiBand::ExtremelyPoor => "#7d2181",
        }
    }
}

/// Upper bounds (µg/m³, included) of the first five EAQI bands, per pollutant (EEA, 2024).
fn eaqi_bounds(p: Pollutant) -> [f64; 5] {
    match p {
        Pollutant::Pm25 => [5.0, 15.0, 50.0, 90.0, 140.0],
        Pollutant::Pm10 => [15.0, 45.0, 120.0, 195.0, 270.0],
        Pollutant::No2 => [10.0, 25.0, 60.0, 100.0, 150.0],
        Pollutant::O3 => [60.0, 100.0, 120.0, 160.0, 180.0],
        Pollutant::So2 => [20.0, 40.0, 125.0, 190.0, 275.0],
    }
}

/// The EAQI band of one pollutant's hourly concentration.
pub fn eaqi_band(p: Pollutant, ug_m3: f64) -> Result<EaqiBand> {
    let v = checked(p, ug_m3)?;
    Ok(EaqiBand::ALL[class_of(v, &eaqi_bounds(p))])
}

/// One pollutant's part of an index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubIndex<C> {
    /// The pollutant.
    pub pollutant: Pollutant,
    /// The concentration classed, µg/m³.
    pub value: f64,
    /// Its class.
    pub class: C,
}

/// An index: each pollutant's class, the worst, and who is responsible.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Index<C> {
    /// The worst class of the pollutants measured; absent when none was.
    pub class: Option<C>,
    /// The pollutant(s) in that class (several when tied).
    pub responsible: Vec<Pollutant>,
    /// Each measured pollutant's class.
    pub pollutants: Vec<SubIndex<C>>,
    /// The index's pollutants with no value: the index is the worst of the others.
    pub missing: Vec<Pollutant>,
}

fn index<C: Copy + Ord>(
    values: &[(Pollutant, f64)],
    class: impl Fn(Pollutant, f64) -> Result<C>,
) -> Result<Index<C>> {
    let mut pollutants: Vec<SubIndex<C>> = Vec::with_capacity(values.len());
    for &(p, v) in values {
        if pollutants.iter().any(|s| s.pollutant == p) {
            return Err(Error::Invalid(format!("{} is given twice", p.property())));
        }
        pollutants.push(SubIndex { pollutant: p, value: v, class: class(p, v)? });
    }
    pollutants.sort_by_key(|s| s.pollutant);
    let worst = pollutants.iter().map(|s| s.class).max();
    let responsible =
        pollutants.iter().filter(|s| Some(s.class) == worst).map(|s| s.pollutant).collect();
    let missing = Pollutant::ALL
        .into_iter()
        .filter(|p| !pollutants.iter().any(|s| s.pollutant == *p))
        .collect();
    Ok(Index { class: worst, responsible, pollutants, missing })
}

/// The European Air Quality Index of an hour: each pollutant's hourly concentration.
pub fn eaqi(values: &[(Pollutant, f64)]) -> Result<Index<EaqiBand>> {
    index(values, eaqi_band)
}

/// The six classes of the French ATMO index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AtmoClass {
    /// Bon.
    Bon,
    /// Moyen.
    Moyen,
    /// Dégradé.
    Degrade,
    /// Mauvais.
    Mauvais,
    /// Très mauvais.
    TresMauvais,
    /// Extrêmement mauvais.
    ExtremementMauvais,
}

impl AtmoClass {
    const ALL: [AtmoClass; 6] = [
        AtmoClass::Bon,
        AtmoClass::Moyen,
        AtmoClass::Degrade,
        AtmoClass::Mauvais,
        AtmoClass::TresMauvais,
        AtmoClass::ExtremementMauvais,
    ];

    /// The class's number, 1 (bon) to 6 (extrêmement mauvais), as the arrêté numbers them.
    pub fn level(self) -> u8 {
        self as u8 + 1
    }

    /// The class's colour, as the arrêté sets it.
    pub fn colour(self) -> &'static str {
        match self {
            AtmoClass::Bon => "#50f0e6",
            AtmoClass::Moyen => "#50ccaa",
            AtmoClass::Degrade => "#f0e641",
            AtmoClass::Mauvais => "#ff5050",
            AtmoClass::TresMauvais => "#960032",
            AtmoClass::ExtremementMauvais => "#7d2181",
        }
    }

    /// The class's name, in French as the arrêté writes it.
    pub fn label_fr(self) -> &'static str {
        match self {
            AtmoClass::Bon => "Bon",
            AtmoClass::Moyen => "Moyen",
            AtmoClass::Degrade => "Dégradé",
            AtmoClass::Mauvais => "Mauvais",
            AtmoClass::TresMauvais => "Très mauvais",
            AtmoClass::ExtremementMauvais => "Extrêmement mauvais",
        }
    }
}

/// Upper bounds (µg/m³, included) of the first five ATMO classes, per pollutant (arrêté of
/// 10 July 2020, annex).
fn atmo_bounds(p: Pollutant) -> [f64; 5] {
    match p {
        Pollutant::So2 => [100.0, 200.0, 350.0, 500.0, 750.0],
        Pollutant::No2 => [40.0, 90.0, 120.0, 230.0, 340.0],
        Pollutant::O3 => [50.0, 100.0, 130.0, 240.0, 380.0],
        Pollutant::Pm10 => [20.0, 40.0, 50.0, 100.0, 150.0],
        Pollutant::Pm25 => [10.0, 20.0, 25.0, 50.0, 75.0],
    }
}

/// The ATMO sub-index of one pollutant: `value` is the day's maximum hourly concentration for
/// SO2, NO2 and O3, the daily mean for PM10 and PM2.5 ([`Pollutant::atmo_uses_daily_max`]).
pub fn atmo_subindex(p: Pollutant, ug_m3: f64) -> Result<AtmoClass> {
    let v = checked(p, ug_m3)?;
    Ok(AtmoClass::ALL[class_of(v, &atmo_bounds(p))])
}

/// The ATMO index of a day (days in Europe/Paris): each pollutant's daily value as
/// [`atmo_subindex`] takes it.
pub fn atmo(values: &[(Pollutant, f64)]) -> Result<Index<AtmoClass>> {
    index(values, atmo_subindex)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published upper bounds, written out again from the texts (BRIEF, EEA 2024; arrêté of
    /// 10 July 2020), independent of the tables above.
    const EAQI_TABLE: [(Pollutant, [f64; 5]); 5] = [
        (Pollutant::Pm25, [5.0, 15.0, 50.0, 90.0, 140.0]),
        (Pollutant::Pm10, [15.0, 45.0, 120.0, 195.0, 270.0]),
        (Pollutant::No2, [10.0, 25.0, 60.0, 100.0, 150.0]),
        (Pollutant::O3, [60.0, 100.0, 120.0, 160.0, 180.0]),
        (Pollutant::So2, [20.0, 40.0, 125.0, 190.0, 275.0]),
    ];
    const ATMO_TABLE: [(Pollutant, [f64; 5]); 5] = [
        (Pollutant::So2, [100.0, 200.0, 350.0, 500.0, 750.0]),
        (Pollutant::No2, [40.0, 90.0, 120.0, 230.0, 340.0]),
        (Pollutant::O3, [50.0, 100.0, 130.0, 240.0, 380.0]),
        (Pollutant::Pm10, [20.0, 40.0, 50.0, 100.0, 150.0]),
        (Pollutant::Pm25, [10.0, 20.0, 25.0, 50.0, 75.0]),
    ];

    #[test]
    fn every_eaqi_edge_both_sides() {
        for (p, bounds) in EAQI_TABLE {
            assert_eq!(eaqi_band(p, 0.0).unwrap(), EaqiBand::Good, "{p:?} at 0");
            for (i, b) in bounds.iter().enumerate() {
                // The bound itself is the lower band's; just above it, the next band's.
                assert_eq!(eaqi_band(p, *b).unwrap().level() as usize, i + 1, "{p:?} at {b}");
                assert_eq!(
                    eaqi_band(p, b + 0.01).unwrap().level() as usize,
                    i + 2,
                    "{p:?} above {b}"
                );
            }
            assert_eq!(eaqi_band(p, 5000.0).unwrap(), EaqiBand::ExtremelyPoor);
        }
    }

    #[test]
    fn every_atmo_edge_both_sides() {
        for (p, bounds) in ATMO_TABLE {
            assert_eq!(atmo_subindex(p, 0.0).unwrap(), AtmoClass::Bon);
            for (i, b) in bounds.iter().enumerate() {
                assert_eq!(atmo_subindex(p, *b).unwrap().level() as usize, i + 1, "{p:?} at {b}");
                assert_eq!(
                    atmo_subindex(p, b + 0.01).unwrap().level() as usize,
                    i + 2,
                    "{p:?} above {b}"
                );
            }
        }
        assert_eq!(AtmoClass::Mauvais.colour(), "#ff5050");
        assert_eq!(AtmoClass::ExtremementMauvais.label_fr(), "Extrêmement mauvais");
    }

    #[test]
    fn the_worst_pollutant_decides_and_ties_are_all_named() {
        // A summer afternoon: ozone "dégradé" (101–130), NO2 "moyen" (41–90), PM bon.
        let day = atmo(&[
            (Pollutant::O3, 118.0),
            (Pollutant::No2, 55.0),
            (Pollutant::Pm10, 18.0),
            (Pollutant::Pm25, 9.5),
        ])
        .unwrap();
        assert_eq!(day.class, Some(AtmoClass::Degrade));
        assert_eq!(day.responsible, [Pollutant::O3]);
        assert_eq!(day.missing, [Pollutant::So2]);
        // PM10 and PM2.5 both "mauvais": both responsible.
        let day = atmo(&[(Pollutant::Pm10, 80.0), (Pollutant::Pm25, 30.0)]).unwrap();
        assert_eq!(day.class, Some(AtmoClass::Mauvais));
        assert_eq!(day.responsible, [Pollutant::Pm25, Pollutant::Pm10]);
        // Nothing measured: no index, everything missing.
        let none = eaqi(&[]).unwrap();
        assert_eq!((none.class, none.missing.len()), (None, 5));
        let hour = eaqi(&[(Pollutant::No2, 61.0), (Pollutant::Pm25, 4.0)]).unwrap();
        assert_eq!(
            (hour.class, hour.responsible.clone()),
            (Some(EaqiBand::Poor), vec![Pollutant::No2])
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        assert!(eaqi_band(Pollutant::O3, -1.0).unwrap_err().to_string().contains("o3"));
        assert!(eaqi_band(Pollutant::O3, f64::NAN).is_err());
        let twice = atmo(&[(Pollutant::O3, 1.0), (Pollutant::O3, 2.0)]).unwrap_err();
        assert!(twice.to_string().contains("twice"));
    }

    proptest::proptest! {
        #[test]
        fn classes_never_fall_as_concentrations_rise(a in 0.0f64..2000.0, b in 0.0f64..2000.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            for p in Pollutant::ALL {
                proptest::prop_assert!(eaqi_band(p, lo).unwrap() <= eaqi_band(p, hi).unwrap());
                proptest::prop_assert!(atmo_subindex(p, lo).unwrap() <= atmo_subindex(p, hi).unwrap());
            }
        }
    }
}
