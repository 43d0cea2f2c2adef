//! Scenario 4 (and F6): the hot-desk feature codes with real RFC 2833 DTMF from a sipp phone,
//! through the real FreeSWITCH's outbound socket, and the Extension's lamp seen by a phone
//! subscribed to it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::dtmf::{Key, answered_and_hung_up, notifies};
use crate::harness::{Credentials, Live, Phone};

const PIN: &str = "4711";
/// Timing of the keys. sipp cannot hear the prompts, so it presses while one plays: the first
/// prompt starts once the call is handed to the outbound socket; a digit that arrives before
/// `play_and_get_digits` runs is discarded. After a refused PIN come the "invalid" message
/// (about 3 s, plus the argon2 check) and the PIN prompt again (about 3.5 s, then 5 s to
/// type).
const FIRST_PROMPT: Key = Key::Pause(2000);
const NEXT_PROMPT: Key = Key::Pause(2500);
const AFTER_REFUSAL: Key = Key::Pause(5500);

/// A Domain with Extension 201 (PIN, hot-desk allowed), a hot-desk phone and Extension 202's
/// fixed phone (the watcher).
struct Desk {
    live: Live,
    domain: String,
    desk: Credentials,
    watcher: Credentials,
}

async fn desk(sip_domain: &str) -> Desk {
    let live = Live::start().await;
    let domain = live.domain(sip_domain).await;
    live.create(
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Ada", "pin": PIN, "hotdesk_allowed": true}),
    )
    .await;
    let device = live
        .create(
            &domain,
            "devices",
            json!({"label": "Desk 1", "mode": "hotdesk"}),
        )
        .await;
    let desk = live
        .credentials(&domain, device["id"].as_str().unwrap())
        .await;
    let watcher = live.device(&domain, "202").await;
    Desk {
        live,
        domain,
        desk,
        watcher,
    }
}

impl Desk {
    /// The desk phone's hot-desk session: status and body.
    async fn session(&self) -> (u16, Value) {
        self.live
            .call(
                Method::GET,
                &format!(
                    "/api/v1/domains/{}/devices/{}/session",
                    self.domain, self.desk.device_id
                ),
                None,
            )
            .await
    }

    /// Dials `code` from the desk phone and presses `keys`; asserts FreeSWITCH answered and
    /// hung up.
    async fn dial(&self, code: &str, keys: &[Key]) {
        let phone = Phone::new(&self.live.fs, "LiveDesk/1.0");
        let outcome = phone.dial_and_press(&self.desk, code, keys, 60).await;
        assert!(
            answered_and_hung_up(&outcome),
            "{code}: the call is answered and ended by FreeSWITCH: {}\nFreeSWITCH: {}",
            outcome.messages,
            tail(&self.live.fs.console())
        );
    }
}

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(6000)..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star11_with_real_dtmf_logs_in_and_a_subscribed_phone_sees_the_lamp() {
    let d = desk("codes.live.test").await;
    let registering = Phone::new(&d.live.fs, "LiveDesk/1.0");
    let outcome = registering
        .register(&d.desk, "desk-codes@live.test", 1)
        .await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);

    // 202's phone watches 201's lamp while 201 logs in at the desk, then out.
    let watcher = Phone::new(&d.live.fs, "LiveWatcher/1.0");
    let credentials = d.watcher.clone();
    let watching = tokio::spawn(async move { watcher.watch(&credentials, "201", 15000).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    d.dial(
        "*11",
        &[
            FIRST_PROMPT,
            Key::Press("201#"),
            NEXT_PROMPT,
            Key::Press(PIN_KEYS),
        ],
    )
    .await;
    let (status, session) = d.session().await;
    assert_eq!(status, 200, "logged in by DTMF: {session}");
    assert_eq!(session["extension_number"], "201");
    assert_eq!(session["started_via"], "feature_code");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    d.dial("*12", &[]).await;
    assert_eq!(d.session().await.0, 404, "*12 logged out");

    // What 202's BLF key showed: lit (FreeSWITCH renders a confirmed lamp as "on the phone")
    // once 201 logged in, before the *12 call itself; dark again after the logout.
    let seen = watching.await.unwrap();
    let notifies = notifies(&seen);
    let logout_call = notifies
        .iter()
        .position(|n| n.contains("*12"))
        .unwrap_or_else(|| panic!("the *12 call shows on 201's lamp: {}", seen.messages));
    assert!(
        notifies[..logout_call]
            .iter()
            .any(|n| n.contains("<rpid:on-the-phone/>")),
        "the login lit 201's lamp before the *12 call: {}",
        seen.messages
    );
    let last = notifies.last().unwrap();
    assert!(
        last.contains("<basic>open</basic>") && !last.contains("on-the-phone"),
        "the logout turned it off: {}",
        seen.messages
    );
}

const PIN_KEYS: &str = "4711#";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_prompts_again_and_too_many_lock_the_extension() {
    let d = desk("lockout.live.test").await;
    // A wrong PIN, then the right one in the same call: asked again, logged in.
    d.dial(
        "*11",
        &[
            FIRST_PROMPT,
            Key::Press("201#"),
            NEXT_PROMPT,
            Key::Press("0000#"),
            AFTER_REFUSAL,
            Key::Press(PIN_KEYS),
        ],
    )
    .await;
    assert_eq!(d.session().await.0, 200, "the second PIN logged in");

    // *13 toggles: out, then in again (Extension and PIN asked).
    d.dial("*13", &[]).await;
    assert_eq!(d.session().await.0, 404, "*13 logged out");
    d.dial(
        "*13",
        &[
            FIRST_PROMPT,
            Key::Press("201#"),
            NEXT_PROMPT,
            Key::Press(PIN_KEYS),
        ],
    )
    .await;
    assert_eq!(d.session().await.0, 200, "*13 logged in");
    d.dial("*12", &[]).await;

    // Five wrong PINs over two calls (three tries per call) lock the Extension: then even the
    // right PIN is refused, from the phone and from the API.
    let wrong = |first: &'static str, second: &'static str, third: &'static str| {
        vec![
            FIRST_PROMPT,
            Key::Press(first),
            AFTER_REFUSAL,
            Key::Press(second),
            AFTER_REFUSAL,
            Key::Press(third),
        ]
    };
    d.dial("*11201", &wrong("1111#", "2222#", "3333#")).await;
    d.dial("*11201", &wrong("4444#", "5555#", PIN_KEYS)).await;
    assert_eq!(
        d.session().await.0,
        404,
        "locked: the right PIN was refused"
    );
    let log = d
        .live
        .get(&format!("/api/v1/domains/{}/audit", d.domain))
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"hotdesk.pin_locked"),
        "the lockout is audited: {actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "hotdesk.pin_failed")
            .count(),
        6,
        "one wrong PIN in the first call, five in the last two: {actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_prompt_files_a_login_still_works_with_tones() {
    let d = desk("tones.live.test").await;
    // The operator's FreeSWITCH has no prompts where switchboard_prompts points.
    let set = d
        .live
        .fs
        .api("global_setvar switchboard_prompts=/nonexistent/prompts")
        .await;
    assert!(set.contains("+OK"), "{set}");
    d.dial(
        "*11",
        &[
            FIRST_PROMPT,
            Key::Press("201#"),
            NEXT_PROMPT,
            Key::Press(PIN_KEYS),
        ],
    )
    .await;
    let (status, session) = d.session().await;
    assert_eq!(status, 200, "logged in with tones for prompts: {session}");
}
