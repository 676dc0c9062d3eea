//! `agora`: serve a city's data, run the demo city, or measure the engine.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agora::config::Config;
use agora::serve::{ServeOptions, Server};
use agora_model::SystemClock;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// mimalloc rather than the system's malloc: see `BENCHMARKS.md` (issue 10's soak, RSS).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Print a line for the operator; a closed stdout (piped into `head`) must not stop the server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// agora, an open urban data platform.
#[derive(Debug, Parser)]
#[command(version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("AGORA_COMMIT"), ")"), about)]
struct Cli {
    /// Log lines as `text` (for people) or `json` (one object per line, for journald or a log
    /// collector).
    #[arg(long, env = "AGORA_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform (production entry point).
    Serve(Common),
    /// Check a configuration and its data directory before starting (or while agora runs):
    /// the file, permissions, free space, clock, ports and certificates. Exits with 1 when
    /// something would stop agora or lose data.
    Doctor(Common),
    /// Run the platform with a simulated city: Aix-en-Provence, four connected places, ~1,500 devices.
    Demo {
        #[command(flatten)]
        common: Common,
        /// Days of history to backfill.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Days of history of the pedestrian counters (the commerce observatory compares with
        /// last year); 0: as many as `--days`.
        #[arg(long, default_value_t = agora::demo::COUNTER_HISTORY_DAYS)]
        counter_history_days: u32,
        /// Backfill only; do not keep streaming live data.
        #[arg(long)]
        no_live: bool,
        /// Do not enable the built-in alert templates (an empty alert list, for tests that make
        /// their own rules).
        #[arg(long)]
        no_alert_templates: bool,
    },
    /// Measure ingest, compression, query latency and memory over loopback.
    Bench(agora::bench::BenchArgs),
    /// Import data into a running agora.
    #[command(subcommand)]
    Import(Import),
    /// Backups: take one now through a running agora (into its `[backup] dir`), or list or
    /// verify a backup repository.
    Backup {
        #[command(subcommand)]
        action: Option<BackupAction>,
        /// agora's URL.
        #[arg(long, env = "AGORA_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An admin token.
        #[arg(long, env = "AGORA_TOKEN")]
        token: Option<String>,
    },
    /// The audit trail: check its hash chain in a data directory (read-only; agora may run).
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Rebuild a data directory (new or empty) from a backup, checking every file's hash.
    Restore {
        /// The backup repository.
        #[arg(long)]
        from: PathBuf,
        /// The backup (default: the newest).
        #[arg(long)]
        name: Option<String>,
        /// The data directory to create.
        #[arg(long)]
        data: PathBuf,
    },
    /// The dead-letter log of a running agora: rejected input, and its replay once fixed.
    Rejects {
        #[command(subcommand)]
        action: Rejects,
        /// agora's URL.
        #[arg(long, env = "AGORA_URL", default_value = "http://127.0.0.1:8080", global = true)]
        url: String,
        /// An admin token.
        #[arg(long, env = "AGORA_TOKEN", global = true)]
        token: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check every entry's hash against its content and the entry before it; exits with 1 when
    /// the chain is broken, naming the first entry that does not match.
    Verify {
        /// The data directory.
        #[arg(long, env = "AGORA_DATA")]
        data: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BackupAction {
    /// The backups of a repository.
    List {
        /// The backup repository.
        #[arg(long)]
        from: PathBuf,
    },
    /// Download a backup (the newest by default) from the `[backup.s3]` bucket of a
    /// configuration into a local repository, for `verify` and `agora restore`.
    Fetch {
        /// The configuration naming the bucket.
        #[arg(long, env = "AGORA_CONFIG")]
        config: PathBuf,
        /// The local repository to write (new or empty).
        #[arg(long)]
        to: PathBuf,
        /// The backup (default: the newest complete one).
        #[arg(long)]
        name: Option<String>,
    },
    /// Check every file of a backup against its size and SHA-256.
    Verify {
        /// The backup repository.
        #[arg(long)]
        from: PathBuf,
        /// The backup (default: the newest).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Rejects {
    /// The most recent dead letters.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Decode dead letters again and store what now passes.
    Replay {
        /// Only these ids (default: the most recent 1,000).
        #[arg(long = "id")]
        ids: Vec<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum Import {
    /// A CSV file, read with a column mapping; rejected rows are listed by line.
    Csv(agora::import::ImportCsvArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// Configuration file (see agora.example.toml).
    #[arg(long, env = "AGORA_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory.
    #[arg(long, env = "AGORA_DATA")]
    data: Option<PathBuf>,
    /// HTTP listen address.
    #[arg(long, env = "AGORA_HTTP")]
    http: Option<SocketAddr>,
}

impl Common {
    fn options(&self) -> anyhow::Result<ServeOptions> {
        let mut config = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        config.apply_env()?;
        if let Some(d) = &self.data {
            config.data_dir = d.clone();
        }
        if let Some(h) = self.http {
            config.http = h;
        }
        let admin_token = std::env::var("AGORA_ADMIN_TOKEN").ok().filter(|t| !t.is_empty());
        Ok(ServeOptions { config, admin_token, clock: Arc::new(SystemClock) })
    }
}

/// Whether log lines are JSON: the start-up lines then go to the log too, so that every line
/// a collector reads is JSON.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn announce(server: &Server) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        let scheme = if server.state.config.https { "https" } else { "http" };
        tracing::info!(
            version = agora::VERSION,
            commit = agora::COMMIT,
            "listening on {scheme}://{}",
            server.addr
        );
        if let Some(m) = server.mqtt_addr {
            tracing::info!("MQTT for devices on mqtt://{m}");
        }
        if let Some(m) = server.mqtts_addr {
            tracing::info!("MQTT over TLS for devices on mqtts://{m}");
        }
        if server.generated_admin_token.is_some() {
            tracing::warn!(
                "an admin token was generated; it is printed only with --log-format text: set AGORA_ADMIN_TOKEN instead"
            );
        }
        return;
    }
    // Scripts and tests wait for this line as it is: keep its words.
    let scheme = if server.state.config.https { "https" } else { "http" };
    say!("agora listening on {scheme}://{}", server.addr);
    say!("agora {} (commit {})", agora::VERSION, agora::COMMIT);
    if let Some(m) = server.mqtt_addr {
        say!("MQTT for devices on mqtt://{m} (user name: an ingest token)");
    }
    if let Some(m) = server.mqtts_addr {
        say!("MQTT over TLS for devices on mqtts://{m}");
    }
    match &server.generated_admin_token {
        Some(t) => say!("admin token (shown once, keep it): {t}"),
        None if std::env::var_os("AGORA_ADMIN_TOKEN").is_none() => say!(
            "an admin token exists already: use the one printed at first start, or set AGORA_ADMIN_TOKEN"
        ),
        None => {}
    }
}

/// Send a request of the admin CLI to a running agora; its JSON answer, or its problem's detail.
async fn admin_call(
    req: reqwest::RequestBuilder,
    token: &str,
    base: &str,
) -> anyhow::Result<serde_json::Value> {
    let resp =
        req.bearer_auth(token).send().await.with_context(|| format!("cannot reach {base}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "agora answered {status}: {}",
        body["detail"].as_str().unwrap_or("")
    );
    Ok(body)
}

async fn until_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AGORA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        // One JSON object per line: time, level, target, message and fields, the span's fields.
        LogFormat::Json => {
            JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
            logs.json().flatten_event(true).with_current_span(false).init()
        }
    }
    match cli.command {
        Command::Doctor(common) => {
            let opts = common.options()?;
            let report = agora::doctor::check(&opts.config).await;
            for f in &report.findings {
                say!("{f}");
            }
            say!("{}", report.summary());
            if report.failed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Serve(common) => {
            let server = agora::serve::start(common.options()?).await?;
            announce(&server);
            agora::serve::notify_ready();
            until_signal().await;
            server.shutdown().await
        }
        Command::Demo { common, days, counter_history_days, no_live, no_alert_templates } => {
            let mut opts = common.options()?;
            // The demo must start even where another MQTT broker already holds port 1883.
            opts.config.mqtt.broker.required = std::env::var_os("AGORA_MQTT_LISTEN").is_some();
            if opts.config.web.city.is_empty() {
                opts.config.web.city = "Aix-en-Provence".into();
            }
            // The bins' rounds start from each commune's technical centre.
            for (insee, at) in agora::demo::DEPOTS {
                opts.config.services.bins.depots.entry(insee.into()).or_insert(at);
            }
            let server = agora::serve::start(opts).await?;
            announce(&server);
            let demo = agora::demo::Demo::new(agora::demo::DemoOptions {
                days,
                seed: 13001,
                counter_history_days,
            });
            let state = server.state.clone();
            let report = demo.seed_and_backfill(&state).await.context("demo backfill failed")?;
            // The 15-minute city and the surveys before saying the city is ready: readers of the
            // open data may start then.
            let town = agora::demo_city::import(&state, &agora::demo_city::demo_spec())
                .await
                .context("demo 15-minute city")?;
            agora::demo::seed_surveys(&state).await.context("demo surveys")?;
            agora::demo::seed_reports(&state).await.context("demo reports")?;
            agora::demo::seed_visitors(&state).await.context("demo visitors")?;
            let town: Vec<String> =
                town.iter().map(|(c, n)| format!("{c}: {n} facilities")).collect();
            let town_line = format!(
                "demo 15-minute city: streets, population, neighbourhoods and facilities ({}); see /decideurs",
                town.join(", ")
            );
            say!(
                "demo city ready: {} devices, {} points of history in {:.1} s ({:.0} points/s)",
                report.devices,
                report.points,
                report.elapsed.as_secs_f64(),
                report.points as f64 / report.elapsed.as_secs_f64().max(1e-9)
            );
            say!("{town_line}");
            let people = agora::demo::seed_people(&state).await.context("demo people")?;
            say!("demo people (email / role / password, new at each start; log in at /login):");
            for (email, role, password) in &people {
                say!("  {email:<40} {role:<36} {password}");
            }
            say!(
                "open http://{0}/ (public map) or http://{0}/supervision (log in as one of them, or with the admin token)",
                server.addr
            );
            if no_live {
                return server.shutdown().await;
            }
            if !no_alert_templates {
                let enabled = agora::demo::enable_alert_templates(&server.state).await?;
                say!("{enabled} alert rules enabled from the built-in templates (see /alerts)");
            }
            // The city's forecasts and anomalies on its whole history, without waiting for the
            // hourly sweep.
            let forecasts = state.forecasts.clone();
            tokio::spawn(async move { forecasts.sweep().await });
            let live = tokio::spawn(async move { demo.stream_live(state).await });
            until_signal().await;
            live.abort();
            server.shutdown().await
        }
        Command::Bench(args) => agora::bench::run(args).await,
        Command::Backup { action: None, url, token } => {
            let token = token.context("give an admin token with --token or AGORA_TOKEN")?;
            let base = url.trim_end_matches('/');
            let req = reqwest::Client::new().post(format!("{base}/api/v1/backups"));
            let body = admin_call(req, &token, base).await?;
            say!(
                "backup {} taken ({} segments copied, {} already held, {} bytes written, {:.1} s); every write acknowledged before {} is in it",
                body["name"].as_str().unwrap_or(""),
                body["segments_copied"],
                body["segments_reused"],
                body["bytes_copied"],
                body["seconds"].as_f64().unwrap_or(0.0),
                body["at"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Command::Backup { action: Some(BackupAction::List { from }), .. } => {
            for b in agora::backup::list(&from)? {
                say!(
                    "{}  {} segments, {} files, {} bytes",
                    b.name,
                    b.segments.len(),
                    b.files.len(),
                    b.bytes()
                );
            }
            Ok(())
        }
        Command::Backup { action: Some(BackupAction::Fetch { config, to, name }), .. } => {
            let cfg = agora::config::Config::load(&config)?;
            let s3 = cfg.backup.s3.context("the configuration has no [backup.s3]")?;
            if to.exists() && std::fs::read_dir(&to)?.next().is_some() {
                anyhow::bail!("refusing to fetch into {}: it is not empty", to.display());
            }
            let bucket = agora::s3::Bucket::new(&s3)?;
            let b = agora::backup::fetch(&bucket, name.as_deref(), &to).await?;
            say!("fetched backup {} ({} bytes) into {}", b.name, b.bytes(), to.display());
            Ok(())
        }
        Command::Backup { action: Some(BackupAction::Verify { from, name }), .. } => {
            let b = agora::backup::verify(&from, name.as_deref())?;
            say!(
                "backup {} is whole: {} files, {} bytes checked",
                b.name,
                b.segments.len() + b.files.len(),
                b.bytes()
            );
            Ok(())
        }
        Command::Audit { action: AuditAction::Verify { data } } => {
            use agora_store::audit::AuditLog;
            let db = data.join("catalog.db");
            anyhow::ensure!(
                db.exists(),
                "no catalog in {} (is it agora's data directory?)",
                data.display()
            );
            let log = agora_store::audit::SqliteAuditLog::open_read_only(&db).await?;
            let v = log.verify().await?;
            if v.valid {
                say!(
                    "audit trail whole: {} entries, {} to {}",
                    v.entries,
                    v.first_seq.unwrap_or(0),
                    v.last_seq.unwrap_or(0)
                );
                Ok(())
            } else {
                anyhow::bail!(
                    "audit trail broken at entry {}: {}",
                    v.broken_at.unwrap_or(0),
                    v.problem.unwrap_or_default()
                )
            }
        }
        Command::Restore { from, name, data } => {
            let b = agora::backup::restore(&from, name.as_deref(), &data)?;
            say!(
                "restored backup {} into {} (every write acknowledged before {} is in it)",
                b.name,
                data.display(),
                b.at
            );
            Ok(())
        }
        Command::Rejects { action, url, token } => {
            let token = token.context("give an admin token with --token or AGORA_TOKEN")?;
            let client = reqwest::Client::new();
            let base = url.trim_end_matches('/');
            let req = match action {
                Rejects::List { limit } => {
                    client.get(format!("{base}/api/v1/rejects?limit={limit}"))
                }
                Rejects::Replay { ids } => {
                    let body = if ids.is_empty() {
                        serde_json::json!({})
                    } else {
                        serde_json::json!({ "ids": ids })
                    };
                    client.post(format!("{base}/api/v1/rejects/replay")).json(&body)
                }
            };
            let body = admin_call(req, &token, base).await?;
            match body["rejects"].as_array() {
                Some(list) => {
                    for r in list {
                        say!(
                            "#{} {} {} line {}: {}\n    {}",
                            r["id"],
                            r["received_at"].as_str().unwrap_or(""),
                            r["source"].as_str().unwrap_or(""),
                            r["line"],
                            r["reason"].as_str().unwrap_or(""),
                            r["raw"].as_str().unwrap_or("")
                        );
                    }
                }
                None => say!("{body}"),
            }
            Ok(())
        }
        Command::Import(Import::Csv(args)) => {
            let s = agora::import::run(args).await?;
            say!("imported {} rows: {} points stored, {} rejected", s.rows, s.stored, s.rejected);
            if s.rejected > 0 {
                std::process::exit(2);
            }
            Ok(())
        }
    }
}
