//! Gateways (trunks to carriers): owned by a Domain (`routing.write`) or by the platform
//! (`gateways.manage`) and granted to Domains. The password is encrypted at rest like SIP
//! secrets and never returned. FreeSWITCH loads them from the directory (`purpose=gateways`)
//! and is told of every change after commit (`gateway.*` events: the ESL push kills the old
//! gateway and rescans the profile); the Domains that use one get their dialplan recompiled
//! (`routing.changed`).

use std::collections::BTreeMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::authorize_platform;
use crate::identity::permissions::Permission;
use crate::routing::outbound::freeswitch_gateway_name;
use crate::store::{domains, gateway_grants, gateways, outbound_route_gateways, outbound_routes};
use crate::telephony::secrets::SecretCipher;

/// The owner key of platform gateways.
pub const PLATFORM: &str = "platform";

/// Who a gateway belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A Domain.
    Domain(Uuid),
    /// The platform.
    Platform,
}

impl Owner {
    fn key(self) -> String {
        match self {
            Self::Domain(id) => id.to_string(),
            Self::Platform => PLATFORM.to_owned(),
        }
    }

    fn domain_id(self) -> Option<Uuid> {
        match self {
            Self::Domain(id) => Some(id),
            Self::Platform => None,
        }
    }
}

/// A change to a gateway: absent fields stay, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct GatewayPatch {
    /// Name, unique per owner.
    pub name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// `host` or `host:port`.
    pub proxy: Option<String>,
    /// Authentication realm.
    pub realm: Option<Option<String>>,
    /// User name.
    pub username: Option<Option<String>>,
    /// Password (write-only).
    pub password: Option<Option<String>>,
    /// Register with the carrier.
    pub register: Option<bool>,
    /// `udp`, `tcp`, `tls`.
    pub transport: Option<String>,
    /// Caller ID in the From header.
    pub caller_id_in_from: Option<bool>,
    /// OPTIONS ping interval (5–3600 s), or none.
    pub ping_secs: Option<Option<i32>>,
    /// Registration expiry (60–86400 s).
    pub expire_secs: Option<i32>,
    /// Domain in the From header.
    pub from_domain: Option<Option<String>>,
    /// Other addresses or networks the carrier sends calls from (replaces the list).
    pub inbound_addresses: Option<Vec<String>>,
    /// In service.
    pub enabled: Option<bool>,
}

/// Most addresses or networks a gateway lists besides its proxy.
pub const MAX_INBOUND_ADDRESSES: usize = 32;

/// A gateway's other inbound addresses, as networks (a bare address is its /32 or /128).
pub fn inbound_networks(g: &gateways::Model) -> Vec<ipnet::IpNet> {
    g.inbound_addresses
        .split(',')
        .filter_map(|a| parse_network(a.trim()))
        .collect()
}

fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>()
        .map(|n| n.trunc())
        .ok()
        .or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(ipnet::IpNet::from)
        })
}

/// A gateway as the API shows it (never the password).
#[derive(Debug, Clone)]
pub struct GatewayView {
    /// The row (its `password_encrypted` is not for showing).
    pub gateway: gateways::Model,
    /// Whether a password is set.
    pub has_password: bool,
    /// Domains it is granted to (platform gateways).
    pub granted_domain_ids: Vec<Uuid>,
    /// Its name in FreeSWITCH.
    pub freeswitch_name: String,
}

fn secret_context(id: Uuid) -> String {
    format!("gateway:{id}")
}

/// Decrypts a gateway's password (for the FreeSWITCH directory only).
pub fn password(cipher: &SecretCipher, g: &gateways::Model) -> Option<String> {
    let stored = g.password_encrypted.as_ref()?;
    match cipher.decrypt(stored, &secret_context(g.id)) {
        Ok(p) => Some(p.expose_secret().to_owned()),
        Err(e) => {
            tracing::error!(gateway_id = %g.id, error = %e, "cannot decrypt a gateway password: set it again");
            None
        }
    }
}

use secrecy::ExposeSecret;

async fn authorize<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    owner: Owner,
    write: bool,
) -> DomainResult<Option<domains::Model>> {
    match owner {
        Owner::Domain(id) => {
            let p = if write {
                Permission::RoutingWrite
            } else {
                Permission::RoutingRead
            };
            Ok(Some(scope::enter(db, ctx, id, p).await?))
        }
        Owner::Platform => {
            authorize_platform(&ctx.actor, Permission::GatewaysManage)?;
            Ok(None)
        }
    }
}

fn host_ok(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `host` or `host:port` (IPv6 in brackets).
pub fn proxy_ok(proxy: &str) -> bool {
    let (host, port) = match proxy.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (proxy, None),
    };
    host_ok(host) && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

fn token_ok(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\'' | b'\\' | b'$')
        })
}

fn validate(row: &gateways::Model, password_set: bool) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let name = row.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-'))
    {
        errors.add(
            "name",
            "invalid_name",
            "1 to 64 letters, digits, spaces, dots, dashes or underscores",
        );
    }
    if row.description.len() > 500 {
        errors.add("description", "too_long", "at most 500 characters");
    }
    if !proxy_ok(&row.proxy) {
        errors.add(
            "proxy",
            "invalid_proxy",
            "the carrier's host name or IP address, with an optional :port (e.g. sip.carrier.example:5060)",
        );
    }
    for (field, value) in [("realm", &row.realm), ("from_domain", &row.from_domain)] {
        if let Some(v) = value
            && !host_ok(v)
        {
            errors.add(field, "invalid_host", "a host name or IP address");
        }
    }
    if let Some(u) = &row.username
        && !token_ok(u, 64)
    {
        errors.add(
            "username",
            "invalid_username",
            "1 to 64 printable characters without spaces or quotes",
        );
    }
    if row.register && (row.username.is_none() || !password_set) {
        errors.add(
            "register",
            "credentials_required",
            "registering needs a user name and a password",
        );
    }
    if !matches!(row.transport.as_str(), "udp" | "tcp" | "tls") {
        errors.add(
            "transport",
            "invalid_choice",
            "must be one of: udp, tcp, tls",
        );
    }
    if let Some(p) = row.ping_secs
        && !(5..=3600).contains(&p)
    {
        errors.add("ping_secs", "out_of_range", "between 5 and 3600 seconds");
    }
    if !(60..=86_400).contains(&row.expire_secs) {
        errors.add(
            "expire_secs",
            "out_of_range",
            "between 60 and 86400 seconds",
        );
    }
    let inbound: Vec<&str> = row
        .inbound_addresses
        .split(',')
        .filter(|a| !a.is_empty())
        .collect();
    if inbound.len() > MAX_INBOUND_ADDRESSES {
        errors.add(
            "inbound_addresses",
            "too_many",
            format!("at most {MAX_INBOUND_ADDRESSES} addresses or networks"),
        );
    }
    for (i, a) in inbound.iter().enumerate() {
        match parse_network(a) {
            None => errors.add(
                format!("inbound_addresses[{i}]"),
                "invalid_address",
                "an IP address or a network (203.0.113.7, 198.51.100.0/24)",
            ),
            // Everyone is no carrier.
            Some(n) if n.prefix_len() < 8 => errors.add(
                format!("inbound_addresses[{i}]"),
                "too_wide",
                "a network no wider than /8",
            ),
            Some(_) => {}
        }
    }
    errors
}

fn audit_view(g: &gateways::Model, grants: &[Uuid]) -> Value {
    json!({
        "id": g.id,
        "domain_id": g.domain_id,
        "name": g.name,
        "description": g.description,
        "proxy": g.proxy,
        "realm": g.realm,
        "username": g.username,
        "has_password": g.password_encrypted.is_some(),
        "register": g.register,
        "transport": g.transport,
        "caller_id_in_from": g.caller_id_in_from,
        "ping_secs": g.ping_secs,
        "expire_secs": g.expire_secs,
        "from_domain": g.from_domain,
        "inbound_addresses": inbound_networks(g).iter().map(ToString::to_string).collect::<Vec<_>>(),
        "enabled": g.enabled,
        "granted_domain_ids": grants,
    })
}

async fn grants_of<C: ConnectionTrait>(db: &C, id: Uuid) -> DomainResult<Vec<Uuid>> {
    Ok(gateway_grants::Entity::find()
        .filter(gateway_grants::Column::GatewayId.eq(id))
        .order_by_asc(gateway_grants::Column::DomainId)
        .all(db)
        .await?
        .into_iter()
        .map(|g| g.domain_id)
        .collect())
}

async fn view_of<C: ConnectionTrait>(db: &C, g: gateways::Model) -> DomainResult<GatewayView> {
    let granted_domain_ids = if g.domain_id.is_none() {
        grants_of(db, g.id).await?
    } else {
        Vec::new()
    };
    Ok(GatewayView {
        has_password: g.password_encrypted.is_some(),
        freeswitch_name: freeswitch_gateway_name(g.id),
        granted_domain_ids,
        gateway: g,
    })
}

async fn find<C: ConnectionTrait>(db: &C, owner: Owner, id: Uuid) -> DomainResult<gateways::Model> {
    gateways::Entity::find_by_id(id)
        .filter(gateways::Column::OwnerKey.eq(owner.key()))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("gateway"))
}

/// The Domains whose calls may use a gateway: its owner, or its grantees.
async fn users_of<C: ConnectionTrait>(
    db: &C,
    g: &gateways::Model,
) -> DomainResult<Vec<domains::Model>> {
    let ids: Vec<Uuid> = match g.domain_id {
        Some(id) => vec![id],
        None => grants_of(db, g.id).await?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(domains::Entity::find()
        .filter(domains::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

fn apply(row: &mut gateways::Model, p: &GatewayPatch) {
    if let Some(v) = &p.name {
        row.name = v.trim().to_owned();
    }
    if let Some(v) = &p.description {
        row.description = v.trim().to_owned();
    }
    if let Some(v) = &p.proxy {
        row.proxy = v.trim().to_ascii_lowercase();
    }
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(v) = &p.realm {
        row.realm = opt(v);
    }
    if let Some(v) = &p.username {
        row.username = opt(v);
    }
    if let Some(v) = p.register {
        row.register = v;
    }
    if let Some(v) = &p.transport {
        row.transport = v.trim().to_ascii_lowercase();
    }
    if let Some(v) = p.caller_id_in_from {
        row.caller_id_in_from = v;
    }
    if let Some(v) = p.ping_secs {
        row.ping_secs = v;
    }
    if let Some(v) = p.expire_secs {
        row.expire_secs = v;
    }
    if let Some(v) = &p.from_domain {
        row.from_domain = opt(v);
    }
    if let Some(list) = &p.inbound_addresses {
        // Canonical where it parses; as given where not (validation names it).
        let parts: Vec<String> = list
            .iter()
            .map(|a| a.trim())
            .map(|a| match parse_network(a) {
                Some(n) => n.to_string(),
                // Kept (without commas) so that validation names it.
                None if a.is_empty() => "-".to_owned(),
                None => a.replace(',', " "),
            })
            .collect();
        row.inbound_addresses = parts.join(",");
    }
    if let Some(v) = p.enabled {
        row.enabled = v;
    }
}

/// The events of a gateway change: the gateway itself (for FreeSWITCH, on its owner's Domain
/// or the nil Domain for the platform), and `routing.changed` for each Domain that uses it.
fn events(
    kind: ChangeKind,
    g: &gateways::Model,
    owner: Option<&domains::Model>,
    users: &[domains::Model],
    ctx: &Context,
) -> Vec<ChangeEvent> {
    let mut out = vec![ChangeEvent::new(
        owner.map_or(Uuid::nil(), |d| d.id),
        owner.map_or("", |d| d.sip_domain.as_str()),
        kind,
        g.id,
        ctx.now,
    )];
    out.extend(
        users
            .iter()
            .filter(|d| Some(d.id) != owner.map(|o| o.id))
            .map(|d| {
                ChangeEvent::new(
                    d.id,
                    &d.sip_domain,
                    ChangeKind::RoutingChanged,
                    g.id,
                    ctx.now,
                )
            }),
    );
    out
}

/// Creates a gateway.
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    owner: Owner,
    patch: GatewayPatch,
) -> DomainResult<GatewayView> {
    let domain = authorize(db, ctx, owner, true).await?;
    let mut errors = FieldErrors::new();
    if patch.name.is_none() {
        errors.add("name", "required", "a gateway needs a name");
    }
    if patch.proxy.is_none() {
        errors.add("proxy", "required", "a gateway needs the carrier's address");
    }
    errors.into_result()?;
    let id = Uuid::now_v7();
    let mut row = gateways::Model {
        id,
        domain_id: owner.domain_id(),
        owner_key: owner.key(),
        name: String::new(),
        description: String::new(),
        proxy: String::new(),
        realm: None,
        username: None,
        password_encrypted: None,
        register: false,
        transport: "udp".into(),
        caller_id_in_from: true,
        ping_secs: None,
        expire_secs: 600,
        from_domain: None,
        inbound_addresses: String::new(),
        enabled: true,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply(&mut row, &patch);
    set_password(cipher, &mut row, &patch)?;
    validate(&row, row.password_encrypted.is_some()).into_result()?;
    let txn = crate::db::begin_write(db).await?;
    let saved = gateways::ActiveModel::from(row).insert(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: owner.domain_id(),
            action: "gateway.create",
            target_kind: "gateway",
            target_id: Some(saved.id.to_string()),
            before: None,
            after: Some(audit_view(&saved, &[])),
        },
    )
    .await?;
    txn.commit().await?;
    let users = domain.iter().cloned().collect::<Vec<_>>();
    bus.publish(events(
        ChangeKind::GatewayCreated,
        &saved,
        domain.as_ref(),
        &users,
        ctx,
    ));
    view_of(db, saved).await
}

fn set_password(
    cipher: &SecretCipher,
    row: &mut gateways::Model,
    patch: &GatewayPatch,
) -> DomainResult<()> {
    match &patch.password {
        None => {}
        Some(None) => row.password_encrypted = None,
        Some(Some(p)) => {
            if p.is_empty() || p.len() > 128 || p.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "password",
                    "invalid_password",
                    "1 to 128 characters, no control characters",
                ));
            }
            row.password_encrypted = Some(cipher.encrypt(p, &secret_context(row.id)));
        }
    }
    Ok(())
}

/// Changes a gateway.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    owner: Owner,
    id: Uuid,
    patch: GatewayPatch,
) -> DomainResult<GatewayView> {
    let domain = authorize(db, ctx, owner, true).await?;
    let txn = crate::db::begin_write(db).await?;
    let before = find(&txn, owner, id).await?;
    let mut row = before.clone();
    apply(&mut row, &patch);
    set_password(cipher, &mut row, &patch)?;
    validate(&row, row.password_encrypted.is_some()).into_result()?;
    row.updated_at = ctx.now;
    let saved = row.into_active_model().reset_all().update(&txn).await?;
    let grants = grants_of(&txn, id).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: owner.domain_id(),
            action: "gateway.update",
            target_kind: "gateway",
            target_id: Some(id.to_string()),
            before: Some(audit_view(&before, &grants)),
            after: Some(audit_view(&saved, &grants)),
        },
    )
    .await?;
    let users = users_of(&txn, &saved).await?;
    txn.commit().await?;
    bus.publish(events(
        ChangeKind::GatewayUpdated,
        &saved,
        domain.as_ref(),
        &users,
        ctx,
    ));
    view_of(db, saved).await
}

/// Reads a gateway.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    owner: Owner,
    id: Uuid,
) -> DomainResult<GatewayView> {
    authorize(db, ctx, owner, false).await?;
    view_of(db, find(db, owner, id).await?).await
}

/// Lists the owner's gateways by name; for a Domain, the platform gateways granted to it too.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    owner: Owner,
) -> DomainResult<Vec<GatewayView>> {
    authorize(db, ctx, owner, false).await?;
    let mut rows = gateways::Entity::find()
        .filter(gateways::Column::OwnerKey.eq(owner.key()))
        .all(db)
        .await?;
    if let Owner::Domain(domain_id) = owner {
        rows.extend(usable_granted(db, domain_id).await?);
    }
    rows.sort_by(|a, b| (a.domain_id.is_none(), &a.name).cmp(&(b.domain_id.is_none(), &b.name)));
    let mut out = Vec::with_capacity(rows.len());
    for g in rows {
        out.push(view_of(db, g).await?);
    }
    Ok(out)
}

async fn usable_granted<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<gateways::Model>> {
    let ids: Vec<Uuid> = gateway_grants::Entity::find()
        .filter(gateway_grants::Column::DomainId.eq(domain_id))
        .all(db)
        .await?
        .into_iter()
        .map(|g| g.gateway_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(gateways::Entity::find()
        .filter(gateways::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// The gateways a Domain's routes may name: its own and those granted to it. For the
/// Outbound Route checks and the dialplan loader.
pub async fn usable_by<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<gateways::Model>> {
    let mut rows = gateways::Entity::find()
        .filter(gateways::Column::DomainId.eq(domain_id))
        .all(db)
        .await?;
    rows.extend(usable_granted(db, domain_id).await?);
    Ok(rows)
}

/// Deletes a gateway. One that Outbound Routes use is refused with 409 `in_use` naming them,
/// unless `force`, which takes it off those routes in the same transaction.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    owner: Owner,
    id: Uuid,
    force: bool,
) -> DomainResult<()> {
    let domain = authorize(db, ctx, owner, true).await?;
    let txn = crate::db::begin_write(db).await?;
    let before = find(&txn, owner, id).await?;
    let used: Vec<Uuid> = outbound_route_gateways::Entity::find()
        .filter(outbound_route_gateways::Column::GatewayId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| r.route_id)
        .collect();
    if !used.is_empty() && !force {
        let names: Vec<String> = outbound_routes::Entity::find()
            .filter(outbound_routes::Column::Id.is_in(used))
            .order_by_asc(outbound_routes::Column::Name)
            .all(&txn)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        return Err(DomainError::Conflict {
            code: "in_use",
            message: format!(
                "the gateway is used by the Outbound Route(s) {}; delete with ?force=true to take it off them",
                names.join(", ")
            ),
            field: None,
        });
    }
    let users = users_of(&txn, &before).await?;
    let grants = grants_of(&txn, id).await?;
    outbound_route_gateways::Entity::delete_many()
        .filter(outbound_route_gateways::Column::GatewayId.eq(id))
        .exec(&txn)
        .await?;
    gateways::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: owner.domain_id(),
            action: "gateway.delete",
            target_kind: "gateway",
            target_id: Some(id.to_string()),
            before: Some(audit_view(&before, &grants)),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish(events(
        ChangeKind::GatewayDeleted,
        &before,
        domain.as_ref(),
        &users,
        ctx,
    ));
    Ok(())
}

/// Grants a platform gateway to a Domain (or revokes it): `gateways.manage`. Revoking leaves
/// the Domain's routes naming it, which then skip it (the call explanation says so).
pub async fn set_grant(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
    domain_id: Uuid,
    granted: bool,
) -> DomainResult<GatewayView> {
    authorize_platform(&ctx.actor, Permission::GatewaysManage)?;
    let txn = crate::db::begin_write(db).await?;
    let g = find(&txn, Owner::Platform, id).await?;
    let domain = domains::Entity::find_by_id(domain_id)
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let before = grants_of(&txn, id).await?;
    let changed = if granted {
        let inserted = gateway_grants::Entity::insert(gateway_grants::ActiveModel::from(
            gateway_grants::Model {
                gateway_id: id,
                domain_id,
                created_at: ctx.now,
            },
        ))
        .on_conflict_do_nothing_on([
            gateway_grants::Column::GatewayId,
            gateway_grants::Column::DomainId,
        ])
        .exec_without_returning(&txn)
        .await?;
        matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0)
    } else {
        gateway_grants::Entity::delete_many()
            .filter(gateway_grants::Column::GatewayId.eq(id))
            .filter(gateway_grants::Column::DomainId.eq(domain_id))
            .exec(&txn)
            .await?
            .rows_affected
            > 0
    };
    if changed {
        let after = grants_of(&txn, id).await?;
        audit::record(
            &txn,
            ctx,
            audit::Entry {
                domain_id: Some(domain_id),
                action: if granted {
                    "gateway.grant"
                } else {
                    "gateway.revoke"
                },
                target_kind: "gateway",
                target_id: Some(id.to_string()),
                before: Some(audit_view(&g, &before)),
                after: Some(audit_view(&g, &after)),
            },
        )
        .await?;
    }
    txn.commit().await?;
    if changed {
        bus.publish([ChangeEvent::new(
            domain.id,
            &domain.sip_domain,
            ChangeKind::RoutingChanged,
            id,
            ctx.now,
        )]);
    }
    view_of(db, g).await
}

/// Every gateway with its plain password, for FreeSWITCH's `purpose=gateways` answer (no
/// authorization: the mod_xml_curl endpoint is authenticated at its edge).
pub async fn load_for_freeswitch<C: ConnectionTrait>(
    db: &C,
    cipher: &SecretCipher,
) -> DomainResult<Vec<(gateways::Model, Option<String>)>> {
    let rows = gateways::Entity::find()
        .order_by_asc(gateways::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|g| {
            let p = password(cipher, &g);
            (g, p)
        })
        .collect())
}

/// The FreeSWITCH names of the gateways FreeSWITCH should hold (the enabled ones): a node
/// that holds any other `sb_…` gateway missed its removal.
pub async fn loaded_names<C: ConnectionTrait>(db: &C) -> DomainResult<Vec<String>> {
    Ok(gateways::Entity::find()
        .filter(gateways::Column::Enabled.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|g| crate::routing::outbound::freeswitch_gateway_name(g.id))
        .collect())
}

/// Gateways by id with their owner's name, for listing what routes name.
pub fn by_id(rows: &[gateways::Model]) -> BTreeMap<Uuid, &gateways::Model> {
    rows.iter().map(|g| (g.id, g)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_are_hosts_with_an_optional_port() {
        for ok in [
            "sip.carrier.example",
            "sip.carrier.example:5060",
            "127.0.0.2:5080",
            "192.0.2.1",
            "[2001:db8::1]:5060",
            "2001:db8::1",
        ] {
            assert!(proxy_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "sip:carrier.example",
            "carrier.example:0",
            "carrier.example:70000",
            "carrier example",
            "-bad.example",
            "a;transport=tcp",
            "<x>",
        ] {
            assert!(!proxy_ok(bad), "{bad}");
        }
    }
}
