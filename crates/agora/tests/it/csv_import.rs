//! CSV import: the HTTP endpoint with a configured mapping, and the `agora import csv` command.

use std::process::Command;

use agora_ingest::csv::CsvMapping;
use serde_json::json;

use crate::helpers::{ADMIN, TestApp, problem};

const CSV: &str = "lampe;date;puissance;energie\nlamp-1;15/01/2026 18:00;41,5;1,25\nlamp-1;15/01/2026 18:15;oops;1,26\nlamp-2;32/01/2026 18:00;40;2\nlamp-2;15/01/2026 18:00;40;2\n";

fn mapping() -> CsvMapping {
    toml::from_str(
        r#"
        device_column = "lampe"
        time_column = "date"
        timezone = "Europe/Paris"
        kind = "streetlight"
        site = "hotel-de-ville"
        [columns]
        puissance = "power_w"
        energie = { property = "energy_wh", unit = "kWh" }
        "#,
    )
    .unwrap()
}

const T: i64 = 1_768_496_400; // 2026-01-15T17:00:00Z = 18:00 in Paris

#[tokio::test]
async fn http_import_with_a_configured_mapping() {
    let app = TestApp::spawn_with(|c| {
        c.csv.mappings.insert("lighting".into(), mapping());
    })
    .await;
    let r = app
        .post("/api/v1/import/csv?mapping=lighting")
        .bearer_auth(ADMIN)
        .body(CSV)
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "partial_write").await;
    let lines: Vec<u64> =
        b["rejected"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [3, 4], "{b}");
    assert_eq!(b["accepted"], 5);
    assert_eq!(app.values("lamp-1", "power_w", T, T + 1).await[0].1, json!(41.5));
    assert_eq!(
        app.values("lamp-1", "energy_wh", T, T + 3600)
            .await
            .iter()
            .map(|v| v.1.clone())
            .collect::<Vec<_>>(),
        vec![json!(1250.0), json!(1260.0)]
    );
    assert_eq!(app.get_json("/api/v1/devices/lamp-2").await["device"]["kind"], "streetlight");
    let r = app
        .post("/api/v1/import/csv?mapping=water")
        .bearer_auth(ADMIN)
        .body(CSV)
        .send()
        .await
        .unwrap();
    problem(r, 404, "not_found").await;
    let r = app
        .post("/api/v1/import/csv?mapping=lighting")
        .bearer_auth(ADMIN)
        .body("a;b\n1;2\n")
        .send()
        .await
        .unwrap();
    let b = problem(r, 400, "bad_request").await;
    assert!(b["detail"].as_str().unwrap().contains("column \"lampe\""));
}

#[tokio::test]
async fn the_import_command_streams_a_file_and_names_bad_rows() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("export.csv"), CSV).unwrap();
    std::fs::write(
        dir.path().join("mapping.toml"),
        "device_column = \"lampe\"\ntime_column = \"date\"\ntimezone = \"Europe/Paris\"\n[columns]\npuissance = \"power_w\"\nenergie = { property = \"energy_wh\", unit = \"kWh\" }\n",
    )
    .unwrap();
    let (url, d) = (app.url(""), dir.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["import", "csv"])
            .arg(d.join("export.csv"))
            .arg("--mapping")
            .arg(d.join("mapping.toml"))
            .args(["--url", &url, "--token", ADMIN, "--batch", "2"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("line 4: time \"32/01/2026 18:00\""), "{stderr}");
    assert!(stderr.contains("line 3: "), "{stderr}");
    assert!(stdout.contains("imported 4 rows: 5 points stored, 2 rejected"), "{stdout}");
    assert_eq!(app.values("lamp-2", "power_w", T, T + 1).await[0].1, json!(40.0));
}
