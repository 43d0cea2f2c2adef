//! The live event stream end to end through the real server: events with ids, resuming with
//! `Last-Event-ID`, reset for stale ids, tenant isolation and refusals.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases};

use crate::devices::{domain_with_admin, extension};
use crate::users::{create_user, token_of};

both_databases!(
    a_client_receives_changes_and_resumes_with_last_event_id,
    the_stream_is_refused_without_presence_read_or_outside_my_domains,
    event_ids_are_numbered_per_domain_without_the_gaps_of_other_tenants,
);

/// One received SSE event (`id` 0 for frames without one, like `end`).
#[derive(Debug)]
pub(crate) struct Sse {
    pub(crate) id: u64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// Reads frames from an open stream.
pub(crate) struct Reader {
    response: Response,
    buffer: String,
}

impl Reader {
    pub(crate) async fn open(
        app: &TestApp,
        token: &str,
        domain: &str,
        last_id: Option<u64>,
    ) -> Self {
        let mut request = app
            .request(Method::GET, &format!("/api/v1/domains/{domain}/events"))
            .bearer_auth(token);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        Self::from_response(request.send().await.unwrap())
    }

    /// A stream opened with a ticket instead of a header.
    pub(crate) async fn open_with_ticket(app: &TestApp, domain: &str, ticket: &str) -> Self {
        let path = format!("/api/v1/domains/{domain}/events?ticket={ticket}");
        Self::from_response(app.request(Method::GET, &path).send().await.unwrap())
    }

    fn from_response(response: Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments and the retry hint skipped), or `None` after `wait` or when
    /// the stream ended.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, None);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(event), Some(data)) = (event, data) {
                    let id = id.unwrap_or(0);
                    return Some(Sse { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event about `entity` (an id), skipping the events before it; panics unless it
    /// comes within 10 s.
    pub(crate) async fn next_of(&mut self, entity: &str) -> Sse {
        loop {
            let event = self
                .next_within(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no event about {entity} within 10 s"));
            if event.data["entity_id"] == entity {
                return event;
            }
        }
    }

    /// Reads until the server closes the stream; panics unless that happens within `wait`.
    /// Returns the events received on the way.
    pub(crate) async fn ends_within(&mut self, wait: Duration) -> Vec<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (0, None, None);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().unwrap_or(0);
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(event), Some(data)) = (event, data) {
                    seen.push(Sse { id, event, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("the stream is still open after {wait:?}: {seen:?}"));
            match chunk {
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(None) | Err(_) => return seen,
            }
        }
    }

    pub(crate) async fn next(&mut self) -> Sse {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }
}

async fn a_client_receives_changes_and_resumes_with_last_event_id(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "events-a.example").await;
    let (other, other_admin_unused) = domain_with_admin(&app, "events-b.example").await;
    let _ = other_admin_unused;

    let mut stream = Reader::open(&app, &admin, &domain, None).await;
    let first = extension(&app, &admin, &domain, "201", false).await;
    let event = stream.next().await;
    assert_eq!(event.event, "extension.created");
    assert_eq!(event.data["entity_id"], first.as_str());
    assert_eq!(event.data["domain_id"], domain.as_str());
    assert_eq!(event.data["id"], event.id);
    drop(stream);

    // Missed while away: two changes here, one in another Domain.
    let second = extension(&app, &admin, &domain, "202", false).await;
    extension(&app, &admin, &other, "900", false).await;
    let (status, _) = crate::users::call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{second}"),
        Some(json!({"display_name": "Renamed"})),
    )
    .await;
    assert_eq!(status, 200);

    let mut stream = Reader::open(&app, &admin, &domain, Some(event.id)).await;
    let a = stream.next().await;
    let b = stream.next().await;
    assert_eq!(
        (a.event.as_str(), b.event.as_str()),
        ("extension.created", "extension.updated")
    );
    assert_eq!(a.data["entity_id"], second.as_str());
    assert_eq!(b.data["entity_id"], second.as_str());
    assert!(event.id < a.id && a.id < b.id);
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "exactly the missed ones, never another Domain's"
    );

    // Live again after the replay; the other Domain's change never arrives.
    extension(&app, &admin, &other, "901", false).await;
    let third = extension(&app, &admin, &domain, "203", false).await;
    let c = stream.next().await;
    assert_eq!(c.data["entity_id"], third.as_str());
    assert!(c.id > b.id);

    // Ids are the change log's: an old one is still replayed (from the log once memory no
    // longer holds it), one never given out means reload.
    let mut again = Reader::open(&app, &admin, &domain, Some(event.id)).await;
    assert_eq!(again.next().await.data["entity_id"], second.as_str());
    let mut stale = Reader::open(&app, &admin, &domain, Some(c.id + 1000)).await;
    assert_eq!(stale.next().await.event, "reset");
}

async fn the_stream_is_refused_without_presence_read_or_outside_my_domains(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "events-c.example").await;
    let (other, _) = domain_with_admin(&app, "events-d.example").await;
    let path = format!("/api/v1/domains/{domain}/events");

    assert_eq!(app.get(&path).await.status(), 401);

    create_user(&app, &admin, &domain, "member@events.example", &["member"]).await;
    let member = token_of(&app, "member@events.example").await;
    let response = app.send_as(&member, Method::GET, &path, None).await;
    assert_problem(response, 403, "forbidden").await;
    let response = app
        .send_as(
            &member,
            Method::GET,
            &format!("/api/v1/domains/{other}/events"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
}

async fn event_ids_are_numbered_per_domain_without_the_gaps_of_other_tenants(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "events-e.example").await;
    let (other, _) = domain_with_admin(&app, "events-f.example").await;

    let mut stream = Reader::open(&app, &admin, &domain, None).await;
    let ext_201 = extension(&app, &admin, &domain, "201", false).await;
    // The Domain's own `domain.created` is journaled after its commit: on a busy machine it may
    // reach a stream opened just after, ahead of the Extension's.
    let first = stream.next_of(&ext_201).await;
    for number in ["301", "302", "303"] {
        extension(&app, &admin, &other, number, false).await;
    }
    let ext_202 = extension(&app, &admin, &domain, "202", false).await;
    let second = stream.next_of(&ext_202).await;
    assert_eq!(
        second.id,
        first.id + 1,
        "another tenant's three changes leave no gap in my ids"
    );
    drop(stream);

    // Resuming still works with per-Domain ids, and sees only my Domain.
    extension(&app, &admin, &other, "304", false).await;
    let third = extension(&app, &admin, &domain, "203", false).await;
    let mut stream = Reader::open(&app, &admin, &domain, Some(second.id)).await;
    let missed = stream.next().await;
    assert_eq!(missed.id, second.id + 1);
    assert_eq!(missed.data["entity_id"], third.as_str());
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none()
    );

    // The other Domain counts on its own: its first event is not offset by mine.
    let mut theirs = Reader::open(&app, &admin, &other, Some(second.id - 1)).await;
    let replayed: Vec<u64> = vec![theirs.next().await.id, theirs.next().await.id];
    assert_eq!(replayed[1], replayed[0] + 1, "{replayed:?}");
}
