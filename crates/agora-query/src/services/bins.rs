//! Connected bins, read from their `fill_level`: collections, fill rates (by weekday), the level
//! at which they were emptied (a visit below `wasted_below` was not needed), hours full, when
//! each will reach the round's threshold and 100 %, the round of those due, and the visits a
//! round by need would have saved against the visits made, month by month.

use std::collections::BTreeMap;

use agora_indicators::bins::{self, COLLECTION_DROP, FULL, TimeToLevel};
use agora_store::catalog::DeviceFilter;
use agora_store::{Catalog, SeriesStore};
use chrono::Datelike;
use chrono_tz::Tz;
use serde::Serialize;

use crate::{Error, Result};

/// The device kind of a connected bin.
pub const BIN_KIND: &str = "waste_container";

/// Settings of the bins' figures.
#[derive(Debug, Clone)]
pub struct BinsConfig {
    /// A bin is due for the round at this level (%).
    pub threshold: f64,
    /// A collection below this level (%) was a wasted visit.
    pub wasted_below: f64,
    /// Road distance ÷ distance as the crow flies.
    pub detour: f64,
    /// Readings further apart than this leave a gap (s).
    pub max_gap_s: i64,
    /// Where rounds start, by commune (INSEE code → lat, lon); a round may name another.
    pub depots: BTreeMap<String, (f64, f64)>,
}

impl Default for BinsConfig {
    fn default() -> Self {
        BinsConfig {
            threshold: 80.0,
            wasted_below: 50.0,
            detour: 1.3,
            max_gap_s: 3 * 3600,
            depots: BTreeMap::new(),
        }
    }
}

impl BinsConfig {
    /// Checks the numbers.
    pub fn check(&self) -> Result<()> {
        let pct = |name: &str, v: f64| {
            if (1.0..=100.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Invalid(format!("{name} must be a level from 1 to 100 %, not {v}")))
            }
        };
        pct("the round's threshold", self.threshold)?;
        pct("the wasted-visit level", self.wasted_below)?;
        if !(1.0..=5.0).contains(&self.detour) {
            return Err(Error::Invalid(format!(
                "the detour factor must be 1 to 5, not {}",
                self.detour
            )));
        }
        Ok(())
    }
}

/// A bin's figures.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinFigures))]
pub struct Bin {
    /// The device.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its place.
    pub place: Option<String>,
    /// Its commune.
    pub commune: Option<String>,
    /// Position.
    pub lat: Option<f64>,
    /// Longitude.
    pub lon: Option<f64>,
    /// Last level (%), and when.
    pub level: Option<f64>,
    /// When the last level was read (RFC 3339).
    pub level_at: Option<String>,
    /// Mean fill rate over the period (% per hour, between collections).
    pub rate_per_h: Option<f64>,
    /// Fill rate by weekday, Monday first (`null`: not observed).
    pub rate_by_weekday: [Option<f64>; 7],
    /// Collections detected.
    pub collections: usize,
    /// Mean level just before a collection (%).
    pub level_at_collection: Option<f64>,
    /// Collections below the wasted-visit level.
    pub wasted_visits: usize,
    /// Hours at 100 % or more (full or overflowing).
    pub hours_full: f64,
    /// Share of the period covered by readings (gaps longer than the limit are not counted).
    pub coverage: f64,
    /// When it will reach the round's threshold.
    pub to_threshold: Option<Eta>,
    /// When it will be full.
    pub to_full: Option<Eta>,
}

/// When a bin will reach a level.
#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinEta))]
pub struct Eta {
    /// Hours from now (0: already there; `null`: at the fitted rate the level does not rise,
    /// so no time can be given — `earliest_h` may still say how soon it could at the fast end).
    pub hours: Option<f64>,
    /// Earliest, hours (the fast end of the rate's 95 % range).
    pub earliest_h: f64,
    /// Latest, hours (`null`: the slow end does not rise).
    pub latest_h: Option<f64>,
    /// Rate used, % per hour.
    pub rate_per_h: f64,
    /// `cycle` (the current fill cycle's own fit) or `history` (past cycles' mean).
    pub basis: &'static str,
}

impl From<TimeToLevel> for Eta {
    fn from(t: TimeToLevel) -> Self {
        Eta {
            hours: t.hours.is_finite().then_some(t.hours),
            earliest_h: t.earliest,
            latest_h: t.latest.is_finite().then_some(t.latest),
            rate_per_h: t.rate,
            basis: t.basis,
        }
    }
}

/// Visits made and needed in a month.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinMonthVisits))]
pub struct MonthVisits {
    /// `YYYY-MM`.
    pub month: String,
    /// Collections detected (the visits made).
    pub made: u32,
    /// Visits a round by need (emptying at the threshold) would have made.
    pub needed: u32,
    /// Visits made beyond need, bin by bin (Σ made − needed where positive): what a round by
    /// need saves.
    pub avoidable: u32,
    /// Visits missing, bin by bin (Σ needed − made where positive): bins left to overflow.
    pub missing: u32,
    /// Collections below the wasted-visit level.
    pub wasted: u32,
}

/// The bins of an area.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinsAnswer))]
pub struct Bins {
    /// The period's start and end (RFC 3339).
    pub from: String,
    /// End.
    pub to: String,
    /// The round's threshold (%).
    pub threshold: f64,
    /// The wasted-visit level (%).
    pub wasted_below: f64,
    /// Each bin.
    pub bins: Vec<Bin>,
    /// Month by month, all bins.
    pub months: Vec<MonthVisits>,
}

/// The bins of `catalog` (the caller's view) over the `days` before `now` (Unix s).
pub async fn analyse(
    catalog: &dyn Catalog,
    store: &dyn SeriesStore,
    config: &BinsConfig,
    tz: Tz,
    now: i64,
    days: u32,
) -> Result<Bins> {
    let filter =
        DeviceFilter { kind: agora_model::DeviceKind::parse(BIN_KIND).ok(), ..Default::default() };
    let mut devices = catalog.devices(&filter);
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    let from = now - i64::from(days) * 86_400;
    let readings = super::readings(catalog, store, &devices, "fill_level", from, now).await?;
    let month_of = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|x| x.with_timezone(&tz).format("%Y-%m").to_string())
            .unwrap_or_default()
    };
    let weekday = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|x| x.with_timezone(&tz).weekday().num_days_from_monday() as usize)
            .unwrap_or(0)
    };
    let gap = config.max_gap_s;
    // Per month: made, needed, wasted, avoidable, missing.
    let mut months: BTreeMap<String, [u32; 5]> = BTreeMap::new();
    let mut out = Vec::with_capacity(devices.len());
    for (d, levels) in devices.iter().zip(readings) {
        let levels: Vec<(i64, f64)> = levels;
        let found = bins::collections(&levels, COLLECTION_DROP, gap);
        let history = bins::cycle_rates(&levels, &found);
        let cycle_start = found.last().map_or(i64::MIN, |c| c.t);
        let cycle: Vec<(i64, f64)> =
            levels.iter().copied().filter(|p| p.0 >= cycle_start).collect();
        // Even the fast end of the rate's range not rising: no time to give at all.
        let eta = |target: f64| {
            bins::time_to(&cycle, &history, target, now)
                .filter(|t| t.earliest.is_finite())
                .map(Eta::from)
        };
        let covered: i64 =
            levels.windows(2).filter(|w| w[1].0 - w[0].0 <= gap).map(|w| w[1].0 - w[0].0).sum();
        // Month by month: visits made (collections), needed (rises ÷ threshold), wasted.
        let mut by_month: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        for &p in &levels {
            by_month.entry(month_of(p.0)).or_default().push(p);
        }
        for (m, pts) in by_month {
            let e = months.entry(m.clone()).or_default();
            let made: Vec<_> = found.iter().filter(|c| month_of(c.t) == m).collect();
            let needed = bins::visits_needed(&pts, COLLECTION_DROP, gap, config.threshold);
            let n = made.len() as u32;
            e[0] += n;
            e[1] += needed;
            e[2] += made.iter().filter(|c| c.before < config.wasted_below).count() as u32;
            e[3] += n.saturating_sub(needed);
            e[4] += needed.saturating_sub(n);
        }
        let rates: Vec<f64> = history.clone();
        out.push(Bin {
            id: d.id.to_string(),
            name: d.name.clone(),
            place: d.site.as_ref().map(|s| s.to_string()),
            commune: d.commune.as_ref().map(|c| c.to_string()),
            lat: d.lat,
            lon: d.lon,
            level: levels.last().map(|p| p.1),
            level_at: levels
                .last()
                .and_then(|p| chrono::DateTime::from_timestamp(p.0, 0))
                .map(|t| t.to_rfc3339()),
            rate_per_h: (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64),
            rate_by_weekday: bins::rate_by_weekday(&levels, COLLECTION_DROP, gap, weekday),
            collections: found.len(),
            level_at_collection: (!found.is_empty())
                .then(|| found.iter().map(|c| c.before).sum::<f64>() / found.len() as f64),
            wasted_visits: found.iter().filter(|c| c.before < config.wasted_below).count(),
            hours_full: bins::seconds_at_least(&levels, FULL, gap) as f64 / 3600.0,
            coverage: covered as f64 / (now - from).max(1) as f64,
            to_threshold: eta(config.threshold),
            to_full: eta(FULL),
        });
    }
    let iso =
        |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|x| x.to_rfc3339()).unwrap_or_default();
    Ok(Bins {
        from: iso(from),
        to: iso(now),
        threshold: config.threshold,
        wasted_below: config.wasted_below,
        bins: out,
        months: months
            .into_iter()
            .map(|(month, [made, needed, wasted, avoidable, missing])| MonthVisits {
                month,
                made,
                needed,
                avoidable,
                missing,
                wasted,
            })
            .collect(),
    })
}

/// A stop of a round.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinRoundStop))]
pub struct Stop {
    /// Order in the round, from 1.
    pub order: usize,
    /// The bin.
    pub id: String,
    /// Its place.
    pub place: Option<String>,
    /// Position.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Level now (%).
    pub level: Option<f64>,
    /// Hours until the threshold (0: already there).
    pub hours_to_threshold: f64,
    /// Metres from the previous stop (the depot for the first), detour included.
    pub leg_m: f64,
}

/// A collection round.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = BinRound))]
pub struct RoundPlan {
    /// Where it starts and ends.
    pub depot: (f64, f64),
    /// Bins due within this many hours.
    pub within_h: f64,
    /// The threshold (%).
    pub threshold: f64,
    /// Road distance ÷ distance as the crow flies.
    pub detour: f64,
    /// The stops, in order.
    pub stops: Vec<Stop>,
    /// Metres, depot to depot.
    pub metres: f64,
    /// Metres of the nearest-neighbour round (before 2-opt).
    pub nearest_neighbour_metres: f64,
    /// Bins due but without a position (not in the round).
    pub without_position: Vec<String>,
}

/// The round of the bins that reach the threshold within `within_h` hours.
pub fn round(found: &Bins, depot: (f64, f64), within_h: f64, detour: f64) -> Result<RoundPlan> {
    let due: Vec<&Bin> = found
        .bins
        .iter()
        .filter(|b| b.to_threshold.and_then(|e| e.hours).is_some_and(|h| h <= within_h))
        .collect();
    let (placed, unplaced): (Vec<&Bin>, Vec<&Bin>) =
        due.into_iter().partition(|b| b.lat.is_some() && b.lon.is_some());
    let pts: Vec<(f64, f64)> =
        placed.iter().map(|b| (b.lat.unwrap_or(0.0), b.lon.unwrap_or(0.0))).collect();
    let r = bins::round(depot, &pts, detour).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut prev = depot;
    let stops = r
        .order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let b = placed[i];
            let leg = bins::distance_m(prev, pts[i]) * detour;
            prev = pts[i];
            Stop {
                order: k + 1,
                id: b.id.clone(),
                place: b.place.clone(),
                lat: pts[i].0,
                lon: pts[i].1,
                level: b.level,
                hours_to_threshold: b.to_threshold.and_then(|e| e.hours).unwrap_or(0.0),
                leg_m: leg,
            }
        })
        .collect();
    Ok(RoundPlan {
        depot,
        within_h,
        threshold: found.threshold,
        detour,
        stops,
        metres: r.metres,
        nearest_neighbour_metres: r.nearest_neighbour_metres,
        without_position: unplaced.iter().map(|b| b.id.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(rate: f64, earliest: f64, latest: f64, hours: f64) -> TimeToLevel {
        TimeToLevel { level: 40.0, rate, hours, earliest, latest, basis: "cycle" }
    }

    #[test]
    fn a_level_that_does_not_rise_has_no_hours_never_a_non_number() {
        // The fitted rate falls, the fast end of its range rises: how soon it could, not when.
        let e = Eta::from(level(-0.05, 182.9, f64::INFINITY, f64::INFINITY));
        assert_eq!(e.hours, None);
        assert_eq!(e.latest_h, None);
        let json = serde_json::to_value(e).unwrap();
        assert!(json["hours"].is_null());
        assert_eq!(json["earliest_h"], 182.9);
        // A rising level keeps its figures.
        let e = Eta::from(level(1.5, 20.0, 60.0, 40.0));
        assert_eq!((e.hours, e.latest_h), (Some(40.0), Some(60.0)));
    }
}
