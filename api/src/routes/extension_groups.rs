//! Extension groups: the logout action of their members' phones (`full`, or log the phone in
//! to a named placeholder), falling back to the phone's and then the Domain's setting.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::extension_groups::{self, GroupFilter, GroupPatch, GroupView};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::ForceQuery;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// An Extension group.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionGroupDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    #[schema(example = "Visitors")]
    pub name: String,
    /// Description.
    pub description: String,
    /// What a member's logout leaves the phone in: `inherit` (the phone's, then the Domain's
    /// setting), `full` or `placeholder`.
    #[schema(value_type = crate::dto::DeviceLoggedOutMode, example = "placeholder")]
    pub logged_out_mode: String,
    /// The placeholder Extension for `placeholder`.
    pub placeholder_extension_id: Option<Uuid>,
    /// How many Extensions are in the group (`group_id` on the Extension).
    pub member_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<GroupView> for ExtensionGroupDto {
    fn from(v: GroupView) -> Self {
        let g = v.group;
        Self {
            id: g.id,
            domain_id: g.domain_id,
            name: g.name,
            description: g.description,
            logged_out_mode: g.logged_out_mode,
            placeholder_extension_id: g.placeholder_extension_id,
            member_count: v.member_count,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// A new group, or a change to one: omitted fields stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionGroupInput {
    /// 1–100 characters, unique in the Domain (409 `already_exists`); required to create.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false, example = "Visitors")]
    pub name: Option<String>,
    /// Up to 500 characters.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    pub description: Option<String>,
    /// `inherit` (default), `full` or `placeholder`. Leaving `placeholder` drops the
    /// placeholder unless it is given too.
    #[serde(default, deserialize_with = "crate::dto::non_null")]
    #[schema(nullable = false)]
    #[schema(value_type = crate::dto::DeviceLoggedOutMode)]
    pub logged_out_mode: Option<String>,
    /// With (and only with) `placeholder`: an Extension of this Domain flagged `placeholder`.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub placeholder_extension_id: Option<Option<Uuid>>,
}

impl From<ExtensionGroupInput> for GroupPatch {
    fn from(i: ExtensionGroupInput) -> Self {
        Self {
            name: i.name,
            description: i.description,
            logged_out_mode: i.logged_out_mode,
            placeholder_extension_id: i.placeholder_extension_id,
        }
    }
}

/// Filters of the group list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExtensionGroupListQuery {
    /// Part of the name (case-insensitive).
    pub q: Option<String>,
}

const PROBLEM: &str = "application/problem+json";

/// Create an Extension group (`extensions.write`).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = ExtensionGroupInput,
    responses(
        (status = 201, description = "Created", body = ExtensionGroupDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken in the Domain (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields; a placeholder that is missing, unknown or not a placeholder (`placeholder_extension_id`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/extension-groups")]
pub async fn create_extension_group(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ExtensionGroupInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let group = extension_groups::create(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/domains/{domain_id}/extension-groups/{}",
                group.group.id
            ),
        ))
        .json(ExtensionGroupDto::from(group)))
}

/// List Extension groups (`extensions.read`), oldest first.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, ExtensionGroupListQuery),
    responses(
        (status = 200, description = "One page", body = PageResponse<ExtensionGroupDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extension-groups")]
pub async fn list_extension_groups(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<ExtensionGroupListQuery>,
) -> ApiResult<web::Json<PageResponse<ExtensionGroupDto>>> {
    let page = page.0.to_request()?;
    let filter = GroupFilter {
        q: filter.into_inner().q,
    };
    let found =
        extension_groups::list(&state.db, caller.ctx(), path.into_inner(), &filter, &page).await?;
    Ok(web::Json(PageResponse::from_page(
        found,
        ExtensionGroupDto::from,
    )))
}

/// Read an Extension group (`extensions.read`).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Group id")),
    responses(
        (status = 200, description = "The group", body = ExtensionGroupDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such group in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extension-groups/{id}")]
pub async fn get_extension_group(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<ExtensionGroupDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        extension_groups::get(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change an Extension group (`extensions.write`); omitted fields stay, `null` clears. A new
/// logout action applies to the phones its members log out of from now on, and to the phones
/// a member logged out of last (they are re-read by FreeSWITCH).
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Group id")),
    request_body = ExtensionGroupInput,
    responses(
        (status = 200, description = "Changed", body = ExtensionGroupDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such group in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken in the Domain (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields or references", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/extension-groups/{id}")]
pub async fn update_extension_group(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<ExtensionGroupInput>,
) -> ApiResult<web::Json<ExtensionGroupDto>> {
    let (domain_id, id) = path.into_inner();
    let group = extension_groups::update(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(group.into()))
}

/// Delete an Extension group (`extensions.write`). While Extensions are in it, answers 409
/// `in_use` unless `?force=true`, which releases them in the same transaction.
#[utoipa::path(
    tag = "extensions",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Group id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such group in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`in_use`: Extensions are in it; retry with ?force=true", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/extension-groups/{id}")]
pub async fn delete_extension_group(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    force: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    extension_groups::delete(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        force.0.force,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
