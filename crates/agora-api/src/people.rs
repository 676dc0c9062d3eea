//! People's accounts: made, changed, disabled and erased by administrators (the Métropole's for
//! everyone, a commune's for its own commune), their sessions listed and ended; `GET /api/v1/me`
//! says who the caller is and what they may do.

use agora_model::permissions::{self, Action, Domain, Grant, Role};
use agora_store::catalog::{NewPerson, Person};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditNote;
use crate::doc::{BadRequest, NotFound, Reads, Writes};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::policy::{Scoped, Who, handler_name};

/// A person to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPersonBody {
    /// Email: what they log in with.
    email: String,
    /// Name.
    name: String,
    /// Role: `metropole_admin`, `commune_admin`, `operator`, `department`, `viewer`.
    role: String,
    /// Their commune's INSEE code, or `metropole`. Required: nobody is in no commune.
    commune: Option<String>,
    /// A department's domain: `environment`, `lighting`, `cleanliness`, `green_spaces`,
    /// `commerce`.
    domain: Option<String>,
    /// A first password (at least 12 characters); none: they log in through single sign-on.
    password: Option<String>,
}

/// Changes to a person; what is absent stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonChange {
    name: Option<String>,
    role: Option<String>,
    commune: Option<String>,
    domain: Option<String>,
    /// Disable (their sessions end at once) or enable again.
    disabled: Option<bool>,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    password: String,
}

/// People.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PeopleList {
    people: Vec<Person>,
    /// Their live sessions (and those of tokens of the same communes).
    sessions: Vec<crate::session::SessionInfo>,
}

/// A grant from the names people give, checked: a role that exists, a commune (required), a
/// domain for a department only.
pub(crate) fn grant_of(
    role: &str,
    commune: Option<&str>,
    domain: Option<&str>,
) -> Result<Grant, ApiError> {
    let role = Role::parse_named(role).map_err(ApiError::BadRequest)?;
    if role == Role::Device {
        return Err(ApiError::BadRequest("device is a role of tokens, not of people".into()));
    }
    let commune = commune.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "a person belongs to a commune: give its INSEE code, or \"{}\" for the Métropole",
            permissions::METROPOLE
        ))
    })?;
    let commune = permissions::parse_tenant(commune).map_err(ApiError::BadRequest)?;
    let domain = domain.map(Domain::parse_named).transpose().map_err(ApiError::BadRequest)?;
    Grant::new(role, commune, domain).map_err(ApiError::BadRequest)
}

/// What the audit trail keeps of a person: their identifier and what they may do, never their
/// email or name (the trail cannot be edited, and a person may be erased).
fn note(before: Option<&Person>, after: Option<&Person>) -> AuditNote {
    let kept = |p: &Person| {
        serde_json::json!({"id": p.id, "role": p.grant.role(), "commune": p.grant.tenant_name(),
            "domain": p.grant.domain(), "disabled": p.disabled})
    };
    AuditNote { actor: None, before: before.map(kept), after: after.map(kept) }
}

/// List people and live sessions.
#[utoipa::path(get, path = "/api/v1/people", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "People and sessions", body = PeopleList), Reads))]
pub(crate) async fn list(Scoped(s): Scoped, Who(who): Who) -> ApiResult<Json<PeopleList>> {
    let sessions =
        s.sessions.list(|p| who.grant.sees_all() || p.grant.commune() == who.grant.commune());
    Ok(Json(PeopleList { people: s.catalog.people(), sessions }))
}

/// Make a person's account.
#[utoipa::path(post, path = "/api/v1/people", tag = "admin", security(("bearer" = [])),
    request_body = NewPersonBody,
    responses(
        (status = 201, description = "Made", body = Person),
        (status = 400, response = BadRequest),
        (status = 409, description = "The email has an account"),
        Writes,
    ))]
pub(crate) async fn create(Scoped(s): Scoped, Json(b): Json<NewPersonBody>) -> ApiResult<Response> {
    let grant = grant_of(&b.role, b.commune.as_deref(), b.domain.as_deref())?;
    let p = s
        .catalog
        .create_person(NewPerson {
            email: b.email,
            name: b.name,
            grant,
            password: b.password,
            subject: None,
        })
        .await?;
    let mut r = (StatusCode::CREATED, Json(p.clone())).into_response();
    r.extensions_mut().insert(note(None, Some(&p)));
    Ok(r)
}

/// One person.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    responses((status = 200, description = "The person", body = Person),
        (status = 404, response = NotFound), Reads))]
pub(crate) async fn get(Scoped(s): Scoped, Path(id): Path<String>) -> ApiResult<Json<Person>> {
    s.catalog.person(&id).map(Json).ok_or_else(|| ApiError::NotFound(format!("no person {id}")))
}

/// Change a person: name, role, commune, domain, disabled.
#[utoipa::path(patch, path = "/api/v1/people/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    request_body = PersonChange,
    responses((status = 200, description = "Changed", body = Person),
        (status = 400, response = BadRequest), (status = 404, response = NotFound), Writes))]
pub(crate) async fn update(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
    Json(c): Json<PersonChange>,
) -> ApiResult<Response> {
    let before =
        s.catalog.person(&id).ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
    let grant = if c.role.is_some() || c.commune.is_some() || c.domain.is_some() {
        let g = &before.grant;
        let role = c.role.unwrap_or_else(|| g.role().as_str().to_owned());
        let commune = c.commune.unwrap_or_else(|| g.tenant_name());
        // A new role drops the old domain unless one is given.
        let domain = c.domain.or_else(|| {
            (role == Role::Department.as_str())
                .then(|| g.domain().map(|d| d.as_str().to_owned()))?
        });
        Some(grant_of(&role, Some(&commune), domain.as_deref())?)
    } else {
        None
    };
    if who.person.as_deref() == Some(id.as_str())
        && (c.disabled == Some(true) || grant.as_ref().is_some_and(|g| g != &before.grant))
    {
        return Err(ApiError::BadRequest(
            "administrators do not disable themselves or change their own role: ask another".into(),
        ));
    }
    let after = s.catalog.update_person(&id, c.name, grant, c.disabled).await?;
    if after.disabled {
        s.sessions.end_person(&id);
    }
    let mut r = Json(after.clone()).into_response();
    r.extensions_mut().insert(note(Some(&before), Some(&after)));
    Ok(r)
}

/// What an erasure did, and what is left for an administrator to do.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Erased {
    /// The identifier the audit trail knows them by.
    id: String,
    /// Alerts they had acknowledged or resolved, now naming `person:ID (erased)`.
    alerts_pseudonymised: u64,
    /// Steps of citizens' reports they handled, and points and tours they last edited, now
    /// naming `person:ID (erased)`.
    tickets_and_visitors_pseudonymised: u64,
    /// Sessions ended.
    sessions_ended: usize,
    /// Alert rules whose actions still send to their email: to be changed by hand (a rule is the
    /// city's decision, not the person's data alone).
    rules_naming_their_email: Vec<String>,
}

/// Erase a person (GDPR erasure): their account goes, their sessions end, the alerts they handled
/// name them no more; the audit trail knew them by identifier only. Rules that still send to
/// their email are listed, to be changed by an administrator.
#[utoipa::path(delete, path = "/api/v1/people/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    responses((status = 200, description = "Erased; what is left to do", body = Erased),
        (status = 404, response = NotFound), Writes))]
pub(crate) async fn erase(
    Scoped(s): Scoped,
    Who(who): Who,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    if who.person.as_deref() == Some(id.as_str()) {
        return Err(ApiError::BadRequest("administrators do not erase themselves".into()));
    }
    let before =
        s.catalog.person(&id).ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
    s.catalog.delete_person(&id).await?;
    let sessions_ended = s.sessions.end_person(&id);
    let (alerts_pseudonymised, rules_naming_their_email) = match &s.alerts {
        Some(a) => {
            let n =
                a.rename_handler(&handler_name(&before), &format!("person:{id} (erased)")).await?;
            (n, rules_naming(a, &before.email))
        }
        None => (0, Vec::new()),
    };
    let erased_name = format!("person:{id} (erased)");
    let tickets_and_visitors_pseudonymised =
        s.reports.store.rename_actor(&handler_name(&before), &erased_name).await?
            + s.visitors.rename_editor(&handler_name(&before), &erased_name).await?;
    let mut r = Json(Erased {
        id: id.clone(),
        alerts_pseudonymised,
        tickets_and_visitors_pseudonymised,
        sessions_ended,
        rules_naming_their_email,
    })
    .into_response();
    r.extensions_mut().insert(note(Some(&before), None));
    Ok(r)
}

/// The rules whose email actions send to `email` (the address itself, not one containing it).
fn rules_naming(alerts: &agora_alerts::Alerts, email: &str) -> Vec<String> {
    alerts
        .rules()
        .into_iter()
        .filter(|r| {
            r.rule.actions.iter().any(|a| match a {
                agora_alerts::rule::Action::Email { to, .. } => {
                    to.iter().any(|x| x.trim().eq_ignore_ascii_case(email))
                }
                _ => false,
            })
        })
        .map(|r| r.rule.id)
        .collect()
}

/// Whether a delivery's target names `email` (targets list addresses, comma-separated).
fn names(target: &str, email: &str) -> bool {
    target
        .split([',', ';', ' '])
        .map(|x| x.trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace()))
        .any(|x| x.eq_ignore_ascii_case(email))
}

/// Everything agora holds about one person (GDPR access and portability).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Export {
    /// When this export was made.
    generated_at: agora_model::Timestamp,
    /// Their account.
    person: Person,
    /// Their live sessions.
    sessions: Vec<crate::session::SessionInfo>,
    /// What they did, from the audit trail (newest first).
    #[schema(value_type = Vec<Object>)]
    audit: Vec<agora_store::audit::AuditEntry>,
    /// Alerts they acknowledged or resolved.
    alerts_handled: Vec<agora_store::alerts::AlertRecord>,
    /// Alert rules whose actions send to their email.
    rules_naming_their_email: Vec<String>,
    /// Action attempts sent to their email (latest 5,000 looked at).
    deliveries_to_them: Vec<agora_store::alerts::Delivery>,
}

/// Export everything agora holds about one person, as JSON.
#[utoipa::path(get, path = "/api/v1/people/{id}/export", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    responses((status = 200, description = "Their data", body = Export),
        (status = 404, response = NotFound), Reads))]
pub(crate) async fn export(Scoped(s): Scoped, Path(id): Path<String>) -> ApiResult<Json<Export>> {
    let person =
        s.catalog.person(&id).ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
    let audit = match &s.audit {
        Some(log) => {
            let f = agora_store::audit::AuditFilter {
                actor: Some(format!("person:{id}")),
                limit: u32::MAX,
                ..Default::default()
            };
            log.entries(&f).await?
        }
        None => Vec::new(),
    };
    let (alerts_handled, rules, deliveries) = match &s.alerts {
        Some(a) => {
            let name = handler_name(&person);
            let f = agora_store::alerts::AlertFilter { limit: u32::MAX, ..Default::default() };
            let mut handled = a.alerts(&f).await?;
            handled.retain(|x| {
                x.acknowledged_by.as_deref() == Some(&name)
                    || x.resolved_by.as_deref() == Some(&name)
            });
            let mut d = a.deliveries(5_000).await?;
            d.retain(|x| names(&x.target, &person.email));
            (handled, rules_naming(a, &person.email), d)
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    Ok(Json(Export {
        generated_at: s.clock.now(),
        sessions: s.sessions.list(|p| p.person.as_deref() == Some(id.as_str())),
        person,
        audit,
        alerts_handled,
        rules_naming_their_email: rules,
        deliveries_to_them: deliveries,
    }))
}

/// Set a person's password (an administrator's reset); unlocks the account and ends their
/// sessions.
#[utoipa::path(post, path = "/api/v1/people/{id}/password", tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    request_body = PasswordBody,
    responses((status = 204, description = "Set"), (status = 400, response = BadRequest),
        (status = 404, response = NotFound), Writes))]
pub(crate) async fn set_password(
    Scoped(s): Scoped,
    Path(id): Path<String>,
    Json(b): Json<PasswordBody>,
) -> ApiResult<Response> {
    s.catalog.set_password(&id, &b.password).await?;
    s.sessions.end_person(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ended {
    ended: usize,
}

/// Log a person out everywhere: every session of theirs ends.
#[utoipa::path(post, path = "/api/v1/people/{id}/logout", tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's identifier")),
    responses((status = 200, description = "Their sessions ended", body = Ended),
        (status = 404, response = NotFound), Writes))]
pub(crate) async fn logout_everywhere(
    Scoped(s): Scoped,
    Path(id): Path<String>,
) -> ApiResult<Json<Ended>> {
    s.catalog.person(&id).ok_or_else(|| ApiError::NotFound(format!("no person {id}")))?;
    Ok(Json(Ended { ended: s.sessions.end_person(&id) }))
}

/// Who the caller is and what their role takes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// As the audit trail names them.
    actor: String,
    /// Role, commune (absent: the Métropole), domain.
    #[serde(flatten)]
    grant: Grant,
    /// The person, when a person is logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    person: Option<Person>,
    /// The actions their role takes (within their commune, and for a department its domain).
    may: Vec<&'static str>,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me), Reads))]
pub(crate) async fn me(Scoped(s): Scoped, Who(who): Who) -> ApiResult<Json<Me>> {
    let may = Action::ALL.into_iter().filter(|a| who.grant.may(*a)).map(Action::as_str).collect();
    Ok(Json(Me {
        actor: who.actor.clone(),
        person: who.person.as_deref().and_then(|id| s.catalog.person(id)),
        grant: who.grant,
        may,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_delivery_names_the_address_itself() {
        assert!(super::names("s@marseille.fr", "s@marseille.fr"));
        assert!(super::names("a@b.fr, S@Marseille.fr", "s@marseille.fr"));
        assert!(!super::names("ops@marseille.fr", "s@marseille.fr"));
    }
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get, update, erase, export, set_password, logout_everywhere, me))]
pub(crate) struct Doc;
