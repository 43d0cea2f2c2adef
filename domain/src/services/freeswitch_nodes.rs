//! FreeSWITCH nodes registered through the API (platform scope, `nodes.write`): where their
//! Event Socket listens, its password (encrypted at rest with the secrets key, never shown),
//! the sofia profile, and which Domains they serve (all, or a list). Every switchboard node
//! hears `freeswitch_node.changed` and starts, restarts or stops its link; the static
//! configuration list stays beside them for single-node setups.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::authz::authorize_platform;
use crate::identity::permissions::Permission;
use crate::store::{domains, freeswitch_node_domains, freeswitch_nodes};
use crate::telephony::secrets::SecretCipher;

/// What a create or change sets; `None`: unchanged (required on create where noted).
#[derive(Debug, Clone, Default)]
pub struct NodeInput {
    /// The name (required on create): letters, digits, `.`, `_`, `-`; unique among every
    /// node, the configured ones included.
    pub name: Option<String>,
    /// Host of its Event Socket (required on create).
    pub host: Option<String>,
    /// Port of its Event Socket (default 8021).
    pub port: Option<i64>,
    /// The Event Socket password (required on create).
    pub password: Option<String>,
    /// The sofia profile phones register on (default `internal`).
    pub profile: Option<String>,
    /// `Some(None)`: every Domain; `Some(Some(ids))`: these Domains.
    pub domains: Option<Option<Vec<Uuid>>>,
}

/// A registered node as the API shows it (the password never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Event Socket host.
    pub host: String,
    /// Event Socket port.
    pub port: u16,
    /// The sofia profile.
    pub profile: String,
    /// The Domains it serves; `None`: all.
    pub domains: Option<Vec<Uuid>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A registered node with its password, for the bridge.
#[derive(Debug, Clone)]
pub struct NodeSecret {
    /// The node.
    pub view: NodeView,
    /// Its Event Socket password.
    pub password: SecretString,
    /// The SIP domains of the Domains it serves (`None`: all).
    pub sip_domains: Option<Vec<String>>,
}

fn secret_context(id: Uuid) -> String {
    format!("freeswitch_node:{id}")
}

fn view(row: &freeswitch_nodes::Model, domains: Option<Vec<Uuid>>) -> NodeView {
    NodeView {
        id: row.id,
        name: row.name.clone(),
        host: row.host.clone(),
        port: u16::try_from(row.port).unwrap_or(0),
        profile: row.profile.clone(),
        domains,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn audit_view(v: &NodeView) -> Value {
    json!({
        "id": v.id, "name": v.name, "host": v.host, "port": v.port, "profile": v.profile,
        "domains": v.domains,
    })
}

async fn served(db: &impl sea_orm::ConnectionTrait) -> DomainResult<BTreeMap<Uuid, Vec<Uuid>>> {
    let mut out: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for row in freeswitch_node_domains::Entity::find().all(db).await? {
        out.entry(row.node_id).or_default().push(row.domain_id);
    }
    Ok(out)
}

fn with_domains(row: &freeswitch_nodes::Model, served: &BTreeMap<Uuid, Vec<Uuid>>) -> NodeView {
    let domains = (!row.all_domains).then(|| served.get(&row.id).cloned().unwrap_or_default());
    view(row, domains)
}

/// Every registered node, by name (`nodes.read`).
pub async fn list(db: &DatabaseConnection, ctx: &Context) -> DomainResult<Vec<NodeView>> {
    authorize_platform(&ctx.actor, Permission::NodesRead)?;
    let served = served(db).await?;
    Ok(freeswitch_nodes::Entity::find()
        .order_by_asc(freeswitch_nodes::Column::Name)
        .all(db)
        .await?
        .iter()
        .map(|r| with_domains(r, &served))
        .collect())
}

/// One registered node (`nodes.read`).
pub async fn get(db: &DatabaseConnection, ctx: &Context, id: Uuid) -> DomainResult<NodeView> {
    authorize_platform(&ctx.actor, Permission::NodesRead)?;
    let row = freeswitch_nodes::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("freeswitch_node"))?;
    Ok(with_domains(&row, &served(db).await?))
}

/// Every registered node with its password, for the bridge (no caller: the process itself).
pub async fn load_all(
    db: &DatabaseConnection,
    cipher: &SecretCipher,
) -> DomainResult<Vec<NodeSecret>> {
    let served = served(db).await?;
    let sip: BTreeMap<Uuid, String> = domains::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.sip_domain))
        .collect();
    let mut out = Vec::new();
    for row in freeswitch_nodes::Entity::find()
        .order_by_asc(freeswitch_nodes::Column::Name)
        .all(db)
        .await?
    {
        let password = cipher
            .decrypt(&row.password_encrypted, &secret_context(row.id))
            .map_err(|e| DomainError::Internal(format!("node {}: {e}", row.name)))?;
        let view = with_domains(&row, &served);
        let sip_domains = view.domains.as_ref().map(|ids| {
            ids.iter()
                .filter_map(|id| sip.get(id).cloned())
                .collect::<Vec<_>>()
        });
        out.push(NodeSecret {
            view,
            password,
            sip_domains,
        });
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Applies `input` to `row`, collecting what is wrong.
fn apply(
    row: &mut freeswitch_nodes::Model,
    input: &NodeInput,
    cipher: &SecretCipher,
    reserved: &[String],
    errors: &mut FieldErrors,
) {
    if let Some(name) = &input.name {
        let name = name.trim();
        if !is_name(name) {
            errors.add(
                "name",
                "invalid_name",
                "1 to 64 letters, digits, '.', '_' or '-'",
            );
        } else if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            errors.add(
                "name",
                "name_taken",
                "a node of the configuration file has this name",
            );
        }
        row.name = name.to_owned();
    }
    if let Some(host) = &input.host {
        let host = host.trim();
        if host.is_empty()
            || host.len() > 253
            || host
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@'))
        {
            errors.add("host", "invalid_host", "a host name or IP address");
        }
        row.host = host.to_owned();
    }
    if let Some(port) = input.port {
        match i32::try_from(port) {
            Ok(p) if (1..=65535).contains(&p) => row.port = p,
            _ => errors.add("port", "invalid_port", "1 to 65535"),
        }
    }
    if let Some(profile) = &input.profile {
        if !is_name(profile) {
            errors.add(
                "profile",
                "invalid_profile",
                "a sofia profile name: 1 to 64 letters, digits, '.', '_' or '-'",
            );
        }
        profile.clone_into(&mut row.profile);
    }
    if let Some(password) = &input.password {
        if password.is_empty() || password.len() > 128 || password.chars().any(char::is_control) {
            errors.add(
                "password",
                "invalid_password",
                "1 to 128 characters, no control characters",
            );
        } else {
            row.password_encrypted = cipher.encrypt(password, &secret_context(row.id));
        }
    }
    if let Some(domains) = &input.domains {
        row.all_domains = domains.is_none();
        if domains.as_ref().is_some_and(Vec::is_empty) {
            errors.add(
                "domains",
                "no_domains",
                "a node serves at least one Domain; null serves every Domain",
            );
        }
    }
}

/// Checks that every Domain exists; returns them.
async fn check_domains(
    db: &impl sea_orm::ConnectionTrait,
    ids: &[Uuid],
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    let found = domains::Entity::find()
        .filter(domains::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await?;
    for (i, id) in ids.iter().enumerate() {
        if !found.iter().any(|d| d.id == *id) {
            errors.add(
                format!("domains[{i}]"),
                "unknown_domain",
                format!("no Domain {id}"),
            );
        }
    }
    Ok(())
}

fn changed(id: Uuid, now: DateTime<Utc>) -> ChangeEvent {
    ChangeEvent::new(Uuid::nil(), "", ChangeKind::FreeswitchNodeChanged, id, now)
}

async fn set_domains(
    txn: &impl sea_orm::ConnectionTrait,
    id: Uuid,
    domains: &Option<Vec<Uuid>>,
) -> DomainResult<()> {
    freeswitch_node_domains::Entity::delete_many()
        .filter(freeswitch_node_domains::Column::NodeId.eq(id))
        .exec(txn)
        .await?;
    if let Some(ids) = domains {
        let mut ids = ids.clone();
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            freeswitch_node_domains::Entity::insert_many(ids.into_iter().map(|domain_id| {
                freeswitch_node_domains::ActiveModel {
                    node_id: Set(id),
                    domain_id: Set(domain_id),
                }
            }))
            .exec(txn)
            .await?;
        }
    }
    Ok(())
}

/// Refuses `name` when another registered node has it.
async fn ensure_name_free(
    txn: &impl sea_orm::ConnectionTrait,
    name: &str,
    except: Option<Uuid>,
) -> DomainResult<()> {
    let mut query =
        freeswitch_nodes::Entity::find().filter(freeswitch_nodes::Column::Name.eq(name));
    if let Some(id) = except {
        query = query.filter(freeswitch_nodes::Column::Id.ne(id));
    }
    if query.one(txn).await?.is_some() {
        return Err(DomainError::conflict(
            "name_taken",
            format!("a node named {name} is registered already"),
        ));
    }
    Ok(())
}

/// Audits the change, commits, and tells every switchboard node.
async fn finish(
    txn: sea_orm::DatabaseTransaction,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
    action: &'static str,
    before: Option<&NodeView>,
    after: Option<&NodeView>,
) -> DomainResult<()> {
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: None,
            action,
            target_kind: "freeswitch_node",
            target_id: Some(id.to_string()),
            before: before.map(audit_view),
            after: after.map(audit_view),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([changed(id, ctx.now)]);
    Ok(())
}

/// Registers a node (`nodes.write`). `reserved`: the configured nodes' names.
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    input: NodeInput,
    reserved: &[String],
) -> DomainResult<NodeView> {
    authorize_platform(&ctx.actor, Permission::NodesWrite)?;
    let mut errors = FieldErrors::new();
    if input.name.is_none() {
        errors.add("name", "required", "a node needs a name");
    }
    if input.host.is_none() {
        errors.add("host", "required", "where its Event Socket listens");
    }
    if input.password.is_none() {
        errors.add("password", "required", "its Event Socket password");
    }
    let id = Uuid::now_v7();
    let mut row = freeswitch_nodes::Model {
        id,
        name: String::new(),
        host: String::new(),
        port: 8021,
        password_encrypted: String::new(),
        profile: "internal".to_owned(),
        all_domains: true,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply(&mut row, &input, cipher, reserved, &mut errors);
    let domains = input.domains.clone().flatten();
    let txn = crate::db::begin_write(db).await?;
    if let Some(ids) = &domains {
        check_domains(&txn, ids, &mut errors).await?;
    }
    errors.into_result()?;
    ensure_name_free(&txn, &row.name, None).await?;
    let saved = freeswitch_nodes::ActiveModel::from(row)
        .insert(&txn)
        .await?;
    set_domains(&txn, id, &domains).await?;
    let shown = view(&saved, domains);
    finish(
        txn,
        bus,
        ctx,
        id,
        "freeswitch_node.create",
        None,
        Some(&shown),
    )
    .await?;
    Ok(shown)
}

/// Changes a node (`nodes.write`); its link restarts with the new settings.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    cipher: &SecretCipher,
    ctx: &Context,
    id: Uuid,
    input: NodeInput,
    reserved: &[String],
) -> DomainResult<NodeView> {
    authorize_platform(&ctx.actor, Permission::NodesWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let before_row = freeswitch_nodes::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("freeswitch_node"))?;
    let before = with_domains(&before_row, &served(&txn).await?);
    let mut row = before_row.clone();
    let mut errors = FieldErrors::new();
    apply(&mut row, &input, cipher, reserved, &mut errors);
    if let Some(Some(ids)) = &input.domains {
        check_domains(&txn, ids, &mut errors).await?;
    }
    errors.into_result()?;
    if row.name != before_row.name {
        ensure_name_free(&txn, &row.name, Some(id)).await?;
    }
    row.updated_at = ctx.now;
    let mut active = before_row.into_active_model();
    active.name = Set(row.name.clone());
    active.host = Set(row.host.clone());
    active.port = Set(row.port);
    active.password_encrypted = Set(row.password_encrypted.clone());
    active.profile = Set(row.profile.clone());
    active.all_domains = Set(row.all_domains);
    active.updated_at = Set(row.updated_at);
    let saved = active.update(&txn).await?;
    let domains = match &input.domains {
        Some(d) => {
            set_domains(&txn, id, d).await?;
            d.clone()
        }
        None => before.domains.clone(),
    };
    let shown = view(&saved, domains);
    finish(
        txn,
        bus,
        ctx,
        id,
        "freeswitch_node.update",
        Some(&before),
        Some(&shown),
    )
    .await?;
    Ok(shown)
}

/// Removes a node (`nodes.write`); every switchboard node closes its link to it.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    id: Uuid,
) -> DomainResult<()> {
    authorize_platform(&ctx.actor, Permission::NodesWrite)?;
    let txn = crate::db::begin_write(db).await?;
    let row = freeswitch_nodes::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("freeswitch_node"))?;
    let before = with_domains(&row, &served(&txn).await?);
    freeswitch_node_domains::Entity::delete_many()
        .filter(freeswitch_node_domains::Column::NodeId.eq(id))
        .exec(&txn)
        .await?;
    freeswitch_nodes::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    finish(
        txn,
        bus,
        ctx,
        id,
        "freeswitch_node.delete",
        Some(&before),
        None,
    )
    .await
}
