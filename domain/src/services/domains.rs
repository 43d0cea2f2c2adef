//! Domains (tenants): created, changed and deleted at platform level; read by anyone holding a
//! role in them.
//!
//! A Domain is also a FreeSWITCH SIP domain, so its `sip_domain` is a validated lower-case FQDN,
//! unique platform-wide. Deleting a Domain that still owns anything needs `force`, and then
//! removes everything it owns in one transaction.

use std::str::FromStr;

use chrono_tz::Tz;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldError, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::{authorize, authorize_platform, visible_domains};
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{
    api_keys, devices, domains, extensions, locations, role_assignments, roles, search, users,
};

/// Longest Domain name, in characters.
pub const MAX_DOMAIN_NAME: usize = 100;
/// The time zone of a Domain created without one.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// A SIP domain: a lower-case fully qualified domain name.
///
/// Input is trimmed and lower-cased (DNS names are case-insensitive, and FreeSWITCH compares
/// realms as strings, so one spelling is stored). Then: 2 or more dot-separated labels of
/// 1–63 characters from `a-z`, `0-9` and `-`, not starting or ending with `-`, at most 253
/// characters in all, and a top-level label that is not all digits (an IP address is not a
/// domain name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipDomain(String);

impl SipDomain {
    /// Normalises and checks a SIP domain.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim().to_lowercase();
        let invalid = |message: &str| FieldError::new("sip_domain", "invalid_fqdn", message);
        if value.is_empty() {
            return Err(invalid(
                "a SIP domain is required, e.g. acme.pbx.example.net",
            ));
        }
        if value.len() > 253 {
            return Err(invalid("a SIP domain has at most 253 characters"));
        }
        let labels: Vec<&str> = value.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid(
                "a SIP domain is a fully qualified name with at least two labels, e.g. acme.example.net",
            ));
        }
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(invalid(
                    "each dot-separated label has 1 to 63 characters (no empty labels)",
                ));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(invalid(
                    "a SIP domain may only contain letters a-z, digits, hyphens and dots",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label cannot start or end with a hyphen"));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid(
                "the last label cannot be all digits (an IP address is not a SIP domain name)",
            ));
        }
        Ok(Self(value))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name, e.g. `Europe/Berlin`, stored in its canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    /// Checks a time zone name against the IANA database.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        Tz::from_str(input.trim()).map(Self).map_err(|_| {
            FieldError::new(
                "timezone",
                "unknown_timezone",
                format!("{input:?} is not an IANA time zone name such as Europe/Berlin or UTC"),
            )
        })
    }

    /// The canonical name.
    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }
}

/// A Domain's display name: 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainName(String);

impl DomainName {
    /// Trims and checks a Domain name.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let value = input.trim();
        let count = value.chars().count();
        if count == 0 || count > MAX_DOMAIN_NAME {
            return Err(FieldError::new(
                "name",
                "invalid_length",
                format!("a Domain name has 1 to {MAX_DOMAIN_NAME} characters"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(FieldError::new(
                "name",
                "invalid_format",
                "a Domain name cannot contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Domain to create.
#[derive(Debug, Clone, Default)]
pub struct NewDomain {
    /// Display name.
    pub name: String,
    /// The SIP domain (normalised to lower case).
    pub sip_domain: String,
    /// IANA time zone; `UTC` when absent.
    pub timezone: Option<String>,
    /// In service; `true` when absent.
    pub enabled: Option<bool>,
}

/// A change to a Domain; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct DomainPatch {
    /// New display name.
    pub name: Option<String>,
    /// New SIP domain (phones must then use the new realm).
    pub sip_domain: Option<String>,
    /// New time zone.
    pub timezone: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Filters of the Domain list.
#[derive(Debug, Clone, Default)]
pub struct DomainFilter {
    /// Part of the name or the SIP domain, case-insensitive.
    pub q: Option<String>,
    /// Only enabled, or only disabled, Domains.
    pub enabled: Option<bool>,
}

fn snapshot(d: &domains::Model) -> Value {
    json!({
        "id": d.id,
        "name": d.name,
        "sip_domain": d.sip_domain,
        "enabled": d.enabled,
        "timezone": d.timezone,
    })
}

/// Requires platform `domains.manage` for a change to `domain_id`, answering 404 (not 403)
/// to a caller who cannot see that Domain at all.
fn authorize_manage(ctx: &Context, domain_id: Uuid) -> DomainResult<()> {
    authorize(&ctx.actor, Permission::DomainsManage, domain_id)?;
    authorize_platform(&ctx.actor, Permission::DomainsManage)
}

async fn find<C: ConnectionTrait>(db: &C, id: Uuid) -> DomainResult<domains::Model> {
    domains::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))
}

/// Creates a Domain (platform `domains.manage`).
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    input: NewDomain,
) -> DomainResult<domains::Model> {
    authorize_platform(&ctx.actor, Permission::DomainsManage)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", DomainName::parse(&input.name));
    let sip_domain = errors.check("sip_domain", SipDomain::parse(&input.sip_domain));
    let timezone = errors.check(
        "timezone",
        TimeZoneName::parse(input.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE)),
    );
    errors.into_result()?;
    let (Some(name), Some(sip_domain), Some(timezone)) = (name, sip_domain, timezone) else {
        return Err(DomainError::Internal("validated values missing".into()));
    };
    check_sip_domain_free(db, &sip_domain, None).await?;

    let txn = crate::db::begin_write(db).await?;
    let domain = domains::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.as_str().to_owned()),
        sip_domain: Set(sip_domain.as_str().to_owned()),
        enabled: Set(input.enabled.unwrap_or(true)),
        timezone: Set(timezone.as_str().to_owned()),
        created_at: Set(ctx.now),
        updated_at: Set(ctx.now),
    }
    .insert(&txn)
    .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action: "domain.create",
            target_kind: "domain",
            target_id: Some(domain.id.to_string()),
            before: None,
            after: Some(snapshot(&domain)),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        ChangeKind::DomainCreated,
        domain.id,
        ctx.now,
    )]);
    Ok(domain)
}

/// A friendlier 409 than the constraint's, before any write (the unique constraint still
/// catches races).
async fn check_sip_domain_free<C: ConnectionTrait>(
    db: &C,
    sip_domain: &SipDomain,
    except: Option<Uuid>,
) -> DomainResult<()> {
    let mut query =
        domains::Entity::find().filter(domains::Column::SipDomain.eq(sip_domain.as_str()));
    if let Some(id) = except {
        query = query.filter(domains::Column::Id.ne(id));
    }
    if query.count(db).await? > 0 {
        return Err(DomainError::Conflict {
            code: "already_exists",
            message: "a Domain with this SIP domain already exists".into(),
            field: Some("sip_domain".into()),
        });
    }
    Ok(())
}

/// Lists the Domains the caller can see, in creation order: every Domain for a platform role,
/// otherwise those the caller holds a role in.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    filter: &DomainFilter,
    page: &PageRequest,
) -> DomainResult<Page<domains::Model>> {
    let mut query = domains::Entity::find();
    if let Some(ids) = visible_domains(&ctx.actor) {
        if ids.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        query = query.filter(domains::Column::Id.is_in(ids));
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let lower = q.to_lowercase();
        query = query.filter(
            Condition::any()
                .add(domains::Column::SipDomain.like(search::contains(&lower)))
                .add(
                    Expr::expr(Func::lower(Expr::col(domains::Column::Name)))
                        .like(search::contains(&lower)),
                ),
        );
    }
    if let Some(enabled) = filter.enabled {
        query = query.filter(domains::Column::Enabled.eq(enabled));
    }
    fetch_page(db, query, domains::Column::Id, |d| d.id, page).await
}

/// Reads one Domain (`domains.read` in it).
pub async fn get(db: &DatabaseConnection, ctx: &Context, id: Uuid) -> DomainResult<domains::Model> {
    scope::enter(db, ctx, id, Permission::DomainsRead).await
}

/// Changes a Domain (platform `domains.manage`). A new SIP domain is validated and must be
/// free; the change is published so FreeSWITCH re-reads the Domain.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
    patch: DomainPatch,
) -> DomainResult<domains::Model> {
    authorize_manage(ctx, id)?;
    let before = find(db, id).await?;
    let mut errors = FieldErrors::new();
    let name = match &patch.name {
        Some(n) => errors.check("name", DomainName::parse(n)),
        None => None,
    };
    let sip_domain = match &patch.sip_domain {
        Some(s) => errors.check("sip_domain", SipDomain::parse(s)),
        None => None,
    };
    let timezone = match &patch.timezone {
        Some(t) => errors.check("timezone", TimeZoneName::parse(t)),
        None => None,
    };
    errors.into_result()?;
    if let Some(s) = &sip_domain {
        check_sip_domain_free(db, s, Some(id)).await?;
    }
    let mut active = before.clone().into_active_model();
    if let Some(name) = name {
        active.name = Set(name.as_str().to_owned());
    }
    if let Some(s) = sip_domain {
        active.sip_domain = Set(s.as_str().to_owned());
    }
    if let Some(t) = timezone {
        active.timezone = Set(t.as_str().to_owned());
    }
    if let Some(enabled) = patch.enabled {
        active.enabled = Set(enabled);
    }
    if !active.is_changed() {
        return Ok(before);
    }
    active.updated_at = Set(ctx.now);

    let txn = crate::db::begin_write(db).await?;
    let after = active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(id),
            action: "domain.update",
            target_kind: "domain",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&before)),
            after: Some(snapshot(&after)),
        },
    )
    .await?;
    // Disabling a Domain ends every registration of its SIP users at once (and their cached
    // directory entries go, so the next REGISTER asks and is refused).
    let disabled_users = if before.enabled && !after.enabled {
        sip_users_of(&txn, id).await?
    } else {
        Vec::new()
    };
    // Phones show the Domain's time: a new time zone reaches them at once.
    let phones = if after.enabled && before.timezone != after.timezone {
        super::provisioning::phones_of(&txn, id).await?
    } else {
        Vec::new()
    };
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        id,
        &after.sip_domain,
        ChangeKind::DomainUpdated,
        id,
        ctx.now,
    )
    .refresh(disabled_users.clone())
    .drop_registrations(disabled_users)
    .check_sync(phones)]);
    Ok(after)
}

/// Every SIP user of a Domain: its Devices' SIP user names and its Extension numbers.
async fn sip_users_of<C: ConnectionTrait>(db: &C, domain_id: Uuid) -> DomainResult<Vec<String>> {
    let mut users: Vec<String> = devices::Entity::find()
        .select_only()
        .column(devices::Column::SipUsername)
        .filter(devices::Column::DomainId.eq(domain_id))
        .into_tuple()
        .all(db)
        .await?;
    let numbers: Vec<String> = extensions::Entity::find()
        .select_only()
        .column(extensions::Column::Number)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .into_tuple()
        .all(db)
        .await?;
    users.extend(numbers);
    Ok(users)
}

/// What a Domain owns, counted before deleting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DomainContents {
    /// Users holding a role in the Domain.
    pub users: u64,
    /// Custom roles.
    pub custom_roles: u64,
    /// API keys scoped to the Domain.
    pub api_keys: u64,
    /// Extensions.
    pub extensions: u64,
    /// Devices.
    pub devices: u64,
    /// Locations.
    pub locations: u64,
}

impl DomainContents {
    /// True when the Domain owns nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn describe(&self) -> String {
        [
            (self.users, "user(s)"),
            (self.custom_roles, "custom role(s)"),
            (self.api_keys, "API key(s)"),
            (self.extensions, "extension(s)"),
            (self.devices, "device(s)"),
            (self.locations, "location(s)"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }

    fn to_json(self) -> Value {
        json!({
            "users": self.users,
            "custom_roles": self.custom_roles,
            "api_keys": self.api_keys,
            "extensions": self.extensions,
            "devices": self.devices,
            "locations": self.locations,
        })
    }
}

async fn member_ids<C: ConnectionTrait>(db: &C, domain_id: Uuid) -> DomainResult<Vec<Uuid>> {
    Ok(role_assignments::Entity::find()
        .select_only()
        .column(role_assignments::Column::UserId)
        .distinct()
        .filter(role_assignments::Column::DomainId.eq(domain_id))
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

async fn contents<C: ConnectionTrait>(db: &C, domain_id: Uuid) -> DomainResult<DomainContents> {
    Ok(DomainContents {
        users: member_ids(db, domain_id).await?.len() as u64,
        custom_roles: roles::Entity::find()
            .filter(roles::Column::DomainId.eq(domain_id))
            .count(db)
            .await?,
        api_keys: api_keys::Entity::find()
            .filter(api_keys::Column::DomainId.eq(domain_id))
            .count(db)
            .await?,
        extensions: extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .count(db)
            .await?,
        devices: devices::Entity::find()
            .filter(devices::Column::DomainId.eq(domain_id))
            .count(db)
            .await?,
        locations: locations::Entity::find()
            .filter(locations::Column::DomainId.eq(domain_id))
            .count(db)
            .await?,
    })
}

/// What deleting a Domain removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainDeletion {
    /// What the Domain owned.
    pub contents: DomainContents,
    /// Accounts deleted because this Domain was their only membership.
    pub deleted_users: Vec<Uuid>,
}

/// Deletes a Domain (platform `domains.manage`). One that still owns anything (members, custom
/// roles, API keys, Extensions, Devices, Locations) is refused with `domain_not_empty` unless
/// `force`. Everything it owns goes in the same transaction (by the schema's cascading
/// foreign keys), and so do the accounts whose only membership it was (users holding a role in
/// another Domain or at platform level stay). Its Numbers are not its own: they go back to
/// the platform's stock, pointing nowhere. The Domain's own audit log goes with it, so the
/// deletion is audited at platform level.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
    force: bool,
) -> DomainResult<DomainDeletion> {
    authorize_manage(ctx, id)?;
    find(db, id).await?;

    let txn = crate::db::begin_write(db).await?;
    // Locked (PostgreSQL) so that nothing is assigned to the Domain while it goes: a Number
    // assignment share-locks the Domain and waits, then finds it gone.
    let domain = domains::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let contents = contents(&txn, id).await?;
    if !contents.is_empty() && !force {
        return Err(DomainError::conflict(
            "domain_not_empty",
            format!(
                "the Domain still owns {}; delete with ?force=true to remove all of it",
                contents.describe()
            ),
        ));
    }
    let members = member_ids(&txn, id).await?;
    let staying: Vec<Uuid> = if members.is_empty() {
        Vec::new()
    } else {
        role_assignments::Entity::find()
            .select_only()
            .column(role_assignments::Column::UserId)
            .distinct()
            .filter(role_assignments::Column::UserId.is_in(members.clone()))
            .filter(
                Condition::any()
                    .add(role_assignments::Column::DomainId.is_null())
                    .add(role_assignments::Column::DomainId.ne(id)),
            )
            .into_tuple::<Uuid>()
            .all(&txn)
            .await?
    };
    let mut deleted_users: Vec<Uuid> = members
        .into_iter()
        .filter(|u| !staying.contains(u))
        .collect();
    deleted_users.sort();
    if !deleted_users.is_empty() {
        users::Entity::delete_many()
            .filter(users::Column::Id.is_in(deleted_users.clone()))
            .exec(&txn)
            .await?;
    }
    // Every registration of its phones ends with it (and their cached directory entries go).
    let gone_users = sip_users_of(&txn, id).await?;
    // Its Numbers go back to the platform's stock, pointing nowhere.
    let released_numbers = super::numbers::release_domain(&txn, ctx, id).await?;
    domains::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action: "domain.delete",
            target_kind: "domain",
            target_id: Some(id.to_string()),
            before: Some(snapshot(&domain)),
            after: Some(json!({
                "forced": force,
                "contents": contents.to_json(),
                "deleted_users": deleted_users,
                "released_numbers": released_numbers,
            })),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        id,
        &domain.sip_domain,
        ChangeKind::DomainDeleted,
        id,
        ctx.now,
    )
    .refresh(gone_users.clone())
    .drop_registrations(gone_users)]);
    Ok(DomainDeletion {
        contents,
        deleted_users,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_domains_are_normalised_to_lower_case() {
        assert_eq!(
            SipDomain::parse("  Acme.PBX.Example.NET ")
                .map(|d| d.0)
                .ok(),
            Some("acme.pbx.example.net".to_owned())
        );
        assert!(SipDomain::parse("a-1.b2.example").is_ok());
        assert!(SipDomain::parse(&format!("{}.example.net", "a".repeat(63))).is_ok());
    }

    #[test]
    fn malformed_sip_domains_are_refused() {
        for bad in [
            "",
            "localhost",
            "acme..example.net",
            ".example.net",
            "example.net.",
            "-acme.example.net",
            "acme-.example.net",
            "ac_me.example.net",
            "acme.example.net:5060",
            "acme example.net",
            "10.0.0.1",
            "bücher.example",
            &format!("{}.example.net", "a".repeat(64)),
            &format!("{}.net", "abcdefghi.".repeat(25)),
        ] {
            let err = SipDomain::parse(bad).err();
            assert_eq!(
                err.map(|e| e.code),
                Some("invalid_fqdn".to_owned()),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn time_zones_come_from_the_iana_database() {
        assert_eq!(
            TimeZoneName::parse("Europe/Berlin")
                .map(|t| t.as_str())
                .ok(),
            Some("Europe/Berlin")
        );
        assert!(TimeZoneName::parse("UTC").is_ok());
        for bad in ["", "Mars/Olympus", "CEST+1", "europe/berlin_x"] {
            assert!(TimeZoneName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn domain_names_are_trimmed_and_bounded() {
        assert!(DomainName::parse("  Acme ").is_ok_and(|n| n.as_str() == "Acme"));
        assert!(DomainName::parse("").is_err());
        assert!(DomainName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn contents_describe_only_what_is_there() {
        let c = DomainContents {
            users: 2,
            api_keys: 1,
            ..Default::default()
        };
        assert_eq!(c.describe(), "2 user(s), 1 API key(s)");
        assert!(DomainContents::default().is_empty());
    }
}
