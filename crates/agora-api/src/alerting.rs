//! Alert rules and alerts over HTTP: `/api/v1/rules` (read for everyone with read rights,
//! changes for admins), `/api/v1/alerts` with its filters, acknowledge and resolve (operators
//! with read rights: taking an alert in hand is their job), and the action delivery log. Rules
//! and deliveries come out of `agora_alerts` with their secrets already masked (write-only).

use agora_alerts::rule::{Action, Condition, Schedule, Scope as RuleScope, Severity, Span};
use agora_alerts::{Alerts, InvalidRule, Rule, RuleView};
use agora_query::parse_time;
use agora_store::alerts::{AlertFilter, AlertRecord, AlertState, Delivery};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use agora_model::InseeCode;
use agora_model::permissions::{Action as PAction, Domain};
use axum::extract::State;

use crate::AppState;
use crate::doc::{BadRequest, Conflict, NotFound, Unavailable, Unprocessable};
use crate::doc::{Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::policy::{MaybeWho, Principal, Scoped, Who};

/// The commune and domain a rule acts on: its scope's commune, device or site (a rule of a kind
/// alone is the Métropole's), and the domain of its kind or device.
fn rule_target(full: &AppState, sc: &RuleScope) -> (Option<InseeCode>, Option<Domain>) {
    let dev = sc.device.as_deref().and_then(|d| full.catalog.device(d));
    let commune = sc
        .commune
        .as_deref()
        .and_then(|c| InseeCode::parse(c).ok())
        .or_else(|| dev.as_ref().and_then(|d| d.commune.clone()))
        .or_else(|| {
            let site = sc.site.as_deref()?;
            full.catalog.sites().into_iter().find(|x| x.id.as_str() == site).map(|x| x.commune)
        });
    let domain = sc
        .kind
        .as_deref()
        .and_then(Domain::of_kind)
        .or_else(|| dev.and_then(|d| Domain::of_kind(d.kind.as_str())));
    (commune, domain)
}

/// The commune and domain of an alert: its own commune, else its device's.
fn alert_target(full: &AppState, a: &AlertRecord) -> (Option<InseeCode>, Option<Domain>) {
    let dev = a.device.as_deref().and_then(|d| full.catalog.device(d));
    let commune = a
        .commune
        .as_deref()
        .and_then(|c| InseeCode::parse(c).ok())
        .or_else(|| dev.as_ref().and_then(|d| d.commune.clone()));
    (commune, dev.and_then(|d| Domain::of_kind(d.kind.as_str())))
}

/// Whether someone (`None`: the public, where alerts are public) sees what is in `commune`:
/// the Métropole's people everything, a commune's people their commune's.
fn sees(who: Option<&Principal>, commune: Option<&InseeCode>) -> bool {
    who.is_none_or(|w| w.grant.sees_all() || (commune.is_some() && commune == w.grant.commune()))
}

/// A rule as `who` may see it, else 404.
fn visible_rule(full: &AppState, who: Option<&Principal>, r: RuleView) -> ApiResult<RuleView> {
    let (commune, _) = rule_target(full, &r.rule.scope);
    // The Métropole's own rules (every device of a kind) are read by all.
    if commune.is_none() || sees(who, commune.as_ref()) {
        return Ok(r);
    }
    Err(ApiError::NotFound(format!("rule {:?} not found", r.rule.id)))
}

/// Refuse a rule change `who` may not make; a rule of a commune's person over every device of a
/// kind is made their commune's.
fn check_rule(full: &AppState, who: &Principal, rule: &mut Rule, action: PAction) -> ApiResult<()> {
    let sc = &mut rule.scope;
    if let Some(own) = who.grant.commune()
        && sc.device.is_none()
        && sc.site.is_none()
        && sc.commune.is_none()
    {
        sc.commune = Some(own.to_string());
    }
    let (commune, domain) = rule_target(full, &rule.scope);
    who.check(action, commune.as_ref(), domain)?;
    check_actions(full, who, rule, commune.as_ref(), domain)
}

/// A rule that stands (to change or delete it): the caller must be allowed on it as it is — the
/// Métropole's own rules (every device of a kind) are changed by the Métropole only.
fn check_existing(full: &AppState, who: &Principal, rule: &Rule, action: PAction) -> ApiResult<()> {
    let (commune, domain) = rule_target(full, &rule.scope);
    who.check(action, commune.as_ref(), domain)
}

/// Commands a rule sends are commands of its maker: an `rpc` action's device and an `mqtt`
/// action's topic must be equipment they may command. Someone who does not see every commune
/// (or a department) publishes only to `agora/commands/{device}` of such equipment.
fn check_actions(
    full: &AppState,
    who: &Principal,
    rule: &Rule,
    commune: Option<&InseeCode>,
    domain: Option<Domain>,
) -> ApiResult<()> {
    let free = who.grant.sees_all() && who.grant.domain().is_none();
    let command_on = |device: &str| -> ApiResult<()> {
        if device.is_empty() || device.contains('{') {
            // The alert's own device: one of the rule's scope.
            return who.check(PAction::Command, commune, domain);
        }
        let Some(d) = full.catalog.device(device) else {
            // The Métropole commands any device, one registered later too; others only what
            // they can be shown to command.
            if free {
                return Ok(());
            }
            return Err(ApiError::InvalidRule(format!(
                "an action names device {device:?}, which is unknown"
            )));
        };
        who.check(PAction::Command, d.commune.as_ref(), Domain::of_kind(d.kind.as_str()))
    };
    for a in &rule.actions {
        match a {
            Action::Rpc { device, .. } => command_on(device.as_deref().unwrap_or(""))?,
            Action::Mqtt { topic, .. } if !free => {
                let device = topic.strip_prefix("agora/commands/").map(|r| r.split('/').next());
                match device {
                    Some(Some(d)) if !d.contains(['+', '#']) => command_on(d)?,
                    _ => {
                        return Err(ApiError::Forbidden(format!(
                            "a {} of {} publishes only to agora/commands/{{device}} of equipment \
                             they command, not to {topic:?}",
                            who.grant.role(),
                            who.grant.tenant_name()
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `who` may change or delete the stored rule `id` (nothing stored: nothing to check).
/// A rule that no longer loads is the Métropole's to mend.
fn stored_rule_allowed(
    full: &AppState,
    who: &Principal,
    id: &str,
    action: PAction,
) -> ApiResult<()> {
    let alerts = service(full)?;
    if let Some(old) = alerts.rule(id) {
        let old = visible_rule(full, Some(who), old)?.rule;
        return check_existing(full, who, &old, action);
    }
    if alerts.invalid_rules().iter().any(|r| r.id == id) && !who.grant.sees_all() {
        return Err(ApiError::NotFound(format!("rule {id:?} not found")));
    }
    Ok(())
}

/// An alert `who` may see, else 404; and, to change it, may take `action` on it.
async fn alert_for(
    full: &AppState,
    who: Option<&Principal>,
    id: i64,
    action: Option<PAction>,
) -> ApiResult<()> {
    if who.is_none_or(|w| w.grant.sees_all() && w.grant.domain().is_none()) {
        return Ok(());
    }
    let (alert, _) = service(full)?.alert(id).await?;
    let (commune, domain) = alert_target(full, &alert);
    if !sees(who, commune.as_ref()) {
        return Err(ApiError::NotFound(format!("alert {id} not found")));
    }
    match (who, action) {
        (Some(w), Some(a)) => w.check(a, commune.as_ref(), domain),
        _ => Ok(()),
    }
}

fn service(s: &AppState) -> ApiResult<&Alerts> {
    s.alerts
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("alerting is not enabled on this server".into()))
}

/// A rule from a request body: a whole rule, or `{"template": ID, …fields to change}`.
fn rule_of(alerts: &Alerts, v: JsonValue) -> ApiResult<Rule> {
    if let Some(t) = v.get("template").and_then(JsonValue::as_str) {
        return Ok(alerts.from_template(t, v.clone())?);
    }
    serde_json::from_value(v).map_err(|e| ApiError::InvalidRule(format!("invalid rule: {e}")))
}

/// A rule made from a built-in template (`GET /api/v1/rules/templates`): the template's
/// identifier, and the fields that replace the template's own (as in a rule).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
// Only its schema is used: `rule_of` reads the body as JSON, as `Alerts::from_template` takes it.
#[allow(dead_code)]
pub(crate) struct FromTemplate {
    /// The template's identifier, e.g. `bin-full`.
    template: String,
    /// The new rule's identifier (default: the template's): lower-case letters, digits, `-` and
    /// `_`.
    #[schema(nullable = false)]
    id: Option<String>,
    /// For people (default: the template's).
    #[schema(nullable = false)]
    name: Option<String>,
    /// Severity of its alerts (default: the template's).
    #[schema(nullable = false)]
    severity: Option<Severity>,
    /// Whether it is evaluated (default: true, although templates themselves are disabled).
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Which devices (default: every device).
    #[schema(nullable = false)]
    scope: Option<RuleScope>,
    /// When it is wrong (default: the template's).
    #[schema(nullable = false)]
    condition: Option<Condition>,
    /// When it applies (default: the template's; null: always).
    schedule: Option<Schedule>,
    /// Margin beyond the limit before a threshold condition clears (default: the template's).
    #[schema(nullable = false)]
    hysteresis: Option<f64>,
    /// How long the condition must hold before the alert opens (default: the template's; null:
    /// at once).
    min_duration: Option<Span>,
    /// What to do (default: nothing).
    #[schema(nullable = false)]
    actions: Option<Vec<Action>>,
}

/// A rule to make: a whole rule, or a built-in template's identifier with the fields to change.
/// A body with a `template` string is always read as the latter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
// Only its schema is used (see `FromTemplate`).
#[allow(dead_code)]
pub(crate) enum NewRule {
    /// A whole rule.
    Rule(Rule),
    /// A rule from a template.
    FromTemplate(FromTemplate),
}

/// The body of `PUT /api/v1/rules/{id}`: as `POST /api/v1/rules` takes it, except that the
/// identifier may be left out (it is the path's), and that `origin` and `updated_at`, which `GET`
/// shows, are ignored: a rule can be sent back as it was received.
pub(crate) struct RuleChange;

impl PartialSchema for RuleChange {
    fn schema() -> RefOr<Schema> {
        let as_put = |mut s: RefOr<Schema>| {
            if let RefOr::T(Schema::Object(o)) = &mut s {
                o.required.retain(|f| f != "id");
                for f in ["origin", "updated_at"] {
                    let ignored = ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .description(Some("Ignored (as `GET` shows the rule)"));
                    o.properties.insert(f.into(), ignored.into());
                }
            }
            s
        };
        OneOfBuilder::new()
            .item(as_put(Rule::schema()))
            .item(as_put(FromTemplate::schema()))
            .description(Some(
                "A whole rule (its `id` may be left out), or a built-in template's identifier \
                 with the fields to change; `origin` and `updated_at` are ignored",
            ))
            .into()
    }
}

impl ToSchema for RuleChange {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("RuleChange")
    }

    fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
        <Rule as ToSchema>::schemas(out);
        <FromTemplate as ToSchema>::schemas(out);
    }
}

/// The rules.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuleList {
    /// Every rule evaluated, with where it comes from; webhook secrets and URL credentials
    /// masked (`********`).
    rules: Vec<RuleView>,
    /// Stored rules left out of evaluation because they are invalid (a property gone, a body
    /// edited by hand), with the reason; kept unchanged until replaced or deleted.
    invalid: Vec<InvalidRule>,
}

/// List the rules: those evaluated, and those stored but invalid.
///
/// 404 when alerting is not enabled on this server.
#[utoipa::path(get, path = "/api/v1/rules", tag = "alerts", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The rules; webhook secrets and URL credentials are write-only, shown as `********`", body = RuleList),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn list_rules(
    State(s): State<AppState>,
    MaybeWho(who): MaybeWho,
) -> ApiResult<Json<RuleList>> {
    let alerts = service(&s)?;
    let rules =
        alerts.rules().into_iter().filter_map(|r| visible_rule(&s, who.as_ref(), r).ok()).collect();
    // Rules that no longer load are the Métropole's to mend.
    let invalid = if sees(who.as_ref(), None) { alerts.invalid_rules() } else { Vec::new() };
    Ok(Json(RuleList { rules, invalid }))
}

/// The built-in rule templates.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TemplateList {
    /// Each template is a rule, disabled; `POST /api/v1/rules {"template": ID}` makes one from
    /// it.
    templates: Vec<Rule>,
}

/// The built-in rule templates: O3 180/240, NO2 400 over 3 h, PM10 50/80 daily mean, night
/// noise, bin ≥ 80 %, lamps, dry soil, device offline.
///
/// 404 when alerting is not enabled on this server.
#[utoipa::path(get, path = "/api/v1/rules/templates", tag = "alerts", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The templates", body = TemplateList),
        (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn templates(Scoped(s): Scoped) -> ApiResult<Json<TemplateList>> {
    Ok(Json(TemplateList { templates: service(&s)?.templates() }))
}

/// One rule (an invalid stored rule is only listed, under `invalid`).
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "alerts", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "The rule's identifier")),
    responses(
        (status = 200, description = "The rule; webhook secrets and URL credentials shown as `********`", body = RuleView),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        Reads,
    ))]
pub(crate) async fn get_rule(
    State(s): State<AppState>,
    MaybeWho(who): MaybeWho,
    Path(id): Path<String>,
) -> ApiResult<Json<RuleView>> {
    let r = service(&s)?
        .rule(&id)
        .ok_or_else(|| ApiError::NotFound(format!("rule {id:?} not found")))?;
    Ok(Json(visible_rule(&s, who.as_ref(), r)?))
}

/// Make a rule, whole or from a built-in template.
///
/// Conditions: threshold, state, sustained, rate, window (consecutive aggregate windows),
/// no_data, forecast, all/any; scope device, kind, site or commune; schedule;
/// hysteresis; min_duration; actions webhook, mqtt or email (email needs `[alerts.smtp]`; a webhook
/// to a loopback, private, link-local or metadata address is refused unless `[alerts]
/// allow_hosts` lists it). Or `{"template": ID, …fields to change}`.
///
/// 404 when alerting is not enabled on this server; 409 when a rule has this identifier (`PUT`
/// changes it); 422 (`invalid_rule`) for an invalid rule: unknown property or template, bad
/// expression, impossible window, webhook to a refused address…
#[utoipa::path(post, path = "/api/v1/rules", tag = "alerts", security(("bearer" = [])),
    request_body(content = NewRule, description = "A whole rule, or a template with the fields to change",
        example = json!({"id": "pm10-hdv", "name": "PM10 daily mean", "severity": "critical",
            "scope": {"site": "hotel-de-ville"},
            "condition": {"window": {"property": "pm10", "every": "1d", "tz": "Europe/Paris", "op": ">", "value": 80}},
            "actions": [{"webhook": {"url": "https://ops.example/hook", "secret": "s3cret"}}]})),
    responses(
        (status = 201, description = "Made; secrets shown as `********`", body = RuleView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Unprocessable),
        Writes,
    ))]
pub(crate) async fn create_rule(
    State(s): State<AppState>,
    Who(who): Who,
    Json(body): Json<JsonValue>,
) -> ApiResult<Response> {
    let alerts = service(&s)?;
    let mut rule = rule_of(alerts, body)?;
    check_rule(&s, &who, &mut rule, PAction::Modify)?;
    if alerts.rule(&rule.id).is_some() {
        return Err(ApiError::Conflict(format!(
            "rule {:?} exists: PUT /api/v1/rules/{} to change it",
            rule.id, rule.id
        )));
    }
    let v = alerts.put_rule(rule).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Make or replace a rule.
///
/// Webhook secrets and URL credentials sent back masked (`********`), or
/// a secret left out, are kept from the stored rule; `"secret": ""` removes it.
///
/// 404 when alerting is not enabled on this server; 409 when the rule is defined in agora.toml;
/// 422 (`invalid_rule`) for an invalid rule, or a body's `id` that is not the path's.
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "The rule's identifier")),
    request_body(content = RuleChange, description = "The rule (its `id` may be left out), or a template with the fields to change"),
    responses(
        (status = 200, description = "Replaced; secrets shown as `********`", body = RuleView),
        (status = 201, description = "Made (no rule, valid or not, had this id)", body = RuleView),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Unprocessable),
        Writes,
    ))]
pub(crate) async fn put_rule(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
    Json(mut v): Json<JsonValue>,
) -> ApiResult<Response> {
    let alerts = service(&s)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("id").or_insert_with(|| json!(id));
        // A rule sent back as `GET` showed it: what the server adds is not part of the rule.
        o.remove("origin");
        o.remove("updated_at");
    }
    let mut rule = rule_of(alerts, v)?;
    stored_rule_allowed(&s, &who, &id, PAction::Modify)?;
    check_rule(&s, &who, &mut rule, PAction::Modify)?;
    if rule.id != id {
        return Err(ApiError::InvalidRule(format!(
            "the body's id {:?} is not the path's {id:?}",
            rule.id
        )));
    }
    let created = alerts.rule(&id).is_none() && !alerts.invalid_rules().iter().any(|r| r.id == id);
    let before = alerts.rule(&id).and_then(|r| serde_json::to_value(r).ok());
    let view = alerts.put_rule(rule).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let note = crate::audit::AuditNote {
        before,
        after: serde_json::to_value(&view).ok(),
        ..Default::default()
    };
    Ok((status, axum::Extension(note), Json(view)).into_response())
}

/// Delete a rule made through the API (or an invalid stored one); its unresolved alerts are
/// resolved.
///
/// 409 when the rule is defined in agora.toml.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = String, Path, description = "The rule's identifier")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn delete_rule(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let alerts = service(&s)?;
    stored_rule_allowed(&s, &who, &id, PAction::Delete)?;
    let before = alerts.rule(&id).and_then(|r| serde_json::to_value(r).ok());
    alerts.delete_rule(&id).await?;
    let note = crate::audit::AuditNote { before, ..Default::default() };
    Ok((StatusCode::NO_CONTENT, axum::Extension(note)).into_response())
}

/// Which alerts to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertParams {
    /// Only in this state.
    #[param(value_type = Option<AlertState>)]
    state: Option<String>,
    /// Only of this rule (its identifier).
    rule: Option<String>,
    /// Only on this site (its identifier).
    site: Option<String>,
    /// Only about this device (its identifier).
    device: Option<String>,
    /// Only opened at or after: RFC 3339, an epoch number (seconds, milliseconds, microseconds
    /// or nanoseconds, told by its size), `now`, or `now-24h` / `-24h`.
    #[param(
        pattern = r"^\s*(now|(now)?-\s*[0-9]+(s|m|min|h|d|w)|\+?[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+−-][0-9]{2}:[0-9]{2}))\s*$"
    )]
    from: Option<String>,
    /// Only opened before: as `from`.
    #[param(
        pattern = r"^\s*(now|(now)?-\s*[0-9]+(s|m|min|h|d|w)|\+?[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+−-][0-9]{2}:[0-9]{2}))\s*$"
    )]
    to: Option<String>,
    /// At most this many, newest first (default 500, at most 10,000).
    #[param(minimum = 0)]
    limit: Option<u32>,
}

/// Alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertList {
    /// How many are listed.
    count: usize,
    /// The alerts.
    alerts: Vec<AlertRecord>,
}

/// List alerts, newest first.
///
/// 404 when alerting is not enabled on this server.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", security((), ("bearer" = [])),
    params(AlertParams),
    responses(
        (status = 200, description = "The alerts", body = AlertList),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn list_alerts(
    State(s): State<AppState>,
    MaybeWho(who): MaybeWho,
    Query(p): Query<AlertParams>,
) -> ApiResult<Json<AlertList>> {
    let now = s.clock.now();
    let state = p
        .state
        .as_deref()
        .map(|x| {
            AlertState::parse(x).ok_or_else(|| {
                ApiError::BadRequest(format!("bad state {x:?}: use open, acknowledged or resolved"))
            })
        })
        .transpose()?;
    let f = AlertFilter {
        state,
        rule: p.rule,
        site: p.site,
        device: p.device,
        from: p.from.as_deref().map(|t| parse_time(t, now)).transpose()?,
        to: p.to.as_deref().map(|t| parse_time(t, now)).transpose()?,
        limit: p.limit.unwrap_or(500).min(10_000),
    };
    let mut alerts = service(&s)?.alerts(&f).await?;
    if !sees(who.as_ref(), None) {
        alerts.retain(|a| sees(who.as_ref(), alert_target(&s, a).0.as_ref()));
    }
    Ok(Json(AlertList { count: alerts.len(), alerts }))
}

/// An alert and what its actions did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AlertDetail {
    /// The alert.
    alert: AlertRecord,
    /// Every attempt of its actions, oldest first (credentials in webhook URLs masked).
    deliveries: Vec<Delivery>,
}

/// One alert, with every attempt of its actions.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alert's identifier")),
    responses(
        (status = 200, description = "The alert and its deliveries", body = AlertDetail),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn get_alert(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlertDetail>> {
    alert_for(&s, Some(&who), id, None).await?;
    // Deliveries name their targets (email addresses): operators only, even with public_read.
    let (alert, deliveries) = service(&s)?.alert(id).await?;
    Ok(Json(AlertDetail { alert, deliveries }))
}

/// A note on taking an alert in hand or closing it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct AlertComment {
    /// What the operator says (blank: none).
    #[serde(default)]
    comment: Option<String>,
}

/// An optional JSON body, as axum's `Option<Json<T>>` reads it: absent when the request has no
/// `Content-Type`, else read by our `Json` (a bad one answers problem+json).
pub(crate) struct OptionalJson<T>(Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !req.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(Self(None));
        }
        Json::<T>::from_request(req, state).await.map(|Json(t)| Self(Some(t)))
    }
}

fn comment(b: OptionalJson<AlertComment>) -> Option<String> {
    b.0.and_then(|c| c.comment).filter(|c| !c.trim().is_empty())
}

/// Acknowledge an open alert: someone takes it in hand (read rights suffice: operators).
///
/// 409 when the alert is not open.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alert's identifier")),
    request_body(content = Option<AlertComment>, description = "An optional comment (read only with `Content-Type: application/json`)"),
    responses(
        (status = 200, description = "The alert, acknowledged", body = AlertRecord),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        Writes,
    ))]
pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<i64>,
    b: OptionalJson<AlertComment>,
) -> ApiResult<Json<AlertRecord>> {
    alert_for(&s, Some(&who), id, Some(PAction::Modify)).await?;
    Ok(Json(service(&s)?.acknowledge(id, &who.name, comment(b)).await?))
}

/// Resolve an alert by hand; it opens again only after its condition has cleared.
///
/// 409 when the alert is already resolved.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alert's identifier")),
    request_body(content = Option<AlertComment>, description = "An optional comment, replacing the acknowledgement's (read only with `Content-Type: application/json`)"),
    responses(
        (status = 200, description = "The alert, resolved", body = AlertRecord),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        Writes,
    ))]
pub(crate) async fn resolve(
    State(s): State<AppState>,
    Who(who): Who,
    Path(id): Path<i64>,
    b: OptionalJson<AlertComment>,
) -> ApiResult<Json<AlertRecord>> {
    alert_for(&s, Some(&who), id, Some(PAction::Modify)).await?;
    Ok(Json(service(&s)?.close(id, &who.name, comment(b)).await?))
}

/// How many deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Limit {
    /// The most recent ones, at most this many (default 200, at most 5,000).
    #[param(minimum = 0)]
    limit: Option<u32>,
}

/// The latest action attempts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    /// Webhooks, MQTT commands and emails tried, with their outcome (credentials in webhook
    /// URLs masked).
    deliveries: Vec<Delivery>,
}

/// The latest action attempts (webhooks, MQTT commands, emails) with their outcome.
///
/// 404 when alerting is not enabled on this server.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "alerts", security(("bearer" = [])),
    params(Limit),
    responses(
        (status = 200, description = "The latest deliveries", body = DeliveryList),
        (status = 400, response = BadRequest), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
        Reads,
    ))]
pub(crate) async fn deliveries(
    State(s): State<AppState>,
    Query(p): Query<Limit>,
) -> ApiResult<Json<DeliveryList>> {
    // Deliveries name their targets (email addresses): operators only, even with public_read;
    // the log spans every commune, so the Métropole's (the policy table says so); each alert's
    // own deliveries are on GET /api/v1/alerts/{id}.
    let deliveries = service(&s)?.deliveries(p.limit.unwrap_or(200).min(5_000)).await?;
    Ok(Json(DeliveryList { deliveries }))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_rules,
    create_rule,
    templates,
    get_rule,
    put_rule,
    delete_rule,
    list_alerts,
    get_alert,
    acknowledge,
    resolve,
    deliveries
))]
pub(crate) struct Doc;
