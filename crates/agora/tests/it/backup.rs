//! Backups taken while ingestion goes on, restored into a new data directory and served again:
//! every write acknowledged before the backup is there, and what is there is what the source
//! holds; the second backup copies only new segments; a damaged backup is named by `verify` and
//! refused by `restore`; a restore onto a non-empty directory is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde_json::{Value, json};

use crate::helpers::{ADMIN, TestApp, problem};

const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z, seconds

async fn take(app: &TestApp) -> Value {
    let r = app.post("/api/v1/backups").bearer_auth(ADMIN).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

/// The values of device bk-1's `v`, in time order.
async fn values(app: &TestApp) -> Vec<f64> {
    app.values("bk-1", "v", BASE - 1, BASE + 10_000_000)
        .await
        .into_iter()
        .map(|(_, v)| v.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_backup_during_ingestion_restores_every_acknowledged_point() {
    let repo = tempfile::tempdir().unwrap();
    let repo_dir = repo.path().join("repo");
    let app = {
        let r = repo_dir.clone();
        TestApp::spawn_with(move |c| {
            c.backup.dir = Some(r);
            c.ingest.auto_register_properties = true;
        })
        .await
    };
    // Without a repository the API says so.
    let bare = TestApp::spawn().await;
    let r = bare.post("/api/v1/backups").bearer_auth(ADMIN).send().await.unwrap();
    problem(r, 409, "conflict").await;

    let rule = json!({"id": "v-high", "condition": {"threshold": {"property": "pm10", "op": ">", "value": 50.0}}});
    let r = app.post("/api/v1/rules").bearer_auth(ADMIN).json(&rule).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // A first part in a segment, then a writer that keeps going during the backups.
    let body: String = (0..2000).map(|i| format!("m,device=bk-1 v={i} {}\n", BASE + i)).collect();
    app.write(&body).await;
    app.server.as_ref().unwrap().state.store.flush().await.unwrap();
    let acked = Arc::new(AtomicI64::new(2000));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let url = app.url("/api/v2/write?precision=s");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 2000i64;
            while !stop.load(Ordering::SeqCst) {
                let body: String =
                    (i..i + 50).map(|k| format!("m,device=bk-1 v={k} {}\n", BASE + k)).collect();
                let r = client
                    .post(&url)
                    .header("Authorization", format!("Token {ADMIN}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 204);
                i += 50;
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = acked.load(Ordering::SeqCst);
    let first = take(&app).await;
    assert_eq!(first["segments_copied"], 1, "{first}");
    let first_name = first["name"].as_str().unwrap().to_owned();
    let first_data = restore_and_check(&repo, &repo_dir, &first_name, before).await;
    // A second one while writes go on: the segment is held already, only the new one is copied;
    // retention keeps the newest of the day, so the first goes, and its segment stays (used).
    app.server.as_ref().unwrap().state.store.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let before_second = acked.load(Ordering::SeqCst);
    let second = take(&app).await;
    assert_eq!(
        second["segments_reused"], 1,
        "the first backup's segment is not copied again: {second}"
    );
    // The new segments only: the one flushed above, and any the engine flushed on its own while
    // the writes went on (a loaded machine sees one now and then).
    let copied = second["segments_copied"].as_u64().unwrap();
    assert!((1..=3).contains(&copied), "only the new segments: {second}");
    assert_eq!(second["pruned"], json!([first_name]));
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let source = values(&app).await;
    let listed = app.get_json("/api/v1/backups").await;
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1);
    let name = second["name"].as_str().unwrap();
    let second_data = restore_and_check(&repo, &repo_dir, name, before_second).await;
    // Each restore is the source up to its time.
    for got in [first_data, second_data] {
        assert_eq!(&source[..got.len()], &got[..], "the restore is the source up to its time");
    }

    // A damaged file is named by verify, and refused by restore, which leaves nothing behind.
    let manifest = repo_dir.join("backups").join(name).join("engine/MANIFEST.json");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push(' ');
    std::fs::write(&manifest, text).unwrap();
    let e = format!("{:#}", agora::backup::verify(&repo_dir, Some(name)).unwrap_err());
    assert!(e.contains("engine/MANIFEST.json"), "{e}");
    let target = repo.path().join("damaged");
    let e = format!("{:#}", agora::backup::restore(&repo_dir, Some(name), &target).unwrap_err());
    assert!(e.contains("damaged"), "{e}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    // Onto a directory holding anything: refused.
    let e = format!("{:#}", agora::backup::restore(&repo_dir, None, app.dir.path()).unwrap_err());
    assert!(e.contains("not empty"), "{e}");
}

/// Verify and restore a backup into a new directory, serve it: every point acknowledged before
/// the backup is there, and the rule made before it. Returns the restored values.
async fn restore_and_check(
    repo: &tempfile::TempDir,
    repo_dir: &std::path::Path,
    name: &str,
    acknowledged: i64,
) -> Vec<f64> {
    agora::backup::verify(repo_dir, Some(name)).unwrap();
    let data = repo.path().join(format!("restored-{name}"));
    agora::backup::restore(repo_dir, Some(name), &data).unwrap();
    let restored = TestApp::spawn_with(move |c| c.data_dir = data).await;
    let got = values(&restored).await;
    assert!(
        got.len() as i64 >= acknowledged,
        "{} points restored, {acknowledged} acknowledged before the backup",
        got.len()
    );
    let rules = restored.get_json("/api/v1/rules").await;
    assert!(rules["rules"].as_array().unwrap().iter().any(|r| r["id"] == "v-high"));
    got
}

/// A local S3-compatible object store: moto's server (from PyPI, installed by
/// `scripts/test.sh`), on a free port. Killed when dropped.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let bin = std::env::var("AGORA_MOTO_SERVER").unwrap_or_else(|_| {
            format!(
                "{}/.cache/agora-moto-venv-5.2.1/bin/moto_server",
                std::env::var("HOME").unwrap()
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/test.sh installs moto)"));
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, endpoint: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn backups_mirror_to_object_storage_and_restore_from_it() {
    let moto = Moto::start();
    let s3 = agora::s3::S3Config {
        endpoint: moto.endpoint.clone(),
        region: "us-east-1".into(),
        bucket: "city-backups".into(),
        prefix: "aix".into(),
        access_key: "agora".into(),
        secret_key: Some("agora-secret".into()),
    };
    let bucket = agora::s3::Bucket::new(&s3).unwrap();
    bucket.create().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let app = {
        let (repo, s3) = (tmp.path().join("repo"), s3.clone());
        TestApp::spawn_with(move |c| {
            c.backup.dir = Some(repo);
            c.backup.s3 = Some(s3);
            c.ingest.auto_register_properties = true;
        })
        .await
    };
    let body: String = (0..1500).map(|i| format!("m,device=bk-1 v={i} {}\n", BASE + i)).collect();
    app.write(&body).await;
    app.server.as_ref().unwrap().state.store.flush().await.unwrap();
    let first = take(&app).await;
    // Its segment, the engine's manifest, the catalog, then backup.json (the flush left no WAL
    // to copy).
    assert_eq!(
        first["mirror"],
        json!({"uploaded": 4, "deleted": 0, "bytes": first["mirror"]["bytes"]})
    );
    // Something else in the bucket, under the same prefix: never touched by the mirror.
    let other = tmp.path().join("notes.txt");
    std::fs::write(&other, "not agora's").unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&other).unwrap()))
    };
    bucket.put_file("notes.txt", &other, &sha).await.unwrap();
    // More data, another backup the same day: retention drops the first, locally and in the
    // bucket; only what is new goes up.
    let more: String =
        (1500..2000).map(|i| format!("m,device=bk-1 v={i} {}\n", BASE + i)).collect();
    app.write(&more).await;
    app.server.as_ref().unwrap().state.store.flush().await.unwrap();
    let second = take(&app).await;
    assert_eq!(second["pruned"], json!([first["name"]]));
    // Up: the new segment and the second backup's three files, not the first segment (held);
    // deleted: the first backup's three files, not its segment (the second uses it).
    assert_eq!(second["mirror"]["uploaded"], 4, "{second}");
    assert_eq!(second["mirror"]["deleted"], 3, "{second}");
    let keys: Vec<String> = bucket.list("").await.unwrap().into_iter().map(|o| o.key).collect();
    let first_name = first["name"].as_str().unwrap();
    assert!(!keys.iter().any(|k| k.contains(first_name)), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with("/backup.json")), "{keys:?}");
    assert!(keys.contains(&"notes.txt".to_owned()), "{keys:?}");
    // On another machine: fetch the newest from the bucket, verify, restore, serve.
    let fetched = tmp.path().join("fetched");
    let index = agora::backup::fetch(&bucket, None, &fetched).await.unwrap();
    assert_eq!(index.name, second["name"].as_str().unwrap());
    agora::backup::verify(&fetched, None).unwrap();
    let data = tmp.path().join("restored");
    agora::backup::restore(&fetched, None, &data).unwrap();
    let restored = TestApp::spawn_with(move |c| c.data_dir = data).await;
    let got = values(&restored).await;
    assert_eq!(got, (0..2000).map(f64::from).collect::<Vec<_>>());
}
