//! Who may reach which voicemail box.
//!
//! The messages themselves live in FreeSWITCH's voicemail store (mod_voicemail, on the node);
//! the HTTP edge reaches them over the Event Socket. This module decides, from switchboard's
//! own data, which box a request names and whether the caller may open it: an admin with
//! `voicemail.manage` opens any box of the Domain, a person the boxes of their own Extensions.
//! A box of another Domain, or someone else's, is a 404.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use uuid::Uuid;

use super::Context;
use super::audit::{self, Entry};
use super::scope;
use crate::db::begin_write;
use crate::error::{DomainError, DomainResult, FieldErrors};
use crate::identity::authz::visible_domains;
use crate::identity::email::Email;
use crate::identity::permissions::Permission;
use crate::pagination::{Page, PageRequest, fetch_page_desc};
use crate::store::{domains, extensions, voicemail_boxes, voicemail_emails};

/// One Extension's voicemail box, as mod_voicemail names it (`<number>@<SIP domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The Extension.
    pub extension_id: Uuid,
    /// Its Domain.
    pub domain_id: Uuid,
    /// The box: the Extension's number.
    pub number: String,
    /// The Domain's SIP domain (mod_voicemail's domain).
    pub sip_domain: String,
    /// Voicemail is on: calls reach the box and messages can be moved into it.
    pub enabled: bool,
}

impl Mailbox {
    fn of(ext: &extensions::Model, domain: &domains::Model) -> Self {
        Self {
            extension_id: ext.id,
            domain_id: domain.id,
            number: ext.number.clone(),
            sip_domain: domain.sip_domain.clone(),
            enabled: ext.voicemail_enabled,
        }
    }
}

async fn extension_in<C: ConnectionTrait>(
    db: &C,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<extensions::Model> {
    extensions::Entity::find_by_id(extension_id)
        .filter(extensions::Column::DomainId.eq(domain_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("extension"))
}

/// The box of Extension `extension_id` of Domain `domain_id`, for an admin
/// (`voicemail.manage`).
pub async fn mailbox<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    domain_id: Uuid,
    extension_id: Uuid,
) -> DomainResult<Mailbox> {
    let domain = scope::enter(db, ctx, domain_id, Permission::VoicemailManage).await?;
    let ext = extension_in(db, domain_id, extension_id).await?;
    Ok(Mailbox::of(&ext, &domain))
}

/// The boxes of the acting User's own Extensions (in every Domain it can see), by number.
/// An API key or the system has none.
pub async fn my_mailboxes<C: ConnectionTrait>(db: &C, ctx: &Context) -> DomainResult<Vec<Mailbox>> {
    let Some(user_id) = ctx.actor.user_id() else {
        return Ok(Vec::new());
    };
    let mut q = extensions::Entity::find()
        .filter(extensions::Column::UserId.eq(user_id))
        .order_by_asc(extensions::Column::Number);
    if let Some(visible) = visible_domains(&ctx.actor) {
        q = q.filter(extensions::Column::DomainId.is_in(visible));
    }
    let exts = q.all(db).await?;
    if exts.is_empty() {
        return Ok(Vec::new());
    }
    let domain_ids: Vec<Uuid> = exts.iter().map(|e| e.domain_id).collect();
    let domains: std::collections::HashMap<Uuid, domains::Model> = domains::Entity::find()
        .filter(domains::Column::Id.is_in(domain_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    Ok(exts
        .iter()
        .filter_map(|ext| domains.get(&ext.domain_id).map(|d| Mailbox::of(ext, d)))
        .collect())
}

/// One of the acting User's own boxes, by Extension id; anyone else's is a 404.
pub async fn my_mailbox<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    extension_id: Uuid,
) -> DomainResult<Mailbox> {
    my_mailboxes(db, ctx)
        .await?
        .into_iter()
        .find(|m| m.extension_id == extension_id)
        .ok_or(DomainError::NotFound("extension"))
}

/// The box a message from `from` may be moved to: an Extension of the same Domain (any other
/// is a 404, as if it did not exist) with voicemail on, and not `from` itself.
pub async fn move_target<C: ConnectionTrait>(
    db: &C,
    from: &Mailbox,
    extension_id: Uuid,
) -> DomainResult<Mailbox> {
    let domain = domains::Entity::find_by_id(from.domain_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("domain"))?;
    let ext = extension_in(db, from.domain_id, extension_id).await?;
    if ext.id == from.extension_id {
        return Err(DomainError::Conflict {
            code: "same_mailbox",
            message: "the message is already in that box".to_owned(),
            field: Some("extension_id".to_owned()),
        });
    }
    if !ext.voicemail_enabled {
        return Err(DomainError::Conflict {
            code: "voicemail_disabled",
            message: format!("Extension {} has voicemail turned off", ext.number),
            field: Some("extension_id".to_owned()),
        });
    }
    Ok(Mailbox::of(&ext, &domain))
}

/// What happened to a message, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageChange<'a> {
    /// Deleted.
    Deleted,
    /// Moved to another box.
    Moved(&'a Mailbox),
}

/// Audits a deletion or a move of message `message` of `mailbox` (a read mark is not
/// audited: it is what listening does).
pub async fn audit_change<C: ConnectionTrait>(
    db: &C,
    ctx: &Context,
    mailbox: &Mailbox,
    message: &str,
    change: MessageChange<'_>,
) -> DomainResult<()> {
    let (action, after) = match change {
        MessageChange::Deleted => ("voicemail.message.delete", None),
        MessageChange::Moved(to) => (
            "voicemail.message.move",
            Some(json!({"extension_id": to.extension_id, "mailbox": to.number})),
        ),
    };
    audit::record(
        db,
        ctx,
        Entry {
            domain_id: Some(mailbox.domain_id),
            action,
            target_kind: "voicemail_message",
            target_id: Some(message.to_owned()),
            before: Some(json!({"extension_id": mailbox.extension_id, "mailbox": mailbox.number})),
            after,
        },
    )
    .await
}

// ---- a box's settings ----

/// A box's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxSettings {
    /// Voicemail is on for the Extension (set on the Extension, with its PIN).
    pub enabled: bool,
    /// Where new messages are e-mailed (none: not e-mailed).
    pub email: Option<String>,
    /// The e-mail carries the audio.
    pub attach_audio: bool,
    /// The message is deleted from the box once e-mailed.
    pub delete_after_email: bool,
    /// The most messages the box keeps (none: no limit).
    pub max_messages: Option<i32>,
}

/// The largest `max_messages`.
pub const MAX_MESSAGES_LIMIT: i32 = 1000;

/// New settings for a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxSettingsInput {
    /// Where new messages are e-mailed (none or empty: not e-mailed).
    pub email: Option<String>,
    /// The e-mail carries the audio.
    pub attach_audio: bool,
    /// The message is deleted from the box once e-mailed (needs `email`).
    pub delete_after_email: bool,
    /// The most messages the box keeps, 1–1000 (none: no limit).
    pub max_messages: Option<i32>,
}

fn settings_of(mailbox: &Mailbox, row: Option<voicemail_boxes::Model>) -> BoxSettings {
    match row {
        Some(r) => BoxSettings {
            enabled: mailbox.enabled,
            email: r.email,
            attach_audio: r.attach_audio,
            delete_after_email: r.delete_after_email,
            max_messages: r.max_messages,
        },
        None => BoxSettings {
            enabled: mailbox.enabled,
            email: None,
            attach_audio: true,
            delete_after_email: false,
            max_messages: None,
        },
    }
}

/// The settings of a box (the defaults when none were saved).
pub async fn settings<C: ConnectionTrait>(db: &C, mailbox: &Mailbox) -> DomainResult<BoxSettings> {
    let row = voicemail_boxes::Entity::find_by_id(mailbox.extension_id)
        .one(db)
        .await?;
    Ok(settings_of(mailbox, row))
}

/// Saves a box's settings (audited as `voicemail.box.update`).
pub async fn save_settings(
    db: &DatabaseConnection,
    ctx: &Context,
    mailbox: &Mailbox,
    input: BoxSettingsInput,
) -> DomainResult<BoxSettings> {
    let mut errors = FieldErrors::new();
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => errors
            .check("email", Email::parse(e))
            .map(|e| e.as_str().to_owned()),
    };
    if input.delete_after_email && input.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        errors.add(
            "delete_after_email",
            "requires_email",
            "messages can only be deleted after e-mailing them when an e-mail address is set",
        );
    }
    if input
        .max_messages
        .is_some_and(|n| !(1..=MAX_MESSAGES_LIMIT).contains(&n))
    {
        errors.add(
            "max_messages",
            "out_of_range",
            format!("a box keeps 1 to {MAX_MESSAGES_LIMIT} messages (null: no limit)"),
        );
    }
    errors.into_result()?;
    let txn = begin_write(db).await?;
    let before = voicemail_boxes::Entity::find_by_id(mailbox.extension_id)
        .one(&txn)
        .await?;
    let row = voicemail_boxes::ActiveModel {
        extension_id: Set(mailbox.extension_id),
        domain_id: Set(mailbox.domain_id),
        email: Set(email),
        attach_audio: Set(input.attach_audio),
        delete_after_email: Set(input.delete_after_email),
        max_messages: Set(input.max_messages),
        updated_at: Set(ctx.now),
    };
    let saved = if before.is_some() {
        row.update(&txn).await?
    } else {
        row.insert(&txn).await?
    };
    audit::record(
        &txn,
        ctx,
        Entry {
            domain_id: Some(mailbox.domain_id),
            action: "voicemail.box.update",
            target_kind: "extension",
            target_id: Some(mailbox.extension_id.to_string()),
            before: before.as_ref().map(box_json),
            after: Some(box_json(&saved)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(settings_of(mailbox, Some(saved)))
}

fn box_json(r: &voicemail_boxes::Model) -> serde_json::Value {
    json!({"email": r.email, "attach_audio": r.attach_audio,
           "delete_after_email": r.delete_after_email, "max_messages": r.max_messages})
}

// ---- voicemail to e-mail: the outbox ----

/// An e-mail waiting to be sent.
pub const EMAIL_PENDING: &str = "pending";
/// An e-mail sent.
pub const EMAIL_SENT: &str = "sent";
/// An e-mail given up after its last attempt (`retry_email` queues it again).
pub const EMAIL_FAILED: &str = "failed";

/// A message mod_voicemail announced (`vm::maintenance`, `VM-Action: leave-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMessage {
    /// The SIP domain.
    pub sip_domain: String,
    /// The box.
    pub mailbox: String,
    /// mod_voicemail's id of the message.
    pub message_id: String,
    /// The caller's name.
    pub caller_name: String,
    /// The caller's number.
    pub caller_number: String,
    /// Length in seconds.
    pub duration_secs: i32,
    /// The audio as the node wrote it.
    pub audio_path: String,
    /// When it was left.
    pub left_at: DateTime<Utc>,
}

/// What a new message asks of switchboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arrival {
    /// The e-mail queued for it (none: the box has no address, or it was queued before).
    pub email: Option<Uuid>,
    /// The most messages its box keeps (none: no limit).
    pub max_messages: Option<i32>,
}

/// Queues the e-mail for a new message when its box has an address, and says how many
/// messages the box keeps. Announced twice (several switchboard nodes, or a reconnect) it is
/// queued once. Nothing to do for a box switchboard does not know.
pub async fn message_left(
    db: &DatabaseConnection,
    m: &LeftMessage,
    now: DateTime<Utc>,
) -> DomainResult<Arrival> {
    let Some(domain) = domains::Entity::find()
        .filter(domains::Column::SipDomain.eq(m.sip_domain.to_ascii_lowercase()))
        .one(db)
        .await?
    else {
        return Ok(Arrival::default());
    };
    let Some(ext) = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(domain.id))
        .filter(extensions::Column::Number.eq(m.mailbox.as_str()))
        .one(db)
        .await?
    else {
        return Ok(Arrival::default());
    };
    let Some(settings) = voicemail_boxes::Entity::find_by_id(ext.id).one(db).await? else {
        return Ok(Arrival::default());
    };
    let max_messages = settings.max_messages;
    let Some(to) = settings.email else {
        return Ok(Arrival {
            email: None,
            max_messages,
        });
    };
    let id = Uuid::now_v7();
    let row = voicemail_emails::ActiveModel {
        id: Set(id),
        domain_id: Set(domain.id),
        extension_id: Set(ext.id),
        mailbox: Set(m.mailbox.clone()),
        message_id: Set(m.message_id.clone()),
        to_address: Set(to),
        caller_name: Set(m.caller_name.clone()),
        caller_number: Set(m.caller_number.clone()),
        duration_secs: Set(m.duration_secs),
        left_at: Set(m.left_at),
        audio_path: Set(m.audio_path.clone()),
        attach_audio: Set(settings.attach_audio),
        delete_after: Set(settings.delete_after_email),
        status: Set(EMAIL_PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
    };
    let inserted = voicemail_emails::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                voicemail_emails::Column::ExtensionId,
                voicemail_emails::Column::MessageId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(Arrival {
        email: (inserted > 0).then_some(id),
        max_messages,
    })
}

/// Audits the messages a full box let go (`voicemail.message.expire`, by switchboard).
pub async fn audit_expired(
    db: &DatabaseConnection,
    m: &LeftMessage,
    expired: &[String],
) -> DomainResult<()> {
    let Some(domain) = domains::Entity::find()
        .filter(domains::Column::SipDomain.eq(m.sip_domain.to_ascii_lowercase()))
        .one(db)
        .await?
    else {
        return Ok(());
    };
    let ctx = Context::system("voicemail limit");
    for id in expired {
        audit::record(
            db,
            &ctx,
            Entry {
                domain_id: Some(domain.id),
                action: "voicemail.message.expire",
                target_kind: "voicemail_message",
                target_id: Some(id.clone()),
                before: Some(json!({"mailbox": m.mailbox})),
                after: None,
            },
        )
        .await?;
    }
    Ok(())
}

/// A box that e-mails its messages, for catching up on messages left while no switchboard
/// node heard FreeSWITCH (all of them down, or the link to that node down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingBox {
    /// The SIP domain.
    pub sip_domain: String,
    /// The box.
    pub mailbox: String,
    /// Messages left since then are owed an e-mail (when the address was last set).
    pub since: DateTime<Utc>,
}

/// Every box with an e-mail address.
pub async fn mailing_boxes<C: ConnectionTrait>(db: &C) -> DomainResult<Vec<MailingBox>> {
    let boxes = voicemail_boxes::Entity::find()
        .filter(voicemail_boxes::Column::Email.is_not_null())
        .all(db)
        .await?;
    if boxes.is_empty() {
        return Ok(Vec::new());
    }
    let ext_ids: Vec<Uuid> = boxes.iter().map(|b| b.extension_id).collect();
    let exts: std::collections::HashMap<Uuid, extensions::Model> = extensions::Entity::find()
        .filter(extensions::Column::Id.is_in(ext_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect();
    let domain_ids: Vec<Uuid> = boxes.iter().map(|b| b.domain_id).collect();
    let domains: std::collections::HashMap<Uuid, String> = domains::Entity::find()
        .filter(domains::Column::Id.is_in(domain_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.sip_domain))
        .collect();
    Ok(boxes
        .into_iter()
        .filter_map(|b| {
            Some(MailingBox {
                sip_domain: domains.get(&b.domain_id)?.clone(),
                mailbox: exts.get(&b.extension_id)?.number.clone(),
                since: b.updated_at,
            })
        })
        .collect())
}

/// The pending e-mails due at `now`, oldest due first.
pub async fn due_emails<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> DomainResult<Vec<voicemail_emails::Model>> {
    Ok(voicemail_emails::Entity::find()
        .filter(voicemail_emails::Column::Status.eq(EMAIL_PENDING))
        .filter(voicemail_emails::Column::NextAttemptAt.lte(now))
        .order_by_asc(voicemail_emails::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Claims a due e-mail for one sender until `until` (another node skips it meanwhile; should
/// this one die, it is due again then). False: someone else claimed it first.
pub async fn claim_email<C: ConnectionTrait>(
    db: &C,
    email: &voicemail_emails::Model,
    until: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = voicemail_emails::Entity::update_many()
        .col_expr(voicemail_emails::Column::NextAttemptAt, Expr::value(until))
        .filter(voicemail_emails::Column::Id.eq(email.id))
        .filter(voicemail_emails::Column::Status.eq(EMAIL_PENDING))
        .filter(voicemail_emails::Column::NextAttemptAt.eq(email.next_attempt_at))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Records a sent e-mail (`note`: what failed after sending, such as deleting the message).
pub async fn email_sent<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    attempts: i32,
    now: DateTime<Utc>,
    note: Option<String>,
) -> DomainResult<()> {
    voicemail_emails::Entity::update_many()
        .col_expr(voicemail_emails::Column::Status, Expr::value(EMAIL_SENT))
        .col_expr(voicemail_emails::Column::Attempts, Expr::value(attempts))
        .col_expr(voicemail_emails::Column::SentAt, Expr::value(now))
        .col_expr(voicemail_emails::Column::LastError, Expr::value(note))
        .filter(voicemail_emails::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: due again at `next`, or given up (`failed`) when `next` is none.
pub async fn email_attempt_failed<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    attempts: i32,
    error: &str,
    next: Option<DateTime<Utc>>,
) -> DomainResult<()> {
    let mut update = voicemail_emails::Entity::update_many()
        .col_expr(voicemail_emails::Column::Attempts, Expr::value(attempts))
        .col_expr(
            voicemail_emails::Column::LastError,
            Expr::value(error.to_owned()),
        );
    update = match next {
        Some(at) => update.col_expr(voicemail_emails::Column::NextAttemptAt, Expr::value(at)),
        None => update.col_expr(voicemail_emails::Column::Status, Expr::value(EMAIL_FAILED)),
    };
    update
        .filter(voicemail_emails::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets the e-mails queued before `before` that are done (sent or given up); returns how
/// many went. (A week back is what catching up after an outage looks at; keep more.)
pub async fn purge_emails<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> DomainResult<u64> {
    let done = voicemail_emails::Entity::delete_many()
        .filter(voicemail_emails::Column::Status.ne(EMAIL_PENDING))
        .filter(voicemail_emails::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}

/// The e-mails of a box, newest first.
pub async fn list_emails<C: ConnectionTrait>(
    db: &C,
    mailbox: &Mailbox,
    page: &PageRequest,
) -> DomainResult<Page<voicemail_emails::Model>> {
    let q = voicemail_emails::Entity::find()
        .filter(voicemail_emails::Column::ExtensionId.eq(mailbox.extension_id));
    fetch_page_desc(db, q, voicemail_emails::Column::Id, |m| m.id, page).await
}

/// Queues a given-up e-mail of the box again (attempts start over); audited as
/// `voicemail.email.retry`. Anything but a `failed` e-mail is a conflict.
pub async fn retry_email(
    db: &DatabaseConnection,
    ctx: &Context,
    mailbox: &Mailbox,
    id: Uuid,
) -> DomainResult<voicemail_emails::Model> {
    let txn = begin_write(db).await?;
    let email = voicemail_emails::Entity::find_by_id(id)
        .filter(voicemail_emails::Column::ExtensionId.eq(mailbox.extension_id))
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound("voicemail e-mail"))?;
    if email.status != EMAIL_FAILED {
        return Err(DomainError::Conflict {
            code: "not_failed",
            message: format!(
                "the e-mail is {}; only a failed one is retried",
                email.status
            ),
            field: None,
        });
    }
    let mut row: voicemail_emails::ActiveModel = email.into();
    row.status = Set(EMAIL_PENDING.to_owned());
    row.attempts = Set(0);
    row.next_attempt_at = Set(ctx.now);
    let saved = row.update(&txn).await?;
    audit::record(
        &txn,
        ctx,
        Entry {
            domain_id: Some(mailbox.domain_id),
            action: "voicemail.email.retry",
            target_kind: "voicemail_email",
            target_id: Some(id.to_string()),
            before: None,
            after: Some(json!({"to": saved.to_address, "message_id": saved.message_id})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(saved)
}
