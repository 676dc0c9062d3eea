//! The way back to devices: shared-attribute updates and server-side RPC calls, delivered to
//! whichever link a device has now — its own MQTT connection, the gateway connection it was
//! connected through, or an HTTP long poll — and the answers to those calls brought back to the
//! caller (an operator through the API, or an alert action).
//!
//! Nothing is queued for a device without a link, except briefly for HTTP devices, which poll:
//! a call made between two polls of a device that polled within [`HTTP_PRESENCE`] waits for the
//! next poll (within the call's own timeout).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_model::DeviceId;
use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, oneshot};

use crate::Error;

/// How long after its last poll an HTTP device still counts as connected.
pub const HTTP_PRESENCE: Duration = Duration::from_secs(60);

/// Calls without an answer kept at most (each ends at its timeout anyway).
const MAX_PENDING: usize = 10_000;

/// A message for a device, whatever carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// Shared attributes that changed, with their new values (`{"deleted": [...]}` for removed
    /// ones, as ThingsBoard sends).
    Attributes(Map<String, Json>),
    /// A server-side RPC call.
    Rpc {
        /// Its id, to which the device's answer refers.
        id: u64,
        /// The method, e.g. `setDimLevel`.
        method: String,
        /// Its parameters.
        params: Json,
    },
}

/// What a link takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    /// Attribute updates only (an HTTP attribute poll).
    Attributes,
    /// RPC calls only (an HTTP RPC poll).
    Rpc,
    /// Both (an MQTT connection; it filters by its own subscriptions).
    Both,
}

impl Wants {
    fn takes(self, p: &Push) -> bool {
        matches!(
            (self, p),
            (Wants::Both, _)
                | (Wants::Attributes, Push::Attributes(_))
                | (Wants::Rpc, Push::Rpc { .. })
        )
    }
}

enum Tx {
    /// A connection: takes any number of messages.
    Session(mpsc::UnboundedSender<(DeviceId, Push)>),
    /// An HTTP poll: takes one.
    Once(Option<oneshot::Sender<Push>>),
}

struct Link {
    id: u64,
    wants: Wants,
    tx: Tx,
}

#[derive(Default)]
struct Inner {
    next_link: u64,
    next_call: u64,
    links: HashMap<DeviceId, Vec<Link>>,
    pending: HashMap<u64, (DeviceId, oneshot::Sender<Json>)>,
    /// HTTP devices: when each last polled, and what waits for its next poll.
    polled: HashMap<DeviceId, Instant>,
    queued: HashMap<DeviceId, VecDeque<(Instant, Push)>>,
}

impl Inner {
    /// Hand `push` to one link of `device` that takes it (the newest: a device that reconnected
    /// is reached on its new connection); false if none did.
    fn deliver(&mut self, device: &DeviceId, push: &Push) -> bool {
        let Some(links) = self.links.get_mut(device) else { return false };
        let mut delivered = false;
        for l in links.iter_mut().rev() {
            if !l.wants.takes(push) {
                continue;
            }
            delivered = match &mut l.tx {
                Tx::Session(tx) => tx.send((device.clone(), push.clone())).is_ok(),
                Tx::Once(tx) => tx.take().is_some_and(|tx| tx.send(push.clone()).is_ok()),
            };
            if delivered {
                break;
            }
        }
        links.retain(|l| match &l.tx {
            Tx::Session(tx) => !tx.is_closed(),
            Tx::Once(tx) => tx.as_ref().is_some_and(|t| !t.is_closed()),
        });
        if links.is_empty() {
            self.links.remove(device);
        }
        delivered
    }

    fn polled_recently(&self, device: &DeviceId) -> bool {
        self.polled.get(device).is_some_and(|t| t.elapsed() < HTTP_PRESENCE)
    }
}

/// The hub (cheap to clone; all clones are the same hub).
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<parking_lot::Mutex<Inner>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.inner.lock();
        f.debug_struct("Hub")
            .field("linked_devices", &i.links.len())
            .field("pending_calls", &i.pending.len())
            .finish()
    }
}

/// Keeps a link open; dropping it removes the link.
#[derive(Debug)]
pub struct LinkGuard {
    hub: Hub,
    device: DeviceId,
    id: u64,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let mut i = self.hub.inner.lock();
        if let Some(links) = i.links.get_mut(&self.device) {
            links.retain(|l| l.id != self.id);
            if links.is_empty() {
                i.links.remove(&self.device);
            }
        }
    }
}

impl Hub {
    fn link(&self, i: &mut Inner, device: &DeviceId, wants: Wants, tx: Tx) -> LinkGuard {
        i.next_link += 1;
        let id = i.next_link;
        i.links.entry(device.clone()).or_default().push(Link { id, wants, tx });
        LinkGuard { hub: self.clone(), device: device.clone(), id }
    }

    /// Link a connection to `device`: what is pushed to it arrives on `tx`, tagged with the
    /// device (a gateway connection links several devices to one channel).
    pub fn attach(
        &self,
        device: &DeviceId,
        tx: mpsc::UnboundedSender<(DeviceId, Push)>,
    ) -> LinkGuard {
        let mut i = self.inner.lock();
        self.link(&mut i, device, Wants::Both, Tx::Session(tx))
    }

    /// An HTTP long poll: the next message for `device` of the kind wanted, or `None` after
    /// `timeout`. Calls made since the previous poll come first.
    pub async fn poll(&self, device: &DeviceId, wants: Wants, timeout: Duration) -> Option<Push> {
        let (tx, mut rx) = oneshot::channel();
        // Queue checked and poll linked under one lock: a call made meanwhile is in one or the
        // other, never in neither.
        let guard = {
            let mut i = self.inner.lock();
            i.polled.insert(device.clone(), Instant::now());
            if let Some(q) = i.queued.get_mut(device) {
                q.retain(|(until, _)| until.elapsed().is_zero());
                if let Some(pos) = q.iter().position(|(_, p)| wants.takes(p)) {
                    return q.remove(pos).map(|(_, p)| p);
                }
            }
            self.link(&mut i, device, wants, Tx::Once(Some(tx)))
        };
        let got = tokio::time::timeout(timeout, &mut rx).await.ok().and_then(Result::ok);
        // Unlinked first; then anything sent in the meantime is still taken, not lost.
        drop(guard);
        let got = got.or_else(|| rx.try_recv().ok());
        self.inner.lock().polled.insert(device.clone(), Instant::now());
        got
    }

    /// Push changed shared attributes to `device`; returns whether a link took them.
    pub fn push_attributes(&self, device: &DeviceId, values: Map<String, Json>) -> bool {
        self.inner.lock().deliver(device, &Push::Attributes(values))
    }

    /// Call `method` on `device` and wait for its answer, at most `timeout`.
    pub async fn call(
        &self,
        device: &DeviceId,
        method: &str,
        params: Json,
        timeout: Duration,
    ) -> Result<Json, Error> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut i = self.inner.lock();
            i.pending.retain(|_, (_, tx)| !tx.is_closed());
            if i.pending.len() >= MAX_PENDING {
                return Err(Error::Busy);
            }
            i.next_call += 1;
            let id = i.next_call;
            let push = Push::Rpc { id, method: method.to_owned(), params };
            if !i.deliver(device, &push) {
                if !i.polled_recently(device) {
                    return Err(Error::NotConnected(device.to_string()));
                }
                let until = Instant::now() + timeout;
                i.queued.entry(device.clone()).or_default().push_back((until, push));
            }
            i.pending.insert(id, (device.clone(), tx));
            id
        };
        let answer = tokio::time::timeout(timeout, rx).await;
        let mut i = self.inner.lock();
        i.pending.remove(&id);
        if let Some(q) = i.queued.get_mut(device) {
            q.retain(|(_, p)| !matches!(p, Push::Rpc { id: x, .. } if *x == id));
            if q.is_empty() {
                i.queued.remove(device);
            }
        }
        match answer {
            Ok(Ok(a)) => Ok(a),
            _ => Err(Error::NoAnswer { device: device.to_string(), after: timeout }),
        }
    }

    /// The answer of `device` to call `id`; false if no such call waits (unknown, answered
    /// already, timed out, or made to another device).
    pub fn answer(&self, device: &DeviceId, id: u64, answer: Json) -> bool {
        let mut i = self.inner.lock();
        match i.pending.remove(&id) {
            Some((d, tx)) if &d == device => tx.send(answer).is_ok(),
            Some(other) => {
                i.pending.insert(id, other);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dev(s: &str) -> DeviceId {
        DeviceId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_call_reaches_the_newest_link_and_its_answer_comes_back() {
        let hub = Hub::default();
        let (old_tx, mut old_rx) = mpsc::unbounded_channel();
        let (new_tx, mut new_rx) = mpsc::unbounded_channel();
        let _old = hub.attach(&dev("lamp-1"), old_tx);
        let _new = hub.attach(&dev("lamp-1"), new_tx);
        let h = hub.clone();
        let answerer = tokio::spawn(async move {
            let (d, p) = new_rx.recv().await.unwrap();
            let Push::Rpc { id, method, params } = p else { panic!("{p:?}") };
            assert_eq!(
                (d.as_str(), method.as_str(), params),
                ("lamp-1", "setDim", json!({"level": 40}))
            );
            // Another device cannot answer for it.
            assert!(!h.answer(&dev("lamp-2"), id, json!("forged")));
            assert!(h.answer(&d, id, json!({"ok": true})));
        });
        let a =
            hub.call(&dev("lamp-1"), "setDim", json!({"level": 40}), Duration::from_secs(5)).await;
        assert_eq!(a.unwrap(), json!({"ok": true}));
        answerer.await.unwrap();
        assert!(old_rx.try_recv().is_err(), "delivered once, to the newest link");
    }

    #[tokio::test]
    async fn no_link_no_answer_and_a_closed_link_are_told_apart() {
        let hub = Hub::default();
        let r = hub.call(&dev("lamp-1"), "x", Json::Null, Duration::from_secs(1)).await;
        assert!(matches!(r, Err(Error::NotConnected(d)) if d == "lamp-1"));
        let (tx, _rx) = mpsc::unbounded_channel();
        let guard = hub.attach(&dev("lamp-1"), tx);
        let r = hub.call(&dev("lamp-1"), "x", Json::Null, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(Error::NoAnswer { .. })), "{r:?}");
        drop(guard);
        let r = hub.call(&dev("lamp-1"), "x", Json::Null, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(Error::NotConnected(_))), "{r:?}");
        assert!(!hub.push_attributes(&dev("lamp-1"), Map::new()));
    }

    #[tokio::test]
    async fn an_http_device_between_two_polls_gets_the_call_on_its_next_poll() {
        let hub = Hub::default();
        let d = dev("meter-1");
        // A poll for attributes ends empty: the device now counts as polling.
        assert!(hub.poll(&d, Wants::Attributes, Duration::from_millis(10)).await.is_none());
        let h = hub.clone();
        let dd = d.clone();
        let device = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(Push::Rpc { id, .. }) = h.poll(&dd, Wants::Rpc, Duration::from_secs(5)).await
            else {
                panic!("no call");
            };
            assert!(h.answer(&dd, id, json!(7)));
        });
        assert_eq!(
            hub.call(&d, "read", Json::Null, Duration::from_secs(5)).await.unwrap(),
            json!(7)
        );
        device.await.unwrap();
        // An attribute poll does not take calls, nor a call poll attribute updates.
        let h = hub.clone();
        let dd = d.clone();
        let poll =
            tokio::spawn(async move { h.poll(&dd, Wants::Rpc, Duration::from_millis(200)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        hub.push_attributes(&d, Map::new());
        assert!(poll.await.unwrap().is_none(), "an RPC poll took an attribute update");
    }
}
