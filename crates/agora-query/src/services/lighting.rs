//! Street lighting, read from the lamps' readings: each lamp's local day — energy (integrated
//! from `power_w`, or estimated from its rated power, `lamp_on` and `dimming_level` when it reports
//! no power), its cost and emissions, its burning judged against the sun at its position, its
//! faults — and each street's burning profile by quarter-hour, on which dimming scenarios are
//! priced.
//!
//! Days are computed once they are over and kept (a [`Ledger`] in memory: about 40 bytes a lamp
//! a day and 800 a street a day, 15 MB for a year of a 1,000-lamp city); today and yesterday are
//! recomputed when asked again ten minutes later, since late readings may still come.
//! A lamp's street is its metadata's `street` (its place's name otherwise); its rated power is
//! `rated_power_w`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use agora_indicators::lighting::{
    self, Burning, Profile, QUARTERS, Rule, Tariff, integrate, status_is_fault,
};
use agora_indicators::sun::SunDay;
use agora_model::{DeviceId, Timestamp};
use agora_store::catalog::DeviceFilter;
use agora_store::{Catalog, SeriesStore};
use chrono::{Days, NaiveDate, Timelike};
use chrono_tz::Tz;

use crate::{Error, Result};

/// The device kind of a street lamp.
pub const LAMP_KIND: &str = "streetlight";

/// Settings of the lighting figures.
#[derive(Debug, Clone)]
pub struct LightingConfig {
    /// The electricity tariff and emission factor.
    pub tariff: Tariff,
    /// Readings further apart than this leave a gap between them (s).
    pub max_gap_s: i64,
}

impl Default for LightingConfig {
    fn default() -> Self {
        LightingConfig {
            tariff: Tariff {
                eur_per_kwh: 0.20,
                off_peak_eur_per_kwh: 0.15,
                off_peak: vec![(22 * 60, 6 * 60)],
                kg_co2e_per_kwh: lighting::FRENCH_GRID_KG_CO2E_PER_KWH,
            },
            max_gap_s: 3600,
        }
    }
}

/// Where a lamp's energy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LampEnergySource))]
pub enum EnergySource {
    /// Integrated from power readings.
    Measured,
    /// Rated power × hours lit × dimming level.
    Estimated,
    /// Neither: no power readings and no rated power, or no readings at all.
    #[default]
    Unknown,
}

/// A lamp's local day.
#[derive(Debug, Clone, Copy, Default)]
pub struct LampDay {
    /// Wh drawn (covered time only).
    pub wh: f64,
    /// € of that energy at the tariff.
    pub eur: f64,
    /// Seconds of the day the energy covers.
    pub energy_covered_s: f64,
    /// Where the energy comes from.
    pub source: EnergySource,
    /// Burning against the sun.
    pub burning: Burning,
    /// The first faulty observation (a fault status, or the lamp lit by day or unlit at night).
    pub fault_at: Option<i64>,
    /// The first normal observation after the day's last faulty one (when the day ends normal).
    pub normal_at: Option<i64>,
    /// Whether the day ends in a fault.
    pub faulty_end: bool,
    /// Seconds the day lasts (23, 24 or 25 hours).
    pub length_s: f64,
    /// What the day's fault was: `status` (the lamp reported it), `lit_by_day`, `unlit_at_night`.
    pub why: Option<&'static str>,
}

impl LampDay {
    /// Lit by day (most of the daylight seen).
    pub fn lit_all_day(&self) -> bool {
        self.burning.lit_all_day()
    }
    /// Unlit at night (most of the dark seen).
    pub fn never_lit(&self) -> bool {
        self.burning.never_lit()
    }
}

/// A computed local day of every lamp.
#[derive(Debug)]
pub struct Day {
    /// The day.
    pub date: NaiveDate,
    /// Each lamp's day.
    pub lamps: HashMap<DeviceId, LampDay>,
    /// Each street's profile, keyed by (place, street).
    pub streets: HashMap<(String, String), Profile>,
    /// When it was computed (Unix s).
    computed_at: i64,
}

/// The lamps' days, computed once and kept.
#[derive(Debug)]
pub struct Ledger {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    config: LightingConfig,
    tz: Tz,
    days: tokio::sync::Mutex<BTreeMap<NaiveDate, Arc<Day>>>,
}

/// Where a lamp stands and what it is.
#[derive(Debug, Clone)]
pub struct Lamp {
    /// The device.
    pub id: DeviceId,
    /// Its place (`""` without one).
    pub site: String,
    /// Its commune (`""` without one).
    pub commune: String,
    /// Its street (metadata `street`, or its place's name, or "—").
    pub street: String,
    /// Position (its own, or its place's).
    pub position: Option<(f64, f64)>,
    /// Rated power (W), from metadata `rated_power_w`.
    pub rated_w: Option<f64>,
}

/// The lamps a catalog shows (the caller's view), with their streets.
pub fn lamps(catalog: &dyn Catalog) -> Vec<Lamp> {
    let filter =
        DeviceFilter { kind: agora_model::DeviceKind::parse(LAMP_KIND).ok(), ..Default::default() };
    let sites = catalog.sites();
    let mut v: Vec<Lamp> = catalog
        .devices(&filter)
        .iter()
        .map(|d| {
            let site = d.site.as_ref().and_then(|s| sites.iter().find(|x| &x.id == s));
            let street = d
                .metadata
                .get("street")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .or_else(|| site.map(|s| s.name.clone()))
                .unwrap_or_else(|| "—".into());
            let position = match (d.lat, d.lon) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => site.and_then(|s| Some((s.lat?, s.lon?))),
            };
            Lamp {
                id: d.id.clone(),
                site: d.site.as_ref().map(|s| s.to_string()).unwrap_or_default(),
                commune: d.commune.as_ref().map(|c| c.to_string()).unwrap_or_default(),
                street,
                position,
                rated_w: d
                    .metadata
                    .get("rated_power_w")
                    .and_then(serde_json::Value::as_f64)
                    .filter(|w| w.is_finite() && *w > 0.0),
            }
        })
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// Local midnight of `d` in `tz` (the first instant of the day).
pub fn local_midnight(d: NaiveDate, tz: Tz) -> Result<i64> {
    use chrono::TimeZone;
    let local = d.and_hms_opt(0, 0, 0).expect("midnight");
    tz.from_local_datetime(&local)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(local + chrono::Duration::hours(1))).earliest())
        .map(|t| t.timestamp())
        .ok_or_else(|| Error::Invalid(format!("{d} is out of range")))
}

impl Ledger {
    /// A ledger over the whole catalog (views filter it by what their caller sees).
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        config: LightingConfig,
        tz: Tz,
    ) -> Self {
        Ledger { catalog, store, config, tz, days: Default::default() }
    }

    /// The settings.
    pub fn config(&self) -> &LightingConfig {
        &self.config
    }

    /// The time zone of local days.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The days `from..=to`, computing those not kept (or kept but still open and older than ten
    /// minutes). `now` (Unix s) decides which days are over.
    pub async fn days(&self, from: NaiveDate, to: NaiveDate, now: i64) -> Result<Vec<Arc<Day>>> {
        if to < from {
            return Err(Error::Invalid(format!("from {from} is after to {to}")));
        }
        let mut kept = self.days.lock().await;
        let today = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.with_timezone(&self.tz).date_naive())
            .unwrap_or(to);
        let stale = |d: &Day| {
            // A day is final two hours after its end; until then it is redone after 10 minutes.
            let end = local_midnight(d.date + Days::new(1), self.tz).unwrap_or(i64::MAX);
            d.computed_at < end + 7200 && now - d.computed_at > 600
        };
        let mut missing = Vec::new();
        let mut d = from;
        while d <= to && d <= today {
            if kept.get(&d).is_none_or(|k| stale(k)) {
                missing.push(d);
            }
            d = d + Days::new(1);
        }
        // Contiguous runs of missing days are read together, a month at most at once.
        let mut i = 0;
        while i < missing.len() {
            let mut j = i;
            while j + 1 < missing.len()
                && missing[j + 1] == missing[j] + Days::new(1)
                && j + 1 - i < 31
            {
                j += 1;
            }
            for day in self.compute(missing[i], missing[j], now).await? {
                kept.insert(day.date, Arc::new(day));
            }
            i = j + 1;
        }
        Ok(kept.range(from..=to).map(|(_, d)| d.clone()).collect())
    }

    /// Computes the days `from..=to` of every lamp.
    async fn compute(&self, from: NaiveDate, to: NaiveDate, now: i64) -> Result<Vec<Day>> {
        let lamps = lamps(self.catalog.as_ref());
        let dates: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
        let bounds: Vec<(i64, i64)> = dates
            .iter()
            .map(|d| {
                Ok((local_midnight(*d, self.tz)?, local_midnight(*d + Days::new(1), self.tz)?))
            })
            .collect::<Result<_>>()?;
        let (start, end) = (bounds[0].0, bounds[bounds.len() - 1].1);
        let per_lamp = crate::summary::concurrently(&lamps, |lamp| {
            let bounds = &bounds;
            let dates = &dates;
            async move { self.lamp_days(lamp, dates, bounds, (start, end)).await }
        })
        .await?;
        let mut days: Vec<Day> = dates
            .iter()
            .map(|&date| Day {
                date,
                lamps: HashMap::new(),
                streets: HashMap::new(),
                computed_at: now,
            })
            .collect();
        for (lamp, found) in lamps.iter().zip(per_lamp) {
            for (k, (lamp_day, profile)) in found.into_iter().enumerate() {
                let Some(lamp_day) = lamp_day else { continue };
                days[k].lamps.insert(lamp.id.clone(), lamp_day);
                days[k]
                    .streets
                    .entry((lamp.site.clone(), lamp.street.clone()))
                    .or_default()
                    .add(&profile);
            }
        }
        for d in &mut days {
            for p in d.streets.values_mut() {
                p.days = 1.0;
            }
        }
        Ok(days)
    }

    /// One lamp over the days: its readings read once, then cut day by day.
    async fn lamp_days(
        &self,
        lamp: &Lamp,
        dates: &[NaiveDate],
        bounds: &[(i64, i64)],
        (start, end): (i64, i64),
    ) -> Result<Vec<(Option<LampDay>, Profile)>> {
        let id = lamp.id.as_str();
        let keys = [(id, "power_w"), (id, "lamp_on"), (id, "dimming_level"), (id, "lamp_status")];
        let series = self.catalog.lookup_series(&keys);
        let gap = self.config.max_gap_s;
        // A gap's worth of readings either side: the day's first and last intervals need them.
        let (from, to) = (ts(start - gap), ts(end + gap + 1));
        const ALL: usize = 10_000_000;
        let mut numbers = Vec::with_capacity(3);
        for s in &series[..3] {
            numbers.push(match s {
                Some(s) => self
                    .store
                    .read_numbers(*s, from, to, ALL)
                    .await?
                    .into_iter()
                    .map(|(t, v)| (t.as_nanos().div_euclid(1_000_000_000), v))
                    .collect(),
                None => Vec::new(),
            });
        }
        let status: Vec<(i64, bool)> = match series[3] {
            Some(s) => self
                .store
                .read(s, from, to, ALL)
                .await?
                .into_iter()
                .filter_map(|(t, v)| match v {
                    agora_model::Value::Str(x) => {
                        Some((t.as_nanos().div_euclid(1_000_000_000), status_is_fault(&x)))
                    }
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let (power, lit, dim) = (&numbers[0], &numbers[1], &numbers[2]);
        let mut out = Vec::with_capacity(dates.len());
        for (date, &(d0, d1)) in dates.iter().zip(bounds) {
            out.push(self.lamp_day(lamp, *date, (d0, d1), power, lit, dim, &status));
        }
        Ok(out)
    }

    /// One lamp's day from its readings (all of them: each is cut here).
    #[allow(clippy::too_many_arguments)]
    fn lamp_day(
        &self,
        lamp: &Lamp,
        date: NaiveDate,
        (d0, d1): (i64, i64),
        power: &[(i64, f64)],
        lit: &[(i64, f64)],
        dim: &[(i64, f64)],
        status: &[(i64, bool)],
    ) -> (Option<LampDay>, Profile) {
        let gap = self.config.max_gap_s;
        // Readings that matter to the day: from one gap before it to one gap after.
        let cut = |v: &'_ [(i64, f64)]| -> Vec<(i64, f64)> {
            let a = v.partition_point(|p| p.0 < d0 - gap);
            let b = v.partition_point(|p| p.0 <= d1 + gap);
            v[a..b].to_vec()
        };
        let (power, lit, dim) = (cut(power), cut(lit), cut(dim));
        let status: Vec<(i64, bool)> = {
            let a = status.partition_point(|p| p.0 < d0);
            let b = status.partition_point(|p| p.0 < d1);
            status[a..b].to_vec()
        };
        let mut profile = Profile::default();
        // A day is the lamp's when it reported in it: readings either side only lend their ends.
        let inside = |v: &[(i64, f64)]| v.iter().any(|p| (d0..d1).contains(&p.0));
        if !inside(&power) && !inside(&lit) && status.is_empty() {
            return (None, profile);
        }
        // Quarter-hour edges in real time and the local quarter each starts in.
        let edges: Vec<i64> = (0..).map(|k| d0 + 900 * k).take_while(|t| *t <= d1).collect();
        let quarter = |t: i64| -> usize {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|x| {
                    let l = x.with_timezone(&self.tz);
                    (l.hour() * 4 + l.minute() / 15) as usize
                })
                .unwrap_or(0)
                .min(QUARTERS - 1)
        };
        let dims = integrate(&dim, gap, &edges, Rule::Step);
        let level_in = |k: usize| -> Option<f64> {
            let s = dims.get(k)?;
            (s.covered_s > 0.0).then(|| (s.integral / s.covered_s / 100.0).clamp(0.0, 1.0))
        };
        let mut day = LampDay { length_s: (d1 - d0) as f64, ..LampDay::default() };
        let lit_slices = integrate(&lit, gap, &edges, Rule::Step);
        if !power.is_empty() {
            let slices = integrate(&power, gap, &edges, Rule::Trapezoid);
            day.source = EnergySource::Measured;
            for (k, s) in slices.iter().enumerate() {
                let wh = s.integral / 3600.0;
                let q = quarter(edges[k]);
                day.wh += wh;
                day.eur += self.config.tariff.cost(q, wh);
                day.energy_covered_s += s.covered_s;
                profile.wh[q] += wh;
                profile.full_wh[q] += match level_in(k) {
                    Some(l) if l >= 0.05 => wh / l,
                    _ => wh,
                };
            }
        } else if let Some(rated) = lamp.rated_w {
            day.source = EnergySource::Estimated;
            for (k, s) in lit_slices.iter().enumerate() {
                let level = level_in(k).unwrap_or(1.0);
                let full = rated * s.integral / 3600.0;
                let wh = full * level;
                let q = quarter(edges[k]);
                day.wh += wh;
                day.eur += self.config.tariff.cost(q, wh);
                day.energy_covered_s += s.covered_s;
                profile.wh[q] += wh;
                profile.full_wh[q] += full;
            }
        }
        // Burning against the sun at the lamp's position.
        if let (Some((lat, lon)), false) = (lamp.position, lit.is_empty()) {
            let sun = SunDay::at(date, lat, lon);
            if let (Some(r), Some(s), Some(dawn), Some(dusk)) =
                (sun.sunrise, sun.sunset, sun.civil_dawn, sun.civil_dusk)
            {
                day.burning = lighting::burning(&lit, gap, (d0, d1), (r, s), (dawn, dusk));
                if day.burning.never_lit() {
                    day.fault_at = Some(dusk);
                    day.why = Some("unlit_at_night");
                } else if day.burning.lit_all_day() {
                    day.fault_at = Some(r);
                    day.why = Some("lit_by_day");
                }
            }
        }
        let sun_fault = day.fault_at.is_some();
        // Fault statuses: the first faulty one, and the first normal one after the last faulty.
        if let Some(&(t, _)) = status.iter().find(|p| p.1) {
            day.fault_at = Some(day.fault_at.map_or(t, |f| f.min(t)));
            day.why = Some("status");
        }
        let last_fault = status.iter().rposition(|p| p.1);
        let after = last_fault.map_or(0, |i| i + 1);
        day.faulty_end = sun_fault || status.last().is_some_and(|p| p.1);
        if !day.faulty_end {
            day.normal_at = status[after..].first().map(|p| p.0).or_else(|| {
                // No status after: a day lit as it should be shows the lamp works, from the
                // day's first reading of its state.
                (day.burning.dark_covered_s >= 7200.0 && last_fault.is_none())
                    .then(|| lit.iter().find(|p| p.0 >= d0).map(|p| p.0))
                    .flatten()
            });
        }
        (Some(day), profile)
    }
}

fn ts(s: i64) -> Timestamp {
    Timestamp::from_nanos(s.saturating_mul(1_000_000_000))
}

/// A lamp's fault episodes over consecutive days: from the first faulty observation to the first
/// normal one after it.
pub fn lamp_episodes(days: &[(NaiveDate, &LampDay)]) -> Vec<lighting::Episode> {
    let mut out = Vec::new();
    let mut open: Option<i64> = None;
    for (_, d) in days {
        if open.is_none() {
            open = d.fault_at;
        }
        if let (Some(start), Some(n)) = (open, d.normal_at)
            && !d.faulty_end
            && n > start
        {
            out.push(lighting::Episode { start, end: Some(n) });
            open = None;
        }
    }
    if let Some(start) = open {
        out.push(lighting::Episode { start, end: None });
    }
    out
}

/// How lamps are grouped in a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Each lamp.
    Lamp,
    /// Each street of a place.
    Street,
    /// Each place.
    Site,
    /// All together.
    All,
}

impl By {
    /// `lamp`, `street`, `place`, `commune`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "lamp" => By::Lamp,
            "street" => By::Street,
            "place" => By::Site,
            "commune" | "all" => By::All,
            _ => {
                return Err(Error::Invalid(format!(
                    "by {s:?}: group by lamp, street, place or commune"
                )));
            }
        })
    }
}

/// Sums of lamp-days: energy, cost, emissions, burning, faults, and how much the data covered.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingTotals))]
pub struct Totals {
    /// Lamps counted.
    pub lamps: usize,
    /// kWh drawn over the covered time.
    pub kwh: f64,
    /// € at the tariff.
    pub eur: f64,
    /// kg CO2e at the emission factor.
    pub kg_co2e: f64,
    /// Share (0–1) of lamp-time the energy covers: the rest is a gap, not zero.
    pub energy_coverage: f64,
    /// Lamp-days whose energy was measured (power readings).
    pub measured_days: u32,
    /// Lamp-days whose energy was estimated (rated power × hours lit).
    pub estimated_days: u32,
    /// Lamp-days with readings but no energy (no power and no rated power).
    pub unknown_days: u32,
    /// Hours lit.
    pub lit_h: f64,
    /// Hours lit while the sun was up.
    pub lit_by_day_h: f64,
    /// Hours unlit while it was dark (civil dusk to civil dawn).
    pub dark_unlit_h: f64,
    /// Lamp-days lit for most of the daylight.
    pub days_lit_by_day: u32,
    /// Lamp-days unlit for most of the night.
    pub days_unlit_at_night: u32,
    /// Lamp-days with a fault (any kind).
    pub fault_days: u32,
    #[serde(skip)]
    covered_s: f64,
    #[serde(skip)]
    length_s: f64,
}

impl Totals {
    fn add(&mut self, d: &LampDay, kg_per_kwh: f64) {
        self.kwh += d.wh / 1000.0;
        self.eur += d.eur;
        self.kg_co2e += d.wh / 1000.0 * kg_per_kwh;
        self.covered_s += d.energy_covered_s;
        self.length_s += d.length_s;
        match d.source {
            EnergySource::Measured => self.measured_days += 1,
            EnergySource::Estimated => self.estimated_days += 1,
            EnergySource::Unknown => self.unknown_days += 1,
        }
        self.lit_h += d.burning.lit_s / 3600.0;
        self.lit_by_day_h += d.burning.lit_by_day_s / 3600.0;
        self.dark_unlit_h += d.burning.dark_unlit_s / 3600.0;
        self.days_lit_by_day += u32::from(d.lit_all_day());
        self.days_unlit_at_night += u32::from(d.never_lit());
        self.fault_days += u32::from(d.fault_at.is_some());
    }
    fn merge(&mut self, o: &Totals) {
        self.kwh += o.kwh;
        self.eur += o.eur;
        self.kg_co2e += o.kg_co2e;
        self.covered_s += o.covered_s;
        self.length_s += o.length_s;
        self.measured_days += o.measured_days;
        self.estimated_days += o.estimated_days;
        self.unknown_days += o.unknown_days;
        self.lit_h += o.lit_h;
        self.lit_by_day_h += o.lit_by_day_h;
        self.dark_unlit_h += o.dark_unlit_h;
        self.days_lit_by_day += o.days_lit_by_day;
        self.days_unlit_at_night += o.days_unlit_at_night;
        self.fault_days += o.fault_days;
    }
    fn finish(&mut self, lamps: usize) {
        self.lamps = lamps;
        self.energy_coverage =
            if self.length_s > 0.0 { self.covered_s / self.length_s } else { 0.0 };
    }
}

/// One group of a view.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingGroup))]
pub struct Group {
    /// The lamp's id, the street, the place's id, or `all`.
    pub key: String,
    /// The place (lamps and streets).
    pub place: Option<String>,
    /// The street (lamps and streets).
    pub street: Option<String>,
    /// Position (lamps: their own; others: the mean of their lamps').
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// A day's or a month's totals.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingPeriod))]
pub struct PeriodTotal {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// kWh (`null`: no lamp reported in the period — not zero).
    pub kwh: Option<f64>,
    /// €.
    pub eur: Option<f64>,
    /// kg CO2e.
    pub kg_co2e: Option<f64>,
    /// Share of lamp-time covered.
    pub energy_coverage: f64,
    /// Hours lit by day.
    pub lit_by_day_h: f64,
    /// Hours unlit in the dark.
    pub dark_unlit_h: f64,
}

/// The lighting of some lamps over some days.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingOverview))]
pub struct Overview {
    /// First day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub from: NaiveDate,
    /// Last day.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub to: NaiveDate,
    /// All lamps together.
    pub totals: Totals,
    /// Per day.
    pub days: Vec<PeriodTotal>,
    /// Per month.
    pub months: Vec<PeriodTotal>,
    /// Per lamp, street or place.
    pub groups: Vec<Group>,
}

/// The overview of `lamps` over `days`, grouped `by`.
pub fn overview(days: &[Arc<Day>], lamps: &[Lamp], by: By, kg_per_kwh: f64) -> Overview {
    let key = |l: &Lamp| match by {
        By::Lamp => l.id.to_string(),
        By::Street => format!("{}\u{1f}{}", l.site, l.street),
        By::Site => l.site.clone(),
        By::All => "all".into(),
    };
    let mut groups: BTreeMap<String, (Totals, Vec<&Lamp>)> = BTreeMap::new();
    let mut totals = Totals::default();
    let mut per_day: Vec<PeriodTotal> = Vec::new();
    let mut per_month: BTreeMap<String, Totals> = BTreeMap::new();
    for l in lamps {
        groups.entry(key(l)).or_default().1.push(l);
    }
    // Each lamp's group, found once: the days are then sums into a vector.
    let index: HashMap<String, usize> =
        groups.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
    let of_lamp: Vec<usize> = lamps.iter().map(|l| index[&key(l)]).collect();
    let mut sums = vec![Totals::default(); groups.len()];
    for day in days {
        let mut t = Totals::default();
        for (l, &g) in lamps.iter().zip(&of_lamp) {
            if let Some(d) = day.lamps.get(&l.id) {
                t.add(d, kg_per_kwh);
                sums[g].add(d, kg_per_kwh);
            }
        }
        totals.merge(&t);
        per_month.entry(day.date.format("%Y-%m").to_string()).or_default().merge(&t);
        t.finish(lamps.len());
        per_day.push(period(day.date.to_string(), &t));
    }
    for ((_, (t, _)), sum) in groups.iter_mut().zip(sums) {
        *t = sum;
    }
    totals.finish(lamps.len());
    let groups = groups
        .into_iter()
        .map(|(k, (mut t, ls))| {
            t.finish(ls.len());
            let pos: Vec<(f64, f64)> = ls.iter().filter_map(|l| l.position).collect();
            let n = pos.len().max(1) as f64;
            let first = ls[0];
            Group {
                key: match by {
                    By::Street => first.street.clone(),
                    _ => k,
                },
                place: (by != By::All).then(|| first.site.clone()),
                street: matches!(by, By::Lamp | By::Street).then(|| first.street.clone()),
                lat: (!pos.is_empty()).then(|| pos.iter().map(|p| p.0).sum::<f64>() / n),
                lon: (!pos.is_empty()).then(|| pos.iter().map(|p| p.1).sum::<f64>() / n),
                totals: t,
            }
        })
        .collect();
    Overview {
        from: days.first().map_or(NaiveDate::MIN, |d| d.date),
        to: days.last().map_or(NaiveDate::MIN, |d| d.date),
        totals,
        days: per_day,
        months: per_month
            .into_iter()
            .map(|(m, mut t)| {
                t.finish(lamps.len());
                period(m, &t)
            })
            .collect(),
        groups,
    }
}

fn period(p: String, t: &Totals) -> PeriodTotal {
    let reported = t.measured_days + t.estimated_days + t.unknown_days > 0;
    PeriodTotal {
        period: p,
        kwh: reported.then_some(t.kwh),
        eur: reported.then_some(t.eur),
        kg_co2e: reported.then_some(t.kg_co2e),
        energy_coverage: t.energy_coverage,
        lit_by_day_h: t.lit_by_day_h,
        dark_unlit_h: t.dark_unlit_h,
    }
}

/// A lamp to visit: its fault still open.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LampVisit))]
pub struct Visit {
    /// The lamp.
    pub lamp: String,
    /// Its place.
    pub place: String,
    /// Its street.
    pub street: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// `status`, `lit_by_day` or `unlit_at_night`.
    pub why: String,
    /// Position.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
}

/// A month of maintenance.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingMaintenanceMonth))]
pub struct MaintenanceMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Faults that began that month.
    pub failures: u32,
    /// Of those, repaired (by the end of the period).
    pub repaired: u32,
    /// Mean time to repair of those repaired (hours); `null` when none was.
    pub mttr_h: Option<f64>,
}

/// A lamp with several faults in the period.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LampRepeatedFaults))]
pub struct Repeated {
    /// The lamp.
    pub lamp: String,
    /// Its street.
    pub street: String,
    /// Faults in the period.
    pub faults: usize,
}

/// Faults and repairs of some lamps over some days.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = LightingMaintenance))]
pub struct Maintenance {
    /// Per month.
    pub months: Vec<MaintenanceMonth>,
    /// Faults that began in the period.
    pub failures: u32,
    /// Mean time to repair over the period (hours); `null` when nothing was repaired.
    pub mttr_h: Option<f64>,
    /// Lamps with two faults or more.
    pub repeated: Vec<Repeated>,
    /// Lamps whose fault is still open, by place and street.
    pub to_visit: Vec<Visit>,
}

/// The maintenance of `lamps` over `days`.
pub fn maintenance(days: &[Arc<Day>], lamps: &[Lamp], tz: Tz) -> Maintenance {
    let month_of = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|x| x.with_timezone(&tz).format("%Y-%m").to_string())
            .unwrap_or_default()
    };
    let mut months: BTreeMap<String, (u32, u32, f64)> = BTreeMap::new();
    for day in days {
        months.entry(day.date.format("%Y-%m").to_string()).or_default();
    }
    let (mut total_repair, mut repaired, mut failures) = (0.0, 0u32, 0u32);
    let mut repeated = Vec::new();
    let mut to_visit = Vec::new();
    for l in lamps {
        let seq: Vec<(NaiveDate, &LampDay)> =
            days.iter().filter_map(|d| d.lamps.get(&l.id).map(|x| (d.date, x))).collect();
        let eps = lamp_episodes(&seq);
        for e in &eps {
            failures += 1;
            let m = months.entry(month_of(e.start)).or_default();
            m.0 += 1;
            if let Some(r) = e.repair_s() {
                m.1 += 1;
                m.2 += r as f64 / 3600.0;
                repaired += 1;
                total_repair += r as f64 / 3600.0;
            }
        }
        if eps.len() >= 2 {
            repeated.push(Repeated {
                lamp: l.id.to_string(),
                street: l.street.clone(),
                faults: eps.len(),
            });
        }
        if let Some(open) = eps.last().filter(|e| e.end.is_none()) {
            let why = seq.iter().rev().find_map(|(_, d)| d.why).unwrap_or("status");
            to_visit.push(Visit {
                lamp: l.id.to_string(),
                place: l.site.clone(),
                street: l.street.clone(),
                since: chrono::DateTime::from_timestamp(open.start, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                why: why.into(),
                lat: l.position.map(|p| p.0),
                lon: l.position.map(|p| p.1),
            });
        }
    }
    repeated.sort_by(|a, b| b.faults.cmp(&a.faults).then(a.lamp.cmp(&b.lamp)));
    to_visit.sort_by(|a, b| (&a.place, &a.street, &a.lamp).cmp(&(&b.place, &b.street, &b.lamp)));
    Maintenance {
        months: months
            .into_iter()
            .map(|(month, (f, r, h))| MaintenanceMonth {
                month,
                failures: f,
                repaired: r,
                mttr_h: (r > 0).then(|| h / f64::from(r)),
            })
            .collect(),
        failures,
        mttr_h: (repaired > 0).then(|| total_repair / f64::from(repaired)),
        repeated,
        to_visit,
    }
}

/// The burning profile of some streets (keys `(place, street)`; all streets when empty) over
/// the days; its `days` are those on which one of the streets' lamps reported (a year with two
/// weeks of data is two weeks of profile, scaled to a year as such, never a year of zeros).
pub fn profile(days: &[Arc<Day>], streets: &[(String, String)]) -> Profile {
    let mut p = Profile::default();
    for d in days {
        let mut seen = false;
        for (k, sp) in &d.streets {
            if streets.is_empty() || streets.contains(k) {
                p.add(sp);
                seen = true;
            }
        }
        if seen {
            p.days += 1.0;
        }
    }
    p
}
