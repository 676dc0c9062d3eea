//! Caps on concurrent connections, in total and per client address, with a reserve that only
//! trusted addresses (loopback, an operators' network) may use, and token buckets for rates
//! ([`Buckets`]). Shared by the HTTP server and the MQTT endpoint so that both count clients by
//! the same rule.
//!
//! Clients are counted by address, IPv6 ones by their /64 network: one host usually owns a
//! whole /64 and could otherwise open every connection from a new address. A site is often given
//! a /48 (or a /56 inside one), so an IPv6 client that cycles through its site's /64s also meets
//! a wider cap on its /48 ([`network_key`]). IPv4 has no such second cap: its addresses are
//! scarce and a /24 is often shared by unrelated customers.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Error;
use parking_lot::Mutex;

/// A set of networks in CIDR notation (`127.0.0.0/8`, `::1/128`, `10.1.2.3`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrSet(Vec<(IpAddr, u8)>);

impl AddrSet {
    /// Loopback addresses, IPv4 and IPv6.
    pub fn loopback() -> Self {
        Self(vec![(IpAddr::from([127, 0, 0, 0]), 8), (IpAddr::from(Ipv6Addr::LOCALHOST), 128)])
    }

    /// Parse a list of networks.
    pub fn parse<S: AsRef<str>>(nets: &[S]) -> Result<Self, Error> {
        nets.iter().map(|s| parse_net(s.as_ref())).collect::<Result<_, _>>().map(Self)
    }

    /// Whether an address belongs to one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix(u32::from(*n).into(), a.to_bits().into(), *len, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(*n), a.to_bits(), *len, 128),
            _ => false,
        })
    }
}

fn prefix(net: u128, addr: u128, len: u8, bits: u8) -> bool {
    let shift = u32::from(bits - len.min(bits));
    net.checked_shr(shift).unwrap_or(0) == addr.checked_shr(shift).unwrap_or(0)
}

fn parse_net(s: &str) -> Result<(IpAddr, u8), Error> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip =
        canonical(IpAddr::from_str(addr.trim()).map_err(|e| Error::Config(format!("{s:?}: {e}")))?);
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(|| {
            Error::Config(format!("{s:?}: the prefix length must be a number from 0 to {max}"))
        })?,
        None => max,
    };
    Ok((ip, len))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, seen on dual-stack sockets) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64 network.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// The wider network an IPv6 client is also counted under: its /48 (a site's usual allocation).
/// `None` for IPv4 clients (and IPv4-mapped IPv6 ones).
pub fn network_key(ip: IpAddr) -> Option<IpAddr> {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            Some(IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 80) - 1))))
        }
        IpAddr::V4(_) => None,
    }
}

/// What a [`ConnectionLimits`] allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// Connections open at once for everyone.
    pub total: usize,
    /// Connections open at once from one address (IPv6: one /64); trusted addresses are exempt.
    pub per_address: usize,
    /// Connections open at once from one IPv6 /48 network, whichever of its /64s they come
    /// from; trusted addresses are exempt. No effect on IPv4.
    pub per_network: usize,
    /// Connections beyond `total` that only trusted addresses may open, so that health checks
    /// and operators still get in while strangers hold every ordinary slot.
    pub reserved: usize,
    /// The trusted addresses.
    pub trusted: AddrSet,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Total,
    /// This address holds its share.
    PerAddress,
    /// This IPv6 /48 network holds its share.
    PerNetwork,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Total => "too many connections",
            Self::PerAddress => "too many connections from this address",
            Self::PerNetwork => "too many connections from this network",
        })
    }
}

#[derive(Debug, Default)]
struct Counts {
    ordinary: usize,
    reserved: usize,
    /// Open connections per client key; keys leave at zero, so this is bounded by `total`.
    per_key: HashMap<IpAddr, usize>,
    /// Open connections per IPv6 /48; bounded the same way.
    per_net: HashMap<IpAddr, usize>,
}

/// Counts open connections and hands out [`ConnectionPermit`]s.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    caps: Arc<ConnectionCaps>,
    counts: Arc<Mutex<Counts>>,
}

/// An open connection's place; given back when dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
    net: Option<IpAddr>,
    reserved: bool,
}

impl ConnectionLimits {
    /// Limits with these caps.
    pub fn new(caps: ConnectionCaps) -> Self {
        Self { caps: Arc::new(caps), counts: Arc::default() }
    }

    /// The caps.
    pub fn caps(&self) -> &ConnectionCaps {
        &self.caps
    }

    /// Whether an address is trusted.
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.caps.trusted.contains(ip)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        let c = self.counts.lock();
        c.ordinary + c.reserved
    }

    /// A place for a new connection from `ip`, or why there is none.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let trusted = self.trusted(ip);
        let key = client_key(ip);
        let net = network_key(ip);
        let mut c = self.counts.lock();
        let mine = c.per_key.get(&key).copied().unwrap_or(0);
        if !trusted && mine >= self.caps.per_address {
            return Err(Refused::PerAddress);
        }
        let ours = net.and_then(|n| c.per_net.get(&n).copied()).unwrap_or(0);
        if !trusted && net.is_some() && ours >= self.caps.per_network {
            return Err(Refused::PerNetwork);
        }
        let reserved = if c.ordinary < self.caps.total {
            c.ordinary += 1;
            false
        } else if trusted && c.reserved < self.caps.reserved {
            c.reserved += 1;
            true
        } else {
            return Err(Refused::Total);
        };
        *c.per_key.entry(key).or_default() += 1;
        if let Some(n) = net {
            *c.per_net.entry(n).or_default() += 1;
        }
        drop(c);
        Ok(ConnectionPermit { counts: self.counts.clone(), key, net, reserved })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        if self.reserved {
            c.reserved -= 1;
        } else {
            c.ordinary -= 1;
        }
        if let Some(n) = c.per_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.per_key.remove(&self.key);
            }
        }
        if let Some(net) = self.net
            && let Some(n) = c.per_net.get_mut(&net)
        {
            *n -= 1;
            if *n == 0 {
                c.per_net.remove(&net);
            }
        }
    }
}

/// A sustained rate with a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The longest wait a bucket asks for (a tiny rate would otherwise ask for centuries).
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// `secs` as a wait, at most [`MAX_WAIT`].
fn wait_of(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(MAX_WAIT).min(MAX_WAIT)
}

/// Token buckets by key, at most `max` of them: when full it forgets the buckets that refilled
/// (as good as new), then the least recently used tenth, so a client cycling keys cannot grow it.
#[derive(Debug)]
pub struct Buckets<K> {
    rate: Rate,
    max: usize,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Buckets holding `rate`, for at most `max` keys.
    pub fn new(rate: Rate, max: usize) -> Self {
        Self { rate, max: max.max(1), map: Mutex::default() }
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * self.rate.per_second)
            .min(self.rate.burst)
    }

    /// Take one request from `key`'s bucket, or say how long until one is available.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second <= 0.0 {
            return Ok(()); // A zero rate turns the limit off.
        }
        let mut map = self.map.lock();
        if !map.contains_key(key) && map.len() >= self.max {
            self.evict(&mut map, now);
        }
        let b = map.entry(key.clone()).or_insert(Bucket { tokens: self.rate.burst, at: now });
        let tokens = self.refilled(b, now);
        if tokens >= 1.0 {
            *b = Bucket { tokens: tokens - 1.0, at: now };
            Ok(())
        } else {
            *b = Bucket { tokens, at: now };
            Err(wait_of((1.0 - tokens) / self.rate.per_second))
        }
    }

    /// Whether `key` has credit left (it may owe nothing), or how long until it has.
    pub fn has_credit(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let map = self.map.lock();
        match map.get(key).map(|b| self.refilled(b, now)) {
            Some(t) if t <= 0.0 => Err(wait_of(-t / self.rate.per_second)),
            _ => Ok(()),
        }
    }

    /// Spend `n` from `key`'s bucket, into debt if need be: the next request waits until it is
    /// repaid.
    pub fn spend(&self, key: &K, n: f64, now: Instant) {
        if self.rate.per_second <= 0.0 {
            return;
        }
        let mut map = self.map.lock();
        if !map.contains_key(key) && map.len() >= self.max {
            self.evict(&mut map, now);
        }
        let b = map.entry(key.clone()).or_insert(Bucket { tokens: self.rate.burst, at: now });
        let tokens = self.refilled(b, now);
        *b = Bucket { tokens: tokens - n, at: now };
    }

    /// Forget full buckets, and if that frees less than a tenth, the least recently used tenth.
    fn evict(&self, map: &mut HashMap<K, Bucket>, now: Instant) {
        map.retain(|_, b| self.refilled(b, now) < self.rate.burst);
        let tenth = (self.max / 10).max(1);
        if map.len() + tenth > self.max {
            let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, b)| (b.at, k.clone())).collect();
            let n = (map.len() + tenth - self.max).min(ages.len());
            if n > 0 {
                ages.select_nth_unstable_by_key(n - 1, |(at, _)| *at);
                for (_, k) in &ages[..n] {
                    map.remove(k);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_by_prefix() {
        let s = AddrSet::parse(&["10.1.0.0/16", "::1", "2001:db8::/32"]).unwrap();
        assert!(s.contains(ip("10.1.200.3")));
        assert!(!s.contains(ip("10.2.0.1")));
        assert!(s.contains(ip("::1")));
        assert!(s.contains(ip("2001:db8:1::5")));
        assert!(s.contains(ip("::ffff:10.1.0.9")));
        assert!(AddrSet::loopback().contains(ip("127.0.0.2")));
        assert!(!AddrSet::loopback().contains(ip("192.168.1.1")));
        assert!(AddrSet::parse(&["0.0.0.0/0"]).unwrap().contains(ip("8.8.8.8")));
        assert!(AddrSet::parse(&["10.0.0.0/33"]).is_err());
        assert!(AddrSet::parse(&["nonsense"]).is_err());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(network_key(ip("2001:db8:1:2:aaaa::1")), Some(ip("2001:db8:1::")));
        assert_eq!(network_key(ip("2001:db8:1:ffff::1")), Some(ip("2001:db8:1::")));
        assert_eq!(network_key(ip("2001:db8:2::1")), Some(ip("2001:db8:2::")));
        assert_eq!(network_key(ip("1.2.3.4")), None);
        assert_eq!(network_key(ip("::ffff:1.2.3.4")), None);
    }

    #[test]
    fn an_ipv6_host_cycling_its_64s_meets_the_cap_of_its_48() {
        let l = ConnectionLimits::new(ConnectionCaps {
            total: 100,
            per_address: 2,
            per_network: 5,
            reserved: 2,
            trusted: AddrSet::parse(&["2001:db8:ff::/48"]).unwrap(),
        });
        // Five /64s of one /48, one connection each: the sixth is refused for the network,
        // although that /64 holds nothing.
        let held: Vec<_> =
            (1..=5).map(|i| l.try_acquire(ip(&format!("2001:db8:1:{i}::1"))).unwrap()).collect();
        assert_eq!(l.try_acquire(ip("2001:db8:1:6::1")).unwrap_err(), Refused::PerNetwork);
        // Another /48, IPv4 clients and the trusted network are not held by it.
        let _other = l.try_acquire(ip("2001:db8:2:1::1")).unwrap();
        let _v4 = (0..2).map(|_| l.try_acquire(ip("10.0.0.1")).unwrap()).collect::<Vec<_>>();
        let _t: Vec<_> =
            (0..7).map(|i| l.try_acquire(ip(&format!("2001:db8:ff:{i}::1"))).unwrap()).collect();
        // The per-address cap still comes first within the network.
        drop(held);
        let a: Vec<_> = (0..2).map(|_| l.try_acquire(ip("2001:db8:1:7::1")).unwrap()).collect();
        assert_eq!(l.try_acquire(ip("2001:db8:1:7::2")).unwrap_err(), Refused::PerAddress);
        // A network's count leaves with its last connection.
        drop(a);
        assert!(!l.counts.lock().per_net.contains_key(&ip("2001:db8:1::")));
    }

    #[test]
    fn caps_per_address_total_and_reserve() {
        let l = ConnectionLimits::new(ConnectionCaps {
            total: 3,
            per_address: 2,
            per_network: 8,
            reserved: 1,
            trusted: AddrSet::loopback(),
        });
        let a1 = l.try_acquire(ip("10.0.0.1")).unwrap();
        let _a2 = l.try_acquire(ip("10.0.0.1")).unwrap();
        assert_eq!(l.try_acquire(ip("10.0.0.1")).unwrap_err(), Refused::PerAddress);
        let _b = l.try_acquire(ip("10.0.0.2")).unwrap();
        assert_eq!(l.try_acquire(ip("10.0.0.3")).unwrap_err(), Refused::Total);
        // The reserve lets one trusted connection in, and only one.
        let r = l.try_acquire(ip("127.0.0.1")).unwrap();
        assert_eq!(l.try_acquire(ip("127.0.0.1")).unwrap_err(), Refused::Total);
        assert_eq!(l.open(), 4);
        drop(a1);
        drop(r);
        let _c = l.try_acquire(ip("10.0.0.3")).unwrap();
        assert_eq!(l.open(), 3);
        assert_eq!(l.counts.lock().per_key.len(), 3);
    }

    #[test]
    fn bytes_are_spent_into_debt_and_repaid_at_the_rate() {
        // 1,000 bytes a second, 2,000 at once.
        let b = Buckets::new(Rate { per_second: 1000.0, burst: 2000.0 }, 10);
        let t0 = Instant::now();
        let key = "t".to_owned();
        assert!(b.has_credit(&key, t0).is_ok(), "a new token has its burst");
        b.spend(&key, 5000.0, t0);
        // 3,000 owed: three seconds before the next request.
        let wait = b.has_credit(&key, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 3.0).abs() < 1e-6, "{wait:?}");
        assert!(b.has_credit(&key, t0 + Duration::from_millis(2_900)).is_err());
        assert!(b.has_credit(&key, t0 + Duration::from_millis(3_100)).is_ok());
        assert!(b.has_credit(&"other".to_owned(), t0).is_ok(), "another token is not held");
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let b = Buckets::new(Rate { per_second: 2.0, burst: 3.0 }, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            b.take(&1, t0).unwrap();
        }
        let wait = b.take(&1, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        b.take(&1, t0 + Duration::from_millis(500)).unwrap();
        assert!(b.take(&1, t0 + Duration::from_millis(500)).is_err());
        // Other keys are not affected.
        b.take(&2, t0).unwrap();
    }

    #[test]
    fn keys_stay_bounded_when_an_attacker_cycles_them() {
        let b = Buckets::new(Rate { per_second: 0.001, burst: 2.0 }, 100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = b.take(&i, t0 + Duration::from_micros(u64::from(i)));
            assert!(b.len() <= 100);
        }
        // The most recent keys are still remembered (and limited).
        b.take(&9_999, t0 + Duration::from_secs(1)).unwrap();
        assert!(b.take(&9_999, t0 + Duration::from_secs(1)).is_err());
    }
}
