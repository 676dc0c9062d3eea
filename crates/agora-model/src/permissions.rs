//! Who may do what: the roles of a Métropole's people and tokens, the actions they take, the
//! business domains equipment belongs to, and the one matrix between them. Tenancy is applied on
//! top: someone of a commune acts on that commune's objects only, someone of the Métropole on
//! all of them.
//!
//! This is the model the API enforces route by route (work in progress: see the issue notes);
//! `SECURITY.md` prints the same matrix, and a test keeps the two equal.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InseeCode;

/// What someone is, for agora.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Administers the whole Métropole: every commune, people, communes themselves.
    MetropoleAdmin,
    /// Administers one commune: its equipment, rules, publications and people.
    CommuneAdmin,
    /// Supervision: watches equipment, handles alerts, sends commands.
    Operator,
    /// A business department (environment, lighting…): its domain's data, views and commands.
    Department,
    /// Elected officials, decision makers: indicators and data, read only.
    Viewer,
    /// A device or gateway: sends its data.
    Device,
}

/// What someone does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read data, indicators, equipment, alerts.
    View,
    /// Create or change equipment, places, rules; acknowledge alerts.
    Modify,
    /// Remove them.
    Delete,
    /// Send a command to equipment.
    Command,
    /// Publish open data.
    Publish,
    /// Manage people, roles and tokens.
    ManagePeople,
    /// Send measurements.
    Ingest,
}

/// The business domain a piece of equipment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Domain {
    /// Air quality, noise, weather.
    Environment,
    /// Street lighting.
    Lighting,
    /// Waste containers.
    Cleanliness,
    /// Soil moisture, irrigation.
    GreenSpaces,
    /// Pedestrian counters.
    Commerce,
}

impl Role {
    /// Every role, in the order the matrix prints them.
    pub const ALL: [Role; 6] = [
        Role::MetropoleAdmin,
        Role::CommuneAdmin,
        Role::Operator,
        Role::Department,
        Role::Viewer,
        Role::Device,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::MetropoleAdmin => "metropole_admin",
            Role::CommuneAdmin => "commune_admin",
            Role::Operator => "operator",
            Role::Department => "department",
            Role::Viewer => "viewer",
            Role::Device => "device",
        }
    }

    /// The role of a name; `None` for a name that is not one (refused with the list).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role of a name, or an error naming the roles that exist.
    pub fn parse_named(s: &str) -> Result<Role, String> {
        Role::parse(s).ok_or_else(|| {
            let all: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?}: one of {}", all.join(", "))
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    /// Every action, in the order the matrix prints them.
    pub const ALL: [Action; 7] = [
        Action::View,
        Action::Modify,
        Action::Delete,
        Action::Command,
        Action::Publish,
        Action::ManagePeople,
        Action::Ingest,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Modify => "modify",
            Action::Delete => "delete",
            Action::Command => "command",
            Action::Publish => "publish",
            Action::ManagePeople => "manage_people",
            Action::Ingest => "ingest",
        }
    }
}

impl Domain {
    /// Every domain.
    pub const ALL: [Domain; 5] = [
        Domain::Environment,
        Domain::Lighting,
        Domain::Cleanliness,
        Domain::GreenSpaces,
        Domain::Commerce,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Environment => "environment",
            Domain::Lighting => "lighting",
            Domain::Cleanliness => "cleanliness",
            Domain::GreenSpaces => "green_spaces",
            Domain::Commerce => "commerce",
        }
    }

    /// The domain of a name, or an error naming the domains that exist.
    pub fn parse_named(s: &str) -> Result<Domain, String> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Domain::ALL.iter().map(|d| d.as_str()).collect();
            format!("unknown domain {s:?}: one of {}", all.join(", "))
        })
    }

    /// The domain of a device kind (`None`: a kind of no department, e.g. a gateway).
    pub fn of_kind(kind: &str) -> Option<Domain> {
        Some(match kind {
            "air_quality" | "noise" | "weather" => Domain::Environment,
            "streetlight" => Domain::Lighting,
            "waste_container" => Domain::Cleanliness,
            "soil_moisture" => Domain::GreenSpaces,
            "pedestrian_counter" => Domain::Commerce,
            _ => return None,
        })
    }
}

/// Whether `role` may take `action` at all (within its tenancy). A department acts only on its
/// own domain, see [`allows_in_domain`].
pub fn allows(role: Role, action: Action) -> bool {
    use Action as A;
    use Role as R;
    match role {
        // Administrators also send data: imports of files, corrections.
        R::MetropoleAdmin | R::CommuneAdmin => true,
        R::Operator => matches!(action, A::View | A::Modify | A::Command),
        R::Department => matches!(action, A::View | A::Modify | A::Command),
        R::Viewer => action == A::View,
        R::Device => action == A::Ingest,
    }
}

/// Whether `role` (of `own` domain, for a department) may take `action` on an object of
/// `target` domain (`None`: an object of no domain, such as a place or an indicator).
/// Departments see everything but change only what belongs to their domain.
pub fn allows_in_domain(
    role: Role,
    own: Option<Domain>,
    action: Action,
    target: Option<Domain>,
) -> bool {
    if !allows(role, action) {
        return false;
    }
    match role {
        Role::Department => action == Action::View || (target.is_some() && target == own),
        _ => true,
    }
}

/// Whether someone of `tenant` (`None`: the Métropole) reaches an object of `commune` (`None`:
/// an object of the Métropole itself, shared by all). Objects of the Métropole are visible to
/// every commune; only the Métropole changes them (`changing`).
pub fn in_tenancy(tenant: Option<&InseeCode>, commune: Option<&InseeCode>, changing: bool) -> bool {
    match (tenant, commune) {
        (None, _) => true,
        (Some(t), Some(c)) => t == c,
        (Some(_), None) => !changing,
    }
}

/// What one person or token may reach: a role, the commune it belongs to (`None`: the
/// Métropole) and, for a business department, its domain. Built only through [`Grant::new`], so
/// that a grant is always one the matrix knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    role: Role,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    commune: Option<InseeCode>,
    domain: Option<Domain>,
}

impl Grant {
    /// A grant, checked: a department has a domain and nobody else has one; the Métropole
    /// administrator belongs to the Métropole, a commune administrator to a commune.
    pub fn new(
        role: Role,
        commune: Option<InseeCode>,
        domain: Option<Domain>,
    ) -> Result<Grant, String> {
        match (role, &commune, domain) {
            (Role::Department, _, None) => {
                return Err("a business department needs its domain (environment, lighting, \
                            cleanliness, green_spaces or commerce)"
                    .into());
            }
            (r, _, Some(d)) if r != Role::Department => {
                return Err(format!("only a business department has a domain, not a {r} ({d})"));
            }
            (Role::MetropoleAdmin, Some(c), _) => {
                return Err(format!(
                    "a metropole_admin belongs to the Métropole, not to commune {c}: use \
                     commune_admin for a commune's administrator"
                ));
            }
            (Role::CommuneAdmin, None, _) => {
                return Err("a commune_admin belongs to a commune: name its INSEE code".into());
            }
            _ => {}
        }
        Ok(Grant { role, commune, domain })
    }

    /// The Métropole's administrator (what tokens of the `admin` scope are).
    pub fn metropole_admin() -> Grant {
        Grant { role: Role::MetropoleAdmin, commune: None, domain: None }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The commune (`None`: the Métropole).
    pub fn commune(&self) -> Option<&InseeCode> {
        self.commune.as_ref()
    }

    /// The domain of a department.
    pub fn domain(&self) -> Option<Domain> {
        self.domain
    }

    /// Whether this grant's role takes `action` at all.
    pub fn may(&self, action: Action) -> bool {
        allows(self.role, action)
    }

    /// Whether it sees objects of `commune` (`None`: the Métropole's own).
    pub fn sees(&self, commune: Option<&InseeCode>) -> bool {
        in_tenancy(self.commune.as_ref(), commune, false)
    }

    /// Whether it sees every commune (it belongs to the Métropole).
    pub fn sees_all(&self) -> bool {
        self.commune.is_none()
    }

    /// Whether it may take `action` on an object of `commune` and `domain`.
    pub fn may_on(
        &self,
        action: Action,
        commune: Option<&InseeCode>,
        domain: Option<Domain>,
    ) -> bool {
        allows_in_domain(self.role, self.domain, action, domain)
            && in_tenancy(self.commune.as_ref(), commune, action != Action::View)
    }

    /// The grant's commune as people read it: its INSEE code, or `metropole`.
    pub fn tenant_name(&self) -> String {
        self.commune.as_ref().map_or_else(|| METROPOLE.to_owned(), |c| c.to_string())
    }
}

/// How the Métropole is named where a commune's INSEE code could stand.
pub const METROPOLE: &str = "metropole";

/// A tenant as given by people: `metropole` or a commune's INSEE code. `None` inside `Ok`: the
/// Métropole.
pub fn parse_tenant(s: &str) -> Result<Option<InseeCode>, String> {
    if s == METROPOLE {
        return Ok(None);
    }
    InseeCode::parse(s)
        .map(Some)
        .map_err(|e| format!("commune {s:?}: {e} (or \"{METROPOLE}\" for the Métropole)"))
}

/// The matrix as a Markdown table (rows: roles; columns: actions), as `SECURITY.md` prints it.
pub fn matrix_markdown() -> String {
    let mut out = String::from("| role |");
    for a in Action::ALL {
        out.push_str(&format!(" {} |", a.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Action::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for r in Role::ALL {
        out.push_str(&format!("| {} |", r.as_str()));
        for a in Action::ALL {
            let cell = match (allows(r, a), r) {
                (false, _) => "—",
                (true, Role::Department) if a != Action::View => "own domain",
                (true, _) => "yes",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_by_hand() {
        // What the issue asks, written out: administrators do everything; operators
        // supervise and command; departments act on their domain; viewers read; devices send.
        for a in Action::ALL {
            assert!(allows(Role::MetropoleAdmin, a), "{a:?}");
            assert_eq!(allows(Role::Viewer, a), a == Action::View, "{a:?}");
            assert_eq!(allows(Role::Device, a), a == Action::Ingest, "{a:?}");
        }
        assert!(allows(Role::Operator, Action::Command));
        assert!(!allows(Role::Operator, Action::Delete));
        assert!(!allows(Role::Operator, Action::ManagePeople));
        assert!(allows(Role::CommuneAdmin, Action::Ingest));
        assert!(!allows(Role::Operator, Action::Ingest));
        assert!(allows(Role::CommuneAdmin, Action::ManagePeople));
        let env = Some(Domain::Environment);
        let light = Some(Domain::Lighting);
        assert!(allows_in_domain(Role::Department, env, Action::Command, env));
        assert!(!allows_in_domain(Role::Department, env, Action::Command, light));
        assert!(allows_in_domain(Role::Department, env, Action::View, light));
        assert!(!allows_in_domain(Role::Department, env, Action::Modify, None));
        assert!(!allows_in_domain(Role::Department, env, Action::Delete, env));
        assert_eq!(Domain::of_kind("streetlight"), light);
        assert_eq!(Domain::of_kind("gateway"), None);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("mayor"), None);
    }

    #[test]
    fn tenancy_keeps_communes_apart_and_shares_the_metropoles() {
        let aix = InseeCode::parse("13001").unwrap();
        let mrs = InseeCode::parse("13055").unwrap();
        assert!(in_tenancy(None, Some(&aix), true));
        assert!(in_tenancy(Some(&aix), Some(&aix), true));
        assert!(!in_tenancy(Some(&aix), Some(&mrs), false));
        assert!(in_tenancy(Some(&aix), None, false));
        assert!(!in_tenancy(Some(&aix), None, true));
    }

    #[test]
    fn grants_are_checked_and_applied() {
        let aix = InseeCode::parse("13001").unwrap();
        let mrs = InseeCode::parse("13055").unwrap();
        let env = Some(Domain::Environment);
        assert!(Grant::new(Role::Department, Some(aix.clone()), None).is_err());
        assert!(Grant::new(Role::Operator, None, env).is_err());
        assert!(Grant::new(Role::MetropoleAdmin, Some(aix.clone()), None).is_err());
        assert!(Grant::new(Role::CommuneAdmin, None, None).is_err());
        let op = Grant::new(Role::Operator, Some(aix.clone()), None).unwrap();
        assert!(op.may_on(Action::Command, Some(&aix), Some(Domain::Lighting)));
        assert!(!op.may_on(Action::Command, Some(&mrs), Some(Domain::Lighting)));
        assert!(!op.may_on(Action::View, Some(&mrs), None));
        assert!(op.may_on(Action::View, None, None), "the Métropole's objects are seen by all");
        assert!(!op.may_on(Action::Modify, None, None), "and changed by the Métropole only");
        let dep = Grant::new(Role::Department, Some(aix.clone()), env).unwrap();
        assert!(dep.may_on(Action::Command, Some(&aix), env));
        assert!(!dep.may_on(Action::Command, Some(&aix), Some(Domain::Lighting)));
        let admin = Grant::metropole_admin();
        assert!(admin.may_on(Action::Delete, Some(&mrs), None) && admin.sees_all());
        assert_eq!(parse_tenant("metropole"), Ok(None));
        assert_eq!(parse_tenant("13001"), Ok(Some(aix)));
        assert!(parse_tenant("Aix").unwrap_err().contains("metropole"));
        assert!(Role::parse_named("mayor").unwrap_err().contains("operator"));
        assert!(Domain::parse_named("water").unwrap_err().contains("lighting"));
    }

    #[test]
    fn security_md_prints_the_matrix_the_code_applies() {
        let doc = include_str!("../../../SECURITY.md");
        assert!(
            doc.contains(&matrix_markdown()),
            "SECURITY.md must hold this table:\n{}",
            matrix_markdown()
        );
    }
}
