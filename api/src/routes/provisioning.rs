//! Phone provisioning for admins: the catalogue, templates, Model Layouts, what groups may
//! choose, the Domain's provisioning settings, and each Device's provisioning view.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_domain::provisioning::LineKey;
use switchboard_domain::provisioning::keys::{KeySpec, LayoutSource};
use switchboard_domain::provisioning::models::catalogue;
use switchboard_domain::services::provisioning::{
    self as service, ChoicesForPhone, GroupChoices, LayoutPatch, LayoutView, Preview,
    SettingsPatch, SettingsView, TemplatePatch,
};
use switchboard_domain::store::provisioning_templates;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// A phone model of the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneModelDto {
    /// Id, as a Device's `model` (or its name with `vendor`).
    #[schema(example = "yealink-t54w")]
    pub id: String,
    /// Vendor family: `yealink`, `poly`, `grandstream`, `snom` or `cisco`.
    #[schema(example = "yealink")]
    pub vendor: String,
    /// Model name.
    #[schema(example = "T54W")]
    pub name: String,
    /// Programmable keys on the phone.
    pub line_keys: u32,
    /// Expansion modules it takes.
    pub expansion_modules: u32,
    /// Keys per expansion module.
    pub keys_per_module: u32,
    /// Keys a layout of this model may have (phone and modules).
    pub max_keys: u32,
    /// The files it asks for, `{mac}` standing for its MAC (12 lower-case hex digits).
    #[schema(example = json!(["{mac}.cfg"]))]
    pub files: Vec<String>,
}

/// The catalogue of phone models provisioning knows (any signed-in caller).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = Vec<PhoneModelDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/phone-models")]
pub async fn list_phone_models(_caller: Caller) -> web::Json<Vec<PhoneModelDto>> {
    web::Json(
        catalogue()
            .iter()
            .map(|m| PhoneModelDto {
                id: m.id.to_owned(),
                vendor: m.vendor.as_str().to_owned(),
                name: m.name.to_owned(),
                line_keys: m.line_keys,
                expansion_modules: m.expansion_modules,
                keys_per_module: m.keys_per_module,
                max_keys: m.max_keys(),
                files: switchboard_domain::provisioning::models::files(m.vendor)
                    .iter()
                    .map(|f| f.pattern.to_owned())
                    .collect(),
            })
            .collect(),
    )
}

/// A built-in template.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuiltInTemplateDto {
    /// Its name, as a tenant template names it in `{% extends "…" %}`.
    #[schema(example = "yealink.cfg")]
    pub name: String,
    /// Vendor family.
    #[schema(example = "yealink")]
    pub vendor: String,
    /// True for the vendor's main file (the one a tenant template replaces).
    pub main: bool,
    /// The minijinja source, with the blocks a tenant template may override.
    pub source: String,
}

/// The built-in templates with their sources (any signed-in caller).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The built-in templates", body = Vec<BuiltInTemplateDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/phone-templates")]
pub async fn list_built_in_templates(_caller: Caller) -> web::Json<Vec<BuiltInTemplateDto>> {
    use switchboard_domain::provisioning::models::{Vendor, files};
    use switchboard_domain::provisioning::render::{built_in_source, main_template};
    let mut out = Vec::new();
    for vendor in Vendor::ALL {
        for f in files(vendor) {
            out.push(BuiltInTemplateDto {
                name: f.template.to_owned(),
                vendor: vendor.as_str().to_owned(),
                main: f.template == main_template(vendor),
                source: built_in_source(f.template).unwrap_or_default().to_owned(),
            });
        }
    }
    web::Json(out)
}

// ---------------------------------------------------------------- templates

/// A tenant template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDto {
    /// Id.
    pub id: Uuid,
    /// The Domain.
    pub domain_id: Uuid,
    /// Name, unique in the Domain.
    #[schema(example = "Yealink with BLF pickup")]
    pub name: String,
    /// Vendor family.
    #[schema(example = "yealink")]
    pub vendor: String,
    /// The minijinja source.
    #[schema(
        example = "{% extends \"yealink.cfg\" %}\n{% block extra %}features.pickup.blf_audio_enable = 1{% endblock %}"
    )]
    pub body: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<provisioning_templates::Model> for TemplateDto {
    fn from(t: provisioning_templates::Model) -> Self {
        Self {
            id: t.id,
            domain_id: t.domain_id,
            name: t.name,
            vendor: t.vendor,
            body: t.body,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A new template, or a change to one (omitted fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// 1–100 characters, unique in the Domain; required to create.
    #[serde(default)]
    pub name: Option<String>,
    /// `yealink`, `poly`, `grandstream`, `snom` or `cisco`; required to create, then fixed.
    #[serde(default)]
    pub vendor: Option<String>,
    /// minijinja source (at most 64 KiB), usually `{% extends "<built-in>" %}` with blocks
    /// (`GET /api/v1/phone-templates`); required to create. It is rendered for a sample phone
    /// when saved: a template that does not render is a 422 naming its line.
    #[serde(default)]
    pub body: Option<String>,
}

impl From<TemplateInput> for TemplatePatch {
    fn from(i: TemplateInput) -> Self {
        Self {
            name: i.name,
            vendor: i.vendor,
            body: i.body,
        }
    }
}

/// List the Domain's templates (`devices.read`), by name.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The templates", body = Vec<TemplateDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/provisioning/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Vec<TemplateDto>>> {
    let found = service::list_templates(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(found.into_iter().map(Into::into).collect()))
}

/// Create a template (`devices.write`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = TemplateInput,
    responses(
        (status = 201, description = "Created", body = TemplateDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields; a template that does not render (`body`, the message names the line)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/provisioning/templates")]
pub async fn create_template(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<TemplateInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let saved = service::save_template(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        None,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/domains/{domain_id}/provisioning/templates/{}",
                saved.id
            ),
        ))
        .json(TemplateDto::from(saved)))
}

/// Read a template (`devices.read`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Template id")),
    responses(
        (status = 200, description = "The template", body = TemplateDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such template in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/provisioning/templates/{id}")]
pub async fn get_template(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<TemplateDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        service::get_template(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change a template (`devices.write`); the phones rendered with it fetch again.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Template id")),
    request_body = TemplateInput,
    responses(
        (status = 200, description = "Changed", body = TemplateDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such template in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields; a template that does not render (`body`, naming the line); a vendor change (`vendor`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/provisioning/templates/{id}")]
pub async fn update_template(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<TemplateInput>,
) -> ApiResult<web::Json<TemplateDto>> {
    let (domain_id, id) = path.into_inner();
    let saved = service::save_template(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        Some(id),
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(saved.into()))
}

/// Delete a template (`devices.write`); its phones return to the built-in one.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Template id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such template in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/provisioning/templates/{id}")]
pub async fn delete_template(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    service::delete_template(&state.db, &state.events, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- layouts

/// One key of a layout; its place in the list is its slot (1 = the first key on the phone,
/// then the expansion modules' keys in order).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyDto {
    /// The phone's account line.
    Line {
        /// Label (default: "<number> <name>" of whoever the phone is).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Busy lamp (and pickup) of an Extension: it shows whoever that Extension is now,
    /// wherever they are logged in.
    Blf {
        /// An Extension of this Domain.
        extension_id: Uuid,
        /// Label (default: its number and name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Dials a number.
    SpeedDial {
        /// Digits, `*`, `#`, a leading `+` (1–32).
        number: String,
        /// Label (1–32 characters).
        label: String,
    },
    /// Dials the voicemail (`*97`).
    Voicemail {
        /// Label (default "Voicemail").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A call park slot of the Domain (`*71` … `*79`): during a call it parks the call
    /// there; when the slot holds a call, it picks it up (`*70` parks in the first free slot).
    Park {
        /// 1–9.
        slot: u8,
        /// Label (default "Park <slot>").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// The phone's own do-not-disturb key.
    Dnd {
        /// Label (default "DND").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// The login key (`*11`).
    Login {
        /// Label (default "Log in").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// The logout key (`*12`).
    Logout {
        /// Label (default "Log out").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Nothing on this slot.
    Empty,
}

impl From<KeyDto> for KeySpec {
    fn from(k: KeyDto) -> Self {
        match k {
            KeyDto::Line { label } => Self::Line { label },
            KeyDto::Blf {
                extension_id,
                label,
            } => Self::Blf {
                extension_id,
                label,
            },
            KeyDto::SpeedDial { number, label } => Self::SpeedDial { number, label },
            KeyDto::Voicemail { label } => Self::Voicemail { label },
            KeyDto::Park { slot, label } => Self::Park { slot, label },
            KeyDto::Dnd { label } => Self::Dnd { label },
            KeyDto::Login { label } => Self::Login { label },
            KeyDto::Logout { label } => Self::Logout { label },
            KeyDto::Empty => Self::Empty,
        }
    }
}

impl From<KeySpec> for KeyDto {
    fn from(k: KeySpec) -> Self {
        match k {
            KeySpec::Line { label } => Self::Line { label },
            KeySpec::Blf {
                extension_id,
                label,
            } => Self::Blf {
                extension_id,
                label,
            },
            KeySpec::SpeedDial { number, label } => Self::SpeedDial { number, label },
            KeySpec::Voicemail { label } => Self::Voicemail { label },
            KeySpec::Park { slot, label } => Self::Park { slot, label },
            KeySpec::Dnd { label } => Self::Dnd { label },
            KeySpec::Login { label } => Self::Login { label },
            KeySpec::Logout { label } => Self::Logout { label },
            KeySpec::Empty => Self::Empty,
        }
    }
}

/// A Model Layout.
#[derive(Debug, Serialize, ToSchema)]
pub struct LayoutDto {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the Domain.
    #[schema(example = "Sales T54W")]
    pub name: String,
    /// The model (catalogue id).
    #[schema(example = "yealink-t54w")]
    pub model: String,
    /// The keys, slot 1 first.
    pub keys: Vec<KeyDto>,
    /// The Domain's layout for logged-out phones of this model.
    pub logged_out: bool,
    /// Keys the model has (phone and expansion modules).
    pub max_keys: u32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
}

impl From<LayoutView> for LayoutDto {
    fn from(l: LayoutView) -> Self {
        Self {
            id: l.id,
            name: l.name,
            model: l.model,
            keys: l.keys.into_iter().map(Into::into).collect(),
            logged_out: l.logged_out,
            max_keys: l.max_keys,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// A new layout, or a change to one (omitted fields stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutInput {
    /// 1–100 characters, unique in the Domain; required to create.
    #[serde(default)]
    pub name: Option<String>,
    /// A model of the catalogue (`GET /api/v1/phone-models`); required to create.
    #[serde(default)]
    #[schema(example = "yealink-t54w")]
    pub model: Option<String>,
    /// The keys, slot 1 first: at most the model's `max_keys`.
    #[serde(default)]
    pub keys: Option<Vec<KeyDto>>,
    /// Make it the Domain's logged-out layout for its model (at most one per model: 409).
    #[serde(default)]
    pub logged_out: Option<bool>,
}

impl From<LayoutInput> for LayoutPatch {
    fn from(i: LayoutInput) -> Self {
        Self {
            name: i.name,
            model: i.model,
            keys: i.keys.map(|k| k.into_iter().map(Into::into).collect()),
            logged_out: i.logged_out,
        }
    }
}

/// Filters of the layout list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LayoutListQuery {
    /// Only layouts of this model.
    pub model: Option<String>,
}

/// List the Domain's layouts (`devices.read`), by name.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), LayoutListQuery),
    responses(
        (status = 200, description = "The layouts", body = Vec<LayoutDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/provisioning/layouts")]
pub async fn list_layouts(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: Query<LayoutListQuery>,
) -> ApiResult<web::Json<Vec<LayoutDto>>> {
    let found = service::list_layouts(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        query.0.model.as_deref(),
    )
    .await?;
    Ok(web::Json(found.into_iter().map(Into::into).collect()))
}

/// Create a layout (`devices.write`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = LayoutInput,
    responses(
        (status = 201, description = "Created", body = LayoutDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken (`name`), or the model already has a logged-out layout (`logged_out`)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields: an unknown model, more keys than the model has (`keys`, `too_many_keys`), a bad key (`keys[i]`), a BLF of an unknown Extension (`keys[i].extension_id`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/provisioning/layouts")]
pub async fn create_layout(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<LayoutInput>,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let saved = service::save_layout(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        None,
        body.into_inner().into(),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/domains/{domain_id}/provisioning/layouts/{}",
                saved.id
            ),
        ))
        .json(LayoutDto::from(saved)))
}

/// Read a layout (`devices.read`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Layout id")),
    responses(
        (status = 200, description = "The layout", body = LayoutDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such layout in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/provisioning/layouts/{id}")]
pub async fn get_layout(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<LayoutDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        service::get_layout(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Change a layout (`devices.write`); the phones that show it fetch again.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Layout id")),
    request_body = LayoutInput,
    responses(
        (status = 200, description = "Changed", body = LayoutDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such layout in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken, or the model already has a logged-out layout", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields or keys", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/provisioning/layouts/{id}")]
pub async fn update_layout(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<LayoutInput>,
) -> ApiResult<web::Json<LayoutDto>> {
    let (domain_id, id) = path.into_inner();
    let saved = service::save_layout(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        Some(id),
        body.into_inner().into(),
    )
    .await?;
    Ok(web::Json(saved.into()))
}

/// Delete a layout (`devices.write`); its phones fall back to the next layout they may use.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Layout id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such layout in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/provisioning/layouts/{id}")]
pub async fn delete_layout(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    service::delete_layout(&state.db, &state.events, caller.ctx(), domain_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Where to copy a layout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneInput {
    /// The target model (catalogue id).
    #[schema(example = "yealink-t46u")]
    pub model: String,
    /// Name of the copy (default: "<name> (<model>)").
    #[serde(default)]
    pub name: Option<String>,
    /// Drop the keys beyond what the target model has (default: such a layout is a 422).
    #[serde(default)]
    pub truncate: bool,
}

/// Copy a layout to another model in one call (`devices.write`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Layout id")),
    request_body = CloneInput,
    responses(
        (status = 201, description = "The copy", body = LayoutDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such layout in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM),
        (status = 422, description = "An unknown model, or more keys than it has without `truncate` (`keys`, `too_many_keys`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/provisioning/layouts/{id}/clone")]
pub async fn clone_layout(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<CloneInput>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    let body = body.into_inner();
    let saved = service::clone_layout(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        service::CloneTo {
            model: body.model,
            name: body.name,
            truncate: body.truncate,
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/v1/domains/{domain_id}/provisioning/layouts/{}",
                saved.id
            ),
        ))
        .json(LayoutDto::from(saved)))
}

// ---------------------------------------------------------------- group choices

/// The layouts and templates the members of a group may choose when logging in. An empty
/// list leaves that choice open: every person layout of the phone's model, and the phone's
/// own template.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupChoicesDto {
    /// Layouts of the Domain.
    #[serde(default)]
    pub layout_ids: Vec<Uuid>,
    /// Templates of the Domain.
    #[serde(default)]
    pub template_ids: Vec<Uuid>,
}

impl From<GroupChoices> for GroupChoicesDto {
    fn from(c: GroupChoices) -> Self {
        Self {
            layout_ids: c.layout_ids,
            template_ids: c.template_ids,
        }
    }
}

/// What a group's members may choose (`extensions.read`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Group id")),
    responses(
        (status = 200, description = "The choices", body = GroupChoicesDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such group in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extension-groups/{id}/provisioning-choices")]
pub async fn get_group_choices(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<GroupChoicesDto>> {
    let (domain_id, id) = path.into_inner();
    Ok(web::Json(
        service::get_group_choices(&state.db, caller.ctx(), domain_id, id)
            .await?
            .into(),
    ))
}

/// Replace what a group's members may choose (`extensions.write`); the members' phones whose
/// layout or template changes fetch again.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Group id")),
    request_body = GroupChoicesDto,
    responses(
        (status = 200, description = "The choices", body = GroupChoicesDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`extensions.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such group in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A layout or template that is not the Domain's (`layout_ids[i]`, `template_ids[i]`)", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/extension-groups/{id}/provisioning-choices")]
pub async fn put_group_choices(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<GroupChoicesDto>,
) -> ApiResult<web::Json<GroupChoicesDto>> {
    let (domain_id, id) = path.into_inner();
    let body = body.into_inner();
    let saved = service::set_group_choices(
        &state.db,
        &state.events,
        caller.ctx(),
        domain_id,
        id,
        GroupChoices {
            layout_ids: body.layout_ids,
            template_ids: body.template_ids,
        },
    )
    .await?;
    Ok(web::Json(saved.into()))
}

// ---------------------------------------------------------------- settings

/// A Domain's provisioning settings (the first-boot password is never shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisioningSettingsDto {
    /// First-boot user name.
    #[schema(example = "acme-provisioning")]
    pub username: Option<String>,
    /// Whether the first-boot password is set.
    pub password_set: bool,
    /// Source networks the first-boot credential is accepted from (empty: nowhere).
    #[schema(example = json!(["192.0.2.0/24"]))]
    pub allowed_networks: Vec<String>,
    /// Language of the phones' menus (ISO 639-1).
    #[schema(example = "de")]
    pub language: String,
    /// NTP server (null: the server's `provisioning.ntp_server`).
    pub ntp_server: Option<String>,
}

impl From<SettingsView> for ProvisioningSettingsDto {
    fn from(s: SettingsView) -> Self {
        Self {
            username: s.username,
            password_set: s.password_set,
            allowed_networks: s.allowed_networks,
            language: s.language,
            ntp_server: s.ntp_server,
        }
    }
}

/// A change to the settings: omitted fields stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSettingsInput {
    /// First-boot user name (letters, digits, `-_.@`; with `password`).
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub username: Option<Option<String>>,
    /// First-boot password (at least 12 characters), write-only, encrypted at rest.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<SecretString>>,
    /// CIDRs or addresses the first-boot credential is accepted from.
    #[serde(default)]
    pub allowed_networks: Option<Vec<String>>,
    /// ISO 639-1 code.
    #[serde(default)]
    pub language: Option<String>,
    /// NTP server host name or address.
    #[serde(default, with = "::serde_with::rust::double_option")]
    #[schema(value_type = Option<String>)]
    pub ntp_server: Option<Option<String>>,
}

/// The Domain's provisioning settings (`devices.read`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 200, description = "The settings", body = ProvisioningSettingsDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/provisioning/settings")]
pub async fn get_settings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<ProvisioningSettingsDto>> {
    Ok(web::Json(
        service::get_settings(&state.db, caller.ctx(), path.into_inner())
            .await?
            .into(),
    ))
}

/// Change the Domain's provisioning settings (`settings.write`); a new language or NTP server
/// makes every phone of the Domain fetch again.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    request_body = ProvisioningSettingsInput,
    responses(
        (status = 200, description = "The settings", body = ProvisioningSettingsDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`settings.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid fields; a user name without a password or the reverse (`password`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/provisioning/settings")]
pub async fn update_settings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<ProvisioningSettingsInput>,
) -> ApiResult<web::Json<ProvisioningSettingsDto>> {
    let b = body.into_inner();
    let saved = service::update_settings(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        path.into_inner(),
        SettingsPatch {
            username: b.username,
            password: b.password,
            allowed_networks: b.allowed_networks,
            language: b.language,
            ntp_server: b.ntp_server,
        },
    )
    .await?;
    Ok(web::Json(saved.into()))
}

// ---------------------------------------------------------------- one Device

/// A rendered key.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineKeyDto {
    /// Slot over the phone's keys then each module's.
    pub slot: u32,
    /// 0: the phone; 1..: an expansion module.
    pub module: u32,
    /// Index within the phone or the module.
    pub index: u32,
    /// `line`, `blf`, `speed_dial`, `voicemail`, `park`, `dnd`, `login` or `logout`.
    pub kind: String,
    /// What it dials or watches.
    pub value: String,
    /// Its label.
    pub label: String,
}

impl From<LineKey> for LineKeyDto {
    fn from(k: LineKey) -> Self {
        Self {
            slot: k.slot,
            module: k.module,
            index: k.index,
            kind: k.kind,
            value: k.value,
            label: k.label,
        }
    }
}

/// One file a phone fetches.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewFileDto {
    /// The name it asks for.
    #[schema(example = "805ec0123456.cfg")]
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// The content, with the SIP secret and the provisioning password left empty.
    pub content: String,
}

/// What a phone would get now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisioningPreviewDto {
    /// The model.
    pub model: String,
    /// The files it fetches.
    pub files: Vec<PreviewFileDto>,
    /// The Extension it is now (a person), if any.
    pub extension_id: Option<Uuid>,
    /// The layout used.
    pub layout_id: Option<Uuid>,
    /// Its name.
    pub layout_name: Option<String>,
    /// Where it came from: `chosen` (at login), `person` (the only or first one the person may
    /// use), `logged_out` (the Domain's for the model) or `default` (no layout: a line key, or
    /// a login key when logged out).
    #[schema(example = "person")]
    pub layout_source: String,
    /// The tenant template of the main file (null: the built-in one).
    pub template_id: Option<Uuid>,
    /// Its name.
    pub template_name: Option<String>,
    /// The keys.
    pub keys: Vec<LineKeyDto>,
    /// When it last fetched its files.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// From which address.
    pub last_fetch_from: Option<String>,
    /// With which user agent.
    pub last_fetch_agent: Option<String>,
}

fn source_name(s: LayoutSource) -> &'static str {
    match s {
        LayoutSource::Chosen => "chosen",
        LayoutSource::Person => "person",
        LayoutSource::LoggedOut => "logged_out",
        LayoutSource::Default => "default",
    }
}

impl From<Preview> for ProvisioningPreviewDto {
    fn from(p: Preview) -> Self {
        Self {
            model: p.model,
            files: p
                .files
                .into_iter()
                .map(|f| PreviewFileDto {
                    name: f.name,
                    content_type: f.content_type,
                    content: f.content,
                })
                .collect(),
            extension_id: p.extension_id,
            layout_id: p.layout_id,
            layout_name: p.layout_name,
            layout_source: source_name(p.layout_source).to_owned(),
            template_id: p.template_id,
            template_name: p.template_name,
            keys: p.keys.into_iter().map(Into::into).collect(),
            last_fetch_at: p.last_fetch_at,
            last_fetch_from: p.last_fetch_from,
            last_fetch_agent: p.last_fetch_agent,
        }
    }
}

/// What this phone would get if it fetched its files now, without its secrets
/// (`devices.read`).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The rendered files and the plan behind them", body = ProvisioningPreviewDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "The Device cannot be provisioned: no MAC, a model not in the catalogue, or disabled (`device`, `not_provisionable`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/provisioning")]
pub async fn preview(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<ProvisioningPreviewDto>> {
    let (domain_id, id) = path.into_inner();
    let p = service::preview(
        &state.db,
        caller.ctx(),
        state.provisioner.platform(),
        domain_id,
        id,
    )
    .await?;
    Ok(web::Json(p.into()))
}

/// A Device's provisioning credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisioningCredentialDto {
    /// User name (the Device's SIP user name).
    pub username: String,
    /// Password.
    pub password: String,
    /// The URL to set on the phone (or in DHCP option 66).
    #[schema(example = "https://pbx.example.net/provision/")]
    pub url: String,
}

/// The Device's provisioning credential in clear (`secrets.read`, audited).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 200, description = "The credential", body = ProvisioningCredentialDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`secrets.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/provisioning/credential")]
pub async fn get_credential(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<ProvisioningCredentialDto>> {
    let (domain_id, id) = path.into_inner();
    let c = service::read_credential(&state.db, &state.cipher, caller.ctx(), domain_id, id).await?;
    Ok(web::Json(ProvisioningCredentialDto {
        username: c.username,
        password: c.password.expose_secret().to_owned(),
        url: format!("{}/", state.provisioner.platform().base_url),
    }))
}

/// Give the Device a new provisioning password (`devices.write`); the phone must be given it
/// (by hand, or by its first boot again).
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id")),
    responses(
        (status = 204, description = "Rotated"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.write` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/devices/{id}/provisioning/credential/rotate")]
pub async fn rotate_credential(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, id) = path.into_inner();
    service::rotate_credential(
        &state.db,
        &state.events,
        &state.cipher,
        caller.ctx(),
        domain_id,
        id,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Which Extension asks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChoicesQuery {
    /// The Extension's number.
    pub extension: String,
}

/// A layout or template one may choose.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChoosableDto {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
}

/// What an Extension may choose when logging in to a phone.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneChoicesDto {
    /// Layouts of the phone's model, the default (used when none is chosen) first.
    pub layouts: Vec<ChoosableDto>,
    /// Templates of the phone's vendor (empty: the phone's own applies).
    pub templates: Vec<ChoosableDto>,
}

impl From<ChoicesForPhone> for PhoneChoicesDto {
    fn from(c: ChoicesForPhone) -> Self {
        let map = |v: Vec<service::Choosable>| {
            v.into_iter()
                .map(|c| ChoosableDto {
                    id: c.id,
                    name: c.name,
                })
                .collect()
        };
        Self {
            layouts: map(c.layouts),
            templates: map(c.templates),
        }
    }
}

/// The layouts and templates an Extension may choose on this phone when logging in
/// (`devices.read`); pass one as `layout_id` / `template_id` to the login.
#[utoipa::path(
    tag = "provisioning",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("id" = Uuid, Path, description = "Device id"), ChoicesQuery),
    responses(
        (status = 200, description = "The choices", body = PhoneChoicesDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`devices.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Device in a Domain of mine", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Unknown Extension, or a Device that cannot be provisioned", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/devices/{id}/provisioning/choices")]
pub async fn phone_choices(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: Query<ChoicesQuery>,
) -> ApiResult<web::Json<PhoneChoicesDto>> {
    let (domain_id, id) = path.into_inner();
    let c = service::choices_for_phone(&state.db, caller.ctx(), domain_id, id, &query.0.extension)
        .await?;
    Ok(web::Json(c.into()))
}
