//! Reading the audit log: a Domain's, and the platform's.

use actix_web::{get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_domain::services::audit_query::{self, AuditQuery, AuditScope};
use switchboard_domain::store::audit_log;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::Query;
use crate::pagination::PageResponse;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// What kind of caller acted.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A dashboard user.
    User,
    /// A machine client's API key.
    ApiKey,
    /// switchboard itself, or an unauthenticated request (failed logins).
    System,
}

impl ActorKind {
    fn from_stored(kind: &str) -> Self {
        match kind {
            "user" => Self::User,
            "api_key" => Self::ApiKey,
            _ => Self::System,
        }
    }
}

/// Who acted.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActor {
    /// User, API key or system.
    pub kind: ActorKind,
    /// The user's or key's id.
    pub id: Option<Uuid>,
    /// The user's email, `api_key:<key name>` or `system`, as it was at the time.
    #[schema(example = "ada@example.com")]
    pub label: String,
}

/// What was acted on.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTarget {
    /// The kind of thing, e.g. `user`, `api_key`, `extension`.
    #[schema(example = "user")]
    pub kind: String,
    /// Its id.
    pub id: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryDto {
    /// Id (time-ordered).
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The Domain concerned; null for platform-level entries.
    pub domain_id: Option<Uuid>,
    /// Who acted.
    pub actor: AuditActor,
    /// What was done, `<kind>.<verb>`.
    #[schema(example = "user.create")]
    pub action: String,
    /// What it was done to.
    pub target: AuditTarget,
    /// State before the change, secrets removed.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// State after the change, secrets removed.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    /// The HTTP request's id (the `x-request-id` response header), when there was one.
    pub request_id: Option<String>,
}

impl From<audit_log::Model> for AuditEntryDto {
    fn from(e: audit_log::Model) -> Self {
        Self {
            id: e.id,
            at: e.at,
            domain_id: e.domain_id,
            actor: AuditActor {
                kind: ActorKind::from_stored(&e.actor_kind),
                id: e.actor_id,
                label: e.actor_label,
            },
            action: e.action,
            target: AuditTarget {
                kind: e.target_kind,
                id: e.target_id,
            },
            before: e.before,
            after: e.after,
            request_id: e.request_id,
        }
    }
}

/// Filters and page of a Domain's audit log. Unknown parameters are refused (422), so a
/// misspelt filter cannot silently show everything.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// Only entries by this user or API key (its id).
    pub actor_id: Option<String>,
    /// Only entries whose actor label is exactly this (an email, `api_key:<name>`, `system`).
    #[param(example = "ada@example.com")]
    pub actor: Option<String>,
    /// Only entries by this kind of actor: `user`, `api_key` or `system`.
    #[param(value_type = Option<ActorKind>)]
    pub actor_kind: Option<String>,
    /// Only this action, or with a trailing `*` every action starting with the text before it.
    #[param(example = "user.*")]
    pub action: Option<String>,
    /// Only entries about this kind of target, e.g. `user`.
    pub target_kind: Option<String>,
    /// Only entries about this target id.
    pub target_id: Option<String>,
    /// Only entries at or after this RFC 3339 time (encode `+` as `%2B`).
    #[param(example = "2026-01-01T00:00:00Z")]
    pub from: Option<String>,
    /// Only entries before this RFC 3339 time; not earlier than `from`.
    #[param(example = "2026-02-01T00:00:00Z")]
    pub to: Option<String>,
    /// How many entries (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Filters and page of the platform audit log: those of a Domain's log, plus `domain_id`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlatformAuditListQuery {
    /// Show this Domain's entries instead of the platform-level ones (which belong to no Domain).
    pub domain_id: Option<String>,
    /// Only entries by this user or API key (its id).
    pub actor_id: Option<String>,
    /// Only entries whose actor label is exactly this (an email, `api_key:<name>`, `system`).
    #[param(example = "admin@example.com")]
    pub actor: Option<String>,
    /// Only entries by this kind of actor: `user`, `api_key` or `system`.
    #[param(value_type = Option<ActorKind>)]
    pub actor_kind: Option<String>,
    /// Only this action, or with a trailing `*` every action starting with the text before it.
    #[param(example = "auth.*")]
    pub action: Option<String>,
    /// Only entries about this kind of target, e.g. `domain`.
    pub target_kind: Option<String>,
    /// Only entries about this target id.
    pub target_id: Option<String>,
    /// Only entries at or after this RFC 3339 time (encode `+` as `%2B`).
    #[param(example = "2026-01-01T00:00:00Z")]
    pub from: Option<String>,
    /// Only entries before this RFC 3339 time; not earlier than `from`.
    #[param(example = "2026-02-01T00:00:00Z")]
    pub to: Option<String>,
    /// How many entries (1–500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A query string that does not parse is refused only after the caller is known to be allowed to
/// read the log, so the answer to someone who may not is always the 403/404 alone.
async fn refuse_after_authorizing<T>(
    state: &AppState,
    caller: &Caller,
    scope: AuditScope,
    query: Result<Query<T>, ApiError>,
) -> ApiResult<T> {
    match query {
        Ok(q) => Ok(q.into_inner()),
        Err(e) => {
            audit_query::authorize(&state.db, caller.ctx(), scope).await?;
            Err(e)
        }
    }
}

async fn list(
    state: &AppState,
    caller: &Caller,
    scope: AuditScope,
    query: &AuditQuery,
    limit: Option<u64>,
    cursor: Option<&str>,
) -> ApiResult<web::Json<PageResponse<AuditEntryDto>>> {
    let page = audit_query::list(&state.db, caller.ctx(), scope, query, limit, cursor).await?;
    Ok(web::Json(PageResponse::from_page(
        page,
        AuditEntryDto::from,
    )))
}

/// Read the Domain's audit log (`audit.read`): every change made in it, newest first.
///
/// Filters combine with AND. Every entry was written in the same transaction as its change;
/// secrets (passwords, PINs, SIP secrets, API key secrets, tokens) never appear in `before` or
/// `after`.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), AuditListQuery),
    responses(
        (status = 200, description = "One page of entries, newest first", body = PageResponse<AuditEntryDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`audit.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed filter (named in `errors`), `to` before `from`, an unknown parameter, or a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}/audit")]
pub async fn domain_audit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Result<Query<AuditListQuery>, ApiError>,
) -> ApiResult<web::Json<PageResponse<AuditEntryDto>>> {
    let scope = AuditScope::Domain(path.into_inner());
    let q = refuse_after_authorizing(&state, &caller, scope, query).await?;
    let filters = AuditQuery {
        actor_id: q.actor_id,
        actor: q.actor,
        actor_kind: q.actor_kind,
        action: q.action,
        target_kind: q.target_kind,
        target_id: q.target_id,
        from: q.from,
        to: q.to,
        domain_id: None,
    };
    list(
        &state,
        &caller,
        scope,
        &filters,
        q.limit,
        q.cursor.as_deref(),
    )
    .await
}

/// Read the platform audit log (platform `audit.read`), newest first: platform-level entries
/// (logins, Domains created and deleted, platform roles, platform API keys), or one Domain's
/// entries with `domain_id`.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(PlatformAuditListQuery),
    responses(
        (status = 200, description = "One page of entries, newest first", body = PageResponse<AuditEntryDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Platform `audit.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A malformed filter (named in `errors`), `to` before `from`, an unknown parameter, or a bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/audit")]
pub async fn platform_audit(
    state: web::Data<AppState>,
    caller: Caller,
    query: Result<Query<PlatformAuditListQuery>, ApiError>,
) -> ApiResult<web::Json<PageResponse<AuditEntryDto>>> {
    let q = refuse_after_authorizing(&state, &caller, AuditScope::Platform, query).await?;
    let filters = AuditQuery {
        actor_id: q.actor_id,
        actor: q.actor,
        actor_kind: q.actor_kind,
        action: q.action,
        target_kind: q.target_kind,
        target_id: q.target_id,
        from: q.from,
        to: q.to,
        domain_id: q.domain_id,
    };
    list(
        &state,
        &caller,
        AuditScope::Platform,
        &filters,
        q.limit,
        q.cursor.as_deref(),
    )
    .await
}
