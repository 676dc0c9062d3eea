//! The register of the personal data agora holds (GDPR article 30): for each kind, where it is,
//! why, on what basis, how long it is kept, and how many records there are now. Sensors measure
//! places, not people: pedestrian counters count passers-by without identifying them.

use agora_alerts::rule::Action as RuleAction;
use serde::Serialize;
use utoipa::ToSchema;

use crate::doc::Reads;
use crate::error::ApiResult;
use crate::extract::Json;
use crate::policy::Scoped;

/// One kind of personal data.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Category {
    /// Stable name.
    name: &'static str,
    /// What it is.
    data: &'static str,
    /// Where agora keeps it.
    kept_in: &'static str,
    /// Why.
    purpose: &'static str,
    /// On what basis (GDPR article 6).
    basis: &'static str,
    /// How long.
    retention: String,
    /// Records now (absent where agora cannot count them cheaply).
    records: Option<u64>,
}

/// The register.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Register {
    /// Each kind of personal data.
    categories: Vec<Category>,
    /// How a person's data is exported and erased.
    procedures: &'static str,
    /// What agora does not hold.
    not_held: &'static str,
}

/// The register of personal data
///
/// Each kind of personal data agora holds, where, why, on what basis, how long and how many
/// records now (administrators).
#[utoipa::path(get, path = "/api/v1/privacy/register", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, description = "The register", body = Register),
        Reads,
    ))]
pub(crate) async fn register(Scoped(s): Scoped) -> ApiResult<Json<Register>> {
    let tokens = s.catalog.tokens();
    let mut emails: Vec<String> = s
        .alerts
        .as_ref()
        .map(|a| a.rules())
        .unwrap_or_default()
        .iter()
        .flat_map(|r| r.rule.actions.iter())
        .filter_map(|a| match a {
            RuleAction::Email { to, .. } => Some(to.iter().map(|x| x.to_lowercase())),
            _ => None,
        })
        .flatten()
        .collect();
    emails.sort();
    emails.dedup();
    let audit_days = s.config.audit_retention_days;
    let history = match s.config.alert_history_days {
        0 => "kept without limit ([alerts] history_days = 0)".to_owned(),
        d => format!("{d} days after the alert is resolved ([alerts] history_days)"),
    };
    let people = s.catalog.people().len() as u64;
    let categories = vec![
        Category {
            name: "accounts",
            data: "people's accounts: email, name, role, commune, password hash (Argon2id), \
                   single sign-on identity, last login, failed logins",
            kept_in: "catalog (people)",
            purpose: "access control: who may see and do what",
            basis: "public task (6.1.e)",
            retention: "until the account is erased (DELETE /api/v1/people/{id}); a disabled \
                        account is kept, unable to log in"
                .into(),
            records: Some(people),
        },
        Category {
            name: "tokens",
            data: "names of access tokens (often a person's or a service's name)",
            kept_in: "catalog (tokens)",
            purpose: "access control",
            basis: "public task (6.1.e)",
            retention:
                "until revoked; revoked tokens are kept, marked revoked, for the audit trail".into(),
            records: Some(tokens.len() as u64),
        },
        Category {
            name: "alert_recipients",
            data: "email addresses of alert recipients",
            kept_in: "catalog (alert rules)",
            purpose: "notifying the people on duty",
            basis: "public task (6.1.e)",
            retention: "as long as the rule names them".into(),
            records: Some(emails.len() as u64),
        },
        Category {
            name: "deliveries",
            data: "each notification attempt, with its recipient's address",
            kept_in: "catalog (deliveries)",
            purpose: "proof that an alert was sent",
            basis: "public task (6.1.e)",
            retention: history.clone(),
            records: None,
        },
        Category {
            name: "audit_trail",
            data: "who (token name, or a person's identifier — never their email or name) did \
                   what, from which IP address",
            kept_in: "catalog (audit_log)",
            purpose: "accountability and security",
            basis: "legal obligation and public task (6.1.c, 6.1.e)",
            retention: if audit_days == 0 {
                "kept without limit ([audit] retention_days = 0)".into()
            } else {
                format!("{audit_days} days ([audit] retention_days)")
            },
            records: None,
        },
        Category {
            name: "alert_handling",
            data: "who acknowledged or closed an alert (token name, or a person's name and \
                   identifier, pseudonymised at their erasure) and their comment",
            kept_in: "catalog (alerts)",
            purpose: "following up incidents",
            basis: "public task (6.1.e)",
            retention: history.clone(),
            records: None,
        },
        Category {
            name: "reporters",
            data: "the email address a citizen left, with their consent, to be told when their \
                   report is handled, and its language; the report's free text (shown to \
                   operators, to the public only when they publish it), no name",
            kept_in: "catalog (report_contacts, apart from reports)",
            purpose: "telling reporters their report was handled",
            basis: "consent (6.1.a), withdrawn by asking the city; public task (6.1.e) for the \
                    report",
            retention: format!(
                "the address: until the report is closed, then {} days ([reports] \
                 contact_retention_days), erased by the server; the report itself is kept for \
                 the statistics",
                s.reports.settings.contact_retention_days
            ),
            records: None,
        },
        Category {
            name: "sessions",
            data: "dashboard sessions (the person or token they were opened by)",
            kept_in: "memory only",
            purpose: "keeping operators logged in",
            basis: "public task (6.1.e)",
            retention: "12 hours, or until logout or restart".into(),
            records: None,
        },
    ];
    Ok(Json(Register {
        categories,
        procedures: "Access and portability: GET /api/v1/people/{id}/export gives everything \
                     agora holds about one person (account, sessions, audit entries, alerts \
                     handled, rules and deliveries naming their email). Erasure: DELETE \
                     /api/v1/people/{id} removes the account, ends the sessions and \
                     pseudonymises the alerts they handled; the answer lists the alert rules that \
                     still send to their email, for an administrator to change.",
        not_held: "Sensors measure places, not people: pedestrian counters count passers-by \
                   without identifying them: agora receives counts only, no image and no identifier of \
                   anyone's phone.",
    }))
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register))]
pub(crate) struct Doc;
