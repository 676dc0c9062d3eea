//! Alerts and actions. Rules watch the data as it is stored (threshold, state, sustained, rate)
//! and on a schedule (windows, silence); alerts go open → acknowledged → resolved, one at a time
//! per rule and device; actions (webhooks, MQTT commands) run for each event, every attempt
//! logged.
//!
//! The evaluator runs inside the ingest path (`BatchObserver`) and only emits transitions; one
//! manager task owns the alerts, so that no alert is ever duplicated; evaluation state is saved
//! every second and on shutdown, so a restart loses nothing.

pub mod actions;
pub mod egress;
pub mod email;
mod eval;
mod indicators;
pub mod notices;
pub mod rule;
pub mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use agora_model::{Clock, SeriesId, Timestamp, Value};
use agora_store::BatchObserver;
use agora_store::alerts::{AlertFilter, AlertRecord, AlertState, AlertStore, Delivery, StoredRule};
use agora_store::{Catalog, SeriesStore};
use parking_lot::Mutex;
use tokio::sync::mpsc;

pub use actions::{CallFailed, DeliveryFailed, DeviceCaller, ExternalBroker, Publisher};
pub use egress::{AllowHost, Egress};
pub use email::{Lang, MailError, Mailer, SettingError, SmtpConfig};
pub use notices::Notice;
pub use rule::{Rule, RuleError};

use crate::eval::{Compiled, Evaluator, KeyState, Transition};
use crate::rule::Event;

/// Errors of the alerting API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rule is invalid.
    #[error("{0}")]
    Invalid(#[from] RuleError),
    /// Nothing with that id.
    #[error("{0}")]
    NotFound(String),
    /// Not allowed in this state.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error("storage failed")]
    Store(#[from] agora_store::Error),
    /// The service could not start.
    #[error("{0}")]
    Start(String),
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Alerting settings (`[alerts]` in `agora.toml`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Rules defined in the configuration (kept in sync at start; `origin = "config"`).
    pub rules: Vec<Rule>,
    /// Broker for MQTT commands; absent: agora's own MQTT endpoint.
    pub mqtt: Option<ExternalBroker>,
    /// SMTP server for email actions; absent: email actions are refused.
    pub smtp: Option<SmtpConfig>,
    /// Attempts per action (first try included).
    pub max_attempts: u32,
    /// Delay before the second attempt, in milliseconds; doubles each time.
    pub first_retry_ms: u64,
    /// Timeout of a webhook call, in seconds.
    pub webhook_timeout_secs: u64,
    /// Internal destinations webhooks may reach (loopback, private, link-local, metadata… are
    /// refused otherwise): networks (`10.0.0.0/8`), addresses, host names (`hooks.internal`)
    /// and domains (`*.internal`).
    pub allow_hosts: Vec<AllowHost>,
    /// Certificate authorities (PEM) webhooks over https trust besides the system's: a city's
    /// internal authority.
    pub ca_file: Option<std::path::PathBuf>,
    /// Days resolved alerts and action attempts are kept (they name people: who handled an
    /// alert, whom it was sent to); 0: without limit.
    pub history_days: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            mqtt: None,
            smtp: None,
            max_attempts: 5,
            first_retry_ms: 1000,
            webhook_timeout_secs: 5,
            allow_hosts: Vec::new(),
            ca_file: None,
            history_days: 730,
        }
    }
}

/// What an alert shows of the reading that opened it.
struct Shown {
    /// The value.
    value: Option<f64>,
    /// Its property.
    property: Option<String>,
    /// More (a forecast's interval).
    note: Option<String>,
}

/// A forecaster for forecast conditions (the forecasting work plugs in here).
pub trait Forecaster: Send + Sync + std::fmt::Debug {
    /// The highest value predicted for a series within `horizon`, if known.
    fn forecast(&self, series: SeriesId, horizon: Duration) -> Option<f64>;
    /// The same, with the 95 % interval at that hour (NaN where not known).
    fn forecast_interval(&self, series: SeriesId, horizon: Duration) -> Option<(f64, f64, f64)> {
        self.forecast(series, horizon).map(|v| (v, f64::NAN, f64::NAN))
    }
    /// Whether the series has an anomaly reaching its last hours, if known.
    fn anomaly(&self, _series: SeriesId) -> Option<bool> {
        None
    }
}

/// The alerts' delivery machinery, lent to other senders (see [`Alerts::outbound`]).
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The webhooks' client (timeout, trusted authorities, guarded resolver).
    pub http: reqwest::Client,
    /// Where calls may go.
    pub egress: Egress,
    /// Attempts per delivery (first try included).
    pub attempts: u32,
    /// Delay before the second attempt; doubles each time (see [`actions::backoff`]).
    pub first_retry: Duration,
    /// Where attempts are logged (with the alerts' action attempts).
    pub store: Arc<dyn AlertStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// What `Alerts::start` needs.
#[derive(Debug, Clone)]
pub struct AlertsDeps {
    /// Alert records.
    pub store: Arc<dyn AlertStore>,
    /// Devices and series.
    pub catalog: Arc<dyn Catalog>,
    /// Points (windows, replays).
    pub series: Arc<dyn SeriesStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Publishes MQTT commands (agora's own endpoint, or an external broker).
    pub publisher: Option<Arc<dyn Publisher>>,
    /// Calls methods on devices (RPC actions).
    pub caller: Option<Arc<dyn DeviceCaller>>,
    /// Whether a property name is known (the harmonization registry).
    pub known_property: KnownProperty,
    /// Local settings of the indicators rules may watch (heatwave thresholds).
    pub indicators: agora_query::heat::IndicatorsConfig,
}

/// Whether a property name is known, as a function (the ingest pipeline's registry).
#[derive(Clone)]
pub struct KnownProperty(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for KnownProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnownProperty")
    }
}

/// A stored rule that is not evaluated because it is invalid, and why.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvalidRule {
    /// Its identifier.
    pub id: String,
    /// What is wrong with it.
    pub reason: String,
    /// `api` or `config`.
    pub origin: String,
}

/// A rule with where it comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleView {
    /// The rule.
    #[serde(flatten)]
    pub rule: Rule,
    /// `api` or `config`.
    pub origin: String,
    /// Last change.
    pub updated_at: Timestamp,
}

impl RuleView {
    /// As shown through the API: secrets masked (`secrets::MASK`).
    pub fn redacted(&self) -> Self {
        Self { rule: self.rule.redacted(), ..self.clone() }
    }
}

/// The schema of a rule as shown: the rule's own object with `origin` and `updated_at` added.
/// A derived one (`allOf` of the rule and the two fields) would refuse every rule shown, as the
/// rule's schema refuses the properties it does not name (it refuses unknown fields).
#[cfg(feature = "openapi")]
mod openapi {
    use std::borrow::Cow;

    use agora_model::Timestamp;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Rule, RuleView};

    impl PartialSchema for RuleView {
        fn schema() -> RefOr<Schema> {
            let mut s = Rule::schema();
            if let RefOr::T(Schema::Object(o)) = &mut s {
                let origin = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("`api` or `config`"));
                o.properties.insert("origin".into(), origin.into());
                o.properties
                    .insert("updated_at".into(), Ref::from_schema_name(Timestamp::name()).into());
                o.required.extend(["origin".to_owned(), "updated_at".to_owned()]);
                o.description = Some(
                    "A rule with where it comes from (`api`: made through the API, `config`: \
                     defined in agora.toml) and its last change; secrets masked"
                        .into(),
                );
            }
            s
        }
    }

    impl ToSchema for RuleView {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("RuleView")
        }

        fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
            Rule::schemas(out);
            out.push((Timestamp::name().into_owned(), Timestamp::schema()));
        }
    }
}

/// The alerting service.
pub struct Alerts {
    deps: AlertsDeps,
    cfg: AlertsConfig,
    ev: Mutex<Evaluator>,
    rules: parking_lot::RwLock<BTreeMap<String, RuleView>>,
    /// Stored rules that no longer parse or pass the checks (a property gone, a body edited by
    /// hand): not evaluated, kept as they are, reported until replaced or deleted.
    invalid: parking_lot::RwLock<BTreeMap<String, InvalidRule>>,
    /// Unresolved alert per (rule, device).
    open: tokio::sync::Mutex<HashMap<(String, String), i64>>,
    tx: mpsc::UnboundedSender<Transition>,
    /// Stored batches on their way to the evaluator thread.
    batches: std::sync::mpsc::Sender<Arc<agora_store::StoredBatch>>,
    http: reqwest::Client,
    /// Where webhooks may go.
    egress: Egress,
    /// Sends email actions, when `[alerts.smtp]` is set.
    mailer: Option<Arc<Mailer>>,
    forecaster: std::sync::OnceLock<Arc<dyn Forecaster>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("rules", &self.rules.read().len()).finish_non_exhaustive()
    }
}

impl BatchObserver for Alerts {
    fn stored(&self, batch: Arc<agora_store::StoredBatch>) {
        // Evaluated on the evaluator's own thread: writers never wait for rules.
        let _ = self.batches.send(batch);
    }
}

impl Alerts {
    /// Evaluate point rules on stored batches, in order, until the service is dropped.
    fn evaluate(
        me: std::sync::Weak<Self>,
        rx: std::sync::mpsc::Receiver<Arc<agora_store::StoredBatch>>,
    ) {
        let mut out = Vec::new();
        while let Ok(batch) = rx.recv() {
            let Some(me) = me.upgrade() else { return };
            me.ev.lock().on_points(me.deps.catalog.as_ref(), &batch, &mut out);
            for t in out.drain(..) {
                let _ = me.tx.send(t);
            }
        }
    }
}

/// Background tasks of the service.
#[derive(Debug)]
pub struct AlertsTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AlertsTasks {
    /// Stop them (after `Alerts::save_state`).
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Alerts {
    /// Load rules, alerts and states; sync the configuration's rules; start the manager, the
    /// scheduled evaluation and the state saver.
    pub async fn start(deps: AlertsDeps, cfg: AlertsConfig) -> Result<(Arc<Self>, AlertsTasks)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let egress = Egress::new(cfg.allow_hosts.clone());
        let roots = match &cfg.ca_file {
            None => Vec::new(),
            Some(p) => {
                let pem = std::fs::read(p).map_err(|e| {
                    Error::Start(format!("[alerts] cannot read ca_file {}: {e}", p.display()))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::Start(format!(
                        "[alerts] ca_file {} holds no PEM certificate: {e}",
                        p.display()
                    ))
                })?;
                if certs.is_empty() {
                    return Err(Error::Start(format!(
                        "[alerts] ca_file {} holds no PEM certificate",
                        p.display()
                    )));
                }
                certs
            }
        };
        let http = egress
            .client(Duration::from_secs(cfg.webhook_timeout_secs.max(1)), roots)
            .map_err(|e| Error::Start(format!("cannot build the HTTP client: {e}")))?;
        let mailer =
            cfg.smtp.as_ref().map(Mailer::new).transpose().map_err(|e| Error::Start(e.0))?;
        let (batches, batch_rx) = std::sync::mpsc::channel();
        let me = Arc::new(Self {
            deps,
            cfg,
            ev: Mutex::new(Evaluator::default()),
            rules: parking_lot::RwLock::new(BTreeMap::new()),
            invalid: parking_lot::RwLock::new(BTreeMap::new()),
            open: tokio::sync::Mutex::new(HashMap::new()),
            tx,
            batches,
            http,
            egress,
            mailer: mailer.map(Arc::new),
            forecaster: std::sync::OnceLock::new(),
        });
        me.load().await?;
        let weak = Arc::downgrade(&me);
        std::thread::Builder::new()
            .name("agora-alerts".into())
            .spawn(move || Self::evaluate(weak, batch_rx))
            .map_err(|e| Error::Start(format!("cannot start the evaluator thread: {e}")))?;
        let mut tasks = Vec::new();
        let m = me.clone();
        tasks.push(tokio::spawn(async move { m.manage(rx).await }));
        let m = me.clone();
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                m.tick().await;
                if let Err(e) = m.save_state().await {
                    tracing::error!(error = %e, "saving the alert evaluation state failed");
                }
            }
        }));
        Ok((me, AlertsTasks { tasks }))
    }

    /// What sends webhooks, for other outgoing notifications (NGSI-LD subscriptions): the same
    /// client, egress policy, retries and attempt log.
    pub fn outbound(&self) -> Outbound {
        Outbound {
            http: self.http.clone(),
            egress: self.egress.clone(),
            attempts: self.cfg.max_attempts.max(1),
            first_retry: Duration::from_millis(self.cfg.first_retry_ms),
            store: self.deps.store.clone(),
            clock: self.deps.clock.clone(),
        }
    }

    /// Plug in a forecaster.
    pub fn set_forecaster(&self, f: Arc<dyn Forecaster>) {
        let _ = self.forecaster.set(f);
    }

    async fn load(&self) -> Result<()> {
        let now = self.deps.clock.now();
        let mut stored: BTreeMap<String, RuleView> = BTreeMap::new();
        let mut invalid = BTreeMap::new();
        for r in self.deps.store.rules().await? {
            // Validated as a new rule would be; an invalid one is reported, never changed.
            let checked = serde_json::from_value::<Rule>(r.body.clone())
                .map_err(|e| e.to_string())
                .and_then(|rule| self.check(&rule).map(|()| rule).map_err(|e| e.0));
            match checked {
                Ok(rule) => {
                    stored.insert(
                        r.id.clone(),
                        RuleView { rule, origin: r.origin, updated_at: r.updated_at },
                    );
                }
                Err(reason) => {
                    tracing::error!(rule = %r.id, %reason, "a stored rule is invalid: it is not evaluated until it is replaced or deleted");
                    invalid.insert(
                        r.id.clone(),
                        InvalidRule { id: r.id.clone(), reason, origin: r.origin.clone() },
                    );
                }
            }
        }
        // The configuration's rules replace the ones it defined before.
        let config_ids: Vec<String> = self.cfg.rules.iter().map(|r| r.id.clone()).collect();
        for (id, v) in stored.clone() {
            if v.origin == "config" && !config_ids.contains(&id) {
                self.deps.store.delete_rule(&id).await?;
                stored.remove(&id);
            }
        }
        for (id, v) in invalid.clone() {
            if v.origin == "config" && !config_ids.contains(&id) {
                self.deps.store.delete_rule(&id).await?;
                invalid.remove(&id);
            }
        }
        for r in &self.cfg.rules {
            self.check(r)
                .map_err(|e| RuleError(format!("rule {:?} in the configuration: {e}", r.id)))?;
            let same = stored.get(&r.id).is_some_and(|v| &v.rule == r && v.origin == "config");
            if !same {
                self.deps
                    .store
                    .put_rule(&StoredRule {
                        id: r.id.clone(),
                        body: serde_json::to_value(r).unwrap_or_default(),
                        origin: "config".into(),
                        updated_at: now,
                    })
                    .await?;
                stored.insert(
                    r.id.clone(),
                    RuleView { rule: r.clone(), origin: "config".into(), updated_at: now },
                );
            }
        }
        let mut open = self.open.lock().await;
        for a in self.deps.store.unresolved().await? {
            open.insert((a.rule.clone(), a.scope_key.clone()), a.id);
        }
        let saved = self.deps.store.states().await?;
        let mut ev = self.ev.lock();
        ev.set_rules(stored.values().map(|v| v.rule.clone()).collect());
        for (rule, key, json) in saved {
            if let Ok(st) = serde_json::from_str::<KeyState>(&json) {
                ev.saved.insert((rule.clone(), key.clone()));
                ev.set_state(&rule, &key, st);
            }
        }
        // The alerts table is the truth about what is open.
        for (rule, key) in open.keys() {
            if let Some(st) = ev.state_mut(rule, key) {
                st.open = true;
            }
        }
        for (rule, key, st) in ev.states_mut() {
            st.open = open.contains_key(&(rule.to_owned(), key.to_owned()));
        }
        drop(ev);
        drop(open);
        invalid.retain(|id, _| !stored.contains_key(id));
        *self.rules.write() = stored;
        *self.invalid.write() = invalid;
        Ok(())
    }

    /// Save the evaluation states that changed and matter; forget the ones back to rest.
    pub async fn save_state(&self) -> Result<()> {
        let (upserts, deletes) = {
            let mut ev = self.ev.lock();
            let mut upserts = Vec::new();
            let mut deletes = Vec::new();
            for (k, st) in ev.take_dirty() {
                match st {
                    Some(json) => {
                        upserts.push((k.0.clone(), k.1.clone(), json));
                        ev.saved.insert(k);
                    }
                    None => {
                        if ev.saved.remove(&k) {
                            deletes.push(k);
                        }
                    }
                }
            }
            (upserts, deletes)
        };
        if !upserts.is_empty() || !deletes.is_empty() {
            self.deps.store.save_states(&upserts, &deletes).await?;
        }
        Ok(())
    }

    // ---- Rules ---------------------------------------------------------------------------

    /// Every rule, secrets masked.
    pub fn rules(&self) -> Vec<RuleView> {
        self.rules.read().values().map(RuleView::redacted).collect()
    }

    /// Stored rules left out of evaluation because they are invalid, with the reason.
    pub fn invalid_rules(&self) -> Vec<InvalidRule> {
        self.invalid.read().values().cloned().collect()
    }

    /// One rule, secrets masked.
    pub fn rule(&self, id: &str) -> Option<RuleView> {
        self.rules.read().get(id).map(RuleView::redacted)
    }

    /// The built-in templates.
    pub fn templates(&self) -> Vec<Rule> {
        rule::templates()
    }

    /// Validate a rule, and that what its actions need is configured.
    fn check(&self, r: &Rule) -> std::result::Result<(), RuleError> {
        r.check(&*self.deps.known_property.0)?;
        for a in &r.actions {
            if let rule::Action::Webhook { url, .. } = a {
                let shown = secrets::mask_url(url);
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| RuleError(format!("webhook url {shown:?} is not a URL: {e}")))?;
                self.egress
                    .check_url(&parsed)
                    .map_err(|e| RuleError(format!("webhook url {shown:?} {e}")))?;
            }
        }
        if self.mailer.is_none() && r.actions.iter().any(|a| a.kind() == "email") {
            return Err(RuleError(
                "email actions need an SMTP server: set [alerts.smtp] in agora.toml".into(),
            ));
        }
        Ok(())
    }

    /// Create or replace a rule made through the API. Webhook secrets and URL credentials sent
    /// masked (or a secret left out) are kept from the stored rule; the answer masks them.
    pub async fn put_rule(&self, r: Rule) -> Result<RuleView> {
        let old = self.rules.read().get(&r.id).map(|v| v.rule.clone());
        let r = secrets::restore(r, old.as_ref())?;
        self.check(&r)?;
        if self.rules.read().get(&r.id).is_some_and(|v| v.origin == "config") {
            return Err(Error::Conflict(format!(
                "rule {:?} is defined in agora.toml; change it there",
                r.id
            )));
        }
        let now = self.deps.clock.now();
        self.deps
            .store
            .put_rule(&StoredRule {
                id: r.id.clone(),
                body: serde_json::to_value(&r).unwrap_or_default(),
                origin: "api".into(),
                updated_at: now,
            })
            .await?;
        let view = RuleView { rule: r.clone(), origin: "api".into(), updated_at: now };
        self.invalid.write().remove(&r.id);
        let all: Vec<Rule> = {
            let mut rules = self.rules.write();
            rules.insert(r.id.clone(), view.clone());
            rules.values().map(|v| v.rule.clone()).collect()
        };
        self.ev.lock().set_rules(all);
        Ok(view.redacted())
    }

    /// A rule from a template, with the given fields (id, scope, actions, …) replacing its own.
    pub fn from_template(&self, template: &str, overrides: serde_json::Value) -> Result<Rule> {
        let t = rule::templates()
            .into_iter()
            .find(|t| t.id == template)
            .ok_or_else(|| Error::Invalid(RuleError(format!("unknown template {template:?}"))))?;
        let mut v = serde_json::to_value(t).unwrap_or_default();
        if let (Some(o), Some(extra)) = (v.as_object_mut(), overrides.as_object()) {
            for (k, x) in extra {
                if k != "template" {
                    o.insert(k.clone(), x.clone());
                }
            }
            o.insert(
                "enabled".into(),
                overrides.get("enabled").cloned().unwrap_or(serde_json::Value::Bool(true)),
            );
        }
        serde_json::from_value(v).map_err(|e| Error::Invalid(RuleError(e.to_string())))
    }

    /// Delete a rule made through the API; its unresolved alerts are resolved.
    pub async fn delete_rule(&self, id: &str) -> Result<()> {
        let invalid = self.invalid.read().contains_key(id);
        match self.rules.read().get(id) {
            None if invalid => {}
            None => return Err(Error::NotFound(format!("rule {id:?} not found"))),
            Some(v) if v.origin == "config" => {
                return Err(Error::Conflict(format!(
                    "rule {id:?} is defined in agora.toml; remove it there"
                )));
            }
            Some(_) => {}
        }
        self.deps.store.delete_rule(id).await?;
        self.deps.store.delete_states(id).await?;
        self.invalid.write().remove(id);
        let all: Vec<Rule> = {
            let mut rules = self.rules.write();
            rules.remove(id);
            rules.values().map(|v| v.rule.clone()).collect()
        };
        self.ev.lock().set_rules(all);
        let keys: Vec<(String, String)> =
            self.open.lock().await.keys().filter(|k| k.0 == id).cloned().collect();
        for (rule, key) in keys {
            self.resolve(&rule, &key, self.deps.clock.now().as_nanos(), "rule deleted").await;
        }
        Ok(())
    }

    // ---- Alerts --------------------------------------------------------------------------

    /// Alerts matching a filter, newest first.
    pub async fn alerts(&self, f: &AlertFilter) -> Result<Vec<AlertRecord>> {
        Ok(self.deps.store.alerts(f).await?)
    }

    /// One alert and its action attempts.
    pub async fn alert(&self, id: i64) -> Result<(AlertRecord, Vec<Delivery>)> {
        let a = self
            .deps
            .store
            .alert(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("alert {id} not found")))?;
        let d = self.deps.store.deliveries(Some(id), 1000).await?;
        Ok((a, d.into_iter().map(masked).collect()))
    }

    /// The latest action attempts.
    pub async fn deliveries(&self, limit: u32) -> Result<Vec<Delivery>> {
        Ok(self.deps.store.deliveries(None, limit).await?.into_iter().map(masked).collect())
    }

    /// Forget alerts resolved before `before` and action attempts made before it; (alerts,
    /// attempts) removed.
    pub async fn prune_history(&self, before: Timestamp) -> Result<(u64, u64)> {
        Ok(self.deps.store.prune_history(before).await?)
    }

    /// Replace who handled alerts (`from`, as they were named then) by `to` (a person's erasure);
    /// how many alerts changed.
    pub async fn rename_handler(&self, from: &str, to: &str) -> Result<u64> {
        Ok(self.deps.store.rename_handler(from, to).await?)
    }

    /// Take an open alert in hand.
    pub async fn acknowledge(
        &self,
        id: i64,
        by: &str,
        comment: Option<String>,
    ) -> Result<AlertRecord> {
        let _guard = self.open.lock().await;
        let mut a = self
            .deps
            .store
            .alert(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("alert {id} not found")))?;
        if a.state != AlertState::Open {
            return Err(Error::Conflict(format!("alert {id} is {}, not open", a.state.as_str())));
        }
        a.state = AlertState::Acknowledged;
        a.acknowledged_at = Some(self.deps.clock.now());
        a.acknowledged_by = Some(by.to_owned());
        a.ack_comment = comment;
        self.deps.store.update_alert(&a).await?;
        self.dispatch(&a, Event::Acknowledged);
        Ok(a)
    }

    /// Close an alert by hand. It does not open again until its condition has cleared.
    pub async fn close(&self, id: i64, by: &str, comment: Option<String>) -> Result<AlertRecord> {
        let mut open = self.open.lock().await;
        let mut a = self
            .deps
            .store
            .alert(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("alert {id} not found")))?;
        if a.state == AlertState::Resolved {
            return Err(Error::Conflict(format!("alert {id} is already resolved")));
        }
        a.state = AlertState::Resolved;
        a.resolved_at = Some(self.deps.clock.now());
        a.resolved_by = Some(by.to_owned());
        if comment.is_some() {
            a.ack_comment = comment;
        }
        self.deps.store.update_alert(&a).await?;
        open.remove(&(a.rule.clone(), a.scope_key.clone()));
        self.ev.lock().closed_by_hand(&a.rule, &a.scope_key);
        self.dispatch(&a, Event::Resolved);
        Ok(a)
    }

    // ---- The manager ---------------------------------------------------------------------

    async fn manage(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Transition>) {
        while let Some(first) = rx.recv().await {
            // Take what is waiting; late points of one (rule, device) are replayed once, from
            // the earliest of them (a backfill sends many).
            let mut batch = vec![first];
            while batch.len() < 10_000 {
                match rx.try_recv() {
                    Ok(t) => batch.push(t),
                    Err(_) => break,
                }
            }
            let mut late: BTreeMap<(String, String), i64> = BTreeMap::new();
            for t in batch {
                match t {
                    Transition::Open { rule, key, at, value, property, note } => {
                        let shown = Shown { value, property, note };
                        self.open_alert(&rule, &key, at, shown, None).await;
                    }
                    Transition::Resolve { rule, key, at } => {
                        self.resolve(&rule, &key, at, "auto").await
                    }
                    Transition::Late { rule, key, from } => {
                        let e = late.entry((rule, key)).or_insert(from);
                        *e = (*e).min(from);
                    }
                    Transition::Episodes { rule, key, episodes, range_from, property } => {
                        self.reconcile(&rule, &key, &episodes, range_from, Some(property)).await;
                    }
                }
            }
            for ((rule, key), from) in late {
                self.replay(&rule, &key, from).await;
            }
        }
    }

    async fn open_alert(
        &self,
        rule: &str,
        key: &str,
        at: i64,
        shown: Shown,
        resolved_at: Option<i64>,
    ) -> Option<AlertRecord> {
        let Shown { value, property, note } = shown;
        let mut open = self.open.lock().await;
        if resolved_at.is_none() && open.contains_key(&(rule.to_owned(), key.to_owned())) {
            return None;
        }
        let r = self.rules.read().get(rule).map(|v| v.rule.clone())?;
        let d = self.deps.catalog.device(key);
        let name = if r.name.is_empty() { r.id.clone() } else { r.name.clone() };
        let note = note.map(|n| format!(" ; {n}")).unwrap_or_default();
        let shown = value
            .map(|v| {
                format!(
                    " ({} = {}{note})",
                    property.as_deref().unwrap_or("value"),
                    (v * 100.0).round() / 100.0
                )
            })
            .unwrap_or_default();
        let mut a = AlertRecord {
            id: 0,
            rule: rule.to_owned(),
            scope_key: key.to_owned(),
            device: d.as_ref().map(|d| d.id.to_string()).or_else(|| Some(key.to_owned())),
            site: d.as_ref().and_then(|d| d.site.as_ref().map(|x| x.to_string())),
            commune: d.as_ref().and_then(|d| d.commune.as_ref().map(|x| x.to_string())),
            property,
            severity: r.severity.as_str().to_owned(),
            state: if resolved_at.is_some() { AlertState::Resolved } else { AlertState::Open },
            message: format!("{name} — {key}{shown}"),
            value,
            opened_at: Timestamp::from_nanos(at),
            acknowledged_at: None,
            acknowledged_by: None,
            ack_comment: None,
            resolved_at: resolved_at.map(Timestamp::from_nanos),
            resolved_by: resolved_at.map(|_| "auto".to_owned()),
        };
        match self.deps.store.insert_alert(&a).await {
            Ok(id) => {
                a.id = id;
                if resolved_at.is_none() {
                    open.insert((rule.to_owned(), key.to_owned()), id);
                }
                tracing::info!(rule, device = key, id, "alert opened");
                self.dispatch(&a, Event::Opened);
                if resolved_at.is_some() {
                    self.dispatch(&a, Event::Resolved);
                }
                Some(a)
            }
            Err(e) => {
                tracing::error!(rule, device = key, error = %e, "could not record an alert");
                None
            }
        }
    }

    async fn resolve(&self, rule: &str, key: &str, at: i64, by: &str) {
        let mut open = self.open.lock().await;
        let Some(id) = open.remove(&(rule.to_owned(), key.to_owned())) else { return };
        match self.deps.store.alert(id).await {
            Ok(Some(mut a)) if a.state != AlertState::Resolved => {
                a.state = AlertState::Resolved;
                a.resolved_at = Some(Timestamp::from_nanos(at.max(a.opened_at.as_nanos())));
                a.resolved_by = Some(by.to_owned());
                if let Err(e) = self.deps.store.update_alert(&a).await {
                    tracing::error!(id, error = %e, "could not resolve an alert");
                    return;
                }
                tracing::info!(rule, device = key, id, "alert resolved");
                self.dispatch(&a, Event::Resolved);
            }
            Ok(_) => {}
            Err(e) => tracing::error!(id, error = %e, "could not read an alert"),
        }
    }

    /// Replay the stored points of a (rule, device) around a late point, then make the alerts
    /// of that period what in-order data would have made them.
    async fn replay(&self, rule: &str, key: &str, from: i64) {
        let Some(c): Option<Arc<Compiled>> =
            self.ev.lock().rules.iter().find(|c| c.rule.id == rule).cloned()
        else {
            return;
        };
        let start = from - c.lookback_ns() - 3_600_000_000_000;
        let end = self.deps.clock.now().as_nanos() + 3_600_000_000_000;
        let mut points: Vec<(i64, String, Value)> = Vec::new();
        for p in c.point_properties().to_vec() {
            let Some(s) = self.deps.catalog.lookup_series(&[(key, p.as_str())])[0] else {
                continue;
            };
            match self
                .deps
                .series
                .read(s, Timestamp::from_nanos(start), Timestamp::from_nanos(end), 1_000_000)
                .await
            {
                Ok(v) => points.extend(v.into_iter().map(|(t, x)| (t.as_nanos(), p.clone(), x))),
                Err(e) => {
                    tracing::error!(rule, device = key, error = %e, "replay read failed");
                    return;
                }
            }
        }
        points.sort_by_key(|p| p.0);
        let current = self.ev.lock().state_mut(rule, key).cloned();
        let (episodes, mut st) = eval::replay(&c, key, &points, current.as_ref());
        let property = c.point_properties().first().cloned();
        self.reconcile(rule, key, &episodes, start, property).await;
        st.open = self.open.lock().await.contains_key(&(rule.to_owned(), key.to_owned()));
        self.ev.lock().set_state(rule, key, st);
    }

    /// Make the alerts of (rule, device) from `range_from` on match the episodes.
    async fn reconcile(
        &self,
        rule: &str,
        key: &str,
        episodes: &[eval::Episode],
        range_from: i64,
        property: Option<String>,
    ) {
        let f = AlertFilter {
            rule: Some(rule.to_owned()),
            device: Some(key.to_owned()),
            limit: 500,
            ..Default::default()
        };
        let existing = match self.deps.store.alerts(&f).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(rule, device = key, error = %e, "reconcile read failed");
                return;
            }
        };
        for &(s, e, v) in episodes {
            let end = e.unwrap_or(i64::MAX);
            let hit = existing.iter().find(|a| {
                a.opened_at.as_nanos() < end
                    && a.resolved_at.map_or(i64::MAX, Timestamp::as_nanos) > s
            });
            match hit {
                Some(a) => {
                    let mut a = a.clone();
                    let mut changed = false;
                    if a.opened_at.as_nanos() > s {
                        a.opened_at = Timestamp::from_nanos(s);
                        changed = true;
                    }
                    if changed && let Err(err) = self.deps.store.update_alert(&a).await {
                        tracing::error!(error = %err, "reconcile update failed");
                    }
                    if let Some(e) = e
                        && a.state != AlertState::Resolved
                        && a.resolved_by.is_none()
                    {
                        self.resolve(rule, key, e, "auto").await;
                    }
                }
                None => {
                    if e.is_none() || e.is_some_and(|e| e > range_from) {
                        let shown = Shown { value: v, property: property.clone(), note: None };
                        self.open_alert(rule, key, s, shown, e).await;
                    }
                }
            }
        }
        // An alert still open whose condition no longer holds in the data.
        let holds_now = episodes.last().is_some_and(|e| e.1.is_none());
        if !holds_now {
            let id = self.open.lock().await.get(&(rule.to_owned(), key.to_owned())).copied();
            if let Some(a) = id.and_then(|id| existing.iter().find(|a| a.id == id))
                && a.opened_at.as_nanos() >= range_from
            {
                let at = episodes
                    .last()
                    .and_then(|e| e.1)
                    .unwrap_or_else(|| self.deps.clock.now().as_nanos());
                self.resolve(rule, key, at, "auto").await;
            }
        }
    }

    async fn tick(&self) {
        let mut out = Vec::new();
        let now = self.deps.clock.now().as_nanos();
        self.ev.lock().refresh_scopes(self.deps.catalog.as_ref(), now, &mut out);
        eval::tick(
            &self.ev,
            self.deps.catalog.as_ref(),
            self.deps.series.as_ref(),
            self.forecaster.get().map(|f| f.as_ref()),
            &self.deps.indicators,
            now,
            &mut out,
        )
        .await;
        for t in out {
            let _ = self.tx.send(t);
        }
    }

    // ---- Actions -------------------------------------------------------------------------

    fn dispatch(&self, a: &AlertRecord, event: Event) {
        let Some(rule) = self.rules.read().get(&a.rule).map(|v| v.rule.clone()) else { return };
        for action in rule.actions.iter().filter(|x| x.events().contains(&event)) {
            let job = Delivering {
                store: self.deps.store.clone(),
                http: self.http.clone(),
                egress: self.egress.clone(),
                mailer: self.mailer.clone(),
                publisher: self.deps.publisher.clone(),
                caller: self.deps.caller.clone(),
                clock: self.deps.clock.clone(),
                attempts: self.cfg.max_attempts.max(1),
                first_retry: Duration::from_millis(self.cfg.first_retry_ms),
            };
            let (a, action, rule) = (a.clone(), action.clone(), rule.clone());
            tokio::spawn(async move { job.run(&a, &rule, &action, event).await });
        }
    }
}

/// A delivery as shown: attempts logged before secrets were masked at write time are masked on
/// the way out too.
fn masked(mut d: Delivery) -> Delivery {
    if d.action == "webhook" {
        d.target = secrets::mask_url(&d.target);
        d.detail = secrets::mask_url(&d.detail);
    }
    d
}

struct Delivering {
    store: Arc<dyn AlertStore>,
    http: reqwest::Client,
    egress: Egress,
    mailer: Option<Arc<Mailer>>,
    publisher: Option<Arc<dyn Publisher>>,
    caller: Option<Arc<dyn DeviceCaller>>,
    clock: Arc<dyn Clock>,
    attempts: u32,
    first_retry: Duration,
}

impl Delivering {
    async fn run(&self, a: &AlertRecord, rule: &Rule, action: &rule::Action, event: Event) {
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(actions::backoff(self.first_retry, attempt)).await;
            }
            // A final refusal (a 5xx reply to an email) is not tried again.
            let mut give_up = false;
            let (target, outcome) = match action {
                rule::Action::Webhook { url, secret, .. } => {
                    let body = actions::webhook_body(a, rule, event);
                    let id = format!("{}-{}-{attempt}", a.id, event.as_str());
                    let outcome = actions::post_webhook(
                        &self.http,
                        &self.egress,
                        url,
                        secret.as_deref(),
                        &body,
                        event,
                        &id,
                    )
                    .await
                    .map_err(|e| {
                        give_up = e.fatal;
                        e.detail
                    });
                    // Logged and recorded without its credentials.
                    (secrets::mask_url(url), outcome)
                }
                rule::Action::Mqtt { topic, payload, qos, retain, .. } => {
                    let topic = actions::fill(topic, a, event);
                    let body = match payload {
                        Some(p) => actions::fill_json(p, a, event),
                        None => actions::webhook_body(a, rule, event),
                    };
                    let outcome = match &self.publisher {
                        Some(p) => p
                            .publish(
                                &topic,
                                serde_json::to_vec(&body).unwrap_or_default(),
                                *qos,
                                *retain,
                            )
                            .await
                            .map_err(|e| e.0),
                        None => {
                            Err("no MQTT broker: enable agora's MQTT endpoint or set [alerts.mqtt]"
                                .into())
                        }
                    };
                    (topic, outcome)
                }
                rule::Action::Rpc { device, method, params, timeout_ms, .. } => {
                    let device = match device {
                        Some(d) => actions::fill(d, a, event),
                        None => a.device.clone().unwrap_or_default(),
                    };
                    let params = params
                        .as_ref()
                        .map_or(serde_json::Value::Null, |p| actions::fill_json(p, a, event));
                    let outcome = match (&self.caller, device.is_empty()) {
                        (_, true) => {
                            give_up = true;
                            Err("the alert has no device to call: name one in \"device\"".into())
                        }
                        (Some(c), false) => c
                            .call(&device, method, params, Duration::from_millis(*timeout_ms))
                            .await
                            .map(|answer| {
                                let mut s = answer.to_string();
                                if s.len() > 500 {
                                    let mut end = 500;
                                    while !s.is_char_boundary(end) {
                                        end -= 1;
                                    }
                                    s.truncate(end);
                                    s.push('…');
                                }
                                format!("answered {s}")
                            })
                            .map_err(|e| {
                                give_up = !e.retry;
                                e.detail
                            }),
                        (None, false) => Err("calls to devices are not available".into()),
                    };
                    (format!("{device} {method}"), outcome)
                }
                rule::Action::Email { to, .. } => {
                    let outcome = match &self.mailer {
                        Some(m) => m.send(to, a, rule, event).await.map_err(|e| {
                            give_up = !e.transient;
                            e.detail
                        }),
                        // A rule kept from when SMTP was configured: retrying will not help.
                        None => {
                            give_up = true;
                            Err("no SMTP server: set [alerts.smtp]".into())
                        }
                    };
                    (to.join(", "), outcome)
                }
            };
            let ok = outcome.is_ok();
            let detail = outcome.unwrap_or_else(|e| e);
            if !ok {
                tracing::warn!(alert = a.id, action = action.kind(), target = %target, attempt, detail = %detail, "action failed");
            }
            let d = Delivery {
                id: 0,
                alert_id: a.id,
                event: event.as_str().into(),
                action: action.kind().into(),
                target,
                attempt,
                ok,
                detail,
                at: self.clock.now(),
            };
            if let Err(e) = self.store.add_delivery(&d).await {
                tracing::error!(error = %e, "could not log an action attempt");
            }
            if ok || give_up {
                return;
            }
        }
    }
}
