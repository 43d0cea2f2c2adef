//! The caller's own account: identity, roles, sessions, password.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use switchboard_domain::services::auth;
use switchboard_domain::services::profile::{self, HeldRole, Identity};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::{DomainDto, RoleRef, UserDto};
use crate::extract::Json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// The API key a machine client is using.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyRef {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
}

/// The caller's standing in one Domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainMembership {
    /// The Domain.
    pub domain: DomainDto,
    /// Roles held in it.
    pub roles: Vec<RoleRef>,
    /// Effective permissions in it (platform permissions included).
    pub permissions: Vec<&'static str>,
    /// My Extension in it (the one linked to my User), where it is logged in and signed in.
    pub extension: Option<MyExtensionDto>,
}

/// My Extension in a Domain, and where it is right now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyExtensionDto {
    /// Its id.
    pub id: Uuid,
    /// Its number.
    #[schema(example = "201")]
    pub number: String,
    /// Its display name.
    pub display_name: String,
    /// The hot-desk phones it is logged in to, oldest first.
    pub hotdesk_sessions: Vec<MyDeskDto>,
    /// The Location it is signed in to.
    pub location: Option<MyLocationDto>,
}

/// A hot-desk phone my Extension is logged in to.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyDeskDto {
    /// The session.
    pub session_id: Uuid,
    /// The phone.
    pub device_id: Uuid,
    /// Its label.
    #[schema(example = "Desk 4.12")]
    pub device_label: String,
    /// Its Location, if any.
    pub location_id: Option<Uuid>,
    /// Since when.
    pub started_at: DateTime<Utc>,
    /// `feature_code`, `api` or `admin`.
    #[schema(value_type = crate::dto::SessionOrigin)]
    pub started_via: String,
}

/// The Location my Extension is signed in to.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyLocationDto {
    /// The Location.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

impl From<profile::MyExtension> for MyExtensionDto {
    fn from(e: profile::MyExtension) -> Self {
        Self {
            id: e.id,
            number: e.number,
            display_name: e.display_name,
            hotdesk_sessions: e
                .hotdesk_sessions
                .into_iter()
                .map(|d| MyDeskDto {
                    session_id: d.session_id,
                    device_id: d.device_id,
                    device_label: d.device_label,
                    location_id: d.location_id,
                    started_at: d.started_at,
                    started_via: d.started_via,
                })
                .collect(),
            location: e.location.map(|l| MyLocationDto {
                id: l.id,
                name: l.name,
                since: l.since,
            }),
        }
    }
}

/// Who am I.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// The user, when a user is calling.
    pub user: Option<UserDto>,
    /// The API key, when a machine client is calling.
    pub api_key: Option<ApiKeyRef>,
    /// The current session, for users.
    pub session_id: Option<Uuid>,
    /// Platform roles (acting in every Domain).
    pub platform_roles: Vec<RoleRef>,
    /// Platform-level permissions.
    pub platform_permissions: Vec<&'static str>,
    /// Each Domain with a directly held role.
    pub domains: Vec<DomainMembership>,
}

fn role_ref(r: HeldRole) -> RoleRef {
    RoleRef {
        key: r.key,
        name: r.name,
    }
}

/// Who am I: my account, my roles per Domain, my effective permissions, and in each Domain my
/// Extension with the hot-desk phones it is logged in to and the Location it is signed in to.
#[utoipa::path(tag = "me", security(("bearer" = [])), responses((status = 200, description = "Who is calling", body = MeResponse), (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/me")]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> ApiResult<web::Json<MeResponse>> {
    let me = profile::me(&state.db, &caller.ctx().actor).await?;
    let (user, api_key) = match me.identity {
        Identity::User(u) => (Some(UserDto::from(u)), None),
        Identity::ApiKey(k) => (
            None,
            Some(ApiKeyRef {
                id: k.id,
                name: k.name,
            }),
        ),
    };
    Ok(web::Json(MeResponse {
        user,
        api_key,
        session_id: me.session_id,
        platform_roles: me.platform_roles.into_iter().map(role_ref).collect(),
        platform_permissions: me.platform_permissions.names(),
        domains: me
            .domains
            .into_iter()
            .map(|d| DomainMembership {
                domain: d.domain.into(),
                roles: d.roles.into_iter().map(role_ref).collect(),
                permissions: d.permissions.names(),
                extension: d.extension.map(Into::into),
            })
            .collect(),
    }))
}

/// A login session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginSessionDto {
    /// Id.
    pub id: Uuid,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last refreshed.
    pub last_seen_at: DateTime<Utc>,
    /// Ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// Client address at login.
    pub ip_address: Option<String>,
    /// Client at login.
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

/// My live sessions.
#[utoipa::path(tag = "me", security(("bearer" = [])), responses((status = 200, description = "My live login sessions (none for an API key)", body = Vec<LoginSessionDto>)))]
#[get("/api/v1/me/sessions")]
pub async fn sessions(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<LoginSessionDto>>> {
    let ctx = caller.ctx();
    let Some(user_id) = ctx.actor.user_id() else {
        return Ok(web::Json(Vec::new()));
    };
    let current = match ctx.actor.principal {
        switchboard_domain::identity::authz::Principal::User { session_id, .. } => Some(session_id),
        _ => None,
    };
    let list = auth::list_sessions(&state.db, user_id, ctx.now).await?;
    Ok(web::Json(
        list.into_iter()
            .map(|s| LoginSessionDto {
                current: Some(s.id) == current,
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ip_address: s.ip_address,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

/// Revoke one of my sessions (its tokens stop working at once).
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such session of mine", body = Problem, content_type = "application/problem+json"))
)]
#[delete("/api/v1/me/sessions/{id}")]
pub async fn revoke_session(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    auth::revoke_own_session(&state.db, caller.ctx(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// The new password (at least 12 characters, not a common one).
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Change my password (needs the current one); my other sessions end.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password or weak new one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong attempts", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ChangePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    auth::change_password(
        &state.db,
        &state.auth_policy(),
        caller.ctx(),
        body.current_password,
        body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
