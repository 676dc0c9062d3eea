//! The demo city: Aix-en-Provence (INSEE 13001), its four connected places, ~1,500 simulated
//! devices with realistic daily and weekly cycles and a few faults. Simulated data goes through the
//! same ingest pipeline as real data.
//!
//! Every value is a pure function of (seed, device, time), so a backfill and the live stream agree
//! and a run can be reproduced. Slow processes (weather regimes, pollution episodes) are smooth
//! noise over days; bins and soil moisture are computed from the last collection or irrigation.
//!
//! Besides, the city lives through a few episodes set relative to now, like the faults, so that
//! each indicator has something to show as soon as the demo starts: a two-day particulate
//! episode (ATMO "mauvais", the PM10 information threshold), a loud night at La Rotonde (Lnight
//! above 55 dB(A)), and, written by the backfill, a week of last summer with a three-day
//! heatwave whose nights show the heat island of the mineral squares against the Torse valley.
//!
//! Pedestrian counters get more than a year of history, so that the commerce observatory has a
//! last year to compare with. Their days follow the week, the markets (Tuesday, Thursday and
//! Saturday mornings), public holidays (like a Sunday) and zone B's school holidays; La Rotonde
//! has a Christmas market from 20 November to 31 December; and the Hôtel de Ville's street was
//! made pedestrian [`PEDESTRIAN_DAYS_AGO`] days before now, with a planted +12 % on its counters
//! and nothing elsewhere, declared with La Rotonde and the Pôle Culturel as controls so that the
//! impact study can be seen to find it.

use std::borrow::Cow;
use std::f64::consts::PI;
use std::time::{Duration, Instant};

use agora_api::AppState;
use agora_ingest::{Decoded, Field, Record, Source};
use agora_model::{DeviceId, DeviceKind, InseeCode, SiteId, Timestamp, Value};
use agora_store::catalog::{Commune, Device, Site};
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Weekday};

const S: i64 = 1_000_000_000;
/// The demo's communes: Aix-en-Provence, and its neighbour Le Tholonet (INSEE codes checked
/// against Etalab's `decoupage-administratif`). The four places are Aix's; to show tenancy, the
/// demo files the Vallée de la Torse (the valley that rises towards Le Tholonet) under Le
/// Tholonet.
const COMMUNES: [(&str, &str); 2] = [("13001", "Aix-en-Provence"), ("13109", "Le Tholonet")];

/// Demo settings.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Days of history to backfill.
    pub days: u32,
    /// Seed of every random draw.
    pub seed: u64,
    /// Days of history of the pedestrian counters, when longer than `days` (the commerce
    /// observatory compares with last year; 0: none beyond `days`).
    pub counter_history_days: u32,
}

/// What the backfill did.
#[derive(Debug, Clone, Copy)]
pub struct BackfillReport {
    /// Devices in the fleet.
    pub devices: usize,
    /// Points written.
    pub points: usize,
    /// Time taken.
    pub elapsed: Duration,
}

/// Where the demo communes' bin rounds start: (INSEE code, [lat, lon]).
pub const DEPOTS: [(&str, [f64; 2]); 2] =
    [("13001", [43.5205, 5.4395]), ("13109", [43.5238, 5.4660])];

/// A connected place of the pilot.
struct Place {
    id: &'static str,
    /// INSEE code of its commune (one of [`COMMUNES`]).
    commune: &'static str,
    short: &'static str,
    name: &'static str,
    lat: f64,
    lon: f64,
    /// Traffic exposure (NO2, noise) relative to the city average.
    traffic: f64,
    /// Urban heat island: night-time temperature excess in °C.
    heat: f64,
    /// Pedestrian attraction.
    footfall: f64,
}

const PLACES: [Place; 4] = [
    Place {
        id: "hotel-de-ville",
        commune: "13001",
        short: "hdv",
        name: "Hôtel de Ville — place de la Mairie, forum des Cardeurs",
        lat: 43.52990,
        lon: 5.44740,
        traffic: 0.8,
        heat: 1.8,
        footfall: 1.6,
    },
    Place {
        id: "vallee-de-la-torse",
        commune: "13109",
        short: "torse",
        name: "Vallée de la Torse",
        lat: 43.52330,
        lon: 5.46150,
        traffic: 0.5,
        heat: -0.8,
        footfall: 0.6,
    },
    Place {
        id: "la-rotonde",
        commune: "13001",
        short: "rotonde",
        name: "La Rotonde",
        lat: 43.52630,
        lon: 5.44460,
        traffic: 1.6,
        heat: 1.4,
        footfall: 1.3,
    },
    Place {
        id: "pole-culturel",
        commune: "13001",
        short: "pole",
        name: "Pôle Culturel",
        lat: 43.52380,
        lon: 5.44050,
        traffic: 1.0,
        heat: 0.9,
        footfall: 0.9,
    },
];

/// Device kinds of the fleet, with how many per place and their reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Air,
    Noise,
    Weather,
    Pedestrian,
    Streetlight,
    Bin,
    Soil,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Air,
        Kind::Noise,
        Kind::Weather,
        Kind::Pedestrian,
        Kind::Streetlight,
        Kind::Bin,
        Kind::Soil,
    ];
    fn per_place(self) -> usize {
        match self {
            Kind::Air => 6,
            Kind::Noise => 12,
            Kind::Weather => 3,
            Kind::Pedestrian => 10,
            Kind::Streetlight => 250,
            Kind::Bin => 75,
            Kind::Soil => 19,
        }
    }
    fn period_s(self) -> i64 {
        match self {
            Kind::Air | Kind::Noise => 60,
            Kind::Weather => 600,
            Kind::Pedestrian | Kind::Streetlight => 900,
            Kind::Bin => 3600,
            Kind::Soil => 1800,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Air => "air_quality",
            Kind::Noise => "noise",
            Kind::Weather => "weather",
            Kind::Pedestrian => "pedestrian_counter",
            Kind::Streetlight => "streetlight",
            Kind::Bin => "waste_container",
            Kind::Soil => "soil_moisture",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Air => "aq",
            Kind::Noise => "noise",
            Kind::Weather => "wx",
            Kind::Pedestrian => "ped",
            Kind::Streetlight => "lamp",
            Kind::Bin => "bin",
            Kind::Soil => "soil",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The PM10 channel repeats one reading from this time on.
    Stuck(i64),
    /// The device stops reporting at this time.
    Silent(i64),
    /// The lamp fails at this time.
    LampFails(i64),
    /// The lamp fails at the first time and is repaired at the second.
    LampRepaired(i64, i64),
    /// The lamp's photocell fails from this time: lit day and night.
    LitByDay(i64),
    /// The zone's valve fails from this time: no more watering.
    NoWater(i64),
    /// The bin is no longer collected from this time on.
    Overflow(i64),
    /// The pedestrian counter counts nobody from this time on (a blocked sensor).
    Blocked(i64),
    /// The particulate channels read high from this time on, more each day (2.5 % a day: a
    /// fouled optical chamber), drifting from the other sensors of the place.
    Drift(i64),
    /// The sound level meter reads 6 dB more from this time on (remounted nearer the road).
    Shift(i64),
}

/// The streets of each place's lamps, 25 lamps a street in the order of their numbers.
fn street_of(place: &str, n: usize) -> &'static str {
    const STREETS: [(&str, [&str; 10]); 4] = [
        (
            "hdv",
            [
                "Place de l'Hôtel de Ville",
                "Rue Gaston de Saporta",
                "Rue Vauvenargues",
                "Place Richelme",
                "Rue Paul Bert",
                "Rue des Cordeliers",
                "Rue de la Mairie",
                "Forum des Cardeurs",
                "Rue Littera",
                "Rue Aude",
            ],
        ),
        (
            "rotonde",
            [
                "Cours Mirabeau",
                "Avenue des Belges",
                "Avenue Victor Hugo",
                "Boulevard du Roi René",
                "Rue Espariat",
                "Avenue Bonaparte",
                "Place Jeanne d'Arc",
                "Boulevard de la République",
                "Allées Provençales",
                "Avenue Napoléon Bonaparte",
            ],
        ),
        (
            "torse",
            [
                "Chemin de la Torse",
                "Avenue du Parc",
                "Allée des Platanes",
                "Allée des Saules",
                "Chemin du Moulin",
                "Passerelle de la Torse",
                "Allée des Frênes",
                "Chemin des Écoliers",
                "Allée du Bassin",
                "Sentier du Ruisseau",
            ],
        ),
        (
            "pole",
            [
                "Avenue Mozart",
                "Rue Jean Monnet",
                "Place des Arts",
                "Allée des Musiciens",
                "Parvis du Grand Théâtre",
                "Avenue Max Juvénal",
                "Rue des Bœufs",
                "Esplanade du Pavillon Noir",
                "Allée du Conservatoire",
                "Passage de la Fondation",
            ],
        ),
    ];
    STREETS
        .iter()
        .find(|(p, _)| *p == place)
        .map_or("—", |(_, streets)| streets[((n.max(1) - 1) / 25).min(9)])
}

/// The green-space zone of a place's soil sensors and its plants.
fn zone_of(n: usize) -> (&'static str, &'static str) {
    match n {
        1..=7 => ("Pelouse", "lawn"),
        8..=13 => ("Massif fleuri", "flower_bed"),
        _ => ("Arbres d'alignement", "trees"),
    }
}

impl SimDevice {
    /// The catalog's metadata: a lamp's street and rated power, a soil sensor's zone and plants.
    fn metadata(&self) -> serde_json::Value {
        let mut m = serde_json::json!({"simulated": true, "period_s": self.kind.period_s()});
        let short = PLACES[self.place].short;
        let n: usize = self.id.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(1);
        match self.kind {
            Kind::Streetlight => {
                m["street"] = street_of(short, n).into();
                m["rated_power_w"] = round(40.0 + 30.0 * (self.bias - 0.85) / 0.3, 0.1).into();
            }
            Kind::Soil => {
                let (zone, plant) = zone_of(n);
                m["zone"] = format!("{zone} — {}", PLACES[self.place].name).into();
                m["plant"] = plant.into();
            }
            _ => {}
        }
        m
    }
}

/// A drifting sensor's gain: 2.5 % more each day from `from`.
fn drift_gain(from: i64, t: i64) -> f64 {
    1.0 + 0.025 * ((t - from) as f64 / (86_400 * S) as f64).max(0.0)
}

#[derive(Debug, Clone)]
struct SimDevice {
    id: String,
    kind: Kind,
    place: usize,
    idx: u64,
    lat: f64,
    lon: f64,
    phase_s: i64,
    /// Per-device multiplicative bias (sensor spread, bin usage, lamp power).
    bias: f64,
    fault: Option<Fault>,
}

/// The episodes of the demo city (times in ns), set relative to the end of the backfill.
#[derive(Debug, Clone, Copy)]
struct Episodes {
    /// Centre of a particulate episode (a winter anticyclone and wood heating), about two days.
    pollution: i64,
    /// 22:00 local on the evening of a street party at La Rotonde, loud until 4:00.
    loud_night: i64,
    /// Local midnight starting ten days of last summer (16 July) with a heatwave from the 18th
    /// to the 23rd: the backfill writes them for the weather and air-quality stations.
    summer: i64,
    /// The local day the Hôtel de Ville's street was made pedestrian.
    pedestrianised: NaiveDate,
}

/// The open data the demo city publishes (once: a restarted demo keeps what operators changed):
/// each theme hourly, footfall and bins daily, one place's air quality reading by reading, the
/// places and the devices; and one draft, not published, of quarter-hour air quality.
async fn publish_open_data(state: &AppState) -> anyhow::Result<()> {
    use agora_store::opendata::{Dataset, DatasetKind, Resolution, Theme};
    if !state.datasets.list().await?.is_empty() {
        return Ok(());
    }
    let d = |id: &str,
             theme: Theme,
             resolution: Resolution,
             title: &str,
             description: &str,
             keywords: &[&str]| {
        let kind = match id {
            "lieux-equipes" => DatasetKind::Places,
            "capteurs" => DatasetKind::Devices,
            "indice-bien-etre" => DatasetKind::Wellbeing,
            "ville-quart-heure-aix" => DatasetKind::Accessibility,
            "signalements" => DatasetKind::Reports,
            "lieux-a-voir" => DatasetKind::PointsOfInterest,
            "parcours-decouverte" => DatasetKind::Tours,
            _ => DatasetKind::Measurements,
        };
        Dataset {
            id: id.into(),
            kind,
            title: title.into(),
            description: description.into(),
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            theme,
            commune: None,
            site: None,
            properties: Vec::new(),
            resolution,
            embargo_hours: 0,
            licence: "etalab-2.0".into(),
            publisher: None,
            contact_email: None,
            published: true,
            created_at: agora_model::Timestamp::from_nanos(0),
            modified_at: agora_model::Timestamp::from_nanos(0),
        }
    };
    use Resolution::{Daily, Hourly, QuarterHour, Raw};
    let mut sets = vec![
        d(
            "qualite-air-horaire",
            Theme::Air,
            Hourly,
            "Qualité de l'air — moyennes horaires",
            "Concentrations de particules fines (PM2,5, PM10), de dioxyde d'azote et d'ozone mesurées par les micro-capteurs des places, en moyennes horaires (µg/m³). Capteurs à bas coût : indicatifs, non réglementaires.",
            &["qualité de l'air", "particules", "NO2", "ozone", "capteurs"],
        ),
        d(
            "qualite-air-hotel-de-ville-mesures",
            Theme::Air,
            Raw,
            "Qualité de l'air place de l'Hôtel de Ville — chaque mesure",
            "Chaque mesure des micro-capteurs de la place de l'Hôtel de Ville, toutes les minutes (µg/m³).",
            &["qualité de l'air", "particules", "temps réel"],
        ),
        d(
            "bruit-horaire",
            Theme::Noise,
            Hourly,
            "Niveaux sonores — moyennes horaires",
            "Niveau sonore équivalent (LAeq, moyenne énergétique) et niveau maximal (LAmax) de chaque heure, en dB(A).",
            &["bruit", "LAeq", "environnement sonore"],
        ),
        d(
            "meteo-horaire",
            Theme::Weather,
            Hourly,
            "Météo et îlots de chaleur — moyennes horaires",
            "Température, humidité, pression, vent et éclairement mesurés sur les places, en moyennes horaires.",
            &["météo", "température", "îlot de chaleur"],
        ),
        d(
            "frequentation-pietonne-horaire",
            Theme::Footfall,
            Hourly,
            "Fréquentation piétonne — passages par heure",
            "Nombre de passages comptés par les capteurs de fréquentation, par heure (jamais plus fin, pour qu'aucune personne ne puisse être suivie).",
            &["fréquentation", "piétons", "commerce"],
        ),
        d(
            "frequentation-pietonne-quotidienne",
            Theme::Footfall,
            Daily,
            "Fréquentation piétonne — passages par jour",
            "Nombre de passages comptés par jour (jours de Paris).",
            &["fréquentation", "piétons", "commerce"],
        ),
        d(
            "eclairage-public-horaire",
            Theme::Lighting,
            Hourly,
            "Éclairage public — puissance et gradation horaires",
            "Puissance consommée et niveau de gradation des luminaires connectés, en moyennes horaires.",
            &["éclairage public", "énergie"],
        ),
        d(
            "remplissage-bornes-quotidien",
            Theme::Bins,
            Daily,
            "Taux de remplissage des bornes de collecte — moyennes quotidiennes",
            "Taux de remplissage moyen de chaque borne de collecte, par jour.",
            &["propreté", "déchets", "collecte"],
        ),
        d(
            "humidite-sols-horaire",
            Theme::Soil,
            Hourly,
            "Humidité des sols des espaces verts — moyennes horaires",
            "Humidité et température des sols mesurées pour piloter l'arrosage, en moyennes horaires.",
            &["espaces verts", "arrosage", "sols"],
        ),
        d(
            "lieux-equipes",
            Theme::Equipment,
            Hourly,
            "Lieux équipés de capteurs",
            "Les places et rues équipées, leur position et ce qui y est mesuré.",
            &["lieux", "capteurs"],
        ),
        d(
            "capteurs",
            Theme::Equipment,
            Hourly,
            "Capteurs publics",
            "Chaque capteur public : son type, sa place, sa position et les grandeurs qu'il mesure.",
            &["capteurs", "équipements"],
        ),
    ];
    sets[1].site = Some("hotel-de-ville".into());
    sets.push(d(
        "indice-bien-etre",
        Theme::Equipment,
        Daily,
        "Indice de bien-être des lieux — par mois",
        "L'indice de bien-être de chaque lieu équipé, mois par mois, sur 100, et ses dimensions (environnement, vitalité urbaine, services et proximité, propreté et éclairage, bien-être perçu), construit selon la méthode de l'OCDE ; la couverture des poids mesurés et la version de la définition (indicateurs, plages, poids) avec laquelle il est calculé. Un indicateur manquant n'est jamais compté comme zéro.",
        &["bien-être", "indicateur composite", "OCDE", "qualité de vie"],
    ));
    sets.push(d(
        "signalements",
        Theme::Equipment,
        Daily,
        "Signalements des habitants",
        "Chaque signalement fait par les habitants et les visiteurs (éclairage en panne, poubelle pleine, bruit, mobilier dégradé…) depuis le site ou les bornes : catégorie, lieu, position arrondie à 100 m, état, dates et délai de traitement, nombre de personnes. Ni texte ni adresse : rien de personnel.",
        &["signalements", "propreté", "éclairage public", "relation citoyenne"],
    ));
    sets.push(d(
        "lieux-a-voir",
        Theme::Equipment,
        Daily,
        "Lieux à voir",
        "Patrimoine, musées, fontaines, points de vue, places ombragées, toilettes publiques et points d'eau potable : nom et description en français et en anglais, horaires, accessibilité, position.",
        &["tourisme", "patrimoine", "fontaines", "accessibilité"],
    ));
    sets.push(d(
        "parcours-decouverte",
        Theme::Equipment,
        Daily,
        "Parcours de découverte",
        "Les parcours à pied proposés aux visiteurs, étape par étape : titre, rang de l'étape, lieu, longueur et durée du parcours.",
        &["tourisme", "parcours", "promenade"],
    ));
    let mut access = d(
        "ville-quart-heure-aix",
        Theme::Equipment,
        Daily,
        "Ville du quart d'heure — Aix-en-Provence, carreaux de 200 m",
        "Pour chaque carreau habité de 200 m (INSEE, Filosofi), sa population et le temps de marche (4,5 km/h, sur le réseau piéton OpenStreetMap) jusqu'à l'équipement le plus proche de chaque thème : commerces, santé, équipements sociaux, loisirs (Base permanente des équipements).",
        &["ville du quart d'heure", "accessibilité", "équipements", "marche à pied"],
    );
    access.commune = Some("13001".into());
    sets.push(access);
    let mut draft = d(
        "qualite-air-quart-heure",
        Theme::Air,
        QuarterHour,
        "Qualité de l'air — moyennes au quart d'heure (brouillon)",
        "Brouillon non publié : moyennes au quart d'heure, rendues publiques après 24 heures.",
        &["qualité de l'air"],
    );
    draft.published = false;
    draft.embargo_hours = 24;
    sets.push(draft);
    let now = state.clock.now();
    for set in sets {
        if let Err(e) = agora_opendata::dataset::check(&set, state.catalog.as_ref()) {
            anyhow::bail!("demo dataset {}: {e}", set.id);
        }
        state.datasets.put(set, now).await?;
    }
    Ok(())
}

/// Days of the summer slice.
const SUMMER_DAYS: i64 = 10;

/// Days of history of the pedestrian counters by default (a year to compare with, and five
/// weeks).
pub const COUNTER_HISTORY_DAYS: u32 = 400;
/// The Hôtel de Ville's street was made pedestrian this many days before now.
const PEDESTRIAN_DAYS_AGO: i64 = 120;
/// Its planted effect on the place's footfall.
const PEDESTRIAN_EFFECT: f64 = 1.12;

impl Episodes {
    fn at(end: i64) -> Self {
        let local_day = |t: i64| (t / S + paris_offset_s(t / S)).div_euclid(86_400);
        // A local time (seconds since the epoch, as if UTC) back to UTC, in ns.
        let utc = |local_s: i64| (local_s - paris_offset_s(local_s)) * S;
        let today = local_day(end);
        let date = chrono::DateTime::from_timestamp(end / S, 0).map(|d| d.date_naive());
        let date = date.unwrap_or_default();
        // The last July that is over.
        let year = if date.month() >= 8 { date.year() } else { date.year() - 1 };
        let july16 = NaiveDate::from_ymd_opt(year, 7, 16).expect("a valid date");
        let july16 = july16.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
        Self {
            pollution: end - 3 * 86_400 * S,
            loud_night: utc((today - 2) * 86_400 + 22 * 3600),
            summer: utc(july16),
            pedestrianised: date_of_day(today - PEDESTRIAN_DAYS_AGO),
        }
    }

    /// Particulate episode, 0 to 1.
    fn pollution(&self, t: i64) -> f64 {
        gaussian_bump((t - self.pollution) as f64 / S as f64 / 3600.0, 0.0, 30.0)
    }

    /// Extra sound level at a place's noise sensors, dB.
    fn party(&self, t: i64, place: &Place) -> f64 {
        let h = (t - self.loud_night) as f64 / S as f64 / 3600.0;
        if place.short == "rotonde" && (0.0..6.0).contains(&h) { 14.0 } else { 0.0 }
    }

    /// Heatwave strength, 0 to 1: rising over the 18th of July, full from the 19th to the 22nd,
    /// falling over the 23rd.
    fn heatwave(&self, t: i64) -> f64 {
        let day = (t - self.summer) as f64 / S as f64 / 86_400.0;
        ((day - 2.0).min(8.0 - day)).clamp(0.0, 1.0)
    }
}

/// The demo city.
#[derive(Debug)]
pub struct Demo {
    opts: DemoOptions,
    fleet: Vec<SimDevice>,
    episodes: Episodes,
    /// Zone B's school holidays.
    school: agora_indicators::calendar::SchoolHolidays,
    /// Data is generated up to (excluding) this time.
    cursor: tokio::sync::Mutex<i64>,
}

fn mix(mut z: u64) -> u64 {
    // SplitMix64 finalizer: a fast, well-distributed hash for deterministic noise.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from a key.
fn unit(key: u64) -> f64 {
    (mix(key) >> 11) as f64 / (1u64 << 53) as f64
}

/// Approximately normal (mean 0, sd 1) from a key.
fn gauss(key: u64) -> f64 {
    (0..4).map(|i| unit(key.wrapping_add(i * 0x1000_0001))).sum::<f64>() * 3f64.sqrt()
        - 2.0 * 3f64.sqrt()
}

/// Smooth noise in [-1, 1] varying over `scale` seconds.
fn smooth(key: u64, t_s: f64, scale: f64) -> f64 {
    let x = t_s / scale;
    let i = x.floor();
    let f = x - i;
    let a = unit(key ^ mix(i as i64 as u64)) * 2.0 - 1.0;
    let b = unit(key ^ mix((i as i64 + 1) as u64)) * 2.0 - 1.0;
    let w = (1.0 - (f * PI).cos()) / 2.0;
    a * (1.0 - w) + b * w
}

/// Round to a sensor's resolution, giving the shortest decimal (23.4, not 23.400000000000002).
fn round(v: f64, res: f64) -> f64 {
    if res < 1.0 {
        let k = (1.0 / res).round();
        (v * k).round() / k
    } else {
        (v / res).round() * res
    }
}

fn gaussian_bump(h: f64, centre: f64, width: f64) -> f64 {
    (-((h - centre) / width).powi(2)).exp()
}

/// Calendar facts at one instant, in Europe/Paris local time.
struct When {
    t_s: f64,
    /// Local hour of day, fractional.
    hour: f64,
    weekday: Weekday,
    day_of_year: f64,
    /// Local day number since the epoch.
    day: i64,
    sun_elevation_deg: f64,
}

/// Central European time with EU summer time (last Sunday of March to last Sunday of October, 01:00 UTC).
fn paris_offset_s(t_s: i64) -> i64 {
    let date = chrono::DateTime::from_timestamp(t_s, 0).map(|d| d.date_naive()).unwrap_or_default();
    let y = date.year();
    let last_sunday = |m: u32| {
        let mut d = NaiveDate::from_ymd_opt(y, m, 31).expect("valid date");
        while d.weekday() != Weekday::Sun {
            d = d.pred_opt().expect("valid date");
        }
        d.and_hms_opt(1, 0, 0).expect("valid time").and_utc().timestamp()
    };
    if t_s >= last_sunday(3) && t_s < last_sunday(10) { 7200 } else { 3600 }
}

/// The date of a local day number (days since 1970-01-01).
fn date_of_day(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date") + chrono::Duration::days(day)
}

fn when(t_ns: i64) -> When {
    let t = t_ns.div_euclid(S);
    let local = t + paris_offset_s(t);
    let day = local.div_euclid(86_400);
    let hour = local.rem_euclid(86_400) as f64 / 3600.0;
    let weekday = match day.rem_euclid(7) {
        0 => Weekday::Thu,
        1 => Weekday::Fri,
        2 => Weekday::Sat,
        3 => Weekday::Sun,
        4 => Weekday::Mon,
        5 => Weekday::Tue,
        _ => Weekday::Wed,
    };
    let date = chrono::DateTime::from_timestamp(t, 0).map(|d| d.date_naive()).unwrap_or_default();
    let doy = date.ordinal() as f64;
    // Solar elevation at Aix (43.53 N, 5.45 E).
    let decl = (23.44f64).to_radians() * (2.0 * PI * (284.0 + doy) / 365.0).sin();
    let utc_h = t.rem_euclid(86_400) as f64 / 3600.0;
    let solar_h = utc_h + 5.45 / 15.0;
    let ha = (solar_h - 12.0) * 15f64.to_radians();
    let lat = 43.53f64.to_radians();
    let elev = (lat.sin() * decl.sin() + lat.cos() * decl.cos() * ha.cos()).asin().to_degrees();
    When { t_s: t as f64, hour, weekday, day_of_year: doy, day, sun_elevation_deg: elev }
}

impl When {
    fn weekend(&self) -> bool {
        matches!(self.weekday, Weekday::Sat | Weekday::Sun)
    }
    fn market_morning(&self) -> bool {
        // Aix's big markets: Tuesday, Thursday and Saturday mornings.
        matches!(self.weekday, Weekday::Tue | Weekday::Thu | Weekday::Sat)
            && (7.5..13.5).contains(&self.hour)
    }
    /// Seasonal mean temperature in Aix (°C): about 6 in January, 24 in July.
    fn seasonal_temp(&self) -> f64 {
        15.0 - 9.0 * (2.0 * PI * (self.day_of_year - 15.0) / 365.0).cos()
    }
}

impl Demo {
    /// The fleet, laid out deterministically from the seed. Fault times are set relative to now.
    pub fn new(opts: DemoOptions) -> Self {
        let now = agora_model::Clock::now(&agora_model::SystemClock).as_nanos();
        Self::at(opts, now)
    }

    /// The fleet as it is at `now` (ns): the backfill ends there.
    pub fn at(opts: DemoOptions, now: i64) -> Self {
        let end = now - now.rem_euclid(60 * S);
        let mut fleet = Vec::new();
        let mut idx = 0u64;
        for (p, place) in PLACES.iter().enumerate() {
            for kind in Kind::ALL {
                for n in 1..=kind.per_place() {
                    idx += 1;
                    let k = opts.seed ^ idx.wrapping_mul(0x51_7CC1_B727_220A);
                    let digits = if kind.per_place() >= 100 { 3 } else { 2 };
                    let id = format!("{}-{}-{:0digits$}", kind.prefix(), place.short, n);
                    let fault = match (kind, place.short, n) {
                        (Kind::Air, "rotonde", 3) => Some(Fault::Stuck(end - 3 * 86_400 * S)),
                        (Kind::Noise, "torse", 5) => Some(Fault::Silent(end - 2 * 86_400 * S)),
                        (Kind::Streetlight, "hdv", 17) => {
                            Some(Fault::LampFails(end - 5 * 86_400 * S))
                        }
                        (Kind::Bin, "rotonde", 12) => Some(Fault::Overflow(end - 6 * 86_400 * S)),
                        (Kind::Pedestrian, "pole", 4) => Some(Fault::Blocked(end - 30 * 3600 * S)),
                        (Kind::Air, "hdv", 2) => Some(Fault::Drift(end - 12 * 86_400 * S)),
                        (Kind::Noise, "pole", 3) => Some(Fault::Shift(end - 9 * 86_400 * S)),
                        (Kind::Streetlight, "pole", 101) => Some(Fault::LampRepaired(
                            end - 12 * 86_400 * S,
                            end - 9 * 86_400 * S + 10 * 3600 * S,
                        )),
                        (Kind::Streetlight, "rotonde", 42) => {
                            Some(Fault::LitByDay(end - 3 * 86_400 * S))
                        }
                        // The flower bed of the Hôtel de Ville (sensors 8 to 13).
                        (Kind::Soil, "hdv", 8..=13) => Some(Fault::NoWater(end - 6 * 86_400 * S)),
                        _ => None,
                    };
                    fleet.push(SimDevice {
                        id,
                        kind,
                        place: p,
                        idx,
                        lat: place.lat + (unit(k) - 0.5) * 0.006,
                        lon: place.lon + (unit(k ^ 1) - 0.5) * 0.008,
                        phase_s: (unit(k ^ 2) * kind.period_s() as f64) as i64,
                        bias: 0.85 + 0.3 * unit(k ^ 3),
                        fault,
                    });
                }
            }
        }
        let start = end - i64::from(opts.days) * 86_400 * S;
        Self {
            opts,
            fleet,
            episodes: Episodes::at(end),
            school: agora_indicators::calendar::SchoolHolidays::zone_b(),
            cursor: tokio::sync::Mutex::new(start),
        }
    }

    /// Devices in the fleet.
    pub fn device_count(&self) -> usize {
        self.fleet.len()
    }

    /// Register the commune, places and devices, then write the history up to now.
    pub async fn seed_and_backfill(&self, state: &AppState) -> anyhow::Result<BackfillReport> {
        self.seed(state).await?;
        let started = Instant::now();
        let end = {
            let c = *self.cursor.lock().await;
            c + i64::from(self.opts.days) * 86_400 * S
        };
        let mut points = self.generate_until(state, end).await?;
        // Last summer's heatwave, at the stations that measure temperature.
        let from = self.episodes.summer;
        let stations = |d: &SimDevice| matches!(d.kind, Kind::Weather | Kind::Air);
        if from + SUMMER_DAYS * 86_400 * S < end - i64::from(self.opts.days) * 86_400 * S {
            points +=
                self.write_slice(state, from, from + SUMMER_DAYS * 86_400 * S, &stations).await?;
        }
        // The pedestrian counters' year before the backfill.
        let first = end - i64::from(self.opts.counter_history_days) * 86_400 * S;
        let backfill_start = end - i64::from(self.opts.days) * 86_400 * S;
        if first < backfill_start {
            let counters = |d: &SimDevice| d.kind == Kind::Pedestrian;
            points += self.write_slice(state, first, backfill_start, &counters).await?;
        }
        state.store.flush().await?;
        Ok(BackfillReport { devices: self.fleet.len(), points, elapsed: started.elapsed() })
    }

    /// After [`Demo::seed_and_backfill`]: write `days` more of the lamps', bins' and soil
    /// sensors' history before the backfill (the services' benchmark: a year of the city's
    /// street lighting and bins).
    pub async fn services_history(&self, state: &AppState, days: u32) -> anyhow::Result<usize> {
        let backfill_start = *self.cursor.lock().await - i64::from(self.opts.days) * 86_400 * S;
        let first = backfill_start - i64::from(days) * 86_400 * S;
        let services = |d: &SimDevice| matches!(d.kind, Kind::Streetlight | Kind::Bin | Kind::Soil);
        let points = self.write_slice(state, first, backfill_start, &services).await?;
        state.store.flush().await?;
        Ok(points)
    }

    /// Register the commune, its places and the fleet in the catalog.
    pub async fn seed(&self, state: &AppState) -> anyhow::Result<()> {
        for (insee, name) in COMMUNES {
            let c = Commune { insee: InseeCode::parse(insee)?, name: name.into(), boundary: None };
            state.catalog.upsert_commune(c).await?;
        }
        for p in &PLACES {
            state
                .catalog
                .upsert_site(Site {
                    id: SiteId::parse(p.id)?,
                    commune: InseeCode::parse(p.commune)?,
                    name: p.name.into(),
                    lat: Some(p.lat),
                    lon: Some(p.lon),
                    geometry: None,
                    to_review: false,
                })
                .await?;
        }
        let now = state.clock.now();
        for d in &self.fleet {
            let place = &PLACES[d.place];
            let dev = Device {
                id: DeviceId::parse(&d.id)?,
                kind: DeviceKind::parse(d.kind.name())?,
                name: Some(format!("{} {}", d.kind.name().replace('_', " "), d.id)),
                site: Some(SiteId::parse(place.id)?),
                commune: Some(InseeCode::parse(place.commune)?),
                lat: Some(round(d.lat, 1e-6)),
                lon: Some(round(d.lon, 1e-6)),
                metadata: d.metadata(),
                created_at: now,
                last_seen: None,
            };
            state.catalog.upsert_device(dev).await?;
        }
        self.declare_commerce(state).await?;
        publish_open_data(state).await
    }

    /// What the commerce department declared: Aix's markets, La Rotonde's Christmas markets, and
    /// the Hôtel de Ville's street made pedestrian (once: a restarted demo keeps its own).
    async fn declare_commerce(&self, state: &AppState) -> anyhow::Result<()> {
        use agora_store::commerce::{CalendarEvent, Intervention};
        let now = state.clock.now();
        let by = "agora demo".to_owned();
        let start = self.episodes.pedestrianised;
        if state.commerce.interventions().await?.iter().any(|i| i.created_by == by) {
            return Ok(());
        }
        let year = start.year();
        let day = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).expect("a valid date");
        let mut events = vec![CalendarEvent {
            id: 0,
            commune: "13001".into(),
            site: None,
            kind: "market".into(),
            name: "Marché de producteurs (mardi, jeudi, samedi matin)".into(),
            first_day: day(year - 2, 1, 1),
            last_day: day(year + 1, 12, 31),
            weekdays: vec!["tue".into(), "thu".into(), "sat".into()],
            created_by: by.clone(),
            created_at: now,
        }];
        for y in [year - 1, year] {
            events.push(CalendarEvent {
                id: 0,
                commune: "13001".into(),
                site: Some("la-rotonde".into()),
                kind: "event".into(),
                name: "Marché de Noël".into(),
                first_day: day(y, 11, 20),
                last_day: day(y, 12, 31),
                weekdays: Vec::new(),
                created_by: by.clone(),
                created_at: now,
            });
        }
        for e in &events {
            state.commerce.add_event(e).await?;
        }
        state
            .commerce
            .add_intervention(&Intervention {
                id: 0,
                commune: "13001".into(),
                site: "hotel-de-ville".into(),
                name: "Piétonnisation de la rue Paul Bert".into(),
                description: "Rue fermée à la circulation automobile, terrasses élargies                               (démonstration : un effet de +12 % est simulé sur les compteurs                               de la place, aucun ailleurs)."
                    .into(),
                start_day: start,
                controls: vec!["la-rotonde".into(), "pole-culturel".into()],
                created_by: by,
                created_at: now,
            })
            .await?;
        Ok(())
    }

    /// Generate and ingest every report due before `end` (ns), in one-hour slices.
    async fn generate_until(&self, state: &AppState, end: i64) -> anyhow::Result<usize> {
        let mut cursor = self.cursor.lock().await;
        let mut total = 0;
        while *cursor < end {
            let to = (*cursor + 3600 * S).min(end);
            total += self.ingest(state, self.records(*cursor, to, &|_| true)).await?;
            *cursor = to;
        }
        Ok(total)
    }

    /// Generate and ingest the reports of some devices from `from` to `to` (ns).
    async fn write_slice(
        &self,
        state: &AppState,
        from: i64,
        to: i64,
        keep: &dyn Fn(&SimDevice) -> bool,
    ) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut t = from;
        while t < to {
            let next = (t + 3600 * S).min(to);
            total += self.ingest(state, self.records(t, next, keep)).await?;
            t = next;
        }
        Ok(total)
    }

    async fn ingest(
        &self,
        state: &AppState,
        records: Vec<Record<'static>>,
    ) -> anyhow::Result<usize> {
        let decoded = Decoded { records, errors: Vec::new() };
        let report = state
            .pipeline
            .ingest(&Source { name: "demo simulator", ..Default::default() }, decoded)
            .await
            .context("writing simulated data")?;
        if let Some(e) = report.rejected.first() {
            tracing::warn!(line = e.line, reason = %e.reason, "simulated point rejected");
        }
        Ok(report.accepted)
    }

    /// Keep generating as time passes (every 5 seconds), like a real fleet reporting.
    pub async fn stream_live(&self, state: AppState) {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let now = state.clock.now().as_nanos();
            if let Err(e) = self.generate_until(&state, now).await {
                tracing::error!(error = %e, "live simulation failed");
            }
        }
    }

    /// Records of the reports with `from <= t < to` of the devices kept.
    fn records(
        &self,
        from: i64,
        to: i64,
        keep: &dyn Fn(&SimDevice) -> bool,
    ) -> Vec<Record<'static>> {
        let mut out = Vec::new();
        for d in self.fleet.iter().filter(|d| keep(d)) {
            let period = d.kind.period_s() * S;
            let phase = d.phase_s * S;
            // First report time >= from on this device's grid.
            let mut t = from + (phase - from).rem_euclid(period);
            while t < to {
                if let Some(fields) = self.fields(d, t) {
                    out.push(Record {
                        line: out.len() as u32 + 1,
                        device: Cow::Owned(d.id.clone()),
                        kind: None,
                        site: None,
                        commune: None,
                        time: Some(Timestamp::from_nanos(t)),
                        fields,
                    });
                }
                t += period;
            }
        }
        out
    }

    /// What device `d` reports at `t`, or `None` when it is silent.
    fn fields(&self, d: &SimDevice, t: i64) -> Option<Vec<Field<'static>>> {
        if let Some(Fault::Silent(from)) = d.fault
            && t >= from
        {
            return None;
        }
        let w = when(t);
        let place = &PLACES[d.place];
        let seed = self.opts.seed;
        let key = |salt: u64| seed ^ mix(d.idx.wrapping_mul(1_000_003) ^ salt) ^ (t as u64);
        // Sensor readings wander over minutes (local plumes, traffic) with a little white noise on
        // top, as real 1-minute series do: `wander` is smooth in time, `key` draws are independent.
        let wander = |salt: u64, scale_s: f64| {
            smooth(seed ^ mix(d.idx.wrapping_mul(7_919) ^ salt), w.t_s, scale_s)
        };
        let f = |name: &'static str, v: f64| Field {
            name: Cow::Borrowed(name),
            value: Value::F64(v),
            unit: None,
        };
        // City-wide weather: temperature anomaly over days, pollution episodes, mistral.
        // A heatwave is hot, still and clear: no mistral, a wider day-night swing, and the
        // squares' stone gives back the day's heat at night (the island doubles).
        let heatwave = self.episodes.heatwave(t);
        let anomaly = 3.0 * smooth(seed ^ 11, w.t_s, 3.0 * 86_400.0) * (1.0 - heatwave);
        let episode = (smooth(seed ^ 12, w.t_s, 2.0 * 86_400.0) + 0.3).max(0.0);
        let mistral =
            (smooth(seed ^ 13, w.t_s, 1.5 * 86_400.0) - 0.4).max(0.0) * 2.5 * (1.0 - heatwave);
        // +1 at 15:00, the warmest hour; -1 at 3:00, the coolest.
        let diurnal = ((w.hour - 15.0) / 24.0 * 2.0 * PI).cos();
        let island = place.heat * (1.0 + heatwave) * (1.0 - (diurnal + 1.0) / 2.0);
        let temp = w.seasonal_temp()
            + anomaly
            + 7.0 * heatwave
            + (5.5 + 1.5 * heatwave) * diurnal
            + island
            - 1.5 * mistral;
        let rh = (65.0 - 2.2 * (temp - w.seasonal_temp()) - 8.0 * mistral).clamp(15.0, 98.0);
        let rush = if w.weekend() { 0.4 } else { 1.0 }
            * (gaussian_bump(w.hour, 8.3, 1.3) + 0.9 * gaussian_bump(w.hour, 18.0, 1.6));
        Some(match d.kind {
            Kind::Air => {
                let no2 = (12.0 + 38.0 * rush * place.traffic + 10.0 * episode)
                    * d.bias
                    * (1.0 - 0.3 * mistral.min(1.0))
                    + 3.0 * wander(1, 900.0)
                    + 0.4 * gauss(key(1));
                let sun = (w.sun_elevation_deg / 60.0).clamp(0.0, 1.0);
                let season = 0.6 + 0.4 * ((w.day_of_year - 80.0) / 365.0 * 2.0 * PI).sin().max(0.0);
                let o3 = (35.0 + 75.0 * sun * season * gaussian_bump(w.hour, 15.5, 3.5)
                    - 0.25 * no2
                    + 10.0 * episode)
                    * d.bias
                    + 3.0 * wander(2, 1200.0)
                    + 0.4 * gauss(key(2));
                let heating =
                    if w.seasonal_temp() < 14.0 { gaussian_bump(w.hour, 20.5, 2.0) } else { 0.0 };
                let mut pm10 = (14.0
                    + 25.0 * episode
                    + 10.0 * rush * place.traffic
                    + 12.0 * heating
                    + 50.0 * self.episodes.pollution(t))
                    * d.bias
                    + 3.0 * wander(3, 600.0)
                    + 0.4 * gauss(key(3));
                let mut pm25 = 0.62 * pm10 + 0.8 * wander(4, 600.0) + 0.2 * gauss(key(4));
                if let Some(Fault::Drift(from)) = d.fault {
                    pm10 *= drift_gain(from, t);
                    pm25 *= drift_gain(from, t);
                }
                if let Some(Fault::Stuck(from)) = d.fault
                    && t >= from
                {
                    pm10 = 23.4;
                }
                vec![
                    f("pm2_5", round(pm25.max(0.5), 0.1)),
                    f("pm10", round(pm10.max(1.0), 0.1)),
                    f("no2", round(no2.max(1.0), 0.1)),
                    f("o3", round(o3.max(2.0), 0.1)),
                    f(
                        "temperature",
                        round(temp + 0.3 * wander(5, 1800.0) + 0.05 * gauss(key(5)), 0.1),
                    ),
                    f(
                        "relative_humidity",
                        round(rh + wander(6, 1800.0) + 0.2 * gauss(key(6)), 0.1),
                    ),
                ]
            }
            Kind::Noise => {
                let nightlife = if matches!(w.weekday, Weekday::Fri | Weekday::Sat)
                    && (w.hour >= 21.0 || w.hour < 2.0)
                {
                    6.0 * place.footfall
                } else {
                    0.0
                };
                let activity = if (6.0..22.0).contains(&w.hour) { 1.0 } else { 0.0 };
                let laeq = 47.0
                    + 12.0 * activity
                    + 7.0 * rush * place.traffic
                    + nightlife
                    + self.episodes.party(t, place)
                    + 1.5 * wander(1, 300.0)
                    + 0.5 * gauss(key(1))
                    + 2.0 * (d.bias - 1.0) * 5.0
                    + if matches!(d.fault, Some(Fault::Shift(from)) if t >= from) {
                        6.0
                    } else {
                        0.0
                    };
                let lamax = laeq + 10.0 + 3.0 * wander(2, 300.0) + unit(key(2));
                vec![f("laeq", round(laeq, 0.1)), f("lamax", round(lamax, 0.1))]
            }
            Kind::Weather => {
                let pressure =
                    1015.0 + 8.0 * smooth(seed ^ 14, w.t_s, 4.0 * 86_400.0) + 0.3 * gauss(key(1));
                let wind =
                    (1.5 + 3.0 * diurnal.max(0.0) + 9.0 * mistral + 0.8 * gauss(key(2))).max(0.0);
                let clouds = (smooth(seed ^ 15, w.t_s, 86_400.0) + 1.0) / 2.0;
                let lux = (w.sun_elevation_deg.to_radians().sin().max(0.0)
                    * 110_000.0
                    * (1.0 - 0.7 * clouds))
                    .max(0.0);
                vec![
                    f("temperature", round(temp + 0.15 * gauss(key(3)), 0.01)),
                    f("relative_humidity", round(rh + 0.5 * gauss(key(4)), 0.1)),
                    f("pressure", round(pressure, 0.1)),
                    f("wind_speed", round(wind, 0.1)),
                    f("illuminance", round(lux, 1.0)),
                ]
            }
            Kind::Pedestrian => {
                let date = date_of_day(w.day);
                let holiday = agora_indicators::calendar::holiday(date).is_some();
                let school = self.school.on(date).is_some();
                let base = 2.0
                    + 90.0 * gaussian_bump(w.hour, 12.0, 2.2)
                    + 110.0 * gaussian_bump(w.hour, 17.8, 2.0)
                    + 25.0 * gaussian_bump(w.hour, 21.0, 1.5);
                let torse = place.short == "torse";
                let day = match w.weekday {
                    _ if holiday => {
                        if torse {
                            1.6
                        } else {
                            0.7
                        }
                    }
                    Weekday::Sat => 1.5,
                    Weekday::Sun => {
                        if torse {
                            1.6
                        } else {
                            0.7
                        }
                    }
                    _ => 1.0,
                };
                let market = if w.market_morning() && !torse && !holiday { 1.7 } else { 1.0 };
                // School holidays: families in town on weekdays, walkers in the valley.
                let school = match (school, w.weekday) {
                    (true, Weekday::Sat | Weekday::Sun) => 1.0,
                    (true, _) => {
                        if torse {
                            1.3
                        } else {
                            1.1
                        }
                    }
                    _ => 1.0,
                };
                // The Christmas market, afternoons and evenings.
                let christmas = if place.short == "rotonde"
                    && (date.month() == 12 || (date.month() == 11 && date.day() >= 20))
                    && (14.0..21.0).contains(&w.hour)
                {
                    1.5
                } else {
                    1.0
                };
                let pedestrianised = if place.short == "hdv" && date >= self.episodes.pedestrianised
                {
                    PEDESTRIAN_EFFECT
                } else {
                    1.0
                };
                // Each place's own good and bad days.
                let own =
                    1.0 + 0.06 * smooth(seed ^ mix(0xF00D ^ d.place as u64), w.t_s, 2.0 * 86_400.0);
                let mean = base
                    * day
                    * market
                    * school
                    * christmas
                    * pedestrianised
                    * own
                    * place.footfall
                    * d.bias
                    * (1.0 - 0.5 * mistral.min(1.0));
                let blocked = matches!(d.fault, Some(Fault::Blocked(from)) if t >= from);
                let mean = if blocked { 0.0 } else { mean };
                let people_in = (mean * (1.0 + 0.15 * gauss(key(1)))).max(0.0).round();
                let people_out = (mean * (1.0 + 0.15 * gauss(key(2)))).max(0.0).round();
                vec![
                    Field {
                        name: Cow::Borrowed("people_in"),
                        value: Value::I64(people_in as i64),
                        unit: None,
                    },
                    Field {
                        name: Cow::Borrowed("people_out"),
                        value: Value::I64(people_out as i64),
                        unit: None,
                    },
                ]
            }
            Kind::Streetlight => {
                let dark = w.sun_elevation_deg < -4.0;
                let failed = match d.fault {
                    Some(Fault::LampFails(from)) => t >= from,
                    Some(Fault::LampRepaired(from, to)) => t >= from && t < to,
                    _ => false,
                };
                let dark = dark || matches!(d.fault, Some(Fault::LitByDay(from)) if t >= from);
                let dimmed = dark && (w.hour >= 23.0 || w.hour < 5.0);
                let nominal = 40.0 + 30.0 * (d.bias - 0.85) / 0.3;
                let (on, power, dim) = if !dark {
                    (false, 0.4, 0.0)
                } else if failed {
                    (false, 0.4, 100.0)
                } else if dimmed {
                    (true, nominal * 0.5 + 0.8 * gauss(key(1)), 50.0)
                } else {
                    (true, nominal + 0.8 * gauss(key(1)), 100.0)
                };
                let mut v = vec![
                    f("power_w", round(power.max(0.0), 0.1)),
                    Field { name: Cow::Borrowed("lamp_on"), value: Value::Bool(on), unit: None },
                    f("dimming_level", dim),
                ];
                // A status report every six hours.
                if t.rem_euclid(6 * 3600 * S) < 900 * S {
                    let status = if failed { "defectiveLamp" } else { "ok" };
                    v.push(Field {
                        name: Cow::Borrowed("lamp_status"),
                        value: Value::Str(status.into()),
                        unit: None,
                    });
                }
                v
            }
            Kind::Bin => {
                // Collected at 06:00 local: daily but Sunday in the centre, Monday and Thursday elsewhere.
                let central = place.short != "torse";
                let collected = |day: i64| {
                    let wd = when(day * 86_400 * S + 6 * 3600 * S).weekday;
                    if central {
                        wd != Weekday::Sun
                    } else {
                        matches!(wd, Weekday::Mon | Weekday::Thu)
                    }
                };
                let hour_now = w.day as f64 * 24.0 + w.hour;
                let mut day = w.day - if w.hour < 6.0 { 1 } else { 0 };
                let stop = if let Some(Fault::Overflow(from)) = d.fault {
                    Some(when(from).day)
                } else {
                    None
                };
                while !collected(day) || stop.is_some_and(|s| day >= s) {
                    day -= 1;
                    if w.day - day > 14 {
                        break;
                    }
                }
                let hours = hour_now - (day as f64 * 24.0 + 6.0);
                // One central bin in three is on a quiet corner: emptied daily at a third full.
                let quiet = central && d.idx.is_multiple_of(3);
                let rate = if central { 3.2 } else { 1.1 }
                    * d.bias
                    * place.footfall.max(0.6)
                    * if quiet { 0.4 } else { 1.0 };
                let fill = (2.0 + rate * hours + 2.0 * gauss(key(1))).clamp(0.0, 100.0);
                let battery = (100.0
                    - 12.0 * ((w.t_s / 86_400.0).rem_euclid(365.0) / 365.0)
                    - 3.0 * (d.bias - 0.85))
                    .clamp(5.0, 100.0);
                vec![f("fill_level", round(fill, 1.0)), f("battery", round(battery, 1.0))]
            }
            Kind::Soil => {
                // Irrigated every other night at 05:00; dries faster in the warm afternoon.
                let day_irr = w.day - (w.day - (d.idx as i64 % 2)).rem_euclid(2);
                let since = (w.day as f64 * 24.0 + w.hour) - (day_irr as f64 * 24.0 + 5.0);
                let mut since = if since < 0.0 { since + 48.0 } else { since };
                if let Some(Fault::NoWater(from)) = d.fault
                    && t >= from
                {
                    // The last watering before the valve failed.
                    let f = when(from);
                    let last = f.day - (f.day - (d.idx as i64 % 2)).rem_euclid(2);
                    let last = if (f.day as f64 * 24.0 + f.hour) < last as f64 * 24.0 + 5.0 {
                        last - 2
                    } else {
                        last
                    };
                    since = (w.day as f64 * 24.0 + w.hour) - (last as f64 * 24.0 + 5.0);
                }
                let dry = 0.35 * (w.seasonal_temp() / 15.0) * d.bias;
                let moisture = (38.0 - dry * since + 0.4 * gauss(key(1))).clamp(8.0, 45.0);
                let soil_t = w.seasonal_temp() + anomaly * 0.5 + 2.0 * diurnal * 0.5;
                vec![
                    f("soil_moisture", round(moisture, 0.1)),
                    f("soil_temperature", round(soil_t, 0.1)),
                ]
            }
        })
    }
}

/// The demo's people: one of each role in Aix (two business departments, to show that each
/// acts on its own domain), and an administrator and an elected official of Le Tholonet:
/// (email, name, role, commune, domain).
pub const PEOPLE: [(&str, &str, &str, &str, Option<&str>); 8] = [
    (
        "metropole.admin@ampmetropole.example",
        "Administratrice de la Métropole",
        "metropole_admin",
        "metropole",
        None,
    ),
    ("admin@aix.example", "Administrateur d'Aix", "commune_admin", "13001", None),
    ("operateur@aix.example", "Opératrice de supervision d'Aix", "operator", "13001", None),
    (
        "environnement@aix.example",
        "Service environnement d'Aix",
        "department",
        "13001",
        Some("environment"),
    ),
    ("eclairage@aix.example", "Service éclairage d'Aix", "department", "13001", Some("lighting")),
    ("elu@aix.example", "Élu d'Aix", "viewer", "13001", None),
    ("admin@letholonet.example", "Administratrice du Tholonet", "commune_admin", "13109", None),
    ("elue@letholonet.example", "Élue du Tholonet", "viewer", "13109", None),
];

/// Make the demo's people (or give them new passwords when they exist): their emails, roles
/// and passwords, to print at start as the admin token is.
/// Survey results of the four places (satisfaction out of 10), ten months and two months ago.
pub async fn seed_surveys(state: &AppState) -> anyhow::Result<()> {
    let today = state.clock.now().to_datetime().date_naive();
    let ago = |months: u32| {
        today
            .checked_sub_months(chrono::Months::new(months))
            .unwrap_or(today)
            .format("%Y-%m-%d")
            .to_string()
    };
    let scores = [
        ("hotel-de-ville", 7.1, 7.4),
        ("vallee-de-la-torse", 8.0, 8.2),
        ("la-rotonde", 5.2, 5.9),
        ("pole-culturel", 6.4, 6.1),
    ];
    let mut results = Vec::new();
    for (place, before, after) in scores {
        for (date, score, n) in [(ago(10), before, 180), (ago(2), after, 210)] {
            results.push(agora_store::decisions::SurveyResult {
                place: place.into(),
                date,
                question: "survey_satisfaction".into(),
                score,
                respondents: Some(n),
            });
        }
    }
    state.proximity.store().put_surveys(&results, "demo", state.clock.now()).await?;
    Ok(())
}

/// Citizens' reports around the four places, a few in each state, once (a demo started again on
/// its data keeps its tickets).
pub async fn seed_reports(state: &AppState) -> anyhow::Result<()> {
    use agora_store::reports::{Change, Filter, Status};
    let store = &state.reports.store;
    if !store.list(&Filter { limit: 1, ..Filter::default() }).await?.is_empty() {
        return Ok(());
    }
    let at = |p: usize, dlat: f64, dlon: f64| (PLACES[p].lat + dlat, PLACES[p].lon + dlon);
    // Place, offset from its centre, category, text, then each step: status, internal note,
    // public answer.
    type Steps = &'static [(Status, &'static str, Option<&'static str>)];
    let list: [(usize, f64, f64, &str, &str, Steps); 8] = [
        (
            0,
            0.0004,
            0.0003,
            "street_light",
            "Le lampadaire au coin de la rue ne s'allume plus depuis deux soirs.",
            &[],
        ),
        (
            0,
            -0.0003,
            0.0002,
            "bin",
            "La corbeille déborde, des sacs sont posés à côté.",
            &[(Status::Acknowledged, "Signalé à l'équipe de collecte.", None)],
        ),
        (
            2,
            0.0002,
            -0.0004,
            "noise",
            "Musique très forte tard le soir, plusieurs nuits de suite.",
            &[
                (Status::Acknowledged, "", None),
                (
                    Status::InProgress,
                    "Médiation prévue avec l'établissement.",
                    Some("Une médiation est prévue avec l'établissement concerné."),
                ),
            ],
        ),
        (
            3,
            0.0003,
            0.0003,
            "furniture",
            "Un banc a une latte cassée.",
            &[
                (Status::Acknowledged, "", None),
                (Status::Resolved, "Latte remplacée.", Some("Le banc a été réparé.")),
            ],
        ),
        (
            1,
            0.0002,
            0.0001,
            "bin",
            "Poubelle renversée près du parking.",
            &[(Status::Resolved, "Remise en place.", Some("Poubelle remise en place et fixée."))],
        ),
        (
            2,
            -0.0002,
            0.0002,
            "other",
            "Il faudrait plus d'arbres sur cette place.",
            &[(
                Status::Rejected,
                "Suggestion transmise au service des espaces verts : ce n'est pas un dysfonctionnement.",
                Some("Merci : suggestion transmise au service des espaces verts."),
            )],
        ),
        (
            3,
            -0.0004,
            -0.0002,
            "street_light",
            "Lampadaire qui clignote.",
            &[(Status::Acknowledged, "", None)],
        ),
        (1, -0.0003, 0.0004, "furniture", "Panneau d'information tagué.", &[]),
    ];
    let hour = 3_600_000_000_000i64;
    let now = state.clock.now().as_nanos();
    for (i, (place, dlat, dlon, category, text, steps)) in list.into_iter().enumerate() {
        let (lat, lon) = at(place, dlat, dlon);
        // Filed over the last days; each step a few hours after the one before.
        let filed = now - (60 - 7 * i as i64) * hour;
        let r = agora_api::reports::record(
            state,
            category,
            lat,
            lon,
            text,
            "web",
            agora_model::Timestamp::from_nanos(filed),
        )
        .await
        .map_err(|e| anyhow::anyhow!("demo report: {e}"))?;
        let mut from = r.status;
        for (k, (status, note, public)) in steps.iter().enumerate() {
            store
                .change(
                    r.id,
                    &Change {
                        from,
                        status: *status,
                        event: status.as_str().into(),
                        actor: "Équipe de démonstration".into(),
                        note: (!note.is_empty()).then(|| (*note).to_owned()),
                        public_note: public.map(|p| Some(p.to_owned())),
                        description_public: None,
                        at: agora_model::Timestamp::from_nanos(filed + (3 + 5 * k as i64) * hour),
                    },
                )
                .await?;
            from = *status;
        }
    }
    Ok(())
}

/// Points of interest around the four places, in French and English, and two tours through
/// them, once (a demo started again keeps what operators changed).
pub async fn seed_visitors(state: &AppState) -> anyhow::Result<()> {
    use agora_store::visitors::{StoredPoi, StoredTour};
    let store = &state.visitors;
    if !store.pois().await?.is_empty() {
        return Ok(());
    }
    let now = state.clock.now();
    // Id, commune, kind, position, names (fr, en), descriptions (fr, en), hours, access (fr).
    type DemoPoi = (
        &'static str,
        &'static str,
        &'static str,
        f64,
        f64,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
    );
    #[rustfmt::skip]
    let points: [DemoPoi; 11] = [
        ("fontaine-hotel-de-ville", "13001", "fountain", 43.52995, 5.44760, "Fontaine de la place de l'Hôtel de Ville", "Town Hall square fountain", "Fontaine du XVIIIe siècle au centre de la place ; eau non potable.", "An 18th-century fountain in the middle of the square; not drinking water.", None, "Place de plain-pied."),
        ("tour-de-l-horloge", "13001", "heritage", 43.52975, 5.44725, "Tour de l'Horloge", "Clock tower", "Beffroi du XVIe siècle et son horloge astronomique : un personnage par saison.", "A 16th-century belfry with an astronomical clock: one figure per season.", None, "Vue depuis la place, sans marche."),
        ("place-des-cardeurs", "13001", "shade", 43.53010, 5.44690, "Place ombragée des Cardeurs", "Shaded Cardeurs square", "Platanes et terrasses : l'un des endroits les plus frais du centre l'été.", "Plane trees and terraces: one of the coolest spots of the centre in summer.", None, "Bancs, accès de plain-pied."),
        ("fontaine-rotonde", "13001", "fountain", 43.52630, 5.44460, "Fontaine de la Rotonde", "Rotonde fountain", "Grande fontaine de 1860, trois statues : la Justice, l'Agriculture et les Beaux-Arts.", "A great fountain of 1860 with three statues: Justice, Agriculture and Fine Arts.", None, "Trottoirs abaissés aux passages piétons."),
        ("eau-potable-cours", "13001", "drinking_water", 43.52680, 5.44600, "Point d'eau potable du cours", "Drinking fountain on the avenue", "Eau potable, fraîche, toute l'année.", "Cool drinking water, all year round.", None, "Robinet à hauteur de fauteuil."),
        ("musee-beaux-arts", "13001", "museum", 43.52560, 5.44790, "Musée des Beaux-Arts", "Fine Arts museum", "Peintures du XIVe au XXe siècle, dont une salle de maîtres provençaux.", "Paintings from the 14th to the 20th century, with a room of Provençal masters.", Some("mar.–dim. 10 h–18 h"), "Ascenseur, fauteuils prêtés à l'accueil."),
        ("pole-bibliotheque", "13001", "museum", 43.52390, 5.44070, "Bibliothèque et galerie du Pôle", "Library and gallery of the Pôle", "Expositions temporaires et fonds patrimonial.", "Temporary exhibitions and heritage collections.", Some("mar.–sam. 10 h–19 h"), "Entièrement accessible."),
        ("belvedere-pole", "13001", "viewpoint", 43.52330, 5.43990, "Belvédère du Pôle", "Pôle viewpoint", "Vue sur la montagne Sainte-Victoire par temps clair.", "A view of the Sainte-Victoire mountain on clear days.", None, "Rampe d'accès."),
        ("toilettes-pole", "13001", "toilets", 43.52400, 5.44020, "Toilettes publiques du Pôle", "Public toilets at the Pôle", "Gratuites.", "Free of charge.", Some("tous les jours 8 h–20 h"), "Cabine accessible en fauteuil."),
        ("parc-torse", "13109", "shade", 43.52330, 5.46150, "Parc de la Torse", "Torse park", "Le long du ruisseau, sous les arbres : le plus frais des quatre lieux l'été.", "Along the stream, under the trees: the coolest of the four places in summer.", None, "Allées stabilisées."),
        ("fontaine-torse", "13109", "fountain", 43.52360, 5.46100, "Fontaine du parc de la Torse", "Torse park fountain", "Eau potable.", "Drinking water.", None, "Accès par l'allée principale."),
    ];
    let pois: Vec<StoredPoi> = points
        .iter()
        .map(|(id, commune, kind, lat, lon, fr, en, dfr, den, hours, access)| StoredPoi {
            id: (*id).into(),
            commune: (*commune).into(),
            kind: (*kind).into(),
            lat: *lat,
            lon: *lon,
            body: serde_json::json!({"name": {"fr": fr, "en": en}, "description": {"fr": dfr, "en": den},
                "opening_hours": hours, "accessibility": {"fr": access}}),
            updated_by: "demo".into(),
            updated_at: now,
        })
        .collect();
    store.put_pois(&pois).await?;
    let tours = [
        (
            "coeur-de-ville",
            "Cœur de ville",
            "Heart of the town",
            "De l'Hôtel de Ville à la Rotonde par la tour de l'Horloge, puis le musée.",
            "From the Town Hall to the Rotonde by the clock tower, then the museum.",
            vec![
                "fontaine-hotel-de-ville",
                "tour-de-l-horloge",
                "fontaine-rotonde",
                "musee-beaux-arts",
            ],
        ),
        (
            "fontaines-et-ombre",
            "Fontaines et ombre",
            "Fountains and shade",
            "Un parcours d'été, de fontaine en place ombragée, jusqu'au belvédère.",
            "A summer walk from fountain to shaded square, up to the viewpoint.",
            vec![
                "fontaine-hotel-de-ville",
                "place-des-cardeurs",
                "eau-potable-cours",
                "fontaine-rotonde",
                "pole-bibliotheque",
                "belvedere-pole",
            ],
        ),
    ];
    for (id, fr, en, dfr, den, stops) in tours {
        store
            .put_tour(&StoredTour {
                id: id.into(),
                commune: "13001".into(),
                body: serde_json::json!({"id": id, "title": {"fr": fr, "en": en},
                    "description": {"fr": dfr, "en": den}, "stops": stops, "minutes_per_stop": 10.0}),
                updated_by: "demo".into(),
                updated_at: now,
            })
            .await?;
    }
    Ok(())
}

pub async fn seed_people(state: &AppState) -> anyhow::Result<Vec<(String, String, String)>> {
    use agora_model::permissions::{Domain, Grant, Role, parse_tenant};
    let mut out = Vec::new();
    for (email, name, role, commune, domain) in PEOPLE {
        let mut b = [0u8; 9];
        getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
        let password = format!("demo-{}", hex::encode(b));
        let grant = Grant::new(
            Role::parse_named(role).map_err(anyhow::Error::msg)?,
            parse_tenant(commune).map_err(anyhow::Error::msg)?,
            domain.map(Domain::parse_named).transpose().map_err(anyhow::Error::msg)?,
        )
        .map_err(anyhow::Error::msg)?;
        let label =
            format!("{role} of {commune}{}", domain.map(|d| format!(" ({d})")).unwrap_or_default());
        match state.catalog.person_by_email(email) {
            Some(p) => state.catalog.set_password(&p.id, &password).await?,
            None => {
                let p = agora_store::catalog::NewPerson {
                    email: email.into(),
                    name: name.into(),
                    grant,
                    password: Some(password.clone()),
                    subject: None,
                };
                state.catalog.create_person(p).await?;
            }
        }
        out.push((email.to_owned(), label, password));
    }
    Ok(out)
}

/// Enable every built-in alert template that is not a rule yet, so that the demo city's faults
/// and episodes raise alerts as soon as it runs; returns how many were enabled.
pub async fn enable_alert_templates(state: &AppState) -> anyhow::Result<usize> {
    let Some(alerts) = &state.alerts else { return Ok(0) };
    let mut enabled = 0;
    for t in alerts.templates() {
        if alerts.rule(&t.id).is_some() {
            continue;
        }
        let rule = alerts.from_template(&t.id, serde_json::json!({}))?;
        alerts.put_rule(rule).await?;
        enabled += 1;
    }
    Ok(enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_769_600 * S; // 2025-11-22T00:00:00Z

    fn demo() -> Demo {
        Demo::at(DemoOptions { days: 30, seed: 13001, counter_history_days: 0 }, NOW)
    }

    fn value(d: &Demo, id: &str, prop: &str, t: i64) -> Option<Value> {
        let dev = d.fleet.iter().find(|x| x.id == id).unwrap();
        d.fields(dev, t)?.into_iter().find(|f| f.name == prop).map(|f| f.value)
    }

    fn num(d: &Demo, id: &str, prop: &str, t: i64) -> f64 {
        value(d, id, prop, t).and_then(|v| v.as_f64()).unwrap()
    }

    #[test]
    fn fleet_is_about_1500_devices_on_four_places() {
        let d = demo();
        assert_eq!(d.device_count(), 1500);
        assert!(
            d.fleet
                .iter()
                .all(|x| (43.51..43.54).contains(&x.lat) && (5.43..5.47).contains(&x.lon))
        );
    }

    #[test]
    fn no2_peaks_at_rush_hour_and_lights_only_at_night() {
        let d = demo();
        // Tuesday 2025-11-18, local time = UTC+1.
        let day = NOW - 4 * 86_400 * S;
        let at = |h: i64| day + (h - 1) * 3600 * S;
        let mean = |prop: &str, h: i64| {
            (0..20).map(|m| num(&d, "aq-rotonde-01", prop, at(h) + m * 60 * S)).sum::<f64>() / 20.0
        };
        assert!(mean("no2", 8) > 1.8 * mean("no2", 3), "{} vs {}", mean("no2", 8), mean("no2", 3));
        assert!(mean("o3", 15) > mean("o3", 7));
        assert_eq!(value(&d, "lamp-hdv-001", "lamp_on", at(2)), Some(Value::Bool(true)));
        assert_eq!(value(&d, "lamp-hdv-001", "lamp_on", at(13)), Some(Value::Bool(false)));
        assert!(
            num(&d, "noise-hdv-01", "laeq", at(11)) > num(&d, "noise-hdv-01", "laeq", at(3)) + 5.0
        );
    }

    #[test]
    fn faults_show() {
        let d = demo();
        let late = NOW - 3600 * S;
        assert!(value(&d, "noise-torse-05", "laeq", late).is_none(), "silent device");
        assert!(value(&d, "noise-torse-04", "laeq", late).is_some());
        assert_eq!(num(&d, "aq-rotonde-03", "pm10", late), 23.4);
        assert_eq!(num(&d, "aq-rotonde-03", "pm10", late - 600 * S), 23.4);
        assert_eq!(num(&d, "bin-rotonde-12", "fill_level", late), 100.0);
        let night = NOW - 2 * 3600 * S;
        assert_eq!(value(&d, "lamp-hdv-017", "lamp_on", night), Some(Value::Bool(false)));
        assert_eq!(value(&d, "lamp-hdv-016", "lamp_on", night), Some(Value::Bool(true)));
        // A blocked pedestrian counter counts nobody, at noon as at night; its neighbour counts.
        // Friday 21 November 2025, 12:00 in Paris: within the 30 hours it has been blocked.
        let noon = NOW - 13 * 3600 * S;
        assert_eq!(num(&d, "ped-pole-04", "people_in", noon), 0.0);
        assert!(num(&d, "ped-pole-03", "people_in", noon) > 5.0);
        // The drifting particulate sensor reads 30 % high after 12 days; the shifted sound level
        // meter 6 dB more than before its change.
        assert!((drift_gain(NOW - 12 * 86_400 * S, NOW) - 1.3).abs() < 1e-9);
        assert_eq!(drift_gain(NOW, NOW - S), 1.0);
        let dev = d.fleet.iter().find(|x| x.id == "noise-pole-03").unwrap();
        assert!(matches!(dev.fault, Some(Fault::Shift(from)) if from == NOW - 9 * 86_400 * S));
    }

    /// Hourly means of a device's property over local days from `start` (ns, local midnight).
    fn daily_extremes(d: &Demo, id: &str, start: i64, days: i64) -> Vec<Option<(f64, f64)>> {
        let dev = d.fleet.iter().find(|x| x.id == id).unwrap();
        let period = dev.kind.period_s() * S;
        (0..days)
            .map(|day| {
                let hourly: Vec<f64> = (0..24)
                    .map(|h| {
                        let h0 = start + (day * 24 + h) * 3600 * S;
                        let n = 3600 * S / period;
                        (0..n).map(|k| num(d, id, "temperature", h0 + k * period)).sum::<f64>()
                            / n as f64
                    })
                    .collect();
                let min = hourly.iter().copied().fold(f64::MAX, f64::min);
                let max = hourly.iter().copied().fold(f64::MIN, f64::max);
                Some((min, max))
            })
            .collect()
    }

    #[test]
    fn episodes_show_a_pollution_peak_a_loud_night_and_a_summer_heatwave_with_an_island() {
        use agora_indicators::heat::{CaniculeThresholds, heat_days};
        let d = demo();
        let e = d.episodes;
        // PM10: the episode's day averages above the 50 µg/m³ information threshold (ATMO
        // "mauvais"), a week earlier well below.
        let day_mean = |centre: i64| {
            (0..288)
                .map(|k| num(&d, "aq-hdv-01", "pm10", centre - 43_200 * S + k * 300 * S))
                .sum::<f64>()
                / 288.0
        };
        assert!(day_mean(e.pollution) > 55.0, "{}", day_mean(e.pollution));
        assert!(day_mean(e.pollution - 7 * 86_400 * S) < 40.0);
        // The party: La Rotonde 14 dB louder at midnight than the same hour a week before; the
        // other places are not.
        let at = |id: &str, t: i64| num(&d, id, "laeq", t);
        let midnight = e.loud_night + 2 * 3600 * S;
        let week = 7 * 86_400 * S;
        assert!(at("noise-rotonde-01", midnight) > at("noise-rotonde-01", midnight - week) + 10.0);
        assert!(at("noise-hdv-01", midnight) < at("noise-hdv-01", midnight - week) + 6.0);
        // Last summer: 16 July local, the heatwave from the 18th. Hôtel de Ville has canicule
        // days by the Bouches-du-Rhône thresholds (3-day means of minima ≥ 24 and maxima ≥ 35 °C);
        // the Torse valley's nights stay cooler.
        let date = chrono::DateTime::from_timestamp((e.summer + 43_200 * S) / S, 0).unwrap();
        assert_eq!(date.format("%Y-%m-%d").to_string(), "2025-07-16");
        let th = CaniculeThresholds::BOUCHES_DU_RHONE;
        let hdv = daily_extremes(&d, "wx-hdv-01", e.summer, SUMMER_DAYS);
        let torse = daily_extremes(&d, "wx-torse-01", e.summer, SUMMER_DAYS);
        let canicule = |days: &[Option<(f64, f64)>]| {
            heat_days(days, &th).iter().filter(|x| x.canicule == Some(true)).count()
        };
        assert!(canicule(&hdv) >= 2, "{hdv:?}");
        assert_eq!(canicule(&torse), 0, "{torse:?}");
        // Afternoons are warm, nights cool, and the island shows at night.
        let noon = e.summer + 5 * 86_400 * S + 15 * 3600 * S; // 15:00 in Paris
        let night = noon + 12 * 3600 * S;
        assert!(
            num(&d, "wx-hdv-01", "temperature", noon)
                > num(&d, "wx-hdv-01", "temperature", night) + 8.0
        );
        let gap = |t: i64| {
            num(&d, "wx-hdv-01", "temperature", t) - num(&d, "wx-torse-01", "temperature", t)
        };
        assert!(gap(night) > gap(noon) + 3.0, "{} vs {}", gap(night), gap(noon));
        let night_gap: f64 =
            (4..7).map(|i| hdv[i].unwrap().0 - torse[i].unwrap().0).sum::<f64>() / 3.0;
        assert!(night_gap > 3.0, "heat island at night: {night_gap}");
        // Before and after, an ordinary summer.
        assert_eq!(e.heatwave(e.summer + 86_400 * S), 0.0);
        assert_eq!(e.heatwave(e.summer + 9 * 86_400 * S), 0.0);
    }

    #[test]
    fn pedestrians_busier_on_market_mornings() {
        let d = demo();
        // Tuesday (market) vs Wednesday at 10:00 local.
        let tue = NOW - 4 * 86_400 * S + 9 * 3600 * S;
        let wed = tue + 86_400 * S;
        let sum = |t0: i64| {
            (0..10).map(|i| num(&d, &format!("ped-hdv-{:02}", i + 1), "people_in", t0)).sum::<f64>()
        };
        assert!(sum(tue) > 1.3 * sum(wed), "{} vs {}", sum(tue), sum(wed));
    }
}
