//! The dashboard of agora, served by the binary itself: the public map and place pages for
//! citizens, the kiosk mode for street furniture, and, after login, the operator's supervision
//! map, fleet health, device pages, data explorer and alerts area.
//!
//! Pages are small HTML shells rendered here in French or English; scripts fill them from the
//! JSON API (`/api/v1/public/map`, `/api/v1/chart`, `/api/v1/live`, …). Nothing is fetched from
//! outside the server but the map tiles, and only when a tile URL is configured.

mod assets;
mod docs;
mod i18n;
mod pages;
mod portal;

use agora_api::AppState;
use axum::Router;
use axum::routing::{get, post};
use serde::Deserialize;

pub use assets::get as asset;

/// Dashboard settings (`[web]` in `agora.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the public map, place pages and kiosk pages without login.
    pub public_map: bool,
    /// Base-map tiles, e.g. `https://tile.openstreetmap.org/{z}/{x}/{y}.png` (`AGORA_TILE_URL`).
    /// Absent: a plain background with the communes, places and devices — nothing leaves the
    /// server.
    pub tile_url: Option<String>,
    /// Attribution shown with the tiles.
    pub tile_attribution: String,
    /// Seconds each figure stays on a kiosk screen.
    pub kiosk_rotate_secs: u32,
    /// The name shown in the header, e.g. `Aix-en-Provence`.
    pub city: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_map: true,
            tile_url: None,
            tile_attribution: "© OpenStreetMap contributors".into(),
            kiosk_rotate_secs: 10,
            city: String::new(),
        }
    }
}

/// The dashboard's routes, to serve beside the API (`agora_api::router_with`).
pub fn router(cfg: WebConfig) -> Router<AppState> {
    let cfg = std::sync::Arc::new(cfg);
    Router::new()
        .route("/", get(pages::public_map))
        .route("/places/{site}", get(pages::place))
        .route("/communes/{insee}", get(pages::commune))
        .route("/kiosk/{site}", get(pages::kiosk))
        .route("/kiosk/{site}/signaler", get(pages::kiosk_report))
        .route("/signaler", get(pages::report_form))
        .route("/visiter", get(pages::visit))
        .route("/visiter/parcours/{id}", get(pages::visit_tour))
        .route("/kiosk/{site}/visiter", get(pages::kiosk_visit))
        .route("/signalements/suivi/{key}", get(pages::report_follow))
        .route("/signalements", get(pages::tickets))
        .route("/commerce", get(pages::commerce))
        .route("/open-data", get(portal::catalogue))
        .route("/open-data/api", get(portal::api_guide))
        .route("/docs", get(docs::guide))
        .route("/open-data/datasets/{id}", get(portal::dataset))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        // Single sign-on: off to the city's provider, and back.
        .route("/login/oidc", get(agora_api::oidc::begin))
        .route("/login/oidc/callback", get(agora_api::oidc::callback))
        .route("/supervision", get(pages::supervision))
        .route("/supervision/fleet", get(pages::fleet))
        .route("/supervision/forecasts", get(pages::forecasts))
        .route("/decideurs", get(pages::decisions))
        .route("/decideurs/fiche", get(pages::decisions_summary))
        .route("/services/lighting", get(pages::lighting))
        .route("/services/cleanliness", get(pages::cleanliness))
        .route("/services/green-spaces", get(pages::green_spaces))
        .route("/supervision/devices/{id}", get(pages::device))
        .route("/explorer", get(pages::explorer))
        .route("/alerts", get(pages::alerts))
        .route("/admin", get(pages::admin))
        .route("/assets/{*path}", get(assets::serve))
        .layer(axum::Extension(cfg))
}
