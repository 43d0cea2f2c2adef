//! An open live-event stream outlives no right it was opened with (issue 11, D3): it ends within
//! seconds of its session being logged out, its user disabled, its `presence.read` taken away,
//! its API key revoked, and when the access token it was opened with expires. Browsers open it
//! with a single-use, short-lived stream ticket.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases};

use crate::devices::{domain_with_admin, extension};
use crate::events::{Reader, Sse};
use crate::users::{call, create_user, token_of};

both_databases!(
    a_stream_ends_within_seconds_when_its_session_logs_out,
    a_stream_ends_within_seconds_when_its_user_is_disabled,
    a_stream_ends_within_seconds_when_presence_read_is_taken_away,
    a_stream_ends_within_seconds_when_its_api_key_is_revoked,
    a_stream_ends_when_the_access_token_it_was_opened_with_expires
        with |c| c.auth.access_token_ttl_secs = 10,
    a_stream_ticket_opens_one_stream_once_and_expires
        with |c| c.auth.stream_ticket_ttl_secs = 2,
    a_ticket_stream_ends_when_the_session_that_minted_it_logs_out,
    twenty_concurrent_redemptions_of_one_ticket_open_one_stream,
);

/// Well above the server's re-check interval (3 s) plus scheduling slack on a busy machine.
const ENDS_WITHIN: Duration = Duration::from_secs(12);

/// A Domain with a supervisor (who holds `presence.read`); returns (domain, platform admin
/// token, supervisor's user id, supervisor's token).
async fn watched_domain(app: &TestApp, sip_domain: &str) -> (String, String, String, String) {
    let (domain, admin) = domain_with_admin(app, sip_domain).await;
    let email = format!("watcher@{sip_domain}");
    let user = create_user(app, &admin, &domain, &email, &["supervisor"]).await;
    let token = token_of(app, &email).await;
    (domain, admin, user, token)
}

/// Proves the stream is live: a change made now arrives.
async fn assert_live(
    app: &TestApp,
    admin: &str,
    domain: &str,
    stream: &mut Reader,
    n: &str,
) -> Sse {
    let id = extension(app, admin, domain, n, false).await;
    let event = stream.next().await;
    assert_eq!(event.event, "extension.created");
    assert_eq!(event.data["entity_id"], id.as_str());
    event
}

/// Changes the Domain after a revocation and checks that the stream closes with `end` and the
/// given reason, never delivering that change.
async fn assert_ends(
    app: &TestApp,
    admin: &str,
    domain: &str,
    stream: &mut Reader,
    reason: &str,
) -> Vec<Sse> {
    let after = extension(app, admin, domain, "299", false).await;
    let started = tokio::time::Instant::now();
    let seen = stream.ends_within(ENDS_WITHIN).await;
    let last = seen
        .last()
        .unwrap_or_else(|| panic!("no end event: {seen:?}"));
    assert_eq!(last.event, "end", "{seen:?}");
    assert_eq!(last.data["reason"], reason, "{seen:?}");
    // A change committed after the revocation may race the next check, but never arrives
    // once the stream knows: at most one check interval's worth is possible.
    assert!(started.elapsed() < ENDS_WITHIN);
    let _ = after;
    seen
}

async fn a_stream_ends_within_seconds_when_its_session_logs_out(app: TestApp) {
    let (domain, admin, _, token) = watched_domain(&app, "sa-logout.example").await;
    let mut stream = Reader::open(&app, &token, &domain, None).await;
    // A second tab: the streams of one session share their checks, and both end.
    let mut tab = Reader::open(&app, &token, &domain, None).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;
    assert_eq!(tab.next().await.event, "extension.created");

    let (status, _) = call(&app, &token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_ends(&app, &admin, &domain, &mut stream, "revoked").await;
    let seen = tab.ends_within(ENDS_WITHIN).await;
    assert_eq!(
        seen.last().map(|e| e.event.as_str()),
        Some("end"),
        "{seen:?}"
    );
    // And it cannot be reopened with that token.
    let response = app
        .send_as(
            &token,
            Method::GET,
            &format!("/api/v1/domains/{domain}/events"),
            None,
        )
        .await;
    assert_eq!(response.status(), 401);
}

async fn a_stream_ends_within_seconds_when_its_user_is_disabled(app: TestApp) {
    let (domain, admin, user, token) = watched_domain(&app, "sa-disable.example").await;
    let mut stream = Reader::open(&app, &token, &domain, None).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;

    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/users/{user}"),
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ends(&app, &admin, &domain, &mut stream, "revoked").await;
}

async fn a_stream_ends_within_seconds_when_presence_read_is_taken_away(app: TestApp) {
    let (domain, admin, user, token) = watched_domain(&app, "sa-demote.example").await;
    let mut stream = Reader::open(&app, &token, &domain, None).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;

    // Demoted to member: still in the Domain, still logged in, but no presence.read.
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/users/{user}/roles"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_ends(&app, &admin, &domain, &mut stream, "revoked").await;
    // The session itself lives on: ordinary requests still work.
    let (status, _) = call(&app, &token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);
}

async fn a_stream_ends_within_seconds_when_its_api_key_is_revoked(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "sa-key.example").await;
    let (status, created) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/api-keys"),
        Some(json!({"name": "dashboard", "role": "supervisor"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let mut stream = Reader::open(&app, &key, &domain, None).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;

    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/api-keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_ends(&app, &admin, &domain, &mut stream, "revoked").await;
}

async fn a_stream_ends_when_the_access_token_it_was_opened_with_expires(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "sa-expiry.example").await;
    let email = "watcher@sa-expiry.example";
    create_user(&app, &admin, &domain, email, &["supervisor"]).await;
    let opened = tokio::time::Instant::now();
    let token = token_of(&app, email).await;
    let mut stream = Reader::open(&app, &token, &domain, None).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;

    // Nothing was revoked: the session lives on, only the 10-second token runs out.
    let seen = stream.ends_within(Duration::from_secs(25)).await;
    let last = seen.last().expect("an end event");
    assert_eq!(
        (last.event.as_str(), &last.data["reason"]),
        ("end", &json!("expired"))
    );
    assert!(
        opened.elapsed() >= Duration::from_secs(8),
        "ended early, after {:?}",
        opened.elapsed()
    );
}

/// Mints a ticket for `domain` as `token`; returns the response status and body.
async fn mint(app: &TestApp, token: &str, domain: &str) -> (u16, Value) {
    call(
        app,
        token,
        Method::POST,
        &format!("/api/v1/domains/{domain}/events/tickets"),
        None,
    )
    .await
}

fn ticket_of(body: &Value) -> String {
    let ticket = body["ticket"].as_str().expect("a ticket").to_owned();
    assert!(ticket.starts_with("st_"), "{body}");
    ticket
}

async fn a_stream_ticket_opens_one_stream_once_and_expires(app: TestApp) {
    let (domain, admin, _, token) = watched_domain(&app, "sa-ticket.example").await;
    let (other, _) = domain_with_admin(&app, "sa-ticket-other.example").await;
    let events = |d: &str, ticket: &str| format!("/api/v1/domains/{d}/events?ticket={ticket}");

    // Minting needs what the stream needs.
    create_user(
        &app,
        &admin,
        &domain,
        "member@sa-ticket.example",
        &["member"],
    )
    .await;
    let member = token_of(&app, "member@sa-ticket.example").await;
    let (status, body) = mint(&app, &member, &domain).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = mint(&app, &token, &other).await;
    assert_eq!(status, 404, "{body}");
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/domains/{domain}/events/tickets"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A ticket opens the stream without any header, and it is live.
    let (status, body) = mint(&app, &token, &domain).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["expires_at"].is_string(), "{body}");
    let ticket = ticket_of(&body);
    let mut stream = Reader::open_with_ticket(&app, &domain, &ticket).await;
    let seen = assert_live(&app, &admin, &domain, &mut stream, "201").await;
    drop(stream);

    // Once only.
    let again = app.get(&events(&domain, &ticket)).await;
    assert_problem(again, 401, "unauthenticated").await;

    // Reconnecting with a new ticket resumes after the last event seen.
    let missed = extension(&app, &admin, &domain, "202", false).await;
    let (_, body) = mint(&app, &token, &domain).await;
    let resume = format!("{}&last_event_id={}", ticket_of(&body), seen.id);
    let mut stream = Reader::open_with_ticket(&app, &domain, &resume).await;
    let replayed = stream.next().await;
    assert_eq!(replayed.id, seen.id + 1);
    assert_eq!(replayed.data["entity_id"], missed.as_str());
    drop(stream);

    // For its own Domain only (and a refused attempt spends nothing but the attempt).
    let (_, body) = mint(&app, &token, &domain).await;
    let ticket = ticket_of(&body);
    assert_eq!(app.get(&events(&other, &ticket)).await.status(), 401);
    drop(Reader::open_with_ticket(&app, &domain, &ticket).await);

    // Not after it expired (2 s here).
    let (_, body) = mint(&app, &token, &domain).await;
    let ticket = ticket_of(&body);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_problem(
        app.get(&events(&domain, &ticket)).await,
        401,
        "unauthenticated",
    )
    .await;

    // Made-up tickets and a bearer token in the ticket slot are refused alike.
    for bogus in ["st_nope", token.as_str()] {
        assert_eq!(app.get(&events(&domain, bogus)).await.status(), 401);
    }
}

async fn a_ticket_stream_ends_when_the_session_that_minted_it_logs_out(app: TestApp) {
    let (domain, admin, _, token) = watched_domain(&app, "sa-ticket-end.example").await;
    let (_, body) = mint(&app, &token, &domain).await;
    let mut stream = Reader::open_with_ticket(&app, &domain, &ticket_of(&body)).await;
    assert_live(&app, &admin, &domain, &mut stream, "201").await;

    let (status, _) = call(&app, &token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_ends(&app, &admin, &domain, &mut stream, "revoked").await;
}

async fn twenty_concurrent_redemptions_of_one_ticket_open_one_stream(app: TestApp) {
    let (domain, _, _, token) = watched_domain(&app, "sa-race.example").await;
    let (status, body) = mint(&app, &token, &domain).await;
    assert_eq!(status, 201, "{body}");
    let path = format!(
        "/api/v1/domains/{domain}/events?ticket={}",
        ticket_of(&body)
    );
    let attempts = (0..20).map(|_| {
        let (app, path) = (&app, &path);
        async move { app.get(path).await }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        19,
        "{statuses:?}"
    );
}
