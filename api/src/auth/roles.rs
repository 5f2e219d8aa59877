//! Roles, the access a route grants, and the authenticated caller.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What a caller may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including API keys.
    Admin,
    /// Operates workers and labs: observes and removes lab records, runs work orders, manages
    /// every instance, redrives parked events.
    Manager,
    /// Reads, and manages the lablet instances they own.
    User,
    /// Reads, and the audit and replay endpoints; changes nothing.
    Auditor,
    /// Delivers CloudEvents to the inbox.
    Integrator,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Manager, Role::User, Role::Auditor, Role::Integrator];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::User => "user",
            Role::Auditor => "auditor",
            Role::Integrator => "integrator",
        }
    }

    /// The role with this name; `None` for names Lablet does not know (an identity provider
    /// grants many roles of its own, which are ignored).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may use a route: anyone, or callers holding one of the roles (or `admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Roles(&'static [Role]),
}

impl Access {
    /// Read models and live updates.
    pub const READ: Access = Access::Roles(&[Role::Manager, Role::User, Role::Auditor]);
    /// Commands on labs and work orders.
    pub const OPERATE: Access = Access::Roles(&[Role::Manager]);
    /// Commands on lablet instances: managers on any, users on their own.
    pub const INSTANCES: Access = Access::Roles(&[Role::Manager, Role::User]);
    /// The event log as it was recorded.
    pub const AUDIT: Access = Access::Roles(&[Role::Auditor]);
    /// The state of delivery to integrators, and `/metrics` when it is not public.
    pub const OBSERVE: Access = Access::Roles(&[Role::Manager, Role::Auditor]);
    /// The CloudEvents inbox.
    pub const INBOX: Access = Access::Roles(&[Role::Integrator]);
    /// Administration: API keys.
    pub const ADMIN: Access = Access::Roles(&[]);

    /// Whether `principal` may use a route with this access.
    pub fn allows(&self, principal: &Principal) -> bool {
        match self {
            Access::Public => true,
            Access::Roles(roles) => {
                principal.roles.contains(&Role::Admin) || roles.iter().any(|role| principal.roles.contains(role))
            }
        }
    }

    /// The roles granted access, `admin` included; empty for a public route.
    pub fn granted(&self) -> Vec<Role> {
        match self {
            Access::Public => Vec::new(),
            Access::Roles(roles) => std::iter::once(Role::Admin).chain(roles.iter().copied()).collect(),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or `apikey:<id>` for an API key: who the caller is to its own
    /// identity provider, and the owner of the instances it requests.
    pub subject: String,
    /// The actor recorded on its commands, namespaced by origin so that no caller can pose as
    /// another kind: `user:<sub>` for a token, `apikey:<id>` for an API key (Lablet's own work
    /// is `system`, imports `import`; see `RequestContext`).
    pub actor: String,
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// A person, by the `sub` of their token.
    pub fn user(subject: String, roles: BTreeSet<Role>) -> Self {
        Principal {
            actor: format!("user:{subject}"),
            subject,
            roles,
        }
    }

    /// A machine caller, by its API key's id.
    pub fn api_key(id: &str, roles: BTreeSet<Role>) -> Self {
        let name = format!("apikey:{id}");
        Principal {
            subject: name.clone(),
            actor: name,
            roles,
        }
    }

    /// The subject a caller is limited to when reading lablet instances: users see only their
    /// own (an instance's ports and CML lab are what one needs to reach its lab); managers,
    /// admins and auditors see all.
    pub fn reader_scope(&self) -> Option<&str> {
        let broad = [Role::Admin, Role::Manager, Role::Auditor]
            .iter()
            .any(|role| self.roles.contains(role));
        (!broad).then_some(self.subject.as_str())
    }

    /// The subject a caller is limited to when managing lablet instances: users act only on
    /// their own; managers and admins on any.
    pub fn owner_scope(&self) -> Option<String> {
        let broad = self.roles.contains(&Role::Admin) || self.roles.contains(&Role::Manager);
        (!broad).then(|| self.subject.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[Role]) -> Principal {
        Principal::user("alice".into(), roles.iter().copied().collect())
    }

    #[test]
    fn admin_passes_everywhere_others_only_where_listed() {
        let admin = caller(&[Role::Admin]);
        for access in [
            Access::READ,
            Access::OPERATE,
            Access::AUDIT,
            Access::INBOX,
            Access::ADMIN,
        ] {
            assert!(access.allows(&admin));
        }
        let user = caller(&[Role::User]);
        assert!(Access::READ.allows(&user));
        assert!(Access::INSTANCES.allows(&user));
        assert!(!Access::OPERATE.allows(&user));
        assert!(!Access::ADMIN.allows(&user));
        assert!(!Access::READ.allows(&caller(&[Role::Integrator])));
        assert!(!Access::READ.allows(&caller(&[])));
        assert!(Access::Public.allows(&caller(&[])));
    }

    #[test]
    fn only_users_without_a_broader_role_are_limited_to_their_instances() {
        assert_eq!(caller(&[Role::User]).owner_scope(), Some("alice".into()));
        assert_eq!(caller(&[Role::User, Role::Manager]).owner_scope(), None);
        assert_eq!(caller(&[Role::Admin]).owner_scope(), None);
        assert_eq!(caller(&[Role::User]).reader_scope(), Some("alice"));
        assert_eq!(caller(&[Role::User, Role::Auditor]).reader_scope(), None);
        assert_eq!(caller(&[Role::Manager]).reader_scope(), None);
    }

    #[test]
    fn role_names_round_trip_and_unknown_names_are_ignored() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("offline_access"), None);
    }
}
