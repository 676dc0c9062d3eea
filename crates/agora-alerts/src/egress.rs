//! Where agora may send outgoing HTTP requests (webhooks): public addresses only, unless the
//! operator allow-lists a network or a host name in `[alerts] allow_hosts`. Loopback, private
//! (RFC 1918, unique-local IPv6, CGNAT), link-local, cloud metadata, unspecified, multicast and
//! reserved addresses are refused, whether written in the URL or returned by DNS.
//!
//! A host name is resolved once per connection by [`GuardedResolver`], which hands the HTTP
//! client only the addresses it checked: there is no second lookup between the check and the
//! connection for a DNS-rebinding server to answer differently. The client follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// One entry of `[alerts] allow_hosts`: a network (`10.0.0.0/8`, `fd00::/8`), one address
/// (`127.0.0.1`), a host name (`hooks.internal`) or every name under a domain (`*.internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowHost {
    /// Addresses whose first `prefix` bits are those of the address.
    Net {
        /// The network's address.
        addr: IpAddr,
        /// Prefix length in bits.
        prefix: u8,
    },
    /// One host name, lower case, without a trailing dot.
    Name(String),
    /// Every name ending with `.{domain}` (lower case).
    Domain(String),
}

impl std::str::FromStr for AllowHost {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bad = || {
            format!(
                "bad allow_hosts entry {s:?}: use a network (10.0.0.0/8), an address (127.0.0.1), \
                 a host name (hooks.internal) or a domain (*.internal)"
            )
        };
        if let Some((a, p)) = t.split_once('/') {
            let addr: IpAddr = a.parse().map_err(|_| bad())?;
            let prefix: u8 = p.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(bad());
            }
            return Ok(Self::Net { addr, prefix });
        }
        let unbracketed = t.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = unbracketed.parse::<IpAddr>() {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Net { addr, prefix });
        }
        let name = t.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if let Some(domain) = name.strip_prefix("*.") {
            if domain.split('.').all(label_ok) {
                return Ok(Self::Domain(domain.to_owned()));
            }
        } else if name.split('.').all(label_ok) {
            return Ok(Self::Name(name));
        }
        Err(bad())
    }
}

impl TryFrom<String> for AllowHost {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<'de> serde::Deserialize<'de> for AllowHost {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for AllowHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Self::Name(n) => f.write_str(n),
            Self::Domain(d) => write!(f, "*.{d}"),
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why an IPv4 address is not for webhooks, if it is not.
fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let within = |net: [u8; 4], prefix: u8| in_net(IpAddr::V4(ip), IpAddr::V4(net.into()), prefix);
    // Cloud metadata services first: the most precious target of all.
    if ip == Ipv4Addr::new(169, 254, 169, 254)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
        || ip == Ipv4Addr::new(100, 100, 100, 200)
    {
        return Some("a cloud metadata address");
    }
    Some(match () {
        _ if o[0] == 0 => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private address",
        _ if within([100, 64, 0, 0], 10) => "a shared (CGNAT) address",
        _ if ip.is_link_local() => "a link-local address",
        _ if ip.is_multicast() => "a multicast address",
        _ if ip.is_broadcast() || o[0] >= 240 => "a reserved address",
        _ if within([192, 0, 0, 0], 24)
            || within([192, 0, 2, 0], 24)
            || within([198, 18, 0, 0], 15)
            || within([198, 51, 100, 0], 24)
            || within([203, 0, 113, 0], 24) =>
        {
            "a reserved address"
        }
        _ => return None,
    })
}

/// Why an address is not for webhooks, if it is not. IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by that address.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    let v6 = match ip {
        IpAddr::V4(v4) => return forbidden_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    if v6 == "fd00:ec2::254".parse::<Ipv6Addr>().expect("an address") {
        return Some("a cloud metadata address");
    }
    let s = v6.segments();
    let within = |net: &str, prefix: u8| {
        in_net(IpAddr::V6(v6), net.parse::<IpAddr>().expect("an address"), prefix)
    };
    if v6.is_unspecified() {
        return Some("an unspecified address");
    }
    if v6.is_loopback() {
        return Some("a loopback address");
    }
    if let Some(v4) = v6.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if within("::", 96) {
        // IPv4-compatible (deprecated): ::a.b.c.d.
        return forbidden_v4(embedded(s[6], s[7])).or(Some("a reserved address"));
    }
    if within("64:ff9b::", 96) {
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if within("2002::", 16) {
        return forbidden_v4(embedded(s[1], s[2]));
    }
    Some(match () {
        _ if within("fc00::", 7) => "a private (unique-local) address",
        _ if within("fe80::", 10) => "a link-local address",
        _ if within("fec0::", 10) => "a private (site-local) address",
        _ if v6.is_multicast() => "a multicast address",
        _ if within("100::", 64) || within("2001:db8::", 32) => "a reserved address",
        _ => return None,
    })
}

/// Which destinations outgoing requests may reach.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Vec<AllowHost>,
}

/// A destination refused by the policy, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn normal_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl Egress {
    /// A policy allowing, besides public addresses, what `allow` lists.
    pub fn new(allow: Vec<AllowHost>) -> Self {
        Self { allow }
    }

    /// Whether the operator allow-listed this host name.
    fn name_allowed(&self, host: &str) -> bool {
        let h = normal_host(host);
        self.allow.iter().any(|a| match a {
            AllowHost::Name(n) => *n == h,
            AllowHost::Domain(d) => h.strip_suffix(d.as_str()).is_some_and(|p| p.ends_with('.')),
            AllowHost::Net { .. } => false,
        })
    }

    /// Whether an address reached through `host` may be called.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let Some(why) = forbidden(ip) else { return Ok(()) };
        if self.name_allowed(host)
            || self.allow.iter().any(|a| match a {
                AllowHost::Net { addr, prefix } => {
                    in_net(ip, *addr, *prefix)
                        || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| in_net(IpAddr::V4(v4), *addr, *prefix)))
                }
                _ => false,
            })
        {
            return Ok(());
        }
        let shown = if host.trim_matches(['[', ']']) == ip.to_string() {
            ip.to_string()
        } else {
            format!("{host} ({ip})")
        };
        Err(Refused(format!(
            "refused: {shown} is {why}; agora calls no internal address unless [alerts] \
             allow_hosts lists it"
        )))
    }

    /// Check a URL whose host is an address (no DNS involved): `Ok` for a host name, which is
    /// checked when it is resolved.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let host = url.host_str().ok_or_else(|| Refused("refused: the URL has no host".into()))?;
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => self.check_ip(host, ip),
            Err(_) => Ok(()),
        }
    }

    /// An HTTP client that resolves through this policy, follows no redirect and uses no proxy
    /// (a proxy would make the checked address the proxy's). https trusts the system's
    /// authorities and `roots`.
    pub fn client(
        &self,
        timeout: Duration,
        roots: Vec<reqwest::Certificate>,
    ) -> reqwest::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { egress: self.clone() }));
        for c in roots {
            b = b.add_root_certificate(c);
        }
        b.build()
    }
}

/// Resolves a host name once and keeps only the addresses the policy allows; refuses the name
/// when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    egress: Egress,
}

impl GuardedResolver {
    /// The addresses of `host` that may be called.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, Refused> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| Refused(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut first_refusal = None;
        let mut ok = Vec::new();
        for a in found {
            match self.egress.check_ip(host, a.ip()) {
                Ok(()) => ok.push(a),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        if ok.is_empty() {
            return Err(first_refusal
                .unwrap_or_else(|| Refused(format!("cannot resolve {host}: no address"))));
        }
        Ok(ok)
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let me = self.clone();
        Box::pin(async move {
            let addrs = me.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The policy's refusal behind an HTTP client error, if that is what it is.
pub fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if let Some(r) = x.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = x.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_forbidden_and_public_ones_not() {
        for (a, why) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::254", "metadata"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:7f00:1::", "loopback"),
        ] {
            let got = forbidden(ip(a)).unwrap_or_else(|| panic!("{a} allowed"));
            assert!(got.contains(why), "{a}: {got}");
        }
        for a in ["93.184.215.14", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert_eq!(forbidden(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn the_allow_list_opens_networks_addresses_and_names() {
        let allow: Vec<AllowHost> = ["10.0.0.0/8", "127.0.0.1", "hooks.internal", "*.corp.example"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let e = Egress::new(allow);
        assert!(e.check_ip("10.9.9.9", ip("10.9.9.9")).is_ok());
        assert!(e.check_ip("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(e.check_ip("127.0.0.2", ip("127.0.0.2")).is_err());
        assert!(e.check_ip("HOOKS.internal.", ip("192.168.0.5")).is_ok());
        assert!(e.check_ip("a.corp.example", ip("172.16.0.5")).is_ok());
        assert!(e.check_ip("corp.example", ip("172.16.0.5")).is_err());
        assert!(e.check_ip("evilcorp.example", ip("172.16.0.5")).is_err());
        let r = Egress::default().check_ip("169.254.169.254", ip("169.254.169.254")).unwrap_err();
        assert!(r.0.contains("169.254.169.254 is a cloud metadata address"), "{r}");
        assert!(r.0.contains("allow_hosts"), "{r}");
        for bad in ["10.0.0.0/33", "not a host!", "*.", "1.2.3.4/x", ""] {
            assert!(bad.parse::<AllowHost>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_with_literal_addresses_are_checked_without_dns() {
        let e = Egress::default();
        for u in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            assert!(e.check_url(&u.parse().unwrap()).is_err(), "{u}");
        }
        assert!(e.check_url(&"https://ops.example/hook".parse().unwrap()).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let r = GuardedResolver { egress: Egress::default() };
        let e = r.lookup("localhost").await.unwrap_err();
        assert!(e.0.contains("localhost (") && e.0.contains("loopback"), "{e}");
        let allowed = GuardedResolver { egress: Egress::new(vec!["localhost".parse().unwrap()]) };
        assert!(!allowed.lookup("localhost").await.unwrap().is_empty());
    }
}
