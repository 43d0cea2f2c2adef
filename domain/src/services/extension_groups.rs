//! Extension groups: the people whose logout leaves a phone in the same state.
//!
//! A group carries the logout action of its members (`full`, or log the phone in to a named
//! placeholder); `inherit` leaves it to the phone's setting, then the Domain's. An Extension
//! belongs to at most one group (`group_id` on the Extension). Groups are Extension groups
//! rather than User roles: a calling identity need not have a login (a shared phone, a
//! placeholder, a person without dashboard access), and roles are about dashboard rights.
//!
//! Use cases: load → validate → save in one transaction with its audit entry → publish after
//! commit (`extension_group.changed`, re-reading the hot-desk phones, whose logged-out
//! identity may follow the group). Reading needs `extensions.read`, changing
//! `extensions.write`. Deleting a group with members needs `force`, which releases them.

use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Context, audit, scope};
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::events::{ChangeEvent, ChangeKind, EventBus};
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page};
use crate::store::{devices, domains, extension_groups, extensions, search};
use crate::telephony::policy::LoggedOutMode;

/// A change to a group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    /// Name, unique in the Domain (1–100 characters).
    pub name: Option<String>,
    /// Description (at most 500 characters).
    pub description: Option<String>,
    /// `inherit`, `full` or `placeholder`.
    pub logged_out_mode: Option<String>,
    /// The placeholder for `placeholder`.
    pub placeholder_extension_id: Option<Option<Uuid>>,
}

/// A group with how many Extensions are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    /// The group.
    #[serde(flatten)]
    pub group: extension_groups::Model,
    /// Its members.
    pub member_count: u64,
}

/// Filters of the group list.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    /// Part of the name (any case).
    pub q: Option<String>,
}

pub(crate) fn apply(row: &mut extension_groups::Model, p: GroupPatch) {
    if let Some(v) = p.name {
        row.name = v;
    }
    if let Some(v) = p.description {
        row.description = v;
    }
    if let Some(v) = p.logged_out_mode {
        if v != LoggedOutMode::Placeholder.as_str() && p.placeholder_extension_id.is_none() {
            row.placeholder_extension_id = None;
        }
        row.logged_out_mode = v;
    }
    if let Some(v) = p.placeholder_extension_id {
        row.placeholder_extension_id = v;
    }
}

/// Validates (and normalises) a group against the pure rules.
pub fn validate(row: &mut extension_groups::Model) -> FieldErrors {
    let mut errors = FieldErrors::new();
    let name = row.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.add(
            "name",
            "invalid_name",
            "a group name is 1 to 100 characters without control characters",
        );
    } else {
        row.name = name.to_owned();
    }
    let description = row.description.trim();
    if description.chars().count() > 500 || description.chars().any(|c| c.is_control() && c != '\n')
    {
        errors.add(
            "description",
            "invalid_text",
            "at most 500 characters, without control characters",
        );
    } else {
        row.description = description.to_owned();
    }
    match errors.check(
        "logged_out_mode",
        LoggedOutMode::parse(&row.logged_out_mode),
    ) {
        Some(LoggedOutMode::Placeholder) if row.placeholder_extension_id.is_none() => errors.add(
            "placeholder_extension_id",
            "required",
            "placeholder mode needs a placeholder Extension",
        ),
        Some(LoggedOutMode::Inherit | LoggedOutMode::Full)
            if row.placeholder_extension_id.is_some() =>
        {
            errors.add(
                "placeholder_extension_id",
                "placeholder_mode_only",
                "a placeholder Extension is only used with logged_out_mode `placeholder`",
            )
        }
        _ => {}
    }
    errors
}

async fn check_placeholder<C: ConnectionTrait>(
    db: &C,
    row: &extension_groups::Model,
    before: Option<&extension_groups::Model>,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    let Some(id) = row.placeholder_extension_id else {
        return Ok(());
    };
    if before.is_some_and(|b| b.placeholder_extension_id == Some(id)) {
        return Ok(());
    }
    let ext = extensions::Entity::find_by_id(id)
        .filter(extensions::Column::DomainId.eq(row.domain_id))
        .one(db)
        .await?;
    super::extensions::check_placeholder_ref(
        ext.as_ref(),
        "placeholder_extension_id",
        "no such Extension in this Domain",
        errors,
    );
    Ok(())
}

async fn find<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<extension_groups::Model> {
    extension_groups::Entity::find_by_id(id)
        .filter(extension_groups::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("extension_group"))
}

async fn members<C: ConnectionTrait>(db: &C, domain_id: Uuid, id: Uuid) -> DomainResult<u64> {
    Ok(extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::GroupId.eq(id))
        .count(db)
        .await?)
}

async fn view<C: ConnectionTrait>(
    db: &C,
    group: extension_groups::Model,
) -> DomainResult<GroupView> {
    let member_count = members(db, group.domain_id, group.id).await?;
    Ok(GroupView {
        group,
        member_count,
    })
}

/// The SIP users of the Domain's hot-desk phones (their logged-out identity may follow a
/// group) and the group's placeholder (its ring plan may list them).
pub(crate) async fn affected<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    placeholders: &[Option<Uuid>],
) -> DomainResult<Vec<String>> {
    let mut users: Vec<String> = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(domain_id))
        .filter(devices::Column::Mode.eq("hotdesk"))
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.sip_username)
        .collect();
    for id in placeholders.iter().flatten() {
        if let Some(e) = extensions::Entity::find_by_id(*id)
            .filter(extensions::Column::DomainId.eq(domain_id))
            .one(db)
            .await?
        {
            users.push(e.number);
        }
    }
    Ok(users)
}

/// Creates a group (`extensions.write`).
pub async fn create(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    patch: GroupPatch,
) -> DomainResult<GroupView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let mut errors = FieldErrors::new();
    if patch.name.is_none() {
        errors.add("name", "required", "a group needs a name");
    }
    let mut row = extension_groups::Model {
        id: Uuid::now_v7(),
        domain_id,
        name: String::new(),
        description: String::new(),
        logged_out_mode: LoggedOutMode::Inherit.as_str().to_owned(),
        placeholder_extension_id: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    apply(&mut row, patch);
    save(db, bus, ctx, &domain, None, row, errors).await
}

/// Changes a group (`extensions.write`).
pub async fn update(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    patch: GroupPatch,
) -> DomainResult<GroupView> {
    let domain = scope::enter(db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let before = find(db, domain_id, id).await?;
    let mut row = before.clone();
    apply(&mut row, patch);
    row.updated_at = ctx.now;
    save(db, bus, ctx, &domain, Some(before), row, FieldErrors::new()).await
}

async fn save(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain: &domains::Model,
    before: Option<extension_groups::Model>,
    mut row: extension_groups::Model,
    mut errors: FieldErrors,
) -> DomainResult<GroupView> {
    for e in validate(&mut row).into_vec() {
        errors.push(e);
    }
    check_placeholder(db, &row, before.as_ref(), &mut errors).await?;
    errors.into_result()?;
    let txn = crate::db::begin_write(db).await?;
    let saved = match &before {
        None => {
            extension_groups::ActiveModel::from(row)
                .insert(&txn)
                .await?
        }
        Some(_) => row.into_active_model().reset_all().update(&txn).await?,
    };
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain.id),
            action: if before.is_some() {
                "extension_group.update"
            } else {
                "extension_group.create"
            },
            target_kind: "extension_group",
            target_id: Some(saved.id.to_string()),
            before: before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
            after: serde_json::to_value(&saved).ok(),
        },
    )
    .await?;
    // Only a change of the logout action changes what phones do.
    let users = match &before {
        Some(b)
            if b.logged_out_mode == saved.logged_out_mode
                && b.placeholder_extension_id == saved.placeholder_extension_id =>
        {
            Vec::new()
        }
        _ => {
            affected(
                &txn,
                domain.id,
                &[
                    saved.placeholder_extension_id,
                    before.as_ref().and_then(|b| b.placeholder_extension_id),
                ],
            )
            .await?
        }
    };
    let view = view(&txn, saved).await?;
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        ChangeKind::ExtensionGroupChanged,
        view.group.id,
        ctx.now,
    )
    .refresh(users)]);
    Ok(view)
}

/// Reads one group (`extensions.read`).
pub async fn get(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
) -> DomainResult<GroupView> {
    scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    view(db, find(db, domain_id, id).await?).await
}

/// Lists groups (`extensions.read`), in creation order.
pub async fn list(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    filter: &GroupFilter,
    page: &PageRequest,
) -> DomainResult<Page<GroupView>> {
    scope::enter(db, ctx, domain_id, Permission::ExtensionsRead).await?;
    let mut query =
        extension_groups::Entity::find().filter(extension_groups::Column::DomainId.eq(domain_id));
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(
            Expr::expr(Func::lower(Expr::col(extension_groups::Column::Name)))
                .like(search::contains(&q.to_lowercase())),
        );
    }
    let page = fetch_page(db, query, extension_groups::Column::Id, |m| m.id, page).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for g in page.items {
        items.push(view(db, g).await?);
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Deletes a group (`extensions.write`). One with members is refused with 409 unless
/// `force`, which releases them (their logouts then follow the phone's or the Domain's
/// setting), in the same transaction. Returns how many Extensions were released.
pub async fn delete(
    db: &DatabaseConnection,
    bus: &EventBus,
    ctx: &Context,
    domain_id: Uuid,
    id: Uuid,
    force: bool,
) -> DomainResult<u64> {
    let domain = scope::enter(db, ctx, domain_id, Permission::ExtensionsWrite).await?;
    let before = find(db, domain_id, id).await?;
    let txn = crate::db::begin_write(db).await?;
    let count = members(&txn, domain_id, id).await?;
    if count > 0 && !force {
        return Err(DomainError::Conflict {
            code: "in_use",
            message: format!(
                "the group has {count} member(s); delete with ?force=true to release them"
            ),
            field: None,
        });
    }
    let released = extensions::Entity::update_many()
        .col_expr(
            extensions::Column::GroupId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(extensions::Column::UpdatedAt, Expr::value(ctx.now))
        .filter(extensions::Column::DomainId.eq(domain_id))
        .filter(extensions::Column::GroupId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected;
    extension_groups::Entity::delete_by_id(id)
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        ctx,
        audit::Entry {
            domain_id: Some(domain_id),
            action: "extension_group.delete",
            target_kind: "extension_group",
            target_id: Some(id.to_string()),
            before: serde_json::to_value(&before).ok(),
            after: Some(json!({"forced": force, "released_extensions": released})),
        },
    )
    .await?;
    let users = affected(&txn, domain_id, &[before.placeholder_extension_id]).await?;
    txn.commit().await?;
    bus.publish([ChangeEvent::new(
        domain.id,
        &domain.sip_domain,
        ChangeKind::ExtensionGroupChanged,
        id,
        ctx.now,
    )
    .refresh(users)]);
    Ok(released)
}
