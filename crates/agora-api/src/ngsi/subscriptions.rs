//! NGSI-LD subscriptions (ETSI GS CIM 009 §5.8, `/ngsi-ld/v1/subscriptions`): an integrator
//! names the entities and attributes to watch (`entities`, `watchedAttributes`, `q`, `geoQ`)
//! and an HTTP endpoint; agora POSTs a `Notification` there as matching data is stored.
//!
//! Notifications go through the alerts' delivery machinery ([`agora_alerts::Outbound`]): the
//! same client and egress policy (no internal address unless allow-listed), the same retries
//! with a doubling delay, and every attempt in the action log (`/api/v1/deliveries`, action
//! `ngsi-ld`). A notification shows the entities as they are when it is sent, in the
//! subscription's format and context, and only what the subscription's maker may see: its
//! token's or person's commune, and nothing once that token is revoked or expired.
//!
//! The ingest path only hands each stored batch over (a channel); matching runs on its own
//! thread: per point, one look-up of what the series is (cached); per changed entity, the
//! subscriptions of its type. `throttling` holds a subscription's next notification until the
//! period has passed, then sends the entities that changed meanwhile, as they are then.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use agora_interop::jsonld::Pattern;
use agora_interop::ngsi as q;
use agora_model::permissions::{Action, Grant};
use agora_model::{SeriesId, Timestamp};
use agora_store::alerts::{Delivery, StoredSubscription};
use agora_store::catalog::tenant::TenantView;
use agora_store::{BatchObserver, Catalog, SeriesStore, StoredBatch};
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value as Json, json};

use super::{
    Ask, Entity, EntityRow, Form, GeoQuery, NgsiError, NgsiResult, Want, attribute_of, build,
    context_of, geo_query, iri_in, params_of, render, respond, type_of,
};
use crate::policy::{Principal, Scoped, Who};

/// Most subscriptions agora keeps.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 10_000;
/// Most items in a subscription's lists (entities, watched attributes, notified attributes).
const MAX_ITEMS: usize = 100;
/// Most subscriptions one token or person keeps.
const MAX_PER_OWNER: usize = 1_000;
/// Largest subscription, as sent (JSON).
const MAX_BODY: usize = 64 << 10;
/// Most contexts a subscription names.
const MAX_CONTEXTS: usize = 3;
/// Stored batches waiting for the notifier; beyond, batches are skipped.
const BACKLOG: usize = 4_096;
/// Notifications delivered at once (with their retries); the others wait their turn.
const MAX_SENDING: usize = 64;
/// Most entities one notification carries; more are sent in further notifications.
const MAX_PER_NOTIFICATION: usize = 1_000;

/// One entity selector of a subscription.
#[derive(Debug)]
struct Selector {
    type_iri: String,
    id: Option<String>,
    pattern: Option<Pattern>,
}

/// What a subscription watches and how it notifies, read from its body.
struct Spec {
    entities: Vec<Selector>,
    watched: Option<Vec<String>>,
    q: Option<q::Query>,
    geo: Option<GeoQuery>,
    /// The attributes notified (IRIs); `None`: all.
    attrs: Option<Vec<String>>,
    ask: Ask,
    uri: String,
    throttle: Duration,
    expires: Option<i64>,
    active: bool,
}

/// A subscription's counters, as `notification` shows them.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counters {
    times_sent: u64,
    times_failed: u64,
    last_notification: Option<String>,
    last_success: Option<String>,
    last_failure: Option<String>,
    last_failure_reason: Option<String>,
}

/// What a subscription is waiting to send.
#[derive(Default)]
struct Waiting {
    /// When the last notification went.
    last_sent: Option<Instant>,
    /// Entities changed while throttled.
    pending: BTreeSet<String>,
    /// A flush is scheduled for when the throttle ends.
    scheduled: bool,
}

struct Sub {
    id: String,
    /// As made, with its context and base URL (what is stored).
    stored: Json,
    owner: String,
    /// What the owner may see; `None`: the owner is gone (token revoked or expired).
    grant: RwLock<Option<Grant>>,
    /// The catalogue as the owner sees it (its commune's, through a `TenantView`).
    seen: RwLock<Option<Arc<dyn Catalog>>>,
    spec: Spec,
    counters: Mutex<Counters>,
    waiting: Mutex<Waiting>,
    /// The names its `q` uses, expanded with its context.
    names: Mutex<HashMap<String, String>>,
}

impl Sub {
    fn live(&self, now_ns: i64) -> bool {
        self.spec.active && self.spec.expires.is_none_or(|e| e > now_ns)
    }
}

/// What a series is, as a subscription sees it.
#[derive(Clone)]
struct Target {
    entity: Arc<str>,
    type_iri: Arc<str>,
    device: Arc<str>,
    attr: Arc<str>,
    /// The model's domain (where attribute names are read).
    domain: &'static str,
    /// The subscriptions that may concern its entity (from the index it was made with).
    candidates: Arc<[Arc<Sub>]>,
    /// The entity's number in the notifier's thread (its place in a batch's changes).
    slot: u32,
}

/// Where one measured attribute of an entity comes from.
struct AttrSource {
    iri: String,
    series: SeriesId,
    property: String,
    factor: f64,
    unit: Option<&'static str>,
}

/// The subscriptions by what they select: an entity id, a type (with an id pattern or not),
/// or attributes only.
#[derive(Default)]
struct Index {
    by_id: HashMap<String, Vec<Arc<Sub>>>,
    by_type: HashMap<String, Vec<Arc<Sub>>>,
    rest: Vec<Arc<Sub>>,
}

impl Index {
    fn of(subs: &BTreeMap<String, Arc<Sub>>) -> Index {
        let mut ix = Index::default();
        for s in subs.values() {
            if s.spec.entities.is_empty() {
                ix.rest.push(s.clone());
            }
            for e in &s.spec.entities {
                match (&e.id, &e.pattern) {
                    (Some(id), None) => ix.by_id.entry(id.clone()).or_default().push(s.clone()),
                    _ => ix.by_type.entry(e.type_iri.clone()).or_default().push(s.clone()),
                }
            }
        }
        ix
    }

    fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.by_type.is_empty() && self.rest.is_empty()
    }

    /// The subscriptions that may concern a change of this entity, each once.
    fn candidates(&self, t: &Target, out: &mut Vec<Arc<Sub>>) {
        out.clear();
        out.extend(self.by_id.get(&*t.entity).into_iter().flatten().cloned());
        out.extend(self.by_type.get(&*t.type_iri).into_iter().flatten().cloned());
        out.extend(self.rest.iter().cloned());
        out.sort_by_key(|s| Arc::as_ptr(s) as usize);
        out.dedup_by(|a, b| Arc::ptr_eq(a, b));
    }
}

/// An entity's attributes for a subscription's `q`, read without building the entity: the
/// batch's readings, else the latest stored; other attributes (`name`, `dateObserved`…) from
/// the entity built in full.
struct LightRow<'a> {
    ctx: &'a agora_interop::jsonld::Context,
    attrs: &'a [AttrSource],
    change: &'a Change,
    store: &'a dyn SeriesStore,
    full: &'a dyn Fn() -> Option<Arc<Entity>>,
    /// The IRIs of the attributes an entity has besides its measured ones.
    others: &'a [String],
    /// Names already expanded with the subscription's context.
    names: &'a Mutex<HashMap<String, String>>,
}

impl agora_interop::sta::filter::Row for LightRow<'_> {
    fn get(&self, path: &[String]) -> agora_interop::sta::filter::Val {
        use agora_interop::sta::filter::Val;
        let Some(first) = path.first() else { return Val::Null };
        let iri = {
            let mut names = self.names.lock();
            match names.get(first) {
                Some(i) => i.clone(),
                None => {
                    let i = self.ctx.expand(first);
                    names.insert(first.clone(), i.clone());
                    i
                }
            }
        };
        let Some(a) = self.attrs.iter().find(|a| a.iri == iri) else {
            // Not measured: one of the few other attributes an entity has, or none.
            if !self.others.contains(&iri) {
                return Val::Null;
            }
            return match (self.full)() {
                Some(e) => EntityRow(&e, self.ctx).get(path),
                None => Val::Null,
            };
        };
        let (t, value) = match self.change.reading(&iri) {
            Some((t, v)) => (t, super::property_value(&a.property, v.clone(), a.factor)),
            None => match self.store.latest(&[a.series]).into_iter().next().flatten() {
                Some((t, v)) => (t, super::property_value(&a.property, v, a.factor)),
                None => return Val::Null,
            },
        };
        match path.get(1).map(String::as_str) {
            None => super::json_val(&value),
            Some("observedAt") => Val::Time(t.as_nanos()),
            Some("unitCode") => a.unit.map_or(Val::Null, |u| Val::Str(u.to_owned())),
            Some(_) => {
                let mut cur = &value;
                for p in &path[1..] {
                    match cur.get(p) {
                        Some(v) => cur = v,
                        None => return Val::Null,
                    }
                }
                super::json_val(cur)
            }
        }
    }
}

/// An entity's measured attributes (by its device's series).
fn sources_of(catalog: &dyn Catalog, t: &Target) -> Vec<AttrSource> {
    catalog
        .device_series(&t.device)
        .into_iter()
        .filter(|x| !agora_model::is_device_internal(x.property.as_str()))
        .map(|x| {
            let prop = x.property.to_string();
            let (name, unit, factor) = attribute_of(&prop);
            let iri = iri_in(t.domain, if prop == "lamp_on" { "powerState" } else { name });
            AttrSource { iri, series: x.id, property: prop.clone(), factor, unit }
        })
        .collect()
}

/// What one batch changed in one entity: its attributes, and their newest readings in the
/// batch (time, value) by attribute.
struct Change {
    target: Target,
    readings: Vec<(Arc<str>, Timestamp, agora_model::Value)>,
}

impl Change {
    /// The batch's newest reading of an attribute.
    fn reading(&self, iri: &str) -> Option<(Timestamp, &agora_model::Value)> {
        self.readings.iter().find(|r| &*r.0 == iri).map(|r| (r.1, &r.2))
    }
}

/// The subscriptions and their notifier.
pub struct NgsiSubscriptions {
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn SeriesStore>,
    out: agora_alerts::Outbound,
    runtime: tokio::runtime::Handle,
    subs: RwLock<BTreeMap<String, Arc<Sub>>>,
    /// The same, by what they select (rebuilt at each change), and its generation.
    index: RwLock<(u64, Arc<Index>)>,
    /// Subscriptions with counters to save.
    dirty: Mutex<BTreeSet<String>>,
    batches: std::sync::mpsc::SyncSender<Arc<StoredBatch>>,
    /// Batches not matched because the notifier was behind.
    skipped: std::sync::atomic::AtomicU64,
    /// Notifications being delivered at once (each holds a permit through its attempts).
    sending: Arc<tokio::sync::Semaphore>,
    next_notification: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for NgsiSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NgsiSubscriptions").field("subs", &self.subs.read().len()).finish()
    }
}

impl BatchObserver for NgsiSubscriptions {
    fn stored(&self, batch: Arc<StoredBatch>) {
        if !self.subs.read().is_empty() {
            // Writers never wait: a notifier this far behind skips batches (and says so).
            if self.batches.try_send(batch).is_err() {
                let n = self.skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(
                        skipped = n + 1,
                        "NGSI-LD notifier behind: batches not matched against subscriptions"
                    );
                }
            }
        }
    }
}

/// The grant of a subscription's owner now, if it still has one.
fn grant_of(catalog: &dyn Catalog, owner: &str, now: Timestamp) -> Option<Grant> {
    grant_among(&Owners::of(catalog), catalog, owner, now)
}

/// The live tokens by id, read once for many subscriptions.
struct Owners(HashMap<String, agora_store::catalog::TokenInfo>);

impl Owners {
    fn of(catalog: &dyn Catalog) -> Owners {
        Owners(catalog.tokens().into_iter().map(|t| (t.id.clone(), t)).collect())
    }
}

/// The grant of `owner` now: a live, unexpired token's, or an enabled person's.
fn grant_among(
    tokens: &Owners,
    catalog: &dyn Catalog,
    owner: &str,
    now: Timestamp,
) -> Option<Grant> {
    if let Some(id) = owner.strip_prefix("token:") {
        let t = tokens.0.get(id)?;
        return t.expires_at.is_none_or(|e| e > now).then(|| t.grant.clone());
    }
    let id = owner.strip_prefix("person:")?;
    catalog.person(id).filter(|p| !p.disabled).map(|p| p.grant)
}

fn owner_of(who: &Principal) -> String {
    match (&who.token, &who.person) {
        (Some(t), _) => format!("token:{}", t.id),
        (None, Some(p)) => format!("person:{p}"),
        (None, None) => who.actor.clone(),
    }
}

impl NgsiSubscriptions {
    /// Load the stored subscriptions and start the notifier (on the current runtime).
    pub async fn start(
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn SeriesStore>,
        out: agora_alerts::Outbound,
    ) -> Result<Arc<Self>, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(BACKLOG);
        let me = Arc::new(Self {
            catalog,
            store,
            out,
            runtime: tokio::runtime::Handle::current(),
            subs: RwLock::new(BTreeMap::new()),
            index: RwLock::new((0, Arc::default())),
            dirty: Mutex::new(BTreeSet::new()),
            batches: tx,
            skipped: std::sync::atomic::AtomicU64::new(0),
            sending: Arc::new(tokio::sync::Semaphore::new(MAX_SENDING)),
            next_notification: std::sync::atomic::AtomicU64::new(0),
        });
        let now = me.out.clock.now();
        let stored = me.out.store.subscriptions().await.map_err(|e| e.to_string())?;
        for s in stored {
            match spec_of(&s.body, &me.out.egress) {
                Ok(spec) => {
                    let counters = serde_json::from_value(s.status.clone()).unwrap_or_default();
                    let sub = Sub {
                        id: s.id.clone(),
                        grant: RwLock::new(None),
                        seen: RwLock::new(None),
                        stored: s.body,
                        owner: s.owner,
                        spec,
                        counters: Mutex::new(counters),
                        waiting: Mutex::new(Waiting::default()),
                        names: Mutex::default(),
                    };
                    let sub = Arc::new(sub);
                    me.set_owner(&sub, now);
                    me.subs.write().insert(s.id, sub);
                }
                Err(e) => {
                    tracing::error!(subscription = %s.id, reason = %e.2, "a stored NGSI-LD subscription is invalid: it sends nothing until replaced or deleted")
                }
            }
        }
        me.reindex();
        let weak = Arc::downgrade(&me);
        std::thread::Builder::new()
            .name("agora-ngsi-subs".into())
            .spawn(move || Self::watch(weak, rx))
            .map_err(|e| format!("cannot start the NGSI-LD notifier thread: {e}"))?;
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let Some(me) = weak.upgrade() else { return };
                me.refresh_owners();
                me.save_counters().await;
            }
        });
        Ok(me)
    }

    /// What the subscription's owner may see now.
    fn set_owner(&self, s: &Sub, now: Timestamp) {
        self.set_grant(s, grant_of(self.catalog.as_ref(), &s.owner, now));
    }

    fn set_grant(&self, s: &Sub, grant: Option<Grant>) {
        let seen = grant.as_ref().map(|g| -> Arc<dyn Catalog> {
            if TenantView::needed(g) {
                Arc::new(TenantView::new(self.catalog.clone(), g.clone()))
            } else {
                self.catalog.clone()
            }
        });
        *s.grant.write() = grant;
        *s.seen.write() = seen;
    }

    /// Whether `s` is still the subscription under its id (not deleted, not replaced).
    fn current(&self, s: &Arc<Sub>) -> bool {
        self.subs.read().get(&s.id).is_some_and(|x| Arc::ptr_eq(x, s))
    }

    fn reindex(&self) {
        let ix = Index::of(&self.subs.read());
        let mut w = self.index.write();
        *w = (w.0 + 1, Arc::new(ix));
    }

    /// Tokens revoked or expired, people's roles changed: notifications follow.
    fn refresh_owners(&self) {
        let now = self.out.clock.now();
        let tokens = Owners::of(self.catalog.as_ref());
        let subs: Vec<Arc<Sub>> = self.subs.read().values().cloned().collect();
        for s in subs {
            let grant = grant_among(&tokens, self.catalog.as_ref(), &s.owner, now);
            self.set_grant(&s, grant);
        }
    }

    /// Save the counters that changed (every few seconds and at shutdown).
    pub async fn save_counters(&self) {
        let ids: Vec<String> = std::mem::take(&mut *self.dirty.lock()).into_iter().collect();
        if ids.is_empty() {
            return;
        }
        let status: Vec<(String, Json)> = {
            let subs = self.subs.read();
            ids.iter()
                .filter_map(|id| {
                    let s = subs.get(id)?;
                    Some((id.clone(), serde_json::to_value(&*s.counters.lock()).ok()?))
                })
                .collect()
        };
        if let Err(e) = self.out.store.save_subscription_status(&status).await {
            tracing::error!(error = %e, "saving NGSI-LD subscription counters failed");
        }
    }

    /// The notifier's thread: match each stored batch against the subscriptions.
    fn watch(me: Weak<Self>, rx: std::sync::mpsc::Receiver<Arc<StoredBatch>>) {
        let mut targets: HashMap<SeriesId, Option<Target>> = HashMap::new();
        let mut sources: HashMap<Arc<str>, Arc<Vec<AttrSource>>> = HashMap::new();
        let mut version = (u64::MAX, u64::MAX);
        let mut found = Vec::new();
        // Entities by number, and where each is in the batch's changes (0: not there).
        let mut slots: HashMap<Arc<str>, u32> = HashMap::new();
        let mut position: Vec<u32> = Vec::new();
        while let Ok(batch) = rx.recv() {
            let Some(me) = me.upgrade() else { return };
            let (generation, index) = me.index.read().clone();
            if index.is_empty() {
                continue;
            }
            let v = (me.catalog.devices_version(), generation);
            if v != version {
                // A device moved or changed kind (its series may be another entity now), or the
                // subscriptions changed (each series' candidates with them).
                targets.clear();
                if v.0 != version.0 {
                    sources.clear();
                }
                version = v;
            }
            let mut changed: Vec<Change> = Vec::new();
            for (sid, t, v, _) in batch.iter() {
                let target = targets.entry(*sid).or_insert_with(|| {
                    let mut t = target(me.catalog.as_ref(), *sid)?;
                    // A new series: its entity has a new attribute.
                    sources.remove(&t.entity);
                    let n = u32::try_from(slots.len()).unwrap_or(u32::MAX);
                    t.slot = *slots.entry(t.entity.clone()).or_insert(n);
                    index.candidates(&t, &mut found);
                    t.candidates = Arc::from(std::mem::take(&mut found));
                    Some(t)
                });
                // Only the entities some subscription may concern are followed.
                let Some(target) = target.as_ref().filter(|t| !t.candidates.is_empty()) else {
                    continue;
                };
                let slot = target.slot as usize;
                if position.len() <= slot {
                    position.resize(slot + 1, 0);
                }
                let at = match position[slot] {
                    0 => {
                        changed.push(Change { target: target.clone(), readings: Vec::new() });
                        position[slot] = changed.len() as u32;
                        changed.len() - 1
                    }
                    p => p as usize - 1,
                };
                let c = &mut changed[at];
                match c.readings.iter_mut().find(|r| Arc::ptr_eq(&r.0, &target.attr)) {
                    Some(r) if r.1 <= *t => (r.1, r.2) = (*t, v.clone()),
                    Some(_) => {}
                    None => c.readings.push((target.attr.clone(), *t, v.clone())),
                }
            }
            for c in &changed {
                position[c.target.slot as usize] = 0;
            }
            if !changed.is_empty() {
                me.on_changes(&changed, &mut sources);
            }
        }
    }

    fn on_changes(
        self: &Arc<Self>,
        changed: &[Change],
        sources: &mut HashMap<Arc<str>, Arc<Vec<AttrSource>>>,
    ) {
        let now = self.out.clock.now().as_nanos();
        // Entities built in full only where a subscription needs more than their readings.
        let full: std::cell::RefCell<HashMap<Arc<str>, Option<Arc<Entity>>>> =
            std::cell::RefCell::new(HashMap::new());
        let mut hits: BTreeMap<String, (Arc<Sub>, Vec<Arc<str>>)> = BTreeMap::new();
        let mut others: HashMap<&'static str, Vec<String>> = HashMap::new();
        for c in changed {
            let entity = &c.target.entity;
            for s in c.target.candidates.iter() {
                if !s.live(now) || !s.spec.selects(&c.target, &c.readings) {
                    continue;
                }
                // The owner's view of the device: only for an owner of a commune (a look-up
                // copies the device).
                match &*s.seen.read() {
                    None => continue,
                    Some(_) if s.grant.read().as_ref().is_some_and(|g| !TenantView::needed(g)) => {}
                    Some(seen) => {
                        if seen.device(&c.target.device).is_none() {
                            continue;
                        }
                    }
                }
                let build_full = || {
                    full.borrow_mut()
                        .entry(entity.clone())
                        .or_insert_with(|| self.as_in_batch(c))
                        .clone()
                };
                if let Some(q) = &s.spec.q {
                    let attrs = sources
                        .entry(entity.clone())
                        .or_insert_with(|| Arc::new(sources_of(self.catalog.as_ref(), &c.target)))
                        .clone();
                    let others =
                        others.entry(c.target.domain).or_insert_with(|| others_of(c.target.domain));
                    let row = LightRow {
                        ctx: &s.spec.ask.ctx,
                        attrs: &attrs,
                        change: c,
                        store: self.store.as_ref(),
                        full: &build_full,
                        others,
                        names: &s.names,
                    };
                    if !q.matches(&row) {
                        continue;
                    }
                }
                if let Some(g) = &s.spec.geo
                    && !build_full().is_some_and(|e| g.holds(&e))
                {
                    continue;
                }
                hits.entry(s.id.clone())
                    .or_insert_with(|| (s.clone(), Vec::new()))
                    .1
                    .push(entity.clone());
            }
        }
        if hits.is_empty() {
            return;
        }
        // Throttled subscriptions keep the ids for later; the others are sent the entities as
        // the batch left them, built once for all.
        let mut due: Vec<(Arc<Sub>, Vec<Arc<str>>)> = Vec::new();
        for (_, (s, ids)) in hits {
            if self.hold(&s, &ids) {
                continue;
            }
            due.push((s, ids));
        }
        if due.is_empty() {
            return;
        }
        let mut wanted: Vec<Arc<str>> =
            due.iter().flat_map(|(_, ids)| ids.iter().cloned()).collect();
        wanted.sort();
        wanted.dedup();
        let mut built: HashMap<Arc<str>, Arc<Entity>> = HashMap::new();
        for (id, e) in full.into_inner() {
            if let Some(e) = e {
                built.insert(id, e);
            }
        }
        wanted.retain(|id| !built.contains_key(id));
        built.extend(self.as_in_batch_many(&wanted, changed));
        for (s, ids) in due {
            let entities: Vec<Arc<Entity>> =
                ids.iter().filter_map(|id| built.get(id).cloned()).collect();
            self.send(&s, entities);
        }
    }

    /// An entity as a batch left it.
    fn as_in_batch(&self, c: &Change) -> Option<Arc<Entity>> {
        let want = Want { types: None, ids: Some(vec![c.target.entity.to_string()]) };
        let mut e = build(self.catalog.as_ref(), self.store.as_ref(), &want)
            .entities
            .into_iter()
            .find(|e| *e.id == *c.target.entity)?;
        overlay(&mut e, c);
        Some(Arc::new(e))
    }

    /// Entities as a batch left them: built from the catalogue and the latest values, with the
    /// batch's readings (not newer ones stored since).
    fn as_in_batch_many(
        &self,
        ids: &[Arc<str>],
        changed: &[Change],
    ) -> HashMap<Arc<str>, Arc<Entity>> {
        if ids.is_empty() {
            return HashMap::new();
        }
        let changed: HashMap<&str, &Change> =
            changed.iter().map(|c| (&*c.target.entity, c)).collect();
        let want = Want { types: None, ids: Some(ids.iter().map(|x| x.to_string()).collect()) };
        let mut out = HashMap::new();
        for mut e in build(self.catalog.as_ref(), self.store.as_ref(), &want).entities {
            let Some(c) = changed.get(e.id.as_str()) else { continue };
            overlay(&mut e, c);
            out.insert(c.target.entity.clone(), Arc::new(e));
        }
        out
    }

    /// Whether the subscription is throttled now; then the entities wait for the end of its
    /// period (a flush is scheduled), and are sent as they are then.
    fn hold(self: &Arc<Self>, s: &Arc<Sub>, ids: &[Arc<str>]) -> bool {
        let mut w = s.waiting.lock();
        let due = w.last_sent.map(|t| t + s.spec.throttle);
        match due {
            Some(due) if due > Instant::now() => {
                w.pending.extend(ids.iter().map(|x| x.to_string()));
                if !w.scheduled {
                    w.scheduled = true;
                    let (s, me) = (s.clone(), Arc::downgrade(self));
                    self.runtime.spawn(async move {
                        tokio::time::sleep_until(due.into()).await;
                        let Some(me) = me.upgrade() else { return };
                        let ids: Vec<String> = {
                            let mut w = s.waiting.lock();
                            w.scheduled = false;
                            w.last_sent = Some(Instant::now());
                            std::mem::take(&mut w.pending).into_iter().collect()
                        };
                        me.send_now(&s, ids);
                    });
                }
                true
            }
            _ => {
                w.last_sent = Some(Instant::now());
                false
            }
        }
    }

    /// Notify these entities as they are now, seen by the subscription's maker.
    fn send_now(self: &Arc<Self>, s: &Arc<Sub>, ids: Vec<String>) {
        let Some(grant) = s.grant.read().clone() else { return };
        let catalog: Arc<dyn Catalog> = if TenantView::needed(&grant) {
            Arc::new(TenantView::new(self.catalog.clone(), grant))
        } else {
            self.catalog.clone()
        };
        let want = Want { types: None, ids: Some(ids.clone()) };
        let mut world = build(catalog.as_ref(), self.store.as_ref(), &want).entities;
        world.retain(|e| ids.contains(&e.id));
        self.send(s, world.into_iter().map(Arc::new).collect());
    }

    /// Deliver the notification(s) of these entities.
    fn send(self: &Arc<Self>, s: &Arc<Sub>, entities: Vec<Arc<Entity>>) {
        if !s.live(self.out.clock.now().as_nanos()) || !self.current(s) {
            return;
        }
        for chunk in entities.chunks(MAX_PER_NOTIFICATION) {
            if chunk.is_empty() {
                continue;
            }
            let data: Vec<Json> = chunk
                .iter()
                .map(|e| {
                    let mut e = Entity::clone(e);
                    if let Some(a) = &s.spec.attrs {
                        e.attrs.retain(|(i, _)| a.contains(i));
                    }
                    let mut ask = s.spec.ask.clone_for_notification();
                    // The context goes once, at the notification's top.
                    ask.ld = false;
                    render(&e, &ask)
                })
                .collect();
            let n = self.next_notification.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let now = self.out.clock.now();
            let mut body = json!({
                "id": format!("urn:ngsi-ld:Notification:{}:{}", now.as_nanos(), n),
                "type": "Notification",
                "subscriptionId": s.id,
                "notifiedAt": now.to_rfc3339(),
                "data": data,
            });
            let link = format!(
                "<{}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
                s.spec.ask.ctx_urls[0]
            );
            let headers: Vec<(&'static str, String)> = if s.spec.ask.ld {
                body["@context"] = super::context_value(&s.spec.ask);
                vec![("content-type", "application/ld+json".into())]
            } else {
                vec![("content-type", "application/json".into()), ("link", link)]
            };
            let bytes = body.to_string().into_bytes();
            let (out, sub, dirty) = (self.out.clone(), s.clone(), Arc::downgrade(self));
            self.runtime.spawn(async move {
                deliver(out, sub, headers, bytes, dirty).await;
            });
        }
    }

    // ---- The API's operations ------------------------------------------------------------

    fn visible(&self, who: &Principal, s: &Sub) -> bool {
        who.grant.sees_all()
            || s.grant.read().as_ref().is_some_and(|g| g.commune() == who.grant.commune())
    }
}

/// POST a notification, with the alerts' retries; count and log every attempt.
async fn deliver(
    out: agora_alerts::Outbound,
    s: Arc<Sub>,
    headers: Vec<(&'static str, String)>,
    bytes: Vec<u8>,
    me: Weak<NgsiSubscriptions>,
) {
    let shown = agora_alerts::secrets::mask_url(&s.spec.uri);
    let Some(permit) = me.upgrade().map(|m| m.sending.clone()) else { return };
    let Ok(_permit) = permit.acquire_owned().await else { return };
    for attempt in 1..=out.attempts {
        if attempt > 1 {
            tokio::time::sleep(agora_alerts::actions::backoff(out.first_retry, attempt)).await;
        }
        // Deleted, replaced or paused meanwhile: nothing more goes to its endpoint.
        match me.upgrade() {
            Some(m) if m.current(&s) && s.live(out.clock.now().as_nanos()) => {}
            _ => return,
        }
        let r = agora_alerts::actions::post(
            &out.http,
            &out.egress,
            &s.spec.uri,
            None,
            &headers,
            bytes.clone(),
        )
        .await;
        let now = out.clock.now();
        let (ok, detail, fatal) = match r {
            Ok(d) => (true, d, false),
            Err(e) => (false, e.detail, e.fatal),
        };
        {
            let mut c = s.counters.lock();
            c.last_notification = Some(now.to_rfc3339());
            if ok {
                c.times_sent += 1;
                c.last_success = Some(now.to_rfc3339());
            } else {
                c.times_failed += 1;
                c.last_failure = Some(now.to_rfc3339());
                c.last_failure_reason = Some(detail.clone());
            }
        }
        if let Some(me) = me.upgrade() {
            me.dirty.lock().insert(s.id.clone());
        }
        if !ok {
            tracing::warn!(subscription = %s.id, target = %shown, attempt, %detail, "NGSI-LD notification failed");
        }
        let d = Delivery {
            id: 0,
            alert_id: 0,
            event: "notification".into(),
            action: "ngsi-ld".into(),
            target: format!("{} → {shown}", s.id),
            attempt,
            ok,
            detail,
            at: now,
        };
        if let Err(e) = out.store.add_delivery(&d).await {
            tracing::error!(error = %e, "could not log an NGSI-LD notification attempt");
        }
        if ok || fatal {
            return;
        }
    }
}

/// The batch's readings in place of the latest values.
fn overlay(e: &mut Entity, c: &Change) {
    for (iri, a) in &mut e.attrs {
        if let (Some((t, v)), super::Attr::Property { value, observed_at, .. }) =
            (c.reading(iri), a)
        {
            let property = e.sources.get(iri).map_or("", |x| x.property.as_str());
            let factor = e.sources.get(iri).map_or(1.0, |x| x.factor);
            *value = super::property_value(property, v.clone(), factor);
            *observed_at = Some(t);
        }
    }
}

/// The attributes an entity of a domain has besides its measured ones (see `build`).
fn others_of(domain: &str) -> Vec<String> {
    let mut v: Vec<String> = ["dateObserved", "name", "refDevice", "refPointOfInterest"]
        .iter()
        .map(|n| iri_in(domain, n))
        .collect();
    v.push(super::CORE_CTX.expand("location"));
    v
}

/// What a series is as an entity's attribute; `None` for a device's internals.
fn target(catalog: &dyn Catalog, sid: SeriesId) -> Option<Target> {
    let x = catalog.series_info(sid)?;
    if agora_model::is_device_internal(x.property.as_str()) {
        return None;
    }
    let d = catalog.device(x.device.as_str())?;
    let (ty, domain) = type_of(d.kind.as_str());
    let prop = x.property.as_str();
    let (name, ..) = attribute_of(prop);
    let attr = iri_in(domain, if prop == "lamp_on" { "powerState" } else { name });
    Some(Target {
        entity: format!("urn:ngsi-ld:{ty}:{}", d.id).into(),
        type_iri: iri_in(domain, ty).into(),
        device: d.id.to_string().into(),
        attr: attr.into(),
        domain,
        candidates: Arc::from(Vec::new()),
        slot: 0,
    })
}

impl Spec {
    /// Whether a change of these attributes of this entity concerns the subscription (before
    /// `q` and `geoQ`).
    fn selects(&self, t: &Target, attrs: &[(Arc<str>, Timestamp, agora_model::Value)]) -> bool {
        let entity_ok = self.entities.is_empty()
            || self.entities.iter().any(|e| {
                *e.type_iri == *t.type_iri
                    && e.id.as_ref().is_none_or(|i| **i == *t.entity)
                    && e.pattern.as_ref().is_none_or(|p| p.is_match(&t.entity))
            });
        entity_ok
            && self
                .watched
                .as_ref()
                .is_none_or(|w| attrs.iter().any(|a| w.iter().any(|x| x.as_str() == &*a.0)))
    }
}

impl Ask {
    fn clone_for_notification(&self) -> Ask {
        Ask {
            ctx: self.ctx.clone(),
            ctx_urls: self.ctx_urls.clone(),
            form: self.form,
            ld: self.ld,
            geojson: false,
        }
    }
}

// ---- Reading a subscription ------------------------------------------------------------------

fn unsupported(what: impl Into<String>) -> NgsiError {
    NgsiError(StatusCode::UNPROCESSABLE_ENTITY, "OperationNotSupported", what.into())
}

fn strings(v: &Json, what: &str) -> NgsiResult<Vec<String>> {
    let a = v.as_array().ok_or_else(|| NgsiError::bad(format!("{what} must be an array")))?;
    if a.is_empty() || a.len() > MAX_ITEMS {
        return Err(NgsiError::bad(format!("{what} holds 1 to {MAX_ITEMS} names")));
    }
    a.iter()
        .map(|x| {
            x.as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| NgsiError::bad(format!("{what} holds names (strings)")))
        })
        .collect()
}

/// Read a stored subscription (`{"subscription": …, "context": […], "base": …}`), or a new one
/// once wrapped so.
fn spec_of(stored: &Json, egress: &agora_alerts::Egress) -> NgsiResult<Spec> {
    let b = stored.get("subscription").and_then(Json::as_object).ok_or_else(|| {
        NgsiError(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "a subscription is a JSON object".into(),
        )
    })?;
    let urls: Vec<String> = stored
        .get("context")
        .and_then(Json::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let urls = if urls.is_empty() { vec![super::CORE_URL.to_owned()] } else { urls };
    if urls.len() > MAX_CONTEXTS {
        return Err(NgsiError::bad(format!(
            "a subscription names at most {MAX_CONTEXTS} contexts"
        )));
    }
    let ctx = context_of(&urls)?;
    for k in b.keys() {
        match k.as_str() {
            "id"
            | "type"
            | "subscriptionName"
            | "name"
            | "description"
            | "entities"
            | "watchedAttributes"
            | "q"
            | "geoQ"
            | "notification"
            | "throttling"
            | "expiresAt"
            | "isActive"
            | "status"
            | "jsonldContext"
            | "@context"
            | "notificationTrigger" => {}
            "timeInterval" => {
                return Err(unsupported(
                    "periodic notifications (timeInterval) are not offered: agora notifies as data is stored",
                ));
            }
            "temporalQ" | "scopeQ" | "csf" | "lang" | "datasetId" => {
                return Err(unsupported(format!("{k} is not supported in subscriptions")));
            }
            other => {
                return Err(NgsiError::bad(format!("unknown member {other:?} in a subscription")));
            }
        }
    }
    for k in ["subscriptionName", "name", "description"] {
        if let Some(v) = b.get(k)
            && v.as_str().is_none_or(|x| x.len() > 1024)
        {
            return Err(NgsiError::bad(format!("{k} is a text of at most 1,024 bytes")));
        }
    }
    if let Some(v) = b.get("notificationTrigger")
        && !v.as_array().is_some_and(|a| a.len() <= 16 && a.iter().all(Json::is_string))
    {
        return Err(NgsiError::bad("notificationTrigger is a list of at most 16 names"));
    }
    if let Some(t) = b.get("type")
        && t != "Subscription"
    {
        return Err(NgsiError::bad(format!("type must be \"Subscription\", not {t}")));
    }
    if let Some(id) = b.get("id")
        && !id.as_str().is_some_and(valid_id)
    {
        return Err(NgsiError::bad(
            "id must be a URI (urn:ngsi-ld:Subscription:…) of at most 256 characters, without spaces, controls, /, ?, #, % or quotes",
        ));
    }
    let mut entities = Vec::new();
    if let Some(e) = b.get("entities") {
        let a = e.as_array().ok_or_else(|| NgsiError::bad("entities must be an array"))?;
        if a.is_empty() || a.len() > MAX_ITEMS {
            return Err(NgsiError::bad(format!("entities holds 1 to {MAX_ITEMS} selectors")));
        }
        for x in a {
            if let Some(k) = x
                .as_object()
                .and_then(|o| o.keys().find(|k| !matches!(k.as_str(), "type" | "id" | "idPattern")))
            {
                return Err(NgsiError::bad(format!(
                    "unknown member {k:?} in entities: type, id, idPattern"
                )));
            }
            let ty = x.get("type").and_then(Json::as_str).ok_or_else(|| {
                NgsiError::bad(
                    "each of entities needs its type: {\"type\": \"AirQualityObserved\"}",
                )
            })?;
            let pattern = match x.get("idPattern") {
                None => None,
                Some(p) => Some(
                    Pattern::parse(
                        p.as_str().ok_or_else(|| NgsiError::bad("idPattern is a string"))?,
                    )
                    .map_err(NgsiError::bad)?,
                ),
            };
            let id = match x.get("id") {
                None => None,
                Some(i) => {
                    Some(i.as_str().ok_or_else(|| NgsiError::bad("id is a string"))?.to_owned())
                }
            };
            entities.push(Selector { type_iri: ctx.expand(ty), id, pattern });
        }
    }
    let watched = match b.get("watchedAttributes") {
        None => None,
        Some(w) => Some(strings(w, "watchedAttributes")?.iter().map(|x| ctx.expand(x)).collect()),
    };
    if entities.is_empty() && watched.is_none() {
        return Err(NgsiError::bad("a subscription needs entities or watchedAttributes"));
    }
    let query = match b.get("q") {
        None => None,
        Some(t) => {
            let t = t.as_str().ok_or_else(|| NgsiError::bad("q is a string"))?;
            // Some clients send q percent-encoded, as in a query string.
            let t = percent_decoded(t);
            Some(q::parse(&t).map_err(|e| {
                if e.unsupported { unsupported(e.message) } else { NgsiError::bad(e.message) }
            })?)
        }
    };
    let geo = match b.get("geoQ") {
        None => None,
        Some(g) => {
            let g = g.as_object().ok_or_else(|| NgsiError::bad("geoQ is an object"))?;
            if let Some(k) = g.keys().find(|k| {
                !matches!(k.as_str(), "georel" | "geometry" | "coordinates" | "geoproperty")
            }) {
                return Err(NgsiError::bad(format!(
                    "unknown member {k:?} in geoQ: georel, geometry, coordinates, geoproperty"
                )));
            }
            let mut p = HashMap::new();
            for (k, name) in
                [("georel", "georel"), ("geometry", "geometry"), ("geoproperty", "geoproperty")]
            {
                if let Some(v) = g.get(k) {
                    p.insert(
                        name.to_owned(),
                        v.as_str()
                            .ok_or_else(|| NgsiError::bad(format!("geoQ.{k} is a string")))?
                            .to_owned(),
                    );
                }
            }
            if let Some(c) = g.get("coordinates") {
                p.insert(
                    "coordinates".into(),
                    match c {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                );
            }
            geo_query(&p, &ctx)?
        }
    };
    let n = b.get("notification").and_then(Json::as_object).ok_or_else(|| {
        NgsiError::bad("a subscription needs its notification: {\"endpoint\": {\"uri\": …}}")
    })?;
    for k in n.keys() {
        match k.as_str() {
            "attributes" | "format" | "endpoint" | "sysAttrs" | "showChanges" | "status"
            | "timesSent" | "timesFailed" | "lastNotification" | "lastSuccess" | "lastFailure"
            | "lastFailureReason" => {}
            other => {
                return Err(NgsiError::bad(format!("unknown member {other:?} in notification")));
            }
        }
    }
    let attrs = match n.get("attributes") {
        None => None,
        Some(a) => {
            Some(strings(a, "notification.attributes")?.iter().map(|x| ctx.expand(x)).collect())
        }
    };
    let form = match n.get("format").map(|f| f.as_str()) {
        None | Some(Some("normalized")) => Form::Normalized,
        Some(Some("keyValues" | "simplified")) => Form::KeyValues,
        Some(Some("concise")) => Form::Concise,
        Some(other) => {
            return Err(NgsiError::bad(format!(
                "notification.format is normalized, keyValues or concise, not {other:?}"
            )));
        }
    };
    let e = n.get("endpoint").and_then(Json::as_object).ok_or_else(|| {
        NgsiError::bad("notification needs its endpoint: {\"uri\": \"https://…\"}")
    })?;
    for k in e.keys() {
        match k.as_str() {
            "uri" | "accept" => {}
            "receiverInfo" | "notifierInfo" => {
                return Err(unsupported(format!(
                    "notification.endpoint.{k} is not supported: put what the receiver needs in its URI"
                )));
            }
            other => {
                return Err(NgsiError::bad(format!(
                    "unknown member {other:?} in notification.endpoint"
                )));
            }
        }
    }
    let uri = e
        .get("uri")
        .and_then(Json::as_str)
        .ok_or_else(|| NgsiError::bad("notification.endpoint.uri is a URL"))?;
    let parsed = reqwest::Url::parse(uri).map_err(|err| {
        NgsiError::bad(format!(
            "notification.endpoint.uri {:?} is not a URL: {err}",
            agora_alerts::secrets::mask_url(uri)
        ))
    })?;
    match parsed.scheme() {
        "http" | "https" => {}
        "mqtt" | "mqtts" => {
            return Err(unsupported(
                "MQTT notification endpoints are not offered: use http or https",
            ));
        }
        other => {
            return Err(NgsiError::bad(format!(
                "notification.endpoint.uri: scheme {other:?} is not http or https"
            )));
        }
    }
    egress.check_url(&parsed).map_err(|r| {
        NgsiError::bad(format!(
            "notification.endpoint.uri {:?} {}",
            agora_alerts::secrets::mask_url(uri),
            r.0
        ))
    })?;
    let ld = match e.get("accept").map(|a| a.as_str()) {
        None | Some(Some("application/json")) => false,
        Some(Some("application/ld+json")) => true,
        Some(Some("application/geo+json")) => {
            return Err(unsupported("GeoJSON notifications are not offered"));
        }
        Some(other) => {
            return Err(NgsiError::bad(format!(
                "notification.endpoint.accept is application/json or application/ld+json, not {other:?}"
            )));
        }
    };
    let throttle = match b.get("throttling") {
        None => Duration::ZERO,
        Some(t) => {
            let x = t
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x <= 31_536_000.0)
                .ok_or_else(|| {
                    NgsiError::bad("throttling is a number of seconds between 0 and a year")
                })?;
            Duration::from_secs_f64(x)
        }
    };
    let expires = match b.get("expiresAt") {
        None | Some(Json::Null) => None,
        Some(t) => Some(
            t.as_str()
                .and_then(agora_interop::sta::filter::parse_time)
                .ok_or_else(|| NgsiError::bad("expiresAt is a date-time (2026-12-31T23:00:00Z)"))?,
        ),
    };
    let active = match b.get("isActive") {
        None => true,
        Some(Json::Bool(x)) => *x,
        Some(_) => return Err(NgsiError::bad("isActive is true or false")),
    };
    Ok(Spec {
        entities,
        watched,
        q: query,
        geo,
        attrs,
        ask: Ask { ctx, ctx_urls: urls, form, ld, geojson: false },
        uri: uri.to_owned(),
        throttle,
        expires,
        active,
    })
}

/// Whether a subscription id can be one: a URI of at most 256 characters that goes into a
/// path and a `Location` header as it is.
fn valid_id(i: &str) -> bool {
    i.contains(':')
        && i.len() <= 256
        && !i.chars().any(|c| c.is_control() || c.is_whitespace() || "/?#%\\\"'<>".contains(c))
}

/// `%XX` sequences decoded (others left as they are).
fn percent_decoded(t: &str) -> String {
    if !t.contains('%') {
        return t.to_owned();
    }
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| t.to_owned())
}

// ---- The API -----------------------------------------------------------------------------------

type SubsResult<T> = NgsiResult<T>;

fn service(s: &crate::AppState) -> SubsResult<&Arc<NgsiSubscriptions>> {
    s.ngsi_subscriptions.as_ref().ok_or_else(|| {
        NgsiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "OperationNotSupported",
            "subscriptions need alerting, which is off".into(),
        )
    })
}

/// Subscriptions belong to no department: a role bound to one (lighting, environment…) reads
/// them but does not make or change them.
fn may(who: &Principal, action: Action) -> SubsResult<()> {
    who.check(action, who.grant.commune(), None)
        .map_err(|e| NgsiError(StatusCode::FORBIDDEN, "BadRequestData", e.to_string()))
}

/// A subscription is a short document.
fn too_large(body: &[u8]) -> SubsResult<()> {
    if body.len() > MAX_BODY {
        return Err(NgsiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BadRequestData",
            format!("a subscription is at most {} KiB", MAX_BODY >> 10),
        ));
    }
    Ok(())
}

fn not_found(id: &str) -> NgsiError {
    NgsiError(StatusCode::NOT_FOUND, "ResourceNotFound", format!("no subscription {id}"))
}

/// A subscription as shown: as made, with its state and counters; credentials in the
/// endpoint's URL masked.
fn view(s: &Sub, now_ns: i64, ld: bool) -> Json {
    let mut o: Map<String, Json> =
        s.stored.get("subscription").and_then(Json::as_object).cloned().unwrap_or_default();
    o.remove("@context");
    o.insert("id".into(), s.id.clone().into());
    o.insert("type".into(), "Subscription".into());
    o.insert("isActive".into(), s.spec.active.into());
    let status = if !s.spec.active {
        "paused"
    } else if s.spec.expires.is_some_and(|e| e <= now_ns) {
        "expired"
    } else {
        "active"
    };
    o.insert("status".into(), status.into());
    if let Some(Json::Object(n)) = o.get_mut("notification") {
        let c = s.counters.lock().clone();
        if let Some(Json::Object(e)) = n.get_mut("endpoint") {
            e.insert("uri".into(), agora_alerts::secrets::mask_url(&s.spec.uri).into());
        }
        let failed = match (&c.last_success, &c.last_failure) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(ok), Some(ko)) => ko > ok,
        };
        n.insert("status".into(), if failed { "failed" } else { "ok" }.into());
        if let Json::Object(counters) = serde_json::to_value(&c).unwrap_or(Json::Null) {
            for (k, v) in counters {
                if !v.is_null() {
                    n.insert(k, v);
                }
            }
        }
    }
    o.insert("jsonldContext".into(), s.spec.ask.ctx_urls[0].clone().into());
    if ld {
        o.insert("@context".into(), super::context_value(&s.spec.ask));
    }
    Json::Object(o)
}

/// A new id: `urn:ngsi-ld:Subscription:` and 16 random hexadecimal digits.
fn new_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    format!("urn:ngsi-ld:Subscription:{}", hex::encode(b))
}

/// The subscription part of a body: read-only members dropped.
fn made(mut body: Json) -> SubsResult<Json> {
    let Some(o) = body.as_object_mut() else {
        return Err(NgsiError(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "a subscription is a JSON object".into(),
        ));
    };
    for k in ["@context", "status", "jsonldContext"] {
        o.remove(k);
    }
    if let Some(Json::Object(n)) = o.get_mut("notification") {
        for k in [
            "status",
            "timesSent",
            "timesFailed",
            "lastNotification",
            "lastSuccess",
            "lastFailure",
            "lastFailureReason",
        ] {
            n.remove(k);
        }
    }
    Ok(body)
}

impl NgsiSubscriptions {
    /// A subscription ready to go in (its owner's rights read).
    fn make(
        &self,
        id: &str,
        stored: Json,
        owner: String,
        spec: Spec,
        keep: Option<&Sub>,
    ) -> Arc<Sub> {
        let now = self.out.clock.now();
        let sub = Sub {
            id: id.to_owned(),
            grant: RwLock::new(None),
            seen: RwLock::new(None),
            stored,
            owner,
            spec,
            counters: Mutex::new(keep.map(|k| k.counters.lock().clone()).unwrap_or_default()),
            waiting: Mutex::new(Waiting::default()),
            names: Mutex::default(),
        };
        let sub = Arc::new(sub);
        self.set_owner(&sub, now);
        sub
    }

    async fn persist(&self, id: &str, stored: &Json, owner: &str) -> SubsResult<()> {
        let status = self
            .subs
            .read()
            .get(id)
            .and_then(|s| serde_json::to_value(&*s.counters.lock()).ok())
            .unwrap_or_else(|| json!({}));
        self.out
            .store
            .put_subscription(&StoredSubscription {
                id: id.to_owned(),
                body: stored.clone(),
                owner: owner.to_owned(),
                status,
                updated_at: self.out.clock.now(),
            })
            .await
            .map_err(|e| {
                NgsiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "InternalError",
                    format!("the subscription could not be stored: {e}"),
                )
            })
    }

    /// A subscription the caller may see.
    fn get(&self, who: &Principal, id: &str) -> SubsResult<Arc<Sub>> {
        self.subs
            .read()
            .get(id)
            .filter(|s| self.visible(who, s))
            .cloned()
            .ok_or_else(|| not_found(id))
    }
}

/// Create an NGSI-LD subscription
///
/// Notifications are POSTed to `notification.endpoint.uri` as matching data is stored, through
/// the alerts' delivery machinery (egress policy, retries, the action log). See the README.
#[utoipa::path(post, path = "/ngsi-ld/v1/subscriptions", tag = "standards", security(("bearer" = [])),
    request_body(content = Object, description = "An NGSI-LD Subscription: entities and/or watchedAttributes, q, geoQ, notification {attributes, format, endpoint {uri, accept}}, throttling, expiresAt, isActive"),
    responses((status = 201, description = "Created (`Location`)"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable", body = Object),
    ))]
pub(crate) async fn create(
    Scoped(s): Scoped,
    Who(who): Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    create_any(s, who, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

/// Create an NGSI-LD subscription (with a trailing slash)
#[utoipa::path(post, path = "/ngsi-ld/v1/subscriptions/", tag = "standards", security(("bearer" = [])),
    request_body(content = Object, description = "An NGSI-LD Subscription"),
    responses((status = 201, description = "Created (`Location`)"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 409, description = "ProblemDetails: AlreadyExists", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
        (status = 503, description = "ProblemDetails: LdContextNotAvailable", body = Object),
    ))]
pub(crate) async fn create_slash(
    scoped: Scoped,
    who: Who,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    create(scoped, who, headers, body).await
}

async fn create_any(
    s: crate::AppState,
    who: Principal,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> SubsResult<Response> {
    let subs = service(&s)?;
    may(&who, Action::Modify)?;
    too_large(&body)?;
    let base = crate::open_data::base_url(&s, &headers);
    let (json, ask) = super::provision_body(&headers, &body, &base)?;
    let mut json = made(json)?;
    let id = match json.get("id") {
        Some(Json::String(i)) => i.clone(),
        Some(_) => return Err(NgsiError::bad("id must be a URI")),
        None => new_id(),
    };
    json["id"] = id.clone().into();
    let stored = json!({"subscription": json, "context": ask.ctx_urls});
    let spec = spec_of(&stored, &subs.out.egress)?;
    if spec.expires.is_some_and(|e| e <= s.clock.now().as_nanos()) {
        return Err(NgsiError::bad("expiresAt is in the past"));
    }
    let owner = owner_of(&who);
    let sub = subs.make(&id, stored.clone(), owner.clone(), spec, None);
    {
        // Checked and taken under one lock: two requests with one id make one subscription.
        let mut all = subs.subs.write();
        if all.contains_key(&id) {
            return Err(NgsiError(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("subscription {id} exists"),
            ));
        }
        if all.len() >= MAX_SUBSCRIPTIONS {
            return Err(unsupported(format!(
                "agora keeps at most {MAX_SUBSCRIPTIONS} subscriptions: delete some first"
            )));
        }
        if all.values().filter(|x| x.owner == owner).count() >= MAX_PER_OWNER {
            return Err(unsupported(format!(
                "one token or person keeps at most {MAX_PER_OWNER} subscriptions: delete some first"
            )));
        }
        all.insert(id.clone(), sub);
    }
    subs.reindex();
    if let Err(e) = subs.persist(&id, &stored, &owner).await {
        subs.subs.write().remove(&id);
        subs.reindex();
        return Err(e);
    }
    let location = format!("/ngsi-ld/v1/subscriptions/{id}");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// List NGSI-LD subscriptions
#[utoipa::path(get, path = "/ngsi-ld/v1/subscriptions", tag = "standards", security(("bearer" = [])),
    params(("limit" = Option<String>, Query, description = "Page size (20 by default, at most 1,000)"),
        ("offset" = Option<String>, Query, description = "Subscriptions skipped"),
        ("count" = Option<String>, Query, description = "`true`: `NGSILD-Results-Count`")),
    responses((status = 200, description = "The subscriptions the caller may see", body = Object),
        (status = 400, description = "ProblemDetails: BadRequestData", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
    ))]
pub(crate) async fn list(
    Scoped(s): Scoped,
    Who(who): Who,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let run = || -> SubsResult<Response> {
        let subs = service(&s)?;
        let base = crate::open_data::base_url(&s, &headers);
        let p = params_of(raw.as_deref().unwrap_or(""))?;
        let ask = super::ask(&headers, &p, &base)?;
        let number = |k: &str, default: usize| -> SubsResult<usize> {
            p.get(k).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| NgsiError::bad(format!("{k} must be a whole number, not {v:?}")))
            })
        };
        let (limit, offset) = (number("limit", super::DEFAULT_LIMIT)?, number("offset", 0)?);
        if limit > super::MAX_LIMIT {
            return Err(NgsiError(
                StatusCode::FORBIDDEN,
                "TooManyResults",
                format!("limit {limit} is above {}: page with offset", super::MAX_LIMIT),
            ));
        }
        let now = s.clock.now().as_nanos();
        let all: Vec<Arc<Sub>> =
            subs.subs.read().values().filter(|x| subs.visible(&who, x)).cloned().collect();
        let page: Vec<Json> =
            all.iter().skip(offset).take(limit).map(|x| view(x, now, ask.ld)).collect();
        let mut extra = Vec::new();
        if p.get("count").map(String::as_str) == Some("true") {
            extra.push((
                header::HeaderName::from_static("ngsild-results-count"),
                all.len().to_string(),
            ));
        }
        if offset.saturating_add(limit) < all.len() && limit > 0 {
            extra.push((
                header::LINK,
                format!(
                    "<{base}/ngsi-ld/v1/subscriptions?limit={limit}&offset={}>; rel=\"next\"; type=\"application/ld+json\"",
                    offset + limit
                ),
            ));
        }
        let r = respond(StatusCode::OK, Json::Array(page), &ask, extra);
        Ok(r)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Retrieve an NGSI-LD subscription
#[utoipa::path(get, path = "/ngsi-ld/v1/subscriptions/{id}", tag = "standards", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 200, description = "The subscription, with its status and counters", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
    ))]
pub(crate) async fn one(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let run = || -> SubsResult<Response> {
        let subs = service(&s)?;
        let base = crate::open_data::base_url(&s, &headers);
        let ask = super::ask(&headers, &HashMap::new(), &base)?;
        let sub = subs.get(&who, &id)?;
        let r =
            respond(StatusCode::OK, view(&sub, s.clock.now().as_nanos(), ask.ld), &ask, Vec::new());
        Ok(r)
    };
    run().unwrap_or_else(IntoResponse::into_response)
}

/// Update an NGSI-LD subscription
///
/// The members sent replace the subscription's; `notification`'s members replace its own.
#[utoipa::path(patch, path = "/ngsi-ld/v1/subscriptions/{id}", tag = "standards", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    request_body(content = Object, description = "A fragment of the subscription"),
    responses((status = 204, description = "Updated"),
        (status = 400, description = "ProblemDetails: BadRequestData or InvalidRequest", body = Object),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
        (status = 415, description = "Neither application/json nor application/ld+json", body = Object),
        (status = 422, description = "ProblemDetails: OperationNotSupported", body = Object),
    ))]
pub(crate) async fn update(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let run = async {
        let subs = service(&s)?;
        may(&who, Action::Modify)?;
        let base = crate::open_data::base_url(&s, &headers);
        let old = subs.get(&who, &id)?;
        too_large(&body)?;
        let (fragment, ask) = super::provision_body(&headers, &body, &base)?;
        let fragment = made(fragment)?;
        if fragment.get("id").is_some_and(|i| *i != Json::String(id.clone())) {
            return Err(NgsiError::bad("a subscription's id cannot change"));
        }
        let mut json = old.stored.get("subscription").cloned().unwrap_or_else(|| json!({}));
        for (k, v) in fragment.as_object().into_iter().flatten() {
            match (k.as_str(), json.get_mut(k), v) {
                ("notification", Some(Json::Object(n)), Json::Object(patch)) => {
                    for (nk, nv) in patch {
                        n.insert(nk.clone(), nv.clone());
                    }
                }
                _ => json[k] = v.clone(),
            }
        }
        // The endpoint sent back as it was shown (credentials masked) keeps the real one.
        let shown = agora_alerts::secrets::mask_url(&old.spec.uri);
        if let Some(uri) = json.pointer_mut("/notification/endpoint/uri")
            && uri.as_str() == Some(shown.as_str())
        {
            *uri = Json::String(old.spec.uri.clone());
        }
        // A fragment in another context brings it: names are read with the one it was sent in.
        let context = if headers.contains_key(header::LINK)
            || headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|c| c.as_bytes().starts_with(b"application/ld+json"))
        {
            json!(ask.ctx_urls)
        } else {
            old.stored.get("context").cloned().unwrap_or(Json::Null)
        };
        let stored = json!({"subscription": json, "context": context});
        let spec = spec_of(&stored, &subs.out.egress)?;
        let new = subs.make(&id, stored.clone(), old.owner.clone(), spec, Some(&old));
        {
            // Replaced only if it is still the one read (not deleted or changed meanwhile).
            let mut all = subs.subs.write();
            match all.get(&id) {
                None => return Err(not_found(&id)),
                Some(x) if !Arc::ptr_eq(x, &old) => {
                    return Err(NgsiError(
                        StatusCode::CONFLICT,
                        "BadRequestData",
                        format!("subscription {id} changed meanwhile: read it again"),
                    ));
                }
                Some(_) => {}
            }
            all.insert(id.clone(), new.clone());
        }
        subs.reindex();
        if let Err(e) = subs.persist(&id, &stored, &old.owner).await {
            let mut all = subs.subs.write();
            if all.get(&id).is_some_and(|x| Arc::ptr_eq(x, &new)) {
                all.insert(id.clone(), old);
            }
            drop(all);
            subs.reindex();
            return Err(e);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Delete an NGSI-LD subscription
#[utoipa::path(delete, path = "/ngsi-ld/v1/subscriptions/{id}", tag = "standards", security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials", body = Object),
        (status = 403, description = "The caller may not", body = Object),
        (status = 404, description = "ProblemDetails: ResourceNotFound", body = Object),
    ))]
pub(crate) async fn delete(Scoped(s): Scoped, Who(who): Who, Path(id): Path<String>) -> Response {
    let run = async {
        let subs = service(&s)?;
        may(&who, Action::Delete)?;
        subs.get(&who, &id)?;
        subs.out.store.delete_subscription(&id).await.map_err(|e| {
            NgsiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "InternalError",
                format!("the subscription could not be deleted: {e}"),
            )
        })?;
        subs.subs.write().remove(&id);
        subs.reindex();
        Ok::<_, NgsiError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::percent_decoded;

    #[test]
    fn percent_encoded_queries_are_decoded_and_others_kept() {
        assert_eq!(percent_decoded("pm10%3E40%3BLAeq%3C70"), "pm10>40;LAeq<70");
        assert_eq!(percent_decoded("pm10>40"), "pm10>40");
        assert_eq!(percent_decoded("a%2"), "a%2");
        assert_eq!(percent_decoded("a%zz"), "a%zz");
    }
}
