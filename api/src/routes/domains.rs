//! Domains (tenants): platform administrators create, change and delete them; everyone sees
//! the Domains they hold a role in.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use switchboard_domain::services::domains::{self, DomainFilter, DomainPatch, NewDomain};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::dto::{DomainDto, ForceQuery};
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// A Domain to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDomainRequest {
    /// Display name, 1–100 characters.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// The FreeSWITCH SIP domain: a fully qualified domain name, unique platform-wide. It is
    /// trimmed and lower-cased; labels of `a-z`, `0-9` and `-` (1–63 each, not starting or
    /// ending with `-`), at least two labels, at most 253 characters.
    #[schema(example = "acme.pbx.example.net")]
    pub sip_domain: String,
    /// IANA time zone name; `UTC` when omitted.
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// In service; `true` when omitted.
    pub enabled: Option<bool>,
}

/// A change to a Domain; omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDomainRequest {
    /// New display name.
    pub name: Option<String>,
    /// New SIP domain (same rules as on creation; phones must then use the new realm).
    pub sip_domain: Option<String>,
    /// New IANA time zone.
    pub timezone: Option<String>,
    /// Enable or disable the Domain.
    pub enabled: Option<bool>,
}

/// Filters of the Domain list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainListQuery {
    /// Part of the name or SIP domain (case-insensitive).
    pub q: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) Domains.
    pub enabled: Option<bool>,
}

/// Create a Domain (platform `domains.manage`).
#[utoipa::path(
    tag = "domains",
    security(("bearer" = [])),
    request_body = CreateDomainRequest,
    responses(
        (status = 201, description = "Created", body = DomainDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SIP domain is taken (field `sip_domain`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, SIP domain or time zone", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/domains")]
pub async fn create_domain(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateDomainRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let domain = domains::create(
        &state.db,
        &state.events,
        caller.ctx(),
        NewDomain {
            name: body.name,
            sip_domain: body.sip_domain,
            timezone: body.timezone,
            enabled: body.enabled,
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/domains/{}", domain.id)))
        .json(DomainDto::from(domain)))
}

/// List the Domains I can see: every Domain for platform administrators, otherwise those I
/// hold a role in.
#[utoipa::path(
    tag = "domains",
    security(("bearer" = [])),
    params(PageQuery, DomainListQuery),
    responses(
        (status = 200, description = "One page of Domains", body = PageResponse<DomainDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains")]
pub async fn list_domains(
    state: web::Data<AppState>,
    caller: Caller,
    page: Query<PageQuery>,
    filter: Query<DomainListQuery>,
) -> ApiResult<web::Json<PageResponse<DomainDto>>> {
    let page = page.0.to_request()?;
    let filter = filter.into_inner();
    let found = domains::list(
        &state.db,
        caller.ctx(),
        &DomainFilter {
            q: filter.q,
            enabled: filter.enabled,
        },
        &page,
    )
    .await?;
    Ok(web::Json(PageResponse::from_page(found, DomainDto::from)))
}

/// Read a Domain (`domains.read` in it). A Domain I hold no role in is 404.
#[utoipa::path(
    tag = "domains",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The Domain", body = DomainDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Visible but `domains.read` missing", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/domains/{domain_id}")]
pub async fn get_domain(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<DomainDto>> {
    let domain = domains::get(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(domain.into()))
}

/// Change a Domain (platform `domains.manage`): name, SIP domain, time zone, enabled.
#[utoipa::path(
    tag = "domains",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = UpdateDomainRequest,
    responses(
        (status = 200, description = "The changed Domain", body = DomainDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A member of the Domain, but not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The SIP domain is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid values", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/api/v1/domains/{domain_id}")]
pub async fn update_domain(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<UpdateDomainRequest>,
) -> ApiResult<web::Json<DomainDto>> {
    let body = body.into_inner();
    let domain = domains::update(
        &state.db,
        &state.events,
        caller.ctx(),
        path.into_inner(),
        DomainPatch {
            name: body.name,
            sip_domain: body.sip_domain,
            timezone: body.timezone,
            enabled: body.enabled,
        },
    )
    .await?;
    Ok(web::Json(domain.into()))
}

/// Delete a Domain (platform `domains.manage`).
///
/// A Domain that still owns anything (members, custom roles, API keys, Extensions, Devices,
/// Locations) answers 409 `domain_not_empty` unless `force=true`, which removes all of it in one
/// transaction, including the accounts whose only membership it was.
#[utoipa::path(
    tag = "domains",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A member of the Domain, but not a platform administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`domain_not_empty`: it still owns data and `force` was not given", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/api/v1/domains/{domain_id}")]
pub async fn delete_domain(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Query<ForceQuery>,
) -> ApiResult<HttpResponse> {
    domains::delete(
        &state.db,
        &state.events,
        caller.ctx(),
        path.into_inner(),
        query.0.force,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
