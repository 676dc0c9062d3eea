//! Who may do what: the roles of a Métropole's people and tokens, the actions they take, the
//! business domains equipment belongs to, and the one matrix between them. Tenancy is applied on
//! top: someone of a commune acts on that commune's objects only, someone of the Métropole on
//! all of them.
//!
//! This is the model the API enforces route by route (work in progress: see the issue notes);
//! `SECURITY.md` prints the same matrix, and a test keeps the two equal.

use std::fmt;

use crate::InseeCode;

/// What someone is, for agora.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
}

impl fmt::Display for Role {
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
        R::MetropoleAdmin => action != A::Ingest,
        R::CommuneAdmin => action != A::Ingest,
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
        // What the issue asks, written out: administrators do everything but send data; operators
        // supervise and command; departments act on their domain; viewers read; devices send.
        for a in Action::ALL {
            assert_eq!(allows(Role::MetropoleAdmin, a), a != Action::Ingest, "{a:?}");
            assert_eq!(allows(Role::Viewer, a), a == Action::View, "{a:?}");
            assert_eq!(allows(Role::Device, a), a == Action::Ingest, "{a:?}");
        }
        assert!(allows(Role::Operator, Action::Command));
        assert!(!allows(Role::Operator, Action::Delete));
        assert!(!allows(Role::Operator, Action::ManagePeople));
        assert!(!allows(Role::CommuneAdmin, Action::Ingest));
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
    fn security_md_prints_the_matrix_the_code_applies() {
        let doc = include_str!("../../../SECURITY.md");
        assert!(
            doc.contains(&matrix_markdown()),
            "SECURITY.md must hold this table:\n{}",
            matrix_markdown()
        );
    }
}
