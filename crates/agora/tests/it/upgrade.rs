//! Issue 18, item 8: a data directory written by the release before data directories carried a
//! format version (commit 7a9a364; `scripts/make-format1-fixture.sh` made the fixture) opens
//! under this release — segments, a write-ahead log tail left by a kill -9, the catalog — and
//! answers as it did; it is stamped with the current format; a newer format is refused.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{ADMIN, TestProcess};

const T: i64 = 1_767_225_600;
/// Minutes the fixture holds: two whole days, then 12 hours.
const MINUTES: i64 = 2 * 1440 + 12 * 60;

fn extract(into: &std::path::Path) -> std::path::PathBuf {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format1.tar.gz");
    let ok = Command::new("tar").arg("-xzf").arg(fixture).arg("-C").arg(into).status().unwrap();
    assert!(ok.success(), "cannot extract {fixture}");
    into.join("data")
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

fn values(v: &Value) -> Vec<Value> {
    v["points"].as_array().unwrap().iter().map(|p| p["value"].clone()).collect()
}

/// Every answer, against the fixture's formulas computed here.
async fn check(addr: std::net::SocketAddr) {
    let to = T + MINUTES * 60;
    let devices = get(addr, "/api/v1/devices").await.to_string();
    for d in ["wx-1", "n-1", "pc-1", "sl-1"] {
        assert!(devices.contains(&format!("\"{d}\"")), "{d} in {devices}");
    }
    // Raw temperatures, every 10 minutes, across both segments and the WAL tail.
    let t = get(
        addr,
        &format!("/api/v1/observations?device=wx-1&property=temperature&from={T}&to={to}"),
    )
    .await;
    let expected: Vec<Value> =
        (0..MINUTES).step_by(10).map(|m| Value::from(10.0 + (m / 10 % 17) as f64 * 0.5)).collect();
    assert_eq!(t["count"], 360);
    assert_eq!(values(&t), expected);
    // Hourly LAeq, averaged as energy, from one-minute readings.
    let a = get(
        addr,
        &format!("/api/v1/aggregate?device=n-1&property=laeq&from={T}&to={to}&every=1h&fn=mean"),
    )
    .await;
    let got: Vec<f64> = values(&a["series"][0]).iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(got.len(), 60);
    for (h, g) in got.iter().enumerate() {
        let e: f64 = (0..60)
            .map(|i| {
                let m = h as i64 * 60 + i;
                10f64.powf((40 + m % 23) as f64 / 10.0)
            })
            .sum::<f64>()
            / 60.0;
        let want = 10.0 * e.log10();
        assert!((g - want).abs() < 1e-9, "hour {h}: {g} vs {want}");
    }
    // Daily counts of people.
    let c = get(
        addr,
        &format!(
            "/api/v1/aggregate?device=pc-1&property=people_in&from={T}&to={to}&every=1d&fn=sum"
        ),
    )
    .await;
    let sums: Vec<f64> = values(&c["series"][0]).iter().map(|v| v.as_f64().unwrap()).collect();
    let day = |from: i64, to: i64| (from..to).step_by(15).map(|m| (m / 15 % 9) as f64).sum::<f64>();
    assert_eq!(sums, vec![day(0, 1440), day(1440, 2880), day(2880, MINUTES)]);
    // A lamp's states (strings).
    let l = get(
        addr,
        &format!("/api/v1/observations?device=sl-1&property=lamp_status&from={T}&to={to}"),
    )
    .await;
    let expected: Vec<Value> = (0..MINUTES / 60)
        .map(|h| Value::from(if h % 5 == 0 { "defectiveLamp" } else { "ok" }))
        .collect();
    assert_eq!(values(&l), expected);
    // The place and the commune.
    let sites = get(addr, "/api/v1/sites").await.to_string();
    assert!(sites.contains("hotel-de-ville") && sites.contains("13001"), "{sites}");
}

#[tokio::test]
async fn a_directory_of_the_previous_release_opens_and_answers_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let data = extract(tmp.path());
    assert!(!data.join("FORMAT").exists(), "the fixture predates format versions");
    let server = TestProcess::spawn(&data);
    check(server.addr).await;
    // Written now, and more of the same city goes on being stored.
    let format = std::fs::read_to_string(data.join("FORMAT")).unwrap();
    assert_eq!(format, format!("agora data directory format {}\n", agora_store::format::CURRENT));
    server.terminate();
    // Opened again after the upgrade (and a clean shutdown that folded the WAL tail in).
    let server = TestProcess::spawn(&data);
    check(server.addr).await;
    server.terminate();
}

#[tokio::test]
async fn a_directory_of_a_newer_release_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = extract(tmp.path());
    let newer = format!("agora data directory format {}\n", agora_store::format::CURRENT + 1);
    std::fs::write(data.join("FORMAT"), &newer).unwrap();
    let catalog = std::fs::read(data.join("catalog.db")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(["serve", "--http", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("AGORA_ADMIN_TOKEN", ADMIN)
        .env_remove("AGORA_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("written by a newer agora"), "{said}");
    assert_eq!(std::fs::read_to_string(data.join("FORMAT")).unwrap(), newer);
    assert_eq!(std::fs::read(data.join("catalog.db")).unwrap(), catalog, "nothing touched");
}
