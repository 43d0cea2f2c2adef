//! Dashboard users of a Domain (logins, not Extensions): invitations, changes, disabling, admin
//! password resets, removal, and role assignments in a Domain and at platform level.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_domain::services::roles::RoleView;
use switchboard_domain::services::users::{
    self, AccountStatus, Member, NewUser, PasswordToken, StatusChange, UserFilter, UserPatch,
};
use switchboard_domain::store::users as user_store;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::{RoleRef, UserStatus};
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// A user as seen from one Domain: the account and the roles held there.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainUserDto {
    /// Id.
    pub id: Uuid,
    /// Email (lower-cased), the login name.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name.
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    /// Account status.
    pub status: UserStatus,
    /// Roles held in this Domain.
    pub roles: Vec<RoleRef>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

fn role_refs(roles: Vec<RoleView>) -> Vec<RoleRef> {
    roles
        .into_iter()
        .map(|r| RoleRef {
            key: r.key,
            name: r.name,
        })
        .collect()
}

fn user_dto(user: user_store::Model, roles: Vec<RoleView>) -> DomainUserDto {
    DomainUserDto {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        status: UserStatus::from_stored(&user.status),
        roles: role_refs(roles),
        created_at: user.created_at,
        updated_at: user.updated_at,
        last_login_at: user.last_login_at,
    }
}

impl From<Member> for DomainUserDto {
    fn from(m: Member) -> Self {
        user_dto(m.user, m.roles)
    }
}

fn token_ttl(state: &AppState) -> Duration {
    Duration::hours(i64::from(state.config.auth.password_token_ttl_hours))
}

/// A user to invite (no password) or create (with a password) in the Domain.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Email, the login name; case-insensitive and unique across the platform.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name, 1–100 characters.
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    /// Optional password (at least 12 characters, not a common one). Without it the user is
    /// `invited` and the response carries a set-password token.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
    /// Roles in this Domain: built-in role names (`domain_admin`, `manager`, `receptionist`,
    /// `supervisor`, `agent`, `member`) or custom role ids. At least one; you must hold every
    /// permission they grant.
    #[schema(example = json!(["manager"]))]
    pub roles: Vec<String>,
}

/// The created user; for an invitation also the single-use set-password token (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUserResponse {
    /// The user.
    #[serde(flatten)]
    pub user: DomainUserDto,
    /// Hand this to the user: `POST /api/v1/auth/set-password` with it and a password
    /// activates the account. Only for users created without a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_password_token: Option<String>,
    /// When the token stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_password_expires_at: Option<DateTime<Utc>>,
}

/// A change to a user; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New display name.
    pub display_name: Option<String>,
    /// `disabled` ends every session at once and blocks logins; `active` re-enables (an account
    /// that never set a password goes back to `invited`).
    pub status: Option<StatusRequest>,
}

/// The status an admin may set.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusRequest {
    /// Enable.
    Active,
    /// Disable.
    Disabled,
}

/// Filters of the user list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Part of the email or display name (case-insensitive).
    pub q: Option<String>,
    /// Only users with this status.
    pub status: Option<UserStatus>,
}

/// A fresh single-use set-password token.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordTokenResponse {
    /// For `POST /api/v1/auth/set-password`; shown once.
    pub set_password_token: String,
    /// When it stops working.
    pub set_password_expires_at: DateTime<Utc>,
}

impl From<PasswordToken> for PasswordTokenResponse {
    fn from(t: PasswordToken) -> Self {
        Self {
            set_password_token: t.token.expose_secret().to_owned(),
            set_password_expires_at: t.expires_at,
        }
    }
}

/// A complete set of roles.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// Role keys: built-in names or custom role ids (Domain roles), or `platform_admin`
    /// (platform roles).
    #[schema(example = json!(["manager", "receptionist"]))]
    pub roles: Vec<String>,
}

/// The roles a user holds in one scope.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRolesResponse {
    /// The user.
    pub user_id: Uuid,
    /// The roles.
    pub roles: Vec<RoleRef>,
}

/// Invite or create a user in the Domain (`users.write`).
///
/// Without `password` the user is `invited` and the response includes `set_password_token`
/// (single-use, expiring after `auth.password_token_ttl_hours`). Every role must be one the
/// caller could grant: holding all its permissions.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = CreatedUserResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.write` missing, or a role grants a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken (field `email`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad email, display name, password or role (`roles[i]`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains/{domain_id}/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<CreateUserRequest>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let body = body.into_inner();
    let created = users::create(
        &state.db,
        caller.ctx(),
        domain_id,
        NewUser {
            email: body.email,
            display_name: body.display_name,
            password: body.password,
            roles: body.roles,
        },
        token_ttl(&state),
    )
    .await?;
    let user = DomainUserDto::from(created.member);
    let location = format!("/api/v1/domains/{domain_id}/users/{}", user.id);
    let (set_password_token, set_password_expires_at) = match created.set_password {
        Some(t) => (Some(t.token.expose_secret().to_owned()), Some(t.expires_at)),
        None => (None, None),
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CreatedUserResponse {
            user,
            set_password_token,
            set_password_expires_at,
        }))
}

/// List the Domain's users (`users.read`): everyone holding a role in it.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery, UserListQuery),
    responses(
        (status = 200, description = "One page of users", body = PageResponse<DomainUserDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit, cursor or status", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
    filter: Query<UserListQuery>,
) -> ApiResult<web::Json<PageResponse<DomainUserDto>>> {
    let page = page.0.to_request()?;
    let filter = filter.into_inner();
    let found = users::list(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        &UserFilter {
            q: filter.q,
            status: filter.status.map(|s| match s {
                UserStatus::Active => AccountStatus::Active,
                UserStatus::Disabled => AccountStatus::Disabled,
                UserStatus::Invited => AccountStatus::Invited,
            }),
        },
        &page,
    )
    .await?;
    Ok(web::Json(PageResponse::from_page(
        found,
        DomainUserDto::from,
    )))
}

/// Read a user of the Domain (`users.read`). A user without a role in this Domain is 404.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = DomainUserDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/users/{user_id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<DomainUserDto>> {
    let (domain_id, id) = path.into_inner();
    let member = users::get(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(member.into()))
}

/// Change a user's display name or status (`users.write`).
///
/// Disabling ends all their sessions at once (their access tokens answer 401 on the next
/// request). Acting on the account needs `users.write` and every permission the user holds in
/// every Domain they belong to (and at platform level for a platform role), else 403. Nobody
/// disables themselves (409 `cannot_target_self`); the last active platform administrator
/// cannot be disabled (409 `last_platform_admin`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user", body = DomainUserDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.write` missing, or the user is more powerful here or elsewhere", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`cannot_target_self` or `last_platform_admin`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad display name or status", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/api/v1/domains/{domain_id}/users/{user_id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<UpdateUserRequest>,
) -> ApiResult<web::Json<DomainUserDto>> {
    let (domain_id, id) = path.into_inner();
    let body = body.into_inner();
    let member = users::update(
        &state.db,
        caller.ctx(),
        domain_id,
        id,
        UserPatch {
            display_name: body.display_name,
            status: body.status.map(|s| match s {
                StatusRequest::Active => StatusChange::Active,
                StatusRequest::Disabled => StatusChange::Disabled,
            }),
        },
    )
    .await?;
    Ok(web::Json(member.into()))
}

/// Admin password reset (`users.write`, same account rule as disabling).
///
/// The user's password stops working, all their sessions end, and a new single-use
/// set-password token is returned for the admin to pass on. For an invited user this is a
/// fresh invitation token.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "A new set-password token", body = PasswordTokenResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.write` missing, or the user is more powerful here or elsewhere", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`cannot_target_self` (use /api/v1/me/password) or `user_disabled`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains/{domain_id}/users/{user_id}/reset-password")]
pub async fn reset_password(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let token =
        users::reset_password(&state.db, caller.ctx(), domain_id, id, token_ttl(&state)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(PasswordTokenResponse::from(token)))
}

/// Remove a user from the Domain (`users.write`; you must hold what their roles here grant).
///
/// Their roles in this Domain go; when they hold no role anywhere any more, the account is
/// deleted. Nobody removes themselves (409 `cannot_target_self`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.write` missing, or their roles grant more than you hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`cannot_target_self`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/api/v1/domains/{domain_id}/users/{user_id}")]
pub async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    users::remove(&state.db, &state.events, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The roles a user holds in the Domain (`users.read`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The roles", body = UserRolesResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`users.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/users/{user_id}/roles")]
pub async fn get_user_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<UserRolesResponse>> {
    let (domain_id, id) = path.into_inner();
    let roles = users::roles_in_domain(&state.db, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(UserRolesResponse {
        user_id: id,
        roles: role_refs(roles),
    }))
}

/// Replace the roles a user holds in the Domain (`users.write`).
///
/// You must hold every permission of each role added and of each role removed. The user may
/// be a member already, or an existing user you can see in another Domain (this gives them a
/// role here too). The set cannot be empty (DELETE the user instead); `platform_admin` is a
/// platform role (422).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("user_id" = Uuid, Path, description = "User id")),
    request_body = RolesRequest,
    responses(
        (status = 200, description = "The user with the new roles", body = DomainUserDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A role added or removed grants a permission you lack", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user visible to you, or not my Domain", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty set, unknown role or wrong scope (`roles[i]`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/api/v1/domains/{domain_id}/users/{user_id}/roles")]
pub async fn put_user_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<RolesRequest>,
) -> ApiResult<web::Json<DomainUserDto>> {
    let (domain_id, id) = path.into_inner();
    let member =
        users::replace_roles(&state.db, caller.ctx(), domain_id, id, &body.0.roles).await?;
    Ok(web::Json(member.into()))
}

/// A user's platform roles (platform `domains.manage`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The platform roles", body = UserRolesResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/users/{user_id}/platform-roles")]
pub async fn get_platform_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<UserRolesResponse>> {
    let (user, roles) = users::platform_roles(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(UserRolesResponse {
        user_id: user.id,
        roles: role_refs(roles),
    }))
}

/// Replace a user's platform roles (platform `domains.manage`, and you must hold what each
/// role added or removed grants).
///
/// Only platform roles (`platform_admin`) are accepted here (422 otherwise). The last active
/// platform administrator cannot lose the role (409 `last_platform_admin`).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "User id")),
    request_body = RolesRequest,
    responses(
        (status = 200, description = "The new platform roles", body = UserRolesResponse),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`last_platform_admin`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown role or a Domain role (`roles[i]`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/api/v1/users/{user_id}/platform-roles")]
pub async fn put_platform_roles(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<RolesRequest>,
) -> ApiResult<web::Json<UserRolesResponse>> {
    let (user, roles) =
        users::replace_platform_roles(&state.db, caller.ctx(), path.into_inner(), &body.0.roles)
            .await?;
    Ok(web::Json(UserRolesResponse {
        user_id: user.id,
        roles: role_refs(roles),
    }))
}
