//! Test fixtures: an in-process server (`TestApp`) and a server in its own process (`TestProcess`)
//! that a test can kill.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use agora::config::Config;
use agora::serve::{self, ServeOptions, Server};
use agora_model::SystemClock;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;

pub(crate) const ADMIN: &str = "agora_test_admin_token_0123456789";

/// A server in this process.
pub(crate) struct TestApp {
    pub(crate) server: Option<Server>,
    pub(crate) config: Config,
    /// The server's clock (the system's unless a test sets its own).
    pub(crate) clock: Arc<dyn agora_model::Clock>,
    pub(crate) addr: SocketAddr,
    pub(crate) client: Client,
    pub(crate) dir: tempfile::TempDir,
}

impl TestApp {
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub(crate) async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_at(Arc::new(SystemClock), tweak).await
    }

    /// A server whose clock the test sets (a `MockClock`).
    pub(crate) async fn spawn_at(
        clock: Arc<dyn agora_model::Clock>,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            http: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        config.mqtt.broker.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let server = Self::start(config.clone(), clock.clone()).await;
        let addr = server.addr;
        let app = Self { server: Some(server), config, clock, addr, client: Client::new(), dir };
        app.seed().await;
        app
    }

    async fn start(config: Config, clock: Arc<dyn agora_model::Clock>) -> Server {
        serve::start(ServeOptions { config, admin_token: Some(ADMIN.into()), clock }).await.unwrap()
    }

    /// Stop cleanly and start again on the same data directory.
    pub(crate) async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await.unwrap();
        let server = Self::start(self.config.clone(), self.clock.clone()).await;
        self.addr = server.addr;
        self.server = Some(server);
    }

    /// Start again after the server was taken out and shut down by the test.
    pub(crate) async fn restart_stopped(&mut self) {
        assert!(self.server.is_none());
        let server = Self::start(self.config.clone(), self.clock.clone()).await;
        self.addr = server.addr;
        self.server = Some(server);
    }

    /// The commune of Aix and one place, so that devices can be placed.
    async fn seed(&self) {
        let r = self
            .post("/api/v1/communes")
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"insee": "13001", "name": "Aix-en-Provence"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let site = serde_json::json!({"id": "hotel-de-ville", "commune": "13001", "name": "Hôtel de Ville", "lat": 43.5299, "lon": 5.4474});
        let r = self.post("/api/v1/sites").bearer_auth(ADMIN).json(&site).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }
    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    /// GET with the admin token, expecting 200, as JSON.
    pub(crate) async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).bearer_auth(ADMIN).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A token of a scope.
    pub(crate) async fn token(&self, scope: &str, device: Option<&str>) -> String {
        let r = self
            .post("/api/v1/tokens")
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"name": format!("{scope} test"), "scope": scope, "device": device}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    }

    /// Write line protocol (v2, seconds) with the admin token, expecting 204.
    pub(crate) async fn write(&self, body: &str) {
        let r = self
            .post("/api/v2/write?precision=s")
            .header("Authorization", format!("Token {ADMIN}"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }

    /// Raw values of a series between two epoch seconds.
    pub(crate) async fn values(
        &self,
        device: &str,
        property: &str,
        from: i64,
        to: i64,
    ) -> Vec<(String, Value)> {
        let b = self
            .get_json(&format!(
                "/api/v1/observations?device={device}&property={property}&from={from}&to={to}"
            ))
            .await;
        b["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["time"].as_str().unwrap().to_owned(), p["value"].clone()))
            .collect()
    }
}

/// A problem+json answer: check the status and code, return the body.
pub(crate) async fn problem(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], code, "{b}");
    assert_eq!(b["status"], status);
    assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()));
    b
}

/// The real binary in its own process, so a test can `kill -9` it.
pub(crate) struct TestProcess {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// What it logged (warnings and errors), also passed on to the test's stderr.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl TestProcess {
    pub(crate) fn spawn(dir: &std::path::Path) -> Self {
        Self::spawn_with(dir, &[])
    }

    /// Start the binary on `dir` with more command-line arguments (e.g. `--config FILE`).
    pub(crate) fn spawn_with(dir: &std::path::Path, args: &[&str]) -> Self {
        Self::spawn_short_of_files(dir, args, None)
    }

    /// Like `spawn_with`, with at most `nofile` open file descriptors when given (`ulimit -n`).
    pub(crate) fn spawn_short_of_files(
        dir: &std::path::Path,
        args: &[&str],
        nofile: Option<u32>,
    ) -> Self {
        let ulimit = nofile.map_or(String::new(), |n| format!("ulimit -n {n} && "));
        let mut child = Command::new("sh")
            .args(["-c", &format!("{ulimit}exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_agora")])
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(args)
            .arg("--data")
            .arg(dir)
            .env("AGORA_ADMIN_TOKEN", ADMIN)
            .env("AGORA_LOG", "warn")
            .env("AGORA_MQTT_LISTEN", "127.0.0.1:0")
            .env_remove("AGORA_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(a) = line.strip_prefix("agora listening on http://") {
                break a.parse().unwrap();
            }
        };
        // Keep reading what the server prints, so that it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, log }
    }

    /// What the server has logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stop with SIGTERM (a clean shutdown) and wait for the process to exit successfully.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "agora exited with {status}");
    }

    /// Wait for a process killed from elsewhere.
    pub(crate) fn wait(mut self) {
        self.child.wait().unwrap();
    }
}

impl Drop for TestProcess {
    /// A test that fails half-way leaves no server behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private certificate authority and a server certificate it signed, for `localhost` and
/// `127.0.0.1`, made with openssl in `dir`: `ca.pem`, `server.pem`, `server.key`.
pub(crate) fn private_ca(dir: &std::path::Path) {
    let run = |args: &str| {
        let ok = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed")
            .success();
        assert!(ok, "openssl {args}");
    };
    let new_key = "-newkey rsa:2048 -nodes -keyout";
    run(&format!("req -x509 {new_key} ca.key -out ca.pem -days 2 -subj /CN=agora-test-CA"));
    run(&format!("req {new_key} server.key -out server.csr -subj /CN=localhost"));
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let sign = "-CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf";
    run(&format!("x509 -req -in server.csr -out server.pem {sign}"));
}

/// One message on `topic` of an MQTT endpoint (agora's, or a broker's), read by Mosquitto's own
/// client as `user`; it gives up after 20 s.
pub(crate) fn one_message(port: u16, user: &str, topic: &str) -> std::process::Child {
    std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "20",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub is installed (scripts/test.sh installs it)")
}
