//! The feature codes `*11`/`*12`/`*13` over the outbound socket: the test plays FreeSWITCH
//! with the captured outbound run (`fixtures/freeswitch/outbound/play_and_get_digits-dtmf-201`),
//! digits arriving in `CHANNEL_EXECUTE_COMPLETE` as they do from `play_and_get_digits`.

use std::collections::HashMap;
use std::time::Duration;

use freeswitch_esl_tokio::mock::MockConnection;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{Backend, TestApp, spawn_app_with};
use tokio::net::TcpStream;

use crate::bridge::{FIXTURES, Switch, bridge_scenarios};
use crate::devices::{create, domain_with_admin, id_of};
use crate::users::call;

const PIN: &str = "4711";
const RUN: &str = "outbound/play_and_get_digits-dtmf-201/frames";
const ENTER_EXTENSION: &str = "ivr/ivr-please_enter_extension_followed_by_pound.wav";
const ENTER_PIN: &str = "ivr/ivr-please_enter_pin_followed_by_pound.wav";
/// What the scripted FreeSWITCH answers for `global_getvar switchboard_prompts`.
const PROMPT_FOLDER: &str = "/usr/share/freeswitch/sounds/switchboard";

bridge_scenarios!(
    star11_prompts_checks_the_pin_and_logs_in_as_the_api_would,
    star11_locks_out_after_wrong_pins_and_three_tries_end_the_call,
    a_caller_hanging_up_mid_flow_ends_it_cleanly,
    star12_and_star13_log_out_and_toggle,
    only_freeswitch_may_hand_calls_over,
    a_burst_of_star11_calls_is_evaluated_at_most_up_to_the_limit,
    missing_prompts_are_replaced_by_tones_and_never_stop_a_login,
);

struct Channel {
    conn: MockConnection,
    sip_user: String,
    /// Whether this FreeSWITCH has the prompts (`file_exists` answers).
    prompts: bool,
    /// The `api` lookups made on the call's socket.
    asked: Vec<String>,
}

struct Fixture {
    app: TestApp,
    _switch: Switch,
    outbound: String,
    domain: String,
    admin: String,
    device: String,
    sip_user: String,
}

async fn fixture(backend: Backend) -> Fixture {
    fixture_with(backend, |_| {}).await
}

async fn fixture_with(
    backend: Backend,
    tweak: impl FnOnce(&mut switchboard_tests::Config) + Send + 'static,
) -> Fixture {
    let switch = Switch::start().await;
    let node = switch.node();
    // A free port for the outbound socket (the server binds it at start).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let outbound = format!("127.0.0.1:{port}");
    let address = outbound.clone();
    let app = spawn_app_with(backend, move |c| {
        c.freeswitch.nodes = vec![node];
        c.freeswitch.outbound_socket = address;
        tweak(c);
    })
    .await;
    let (domain, admin) = domain_with_admin(&app, "acme.example.net").await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice Anders", "pin": PIN, "hotdesk_allowed": true}),
    )
    .await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk 4", "mode": "hotdesk"}),
    )
    .await;
    Fixture {
        app,
        _switch: switch,
        outbound,
        device: id_of(&desk),
        sip_user: desk["sip_username"].as_str().unwrap().to_owned(),
        domain,
        admin,
    }
}

/// FreeSWITCH's side of one call handed to the outbound socket.
/// An application the server asked FreeSWITCH to run.
#[derive(Debug)]
struct App {
    name: String,
    arg: String,
    uuid: String,
}

fn frame(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{RUN}/{name}")).unwrap()
}

/// A plain event frame with `Content-Length` recomputed after replacing lines of its body.
fn event(name: &str, replace: &[(&str, String)], sip_user: &str) -> String {
    let raw = frame(name);
    let (_, body) = raw.split_once("\n\n").unwrap();
    let mut body = body.replace("d-7f3a", sip_user);
    for (from, to) in replace {
        body = body.replace(from, to);
    }
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
}

impl Channel {
    /// Dials a feature code: connects, answers `connect` with the captured channel data plus
    /// the variables our dialplan and directory set, then `myevents` and `linger`.
    async fn dial(f: &Fixture, feature: &str, typed: &str) -> Self {
        let stream = TcpStream::connect(&f.outbound).await.unwrap();
        let mut conn = MockConnection::from_stream(stream);
        assert_eq!(read(&mut conn).await, "connect\n\n");
        let data =
            frame("02-fs-to-app-command_reply-CHANNEL_DATA.frame").replace("d-7f3a", &f.sip_user);
        let vars = format!(
            "variable_switchboard_feature: {feature}\nvariable_switchboard_feature_extension: {typed}\n\
variable_switchboard_domain_id: {}\nvariable_switchboard_domain: acme.example.net\n\
variable_switchboard_device_id: {}\nContent-Type: command/reply\n",
            f.domain, f.device
        );
        let data = data.replacen("Content-Type: command/reply\n", &vars, 1);
        conn.send_raw(&data).await.unwrap();
        assert_eq!(read(&mut conn).await, "myevents plain\n\n");
        conn.reply_raw_text("+OK Events Enabled").await.unwrap();
        assert_eq!(read(&mut conn).await, "linger\n\n");
        conn.reply_raw_text("+OK will linger").await.unwrap();
        Self {
            conn,
            sip_user: f.sip_user.clone(),
            prompts: true,
            asked: Vec::new(),
        }
    }

    /// Where `prompt` is played from: the prompt folder, or its tone when this FreeSWITCH
    /// has no prompts.
    fn resolve(&self, prompt: &str) -> String {
        if self.prompts {
            format!("{PROMPT_FOLDER}/{prompt}")
        } else {
            switchboard_esl_bridge::outbound::prompts::fallback(prompt).to_owned()
        }
    }

    /// The next command that is not an `api` lookup; lookups (the prompt folder, whether a
    /// prompt exists) are answered as FreeSWITCH would and remembered.
    async fn command(&mut self) -> String {
        loop {
            let command = read(&mut self.conn).await;
            let Some(api) = command.strip_prefix("api ") else {
                return command;
            };
            let api = api.trim().to_owned();
            let body = if api == "global_getvar switchboard_prompts" {
                PROMPT_FOLDER.to_owned()
            } else if let Some(path) = api.strip_prefix("file_exists ") {
                assert!(path.starts_with(PROMPT_FOLDER), "{api}");
                self.prompts.to_string()
            } else {
                panic!("unexpected api command on the call's socket: {api}");
            };
            self.asked.push(api);
            self.conn.reply_api(&body).await.unwrap();
        }
    }

    /// The next `sendmsg`, acknowledged; its headers by lower-case name.
    async fn sendmsg(&mut self) -> HashMap<String, String> {
        let command = self.command().await;
        let mut lines = command.lines();
        assert_eq!(lines.next(), Some("sendmsg"), "{command}");
        self.conn.reply_raw_text("+OK").await.unwrap();
        lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
            .collect()
    }

    /// The next application to execute.
    async fn app(&mut self) -> App {
        let h = self.sendmsg().await;
        assert_eq!(
            h.get("call-command").map(String::as_str),
            Some("execute"),
            "{h:?}"
        );
        App {
            name: h["execute-app-name"].clone(),
            arg: h.get("execute-app-arg").cloned().unwrap_or_default(),
            uuid: h["event-uuid"].clone(),
        }
    }

    /// Completes `app` the way FreeSWITCH reports it, with the given result variables.
    async fn complete(&mut self, app: &App, result: &str, var: Option<(&str, &str)>) {
        let digits = match var {
            Some((name, value)) => format!("variable_{name}: {value}\n"),
            None => String::new(),
        };
        let frame = event(
            "14-fs-to-app-text_event-plain-CHANNEL_EXECUTE_COMPLETE-play_and_get_digits.frame",
            &[
                (
                    "Application-UUID: b5e1f760-dcc0-4e19-aec3-8cea0b741345",
                    format!("Application-UUID: {}", app.uuid),
                ),
                (
                    "Application: play_and_get_digits",
                    format!("Application: {}", app.name),
                ),
                (
                    "variable_read_result: success\n",
                    format!("variable_read_result: {result}\n"),
                ),
                ("variable_hd_ext: 201\n", digits),
            ],
            &self.sip_user,
        );
        self.conn.send_raw(&frame).await.unwrap();
    }

    /// Expects `name` (with an argument starting with `arg`) and completes it.
    async fn expect(&mut self, name: &str, arg: &str) -> App {
        let app = self.app().await;
        assert_eq!(app.name, name, "{app:?}");
        let arg = if name == "playback" {
            self.resolve(arg)
        } else {
            arg.to_owned()
        };
        assert_eq!(app.arg, arg, "{app:?}");
        self.complete(&app, "success", None).await;
        app
    }

    /// Expects a prompt for digits and types `digits` (into the variable it names).
    async fn prompt(&mut self, prompt: &str, digits: &str) {
        let app = self.app().await;
        assert_eq!(app.name, "play_and_get_digits", "{app:?}");
        let args: Vec<&str> = app.arg.split(' ').collect();
        assert_eq!(args[5], self.resolve(prompt), "{app:?}");
        let var = args[7].to_owned();
        self.complete(&app, "success", Some((&var, digits))).await;
    }

    /// Expects the hangup and the socket being closed.
    async fn hangs_up(mut self) {
        let h = self.sendmsg().await;
        assert_eq!(
            h.get("call-command").map(String::as_str),
            Some("hangup"),
            "{h:?}"
        );
        assert_eq!(
            h.get("hangup-cause").map(String::as_str),
            Some("NORMAL_CLEARING")
        );
        self.closed().await;
    }

    /// Expects the server to close the socket with nothing more to say.
    async fn closed(mut self) {
        let next = tokio::time::timeout(Duration::from_secs(30), self.conn.read_command())
            .await
            .expect("the server closes the socket");
        assert!(next.is_err(), "nothing more is sent: {next:?}");
    }
}

async fn read(conn: &mut MockConnection) -> String {
    tokio::time::timeout(Duration::from_secs(30), conn.read_command())
        .await
        .expect("the server sends a command")
        .unwrap()
}

async fn session(f: &Fixture) -> (u16, Value) {
    call(
        &f.app,
        &f.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/devices/{}/session", f.domain, f.device),
        None,
    )
    .await
}

async fn audit_actions(f: &Fixture) -> Vec<String> {
    let (status, log) = call(
        &f.app,
        &f.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/audit", f.domain),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn star11_prompts_checks_the_pin_and_logs_in_as_the_api_would(backend: Backend) {
    let f = fixture(backend).await;
    let mut ch = Channel::dial(&f, "login", "").await;
    ch.expect("answer", "").await;
    ch.prompt(ENTER_EXTENSION, "201").await;
    ch.prompt(ENTER_PIN, "1234").await;
    ch.expect("playback", "ivr/ivr-pin_or_extension_is-invalid.wav")
        .await;
    // The Extension stays; only the PIN is asked again.
    ch.prompt(ENTER_PIN, PIN).await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_in.wav")
        .await;
    ch.hangs_up().await;

    let (status, s) = session(&f).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["extension_number"], "201");
    assert_eq!(s["started_via"], "feature_code");
    assert!(
        s["started_by"].as_str().unwrap().contains(&f.sip_user),
        "{s}"
    );
    let actions = audit_actions(&f).await;
    assert!(
        actions.contains(&"hotdesk.pin_failed".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"hotdesk.session.start".to_owned()),
        "{actions:?}"
    );

    // Dialled as *11201: no prompt for the Extension. Already logged in: still fine.
    let mut ch = Channel::dial(&f, "login", "201").await;
    ch.expect("answer", "").await;
    ch.prompt(ENTER_PIN, PIN).await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_in.wav")
        .await;
    ch.hangs_up().await;
}

async fn star11_locks_out_after_wrong_pins_and_three_tries_end_the_call(backend: Backend) {
    let f = fixture(backend).await;
    let mut ch = Channel::dial(&f, "login", "201").await;
    ch.expect("answer", "").await;
    for _ in 0..3 {
        ch.prompt(ENTER_PIN, "0000").await;
        ch.expect("playback", "ivr/ivr-pin_or_extension_is-invalid.wav")
            .await;
    }
    ch.expect("playback", "ivr/ivr-access_denied.wav").await;
    ch.hangs_up().await;

    // Two more wrong PINs reach the Domain's limit (5); then even the right one is refused.
    let mut ch = Channel::dial(&f, "login", "201").await;
    ch.expect("answer", "").await;
    for _ in 0..2 {
        ch.prompt(ENTER_PIN, "0000").await;
        ch.expect("playback", "ivr/ivr-pin_or_extension_is-invalid.wav")
            .await;
    }
    ch.prompt(ENTER_PIN, PIN).await;
    ch.expect("playback", "ivr/ivr-access_denied.wav").await;
    ch.hangs_up().await;

    let (status, _) = session(&f).await;
    assert_eq!(status, 404, "nobody is logged in");
    let actions = audit_actions(&f).await;
    assert!(
        actions.contains(&"hotdesk.pin_locked".to_owned()),
        "{actions:?}"
    );
}

async fn a_caller_hanging_up_mid_flow_ends_it_cleanly(backend: Backend) {
    let f = fixture(backend).await;
    let mut ch = Channel::dial(&f, "login", "").await;
    ch.expect("answer", "").await;
    let app = ch.app().await;
    assert_eq!(app.name, "play_and_get_digits");
    // As captured: CHANNEL_HANGUP first, then the application's completion with a failure.
    let hangup = event(
        "17-fs-to-app-text_event-plain-CHANNEL_HANGUP.frame",
        &[],
        &f.sip_user,
    );
    ch.conn.send_raw(&hangup).await.unwrap();
    ch.complete(&app, "failure", None).await;
    // No more prompts, no hangup of a channel that is gone: the socket is closed.
    ch.closed().await;
    let (status, _) = session(&f).await;
    assert_eq!(status, 404);
}

async fn star12_and_star13_log_out_and_toggle(backend: Backend) {
    let f = fixture(backend).await;
    // *13 with nobody logged in: a login.
    let mut ch = Channel::dial(&f, "toggle", "").await;
    ch.expect("answer", "").await;
    ch.prompt(ENTER_EXTENSION, "201").await;
    ch.prompt(ENTER_PIN, PIN).await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_in.wav")
        .await;
    ch.hangs_up().await;
    assert_eq!(session(&f).await.0, 200);

    // *13 again: a logout, no PIN needed.
    let mut ch = Channel::dial(&f, "toggle", "").await;
    ch.expect("answer", "").await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_out.wav")
        .await;
    ch.hangs_up().await;
    assert_eq!(session(&f).await.0, 404);

    // *12 with nobody logged in is fine too.
    let mut ch = Channel::dial(&f, "logout", "").await;
    ch.expect("answer", "").await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_out.wav")
        .await;
    ch.hangs_up().await;

    // A channel without our variables (not handed over by our dialplan) is refused politely.
    let stream = TcpStream::connect(&f.outbound).await.unwrap();
    let mut conn = MockConnection::from_stream(stream);
    assert_eq!(read(&mut conn).await, "connect\n\n");
    conn.send_raw(&frame("02-fs-to-app-command_reply-CHANNEL_DATA.frame"))
        .await
        .unwrap();
    assert_eq!(read(&mut conn).await, "myevents plain\n\n");
    conn.reply_raw_text("+OK Events Enabled").await.unwrap();
    assert_eq!(read(&mut conn).await, "linger\n\n");
    conn.reply_raw_text("+OK will linger").await.unwrap();
    let mut ch = Channel {
        conn,
        sip_user: "d-7f3a".to_owned(),
        prompts: true,
        asked: Vec::new(),
    };
    ch.expect("answer", "").await;
    ch.expect("playback", "ivr/ivr-access_denied.wav").await;
    ch.hangs_up().await;
}

async fn only_freeswitch_may_hand_calls_over(backend: Backend) {
    // FreeSWITCH lives elsewhere: a call handed over from loopback is not accepted.
    let f = fixture_with(backend, |c| {
        c.freeswitch.xml_curl.allowed_networks = vec!["192.0.2.0/24".to_owned()];
    })
    .await;
    let stream = TcpStream::connect(&f.outbound).await.unwrap();
    let mut conn = MockConnection::from_stream(stream);
    let next = tokio::time::timeout(Duration::from_secs(30), conn.read_command())
        .await
        .expect("the server closes the socket");
    assert!(next.is_err(), "not even `connect` is sent: {next:?}");
    assert_eq!(session(&f).await.0, 404);
}

async fn a_burst_of_star11_calls_is_evaluated_at_most_up_to_the_limit(backend: Backend) {
    let f = fixture(backend).await;
    // 30 phones' worth of calls at once, each trying one wrong PIN for 201.
    let calls = (0..30).map(|_| {
        let f = &f;
        async move {
            let mut ch = Channel::dial(f, "login", "201").await;
            ch.expect("answer", "").await;
            ch.prompt(ENTER_PIN, "0000").await;
            let answer = ch.app().await;
            assert_eq!(answer.name, "playback", "{answer:?}");
            // The caller hangs up on the answer.
            answer.arg
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    let checked = answers
        .iter()
        .filter(|a| **a == format!("{PROMPT_FOLDER}/ivr/ivr-pin_or_extension_is-invalid.wav"))
        .count();
    let locked = answers
        .iter()
        .filter(|a| **a == format!("{PROMPT_FOLDER}/ivr/ivr-access_denied.wav"))
        .count();
    assert_eq!(checked + locked, answers.len(), "{answers:?}");
    assert!(
        checked <= 5,
        "at most the limit (5) may be checked: {answers:?}"
    );
    assert!(locked >= 25, "{answers:?}");
    let failed = audit_actions(&f)
        .await
        .iter()
        .filter(|a| *a == "hotdesk.pin_failed")
        .count();
    assert!(failed <= 5, "{failed}");
}

async fn missing_prompts_are_replaced_by_tones_and_never_stop_a_login(backend: Backend) {
    // A FreeSWITCH without the prompt files (no sound pack, prompts not copied): each prompt
    // is checked once per call and replaced by a tone; the login goes through.
    let f = fixture(backend).await;
    let mut ch = Channel::dial(&f, "login", "").await;
    ch.prompts = false;
    ch.expect("answer", "").await;
    ch.prompt(ENTER_EXTENSION, "201").await;
    ch.prompt(ENTER_PIN, "0000").await;
    ch.expect("playback", "ivr/ivr-pin_or_extension_is-invalid.wav")
        .await;
    ch.prompt(ENTER_PIN, PIN).await;
    ch.expect("playback", "ivr/ivr-you_are_now_logged_in.wav")
        .await;
    let asked = ch.asked.clone();
    ch.hangs_up().await;
    assert_eq!(
        session(&f).await.0,
        200,
        "logged in without any prompt file"
    );
    // The folder is asked for once, each prompt checked once (ENTER_PIN twice played).
    assert_eq!(
        asked,
        vec![
            "global_getvar switchboard_prompts".to_owned(),
            format!("file_exists {PROMPT_FOLDER}/{ENTER_EXTENSION}"),
            format!("file_exists {PROMPT_FOLDER}/{ENTER_PIN}"),
            format!("file_exists {PROMPT_FOLDER}/ivr/ivr-pin_or_extension_is-invalid.wav"),
            format!("file_exists {PROMPT_FOLDER}/ivr/ivr-you_are_now_logged_in.wav"),
        ]
    );
}
