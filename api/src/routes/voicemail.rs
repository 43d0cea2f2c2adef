//! Voicemail messages: an admin's view of any Extension's box (`voicemail.manage`) and the
//! person's own boxes (`/api/v1/me/voicemail`). The messages live in mod_voicemail's store on
//! the FreeSWITCH node ([`switchboard_esl_bridge::voicemail`]); switchboard decides who may
//! open which box, then asks the node. Every change goes through mod_voicemail, which updates
//! the phones' message lamps itself.

use std::path::PathBuf;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use switchboard_domain::services::voicemail::{self, Mailbox, MessageChange};
use switchboard_esl_bridge::link::ApiUnavailable;
use switchboard_esl_bridge::voicemail::{self as store, StoreError, StoredMessage};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Caller;
use crate::extract::{Json, Query};
use crate::pagination::{PageQuery, PageResponse};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::routes::history::wav_download;
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// One voicemail message.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailMessageDto {
    /// The message's id (mod_voicemail's).
    pub id: Uuid,
    /// The Extension whose box holds it.
    pub extension_id: Uuid,
    /// The box (the Extension's number).
    #[schema(example = "204")]
    pub mailbox: String,
    /// The caller's name as it reached the box.
    #[schema(example = "Alice")]
    pub caller_name: String,
    /// The caller's number.
    #[schema(example = "200")]
    pub caller_number: String,
    /// When it was left.
    pub created_at: DateTime<Utc>,
    /// Heard (or marked read).
    pub read: bool,
    /// When it was first heard or marked read.
    pub read_at: Option<DateTime<Utc>>,
    /// Length in seconds.
    pub duration_secs: u32,
}

impl VoicemailMessageDto {
    fn of(m: StoredMessage, mailbox: &Mailbox) -> Self {
        Self {
            id: m.id,
            extension_id: mailbox.extension_id,
            mailbox: mailbox.number.clone(),
            caller_name: m.caller_name,
            caller_number: m.caller_number,
            created_at: m.created_at,
            read: m.read_at.is_some(),
            read_at: m.read_at,
            duration_secs: m.duration_secs,
        }
    }
}

/// The messages of one or more boxes, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailMessagesDto {
    /// The messages.
    pub items: Vec<VoicemailMessageDto>,
    /// How many are unread (what the message lamp shows).
    pub unread: usize,
}

impl VoicemailMessagesDto {
    fn of(items: Vec<VoicemailMessageDto>) -> Self {
        let unread = items.iter().filter(|m| !m.read).count();
        Self { items, unread }
    }
}

/// A change to a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailMessageUpdate {
    /// `true` marks it read (the lamp goes out when nothing else is unread), `false` unread.
    pub read: bool,
}

/// Where to move a message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailMove {
    /// An Extension of the same Domain with voicemail on.
    pub extension_id: Uuid,
}

/// Filters of my messages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MyMessagesQuery {
    /// Only this one of my Extensions' boxes.
    pub extension_id: Option<Uuid>,
}

/// The store's failures as problems: no node is a 503 to retry, a node that answers oddly a
/// 502; never a 500.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(ApiUnavailable::NoNode | ApiUnavailable::Lost(_)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "voicemail_unavailable",
            "no FreeSWITCH node is connected to reach the voicemail store; try again shortly",
        )
        .with_header(header::RETRY_AFTER, "5"),
        StoreError::Unavailable(ApiUnavailable::Refused(why)) | StoreError::Unexpected(why) => {
            tracing::warn!(error = %why, "mod_voicemail refused a request");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "voicemail_failed",
                "FreeSWITCH's voicemail store refused the request",
            )
        }
        // A box or domain switchboard itself refuses to name: nothing there.
        StoreError::Unsafe(_) => ApiError::not_found("voicemail message"),
    }
}

async fn messages_of(state: &AppState, mailbox: &Mailbox) -> ApiResult<Vec<VoicemailMessageDto>> {
    Ok(
        store::list(&state.bridge, &mailbox.number, &mailbox.sip_domain)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|m| VoicemailMessageDto::of(m, mailbox))
            .collect(),
    )
}

async fn message_in(state: &AppState, mailbox: &Mailbox, id: Uuid) -> ApiResult<StoredMessage> {
    store::get(&state.bridge, &mailbox.number, &mailbox.sip_domain, id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("voicemail message"))
}

/// The box among `boxes` holding message `id`.
async fn find_in(
    state: &AppState,
    boxes: Vec<Mailbox>,
    id: Uuid,
) -> ApiResult<(Mailbox, StoredMessage)> {
    for mailbox in boxes {
        if let Some(m) = store::get(&state.bridge, &mailbox.number, &mailbox.sip_domain, id)
            .await
            .map_err(store_error)?
        {
            return Ok((mailbox, m));
        }
    }
    Err(ApiError::not_found("voicemail message"))
}

async fn set_read(
    state: &AppState,
    mailbox: &Mailbox,
    id: Uuid,
    update: &VoicemailMessageUpdate,
) -> ApiResult<VoicemailMessageDto> {
    store::mark(
        &state.bridge,
        &mailbox.number,
        &mailbox.sip_domain,
        id,
        update.read,
    )
    .await
    .map_err(store_error)?;
    Ok(VoicemailMessageDto::of(
        message_in(state, mailbox, id).await?,
        mailbox,
    ))
}

/// Deletes, audited: the audit entry commits only once mod_voicemail deleted it.
async fn remove(state: &AppState, caller: &Caller, mailbox: &Mailbox, id: Uuid) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    voicemail::audit_change(
        &txn,
        caller.ctx(),
        mailbox,
        &id.to_string(),
        MessageChange::Deleted,
    )
    .await?;
    store::delete(&state.bridge, &mailbox.number, &mailbox.sip_domain, id)
        .await
        .map_err(store_error)?;
    txn.commit().await?;
    Ok(())
}

/// Moves: copies into the other box (a new message there, the caller kept, that box's lamp
/// lit), then deletes the original; audited like a deletion.
async fn relocate(
    state: &AppState,
    caller: &Caller,
    mailbox: &Mailbox,
    id: Uuid,
    to: Uuid,
) -> ApiResult<()> {
    let target = voicemail::move_target(&state.db, mailbox, to).await?;
    let txn = state.db.begin().await?;
    voicemail::audit_change(
        &txn,
        caller.ctx(),
        mailbox,
        &id.to_string(),
        MessageChange::Moved(&target),
    )
    .await?;
    store::copy_to(
        &state.bridge,
        &mailbox.number,
        &mailbox.sip_domain,
        id,
        &target.number,
    )
    .await
    .map_err(store_error)?;
    store::delete(&state.bridge, &mailbox.number, &mailbox.sip_domain, id)
        .await
        .map_err(store_error)?;
    txn.commit().await?;
    Ok(())
}

fn local_audio(state: &AppState, mailbox: &Mailbox, path: &str) -> Option<PathBuf> {
    let storage = state.config.voicemail.storage_dir.as_deref()?;
    store::local_file(storage, &mailbox.sip_domain, &mailbox.number, path)
}

async fn serve_audio(
    state: &AppState,
    req: &HttpRequest,
    mailbox: &Mailbox,
    message: &StoredMessage,
) -> ApiResult<HttpResponse> {
    let missing = || ApiError::not_found("voicemail audio");
    let file = local_audio(state, mailbox, &message.path).ok_or_else(|| {
        tracing::warn!(
            message = %message.id,
            "a voicemail message's audio was asked for but voicemail.storage_dir does not reach it"
        );
        missing()
    })?;
    wav_download(req, &file, format!("{}.wav", message.id))
        .await
        .ok_or_else(missing)
}

// ---- an admin's view: any Extension's box (voicemail.manage) ----

/// List the messages in an Extension's box (`voicemail.manage`), newest first.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "The messages", body = VoicemailMessagesDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension", body = Problem, content_type = PROBLEM),
        (status = 502, description = "FreeSWITCH's voicemail store refused the request", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<VoicemailMessagesDto>> {
    let (domain_id, extension_id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    Ok(web::Json(VoicemailMessagesDto::of(
        messages_of(&state, &mailbox).await?,
    )))
}

/// Read one message of an Extension's box (`voicemail.manage`).
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = VoicemailMessageDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension, or no such message in its box", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages/{id}")]
pub async fn get_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<web::Json<VoicemailMessageDto>> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let message = message_in(&state, &mailbox, id).await?;
    Ok(web::Json(VoicemailMessageDto::of(message, &mailbox)))
}

/// Download a message's audio (`voicemail.manage`): `audio/wav`, with range requests.
/// Listening this way does not mark it read (`PATCH` does).
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The audio", content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "Part of it (`Range`)", content_type = "audio/wav", body = Vec<u8>),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such message, or its file is not reachable from this node (`voicemail.storage_dir`)", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages/{id}/audio")]
pub async fn get_audio(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let message = message_in(&state, &mailbox, id).await?;
    serve_audio(&state, &req, &mailbox, &message).await
}

/// Mark a message read or unread (`voicemail.manage`); the phones' lamp follows at once.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "Message id")),
    request_body = VoicemailMessageUpdate,
    responses(
        (status = 200, description = "The message as it is now", body = VoicemailMessageDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such message in the box", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid body", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages/{id}")]
pub async fn update_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
    body: Json<VoicemailMessageUpdate>,
) -> ApiResult<web::Json<VoicemailMessageDto>> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    message_in(&state, &mailbox, id).await?;
    Ok(web::Json(set_read(&state, &mailbox, id, &body.0).await?))
}

/// Delete a message and its audio (`voicemail.manage`, audited); the lamp follows at once.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such message in the box", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages/{id}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    message_in(&state, &mailbox, id).await?;
    remove(&state, &caller, &mailbox, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move a message to another Extension's box of the Domain (`voicemail.manage`, audited): it
/// arrives there as a new message with its caller; both lamps follow.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "Message id")),
    request_body = VoicemailMove,
    responses(
        (status = 204, description = "Moved"),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such message in the box, or no such Extension in the Domain", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The target is the same box or has voicemail off", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/messages/{id}/move")]
pub async fn move_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
    body: Json<VoicemailMove>,
) -> ApiResult<HttpResponse> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    message_in(&state, &mailbox, id).await?;
    relocate(&state, &caller, &mailbox, id, body.0.extension_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- the person's own boxes ----

/// List the messages in my own Extensions' boxes, newest first.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(MyMessagesQuery),
    responses(
        (status = 200, description = "My messages", body = VoicemailMessagesDto),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
        (status = 404, description = "`extension_id` is not one of mine", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/voicemail/messages")]
pub async fn list_my_messages(
    state: web::Data<AppState>,
    caller: Caller,
    filter: Query<MyMessagesQuery>,
) -> ApiResult<web::Json<VoicemailMessagesDto>> {
    let boxes = match filter.0.extension_id {
        Some(id) => vec![voicemail::my_mailbox(&state.db, caller.ctx(), id).await?],
        None => voicemail::my_mailboxes(&state.db, caller.ctx()).await?,
    };
    let mut items = Vec::new();
    for mailbox in &boxes {
        items.extend(messages_of(&state, mailbox).await?);
    }
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(web::Json(VoicemailMessagesDto::of(items)))
}

/// Read one of my messages.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = VoicemailMessageDto),
        (status = 404, description = "Not in one of my boxes", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/voicemail/messages/{id}")]
pub async fn get_my_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<VoicemailMessageDto>> {
    let boxes = voicemail::my_mailboxes(&state.db, caller.ctx()).await?;
    let (mailbox, message) = find_in(&state, boxes, path.into_inner()).await?;
    Ok(web::Json(VoicemailMessageDto::of(message, &mailbox)))
}

/// Download one of my messages: `audio/wav`, with range requests.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The audio", content_type = "audio/wav", body = Vec<u8>),
        (status = 206, description = "Part of it (`Range`)", content_type = "audio/wav", body = Vec<u8>),
        (status = 404, description = "Not in one of my boxes, or not reachable from this node", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/voicemail/messages/{id}/audio")]
pub async fn get_my_audio(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let boxes = voicemail::my_mailboxes(&state.db, caller.ctx()).await?;
    let (mailbox, message) = find_in(&state, boxes, path.into_inner()).await?;
    serve_audio(&state, &req, &mailbox, &message).await
}

/// Mark one of my messages read or unread; my phones' lamp follows at once.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = VoicemailMessageUpdate,
    responses(
        (status = 200, description = "The message as it is now", body = VoicemailMessageDto),
        (status = 404, description = "Not in one of my boxes", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid body", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/api/v1/me/voicemail/messages/{id}")]
pub async fn update_my_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<VoicemailMessageUpdate>,
) -> ApiResult<web::Json<VoicemailMessageDto>> {
    let id = path.into_inner();
    let boxes = voicemail::my_mailboxes(&state.db, caller.ctx()).await?;
    let (mailbox, _) = find_in(&state, boxes, id).await?;
    Ok(web::Json(set_read(&state, &mailbox, id, &body.0).await?))
}

/// Delete one of my messages (audited); my phones' lamp follows at once.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Not in one of my boxes", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/me/voicemail/messages/{id}")]
pub async fn delete_my_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let boxes = voicemail::my_mailboxes(&state.db, caller.ctx()).await?;
    let (mailbox, _) = find_in(&state, boxes, id).await?;
    remove(&state, &caller, &mailbox, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move one of my messages to another Extension's box of the same Domain (a colleague's, or
/// another of mine; audited).
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = VoicemailMove,
    responses(
        (status = 204, description = "Moved"),
        (status = 404, description = "Not in one of my boxes, or no such Extension in its Domain", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The target is the same box or has voicemail off", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/me/voicemail/messages/{id}/move")]
pub async fn move_my_message(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<VoicemailMove>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let boxes = voicemail::my_mailboxes(&state.db, caller.ctx()).await?;
    let (mailbox, _) = find_in(&state, boxes, id).await?;
    relocate(&state, &caller, &mailbox, id, body.0.extension_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- a box's settings and its e-mails ----

/// A voicemail box's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailBoxDto {
    /// The Extension whose box it is.
    pub extension_id: Uuid,
    /// The box (the Extension's number).
    #[schema(example = "204")]
    pub mailbox: String,
    /// Voicemail is on (set on the Extension, with its PIN).
    pub enabled: bool,
    /// Where each new message is e-mailed; null: not e-mailed.
    #[schema(example = "dana@example.com")]
    pub email: Option<String>,
    /// The e-mail carries the audio (`audio/wav`).
    pub attach_audio: bool,
    /// The message is deleted from the box once e-mailed.
    pub delete_after_email: bool,
    /// The most messages the box keeps; when a new one arrives past it, the oldest go (read
    /// ones first). Null: no limit.
    #[schema(example = 50)]
    pub max_messages: Option<i32>,
}

impl VoicemailBoxDto {
    fn of(mailbox: &Mailbox, s: voicemail::BoxSettings) -> Self {
        Self {
            extension_id: mailbox.extension_id,
            mailbox: mailbox.number.clone(),
            enabled: s.enabled,
            email: s.email,
            attach_audio: s.attach_audio,
            delete_after_email: s.delete_after_email,
            max_messages: s.max_messages,
        }
    }
}

fn default_true() -> bool {
    true
}

/// A box's settings to save (the whole set).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoicemailBoxInput {
    /// Where each new message is e-mailed; null or absent: not e-mailed.
    #[schema(example = "dana@example.com")]
    pub email: Option<String>,
    /// The e-mail carries the audio (default true).
    #[serde(default = "default_true")]
    pub attach_audio: bool,
    /// Delete the message from the box once e-mailed (default false; needs `email`).
    #[serde(default)]
    pub delete_after_email: bool,
    /// The most messages the box keeps, 1–1000; when a new one arrives past it, the oldest go
    /// (read ones first, audited as `voicemail.message.expire`). Null or absent: no limit.
    #[schema(example = 50, minimum = 1, maximum = 1000)]
    pub max_messages: Option<i32>,
}

impl From<VoicemailBoxInput> for voicemail::BoxSettingsInput {
    fn from(i: VoicemailBoxInput) -> Self {
        Self {
            email: i.email,
            attach_audio: i.attach_audio,
            delete_after_email: i.delete_after_email,
            max_messages: i.max_messages,
        }
    }
}

/// One e-mail of a new message: its delivery, as it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailEmailDto {
    /// The e-mail's id.
    pub id: Uuid,
    /// The message it tells of (mod_voicemail's id).
    pub message_id: String,
    /// The recipient.
    pub to: String,
    /// The caller's name.
    pub caller_name: String,
    /// The caller's number.
    pub caller_number: String,
    /// The message's length in seconds.
    pub duration_secs: i32,
    /// When the message was left.
    pub left_at: DateTime<Utc>,
    /// The audio is attached.
    pub attach_audio: bool,
    /// The message is deleted once sent.
    pub delete_after: bool,
    /// `pending` (being tried), `sent`, or `failed` (given up; `POST …/retry` tries again).
    #[schema(example = "sent")]
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, or what failed after sending.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

impl From<switchboard_domain::store::voicemail_emails::Model> for VoicemailEmailDto {
    fn from(e: switchboard_domain::store::voicemail_emails::Model) -> Self {
        let pending = e.status == voicemail::EMAIL_PENDING;
        Self {
            id: e.id,
            message_id: e.message_id,
            to: e.to_address,
            caller_name: e.caller_name,
            caller_number: e.caller_number,
            duration_secs: e.duration_secs,
            left_at: e.left_at,
            attach_audio: e.attach_audio,
            delete_after: e.delete_after,
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: pending.then_some(e.next_attempt_at),
            last_error: e.last_error,
            sent_at: e.sent_at,
            created_at: e.created_at,
        }
    }
}

/// Read an Extension's voicemail box settings (`voicemail.manage`).
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "The box's settings", body = VoicemailBoxDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail")]
pub async fn get_box(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<VoicemailBoxDto>> {
    let (domain_id, extension_id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let settings = voicemail::settings(&state.db, &mailbox).await?;
    Ok(web::Json(VoicemailBoxDto::of(&mailbox, settings)))
}

/// Save an Extension's voicemail box settings (`voicemail.manage`, audited): where new
/// messages are e-mailed, with or without the audio, and whether they are deleted once sent.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id")),
    request_body = VoicemailBoxInput,
    responses(
        (status = 200, description = "The box's settings", body = VoicemailBoxDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid address, or deleting after e-mail without an address", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail")]
pub async fn put_box(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: Json<VoicemailBoxInput>,
) -> ApiResult<web::Json<VoicemailBoxDto>> {
    let (domain_id, extension_id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let saved = voicemail::save_settings(&state.db, caller.ctx(), &mailbox, body.0.into()).await?;
    Ok(web::Json(VoicemailBoxDto::of(&mailbox, saved)))
}

/// The e-mails of an Extension's box, newest first (`voicemail.manage`): what was sent, what
/// is being retried and why, what was given up.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), PageQuery),
    responses(
        (status = 200, description = "One page, newest first", body = PageResponse<VoicemailEmailDto>),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid page", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/emails")]
pub async fn list_emails(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    page: Query<PageQuery>,
) -> ApiResult<web::Json<PageResponse<VoicemailEmailDto>>> {
    let (domain_id, extension_id) = path.into_inner();
    let page = page.0.to_request()?;
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let found = voicemail::list_emails(&state.db, &mailbox, &page).await?;
    Ok(web::Json(PageResponse::from_page(
        found,
        VoicemailEmailDto::from,
    )))
}

/// Try a given-up e-mail again (`voicemail.manage`, audited): its attempts start over.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("id" = Uuid, Path, description = "E-mail id")),
    responses(
        (status = 200, description = "Queued again", body = VoicemailEmailDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such e-mail of the box", body = Problem, content_type = PROBLEM),
        (status = 409, description = "It is not `failed`", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/emails/{id}/retry")]
pub async fn retry_email(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<web::Json<VoicemailEmailDto>> {
    let (domain_id, extension_id, id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    let email = voicemail::retry_email(&state.db, caller.ctx(), &mailbox, id).await?;
    Ok(web::Json(email.into()))
}

/// My voicemail boxes (one per Extension of mine) with their settings.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "My boxes", body = Vec<VoicemailBoxDto>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/voicemail/boxes")]
pub async fn list_my_boxes(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<VoicemailBoxDto>>> {
    let mut out = Vec::new();
    for mailbox in voicemail::my_mailboxes(&state.db, caller.ctx()).await? {
        let settings = voicemail::settings(&state.db, &mailbox).await?;
        out.push(VoicemailBoxDto::of(&mailbox, settings));
    }
    Ok(web::Json(out))
}

/// Save the settings of one of my boxes (audited): where my new messages are e-mailed.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("extension_id" = Uuid, Path, description = "One of my Extensions")),
    request_body = VoicemailBoxInput,
    responses(
        (status = 200, description = "The box's settings", body = VoicemailBoxDto),
        (status = 404, description = "Not one of my Extensions", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Invalid address, or deleting after e-mail without an address", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/me/voicemail/boxes/{extension_id}")]
pub async fn put_my_box(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: Json<VoicemailBoxInput>,
) -> ApiResult<web::Json<VoicemailBoxDto>> {
    let mailbox = voicemail::my_mailbox(&state.db, caller.ctx(), path.into_inner()).await?;
    let saved = voicemail::save_settings(&state.db, caller.ctx(), &mailbox, body.0.into()).await?;
    Ok(web::Json(VoicemailBoxDto::of(&mailbox, saved)))
}

// ---- greetings ----

/// The largest greeting accepted (five minutes of 16 kHz 16-bit mono is 9.6 MB).
const MAX_GREETING_BYTES: usize = 10 * 1024 * 1024;

/// One greeting of a box.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoicemailGreetingDto {
    /// `standard` (greeting 1, the box's own), `unavailable` (2, after no answer), `busy` (3)
    /// or `name` (the recorded name).
    #[schema(example = "standard")]
    pub kind: String,
    /// The box has it (uploaded here, or recorded from a phone through mod_voicemail's menu).
    pub present: bool,
    /// Its size in bytes.
    pub size_bytes: Option<u64>,
}

fn kind_of(kind: &str) -> ApiResult<store::GreetingKind> {
    store::GreetingKind::parse(kind).ok_or_else(|| ApiError::not_found("greeting"))
}

fn storage_of(state: &AppState) -> ApiResult<&std::path::Path> {
    state
        .config
        .voicemail
        .storage_dir
        .as_deref()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_configured",
                "greetings are kept in FreeSWITCH's storage folder: set voicemail.storage_dir",
            )
        })
}

fn greeting_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("a greeting may have at most {limit} bytes"),
    )
}

async fn greetings_of(state: &AppState, mailbox: &Mailbox) -> ApiResult<Vec<VoicemailGreetingDto>> {
    let folder = store::box_folder(storage_of(state)?, &mailbox.sip_domain, &mailbox.number)
        .map_err(store_error)?;
    let mut out = Vec::new();
    for kind in store::GreetingKind::ALL {
        let size = tokio::fs::metadata(folder.join(kind.file_name()))
            .await
            .ok()
            .map(|m| m.len());
        out.push(VoicemailGreetingDto {
            kind: kind.as_str().to_owned(),
            present: size.is_some(),
            size_bytes: size,
        });
    }
    Ok(out)
}

async fn serve_greeting(
    state: &AppState,
    req: &HttpRequest,
    mailbox: &Mailbox,
    kind: &str,
) -> ApiResult<HttpResponse> {
    let kind = kind_of(kind)?;
    let folder = store::box_folder(storage_of(state)?, &mailbox.sip_domain, &mailbox.number)
        .map_err(store_error)?;
    wav_download(
        req,
        &folder.join(kind.file_name()),
        format!("{}-{}.wav", mailbox.number, kind.as_str()),
    )
    .await
    .ok_or_else(|| ApiError::not_found("greeting"))
}

/// Writes an uploaded greeting into the box's folder (whole, or not at all) and tells
/// mod_voicemail; when mod_voicemail cannot be told, the file is taken back.
async fn store_greeting(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    payload: web::Payload,
    mailbox: &Mailbox,
    kind: &str,
) -> ApiResult<VoicemailGreetingDto> {
    let kind = kind_of(kind)?;
    let storage = storage_of(state)?;
    if !req.mime_type().ok().flatten().is_some_and(|m| {
        (m.type_() == "audio"
            && matches!(m.subtype().as_str(), "wav" | "x-wav" | "wave" | "vnd.wave"))
            || (m.type_() == "application" && m.subtype() == "octet-stream")
    }) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the greeting as audio/wav (or application/octet-stream)",
        ));
    }
    let body = crate::extract::within_body_timeout(
        req,
        crate::routes::import::read_body_or(req, payload, MAX_GREETING_BYTES, greeting_too_large),
    )
    .await?;
    let info = store::check_wav(&body).map_err(|why| {
        ApiError::validation(vec![crate::problem::ProblemField {
            field: "body".to_owned(),
            code: "invalid_audio".to_owned(),
            message: why,
        }])
    })?;
    let folder =
        store::box_folder(storage, &mailbox.sip_domain, &mailbox.number).map_err(store_error)?;
    let file = folder.join(kind.file_name());
    let previous = tokio::fs::read(&file).await.ok();
    let temp = folder.join(format!(".upload-{}.tmp", Uuid::new_v4().simple()));
    let written = async {
        tokio::fs::create_dir_all(&folder).await?;
        tokio::fs::write(&temp, &body).await?;
        tokio::fs::rename(&temp, &file).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&temp).await;
        tracing::error!(error = %e, folder = %folder.display(), "writing a greeting failed");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the voicemail storage folder cannot be written; try again shortly",
        )
        .with_header(header::RETRY_AFTER, "5"));
    }
    if let Err(e) =
        store::greeting_written(&state.bridge, &mailbox.number, &mailbox.sip_domain, kind).await
    {
        // Not half-applied: the box keeps what it had.
        let _ = match previous {
            Some(bytes) => tokio::fs::write(&file, bytes).await,
            None => tokio::fs::remove_file(&file).await,
        };
        return Err(store_error(e));
    }
    let txn = state.db.begin().await?;
    switchboard_domain::services::audit::record(
        &txn,
        caller.ctx(),
        switchboard_domain::services::audit::Entry {
            domain_id: Some(mailbox.domain_id),
            action: "voicemail.greeting.upload",
            target_kind: "extension",
            target_id: Some(mailbox.extension_id.to_string()),
            before: None,
            after: Some(serde_json::json!({"kind": kind.as_str(), "bytes": body.len(), "duration_ms": info.duration_ms})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(VoicemailGreetingDto {
        kind: kind.as_str().to_owned(),
        present: true,
        size_bytes: Some(body.len() as u64),
    })
}

async fn remove_greeting(
    state: &AppState,
    caller: &Caller,
    mailbox: &Mailbox,
    kind: &str,
) -> ApiResult<()> {
    let kind = kind_of(kind)?;
    let folder = store::box_folder(storage_of(state)?, &mailbox.sip_domain, &mailbox.number)
        .map_err(store_error)?;
    match tokio::fs::remove_file(folder.join(kind.file_name())).await {
        Ok(()) => {
            let txn = state.db.begin().await?;
            switchboard_domain::services::audit::record(
                &txn,
                caller.ctx(),
                switchboard_domain::services::audit::Entry {
                    domain_id: Some(mailbox.domain_id),
                    action: "voicemail.greeting.delete",
                    target_kind: "extension",
                    target_id: Some(mailbox.extension_id.to_string()),
                    before: Some(serde_json::json!({"kind": kind.as_str()})),
                    after: None,
                },
            )
            .await?;
            txn.commit().await?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found("greeting")),
        Err(e) => {
            tracing::error!(error = %e, "deleting a greeting failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the voicemail storage folder cannot be written; try again shortly",
            )
            .with_header(header::RETRY_AFTER, "5"))
        }
    }
}

/// List an Extension's greetings (`voicemail.manage`).
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id")),
    responses(
        (status = 200, description = "Each kind, present or not", body = Vec<VoicemailGreetingDto>),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/greetings")]
pub async fn list_greetings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Vec<VoicemailGreetingDto>>> {
    let (domain_id, extension_id) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    Ok(web::Json(greetings_of(&state, &mailbox).await?))
}

/// Download a greeting (`voicemail.manage`): `audio/wav`, with range requests.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("kind" = String, Path, description = "`standard`, `unavailable`, `busy` or `name`")),
    responses(
        (status = 200, description = "The greeting", content_type = "audio/wav", body = Vec<u8>),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension, kind or greeting", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/greetings/{kind}")]
pub async fn get_greeting(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, extension_id, kind) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    serve_greeting(&state, &req, &mailbox, &kind).await
}

/// Upload a greeting (`voicemail.manage`, audited): the body is a WAV file (`audio/wav`; PCM,
/// A-law or µ-law, 8–48 kHz, up to 5 minutes and 10 MiB). `standard` becomes the box's
/// greeting, `unavailable` and `busy` are played when the call reaches the box for that reason,
/// `name` is the recorded name.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("kind" = String, Path, description = "`standard`, `unavailable`, `busy` or `name`")),
    request_body(
        description = "The greeting: a WAV file, sent as `audio/wav` (or as `application/octet-stream`)",
        content((Vec<u8> = "audio/wav"), (Vec<u8> = "application/octet-stream"))
    ),
    responses(
        (status = 200, description = "Stored", body = VoicemailGreetingDto),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension or kind", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Larger than 10 MiB", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not sent as `audio/wav`", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not a WAV file FreeSWITCH plays", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected, or the storage folder not writable (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/greetings/{kind}")]
pub async fn put_greeting(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid, String)>,
    payload: web::Payload,
) -> ApiResult<web::Json<VoicemailGreetingDto>> {
    let (domain_id, extension_id, kind) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    Ok(web::Json(
        store_greeting(&state, &caller, &req, payload, &mailbox, &kind).await?,
    ))
}

/// Delete a greeting (`voicemail.manage`): the box falls back to its standard greeting, then
/// its recorded name, then mod_voicemail's phrase.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id"), ("extension_id" = Uuid, Path, description = "Extension id"), ("kind" = String, Path, description = "`standard`, `unavailable`, `busy` or `name`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`voicemail.manage` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Extension, kind or greeting", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/domains/{domain_id}/extensions/{extension_id}/voicemail/greetings/{kind}")]
pub async fn delete_greeting(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, extension_id, kind) = path.into_inner();
    let mailbox = voicemail::mailbox(&state.db, caller.ctx(), domain_id, extension_id).await?;
    remove_greeting(&state, &caller, &mailbox, &kind).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Upload a greeting of one of my boxes (audited); as the admin's `PUT …/greetings/{kind}`.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("extension_id" = Uuid, Path, description = "One of my Extensions"), ("kind" = String, Path, description = "`standard`, `unavailable`, `busy` or `name`")),
    request_body(
        description = "The greeting: a WAV file, sent as `audio/wav` (or as `application/octet-stream`)",
        content((Vec<u8> = "audio/wav"), (Vec<u8> = "application/octet-stream"))
    ),
    responses(
        (status = 200, description = "Stored", body = VoicemailGreetingDto),
        (status = 404, description = "Not one of my Extensions, or no such kind", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Larger than 10 MiB", body = Problem, content_type = PROBLEM),
        (status = 415, description = "Not sent as `audio/wav`", body = Problem, content_type = PROBLEM),
        (status = 422, description = "Not a WAV file FreeSWITCH plays", body = Problem, content_type = PROBLEM),
        (status = 503, description = "No FreeSWITCH node connected, or the storage folder not writable (`Retry-After`)", body = Problem, content_type = PROBLEM),
    )
)]
#[put("/api/v1/me/voicemail/boxes/{extension_id}/greetings/{kind}")]
pub async fn put_my_greeting(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, String)>,
    payload: web::Payload,
) -> ApiResult<web::Json<VoicemailGreetingDto>> {
    let (extension_id, kind) = path.into_inner();
    let mailbox = voicemail::my_mailbox(&state.db, caller.ctx(), extension_id).await?;
    Ok(web::Json(
        store_greeting(&state, &caller, &req, payload, &mailbox, &kind).await?,
    ))
}

/// List the greetings of one of my boxes.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("extension_id" = Uuid, Path, description = "One of my Extensions")),
    responses(
        (status = 200, description = "Each kind, present or not", body = Vec<VoicemailGreetingDto>),
        (status = 404, description = "Not one of my Extensions", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/me/voicemail/boxes/{extension_id}/greetings")]
pub async fn list_my_greetings(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Vec<VoicemailGreetingDto>>> {
    let mailbox = voicemail::my_mailbox(&state.db, caller.ctx(), path.into_inner()).await?;
    Ok(web::Json(greetings_of(&state, &mailbox).await?))
}

/// Delete a greeting of one of my boxes.
#[utoipa::path(
    tag = "voicemail",
    security(("bearer" = [])),
    params(("extension_id" = Uuid, Path, description = "One of my Extensions"), ("kind" = String, Path, description = "`standard`, `unavailable`, `busy` or `name`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Not one of my Extensions, no such kind or greeting", body = Problem, content_type = PROBLEM),
        (status = 409, description = "`voicemail.storage_dir` is not set", body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/api/v1/me/voicemail/boxes/{extension_id}/greetings/{kind}")]
pub async fn delete_my_greeting(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (extension_id, kind) = path.into_inner();
    let mailbox = voicemail::my_mailbox(&state.db, caller.ctx(), extension_id).await?;
    remove_greeting(&state, &caller, &mailbox, &kind).await?;
    Ok(HttpResponse::NoContent().finish())
}
