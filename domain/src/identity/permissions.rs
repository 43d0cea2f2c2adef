//! The fixed permission set and the built-in roles.
//!
//! Permissions are a closed enum: a custom role is a subset of them, never a new one. Each
//! built-in role's set is written out here and documented in the README's table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! permissions {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// One thing a caller may be allowed to do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's stable name, e.g. `devices.write`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Permission::$variant => $name,)* }
            }

            /// What the permission allows, for documentation and the API.
            pub const fn description(self) -> &'static str {
                match self { $(Permission::$variant => $doc,)* }
            }
        }

        impl FromStr for Permission {
            type Err = UnknownPermission;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($name => Ok(Permission::$variant),)* _ => Err(UnknownPermission(s.to_owned())) }
            }
        }
    };
}

permissions! {
    DomainsManage => "domains.manage", "Create, update, disable and delete Domains (platform scope).";
    DomainsRead => "domains.read", "See the Domain itself (name, SIP domain, settings).";
    UsersRead => "users.read", "List and read dashboard users of the Domain and their roles.";
    UsersWrite => "users.write", "Invite, update, disable users and assign roles in the Domain.";
    RolesRead => "roles.read", "List the Domain's roles.";
    RolesWrite => "roles.write", "Create, change and delete the Domain's custom roles.";
    ExtensionsRead => "extensions.read", "List and read Extensions.";
    ExtensionsWrite => "extensions.write", "Create, change and delete Extensions.";
    DevicesRead => "devices.read", "List and read Devices.";
    DevicesWrite => "devices.write", "Create, change and delete Devices.";
    LocationsRead => "locations.read", "List and read Locations.";
    LocationsWrite => "locations.write", "Create, change and delete Locations.";
    SettingsWrite => "settings.write", "Change the Domain's calling settings.";
    HotdeskSelf => "hotdesk.self", "Log one's own Extension in and out of phones and Locations.";
    HotdeskOthers => "hotdesk.others", "Log any Extension in or out, without its PIN.";
    PresenceRead => "presence.read", "See presence and subscribe to the live event stream.";
    RegistrationsRead => "registrations.read", "See which phones are registered.";
    AuditRead => "audit.read", "Read the Domain's audit log.";
    ApiKeysWrite => "api_keys.write", "Create, list and revoke API keys.";
    SecretsRead => "secrets.read", "Read SIP secrets in clear text (audited).";
    NodesRead => "nodes.read", "See the FreeSWITCH nodes and their links (platform scope).";
    NodesWrite => "nodes.write", "Register, change and remove FreeSWITCH nodes (platform scope).";
    NumbersRead => "numbers.read", "List and read the Domain's Numbers (DIDs) and their destinations.";
    NumbersWrite => "numbers.write", "Point the Domain's Numbers at destinations.";
    NumbersManage => "numbers.manage", "Add Numbers to the platform and assign them to Domains (platform scope).";
    RoutingRead => "routing.read", "See Gateways, Outbound Routes and explain calls.";
    RoutingWrite => "routing.write", "Create, change and delete the Domain's Gateways and Outbound Routes.";
    CallFlowsRead => "call_flows.read", "See the Domain's ring groups, IVR menus and time conditions.";
    CallFlowsWrite => "call_flows.write", "Create, change and delete the Domain's ring groups, IVR menus and time conditions.";
    CallFlowsOverride => "call_flows.override", "Switch a time condition's override (open, closed, follow the schedule).";
    GatewaysManage => "gateways.manage", "Create platform Gateways and grant them to Domains (platform scope).";
    CallsRead => "calls.read", "Read the Domain's call history, export it and download its recordings.";
    VoicemailManage => "voicemail.manage", "List, play, mark, move and delete the messages in any Extension's voicemail box.";
}

/// A permission name that is not in the fixed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of permissions, as a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PermissionSet(u64);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Builds a set from a list.
    pub fn of(permissions: &[Permission]) -> Self {
        permissions.iter().fold(Self::EMPTY, |set, p| set.with(*p))
    }

    /// Every permission.
    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    /// This set plus one permission.
    pub const fn with(self, p: Permission) -> Self {
        Self(self.0 | (1 << p as u8))
    }

    /// True when the set holds `p`.
    pub const fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    /// The union of two sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// True when every permission of `self` is also in `other`.
    pub const fn is_subset_of(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// True when the set holds nothing.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions of `self` missing from `other`.
    pub fn missing_from(self, other: Self) -> Vec<Permission> {
        self.iter().filter(|p| !other.contains(*p)).collect()
    }

    /// The permissions in a stable order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }

    /// The permissions' names in a stable order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Where a role applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleScope {
    /// Across the whole platform (every Domain).
    Platform,
    /// Within one Domain.
    Domain,
}

/// The roles every installation has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinRole {
    /// Operates the platform: every permission in every Domain.
    PlatformAdmin,
    /// Runs one Domain: everything inside it.
    DomainAdmin,
    /// Manages the calling model and people's phones, but not logins or roles.
    Manager,
    /// Front desk: sees everything, logs people in and out of phones.
    Receptionist,
    /// Watches a team: presence, registrations, audit; reads users and the calling model.
    Supervisor,
    /// A call-centre agent: presence and own hot-desking.
    Agent,
    /// Anyone with an Extension: own hot-desking and presence.
    Member,
}

use Permission as P;

impl BuiltinRole {
    /// Every built-in role.
    pub const ALL: &'static [BuiltinRole] = &[
        BuiltinRole::PlatformAdmin,
        BuiltinRole::DomainAdmin,
        BuiltinRole::Manager,
        BuiltinRole::Receptionist,
        BuiltinRole::Supervisor,
        BuiltinRole::Agent,
        BuiltinRole::Member,
    ];

    /// The role's stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BuiltinRole::PlatformAdmin => "platform_admin",
            BuiltinRole::DomainAdmin => "domain_admin",
            BuiltinRole::Manager => "manager",
            BuiltinRole::Receptionist => "receptionist",
            BuiltinRole::Supervisor => "supervisor",
            BuiltinRole::Agent => "agent",
            BuiltinRole::Member => "member",
        }
    }

    /// Parses a built-in role name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// Where the role applies.
    pub const fn scope(self) -> RoleScope {
        match self {
            BuiltinRole::PlatformAdmin => RoleScope::Platform,
            _ => RoleScope::Domain,
        }
    }

    /// One sentence on what the role is for.
    pub const fn description(self) -> &'static str {
        match self {
            BuiltinRole::PlatformAdmin => {
                "Operates the platform: every permission in every Domain."
            }
            BuiltinRole::DomainAdmin => "Runs one Domain: everything inside it.",
            BuiltinRole::Manager => {
                "Manages Extensions, Devices, Locations and hot-desking; reads users."
            }
            BuiltinRole::Receptionist => {
                "Sees the calling model and presence; logs people in and out of phones."
            }
            BuiltinRole::Supervisor => "Watches a team: presence, registrations, audit log.",
            BuiltinRole::Agent => "Own hot-desking and presence, reads Extensions.",
            BuiltinRole::Member => "Own hot-desking and Location sign-in.",
        }
    }

    /// The role's permissions.
    pub fn permissions(self) -> PermissionSet {
        match self {
            BuiltinRole::PlatformAdmin => PermissionSet::all(),
            BuiltinRole::DomainAdmin => PermissionSet::of(&[
                P::DomainsRead,
                P::UsersRead,
                P::UsersWrite,
                P::RolesRead,
                P::RolesWrite,
                P::ExtensionsRead,
                P::ExtensionsWrite,
                P::DevicesRead,
                P::DevicesWrite,
                P::LocationsRead,
                P::LocationsWrite,
                P::SettingsWrite,
                P::HotdeskSelf,
                P::HotdeskOthers,
                P::PresenceRead,
                P::RegistrationsRead,
                P::AuditRead,
                P::ApiKeysWrite,
                P::SecretsRead,
                P::NumbersRead,
                P::NumbersWrite,
                P::RoutingRead,
                P::RoutingWrite,
                P::CallFlowsRead,
                P::CallFlowsWrite,
                P::CallFlowsOverride,
                P::CallsRead,
                P::VoicemailManage,
            ]),
            BuiltinRole::Manager => PermissionSet::of(&[
                P::DomainsRead,
                P::UsersRead,
                P::RolesRead,
                P::ExtensionsRead,
                P::ExtensionsWrite,
                P::DevicesRead,
                P::DevicesWrite,
                P::LocationsRead,
                P::LocationsWrite,
                P::HotdeskSelf,
                P::HotdeskOthers,
                P::PresenceRead,
                P::RegistrationsRead,
                P::AuditRead,
                P::NumbersRead,
                P::NumbersWrite,
                P::RoutingRead,
                P::CallFlowsRead,
                P::CallFlowsWrite,
                P::CallFlowsOverride,
                P::CallsRead,
                P::VoicemailManage,
            ]),
            BuiltinRole::Receptionist => PermissionSet::of(&[
                P::DomainsRead,
                P::ExtensionsRead,
                P::DevicesRead,
                P::LocationsRead,
                P::HotdeskSelf,
                P::HotdeskOthers,
                P::PresenceRead,
                P::RegistrationsRead,
                P::NumbersRead,
                P::CallFlowsRead,
                P::CallFlowsOverride,
            ]),
            BuiltinRole::Supervisor => PermissionSet::of(&[
                P::DomainsRead,
                P::UsersRead,
                P::RolesRead,
                P::ExtensionsRead,
                P::DevicesRead,
                P::LocationsRead,
                P::HotdeskSelf,
                P::PresenceRead,
                P::RegistrationsRead,
                P::AuditRead,
                P::NumbersRead,
                P::RoutingRead,
                P::CallFlowsRead,
                P::CallsRead,
            ]),
            BuiltinRole::Agent => PermissionSet::of(&[
                P::DomainsRead,
                P::ExtensionsRead,
                P::HotdeskSelf,
                P::PresenceRead,
            ]),
            BuiltinRole::Member => PermissionSet::of(&[P::DomainsRead, P::HotdeskSelf]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_round_trips_through_its_name() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        assert!("devices.delete".parse::<Permission>().is_err());
    }

    #[test]
    fn permission_set_operations() {
        let a = PermissionSet::of(&[P::UsersRead, P::DevicesRead]);
        let b = PermissionSet::of(&[P::UsersRead]);
        assert!(b.is_subset_of(a));
        assert!(!a.is_subset_of(b));
        assert_eq!(a.missing_from(b), vec![P::DevicesRead]);
        assert_eq!(a.names(), vec!["users.read", "devices.read"]);
        assert!(PermissionSet::EMPTY.is_empty());
    }

    #[test]
    fn only_platform_admin_manages_domains_and_sees_nodes() {
        for role in BuiltinRole::ALL {
            let manages = role.permissions().contains(P::DomainsManage);
            assert_eq!(manages, *role == BuiltinRole::PlatformAdmin, "{role:?}");
            assert_eq!(
                role.permissions().contains(P::NodesRead),
                *role == BuiltinRole::PlatformAdmin
            );
        }
    }

    #[test]
    fn domain_roles_nest_from_member_up_to_domain_admin() {
        let admin = BuiltinRole::DomainAdmin.permissions();
        for role in [
            BuiltinRole::Manager,
            BuiltinRole::Receptionist,
            BuiltinRole::Supervisor,
            BuiltinRole::Agent,
            BuiltinRole::Member,
        ] {
            assert!(
                role.permissions().is_subset_of(admin),
                "{role:?} exceeds domain_admin"
            );
            assert!(
                BuiltinRole::Member
                    .permissions()
                    .is_subset_of(role.permissions()),
                "{role:?} lacks member"
            );
        }
    }
}
