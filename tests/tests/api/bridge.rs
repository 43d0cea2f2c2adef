//! The ESL bridge against a scripted FreeSWITCH peer speaking the real Event Socket protocol:
//! the subscription, the resync after every (re)connect, the exact commands each change
//! becomes, nothing for a rolled-back change, commands queued during an outage delivered once
//! after reconnect, real captured events feeding registrations and presence, a garbage frame.

use std::time::Duration;

use freeswitch_esl_tokio::mock::{MockConnection, MockEslServer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use switchboard_api::config::NodeConfig;
use switchboard_domain::events::ChangeKind;
use switchboard_tests::{Backend, TestApp, spawn_app_with};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

const PASSWORD: &str = "ClueCon-test-0451";
/// What a resync sends before reading the registrations when there is nothing to mirror: one
/// flush of every cached user, the gateways loaded (`rescan`), the carriers' ACL rebuilt.
const RESYNC_WITHOUT_DATA: [&str; 3] = [
    "api xml_flush_cache",
    "api sofia profile internal rescan",
    "api reloadacl",
];
const SUBSCRIPTION: &str = "event plain HEARTBEAT PRESENCE_IN CHANNEL_CREATE CHANNEL_ANSWER \
CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM sofia::register sofia::unregister sofia::expire sofia::gateway_state \
vm::maintenance\n\n";
const SIP_DOMAIN: &str = "acme.example.net";
/// `sofia xmlstatus profile internal reg` of a profile holding no registration.
pub(crate) const NO_REGISTRATIONS: &str = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n\
<profile>\n  <registrations>\n  </registrations>\n</profile>\n";
/// `sofia xmlstatus gateway` of a switch holding no gateway.
pub(crate) const NO_GATEWAYS: &str =
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<gateways>\n</gateways>\n";
/// The captured FreeSWITCH traffic (see `fixtures/freeswitch/README.md`).
pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/freeswitch");

/// A scripted FreeSWITCH node.
pub(crate) struct Switch {
    pub(crate) server: MockEslServer,
}

impl Switch {
    pub(crate) async fn start() -> Self {
        Self {
            server: MockEslServer::bind("127.0.0.1:0", PASSWORD).await.unwrap(),
        }
    }

    /// The node configuration pointing at this switch.
    pub(crate) fn node(&self) -> NodeConfig {
        NodeConfig {
            name: "fs1".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: self.server.port(),
            password: SecretString::from(PASSWORD),
            profile: "internal".to_owned(),
        }
    }

    /// Accepts the bridge's next session: its command connection, then its event connection
    /// (authenticated by the scripted peer), whose subscription it answers.
    pub(crate) async fn accept(&self) -> Conn {
        loop {
            let Ok(conn) = self.accept_one().await else {
                continue;
            };
            // A connection of an attempt the bridge gave up on fails here: start over.
            let Ok(mut events) = self.accept_one().await else {
                continue;
            };
            let Ok(command) = events.read_command().await else {
                continue;
            };
            assert_eq!(command, SUBSCRIPTION);
            events
                .reply_raw_text("+OK event listener enabled plain")
                .await
                .unwrap();
            return Conn { conn, events };
        }
    }

    async fn accept_one(&self) -> std::io::Result<MockConnection> {
        tokio::time::timeout(Duration::from_secs(30), self.server.accept())
            .await
            .expect("the bridge connects")
    }
}

/// One session of the bridge: its command connection and its event connection.
pub(crate) struct Conn {
    /// Commands (and their replies).
    pub(crate) conn: MockConnection,
    /// Events (subscribed; the bridge sends nothing else there).
    pub(crate) events: MockConnection,
}

impl Conn {
    /// The next command, without its terminating blank line.
    pub(crate) async fn command(&mut self) -> String {
        let command = tokio::time::timeout(Duration::from_secs(30), self.conn.read_command())
            .await
            .expect("the bridge sends a command")
            .unwrap();
        command.trim_end_matches('\n').to_owned()
    }

    /// Reads an `api` command and answers it `+OK`.
    pub(crate) async fn api(&mut self) -> String {
        let command = self.command().await;
        if command.starts_with("sendevent ") {
            self.conn
                .reply_raw_text("+OK 86b09230-e698-4aeb-8e20-fb1e7a146ed3")
                .await
                .unwrap();
            return command;
        }
        let text = command
            .strip_prefix("api ")
            .unwrap_or_else(|| panic!("not an api command: {command}"))
            .to_owned();
        self.conn.reply_api("+OK\n").await.unwrap();
        text
    }

    /// Answers the resync: every command up to `sofia xmlstatus profile internal reg` is
    /// answered `+OK` and returned; the registration list is answered with `registrations`.
    /// The gateways the switch holds (`sofia xmlstatus gateway`) are none.
    pub(crate) async fn resync(&mut self, registrations: &str) -> Vec<String> {
        self.resync_holding(registrations, NO_GATEWAYS).await
    }

    /// [`resync`](Self::resync) on a switch holding `gateways` (`sofia xmlstatus gateway`).
    pub(crate) async fn resync_holding(
        &mut self,
        registrations: &str,
        gateways: &str,
    ) -> Vec<String> {
        let mut commands = Vec::new();
        loop {
            let command = self.command().await;
            if command == "api sofia xmlstatus profile internal reg" {
                self.conn.reply_api(registrations).await.unwrap();
                return commands;
            }
            if command == "api sofia xmlstatus gateway" {
                self.conn.reply_api(gateways).await.unwrap();
                continue;
            }
            if command.starts_with("sendevent ") {
                self.conn.reply_raw_text("+OK 1").await.unwrap();
            } else {
                self.conn.reply_api("+OK\n").await.unwrap();
            }
            commands.push(command);
        }
    }

    /// Sends a captured event frame with `replace` applied to its body.
    pub(crate) async fn send_fixture(&mut self, name: &str, replace: &[(&str, &str)]) {
        let frame = fixture_frame(name, replace);
        self.events.send_raw(&frame).await.unwrap();
    }
}

/// A captured ESL frame with replacements in its body, its Content-Length recomputed.
pub(crate) fn fixture_frame(name: &str, replace: &[(&str, &str)]) -> String {
    let raw = std::fs::read_to_string(format!("{FIXTURES}/esl/{name}")).unwrap();
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

/// A server whose bridge has one node: this switch.
pub(crate) async fn app_with_switch(backend: Backend) -> (TestApp, Switch) {
    app_with_switch_and(backend, |_| {}).await
}

/// [`app_with_switch`] with the configuration tweaked further.
pub(crate) async fn app_with_switch_and(
    backend: Backend,
    tweak: impl FnOnce(&mut switchboard_tests::Config) + Send + 'static,
) -> (TestApp, Switch) {
    let switch = Switch::start().await;
    let node = switch.node();
    let app = spawn_app_with(backend, move |c| {
        c.freeswitch.nodes = vec![node];
        // Any free port: tests run side by side.
        c.freeswitch.outbound_socket = "127.0.0.1:0".to_owned();
        tweak(c);
    })
    .await;
    (app, switch)
}

/// Polls `path` until `done` holds for its JSON (events are applied asynchronously).
pub(crate) async fn eventually(
    app: &TestApp,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, body) = call(app, token, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never got there; last: {last}");
}

fn telephone_of(presence: &Value, number: &str) -> String {
    presence["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == number)
        .map(|p| p["telephone"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

macro_rules! bridge_scenarios {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(switchboard_tests::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(switchboard_tests::Backend::Postgres).await;
                }
            }
        )+
    };
}
#[allow(unused_imports)]
pub(crate) use bridge_scenarios;

bridge_scenarios!(
    real_events_feed_registrations_and_presence,
    each_change_becomes_its_commands_and_waits_out_an_outage,
    rotation_dnd_and_deletion_become_their_commands,
    identity_changes_ask_the_phone_to_re_sync_and_nothing_else_does,
    a_garbage_frame_closes_and_reopens_the_link,
    a_closed_command_connection_reopens_both,
    a_silent_switch_is_declared_dead_and_reconnected,
    an_unanswered_command_is_delivered_again_after_reconnecting,
    every_node_gets_every_command_and_readiness_follows_the_links,
    a_lapsed_registration_is_swept_and_the_phone_goes_offline,
    gateways_removed_while_the_link_was_down_are_killed_at_the_resync,
);

/// The `sendevent PRESENCE_IN` for Extension 201's lamp, as on the wire (the ESL crate
/// capitalises header names; FreeSWITCH reads them case-insensitively).
fn lamp(status: &str, answer_state: &str) -> String {
    format!(
        "sendevent PRESENCE_IN\nEvent-Name: PRESENCE_IN\nProto: sip\nFrom: 201@{SIP_DOMAIN}\n\
Login: 201@{SIP_DOMAIN}\nevent_type: presence\nalt_event_type: dialog\n\
Unique-ID: switchboard-hotdesk-201@{SIP_DOMAIN}\nStatus: {status}\nRpid: unknown\n\
Answer-State: {answer_state}"
    )
}

/// Extension 201 with a fixed phone; returns (domain, admin token, phone's SIP user).
async fn acme_with_a_fixed_phone(app: &TestApp) -> (String, String, String) {
    let (domain, admin) = domain_with_admin(app, SIP_DOMAIN).await;
    let ext = create(
        app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders"}),
    )
    .await;
    let phone = create(
        app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Alice desk", "mode": "fixed", "owner_extension_id": id_of(&ext)}),
    )
    .await;
    let sip_user = phone["sip_username"].as_str().unwrap().to_owned();
    (domain, admin, sip_user)
}

/// A phone that vanishes without unregistering: its registration lapses, the sweep removes
/// the row, and presence shows the phone offline (no event from FreeSWITCH says so).
async fn a_lapsed_registration_is_swept_and_the_phone_goes_offline(backend: Backend) {
    let (app, switch) =
        app_with_switch_and(backend, |c| c.freeswitch.link.sweep_interval_secs = 1).await;
    let mut fs = switch.accept().await;
    assert_eq!(fs.resync(NO_REGISTRATIONS).await, RESYNC_WITHOUT_DATA);
    let (domain, admin, phone) = acme_with_a_fixed_phone(&app).await;
    let mirrored = format!("hash insert/switchboard/ext:201@{SIP_DOMAIN}/{phone}");
    let mut pushed = Vec::new();
    while !pushed.contains(&mirrored) {
        pushed.push(fs.api().await);
    }
    let stored = || async {
        use sea_orm::{ConnectionTrait as _, Statement};
        app.db
            .query_one_raw(Statement::from_string(
                app.db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM registrations",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<i64>("", "n")
            .unwrap()
    };

    fs.send_fixture(
        "event-plain-sofia-register.txt",
        &[("d-7f3a", phone.as_str()), ("expires: 3600", "expires: 2")],
    )
    .await;
    let presence = format!("/api/v1/domains/{domain}/presence");
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "available"
    })
    .await;
    assert_eq!(stored().await, 1);

    // Two seconds later the row lapses; the next sweep (every second here) removes it and
    // tells presence.
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "offline"
    })
    .await;
    assert_eq!(stored().await, 0, "the sweep deleted the row");
    let registrations = format!("/api/v1/domains/{domain}/registrations");
    let list = call(&app, &admin, Method::GET, &registrations, None).await;
    assert_eq!(list.1["items"], json!([]), "{}", list.1);
}

async fn real_events_feed_registrations_and_presence(backend: Backend) {
    let (app, switch) = app_with_switch(backend).await;
    let mut fs = switch.accept().await;
    assert_eq!(fs.resync(NO_REGISTRATIONS).await, RESYNC_WITHOUT_DATA);
    let (domain, admin, phone) = acme_with_a_fixed_phone(&app).await;
    // What the new Extension and phone cause (exact sequences: the next scenario).
    // The last command of the new phone: who rings for 201.
    let mirrored = format!("hash insert/switchboard/ext:201@{SIP_DOMAIN}/{phone}");
    let mut pushed = Vec::new();
    while !pushed.contains(&mirrored) {
        pushed.push(fs.api().await);
    }

    let as_phone = [("d-7f3a", phone.as_str())];
    // What the live event stream (SSE) is fed from.
    let mut bus = app.events.subscribe();
    // A second tenant's phone that is none of ours, and a user the Domain does not know.
    fs.send_fixture("event-plain-sofia-register-globex.txt", &[])
        .await;
    fs.send_fixture("event-plain-sofia-register.txt", &[("d-7f3a", "d-0000")])
        .await;
    fs.send_fixture("event-plain-sofia-register.txt", &as_phone)
        .await;

    let registrations = format!("/api/v1/domains/{domain}/registrations");
    let list = eventually(&app, &admin, &registrations, |l| {
        l["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let r = &items[0];
    assert_eq!(r["sip_user"], phone.to_ascii_lowercase());
    assert_eq!(r["node"], "fs1");
    assert_eq!(r["profile"], "internal");
    assert_eq!(r["call_id"], "1-25364@127.0.0.1");
    assert_eq!(
        r["contact"],
        format!("\"\" <sip:{phone}@127.0.0.1:5072;transport=UDP>")
    );
    assert_eq!(r["network_ip"], "127.0.0.1");
    assert_eq!(r["network_port"], 5072);
    assert_eq!(r["user_agent"], "SIPp-fsrig");
    assert!(list["next_cursor"].is_null());

    let presence = format!("/api/v1/domains/{domain}/presence");
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "available"
    })
    .await;

    let changed = crate::devices::next_event(&mut bus).await;
    assert_eq!(changed.kind, ChangeKind::PresenceChanged);
    assert_eq!(changed.sip_domain, SIP_DOMAIN);
    assert!(
        changed.sip_users.is_empty(),
        "nothing for FreeSWITCH to re-read"
    );

    // The outbound leg of `originate user/201@acme.example.net`, as captured.
    fs.send_fixture("event-plain-channel_create.txt", &as_phone)
        .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "ringing"
    })
    .await;
    fs.send_fixture("event-plain-presence_in-channel-ringing.txt", &as_phone)
        .await;
    fs.send_fixture("event-plain-channel_answer.txt", &as_phone)
        .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "in_call"
    })
    .await;
    // The trailing presence notice of the answered call does not set it back to ringing.
    fs.send_fixture("event-plain-presence_in-channel-answered.txt", &as_phone)
        .await;
    fs.send_fixture("event-plain-channel_hangup_complete.txt", &as_phone)
        .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "available"
    })
    .await;

    // `flush_inbound_reg` fires sofia::expire: no from-user, the absolute-epoch expires.
    fs.send_fixture(
        "event-plain-sofia-expire-flush_inbound_reg.txt",
        &[("d-7f3a", phone.as_str()), ("1-26409", "1-25364")],
    )
    .await;
    eventually(&app, &admin, &registrations, |l| {
        l["items"].as_array().is_some_and(|i| i.is_empty())
    })
    .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "offline"
    })
    .await;

    // A registration that lapses without an event (the phone vanished) stops being listed.
    fs.send_fixture(
        "event-plain-sofia-register.txt",
        &[("d-7f3a", phone.as_str()), ("expires: 3600", "expires: 1")],
    )
    .await;
    eventually(&app, &admin, &registrations, |l| {
        l["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    eventually(&app, &admin, &registrations, |l| {
        l["items"].as_array().is_some_and(|i| i.is_empty())
    })
    .await;

    // A softphone whose Contact user is not its SIP user: FreeSWITCH names the call's channel
    // after the contact, and the registered contact still leads to the phone.
    fs.send_fixture(
        "event-plain-sofia-register.txt",
        &[
            ("%3Csip%3Ad-7f3a%40", "%3Csip%3Azz9random%40"),
            ("d-7f3a", phone.as_str()),
        ],
    )
    .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "available"
    })
    .await;
    let as_contact = [("d-7f3a", "zz9random")];
    fs.send_fixture("event-plain-channel_create.txt", &as_contact)
        .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "ringing"
    })
    .await;
    fs.send_fixture("event-plain-channel_hangup_complete.txt", &as_contact)
        .await;
    eventually(&app, &admin, &presence, |p| {
        telephone_of(p, "201") == "available"
    })
    .await;

    // An agent may not see registrations (no `registrations.read`).
    create_user(&app, &admin, &domain, "agent@acme.example.net", &["agent"]).await;
    let agent = token_of(&app, "agent@acme.example.net").await;
    let (status, _) = call(&app, &agent, Method::GET, &registrations, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{registrations}?limit=0"),
        None,
    )
    .await;
    assert_eq!(status, 422);

    // Another Domain's administrator sees none of it.
    let (other, _) = domain_with_admin(&app, "globex.example.net").await;
    create_user(
        &app,
        &admin,
        &other,
        "admin@globex.example.net",
        &["domain_admin"],
    )
    .await;
    let other_admin = token_of(&app, "admin@globex.example.net").await;
    let (status, _) = call(
        &app,
        &other_admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/registrations"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, mine) = call(
        &app,
        &other_admin,
        Method::GET,
        &format!("/api/v1/domains/{other}/registrations"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{mine}");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            "switchboard_freeswitch_events_received_total{event=\"sofia::register\",node=\"fs1\"} 5"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("switchboard_freeswitch_events_ignored_total{reason=\"unknown_domain\"} 1")
    );
    assert!(
        metrics.contains("switchboard_freeswitch_events_ignored_total{reason=\"unknown_user\"} 1")
    );
    assert!(metrics.contains("switchboard_freeswitch_connected{node=\"fs1\"} 1"));
}

async fn each_change_becomes_its_commands_and_waits_out_an_outage(backend: Backend) {
    let (app, switch) = app_with_switch(backend).await;
    let mut fs = switch.accept().await;
    assert_eq!(fs.resync(NO_REGISTRATIONS).await, RESYNC_WITHOUT_DATA);
    let (domain, admin) = domain_with_admin(&app, SIP_DOMAIN).await;
    let ext = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders"}),
    )
    .await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk 4", "mode": "hotdesk", "logged_out_mode": "full"}),
    )
    .await;
    let desk_id = id_of(&desk);
    let h = desk["sip_username"].as_str().unwrap().to_owned();
    // A new Extension and a new phone: their directory entries; nothing rings for them yet.
    assert_eq!(
        fs.api().await,
        format!("xml_flush_cache id 201 {SIP_DOMAIN}")
    );
    assert_eq!(
        fs.api().await,
        format!("xml_flush_cache id {h} {SIP_DOMAIN}")
    );

    // A hot-desk login.
    let session = format!("/api/v1/domains/{domain}/devices/{desk_id}/session");
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &session,
        Some(json!({"extension": "201"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(fs.api().await);
    }
    assert_eq!(
        got,
        [
            format!("xml_flush_cache id {h} {SIP_DOMAIN}"),
            format!("xml_flush_cache id 201 {SIP_DOMAIN}"),
            format!("hash insert/switchboard/dev:{h}@{SIP_DOMAIN}/201"),
            format!("hash insert/switchboard/ext:201@{SIP_DOMAIN}/{h}"),
            lamp(&format!("Logged in (hot-desk {h})"), "confirmed"),
            // The phone now shows 201: it re-reads its configuration, last.
            check_sync_of(&h),
        ]
    );

    // A refused change (a second Extension 201) commits nothing and sends nothing: the next
    // command on the wire belongs to the next change.
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/extensions"),
        Some(json!({"number": "201", "display_name": "Twin"})),
    )
    .await;
    assert_eq!(status, 409);
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "202", "display_name": "Bob Brandt"}),
    )
    .await;
    assert_eq!(
        fs.api().await,
        format!("xml_flush_cache id 202 {SIP_DOMAIN}")
    );

    // The link goes down; a logout happens meanwhile (full mode: the phone's registration
    // must go), and an Extension changes twice (coalesced into one flush).
    drop(fs);
    let (status, _) = call(&app, &admin, Method::DELETE, &session, None).await;
    assert_eq!(status, 204);
    let ext_path = format!("/api/v1/domains/{domain}/extensions/{}", id_of(&ext));
    for name in ["Alice A.", "Alice Anders"] {
        let (status, body) = call(
            &app,
            &admin,
            Method::PATCH,
            &ext_path,
            Some(json!({"display_name": name})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    let mut fs = switch.accept().await;
    let mut queued = Vec::new();
    for _ in 0..6 {
        queued.push(fs.api().await);
    }
    assert_eq!(
        queued,
        [
            format!("xml_flush_cache id 201 {SIP_DOMAIN}"),
            format!("xml_flush_cache id {h} {SIP_DOMAIN}"),
            format!("hash delete/switchboard/dev:{h}@{SIP_DOMAIN}"),
            format!("hash delete/switchboard/ext:201@{SIP_DOMAIN}"),
            format!("sofia profile internal flush_inbound_reg {h}@{SIP_DOMAIN} reboot"),
            lamp("Logged out", "terminated"),
        ],
        "each queued command once, flushes first"
    );
    let resync = fs.resync(NO_REGISTRATIONS).await;
    assert_eq!(
        resync, RESYNC_WITHOUT_DATA,
        "one flush clears every cached user"
    );

    let nodes = eventually(&app, &admin, "/api/v1/freeswitch/nodes", |n| {
        n["items"][0]["state"] == "connected"
    })
    .await;
    assert_eq!(nodes["items"][0]["name"], "fs1");
    assert_eq!(nodes["items"][0]["reconnects"], 1);
    assert_eq!(nodes["items"][0]["queued_commands"], 0);
    assert!(!nodes.to_string().contains(PASSWORD));
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["freeswitch"]["status"], "up", "{ready}");

    // A Domain administrator is not a platform operator.
    create_user(
        &app,
        &admin,
        &domain,
        "admin@acme.example.net",
        &["domain_admin"],
    )
    .await;
    let (status, _) = call(
        &app,
        &token_of(&app, "admin@acme.example.net").await,
        Method::GET,
        "/api/v1/freeswitch/nodes",
        None,
    )
    .await;
    assert_eq!(status, 403);
}

async fn a_garbage_frame_closes_and_reopens_the_link(backend: Backend) {
    let (app, switch) = app_with_switch(backend).await;
    let admin = app.admin_token().await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    fs.events
        .send_raw("this is not an event socket frame\n\n")
        .await
        .unwrap();
    // The command connection of that session is closed too.
    let closed = tokio::time::timeout(Duration::from_secs(30), fs.conn.read_command())
        .await
        .expect("the command connection closes");
    assert!(closed.is_err(), "{closed:?}");
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let nodes = eventually(&app, &admin, "/api/v1/freeswitch/nodes", |n| {
        n["items"][0]["state"] == "connected"
    })
    .await;
    assert_eq!(nodes["items"][0]["reconnects"], 1);
    assert!(
        nodes["items"][0]["last_disconnect_reason"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{nodes}"
    );
    assert!(
        nodes["items"][0]["last_error"].is_null(),
        "a connected link shows no error: {nodes}"
    );
    assert!(
        nodes["items"][0]["last_disconnect_at"].is_string(),
        "{nodes}"
    );
    // Still serving: the heartbeat the switch sends next is counted.
    fs.events.send_heartbeat().await.unwrap();
    let metrics_have_it = || async {
        app.get("/metrics").await.text().await.unwrap().contains(
            "switchboard_freeswitch_events_received_total{event=\"HEARTBEAT\",node=\"fs1\"} 1",
        )
    };
    for _ in 0..300 {
        if metrics_have_it().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the heartbeat after the reconnect was not counted");
}

async fn gateways_removed_while_the_link_was_down_are_killed_at_the_resync(backend: Backend) {
    let (app, switch) = app_with_switch_and(backend, |c| {
        c.freeswitch.link.reconnect_initial_ms = 50;
    })
    .await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let (domain, admin) = domain_with_admin(&app, SIP_DOMAIN).await;
    let kept = create(
        &app,
        &admin,
        &domain,
        "gateways",
        json!({"name": "kept", "proxy": "127.0.0.2:5080"}),
    )
    .await;
    assert_eq!(fs.api().await, "sofia profile internal rescan");
    assert_eq!(fs.api().await, "reloadacl");
    let kept = kept["freeswitch_name"].as_str().unwrap().to_owned();

    // The link drops; meanwhile a gateway this node was never told about went away (deleted
    // by another node, or before a restart). The switch still holds it, and the operator's own.
    let Conn { conn, events } = fs;
    drop(conn);
    drop(events);
    let stale = "sb_0192f0c8a7e34c1d9e2b7a1c3d4e5f60";
    let holding = format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<gateways>\n\
         <gateway>\n<name>{kept}</name>\n<profile>internal</profile>\n</gateway>\n\
         <gateway>\n<name>{stale}</name>\n<profile>internal</profile>\n</gateway>\n\
         <gateway>\n<name>operators-own</name>\n<profile>internal</profile>\n</gateway>\n\
         </gateways>\n"
    );
    let mut fs = switch.accept().await;
    let commands = fs.resync_holding(NO_REGISTRATIONS, &holding).await;
    let killed: Vec<&String> = commands.iter().filter(|c| c.contains("killgw")).collect();
    assert_eq!(
        killed,
        [&format!("api sofia profile internal killgw {stale}")],
        "only the stale gateway of ours goes: {commands:#?}"
    );
    let at = |what: &str| commands.iter().position(|c| c == what);
    assert!(
        at(&format!("api sofia profile internal killgw {stale}"))
            < at("api sofia profile internal rescan"),
        "killed before the rescan: {commands:#?}"
    );
}

async fn a_closed_command_connection_reopens_both(backend: Backend) {
    let (app, switch) = app_with_switch_and(backend, |c| {
        c.freeswitch.link.reconnect_initial_ms = 50;
    })
    .await;
    let admin = app.admin_token().await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let Conn { conn, mut events } = fs;
    // FreeSWITCH drops the command connection alone: the events must not go on without it.
    drop(conn);
    let closed = tokio::time::timeout(Duration::from_secs(30), events.read_command())
        .await
        .expect("the event connection closes");
    assert!(closed.is_err(), "{closed:?}");
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let nodes = eventually(&app, &admin, "/api/v1/freeswitch/nodes", |n| {
        n["items"][0]["state"] == "connected"
    })
    .await;
    assert_eq!(nodes["items"][0]["reconnects"], 1, "{nodes}");
    assert!(
        nodes["items"][0]["last_disconnect_reason"]
            .as_str()
            .is_some_and(|e| e.contains("command connection")),
        "{nodes}"
    );
    assert!(
        nodes["items"][0]["last_error"].is_null(),
        "a connected link shows no error: {nodes}"
    );
    assert!(
        nodes["items"][0]["last_disconnect_at"].is_string(),
        "{nodes}"
    );
}

async fn rotation_dnd_and_deletion_become_their_commands(backend: Backend) {
    let (app, switch) = app_with_switch(backend).await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let (domain, admin, phone) = acme_with_a_fixed_phone(&app).await;
    // The last command of the new phone: who rings for 201.
    let mirrored = format!("hash insert/switchboard/ext:201@{SIP_DOMAIN}/{phone}");
    let mut pushed = Vec::new();
    while !pushed.contains(&mirrored) {
        pushed.push(fs.api().await);
    }
    let (_, devices) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/devices"),
        None,
    )
    .await;
    let device = devices["items"][0]["id"].as_str().unwrap().to_owned();

    // New credentials: the cached entry goes, then the registration (nothing rings differently).
    let (status, body) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/devices/{device}/rotate-secret"),
        None,
    )
    .await;
    assert!((200..300).contains(&status), "{status} {body}");
    assert_eq!(
        [fs.api().await, fs.api().await],
        [
            format!("xml_flush_cache id {phone} {SIP_DOMAIN}"),
            format!("sofia profile internal flush_inbound_reg {phone}@{SIP_DOMAIN} reboot"),
        ]
    );

    // Do-Not-Disturb: the Extension's entry and its lamp.
    let (_, extensions) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/extensions"),
        None,
    )
    .await;
    let ext = extensions["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{ext}"),
        Some(json!({"dnd": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut got = Vec::new();
    loop {
        let command = fs.api().await;
        let last = command.starts_with("sendevent");
        got.push(command);
        if last {
            break;
        }
    }
    assert_eq!(
        got.first(),
        Some(&format!("xml_flush_cache id 201 {SIP_DOMAIN}"))
    );
    assert_eq!(
        got.last(),
        Some(&lamp("Do not disturb", "confirmed").replace("Rpid: unknown", "Rpid: dnd")),
        "{got:?}"
    );

    // The phone deleted: its entry, its mirror, its registration.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/devices/{device}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let mut got = Vec::new();
    while !got.iter().any(|c: &String| c.contains("flush_inbound_reg")) {
        got.push(fs.api().await);
    }
    // The phone's and its owner's entries first, then the mirror, then the registration.
    assert_eq!(
        got[..2].iter().collect::<std::collections::BTreeSet<_>>(),
        [
            &format!("xml_flush_cache id 201 {SIP_DOMAIN}"),
            &format!("xml_flush_cache id {phone} {SIP_DOMAIN}"),
        ]
        .into_iter()
        .collect(),
        "{got:?}"
    );
    assert!(
        got.contains(&format!("hash delete/switchboard/dev:{phone}@{SIP_DOMAIN}")),
        "{got:?}"
    );
    assert!(
        got.contains(&format!("hash delete/switchboard/ext:201@{SIP_DOMAIN}")),
        "{got:?}"
    );
    assert_eq!(
        got.last(),
        Some(&format!(
            "sofia profile internal flush_inbound_reg {phone}@{SIP_DOMAIN} reboot"
        ))
    );
}

impl Conn {
    /// Answers commands until one satisfies `last`; returns them all.
    async fn until(&mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let command = self.api().await;
            let done = last(&command);
            got.push(command);
            if done {
                return got;
            }
        }
    }

    /// Answers the commands that still arrive until the bridge has been quiet for a while.
    pub(crate) async fn quiet(&mut self) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok(command) =
            tokio::time::timeout(Duration::from_millis(500), self.conn.read_command()).await
        {
            let command = command.unwrap().trim_end_matches('\n').to_owned();
            if command.starts_with("sendevent ") {
                self.conn.reply_raw_text("+OK 1").await.unwrap();
            } else {
                self.conn.reply_api("+OK\n").await.unwrap();
            }
            got.push(command.strip_prefix("api ").unwrap_or(&command).to_owned());
        }
        got
    }
}

/// Whether a command is a re-sync NOTIFY.
fn is_check_sync(command: &str) -> bool {
    command.starts_with("sendevent NOTIFY") && command.contains("check-sync")
}

fn check_sync_of(sip_user: &str) -> String {
    format!(
        "sendevent NOTIFY\nEvent-Name: NOTIFY\nProfile: internal\nEvent-String: check-sync;reboot=false\n\
User: {sip_user}\nHost: {SIP_DOMAIN}\nContent-Type: application/simple-message-summary"
    )
}

async fn identity_changes_ask_the_phone_to_re_sync_and_nothing_else_does(backend: Backend) {
    let (app, switch) = app_with_switch(backend).await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let (domain, admin) = domain_with_admin(&app, SIP_DOMAIN).await;
    let alice = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders"}),
    )
    .await;
    let lobby = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "299", "display_name": "Lobby", "placeholder": true,
            "hotdesk_allowed": false}),
    )
    .await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk 5", "mode": "hotdesk", "logged_out_mode": "placeholder",
            "placeholder_extension_id": id_of(&lobby)}),
    )
    .await;
    let h = desk["sip_username"].as_str().unwrap().to_owned();
    let desk_path = format!("/api/v1/domains/{domain}/devices/{}", id_of(&desk));
    // A new phone has no registration to re-sync.
    assert!(!fs.quiet().await.iter().any(|c| is_check_sync(c)));

    // Login: the phone shows 201 now; re-synced once, after everything else.
    let session = format!("{desk_path}/session");
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &session,
        Some(json!({"extension": "201"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = fs.until(is_check_sync).await;
    assert_eq!(got.last(), Some(&check_sync_of(&h)), "{got:?}");
    assert!(fs.quiet().await.is_empty());

    // Logout to the placeholder: the registration stays, the identity changes.
    let (status, _) = call(&app, &admin, Method::DELETE, &session, None).await;
    assert_eq!(status, 204);
    let got = fs.until(is_check_sync).await;
    assert!(
        got.contains(&format!("xml_flush_cache id {h} {SIP_DOMAIN}")),
        "{got:?}"
    );
    assert_eq!(got.last(), Some(&check_sync_of(&h)), "{got:?}");
    assert!(
        !got.iter().any(|c| c.contains("flush_inbound_reg")),
        "{got:?}"
    );
    assert!(fs.quiet().await.is_empty());

    // The placeholder renamed: the phone shows its new name.
    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{}", id_of(&lobby)),
        Some(json!({"display_name": "Front desk"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = fs.until(is_check_sync).await;
    assert_eq!(got.last(), Some(&check_sync_of(&h)), "{got:?}");
    assert!(fs.quiet().await.is_empty());

    // A new label.
    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &desk_path,
        Some(json!({"label": "Desk 5 (window)"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fs.until(is_check_sync).await,
        [
            format!("xml_flush_cache id {h} {SIP_DOMAIN}"),
            check_sync_of(&h)
        ]
    );
    assert!(fs.quiet().await.is_empty());

    // Settings that are not the phone's identity: no re-sync (it may restart a phone).
    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{}", id_of(&lobby)),
        Some(json!({"dnd": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = fs.quiet().await;
    assert!(!got.is_empty());
    assert!(!got.iter().any(|c| is_check_sync(c)), "{got:?}");

    // Disabled: its registration goes, and it is not asked to re-sync first.
    let (status, body) = call(
        &app,
        &admin,
        Method::PATCH,
        &desk_path,
        Some(json!({"enabled": false, "label": "Desk 5 (broken)"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got = fs.until(|c| c.contains("flush_inbound_reg")).await;
    assert!(!got.iter().any(|c| is_check_sync(c)), "{got:?}");
    assert!(
        !fs.quiet().await.iter().any(|c| is_check_sync(c)),
        "no re-sync for a dropped registration"
    );
    drop(alice);
}

async fn a_silent_switch_is_declared_dead_and_reconnected(backend: Backend) {
    let (app, switch) = app_with_switch_and(backend, |c| {
        c.freeswitch.link.heartbeat_timeout_secs = 1;
        c.freeswitch.link.reconnect_initial_ms = 50;
    })
    .await;
    let admin = app.admin_token().await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    // No heartbeat, nothing at all: the bridge gives up on this connection and comes back.
    let mut again = switch.accept().await;
    again.resync(NO_REGISTRATIONS).await;
    let nodes = eventually(&app, &admin, "/api/v1/freeswitch/nodes", |n| {
        n["items"][0]["state"] == "connected"
    })
    .await;
    assert!(
        nodes["items"][0]["reconnects"].as_u64().unwrap() >= 1,
        "{nodes}"
    );
    assert!(
        nodes["items"][0]["last_disconnect_reason"]
            .as_str()
            .is_some_and(|e| e.contains("liveness")),
        "{nodes}"
    );
    assert!(
        nodes["items"][0]["last_error"].is_null(),
        "a connected link shows no error: {nodes}"
    );
    assert!(
        nodes["items"][0]["last_disconnect_at"].is_string(),
        "{nodes}"
    );
    drop(fs);
}

async fn an_unanswered_command_is_delivered_again_after_reconnecting(backend: Backend) {
    let (app, switch) = app_with_switch_and(backend, |c| {
        c.freeswitch.link.command_timeout_ms = 300;
        c.freeswitch.link.reconnect_initial_ms = 50;
    })
    .await;
    let mut fs = switch.accept().await;
    fs.resync(NO_REGISTRATIONS).await;
    let (domain, admin) = domain_with_admin(&app, SIP_DOMAIN).await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders"}),
    )
    .await;
    // The switch reads the flush and never answers: the link is dead.
    assert_eq!(
        fs.command().await,
        format!("api xml_flush_cache id 201 {SIP_DOMAIN}")
    );
    let mut fs = switch.accept().await;
    // Delivered again first, then the resync (whose one flush clears every cached user).
    assert_eq!(
        fs.api().await,
        format!("xml_flush_cache id 201 {SIP_DOMAIN}")
    );
    let resync = fs.resync(NO_REGISTRATIONS).await;
    assert_eq!(resync, RESYNC_WITHOUT_DATA);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("switchboard_freeswitch_commands_failed_total{node=\"fs1\"} 1"),
        "{metrics}"
    );
}

async fn every_node_gets_every_command_and_readiness_follows_the_links(backend: Backend) {
    let one = Switch::start().await;
    let two = Switch::start().await;
    let mut second = two.node();
    second.name = "fs2".to_owned();
    let nodes = vec![one.node(), second];
    let app = spawn_app_with(backend, move |c| {
        c.freeswitch.nodes = nodes;
        c.freeswitch.outbound_socket = "127.0.0.1:0".to_owned();
    })
    .await;
    let admin = app.admin_token().await;
    let mut fs1 = one.accept().await;
    fs1.resync(NO_REGISTRATIONS).await;
    // fs2 has not answered yet: one link of two is up.
    let ready = eventually_ready(&app, |r| r["freeswitch"]["status"] == "degraded").await;
    assert!(
        ready["freeswitch"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("fs2")),
        "{ready}"
    );
    let mut fs2 = two.accept().await;
    fs2.resync(NO_REGISTRATIONS).await;
    eventually_ready(&app, |r| r["freeswitch"]["status"] == "up").await;

    let (domain, _) = domain_with_admin(&app, SIP_DOMAIN).await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders"}),
    )
    .await;
    let flush = format!("xml_flush_cache id 201 {SIP_DOMAIN}");
    assert_eq!(fs1.api().await, flush);
    assert_eq!(fs2.api().await, flush);

    // Both links down: not ready (no change could reach FreeSWITCH).
    drop(fs1);
    drop(fs2);
    let ready = eventually_ready(&app, |r| r["freeswitch"]["status"] == "down").await;
    assert_eq!(ready["status"], "not_ready", "{ready}");
}

/// Polls `/health/ready` (200 or 503) until `done` holds for its body.
async fn eventually_ready(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let response = app.get("/health/ready").await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status == 200, body["status"] == "ready", "{status} {body}");
        if done(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("/health/ready never got there; last: {last}");
}
