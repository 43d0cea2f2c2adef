//! ESL bridge benchmarks (run by `bench/esl/run.sh`, which prints the table):
//!
//! 1. **Ingest throughput**: the real server with one FreeSWITCH node played by the scripted
//!    ESL peer; `EVENTS` (default 100 000) captured-format events (sofia::register refreshes and
//!    the channel events and presence notices of calls, from `fixtures/freeswitch/esl/`, with the
//!    SIP user and Call-ID changed per phone) are written to the socket as fast as it takes
//!    them, round-robin over `PHONES` (default 100) phones of one Domain. Timed from the first
//!    byte until `/metrics` counts every event as processed (registrations stored, call states
//!    and presence updated). The bridge reads events on a connection of its own (the command
//!    connection stays idle meanwhile) and waits for ingestion rather than dropping events.
//! 2. **Login → flush latency**: `LOGINS` (default 200) admin hot-desk logins and logouts through
//!    the API; timed from sending the HTTP request until the scripted peer reads
//!    `xml_flush_cache id <phone> <domain>` (a login's commands end with the phone's
//!    re-sync NOTIFY, a logout's with the lamp). Admin logins skip the PIN's argon2 on purpose: the
//!    figure is the bridge's path, not the password hash.
//!
//! Output: one `key=value` line per figure, for the script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use freeswitch_esl_tokio::mock::{MockConnection, MockEslServer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_api::config::NodeConfig;
use switchboard_esl_bridge::frames::EventStream;
use switchboard_tests::{Backend, TestApp, spawn_app_with};

const PASSWORD: &str = "ClueCon-bench-0451";
const DOMAIN: &str = "acme.example.net";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/freeswitch/esl");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A captured frame with replacements in its body and Content-Length recomputed.
fn frame(name: &str, replace: &[(&str, &str)]) -> String {
    let raw = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap();
    let mut body = body.to_owned();
    for (from, to) in replace {
        body = body.replace(from, to);
    }
    let head: Vec<String> = head
        .lines()
        .map(|l| {
            if l.starts_with("Content-Length:") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    format!("{}\n\n{body}", head.join("\n"))
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request = app.request(method, path).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn start(backend: Backend) -> (TestApp, MockEslServer, String) {
    let server = MockEslServer::bind("127.0.0.1:0", PASSWORD).await.unwrap();
    let node = NodeConfig {
        name: "fs1".to_owned(),
        host: "127.0.0.1".to_owned(),
        port: server.port(),
        password: SecretString::from(PASSWORD),
        profile: "internal".to_owned(),
    };
    let app = spawn_app_with(backend, move |c| {
        c.freeswitch.nodes = vec![node];
        c.database.max_connections = 10;
        c.freeswitch.outbound_socket = "127.0.0.1:0".to_owned();
    })
    .await;
    let admin = app.admin_token().await;
    (app, server, admin)
}

/// The bridge's two connections of one session.
struct Session {
    /// Commands and their replies.
    commands: MockConnection,
    /// The subscribed event connection.
    events: MockConnection,
}

/// Accepts the bridge's next session (its command connection, then its event connection),
/// answers the subscription, the commands it had queued and its resync.
async fn accept(server: &MockEslServer) -> Session {
    'session: loop {
        let Ok(mut commands) = server.accept().await else {
            continue;
        };
        let Ok(mut events) = server.accept().await else {
            continue;
        };
        if events.read_command().await.is_err() {
            continue;
        }
        events
            .reply_raw_text("+OK event listener enabled plain")
            .await
            .unwrap();
        loop {
            let Ok(command) = commands.read_command().await else {
                continue 'session;
            };
            if command.starts_with("api show registrations") {
                commands.reply_api(r#"{"row_count":0}"#).await.unwrap();
                return Session { commands, events };
            }
            if command.starts_with("sendevent") {
                commands.reply_raw_text("+OK 1").await.unwrap();
            } else {
                commands.reply_api("+OK\n").await.unwrap();
            }
        }
    }
}

/// Events processed so far.
async fn events_processed(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("switchboard_freeswitch_events_received_total{"))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn ingest(backend: Backend) {
    let events = env_usize("EVENTS", 100_000);
    let phones = env_usize("PHONES", 100);
    let (app, server, admin) = start(backend).await;
    let Session {
        commands: mut conn,
        events: first_events,
    } = accept(&server).await;
    let domain = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": DOMAIN, "sip_domain": DOMAIN, "timezone": "UTC"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut users = Vec::new();
    for i in 0..phones {
        let number = format!("{}", 2000 + i);
        let ext = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/domains/{domain}/extensions"),
            Some(json!({"number": number, "display_name": format!("Ext {number}")})),
        )
        .await;
        let phone = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/domains/{domain}/devices"),
            Some(json!({"label": format!("Phone {i}"), "mode": "fixed",
                "owner_extension_id": ext["id"]})),
        )
        .await;
        users.push(phone["sip_username"].as_str().unwrap().to_owned());
    }
    // The bridge pushes the mirror for the new Extensions and phones: answer it all.
    let pushed = tokio::spawn(async move {
        while let Ok(command) = conn.read_command().await {
            if command.starts_with("sendevent") {
                let _ = conn.reply_raw_text("+OK 1").await;
            } else {
                let _ = conn.reply_api("+OK\n").await;
            }
        }
    });

    let round = round(&users);
    let bytes_per_event = round.iter().map(String::len).sum::<usize>() / round.len();

    // Close the link: the bridge reconnects and resynchronises (flushes, mirror, the empty
    // registration list), then the replay runs on the fresh connection.
    pushed.abort();
    let _ = pushed.await;
    drop(first_events);
    let mut session = accept(&server).await;
    // The flood goes to the event connection; the command connection stays idle.
    let started = Instant::now();
    send_events(&mut session.events, &round, events).await;
    let written = started.elapsed();
    // The bridge waits for ingestion rather than dropping, so every event gets counted.
    while events_processed(&app).await < events as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    report_ingest(
        &app,
        &admin,
        &domain,
        backend,
        events,
        phones,
        bytes_per_event,
        written,
        elapsed,
    )
    .await;
}

/// Writes `events` frames, cycling through `round`.
async fn send_events(conn: &mut MockConnection, round: &[String], events: usize) {
    let mut sent = 0usize;
    while sent < events {
        for f in round {
            if sent == events {
                return;
            }
            conn.send_raw(f).await.unwrap();
            sent += 1;
        }
    }
}

/// One round: every phone refreshes its registration and takes a call. `FORMAT=json` uses the
/// JSON captures (for the transport ceiling only: the bridge subscribes plain).
fn round(users: &[String]) -> Vec<String> {
    const CALL: [&str; 6] = [
        "channel_create",
        "presence_in-channel-ringing",
        "channel_answer",
        "presence_in-channel-answered",
        "presence_in-channel-hangup",
        "channel_hangup_complete",
    ];
    let format = std::env::var("FORMAT").unwrap_or_else(|_| "plain".to_owned());
    let captured_call_id = if format == "json" {
        "1-25364@127.0.0.1"
    } else {
        "1-25364%40127.0.0.1"
    };
    let mut round = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let call_id = format!("bench-{i}@127.0.0.1");
        let uuid = format!("11445afe-75ab-431d-ac7e-{i:012}");
        round.push(frame(
            &format!("event-{format}-sofia-register.txt"),
            &[("d-7f3a", user), (captured_call_id, &call_id)],
        ));
        for name in CALL {
            round.push(frame(
                &format!("event-{format}-{name}.txt"),
                &[
                    ("d-7f3a", user),
                    ("11445afe-75ab-431d-ac7e-698cfe6daf65", &uuid),
                ],
            ));
        }
    }
    round
}

#[allow(clippy::too_many_arguments)]
async fn report_ingest(
    app: &TestApp,
    admin: &str,
    domain: &str,
    backend: Backend,
    events: usize,
    phones: usize,
    bytes_per_event: usize,
    written: Duration,
    elapsed: Duration,
) {
    let regs = call(
        app,
        admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/registrations?limit=500"),
        None,
    )
    .await;
    let name = format!("{backend:?}").to_lowercase();
    println!("ingest_{name}_events={events}");
    println!("ingest_{name}_phones={phones}");
    println!("ingest_{name}_bytes_per_event={bytes_per_event}");
    println!("ingest_{name}_write_secs={:.3}", written.as_secs_f64());
    println!("ingest_{name}_secs={:.3}", elapsed.as_secs_f64());
    println!(
        "ingest_{name}_events_per_sec={:.0}",
        events as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ingest_{name}_registrations={}",
        regs["items"].as_array().map(Vec::len).unwrap_or(0)
    );
}

async fn latency(backend: Backend) {
    let logins = env_usize("LOGINS", 200);
    let (app, server, admin) = start(backend).await;
    let Session {
        commands: mut conn,
        events: _events,
    } = accept(&server).await;
    let domain = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": DOMAIN, "sip_domain": DOMAIN, "timezone": "UTC"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/extensions"),
        Some(json!({"number": "201", "display_name": "Alice", "hotdesk_allowed": true})),
    )
    .await;
    let desk = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/devices"),
        Some(json!({"label": "Desk", "mode": "hotdesk"})),
    )
    .await;
    let sip_user = desk["sip_username"].as_str().unwrap().to_owned();
    let session = format!(
        "/api/v1/domains/{domain}/devices/{}/session",
        desk["id"].as_str().unwrap()
    );
    // The flushes of the two creations.
    for _ in 0..2 {
        conn.read_command().await.unwrap();
        conn.reply_api("+OK\n").await.unwrap();
    }
    let flush = format!("api xml_flush_cache id {sip_user} {DOMAIN}\n\n");
    let mut samples = Vec::new();
    let mut responses = Vec::new();
    for i in 0..logins * 2 {
        let login = i % 2 == 0;
        let started = Instant::now();
        let request = {
            let app_client = app.client.clone();
            let url = app.url(&session);
            let token = admin.clone();
            tokio::spawn(async move {
                let r = if login {
                    app_client
                        .put(url)
                        .bearer_auth(token)
                        .json(&json!({"extension": "201"}))
                } else {
                    app_client.delete(url).bearer_auth(token)
                };
                let status = r.send().await.unwrap().status();
                (status, started.elapsed())
            })
        };
        let mut seen_flush = false;
        // A login ends with the phone's re-sync NOTIFY, a (full) logout with its lamp.
        loop {
            let command = conn.read_command().await.unwrap();
            if command == flush && !seen_flush {
                seen_flush = true;
                if login {
                    samples.push(started.elapsed());
                }
            }
            if command.starts_with("sendevent") {
                conn.reply_raw_text("+OK 1").await.unwrap();
                if !login {
                    break;
                }
                continue;
            }
            conn.reply_api("+OK\n").await.unwrap();
            if command.starts_with("sendevent NOTIFY") && command.contains("check-sync") {
                break;
            }
        }
        let (status, answered) = request.await.unwrap();
        assert!(status.is_success());
        assert!(seen_flush);
        if login {
            responses.push(answered);
        }
    }
    samples.sort();
    responses.sort();
    let pct_of = |samples: &[Duration], p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    let pct = |p: f64| pct_of(&samples, p);
    let name = format!("{backend:?}").to_lowercase();
    println!("latency_{name}_logins={}", samples.len());
    println!("latency_{name}_p50_ms={:.2}", pct(0.50));
    println!("latency_{name}_p90_ms={:.2}", pct(0.90));
    println!("latency_{name}_p99_ms={:.2}", pct(0.99));
    println!("latency_{name}_max_ms={:.2}", pct(1.0));
    // The API request alone (its response), for comparison: the flush usually arrives first.
    println!("latency_{name}_http_p50_ms={:.2}", pct_of(&responses, 0.50));
    println!("latency_{name}_http_p99_ms={:.2}", pct_of(&responses, 0.99));
}

/// The same replay into bare readers that only count events: the crate's `EslClient` (what
/// the bridge read events with before) and the bridge's own lean reader (what it reads them
/// with now), i.e. the transport's cost on this machine, the ceiling for ingestion.
async fn transport_ceiling() {
    let events = env_usize("EVENTS", 100_000);
    let phones = env_usize("PHONES", 100);
    let users: Vec<String> = (0..phones).map(|i| format!("d{i:011}")).collect();
    let round = round(&users);
    let server = MockEslServer::bind("127.0.0.1:0", PASSWORD).await.unwrap();

    let (accepted, connected) = tokio::join!(
        server.accept(),
        freeswitch_esl_tokio::EslClient::connect_with_options(
            "127.0.0.1",
            server.port(),
            PASSWORD,
            freeswitch_esl_tokio::EslConnectOptions::new().with_event_queue_size(16 * 1024),
        )
    );
    let mut conn = accepted.unwrap();
    let (_client, mut stream) = connected.unwrap();
    let counter = tokio::spawn(async move {
        let mut n = 0usize;
        while n < events {
            match stream.recv().await {
                Some(Ok(_)) => n += 1,
                Some(Err(e)) => panic!("{e}"),
                None => break,
            }
        }
        n
    });
    let started = Instant::now();
    send_events(&mut conn, &round, events).await;
    let n = counter.await.unwrap();
    report_transport("transport", events, n, started.elapsed());

    let (accepted, connected) = tokio::join!(
        async {
            let mut conn = server.accept().await.unwrap();
            conn.read_command().await.unwrap();
            conn.reply_raw_text("+OK event listener enabled plain")
                .await
                .unwrap();
            conn
        },
        EventStream::connect(
            "127.0.0.1",
            server.port(),
            PASSWORD,
            "ALL",
            Duration::from_secs(5),
            Duration::from_secs(60),
        )
    );
    let mut conn = accepted;
    let mut stream = connected.unwrap();
    let counter = tokio::spawn(async move {
        let mut n = 0usize;
        while n < events {
            match stream.next_event().await {
                Ok(_) => n += 1,
                Err(e) => panic!("{e}"),
            }
        }
        n
    });
    let started = Instant::now();
    send_events(&mut conn, &round, events).await;
    let n = counter.await.unwrap();
    report_transport("lean", events, n, started.elapsed());
}

fn report_transport(name: &str, events: usize, counted: usize, elapsed: Duration) {
    assert_eq!(counted, events);
    println!("{name}_events={events}");
    println!("{name}_secs={:.3}", elapsed.as_secs_f64());
    println!(
        "{name}_events_per_sec={:.0}",
        events as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let which: Vec<String> = std::env::args().skip(1).collect();
    if which == ["transport"] {
        transport_ceiling().await;
        return;
    }
    let backends: Vec<Backend> = if which.is_empty() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        which
            .iter()
            .map(|b| match b.as_str() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other}"),
            })
            .collect()
    };
    if std::env::var("SKIP_INGEST").is_err() && std::env::var("SKIP_TRANSPORT").is_err() {
        transport_ceiling().await;
    }
    for backend in backends {
        if std::env::var("SKIP_INGEST").is_err() {
            ingest(backend).await;
        }
        if std::env::var("SKIP_LATENCY").is_err() {
            latency(backend).await;
        }
    }
}
