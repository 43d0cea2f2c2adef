//! Several switchboard processes on one PostgreSQL (real processes on real ports, the
//! `switchboard` binary): a change made through any node is served by every node's
//! `/freeswitch/xml` and reaches every node's live stream with the same ids; `Last-Event-ID`
//! resumes on any node; the node driving a FreeSWITCH node is killed and another takes it
//! over, sending what the dead one had not and counting registrations once; a node cut off
//! from PostgreSQL catches up when it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use switchboard_tests::cluster::Node;
use switchboard_tests::{Backend, FreshDatabase};
use tokio::net::TcpStream;

use crate::bridge::{NO_GATEWAYS, Switch};
use crate::xmlcurl::fixture;

const SIP: &str = "cluster.example.net";

/// What these tests ask of a node besides the shared helpers.
trait Ask {
    async fn directory(&self, user: &str) -> String;
    async fn until_directory(&self, user: &str, known: bool) -> Duration;
    async fn stream(&self, token: &str, domain: &str, last: Option<u64>) -> Sse;
}

impl Ask for Node {
    /// The directory's answer to a phone registering as `user`.
    async fn directory(&self, user: &str) -> String {
        let body = fixture(
            "directory-sip_auth-register",
            &[
                ("user", user),
                ("sip_auth_username", user),
                ("sip_from_user", user),
                ("sip_to_user", user),
                ("sip_contact_user", user),
                ("domain", SIP),
                ("sip_auth_realm", SIP),
                ("sip_from_host", SIP),
                ("sip_to_host", SIP),
            ],
        );
        self.client
            .post(format!("{}/freeswitch/xml", self.address))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("asking the directory")
            .text()
            .await
            .unwrap_or_default()
    }

    /// Waits until the directory knows `user` (`known`) or not; returns how long it took.
    async fn until_directory(&self, user: &str, known: bool) -> Duration {
        let started = Instant::now();
        loop {
            let doc = self.directory(user).await;
            let found = doc.contains(&format!("id=\"{user}\""));
            if found == known {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "node {}'s directory never {} {user}: {doc}",
                self.name,
                if known { "served" } else { "dropped" }
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Opens the Domain's live stream, resuming after `last` when given.
    async fn stream(&self, token: &str, domain: &str, last: Option<u64>) -> Sse {
        let mut request = self
            .client
            .get(format!("{}/api/v1/domains/{domain}/events", self.address))
            .bearer_auth(token);
        if let Some(id) = last {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("opening the stream");
        assert_eq!(response.status(), 200, "the stream on {}", self.name);
        Sse {
            response,
            buffer: String::new(),
        }
    }
}

/// One frame of a live stream.
#[derive(Debug, Clone)]
struct Frame {
    id: u64,
    event: String,
    data: Value,
}

struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// The next event (comments and heartbeats skipped), within 10 s.
    async fn next(&mut self) -> Frame {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: 0,
                    event: String::new(),
                    data: Value::Null,
                };
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        frame.id = v.parse().unwrap_or(0);
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        frame.event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(v).unwrap_or(Value::Null);
                    }
                }
                if !frame.event.is_empty() {
                    return frame;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("reading the stream")
                .expect("the stream is open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event of `kind`, skipping others.
    async fn next_of(&mut self, kind: &str) -> Frame {
        loop {
            let f = self.next().await;
            if f.event == kind {
                return f;
            }
        }
    }
}

/// The configuration of a node linked to the scripted switch on port `esl`.
fn switch_toml(esl: u16) -> String {
    format!(
        r#"
[[freeswitch.nodes]]
name = "fs1"
host = "127.0.0.1"
port = {esl}
password = "ClueCon-test-0451"
profile = "internal"
"#
    )
}

/// A Domain with an Extension 201 and a fixed phone of it, made through `node`; returns the
/// Domain id, the Extension id, the phone's id and its SIP user.
async fn acme(node: &Node, token: &str) -> (String, String, String, String) {
    let domain = node
        .create(
            token,
            "/api/v1/domains",
            json!({"name": SIP, "sip_domain": SIP, "timezone": "Europe/Berlin"}),
        )
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let (extension, phone, user) = phone(node, token, &domain, "201").await;
    (domain, extension, phone, user)
}

/// An Extension `number` with a fixed phone; returns their ids and the phone's SIP user.
async fn phone(node: &Node, token: &str, domain: &str, number: &str) -> (String, String, String) {
    let extension = node
        .create(
            token,
            &format!("/api/v1/domains/{domain}/extensions"),
            json!({"number": number, "display_name": format!("Ext {number}")}),
        )
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let device = node
        .create(
            token,
            &format!("/api/v1/domains/{domain}/devices"),
            json!({"label": format!("Desk {number}"), "mode": "fixed", "owner_extension_id": extension}),
        )
        .await;
    (
        extension,
        device["id"].as_str().expect("an id").to_owned(),
        device["sip_username"]
            .as_str()
            .expect("a SIP user")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_change_on_any_node_is_served_and_streamed_by_every_node() {
    let db = FreshDatabase::create(Backend::Postgres).await;
    let url = db.url();
    let a = Node::start("a", &url, "").await;
    // Two more at once: they migrate one after the other under the migration lock.
    let (b, c) = tokio::join!(Node::start("b", &url, ""), Node::start("c", &url, ""));
    let token = a.token().await;

    let domain = a
        .create(
            &token,
            "/api/v1/domains",
            json!({"name": SIP, "sip_domain": SIP, "timezone": "Europe/Berlin"}),
        )
        .await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let mut on_a = a.stream(&token, &domain, None).await;
    let mut on_b = b.stream(&token, &domain, None).await;
    let mut on_c = c.stream(&token, &domain, None).await;

    // Made on A: served by B's and C's directory, streamed by every node with one id.
    let (extension, device, user) = phone(&a, &token, &domain, "201").await;
    let to_b = b.until_directory(&user, true).await;
    let to_c = c.until_directory(&user, true).await;
    println!("a phone made on A: served by B after {to_b:?}, by C after {to_c:?}");
    let (ea, eb, ec) = (
        on_a.next_of("device.created").await,
        on_b.next_of("device.created").await,
        on_c.next_of("device.created").await,
    );
    assert_eq!(ea.data["entity_id"], device.as_str());
    assert_eq!((ea.id, ea.data.clone()), (eb.id, eb.data.clone()));
    assert_eq!((ea.id, ea.data.clone()), (ec.id, ec.data.clone()));

    // C's client goes away; two changes through B; it resumes on A and gets exactly them.
    let last_seen = ec.id;
    drop(on_c);
    let (status, _) = b
        .call(
            &token,
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/extensions/{extension}"),
            Some(json!({"display_name": "Renamed on B"})),
        )
        .await;
    assert_eq!(status, 200);
    let (ext2, _, user2) = phone(&b, &token, &domain, "202").await;
    let mut resumed = a.stream(&token, &domain, Some(last_seen)).await;
    let mut got = Vec::new();
    loop {
        let f = resumed.next().await;
        let done = f.event == "device.created";
        got.push((f.id, f.event, f.data["entity_id"].clone()));
        if done {
            break;
        }
    }
    assert_eq!(got.first().map(|g| g.0), Some(last_seen + 1), "{got:?}");
    assert!(
        got.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "no gap: {got:?}"
    );
    assert_eq!(got[0].1, "extension.updated");
    assert!(got.iter().any(|g| g.2 == ext2.as_str()), "{got:?}");
    a.until_directory(&user2, true).await;
    c.until_directory(&user2, true).await;

    // Rights end everywhere: the phone deleted through C is unknown to A and B.
    let (status, _) = c
        .call(
            &token,
            Method::DELETE,
            &format!("/api/v1/domains/{domain}/devices/{device}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    a.until_directory(&user, false).await;
    b.until_directory(&user, false).await;
    let gone = on_b.next_of("device.deleted").await;
    assert_eq!(gone.data["entity_id"], device.as_str());

    // B's metrics count what it applied from the others.
    let metrics = b
        .client
        .get(format!("{}/metrics", b.address))
        .send()
        .await
        .expect("the metrics")
        .text()
        .await
        .unwrap_or_default();
    let remote: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_cluster_remote_changes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cluster metrics: {metrics}"));
    assert!(remote >= 4, "B applied A's and C's changes: {remote}");
    drop((a, b, c));
    drop(db);
}

/// `sofia xmlstatus profile internal reg` holding the phone `user` of [`SIP`] (the
/// registration the captured REGISTER event makes).
fn holding(user: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<profile>\n  <registrations>\n    <registration>\n        <call-id>1-25364@127.0.0.1</call-id>\n        <user>{user}@{SIP}</user>\n        <contact>&quot;&quot; &lt;sip:{user}@127.0.0.1:5072;transport=UDP&gt;</contact>\n        <agent>SIPp-fsrig</agent>\n        <status>Registered(UDP)(unknown) exp(2026-11-23 21:07:44) expsecs(3423)</status>\n        <ping-status>Reachable</ping-status>\n        <ping-time>0.00</ping-time>\n        <host>localhost</host>\n        <network-ip>127.0.0.1</network-ip>\n        <network-port>5072</network-port>\n        <sip-auth-user>{user}</sip-auth-user>\n        <sip-auth-realm>{SIP}</sip-auth-realm>\n        <mwi-account>{user}@{SIP}</mwi-account>\n    </registration>\n  </registrations>\n</profile>\n"
    )
}

#[tokio::test]
async fn the_driver_of_a_freeswitch_node_dies_and_another_takes_over_without_losing_a_command() {
    let db = FreshDatabase::create(Backend::Postgres).await;
    let url = db.url();
    let switch = Switch::start().await;
    let esl = switch.server.port();
    let mut a = Node::start("a", &url, &switch_toml(esl)).await;
    let mut fs = switch.accept().await;
    fs.resync_holding(crate::bridge::NO_REGISTRATIONS, NO_GATEWAYS)
        .await;
    let b = Node::start("b", &url, &switch_toml(esl)).await;
    let token = b.token().await;

    // B stands by and shows A driving the node.
    let nodes = loop {
        let (status, nodes) = b
            .call(&token, Method::GET, "/api/v1/freeswitch/nodes", None)
            .await;
        assert_eq!(status, 200, "{nodes}");
        if nodes["items"][0]["state"] == "connected" {
            break nodes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(nodes["items"][0]["owner"], "a", "{nodes}");
    assert_eq!(nodes["items"][0]["driven_here"], false, "{nodes}");

    // Changes made through B reach the switch through A, once.
    let (domain, _, _, user) = acme(&b, &token).await;
    let mut pushed = Vec::new();
    let flush = format!("xml_flush_cache id {user} {SIP}");
    while !pushed.contains(&flush) {
        pushed.push(fs.api().await);
    }
    // The phone registers: A stores it, every node lists it.
    fs.send_fixture(
        "event-plain-sofia-register.txt",
        &[("d-7f3a", user.as_str()), ("acme.example.net", SIP)],
    )
    .await;
    let registrations = format!("/api/v1/domains/{domain}/registrations");
    let listed = || async {
        let (status, list) = b.call(&token, Method::GET, &registrations, None).await;
        assert_eq!(status, 200, "{list}");
        list["items"].as_array().map(Vec::len).unwrap_or(0)
    };
    let started = Instant::now();
    while listed().await == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B hears the line state from A: its presence shows the phone.
    let presence = format!("/api/v1/domains/{domain}/presence");
    let started = Instant::now();
    loop {
        let (_, p) = b.call(&token, Method::GET, &presence, None).await;
        let available = p["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["number"] == "201" && e["telephone"] == "available");
        if available {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "B never saw the registration in presence: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, other, other_user) = phone(&b, &token, &domain, "202").await;
    let flush = format!("xml_flush_cache id {other_user} {SIP}");
    let mut pushed = Vec::new();
    while !pushed.contains(&flush) {
        pushed.push(fs.api().await);
    }
    let _ = fs.quiet().await;

    // A dies. While nobody drives the switch, B disables the other phone: its registrations
    // must be dropped by whoever drives the switch next.
    a.kill();
    let killed = Instant::now();
    let device = other;
    let (status, body) = b
        .call(
            &token,
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/devices/{device}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let mut fs = switch.accept().await;
    let took = killed.elapsed();
    println!("B took the switch over {took:?} after A was killed");
    let commands = fs.resync_holding(&holding(&user), NO_GATEWAYS).await;
    let drop_reg =
        format!("api sofia profile internal flush_inbound_reg {other_user}@{SIP} reboot");
    assert_eq!(
        commands.iter().filter(|c| **c == drop_reg).count(),
        1,
        "the drop A never sent is sent once: {commands:?}"
    );
    let (status, nodes) = b
        .call(&token, Method::GET, "/api/v1/freeswitch/nodes", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(nodes["items"][0]["owner"], "b", "{nodes}");
    assert_eq!(nodes["items"][0]["driven_here"], true, "{nodes}");

    // The reloaded registration is the same one: still listed once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(listed().await, 1, "the registration is counted once");
    drop((a, b));
    drop(db);
}

/// A TCP proxy to PostgreSQL that can be cut (every connection closed, new ones refused) and
/// restored.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let port = listener.local_addr().expect("its address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (c, g) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let mut ended = g.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = ended.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_node_cut_off_from_postgresql_catches_up_when_it_is_back() {
    let db = FreshDatabase::create(Backend::Postgres).await;
    let url = db.url();
    let parsed = url::Url::parse(&url).expect("a database URL");
    let upstream = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(upstream).await;
    let mut through = parsed.clone();
    let _ = through.set_host(Some("127.0.0.1"));
    let _ = through.set_port(Some(proxy.port));

    let a = Node::start("a", &url, "").await;
    let b = Node::start("b", through.as_str(), "").await;
    let token = a.token().await;
    let (domain, _, _, user) = acme(&a, &token).await;
    b.until_directory(&user, true).await;
    let mut on_a = a.stream(&token, &domain, None).await;

    // B loses PostgreSQL; A goes on: a new phone, the first one deleted.
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, _, user2) = phone(&a, &token, &domain, "202").await;
    let devices = a
        .call(
            &token,
            Method::GET,
            &format!("/api/v1/domains/{domain}/devices?limit=100"),
            None,
        )
        .await
        .1;
    let first = devices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["sip_username"] == user.as_str())
        .and_then(|d| d["id"].as_str())
        .expect("the first phone")
        .to_owned();
    let (status, _) = a
        .call(
            &token,
            Method::DELETE,
            &format!("/api/v1/domains/{domain}/devices/{first}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let deleted = on_a.next_of("device.deleted").await;
    // B still answers from its last view meanwhile (it cannot know better).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Back: B reads what it missed from the change log.
    proxy.restore();
    let caught_up = b.until_directory(&user2, true).await;
    b.until_directory(&user, false).await;
    println!("B caught up {caught_up:?} after PostgreSQL came back");
    // Its live stream resumes from the log too, with the ids A gave.
    let mut resumed = b.stream(&token, &domain, Some(deleted.id - 1)).await;
    let f = resumed.next().await;
    assert_eq!((f.id, f.event.as_str()), (deleted.id, "device.deleted"));
    drop((a, b));
    drop(db);
}
