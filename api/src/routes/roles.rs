//! Roles of a Domain (built-in and custom) and the permission catalogue.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::identity::permissions::RoleScope;
use switchboard_domain::services::roles::{self, NewRole, RolePatch, RoleView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::ForceQuery;
use crate::extract::{Json, Query};
use crate::pagination::PageResponse;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Where a role or permission applies.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Across the platform.
    Platform,
    /// Inside one Domain.
    Domain,
}

impl From<RoleScope> for Scope {
    fn from(s: RoleScope) -> Self {
        match s {
            RoleScope::Platform => Self::Platform,
            RoleScope::Domain => Self::Domain,
        }
    }
}

/// A role: built-in, or custom to the Domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    /// The key to use in role assignments: the built-in name, or the custom role's id.
    #[schema(example = "manager")]
    pub key: String,
    /// Display name.
    #[schema(example = "manager")]
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The permissions it grants.
    #[schema(example = json!(["domains.read", "users.read"]))]
    pub permissions: Vec<&'static str>,
    /// True for built-in roles (which cannot be changed).
    pub builtin: bool,
    /// Created (custom roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Last changed (custom roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<RoleView> for RoleDto {
    fn from(r: RoleView) -> Self {
        Self {
            builtin: r.is_builtin(),
            created_at: r.custom.as_ref().map(|c| c.created_at),
            updated_at: r.custom.as_ref().map(|c| c.updated_at),
            key: r.key,
            name: r.name,
            description: r.description,
            permissions: r.permissions.names(),
        }
    }
}

/// A custom role to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoleRequest {
    /// Name, 1–64 characters, unique in the Domain (case-insensitive), not a built-in name.
    #[schema(example = "Night desk")]
    pub name: String,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
    /// Permission names (see `GET /api/v1/permissions`); at least one, Domain-scope only, and
    /// each one held by the caller.
    #[schema(example = json!(["domains.read", "presence.read", "hotdesk.others"]))]
    pub permissions: Vec<String>,
}

/// A change to a custom role; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoleRequest {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New permission list (replaces the old one).
    pub permissions: Option<Vec<String>>,
}

/// One permission of the fixed set.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionDto {
    /// Stable name.
    #[schema(example = "devices.write")]
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    /// Where it can be held: platform-only permissions cannot be part of a custom role.
    pub scope: Scope,
}

/// A built-in role of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuiltinRoleDto {
    /// The role's name, used as its key.
    #[schema(example = "receptionist")]
    pub key: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Where it is assigned.
    pub scope: Scope,
    /// The permissions it grants.
    pub permissions: Vec<&'static str>,
}

/// Every permission and every built-in role.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionCatalogue {
    /// The fixed permission set.
    pub permissions: Vec<PermissionDto>,
    /// The built-in roles with their permission sets.
    pub roles: Vec<BuiltinRoleDto>,
}

/// The permission catalogue: every permission with its description and scope, and every
/// built-in role with its permission set. Any authenticated caller may read it.
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = PermissionCatalogue),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/permissions")]
pub async fn permissions(_caller: Caller) -> web::Json<PermissionCatalogue> {
    let (permissions, roles) = roles::catalogue();
    web::Json(PermissionCatalogue {
        permissions: permissions
            .into_iter()
            .map(|p| PermissionDto {
                name: p.permission.as_str(),
                description: p.permission.description(),
                scope: p.scope.into(),
            })
            .collect(),
        roles: roles
            .iter()
            .map(|r| BuiltinRoleDto {
                key: r.as_str(),
                description: r.description(),
                scope: r.scope().into(),
                permissions: r.permissions().names(),
            })
            .collect(),
    })
}

/// List the Domain's roles (`roles.read`): the built-in Domain roles, then custom roles in
/// creation order. The whole list comes in one page.
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "Every role usable in the Domain", body = PageResponse<RoleDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`roles.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/roles")]
pub async fn list_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<PageResponse<RoleDto>>> {
    let all = roles::list(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(PageResponse {
        items: all.into_iter().map(RoleDto::from).collect(),
        next_cursor: None,
    }))
}

/// Read one role of the Domain (`roles.read`) by key: a built-in Domain role's name or a
/// custom role's id.
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("role" = String, Path, description = "Built-in role name or custom role id"),
    ),
    responses(
        (status = 200, description = "The role", body = RoleDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`roles.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such role in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/roles/{role}")]
pub async fn get_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<web::Json<RoleDto>> {
    let (domain_id, key) = path.into_inner();
    let role = roles::get(&state.db, caller.ctx(), domain_id, &key).await?;
    Ok(web::Json(role.into()))
}

/// Create a custom role (`roles.write`).
///
/// Its permissions come from the fixed set (unknown → 422 naming `permissions[i]`), are
/// Domain-scope only (`domains.manage`, `nodes.read` → 422), and must all be held by the caller
/// (403 otherwise).
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = CreateRoleRequest,
    responses(
        (status = 201, description = "Created", body = RoleDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`roles.write` missing, or a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken in the Domain (field `name`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, description or permissions", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains/{domain_id}/roles")]
pub async fn create_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<CreateRoleRequest>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let body = body.into_inner();
    let role = roles::create(
        &state.db,
        caller.ctx(),
        domain_id,
        NewRole {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
        },
    )
    .await?;
    let dto = RoleDto::from(role);
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/domains/{domain_id}/roles/{}", dto.key),
        ))
        .json(dto))
}

/// Change a custom role (`roles.write`; you must hold every permission it grants now and will
/// grant). Built-in roles cannot be changed.
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("role" = Uuid, Path, description = "Custom role id"),
    ),
    request_body = UpdateRoleRequest,
    responses(
        (status = 200, description = "The changed role", body = RoleDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`roles.write` missing, or a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such custom role in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken in the Domain", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, description or permissions", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/api/v1/domains/{domain_id}/roles/{role}")]
pub async fn update_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateRoleRequest>,
) -> ApiResult<web::Json<RoleDto>> {
    let (domain_id, id) = path.into_inner();
    let body = body.into_inner();
    let role = roles::update(
        &state.db,
        caller.ctx(),
        domain_id,
        id,
        RolePatch {
            name: body.name,
            description: body.description,
            permissions: body.permissions,
        },
    )
    .await?;
    Ok(web::Json(role.into()))
}

/// Delete a custom role (`roles.write`; you must hold what it grants).
///
/// A role held by users or API keys answers 409 `role_in_use` unless `force=true`, which
/// removes those assignments and keys in the same transaction (accounts left without any role
/// anywhere are deleted).
#[utoipa::path(
    tag = "roles",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("role" = Uuid, Path, description = "Custom role id"),
        ForceQuery,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`roles.write` missing, or a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such custom role in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`role_in_use` and `force` was not given", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/api/v1/domains/{domain_id}/roles/{role}")]
pub async fn delete_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    roles::delete(&state.db, caller.ctx(), domain_id, id, query.0.force).await?;
    Ok(HttpResponse::NoContent().finish())
}
