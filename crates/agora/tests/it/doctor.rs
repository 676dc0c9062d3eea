//! `agora doctor` finds what a test plants: each misconfiguration alone in an otherwise healthy
//! setup (which itself passes, so that a doctor that always complains fails here too).

use std::path::Path;
use std::process::Command;

use agora::config::Config;
use agora::doctor::{Level, Report, check};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Certificates with their keys: valid 400 days, valid 5 days, expired in 2020; and a key of
/// another pair.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-days",
        "400",
        "-subj",
        "/CN=agora.example.fr",
        "-keyout",
        "good.key",
        "-out",
        "good.pem",
    ]);
    openssl(dir, &a);
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-days",
        "5",
        "-subj",
        "/CN=soon.example.fr",
        "-keyout",
        "soon.key",
        "-out",
        "soon.pem",
    ]);
    openssl(dir, &a);
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ],
    );
    // An expired certificate: `openssl ca` takes explicit dates.
    let mut a = vec!["req"];
    a.extend(ec);
    a.extend(["-subj", "/CN=old.example.fr", "-keyout", "old.key", "-out", "old.csr"]);
    openssl(dir, &a);
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\nx509_extensions = v3\n[p]\ncommonName = supplied\n[v3]\nbasicConstraints = CA:FALSE\nsubjectAltName = DNS:old.example.fr\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-selfsign",
            "-keyfile",
            "old.key",
            "-in",
            "old.csr",
            "-out",
            "old.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200201000000Z",
            "-notext",
        ],
    );
}

fn healthy(dir: &Path) -> Config {
    let mut cfg = Config { data_dir: dir.join("data"), ..Config::default() };
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let free = |_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    cfg.http = free(0);
    cfg.mqtt.broker.listen = free(1);
    cfg.storage.min_free_mib = 1;
    cfg
}

fn errors(r: &Report) -> Vec<String> {
    r.findings.iter().filter(|f| f.level == Level::Error).map(|f| f.to_string()).collect()
}

/// The one error of a report, which must mention `needle`.
fn only_error(r: &Report, needle: &str) {
    let e = errors(r);
    assert!(
        e.len() == 1 && e[0].contains(needle),
        "expected one error about {needle:?}, got {e:#?}"
    );
    assert!(r.failed());
}

#[tokio::test]
async fn doctor_finds_each_planted_misconfiguration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir);
    let https = |cert: &str, key: &str| -> Option<agora::config::HttpsConfig> {
        Some(
            toml::from_str(&format!("cert = {:?}\nkey = {:?}", dir.join(cert), dir.join(key)))
                .unwrap(),
        )
    };

    // Healthy: no error, and the certificate's expiry is read.
    let mut cfg = healthy(dir);
    cfg.https = https("good.pem", "good.key");
    let r = check(&cfg).await;
    assert!(errors(&r).is_empty(), "{:#?}", r.findings);
    assert!(
        r.findings
            .iter()
            .any(|f| f.to_string().contains("for agora.example.fr, key matching, valid until")),
        "{:#?}",
        r.findings
    );

    // The data directory is a file.
    let mut cfg = healthy(dir);
    cfg.data_dir = dir.join("good.pem");
    only_error(&check(&cfg).await, "is not a directory");

    // A data directory written by a newer release.
    let cfg = healthy(dir);
    std::fs::write(cfg.data_dir.join("FORMAT"), "agora data directory format 99\n").unwrap();
    only_error(&check(&cfg).await, "written by a newer agora (format 99)");
    std::fs::remove_file(cfg.data_dir.join("FORMAT")).unwrap();

    // A reserve larger than the disk.
    let mut cfg = healthy(dir);
    cfg.storage.min_free_mib = 1 << 40;
    only_error(&check(&cfg).await, "below the reserve");

    // The clock went back: a file of the data directory is an hour in the future.
    let cfg = healthy(dir);
    let f = std::fs::File::create(cfg.data_dir.join("catalog.db")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(3600)).unwrap();
    only_error(&check(&cfg).await, "the system clock is");
    std::fs::remove_file(cfg.data_dir.join("catalog.db")).unwrap();

    // The HTTP port is held by another program (not agora: no health check answers).
    let mut cfg = healthy(dir);
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.http = held.local_addr().unwrap();
    only_error(&check(&cfg).await, "is taken by another program");
    drop(held);

    // Certificates: expired, a key of another pair, a missing file, and one expiring in 5 days
    // (a warning, not an error).
    let mut cfg = healthy(dir);
    cfg.https = https("old.pem", "old.key");
    only_error(&check(&cfg).await, "expired on 2020-02-01");
    cfg.https = https("good.pem", "other.key");
    only_error(&check(&cfg).await, "do not go together");
    cfg.https = https("missing.pem", "good.key");
    only_error(&check(&cfg).await, "cannot read the certificate");
    cfg.https = https("soon.pem", "soon.key");
    let r = check(&cfg).await;
    assert!(errors(&r).is_empty(), "{:#?}", r.findings);
    assert!(
        r.findings.iter().any(|f| f.level == Level::Warn && f.text.contains("renew it soon")),
        "{:#?}",
        r.findings
    );

    // Client certificates required without the authority that signs them.
    let mut cfg = healthy(dir);
    cfg.https = https("good.pem", "good.key");
    cfg.mqtt.broker.tls = Some(toml::from_str("require_client_cert = true").unwrap());
    only_error(&check(&cfg).await, "require_client_cert needs client_ca");
}

/// The command itself: its exit status says whether something is wrong.
#[test]
fn doctor_exits_with_1_on_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let run = |data: &Path| {
        Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(["doctor", "--data"])
            .arg(data)
            .args(["--http", "127.0.0.1:0"])
            .env("AGORA_MQTT_LISTEN", "off")
            .output()
            .unwrap()
    };
    let bad = run(&file);
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stdout));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("is not a directory"));
    let good = run(&tmp.path().join("data"));
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stdout));
    assert!(String::from_utf8_lossy(&good.stdout).contains("all checks passed"));
}
