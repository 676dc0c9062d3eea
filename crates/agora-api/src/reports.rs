//! Citizens' reports (signalements): filed from the public map, a place's page or a kiosk by
//! anyone, handled by operators as tickets (new → acknowledged → in progress → resolved, or
//! rejected with a reason), followed by the reporter through a link of their own, shown to the
//! public without anything personal, counted for statistics and open data.
//!
//! Anti-abuse without a third party: a form key signed by the server that must be at least a few
//! seconds old (a person reads and types; a script posts at once), an empty honeypot field,
//! limits per client and per place over sliding windows of the injected clock, duplicates merged
//! (same category within metres and hours: "already reported, +1"), length and link limits on
//! the text. The reporter's address is kept only with their consent, apart from the report, and
//! erased by [`erase_contacts`] once the report has been closed for the retention.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use agora_model::permissions::{Action, Domain};
use agora_model::{InseeCode, Timestamp};
use agora_store::alerts::AlertState;
use agora_store::catalog::{Device, DeviceFilter, Site};
use agora_store::reports::{
    Change, Contact, Event as ReportEvent, Filter, NewReport, Report, ReportStore, Status,
};
use axum::extract::Extension;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Datelike;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::connections::ClientAddr;
use crate::doc::{BadRequest, Conflict, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::{Principal, Scoped, Who};

/// A category of report, as the form offers it and as tickets are routed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReportCategory)]
pub struct Category {
    /// Identifier (`street_light`).
    pub id: String,
    /// Its name in French.
    pub fr: String,
    /// Its name in English.
    pub en: String,
    /// The business department it goes to (its tickets are theirs).
    #[serde(default)]
    pub domain: Option<Domain>,
    /// Device kinds a report of it is linked to when one is near (`streetlight`).
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// Who is told when reports are filed or change, and how (the alerts' actions).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRule {
    /// These categories only (empty: all).
    #[serde(default)]
    pub categories: Vec<String>,
    /// These communes only (empty: all).
    #[serde(default)]
    pub communes: Vec<String>,
    /// Webhook, MQTT or email actions; their `on` takes `opened` (filed), `acknowledged`
    /// (acknowledged or in progress) and `resolved` (resolved or rejected).
    pub actions: Vec<agora_alerts::rule::Action>,
}

/// `[reports]`.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Whether citizens may file reports.
    pub enabled: bool,
    /// The categories offered.
    pub categories: Vec<Category>,
    /// Reports one client may file in a minute.
    pub per_client_per_minute: u32,
    /// Reports one place may receive in an hour.
    pub per_place_per_hour: u32,
    /// A form must be this old before it is sent (a person reads and types).
    pub min_fill_secs: u64,
    /// A form is valid this long.
    pub form_valid_secs: u64,
    /// A report of the same category this close…
    pub duplicate_radius_m: f64,
    /// …and this recent, still open, is the same problem.
    pub duplicate_hours: u64,
    /// Devices of the category this close are linked to the report.
    pub link_radius_m: f64,
    /// The place a report is at: the nearest within this distance.
    pub place_radius_m: f64,
    /// A commune without a boundary takes reports this close to one of its places.
    pub commune_radius_m: f64,
    /// Longest description, in characters.
    pub max_description_chars: usize,
    /// Most links in a description.
    pub max_links: usize,
    /// Days a reporter's address is kept after the report is closed.
    pub contact_retention_days: u64,
    /// Days a closed report stays on the public map.
    pub public_days: u64,
    /// How often addresses past their time are erased, in seconds.
    pub erase_every_secs: u64,
    /// Who is told.
    pub notify: Vec<NotifyRule>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            categories: default_categories(),
            per_client_per_minute: 20,
            per_place_per_hour: 60,
            min_fill_secs: 3,
            form_valid_secs: 2 * 3600,
            duplicate_radius_m: 50.0,
            duplicate_hours: 72,
            link_radius_m: 50.0,
            place_radius_m: 300.0,
            commune_radius_m: 5000.0,
            max_description_chars: 1000,
            max_links: 2,
            contact_retention_days: 30,
            public_days: 30,
            erase_every_secs: 3600,
            notify: Vec::new(),
        }
    }
}

/// The categories shipped: the problems cities' apps most often receive.
pub fn default_categories() -> Vec<Category> {
    let c = |id: &str, fr: &str, en: &str, domain: Option<Domain>, kinds: &[&str]| Category {
        id: id.into(),
        fr: fr.into(),
        en: en.into(),
        domain,
        kinds: kinds.iter().map(|k| (*k).into()).collect(),
    };
    vec![
        c(
            "street_light",
            "Éclairage public en panne",
            "Street light out",
            Some(Domain::Lighting),
            &["streetlight"],
        ),
        c(
            "bin",
            "Poubelle pleine ou sale",
            "Bin full or dirty",
            Some(Domain::Cleanliness),
            &["waste_container"],
        ),
        c("noise", "Nuisance sonore", "Noise nuisance", Some(Domain::Environment), &["noise"]),
        c("furniture", "Mobilier urbain dégradé", "Damaged street furniture", None, &[]),
        c("other", "Autre problème", "Other problem", None, &[]),
    ]
}

impl ReportSettings {
    /// Refuse settings that cannot work, naming them.
    pub fn check(&self) -> Result<(), String> {
        if self.categories.is_empty() {
            return Err("[reports] categories: at least one".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.categories {
            if c.id.is_empty()
                || c.id.len() > 40
                || !c.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "[reports] category id {:?}: 1 to 40 lower-case letters, digits or _",
                    c.id
                ));
            }
            if !seen.insert(&c.id) {
                return Err(format!("[reports] category {:?} is listed twice", c.id));
            }
            if c.fr.trim().is_empty() || c.en.trim().is_empty() {
                return Err(format!("[reports] category {:?} needs its fr and en names", c.id));
            }
        }
        for n in &self.notify {
            agora_alerts::notices::check_actions(&n.actions)
                .map_err(|e| format!("[[reports.notify]]: {e}"))?;
            if let Some(c) = n.categories.iter().find(|c| !seen.contains(c)) {
                return Err(format!("[[reports.notify]] names category {c:?}, which is not one"));
            }
        }
        for (name, v, max) in [
            ("contact_retention_days", self.contact_retention_days, 3650),
            ("public_days", self.public_days, 3650),
            ("duplicate_hours", self.duplicate_hours, 24 * 365),
            ("form_valid_secs", self.form_valid_secs, 86_400 * 7),
            ("erase_every_secs", self.erase_every_secs, 86_400 * 7),
        ] {
            if v > max {
                return Err(format!("[reports] {name} = {v}: at most {max}"));
            }
        }
        for (name, v) in [
            ("duplicate_radius_m", self.duplicate_radius_m),
            ("link_radius_m", self.link_radius_m),
            ("place_radius_m", self.place_radius_m),
            ("commune_radius_m", self.commune_radius_m),
        ] {
            if !(0.0..=50_000.0).contains(&v) {
                return Err(format!("[reports] {name} = {v}: 0 to 50,000 m"));
            }
        }
        if self.min_fill_secs >= self.form_valid_secs {
            return Err("[reports] min_fill_secs must be below form_valid_secs".into());
        }
        Ok(())
    }

    /// A category by id.
    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }
}

/// Timestamps per key over a sliding window, at most `max` keys (the oldest forgotten first).
#[derive(Debug)]
struct Window {
    span_ns: i64,
    max: usize,
    hits: HashMap<String, VecDeque<i64>>,
}

impl Window {
    fn new(span_secs: i64, max: usize) -> Self {
        Self { span_ns: span_secs * 1_000_000_000, max, hits: HashMap::new() }
    }

    /// Count a hit for `key` at `now` unless it already has `limit` in the window; `Err` with the
    /// seconds until one leaves the window.
    fn hit(&mut self, key: &str, now: i64, limit: u32) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        if !self.hits.contains_key(key) && self.hits.len() >= self.max {
            let span = self.span_ns;
            self.hits.retain(|_, q| q.back().is_some_and(|t| now - t < span));
            // Full of live windows: a flood. Refused until some expire, rather than forgetting
            // the counts of the places and clients already watched.
            if self.hits.len() >= self.max {
                let oldest = self.hits.values().filter_map(|q| q.front()).min().copied();
                let wait = oldest.map_or(self.span_ns, |t| t + self.span_ns - now);
                return Err((wait.max(1) as u64).div_ceil(1_000_000_000));
            }
        }
        let q = self.hits.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now - t >= self.span_ns) {
            q.pop_front();
        }
        if q.len() >= limit as usize {
            let first = q.front().copied().unwrap_or(now);
            return Err(((first + self.span_ns - now).max(1) as u64).div_ceil(1_000_000_000));
        }
        q.push_back(now);
        Ok(())
    }
}

/// The keys of forms: an issue time signed with the server's secret (HMAC-SHA256, 128 bits
/// kept), so that a form's age is known without keeping anything per form.
struct FormKeys(ring::hmac::Key);

impl FormKeys {
    fn new(secret: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    fn tag(&self, issued: i64, client: &str) -> ring::hmac::Tag {
        ring::hmac::sign(&self.0, format!("report-form.{issued}.{client}").as_bytes())
    }

    /// A key for a form handed to `client` (its address, as the limits count it).
    fn issue(&self, issued: i64, client: &str) -> String {
        format!("{issued}.{}", hex::encode(&self.tag(issued, client).as_ref()[..16]))
    }

    /// Check a key against the clock and the client: signed here for this client, at least `min`
    /// seconds old, at most `valid`.
    fn check(
        &self,
        key: &str,
        client: &str,
        now_secs: i64,
        min: u64,
        valid: u64,
    ) -> Result<(), String> {
        let bad = || "the form key is not one this server handed out: reload the form".to_owned();
        let (issued, tag) = key.split_once('.').ok_or_else(bad)?;
        let issued: i64 = issued.parse().map_err(|_| bad())?;
        let tag = hex::decode(tag).map_err(|_| bad())?;
        if tag.len() != 16
            || !ring::constant_time_eq(&self.tag(issued, client).as_ref()[..16], &tag)
        {
            return Err(bad());
        }
        let age = now_secs.saturating_sub(issued);
        if age < min as i64 {
            return Err(format!(
                "sent {age} s after the form was opened: wait at least {min} s (automated sending \
                 is refused)"
            ));
        }
        if age > valid as i64 {
            return Err("the form has expired: reload it".into());
        }
        Ok(())
    }
}

/// The reports' service: the store, the settings, the key that signs forms, the windows.
pub struct Reports {
    /// Where reports are kept.
    pub store: Arc<dyn ReportStore>,
    /// `[reports]`.
    pub settings: ReportSettings,
    forms: FormKeys,
    clients: Mutex<Window>,
    places: Mutex<Window>,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Reports {
    /// The service, with a new key for forms (forms handed out before a restart must be asked
    /// again).
    pub fn new(store: Arc<dyn ReportStore>, settings: ReportSettings) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the system's random numbers");
        Self {
            store,
            settings,
            forms: FormKeys::new(&key),
            clients: Mutex::new(Window::new(60, 10_000)),
            places: Mutex::new(Window::new(3600, 10_000)),
        }
    }

    fn form_key(&self, issued: i64, client: &str) -> String {
        self.forms.issue(issued, client)
    }

    fn check_form(&self, key: &str, client: &str, now_secs: i64) -> Result<(), String> {
        self.forms.check(
            key,
            client,
            now_secs,
            self.settings.min_fill_secs,
            self.settings.form_valid_secs,
        )
    }
}

mod ring {
    pub(super) use ::ring::hmac;
    /// Compare without leaking where they differ.
    pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn off(s: &AppState) -> ApiResult<()> {
    if s.reports.settings.enabled {
        Ok(())
    } else {
        Err(ApiError::NotFound("citizens' reports are not open on this platform".into()))
    }
}

/// Metres between two positions (haversine, mean Earth radius).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    agora_proximity::project::haversine_m((lon1, lat1), (lon2, lat2))
}

/// `[south, west, north, east]` around a position, `m` metres each way.
fn around(lat: f64, lon: f64, m: f64) -> [f64; 4] {
    let dlat = m / 111_320.0;
    let dlon = m / (111_320.0 * lat.to_radians().cos().max(0.01));
    [lat - dlat, lon - dlon, lat + dlat, lon + dlon]
}

/// The commune a position is in and the place it is at: a commune's boundary when it has one,
/// else the nearness of its places.
pub(crate) fn locate(s: &AppState, lat: f64, lon: f64) -> ApiResult<(InseeCode, Option<Site>)> {
    let settings = &s.reports.settings;
    let point = agora_interop::geo::Geometry::Point((lon, lat));
    let sites = s.catalog.sites();
    let nearest_place = |commune: Option<&InseeCode>, within: f64| {
        sites
            .iter()
            .filter(|x| commune.is_none_or(|c| &x.commune == c))
            .filter_map(|x| Some((distance_m(lat, lon, x.lat?, x.lon?), x)))
            .filter(|(d, _)| *d <= within)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, x)| x.clone())
    };
    for c in s.catalog.communes() {
        let Some(b) = &c.boundary else { continue };
        let Ok(g) = agora_interop::geo::Geometry::from_geojson(b) else { continue };
        if point.within(&g) || point.intersects(&g) {
            let place = nearest_place(Some(&c.insee), settings.place_radius_m);
            return Ok((c.insee, place));
        }
    }
    let bounded: std::collections::HashSet<InseeCode> = s
        .catalog
        .communes()
        .into_iter()
        .filter(|c| c.boundary.is_some())
        .map(|c| c.insee)
        .collect();
    let near = sites
        .iter()
        .filter(|x| !bounded.contains(&x.commune))
        .filter_map(|x| Some((distance_m(lat, lon, x.lat?, x.lon?), x)))
        .filter(|(d, _)| *d <= settings.commune_radius_m)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    match near {
        Some((_, x)) => {
            let place = nearest_place(Some(&x.commune), settings.place_radius_m);
            Ok((x.commune.clone(), place))
        }
        None => Err(ApiError::BadRequest(format!(
            "the position {lat:.5}, {lon:.5} is outside every commune of this platform"
        ))),
    }
}

/// The text as kept: control characters other than line breaks removed, spaces trimmed; refused
/// when too long or with too many links.
fn clean_text(s: &ReportSettings, text: &str) -> ApiResult<String> {
    let chars = text.chars().count();
    if chars > s.max_description_chars {
        return Err(ApiError::BadRequest(format!(
            "the description is {chars} characters long: at most {}",
            s.max_description_chars
        )));
    }
    let kept: String =
        text.chars().filter(|c| !c.is_control() || *c == '\n').collect::<String>().trim().into();
    let lower = kept.to_lowercase();
    let links = lower.matches("http://").count()
        + lower.matches("https://").count()
        + lower.matches("www.").count();
    if links > s.max_links {
        return Err(ApiError::BadRequest(format!(
            "the description holds {links} links: at most {}",
            s.max_links
        )));
    }
    Ok(kept)
}

/// An email address as people write them: one `@`, a dot in the domain, no spaces, at most 254
/// characters.
fn check_email(e: &str) -> ApiResult<String> {
    let e = e.trim();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if ok {
        Ok(e.to_owned())
    } else {
        Err(ApiError::BadRequest(format!("{e:?} is not an email address")))
    }
}

fn random_key() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the system's random numbers");
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
}

/// The form: categories, a signed key, what the server does with an address.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportForm)]
pub struct Form {
    /// The categories offered.
    pub categories: Vec<Category>,
    /// The key to send back with the report.
    pub key: String,
    /// Seconds before the form may be sent.
    pub min_fill_secs: u64,
    /// Whether reporters may leave an address to be told when it is fixed.
    pub email: bool,
    /// Days an address is kept after the report is closed.
    pub contact_retention_days: u64,
    /// Longest description.
    pub max_description_chars: usize,
}

/// `GET /api/v1/reports/form`
#[utoipa::path(get, path = "/api/v1/reports/form", tag = "reports",
    responses((status = 200, body = Form), (status = 404, response = NotFound)))]
pub(crate) async fn form(
    Scoped(s): Scoped,
    peer: Option<Extension<ClientAddr>>,
) -> ApiResult<Json<Form>> {
    off(&s)?;
    let r = &s.reports;
    let client = client_key(peer.as_deref());
    Ok(Json(Form {
        categories: r.settings.categories.clone(),
        key: r.form_key(s.clock.now().as_nanos().div_euclid(1_000_000_000), &client),
        min_fill_secs: r.settings.min_fill_secs,
        email: s.alerts.as_ref().is_some_and(|a| a.can_mail()),
        contact_retention_days: r.settings.contact_retention_days,
        max_description_chars: r.settings.max_description_chars,
    }))
}

/// A report as a citizen files it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewCitizenReport)]
pub struct Filing {
    /// A category's id.
    pub category: String,
    /// Latitude (WGS 84), or give `site`.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude (WGS 84).
    #[serde(default)]
    pub lon: Option<f64>,
    /// The place (a kiosk's), when no position is given.
    #[serde(default)]
    pub site: Option<String>,
    /// What is wrong.
    #[serde(default)]
    pub description: String,
    /// An address to be told when it is fixed (needs `consent`).
    #[serde(default)]
    pub email: Option<String>,
    /// Consent to keep the address until the report is closed plus the retention.
    #[serde(default)]
    pub consent: bool,
    /// `fr` or `en`: the language of the message.
    #[serde(default)]
    pub lang: Option<String>,
    /// `web`, `kiosk` or `api`.
    #[serde(default)]
    pub channel: Option<String>,
    /// The form's key.
    pub key: String,
    /// Leave empty (a field people do not see).
    #[serde(default)]
    pub website: Option<String>,
}

/// What the reporter gets back.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FiledReport)]
pub struct Filed {
    /// The ticket's number.
    pub number: i64,
    /// The key of the follow-up page (`/signalements/suivi/{follow}`).
    pub follow: String,
    /// The follow-up page.
    pub follow_url: String,
    /// Whether it joined a report already filed.
    pub duplicate: bool,
    /// How many people reported it.
    pub supporters: i64,
    /// Where the ticket stands.
    pub status: Status,
    /// Whether an address is kept to tell the reporter.
    pub contact_kept: bool,
}

fn client_key(peer: Option<&ClientAddr>) -> String {
    match peer {
        Some(a) => agora_ingest::limits::client_key(a.0.ip()).to_string(),
        None => "unknown".into(),
    }
}

/// `POST /api/v1/reports`: file a report. 201 with the follow-up key; 200 when it joined the
/// same problem reported nearby.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports", request_body = Filing,
    responses((status = 201, body = Filed), (status = 200, body = Filed, description = "merged into a report already filed"),
        (status = 404, response = NotFound), Writes))]
pub(crate) async fn file(
    Scoped(s): Scoped,
    peer: Option<Extension<ClientAddr>>,
    h: HeaderMap,
    Json(f): Json<Filing>,
) -> ApiResult<Response> {
    off(&s)?;
    let r = &s.reports;
    let set = &r.settings;
    let now = s.clock.now();
    let now_ns = now.as_nanos();
    // Counted first: a client sending garbage in a loop is limited too.
    let client = client_key(peer.as_deref());
    r.clients.lock().hit(&client, now_ns, set.per_client_per_minute).map_err(|secs| {
        ApiError::LimitReached {
            detail: format!(
                "at most {} reports a minute from one client: try again in {secs} s",
                set.per_client_per_minute
            ),
            retry_after_secs: secs,
        }
    })?;
    if f.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        return Err(ApiError::BadRequest(
            "the field \"website\" must stay empty: the report looks automated".into(),
        ));
    }
    r.check_form(&f.key, &client, now_ns.div_euclid(1_000_000_000))
        .map_err(ApiError::BadRequest)?;
    let category = set.category(&f.category).ok_or_else(|| {
        let all: Vec<&str> = set.categories.iter().map(|c| c.id.as_str()).collect();
        ApiError::BadRequest(format!(
            "unknown category {:?}: one of {}",
            f.category,
            all.join(", ")
        ))
    })?;
    let description = clean_text(set, &f.description)?;
    let channel = f.channel.as_deref().unwrap_or("web");
    if !["web", "kiosk", "api"].contains(&channel) {
        return Err(ApiError::BadRequest(format!(
            "unknown channel {channel:?}: web, kiosk or api"
        )));
    }
    let lang = match f.lang.as_deref().unwrap_or("fr") {
        l @ ("fr" | "en") => l,
        l => return Err(ApiError::BadRequest(format!("unknown language {l:?}: fr or en"))),
    };
    let contact = match f.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => {
            let email = check_email(e)?;
            if !f.consent {
                return Err(ApiError::BadRequest(
                    "to be told when it is fixed, consent to the address being kept (consent: \
                     true); or leave the address out"
                        .into(),
                ));
            }
            if !s.alerts.as_ref().is_some_and(|a| a.can_mail()) {
                return Err(ApiError::BadRequest(
                    "this platform sends no emails: leave the address out".into(),
                ));
            }
            Some(Contact { email, lang: lang.into() })
        }
    };
    let (lat, lon) = match (f.lat, f.lon, f.site.as_deref()) {
        (Some(lat), Some(lon), _) => {
            if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
                return Err(ApiError::BadRequest(format!("bad position {lat}, {lon}")));
            }
            (lat, lon)
        }
        (None, None, Some(site)) => {
            let x = s
                .catalog
                .sites()
                .into_iter()
                .find(|x| x.id.as_str() == site)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown place {site:?}")))?;
            match (x.lat, x.lon) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "the place {site:?} has no position: give lat and lon"
                    )));
                }
            }
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give the position (lat and lon) or the place (site)".into(),
            ));
        }
    };
    let (commune, place) = locate(&s, lat, lon)?;
    // The place, or a square of about 500 m where none is near: moving a little does not make a
    // new place.
    let place_key = place.as_ref().map_or_else(
        || format!("{}:{},{}", commune.as_str(), (lat / 0.005).floor(), (lon / 0.005).floor()),
        |p| p.id.as_str().to_owned(),
    );
    let base = crate::open_data::base_url(&s, &h);
    let links = notice_base(&s);
    // The same problem reported nearby, still open: one more supporter.
    let since = Timestamp::from_nanos(now_ns - set.duplicate_hours as i64 * 3_600_000_000_000);
    let candidates = r
        .store
        .list(&Filter {
            statuses: vec![Status::New, Status::Acknowledged, Status::InProgress],
            categories: vec![category.id.clone()],
            commune: Some(commune.as_str().to_owned()),
            since: Some(since),
            within: Some(around(lat, lon, set.duplicate_radius_m)),
            ..Filter::default()
        })
        .await?;
    let same = candidates
        .into_iter()
        .filter(|x| distance_m(lat, lon, x.lat, x.lon) <= set.duplicate_radius_m)
        .min_by(|a, b| {
            distance_m(lat, lon, a.lat, a.lon).total_cmp(&distance_m(lat, lon, b.lat, b.lon))
        });
    if let Some(same) = same {
        // Their own key: the first reporter's is not handed to whoever files the same thing.
        let follow = random_key();
        let merged = r.store.support(same.id, &follow, contact.as_ref(), now).await?;
        let body = Filed {
            number: merged.id,
            follow_url: format!("{base}/signalements/suivi/{follow}"),
            follow,
            duplicate: true,
            supporters: merged.supporters,
            status: merged.status,
            contact_kept: contact.is_some(),
        };
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    // A new problem counts against the place's hour (one more person on the same one does not:
    // a few senders cannot shut a place's reports for an hour by repeating a report).
    r.places.lock().hit(&place_key, now_ns, set.per_place_per_hour).map_err(|secs| {
        ApiError::LimitReached {
            detail: format!(
                "this place has had {} new reports in the last hour: try again in {secs} s",
                set.per_place_per_hour
            ),
            retry_after_secs: secs,
        }
    })?;
    let (devices, alert_id) = linked(&s, category, commune.as_str(), lat, lon).await;
    let report = r
        .store
        .create(&NewReport {
            follow: random_key(),
            commune: commune.as_str().into(),
            site: place.as_ref().map(|p| p.id.as_str().to_owned()),
            category: category.id.clone(),
            lat,
            lon,
            description,
            channel: channel.into(),
            alert_id,
            devices,
            contact: contact.clone(),
            at: now,
        })
        .await?;
    tracing::info!(report = report.id, category = %report.category, commune = %report.commune, "citizen report filed");
    notify(&s, &report, agora_alerts::rule::Event::Opened, &links);
    let body = Filed {
        number: report.id,
        follow_url: format!("{base}/signalements/suivi/{}", report.follow),
        follow: report.follow.clone(),
        duplicate: false,
        supporters: report.supporters,
        status: report.status,
        contact_kept: contact.is_some(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// File a report on the platform's own authority (the demo's, an import of another system's
/// tickets): located, linked and notified as a citizen's, without the form's guards.
pub async fn record(
    s: &AppState,
    category: &str,
    lat: f64,
    lon: f64,
    description: &str,
    channel: &str,
    at: Timestamp,
) -> ApiResult<Report> {
    let c = s
        .reports
        .settings
        .category(category)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown category {category:?}")))?
        .clone();
    let description = clean_text(&s.reports.settings, description)?;
    let (commune, place) = locate(s, lat, lon)?;
    let (devices, alert_id) = linked(s, &c, commune.as_str(), lat, lon).await;
    Ok(s.reports
        .store
        .create(&NewReport {
            follow: random_key(),
            commune: commune.as_str().into(),
            site: place.map(|p| p.id.as_str().to_owned()),
            category: c.id.clone(),
            lat,
            lon,
            description,
            channel: channel.into(),
            alert_id,
            devices,
            contact: None,
            at,
        })
        .await?)
}

/// Devices of the category near the report, nearest first, and the open alert of one of them.
async fn linked(
    s: &AppState,
    c: &Category,
    commune: &str,
    lat: f64,
    lon: f64,
) -> (Vec<String>, Option<i64>) {
    if c.kinds.is_empty() {
        return (Vec::new(), None);
    }
    let sites: HashMap<String, (Option<f64>, Option<f64>)> =
        s.catalog.sites().into_iter().map(|x| (x.id.as_str().to_owned(), (x.lat, x.lon))).collect();
    let position = |d: &Device| match (d.lat, d.lon) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => match d.site.as_ref().and_then(|x| sites.get(x.as_str())) {
            Some((Some(a), Some(b))) => Some((*a, *b)),
            _ => None,
        },
    };
    let mut near: Vec<(f64, String)> = s
        .catalog
        .devices(&DeviceFilter::default())
        .into_iter()
        .filter(|d| c.kinds.iter().any(|k| k == d.kind.as_str()))
        .filter(|d| d.commune.as_ref().is_none_or(|x| x.as_str() == commune))
        .filter_map(|d| {
            let (a, b) = position(&d)?;
            let m = distance_m(lat, lon, a, b);
            (m <= s.reports.settings.link_radius_m).then(|| (m, d.id.as_str().to_owned()))
        })
        .collect();
    near.sort_by(|a, b| a.0.total_cmp(&b.0));
    near.truncate(10);
    let mut alert = None;
    if let Some(alerts) = &s.alerts {
        for (_, d) in &near {
            let found = alerts
                .alerts(&agora_store::alerts::AlertFilter {
                    device: Some(d.clone()),
                    limit: 20,
                    ..Default::default()
                })
                .await
                .unwrap_or_default();
            if let Some(a) = found.iter().find(|a| a.state != AlertState::Resolved) {
                alert = Some(a.id);
                break;
            }
        }
    }
    (near.into_iter().map(|(_, d)| d).collect(), alert)
}

/// Where links in operators' and reporters' messages point: the configured public address
/// (`[open_data] base_url`, else `[alerts.smtp] dashboard_url`), never a request's `Host`, which
/// whoever files a report chooses; without one, the links are paths.
fn notice_base(s: &AppState) -> String {
    s.config
        .open_data
        .base_url
        .clone()
        .or_else(|| s.alerts.as_ref().and_then(|a| a.dashboard_url().map(str::to_owned)))
        .map(|b| b.trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

/// The report as webhooks and MQTT messages carry it.
fn notice_body(r: &Report, event: &str, base: &str) -> Value {
    json!({
        "type": "citizen_report",
        "event": event,
        "report": {
            "number": r.id, "category": r.category, "status": r.status, "commune": r.commune,
            "site": r.site, "lat": r.lat, "lon": r.lon, "supporters": r.supporters,
            "devices": r.devices, "alert_id": r.alert_id, "description": r.description,
            "channel": r.channel, "reason": r.reason,
            "created_at": r.created_at.to_rfc3339(),
        },
        "url": format!("{base}/signalements?report={}", r.id),
    })
}

/// Tell whoever `[[reports.notify]]` names about a report's event.
fn notify(s: &AppState, r: &Report, event: agora_alerts::rule::Event, base: &str) {
    let Some(alerts) = &s.alerts else { return };
    let set = &s.reports.settings;
    let label = set.category(&r.category).map_or(r.category.as_str(), |c| c.fr.as_str());
    let status_fr = status_fr(r.status);
    let place = r.site.clone().unwrap_or_else(|| format!("{:.5}, {:.5}", r.lat, r.lon));
    let notice = agora_alerts::Notice {
        about: format!("report {}", r.id),
        key: format!("report-{}-{}-{}", r.id, r.status.as_str(), r.updated_at.as_nanos()),
        event,
        subject: format!("[agora] Signalement n° {} — {label} — {status_fr}", r.id),
        text: format!(
            "Signalement n° {id} ({label}) — {status_fr}\n\nLieu : {place} (commune {commune})\n\
             Signalé par {n} personne(s), le {at}\n\n{desc}\n\n{reason}Voir : {base}/signalements?report={id}\n",
            id = r.id,
            commune = r.commune,
            n = r.supporters,
            at = r.created_at.to_rfc3339(),
            desc = r.description,
            reason = r.reason.as_deref().map(|x| format!("Note : {x}\n\n")).unwrap_or_default(),
        ),
        body: notice_body(r, r.status.as_str(), base),
        words: [
            ("category", r.category.clone()),
            ("commune", r.commune.clone()),
            ("site", r.site.clone().unwrap_or_default()),
            ("status", r.status.as_str().to_owned()),
            ("number", r.id.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    for rule in &set.notify {
        if (rule.categories.is_empty() || rule.categories.contains(&r.category))
            && (rule.communes.is_empty() || rule.communes.contains(&r.commune))
        {
            alerts.notify(notice.clone(), &rule.actions);
        }
    }
}

fn status_fr(s: Status) -> &'static str {
    match s {
        Status::New => "nouveau",
        Status::Acknowledged => "pris en compte",
        Status::InProgress => "en cours",
        Status::Resolved => "résolu",
        Status::Rejected => "rejeté",
    }
}

fn status_en(s: Status) -> &'static str {
    match s {
        Status::New => "new",
        Status::Acknowledged => "acknowledged",
        Status::InProgress => "in progress",
        Status::Resolved => "resolved",
        Status::Rejected => "rejected",
    }
}

/// A report as the public sees it: nothing personal, the text only when an operator published
/// it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PublicReport)]
pub struct PublicView {
    /// The ticket's number.
    pub number: i64,
    /// Its category's id.
    pub category: String,
    /// Its category's name in French.
    pub category_fr: String,
    /// Its category's name in English.
    pub category_en: String,
    /// The commune.
    pub commune: String,
    /// The place's id, when it is at one.
    pub site: Option<String>,
    /// The place's name.
    pub site_name: Option<String>,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Where it stands.
    pub status: Status,
    /// How many people reported it.
    pub supporters: i64,
    /// Filed.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Closed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    /// What operators published.
    pub note: Option<String>,
    /// The reporter's text, when operators published it.
    pub description: Option<String>,
    /// Changes of status, oldest first (no names).
    pub history: Vec<PublicStep>,
}

/// A step of a report's life as the public sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PublicReportStep)]
pub struct PublicStep {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `created`, `supported`, a status or `reopened`.
    pub event: String,
}

/// Places' names by id.
fn site_names(s: &AppState) -> HashMap<String, String> {
    s.catalog.sites().into_iter().map(|x| (x.id.as_str().to_owned(), x.name)).collect()
}

fn public_view(
    s: &AppState,
    names: &HashMap<String, String>,
    r: &Report,
    events: &[ReportEvent],
) -> PublicView {
    let c = s.reports.settings.category(&r.category);
    let site_name = r.site.as_ref().and_then(|id| names.get(id).cloned());
    PublicView {
        number: r.id,
        category: r.category.clone(),
        category_fr: c.map_or_else(|| r.category.clone(), |c| c.fr.clone()),
        category_en: c.map_or_else(|| r.category.clone(), |c| c.en.clone()),
        commune: r.commune.clone(),
        site: r.site.clone(),
        site_name,
        lat: r.lat,
        lon: r.lon,
        status: r.status,
        supporters: r.supporters,
        created_at: r.created_at,
        closed_at: r.closed_at,
        note: r.public_note.clone(),
        description: r.description_public.then(|| r.description.clone()),
        history: events.iter().map(|e| PublicStep { at: e.at, event: e.event.clone() }).collect(),
    }
}

/// `GET /api/v1/reports/follow/{key}`: a reporter's report, as the public sees it.
#[utoipa::path(get, path = "/api/v1/reports/follow/{key}", tag = "reports",
    params(("key" = String, Path, description = "the follow-up key given when it was filed")),
    responses((status = 200, body = PublicView), (status = 404, response = NotFound)))]
pub(crate) async fn follow(
    Scoped(s): Scoped,
    Path(key): Path<String>,
) -> ApiResult<Json<PublicView>> {
    off(&s)?;
    let r = s
        .reports
        .store
        .by_follow(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound("no report has this follow-up key".into()))?;
    let events = s.reports.store.events(r.id).await?;
    Ok(Json(public_view(&s, &site_names(&s), &r, &events)))
}

/// Which public reports.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PublicQuery {
    /// One commune's.
    pub commune: Option<String>,
    /// One place's.
    pub site: Option<String>,
}

/// `GET /api/v1/public/reports`: open reports and those closed in the last `public_days`, as
/// GeoJSON, nothing personal.
#[utoipa::path(get, path = "/api/v1/public/reports", tag = "reports", params(PublicQuery),
    responses((status = 200, description = "GeoJSON FeatureCollection of PublicReport properties"),
        (status = 404, response = NotFound)))]
pub(crate) async fn public_reports(
    Scoped(s): Scoped,
    Query(q): Query<PublicQuery>,
) -> ApiResult<Response> {
    off(&s)?;
    let now = s.clock.now().as_nanos();
    let list = s
        .reports
        .store
        .list(&Filter {
            commune: q.commune.clone(),
            site: q.site.clone(),
            open_or_closed_since: Some(Timestamp::from_nanos(
                now - s.reports.settings.public_days as i64 * 86_400_000_000_000,
            )),
            limit: 2000,
            ..Filter::default()
        })
        .await?;
    let names = site_names(&s);
    // Positions to about 50 m: where the problem is, not which door a reporter came out of.
    let round = |x: f64| (x / 0.0005).round() * 0.0005;
    let features: Vec<Value> = list
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(public_view(&s, &names, r, &[])).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("history");
                o.insert("lat".into(), json!(round(r.lat)));
                o.insert("lon".into(), json!(round(r.lon)));
            }
            json!({"type": "Feature",
                   "geometry": {"type": "Point", "coordinates": [round(r.lon), round(r.lat)]},
                   "properties": v})
        })
        .collect();
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        serde_json::to_string(&json!({"type": "FeatureCollection", "features": features}))
            .unwrap_or_default(),
    )
        .into_response())
}

/// Which tickets.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// Statuses, comma-separated (`new,acknowledged`); `open` for the three open ones.
    pub status: Option<String>,
    /// A category.
    pub category: Option<String>,
    /// A commune (the Métropole's people; others see their own).
    pub commune: Option<String>,
    /// Those joined to this alert.
    pub alert: Option<i64>,
    /// At most this many (default 500, at most 5,000).
    pub limit: Option<u32>,
}

/// A ticket in the operators' list.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportTicket)]
pub struct Ticket {
    /// The report.
    #[serde(flatten)]
    pub report: Report,
    /// Its category's name in French.
    pub category_fr: String,
    /// Its category's name in English.
    pub category_en: String,
    /// The department it goes to.
    pub domain: Option<Domain>,
}

fn ticket(s: &AppState, r: Report) -> Ticket {
    let c = s.reports.settings.category(&r.category);
    Ticket {
        category_fr: c.map_or_else(|| r.category.clone(), |c| c.fr.clone()),
        category_en: c.map_or_else(|| r.category.clone(), |c| c.en.clone()),
        domain: c.and_then(|c| c.domain),
        report: r,
    }
}

/// The categories a caller sees tickets of: a department its domain's; others all.
fn visible_categories(s: &AppState, who: &Principal) -> Option<Vec<String>> {
    let d = who.grant.domain()?;
    Some(
        s.reports
            .settings
            .categories
            .iter()
            .filter(|c| c.domain == Some(d))
            .map(|c| c.id.clone())
            .collect(),
    )
}

fn parse_statuses(s: Option<&str>) -> ApiResult<Vec<Status>> {
    let mut out = Vec::new();
    for part in s.unwrap_or("").split(',').map(str::trim).filter(|x| !x.is_empty()) {
        if part == "open" {
            out.extend([Status::New, Status::Acknowledged, Status::InProgress]);
        } else {
            out.push(Status::parse(part).map_err(ApiError::BadRequest)?);
        }
    }
    Ok(out)
}

/// `GET /api/v1/reports`: tickets, newest first — a commune's people see their commune's, a
/// department its domain's.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(TicketQuery),
    responses((status = 200, body = [Ticket]), (status = 400, response = BadRequest), Reads))]
pub(crate) async fn tickets(
    Scoped(s): Scoped,
    Who(who): Who,
    Query(q): Query<TicketQuery>,
) -> ApiResult<Json<Vec<Ticket>>> {
    off(&s)?;
    let statuses = parse_statuses(q.status.as_deref())?;
    let mut categories: Vec<String> = q.category.iter().cloned().collect();
    if let Some(mine) = visible_categories(&s, &who) {
        categories = if categories.is_empty() {
            mine
        } else {
            categories.into_iter().filter(|c| mine.contains(c)).collect()
        };
        if categories.is_empty() {
            return Ok(Json(Vec::new()));
        }
    }
    let commune = match who.grant.commune() {
        Some(c) => Some(c.as_str().to_owned()),
        None => q.commune.clone(),
    };
    let list = s
        .reports
        .store
        .list(&Filter {
            statuses,
            categories,
            commune,
            limit: if q.alert.is_some() { 0 } else { q.limit.unwrap_or(500).clamp(1, 5000) },
            ..Filter::default()
        })
        .await?;
    Ok(Json(
        list.into_iter()
            .filter(|r| q.alert.is_none() || r.alert_id == q.alert)
            .map(|r| ticket(&s, r))
            .collect(),
    ))
}

/// A ticket with its history and what it is linked to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportTicketDetail)]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// Its events, oldest first, with who.
    pub events: Vec<ReportEvent>,
    /// The statuses it may go to now.
    pub next: Vec<Status>,
}

/// The statuses a ticket may go to: forward, or rejected while open; a closed one reopens to
/// acknowledged.
pub fn next_statuses(from: Status) -> Vec<Status> {
    match from {
        Status::New => {
            vec![Status::Acknowledged, Status::InProgress, Status::Resolved, Status::Rejected]
        }
        Status::Acknowledged => vec![Status::InProgress, Status::Resolved, Status::Rejected],
        Status::InProgress => vec![Status::Resolved, Status::Rejected],
        Status::Resolved | Status::Rejected => vec![Status::Acknowledged],
    }
}

async fn reachable(s: &AppState, who: &Principal, id: i64) -> ApiResult<Report> {
    let r = s
        .reports
        .store
        .report(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no report {id}")))?;
    // Departments read every ticket (they change only their domain's); a commune's people see
    // their commune's only, as if the others did not exist.
    if who.grant.commune().is_some_and(|c| c.as_str() != r.commune) {
        return Err(ApiError::NotFound(format!("no report {id}")));
    }
    Ok(r)
}

/// `GET /api/v1/reports/{id}`
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports",
    params(("id" = i64, Path, description = "the ticket's number")),
    responses((status = 200, body = TicketDetail), (status = 400, response = BadRequest),
        (status = 404, response = NotFound), Reads))]
pub(crate) async fn ticket_detail(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<i64>,
) -> ApiResult<Json<TicketDetail>> {
    off(&s)?;
    let r = reachable(&s, &who, id).await?;
    let events = s.reports.store.events(id).await?;
    let next = next_statuses(r.status);
    Ok(Json(TicketDetail { ticket: ticket(&s, r), events, next }))
}

/// A change to a ticket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReportChange)]
pub struct ChangeBody {
    /// The new status (the same one to change only the notes).
    pub status: Status,
    /// How it was resolved, or why it is rejected (needed to reject).
    #[serde(default)]
    pub note: Option<String>,
    /// A note the public sees (`""` withdraws it).
    #[serde(default)]
    pub public_note: Option<String>,
    /// Publish (or withdraw) the reporter's text.
    #[serde(default)]
    pub publish_description: Option<bool>,
}

/// `POST /api/v1/reports/{id}/status`: move a ticket on (acknowledge, start, resolve, reject
/// with a reason, reopen), publish a note or the reporter's text. Closing it tells the reporters
/// who left an address.
#[utoipa::path(post, path = "/api/v1/reports/{id}/status", tag = "reports", request_body = ChangeBody,
    params(("id" = i64, Path, description = "the ticket's number")),
    responses((status = 200, body = TicketDetail), (status = 400, response = BadRequest),
        (status = 404, response = NotFound), (status = 409, response = Conflict), Writes))]
pub(crate) async fn change(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<i64>,
    Json(b): Json<ChangeBody>,
) -> ApiResult<Json<TicketDetail>> {
    off(&s)?;
    let r = reachable(&s, &who, id).await?;
    let domain = s.reports.settings.category(&r.category).and_then(|c| c.domain);
    let commune = InseeCode::parse(&r.commune).ok();
    who.check(Action::Modify, commune.as_ref(), domain)?;
    let text = |x: Option<String>, what: &str| -> ApiResult<Option<String>> {
        match x.map(|t| t.trim().to_owned()) {
            Some(t) if t.chars().count() > 2000 => {
                Err(ApiError::BadRequest(format!("the {what} is over 2,000 characters")))
            }
            Some(t) if t.is_empty() => Ok(None),
            other => Ok(other),
        }
    };
    let note = text(b.note, "note")?;
    let public_note = match b.public_note {
        None => None,
        Some(p) => Some(text(Some(p), "public note")?),
    };
    let event = if b.status == r.status {
        "noted".to_owned()
    } else if !next_statuses(r.status).contains(&b.status) {
        let next: Vec<&str> = next_statuses(r.status).iter().map(|x| x.as_str()).collect();
        return Err(ApiError::BadRequest(format!(
            "a {} report goes to {}, not {}",
            r.status.as_str(),
            next.join(", "),
            b.status.as_str()
        )));
    } else if !r.status.is_open() {
        "reopened".to_owned()
    } else {
        b.status.as_str().to_owned()
    };
    if b.status == Status::Rejected && b.status != r.status && note.is_none() {
        return Err(ApiError::BadRequest("say why it is rejected (note)".into()));
    }
    let changed = s
        .reports
        .store
        .change(
            id,
            &Change {
                from: r.status,
                status: b.status,
                event: event.clone(),
                actor: who.name.clone(),
                note,
                public_note,
                description_public: b.publish_description,
                at: s.clock.now(),
            },
        )
        .await?;
    let base = notice_base(&s);
    if b.status != r.status {
        let ev = match b.status {
            Status::New => None,
            Status::Acknowledged | Status::InProgress => {
                Some(agora_alerts::rule::Event::Acknowledged)
            }
            Status::Resolved | Status::Rejected => Some(agora_alerts::rule::Event::Resolved),
        };
        if let Some(ev) = ev {
            notify(&s, &changed, ev, &base);
        }
        if !b.status.is_open() {
            tell_reporters(&s, &changed, &base);
        }
    }
    let events = s.reports.store.events(id).await?;
    let next = next_statuses(changed.status);
    Ok(Json(TicketDetail { ticket: ticket(&s, changed), events, next }))
}

/// Tell the reporters who left an address that their report was closed, in their language, in
/// a task of its own.
fn tell_reporters(s: &AppState, r: &Report, base: &str) {
    let Some(alerts) = s.alerts.clone() else { return };
    let (store, r, base) = (s.reports.store.clone(), r.clone(), base.to_owned());
    let c = s.reports.settings.category(&r.category).cloned();
    let days = s.reports.settings.contact_retention_days;
    let site = r
        .site
        .as_ref()
        .and_then(|id| s.catalog.sites().into_iter().find(|x| x.id.as_str() == id).map(|x| x.name));
    tokio::spawn(async move {
        let contacts = match store.contacts(r.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, report = r.id, "cannot read a report's contacts");
                return;
            }
        };
        if contacts.is_empty() {
            return;
        }
        let link = format!("{base}/signalements/suivi/{}", r.follow);
        let place = site.unwrap_or_else(|| format!("{:.5}, {:.5}", r.lat, r.lon));
        for lang in ["fr", "en"] {
            let to: Vec<String> =
                contacts.iter().filter(|x| x.lang == lang).map(|x| x.email.clone()).collect();
            if to.is_empty() {
                continue;
            }
            let (subject, text) = if lang == "en" {
                let label = c.as_ref().map_or(r.category.as_str(), |c| c.en.as_str());
                (
                    format!("Your report no. {} has been {}", r.id, status_en(r.status)),
                    format!(
                        "Hello,\n\nYour report no. {id} ({label}, {place}) has been {st}.\n\n{note}\
                         Follow it: {link}\n\nYour address is erased {days} days after this \
                         message; it was kept only to send it.\n",
                        id = r.id,
                        st = status_en(r.status),
                        note = r
                            .public_note
                            .as_deref()
                            .map(|n| format!("{n}\n\n"))
                            .unwrap_or_default(),
                        days = days,
                    ),
                )
            } else {
                let label = c.as_ref().map_or(r.category.as_str(), |c| c.fr.as_str());
                (
                    format!("Votre signalement n° {} a été {}", r.id, status_fr(r.status)),
                    format!(
                        "Bonjour,\n\nVotre signalement n° {id} ({label}, {place}) a été {st}.\n\n{note}\
                         Suivi : {link}\n\nVotre adresse n'a été conservée que pour vous envoyer \
                         ce message ; elle sera effacée dans {days} jours.\n",
                        id = r.id,
                        st = status_fr(r.status),
                        note = r
                            .public_note
                            .as_deref()
                            .map(|n| format!("{n}\n\n"))
                            .unwrap_or_default(),
                    ),
                )
            };
            // One message per address: reporters do not see each other's.
            for (n, one) in to.iter().enumerate() {
                let key = format!("report-{}-closed-{}-{lang}-{n}", r.id, r.updated_at.as_nanos());
                let _ = alerts
                    .mail(
                        &format!("report {}", r.id),
                        std::slice::from_ref(one),
                        &subject,
                        &text,
                        &key,
                    )
                    .await;
            }
        }
        if let Err(e) = store.contacted(r.id, r.updated_at).await {
            tracing::error!(error = %e, report = r.id, "cannot note that reporters were told");
        }
    });
}

/// Erase the addresses of reports closed longer ago than the retention; how many. Run by the
/// server every `erase_every_secs`.
pub async fn erase_contacts(s: &AppState) -> agora_store::Result<u64> {
    let day = 86_400_000_000_000i64;
    let now = s.clock.now();
    let keep = s.reports.settings.contact_retention_days as i64 * day;
    // A report never closed does not keep its addresses more than a year (and the retention).
    let longest = keep.max(365 * day);
    let n = s
        .reports
        .store
        .erase_contacts(now.saturating_add_nanos(-keep), now.saturating_add_nanos(-longest))
        .await?;
    if n > 0 {
        tracing::info!(erased = n, "reporters' addresses erased (report closed, retention over)");
    }
    Ok(n)
}

/// How to count.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// `category` (default), `site`, `commune` or `month` (Paris time), or several,
    /// comma-separated (`category,month`).
    pub by: Option<String>,
    /// Filed on or after this day (`YYYY-MM-DD`, Paris).
    pub from: Option<String>,
    /// Filed before this day.
    pub to: Option<String>,
    /// One commune's.
    pub commune: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One group's figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = ReportStatsRow)]
pub struct StatsRow {
    /// The group's values, in the order of `by`.
    pub group: Vec<String>,
    /// Reports filed (duplicates merged count once).
    pub reports: u64,
    /// People who reported (duplicates included).
    pub supporters: u64,
    /// Still open.
    pub open: u64,
    /// Resolved.
    pub resolved: u64,
    /// Rejected.
    pub rejected: u64,
    /// Median hours from filing to resolution, of the resolved ones (none: none resolved).
    pub median_hours_to_resolve: Option<f64>,
    /// Mean hours from filing to resolution.
    pub mean_hours_to_resolve: Option<f64>,
}

/// The figures of a set of reports, grouped.
pub fn stats(reports: &[Report], by: &[&str], tz: chrono_tz::Tz) -> Result<Vec<StatsRow>, String> {
    for b in by {
        if !["category", "site", "commune", "month", "status"].contains(b) {
            return Err(format!("cannot group by {b:?}: category, site, commune, month or status"));
        }
    }
    let mut groups: BTreeMap<Vec<String>, Vec<&Report>> = BTreeMap::new();
    for r in reports {
        let key = by
            .iter()
            .map(|b| match *b {
                "category" => r.category.clone(),
                "site" => r.site.clone().unwrap_or_default(),
                "commune" => r.commune.clone(),
                "status" => r.status.as_str().to_owned(),
                _ => {
                    let d = r.created_at.to_datetime().with_timezone(&tz);
                    format!("{:04}-{:02}", d.year(), d.month())
                }
            })
            .collect();
        groups.entry(key).or_default().push(r);
    }
    Ok(groups
        .into_iter()
        .map(|(group, rs)| {
            let mut hours: Vec<f64> = rs
                .iter()
                .filter(|r| r.status == Status::Resolved)
                .filter_map(|r| {
                    Some((r.closed_at?.as_nanos() - r.created_at.as_nanos()) as f64 / 3.6e12)
                })
                .collect();
            hours.sort_by(f64::total_cmp);
            let median = match hours.len() {
                0 => None,
                n if n % 2 == 1 => Some(hours[n / 2]),
                n => Some((hours[n / 2 - 1] + hours[n / 2]) / 2.0),
            };
            let mean = (!hours.is_empty()).then(|| hours.iter().sum::<f64>() / hours.len() as f64);
            StatsRow {
                group,
                reports: rs.len() as u64,
                supporters: rs.iter().map(|r| r.supporters.max(0) as u64).sum(),
                open: rs.iter().filter(|r| r.status.is_open()).count() as u64,
                resolved: rs.iter().filter(|r| r.status == Status::Resolved).count() as u64,
                rejected: rs.iter().filter(|r| r.status == Status::Rejected).count() as u64,
                median_hours_to_resolve: median,
                mean_hours_to_resolve: mean,
            }
        })
        .collect())
}

fn day_start(d: &str, what: &str) -> ApiResult<Timestamp> {
    let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("{what} {d:?}: a day, YYYY-MM-DD")))?;
    let t = day
        .and_hms_opt(0, 0, 0)
        .and_then(|x| x.and_local_timezone(chrono_tz::Europe::Paris).earliest())
        .ok_or_else(|| ApiError::BadRequest(format!("{what} {d:?} is not a day in Paris")))?;
    let ns = t
        .timestamp_nanos_opt()
        .ok_or_else(|| ApiError::BadRequest(format!("{what} {d:?} is out of range")))?;
    Ok(Timestamp::from_nanos(ns))
}

/// The figures of reports.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportStats)]
pub struct StatsAnswer {
    /// What the rows are grouped by.
    pub by: Vec<String>,
    /// One row per group.
    pub rows: Vec<StatsRow>,
}

/// `GET /api/v1/reports/stats`: reports per category, place, commune or month, with the time
/// to resolution; JSON or CSV. Counts only: nothing personal.
#[utoipa::path(get, path = "/api/v1/reports/stats", tag = "reports", params(StatsQuery),
    responses((status = 200, body = StatsAnswer), (status = 400, response = BadRequest), Reads))]
pub(crate) async fn report_stats(
    Scoped(s): Scoped,
    who: Option<Extension<Principal>>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    off(&s)?;
    let by: Vec<&str> = q.by.as_deref().unwrap_or("category").split(',').map(str::trim).collect();
    // A commune's people count their commune's reports; the public and the Métropole, any.
    let commune = match who.as_ref().and_then(|w| w.grant.commune()) {
        Some(c) => Some(c.as_str().to_owned()),
        None => q.commune.clone(),
    };
    let list = s
        .reports
        .store
        .list(&Filter {
            commune,
            since: q.from.as_deref().map(|d| day_start(d, "from")).transpose()?,
            until: q.to.as_deref().map(|d| day_start(d, "to")).transpose()?,
            ..Filter::default()
        })
        .await?;
    let rows = stats(&list, &by, chrono_tz::Europe::Paris).map_err(ApiError::BadRequest)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(StatsAnswer { by: by.iter().map(|b| (*b).to_owned()).collect(), rows })
            .into_response()),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut head: Vec<String> = by.iter().map(|b| (*b).to_owned()).collect();
            head.extend(
                [
                    "reports",
                    "supporters",
                    "open",
                    "resolved",
                    "rejected",
                    "median_hours_to_resolve",
                    "mean_hours_to_resolve",
                ]
                .map(String::from),
            );
            let fail =
                |e: csv::Error| ApiError::Internal(agora_store::Error::Internal(e.to_string()));
            w.write_record(&head).map_err(fail)?;
            let opt = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_default();
            for r in &rows {
                let mut rec = r.group.clone();
                rec.extend([
                    r.reports.to_string(),
                    r.supporters.to_string(),
                    r.open.to_string(),
                    r.resolved.to_string(),
                    r.rejected.to_string(),
                    opt(r.median_hours_to_resolve),
                    opt(r.mean_hours_to_resolve),
                ]);
                w.write_record(&rec).map_err(fail)?;
            }
            let body = w.into_inner().map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
        }
        f => Err(ApiError::BadRequest(format!("unknown format {f:?}: json or csv"))),
    }
}

/// The records of an open dataset of reports: one per report of the dataset's commune or place,
/// oldest first — its number, category, place, a position rounded to about 100 m, its state,
/// dates, time to closing and supporters; never its text or anyone's address.
pub(crate) async fn open_data_rows(
    s: &AppState,
    d: &agora_store::opendata::Dataset,
) -> ApiResult<Vec<agora_opendata::odsql::Row>> {
    use agora_opendata::odsql::V;
    let mut list =
        s.reports.store.list(&Filter { commune: d.commune.clone(), ..Filter::default() }).await?;
    list.reverse();
    let sites = s.catalog.sites();
    let communes = s.catalog.communes();
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut rows = Vec::new();
    for r in list {
        if d.site.as_ref().is_some_and(|x| r.site.as_ref() != Some(x)) {
            continue;
        }
        let c = s.reports.settings.category(&r.category);
        let site = r.site.as_ref().and_then(|id| sites.iter().find(|x| x.id.as_str() == id));
        let commune_name = communes
            .iter()
            .find(|x| x.insee.as_str() == r.commune)
            .map_or(V::Null, |x| V::text(x.name.clone()));
        let hours = r.closed_at.map(|c| {
            ((c.as_nanos() - r.created_at.as_nanos()) as f64 / 3.6e12 * 100.0).round() / 100.0
        });
        rows.push(vec![
            V::text(r.id.to_string()),
            V::text(r.category.clone()),
            V::text(c.map_or_else(|| r.category.clone(), |c| c.fr.clone())),
            site.map_or(V::Null, |x| V::text(x.id.as_str())),
            site.map_or(V::Null, |x| V::text(x.name.as_str())),
            V::text(r.commune.clone()),
            commune_name,
            V::Geo(round(r.lat), round(r.lon)),
            V::text(r.status.as_str()),
            V::Time(r.created_at.as_nanos()),
            r.closed_at.map_or(V::Null, |t| V::Time(t.as_nanos())),
            hours.map_or(V::Null, V::Num),
            V::Num(r.supporters as f64),
            V::text(r.channel.clone()),
        ]);
    }
    Ok(rows)
}

/// The operations of this module, for the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(form, file, follow, public_reports, tickets, ticket_detail, change, report_stats))]
pub(crate) struct Doc;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_degree_of_latitude_is_111_195_m_on_the_mean_sphere() {
        // 6,371,008.8 m × π / 180, and half of it.
        assert!((distance_m(43.0, 5.0, 44.0, 5.0) - 111_195.08).abs() < 0.01);
        assert!((distance_m(0.0, 0.0, 0.0, 0.5) - 55_597.54).abs() < 0.01);
        assert_eq!(distance_m(43.5, 5.4, 43.5, 5.4), 0.0);
    }

    #[test]
    fn the_form_key_must_be_this_servers_old_enough_and_not_too_old() {
        let k = FormKeys::new(b"a secret of the test");
        let check = |key: &str, now: i64| k.check(key, "192.0.2.7", now, 3, 7200);
        let key = k.issue(1000, "192.0.2.7");
        assert!(check(&key, 1002).unwrap_err().contains("wait at least 3 s"));
        assert!(check(&key, 1003).is_ok());
        assert!(check(&key, 1000 + 7200).is_ok());
        assert!(check(&key, 1000 + 7201).unwrap_err().contains("expired"));
        // Another issue time with this one's tag, a changed tag, another server's key, garbage.
        let forged = format!("900.{}", key.split_once('.').unwrap().1);
        assert!(check(&forged, 1010).unwrap_err().contains("not one"));
        let mut flipped = key.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(check(&String::from_utf8(flipped).unwrap(), 1010).is_err());
        assert!(check(&FormKeys::new(b"another").issue(1000, "192.0.2.7"), 1010).is_err());
        // Handed to another client.
        assert!(check(&k.issue(1000, "192.0.2.8"), 1010).is_err());
        for bad in ["", ".", "1000", "1000.zz", "x.00", "1000.00", "-9223372036854775808.00"] {
            assert!(check(bad, 1010).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Whatever is typed: an answer, never a panic; what is kept has no control character
        /// but line breaks, and the limits hold.
        #[test]
        fn any_text_is_kept_clean_or_refused(text in "\\PC{0,1200}|[\\x00-\\x1f<>&\"' a-z:/.]{0,300}") {
            let s = ReportSettings::default();
            match clean_text(&s, &text) {
                Ok(kept) => {
                    prop_assert!(kept.chars().count() <= s.max_description_chars);
                    prop_assert!(kept.chars().all(|c| !c.is_control() || c == '\n'));
                    prop_assert!(kept.to_lowercase().matches("http://").count() <= s.max_links);
                }
                Err(e) => prop_assert!(matches!(e, ApiError::BadRequest(_))),
            }
        }

        /// Any string as an address: accepted ones have one `@` and a dotted domain.
        #[test]
        fn any_address_is_checked(e in "\\PC{0,80}") {
            if let Ok(a) = check_email(&e) {
                let (_, domain) = a.split_once('@').unwrap();
                prop_assert!(domain.contains('.') && !domain.contains('@'));
                prop_assert!(!a.chars().any(char::is_whitespace));
            }
        }

        /// A window never lets more than its limit through within its span, and lets one through
        /// again once the oldest has left it.
        #[test]
        fn a_window_lets_at_most_its_limit_through(
            gaps in proptest::collection::vec(0i64..30_000_000_000, 1..80),
            limit in 1u32..10,
        ) {
            let mut w = Window::new(60, 100);
            let mut now = 0i64;
            let mut passed: Vec<i64> = Vec::new();
            for g in gaps {
                now += g;
                let in_window = passed.iter().filter(|t| now - **t < 60_000_000_000).count();
                let r = w.hit("client", now, limit);
                prop_assert_eq!(r.is_ok(), in_window < limit as usize);
                if r.is_ok() {
                    passed.push(now);
                }
            }
        }
    }
}
