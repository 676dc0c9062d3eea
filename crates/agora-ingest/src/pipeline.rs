//! The ingest pipeline: harmonize decoded records (aliases, units, kinds, ranges, timestamps),
//! register new devices and series, write to the store, keep rejects as dead letters.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_model::{
    Clock, DeviceId, DeviceKind, InseeCode, PropertyDef, PropertyName, PropertyRegistry, SeriesId,
    SiteId, Timestamp, Value, ValueKind, quality,
};
use agora_store::catalog::{Device, NewReject, NewSeries, TokenInfo};
use agora_store::{BatchObserver, Catalog, SeriesStore, StoredBatch};
use parking_lot::RwLock;
use serde::Serialize;

use crate::Refusal;
use crate::format::{Decoders, Format, Message};
use crate::json::Observation;
use crate::record::{Decoded, Field, LineError, Record};

/// Pipeline settings.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Register unknown devices on their first write.
    pub auto_register_devices: bool,
    /// Register unknown property names on their first write (otherwise they are refused).
    pub auto_register_properties: bool,
    /// Create a place named by a new device's site tag when it does not exist (in the commune the
    /// device names), marked to review; otherwise the device is refused until the place is made.
    pub create_unknown_sites: bool,
    /// Refuse timestamps further than this in the future (clock skew allowance).
    pub max_future: Duration,
    /// Longest accepted string value, in bytes.
    pub max_string_len: usize,
    /// Raw-point retention of series of these properties (others: the store's default).
    pub retention_by_property: HashMap<String, Duration>,
    /// Decoders, with the byte layouts of each MQTT subscription.
    pub decoders: Decoders,
    /// Device kinds of ThingsBoard device types (the `type` a gateway gives when it connects a
    /// device), e.g. `"Air Sensor" → air_quality`. An unmapped type is the kind of the same name
    /// (lower-cased, spaces as `_`: `Streetlight` → `streetlight`); `default` is `sensor`.
    pub thingsboard_kinds: HashMap<String, DeviceKind>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            auto_register_devices: true,
            auto_register_properties: false,
            create_unknown_sites: false,
            max_future: Duration::from_secs(3600),
            max_string_len: 256,
            retention_by_property: HashMap::new(),
            decoders: Decoders::default(),
            thingsboard_kinds: HashMap::new(),
        }
    }
}

/// Where a batch comes from.
#[derive(Debug, Clone, Default)]
pub struct Source<'a> {
    /// Named in dead letters and logs, e.g. `http /write`.
    pub name: &'a str,
    /// The token that sent it (an ingest token may be bound to one device).
    pub token: Option<&'a TokenInfo>,
    /// Device kind for auto-registration when records carry none.
    pub default_kind: Option<&'a str>,
    /// Site for auto-registration when records carry none.
    pub default_site: Option<&'a str>,
    /// Commune for auto-registration when records carry none.
    pub default_commune: Option<&'a str>,
    /// The format of its input, with which refused input is decoded again (`None`: not
    /// replayable).
    pub format: Option<Format>,
    /// Do not keep refusals as dead letters (when replaying dead letters).
    pub no_dead_letters: bool,
    /// The one device this input may write for, besides the token's own binding: a replayed
    /// dead letter keeps the binding of the token that sent it.
    pub bound_device: Option<&'a DeviceId>,
    /// The one commune this input may write for, besides the token's own: a replayed dead letter
    /// keeps the commune of the token that sent it.
    pub bound_commune: Option<&'a InseeCode>,
    /// The input as received, in the source's own format (`format`). When a batch has more
    /// refusals than an answer lists, its dead letter keeps this body once instead of one entry
    /// per refusal.
    pub body: Option<&'a [u8]>,
}

impl Source<'_> {
    /// The one device this input may write for, if it is bound to one.
    pub fn binding(&self) -> Option<&DeviceId> {
        self.token.and_then(|t| t.device.as_ref()).or(self.bound_device)
    }

    /// The one commune this input may write for: its token's, unless the token is the
    /// Métropole's.
    pub fn commune(&self) -> Option<&InseeCode> {
        self.token.and_then(|t| t.grant.commune()).or(self.bound_commune)
    }
}

/// Refusals an answer lists, and a batch keeps one dead letter each for; beyond this, they are
/// counted, and the batch's dead letter is its body, kept once. So one request costs bounded
/// memory, answer and dead-letter log, however many fields it refuses.
pub const LISTED_REFUSALS: usize = 100;

/// Bytes of a body read into a dead letter: one more than the dead-letter log keeps, so that it
/// still sees the body was cut.
const DEAD_LETTER_BODY: usize = agora_store::catalog::MAX_REJECT_RAW + 1;

/// What happened to a batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Points stored.
    pub accepted: usize,
    /// Lines, records or fields refused: the first [`LISTED_REFUSALS`], in input order.
    pub rejected: Vec<LineError>,
    /// How many lines, records or fields were refused in all.
    pub rejected_count: usize,
    /// Devices registered by this batch.
    pub devices_created: usize,
    /// Series created by this batch.
    pub series_created: usize,
    /// Points stored with a quality flag (kept, but left out of reads and summaries).
    pub flagged: usize,
}

impl IngestReport {
    /// Count a refusal; list it (built only then) while fewer than [`LISTED_REFUSALS`] are.
    fn refuse(&mut self, make: impl FnOnce() -> LineError) {
        self.rejected_count += 1;
        if self.rejected.len() < LISTED_REFUSALS {
            self.rejected.push(make());
        }
    }

    /// Add the report of the next batch of the same input (a CSV file read in batches).
    pub fn absorb(&mut self, next: IngestReport) {
        self.accepted += next.accepted;
        self.rejected_count += next.rejected_count;
        let room = LISTED_REFUSALS.saturating_sub(self.rejected.len());
        self.rejected.extend(next.rejected.into_iter().take(room));
        self.devices_created += next.devices_created;
        self.series_created += next.series_created;
        self.flagged += next.flagged;
    }
}

/// Counters shared with `/metrics`.
#[derive(Debug, Default)]
pub struct IngestCounters {
    /// Points stored.
    pub points_accepted: AtomicU64,
    /// Lines, records or fields refused.
    pub points_rejected: AtomicU64,
    /// Batches handled.
    pub batches: AtomicU64,
    /// Points stored with a quality flag.
    pub points_flagged: AtomicU64,
    /// Points stored flagged `out_of_range` (a little outside their property's range).
    pub points_out_of_range: AtomicU64,
    /// Entries written to the dead-letter log.
    pub dead_letters: AtomicU64,
}

/// What the quality checks remember of a series: its last reading, and since when it repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QualityState {
    pub(crate) last_t: Timestamp,
    pub(crate) last_v: f64,
    pub(crate) same_since: Timestamp,
    pub(crate) jumps: u8,
}

impl QualityState {
    fn new(t: Timestamp, v: f64) -> Self {
        Self { last_t: t, last_v: v, same_since: t, jumps: 0 }
    }

    /// The flags of a new reading. Only readings newer than the last one are judged (late data
    /// is stored unflagged). After a jump the previous level is kept as reference, so the return
    /// to it is not flagged too; three jumps in a row are a new level, which is accepted.
    fn check(&mut self, c: &quality::Checks, t: Timestamp, v: f64) -> u8 {
        if t <= self.last_t {
            return 0;
        }
        let mut flags = 0;
        if v == self.last_v {
            if (t.as_nanos() - self.same_since.as_nanos()) / 1_000_000_000 > c.stuck_after_s {
                flags |= quality::STUCK;
            }
        } else {
            self.same_since = t;
        }
        if let Some(rate) = c.max_rate_per_s {
            let dt = ((t.as_nanos() - self.last_t.as_nanos()) as f64 / 1e9).max(60.0);
            if (v - self.last_v).abs() / dt > rate {
                flags |= quality::JUMP;
            }
        }
        self.last_t = t;
        if flags & quality::JUMP != 0 && self.jumps < 2 {
            self.jumps += 1;
        } else {
            self.jumps = 0;
            self.last_v = v;
        }
        flags
    }
}

/// The pipeline. One per process, shared by every source.
#[derive(Debug)]
pub struct Pipeline {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    registry: RwLock<PropertyRegistry>,
    clock: Arc<dyn Clock>,
    cfg: PipelineConfig,
    /// Counters for `/metrics`.
    pub counters: IngestCounters,
    /// Quality-check state per series (saved with the runtime state, see `save_state`).
    quality: parking_lot::Mutex<agora_model::IdMap<u32, QualityState>>,
    /// Flagged points per series, for fleet health (saved with the runtime state).
    flag_tally: parking_lot::Mutex<agora_model::IdMap<u32, FlagTally>>,
    /// ChirpStack deduplication ids of uplinks already stored (saved with the runtime state).
    uplinks: parking_lot::Mutex<crate::state::Seen>,
    /// Points just stored, for live views.
    live: tokio::sync::broadcast::Sender<Arc<StoredBatch>>,
    /// Called with every stored batch, in the writer's task (alert rules): nothing is lost.
    observer: std::sync::OnceLock<Arc<dyn BatchObserver>>,
    /// Held while a batch registers devices and series: writers arriving with the same new
    /// fleet wait for the first one and find its registrations, instead of each registering
    /// (and counting) the same devices in its own transaction.
    registering: tokio::sync::Mutex<()>,
    /// The way back to devices (attribute updates, RPC calls).
    pub devices: crate::thingsboard::hub::Hub,
}

/// How many points of a series were flagged, and when the last one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagTally {
    /// Points flagged as stuck.
    pub stuck: u64,
    /// Points flagged as jumps.
    pub jump: u64,
    /// Points a little outside their property's range, kept flagged.
    pub out_of_range: u64,
    /// Time of the latest flagged point.
    pub last: Timestamp,
}

/// A field of a record as a native JSON observation (for its dead letter).
fn observation<'a>(
    rec: &'a Record<'_>,
    f: &'a Field<'_>,
    time: Option<Timestamp>,
) -> Observation<'a> {
    Observation {
        device: &rec.device,
        time,
        property: &f.name,
        value: &f.value,
        unit: f.unit.as_deref(),
        kind: rec.kind.as_deref(),
        site: rec.site.as_deref(),
        commune: rec.commune.as_deref(),
    }
}

/// A batch on its way through the stages.
#[derive(Default)]
struct Batch {
    /// Its devices, in order of appearance.
    devices: Vec<BatchDevice>,
    /// The properties of its points (indexed by `Pending::prop`).
    props: Vec<PropertyDef>,
    /// Points that passed harmonization.
    pending: Vec<Pending>,
    /// Fields whose property name is not known yet (automatic registration on).
    unknown: Vec<Unknown>,
}

/// A field whose property is registered in stage 2.
struct Unknown {
    device: usize,
    line: u32,
    time: Timestamp,
    name: String,
    value: Value,
    unit: Option<String>,
}

/// A point that passed validation, waiting for its series id.
struct Pending {
    line: u32,
    device: usize,
    /// Index in the batch's list of properties (no allocation per point).
    prop: usize,
    time: Timestamp,
    value: Value,
    source_unit: Option<String>,
    /// Flags set while harmonizing (a reading a little out of range).
    flags: u8,
}

/// A property registered automatically, on its first write or, at start-up, from the series
/// the catalog holds.
fn auto_property(name: PropertyName, kind: ValueKind, unit: &str) -> PropertyDef {
    PropertyDef {
        name,
        unit: unit.to_owned(),
        kind,
        min: None,
        max: None,
        tolerance: None,
        aliases: vec![],
        description: "registered automatically on first write".into(),
        auto_registered: true,
    }
}

/// The index of `def` in the batch's property list, adding it on first use.
fn prop_index(props: &mut Vec<PropertyDef>, def: &PropertyDef) -> usize {
    match props.iter().position(|p| p.name == def.name) {
        Some(i) => i,
        None => {
            props.push(def.clone());
            props.len() - 1
        }
    }
}

/// A device of the batch, with what its records said about where it stands.
struct BatchDevice {
    id: DeviceId,
    kind: Option<String>,
    site: Option<String>,
    commune: Option<String>,
    line: u32,
    last: Timestamp,
}

impl Pipeline {
    /// A pipeline writing to `store` and registering in `catalog`.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        clock: Arc<dyn Clock>,
        cfg: PipelineConfig,
    ) -> Self {
        // Properties registered automatically in an earlier run are those of series the catalog
        // holds under a name the built-in catalogue does not know.
        let mut registry = PropertyRegistry::builtin();
        for s in catalog.all_series() {
            if registry.resolve(s.property.as_str()).is_none() {
                registry.insert(auto_property(s.property.clone(), s.kind, &s.unit));
            }
        }
        Self {
            catalog,
            store,
            registry: RwLock::new(registry),
            clock,
            cfg,
            counters: IngestCounters::default(),
            quality: parking_lot::Mutex::new(agora_model::IdMap::default()),
            flag_tally: parking_lot::Mutex::new(agora_model::IdMap::default()),
            uplinks: parking_lot::Mutex::new(crate::state::Seen::default()),
            live: tokio::sync::broadcast::channel(1024).0,
            observer: std::sync::OnceLock::new(),
            registering: tokio::sync::Mutex::new(()),
            devices: crate::thingsboard::hub::Hub::default(),
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The kind of a ThingsBoard device type (see [`PipelineConfig::thingsboard_kinds`]).
    pub fn kind_of_thingsboard_type(&self, tb_type: &str) -> DeviceKind {
        if let Some(k) = self.cfg.thingsboard_kinds.get(tb_type) {
            return k.clone();
        }
        let name = tb_type.trim().to_lowercase().replace([' ', '-'], "_");
        match DeviceKind::parse(&name) {
            Ok(k) if name != "default" => k,
            _ => DeviceKind::parse("sensor").expect("a valid kind"),
        }
    }

    /// A device a gateway connects (ThingsBoard's `v1/gateway/connect`): registered with the kind
    /// of its type if it is new (as data from it would register it), left as it is otherwise.
    pub async fn connect_device(
        &self,
        src: &Source<'_>,
        id: &DeviceId,
        tb_type: &str,
    ) -> Result<(), Refusal> {
        if let Some(t) = src.token {
            // Its bound device only; a commune's token, its commune's devices.
            self.may_write(t, id.as_str())?;
        }
        if self.catalog.device(id.as_str()).is_some() {
            return Ok(());
        }
        let kind = self.kind_of_thingsboard_type(tb_type);
        let d = BatchDevice {
            id: id.clone(),
            kind: Some(kind.as_str().to_owned()),
            site: None,
            commune: None,
            line: 1,
            last: self.clock.now(),
        };
        let dev = self.new_device(src, &d).await?;
        self.catalog.upsert_device(dev).await.map_err(|e| e.to_string())?;
        tracing::info!(device = %d.id, "registered a new device");
        Ok(())
    }

    /// Decode input in `format` (with the configured byte layouts, at the pipeline's clock).
    pub fn decode<'a>(&self, format: &Format, raw: &'a [u8]) -> Result<Message<'a>, Refusal> {
        self.cfg.decoders.decode(format, raw, self.clock.now())
    }

    /// Set the observer of stored batches (once).
    pub fn set_observer(&self, o: Arc<dyn BatchObserver>) {
        if self.observer.set(o).is_err() {
            tracing::warn!("a batch observer was already set");
        }
    }

    /// Every batch stored from now on. A receiver that falls more than 1,024 batches behind
    /// loses the oldest ones (`RecvError::Lagged`) rather than slowing ingestion down.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<StoredBatch>> {
        self.live.subscribe()
    }

    /// Whether an uplink with this ChirpStack deduplication id was stored already.
    pub fn uplink_seen(&self, id: &str) -> bool {
        self.uplinks.lock().contains(id)
    }

    /// Remember uplinks once they are stored.
    pub fn remember_uplinks(&self, ids: &[String]) {
        let mut seen = self.uplinks.lock();
        for id in ids {
            seen.remember(id);
        }
    }

    /// Save what the pipeline keeps in memory (quality checks' state, flag tallies, recent
    /// uplink ids) in the catalog, so that a restart forgets none of it.
    pub async fn save_state(&self) -> agora_store::Result<()> {
        let saved = crate::state::Saved {
            quality: self.quality.lock().iter().map(|(s, q)| (*s, *q)).collect(),
            tallies: self.flag_tally.lock().iter().map(|(s, t)| (*s, *t)).collect(),
            uplinks: self.uplinks.lock().ids(),
        };
        for (name, json) in saved.to_json() {
            self.catalog.save_runtime_state(name, &json).await?;
        }
        Ok(())
    }

    /// Restore what `save_state` saved (at start-up, before any ingestion). A state that cannot
    /// be read is reported and started afresh: it only refines checks.
    pub async fn load_state(&self) -> agora_store::Result<()> {
        let mut texts = Vec::new();
        for name in crate::state::Saved::NAMES {
            texts.push((name, self.catalog.runtime_state(name).await?));
        }
        let saved = crate::state::Saved::from_json(&texts);
        *self.quality.lock() = saved.quality.into_iter().collect();
        *self.flag_tally.lock() = saved.tallies.into_iter().collect();
        let mut seen = self.uplinks.lock();
        for id in &saved.uplinks {
            seen.remember(id);
        }
        Ok(())
    }

    /// Flag counts of the series that had flagged points (kept across restarts).
    pub fn flag_tallies(&self) -> Vec<(SeriesId, FlagTally)> {
        self.flag_tally.lock().iter().map(|(s, t)| (SeriesId(*s), *t)).collect()
    }

    /// The property registry (for the properties endpoint).
    pub fn properties(&self) -> Vec<PropertyDef> {
        self.registry.read().all().into_iter().cloned().collect()
    }

    /// The canonical unit of a property or alias, if known.
    pub fn unit_of(&self, name: &str) -> Option<String> {
        self.registry.read().resolve(name).map(|d| d.unit.clone())
    }

    /// The canonical name of a property or alias, if known.
    pub fn canonical_property(&self, name: &str) -> Option<String> {
        self.registry.read().resolve(name).map(|d| d.name.to_string())
    }

    /// Harmonize, register and store a decoded batch. Rejected parts are reported and kept as
    /// dead letters; an error means the store failed and nothing of the batch was acknowledged.
    ///
    /// The stages, in order: [`harmonize`](Self::harmonize) (devices, rights, time, property
    /// names, units and ranges), [`register_properties`](Self::register_properties) (names seen
    /// for the first time), [`resolve_series`](Self::resolve_series) (devices and series
    /// registered), [`flag`](Self::flag) (quality checks), [`store`](Self::store) (durable write,
    /// then observers and live views) and [`conclude`](Self::conclude) (last seen, metrics,
    /// dead letters).
    pub async fn ingest(
        &self,
        src: &Source<'_>,
        decoded: Decoded<'_>,
    ) -> agora_store::Result<IngestReport> {
        let mut errors = decoded.errors;
        let mut report = IngestReport { rejected_count: errors.len(), ..Default::default() };
        errors.truncate(LISTED_REFUSALS);
        report.rejected = errors;
        let mut batch = self.harmonize(src, decoded.records, &mut report);
        self.register_properties(&mut batch, &mut report);
        let ids = self.resolve_series(src, &batch, &mut report).await?;
        let Batch { devices, props, pending, .. } = batch;
        let points = self.flag(&props, pending, ids);
        report.accepted = points.len();
        report.flagged = points.iter().filter(|p| p.3 != 0).count();
        let out_of_range = points.iter().filter(|p| p.3 & quality::OUT_OF_RANGE != 0).count();
        self.counters.points_out_of_range.fetch_add(out_of_range as u64, Ordering::Relaxed);
        self.store(points).await?;
        self.conclude(src, devices, report).await
    }

    /// Stage 1: check each record's device, the token's rights and the time; resolve each field's
    /// property and convert its value to the canonical unit. Unknown names wait for stage 2.
    fn harmonize(
        &self,
        src: &Source<'_>,
        records: Vec<Record<'_>>,
        report: &mut IngestReport,
    ) -> Batch {
        let now = self.clock.now();
        let max_time = now.saturating_add_nanos(self.cfg.max_future.as_nanos() as i64);
        let mut batch = Batch::default();
        batch.pending.reserve(records.iter().map(|r| r.fields.len()).sum());
        let mut device_idx: HashMap<String, usize> = HashMap::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let reg = self.registry.read();
        for rec in records {
            let line = rec.line;
            // Refused records and values are kept as native JSON observations (one per field,
            // each with its unit, so a replay converts as the original would have), so that they
            // can be replayed once the cause is fixed, whatever format they came in.
            let reject =
                |reason: String, raw: String| LineError { line, reason, raw, raw_is_json: true };
            let as_json = |f, time| observation(&rec, f, time);
            let record_json = |time: Option<Timestamp>| {
                Observation::list(rec.fields.iter().map(|f| as_json(f, time)))
            };
            let di = match device_idx.get(rec.device.as_ref()) {
                Some(&i) => i,
                None => {
                    let id = match DeviceId::parse(&rec.device) {
                        Ok(id) => id,
                        Err(e) => {
                            report.refuse(|| reject(e.to_string(), record_json(rec.time)));
                            continue;
                        }
                    };
                    batch.devices.push(BatchDevice {
                        id,
                        kind: rec.kind.as_deref().map(str::to_owned),
                        site: rec.site.as_deref().map(str::to_owned),
                        commune: rec.commune.as_deref().map(str::to_owned),
                        line,
                        last: Timestamp::EPOCH,
                    });
                    device_idx.insert(rec.device.to_string(), batch.devices.len() - 1);
                    batch.devices.len() - 1
                }
            };
            if let Some(bound) = src.binding()
                && bound != &batch.devices[di].id
            {
                report.refuse(|| {
                    reject(
                        format!(
                            "this token may only write for device {bound}, not {}",
                            batch.devices[di].id
                        ),
                        record_json(rec.time),
                    )
                });
                continue;
            }
            if let Some(own) = src.commune()
                && batch.devices[di].last == Timestamp::EPOCH
                && let Err(why) = self.within_commune(own, &batch.devices[di])
            {
                report.refuse(|| reject(why, record_json(rec.time)));
                continue;
            }
            let time = rec.time.unwrap_or(now);
            if time > max_time {
                report.refuse(|| reject(
                    format!("timestamp {time} is in the future (more than {}s ahead of the server clock)", self.cfg.max_future.as_secs()),
                    record_json(Some(time)),
                ));
                continue;
            }
            batch.devices[di].last = batch.devices[di].last.max(time);
            for f in &rec.fields {
                let raw = || as_json(f, Some(time)).to_json();
                if let Value::Str(s) = &f.value
                    && s.len() > self.cfg.max_string_len
                {
                    report.refuse(|| {
                        reject(
                            format!(
                                "field {:?}: string longer than {} bytes",
                                f.name, self.cfg.max_string_len
                            ),
                            raw(),
                        )
                    });
                    continue;
                }
                // Each name is resolved once per batch (a batch repeats a handful of names).
                let cached = match names.get(f.name.as_ref()) {
                    Some(&i) => Some(i),
                    None => reg.resolve(&f.name).map(|def| {
                        let i = prop_index(&mut batch.props, def);
                        names.insert(f.name.to_string(), i);
                        i
                    }),
                };
                let Some(prop) = cached else {
                    if self.cfg.auto_register_properties {
                        batch.unknown.push(Unknown {
                            device: di,
                            line,
                            time,
                            name: f.name.to_string(),
                            value: f.value.clone(),
                            unit: f.unit.as_ref().map(|u| u.to_string()),
                        });
                    } else {
                        report.refuse(|| reject(
                            format!("unknown property {:?} (automatic registration of properties is off)", f.name),
                            raw(),
                        ));
                    }
                    continue;
                };
                let def = &batch.props[prop];
                match reg.normalize(def, f.value.clone(), f.unit.as_deref()) {
                    Ok((value, flags)) => batch.pending.push(Pending {
                        line,
                        device: di,
                        prop,
                        time,
                        value,
                        source_unit: f
                            .unit
                            .as_ref()
                            .filter(|u| **u != def.unit)
                            .map(|u| u.to_string()),
                        flags,
                    }),
                    Err(e) => report.refuse(|| reject(format!("field {:?}: {e}", f.name), raw())),
                }
            }
        }
        batch
    }

    /// Stage 2: register the property names seen for the first time (when automatic
    /// registration is on), and convert their values.
    fn register_properties(&self, batch: &mut Batch, report: &mut IngestReport) {
        for u in std::mem::take(&mut batch.unknown) {
            let Unknown { device, line, time, name, value, unit } = u;
            match self.register_property(&name, &value, unit.as_deref()) {
                Ok(def) => match self.registry.read().normalize(&def, value, None) {
                    Ok((value, flags)) => batch.pending.push(Pending {
                        line,
                        device,
                        prop: prop_index(&mut batch.props, &def),
                        time,
                        value,
                        source_unit: None,
                        flags,
                    }),
                    Err(e) => report.refuse(|| LineError {
                        line,
                        reason: format!("field {name:?}: {e}"),
                        raw: name,
                        raw_is_json: false,
                    }),
                },
                Err(Refusal(reason)) => {
                    report.refuse(|| LineError { line, reason, raw: name, raw_is_json: false })
                }
            }
        }
    }

    /// Stage 3: the series of each pending point, looked up once per (device, property) pair
    /// of the batch under one catalog lock; devices and series seen for the first time are
    /// registered, each kind in one transaction. A point whose device cannot be registered is
    /// refused (`None`).
    async fn resolve_series(
        &self,
        src: &Source<'_>,
        batch: &Batch,
        report: &mut IngestReport,
    ) -> agora_store::Result<Vec<Option<SeriesId>>> {
        let (devices, props, pending) = (&batch.devices, &batch.props, &batch.pending);
        // The batch's distinct pairs: (device, property, first point), and each point's pair.
        // A dense table of pairs when it is small (the common case: a few thousand devices and
        // a handful of properties), a map otherwise (a body of many devices and many names).
        let np = props.len().max(1);
        let dense = devices.len().saturating_mul(np) <= 1 << 20;
        let mut slot = if dense { vec![u32::MAX; devices.len() * np] } else { Vec::new() };
        let mut sparse: HashMap<(usize, usize), u32> = HashMap::new();
        let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
        let mut pair_of: Vec<u32> = Vec::with_capacity(pending.len());
        for (i, p) in pending.iter().enumerate() {
            let next = pairs.len() as u32;
            let k = if dense {
                let s = &mut slot[p.device * np + p.prop];
                if *s == u32::MAX {
                    *s = next;
                }
                *s
            } else {
                *sparse.entry((p.device, p.prop)).or_insert(next)
            };
            if k == next {
                pairs.push((p.device, p.prop, i));
            }
            pair_of.push(k);
        }
        drop((slot, sparse));
        let keys: Vec<(&str, &str)> = pairs
            .iter()
            .map(|&(d, p, _)| (devices[d].id.as_str(), props[p].name.as_str()))
            .collect();
        let mut pair_ids = self.catalog.lookup_series(&keys);
        let mut dead: HashMap<usize, String> = HashMap::new();
        let mut missing: Vec<usize> = (0..pairs.len()).filter(|&k| pair_ids[k].is_none()).collect();
        let _registering = if missing.is_empty() {
            None
        } else {
            // One registration at a time; what another writer registered meanwhile is found.
            let guard = self.registering.lock().await;
            let again: Vec<(&str, &str)> = missing.iter().map(|&k| keys[k]).collect();
            for (&k, id) in missing.iter().zip(self.catalog.lookup_series(&again)) {
                pair_ids[k] = id;
            }
            missing.retain(|&k| pair_ids[k].is_none());
            Some(guard)
        };
        drop(keys);
        if !missing.is_empty() {
            let mut checked = HashSet::new();
            let mut new_devices = Vec::new();
            for &k in &missing {
                let d = pairs[k].0;
                if !checked.insert(d) || self.catalog.device(devices[d].id.as_str()).is_some() {
                    continue;
                }
                match self.new_device(src, &devices[d]).await {
                    Ok(device) => new_devices.push((d, device)),
                    Err(Refusal(reason)) => {
                        dead.insert(d, reason);
                    }
                }
            }
            if !new_devices.is_empty() {
                self.register_devices(new_devices, &mut dead, report).await;
            }
            let todo: Vec<usize> =
                missing.into_iter().filter(|&k| !dead.contains_key(&pairs[k].0)).collect();
            if !todo.is_empty() {
                let new: Vec<NewSeries> = todo
                    .iter()
                    .map(|&k| {
                        let (d, p, first) = pairs[k];
                        NewSeries {
                            device: devices[d].id.clone(),
                            property: props[p].name.clone(),
                            kind: props[p].kind,
                            unit: props[p].unit.clone(),
                            source_unit: pending[first].source_unit.clone(),
                        }
                    })
                    .collect();
                let infos = self.catalog.create_series_many(&new).await?;
                for (&k, info) in todo.iter().zip(infos) {
                    report.series_created += 1;
                    if let Some(keep) = self.cfg.retention_by_property.get(info.property.as_str()) {
                        self.store.set_raw_retention(info.id, Some(*keep));
                    }
                    pair_ids[k] = Some(info.id);
                }
            }
        }
        let mut ids = Vec::with_capacity(pending.len());
        for (p, &k) in pending.iter().zip(&pair_of) {
            let id = pair_ids[k as usize];
            if id.is_none()
                && let Some(reason) = dead.get(&p.device)
            {
                let d = &devices[p.device];
                report.refuse(|| LineError {
                    line: p.line,
                    reason: reason.clone(),
                    raw: Observation {
                        device: d.id.as_str(),
                        time: Some(p.time),
                        property: props[p.prop].name.as_str(),
                        value: &p.value,
                        unit: None,
                        kind: d.kind.as_deref(),
                        site: d.site.as_deref(),
                        commune: d.commune.as_deref(),
                    }
                    .to_json(),
                    raw_is_json: true,
                });
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Register a batch's new devices in one transaction; when that fails, one by one, so that
    /// each refusal names its own device's reason.
    async fn register_devices(
        &self,
        new: Vec<(usize, Device)>,
        dead: &mut HashMap<usize, String>,
        report: &mut IngestReport,
    ) {
        let all: Vec<Device> = new.iter().map(|(_, d)| d.clone()).collect();
        if self.catalog.upsert_devices(all).await.is_ok() {
            for (_, d) in &new {
                tracing::info!(device = %d.id, "registered a new device");
            }
            report.devices_created += new.len();
            return;
        }
        for (i, d) in new {
            let id = d.id.clone();
            match self.catalog.upsert_device(d).await {
                Ok(()) => {
                    tracing::info!(device = %id, "registered a new device");
                    report.devices_created += 1;
                }
                Err(e) => {
                    dead.insert(i, e.to_string());
                }
            }
        }
    }

    /// Stage 4: the quality flags of each point (stuck sensor, implausible jump), from each
    /// series' recent readings; flagged points are kept and tallied for the fleet page.
    fn flag(
        &self,
        props: &[PropertyDef],
        pending: Vec<Pending>,
        ids: Vec<Option<SeriesId>>,
    ) -> StoredBatch {
        let checks: Vec<Option<quality::Checks>> =
            props.iter().map(|d| quality::checks(d.name.as_str())).collect();
        let mut points: StoredBatch = Vec::with_capacity(pending.len());
        {
            let mut states = self.quality.lock();
            for (p, id) in pending.into_iter().zip(ids) {
                let Some(id) = id else { continue };
                let flags = match (&checks[p.prop], &p.value) {
                    (Some(c), Value::F64(v)) => states
                        .entry(id.0)
                        .or_insert_with(|| QualityState::new(p.time, *v))
                        .check(c, p.time, *v),
                    _ => 0,
                } | p.flags;
                points.push((id, p.time, p.value, flags));
            }
        }
        if points.iter().any(|p| p.3 != 0) {
            let mut tally = self.flag_tally.lock();
            for (s, t, _, f) in points.iter().filter(|p| p.3 != 0) {
                let e = tally.entry(s.0).or_insert(FlagTally {
                    stuck: 0,
                    jump: 0,
                    out_of_range: 0,
                    last: *t,
                });
                e.stuck += u64::from(f & quality::STUCK != 0);
                e.jump += u64::from(f & quality::JUMP != 0);
                e.out_of_range += u64::from(f & quality::OUT_OF_RANGE != 0);
                e.last = e.last.max(*t);
            }
        }
        points
    }

    /// Stage 5: write the points durably, then hand them to the observer (alert rules) and the
    /// live views.
    async fn store(&self, points: StoredBatch) -> agora_store::Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        // Copied only while someone listens (live views) or observes (alert rules), so that
        // ingestion pays nothing otherwise. Both see the batch once it is durable.
        let listeners = self.live.receiver_count() > 0;
        let observer = self.observer.get();
        let copy = (listeners || observer.is_some()).then(|| Arc::new(points.clone()));
        self.store.write_flagged(points).await?;
        if let Some(batch) = copy {
            if let Some(o) = observer {
                o.stored(batch.clone());
            }
            if listeners {
                let _ = self.live.send(batch);
            }
        }
        Ok(())
    }

    /// Stage 6: when each device was last seen, the counters, and the dead letters of what was
    /// refused.
    async fn conclude(
        &self,
        src: &Source<'_>,
        devices: Vec<BatchDevice>,
        mut report: IngestReport,
    ) -> agora_store::Result<IngestReport> {
        let seen: Vec<(DeviceId, Timestamp)> = devices
            .into_iter()
            .filter(|d| d.last > Timestamp::EPOCH)
            .map(|d| (d.id, d.last))
            .collect();
        self.catalog.touch(&seen);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters.points_accepted.fetch_add(report.accepted as u64, Ordering::Relaxed);
        self.counters.points_flagged.fetch_add(report.flagged as u64, Ordering::Relaxed);
        self.counters.points_rejected.fetch_add(report.rejected_count as u64, Ordering::Relaxed);
        if report.rejected_count > 0 {
            report.rejected.sort_by_key(|e| e.line);
            tracing::debug!(
                source = src.name,
                rejected = report.rejected_count,
                "batch had rejected input"
            );
            if !src.no_dead_letters {
                self.keep_dead_letters(src, &report).await;
            }
        }
        Ok(report)
    }

    /// Keep a batch's refusals in the dead-letter log: one dead letter per listed refusal, or,
    /// when there were more than an answer lists, the body once in its own format (with a note
    /// of how many refusals there were and the first reason).
    async fn keep_dead_letters(&self, src: &Source<'_>, report: &IngestReport) {
        let binding = src.binding().cloned();
        let commune = src.commune().cloned();
        let dead_letter = |line, reason: String, raw: String, format| NewReject {
            source: src.name.to_owned(),
            line,
            reason,
            raw,
            format,
            token_device: binding.clone(),
            token_commune: commune.clone(),
        };
        let first = report.rejected.first().map_or("", |e| e.reason.as_str());
        let more = report.rejected_count - report.rejected.len();
        let listed = || {
            report.rejected.iter().map(|e| {
                let format = if e.raw_is_json {
                    Some("json".into())
                } else {
                    src.format.as_ref().map(Format::encode)
                };
                dead_letter(Some(e.line), e.reason.clone(), e.raw.clone(), format)
            })
        };
        let dead: Vec<NewReject> = match (more, src.body, &src.format) {
            (0, ..) => listed().collect(),
            // The whole body, once, when the log can keep it whole (so that it replays).
            (_, Some(body), Some(format)) if body.len() <= agora_store::catalog::MAX_REJECT_RAW => {
                vec![dead_letter(
                    None,
                    format!("{} refusals in this input, the first: {first}", report.rejected_count),
                    String::from_utf8_lossy(body).into_owned(),
                    Some(format.encode()),
                )]
            }
            // No body to keep (or too large to keep whole): the listed refusals, and a note of
            // the others.
            _ => {
                let note = format!(
                    "{more} more refusals in this input were counted but not kept (the first: {first})"
                );
                listed().chain([dead_letter(None, note, String::new(), None)]).collect()
            }
        };
        let n = dead.len() as u64;
        match self.catalog.add_rejects(dead).await {
            Ok(()) => {
                self.counters.dead_letters.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not keep rejected input in the dead-letter log")
            }
        }
    }

    /// Keep input refused before decoding (a body that is not JSON at all, say) as a dead letter.
    pub async fn reject_whole(&self, src: &Source<'_>, reason: &str, raw: &[u8]) {
        self.counters.points_rejected.fetch_add(1, Ordering::Relaxed);
        let r = NewReject {
            source: src.name.to_owned(),
            line: None,
            reason: reason.to_owned(),
            raw: String::from_utf8_lossy(&raw[..raw.len().min(DEAD_LETTER_BODY)]).into_owned(),
            format: src.format.as_ref().map(Format::encode),
            token_device: src.binding().cloned(),
            token_commune: src.commune().cloned(),
        };
        match self.catalog.add_rejects(vec![r]).await {
            Ok(()) => {
                self.counters.dead_letters.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "could not keep rejected input in the dead-letter log")
            }
        }
    }

    fn register_property(
        &self,
        name: &str,
        value: &Value,
        unit: Option<&str>,
    ) -> Result<PropertyDef, Refusal> {
        let pname =
            PropertyName::parse(name).map_err(|e| format!("cannot register property: {e}"))?;
        let mut reg = self.registry.write();
        if let Some(d) = reg.resolve(name) {
            return Ok(d.clone());
        }
        let def = auto_property(pname, value.kind(), unit.unwrap_or("1"));
        reg.insert(def.clone());
        tracing::info!(property = name, "registered a new property");
        Ok(def)
    }

    /// A place named by a new device's site tag, made in the commune the device names, marked to
    /// review (its name is its id, it has no position yet).
    async fn create_site_to_review(
        &self,
        src: &Source<'_>,
        d: &BatchDevice,
        id: &SiteId,
    ) -> Result<(), Refusal> {
        let Some(c) = d.commune.as_deref().or(src.default_commune) else {
            return Err(format!(
                "unknown site {:?} for new device {}: it can be created only in a commune — \
                 give the device a commune tag (its INSEE code), or create the site first \
                 (POST /api/v1/sites), then replay the dead letters (POST /api/v1/rejects/replay)",
                id.as_str(),
                d.id
            )
            .into());
        };
        let commune = InseeCode::parse(c).map_err(|e| e.to_string())?;
        if !self.catalog.communes().iter().any(|x| x.insee == commune) {
            return Err(format!(
                "unknown site {:?} and unknown commune {c:?} for new device {}: create the commune first",
                id.as_str(),
                d.id
            )
            .into());
        }
        let site = agora_store::catalog::Site {
            id: id.clone(),
            commune,
            name: id.to_string(),
            lat: None,
            lon: None,
            geometry: None,
            to_review: true,
        };
        if self.catalog.insert_site(site).await.map_err(|e| e.to_string())? {
            tracing::info!(site = %id, device = %d.id, "created a place from a device's site tag (to review)");
        }
        Ok(())
    }

    /// Whether `token` may write for the device named `device` (a topic or path names it): its
    /// bound device only, and a commune's token its commune's devices (or a new one, registered
    /// in its commune).
    pub fn may_write(&self, token: &TokenInfo, device: &str) -> Result<(), Refusal> {
        if let Some(bound) = &token.device
            && bound.as_str() != device
        {
            return Err(
                format!("this token may only write for device {bound}, not {device}").into()
            );
        }
        if let Some(own) = token.grant.commune()
            && let Some(theirs) = self.catalog.device_commune(device)
            && theirs.as_ref() != Some(own)
        {
            return Err(match theirs {
                Some(c) => format!(
                    "a token of commune {own} may not write for device {device} of commune {c}"
                ),
                None => format!(
                    "a token of commune {own} may not write for device {device}, which is in no \
                     commune (the Métropole's): place it in commune {own} first"
                ),
            }
            .into());
        }
        Ok(())
    }

    /// Whether a commune's token may write for a device: one of its commune, or a new one it
    /// names no other commune for (it is registered in the token's).
    fn within_commune(&self, own: &InseeCode, d: &BatchDevice) -> Result<(), String> {
        let theirs = match self.catalog.device_commune(d.id.as_str()) {
            Some(c) => c,
            None => match d.commune.as_deref() {
                Some(c) => Some(InseeCode::parse(c).map_err(|e| e.to_string())?),
                None => return Ok(()),
            },
        };
        match theirs {
            Some(c) if &c == own => Ok(()),
            Some(c) => Err(format!(
                "a token of commune {own} may not write for device {} of commune {c}",
                d.id
            )),
            None => Err(format!(
                "a token of commune {own} may not write for device {}, which is in no commune \
                 (the Métropole's): place it in commune {own} first",
                d.id
            )),
        }
    }

    /// The catalogue entry of a device met for the first time, or why it cannot be registered.
    async fn new_device(&self, src: &Source<'_>, d: &BatchDevice) -> Result<Device, Refusal> {
        if !self.cfg.auto_register_devices {
            return Err(format!(
                "unknown device {} (automatic registration of devices is off)",
                d.id
            )
            .into());
        }
        let kind_s = d.kind.as_deref().or(src.default_kind).unwrap_or("sensor");
        let kind = DeviceKind::parse(kind_s).map_err(|e| e.to_string())?;
        let site = match d.site.as_deref().or(src.default_site) {
            Some(s) => {
                let id = SiteId::parse(s).map_err(|e| e.to_string())?;
                if !self.catalog.sites().iter().any(|x| x.id == id) && self.cfg.create_unknown_sites
                {
                    self.create_site_to_review(src, d, &id).await?;
                }
                if !self.catalog.sites().iter().any(|x| x.id == id) {
                    return Err(format!(
                        "unknown site {s:?} for new device {}: create the site first \
                         (POST /api/v1/sites {{\"id\": \"{s}\", \"commune\": \"<INSEE code>\", \
                         \"name\": …}}), then replay the dead letters (POST /api/v1/rejects/replay)",
                        d.id
                    )
                    .into());
                }
                Some(id)
            }
            None => None,
        };
        let own = src.commune().map(|c| c.as_str());
        let commune = match d.commune.as_deref().or(src.default_commune).or(own) {
            Some(c) => {
                let code = InseeCode::parse(c).map_err(|e| e.to_string())?;
                if !self.catalog.communes().iter().any(|x| x.insee == code) {
                    return Err(format!(
                        "unknown commune {c:?} for new device {}: create the commune first",
                        d.id
                    )
                    .into());
                }
                Some(code)
            }
            None => site
                .as_ref()
                .and_then(|s| self.catalog.sites().into_iter().find(|x| &x.id == s))
                .map(|s| s.commune),
        };
        let site_commune = site
            .as_ref()
            .and_then(|s| self.catalog.sites().into_iter().find(|x| &x.id == s))
            .map(|s| s.commune);
        if let (Some(own), Some(c)) = (src.commune(), &site_commune)
            && own != c
        {
            return Err(format!(
                "a token of commune {own} may not place device {} on a site of commune {c}",
                d.id
            )
            .into());
        }
        if let (Some(own), Some(c)) = (src.commune(), &commune)
            && own != c
        {
            return Err(format!(
                "a token of commune {own} may not register device {} in commune {c}",
                d.id
            )
            .into());
        }
        let (lat, lon) = site
            .as_ref()
            .and_then(|s| self.catalog.sites().into_iter().find(|x| &x.id == s))
            .map_or((None, None), |s| (s.lat, s.lon));
        Ok(Device {
            id: d.id.clone(),
            kind,
            name: None,
            site,
            commune,
            lat,
            lon,
            metadata: serde_json::json!({"registered_by": src.name, "first_line": d.line}),
            created_at: self.clock.now(),
            last_seen: None,
        })
    }
}
