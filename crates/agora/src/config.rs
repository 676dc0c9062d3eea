//! `agora.toml`: every setting with its default; `AGORA_*` environment variables and command-line
//! flags override the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (engine, catalog).
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Access rules.
    pub auth: AuthConfig,
    /// Ingest rules.
    pub ingest: IngestConfig,
    /// Storage engine settings.
    pub storage: StorageConfig,
    /// MQTT brokers to subscribe to.
    pub mqtt: MqttConfig,
    /// CSV import mappings.
    pub csv: CsvConfig,
    /// The dashboard.
    pub web: agora_web::WebConfig,
    /// Alert rules and actions.
    pub alerts: agora_alerts::AlertsConfig,
    /// Timeouts, connection caps and rate limits.
    pub limits: LimitsConfig,
    /// Local settings of the indicators (heatwave thresholds by commune).
    pub indicators: agora_query::heat::IndicatorsConfig,
    /// Backups: where, how often, how many kept.
    pub backup: crate::backup::BackupConfig,
    /// The audit trail.
    pub audit: AuditConfig,
    /// Who publishes the open data.
    pub open_data: OpenDataConfig,
    /// The departments' services: lighting tariff, bins' round, irrigation plans.
    pub services: ServicesConfig,
    /// The 15-minute city: walking speed, limit, BPE codes to themes.
    pub proximity: ProximityToml,
    /// Citizens' reports: categories, anti-abuse limits, retention, who is told.
    pub reports: ReportsToml,
    /// `[https]`: serve the API and the dashboard over TLS on the `http` address.
    pub https: Option<HttpsConfig>,
}

/// `[https]`: TLS for the API and the dashboard, from PEM files reloaded on `SIGHUP` or when
/// they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// The certificate chain (PEM), the server's certificate first.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// `Strict-Transport-Security` max-age in seconds (0: no header).
    #[serde(default = "HttpsConfig::default_hsts")]
    pub hsts_max_age_secs: u64,
    /// Add `includeSubDomains` to it.
    #[serde(default)]
    pub hsts_include_subdomains: bool,
    /// Also listen for plain HTTP here and answer every request with a redirect to HTTPS (for
    /// example `0.0.0.0:80`).
    #[serde(default)]
    pub redirect_from: Option<SocketAddr>,
    /// How often the files are checked for a change, in seconds.
    #[serde(default = "HttpsConfig::default_check")]
    pub reload_check_secs: u64,
}

impl HttpsConfig {
    fn default_hsts() -> u64 {
        31_536_000
    }
    fn default_check() -> u64 {
        10
    }

    /// The files of the HTTPS listener.
    pub fn files(&self) -> agora_ingest::tls::TlsFiles {
        agora_ingest::tls::TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: None,
            require_client_cert: false,
        }
    }
}

/// `[mqtt.broker.tls]`: MQTT over TLS for devices (port 8883), with optional client
/// certificates naming the device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    /// Listen address.
    #[serde(default = "MqttTlsConfig::default_listen")]
    pub listen: SocketAddr,
    /// The certificate chain (PEM); absent: `[https]`'s.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); absent: `[https]`'s.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The authority of devices' client certificates (PEM): a device presenting one it signed,
    /// with the device's id as the subject's common name, needs no token.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse devices without such a certificate.
    #[serde(default)]
    pub require_client_cert: bool,
}

impl MqttTlsConfig {
    fn default_listen() -> SocketAddr {
        "127.0.0.1:8883".parse().expect("valid address")
    }
}

/// `[reports]` and `[[reports.notify]]`: citizens' reports. Categories replace the shipped ones
/// when given (`[[reports.categories]]`, each with `id`, `fr`, `en`, `domain`, `kinds`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsToml {
    /// Whether citizens may file reports.
    pub enabled: bool,
    /// The categories offered (default: street light, bin, noise, furniture, other).
    pub categories: Vec<agora_api::reports::Category>,
    /// Reports one client may file in a minute.
    pub per_client_per_minute: u32,
    /// Reports one place may receive in an hour.
    pub per_place_per_hour: u32,
    /// Seconds a form must be open before it is sent.
    pub min_fill_secs: u64,
    /// Seconds a form stays valid.
    pub form_valid_secs: u64,
    /// Metres within which the same category is the same problem…
    pub duplicate_radius_m: f64,
    /// …in these hours.
    pub duplicate_hours: u64,
    /// Metres within which devices of the category are linked.
    pub link_radius_m: f64,
    /// Metres within which the nearest place is the report's.
    pub place_radius_m: f64,
    /// Metres from a place within which a commune without a boundary takes reports.
    pub commune_radius_m: f64,
    /// Longest description, characters.
    pub max_description_chars: usize,
    /// Most links in a description.
    pub max_links: usize,
    /// Days a reporter's address is kept once the report is closed.
    pub contact_retention_days: u64,
    /// Days a closed report stays on the public map.
    pub public_days: u64,
    /// Seconds between two erasures of addresses past their time.
    pub erase_every_secs: u64,
    /// Who is told, by category and commune, with the alerts' actions.
    pub notify: Vec<agora_api::reports::NotifyRule>,
}

impl Default for ReportsToml {
    fn default() -> Self {
        let d = agora_api::reports::ReportSettings::default();
        Self {
            enabled: d.enabled,
            categories: d.categories,
            per_client_per_minute: d.per_client_per_minute,
            per_place_per_hour: d.per_place_per_hour,
            min_fill_secs: d.min_fill_secs,
            form_valid_secs: d.form_valid_secs,
            duplicate_radius_m: d.duplicate_radius_m,
            duplicate_hours: d.duplicate_hours,
            link_radius_m: d.link_radius_m,
            place_radius_m: d.place_radius_m,
            commune_radius_m: d.commune_radius_m,
            max_description_chars: d.max_description_chars,
            max_links: d.max_links,
            contact_retention_days: d.contact_retention_days,
            public_days: d.public_days,
            erase_every_secs: d.erase_every_secs,
            notify: d.notify,
        }
    }
}

impl ReportsToml {
    /// The settings, checked.
    pub fn settings(&self) -> Result<agora_api::reports::ReportSettings, String> {
        let s = agora_api::reports::ReportSettings {
            enabled: self.enabled,
            categories: self.categories.clone(),
            per_client_per_minute: self.per_client_per_minute,
            per_place_per_hour: self.per_place_per_hour,
            min_fill_secs: self.min_fill_secs,
            form_valid_secs: self.form_valid_secs,
            duplicate_radius_m: self.duplicate_radius_m,
            duplicate_hours: self.duplicate_hours,
            link_radius_m: self.link_radius_m,
            place_radius_m: self.place_radius_m,
            commune_radius_m: self.commune_radius_m,
            max_description_chars: self.max_description_chars,
            max_links: self.max_links,
            contact_retention_days: self.contact_retention_days,
            public_days: self.public_days,
            erase_every_secs: self.erase_every_secs.max(1),
            notify: self.notify.clone(),
        };
        s.check()?;
        Ok(s)
    }
}

/// `[proximity]`: how walks are measured, and `[proximity.bpe]`: BPE codes or prefixes to themes,
/// over the shipped mapping (`"D301" = { theme = "health", label = "pharmacie" }`, `"E" =
/// "ignore"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProximityToml {
    /// Walking speed, km/h.
    pub speed_kmh: f64,
    /// The limit, minutes.
    pub limit_min: f64,
    /// The isochrones' bands, minutes.
    pub bands_min: Vec<f64>,
    /// Farthest a square or facility may be from a street, metres.
    pub attach_m: f64,
    /// BPE codes or prefixes over the shipped mapping.
    pub bpe: std::collections::BTreeMap<String, agora_proximity::facilities::Target>,
}

impl Default for ProximityToml {
    fn default() -> Self {
        let d = agora_proximity::access::Settings::default();
        Self {
            speed_kmh: d.speed_kmh,
            limit_min: d.limit_min,
            bands_min: d.bands_min,
            attach_m: d.attach_m,
            bpe: Default::default(),
        }
    }
}

impl ProximityToml {
    /// The settings of walks.
    pub fn settings(&self) -> agora_proximity::access::Settings {
        agora_proximity::access::Settings {
            speed_kmh: self.speed_kmh,
            attach_m: self.attach_m,
            limit_min: self.limit_min,
            bands_min: self.bands_min.clone(),
        }
    }

    /// The shipped BPE mapping with the configured codes over it.
    pub fn mapping(&self) -> agora_proximity::facilities::Mapping {
        let mut m = agora_proximity::facilities::Mapping::default();
        for (k, v) in &self.bpe {
            m.0.insert(k.clone(), v.clone());
        }
        m
    }
}

/// `[services.lighting]`, `[services.bins]`, `[services.irrigation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesConfig {
    /// Street lighting: the electricity tariff and emission factor.
    pub lighting: LightingToml,
    /// Bins: the round's threshold, depots, detour factor.
    pub bins: BinsToml,
    /// Irrigation: dry thresholds by plant type, zones' plans.
    pub irrigation: IrrigationToml,
}

/// `[services.lighting]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LightingToml {
    /// € per kWh in full-price hours.
    pub eur_per_kwh: f64,
    /// € per kWh in off-peak hours.
    pub off_peak_eur_per_kwh: f64,
    /// Off-peak windows, local time, `"22:00-06:00"`.
    pub off_peak: Vec<String>,
    /// kg CO2e per kWh (default: ADEME's French grid average, 0.052).
    pub kg_co2e_per_kwh: f64,
    /// Readings further apart than this many minutes leave a gap.
    pub max_gap_minutes: u32,
}

impl Default for LightingToml {
    fn default() -> Self {
        Self {
            eur_per_kwh: 0.20,
            off_peak_eur_per_kwh: 0.15,
            off_peak: vec!["22:00-06:00".into()],
            kg_co2e_per_kwh: agora_indicators::lighting::FRENCH_GRID_KG_CO2E_PER_KWH,
            max_gap_minutes: 60,
        }
    }
}

/// `[services.bins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BinsToml {
    /// A bin is due for the round at this level (%).
    pub threshold: f64,
    /// A collection below this level (%) was a wasted visit.
    pub wasted_below: f64,
    /// Road distance ÷ distance as the crow flies.
    pub detour: f64,
    /// Where rounds start, by commune: `"13001" = [43.5, 5.4]`.
    pub depots: std::collections::BTreeMap<String, [f64; 2]>,
}

impl Default for BinsToml {
    fn default() -> Self {
        let d = agora_query::services::bins::BinsConfig::default();
        Self {
            threshold: d.threshold,
            wasted_below: d.wasted_below,
            detour: d.detour,
            depots: Default::default(),
        }
    }
}

/// `[services.irrigation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IrrigationToml {
    /// Dry threshold (%) by plant type (a sensor's metadata `plant`).
    pub thresholds: std::collections::BTreeMap<String, f64>,
    /// Flow of a zone's valves, m³/h (zones without their own).
    pub flow_m3_h: f64,
    /// Minutes a watering lasts.
    pub minutes: f64,
    /// The fixed schedule compared with: a watering every this many days.
    pub fixed_every_days: u32,
    /// Local hour the nightly decision is taken.
    pub decision_hour: u32,
    /// Zones' own plans, by zone name (a sensor's metadata `zone`).
    pub zones: std::collections::BTreeMap<String, ZoneToml>,
}

impl Default for IrrigationToml {
    fn default() -> Self {
        let d = agora_query::services::irrigation::IrrigationConfig::default();
        Self {
            thresholds: d.thresholds,
            flow_m3_h: d.default_plan.flow_m3_h,
            minutes: d.default_plan.minutes,
            fixed_every_days: d.default_plan.fixed_every_days,
            decision_hour: d.decision_hour,
            zones: Default::default(),
        }
    }
}

/// A zone's plan in `[services.irrigation.zones."Name"]`: what it does not say is the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneToml {
    /// Plant type (its threshold from `thresholds`).
    pub plant: Option<String>,
    /// Dry threshold (%), overriding the plant type's.
    pub threshold: Option<f64>,
    /// Flow, m³/h.
    pub flow_m3_h: Option<f64>,
    /// Minutes a watering lasts.
    pub minutes: Option<f64>,
    /// The fixed schedule: every this many days.
    pub fixed_every_days: Option<u32>,
}

impl ServicesConfig {
    /// The settings as the query layer takes them, checked: a negative tariff, a window off the
    /// quarter-hours, a depot that is no position, a zone with an unknown plant type are refused.
    pub fn build(&self) -> Result<agora_query::services::ServicesConfig, String> {
        use agora_indicators::irrigation::Plan;
        use agora_indicators::lighting::{Tariff, parse_hhmm};
        let l = &self.lighting;
        let mut off_peak = Vec::new();
        for w in &l.off_peak {
            let (a, b) = w.split_once('-').ok_or_else(|| {
                format!("[services.lighting] off_peak {w:?}: write a window as \"22:00-06:00\"")
            })?;
            let a =
                parse_hhmm(a.trim()).map_err(|e| format!("[services.lighting] off_peak: {e}"))?;
            let b =
                parse_hhmm(b.trim()).map_err(|e| format!("[services.lighting] off_peak: {e}"))?;
            off_peak.push((a, b));
        }
        let tariff = Tariff {
            eur_per_kwh: l.eur_per_kwh,
            off_peak_eur_per_kwh: l.off_peak_eur_per_kwh,
            off_peak,
            kg_co2e_per_kwh: l.kg_co2e_per_kwh,
        };
        tariff.check().map_err(|e| format!("[services.lighting] {e}"))?;
        if !(5..=1440).contains(&l.max_gap_minutes) {
            return Err(format!(
                "[services.lighting] max_gap_minutes must be 5 to 1440, not {}",
                l.max_gap_minutes
            ));
        }
        let b = &self.bins;
        let mut depots = std::collections::BTreeMap::new();
        for (insee, [lat, lon]) in &b.depots {
            agora_model::InseeCode::parse(insee)
                .map_err(|e| format!("[services.bins.depots] {insee:?}: {e}"))?;
            if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon) {
                return Err(format!(
                    "[services.bins.depots] {insee}: ({lat}, {lon}) is not a position"
                ));
            }
            depots.insert(insee.clone(), (*lat, *lon));
        }
        let bins = agora_query::services::bins::BinsConfig {
            threshold: b.threshold,
            wasted_below: b.wasted_below,
            detour: b.detour,
            depots,
            ..Default::default()
        };
        bins.check().map_err(|e| format!("[services.bins] {e}"))?;
        let i = &self.irrigation;
        for (plant, t) in &i.thresholds {
            if !(0.0..=100.0).contains(t) {
                return Err(format!(
                    "[services.irrigation.thresholds] {plant}: a threshold is 0 to 100 %, not {t}"
                ));
            }
        }
        if i.decision_hour > 23 {
            return Err(format!(
                "[services.irrigation] decision_hour must be 0 to 23, not {}",
                i.decision_hour
            ));
        }
        let default_plan = Plan {
            threshold: i.thresholds.get("lawn").copied().unwrap_or(20.0),
            flow_m3_h: i.flow_m3_h,
            minutes: i.minutes,
            fixed_every_days: i.fixed_every_days,
        };
        default_plan.check().map_err(|e| format!("[services.irrigation] {e}"))?;
        let mut zones = std::collections::BTreeMap::new();
        for (name, z) in &i.zones {
            let plant_threshold = match &z.plant {
                Some(p) => Some(*i.thresholds.get(p).ok_or_else(|| {
                    format!(
                        "[services.irrigation.zones.{name:?}] plant {p:?} has no threshold: \
                         add it to [services.irrigation.thresholds]"
                    )
                })?),
                None => None,
            };
            let plan = Plan {
                threshold: z.threshold.or(plant_threshold).unwrap_or(default_plan.threshold),
                flow_m3_h: z.flow_m3_h.unwrap_or(default_plan.flow_m3_h),
                minutes: z.minutes.unwrap_or(default_plan.minutes),
                fixed_every_days: z.fixed_every_days.unwrap_or(default_plan.fixed_every_days),
            };
            plan.check().map_err(|e| format!("[services.irrigation.zones.{name:?}] {e}"))?;
            zones.insert(name.clone(), plan);
        }
        Ok(agora_query::services::ServicesConfig {
            lighting: agora_query::services::lighting::LightingConfig {
                tariff,
                max_gap_s: i64::from(l.max_gap_minutes) * 60,
            },
            bins,
            irrigation: agora_query::services::irrigation::IrrigationConfig {
                thresholds: i.thresholds.clone(),
                default_plan,
                zones,
                decision_hour: i.decision_hour,
            },
        })
    }
}

/// `[open_data]`: the catalogue's publisher, contact and public address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenDataConfig {
    /// Publisher's name (`Ville d'Aix-en-Provence`); each dataset may name its own.
    pub publisher: String,
    /// Contact e-mail for reusers.
    pub contact_email: String,
    /// This server's public address (`https://data.example.fr`), which the catalogue's links
    /// start with; unset: the address requests come to (`Host`), over http.
    pub base_url: Option<String>,
    /// The catalogue's title.
    pub title: String,
    /// Its description.
    pub description: String,
}

impl Default for OpenDataConfig {
    fn default() -> Self {
        let d = agora_api::OpenDataConfig::default();
        Self {
            publisher: d.publisher,
            contact_email: d.contact_email,
            base_url: d.base_url,
            title: d.title,
            description: d.description,
        }
    }
}

impl OpenDataConfig {
    /// As the API takes it.
    pub fn api(&self) -> agora_api::OpenDataConfig {
        agora_api::OpenDataConfig {
            publisher: self.publisher.clone(),
            contact_email: self.contact_email.clone(),
            base_url: self.base_url.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
        }
    }
}

/// `[audit]`: how long the audit trail keeps its entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries older than this many days are removed (daily); 0 keeps them all.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 365 }
    }
}

/// Timeouts, connection caps and rate limits, so that no client can exhaust the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Networks (CIDR) that may use the reserved HTTP connections and are exempt from per-address
    /// caps and rate limits: health checks, operators, a reverse proxy on this host.
    pub trusted: Vec<String>,
    /// HTTP connections.
    pub http: HttpLimitsConfig,
    /// Rate limits.
    pub rate: RateLimitsConfig,
    /// Live updates (`/api/v1/live`).
    pub live: LiveLimitsConfig,
    /// Most raw points one query may decode (aggregates that cannot use the hourly rollups:
    /// sound levels, buckets shorter than an hour); beyond it, `422 query_too_large`.
    pub max_query_points: u64,
    /// Reverse proxies (CIDR) whose `X-Forwarded-For` is believed: requests through them are
    /// rate-limited, capped and audited by the client's address instead of the proxy's.
    pub trusted_proxies: Vec<String>,
}

/// HTTP connection limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimitsConfig {
    /// A new connection must send its first request head within this many seconds.
    pub header_timeout_secs: u64,
    /// A request body must arrive whole within this many seconds.
    pub body_timeout_secs: u64,
    /// An idle keep-alive connection is closed after this many seconds (0: no keep-alive).
    pub keep_alive_secs: u64,
    /// A connection whose client stops reading (a large answer, a live stream) is closed once a
    /// write has waited this many seconds without progress (0: never).
    pub write_timeout_secs: u64,
    /// Connections open at once, for everyone.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64).
    pub max_connections_per_address: usize,
    /// Connections open at once from one IPv6 /48 network, whichever of its /64s they come from.
    pub max_connections_per_network: usize,
    /// Connections beyond `max_connections` only trusted addresses may open.
    pub reserved_connections: usize,
}

/// Rate limits, in requests per second with a burst; 0 turns a limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Ingest requests per second per token.
    pub ingest_per_token: f64,
    /// Ingest requests a token may send at once.
    pub ingest_per_token_burst: f64,
    /// Ingest MiB per second per token, as they arrive (0: no limit).
    pub ingest_mib_per_token: f64,
    /// Ingest MiB a token may send at once.
    pub ingest_mib_per_token_burst: f64,
    /// Ingest requests per second per client address.
    pub ingest_per_address: f64,
    /// Ingest requests an address may send at once.
    pub ingest_per_address_burst: f64,
    /// Ingest requests per second per IPv6 /48 network, whichever of its /64s they come from.
    pub ingest_per_network: f64,
    /// Ingest requests such a network may send at once.
    pub ingest_per_network_burst: f64,
    /// Requests per second per client address without valid read credentials (public map,
    /// pages, logins).
    pub public_per_address: f64,
    /// Such requests an address may send at once.
    pub public_per_address_burst: f64,
    /// Such requests per second per IPv6 /48 network, whichever of its /64s they come from.
    pub public_per_network: f64,
    /// Such requests a network may send at once.
    pub public_per_network_burst: f64,
    /// Most tokens or addresses each limit remembers.
    pub max_tracked: usize,
}

/// Live update limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveLimitsConfig {
    /// Live streams open at once.
    pub max_streams: usize,
    /// Live streams open at once from one address (IPv6: one /64).
    pub max_streams_per_address: usize,
    /// Live streams open at once from one IPv6 /48 network.
    pub max_streams_per_network: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            trusted: vec!["127.0.0.0/8".into(), "::1/128".into()],
            http: HttpLimitsConfig::default(),
            rate: RateLimitsConfig::default(),
            live: LiveLimitsConfig::default(),
            max_query_points: 50_000_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for HttpLimitsConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            keep_alive_secs: 30,
            write_timeout_secs: 60,
            max_connections: 512,
            max_connections_per_address: 64,
            max_connections_per_network: 256,
            reserved_connections: 16,
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            ingest_per_token: 100.0,
            ingest_per_token_burst: 500.0,
            ingest_mib_per_token: 32.0,
            ingest_mib_per_token_burst: 128.0,
            ingest_per_address: 200.0,
            ingest_per_address_burst: 1000.0,
            ingest_per_network: 800.0,
            ingest_per_network_burst: 4000.0,
            public_per_address: 20.0,
            public_per_address_burst: 200.0,
            public_per_network: 80.0,
            public_per_network_burst: 800.0,
            max_tracked: 10_000,
        }
    }
}

impl Default for LiveLimitsConfig {
    fn default() -> Self {
        Self { max_streams: 256, max_streams_per_address: 8, max_streams_per_network: 32 }
    }
}

/// A rate with its burst, refused when it is not a number of requests (or bytes) a second: 0
/// turns a limit off, a negative or non-finite one is a mistake.
fn rate(per_second: f64, burst: f64) -> anyhow::Result<agora_ingest::limits::Rate> {
    anyhow::ensure!(
        per_second.is_finite() && per_second >= 0.0 && burst.is_finite(),
        "a rate must be a number ≥ 0 (0: no limit), with a finite burst: got {per_second} a second, burst {burst}"
    );
    Ok(agora_ingest::limits::Rate { per_second, burst: burst.max(1.0) })
}

/// CSV import settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvConfig {
    /// Named mappings (`[csv.mappings.lighting]`), used by `POST /api/v1/import/csv?mapping=lighting`.
    pub mappings: std::collections::HashMap<String, agora_ingest::csv::CsvMapping>,
}

/// MQTT settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// agora's own MQTT endpoint for devices.
    pub broker: BrokerConfig,
    /// Subscriptions to external brokers (`[[mqtt.subscriptions]]`).
    pub subscriptions: Vec<agora_ingest::mqtt::Subscription>,
}

/// agora's own MQTT endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Whether to listen at all.
    pub enabled: bool,
    /// Listen address (`AGORA_MQTT_LISTEN`, or `off`).
    pub listen: SocketAddr,
    /// Fail to start when the address is taken (`serve`); the demo goes on without MQTT.
    pub required: bool,
    /// A client must send CONNECT within this many seconds of connecting.
    pub connect_timeout_secs: u64,
    /// Longest keep-alive honoured (a client announcing 0 or more is held to it); a client
    /// silent for 1.5 times its keep-alive is disconnected.
    pub max_keep_alive_secs: u64,
    /// Device connections open at once.
    pub max_connections: usize,
    /// Device connections open at once from one address (IPv6: one /64).
    pub max_connections_per_address: usize,
    /// Device connections open at once from one IPv6 /48 network (devices on a mobile
    /// operator's IPv6 may share one: raise it, or list the network in `[limits] trusted`).
    pub max_connections_per_network: usize,
    /// Messages per second per token, whatever connection they come through (0: no limit). A
    /// client over a rate is not read from until it is back under it: it publishes slower,
    /// nothing is refused or lost. Addresses in `[limits] trusted` are not limited.
    pub messages_per_token: f64,
    /// Messages a token may send at once.
    pub messages_per_token_burst: f64,
    /// MiB of messages per second per token (0: no limit).
    pub mib_per_token: f64,
    /// MiB of messages a token may send at once.
    pub mib_per_token_burst: f64,
    /// Messages per second per client address (IPv6: one /64), whichever tokens they use.
    pub messages_per_address: f64,
    /// Messages an address may send at once.
    pub messages_per_address_burst: f64,
    /// Messages per second per IPv6 /48 network, whichever of its /64s they come from.
    pub messages_per_network: f64,
    /// Messages such a network may send at once.
    pub messages_per_network_burst: f64,
    /// Listen for plain MQTT on `listen` (false: only over TLS, `[mqtt.broker.tls]`).
    pub plain: bool,
    /// MQTT over TLS.
    pub tls: Option<MqttTlsConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:1883".parse().expect("valid address"),
            required: true,
            connect_timeout_secs: 10,
            max_keep_alive_secs: 3600,
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_connections_per_network: 2048,
            messages_per_token: 1000.0,
            messages_per_token_burst: 5000.0,
            mib_per_token: 32.0,
            mib_per_token_burst: 128.0,
            messages_per_address: 2000.0,
            messages_per_address_burst: 10_000.0,
            messages_per_network: 8000.0,
            messages_per_network_burst: 40_000.0,
            plain: true,
            tls: None,
        }
    }
}

/// Access rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Open the read endpoints to everyone (open data).
    pub public_read: bool,
    /// Single sign-on through OpenID Connect (absent: passwords and tokens only).
    pub oidc: Option<OidcSection>,
}

/// `[auth.oidc]`: the city's identity provider (Keycloak, ProConnect, Azure AD…).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The provider's issuer URL.
    pub issuer: String,
    /// agora's client id there.
    pub client_id: String,
    /// Its client secret; better in `AGORA_OIDC_CLIENT_SECRET`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// This server's public URL of `/login/oidc/callback`, as registered at the provider.
    pub redirect_url: String,
    /// Scopes asked besides `openid`.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The claim holding the role (dotted path, e.g. `realm_access.roles`); empty: roles are
    /// given in agora.
    #[serde(default)]
    pub role_claim: String,
    /// The claim holding the commune (INSEE code or `metropole`).
    #[serde(default)]
    pub commune_claim: String,
    /// The claim holding a department's domain.
    #[serde(default)]
    pub domain_claim: String,
    /// Provider role names → agora roles.
    #[serde(default)]
    pub roles: std::collections::HashMap<String, String>,
    /// Make a person at first login from the claims.
    #[serde(default)]
    pub create_people: bool,
    /// The login button's text.
    #[serde(default)]
    pub label: String,
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

impl OidcSection {
    /// The API's settings, the secret read from the environment when it is set there.
    pub fn settings(&self) -> anyhow::Result<agora_api::oidc::OidcConfig> {
        for (what, url) in [("issuer", &self.issuer), ("redirect_url", &self.redirect_url)] {
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "[auth.oidc] {what} must be an http(s) URL, not {url:?}"
            );
        }
        anyhow::ensure!(!self.client_id.is_empty(), "[auth.oidc] client_id is empty");
        for (from, to) in &self.roles {
            agora_model::permissions::Role::parse_named(to)
                .map_err(|e| anyhow::anyhow!("[auth.oidc.roles] {from:?}: {e}"))?;
        }
        let client_secret =
            std::env::var("AGORA_OIDC_CLIENT_SECRET").ok().or_else(|| self.client_secret.clone());
        Ok(agora_api::oidc::OidcConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret,
            redirect_url: self.redirect_url.clone(),
            scopes: self.scopes.clone(),
            role_claim: self.role_claim.clone(),
            commune_claim: self.commune_claim.clone(),
            domain_claim: self.domain_claim.clone(),
            role_map: self.roles.clone(),
            create_people: self.create_people,
            label: self.label.clone(),
        })
    }
}

/// Ingest rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Register unknown devices on first write.
    pub auto_register_devices: bool,
    /// Register unknown property names on first write.
    pub auto_register_properties: bool,
    /// Create the place a new device's `site` tag names when it does not exist, in the commune
    /// the device names, marked "to review" on the fleet page (off: the device is refused until
    /// the place is created, and its dead letters replay afterwards).
    pub create_unknown_sites: bool,
    /// Refuse points further in the future than this many seconds.
    pub max_future_secs: u64,
    /// Largest request body, in MiB.
    pub max_body_mib: usize,
    /// Device kinds of ThingsBoard device types, for devices a ThingsBoard gateway connects
    /// (`"Air Sensor" = "air_quality"`). An unmapped type is the kind of the same name
    /// (lower-cased, spaces as `_`); `default` is `sensor`.
    pub thingsboard_device_types: std::collections::BTreeMap<String, agora_model::DeviceKind>,
}

/// Storage engine settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// fsync the WAL before acknowledging (leave on).
    pub fsync: bool,
    /// Flush the in-memory head at this many points.
    pub flush_points: usize,
    /// Flush the head at least this often (seconds).
    pub flush_interval_secs: u64,
    /// Compact when this many segments exist.
    pub compact_segments: usize,
    /// Keep raw points this many days (absent: forever); hourly rollups outlive them.
    pub raw_retention_days: Option<u64>,
    /// Keep hourly rollups this many days (absent: forever).
    pub rollup_retention_days: Option<u64>,
    /// Raw-point retention per property, in days (e.g. `lamp_status = 90`), overriding the default.
    pub raw_retention_days_by_property: std::collections::BTreeMap<String, u64>,
    /// Below this many free MiB on the data directory's filesystem, writes are refused (503 with
    /// `Retry-After`) so that flushes still have room; `/readyz` says so.
    pub min_free_mib: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("agora-data"),
            http: "127.0.0.1:8080".parse().expect("valid address"),
            auth: AuthConfig::default(),
            ingest: IngestConfig::default(),
            storage: StorageConfig::default(),
            mqtt: MqttConfig::default(),
            csv: CsvConfig::default(),
            web: agora_web::WebConfig::default(),
            alerts: agora_alerts::AlertsConfig::default(),
            limits: LimitsConfig::default(),
            indicators: agora_query::heat::IndicatorsConfig::default(),
            backup: crate::backup::BackupConfig::default(),
            audit: AuditConfig::default(),
            open_data: OpenDataConfig::default(),
            services: ServicesConfig::default(),
            proximity: ProximityToml::default(),
            reports: ReportsToml::default(),
            https: None,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            auto_register_devices: true,
            auto_register_properties: false,
            create_unknown_sites: false,
            max_future_secs: 3600,
            max_body_mib: 16,
            thingsboard_device_types: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            fsync: true,
            flush_points: 2_000_000,
            flush_interval_secs: 600,
            compact_segments: 6,
            raw_retention_days: None,
            rollup_retention_days: None,
            raw_retention_days_by_property: std::collections::BTreeMap::new(),
            min_free_mib: 256,
        }
    }
}

impl Config {
    /// Read a TOML file; unknown keys are an error, so typos do not pass silently.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let c: Self = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        c.indicators
            .check()
            .map_err(|e| anyhow::anyhow!("invalid configuration in {}: {e}", path.display()))?;
        c.services
            .build()
            .map_err(|e| anyhow::anyhow!("invalid configuration in {}: {e}", path.display()))?;
        Ok(c)
    }

    /// Apply `AGORA_*` environment overrides not covered by command-line flags.
    pub fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Ok(v) = std::env::var("AGORA_PUBLIC_READ") {
            self.auth.public_read = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Ok(v) = std::env::var("AGORA_MQTT_LISTEN") {
            if v == "off" {
                self.mqtt.broker.enabled = false;
            } else {
                self.mqtt.broker.listen =
                    v.parse().context("AGORA_MQTT_LISTEN must be host:port or off")?;
                self.mqtt.broker.enabled = true;
            }
        }
        if let Ok(v) = std::env::var("AGORA_TILE_URL") {
            self.web.tile_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Ok(v) = std::env::var("AGORA_SMTP_PASSWORD") {
            match &mut self.alerts.smtp {
                Some(smtp) => smtp.password = Some(v),
                None => tracing::warn!("AGORA_SMTP_PASSWORD is set but [alerts.smtp] is not"),
            }
        }
        if let Ok(v) = std::env::var("AGORA_RAW_RETENTION_DAYS") {
            self.storage.raw_retention_days =
                Some(v.parse().context("AGORA_RAW_RETENTION_DAYS must be a number of days")?);
        }
        Ok(())
    }

    /// Raw-point retention per canonical property name.
    pub fn retention_by_property(&self) -> std::collections::HashMap<String, Duration> {
        self.storage
            .raw_retention_days_by_property
            .iter()
            .map(|(p, d)| (p.clone(), Duration::from_secs(d * 86_400)))
            .collect()
    }

    /// The files of the MQTT TLS listener (its own, else `[https]`'s).
    pub fn mqtt_tls_files(
        &self,
    ) -> anyhow::Result<Option<(SocketAddr, agora_ingest::tls::TlsFiles)>> {
        let Some(t) = &self.mqtt.broker.tls else { return Ok(None) };
        let https = self.https.as_ref();
        let cert = t.cert.clone().or_else(|| https.map(|h| h.cert.clone())).context(
            "[mqtt.broker.tls] needs cert and key (or an [https] section whose files it shares)",
        )?;
        let key =
            t.key.clone().or_else(|| https.map(|h| h.key.clone())).context(
                "[mqtt.broker.tls] needs key (or an [https] section whose files it shares)",
            )?;
        anyhow::ensure!(
            t.client_ca.is_some() || !t.require_client_cert,
            "[mqtt.broker.tls] require_client_cert needs client_ca, the authority that signs devices' certificates"
        );
        Ok(Some((
            t.listen,
            agora_ingest::tls::TlsFiles {
                cert,
                key,
                client_ca: t.client_ca.clone(),
                require_client_cert: t.require_client_cert,
            },
        )))
    }

    /// The trusted networks of `[limits]`.
    fn trusted(&self) -> anyhow::Result<agora_ingest::limits::AddrSet> {
        agora_ingest::limits::AddrSet::parse(&self.limits.trusted)
            .map_err(|e| anyhow::anyhow!("invalid [limits] trusted network {e}"))
    }

    /// The HTTP server's timeouts and connection caps.
    pub fn http_limits(&self) -> anyhow::Result<agora_api::connections::HttpLimits> {
        let h = &self.limits.http;
        Ok(agora_api::connections::HttpLimits {
            header_timeout: Duration::from_secs(h.header_timeout_secs.max(1)),
            keep_alive: Duration::from_secs(h.keep_alive_secs),
            write_timeout: Duration::from_secs(h.write_timeout_secs),
            connections: agora_ingest::limits::ConnectionCaps {
                total: h.max_connections,
                per_address: h.max_connections_per_address,
                per_network: h.max_connections_per_network,
                reserved: h.reserved_connections,
                trusted: self.trusted()?,
            },
            proxies: agora_ingest::limits::AddrSet::parse(&self.limits.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("invalid [limits] trusted_proxies network {e}"))?,
            tls: None,
        })
    }

    /// Rate limits and live stream caps.
    pub fn api_limits(&self) -> anyhow::Result<agora_api::Limits> {
        use agora_api::rate_limit::RateLimits;
        let (r, l) = (&self.limits.rate, &self.limits.live);
        Ok(agora_api::Limits {
            rate: agora_api::rate_limit::RateLimiter::new(RateLimits {
                ingest_per_token: rate(r.ingest_per_token, r.ingest_per_token_burst)?,
                ingest_bytes_per_token: rate(
                    r.ingest_mib_per_token * 1024.0 * 1024.0,
                    r.ingest_mib_per_token_burst * 1024.0 * 1024.0,
                )?,
                ingest_per_address: rate(r.ingest_per_address, r.ingest_per_address_burst)?,
                ingest_per_network: rate(r.ingest_per_network, r.ingest_per_network_burst)?,
                public_per_address: rate(r.public_per_address, r.public_per_address_burst)?,
                public_per_network: rate(r.public_per_network, r.public_per_network_burst)?,
                max_tracked: r.max_tracked,
                exempt: self.trusted()?,
            }),
            live: agora_api::live::LiveHub::new(agora_api::live::LiveLimits {
                connections: agora_ingest::limits::ConnectionCaps {
                    total: l.max_streams,
                    per_address: l.max_streams_per_address,
                    per_network: l.max_streams_per_network,
                    reserved: 0,
                    trusted: self.trusted()?,
                },
                recheck: Duration::from_secs(2),
            }),
        })
    }

    /// The MQTT endpoint's timeouts, connection caps and rates.
    pub fn broker_limits(&self) -> anyhow::Result<agora_ingest::mqtt::broker::BrokerLimits> {
        let b = &self.mqtt.broker;
        Ok(agora_ingest::mqtt::broker::BrokerLimits {
            connect_timeout: Duration::from_secs(b.connect_timeout_secs.max(1)),
            max_keep_alive: Duration::from_secs(b.max_keep_alive_secs.max(1)),
            token_recheck: Duration::from_secs(2),
            connections: agora_ingest::limits::ConnectionCaps {
                total: b.max_connections,
                per_address: b.max_connections_per_address,
                per_network: b.max_connections_per_network,
                reserved: 0,
                trusted: self.trusted()?,
            },
            messages_per_token: rate(b.messages_per_token, b.messages_per_token_burst)?,
            bytes_per_token: rate(
                b.mib_per_token * 1024.0 * 1024.0,
                b.mib_per_token_burst * 1024.0 * 1024.0,
            )?,
            messages_per_address: rate(b.messages_per_address, b.messages_per_address_burst)?,
            messages_per_network: rate(b.messages_per_network, b.messages_per_network_burst)?,
            max_tracked: self.limits.rate.max_tracked,
            rate_exempt: self.trusted()?,
        })
    }

    /// The engine's settings.
    pub fn engine(&self) -> agora_store::EngineConfig {
        let mut e = agora_store::EngineConfig::new(self.data_dir.join("engine"));
        e.fsync = self.storage.fsync;
        e.flush_points = self.storage.flush_points;
        e.min_free_bytes = self.storage.min_free_mib.saturating_mul(1 << 20);
        e.flush_interval = Duration::from_secs(self.storage.flush_interval_secs);
        e.compact_segments = self.storage.compact_segments;
        e.raw_retention = self.storage.raw_retention_days.map(|d| Duration::from_secs(d * 86_400));
        e.rollup_retention =
            self.storage.rollup_retention_days.map(|d| Duration::from_secs(d * 86_400));
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_typos_are_refused() {
        let c: Config = toml::from_str(include_str!("../../../agora.example.toml")).unwrap();
        assert_eq!(c.http.port(), 8080);
        assert!(toml::from_str::<Config>("[storage]\nflush_pionts = 3").is_err());
    }

    #[test]
    fn rates_that_are_not_numbers_of_a_second_are_refused_at_start() {
        let c: Config = toml::from_str("[mqtt.broker]\nmessages_per_token = -1").unwrap();
        let e = c.broker_limits().unwrap_err().to_string();
        assert!(e.contains("a rate must be a number ≥ 0") && e.contains("-1"), "{e}");
        let c: Config = toml::from_str("[limits.rate]\ningest_per_token = nan").unwrap();
        assert!(c.api_limits().is_err());
        // 0 turns a limit off; the defaults pass.
        let c: Config = toml::from_str("[mqtt.broker]\nmessages_per_token = 0").unwrap();
        assert_eq!(c.broker_limits().unwrap().messages_per_token.per_second, 0.0);
        assert!(Config::default().api_limits().is_ok());
    }

    #[test]
    fn heatwave_thresholds_are_checked_and_a_communes_own_replace_the_default() {
        let load = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("agora.toml");
            std::fs::write(&path, text).unwrap();
            Config::load(&path).map_err(|e| format!("{e:#}"))
        };
        let c = load(
            "[indicators]\ncanicule = { min = 24.0, max = 35.0 }\n\
             [indicators.canicule_by_commune]\n\"75056\" = { min = 21.0, max = 31.0 }",
        )
        .unwrap();
        assert_eq!(c.indicators.canicule_for(Some("75056")).max, 31.0);
        assert_eq!(c.indicators.canicule_for(Some("13001")).max, 35.0);
        assert_eq!(c.indicators.canicule_for(None).min, 24.0);
        for (text, says) in [
            ("[indicators]\ncanicule = { min = 36.0, max = 35.0 }", "min at most max"),
            ("[indicators]\ncanicule = { min = 24.0, max = 95.0 }", "0 to 60"),
            ("[indicators.canicule_by_commune]\n\"Aix\" = { min = 1.0, max = 2.0 }", "INSEE"),
            ("[indicators]\ncanicule = { min = 24.0, maxi = 35.0 }", "unknown field"),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn services_settings_are_checked_by_name() {
        let load = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("agora.toml");
            std::fs::write(&path, text).unwrap();
            Config::load(&path).map_err(|e| format!("{e:#}"))
        };
        let c = load(
            "[services.lighting]\neur_per_kwh = 0.25\noff_peak = [\"22:30-06:30\"]\n\
             [services.bins]\ndepots = { \"13001\" = [43.52, 5.44] }\n\
             [services.irrigation.zones.\"Massif\"]\nplant = \"flower_bed\"\nflow_m3_h = 1.2",
        )
        .unwrap();
        let built = c.services.build().unwrap();
        assert_eq!(built.lighting.tariff.eur_per_kwh, 0.25);
        assert_eq!(built.lighting.tariff.off_peak, vec![(22 * 60 + 30, 6 * 60 + 30)]);
        assert_eq!(built.bins.depots["13001"], (43.52, 5.44));
        let zone = built.irrigation.zones["Massif"];
        assert_eq!((zone.threshold, zone.flow_m3_h, zone.minutes), (22.0, 1.2, 30.0));
        for (text, says) in [
            ("[services.lighting]\neur_per_kwh = -1.0", "eur_per_kwh must be"),
            ("[services.lighting]\noff_peak = [\"22:07-06:00\"]", "quarter-hour"),
            ("[services.lighting]\noff_peak = [\"22h\"]", "22:00-06:00"),
            ("[services.bins]\nthreshold = 120.0", "threshold"),
            ("[services.bins]\ndepots = { \"13001\" = [95.0, 5.44] }", "not a position"),
            ("[services.bins]\ndepots = { \"Aix\" = [43.5, 5.44] }", "Aix"),
            ("[services.irrigation.zones.\"X\"]\nplant = \"cactus\"", "cactus"),
            ("[services.irrigation]\nflow_m3_h = 0.0", "flow"),
            ("[services.irrigation]\ndecision_hour = 24", "decision_hour"),
            ("[services.lighting]\ntarif = 0.2", "unknown field"),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn the_commented_smtp_server_and_alert_rule_of_the_example_parse() {
        let example = include_str!("../../../agora.example.toml");
        let rule: String = example
            .lines()
            .skip_while(|l| !l.starts_with("# [alerts.smtp]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c: Config = toml::from_str(&rule).unwrap();
        assert_eq!(c.alerts.rules.len(), 1);
        assert_eq!(c.alerts.rules[0].id, "noise-rotonde-night");
        assert!(c.alerts.rules[0].schedule.is_some());
        assert_eq!(c.alerts.rules[0].actions.len(), 2);
        let mut smtp = c.alerts.smtp.expect("the commented [alerts.smtp] parses");
        assert_eq!(smtp.security, agora_alerts::email::SmtpSecurity::Starttls);
        // With the password from the environment, and no city authority file on this machine.
        (smtp.password, smtp.ca_file) = (Some("from AGORA_SMTP_PASSWORD".into()), None);
        agora_alerts::Mailer::new(&smtp).expect("and makes a mailer");
    }

    #[test]
    fn the_commented_single_sign_on_of_the_example_parses_and_bad_settings_are_named() {
        let example = include_str!("../../../agora.example.toml");
        let section: String = example
            .lines()
            .skip_while(|l| !l.starts_with("# [auth.oidc]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| l.trim_start_matches('#').trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let c: Config = toml::from_str(&section).unwrap();
        let o = c.auth.oidc.expect("the commented [auth.oidc] parses");
        let s = o.settings().unwrap();
        assert_eq!(s.role_claim, "realm_access.roles");
        assert_eq!(s.role_map["agora-operateur"], "operator");
        let mut bad = o.clone();
        bad.roles.insert("x".into(), "mayor".into());
        assert!(bad.settings().unwrap_err().to_string().contains("unknown role \"mayor\""));
        let mut bad = o.clone();
        bad.issuer = "sso.example".into();
        assert!(bad.settings().unwrap_err().to_string().contains("issuer must be an http(s) URL"));
    }

    #[test]
    fn the_bpe_mapping_of_agora_toml_goes_over_the_shipped_one() {
        use agora_proximity::facilities::{Target, Theme};
        let c: Config = toml::from_str(
            "[proximity]\nspeed_kmh = 4.0\n[proximity.bpe]\n\"E107\" = { theme = \"social\", label = \"gare\" }\n\"D301\" = \"ignore\"\n",
        )
        .unwrap();
        let m = c.proximity.mapping();
        assert_eq!(
            m.target("E107").map(|(k, t)| (k, t.clone())),
            Some(("E107", Target::Theme { theme: Theme::Social, label: Some("gare".into()) }))
        );
        assert!(matches!(m.target("D301"), Some((_, Target::Ignored(_)))));
        // The shipped codes are still there.
        assert!(matches!(
            m.target("B203"),
            Some((_, Target::Theme { theme: Theme::Commerce, .. }))
        ));
        assert_eq!(c.proximity.settings().speed_kmh, 4.0);
        assert!(
            toml::from_str::<Config>("[proximity.bpe]\n\"D301\" = { theme = \"sport\" }").is_err()
        );
        let slow = ProximityToml { speed_kmh: -1.0, ..Default::default() };
        assert!(slow.settings().check().unwrap_err().to_string().contains("walking speed"));
    }
}
