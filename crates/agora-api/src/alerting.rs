//! Alert rules and alerts over HTTP: `/api/v1/rules` (read for everyone with read rights,
//! changes for admins), `/api/v1/alerts` with its filters, acknowledge and resolve (operators
//! with read rights: taking an alert in hand is their job), and the action delivery log. Rules
//! and deliveries come out of `agora_alerts` with their secrets already masked (write-only).

use agora_alerts::{Alerts, Rule};
use agora_store::alerts::{AlertFilter, AlertState};
use agora_store::catalog::Scope;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::AppState;
use crate::auth::{require, require_read};
use crate::error::{ApiError, ApiResult};
use agora_query::parse_time;

fn service(s: &AppState) -> ApiResult<&Alerts> {
    s.alerts
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("alerting is not enabled on this server".into()))
}

fn body(b: Result<Json<JsonValue>, JsonRejection>) -> ApiResult<JsonValue> {
    b.map(|Json(v)| v).map_err(|e| ApiError::InvalidRule(e.body_text()))
}

/// A rule from a request body: a whole rule, or `{"template": ID, …fields to change}`.
fn rule_of(alerts: &Alerts, v: JsonValue) -> ApiResult<Rule> {
    if let Some(t) = v.get("template").and_then(JsonValue::as_str) {
        return Ok(alerts.from_template(t, v.clone())?);
    }
    serde_json::from_value(v).map_err(|e| ApiError::InvalidRule(format!("invalid rule: {e}")))
}

pub(crate) async fn list_rules(
    State(s): State<AppState>,
    h: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let alerts = service(&s)?;
    Ok(Json(json!({ "rules": alerts.rules(), "invalid": alerts.invalid_rules() })))
}

pub(crate) async fn templates(
    State(s): State<AppState>,
    h: HeaderMap,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    Ok(Json(json!({ "templates": service(&s)?.templates() })))
}

pub(crate) async fn get_rule(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let r = service(&s)?
        .rule(&id)
        .ok_or_else(|| ApiError::NotFound(format!("rule {id:?} not found")))?;
    Ok(Json(json!(r)))
}

pub(crate) async fn create_rule(
    State(s): State<AppState>,
    h: HeaderMap,
    b: Result<Json<JsonValue>, JsonRejection>,
) -> ApiResult<Response> {
    require(&s, &h, None, Scope::Admin)?;
    let alerts = service(&s)?;
    let rule = rule_of(alerts, body(b)?)?;
    if alerts.rule(&rule.id).is_some() {
        return Err(ApiError::Conflict(format!(
            "rule {:?} exists: PUT /api/v1/rules/{} to change it",
            rule.id, rule.id
        )));
    }
    let v = alerts.put_rule(rule).await?;
    Ok((StatusCode::CREATED, Json(json!(v))).into_response())
}

pub(crate) async fn put_rule(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Result<Json<JsonValue>, JsonRejection>,
) -> ApiResult<Json<JsonValue>> {
    require(&s, &h, None, Scope::Admin)?;
    let alerts = service(&s)?;
    let mut v = body(b)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("id").or_insert_with(|| json!(id));
        // A rule sent back as `GET` showed it: what the server adds is not part of the rule.
        o.remove("origin");
        o.remove("updated_at");
    }
    let rule = rule_of(alerts, v)?;
    if rule.id != id {
        return Err(ApiError::InvalidRule(format!(
            "the body's id {:?} is not the path's {id:?}",
            rule.id
        )));
    }
    Ok(Json(json!(alerts.put_rule(rule).await?)))
}

pub(crate) async fn delete_rule(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require(&s, &h, None, Scope::Admin)?;
    service(&s)?.delete_rule(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AlertParams {
    state: Option<String>,
    rule: Option<String>,
    site: Option<String>,
    device: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn list_alerts(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<AlertParams>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
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
    let alerts = service(&s)?.alerts(&f).await?;
    Ok(Json(json!({ "count": alerts.len(), "alerts": alerts })))
}

pub(crate) async fn get_alert(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let (a, d) = service(&s)?.alert(id).await?;
    Ok(Json(json!({ "alert": a, "deliveries": d })))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Comment {
    #[serde(default)]
    comment: Option<String>,
}

fn comment(b: Option<Json<Comment>>) -> Option<String> {
    b.and_then(|Json(c)| c.comment).filter(|c| !c.trim().is_empty())
}

pub(crate) async fn acknowledge(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Option<Json<Comment>>,
) -> ApiResult<Json<JsonValue>> {
    let who = require(&s, &h, None, Scope::Read)?;
    Ok(Json(json!(service(&s)?.acknowledge(id, &who.name, comment(b)).await?)))
}

pub(crate) async fn resolve(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<i64>,
    b: Option<Json<Comment>>,
) -> ApiResult<Json<JsonValue>> {
    let who = require(&s, &h, None, Scope::Read)?;
    Ok(Json(json!(service(&s)?.close(id, &who.name, comment(b)).await?)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Limit {
    limit: Option<u32>,
}

pub(crate) async fn deliveries(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(p): Query<Limit>,
) -> ApiResult<Json<JsonValue>> {
    require_read(&s, &h)?;
    let d = service(&s)?.deliveries(p.limit.unwrap_or(200).min(5_000)).await?;
    Ok(Json(json!({ "deliveries": d })))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub(crate) struct Doc;
