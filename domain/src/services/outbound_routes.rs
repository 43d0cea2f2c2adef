//! Outbound Routes of a Domain (`routing.read` / `routing.write`): ordered; each matches dialled
//! numbers with dial patterns, rewrites them (strip, prepend; E.164 with the Domain's
//! numbering), has the toll class of what it reaches and its gateways in failover order. The
//! compiled dialplan reads them (`routing.changed` after commit).

use std::collections::HashSet;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Context, audit, gateways as gateway_service, scope};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::routing::facts::split_patterns;
use crate::routing::outbound::{DialPattern, TollClass};
use crate::store::{domains, outbound_route_gateways, outbound_routes};

/// The most patterns a route may hold, and gateways it may list.
pub const MAX_PATTERNS: usize = 50;
/// The most gateways a route may list.
pub const MAX_GATEWAYS: usize = 10;

/// A change to a route.
#[derive(Debug, Clone, Default)]
pub struct RoutePatch {
    /// Name, unique in the Domain.
    pub name: Option<String>,
    /// Order (lower first); a new route without one goes last.
    pub position: Option<i32>,
    /// Dial patterns.
    pub patterns: Option<Vec<String>>,
    /// Leading digits removed (0–20).
    pub strip_digits: Option<i32>,
    /// Prepended after stripping (`+` and digits, up to 10).
    pub prepend: Option<String>,
    /// Toll class.
    pub toll_class: Option<String>,
    /// Gateway ids in failover order (replaces the list).
    pub gateway_ids: Option<Vec<Uuid>>,
    /// In service.
    pub enabled: Option<bool>,
}

/// A route with its gateways.
#[derive(Debug, Clone)]
pub struct RouteView {
    /// The row.
    pub route: outbound_routes::Model,
    /// Its patterns.
    pub patterns: Vec<String>,
    /// Its gateways in order.
    pub gateway_ids: Vec<Uuid>,
}

fn audit_view(v: &RouteView) -> Value {
    json!({
        "id": v.route.id,
        "name": v.route.name,
        "position": v.route.position,
        "patterns": v.patterns,
        "strip_digits": v.route.strip_digits,
        "prepend": v.route.prepend,
        "toll_class": v.route.toll_class,
        "gateway_ids": v.gateway_ids,
        "enabled": v.route.enabled,
    })
}

async fn gateways_of<C: ConnectionTrait>(db: &C, route_id: Uuid) -> DomainResult<Vec<Uuid>> {
    Ok(outbound_route_gateways::Entity::find()
        .filter(outbound_route_gateways::Column::RouteId.eq(route_id))
        .order_by_asc(outbound_route_gateways::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.gateway_id)
        .collect())
}

async fn view_of<C: ConnectionTrait>(
    db: &C,
    route: outbound_routes::Model,
) -> DomainResult<RouteView> {
    Ok(RouteView {
        patterns: split_patterns(&route.patterns).map(str::to_owned).collect(),
        gateway_ids: gateways_of(db, route.id).await?,
        route,
    })
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<outbound_routes::Model> {
    outbound_routes::Entity::find_by_id(id)
        .filter(outbound_routes::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("outbound route"))
}

/// Checks and applies a patch; returns the gateway list to store, if it changes.
async fn apply<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    row: &mut outbound_routes::Model,
    p: RoutePatch,
) -> DomainResult<Option<Vec<Uuid>>> {
    let mut errors = FieldErrors::new();
    if let Some(name) = p.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            errors.add("name", "invalid_name", "1 to 100 characters");
        }
        row.name = name;
    }
    if let Some(v) = p.position {
        if !(0..=100_000).contains(&v) {
            errors.add("position", "out_of_range", "between 0 and 100000");
        }
        row.position = v;
    }
    if let Some(patterns) = p.patterns {
        if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
            errors.add(
                "patterns",
                "invalid_count",
                format!("1 to {MAX_PATTERNS} dial patterns"),
            );
        }
        let mut kept: Vec<String> = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match DialPattern::parse(pattern) {
                Ok(p) if !kept.iter().any(|k| k == p.as_str()) => kept.push(p.as_str().to_owned()),
                Ok(_) => {}
                Err(message) => errors.add(format!("patterns[{i}]"), "invalid_pattern", message),
            }
        }
        row.patterns = kept.join("\n");
    }
    if let Some(v) = p.strip_digits {
        if !(0..=20).contains(&v) {
            errors.add("strip_digits", "out_of_range", "between 0 and 20");
        }
        row.strip_digits = v;
    }
    if let Some(v) = p.prepend {
        let v = v.trim().to_owned();
        let digits = v.strip_prefix('+').unwrap_or(&v);
        if v.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            errors.add(
                "prepend",
                "invalid_prepend",
                "up to 10 characters: digits, with an optional leading +",
            );
        }
        row.prepend = v;
    }
    if let Some(v) = p.toll_class {
        if let Err(e) = TollClass::parse(v.trim()) {
            errors.push(e);
        }
        row.toll_class = v.trim().to_owned();
    }
    if let Some(v) = p.enabled {
        row.enabled = v;
    }
    let gateways = match p.gateway_ids {
        None => None,
        Some(ids) => {
            let mut seen = HashSet::new();
            let ids: Vec<Uuid> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
            if ids.len() > MAX_GATEWAYS {
                errors.add(
                    "gateway_ids",
                    "too_many",
                    format!("at most {MAX_GATEWAYS} gateways"),
                );
            }
            let usable: HashSet<Uuid> = gateway_service::usable_by(db, domain_id)
                .await?
                .into_iter()
                .map(|g| g.id)
                .collect();
            for (i, id) in ids.iter().enumerate() {
                if !usable.contains(id) {
                    // Another Domain's gateway is as unknown as a missing one.
                    errors.add(
                        format!("gateway_ids[{i}]"),
                        "unknown_gateway",
                        "no such gateway available to this Domain",
                    );
                }
            }
            Some(ids)
        }
    };
    errors.into_result()?;
    Ok(gateways)
}

async fn write_gateways<C: ConnectionTrait>(
    db: &C,
    route_id: Uuid,
    ids: &[Uuid],
) -> DomainResult<()> {
    outbound_route_gateways::Entity::delete_many()
        .filter(outbound_route_gateways::Column::RouteId.eq(route_id))
        .exec(db)
        .await?;
    if !ids.is_empty() {
        outbound_route_gateways::Entity::insert_many(ids.iter().enumerate().map(|(i, g)| {
            outbound_route_gateways::ActiveModel::from(outbound_route_gateways::Model {
                route_id,
                gateway_id: *g,
                position: i32::try_from(i).unwrap_or(i32::MAX),
            })
        }))
        .exec(db)
        .await?;
    }
    Ok(())
}

fn changed(domain: &domains::Model, id: Uuid, ctx: &Context) -> ChangeEvent {
    ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        ChangeKind::RoutingChanged,
        id,
        ctx.now,
    )
}

/// Creates a route (`routing.write`).
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    patch: RoutePatch,
) -> DomainResult<RouteView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::RoutingWrite).await?;
    let mut errors = FieldErrors::new();
    if patch.name.is_none() {
        errors.add("name", "required", "a route needs a name");
    }
    if patch.patterns.is_none() {
        errors.add(
            "patterns",
            "required",
            "a route needs at least one dial pattern",
        );
    }
    if patch.toll_class.is_none() {
        errors.add(
            "toll_class",
            "required",
            "emergency, local, national, mobile, international or premium",
        );
    }
    errors.into_result()?;
    let txn = crate::db::begin_write(db).await?;
    let last = outbound_routes::Entity::find()
        .filter(outbound_routes::Column::DomainId.eq(domain_id))
        .order_by_desc(outbound_routes::Column::Position)
        .one(&txn)
        .await?
        .map_or(0, |r| r.position.saturating_add(10));
    let mut row = outbound_routes::Model {
        id: Uuid::now_v7(),
        domain_id,
        name: String::new(),
        position: last,
        patterns: String::new(),
        strip_digits: 0,
        prepend: String::new(),
        toll_class: String::new(),
        enabled: true,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let gateways = apply(&txn, domain_id, &mut row, patch)
        .await?
        .unwrap_or_default();
    let saved = outbound_routes::ActiveModel::from(row).insert(&txn).await?;
    write_gateways(&txn, saved.id, &gateways).await?;
    let view = view_of(&txn, saved).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "outbound_route.create",
            target_kind: "outbound_route",
            target_id: Some(view.route.id.to_string()),
            before: None,
            after: Some(audit_view(&view)),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([changed(&domain, view.route.id, ctx)]);
    Ok(view)
}

/// Changes a route (`routing.write`).
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: RoutePatch,
) -> DomainResult<RouteView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::RoutingWrite).await?;
    let txn = crate::db::begin_write(db).await?;
    let before = view_of(&txn, find(&txn, domain_id, id).await?).await?;
    let mut row = before.route.clone();
    let gateways = apply(&txn, domain_id, &mut row, patch).await?;
    row.updated_at = ctx.now;
    let saved = row.into_active_model().reset_all().update(&txn).await?;
    if let Some(ids) = gateways {
        write_gateways(&txn, id, &ids).await?;
    }
    let view = view_of(&txn, saved).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "outbound_route.update",
            target_kind: "outbound_route",
            target_id: Some(id.to_string()),
            before: Some(audit_view(&before)),
            after: Some(audit_view(&view)),
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([changed(&domain, id, ctx)]);
    Ok(view)
}

/// Reads a route (`routing.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<RouteView> {
    scope::enter(db, ctx, domain_id, Permission::RoutingRead).await?;
    view_of(db, find(db, domain_id, id).await?).await
}

/// Lists the Domain's routes in the order they are tried (`routing.read`).
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
) -> DomainResult<Vec<RouteView>> {
    scope::enter(db, ctx, domain_id, Permission::RoutingRead).await?;
    let rows = load_for_domain(db, domain_id).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(view_of(db, r).await?);
    }
    Ok(out)
}

/// The Domain's routes in order (no authorization: for the dialplan loader).
pub async fn load_for_domain<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
) -> DomainResult<Vec<outbound_routes::Model>> {
    Ok(outbound_routes::Entity::find()
        .filter(outbound_routes::Column::DomainId.eq(domain_id))
        .order_by_asc(outbound_routes::Column::Position)
        .order_by_asc(outbound_routes::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Deletes a route (`routing.write`).
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<()> {
    let domain = scope::enter(db, ctx, domain_id, Permission::RoutingWrite).await?;
    let txn = crate::db::begin_write(db).await?;
    let before = view_of(&txn, find(&txn, domain_id, id).await?).await?;
    outbound_route_gateways::Entity::delete_many()
        .filter(outbound_route_gateways::Column::RouteId.eq(id))
        .exec(&txn)
        .await?;
    outbound_routes::Entity::delete_by_id(id).exec(&txn).await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "outbound_route.delete",
            target_kind: "outbound_route",
            target_id: Some(id.to_string()),
            before: Some(audit_view(&before)),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    bus.publish([changed(&domain, id, ctx)]);
    Ok(())
}
