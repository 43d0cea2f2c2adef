//! Call flows of a Domain (`call_flows.read` / `call_flows.write` / `call_flows.override`):
//! ring groups, IVR menus and time conditions (see [`crate::routing::flows`] for their rules).
//!
//! Every write of a flow is one transaction that first takes the Domain's row for update
//! (PostgreSQL; SQLite's writers are serialised anyway), so two saves that together would close
//! a loop, or a save racing a delete, are judged one after the other: the destination graph
//! that commits is always checked whole. Extensions and Numbers pointing at flows take the same
//! row shared, so they wait for a flow write in progress and it waits for them.
//!
//! The settings travel as JSON objects: a create takes `name`, `number` and the kind's fields;
//! a change is a JSON merge patch (RFC 7396) of the same object, so a field left out keeps its
//! value and `null` resets it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::routing::destination::{Destination, HangUpWith};
use crate::routing::flows::{FlowConfig, FlowKind, GraphNode, OverrideMode, find_loop, toggled};
use crate::store::{call_flows, domains, extensions, numbers};

/// The most flows of each kind a Domain may have.
pub const MAX_FLOWS_PER_KIND: usize = 1000;

/// A flow as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowView {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Kind.
    #[serde(skip)]
    pub kind: FlowKind,
    /// Name.
    pub name: String,
    /// The internal number that dials it.
    pub number: Option<String>,
    /// The kind's settings.
    #[serde(skip)]
    pub config: FlowConfig,
    /// A time condition's override.
    #[serde(skip)]
    pub override_mode: OverrideMode,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

impl FlowView {
    /// The whole object: `id`, `domain_id`, `name`, `number`, the kind's fields, the
    /// override (time conditions), `created_at`, `updated_at`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("domain_id".into(), json!(self.domain_id));
        out.insert("name".into(), json!(self.name));
        out.insert("number".into(), json!(self.number));
        if let Value::Object(fields) = self.config.to_json() {
            out.extend(fields);
        }
        if self.kind == FlowKind::TimeCondition {
            out.insert("override".into(), json!(self.override_mode.as_str()));
        }
        out.insert("created_at".into(), json!(self.created_at));
        out.insert("updated_at".into(), json!(self.updated_at));
        Value::Object(out)
    }
}

/// The time a change is stored with: the context's, to the microsecond (what both databases
/// keep), so an answer and a later read agree.
fn stamp(ctx: &Context) -> DateTime<Utc> {
    use chrono::SubsecRound;
    ctx.now.trunc_subsecs(6)
}

/// Reads a stored row; settings this version cannot read are a 500-free error.
pub fn view(row: &call_flows::Model) -> DomainResult<FlowView> {
    let kind = FlowKind::parse(&row.kind).ok_or_else(|| {
        DomainError::Internal(format!("call flow {} has kind {}", row.id, row.kind))
    })?;
    let value: Value = serde_json::from_str(&row.config)
        .map_err(|e| DomainError::Internal(format!("call flow {} settings: {e}", row.id)))?;
    let config = FlowConfig::from_json(kind, value).map_err(|e| {
        DomainError::Internal(format!("call flow {} settings: {}", row.id, e.message))
    })?;
    Ok(FlowView {
        id: row.id,
        domain_id: row.domain_id,
        kind,
        name: row.name.clone(),
        number: row.number.clone(),
        config,
        override_mode: OverrideMode::parse(&row.override_mode),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Every flow of a Domain (the dialplan's compile reads them).
pub async fn load<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<call_flows::Model>> {
    Ok(call_flows::Entity::find()
        .filter(call_flows::Column::DomainId.eq(domain_id))
        .order_by_asc(call_flows::Column::Name)
        .order_by_asc(call_flows::Column::Id)
        .all(db)
        .await?)
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    kind: FlowKind,
    id: Uuid,
) -> DomainResult<call_flows::Model> {
    call_flows::Entity::find_by_id(id)
        .filter(call_flows::Column::DomainId.eq(domain_id))
        .filter(call_flows::Column::Kind.eq(kind.as_str()))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound(kind.label()))
}

/// Lists a Domain's flows of one kind, by name.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    kind: FlowKind,
) -> DomainResult<Vec<FlowView>> {
    scope::enter(db, ctx, domain_id, Permission::CallFlowsRead).await?;
    load(db, domain_id)
        .await?
        .iter()
        .filter(|r| r.kind == kind.as_str())
        .map(view)
        .collect()
}

/// Reads one flow; another Domain's (or another kind's) is a 404.
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    kind: FlowKind,
    id: Uuid,
) -> DomainResult<FlowView> {
    scope::enter(db, ctx, domain_id, Permission::CallFlowsRead).await?;
    view(&find(db, domain_id, kind, id).await?)
}

/// Applies an RFC 7396 merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Takes the Domain's row for update: flow writes of one Domain are judged one at a time.
async fn lock_domain<C: ConnectionTrait>(db: &C, domain_id: Uuid) -> DomainResult<()> {
    domains::Entity::find_by_id(domain_id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    Ok(())
}

/// Takes the Domain's row shared: an Extension's number or a Number's destination written
/// while no flow write is in progress.
pub(crate) async fn share_domain<C: ConnectionTrait>(db: &C, domain_id: Uuid) -> DomainResult<()> {
    domains::Entity::find_by_id(domain_id)
        .lock_shared()
        .one(db)
        .await?;
    Ok(())
}

/// The flow of a Domain that dials as `number`, in words, if any.
pub(crate) async fn number_owner<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    number: &str,
) -> DomainResult<Option<String>> {
    Ok(call_flows::Entity::find()
        .filter(call_flows::Column::DomainId.eq(domain_id))
        .filter(call_flows::Column::Number.eq(number))
        .one(db)
        .await?
        .map(|f| {
            let kind = FlowKind::parse(&f.kind).map_or("call flow", FlowKind::label);
            format!("the {kind} {:?}", f.name)
        }))
}

/// Checks that a destination pointing at a flow names a flow of that kind in the Domain
/// (another Domain's is the same `not_found` as a missing one).
pub(crate) async fn check_flow_target<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    destination: &Destination,
    field: &str,
) -> DomainResult<()> {
    let (Some(id), Some(kind)) = (destination.flow_id(), destination.flow_kind()) else {
        return Ok(());
    };
    let found = call_flows::Entity::find_by_id(id)
        .filter(call_flows::Column::DomainId.eq(domain_id))
        .filter(call_flows::Column::Kind.eq(kind))
        .one(db)
        .await?;
    if found.is_none() {
        let id_field = match kind {
            "ring_group" => "ring_group_id",
            "ivr" => "ivr_id",
            _ => "time_condition_id",
        };
        return Err(DomainError::invalid(
            format!("{field}.{id_field}"),
            "not_found",
            format!(
                "no such {} in this Domain",
                FlowKind::parse(kind).map_or("call flow", FlowKind::label)
            ),
        ));
    }
    Ok(())
}

/// What points at a flow: the Numbers and the flows, in words, leaving out the flow `skip`
/// (a menu whose key repeats itself).
async fn users_except<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    target: Uuid,
    skip: Option<Uuid>,
) -> DomainResult<Vec<String>> {
    let mut out = Vec::new();
    let pointing = numbers::Entity::find()
        .filter(numbers::Column::DomainId.eq(domain_id))
        .filter(numbers::Column::DestinationId.eq(target))
        .order_by_asc(numbers::Column::Number)
        .all(db)
        .await?;
    for n in pointing {
        out.push(format!("the Number {}", n.number));
    }
    for row in load(db, domain_id).await? {
        if Some(row.id) == skip {
            continue;
        }
        let Ok(flow) = view(&row) else { continue };
        let fields: Vec<String> = flow
            .config
            .flows()
            .into_iter()
            .chain(flow.config.extensions())
            .filter(|(_, id)| *id == target)
            .map(|(field, _)| field)
            .collect();
        if !fields.is_empty() {
            out.push(format!(
                "the {} {:?} ({})",
                flow.kind.label(),
                flow.name,
                fields.join(", ")
            ));
        }
    }
    Ok(out)
}

/// The flows of a Domain that name an Extension (a member, or a destination).
pub(crate) async fn flows_naming_extension<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Vec<FlowView>> {
    Ok(load(db, domain_id)
        .await?
        .iter()
        .filter_map(|r| view(r).ok())
        .filter(|f| {
            f.config
                .extensions()
                .iter()
                .any(|(_, id)| *id == extension_id)
        })
        .collect())
}

/// Removes a deleted Extension from the flows that name it (inside the delete's transaction):
/// it leaves ring groups, and a destination that was it becomes "hang up, unallocated". Each
/// changed flow is audited; returns their change events.
pub(crate) async fn forget_extension<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain: &domains::Model,
    extension_id: Uuid,
) -> DomainResult<Vec<ChangeEvent>> {
    let mut events = Vec::new();
    for mut flow in flows_naming_extension(txn, domain.id, extension_id).await? {
        let before = flow.to_json();
        let gone = Destination::HangUp {
            cause: HangUpWith::Unallocated,
        };
        let fix = |d: &mut Destination| {
            if d.extension_id() == Some(extension_id) {
                *d = gone.clone();
            }
        };
        match &mut flow.config {
            FlowConfig::RingGroup(c) => {
                c.members.retain(|m| m.extension_id != Some(extension_id));
                fix(&mut c.when_unanswered);
            }
            FlowConfig::Ivr(c) => {
                for o in &mut c.options {
                    fix(&mut o.destination);
                }
                fix(&mut c.when_no_choice);
            }
            FlowConfig::TimeCondition(c) => {
                fix(&mut c.when_open);
                fix(&mut c.when_closed);
            }
        }
        let row = call_flows::Entity::find_by_id(flow.id)
            .one(txn)
            .await?
            .ok_or(DomainError::NotFound("call flow"))?;
        let mut active = row.into_active_model();
        active.config = sea_orm::ActiveValue::Set(flow.config.to_json().to_string());
        active.updated_at = sea_orm::ActiveValue::Set(stamp(ctx));
        active.update(txn).await?;
        flow.updated_at = stamp(ctx);
        audited(
            txn,
            ctx,
            domain.id,
            &flow,
            "update",
            Some(before),
            Some(json!({"flow": flow.to_json(), "reason": "extension_deleted"})),
        )
        .await?;
        events.push(event(
            domain,
            &flow,
            ChangeKind::CallFlowUpdated,
            stamp(ctx),
        ));
    }
    Ok(events)
}

/// Audits a change to `flow` (`<kind>.<what>`).
async fn audited<C: ConnectionTrait>(
    txn: &C,
    ctx: &Context,
    domain_id: Uuid,
    flow: &FlowView,
    what: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> DomainResult<()> {
    audit::record(
        txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: audit_action(flow.kind, what),
            target_kind: flow.kind.as_str(),
            target_id: Some(flow.id.to_string()),
            before,
            after,
        },
    )
    .await
}

const fn audit_action(kind: FlowKind, what: &str) -> &'static str {
    match (kind, what.as_bytes()) {
        (FlowKind::RingGroup, b"create") => "ring_group.create",
        (FlowKind::RingGroup, b"update") => "ring_group.update",
        (FlowKind::RingGroup, _) => "ring_group.delete",
        (FlowKind::Ivr, b"create") => "ivr.create",
        (FlowKind::Ivr, b"update") => "ivr.update",
        (FlowKind::Ivr, _) => "ivr.delete",
        (FlowKind::TimeCondition, b"create") => "time_condition.create",
        (FlowKind::TimeCondition, b"update") => "time_condition.update",
        (FlowKind::TimeCondition, _) => "time_condition.delete",
    }
}

fn event(
    domain: &domains::Model,
    flow: &FlowView,
    kind: ChangeKind,
    at: DateTime<Utc>,
) -> ChangeEvent {
    let mut e = ChangeEvent::new(domain.id, &domain.sip_domain, kind, flow.id, at);
    e.detail = Some(json!({
        "kind": flow.kind.as_str(),
        "name": flow.name,
        "number": flow.number,
        "override": (flow.kind == FlowKind::TimeCondition).then(|| flow.override_mode.as_str()),
    }));
    e
}

/// Splits a request object into name, number and the kind's fields.
struct Parts {
    name: Option<Value>,
    number: Option<Value>,
    fields: Map<String, Value>,
}

fn split(body: Value) -> DomainResult<Parts> {
    let Value::Object(mut fields) = body else {
        return Err(DomainError::invalid("body", "invalid", "a JSON object"));
    };
    for readonly in ["id", "domain_id", "created_at", "updated_at", "override"] {
        if fields.remove(readonly).is_some() {
            return Err(DomainError::invalid(
                readonly,
                "read_only",
                "set by switchboard (the override has its own endpoint)",
            ));
        }
    }
    Ok(Parts {
        name: fields.remove("name"),
        number: fields.remove("number"),
        fields,
    })
}

/// Checks a name, a number and the settings (no database), and reads them.
fn checked(
    kind: FlowKind,
    name: &str,
    number: Option<&str>,
    fields: Value,
) -> DomainResult<FlowConfig> {
    let mut errors = FieldErrors::new();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add("name", "invalid_name", "1 to 100 characters");
    }
    if let Some(n) = number {
        // The same rules as an Extension's number: both are dialled in the Domain's context.
        errors.check(
            "number",
            crate::telephony::values::ExtensionNumber::parse(n),
        );
    }
    let mut config = match FlowConfig::from_json(kind, fields) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Some(c) = &mut config {
        c.normalise();
        c.validate(&mut errors);
    }
    errors.into_result()?;
    config.ok_or_else(|| DomainError::Internal("settings vanished".into()))
}

fn text_of(field: &str, v: Option<Value>) -> DomainResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(DomainError::invalid(field, "invalid", "a string")),
    }
}

/// The checks that need the database, inside the write transaction (the Domain's row held):
/// the number is free, every reference is of this Domain, the override code is free, and the
/// whole graph has no loop.
async fn check_in_domain<C: ConnectionTrait>(
    txn: &C,
    domain_id: Uuid,
    flow: &FlowView,
) -> DomainResult<()> {
    let others: Vec<FlowView> = load(txn, domain_id)
        .await?
        .iter()
        .filter(|r| r.id != flow.id)
        .filter_map(|r| view(r).ok())
        .collect();
    check_against(txn, domain_id, flow, &others).await?;
    loop_check(flow, &others)
}

/// No loop without a caller's key press in the graph of `flow` and `others`.
fn loop_check(flow: &FlowView, others: &[FlowView]) -> DomainResult<()> {
    let mut nodes: Vec<GraphNode> = others
        .iter()
        .map(|o| GraphNode {
            id: o.id,
            kind: o.kind,
            name: o.name.clone(),
            config: o.config.clone(),
        })
        .collect();
    nodes.push(GraphNode {
        id: flow.id,
        kind: flow.kind,
        name: flow.name.clone(),
        config: flow.config.clone(),
    });
    if let Some(cycle) = find_loop(&nodes) {
        return Err(DomainError::Conflict {
            code: "loop",
            message: format!(
                "the change makes a loop no caller's key press can leave: {}",
                cycle.join(" → ")
            ),
            field: None,
        });
    }
    Ok(())
}

/// [`check_in_domain`] against a given set of the Domain's other flows, without the loop check.
async fn check_against<C: ConnectionTrait>(
    txn: &C,
    domain_id: Uuid,
    flow: &FlowView,
    others: &[FlowView],
) -> DomainResult<()> {
    let mut errors = FieldErrors::new();
    if let Some(number) = &flow.number {
        let settings = super::calling_settings::load(txn, domain_id).await?;
        if super::calling_settings::emergency_numbers(&settings)
            .iter()
            .any(|e| e == number)
        {
            return Err(DomainError::invalid(
                "number",
                "emergency_number",
                "this number is one of the Domain's emergency numbers",
            ));
        }
        let ext = extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .filter(extensions::Column::Number.eq(number.as_str()))
            .one(txn)
            .await?;
        if ext.is_some() {
            return Err(DomainError::Conflict {
                code: "already_exists",
                message: format!("{number} is an Extension's number in this Domain"),
                field: Some("number".into()),
            });
        }
        if let Some(other) = others.iter().find(|o| o.number.as_deref() == Some(number)) {
            return Err(DomainError::Conflict {
                code: "already_exists",
                message: format!(
                    "{number} already dials the {} {:?}",
                    other.kind.label(),
                    other.name
                ),
                field: Some("number".into()),
            });
        }
    }
    if let Some(other) = others
        .iter()
        .find(|o| o.kind == flow.kind && o.name.eq_ignore_ascii_case(&flow.name))
    {
        return Err(DomainError::Conflict {
            code: "already_exists",
            message: format!("another {} is named {:?}", other.kind.label(), other.name),
            field: Some("name".into()),
        });
    }
    if let FlowConfig::TimeCondition(c) = &flow.config
        && let Some(code) = &c.override_code
        && let Some(other) = others.iter().find(|o| {
            matches!(&o.config, FlowConfig::TimeCondition(oc) if oc.override_code.as_ref() == Some(code))
        })
    {
        return Err(DomainError::Conflict {
            code: "already_exists",
            message: format!("the override code {code} is the time condition {:?}'s", other.name),
            field: Some("override_code".into()),
        });
    }
    let ext_ids: Vec<Uuid> = flow.config.extensions().iter().map(|(_, id)| *id).collect();
    if !ext_ids.is_empty() {
        let found: std::collections::HashSet<Uuid> = extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(domain_id))
            .filter(extensions::Column::Id.is_in(ext_ids))
            .all(txn)
            .await?
            .into_iter()
            .map(|e| e.id)
            .collect();
        for (field, id) in flow.config.extensions() {
            if !found.contains(&id) {
                let field = if field.ends_with("extension_id") {
                    field
                } else {
                    format!("{field}.extension_id")
                };
                errors.add(field, "not_found", "no such Extension in this Domain");
            }
        }
    }
    for (field, id) in flow.config.flows() {
        let kind = flow
            .config
            .edges()
            .into_iter()
            .find(|e| e.field == field)
            .and_then(|e| e.destination.flow_kind())
            .unwrap_or("");
        let ok = id == flow.id && kind == flow.kind.as_str()
            || others.iter().any(|o| o.id == id && o.kind.as_str() == kind);
        if !ok {
            let id_field = match kind {
                "ring_group" => "ring_group_id",
                "ivr" => "ivr_id",
                _ => "time_condition_id",
            };
            errors.add(
                format!("{field}.{id_field}"),
                "not_found",
                format!(
                    "no such {} in this Domain",
                    FlowKind::parse(kind).map_or("call flow", FlowKind::label)
                ),
            );
        }
    }
    errors.into_result()
}

/// Creates a flow of `kind` from a JSON object (`name`, `number`, the kind's fields).
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    kind: FlowKind,
    body: Value,
) -> DomainResult<FlowView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::CallFlowsWrite).await?;
    let parts = split(body)?;
    let name = text_of("name", parts.name)?.unwrap_or_default();
    let number = text_of("number", parts.number)?;
    let config = checked(kind, &name, number.as_deref(), Value::Object(parts.fields))?;
    let txn = crate::db::begin_write(db).await?;
    lock_domain(&txn, domain_id).await?;
    let count = call_flows::Entity::find()
        .filter(call_flows::Column::DomainId.eq(domain_id))
        .filter(call_flows::Column::Kind.eq(kind.as_str()))
        .count(&txn)
        .await?;
    if count >= MAX_FLOWS_PER_KIND as u64 {
        return Err(DomainError::conflict(
            "limit_reached",
            format!("a Domain has at most {MAX_FLOWS_PER_KIND} of each kind of call flow"),
        ));
    }
    let flow = FlowView {
        id: Uuid::now_v7(),
        domain_id,
        kind,
        name,
        number,
        config,
        override_mode: OverrideMode::Auto,
        created_at: stamp(ctx),
        updated_at: stamp(ctx),
    };
    check_in_domain(&txn, domain_id, &flow).await?;
    call_flows::ActiveModel::from(call_flows::Model {
        id: flow.id,
        domain_id,
        kind: kind.as_str().into(),
        name: flow.name.clone(),
        number: flow.number.clone(),
        config: flow.config.to_json().to_string(),
        override_mode: OverrideMode::Auto.as_str().into(),
        last_member: -1,
        created_at: stamp(ctx),
        updated_at: stamp(ctx),
    })
    .insert(&txn)
    .await?;
    audited(
        &txn,
        ctx,
        domain_id,
        &flow,
        "create",
        None,
        Some(flow.to_json()),
    )
    .await?;
    txn.commit().await?;
    bus.publish([event(
        &domain,
        &flow,
        ChangeKind::CallFlowCreated,
        stamp(ctx),
    )]);
    Ok(flow)
}

/// Changes a flow with a JSON merge patch of its object.
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    kind: FlowKind,
    id: Uuid,
    patch: Value,
) -> DomainResult<FlowView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::CallFlowsWrite).await?;
    let parts = split(patch)?;
    let txn = crate::db::begin_write(db).await?;
    lock_domain(&txn, domain_id).await?;
    let row = find(&txn, domain_id, kind, id).await?;
    let before = view(&row)?;
    let name = match parts.name {
        None => before.name.clone(),
        Some(v) => text_of("name", Some(v))?.unwrap_or_default(),
    };
    let number = match parts.number {
        None => before.number.clone(),
        Some(v) => text_of("number", Some(v))?,
    };
    let mut fields = before.config.to_json();
    merge(&mut fields, &Value::Object(parts.fields));
    let config = checked(kind, &name, number.as_deref(), fields)?;
    let flow = FlowView {
        name,
        number,
        config,
        updated_at: stamp(ctx),
        ..before.clone()
    };
    check_in_domain(&txn, domain_id, &flow).await?;
    let mut active = row.into_active_model();
    active.name = sea_orm::ActiveValue::Set(flow.name.clone());
    active.number = sea_orm::ActiveValue::Set(flow.number.clone());
    active.config = sea_orm::ActiveValue::Set(flow.config.to_json().to_string());
    active.updated_at = sea_orm::ActiveValue::Set(stamp(ctx));
    active.update(&txn).await?;
    audited(
        &txn,
        ctx,
        domain_id,
        &flow,
        "update",
        Some(before.to_json()),
        Some(flow.to_json()),
    )
    .await?;
    txn.commit().await?;
    bus.publish([event(
        &domain,
        &flow,
        ChangeKind::CallFlowUpdated,
        stamp(ctx),
    )]);
    Ok(flow)
}

/// Deletes a flow; one in use (a Number, another flow points at it) is a 409 that names its
/// users.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    kind: FlowKind,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(db, ctx, domain_id, Permission::CallFlowsWrite).await?;
    let txn = crate::db::begin_write(db).await?;
    lock_domain(&txn, domain_id).await?;
    let row = find(&txn, domain_id, kind, id).await?;
    let flow = view(&row)?;
    let users = users_except(&txn, domain_id, id, Some(id)).await?;
    if !users.is_empty() {
        return Err(DomainError::Conflict {
            code: "in_use",
            message: format!(
                "the {} {:?} is the destination of {}; point them elsewhere first",
                kind.label(),
                flow.name,
                users.join(", ")
            ),
            field: None,
        });
    }
    call_flows::Entity::delete_by_id(id).exec(&txn).await?;
    audited(
        &txn,
        ctx,
        domain_id,
        &flow,
        "delete",
        Some(flow.to_json()),
        None,
    )
    .await?;
    txn.commit().await?;
    bus.publish([event(
        &domain,
        &flow,
        ChangeKind::CallFlowDeleted,
        stamp(ctx),
    )]);
    Ok(())
}

/// Sets a time condition's override (`call_flows.override`).
pub async fn set_override(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    mode: OverrideMode,
) -> DomainResult<FlowView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::CallFlowsOverride).await?;
    write_override(db, bus, ctx, &domain, id, |_| mode).await
}

/// Switches the override of the time condition whose code is `code`, from a phone of the
/// Domain (the feature code): `auto` to the opposite of the schedule now, an override back to
/// `auto`. `None` when the Domain has no such code.
pub async fn toggle_override_by_code(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    code: &str,
) -> DomainResult<Option<FlowView>> {
    let Some(domain) = domains::Entity::find_by_id(domain_id).one(db).await? else {
        return Ok(None);
    };
    let tz: chrono_tz::Tz = domain.timezone.parse().unwrap_or(chrono_tz::UTC);
    let found = load(db, domain_id)
        .await?
        .iter()
        .filter_map(|r| view(r).ok())
        .find(|f| {
            matches!(&f.config, FlowConfig::TimeCondition(c) if c.override_code.as_deref() == Some(code))
        });
    let Some(flow) = found else {
        return Ok(None);
    };
    let now = stamp(ctx);
    write_override(db, bus, ctx, &domain, flow.id, |f| match &f.config {
        FlowConfig::TimeCondition(c) => toggled(c, tz, f.override_mode, now),
        _ => f.override_mode,
    })
    .await
    .map(Some)
}

async fn write_override(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain: &domains::Model,
    id: Uuid,
    next: impl FnOnce(&FlowView) -> OverrideMode,
) -> DomainResult<FlowView> {
    let txn = crate::db::begin_write(db).await?;
    // The row itself for update: two presses at once are judged one after the other.
    let row = call_flows::Entity::find_by_id(id)
        .filter(call_flows::Column::DomainId.eq(domain.id))
        .filter(call_flows::Column::Kind.eq(FlowKind::TimeCondition.as_str()))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound(FlowKind::TimeCondition.label()))?;
    let before = view(&row)?;
    let mode = next(&before);
    let flow = FlowView {
        override_mode: mode,
        updated_at: stamp(ctx),
        ..before.clone()
    };
    let mut active = row.into_active_model();
    active.override_mode = sea_orm::ActiveValue::Set(mode.as_str().into());
    active.updated_at = sea_orm::ActiveValue::Set(stamp(ctx));
    active.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action: "time_condition.override",
            target_kind: FlowKind::TimeCondition.as_str(),
            target_id: Some(id.to_string()),
            before: Some(json!({"override": before.override_mode.as_str()})),
            after: Some(json!({"override": mode.as_str()})),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([event(
        domain,
        &flow,
        ChangeKind::CallFlowUpdated,
        stamp(ctx),
    )]);
    Ok(flow)
}

/// Remembers which member a round-robin group rang first (no change event: only the next
/// call's order depends on it).
pub async fn remember_member(db: &DatabaseConnection, id: Uuid, member: i32) -> DomainResult<()> {
    call_flows::Entity::update_many()
        .col_expr(
            call_flows::Column::LastMember,
            sea_orm::sea_query::Expr::value(member),
        )
        .filter(call_flows::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// What a call-flow import did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOutcome {
    /// Flows created.
    pub created: usize,
    /// Flows changed (matched by kind and name, `on_existing=update`).
    pub updated: usize,
    /// Nothing was written.
    pub dry_run: bool,
}

/// One row of an import: its kind and its object (as a create takes it; an optional `id`
/// lets other rows of the same file point at it).
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Kind.
    pub kind: FlowKind,
    /// The object.
    pub body: Value,
}

fn section(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::RingGroup => "ring_groups",
        FlowKind::Ivr => "ivr_menus",
        FlowKind::TimeCondition => "time_conditions",
    }
}

/// Moves a refusal of one row under its path (`ring_groups[2].members[0].extension_id`).
fn under(prefix: &str, e: DomainError, errors: &mut FieldErrors) -> DomainResult<()> {
    match e {
        DomainError::Validation(list) => {
            for f in list {
                errors.add(format!("{prefix}.{}", f.field), f.code, f.message);
            }
        }
        DomainError::Conflict {
            code,
            message,
            field,
        } => errors.add(
            field.map_or_else(|| prefix.to_owned(), |f| format!("{prefix}.{f}")),
            code,
            message,
        ),
        other => return Err(other),
    }
    Ok(())
}

/// Imports ring groups, IVR menus and time conditions at once (`call_flows.write`), all or
/// nothing: every row is checked by the single-flow rules against the Domain as it will be
/// after the import (so rows may point at each other, by the `id` a row gives itself), then the
/// whole graph for loops. A row matching a flow of its kind by name is a conflict, or, with
/// `update`, replaces its settings (keeping its id). Errors name `<section>[i].<field>`.
pub async fn import(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    rows: Vec<ImportRow>,
    update: bool,
    dry_run: bool,
) -> DomainResult<ImportOutcome> {
    const MAX_ROWS: usize = 2000;
    let domain = scope::enter(db, ctx, domain_id, Permission::CallFlowsWrite).await?;
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(DomainError::invalid(
            "body",
            "invalid_count",
            format!("1 to {MAX_ROWS} call flows"),
        ));
    }
    let now = stamp(ctx);
    let txn = crate::db::begin_write(db).await?;
    lock_domain(&txn, domain_id).await?;
    let existing: Vec<FlowView> = load(&txn, domain_id)
        .await?
        .iter()
        .filter_map(|r| view(r).ok())
        .collect();
    let mut errors = FieldErrors::new();
    let mut counts: HashMap<FlowKind, usize> = HashMap::new();
    // (path, the flow as it will be, the one it replaces)
    let mut planned: Vec<(String, FlowView, Option<FlowView>)> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for row in rows {
        let i = counts.entry(row.kind).or_default();
        let path = format!("{}[{i}]", section(row.kind));
        *i += 1;
        let mut body = row.body;
        let given_id = match body.as_object_mut().and_then(|o| o.remove("id")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Uuid::parse_str(&s) {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add(format!("{path}.id"), "invalid", "a UUID");
                    continue;
                }
            },
            Some(_) => {
                errors.add(format!("{path}.id"), "invalid", "a UUID");
                continue;
            }
        };
        let parts = match split(body) {
            Ok(p) => p,
            Err(e) => {
                under(&path, e, &mut errors)?;
                continue;
            }
        };
        let (name, number) = match (text_of("name", parts.name), text_of("number", parts.number)) {
            (Ok(n), Ok(m)) => (n.unwrap_or_default(), m),
            (Err(e), _) | (_, Err(e)) => {
                under(&path, e, &mut errors)?;
                continue;
            }
        };
        let config = match checked(
            row.kind,
            &name,
            number.as_deref(),
            Value::Object(parts.fields),
        ) {
            Ok(c) => c,
            Err(e) => {
                under(&path, e, &mut errors)?;
                continue;
            }
        };
        let before = existing
            .iter()
            .find(|f| f.kind == row.kind && f.name.eq_ignore_ascii_case(&name))
            .cloned();
        if before.is_some() && !update {
            errors.add(
                format!("{path}.name"),
                "already_exists",
                format!(
                    "a {} is named {name:?} (import with on_existing=update to change it)",
                    row.kind.label()
                ),
            );
            continue;
        }
        let id = before
            .as_ref()
            .map_or_else(|| given_id.unwrap_or_else(Uuid::now_v7), |b| b.id);
        if !ids.insert(id) || (before.is_none() && existing.iter().any(|f| f.id == id)) {
            errors.add(
                format!("{path}.id"),
                "duplicate",
                "another flow has this id",
            );
            continue;
        }
        let flow = FlowView {
            id,
            domain_id,
            kind: row.kind,
            name,
            number,
            config,
            override_mode: before
                .as_ref()
                .map_or(OverrideMode::Auto, |b| b.override_mode),
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
        };
        planned.push((path, flow, before));
    }
    // The Domain as it will be: the flows not replaced, and every planned one.
    let replaced: std::collections::HashSet<Uuid> = planned.iter().map(|(_, f, _)| f.id).collect();
    let mut after: Vec<FlowView> = existing
        .iter()
        .filter(|f| !replaced.contains(&f.id))
        .cloned()
        .collect();
    after.extend(planned.iter().map(|(_, f, _)| f.clone()));
    for (path, flow, _) in &planned {
        let others: Vec<FlowView> = after.iter().filter(|o| o.id != flow.id).cloned().collect();
        if let Err(e) = check_against(&txn, domain_id, flow, &others).await {
            under(path, e, &mut errors)?;
        }
    }
    errors.into_result()?;
    if let Some(last) = after.last() {
        let others: Vec<FlowView> = after[..after.len() - 1].to_vec();
        loop_check(last, &others)?;
    }
    let mut outcome = ImportOutcome {
        dry_run,
        ..ImportOutcome::default()
    };
    let mut events = Vec::new();
    for (_, flow, before) in &planned {
        let config = flow.config.to_json().to_string();
        match before {
            Some(b) => {
                call_flows::Entity::update_many()
                    .col_expr(
                        call_flows::Column::Name,
                        sea_orm::sea_query::Expr::value(flow.name.clone()),
                    )
                    .col_expr(
                        call_flows::Column::Number,
                        sea_orm::sea_query::Expr::value(flow.number.clone()),
                    )
                    .col_expr(
                        call_flows::Column::Config,
                        sea_orm::sea_query::Expr::value(config),
                    )
                    .col_expr(
                        call_flows::Column::UpdatedAt,
                        sea_orm::sea_query::Expr::value(now),
                    )
                    .filter(call_flows::Column::Id.eq(flow.id))
                    .exec(&txn)
                    .await?;
                outcome.updated += 1;
                audited(
                    &txn,
                    ctx,
                    domain_id,
                    flow,
                    "update",
                    Some(b.to_json()),
                    Some(json!({"flow": flow.to_json(), "via": "import"})),
                )
                .await?;
                events.push(event(&domain, flow, ChangeKind::CallFlowUpdated, now));
            }
            None => {
                call_flows::ActiveModel::from(call_flows::Model {
                    id: flow.id,
                    domain_id,
                    kind: flow.kind.as_str().into(),
                    name: flow.name.clone(),
                    number: flow.number.clone(),
                    config,
                    override_mode: OverrideMode::Auto.as_str().into(),
                    last_member: -1,
                    created_at: now,
                    updated_at: now,
                })
                .insert(&txn)
                .await?;
                outcome.created += 1;
                audited(
                    &txn,
                    ctx,
                    domain_id,
                    flow,
                    "create",
                    None,
                    Some(json!({"flow": flow.to_json(), "via": "import"})),
                )
                .await?;
                events.push(event(&domain, flow, ChangeKind::CallFlowCreated, now));
            }
        }
    }
    if dry_run {
        txn.rollback().await?;
        return Ok(outcome);
    }
    txn.commit().await?;
    bus.publish(events);
    Ok(outcome)
}
