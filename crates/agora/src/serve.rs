//! The one place where concrete components are built and connected: catalog, engine, pipeline,
//! HTTP API, background upkeep.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agora_api::{ApiConfig, AppState, Metrics};
use agora_ingest::{Pipeline, PipelineConfig};
use agora_model::Clock;
use agora_store::catalog::Scope;
use agora_store::{Catalog, Engine, SeriesStore, SqliteCatalog};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration.
    pub config: Config,
    /// The first admin token's secret (`AGORA_ADMIN_TOKEN`); generated when absent.
    pub admin_token: Option<String>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The bound address of the MQTT endpoint, when enabled.
    pub mqtt_addr: Option<SocketAddr>,
    /// The bound address of the MQTT endpoint over TLS, when enabled.
    pub mqtts_addr: Option<SocketAddr>,
    /// The admin token generated at first start, shown once.
    pub generated_admin_token: Option<String>,
    /// Shared state (the demo feeds the pipeline directly).
    pub state: AppState,
    stop: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    upkeep: JoinHandle<()>,
    /// Background tasks ended at shutdown: MQTT subscriptions, the MQTT endpoint, audit retention.
    tasks: Vec<JoinHandle<()>>,
    alerts_tasks: agora_alerts::AlertsTasks,
    /// Scheduled backups.
    backups: JoinHandle<()>,
}

/// Build everything and start listening.
pub async fn start(opts: ServeOptions) -> anyhow::Result<Server> {
    let cfg = &opts.config;
    // Created, or checked: a directory of a newer release is refused, an older one upgraded.
    agora_store::format::open(&cfg.data_dir)
        .with_context(|| format!("cannot open the data directory {}", cfg.data_dir.display()))?;
    let started = Instant::now();
    let sqlite = SqliteCatalog::open(&cfg.data_dir).await.context("cannot open the catalog")?;
    let alert_store = Arc::new(agora_store::alerts::SqliteAlertStore::new(sqlite.pool()));
    let audit_log: Arc<dyn agora_store::audit::AuditLog> =
        Arc::new(agora_store::audit::SqliteAuditLog::new(sqlite.pool()));
    let commerce = Arc::new(agora_store::commerce::SqliteCommerceStore::new(sqlite.pool()));
    let datasets = Arc::new(agora_store::opendata::SqliteDatasetStore::new(sqlite.pool()));
    let schedules: Arc<dyn agora_store::schedules::ScheduleStore> =
        Arc::new(agora_store::schedules::SqliteScheduleStore::new(sqlite.pool()));
    let decisions: Arc<dyn agora_store::decisions::DecisionStore> =
        Arc::new(agora_store::decisions::SqliteDecisionStore::new(sqlite.pool()));
    let report_store: Arc<dyn agora_store::reports::ReportStore> =
        Arc::new(agora_store::reports::SqliteReportStore::new(sqlite.pool()));
    let visitors: Arc<dyn agora_store::visitors::VisitorStore> =
        Arc::new(agora_store::visitors::SqliteVisitorStore::new(sqlite.pool()));
    let catalog: Arc<dyn Catalog> = Arc::new(sqlite);
    let engine_cfg = cfg.engine();
    let clock = opts.clock.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::open(engine_cfg, clock))
        .await?
        .context("cannot open the storage engine")?;
    let store: Arc<dyn SeriesStore> = Arc::new(Arc::new(engine));
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "storage opened");

    let retention = cfg.retention_by_property();
    for s in catalog.all_series() {
        if let Some(keep) = retention.get(s.property.as_str()) {
            store.set_raw_retention(s.id, Some(*keep));
        }
    }
    let generated_admin_token =
        bootstrap_admin(catalog.as_ref(), opts.admin_token.as_deref()).await?;
    let pipeline = Arc::new(Pipeline::new(
        catalog.clone(),
        store.clone(),
        opts.clock.clone(),
        PipelineConfig {
            auto_register_devices: cfg.ingest.auto_register_devices,
            auto_register_properties: cfg.ingest.auto_register_properties,
            create_unknown_sites: cfg.ingest.create_unknown_sites,
            max_future: Duration::from_secs(cfg.ingest.max_future_secs),
            retention_by_property: retention,
            thingsboard_kinds: cfg
                .ingest
                .thingsboard_device_types
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            decoders: agora_ingest::Decoders::new(
                cfg.mqtt
                    .subscriptions
                    .iter()
                    .map(|s| (s.name.clone(), s.layouts.clone()))
                    .collect(),
            ),
            ..PipelineConfig::default()
        },
    ));
    // Quality checks, flag tallies and recent uplink ids go on where the last run left them.
    pipeline.load_state().await.context("reading the ingest pipeline's saved state")?;
    let (stop, stopped) = watch::channel(false);
    // Commands to equipment go through agora's own MQTT endpoint unless a broker is configured.
    let subscribers = agora_ingest::mqtt::broker::Subscribers::default();
    let publisher: Option<Arc<dyn agora_alerts::Publisher>> =
        match (&cfg.alerts.mqtt, cfg.mqtt.broker.enabled) {
            (Some(b), _) => Some(Arc::new(b.clone())),
            (None, true) => Some(Arc::new(EmbeddedPublisher(subscribers.clone()))),
            (None, false) => None,
        };
    let (alerts, alerts_tasks) =
        start_alerts(cfg, &catalog, &store, &pipeline, &opts, alert_store, publisher.clone())
            .await?;
    // Every forecastable series modelled in the background; forecast conditions of rules read
    // those models.
    let forecasts = agora_query::forecasts::Forecasts::new(
        catalog.clone(),
        store.clone(),
        opts.clock.clone(),
        chrono_tz::Europe::Paris,
    );
    alerts.set_forecaster(Arc::new(crate::forecasts::AlertForecasts(forecasts.clone())));
    let ngsi_subscriptions =
        agora_api::NgsiSubscriptions::start(catalog.clone(), store.clone(), alerts.outbound())
            .await
            .map_err(anyhow::Error::msg)
            .context("cannot start NGSI-LD subscriptions")?;
    pipeline.set_observer(Arc::new(agora_store::Observers(vec![
        alerts.clone(),
        ngsi_subscriptions.clone(),
    ])));
    let services = cfg.services.build().map_err(anyhow::Error::msg)?;
    let lighting = Arc::new(agora_query::services::lighting::Ledger::new(
        catalog.clone(),
        store.clone(),
        services.lighting.clone(),
        chrono_tz::Europe::Paris,
    ));
    let proximity = Arc::new(
        agora_query::proximity::Proximity::new(
            decisions.clone(),
            cfg.proximity.settings(),
            cfg.proximity.mapping(),
        )
        .map_err(|e| anyhow::anyhow!("[proximity]: {e}"))?,
    );
    let wellbeing = Arc::new(agora_query::wellbeing::Sources::new(
        catalog.clone(),
        store.clone(),
        lighting.clone(),
        services.bins.max_gap_s,
        chrono_tz::Europe::Paris,
    ));
    let reports = Arc::new(agora_api::reports::Reports::new(
        report_store,
        cfg.reports.settings().map_err(anyhow::Error::msg)?,
    ));
    let state = AppState {
        reports,
        visitors,
        schedules: schedules.clone(),
        proximity,
        wellbeing,
        catalog,
        store,
        pipeline,
        clock: opts.clock.clone(),
        config: ApiConfig {
            max_body_bytes: cfg.ingest.max_body_mib << 20,
            public_read: cfg.auth.public_read,
            csv_mappings: cfg.csv.mappings.clone(),
            public_map: cfg.web.public_map,
            body_timeout: Duration::from_secs(cfg.limits.http.body_timeout_secs.max(1)),
            max_query_points: cfg.limits.max_query_points,
            indicators: cfg.indicators.clone(),
            audit_retention_days: cfg.audit.retention_days,
            alert_history_days: cfg.alerts.history_days,
            open_data: cfg.open_data.api(),
            services,
            https: cfg.https.is_some(),
            ..ApiConfig::default()
        },
        metrics: Arc::new(Metrics::default()),
        ready: Arc::new(AtomicBool::new(false)),
        started: (Instant::now(), opts.clock.now()),
        sessions: Arc::new(agora_api::Sessions::default()),
        shutdown: stopped.clone(),
        alerts: Some(alerts.clone()),
        ngsi_subscriptions: Some(ngsi_subscriptions.clone()),
        limits: Arc::new(cfg.api_limits()?),
        audit: Some(audit_log.clone()),
        commerce,
        datasets,
        exports: agora_api::explore::export_slots(),
        forecasts,
        lighting,
        oidc: match &cfg.auth.oidc {
            Some(o) => Some(Arc::new(agora_api::oidc::Oidc::new(o.settings()?))),
            None => None,
        },
        backups: cfg.backup.dir.is_some().then(|| {
            Arc::new(Backups { data_dir: cfg.data_dir.clone(), cfg: cfg.backup.clone() })
                as Arc<dyn agora_api::Backups>
        }),
    };
    state.metrics.set_build(crate::VERSION, crate::COMMIT);
    // TLS first: a certificate that cannot be read stops the start, with the reason.
    let https = match &cfg.https {
        Some(h) => Some(
            agora_ingest::tls::Tls::load("https", h.files(), &["http/1.1"])
                .map_err(anyhow::Error::msg)?,
        ),
        None => None,
    };
    let mqtts = match cfg.mqtt_tls_files()? {
        Some((listen, files)) if cfg.mqtt.broker.enabled => Some((
            listen,
            agora_ingest::tls::Tls::load("mqtts", files, &[]).map_err(anyhow::Error::msg)?,
        )),
        _ => None,
    };
    let certificates: Vec<_> =
        https.iter().cloned().chain(mqtts.iter().map(|(_, t)| t.clone())).collect();
    state.metrics.set_certificates(certificates.clone());
    let listener = tokio::net::TcpListener::bind(cfg.http)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.http))?;
    let addr = listener.local_addr()?;
    let mut app = agora_api::router_with(state.clone(), agora_web::router(cfg.web.clone()));
    if let Some(h) = &cfg.https {
        app = app.layer(axum::middleware::map_response_with_state(
            SecureTransport::new(h),
            secure_transport,
        ));
    }
    let mut s1 = stopped.clone();
    let mut http_limits = cfg.http_limits()?;
    http_limits.tls = https.clone();
    let redirect = match cfg.https.as_ref().and_then(|h| h.redirect_from) {
        Some(from) => {
            let l = tokio::net::TcpListener::bind(from).await.with_context(|| {
                format!("cannot listen on {from} for the redirect to HTTPS ([https] redirect_from)")
            })?;
            let redirect_addr = l.local_addr()?;
            let limits = agora_api::connections::HttpLimits { tls: None, ..http_limits.clone() };
            let mut s2 = stopped.clone();
            let router = axum::Router::new().fallback(move |req: axum::extract::Request| {
                std::future::ready(to_https(&req, addr.port()))
            });
            let task = tokio::spawn(async move {
                if let Err(e) = agora_api::connections::serve(l, router, limits, async move {
                    let _ = s2.wait_for(|v| *v).await;
                })
                .await
                {
                    tracing::error!(error = %e, "the redirect to HTTPS stopped");
                }
            });
            Some((redirect_addr, task))
        }
        None => None,
    };
    let http =
        tokio::spawn(agora_api::connections::serve(listener, app, http_limits, async move {
            let _ = s1.wait_for(|v| *v).await;
        }));
    // The departments' schedules send their commands through the alerts' publisher.
    let schedules_task =
        crate::schedules::spawn(state.clone(), schedules, publisher, stopped.clone());
    let upkeep = tokio::spawn(upkeep(
        state.clone(),
        Duration::from_secs(cfg.storage.flush_interval_secs),
        stopped,
    ));
    for sub in &cfg.mqtt.subscriptions {
        sub.transport().map_err(anyhow::Error::msg)?;
    }
    if let Some(b) = &cfg.alerts.mqtt {
        b.0.transport("[alerts.mqtt]").map_err(anyhow::Error::msg)?;
    }
    let mut tasks: Vec<JoinHandle<()>> = cfg
        .mqtt
        .subscriptions
        .iter()
        .map(|sub| agora_ingest::mqtt::spawn(sub.clone(), state.pipeline.clone()))
        .collect();
    tasks.push(schedules_task);
    if let Some((addr, task)) = redirect {
        tracing::info!(%addr, "plain HTTP redirected to HTTPS");
        tasks.push(task);
    }
    for t in &certificates {
        let every = Duration::from_secs(cfg.https.as_ref().map_or(10, |h| h.reload_check_secs));
        tasks.push(t.clone().watch(every));
    }
    if certificates.is_empty() {
        // `systemctl reload agora` sends SIGHUP: without certificates there is nothing to read
        // again, and the signal must not end the process.
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot handle SIGHUP")?;
        tasks.push(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: nothing to reload (no TLS certificate configured)");
            }
        }));
    }
    let mqtts_addr = match &mqtts {
        Some((listen, tls)) => {
            let (a, task) =
                agora_ingest::mqtt::broker::start(agora_ingest::mqtt::broker::BrokerOptions {
                    listen: *listen,
                    pipeline: state.pipeline.clone(),
                    catalog: state.catalog.clone(),
                    subscribers: subscribers.clone(),
                    limits: cfg.broker_limits()?,
                    tls: Some(tls.clone()),
                })
                .await
                .with_context(|| format!("cannot listen for MQTT over TLS on {listen}"))?;
            tasks.push(task);
            Some(a)
        }
        None => None,
    };
    if mqtts_addr.is_some() && !cfg.mqtt.broker.plain {
        let _ = state.config.mqtt_port.set(mqtts_addr.map_or(0, |a| a.port()));
    }
    let mqtt_addr = if cfg.mqtt.broker.enabled && cfg.mqtt.broker.plain {
        let started = agora_ingest::mqtt::broker::start(
            agora_ingest::mqtt::broker::BrokerOptions {
                listen: cfg.mqtt.broker.listen,
                pipeline: state.pipeline.clone(),
                catalog: state.catalog.clone(),
                subscribers: subscribers.clone(),
                limits: cfg.broker_limits()?,
                tls: None,
            },
        )
        .await
        .with_context(|| {
            format!(
                "cannot listen for MQTT on {} (set AGORA_MQTT_LISTEN to another address, or off)",
                cfg.mqtt.broker.listen
            )
        });
        match started {
            Ok((a, task)) => {
                tasks.push(task);
                let _ = state.config.mqtt_port.set(a.port());
                // SensorThings' MQTT extension: observations to the Datastreams' subscribers.
                tasks.push(agora_ingest::mqtt::sta::spawn_feed(
                    state.pipeline.clone(),
                    subscribers.clone(),
                ));
                Some(a)
            }
            Err(e) if !cfg.mqtt.broker.required => {
                tracing::warn!(error = %format!("{e:#}"), "going on without the MQTT endpoint");
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    // The audit trail's retention, once a day.
    if cfg.audit.retention_days > 0 {
        let (log, clock, days) = (audit_log.clone(), opts.clock.clone(), cfg.audit.retention_days);
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(86_400));
            loop {
                every.tick().await;
                let before = clock.now().saturating_add_nanos(-((days * 86_400) as i64 * 1_000_000_000));
                match log.prune(before).await {
                    Ok(0) => {}
                    Ok(n) => {
                        let e = agora_store::audit::AuditEvent {
                            actor: "agora".into(),
                            address: None,
                            action: "audit.retention".into(),
                            target: "audit_log".into(),
                            status: 0,
                            detail: serde_json::json!({"removed": n, "older_than": before, "days": days}),
                        };
                        if let Err(e) = log.append(clock.now(), e).await {
                            tracing::error!(error = %e, "the audit trail could not record its retention");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "audit retention failed"),
                }
            }
        }));
    }
    // Alert history's retention, once a day: resolved alerts and action attempts name people.
    if cfg.alerts.history_days > 0 {
        let (alerts, clock, log) = (alerts.clone(), opts.clock.clone(), audit_log.clone());
        let days = cfg.alerts.history_days;
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(86_400));
            loop {
                every.tick().await;
                let before = clock.now().saturating_add_nanos(-((days * 86_400) as i64 * 1_000_000_000));
                match alerts.prune_history(before).await {
                    Ok((0, 0)) => {}
                    Ok((a, d)) => {
                        let e = agora_store::audit::AuditEvent {
                            actor: "agora".into(),
                            address: None,
                            action: "alerts.retention".into(),
                            target: "alerts".into(),
                            status: 0,
                            detail: serde_json::json!({"alerts_removed": a, "attempts_removed": d, "older_than": before, "days": days}),
                        };
                        if let Err(e) = log.append(clock.now(), e).await {
                            tracing::error!(error = %e, "the audit trail could not record the alerts' retention");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "alert history retention failed"),
                }
            }
        }));
    }
    // Reporters' addresses erased once their report has been closed for the retention.
    {
        let (state, log) = (state.clone(), audit_log.clone());
        let every_secs = state.reports.settings.erase_every_secs;
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(every_secs));
            loop {
                every.tick().await;
                match agora_api::reports::erase_contacts(&state).await {
                    Ok(0) => {}
                    Ok(n) => {
                        let e = agora_store::audit::AuditEvent {
                            actor: "agora".into(),
                            address: None,
                            action: "reports.retention".into(),
                            target: "report_contacts".into(),
                            status: 0,
                            detail: serde_json::json!({"addresses_erased": n, "days": state.reports.settings.contact_retention_days}),
                        };
                        if let Err(e) = log.append(state.clock.now(), e).await {
                            tracing::error!(error = %e, "the audit trail could not record the reports' retention");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "erasing reporters' addresses failed"),
                }
            }
        }));
    }
    // Forecasts and anomalies of every forecastable series, a minute after start then hourly.
    tasks.push(tokio::spawn(
        state.forecasts.clone().run(Duration::from_secs(60), state.shutdown.clone()),
    ));
    // Scheduled backups (none unless [backup] sets a repository and a period).
    let backups = tokio::spawn(crate::backup::schedule(
        state.clone(),
        cfg.data_dir.clone(),
        cfg.backup.clone(),
    ));
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, elapsed_ms = started.elapsed().as_millis() as u64, "agora is ready");
    Ok(Server {
        addr,
        mqtt_addr,
        mqtts_addr,
        generated_admin_token,
        state,
        stop,
        http,
        upkeep,
        tasks,
        alerts_tasks,
        backups,
    })
}

impl Server {
    /// Stop accepting requests, finish the ones in flight, flush storage, persist the catalog.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // Unacknowledged MQTT messages stay with the broker and come again after a restart.
        for m in &self.tasks {
            m.abort();
        }
        // A backup under way is left unfinished: its `.partial` directory is removed by the next.
        self.backups.abort();
        let _ = self.stop.send(true);
        self.http.await??;
        self.upkeep.await?;
        if let Some(a) = &self.state.alerts {
            a.save_state().await.context("saving the alert evaluation state")?;
        }
        if let Some(n) = &self.state.ngsi_subscriptions {
            n.save_counters().await;
        }
        self.alerts_tasks.abort();
        self.state.store.close().await.context("flushing storage")?;
        // Not saved (a full disk): the quality checks start afresh; the catalog still closes.
        if let Err(e) = self.state.pipeline.save_state().await {
            tracing::error!(error = %e, "saving the ingest pipeline's state failed");
        }
        self.state.catalog.close().await.context("saving the catalog")?;
        tracing::info!("agora stopped cleanly");
        Ok(())
    }
}

/// What HTTPS adds to every answer: `Strict-Transport-Security`, and `Secure` on cookies.
#[derive(Debug, Clone)]
struct SecureTransport {
    hsts: Option<axum::http::HeaderValue>,
}

impl SecureTransport {
    fn new(h: &crate::config::HttpsConfig) -> Self {
        let hsts = (h.hsts_max_age_secs > 0).then(|| {
            let sub = if h.hsts_include_subdomains { "; includeSubDomains" } else { "" };
            axum::http::HeaderValue::from_str(&format!("max-age={}{sub}", h.hsts_max_age_secs))
                .expect("ASCII header")
        });
        Self { hsts }
    }
}

async fn secure_transport(
    axum::extract::State(t): axum::extract::State<SecureTransport>,
    mut resp: axum::response::Response,
) -> axum::response::Response {
    use axum::http::header;
    let h = resp.headers_mut();
    if let Some(v) = &t.hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
    }
    let cookies: Vec<_> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    if !cookies.is_empty() {
        h.remove(header::SET_COOKIE);
        for c in cookies {
            let secure = match c.to_str() {
                Ok(s) if !s.to_ascii_lowercase().contains("; secure") => {
                    axum::http::HeaderValue::from_str(&format!("{s}; Secure")).unwrap_or(c)
                }
                _ => c,
            };
            h.append(header::SET_COOKIE, secure);
        }
    }
    resp
}

/// The answer of the plain HTTP listener: the same path and query on HTTPS (308 keeps the
/// method and body of a POST, so nothing is sent twice in clear by a client that follows).
fn to_https(req: &axum::extract::Request, port: u16) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    });
    let Some(host) = host else {
        return (
            StatusCode::BAD_REQUEST,
            "this address answers over HTTPS only; say which host you want (Host header)",
        )
            .into_response();
    };
    // The host without its port ([v6]:80, name:80), then HTTPS's port unless it is 443.
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let port = if port == 443 { String::new() } else { format!(":{port}") };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let to = format!("https://{name}{port}{path}");
    match axum::http::HeaderValue::from_str(&to) {
        Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Tell systemd the service is ready (`Type=notify`), when started by it: a datagram
/// `READY=1` to `$NOTIFY_SOCKET` (a path, or an abstract name starting with `@`).
pub fn notify_ready() {
    use std::os::linux::net::SocketAddrExt;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let path = path.to_string_lossy().into_owned();
    let sent = (|| -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        match path.strip_prefix('@') {
            Some(name) => {
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(b"READY=1\n", &a)?;
            }
            None => {
                sock.send_to(b"READY=1\n", &path)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(error = %e, "could not tell systemd that agora is ready");
    }
}

/// Backups asked for through the API.
#[derive(Debug)]
struct Backups {
    data_dir: std::path::PathBuf,
    cfg: crate::backup::BackupConfig,
}

#[async_trait::async_trait]
impl agora_api::Backups for Backups {
    async fn take(&self, state: &AppState) -> Result<serde_json::Value, String> {
        let r = crate::backup::backup(state, &self.data_dir, &self.cfg)
            .await
            .map_err(|e| format!("{e:#}"))?;
        serde_json::to_value(r).map_err(|e| e.to_string())
    }
    async fn list(&self) -> Result<serde_json::Value, String> {
        let repo = self.cfg.dir.clone().ok_or("no backup repository")?;
        let all = tokio::task::spawn_blocking(move || crate::backup::list(&repo))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))?;
        Ok(serde_json::json!({ "backups": all }))
    }
}

/// MQTT commands through agora's own endpoint: delivered to the clients subscribed now.
#[derive(Debug)]
struct EmbeddedPublisher(agora_ingest::mqtt::broker::Subscribers);

#[async_trait::async_trait]
impl agora_alerts::Publisher for EmbeddedPublisher {
    async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        _qos: u8,
        _retain: bool,
    ) -> Result<String, agora_alerts::DeliveryFailed> {
        match self.0.publish(topic, payload.into()) {
            0 => Err(format!("no client subscribed to {topic} on agora's MQTT endpoint").into()),
            n => Ok(format!("delivered to {n} subscriber(s) on agora's MQTT endpoint")),
        }
    }
}

/// Calls to devices from alert actions, through the pipeline's link to devices.
#[derive(Debug)]
struct HubCaller(agora_ingest::thingsboard::hub::Hub);

#[async_trait::async_trait]
impl agora_alerts::DeviceCaller for HubCaller {
    async fn call(
        &self,
        device: &str,
        method: &str,
        params: serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, agora_alerts::CallFailed> {
        let id = agora_model::DeviceId::parse(device).map_err(|e| agora_alerts::CallFailed {
            detail: format!("device {device:?}: {e}"),
            retry: false,
        })?;
        self.0.call(&id, method, params, timeout).await.map_err(|e| agora_alerts::CallFailed {
            // Not connected, or too busy: nothing happened on the device, calling again is safe.
            retry: matches!(e, agora_ingest::Error::NotConnected(_) | agora_ingest::Error::Busy),
            detail: e.to_string(),
        })
    }
}

/// The alerting service, observing every stored batch.
async fn start_alerts(
    cfg: &Config,
    catalog: &Arc<dyn Catalog>,
    store: &Arc<dyn SeriesStore>,
    pipeline: &Arc<Pipeline>,
    opts: &ServeOptions,
    alert_store: Arc<agora_store::alerts::SqliteAlertStore>,
    publisher: Option<Arc<dyn agora_alerts::Publisher>>,
) -> anyhow::Result<(Arc<agora_alerts::Alerts>, agora_alerts::AlertsTasks)> {
    let p = pipeline.clone();
    let known = agora_alerts::KnownProperty(Arc::new(move |name: &str| {
        p.canonical_property(name).as_deref() == Some(name)
    }));
    let (alerts, tasks) = agora_alerts::Alerts::start(
        agora_alerts::AlertsDeps {
            store: alert_store,
            catalog: catalog.clone(),
            series: store.clone(),
            clock: opts.clock.clone(),
            publisher,
            caller: Some(Arc::new(HubCaller(pipeline.devices.clone()))),
            known_property: known,
            indicators: cfg.indicators.clone(),
        },
        cfg.alerts.clone(),
    )
    .await
    .context("cannot start alerting")?;
    Ok((alerts, tasks))
}

/// Make sure an admin token exists. Returns a generated secret to show once.
async fn bootstrap_admin(
    catalog: &dyn Catalog,
    given: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if let Some(secret) = given {
        let name = "admin (AGORA_ADMIN_TOKEN)";
        if catalog.create_token_with_secret(name, Scope::Admin, secret).await?.is_none() {
            tracing::warn!(
                "AGORA_ADMIN_TOKEN is a revoked token: it is not re-created and gives no access; \
                 set AGORA_ADMIN_TOKEN to a new secret to create another admin token"
            );
        }
        return Ok(None);
    }
    if catalog.tokens().iter().any(|t| t.scope == Scope::Admin) {
        return Ok(None);
    }
    let (_, secret) = catalog.create_token("admin", Scope::Admin, None).await?;
    Ok(Some(secret))
}

/// Background upkeep: flush when due, save last-seen times (every 10 s) and the pipeline's state
/// (every minute). Compaction runs in a task of its own (see [`compaction`]).
async fn upkeep(state: AppState, flush_every: Duration, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(compaction(state.clone(), stopped.clone()));
    let mut last_flush = Instant::now();
    let mut last_persist = Instant::now();
    let mut last_state = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = state.store.flush_wanted() => {}
            _ = stopped.wait_for(|v| *v) => return,
        }
        let r = if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            state.store.flush().await
        } else {
            state.store.flush_due().await
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "storage upkeep failed");
        }
        if last_persist.elapsed() >= Duration::from_secs(10) {
            last_persist = Instant::now();
            if let Err(e) = state.catalog.persist().await {
                tracing::error!(error = %e, "saving the catalog failed");
            }
        }
        if last_state.elapsed() >= Duration::from_secs(60) {
            last_state = Instant::now();
            if let Err(e) = state.pipeline.save_state().await {
                tracing::error!(error = %e, "saving the ingest pipeline's state failed");
            }
        }
    }
}

/// Compact when due (checked after each flush, and twice a second for retention), apart from
/// flushes: a compaction of a large store takes minutes, during which flushes must go on or
/// writers would wait for room in memory. Not awaited at shutdown: closing the store stops a
/// compaction under way, which leaves its inputs as they were.
async fn compaction(state: AppState, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = state.store.flushed() => {}
            _ = stopped.wait_for(|v| *v) => return,
        }
        // A failure is logged by the store, which retries a minute later.
        let _ = state.store.compact_due().await;
    }
}
