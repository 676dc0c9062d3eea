//! Live updates for the dashboard as server-sent events (`GET /api/v1/live`).
//!
//! Every stored batch is broadcast by the pipeline; each connection keeps the newest value per
//! series of the devices it watches and sends them twice a second (`event: values`), so a point
//! reaches the page well within two seconds of being stored. Device states are recomputed every
//! five seconds and only changes are sent (`event: states`). A connection that falls behind skips
//! batches rather than slowing ingestion; streams end when the server shuts down.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_ingest::StoredBatch;
use agora_model::{IdMap, SeriesId, Timestamp, Value};
use agora_store::catalog::{Device, DeviceFilter};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::TryRecvError;

use crate::AppState;
use crate::error::ApiResult;
use crate::query::{CatalogParams, filter};
use crate::views::{Audience, device_state, snapshot};

/// How often values are sent.
const VALUES_EVERY: Duration = Duration::from_millis(500);
/// How often device states are recomputed.
const STATES_EVERY: Duration = Duration::from_secs(5);

/// A watched series: its device and property.
type Watched = (Arc<str>, Arc<str>);

struct Watch {
    state: AppState,
    audience: Audience,
    filter: DeviceFilter,
    device: Option<String>,
    rx: tokio::sync::broadcast::Receiver<Arc<StoredBatch>>,
    /// What each series seen so far is: its device and property when watched, else `None`.
    resolved: IdMap<u32, Option<Watched>>,
    /// Newest value per watched series since the last send.
    pending: IdMap<u32, (Timestamp, Value)>,
    states: HashMap<String, &'static str>,
    last_states: Instant,
    tick: tokio::time::Interval,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Watch {
    fn watches(&self, d: &Device) -> bool {
        self.filter.matches(d) && self.device.as_deref().is_none_or(|x| x == d.id.as_str())
    }

    fn resolve(&mut self, s: SeriesId) -> Option<Watched> {
        if let Some(r) = self.resolved.get(&s.0) {
            return r.clone();
        }
        let r = self.state.catalog.series_info(s).and_then(|info| {
            let d = self.state.catalog.device(info.device.as_str())?;
            (self.watches(&d) && self.audience.sees(info.property.as_str()))
                .then(|| (Arc::from(info.device.as_str()), Arc::from(info.property.as_str())))
        });
        self.resolved.insert(s.0, r.clone());
        r
    }

    fn take(&mut self, batch: &StoredBatch) {
        for (s, t, v, flags) in batch {
            if *flags != 0 || self.resolve(*s).is_none() {
                continue;
            }
            match self.pending.get(&s.0) {
                Some((old, _)) if old > t => {}
                _ => {
                    self.pending.insert(s.0, (*t, v.clone()));
                }
            }
        }
    }

    fn values_event(&mut self) -> Option<Event> {
        if self.pending.is_empty() {
            return None;
        }
        let rows: Vec<_> = self
            .pending
            .drain()
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|(s, (t, v))| {
                let (d, p) = self.resolved.get(&s).cloned().flatten()?;
                Some(json!({"d": &*d, "p": &*p, "t": t.as_nanos() / 1_000_000, "v": v}))
            })
            .collect();
        Some(Event::default().event("values").data(serde_json::to_string(&rows).ok()?))
    }

    /// Device states that changed since the last look; the first look only sets the baseline.
    fn states_event(&mut self) -> Option<Event> {
        self.last_states = Instant::now();
        let now = self.state.clock.now();
        let devices: Vec<Device> = self
            .state
            .catalog
            .devices(&self.filter)
            .into_iter()
            .filter(|d| self.device.as_deref().is_none_or(|x| x == d.id.as_str()))
            .collect();
        let snap = snapshot(&self.state, &devices, self.audience);
        let first = self.states.is_empty();
        let mut changed = Vec::new();
        for d in &devices {
            let id = d.id.as_str();
            let st =
                device_state(d, now, snap.faulty.contains_key(id), snap.flagged.get(id).copied());
            if self.states.insert(id.to_owned(), st) != Some(st) && !first {
                changed.push(json!({"d": id, "s": st}));
            }
        }
        if changed.is_empty() {
            return None;
        }
        Some(Event::default().event("states").data(serde_json::to_string(&changed).ok()?))
    }

    /// The next event to send, or `None` when the server is stopping.
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                _ = self.tick.tick() => {}
                _ = self.shutdown.wait_for(|v| *v) => return None,
            }
            loop {
                match self.rx.try_recv() {
                    Ok(batch) => self.take(&batch),
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "a live view fell behind");
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return None,
                }
            }
            if let Some(e) = self.values_event() {
                return Some(e);
            }
            if self.last_states.elapsed() >= STATES_EVERY
                && let Some(e) = self.states_event()
            {
                return Some(e);
            }
        }
    }
}

/// `GET /api/v1/live?site=&kind=&commune=&device=`: server-sent events of new values and device
/// state changes. Operators (token or session) get every property; the public, when the public
/// map is on, the public ones.
pub(crate) async fn live(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<CatalogParams>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let audience = Audience::of(&s, &h)?;
    let mut tick = tokio::time::interval(VALUES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut w = Watch {
        rx: s.pipeline.subscribe(),
        filter: filter(&p)?,
        device: p.device.clone(),
        audience,
        resolved: IdMap::default(),
        pending: IdMap::default(),
        states: HashMap::new(),
        last_states: Instant::now(),
        tick,
        shutdown: s.shutdown.clone(),
        state: s,
    };
    // Set the state baseline now, so the first change is reported.
    let _ = w.states_event();
    let stream = futures_util::stream::unfold(w, |mut w| async move {
        let e = w.next().await?;
        Some((Ok(e), w))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
