//! The HTTP API of agora (axum). Only this crate knows HTTP: handlers hold `Arc<dyn Catalog>` and
//! `Arc<dyn SeriesStore>` and never name the concrete engine.

mod admin;
mod alerting;
pub mod audit;
mod auth;
mod commerce;
mod commerce_calendar;
mod commerce_report;
pub mod compress;
pub mod connections;
mod doc;
mod error;
pub mod explore;
mod extract;
mod forecast;
mod indicators;
mod influx;
mod ingest;
pub mod live;
mod metrics;
mod ngsi;
pub use ngsi::subscriptions::NgsiSubscriptions;
pub mod oidc;
mod open_data;
mod people;
mod png;
pub mod policy;
mod privacy;
mod proximity;
mod query;
pub mod rate_limit;
pub mod reports;
mod services;
pub mod session;
mod sta;
mod thingsboard;
mod views;
pub mod visitors;
mod wellbeing;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use agora_ingest::Pipeline;
use agora_model::Clock;
use agora_store::{Catalog, SeriesStore};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};

pub use error::{ApiError, ApiResult};
pub use metrics::Metrics;
pub use open_data::base_url as open_data_base_url;
pub use open_data::dataset_records;
pub use session::Sessions;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body (after decompression), in bytes.
    pub max_body_bytes: usize,
    /// Whether read endpoints are open without a token (open-data deployments).
    pub public_read: bool,
    /// Most points one raw query returns.
    pub max_points: usize,
    /// Named CSV mappings for `POST /api/v1/import/csv?mapping=NAME`.
    pub csv_mappings: std::collections::HashMap<String, agora_ingest::csv::CsvMapping>,
    /// Whether the public map (and its public endpoints) is open without login.
    pub public_map: bool,
    /// A request body must arrive whole within this time (slow uploads hold no connection).
    pub body_timeout: std::time::Duration,
    /// Most raw points one query may decode; beyond it, `422 query_too_large`.
    pub max_query_points: u64,
    /// Local settings of the indicators (heatwave thresholds by commune).
    pub indicators: agora_query::heat::IndicatorsConfig,
    /// Days the audit trail keeps its entries (0: without limit), for the privacy register.
    pub audit_retention_days: u64,
    /// Days resolved alerts and action attempts are kept (0: without limit), for the register.
    pub alert_history_days: u64,
    /// Who publishes the open data, by default.
    pub open_data: OpenDataConfig,
    /// The port of agora's own MQTT endpoint, once it listens (SensorThings' landing page names
    /// it for the MQTT extension).
    pub mqtt_port: Arc<std::sync::OnceLock<u16>>,
    /// The departments' services: tariff, bins' round, irrigation plans.
    pub services: agora_query::services::ServicesConfig,
    /// Whether the API is served over HTTPS (links without a configured base address start
    /// with `https://`).
    pub https: bool,
}

/// Who publishes the open data and where: the catalogue's publisher and contact (each dataset
/// may name its own), and the public address its links start with.
#[derive(Debug, Clone)]
pub struct OpenDataConfig {
    /// Publisher's name (`Ville d'Aix-en-Provence`).
    pub publisher: String,
    /// Contact e-mail for reusers.
    pub contact_email: String,
    /// The public address of this server (`https://data.example.fr`); absent: the request's
    /// `Host`.
    pub base_url: Option<String>,
    /// The catalogue's title.
    pub title: String,
    /// The catalogue's description.
    pub description: String,
}

impl Default for OpenDataConfig {
    fn default() -> Self {
        Self {
            publisher: "agora".into(),
            contact_email: "opendata@example.org".into(),
            base_url: None,
            title: "Données ouvertes des capteurs urbains".into(),
            description: "Mesures des capteurs de la ville (qualité de l'air, bruit, météo, \
                          fréquentation, éclairage, propreté, espaces verts) publiées par agora."
                .into(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            public_read: false,
            max_points: 100_000,
            csv_mappings: Default::default(),
            public_map: true,
            body_timeout: std::time::Duration::from_secs(60),
            max_query_points: 50_000_000,
            indicators: Default::default(),
            audit_retention_days: 365,
            alert_history_days: 730,
            open_data: OpenDataConfig::default(),
            mqtt_port: Arc::default(),
            services: Default::default(),
            https: false,
        }
    }
}

/// Limits on what clients may use, with their running state (rate buckets, live streams).
#[derive(Debug, Default)]
pub struct Limits {
    /// Rate limits per token and per client address.
    pub rate: rate_limit::RateLimiter,
    /// Live streams: their cap and the feed they share.
    pub live: live::LiveHub,
}

/// What every handler can reach. Built once by the binary's `serve`.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// The series store.
    pub store: Arc<dyn SeriesStore>,
    /// The ingest pipeline.
    pub pipeline: Arc<Pipeline>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// HTTP settings.
    pub config: ApiConfig,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Set once start-up (WAL replay) is over.
    pub ready: Arc<AtomicBool>,
    /// When the server started (for InfluxDB's `/api/v2/ready`).
    pub started: (std::time::Instant, agora_model::Timestamp),
    /// Dashboard sessions.
    pub sessions: Arc<Sessions>,
    /// Turns true when the server stops, ending long-lived responses (live streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Alert rules and alerts (absent: alerting off).
    pub alerts: Option<Arc<agora_alerts::Alerts>>,
    /// Rate limits and the live streams' cap and feed.
    pub limits: Arc<Limits>,
    /// Backups (absent: no repository configured).
    pub backups: Option<Arc<dyn Backups>>,
    /// The audit trail (absent: off).
    pub audit: Option<Arc<dyn agora_store::audit::AuditLog>>,
    /// Single sign-on (absent: not configured).
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// What operators declare for the commerce observatory (events, interventions, the
    /// school-holiday calendar).
    pub commerce: Arc<dyn agora_store::commerce::CommerceStore>,
    /// Forecasts of every forecastable series and the anomalies found.
    pub forecasts: Arc<agora_query::forecasts::Forecasts>,
    /// The departments' schedules (lighting scenarios, irrigation plans) and their commands.
    pub schedules: Arc<dyn agora_store::schedules::ScheduleStore>,
    /// The lamps' days, computed once and kept (street lighting's figures).
    pub lighting: Arc<agora_query::services::lighting::Ledger>,
    /// The well-being index's measured indicators, month by month.
    pub wellbeing: Arc<agora_query::wellbeing::Sources>,
    /// The communes' 15-minute city: imports and what they give.
    pub proximity: Arc<agora_query::proximity::Proximity>,
    /// Citizens' reports: their store, settings and anti-abuse windows.
    pub reports: Arc<reports::Reports>,
    /// Visitors' points of interest and tours.
    pub visitors: Arc<dyn agora_store::visitors::VisitorStore>,
    /// The open-data datasets operators define.
    pub datasets: Arc<dyn agora_store::opendata::DatasetStore>,
    /// NGSI-LD subscriptions and their notifier (absent: alerting off).
    pub ngsi_subscriptions: Option<Arc<NgsiSubscriptions>>,
    /// Exports running at once (see `explore::EXPORTS`).
    pub exports: Arc<tokio::sync::Semaphore>,
}

/// Backups of this agora, taken by the binary (`agora::backup`): the API only asks.
#[async_trait::async_trait]
pub trait Backups: Send + Sync + std::fmt::Debug {
    /// Take one now; its report.
    async fn take(&self, state: &AppState) -> Result<serde_json::Value, String>;
    /// The backups the repository holds, oldest first.
    async fn list(&self) -> Result<serde_json::Value, String>;
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The HTTP API with more routes (the dashboard's pages) served beside it, behind the same
/// metrics, CSRF guard, compression and body limit.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(admin::openapi))
        // Ingest, and the probes InfluxDB clients send first.
        .route("/ping", get(influx::ping))
        .route("/query", get(influx::query_get).post(influx::query_post))
        .route("/health", get(influx::health))
        .route("/api/v2/ready", get(influx::ready))
        .route("/ready", get(influx::ready_root))
        .route("/write", post(ingest::write_v1))
        .route("/api/v2/write", post(ingest::write_v2))
        .route("/api/v1/observations", post(ingest::observations).get(query::observations))
        .route("/api/v1/senml", post(ingest::senml))
        .route("/api/v1/push/sensor-community", post(ingest::sensor_community))
        .route("/api/v1/import/csv", post(ingest::import_csv))
        .route("/api/v1/{token}/telemetry", post(ingest::thingsboard_telemetry))
        .route(
            "/api/v1/{token}/attributes",
            post(thingsboard::post_attributes).get(thingsboard::get_attributes),
        )
        .route("/api/v1/{token}/attributes/updates", get(thingsboard::attribute_updates))
        .route("/api/v1/{token}/rpc", get(thingsboard::rpc_poll).post(thingsboard::client_rpc))
        .route("/api/v1/{token}/rpc/{id}", post(thingsboard::rpc_reply))
        // Catalog and queries.
        .route("/api/v1/communes", get(query::communes).post(admin::create_commune))
        .route("/api/v1/sites", get(query::sites).post(admin::create_site))
        .route("/api/v1/devices", get(query::devices).post(admin::create_device))
        .route("/api/v1/devices/{id}", get(query::device))
        .route(
            "/api/v1/devices/{id}/attributes",
            get(thingsboard::device_attributes).post(thingsboard::set_shared_attributes),
        )
        .route("/api/v1/devices/{id}/rpc", post(thingsboard::call_device))
        .route("/api/v1/series", get(query::series))
        .route("/api/v1/properties", get(query::properties))
        .route("/api/v1/aggregate", get(query::aggregate))
        .route("/api/v1/latest", get(query::latest))
        .route("/api/v1/stats", get(query::stats))
        // Dashboard views.
        .route("/api/v1/public/map", get(views::public_map))
        .route("/api/v1/indicators/eaqi", get(indicators::eaqi))
        .route("/api/v1/indicators/atmo", get(indicators::atmo))
        .route("/api/v1/indicators/air-statistics", get(indicators::air_statistics))
        .route("/api/v1/indicators/noise", get(indicators::noise))
        .route("/api/v1/indicators/heat", get(indicators::heat))
        .route("/api/v1/indicators/heat-map", get(indicators::heat_map))
        .route("/api/v1/indicators/heat-island", get(indicators::heat_island))
        .route("/api/v1/indicators/noise/ranking", get(indicators::noise_ranking))
        .route("/api/v1/commerce/compare", get(commerce::compare))
        .route("/api/v1/commerce/impact", get(commerce::impact))
        .route("/api/v1/commerce/footfall", get(commerce::series))
        .route(
            "/api/v1/commerce/events",
            get(commerce_calendar::events).post(commerce_calendar::add_event),
        )
        .route("/api/v1/commerce/events/{id}", delete(commerce_calendar::delete_event))
        .route(
            "/api/v1/commerce/interventions",
            get(commerce_calendar::interventions).post(commerce_calendar::add_intervention),
        )
        .route(
            "/api/v1/commerce/interventions/{id}",
            delete(commerce_calendar::delete_intervention),
        )
        .route("/api/v1/commerce/interventions/{id}/study", get(commerce::study))
        .route("/api/v1/commerce/profile", get(commerce::profile))
        .route("/api/v1/commerce/ranking", get(commerce::ranking))
        .route("/api/v1/commerce/index", get(commerce::index))
        // Open data: the datasets operators publish and their DCAT-AP catalogue.
        .route("/api/v1/open-data/datasets", get(open_data::list).post(open_data::create))
        .route(
            "/api/v1/open-data/datasets/{id}",
            get(open_data::get_one).put(open_data::replace).delete(open_data::delete),
        )
        .route("/api/v1/open-data/dcat", get(open_data::dcat))
        .route("/api/v1/open-data/dcat.ttl", get(open_data::dcat_ttl))
        .route("/api/v1/open-data/dcat.jsonld", get(open_data::dcat_jsonld))
        .route("/api/v1/open-data/dcat.rdf", get(open_data::dcat_rdf))
        // Open data: the Opendatasoft Explore API v2.1.
        // NGSI-LD, context consumption.
        .route("/ngsi-ld/v1/entities", get(ngsi::entities).post(ngsi::create_entity))
        .route("/ngsi-ld/v1/entities/", get(ngsi::entities_slash).post(ngsi::create_entity_slash))
        .route("/ngsi-ld/v1/entities/{id}/attrs", patch(ngsi::update_attrs))
        .route("/ngsi-ld/v1/entityOperations/upsert", post(ngsi::upsert))
        .route("/ngsi-ld/v1/entityOperations/upsert/", post(ngsi::upsert_slash))
        .route("/ngsi-ld/v1/entities/{id}", get(ngsi::entity))
        .route(
            "/ngsi-ld/v1/subscriptions",
            get(ngsi::subscriptions::list).post(ngsi::subscriptions::create),
        )
        .route("/ngsi-ld/v1/subscriptions/", post(ngsi::subscriptions::create_slash))
        .route(
            "/ngsi-ld/v1/subscriptions/{id}",
            get(ngsi::subscriptions::one)
                .patch(ngsi::subscriptions::update)
                .delete(ngsi::subscriptions::delete),
        )
        .route("/ngsi-ld/v1/jsonldContexts/{file}", get(ngsi::context_file))
        .route("/ngsi-ld/v1/temporal/entities", get(ngsi::temporal_entities))
        .route("/ngsi-ld/v1/temporal/entities/", get(ngsi::temporal_entities_slash))
        .route("/ngsi-ld/v1/temporal/entities/{id}", get(ngsi::temporal_entity))
        // OGC SensorThings API 1.1.
        .route("/v1.1", get(sta::root))
        .route("/v1.1/", get(sta::root_slash))
        .route("/v1.1/{*path}", get(sta::get).post(sta::post))
        .route("/api/explore/v2.1/catalog/datasets", get(explore::datasets))
        .route("/api/explore/v2.1/catalog/datasets/{dataset_id}", get(explore::dataset))
        .route("/api/explore/v2.1/catalog/datasets/{dataset_id}/records", get(explore::records))
        .route(
            "/api/explore/v2.1/catalog/datasets/{dataset_id}/records/{record_id}",
            get(explore::record),
        )
        .route("/api/explore/v2.1/catalog/datasets/{dataset_id}/facets", get(explore::facets))
        .route(
            "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports",
            get(explore::export_formats),
        )
        .route(
            "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports/{format}",
            get(explore::export),
        )
        // The decision makers: the 15-minute city.
        .route("/api/v1/wellbeing", get(wellbeing::index))
        .route("/api/v1/wellbeing/history", get(wellbeing::history))
        .route("/api/v1/wellbeing/sensitivity", get(wellbeing::sensitivity))
        .route(
            "/api/v1/wellbeing/definition",
            get(wellbeing::get_definition).put(wellbeing::put_definition),
        )
        .route("/api/v1/wellbeing/surveys", get(wellbeing::surveys).post(wellbeing::import_surveys))
        .route("/api/v1/proximity/{commune}", get(proximity::summary))
        .route("/api/v1/proximity/{commune}/squares", get(proximity::squares))
        .route("/api/v1/proximity/{commune}/facilities", get(proximity::facilities))
        .route("/api/v1/proximity/{commune}/gaps", get(proximity::gaps))
        .route("/api/v1/proximity/{commune}/isochrone", get(proximity::isochrones))
        .route("/api/v1/proximity/{commune}/what-if", get(proximity::what_if))
        .route("/api/v1/proximity/{commune}/network", put(proximity::import_network))
        .route(
            "/api/v1/proximity/{commune}/facilities/{dataset}",
            put(proximity::import_facilities),
        )
        .route("/api/v1/proximity/{commune}/population", put(proximity::import_population))
        .route("/api/v1/proximity/{commune}/areas", put(proximity::import_areas))
        // Citizens' reports and the operators' tickets.
        .route("/api/v1/reports/form", get(reports::form))
        .route(
            "/api/v1/reports",
            get(reports::tickets)
                .post(reports::file)
                .layer(axum::extract::DefaultBodyLimit::max(256 << 10)),
        )
        .route("/api/v1/reports/stats", get(reports::report_stats))
        .route("/api/v1/reports/follow/{key}", get(reports::follow))
        .route("/api/v1/public/reports", get(reports::public_reports))
        .route("/api/v1/reports/{id}", get(reports::ticket_detail))
        .route("/api/v1/reports/{id}/status", post(reports::change))
        // Visitors: points of interest, tours, cool routes.
        .route("/api/v1/visitors/pois", get(visitors::pois).post(visitors::import_pois))
        .route("/api/v1/visitors/pois/{id}", put(visitors::put_poi).delete(visitors::delete_poi))
        .route("/api/v1/visitors/tours", get(visitors::tours))
        .route(
            "/api/v1/visitors/tours/{id}",
            get(visitors::tour).put(visitors::put_tour).delete(visitors::delete_tour),
        )
        .route("/api/v1/visitors/tours/{id}/qr", get(visitors::tour_qr))
        .route("/api/v1/visitors/cool-route", get(visitors::cool_route))
        .route("/api/v1/lighting", get(services::lighting_overview))
        .route("/api/v1/lighting/maintenance", get(services::lighting_maintenance))
        .route("/api/v1/lighting/sun", get(services::sun))
        .route("/api/v1/lighting/scenario", get(services::scenario))
        .route(
            "/api/v1/lighting/schedules",
            get(services::lighting_schedules).post(services::add_lighting_schedule),
        )
        .route(
            "/api/v1/irrigation/schedules",
            get(services::irrigation_schedules).post(services::add_irrigation_schedule),
        )
        .route(
            "/api/v1/schedules/{id}",
            patch(services::change_schedule).delete(services::delete_schedule),
        )
        .route("/api/v1/bins", get(services::bins_overview))
        .route("/api/v1/bins/round", get(services::bins_round))
        .route("/api/v1/irrigation", get(services::irrigation_overview))
        .route("/api/v1/forecast", get(forecast::forecast))
        .route("/api/v1/forecast/models", get(forecast::models))
        .route("/api/v1/forecast/tomorrow", get(forecast::tomorrow))
        .route("/api/v1/forecast/place", get(forecast::place))
        .route("/api/v1/anomalies", get(forecast::anomalies))
        .route("/api/v1/commerce/counters", get(commerce::counters_health))
        .route(
            "/api/v1/commerce/school-holidays",
            get(commerce_calendar::school_holidays)
                .put(commerce_calendar::load_school_holidays)
                .delete(commerce_calendar::reset_school_holidays),
        )
        .route("/api/v1/map", get(views::map))
        .route("/api/v1/chart", get(views::chart))
        .route("/api/v1/fleet", get(views::fleet))
        .route("/api/v1/live", get(live::live))
        // Alerts.
        .route("/api/v1/rules", get(alerting::list_rules).post(alerting::create_rule))
        .route("/api/v1/rules/templates", get(alerting::templates))
        .route(
            "/api/v1/rules/{id}",
            get(alerting::get_rule).put(alerting::put_rule).delete(alerting::delete_rule),
        )
        .route("/api/v1/alerts", get(alerting::list_alerts))
        .route("/api/v1/alerts/{id}", get(alerting::get_alert))
        .route("/api/v1/alerts/{id}/acknowledge", post(alerting::acknowledge))
        .route("/api/v1/alerts/{id}/resolve", post(alerting::resolve))
        .route("/api/v1/deliveries", get(alerting::deliveries))
        // Administration.
        .route("/api/v1/rejects", get(admin::rejects))
        .route("/api/v1/rejects/replay", post(admin::replay_rejects))
        .route("/api/v1/backups", get(admin::list_backups).post(admin::take_backup))
        .route("/api/v1/privacy/register", get(privacy::register))
        .route("/api/v1/audit", get(audit::entries))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/tokens", get(admin::list_tokens).post(admin::create_token))
        .route("/api/v1/tokens/{id}", delete(admin::revoke_token))
        .route("/api/v1/people", get(people::list).post(people::create))
        .route("/api/v1/people/{id}", get(people::get).patch(people::update).delete(people::erase))
        .route("/api/v1/people/{id}/password", post(people::set_password))
        .route("/api/v1/people/{id}/logout", post(people::logout_everywhere))
        .route("/api/v1/people/{id}/export", get(people::export))
        .route("/api/v1/me", get(people::me))
        .merge(extra)
        // After routing, both see the matched route: the policy decides who may call it, then
        // the audit layer (outside it) records the answer, refusals included.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), policy::guard))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .fallback(admin::not_found)
        .layer(axum::middleware::from_fn(compress::gzip))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::csrf_guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
