//! The well-being index of places, neighbourhoods and communes, month by month
//! (`agora_indicators::wellbeing` computes it; this gathers its indicators):
//!
//! | indicator | dimension | from |
//! |---|---|---|
//! | `air_atmo` | environment | mean of the days' ATMO index (1–6) at the place |
//! | `noise_lden`, `noise_lnight` | environment | energetic means of the days' Lden and Ln, dB(A) |
//! | `heat_island_night` | environment | night heat-island intensity against the commune's coolest place, °C |
//! | `footfall_index` | vitality | the month's mean daily footfall against the 12 months before (100 = as usual) |
//! | `proximity_15min` | services | share of the neighbourhood's people within 15 minutes of all four themes (from 12 months before the last import on) |
//! | `bins_overflow_hours` | cleanliness | hours a day a bin of the place is full (≥ 100 %) |
//! | `lighting_fault_share` | cleanliness | share of lamp-days with a fault |
//! | `survey_*` | perceived | the last survey result of the 12 months before the month's end |
//!
//! A measured indicator needs at least 10 days of the month (else it is missing, and said so);
//! the footfall index needs three earlier months. Neighbourhoods and communes take the mean of
//! their places' values. The definition — indicators, ranges, directions, weights — is versioned
//! in the catalog: every figure says the version it was computed with, and any earlier version
//! can be asked for again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use agora_indicators::wellbeing::{self as wb, Better};
use agora_model::{SiteId, Timestamp};
use agora_store::catalog::{DeviceFilter, Site};
use agora_store::{Catalog, SeriesStore};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::air::Area;
use crate::{Error, Result};

/// Days of a month an indicator needs.
const MIN_DAYS: usize = 10;

/// One indicator of the definition, as kept and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IndicatorDef {
    /// Its id (`noise_lden`, `survey_satisfaction`).
    pub id: String,
    /// Its dimension.
    pub dimension: String,
    /// `higher` or `lower`: which way is better.
    pub better: String,
    /// The reference range's low end (normalised to 0 or 1).
    pub min: f64,
    /// Its high end.
    pub max: f64,
    /// What it is, for people.
    #[serde(default)]
    pub label: String,
    /// Its unit.
    #[serde(default)]
    pub unit: String,
}

/// The index's definition, as kept (each change a new version) and published with every figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = WellbeingDefinition))]
#[serde(deny_unknown_fields)]
pub struct DefinitionBody {
    /// The indicators.
    pub indicators: Vec<IndicatorDef>,
    /// Each dimension's weight; they sum to 1.
    pub weights: BTreeMap<String, f64>,
    /// Below this share of the weights present, no index (the dimensions are still given).
    pub min_coverage: f64,
}

impl Default for DefinitionBody {
    /// The definition shipped (version 0, used until an operator saves one).
    fn default() -> Self {
        let i = |id: &str,
                 dimension: &str,
                 better: &str,
                 min: f64,
                 max: f64,
                 label: &str,
                 unit: &str| IndicatorDef {
            id: id.into(),
            dimension: dimension.into(),
            better: better.into(),
            min,
            max,
            label: label.into(),
            unit: unit.into(),
        };
        DefinitionBody {
            indicators: vec![
                i("air_atmo", "environment", "lower", 1.0, 6.0, "Indice ATMO moyen", "1–6"),
                i("noise_lden", "environment", "lower", 45.0, 75.0, "Bruit Lden", "dB(A)"),
                i("noise_lnight", "environment", "lower", 35.0, 65.0, "Bruit la nuit Ln", "dB(A)"),
                i(
                    "heat_island_night",
                    "environment",
                    "lower",
                    0.0,
                    4.0,
                    "Îlot de chaleur nocturne",
                    "°C",
                ),
                i(
                    "footfall_index",
                    "vitality",
                    "higher",
                    50.0,
                    150.0,
                    "Fréquentation (100 = habituelle)",
                    "indice",
                ),
                i(
                    "proximity_15min",
                    "services",
                    "higher",
                    0.0,
                    1.0,
                    "Habitants à 15 minutes des 4 thèmes",
                    "part",
                ),
                i(
                    "bins_overflow_hours",
                    "cleanliness",
                    "lower",
                    0.0,
                    6.0,
                    "Heures de bac plein par jour",
                    "h/j",
                ),
                i(
                    "lighting_fault_share",
                    "cleanliness",
                    "lower",
                    0.0,
                    0.2,
                    "Part des nuits de lampadaire en panne",
                    "part",
                ),
                i(
                    "survey_satisfaction",
                    "perceived",
                    "higher",
                    0.0,
                    10.0,
                    "Satisfaction (enquête)",
                    "0–10",
                ),
            ],
            weights: [
                ("environment", 0.25),
                ("vitality", 0.15),
                ("services", 0.2),
                ("cleanliness", 0.15),
                ("perceived", 0.25),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            min_coverage: 0.5,
        }
    }
}

impl DefinitionBody {
    /// The definition the index is computed with; refused with the reason when it does not
    /// hold (weights not summing to 1, an empty range, a direction that is neither word).
    pub fn definition(&self) -> Result<wb::Definition> {
        let mut indicators = Vec::new();
        for d in &self.indicators {
            let better = match d.better.as_str() {
                "higher" => Better::Higher,
                "lower" => Better::Lower,
                other => {
                    return Err(Error::Invalid(format!(
                        "indicator {:?}: better is \"higher\" or \"lower\", not {other:?}",
                        d.id
                    )));
                }
            };
            indicators.push(wb::Indicator {
                id: d.id.clone(),
                dimension: d.dimension.clone(),
                better,
                min: d.min,
                max: d.max,
            });
        }
        let def = wb::Definition {
            indicators,
            weights: self.weights.clone(),
            min_coverage: self.min_coverage,
        };
        def.check().map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(def)
    }
}

/// A month, `YYYY-MM`.
pub fn parse_month(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .map_err(|_| Error::Invalid(format!("month {s:?}: write it YYYY-MM")))
}

fn next_month(m: NaiveDate) -> NaiveDate {
    m.checked_add_months(chrono::Months::new(1)).unwrap_or(m)
}

fn local_start(d: NaiveDate, tz: Tz) -> i64 {
    crate::services::lighting::local_midnight(d, tz)
        .unwrap_or_else(|_| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp())
}

/// The measured indicators of every place over one month.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonthValues {
    /// Place → indicator → value (the footfall's raw mean daily count under `footfall_daily`).
    pub places: BTreeMap<String, BTreeMap<String, f64>>,
    /// When computed (Unix s).
    pub computed_at: i64,
    /// Whether the month was over when computed.
    pub closed: bool,
}

/// Where the measured indicators come from, and the months already computed.
#[derive(Debug)]
pub struct Sources {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    lighting: Arc<crate::services::lighting::Ledger>,
    max_gap_bins_s: i64,
    tz: Tz,
    /// One cell a month: requests for one month wait for its first computation; other months
    /// are computed meanwhile.
    months: parking_lot::Mutex<HashMap<NaiveDate, MonthCell>>,
}

/// A month's values once computed.
type MonthCell = Arc<tokio::sync::Mutex<Option<Arc<MonthValues>>>>;

impl Sources {
    /// On the catalog (all places), the store and the lamps' ledger.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        lighting: Arc<crate::services::lighting::Ledger>,
        max_gap_bins_s: i64,
        tz: Tz,
    ) -> Self {
        Sources { catalog, store, lighting, max_gap_bins_s, tz, months: Default::default() }
    }

    /// The measured indicators of a month (kept once the month is over; the current month is
    /// computed again after 10 minutes).
    pub async fn month(&self, month: NaiveDate, now: i64) -> Result<Arc<MonthValues>> {
        let cell = self.months.lock().entry(month).or_default().clone();
        let mut kept = cell.lock().await;
        if let Some(m) = kept.as_ref()
            && (m.closed || now - m.computed_at < 600)
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.compute(month, now).await?);
        *kept = Some(m.clone());
        Ok(m)
    }

    async fn compute(&self, month: NaiveDate, now: i64) -> Result<MonthValues> {
        let (cat, store, tz) = (self.catalog.as_ref(), self.store.as_ref(), self.tz);
        let from = local_start(month, tz);
        let end = local_start(next_month(month), tz);
        let to = end.min(now);
        let mut out =
            MonthValues { computed_at: now, closed: now >= end + 7200, ..Default::default() };
        if to <= from {
            return Ok(out);
        }
        let range = crate::time::TimeRange {
            from: Timestamp::from_nanos(from * 1_000_000_000),
            to: Timestamp::from_nanos(to * 1_000_000_000),
        };
        let last_day = NaiveDate::from_ymd_opt(month.year(), month.month(), 1)
            .and_then(|_| next_month(month).pred_opt())
            .unwrap_or(month);
        let last_day = chrono::DateTime::from_timestamp(to - 1, 0)
            .map(|t| t.with_timezone(&tz).date_naive())
            .unwrap_or(last_day)
            .min(last_day);
        let sites = cat.sites();
        let mut communes: Vec<String> =
            sites.iter().map(|s| s.commune.as_str().to_string()).collect();
        communes.sort();
        communes.dedup();
        // Heat islands: one computation per commune.
        let mut heat: HashMap<String, f64> = HashMap::new();
        for c in &communes {
            let Ok(code) = agora_model::InseeCode::parse(c) else { continue };
            match crate::heat::heat_island(
                cat,
                store,
                &Area::Commune(code),
                &crate::heat::Reference::Coolest,
                range,
                tz,
            )
            .await
            {
                Ok((_, places)) => {
                    for p in places {
                        if p.hours as usize >= MIN_DAYS * 24
                            && let Some(v) = p.night_mean
                        {
                            heat.insert(p.site, v);
                        }
                    }
                }
                Err(Error::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let lamp_days = self.lighting.days(month, last_day, now).await?;
        let lamps = crate::services::lighting::lamps(cat);
        let bins_filter = DeviceFilter {
            kind: agora_model::DeviceKind::parse(crate::services::bins::BIN_KIND).ok(),
            ..Default::default()
        };
        let bins = cat.devices(&bins_filter);
        for site in &sites {
            let mut v = BTreeMap::new();
            let area = Area::Site(site.id.clone());
            if let Some(x) = soft(air_atmo(cat, store, &area, range, tz).await)? {
                v.insert("air_atmo".to_string(), x);
            }
            if let Some((lden, ln)) = soft2(noise(cat, store, &area, range, tz).await)? {
                if let Some(x) = lden {
                    v.insert("noise_lden".to_string(), x);
                }
                if let Some(x) = ln {
                    v.insert("noise_lnight".to_string(), x);
                }
            }
            if let Some(x) = heat.get(site.id.as_str()) {
                v.insert("heat_island_night".to_string(), *x);
            }
            if let Some(x) = soft(footfall_mean(cat, store, &site.id, month, last_day, tz).await)? {
                v.insert("footfall_daily".to_string(), x);
            }
            let here: Vec<_> =
                bins.iter().filter(|d| d.site.as_ref() == Some(&site.id)).cloned().collect();
            if !here.is_empty() {
                let readings =
                    crate::services::readings(cat, store, &here, "fill_level", from, to).await?;
                // Each bin's hours full per day of readings (windows longer than the gap limit
                // are not counted: neither full nor not), over the bins read 10 days or more.
                let gap = self.max_gap_bins_s;
                let rates: Vec<f64> = readings
                    .iter()
                    .filter_map(|r| {
                        let covered: i64 =
                            r.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d <= gap).sum();
                        (covered >= MIN_DAYS as i64 * 86_400).then(|| {
                            agora_indicators::bins::seconds_at_least(r, 100.0, gap) as f64
                                / 3600.0
                                / (covered as f64 / 86_400.0)
                        })
                    })
                    .collect();
                if !rates.is_empty() {
                    v.insert(
                        "bins_overflow_hours".to_string(),
                        rates.iter().sum::<f64>() / rates.len() as f64,
                    );
                }
            }
            let mine: Vec<&agora_model::DeviceId> =
                lamps.iter().filter(|l| l.site == site.id.as_str()).map(|l| &l.id).collect();
            if !mine.is_empty() {
                let (mut observed, mut faulty) = (0usize, 0usize);
                for d in &lamp_days {
                    for id in &mine {
                        if let Some(ld) = d.lamps.get(*id)
                            && ld.burning.covered_s > 0.0
                        {
                            observed += 1;
                            faulty += usize::from(ld.fault_at.is_some());
                        }
                    }
                }
                if observed >= MIN_DAYS {
                    v.insert("lighting_fault_share".to_string(), faulty as f64 / observed as f64);
                }
            }
            out.places.insert(site.id.as_str().to_string(), v);
        }
        Ok(out)
    }
}

/// An indicator that cannot be computed for a place (no such sensor there) is missing, not an
/// error; a store failure is.
fn soft(r: Result<Option<f64>>) -> Result<Option<f64>> {
    match r {
        Ok(v) => Ok(v),
        Err(Error::Invalid(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn air_atmo(
    cat: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: crate::time::TimeRange,
    tz: Tz,
) -> Result<Option<f64>> {
    let days = crate::air::atmo_daily(cat, store, area, range, tz).await?;
    let levels: Vec<f64> =
        days.iter().filter_map(|d| d.index.class.map(|c| f64::from(c.level()))).collect();
    Ok((levels.len() >= MIN_DAYS).then(|| levels.iter().sum::<f64>() / levels.len() as f64))
}

/// The month's Lden and Ln: energetic means of the days' levels, each over at least
/// `MIN_DAYS` days.
async fn noise(
    cat: &dyn Catalog,
    store: &dyn SeriesStore,
    area: &Area,
    range: crate::time::TimeRange,
    tz: Tz,
) -> Result<(Option<f64>, Option<f64>)> {
    let opts = crate::noise::NoiseOptions { tz, ..Default::default() };
    let days = crate::noise::noise_days(cat, store, area, range, &opts).await?;
    let energetic = |l: Vec<f64>| {
        (l.len() >= MIN_DAYS).then(|| {
            10.0 * (l.iter().map(|x| 10f64.powf(x / 10.0)).sum::<f64>() / l.len() as f64).log10()
        })
    };
    Ok((
        energetic(days.iter().filter_map(|d| d.levels.lden).collect()),
        energetic(days.iter().filter_map(|d| d.levels.ln).collect()),
    ))
}

/// As [`soft`], for the pair of noise levels.
fn soft2(r: Result<(Option<f64>, Option<f64>)>) -> Result<Option<(Option<f64>, Option<f64>)>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Invalid(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn footfall_mean(
    cat: &dyn Catalog,
    store: &dyn SeriesStore,
    site: &SiteId,
    from: NaiveDate,
    to: NaiveDate,
    tz: Tz,
) -> Result<Option<f64>> {
    let f = crate::footfall::daily(
        cat,
        store,
        &Area::Site(site.clone()),
        crate::footfall::Direction::Total,
        from,
        to,
        tz,
    )
    .await?;
    let counts: Vec<f64> = f.daily.values().flatten().copied().collect();
    Ok((counts.len() >= MIN_DAYS).then(|| counts.iter().sum::<f64>() / counts.len() as f64))
}

/// A place, neighbourhood or commune and the values of its indicators.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unit {
    /// Its id (place id, neighbourhood code, INSEE code).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its commune's INSEE code.
    pub commune: String,
    /// The places it is made of.
    pub places: Vec<String>,
    /// Its indicators' values (raw, in their units).
    pub values: BTreeMap<String, f64>,
}

/// The last survey result of each place and question in the 12 months up to `end` (excluded).
pub fn surveys_at(
    surveys: &[agora_store::decisions::SurveyResult],
    end: NaiveDate,
) -> BTreeMap<String, BTreeMap<String, (f64, String)>> {
    let start = end.checked_sub_months(chrono::Months::new(12)).unwrap_or(end);
    let mut out: BTreeMap<String, BTreeMap<String, (f64, String)>> = BTreeMap::new();
    for s in surveys {
        let Ok(d) = NaiveDate::parse_from_str(&s.date, "%Y-%m-%d") else { continue };
        if d < start || d >= end {
            continue;
        }
        let e = out.entry(s.place.clone()).or_default();
        match e.get(&s.question) {
            Some((_, date)) if *date >= s.date => {}
            _ => {
                e.insert(s.question.clone(), (s.score, s.date.clone()));
            }
        }
    }
    out
}

/// The places' indicator values for a month: the measured ones, the footfall index from the
/// earlier months' means, the surveys, and the 15-minute share.
pub fn place_values(
    month: &MonthValues,
    earlier: &[Arc<MonthValues>],
    surveys: &BTreeMap<String, BTreeMap<String, (f64, String)>>,
    proximity: &BTreeMap<String, f64>,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (place, measured) in &month.places {
        let mut v: BTreeMap<String, f64> = measured
            .iter()
            .filter(|(k, _)| *k != "footfall_daily")
            .map(|(k, x)| (k.clone(), *x))
            .collect();
        if let Some(now) = measured.get("footfall_daily") {
            let before: Vec<f64> = earlier
                .iter()
                .filter_map(|m| m.places.get(place).and_then(|p| p.get("footfall_daily")).copied())
                .collect();
            if before.len() >= 3 {
                let mean = before.iter().sum::<f64>() / before.len() as f64;
                if mean > 0.0 {
                    v.insert("footfall_index".into(), 100.0 * now / mean);
                }
            }
        }
        if let Some(q) = surveys.get(place) {
            for (question, (score, _)) in q {
                v.insert(question.clone(), *score);
            }
        }
        if let Some(x) = proximity.get(place) {
            v.insert("proximity_15min".into(), *x);
        }
        out.insert(place.clone(), v);
    }
    out
}

/// Places, neighbourhoods or communes with their values: a neighbourhood or commune takes the
/// mean of its places' values, indicator by indicator (the places missing one left out).
pub fn units(
    level: &str,
    sites: &[Site],
    communes: &BTreeMap<String, String>,
    areas: &BTreeMap<String, Vec<agora_proximity::population::Area>>,
    values: &BTreeMap<String, BTreeMap<String, f64>>,
) -> Result<Vec<Unit>> {
    // Each unit and, per indicator, the sum and count of its places' values.
    type Sums = BTreeMap<String, (f64, f64)>;
    let mut groups: BTreeMap<String, (Unit, Sums)> = BTreeMap::new();
    for s in sites {
        let Some(v) = values.get(s.id.as_str()) else { continue };
        let commune = s.commune.as_str().to_string();
        let key = match level {
            "place" => Some((s.id.as_str().to_string(), s.name.clone())),
            "commune" => Some((
                commune.clone(),
                communes.get(&commune).cloned().unwrap_or_else(|| commune.clone()),
            )),
            "neighbourhood" => match (s.lon, s.lat) {
                (Some(lon), Some(lat)) => areas
                    .get(&commune)
                    .and_then(|list| list.iter().find(|a| a.contains(lon, lat)))
                    .map(|a| (format!("{commune}:{}", a.code), a.name.clone())),
                _ => None,
            },
            other => {
                return Err(Error::Invalid(format!(
                    "level {other:?}: place, neighbourhood or commune"
                )));
            }
        };
        let Some((id, name)) = key else { continue };
        let (u, sums) = groups.entry(id.clone()).or_insert_with(|| {
            let u = Unit {
                id,
                name,
                commune: commune.clone(),
                places: Vec::new(),
                values: BTreeMap::new(),
            };
            (u, BTreeMap::new())
        });
        u.places.push(s.id.as_str().to_string());
        for (k, x) in v {
            let e = sums.entry(k.clone()).or_insert((0.0, 0.0));
            e.0 += x;
            e.1 += 1.0;
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut u, sums)| {
            u.values = sums.into_iter().map(|(k, (sum, n))| (k, sum / n)).collect();
            u
        })
        .collect())
}

/// One unit's index, with its dimensions and what it rests on.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scored {
    /// The unit.
    #[serde(flatten)]
    pub unit: Unit,
    /// The index, 0–100 (absent: less than the minimum coverage of the weights).
    pub index: Option<f64>,
    /// Each dimension's score, 0–100 (absent: none of its indicators).
    pub dimensions: BTreeMap<String, Option<f64>>,
    /// Each indicator's normalised score, 0–100.
    pub normalised: BTreeMap<String, f64>,
    /// Share of the indicators present.
    pub indicator_coverage: f64,
    /// Share of the weights whose dimension is present.
    pub weight_coverage: f64,
    /// Indicators missing.
    pub missing: Vec<String>,
    /// Indicators outside their reference range (clamped).
    pub clamped: Vec<String>,
    /// Rank among the units with an index (1: best).
    pub rank: Option<usize>,
}

/// Scores units with a definition; ranks them.
pub fn score(def: &wb::Definition, units: Vec<Unit>) -> Vec<Scored> {
    let mut out: Vec<Scored> = units
        .into_iter()
        .map(|u| {
            let s = wb::score(def, &u.values);
            let normalised = def
                .indicators
                .iter()
                .filter_map(|i| {
                    u.values.get(&i.id).map(|x| (i.id.clone(), 100.0 * wb::normalise(*x, i).0))
                })
                .collect();
            Scored {
                index: s.index.map(|x| 100.0 * x),
                dimensions: s
                    .dimensions
                    .into_iter()
                    .map(|(k, v)| (k, v.map(|x| 100.0 * x)))
                    .collect(),
                normalised,
                indicator_coverage: s.indicator_coverage,
                weight_coverage: s.weight_coverage,
                missing: s.missing,
                clamped: s.clamped,
                rank: None,
                unit: u,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..out.len()).filter(|i| out[*i].index.is_some()).collect();
    order.sort_by(|a, b| {
        out[*b].index.partial_cmp(&out[*a].index).unwrap_or(std::cmp::Ordering::Equal)
    });
    for (r, i) in order.into_iter().enumerate() {
        out[i].rank = Some(r + 1);
    }
    out
}
