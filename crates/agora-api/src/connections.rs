//! The HTTP accept loop (in place of `axum::serve`), so that no client can hold the server: a
//! new connection must send its first request head within `header_timeout`, an idle keep-alive
//! connection must start its next request within `keep_alive` (hyper's header read timer,
//! which starts as soon as the connection waits for a request), and connections are capped in
//! total and per client address, with a reserve only trusted addresses (loopback, operators) may
//! use, so that health checks still get in while strangers hold every ordinary slot. A client
//! that stops reading its answer (or a live stream) is cut once a write has made no progress for
//! `write_timeout` ([`WriteDeadline`]).
//!
//! Accept errors (EMFILE when file descriptors run out) are logged once per episode and retried
//! after a pause growing to one second: the loop neither spins nor dies.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_ingest::limits::{ConnectionCaps, ConnectionLimits, Refused};
use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// How long a stopping server waits for open connections to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Timeouts and caps of HTTP connections.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A new connection must have sent its first request head within this time.
    pub header_timeout: Duration,
    /// An idle keep-alive connection must start its next request (head complete) within this
    /// time, or it is closed. Zero turns keep-alive off.
    pub keep_alive: Duration,
    /// A write to the client that makes no progress for this long ends the connection: a client
    /// that stops reading a large answer or a live stream does not hold its slot. Zero: never.
    pub write_timeout: Duration,
    /// Caps on concurrent connections.
    pub connections: ConnectionCaps,
    /// Reverse proxies whose `X-Forwarded-For` names the client (rate limits, live streams and
    /// the audit trail then see the client, not the proxy).
    pub proxies: agora_ingest::limits::AddrSet,
    /// HTTPS: the handshake must complete within `header_timeout` too.
    pub tls: Option<Arc<agora_ingest::tls::Tls>>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            connections: ConnectionCaps {
                total: 512,
                per_address: 64,
                per_network: 256,
                reserved: 16,
                trusted: agora_ingest::limits::AddrSet::loopback(),
            },
            proxies: agora_ingest::limits::AddrSet::default(),
            tls: None,
        }
    }
}

/// The client's address, put in every request's extensions by the accept loop (absent when the
/// router is called some other way, as in unit tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Serve `app` on `listener` until `shutdown` completes, then let open connections finish their
/// requests (for at most 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let slots = ConnectionLimits::new(limits.connections.clone());
    let proxies = Arc::new(limits.proxies.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
    if limits.keep_alive.is_zero() {
        http.keep_alive(false).header_read_timeout(limits.header_timeout);
    } else {
        http.header_read_timeout(limits.keep_alive.max(limits.header_timeout));
    }
    // Connections hold a receiver each: the loop waits for them all to drop at shutdown.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut refusals = Refusals::default();
    let mut failing = false;
    let mut pause = Duration::from_millis(10);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if !failing {
                    tracing::error!(error = %e, "HTTP accept failed; retrying");
                    failing = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut shutdown => break,
                }
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        if failing {
            tracing::info!("HTTP accept works again");
            (failing, pause) = (false, Duration::from_millis(10));
        }
        let permit = match slots.try_acquire(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                refusals.note(peer, why);
                refuse(stream);
                continue;
            }
        };
        let conn = Connection {
            http: http.clone(),
            app: app.clone(),
            peer,
            header_timeout: limits.header_timeout,
            write_timeout: limits.write_timeout,
            stop: stop_rx.clone(),
            proxies: proxies.clone(),
            tls: limits.tls.clone(),
        };
        tokio::spawn(async move {
            conn.run(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed()).await.is_err() {
        tracing::warn!(open = slots.open(), "HTTP connections still open after the grace period");
    }
    Ok(())
}

/// Errors of one connection that was already gone, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e.kind(), K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset)
}

/// The answer to a connection over the caps, written only if the socket takes it at once: the
/// request is not read, so a refused client costs no more than accept and close.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\nretry-after: 5\r\nconnection: close\r\n\
content-length: 154\r\n\r\n\
{\"type\":\"urn:agora:problem:too_many_connections\",\"title\":\"Service Unavailable\",\
\"status\":503,\"code\":\"too_many_connections\",\"detail\":\"too many connections\"}";

fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSED);
}

/// Refused connections are logged at most every ten seconds, with how many there were.
#[derive(Debug, Default)]
struct Refusals {
    since: usize,
    last: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, peer: SocketAddr, why: Refused) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(%peer, refused = self.since, "HTTP connection refused: {why}");
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

struct Connection {
    http: hyper::server::conn::http1::Builder,
    app: Router,
    peer: SocketAddr,
    header_timeout: Duration,
    write_timeout: Duration,
    stop: watch::Receiver<bool>,
    proxies: Arc<agora_ingest::limits::AddrSet>,
    tls: Option<Arc<agora_ingest::tls::Tls>>,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let stream = WriteDeadline::new(stream, self.write_timeout);
        let Some(tls) = &self.tls else { return self.drive(stream).await };
        // The handshake counts against the first request's deadline: a client that opens a
        // socket and says nothing is closed all the same.
        let started = Instant::now();
        match tokio::time::timeout(self.header_timeout, tls.acceptor().accept(stream)).await {
            Ok(Ok(s)) => {
                let left = self.header_timeout.saturating_sub(started.elapsed());
                let conn = Connection { header_timeout: left, ..self };
                conn.drive(s).await
            }
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake not done in time"),
        }
    }

    async fn drive<S>(mut self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let seen = Arc::new(Notify::new());
        let svc = Service {
            inner: TowerToHyperService::new(self.app),
            peer: ClientAddr(self.peer),
            seen: seen.clone(),
            proxies: self.proxies.clone(),
        };
        let conn = self.http.serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        let first_head = tokio::time::sleep(self.header_timeout);
        tokio::pin!(first_head);
        let (mut waiting, mut stopping) = (true, false);
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %self.peer, error = %e, "HTTP connection ended");
                    }
                    return;
                }
                _ = seen.notified(), if waiting => waiting = false,
                _ = &mut first_head, if waiting => {
                    tracing::debug!(peer = %self.peer, "HTTP connection closed: no request in time");
                    return;
                }
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A stream whose writes fail with `TimedOut` once one has waited `timeout` without progress
/// (the client's receive window stayed shut). Progress of any size restarts the clock, so a slow
/// reader is served; only one that stopped reading is cut.
struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits; reset at each progress.
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        let timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        // A year is "never" for a write, and keeps the deadline's arithmetic in range.
        let timeout = timeout.min(Duration::from_secs(365 * 86_400));
        Self { inner, timeout, timer, armed: false }
    }

    /// What a write's poll says, with the deadline applied.
    fn watch<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending if self.timeout.is_zero() => Poll::Pending,
            Poll::Pending => {
                if !self.armed {
                    self.timer.as_mut().reset(tokio::time::Instant::now() + self.timeout);
                    self.armed = true;
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}

/// The router as a hyper service, telling the connection that a request head arrived and
/// giving handlers the client's address.
#[derive(Clone)]
struct Service {
    inner: TowerToHyperService<Router>,
    peer: ClientAddr,
    seen: Arc<Notify>,
    proxies: Arc<agora_ingest::limits::AddrSet>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Service {
    type Response =
        <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Response;
    type Error = <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Error;
    type Future =
        <TowerToHyperService<Router> as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.seen.notify_one();
        let client = forwarded_client(self.peer, &self.proxies, req.headers());
        req.extensions_mut().insert(client);
        self.inner.call(req)
    }
}

/// An address as proxies write them: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:443`.
fn hop_addr(h: &str) -> Option<std::net::IpAddr> {
    let h = h.trim().trim_matches('"');
    h.parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| h.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| h.trim_start_matches('[').trim_end_matches(']').parse().ok())
}

/// The client of a request: the connection's peer, unless the peer is a trusted proxy, then the
/// nearest address of `X-Forwarded-For` (or, without it, of RFC 7239's `Forwarded: for=…`)
/// that is not one, read from the right: the entries a client wrote itself, on the left, are not
/// believed.
fn forwarded_client(
    peer: ClientAddr,
    proxies: &agora_ingest::limits::AddrSet,
    headers: &axum::http::HeaderMap,
) -> ClientAddr {
    if !proxies.contains(peer.0.ip()) {
        return peer;
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::to_owned)
            .collect()
    };
    let mut hops: Vec<std::net::IpAddr> =
        values("x-forwarded-for").iter().filter_map(|h| hop_addr(h)).collect();
    if hops.is_empty() {
        // `for=192.0.2.60;proto=https` and `for="[2001:db8::17]:4711"`; `unknown` and
        // obfuscated names (`_hidden`) are no address.
        hops = values("forwarded")
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| hop_addr(v)).flatten()
                })
            })
            .collect();
    }
    match hops.iter().rev().find(|ip| !proxies.contains(**ip)) {
        Some(ip) => ClientAddr(SocketAddr::new(*ip, 0)),
        None => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_after_the_timeout_and_a_slow_reader_is_served() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A pipe holding 64 bytes: the reader stops after the first 16.
        let (server, mut client) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(server, Duration::from_secs(5));
        let writing = tokio::spawn(async move {
            let r = w.write_all(&[7u8; 1024]).await;
            (r, tokio::time::Instant::now())
        });
        let started = tokio::time::Instant::now();
        let mut got = [0u8; 16];
        client.read_exact(&mut got).await.unwrap();
        let (r, at) = writing.await.unwrap();
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(at - started, Duration::from_secs(5), "cut 5 s after the last progress");
        // A reader taking 16 bytes every 4 s never lets a write wait 5 s: it gets everything.
        let (server, mut client) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(server, Duration::from_secs(5));
        let writing = tokio::spawn(async move { w.write_all(&[7u8; 1024]).await });
        let mut total = 0;
        while total < 1024 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            total += client.read(&mut got).await.unwrap();
        }
        writing.await.unwrap().unwrap();
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_nearest_untrusted_hop() {
        let proxies = agora_ingest::limits::AddrSet::parse(&["10.0.0.0/8"]).unwrap();
        let peer = |s: &str| ClientAddr(s.parse().unwrap());
        let h = |v: &[&str]| {
            let mut m = axum::http::HeaderMap::new();
            for x in v {
                m.append("x-forwarded-for", x.parse().unwrap());
            }
            m
        };
        let client =
            |p: &str, v: &[&str]| forwarded_client(peer(p), &proxies, &h(v)).0.ip().to_string();
        // Through the proxy: the client it saw; what the client claimed before is ignored.
        assert_eq!(client("10.0.0.2:5000", &["1.2.3.4"]), "1.2.3.4");
        assert_eq!(client("10.0.0.2:5000", &["6.6.6.6, 1.2.3.4, 10.0.0.3"]), "1.2.3.4");
        assert_eq!(client("10.0.0.2:5000", &["6.6.6.6", "[2001:db8::1]:443"]), "2001:db8::1");
        // Not through a trusted proxy: the header is the client's own word.
        assert_eq!(client("5.5.5.5:5000", &["1.2.3.4"]), "5.5.5.5");
        // Nothing usable: the proxy itself.
        assert_eq!(client("10.0.0.2:5000", &["junk"]), "10.0.0.2");
        assert_eq!(client("10.0.0.2:5000", &[]), "10.0.0.2");
        // RFC 7239's header, as its own examples write it, when X-Forwarded-For is absent.
        let fwd = |p: &str, v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.append("forwarded", v.parse().unwrap());
            forwarded_client(peer(p), &proxies, &m).0.ip().to_string()
        };
        assert_eq!(fwd("10.0.0.2:1", "for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60");
        assert_eq!(
            fwd("10.0.0.2:1", "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\""),
            "2001:db8:cafe::17"
        );
        assert_eq!(fwd("10.0.0.2:1", "For=192.0.2.43, for=10.0.0.9"), "192.0.2.43");
        assert_eq!(fwd("10.0.0.2:1", "for=unknown"), "10.0.0.2");
        assert_eq!(fwd("10.0.0.2:1", "for=_hidden;proto=https"), "10.0.0.2");
        assert_eq!(fwd("5.5.5.5:1", "for=1.2.3.4"), "5.5.5.5", "not through a trusted proxy");
    }
}
