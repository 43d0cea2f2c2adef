//! Stream tickets: a short-lived, single-use credential that opens one Domain's live event
//! stream, for browsers, whose `EventSource` cannot send an `Authorization` header.
//!
//! Minting needs what the stream needs (`presence.read` in the Domain) and records who minted
//! it (a login session or an API key) and when the credential they minted it with expires.
//! Redeeming claims it atomically (`used_at`), so a ticket opens one stream at most; the stream
//! then re-checks that principal like any other, and ends when the minting credential would
//! have expired. Only the ticket's SHA-256 is stored.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use secrecy::SecretString;
use uuid::Uuid;

use super::{Context, presence};
use crate::error::{DomainError, DomainResult};
use crate::identity::authz::Principal;
use crate::identity::tokens::{random_token, token_digest};
use crate::store::stream_tickets;

/// The prefix of every stream ticket.
pub const TICKET_PREFIX: &str = "st_";

/// A freshly minted ticket (shown to the client once).
#[derive(Debug)]
pub struct IssuedTicket {
    /// The ticket, in clear.
    pub ticket: SecretString,
    /// Redeemable until.
    pub expires_at: DateTime<Utc>,
}

/// What a redeemed ticket opens the stream as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketGrant {
    /// Who minted it.
    pub principal: Principal,
    /// When the credential it was minted with expires (the stream ends then).
    pub credential_expires_at: Option<DateTime<Utc>>,
}

/// Mints a ticket for `domain_id`'s stream (`presence.read` there; another Domain is a 404),
/// redeemable for `ttl`. `credential_expires_at` is when the caller's own credential (the
/// access token) expires.
pub async fn issue(
    db: &DatabaseConnection,
    ctx: &Context,
    domain_id: Uuid,
    credential_expires_at: Option<DateTime<Utc>>,
    ttl: Duration,
) -> DomainResult<IssuedTicket> {
    presence::watch(db, ctx, domain_id).await?;
    let (user_id, session_id, api_key_id) = match ctx.actor.principal {
        Principal::User { id, session_id } => (Some(id), Some(session_id), None),
        Principal::ApiKey { id } => (None, None, Some(id)),
        Principal::System => {
            return Err(DomainError::Internal(
                "switchboard itself does not mint stream tickets".into(),
            ));
        }
    };
    // Housekeeping: tickets past their redemption window are of no use to anyone.
    stream_tickets::Entity::delete_many()
        .filter(stream_tickets::Column::ExpiresAt.lt(ctx.now - Duration::minutes(1)))
        .exec(db)
        .await?;
    let ticket = format!("{TICKET_PREFIX}{}", random_token(32));
    let expires_at = ctx.now + ttl;
    stream_tickets::ActiveModel {
        id: Set(Uuid::now_v7()),
        token_hash: Set(token_digest(&ticket)),
        domain_id: Set(domain_id),
        user_id: Set(user_id),
        session_id: Set(session_id),
        api_key_id: Set(api_key_id),
        credential_expires_at: Set(credential_expires_at),
        created_at: Set(ctx.now),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(IssuedTicket {
        ticket: SecretString::from(ticket),
        expires_at,
    })
}

/// Redeems a ticket for `domain_id`'s stream: once, before it expires, for that Domain only.
/// Anything else is the same 401.
pub async fn redeem(
    db: &DatabaseConnection,
    ticket: &str,
    domain_id: Uuid,
    now: DateTime<Utc>,
) -> DomainResult<TicketGrant> {
    let invalid = DomainError::Unauthenticated("the stream ticket is invalid, expired or used");
    if !ticket.starts_with(TICKET_PREFIX) {
        return Err(invalid);
    }
    let digest = token_digest(ticket);
    // The claim is one statement: of two concurrent redemptions exactly one wins.
    let claimed = stream_tickets::Entity::update_many()
        .col_expr(stream_tickets::Column::UsedAt, Expr::value(now))
        .filter(stream_tickets::Column::TokenHash.eq(digest.as_str()))
        .filter(stream_tickets::Column::DomainId.eq(domain_id))
        .filter(stream_tickets::Column::UsedAt.is_null())
        .filter(stream_tickets::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        return Err(invalid);
    }
    let row = stream_tickets::Entity::find()
        .filter(stream_tickets::Column::TokenHash.eq(digest))
        .one(db)
        .await?
        .ok_or(invalid)?;
    let principal = match (row.user_id, row.session_id, row.api_key_id) {
        (Some(id), Some(session_id), _) => Principal::User { id, session_id },
        (_, _, Some(id)) => Principal::ApiKey { id },
        _ => {
            return Err(DomainError::Unauthenticated(
                "the stream ticket is invalid, expired or used",
            ));
        }
    };
    Ok(TicketGrant {
        principal,
        credential_expires_at: row.credential_expires_at,
    })
}
