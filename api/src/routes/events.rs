//! The live event stream of a Domain, as Server-Sent Events.

use std::collections::VecDeque;
use std::convert::Infallible;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use switchboard_domain::services::presence;
use tokio::sync::broadcast;
use tokio::time::{Instant, Interval, interval_at};
use uuid::Uuid;

use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::sse::{self, HEARTBEAT, HEARTBEAT_FRAME, Item};
use crate::state::AppState;

const PROBLEM: &str = "application/problem+json";

/// What one open stream still has to send and where it listens.
struct Stream {
    domain_id: Uuid,
    pending: VecDeque<String>,
    live: broadcast::Receiver<Item>,
    last_seq: u64,
    heartbeat: Interval,
}

impl Stream {
    /// The next frame: pending ones first, then live events of the Domain or a heartbeat.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            tokio::select! {
                item = self.live.recv() => match item {
                    Ok(Item::Event(seq, event)) => {
                        if seq > self.last_seq {
                            self.last_seq = seq;
                            if event.domain_id == self.domain_id {
                                self.pending.push_back(sse::frame(seq, &event));
                            }
                        }
                    }
                    Ok(Item::Reset) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.pending.push_back(sse::reset_frame(self.last_seq));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.heartbeat.tick() => self.pending.push_back(HEARTBEAT_FRAME.to_owned()),
            }
        }
    }
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
#[utoipa::path(
    tag = "events",
    security(("bearer" = [])),
    params(
        ("domain_id" = Uuid, Path, description = "Domain id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received, to resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream: `id:`, `event:` and `data:` lines per event, a blank line between events", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or invalid bearer token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "`presence.read` missing", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such Domain, or not mine", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/api/v1/domains/{domain_id}/events")]
pub async fn domain_events(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let domain_id = path.into_inner();
    presence::watch(&state.db, caller.ctx(), domain_id).await?;
    // An unreadable id is treated like a stale one: the client is told to reload.
    let last_event_id = req.headers().get("last-event-id").map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    });
    let resume = state.event_log.resume(last_event_id);
    let mut pending = VecDeque::new();
    pending.push_back("retry: 3000\n: connected\n\n".to_owned());
    if resume.reset {
        pending.push_back(sse::reset_frame(resume.last_seq));
    }
    pending.extend(
        resume
            .missed
            .iter()
            .filter(|(_, e)| e.domain_id == domain_id)
            .map(|(seq, e)| sse::frame(*seq, e)),
    );
    let stream = Stream {
        domain_id,
        pending,
        live: resume.live,
        last_seq: resume.last_seq,
        heartbeat: interval_at(Instant::now() + HEARTBEAT, HEARTBEAT),
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
