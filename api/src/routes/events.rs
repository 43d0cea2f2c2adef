//! The live event stream of a Domain, as Server-Sent Events, and the tickets that open it from
//! a browser.
//!
//! A stream outlives no right it was opened with: every [`RECHECK`] it resolves its principal
//! again (session, user, key, roles: a few indexed reads per stream, never one per event) and
//! ends when it may no longer watch the Domain; it also ends when the credential it was opened
//! with expires.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use switchboard_domain::DomainError;
use switchboard_domain::identity::authz::Principal;
use switchboard_domain::services::{Context, auth, presence, stream_tickets};
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, interval_at};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Caller, request_id};
use crate::extract::Query;
use crate::problem::{ApiResult, Problem};
use crate::sse::{self, HEARTBEAT, HEARTBEAT_FRAME, Item};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// How often an open stream checks that its session, key, account and permission still hold.
pub const RECHECK: Duration = Duration::from_secs(3);

/// What one open stream still has to send and where it listens.
struct Stream {
    state: web::Data<AppState>,
    domain_id: Uuid,
    principal: Principal,
    /// When the credential the stream was opened with expires.
    deadline: Option<Instant>,
    pending: VecDeque<String>,
    live: broadcast::Receiver<Item>,
    last_seq: u64,
    heartbeat: Interval,
    recheck: Interval,
    ended: bool,
}

impl Stream {
    /// The next frame: pending ones first, then live events of the Domain or a heartbeat; `None`
    /// once the stream has ended.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            let deadline = self.deadline;
            let expired = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                item = self.live.recv() => match item {
                    Ok(Item::Event(seq, event)) => {
                        if event.domain_id == self.domain_id && seq > self.last_seq {
                            self.last_seq = seq;
                            self.pending.push_back(sse::frame(seq, &event));
                        }
                    }
                    Ok(Item::Reset) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.pending.push_back(sse::reset_frame(self.last_seq));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => self.pending.push_back(HEARTBEAT_FRAME.to_owned()),
                _ = self.recheck.tick() => {
                    if !self.still_allowed().await {
                        self.end("revoked");
                    }
                }
                () = expired => self.end("expired"),
            }
        }
    }

    fn end(&mut self, reason: &str) {
        self.pending.push_back(sse::end_frame(reason));
        self.ended = true;
    }

    /// Whether the principal may still watch the Domain, checked at most once per half
    /// interval for all the streams of one principal in one Domain. A database that does not
    /// answer keeps the stream open until the next check: an outage is not a revocation.
    async fn still_allowed(&self) -> bool {
        let key = match self.principal {
            Principal::User { id, session_id } => (id, session_id, self.domain_id),
            Principal::ApiKey { id } => (id, Uuid::nil(), self.domain_id),
            Principal::System => return false,
        };
        let fresh = RECHECK / 2;
        if let Some(allowed) = self.state.stream_checks.recent(key, fresh) {
            return allowed;
        }
        let allowed = self.check().await;
        self.state.stream_checks.remember(key, allowed, fresh);
        allowed
    }

    async fn check(&self) -> bool {
        let now = Utc::now();
        let checked = async {
            let actor = auth::reauthenticate(&self.state.db, &self.principal, now).await?;
            let ctx = Context {
                actor,
                now,
                request_id: None,
            };
            presence::watch(&self.state.db, &ctx, self.domain_id).await
        };
        match checked.await {
            Ok(()) => true,
            Err(
                DomainError::Unauthenticated(_)
                | DomainError::Forbidden { .. }
                | DomainError::NotFound(_),
            ) => false,
            Err(e) => {
                tracing::warn!(error = %e, "the live stream could not re-check its caller");
                true
            }
        }
    }
}

/// How a stream is opened without an `Authorization` header.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// A stream ticket from `POST /api/v1/domains/{domain_id}/events/tickets` (for browsers'
    /// `EventSource`); single-use. Without it, send `Authorization: Bearer`.
    pub ticket: Option<String>,
    /// Resume after this event id, like the `Last-Event-ID` header (which wins when both are
    /// sent): for a browser reconnecting with a new ticket.
    pub last_event_id: Option<String>,
}

/// When a new stream first re-checks: somewhere in the second half of the interval, so that
/// the streams that all reconnect after a restart do not check in lockstep ever after.
fn first_recheck() -> Duration {
    let half = RECHECK / 2;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    half + half.mul_f64(f64::from(nanos) / 1e9)
}

fn deadline_of(expires_at: Option<DateTime<Utc>>) -> Option<Instant> {
    let left = expires_at? - Utc::now();
    Some(Instant::now() + left.to_std().unwrap_or(Duration::ZERO))
}

/// The Domain's live event stream (`presence.read`), as Server-Sent Events
/// (`text/event-stream`).
///
/// Every committed change of the Domain arrives as
/// `id: <sequence>\nevent: <kind>\ndata: <json>\n\n`, where kind is e.g. `extension.created`,
/// `device.updated`, `location.deleted`, `calling_settings.updated`, `session.started`,
/// `session.ended`, `location.signed_in`, `location.signed_out` or `presence.changed`, and the
/// data is `{"id", "kind", "domain_id", "entity_id", "at"}`: reload the entity to see what it is
/// now. Events are sent only after their transaction committed, never another Domain's.
///
/// Ids grow monotonically. Reconnect with `Last-Event-ID: <last id seen>` (browsers'
/// `EventSource` does it by itself) to receive what was missed; the last 1024 events across all
/// Domains are kept. When the missed events are no longer kept (or the id is from before a
/// server restart) the stream starts with `event: reset`: reload everything, then carry on.
/// A comment line (`: heartbeat`) is sent every 15 seconds while idle.
///
/// Ids are numbered per Domain. The stream ends with `event: end` (`data: {"reason":
/// "revoked"}`) within a few seconds of its session being revoked or logged out, its user
/// disabled, its API key revoked or its `presence.read` taken away, and with
/// `{"reason": "expired"}` when the access token it was opened with expires.
///
/// Browsers, whose `EventSource` cannot send a header, open it with `?ticket=` (see
/// `POST /api/v1/domains/{domain_id}/events/tickets`) instead of `Authorization`.
#[utoipa::path(
    tag = "events",
    security(("bearer" = []), ()),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received, to resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream: `id:`, `event:` and `data:` lines per event, a blank line between events", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or invalid bearer token, or an invalid, expired or used ticket", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`presence.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/events")]
pub async fn domain_events(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    query: Query<EventsQuery>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    let now = Utc::now();
    let query = query.into_inner();
    let (principal, expires_at) = match query.ticket {
        Some(ticket) => {
            let grant = stream_tickets::redeem(&state.db, &ticket, domain_id, now).await?;
            let actor = auth::reauthenticate(&state.db, &grant.principal, now).await?;
            let ctx = Context {
                actor,
                now,
                request_id: request_id(&req),
            };
            presence::watch(&state.db, &ctx, domain_id).await?;
            (grant.principal, grant.credential_expires_at)
        }
        None => {
            let caller = Caller::extract(&req).await?;
            presence::watch(&state.db, caller.ctx(), domain_id).await?;
            (
                caller.ctx().actor.principal.clone(),
                caller.credential_expires_at(),
            )
        }
    };
    // An unreadable id is treated like a stale one: the client is told to reload.
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().ok())
        .or(query.last_event_id.as_deref().map(Some))
        .map(|v| v.and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0));
    let resume = state
        .event_log
        .resume(&state.db, domain_id, last_event_id)
        .await?;
    let mut pending = VecDeque::new();
    pending.push_back("retry: 3000\n: connected\n\n".to_owned());
    if resume.reset {
        pending.push_back(sse::reset_frame(resume.last_seq));
    }
    pending.extend(resume.missed.iter().map(|(seq, e)| sse::frame(*seq, e)));
    let stream = Stream {
        state,
        domain_id,
        principal,
        deadline: deadline_of(expires_at),
        pending,
        live: resume.live,
        last_seq: resume.last_seq,
        heartbeat: interval_at(Instant::now() + HEARTBEAT, HEARTBEAT),
        recheck: interval_at(Instant::now() + first_recheck(), RECHECK),
        ended: false,
    };
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        let frame = s.next().await?;
        Some((Ok::<_, Infallible>(Bytes::from(frame)), s))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Never compressed or buffered: each event must reach the client when it happens.
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// A minted stream ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Open the stream with `GET /api/v1/domains/{domain_id}/events?ticket=<this>`.
    #[schema(example = "st_4kq0…")]
    pub ticket: String,
    /// Redeemable until (`auth.stream_ticket_ttl_secs` after minting).
    pub expires_at: DateTime<Utc>,
}

/// Mint a stream ticket (`presence.read`): a short-lived, single-use credential that opens this
/// Domain's live event stream once, for browsers' `EventSource`, which cannot send an
/// `Authorization` header.
///
/// `new EventSource(`/api/v1/domains/${id}/events?ticket=${ticket}`)`. The stream then acts
/// as the caller who minted the ticket: it ends when their session, key or permission goes,
/// and when the access token the ticket was minted with expires. A ticket works once: mint a
/// new one to reconnect (a logged ticket is worthless, it was used by that very request).
#[utoipa::path(
    tag = "events",
    security(("bearer" = [])),
    params(("domain_id" = Uuid, Path, description = "Domain id")),
    responses(
        (status = 201, description = "The ticket", body = StreamTicket),
        (status = 401, description = "No or invalid bearer token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`presence.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/api/v1/domains/{domain_id}/events/tickets")]
pub async fn create_stream_ticket(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let ttl = chrono::Duration::seconds(state.config.auth.stream_ticket_ttl_secs as i64);
    let issued = stream_tickets::issue(
        &state.db,
        caller.ctx(),
        path.into_inner(),
        caller.credential_expires_at(),
        ttl,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(StreamTicket {
            ticket: issued.ticket.expose_secret().to_owned(),
            expires_at: issued.expires_at,
        }))
}
