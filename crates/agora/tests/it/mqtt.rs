//! MQTT subscriptions against a real Mosquitto broker, with `mosquitto_pub` as the device side.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agora_ingest::MessageFormat as Format;
use agora_ingest::mqtt::Subscription;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// A Mosquitto broker on a free loopback port, stopped when dropped.
pub(crate) struct Mosquitto {
    child: Child,
    pub(crate) port: u16,
}

impl Mosquitto {
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("mosquitto");
        let child = Command::new(bin)
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (scripts/test.sh installs it)");
        // Owned by the guard from here on: it is killed and reaped even if start-up fails.
        let broker = Self { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not start on port {port}");
    }

    pub(crate) fn publish(&self, topic: &str, payload: &str) {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                payload,
            ])
            .status()
            .expect("mosquitto_pub is installed")
            .success();
        assert!(ok, "mosquitto_pub failed");
    }

    pub(crate) fn subscription(&self, format: Format, topics: &[&str]) -> Subscription {
        Subscription {
            name: "test".into(),
            broker: agora_mqtt::Broker {
                host: "127.0.0.1".into(),
                port: self.port,
                ..Default::default()
            },
            client_id: Some(format!("agora-test-{}", self.port)),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            format,
            layouts: Default::default(),
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn uplink(dedup: &str, fcnt: i64, pm10: f64, minute: i64) -> String {
    json!({
        "deduplicationId": dedup,
        "time": format!("2026-01-01T00:{minute:02}:00Z"),
        "deviceInfo": {"tenantId": "t", "applicationId": "a", "applicationName": "air", "deviceProfileName": "SDS011",
            "deviceName": "aq-torse-9", "devEui": "0101010101010101", "tags": {"kind": "air_quality", "site": "hotel-de-ville"}},
        "devAddr": "00189440", "fCnt": fcnt, "fPort": 1, "data": "",
        "object": {"pm10": pm10},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -91, "snr": 7.5}]
    })
    .to_string()
}

/// Poll until `f` is true (at most 10 s).
pub(crate) async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const T: i64 = 1_767_225_600;

async fn pm10(app: &TestApp) -> Vec<(String, Value)> {
    let r = app
        .get(&format!(
            "/api/v1/observations?device=0101010101010101&property=pm10&from={T}&to={}",
            T + 3600
        ))
        .bearer_auth(crate::helpers::ADMIN)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Vec::new();
    }
    let b: Value = r.json().await.unwrap();
    b["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["time"].as_str().unwrap().to_owned(), p["value"].clone()))
        .collect()
}

#[tokio::test]
async fn chirpstack_uplinks_through_mosquitto_dedup_and_dead_letters() {
    let broker = Mosquitto::start();
    let sub = broker.subscription(Format::Chirpstack, &["application/+/device/+/event/+"]);
    let mut app = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![sub]).await;
    // Wait for the subscription: publish until the first uplink lands.
    assert!(
        eventually(async || {
            broker.publish(
                "application/a/device/0101010101010101/event/up",
                &uplink("d-1", 1, 12.5, 0),
            );
            !pm10(&app).await.is_empty()
        })
        .await,
        "uplink never stored"
    );
    // The same uplink again (another gateway path): ignored. A new one: stored.
    broker.publish("application/a/device/0101010101010101/event/up", &uplink("d-1", 1, 99.0, 0));
    broker.publish("application/a/device/0101010101010101/event/up", &uplink("d-2", 2, 14.0, 1));
    broker.publish("application/a/device/0101010101010101/event/up", "{not json");
    assert!(eventually(async || pm10(&app).await.len() == 2).await);
    assert_eq!(
        pm10(&app).await,
        vec![
            ("2026-01-01T00:00:00Z".into(), json!(12.5)),
            ("2026-01-01T00:01:00Z".into(), json!(14.0))
        ]
    );
    let d = app.get_json("/api/v1/devices/0101010101010101").await;
    assert_eq!(d["device"]["kind"], "air_quality");
    assert_eq!(d["device"]["site"], "hotel-de-ville");
    let props: Vec<&str> =
        d["series"].as_array().unwrap().iter().map(|s| s["property"].as_str().unwrap()).collect();
    assert_eq!(props, ["f_cnt", "gateways", "pm10", "rssi", "snr"]);
    assert!(
        eventually(async || {
            let r = app.get_json("/api/v1/rejects").await;
            r["rejects"].as_array().unwrap().iter().any(|x| {
                x["raw"] == "{not json"
                    && x["source"].as_str().unwrap().contains("application/a/device")
            })
        })
        .await,
        "the undecodable message is kept as a dead letter with its topic"
    );
    // After a restart the uplinks already stored are still known (issue 18, item 6): the first
    // one redelivered — with another value, to see it — is ignored, a new one stored.
    app.restart().await;
    broker.publish("application/a/device/0101010101010101/event/up", &uplink("d-1", 1, 77.0, 0));
    broker.publish("application/a/device/0101010101010101/event/up", &uplink("d-3", 3, 15.0, 2));
    assert!(eventually(async || pm10(&app).await.len() == 3).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pm10(&app).await[0], ("2026-01-01T00:00:00Z".into(), json!(12.5)));
    assert_eq!(pm10(&app).await[2], ("2026-01-01T00:02:00Z".into(), json!(15.0)));
}

#[tokio::test]
async fn messages_published_while_agora_is_down_are_stored_once_after_restart() {
    let broker = Mosquitto::start();
    let sub = broker.subscription(Format::AgoraJson, &["agora/+/telemetry"]);
    let mut app = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![sub]).await;
    let count = async |app: &TestApp| -> usize {
        let r = app
            .get(&format!(
                "/api/v1/observations?device=noise-1&property=laeq&from={T}&to={}",
                T + 86_400
            ))
            .bearer_auth(crate::helpers::ADMIN)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            return 0;
        }
        r.json::<Value>().await.unwrap()["count"].as_u64().unwrap() as usize
    };
    assert!(
        eventually(async || {
            broker.publish(
                "agora/noise-1/telemetry",
                &json!({"ts": T * 1000, "values": {"laeq": 50.5}}).to_string(),
            );
            count(&app).await == 1
        })
        .await
    );
    // Stop agora; the broker keeps its persistent session and queues QoS 1 messages.
    let server = app.server.take().unwrap();
    server.shutdown().await.unwrap();
    for i in 1..=20i64 {
        broker.publish(
            "agora/noise-1/telemetry",
            &json!({"ts": (T + i * 60) * 1000, "values": {"laeq": 50.5 + i as f64}}).to_string(),
        );
    }
    app.restart_stopped().await;
    assert!(eventually(async || count(&app).await == 21).await, "got {}", count(&app).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&app).await, 21, "each message stored exactly once");
}

/// What `mosquitto_pub` said: whether it succeeded, and its error output.
struct Published {
    ok: bool,
    said: String,
}

/// Publish with `mosquitto_pub` speaking MQTT `version` (`mqttv31`, `mqttv311`, `mqttv5`) to
/// agora's own endpoint. The client runs on a blocking thread (the server under test shares this
/// test's runtime), under `timeout` so that a client left waiting fails the test.
async fn publish_v(version: &str, port: u16, user: &str, topic: &str, payload: &str) -> Published {
    let args: Vec<String> = [
        "10",
        "mosquitto_pub",
        "-V",
        version,
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-u",
        user,
        "-t",
        topic,
        "-m",
        payload,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout").args(&args).output().expect("mosquitto_pub is installed")
    })
    .await
    .unwrap();
    assert_ne!(out.status.code(), Some(124), "mosquitto_pub was left waiting");
    Published { ok: out.status.success(), said: String::from_utf8_lossy(&out.stderr).into_owned() }
}

#[tokio::test]
async fn devices_publish_to_agoras_own_mqtt_endpoint_in_mqtt_3_1_3_1_1_and_5() {
    let app = TestApp::spawn().await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    let token = app.token("ingest", None).await;
    let bound = app.token("ingest", Some("lamp-9")).await;
    let ts = T * 1000;
    for (i, version) in ["mqttv31", "mqttv311", "mqttv5"].into_iter().enumerate() {
        let publish = |user: String, topic: String, payload: String| async move {
            publish_v(version, port, &user, &topic, &payload).await
        };
        let t = ts + i as i64 * 1000;
        let at = T + i as i64;
        // When mosquitto_pub returns, its QoS 1 message was acknowledged, hence durable.
        let p = publish(
            token.clone(),
            "agora/noise-9/telemetry".into(),
            json!({"ts": t, "values": {"laeq": 55.5 + i as f64, "LAmax": 70.1}}).to_string(),
        )
        .await;
        assert!(p.ok, "{version}: {}", p.said);
        assert_eq!(app.values("noise-9", "laeq", at, at + 1).await[0].1, json!(55.5 + i as f64));
        assert_eq!(app.values("noise-9", "lamax", at, at + 1).await[0].1, json!(70.1));
        // ThingsBoard device API: the token is bound to the device.
        let p = publish(
            bound.clone(),
            "v1/devices/me/telemetry".into(),
            json!([{"ts": t, "values": {"power": 40.5}}]).to_string(),
        )
        .await;
        assert!(p.ok, "{version}: {}", p.said);
        assert_eq!(app.values("lamp-9", "power_w", at, at + 1).await[0].1, json!(40.5));
        // ThingsBoard gateway API.
        let p = publish(
            token.clone(),
            "v1/gateway/telemetry".into(),
            json!({"Bin 3": [{"ts": t, "values": {"fill_level": 55}}]}).to_string(),
        )
        .await;
        assert!(p.ok, "{version}: {}", p.said);
        assert_eq!(app.values("bin-3", "fill_level", at, at + 1).await[0].1, json!(55.0));
        // Refused whole and kept as dead letters: a bound token writing for another device, an
        // unknown topic, a malformed payload. MQTT 3.1.1 acknowledges them all the same (it has
        // no way to say more); MQTT 5 answers with the reason code and string.
        let refused = [
            (
                bound.clone(),
                "agora/other-1/telemetry",
                "{\"power\": 1}",
                "only write for device lamp-9",
            ),
            (token.clone(), "city/whatever", "{}", "unknown topic \"city/whatever\""),
            (token.clone(), "agora/noise-9/telemetry", "{oops", "not valid JSON"),
        ];
        for (user, topic, payload, reason) in refused {
            let p = publish(user, topic.into(), payload.into()).await;
            assert!(p.ok, "{version} {topic}: {}", p.said);
            if version == "mqttv5" {
                // mosquitto_pub prints the reason code and string of the PUBACK.
                let said = p.said.to_lowercase();
                assert!(
                    ["topic name invalid", "payload format invalid", "not authori"]
                        .iter()
                        .any(|r| said.contains(r)),
                    "{version} {topic}: {said}"
                );
                assert!(p.said.contains(reason), "{version} {topic}: {}", p.said);
            } else {
                assert!(p.said.is_empty(), "{version} {topic}: {}", p.said);
            }
            let r = app.get_json("/api/v1/rejects").await;
            let reasons: Vec<&str> = r["rejects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["reason"].as_str().unwrap())
                .collect();
            assert!(reasons.iter().any(|x| x.contains(reason)), "{version}: {reasons:?}");
        }
        // A wrong token: the connection is refused.
        let p = publish("agora_wrong".into(), "agora/noise-9/telemetry".into(), "{}".into()).await;
        assert!(!p.ok);
        assert!(
            p.said.to_lowercase().contains("bad user name or password"),
            "{version}: {}",
            p.said
        );
        // A reader connects (SensorThings' Observations) but may not publish: MQTT 5 is told so in
        // the PUBACK, older versions by the connection closing.
        let read = app.token("read", None).await;
        let p = publish(read, "agora/noise-9/telemetry".into(), "{}".into()).await;
        if version == "mqttv5" {
            assert!(p.said.to_lowercase().contains("not authori"), "{version}: {}", p.said);
        } else {
            assert!(!p.ok, "{version}: {}", p.said);
        }
    }
}

#[tokio::test]
async fn two_nodes_split_one_stream_with_a_shared_subscription() {
    let broker = Mosquitto::start();
    let sub = |id: &str| Subscription {
        client_id: Some(format!("agora-{id}-{}", broker.port)),
        ..broker.subscription(Format::AgoraJson, &["$share/agora/agora/+/telemetry"])
    };
    let (s1, s2) = (sub("node1"), sub("node2"));
    let a = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![s1]).await;
    let b = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![s2]).await;
    let count = async |app: &TestApp| -> u64 {
        app.get_json("/api/v1/stats").await["points"].as_u64().unwrap()
    };
    // Wait until both nodes have joined the group (each has received something).
    let mut sent = 0i64;
    assert!(
        eventually(async || {
            sent += 1;
            broker.publish(
                &format!("agora/d-{sent}/telemetry"),
                &json!({"ts": (T + sent) * 1000, "values": {"laeq": 50}}).to_string(),
            );
            count(&a).await > 0 && count(&b).await > 0
        })
        .await,
        "both nodes receive part of the stream"
    );
    for _ in 0..40 {
        sent += 1;
        broker.publish(
            &format!("agora/d-{sent}/telemetry"),
            &json!({"ts": (T + sent) * 1000, "values": {"laeq": 50}}).to_string(),
        );
    }
    assert!(eventually(async || count(&a).await + count(&b).await == sent as u64).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (na, nb) = (count(&a).await, count(&b).await);
    assert_eq!(na + nb, sent as u64, "each message stored once, by one node");
    assert!(na > 0 && nb > 0);
}

#[tokio::test]
async fn a_subscription_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::helpers::private_ca(d);
    // Mosquitto started as root drops to its own user, which must be able to read the files.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ca.pem", "server.pem", "server.key"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
            d.display()
        ),
    )
    .unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("mosquitto");
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Mosquitto { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let with_ca = |ca: &str| {
        let mut sub = broker.subscription(Format::AgoraJson, &["agora/+/telemetry"]);
        sub.broker.tls = true;
        sub.broker.ca_file = Some(d.join(ca));
        sub
    };
    let sub = with_ca("ca.pem");
    let app = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![sub]).await;
    let ca = d.join("ca.pem");
    let publish = || {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-t",
                "agora/tls-1/telemetry",
                "-m",
            ])
            .arg(json!({"ts": T * 1000, "values": {"laeq": 48.5}}).to_string())
            .arg("--cafile")
            .arg(&ca)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_pub over TLS failed");
    };
    assert!(
        eventually(async || {
            publish();
            app.get_json("/api/v1/stats").await["points"].as_u64().unwrap() > 0
        })
        .await,
        "nothing arrived over TLS"
    );
    // A subscription to a TLS broker without trusting its CA gets nothing, and says so at start-up
    // when the CA file is missing.
    let bad = with_ca("missing.pem");
    let mut config = agora::config::Config {
        data_dir: d.join("bad"),
        http: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    config.mqtt.broker.enabled = false;
    config.mqtt.subscriptions = vec![bad];
    let err = agora::serve::start(agora::serve::ServeOptions {
        config,
        admin_token: None,
        clock: std::sync::Arc::new(agora_model::SystemClock),
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn unknown_dev_eui_with_registration_off_is_a_dead_letter_until_declared() {
    let broker = Mosquitto::start();
    let sub = broker.subscription(Format::Chirpstack, &["application/+/device/+/event/+"]);
    let app = TestApp::spawn_with(|c| {
        c.ingest.auto_register_devices = false;
        c.mqtt.subscriptions = vec![sub];
    })
    .await;
    // Publish until the subscription is up and the uplink has been refused.
    assert!(
        eventually(async || {
            broker.publish(
                "application/a/device/0101010101010101/event/up",
                &uplink("u-1", 1, 12.5, 0),
            );
            let r = app.get_json("/api/v1/rejects").await;
            r["rejects"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["reason"].as_str().unwrap().contains("unknown device 0101010101010101"))
        })
        .await,
        "the uplink of an unknown device is kept as a dead letter"
    );
    assert!(pm10(&app).await.is_empty());
    let dev = json!({"id": "0101010101010101", "kind": "air_quality", "site": "hotel-de-ville"});
    assert_eq!(
        app.post("/api/v1/devices")
            .bearer_auth(crate::helpers::ADMIN)
            .json(&dev)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let r: Value = app
        .post("/api/v1/rejects/replay")
        .bearer_auth(crate::helpers::ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["replayed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(pm10(&app).await, vec![("2026-01-01T00:00:00Z".into(), json!(12.5))]);
}

#[tokio::test]
async fn a_byte_layout_uplink_refused_whole_replays_with_its_subscriptions_corrected_layout() {
    let broker = Mosquitto::start();
    let layout = |ty: &str| {
        let f: agora_ingest::chirpstack::ByteField = serde_json::from_value(
            json!({"offset": 0, "type": ty, "scale": 0.1, "property": "pm10"}),
        )
        .unwrap();
        std::collections::HashMap::from([("SDS011".to_owned(), vec![f])])
    };
    // The layout first configured is wrong: 4 bytes where the sensor sends 2.
    let sub = Subscription {
        layouts: layout("u32be"),
        ..broker.subscription(Format::Chirpstack, &["application/+/device/+/event/+"])
    };
    let mut app = TestApp::spawn_with(|c| c.mqtt.subscriptions = vec![sub]).await;
    // 0x012c = 300, scaled by 0.1: 30.0 µg/m³.
    let mut up: Value = serde_json::from_str(&uplink("u-layout", 1, 0.0, 0)).unwrap();
    up.as_object_mut().unwrap().remove("object");
    up["data"] = json!("ASw=");
    assert!(
        eventually(async || {
            broker.publish("application/a/device/0101010101010101/event/up", &up.to_string());
            let r = app.get_json("/api/v1/rejects").await;
            r["rejects"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["format"].as_str().is_some_and(|f| f.ends_with("#test")))
        })
        .await,
        "the uplink is kept whole, with the subscription it came through"
    );
    assert!(pm10(&app).await.is_empty());
    // The operator corrects the layout and restarts; the replay decodes with the new one.
    // (Under another client id and topic, so that no uplink still queued for the first session
    // is delivered live: what is stored must come from the replay.)
    let corrected = Subscription {
        layouts: layout("u16be"),
        client_id: Some(format!("agora-test-corrected-{}", broker.port)),
        ..broker.subscription(Format::Chirpstack, &["application/none/#"])
    };
    app.config.mqtt.subscriptions = vec![corrected];
    app.restart().await;
    let r: Value = app
        .post("/api/v1/rejects/replay")
        .bearer_auth(crate::helpers::ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["replayed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(pm10(&app).await, vec![("2026-01-01T00:00:00Z".into(), json!(30.0))]);
}

#[tokio::test]
async fn other_mqtt_versions_get_a_connack_that_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let port = app.server.as_ref().unwrap().mqtt_addr.unwrap().port();
    // A minimal CONNECT of a future MQTT (level 6, read as MQTT 5 would be) and of an unknown
    // level under the 3.1.1 name.
    let v6 =
        [0x10, 0x0d, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00];
    let v3 = [0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x00];
    for (connect, expected) in
        [(&v6[..], &[0x20u8, 0x03, 0x00, 0x84, 0x00][..]), (&v3[..], &[0x20, 0x02, 0x00, 0x01][..])]
    {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(connect).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
            .await
            .expect("answered and closed within 5 s, not left hanging")
            .unwrap();
        assert_eq!(answer, expected, "CONNACK for {connect:02x?}");
    }
}
