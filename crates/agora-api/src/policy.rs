//! Who may call what. Every route of the API and of the dashboard has one entry in [`ROUTES`]:
//! the action it takes in the permission matrix (`agora_model::permissions`), or how it is opened
//! to the public. The [`guard`] layer authenticates the caller once (token or session), refuses a
//! role that does not take the route's action (403) and hands the handlers a [`Principal`]. A
//! route without an entry answers 500: a new route cannot be served before someone decides who
//! may call it, and the permission test enumerates the router to find it first.
//!
//! Tenancy is applied below the routes: a handler serving someone of a commune (or a business
//! department) works on the catalog through `agora_store::catalog::tenant::TenantView`, which
//! shows that commune's objects only and refuses changes outside it (see [`Scoped`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use agora_model::permissions::{Action, Grant};
use agora_model::{DeviceId, InseeCode};
use agora_store::catalog::tenant::TenantView;
use agora_store::catalog::{Person, TokenInfo};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiError;

/// Who is calling: a token or a person's session.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Role, commune, domain.
    pub grant: Grant,
    /// The token it authenticated with (the ingest pipeline checks its device binding and
    /// commune).
    pub token: Option<TokenInfo>,
    /// The person, for a session a person opened.
    pub person: Option<String>,
    /// As the audit trail and the logs name it: `token:ID (name)` or `person:ID`.
    pub actor: String,
    /// As people read it (who acknowledged an alert): the token's name, the person's name.
    pub name: String,
}

impl Principal {
    /// A token's.
    pub fn of_token(t: TokenInfo) -> Self {
        Self {
            grant: t.grant.clone(),
            actor: format!("token:{} ({})", t.id, t.name),
            name: t.name.clone(),
            token: Some(t),
            person: None,
        }
    }

    /// A person's.
    pub fn of_person(p: &Person) -> Self {
        Self {
            grant: p.grant.clone(),
            token: None,
            person: Some(p.id.clone()),
            // The identifier only: an erased person's name and email leave no trace in the trail.
            actor: format!("person:{}", p.id),
            // Their name and identifier, so that an erasure finds what they handled.
            name: handler_name(p),
        }
    }

    /// The device a device token is bound to.
    pub fn device(&self) -> Option<&DeviceId> {
        self.token.as_ref().and_then(|t| t.device.as_ref())
    }

    /// Refuse, naming the role and what it lacks, unless it may take `action` on an object of
    /// `commune` and `domain`.
    pub fn check(
        &self,
        action: Action,
        commune: Option<&InseeCode>,
        domain: Option<agora_model::permissions::Domain>,
    ) -> Result<(), ApiError> {
        if self.grant.may_on(action, commune, domain) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "a {} of {} may not {action} this{}",
            self.grant.role(),
            self.grant.tenant_name(),
            domain.map(|d| format!(" ({d} equipment)")).unwrap_or_default()
        )))
    }
}

/// How alerts name a person who handled them: name and identifier (unique, and found again at
/// the person's erasure).
pub fn handler_name(p: &Person) -> String {
    format!("{} (person:{})", p.name, p.id)
}

/// How a route is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// By anyone: probes, the API document, metrics, the login form, static files.
    Open,
    /// By anyone when the deployment publishes its data (`public_read`), else `view`.
    Read,
    /// By anyone when the public map is on (what citizens read), else `view`.
    Public,
    /// A dashboard page: it sends who is not logged in to the login form itself.
    Page,
    /// ThingsBoard's device API (`/api/v1/{token}/…`, to ingest) and InfluxQL's `/query` (to
    /// view): the handler reads the credentials where that protocol puts them and checks this
    /// action.
    OwnAuth(Action),
    /// Someone whose role takes this action.
    Needs(Action),
    /// Someone of the Métropole itself (not of one commune) whose role takes this action: what
    /// spans every commune at once (backups, the audit trail, the register of personal data).
    Metropole(Action),
}

use Access::{Metropole, Needs, Open, OwnAuth, Page, Public, Read};

/// Every route, by method and route template (as the router matches it), and how it is reached.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Open),
    ("GET", "/readyz", Open),
    ("GET", "/metrics", Open),
    ("GET", "/api/v1/openapi.json", Open),
    ("GET", "/ping", Open),
    ("GET", "/health", Open),
    ("GET", "/api/v2/ready", Open),
    ("GET", "/ready", Open),
    ("GET", "/query", OwnAuth(Action::View)),
    ("POST", "/query", OwnAuth(Action::View)),
    ("POST", "/write", Needs(Action::Ingest)),
    ("POST", "/api/v2/write", Needs(Action::Ingest)),
    ("POST", "/api/v1/observations", Needs(Action::Ingest)),
    ("GET", "/api/v1/observations", Read),
    ("POST", "/api/v1/senml", Needs(Action::Ingest)),
    ("POST", "/api/v1/push/sensor-community", Needs(Action::Ingest)),
    ("POST", "/api/v1/import/csv", Needs(Action::Ingest)),
    ("POST", "/api/v1/{token}/telemetry", OwnAuth(Action::Ingest)),
    ("POST", "/api/v1/{token}/attributes", OwnAuth(Action::Ingest)),
    ("GET", "/api/v1/{token}/attributes", OwnAuth(Action::Ingest)),
    ("GET", "/api/v1/{token}/attributes/updates", OwnAuth(Action::Ingest)),
    ("GET", "/api/v1/{token}/rpc", OwnAuth(Action::Ingest)),
    ("POST", "/api/v1/{token}/rpc", OwnAuth(Action::Ingest)),
    ("POST", "/api/v1/{token}/rpc/{id}", OwnAuth(Action::Ingest)),
    ("GET", "/api/v1/communes", Read),
    ("POST", "/api/v1/communes", Metropole(Action::Modify)),
    ("GET", "/api/v1/sites", Read),
    ("POST", "/api/v1/sites", Needs(Action::Modify)),
    ("GET", "/api/v1/devices", Read),
    ("POST", "/api/v1/devices", Needs(Action::Modify)),
    ("GET", "/api/v1/devices/{id}", Read),
    // A device's internals (serial numbers, settings): never public.
    ("GET", "/api/v1/devices/{id}/attributes", Needs(Action::View)),
    ("POST", "/api/v1/devices/{id}/attributes", Needs(Action::Command)),
    ("POST", "/api/v1/devices/{id}/rpc", Needs(Action::Command)),
    ("GET", "/api/v1/series", Read),
    ("GET", "/api/v1/properties", Read),
    ("GET", "/api/v1/aggregate", Read),
    ("GET", "/api/v1/latest", Read),
    ("GET", "/api/v1/stats", Read),
    // The handler answers 404 when the public map is off.
    ("GET", "/api/v1/public/map", Open),
    ("GET", "/api/v1/indicators/eaqi", Public),
    ("GET", "/api/v1/indicators/atmo", Public),
    ("GET", "/api/v1/indicators/air-statistics", Public),
    ("GET", "/api/v1/indicators/noise", Public),
    ("GET", "/api/v1/indicators/heat", Public),
    ("GET", "/api/v1/indicators/heat-map", Public),
    ("GET", "/api/v1/indicators/heat-island", Public),
    ("GET", "/api/v1/indicators/noise/ranking", Public),
    ("GET", "/api/v1/commerce/compare", Public),
    ("GET", "/api/v1/commerce/impact", Public),
    ("GET", "/api/v1/commerce/footfall", Public),
    ("GET", "/api/v1/commerce/profile", Public),
    ("GET", "/api/v1/commerce/ranking", Public),
    ("GET", "/api/v1/commerce/index", Public),
    ("GET", "/api/v1/commerce/counters", Needs(Action::View)),
    ("GET", "/api/v1/commerce/events", Public),
    ("POST", "/api/v1/commerce/events", Needs(Action::Modify)),
    ("DELETE", "/api/v1/commerce/events/{id}", Needs(Action::Modify)),
    ("GET", "/api/v1/commerce/interventions", Public),
    ("POST", "/api/v1/commerce/interventions", Needs(Action::Modify)),
    ("DELETE", "/api/v1/commerce/interventions/{id}", Needs(Action::Modify)),
    ("GET", "/api/v1/commerce/interventions/{id}/study", Public),
    ("GET", "/api/v1/commerce/school-holidays", Public),
    ("PUT", "/api/v1/commerce/school-holidays", Metropole(Action::Modify)),
    ("DELETE", "/api/v1/commerce/school-holidays", Metropole(Action::Modify)),
    ("GET", "/api/v1/map", Read),
    ("GET", "/api/v1/chart", Public),
    ("GET", "/api/v1/open-data/datasets", Needs(Action::View)),
    ("POST", "/api/v1/open-data/datasets", Needs(Action::Publish)),
    ("GET", "/api/v1/open-data/datasets/{id}", Needs(Action::View)),
    ("PUT", "/api/v1/open-data/datasets/{id}", Needs(Action::Publish)),
    ("DELETE", "/api/v1/open-data/datasets/{id}", Needs(Action::Publish)),
    ("GET", "/api/v1/open-data/dcat", Open),
    ("GET", "/api/v1/open-data/dcat.ttl", Open),
    ("GET", "/api/v1/open-data/dcat.jsonld", Open),
    ("GET", "/api/v1/open-data/dcat.rdf", Open),
    // Open data: only what is published is there, for anyone.
    // NGSI-LD: what the catalogue endpoints show, to whom they show it; the contexts to anyone.
    ("GET", "/ngsi-ld/v1/entities", Read),
    ("GET", "/ngsi-ld/v1/entities/", Read),
    ("GET", "/ngsi-ld/v1/entities/{id}", Read),
    ("POST", "/ngsi-ld/v1/entities", Needs(Action::Ingest)),
    ("POST", "/ngsi-ld/v1/entities/", Needs(Action::Ingest)),
    ("PATCH", "/ngsi-ld/v1/entities/{id}/attrs", Needs(Action::Ingest)),
    ("POST", "/ngsi-ld/v1/entityOperations/upsert", Needs(Action::Ingest)),
    ("POST", "/ngsi-ld/v1/entityOperations/upsert/", Needs(Action::Ingest)),
    ("GET", "/ngsi-ld/v1/jsonldContexts/{file}", Open),
    ("GET", "/ngsi-ld/v1/subscriptions", Needs(Action::View)),
    ("POST", "/ngsi-ld/v1/subscriptions", Needs(Action::Modify)),
    ("POST", "/ngsi-ld/v1/subscriptions/", Needs(Action::Modify)),
    ("GET", "/ngsi-ld/v1/subscriptions/{id}", Needs(Action::View)),
    ("PATCH", "/ngsi-ld/v1/subscriptions/{id}", Needs(Action::Modify)),
    ("DELETE", "/ngsi-ld/v1/subscriptions/{id}", Needs(Action::Delete)),
    ("GET", "/ngsi-ld/v1/temporal/entities", Read),
    ("GET", "/ngsi-ld/v1/temporal/entities/", Read),
    ("GET", "/ngsi-ld/v1/temporal/entities/{id}", Read),
    // OGC SensorThings API: what the catalogue endpoints show, to whom they show it.
    ("GET", "/v1.1", Read),
    ("GET", "/v1.1/", Read),
    ("GET", "/v1.1/{*path}", Read),
    ("POST", "/v1.1/{*path}", Needs(Action::Ingest)),
    ("GET", "/api/explore/v2.1/catalog/datasets", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}/records", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}/records/{record_id}", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}/facets", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports", Open),
    ("GET", "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports/{format}", Open),
    ("GET", "/api/v1/forecast", Public),
    ("GET", "/api/v1/forecast/tomorrow", Public),
    ("GET", "/api/v1/forecast/place", Public),
    ("GET", "/api/v1/forecast/models", Read),
    ("GET", "/api/v1/wellbeing", Read),
    ("GET", "/api/v1/wellbeing/history", Read),
    ("GET", "/api/v1/wellbeing/sensitivity", Read),
    ("GET", "/api/v1/wellbeing/definition", Read),
    ("PUT", "/api/v1/wellbeing/definition", Metropole(Action::Modify)),
    ("GET", "/api/v1/wellbeing/surveys", Read),
    ("POST", "/api/v1/wellbeing/surveys", Needs(Action::Modify)),
    ("GET", "/api/v1/proximity/{commune}", Read),
    ("GET", "/api/v1/proximity/{commune}/squares", Read),
    ("GET", "/api/v1/proximity/{commune}/facilities", Read),
    ("GET", "/api/v1/proximity/{commune}/gaps", Read),
    ("GET", "/api/v1/proximity/{commune}/isochrone", Read),
    ("GET", "/api/v1/proximity/{commune}/what-if", Read),
    ("PUT", "/api/v1/proximity/{commune}/network", Needs(Action::Modify)),
    ("PUT", "/api/v1/proximity/{commune}/facilities/{dataset}", Needs(Action::Modify)),
    ("PUT", "/api/v1/proximity/{commune}/population", Needs(Action::Modify)),
    ("PUT", "/api/v1/proximity/{commune}/areas", Needs(Action::Modify)),
    // Citizens file and follow reports without an account (the handlers answer 404 when
    // reports are off; the form's key, the honeypot and the per-client limits guard the post).
    ("GET", "/api/v1/reports/form", Open),
    ("POST", "/api/v1/reports", Open),
    ("GET", "/api/v1/reports/follow/{key}", Open),
    ("GET", "/api/v1/public/reports", Public),
    ("GET", "/api/v1/reports/stats", Read),
    ("GET", "/api/v1/reports", Needs(Action::View)),
    ("GET", "/api/v1/reports/{id}", Needs(Action::View)),
    ("POST", "/api/v1/reports/{id}/status", Needs(Action::Modify)),
    ("GET", "/api/v1/visitors/pois", Public),
    ("POST", "/api/v1/visitors/pois", Needs(Action::Modify)),
    ("PUT", "/api/v1/visitors/pois/{id}", Needs(Action::Modify)),
    ("DELETE", "/api/v1/visitors/pois/{id}", Needs(Action::Delete)),
    ("GET", "/api/v1/visitors/tours", Public),
    ("GET", "/api/v1/visitors/tours/{id}", Public),
    ("PUT", "/api/v1/visitors/tours/{id}", Needs(Action::Modify)),
    ("DELETE", "/api/v1/visitors/tours/{id}", Needs(Action::Delete)),
    ("GET", "/api/v1/visitors/tours/{id}/qr", Public),
    ("GET", "/api/v1/visitors/cool-route", Public),
    ("GET", "/api/v1/lighting", Read),
    ("GET", "/api/v1/lighting/maintenance", Read),
    ("GET", "/api/v1/lighting/sun", Read),
    ("GET", "/api/v1/lighting/scenario", Read),
    ("GET", "/api/v1/bins", Read),
    ("GET", "/api/v1/bins/round", Read),
    ("GET", "/api/v1/irrigation", Read),
    ("GET", "/api/v1/lighting/schedules", Needs(Action::View)),
    ("POST", "/api/v1/lighting/schedules", Needs(Action::Command)),
    ("GET", "/api/v1/irrigation/schedules", Needs(Action::View)),
    ("POST", "/api/v1/irrigation/schedules", Needs(Action::Command)),
    ("PATCH", "/api/v1/schedules/{id}", Needs(Action::Command)),
    ("DELETE", "/api/v1/schedules/{id}", Needs(Action::Command)),
    ("GET", "/api/v1/anomalies", Read),
    ("GET", "/api/v1/fleet", Read),
    ("GET", "/api/v1/live", Public),
    ("GET", "/api/v1/rules", Read),
    ("POST", "/api/v1/rules", Needs(Action::Modify)),
    ("GET", "/api/v1/rules/templates", Read),
    ("GET", "/api/v1/rules/{id}", Read),
    ("PUT", "/api/v1/rules/{id}", Needs(Action::Modify)),
    ("DELETE", "/api/v1/rules/{id}", Needs(Action::Delete)),
    ("GET", "/api/v1/alerts", Read),
    ("GET", "/api/v1/alerts/{id}", Needs(Action::View)),
    ("POST", "/api/v1/alerts/{id}/acknowledge", Needs(Action::Modify)),
    ("POST", "/api/v1/alerts/{id}/resolve", Needs(Action::Modify)),
    ("GET", "/api/v1/deliveries", Metropole(Action::View)),
    ("GET", "/api/v1/rejects", Needs(Action::Modify)),
    ("POST", "/api/v1/rejects/replay", Needs(Action::Modify)),
    ("GET", "/api/v1/backups", Metropole(Action::ManagePeople)),
    ("POST", "/api/v1/backups", Metropole(Action::ManagePeople)),
    ("GET", "/api/v1/privacy/register", Metropole(Action::ManagePeople)),
    ("GET", "/api/v1/audit", Metropole(Action::ManagePeople)),
    ("GET", "/api/v1/audit/verify", Metropole(Action::ManagePeople)),
    ("GET", "/api/v1/tokens", Needs(Action::ManagePeople)),
    ("POST", "/api/v1/tokens", Needs(Action::ManagePeople)),
    ("DELETE", "/api/v1/tokens/{id}", Needs(Action::ManagePeople)),
    ("GET", "/api/v1/people", Needs(Action::ManagePeople)),
    ("POST", "/api/v1/people", Needs(Action::ManagePeople)),
    ("GET", "/api/v1/people/{id}", Needs(Action::ManagePeople)),
    ("PATCH", "/api/v1/people/{id}", Needs(Action::ManagePeople)),
    ("DELETE", "/api/v1/people/{id}", Needs(Action::ManagePeople)),
    ("POST", "/api/v1/people/{id}/password", Needs(Action::ManagePeople)),
    ("POST", "/api/v1/people/{id}/logout", Needs(Action::ManagePeople)),
    ("GET", "/api/v1/people/{id}/export", Needs(Action::ManagePeople)),
    ("GET", "/api/v1/me", Needs(Action::View)),
    // The dashboard.
    ("GET", "/", Page),
    ("GET", "/places/{site}", Page),
    ("GET", "/communes/{insee}", Page),
    ("GET", "/kiosk/{site}", Page),
    ("GET", "/kiosk/{site}/signaler", Page),
    ("GET", "/signaler", Page),
    ("GET", "/visiter", Page),
    ("GET", "/visiter/parcours/{id}", Page),
    ("GET", "/kiosk/{site}/visiter", Page),
    ("GET", "/signalements/suivi/{key}", Page),
    ("GET", "/signalements", Page),
    ("GET", "/commerce", Page),
    ("GET", "/open-data", Page),
    ("GET", "/open-data/api", Page),
    ("GET", "/open-data/datasets/{id}", Page),
    ("GET", "/docs", Open),
    ("GET", "/login", Open),
    ("POST", "/login", Open),
    ("POST", "/logout", Open),
    ("GET", "/login/oidc", Open),
    ("GET", "/login/oidc/callback", Open),
    ("GET", "/supervision", Page),
    ("GET", "/supervision/fleet", Page),
    ("GET", "/supervision/forecasts", Page),
    ("GET", "/decideurs", Page),
    ("GET", "/decideurs/fiche", Page),
    ("GET", "/services/lighting", Page),
    ("GET", "/services/cleanliness", Page),
    ("GET", "/services/green-spaces", Page),
    ("GET", "/supervision/devices/{id}", Page),
    ("GET", "/explorer", Page),
    ("GET", "/alerts", Page),
    ("GET", "/admin", Page),
    ("GET", "/assets/{*path}", Open),
];

static TABLE: LazyLock<HashMap<(&'static str, &'static str), Access>> =
    LazyLock::new(|| ROUTES.iter().map(|&(m, r, a)| ((m, r), a)).collect());

/// How `method` on `route` (a route template) is reached; `None`: a route nobody decided for.
pub fn access(method: &Method, route: &str) -> Option<Access> {
    let m = if method == Method::HEAD { "GET" } else { method.as_str() };
    TABLE.get(&(m, route)).copied()
}

/// The layer applying [`ROUTES`]. Runs after routing (it needs the route template).
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(route) = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()) else {
        return next.run(req).await;
    };
    let Some(access) = access(req.method(), &route) else {
        // A method the route does not serve: the router answers 405 itself.
        if ROUTES.iter().any(|(_, r, _)| *r == route) {
            return next.run(req).await;
        }
        tracing::error!(method = %req.method(), %route, "route without an access rule: refused");
        return ApiError::NoAccessRule(format!(
            "{} {route} has no access rule (crates/agora-api/src/policy.rs)",
            req.method()
        ))
        .into_response();
    };
    let p = crate::rate_limit::query_p(req.uri().query()).map(str::to_owned);
    let who = crate::auth::authenticate(&state, req.headers(), p.as_deref());
    let needed = match access {
        Open | OwnAuth(_) | Page => None,
        Read if state.config.public_read => None,
        Public if state.config.public_map => None,
        Read | Public => Some(Action::View),
        Needs(a) | Metropole(a) => Some(a),
    };
    let who = match (who, needed) {
        (Ok(w), _) => w,
        (Err(e), Some(_)) => return e.into_response(),
        // Where the public may come, a wrong credential is a member of the public.
        (Err(_), None) => None,
    };
    if let Some(action) = needed {
        let Some(w) = &who else {
            return ApiError::Unauthorized(
                "missing credentials: send Authorization: Bearer <token>, or log in".into(),
            )
            .into_response();
        };
        if !w.grant.may(action) {
            return ApiError::Forbidden(format!(
                "a {} may not {action}: {} {route} needs it",
                w.grant.role(),
                req.method()
            ))
            .into_response();
        }
        if matches!(access, Metropole(_)) && !w.grant.sees_all() {
            return ApiError::Forbidden(format!(
                "{} {route} spans every commune: it is for the Métropole's people, not {}'s",
                req.method(),
                w.grant.tenant_name()
            ))
            .into_response();
        }
    }
    if let Some(w) = who {
        req.extensions_mut().insert(w);
    }
    next.run(req).await
}

/// The caller, who must be authenticated (routes of [`Access::Needs`]).
#[derive(Debug, Clone)]
pub struct Who(pub Principal);

impl FromRequestParts<AppState> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Who)
            .ok_or_else(|| ApiError::Unauthorized("missing credentials".into()))
    }
}

/// The caller if any (routes the public may reach).
#[derive(Debug, Clone)]
pub struct MaybeWho(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeWho {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(MaybeWho(parts.extensions.get::<Principal>().cloned()))
    }
}

/// The application's state as the caller may see it: for someone of a commune (or a business
/// department), the catalog is their [`TenantView`]; for the Métropole and the public, the
/// whole catalog (the public reaches only what is published, route by route).
#[derive(Debug, Clone)]
pub struct Scoped(pub AppState);

impl FromRequestParts<AppState> for Scoped {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Scoped(scoped(state, parts.extensions.get::<Principal>())))
    }
}

/// `state` as `who` sees it.
pub fn scoped(state: &AppState, who: Option<&Principal>) -> AppState {
    match who {
        Some(p) if TenantView::needed(&p.grant) => {
            let mut s = state.clone();
            s.catalog = Arc::new(TenantView::new(state.catalog.clone(), p.grant.clone()));
            s
        }
        _ => state.clone(),
    }
}
