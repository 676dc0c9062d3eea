//! Resource limits: slow and idle HTTP connections are closed, connections are capped per address
//! (and per IPv6 /48) with a reserve for trusted addresses, MQTT clients must connect in time and lose their session
//! when their token is revoked, live streams are capped and end on revocation, rate limits answer
//! 429 with `Retry-After`. Deadlines are generous: these tests check that things happen, not how
//! fast.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::helpers::{ADMIN, TestApp, problem};

/// How long a test waits for the server to close a socket it should close.
const PATIENCE: Duration = Duration::from_secs(20);

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.x: a stranger when only
/// 127.0.0.1 is trusted).
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((from, 0))).unwrap();
    s.connect(addr).await.unwrap()
}

/// Whether the server closes the socket within `PATIENCE`, while `trickle` bytes are sent one
/// at a time every half second. Whatever the server answers before closing is ignored.
async fn closed_while_trickling(s: &mut TcpStream, trickle: &[u8]) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 1024];
    let mut next = trickle.iter().cycle();
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => {}
        }
        if !trickle.is_empty() && s.write_all(&[*next.next().unwrap()]).await.is_err() {
            return true;
        }
    }
    false
}

/// Whether a new connection was refused: the server answered without being asked (503) or
/// closed it at once, rather than waiting for a request.
async fn refused(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        Err(_) => false,
        Ok(Ok(n)) => n == 0 || String::from_utf8_lossy(&buf[..n]).contains("503"),
        Ok(Err(_)) => true,
    }
}

#[tokio::test]
async fn a_request_head_trickling_one_byte_at_a_time_is_cut_off() {
    let app = TestApp::spawn_with(|c| c.limits.http.header_timeout_secs = 2).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    assert!(
        closed_while_trickling(&mut s, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
            .await,
        "a slowloris socket stayed open"
    );
    // Nothing sent at all: closed too.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_while_trickling(&mut s, b"").await, "a silent socket stayed open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(|c| c.limits.http.keep_alive_secs = 2).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: agora\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(closed_while_trickling(&mut s, b"").await, "an idle keep-alive socket stayed open");
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_total_with_a_reserve_for_health_checks() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec!["127.0.0.1/32".into()];
        c.limits.http.header_timeout_secs = 60;
        c.limits.http.max_connections = 6;
        c.limits.http.max_connections_per_address = 2;
        c.limits.http.reserved_connections = 4;
    })
    .await;
    // One address: its third connection is refused.
    let mut held = vec![
        connect_from([127, 0, 0, 2], app.addr).await,
        connect_from([127, 0, 0, 2], app.addr).await,
    ];
    let mut third = connect_from([127, 0, 0, 2], app.addr).await;
    assert!(refused(&mut third).await, "a third connection from one address was accepted");
    for s in &mut held {
        assert!(!refused(s).await);
    }
    // Strangers from other addresses fill every ordinary slot (the test's own client may hold
    // one), then are refused.
    let mut turned_away = false;
    for i in 3..12u8 {
        let mut s = connect_from([127, 0, 0, i], app.addr).await;
        if refused(&mut s).await {
            turned_away = true;
            break;
        }
        held.push(s);
    }
    assert!(turned_away, "connections were not capped in total");
    // The trusted address still gets in, through the reserve.
    let r = reqwest::Client::new().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Slots come back when connections close.
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = connect_from([127, 0, 0, 2], app.addr).await;
    assert!(!refused(&mut again).await);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_is_cut() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec!["127.0.0.1/32".into()];
        c.limits.http.write_timeout_secs = 2;
    })
    .await;
    // 100,000 points whose answer (about 7 MB of JSON) is more than the kernel's buffers hold.
    let t0 = 1_767_225_600_000_000_000i64;
    let body: String = (0..100_000i64)
        .map(|i| {
            format!(
                "weather,device=wt-1 temperature={} {}\n",
                (i % 400) as f64 / 7.0,
                t0 + i * 1_000_000_123
            )
        })
        .collect();
    let r = app
        .client
        .post(app.url("/api/v2/write?precision=ns"))
        .bearer_auth(ADMIN)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let s = TcpSocket::new_v4().unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.bind(SocketAddr::from(([127, 0, 0, 9], 0))).unwrap();
    let mut s = s.connect(app.addr).await.unwrap();
    let request = format!(
        "GET /api/v1/observations?device=wt-1&property=temperature&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&limit=100000 HTTP/1.1\r\n\
         Host: agora\r\nAuthorization: Bearer {ADMIN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    // The client reads nothing for longer than the write timeout, then all it can.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, s.read_to_end(&mut got)).await.expect("closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{}", &text[..text.len().min(200)]);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content length");
    assert!(length > 6_000_000, "the answer is larger than the buffers: {length} bytes");
    assert!(
        read.is_err() || body.len() < length,
        "the whole answer arrived ({} of {length} bytes): the stalled client was not cut",
        body.len()
    );
}

/// An MQTT 3.1.1 CONNECT with a user name.
fn mqtt_connect(user: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x82];
    body.extend(keep_alive.to_be_bytes());
    for field in ["limits-test", user] {
        body.extend((field.len() as u16).to_be_bytes());
        body.extend(field.as_bytes());
    }
    let mut p = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        p.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    p.extend(body);
    p
}

#[tokio::test]
async fn an_mqtt_client_must_connect_within_the_deadline_however_it_trickles() {
    let app = TestApp::spawn_with(|c| c.mqtt.broker.connect_timeout_secs = 2).await;
    let mqtt = app.server.as_ref().unwrap().mqtt_addr.unwrap();
    let mut s = TcpStream::connect(mqtt).await.unwrap();
    // A CONNECT announcing 100 bytes, sent one byte every half second.
    s.write_all(&[0x10, 100]).await.unwrap();
    assert!(closed_while_trickling(&mut s, b"x").await, "a socket trickling before CONNECT stayed");
}

#[tokio::test]
async fn mqtt_connections_are_capped_per_address_and_in_total() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec!["127.0.0.1/32".into()];
        c.mqtt.broker.max_connections_per_address = 2;
        c.mqtt.broker.max_connections = 3;
    })
    .await;
    let mqtt = app.server.as_ref().unwrap().mqtt_addr.unwrap();
    let _a = connect_from([127, 0, 0, 5], mqtt).await;
    let _b = connect_from([127, 0, 0, 5], mqtt).await;
    let mut c = connect_from([127, 0, 0, 5], mqtt).await;
    assert!(refused(&mut c).await, "a third MQTT connection from one address was accepted");
    let mut d = connect_from([127, 0, 0, 6], mqtt).await;
    assert!(!refused(&mut d).await, "another address has room");
    let mut e = connect_from([127, 0, 0, 7], mqtt).await;
    assert!(refused(&mut e).await, "a fourth MQTT connection in all was accepted");
}

/// An MQTT 3.1.1 QoS 1 PUBLISH.
fn mqtt_publish(pkid: u16, topic: &str, payload: &str) -> Vec<u8> {
    let len = 2 + topic.len() + 2 + payload.len();
    assert!(len < 128, "one length byte");
    let mut p = vec![0x32, len as u8];
    p.extend((topic.len() as u16).to_be_bytes());
    p.extend(topic.as_bytes());
    p.extend(pkid.to_be_bytes());
    p.extend(payload.as_bytes());
    p
}

/// Read the PUBACKs of QoS 1 messages `pkids`, in order.
async fn read_acks(s: &mut TcpStream, pkids: std::ops::RangeInclusive<u16>) {
    for i in pkids {
        let mut ack = [0u8; 4];
        tokio::time::timeout(PATIENCE, s.read_exact(&mut ack)).await.unwrap().unwrap();
        assert_eq!(ack, [0x40, 2, (i >> 8) as u8, i as u8], "acknowledged in order");
    }
}

/// An MQTT connection from `from` with `token`, CONNACK read.
async fn mqtt_session(from: [u8; 4], mqtt: SocketAddr, token: &str, keep_alive: u16) -> TcpStream {
    let mut s = connect_from(from, mqtt).await;
    s.write_all(&mqtt_connect(token, keep_alive)).await.unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "connected");
    s
}

#[tokio::test]
async fn a_silent_mqtt_client_is_dropped_after_one_and_a_half_keep_alives() {
    let app = TestApp::spawn().await;
    let mqtt = app.server.as_ref().unwrap().mqtt_addr.unwrap();
    let token = app.token("ingest", None).await;
    // Keep-alive 2 s: a PINGREQ every second keeps the session past it...
    let mut s = mqtt_session([127, 0, 0, 1], mqtt, &token, 2).await;
    for _ in 0..5 {
        s.write_all(&[0xC0, 0]).await.unwrap();
        let mut pong = [0u8; 2];
        s.read_exact(&mut pong).await.unwrap();
        assert_eq!(pong, [0xD0, 0]);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // ...then silence ends it.
    assert!(closed_while_trickling(&mut s, b"").await, "a silent client stayed connected");
    // Bytes of a packet that never completes are silence too.
    let mut s = mqtt_session([127, 0, 0, 1], mqtt, &token, 2).await;
    s.write_all(&[0x32, 100]).await.unwrap();
    assert!(closed_while_trickling(&mut s, b"x").await, "a client trickling a packet stayed");
}

#[tokio::test]
async fn an_mqtt_token_over_its_message_rate_is_read_slower_and_loses_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec!["127.0.0.1/32".into()];
        c.mqtt.broker.messages_per_token = 5.0;
        c.mqtt.broker.messages_per_token_burst = 5.0;
    })
    .await;
    let mqtt = app.server.as_ref().unwrap().mqtt_addr.unwrap();
    let token = app.token("ingest", None).await;
    let t0 = 1_767_225_600i64;
    let message = |i: u16| {
        let payload = json!({"ts": (t0 + i64::from(i)) * 1000, "values": {"laeq": i}}).to_string();
        mqtt_publish(i, "agora/noise-9/telemetry", &payload)
    };
    // 20 messages at once: five within the burst, fifteen owed at five a second. They arrived
    // together, so they are stored and acknowledged together; the debt is repaid in 3 s.
    let started = Instant::now();
    let mut s = mqtt_session([127, 0, 0, 7], mqtt, &token, 600).await;
    s.write_all(&(1..=20).flat_map(message).collect::<Vec<u8>>()).await.unwrap();
    read_acks(&mut s, 1..=20).await;
    drop(s);
    // A new connection of the same token inherits the debt: its first message waits for it.
    let mut s = mqtt_session([127, 0, 0, 7], mqtt, &token, 600).await;
    s.write_all(&message(21)).await.unwrap();
    read_acks(&mut s, 21..=21).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500), "the 21st message was read after {took:?}");
    // Nothing was refused or lost on the way.
    assert_eq!(app.values("noise-9", "laeq", t0, t0 + 100).await.len(), 21);
    // The pause is the endpoint's doing, not the client's silence: with a 2-s keep-alive (3 s
    // of silence allowed), a client of another token owing 20 messages (4 s) stays silent
    // 5.5 s, and is still connected.
    let other = app.token("ingest", None).await;
    let mut s = mqtt_session([127, 0, 0, 8], mqtt, &other, 2).await;
    s.write_all(&(101..=125).flat_map(message).collect::<Vec<u8>>()).await.unwrap();
    read_acks(&mut s, 101..=125).await;
    tokio::time::sleep(Duration::from_millis(5500)).await;
    s.write_all(&[0xC0, 0]).await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(pong, [0xD0, 0], "still connected after the pause");
    assert_eq!(app.values("noise-9", "laeq", t0 + 100, t0 + 200).await.len(), 25);
}

/// The id of the token named `name`.
async fn token_id(app: &TestApp, name: &str) -> String {
    let tokens = app.get_json("/api/v1/tokens").await;
    let t = tokens["tokens"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap();
    t["id"].as_str().unwrap().to_owned()
}

async fn revoke(app: &TestApp, id: &str) {
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn a_revoked_tokens_mqtt_session_ends_within_seconds() {
    let app = TestApp::spawn().await;
    let mqtt = app.server.as_ref().unwrap().mqtt_addr.unwrap();
    let token = app.token("ingest", None).await;
    let mut s = mqtt_session([127, 0, 0, 1], mqtt, &token, 600).await;
    // Still connected a moment later.
    let mut buf = [0u8; 64];
    assert!(tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.is_err());
    revoke(&app, &token_id(&app, "ingest test").await).await;
    assert!(closed_while_trickling(&mut s, b"").await, "the revoked token's session went on");
}

#[tokio::test]
async fn live_streams_are_capped() {
    let app = TestApp::spawn_with(|c| c.limits.live.max_streams = 2).await;
    let _a = app.get("/api/v1/live").send().await.unwrap();
    let _b = app.get("/api/v1/live").send().await.unwrap();
    assert_eq!(_a.status(), 200);
    let r = app.get("/api/v1/live").send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    problem(r, 503, "too_many_connections").await;
    // A stream that ends gives its place back.
    drop(_a);
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if app.get("/api/v1/live").send().await.unwrap().status() == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the place of a closed stream was not given back");
}

/// The value of a metric in `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.split(' ').next() == Some(name));
    line.and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test]
async fn every_live_stream_shares_one_computation_of_the_device_states() {
    let app = TestApp::spawn().await;
    let mut streams = Vec::new();
    for _ in 0..8 {
        let s = app.get("/api/v1/live").send().await.unwrap();
        assert_eq!(s.status(), 200);
        streams.push(s);
    }
    assert_eq!(metric(&app, "agora_live_streams").await, 8.0);
    // States are computed every 5 s: about three times in 11 s, for the eight streams together
    // (one computation per stream would be about 24).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let n = metric(&app, "agora_live_state_snapshots_total").await;
    assert!((2.0..=4.0).contains(&n), "{n} computations of the device states for 8 streams");
}

#[tokio::test]
async fn live_streams_are_capped_per_address() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec!["127.0.0.1/32".into()];
        c.limits.live.max_streams_per_address = 2;
    })
    .await;
    let from = |ip: &str| {
        reqwest::Client::builder().local_address(Some(ip.parse().unwrap())).build().unwrap()
    };
    let (a, b) = (from("127.0.0.3"), from("127.0.0.4"));
    let live = app.url("/api/v1/live");
    let _one = a.get(&live).send().await.unwrap();
    let _two = a.get(&live).send().await.unwrap();
    assert_eq!(_two.status(), 200);
    problem(a.get(&live).send().await.unwrap(), 503, "too_many_connections").await;
    assert_eq!(b.get(&live).send().await.unwrap().status(), 200, "another address has room");
}

#[tokio::test]
async fn ingest_is_rate_limited_per_address_whatever_the_token() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec![];
        c.limits.rate.ingest_per_address = 0.05;
        c.limits.rate.ingest_per_address_burst = 3.0;
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..6 {
        tokens.push(app.token("ingest", None).await);
    }
    // A fresh token for every request: the address's budget runs out all the same.
    let mut statuses = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let r = app
            .post("/api/v2/write?precision=s")
            .header("Authorization", format!("Token {token}"))
            .body(format!("air,device=aq-1,site=hotel-de-ville pm10={i} 1767225600"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
    }
    assert_eq!(statuses, [204, 204, 204, 429]);
}

#[tokio::test]
async fn a_live_stream_ends_when_its_token_is_revoked() {
    let app = TestApp::spawn().await;
    let token = app.token("read", None).await;
    let mut events = app.get("/api/v1/live").bearer_auth(&token).send().await.unwrap();
    assert_eq!(events.status(), 200);
    revoke(&app, &token_id(&app, "read test").await).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Err(_) => panic!("the revoked token's live stream went on"),
            Ok(Ok(Some(_))) => continue,
            Ok(_) => break,
        }
    }
}

#[tokio::test]
async fn anonymous_reads_and_ingest_tokens_are_rate_limited_with_retry_after() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec![];
        c.limits.rate.public_per_address = 0.5;
        c.limits.rate.public_per_address_burst = 3.0;
        c.limits.rate.ingest_per_token = 0.5;
        c.limits.rate.ingest_per_token_burst = 3.0;
    })
    .await;
    let mut limited = None;
    for _ in 0..10 {
        let r = app.get("/api/v1/public/map").send().await.unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let r = limited.expect("anonymous reads were not limited");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    problem(r, 429, "rate_limited").await;
    // Operators with a valid token are not limited; a bogus token is an anonymous client.
    assert_eq!(
        app.get("/api/v1/public/map").bearer_auth(ADMIN).send().await.unwrap().status(),
        200
    );
    let r = app.get("/api/v1/public/map").bearer_auth("agora_bogus").send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Ingest: per token.
    let token = app.token("ingest", None).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let r = app
            .post("/api/v2/write?precision=s")
            .header("Authorization", format!("Token {token}"))
            .body(format!("air,device=aq-1,site=hotel-de-ville pm10={i} 1767225600"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["code"], "rate_limited");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 204), "{statuses:?}");
    // Another token is not affected.
    let other = app.token("ingest", None).await;
    let r = app
        .post("/api/v2/write?precision=s")
        .header("Authorization", format!("Token {other}"))
        .body("air,device=aq-1,site=hotel-de-ville pm10=1 1767225601")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// The real binary with at most 128 open files, as on a small, badly tuned server.
struct ShortOfFiles {
    child: std::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ShortOfFiles {
    fn spawn() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agora.toml");
        std::fs::write(
            &config,
            "[limits]\ntrusted = [\"127.0.0.1/32\"]\n[limits.http]\nmax_connections = 32\n\
             max_connections_per_address = 1000\nheader_timeout_secs = 60\n",
        )
        .unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_agora")])
            .args(["serve", "--http", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(dir.path().join("data"))
            .env("AGORA_ADMIN_TOKEN", ADMIN)
            .env("AGORA_LOG", "error")
            .env("AGORA_MQTT_LISTEN", "off")
            .env_remove("AGORA_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(a) = line.strip_prefix("agora listening on http://") {
                break a.parse().unwrap();
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, _dir: dir }
    }
}

impl Drop for ShortOfFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn health_checks_answer_while_strangers_flood_a_server_short_of_file_descriptors() {
    let server = ShortOfFiles::spawn();
    // More sockets than the server has file descriptors.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect_from([127, 0, 0, 2], server.addr).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let r = client.get(format!("http://{}/healthz", server.addr)).send().await;
    assert_eq!(r.expect("/healthz answers during the flood").status(), 200);
    // Once the flood is over, strangers are served again.
    drop(flood);
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let s = connect_from([127, 0, 0, 3], server.addr).await;
        let mut s = s;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: agora\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
            && String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200")
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "the server did not recover after the flood");
}

#[tokio::test]
async fn a_request_body_trickling_one_byte_at_a_time_is_cut_off() {
    let app = TestApp::spawn_with(|c| c.limits.http.body_timeout_secs = 2).await;
    let mut s = connect_from([127, 0, 0, 9], app.addr).await;
    // A valid token and a head announcing more than the client will ever send.
    let head = format!(
        "POST /api/v1/observations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n["
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    assert!(closed_while_trickling(&mut s, b" ").await, "the server keeps a slow upload");
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test]
async fn an_ingest_request_without_a_valid_token_is_refused_before_its_body_is_read() {
    let app = TestApp::spawn().await;
    let mut s = connect_from([127, 0, 0, 10], app.addr).await;
    // 16 MiB announced, nothing sent: the answer must not wait for the body.
    let head = "POST /api/v2/write HTTP/1.1\r\nHost: x\r\nAuthorization: Token not-a-token\r\nContent-Length: 16000000\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("unauthorized"), "{answer}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limits_and_audit_address() {
    // This test's client plays the reverse proxy (127.0.0.1), forwarding two clients.
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec![];
        c.limits.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.limits.rate.public_per_address = 0.5;
        c.limits.rate.public_per_address_burst = 3.0;
    })
    .await;
    let get = |client: &'static str| {
        app.get("/api/v1/public/map").header("x-forwarded-for", client).send()
    };
    let mut a = Vec::new();
    for _ in 0..5 {
        a.push(get("203.0.113.5").await.unwrap().status().as_u16());
    }
    assert_eq!(&a[..3], [200, 200, 200]);
    assert_eq!(a[4], 429, "{a:?}");
    // Another client behind the same proxy has its own bucket.
    assert_eq!(get("203.0.113.6").await.unwrap().status(), 200);
    // A client cannot pick its address by writing the header itself: the proxy appends the one
    // it saw, and that is the one believed.
    let r = app
        .get("/api/v1/public/map")
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The audit trail records the client, not the proxy.
    let r = app
        .post("/api/v1/communes")
        .bearer_auth(ADMIN)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"insee": "13055", "name": "Marseille"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let trail = app.get_json("/api/v1/audit?action=POST%20/api/v1/communes").await;
    assert_eq!(trail[0]["address"], "203.0.113.7", "{trail}");
}

#[tokio::test]
async fn an_ipv6_client_cycling_its_64s_is_held_by_the_rate_of_its_48() {
    // The test's client plays the proxy, forwarding clients from several /64s of one /48.
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec![];
        c.limits.trusted_proxies = vec!["127.0.0.1/32".into()];
        c.limits.rate.public_per_address = 0.01;
        c.limits.rate.public_per_address_burst = 3.0;
        c.limits.rate.public_per_network = 0.01;
        c.limits.rate.public_per_network_burst = 5.0;
    })
    .await;
    let app = &app;
    let get = |client: String| async move {
        let r = app.get("/api/v1/public/map").header("x-forwarded-for", client).send().await;
        r.unwrap().status().as_u16()
    };
    // Each /64 is a new address with its own bucket of 3; the /48's bucket of 5 runs out first.
    let mut seen = Vec::new();
    for i in 1..=6 {
        seen.push(get(format!("2001:db8:48:{i}::1")).await);
    }
    assert_eq!(seen, [200, 200, 200, 200, 200, 429]);
    // Two addresses of one /64 are one client: its fourth request is refused by its own bucket.
    let mut one = Vec::new();
    for host in
        ["2001:db8:50:1::1", "2001:db8:50:1::2", "2001:db8:50:1:ffff::9", "2001:db8:50:1::1"]
    {
        one.push(get(host.into()).await);
    }
    assert_eq!(one, [200, 200, 200, 429]);
    // Another /48 and IPv4 clients are not held by the first /48.
    assert_eq!(get("2001:db8:49:1::1".into()).await, 200);
    for _ in 0..3 {
        assert_eq!(get("203.0.113.9".into()).await, 200);
    }
}

/// The IPv6 addresses `scripts/test.sh` puts on `lo` for the test below: three /64s of one /48
/// and one of another (documentation addresses, RFC 3849).
const V6_SOURCES: [&str; 4] =
    ["2001:db8:48:1::1", "2001:db8:48:2::1", "2001:db8:48:3::1", "2001:db8:49:1::1"];

/// A TCP connection to `addr` from the local IPv6 address `from`.
async fn connect_from_v6(from: &str, addr: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v6().unwrap();
    let ip: std::net::Ipv6Addr = from.parse().unwrap();
    s.bind(SocketAddr::from((ip, 0))).unwrap_or_else(|e| {
        panic!(
            "cannot bind {from}: {e}. This test connects from several IPv6 addresses; \
             scripts/test.sh adds them (as root: ip -6 addr add {from}/128 dev lo nodad)"
        )
    });
    s.connect(addr).await.unwrap()
}

#[tokio::test]
async fn an_ipv6_host_cycling_its_64s_is_held_by_the_connection_cap_of_its_48() {
    let app = TestApp::spawn_with(|c| {
        c.http = "[::1]:0".parse().unwrap();
        c.limits.trusted = vec!["::1/128".into()];
        c.limits.http.header_timeout_secs = 60;
        c.limits.http.max_connections_per_address = 2;
        c.limits.http.max_connections_per_network = 3;
    })
    .await;
    let [a, b, c, other] = V6_SOURCES;
    // Two from one /64 and one from a second: the /48 holds three.
    let mut held = vec![
        connect_from_v6(a, app.addr).await,
        connect_from_v6(a, app.addr).await,
        connect_from_v6(b, app.addr).await,
    ];
    // A third /64, which holds nothing yet, is refused for its network.
    let mut fourth = connect_from_v6(c, app.addr).await;
    assert!(refused(&mut fourth).await, "a host cycling its /64s was not held by its /48");
    for s in &mut held {
        assert!(!refused(s).await);
    }
    // Another /48 gets in, as does the trusted address.
    let mut elsewhere = connect_from_v6(other, app.addr).await;
    assert!(!refused(&mut elsewhere).await);
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
    // A slot of the /48 comes back when one of its connections closes.
    held.pop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = connect_from_v6(c, app.addr).await;
    assert!(!refused(&mut again).await);
}

#[tokio::test]
async fn an_ingest_token_sending_large_bodies_waits_for_its_byte_rate() {
    let app = TestApp::spawn_with(|c| {
        c.limits.trusted = vec![];
        c.limits.rate.ingest_mib_per_token = 1.0;
        c.limits.rate.ingest_mib_per_token_burst = 1.0;
    })
    .await;
    let token = app.token("ingest", None).await;
    // 2 MiB of good lines: taken whole (the body is read as it comes), leaving 1 MiB owed.
    let body = |from: i64| {
        let mut s = String::new();
        let mut i = 0;
        while s.len() < 2 << 20 {
            s.push_str(&format!("air,device=aq-1 pm10={} {}\n", i % 97, from + i));
            i += 1;
        }
        s
    };
    let write = |token: String, body: String| {
        let app = &app;
        async move {
            app.post("/api/v2/write?precision=s")
                .header("Authorization", format!("Token {token}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(write(token.clone(), body(1_767_225_600)).await.status(), 204);
    let r = write(token.clone(), body(1_767_325_600)).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "one MiB owed at one MiB/s: {wait}");
    // Another token is not held by it.
    let other = app.token("ingest", None).await;
    assert_eq!(write(other, body(1_767_425_600)).await.status(), 204);
    // Once the debt is repaid, the token writes again.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(write(token, body(1_767_525_600)).await.status(), 204);
}
