//! API keys for machine clients, per Domain and at platform level.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use switchboard_domain::services::api_keys::{
    self, ApiKeyView, KeyScope, KeyStatus, NewApiKey, display_prefix,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::RoleRef;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Where a key applies.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyScope {
    /// Platform-wide, with a platform role.
    Platform,
    /// One Domain (`domain_id`), with a role of that Domain.
    Domain,
}

/// Whether a key is accepted right now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyStatus {
    /// Accepted.
    Active,
    /// Past `expires_at`; refused.
    Expired,
    /// Revoked; refused.
    Revoked,
}

impl From<KeyStatus> for ApiKeyStatus {
    fn from(s: KeyStatus) -> Self {
        match s {
            KeyStatus::Active => Self::Active,
            KeyStatus::Expired => Self::Expired,
            KeyStatus::Revoked => Self::Revoked,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyDto {
    /// Id.
    pub id: Uuid,
    /// Name for people.
    #[schema(example = "provisioning script")]
    pub name: String,
    /// The start of the key, `sk_<id>_`: not secret, for recognising a key in a configuration.
    #[schema(example = "sk_0193a6f2c4b87d31a1e2f3a4b5c6d7e8_")]
    pub prefix: String,
    /// The role the key acts with.
    pub role: RoleRef,
    /// Platform or Domain.
    pub scope: ApiKeyScope,
    /// The Domain, for Domain keys.
    pub domain_id: Option<Uuid>,
    /// Active, expired or revoked, as of this response.
    pub status: ApiKeyStatus,
    /// The user who created it; null when another API key did (the audit log's
    /// `api_key.create` entry names it) or the user was deleted.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Refused from this time on; null for no expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// The last request made with it (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyDto {
    fn new(view: ApiKeyView, now: DateTime<Utc>) -> Self {
        let status = KeyStatus::of(&view.key, now).into();
        let k = view.key;
        Self {
            prefix: display_prefix(k.id),
            role: RoleRef {
                key: k.role_key,
                name: view.role_name,
            },
            scope: match k.domain_id {
                Some(_) => ApiKeyScope::Domain,
                None => ApiKeyScope::Platform,
            },
            status,
            id: k.id,
            name: k.name,
            domain_id: k.domain_id,
            created_by: k.created_by,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key with its secret, shown in this response only.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyDto {
    /// The whole key, to send as `Authorization: Bearer <secret>`. It is shown once: only a
    /// hash is stored, so a lost key cannot be recovered, only revoked and replaced.
    #[schema(
        example = "sk_0193a6f2c4b87d31a1e2f3a4b5c6d7e8_Zr3tq9x2Vh0cJk7LmN4pQs8uWy1aBd5eFg6iHj2kOo0"
    )]
    pub secret: String,
    /// The key.
    #[serde(flatten)]
    pub key: ApiKeyDto,
}

/// A key to create. Give `expires_at` or `expires_in_days`, or neither for a key that does not
/// expire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Name for people, 1–100 characters.
    #[schema(example = "provisioning script")]
    pub name: String,
    /// A built-in role name or a custom role id of the Domain. Domain keys carry Domain roles;
    /// platform keys carry `platform_admin`. You must hold every permission of the role.
    #[schema(example = "manager")]
    pub role: String,
    /// Expiry as an RFC 3339 time in the future.
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Expiry in days from now, 1–3650.
    #[schema(example = 90, minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

impl From<CreateApiKeyRequest> for NewApiKey {
    fn from(r: CreateApiKeyRequest) -> Self {
        Self {
            name: r.name,
            role: r.role,
            expires_at: r.expires_at,
            expires_in_days: r.expires_in_days,
        }
    }
}

async fn create(
    state: &AppState,
    caller: &Caller,
    scope: KeyScope,
    body: CreateApiKeyRequest,
) -> ApiResult<HttpResponse> {
    let created = api_keys::create(&state.db, caller.ctx(), scope, body.into()).await?;
    let key = ApiKeyDto::new(created.view, caller.ctx().now);
    let location = match scope {
        KeyScope::Platform => format!("/api/v1/api-keys/{}", key.id),
        KeyScope::Domain(d) => format!("/api/v1/domains/{d}/api-keys/{}", key.id),
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        // The body holds a credential: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CreatedApiKeyDto {
            secret: created.secret.expose_secret().to_owned(),
            key,
        }))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    scope: KeyScope,
    page: &PageQuery,
) -> ApiResult<web::Json<PageResponse<ApiKeyDto>>> {
    let page = page.to_request()?;
    let found = api_keys::list(&state.db, caller.ctx(), scope, &page).await?;
    let now = caller.ctx().now;
    Ok(web::Json(PageResponse::from_page(found, |v| {
        ApiKeyDto::new(v, now)
    })))
}

async fn read(
    state: &AppState,
    caller: &Caller,
    scope: KeyScope,
    id: Uuid,
) -> ApiResult<web::Json<ApiKeyDto>> {
    let view = api_keys::get(&state.db, caller.ctx(), scope, id).await?;
    Ok(web::Json(ApiKeyDto::new(view, caller.ctx().now)))
}

async fn revoke(
    state: &AppState,
    caller: &Caller,
    scope: KeyScope,
    id: Uuid,
) -> ApiResult<HttpResponse> {
    api_keys::revoke(&state.db, caller.ctx(), scope, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create an API key for the Domain (`api_keys.write`).
///
/// The key acts with `role` in this Domain only. Creating it is granting the role: you must hold
/// every permission of it here (403 otherwise), so an API key can only create keys in its own
/// Domain with at most its own permissions. The response is the only place the secret ever
/// appears.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = CreatedApiKeyDto,
            headers(("Location" = String, description = "The key's URL"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`api_keys.write` missing, or the role has a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, unknown or platform role, expiry in the past or both expiry fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains/{domain_id}/api-keys")]
pub async fn create_domain_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<CreateApiKeyRequest>,
) -> ApiResult<HttpResponse> {
    let scope = KeyScope::Domain(path.into_inner());
    create(&state, &caller, scope, body.into_inner()).await
}

/// List the Domain's API keys (`api_keys.write`), oldest first, revoked and expired ones
/// included. Secrets are never shown.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), PageQuery),
    responses(
        (status = 200, description = "One page of keys", body = PageResponse<ApiKeyDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`api_keys.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/api-keys")]
pub async fn list_domain_keys(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    page: Query<PageQuery>,
) -> ApiResult<web::Json<PageResponse<ApiKeyDto>>> {
    list(
        &state,
        &caller,
        KeyScope::Domain(path.into_inner()),
        &page.0,
    )
    .await
}

/// Read one of the Domain's API keys (`api_keys.write`), without its secret.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("key_id" = Uuid, Path, description = "API key id"),
    ),
    responses(
        (status = 200, description = "The key", body = ApiKeyDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`api_keys.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/api-keys/{key_id}")]
pub async fn get_domain_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<ApiKeyDto>> {
    let (domain_id, id) = path.into_inner();
    read(&state, &caller, KeyScope::Domain(domain_id), id).await
}

/// Revoke one of the Domain's API keys (`api_keys.write`, and every permission of the key's
/// role, as for creating it). It is refused from the next request on, and its open live-event
/// streams end within seconds. Revoking a revoked key changes nothing and answers 204 again.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("key_id" = Uuid, Path, description = "API key id"),
    ),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`api_keys.write` missing, or the key's role grants a permission you lack", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key in this Domain, or not my Domain", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/api/v1/domains/{domain_id}/api-keys/{key_id}")]
pub async fn revoke_domain_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    revoke(&state, &caller, KeyScope::Domain(domain_id), id).await
}

/// Create a platform API key (platform `api_keys.write`).
///
/// Platform keys carry a platform role (`platform_admin`) and act in every Domain, like a
/// platform administrator; you must hold every permission of the role. The response is the only
/// place the secret ever appears.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; `secret` is shown this once", body = CreatedApiKeyDto,
            headers(("Location" = String, description = "The key's URL"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Platform `api_keys.write` missing, or the role has a permission the caller lacks", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, a Domain or unknown role, expiry in the past or both expiry fields", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/api-keys")]
pub async fn create_platform_key(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateApiKeyRequest>,
) -> ApiResult<HttpResponse> {
    create(&state, &caller, KeyScope::Platform, body.into_inner()).await
}

/// List the platform API keys (platform `api_keys.write`), oldest first, revoked and expired
/// ones included. Domain keys are listed under their Domain.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of keys", body = PageResponse<ApiKeyDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Platform `api_keys.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/api-keys")]
pub async fn list_platform_keys(
    state: web::Data<AppState>,
    caller: Caller,
    page: Query<PageQuery>,
) -> ApiResult<web::Json<PageResponse<ApiKeyDto>>> {
    list(&state, &caller, KeyScope::Platform, &page.0).await
}

/// Read one platform API key (platform `api_keys.write`), without its secret.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(("key_id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 200, description = "The key", body = ApiKeyDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Platform `api_keys.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such platform key", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/api-keys/{key_id}")]
pub async fn get_platform_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<ApiKeyDto>> {
    read(&state, &caller, KeyScope::Platform, path.into_inner()).await
}

/// Revoke a platform API key (platform `api_keys.write`, and every permission of the key's
/// role). It is refused from the next request on. Revoking a revoked key changes nothing and
/// answers 204 again.
#[utoipa::path(
    tag = "api-keys",
    security(("bearer" = [])),
    params(("key_id" = Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Platform `api_keys.write` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such platform key", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/api/v1/api-keys/{key_id}")]
pub async fn revoke_platform_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    revoke(&state, &caller, KeyScope::Platform, path.into_inner()).await
}
