//! Live updates for the dashboard as server-sent events (`GET /api/v1/live`).
//!
//! One feed task serves every connection: twice a second it takes the batches the pipeline
//! broadcast and keeps the newest value per series (`event: values`), and every five seconds it
//! computes every device's state once (`event: states`, only changes are sent). Each connection
//! only filters the shared frames for the devices and properties it watches, so a live client
//! costs no snapshot of its own. The feed runs while someone listens and stops with the last
//! listener.
//!
//! Live streams are capped in total and per client address; a stream opened with a token or a
//! session ends within seconds of its revocation; streams end when the server shuts down. A
//! connection too slow to take a frame before the next one skips it rather than slowing anyone.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_ingest::limits::{ConnectionCaps, ConnectionLimits, ConnectionPermit};
use agora_model::{
    DeviceId, DeviceKind, IdMap, InseeCode, PropertyName, SeriesId, SiteId, Timestamp, Value,
};
use agora_store::catalog::{Catalog, Device, DeviceFilter};
use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::AppState;
use crate::connections::ClientAddr;
use crate::doc::Reads;
use crate::doc::{BadRequest, Unavailable};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::policy::Scoped;
use crate::query::{CatalogParams, filter};
use crate::views::{Audience, DeviceState, snapshot};
use agora_query::device_state;

/// How often values are sent.
const VALUES_EVERY: Duration = Duration::from_millis(500);
/// How often device states are recomputed.
const STATES_EVERY: Duration = Duration::from_secs(5);
/// How often the public (the public map, kiosks) gets new values: citizens need no sub-second
/// updates, and hundreds of anonymous streams must cost little when a city's data flows fast.
const PUBLIC_VALUES_EVERY: Duration = Duration::from_secs(5);

/// The feed's two channels: frames for operators (every half second) and for the public.
type Feeds = (watch::Sender<Arc<Frame>>, watch::Sender<Arc<Frame>>);

/// Caps on live streams.
#[derive(Debug, Clone)]
pub struct LiveLimits {
    /// Streams open at once, in total and per client address.
    pub connections: ConnectionCaps,
    /// How often a stream opened with a token or session checks that it is still valid.
    pub recheck: Duration,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            connections: ConnectionCaps {
                total: 256,
                per_address: 8,
                per_network: 32,
                reserved: 0,
                trusted: agora_ingest::limits::AddrSet::loopback(),
            },
            recheck: Duration::from_secs(2),
        }
    }
}

/// The shared feed of live frames, and the count of live streams.
#[derive(Debug)]
pub struct LiveHub {
    limits: LiveLimits,
    slots: ConnectionLimits,
    /// The running feed, when someone listens.
    feed: Arc<Mutex<Option<Feeds>>>,
    /// What each series is for the streams that watch everything, per audience (operators,
    /// public): one table for all of them, not one per stream (hundreds of public streams would
    /// each hold one entry per series of the city).
    shared_resolved: [Mutex<Resolved>; 2],
    /// Computations of every device's state since start: one per interval for all streams.
    state_snapshots: std::sync::atomic::AtomicU64,
}

impl LiveHub {
    /// A hub with these limits; the feed starts with the first listener.
    pub fn new(limits: LiveLimits) -> Self {
        Self {
            slots: ConnectionLimits::new(limits.connections.clone()),
            limits,
            feed: Arc::default(),
            shared_resolved: Default::default(),
            state_snapshots: Default::default(),
        }
    }

    /// How many times every device's state was computed since start (for `/metrics`).
    pub fn state_snapshots(&self) -> u64 {
        self.state_snapshots.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Live streams open now.
    pub fn open(&self) -> usize {
        self.slots.open()
    }

    /// Listen to the feed of an audience, starting the feed if nobody listens.
    fn listen(&self, state: &AppState, audience: Audience) -> watch::Receiver<Arc<Frame>> {
        let pick = |f: &Feeds| match audience {
            Audience::Operator => f.0.subscribe(),
            Audience::Public => f.1.subscribe(),
        };
        let mut feed = self.feed.lock();
        if let Some(f) = feed.as_ref() {
            return pick(f);
        }
        let feeds: Feeds = (
            watch::channel(Arc::new(Frame::default())).0,
            watch::channel(Arc::new(Frame::default())).0,
        );
        let rx = pick(&feeds);
        *feed = Some(feeds.clone());
        // Subscribed now, not when the task first runs: nothing stored after this call is missed.
        let batches = state.pipeline.subscribe();
        tokio::spawn(run_feed(state.clone(), batches, feeds, self.feed.clone()));
        rx
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(LiveLimits::default())
    }
}

/// What the feed sends every half second.
#[derive(Debug, Default)]
struct Frame {
    /// The newest unflagged value of each series stored since the previous frame.
    values: Vec<(SeriesId, Timestamp, Value)>,
    /// Every device's state; the same until recomputed.
    states: Option<Arc<States>>,
    /// The `values` event's data for streams that watch everything, one per audience (operators,
    /// public), serialized once by the first stream that needs it and shared by all the others:
    /// the public map's hundreds of streams cost one serialization per frame, not hundreds.
    shared_values: [std::sync::OnceLock<Option<String>>; 2],
}

#[derive(Debug)]
struct States {
    /// Increases with each computation.
    seq: u64,
    devices: Vec<(Device, &'static str)>,
}

/// The feed: one task for every live stream, until the last one leaves or the server stops.
async fn run_feed(
    state: AppState,
    mut batches: tokio::sync::broadcast::Receiver<Arc<agora_store::StoredBatch>>,
    (tx, tx_public): Feeds,
    slot: Arc<Mutex<Option<Feeds>>>,
) {
    let mut tick = tokio::time::interval(VALUES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    let mut states: Option<Arc<States>> = None;
    let mut last_states: Option<Instant> = None;
    let mut newest: IdMap<u32, (Timestamp, Value)> = IdMap::default();
    // What the public has not been sent yet: the newest value of each series since its last frame.
    let mut newest_public: IdMap<u32, (Timestamp, Value)> = IdMap::default();
    let mut last_public = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|v| *v) => break,
        }
        if tx.receiver_count() + tx_public.receiver_count() == 0 {
            // Under the lock no one can start listening to this feed meanwhile.
            let mut s = slot.lock();
            if tx.receiver_count() + tx_public.receiver_count() == 0 {
                *s = None;
                return;
            }
        }
        loop {
            match batches.try_recv() {
                Ok(batch) => {
                    for (s, t, v, flags) in batch.iter() {
                        if *flags != 0 {
                            continue;
                        }
                        match newest.get(&s.0) {
                            Some((old, _)) if old > t => {}
                            _ => {
                                newest.insert(s.0, (*t, v.clone()));
                            }
                        }
                    }
                }
                Err(TryRecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "the live feed fell behind");
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => {
                    // The pipeline is gone (shutdown): later listeners must start a new feed.
                    *slot.lock() = None;
                    return;
                }
            }
        }
        let mut changed = !newest.is_empty();
        if last_states.is_none_or(|t| t.elapsed() >= STATES_EVERY) {
            last_states = Some(Instant::now());
            let seq = states.as_ref().map_or(1, |s| s.seq + 1);
            states = Some(Arc::new(States { seq, devices: device_states(&state) }));
            state.limits.live.state_snapshots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            changed = true;
        }
        let public_due = last_public.elapsed() >= PUBLIC_VALUES_EVERY;
        if tx_public.receiver_count() > 0 {
            for (s, (t, v)) in &newest {
                match newest_public.get(s) {
                    Some((old, _)) if old > t => {}
                    _ => {
                        newest_public.insert(*s, (*t, v.clone()));
                    }
                }
            }
        }
        if changed {
            let values = newest.drain().map(|(s, (t, v))| (SeriesId(s), t, v)).collect();
            tx.send_replace(Arc::new(Frame {
                values,
                states: states.clone(),
                shared_values: Default::default(),
            }));
        }
        if public_due {
            last_public = Instant::now();
            let values = newest_public.drain().map(|(s, (t, v))| (SeriesId(s), t, v)).collect();
            tx_public.send_replace(Arc::new(Frame {
                values,
                states: states.clone(),
                shared_values: Default::default(),
            }));
        }
    }
    *slot.lock() = None;
}

/// Every device's state, computed once for all live streams.
fn device_states(state: &AppState) -> Vec<(Device, &'static str)> {
    let now = state.clock.now();
    let devices = state.catalog.devices(&DeviceFilter::default());
    // Faults and flags do not depend on the audience; only the values shown do.
    let snap = snapshot(state, &devices, Audience::Operator);
    devices
        .into_iter()
        .map(|d| {
            let id = d.id.as_str();
            let st =
                device_state(&d, now, snap.faulty.contains_key(id), snap.flagged.get(id).copied());
            (d, st)
        })
        .collect()
}

/// A watched series: its device and property.
type Watched = (Arc<str>, Arc<str>);

/// What each series seen so far is for a stream (its device and property when watched, else
/// `None`), as of a version of the catalog's devices: looked up again once that changes.
#[derive(Debug, Default)]
struct Resolved {
    devices_version: u64,
    series: IdMap<u32, Option<Watched>>,
}

impl Resolved {
    fn get(
        &mut self,
        catalog: &dyn Catalog,
        s: SeriesId,
        watches: impl Fn(&Device, &str) -> bool,
    ) -> Option<Watched> {
        let version = catalog.devices_version();
        if version != self.devices_version {
            self.series.clear();
            self.devices_version = version;
        }
        if let Some(r) = self.series.get(&s.0) {
            return r.clone();
        }
        let r = catalog.series_info(s).and_then(|info| {
            let d = catalog.device(info.device.as_str())?;
            watches(&d, info.property.as_str())
                .then(|| (Arc::from(info.device.as_str()), Arc::from(info.property.as_str())))
        });
        self.series.insert(s.0, r.clone());
        r
    }
}

/// The JSON rows of the frame's values that `resolve` says are watched, or `None` when none is.
fn values_json(
    frame: &Frame,
    mut resolve: impl FnMut(SeriesId) -> Option<Watched>,
) -> Option<String> {
    let mut watched = Vec::new();
    for (s, t, v) in &frame.values {
        if let Some(w) = resolve(*s) {
            watched.push((w, t.as_nanos() / 1_000_000, v));
        }
    }
    if watched.is_empty() {
        return None;
    }
    let rows: Vec<LiveValue<'_>> =
        watched.iter().map(|((d, p), t, v)| LiveValue { d, p, t: *t, v }).collect();
    serde_json::to_string(&rows).ok()
}

/// A new value, in the data of a `values` event (a JSON array of them).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveValue<'a> {
    /// The device.
    #[schema(value_type = DeviceId)]
    d: &'a str,
    /// The property.
    #[schema(value_type = PropertyName)]
    p: &'a str,
    /// When it was measured, epoch milliseconds.
    t: i64,
    /// The value.
    v: &'a Value,
}

/// A device whose state changed, in the data of a `states` event (a JSON array of them).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveState<'a> {
    /// The device.
    #[schema(value_type = DeviceId)]
    d: &'a str,
    /// Its new state.
    #[schema(value_type = DeviceState)]
    s: &'static str,
}

struct Watch {
    state: AppState,
    /// Whether the caller sees one commune only (or is a department): its events are its own,
    /// never shared with other streams.
    scoped: bool,
    audience: Audience,
    filter: DeviceFilter,
    device: Option<String>,
    frames: watch::Receiver<Arc<Frame>>,
    /// What each series is for this stream, when it does not watch everything (those share
    /// the hub's table).
    resolved: Resolved,
    /// The states last sent, and the computation they came from.
    states: HashMap<String, &'static str>,
    states_seq: u64,
    /// Events of a frame not sent yet.
    queued: Vec<Event>,
    /// The credentials of an operator's stream, checked again every `recheck`.
    credentials: Option<HeaderMap>,
    recheck: tokio::time::Interval,
    shutdown: watch::Receiver<bool>,
    _permit: ConnectionPermit,
}

impl Watch {
    fn watches(&self, d: &Device) -> bool {
        self.filter.matches(d)
            && self.device.as_deref().is_none_or(|x| x == d.id.as_str())
            && (!self.scoped || self.state.catalog.device_commune(d.id.as_str()).is_some())
    }

    fn values_event(&mut self, frame: &Frame) -> Option<Event> {
        let audience = self.audience;
        let catalog = &*self.state.catalog;
        let data = if self.device.is_none() && self.filter.is_empty() && !self.scoped {
            // Watching everything the audience sees: the same rows for every such stream.
            let i = usize::from(audience == Audience::Public);
            let hub = &self.state.limits.live;
            frame.shared_values[i]
                .get_or_init(|| {
                    let mut table = hub.shared_resolved[i].lock();
                    values_json(frame, |s| table.get(catalog, s, |_, p| audience.sees(p)))
                })
                .clone()?
        } else {
            let mut table = std::mem::take(&mut self.resolved);
            let data = values_json(frame, |s| {
                table.get(catalog, s, |d, p| self.watches(d) && audience.sees(p))
            });
            self.resolved = table;
            data?
        };
        Some(Event::default().event("values").data(data))
    }

    /// Device states that changed since the last computation seen; the first one seen only sets
    /// the baseline.
    fn states_event(&mut self, states: Option<&States>) -> Option<Event> {
        let states = states.filter(|s| s.seq != self.states_seq)?;
        let first = self.states_seq == 0;
        self.states_seq = states.seq;
        let mut changed = Vec::new();
        for (d, st) in &states.devices {
            if !self.watches(d) {
                continue;
            }
            let id = d.id.as_str();
            if self.states.insert(id.to_owned(), st) != Some(*st) && !first {
                changed.push(LiveState { d: id, s: st });
            }
        }
        if changed.is_empty() {
            return None;
        }
        Some(Event::default().event("states").data(serde_json::to_string(&changed).ok()?))
    }

    /// Whether the stream may go on: an operator's token or session must still be live.
    fn allowed(&self) -> bool {
        self.credentials.as_ref().is_none_or(|h| {
            crate::auth::authenticate(&self.state, h, None).is_ok_and(|p| {
                p.is_some_and(|p| p.grant.may(agora_model::permissions::Action::View))
            })
        })
    }

    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queued.pop() {
                return Some(e);
            }
            let recheck = tokio::select! {
                r = self.frames.changed() => if r.is_err() { return None } else { false },
                _ = self.recheck.tick() => true,
                _ = self.shutdown.wait_for(|v| *v) => return None,
            };
            if recheck {
                if !self.allowed() {
                    tracing::info!("a live stream ended: its token or session was revoked");
                    return None;
                }
                continue;
            }
            let frame = self.frames.borrow_and_update().clone();
            // Popped from the end: states go after values.
            if let Some(e) = self.states_event(frame.states.as_deref()) {
                self.queued.push(e);
            }
            if let Some(e) = self.values_event(&frame) {
                self.queued.push(e);
            }
        }
    }
}

/// Live updates: server-sent events of new values and device state changes.
///
/// Two events, each with a JSON array as its data:
///
/// - `values`: the newest value of each watched series stored since the previous event, as
///   `[{"d": device, "p": property, "t": epoch milliseconds, "v": value}]` (`LiveValue`);
///   every half second for operators, every 5 seconds for the public. Points flagged by quality
///   checks are left out.
/// - `states`: devices whose state changed (`online`, `offline`, `never_seen`, `faulty`,
///   `flagged`), as `[{"d": device, "s": state}]` (`LiveState`); states are recomputed every 5
///   seconds, and only changes since the stream opened are sent.
///
/// A comment line keeps the connection alive every 15 seconds. Operators (token or session) get
/// every property; without a token, when the public map is on, the public gets all but the device
/// internals (battery, radio link). A stream opened with a token or session ends within seconds
/// of its revocation; all end when the server stops. Live streams are capped in total and per
/// client address (503 with `Retry-After` beyond).
#[utoipa::path(get, path = "/api/v1/live", tag = "dashboard", security((), ("bearer" = [])),
    params(
        ("commune" = Option<InseeCode>, Query, description = "Only the devices of this commune"),
        ("site" = Option<SiteId>, Query, description = "Only the devices of this place"),
        ("kind" = Option<DeviceKind>, Query, description = "Only the devices of this kind"),
        ("bbox" = Option<String>, Query,
            description = "Only the devices inside this box: `min_lon,min_lat,max_lon,max_lat` (WGS 84)",
            pattern = r"^\s*[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*,\s*[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*,\s*[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*,\s*[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])\s*$"),
        ("device" = Option<String>, Query, description = "Only this device"),
    ),
    responses(
        (status = 200, description = "An endless stream of server-sent events: `values` and `states`, each with a JSON array as data (see the operation's description)", content_type = "text/event-stream", body = String),
        (status = 400, response = BadRequest), (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn live(
    State(full): State<AppState>,
    Scoped(s): Scoped,
    client: Option<Extension<ClientAddr>>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let audience = Audience::of(&s, &h)?;
    let filter = filter(&p)?;
    let hub = &s.limits.live;
    let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.0.ip());
    let permit = hub
        .slots
        .try_acquire(ip)
        .map_err(|why| ApiError::TooManyConnections(format!("{why}: live updates are limited")))?;
    let mut recheck = tokio::time::interval(hub.limits.recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The shared feed reads the whole catalog; each stream filters what its caller may see.
    let frames = hub.listen(&full, audience);
    let scoped = !Arc::ptr_eq(&full.catalog, &s.catalog);
    let mut w = Watch {
        scoped,
        frames,
        filter,
        device: p.device.clone(),
        audience,
        resolved: Resolved::default(),
        states: HashMap::new(),
        states_seq: 0,
        queued: Vec::new(),
        credentials: (audience == Audience::Operator).then(|| h.clone()),
        recheck,
        shutdown: s.shutdown.clone(),
        _permit: permit,
        state: s,
    };
    // Set the state baseline now, so the first change is reported.
    let current = w.frames.borrow().states.clone();
    let _ = w.states_event(current.as_deref());
    let stream = futures_util::stream::unfold(w, |mut w| async move {
        let e = w.next().await?;
        Some((Ok(e), w))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(live),
    // The events' data, and the parameters' types (parameters do not bring their schemas).
    components(schemas(LiveValue, LiveState, InseeCode, SiteId, DeviceKind))
)]
pub(crate) struct Doc;
