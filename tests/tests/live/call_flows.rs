//! Call flows through the real switch (issue 18): a carrier's call to a Number meets a time
//! condition, an IVR menu (the caller presses a key, RFC 2833 from sipp) and a ring group whose
//! members' phones ring; after hours it goes to the closed destination; a feature code from a
//! phone switches the override for the next call; a sequential group moves on after a member's
//! ring time; round-robin starts with the next member on the next call; nobody answering ends
//! at the group's final destination.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::dtmf::Key;
use crate::harness::{Credentials, Live, Phone, free_port, received};
use crate::sipp_calls::{
    Callee, Ringing, carrier_dial_and_press, dial, extension_with_phone, final_answer, register,
    requests,
};
use crate::trunks::gateway;

/// Special days that make today open all day, or closed all day.
fn today_is(open: bool) -> Value {
    let hours = if open {
        json!([{"from": "00:00", "to": "24:00"}])
    } else {
        json!([])
    };
    // Yesterday and tomorrow too: a run that crosses midnight still sees the same answer.
    let days: Vec<Value> = [-1i64, 0, 1]
        .iter()
        .map(|d| {
            let date = (chrono::Utc::now() + chrono::Duration::days(*d))
                .format("%Y-%m-%d")
                .to_string();
            json!({"name": if open { "open day" } else { "closed day" }, "date": date, "hours": hours})
        })
        .collect();
    Value::Array(days)
}

/// Whether a phone's sipp saw an INVITE.
fn rang(outcome: &crate::harness::Outcome) -> bool {
    requests(&received(&outcome.messages)).contains(&"INVITE")
}

/// When a phone's sipp received its first INVITE (`YYYY-MM-DD HH:MM:SS.micros` from sipp's
/// message log, which sorts as text), to tell which of two phones rang first.
fn first_invite_at(outcome: &crate::harness::Outcome) -> String {
    let lines: Vec<&str> = outcome.messages.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("INVITE sip:"))
        .unwrap_or_else(|| panic!("no INVITE:\n{}", outcome.messages));
    lines[..at]
        .iter()
        .rev()
        .find(|l| l.starts_with("----"))
        .map(|l| l.trim_start_matches('-').trim().to_owned())
        .filter(|t| t.len() >= 19)
        .unwrap_or_else(|| panic!("no timestamp before the INVITE:\n{}", outcome.messages))
}

async fn create(live: &Live, domain: &str, what: &str, body: Value) -> Value {
    let (status, v) = live
        .call(
            Method::POST,
            &format!("/api/v1/domains/{domain}/{what}"),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "creating {what}: {v}");
    v
}

/// Two Extensions with registered phones.
async fn two_people(
    live: &Live,
    domain: &str,
) -> ((Value, Credentials, Phone), (Value, Credentials, Phone)) {
    let (a_ext, a) = extension_with_phone(live, domain, "201", json!({})).await;
    let (b_ext, b) = extension_with_phone(live, domain, "202", json!({})).await;
    let a_phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    let b_phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(live, &a_phone, &a).await;
    register(live, &b_phone, &b).await;
    ((a_ext, a, a_phone), (b_ext, b, b_phone))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_meets_business_hours_a_menu_key_and_a_ring_group_and_a_feature_code_flips_the_override()
 {
    let live = Live::start().await;
    let domain = live.domain("flows.live.test").await;
    let ((a_ext, _, a_phone), (b_ext, b, b_phone)) = two_people(&live, &domain).await;
    let sales = create(
        &live,
        &domain,
        "ring-groups",
        json!({"name": "Sales", "number": "600", "strategy": "simultaneous",
               "members": [{"extension_id": a_ext["id"]}, {"extension_id": b_ext["id"]}],
               "when_unanswered": {"type": "hang_up", "cause": "busy"}}),
    )
    .await;
    let menu = create(
        &live,
        &domain,
        "ivr-menus",
        json!({"name": "Main", "greeting": {"type": "builtin", "prompt": "beep"},
               "timeout_secs": 4, "max_tries": 2,
               "options": [{"digits": "1", "destination": {"type": "ring_group", "ring_group_id": sales["id"]}}],
               "when_no_choice": {"type": "hang_up", "cause": "normal"}}),
    )
    .await;
    let office = create(
        &live,
        &domain,
        "time-conditions",
        json!({"name": "Office", "special_days": today_is(true), "override_code": "1",
               "when_open": {"type": "ivr", "ivr_id": menu["id"]},
               "when_closed": {"type": "hang_up", "cause": "busy"}}),
    )
    .await;
    let office_id = office["id"].as_str().unwrap().to_owned();
    let (status, n) = live
        .call(
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": "+4930555200", "domain_id": domain,
                        "destination": {"type": "time_condition", "time_condition_id": office_id}})),
        )
        .await;
    assert_eq!(status, 201, "{n}");
    gateway(
        &live,
        &domain,
        "carrier",
        "127.0.0.2",
        free_port(),
        json!({}),
    )
    .await;

    // Open: the menu answers, the caller presses 1, both members' phones ring; Alice answers.
    let alice = Ringing::start(&live.fs, &a_phone, Callee::Answers, 60).await;
    let bob = Ringing::start(&live.fs, &b_phone, Callee::Rings, 60).await;
    let carrier = carrier_dial_and_press(
        &live.fs,
        "127.0.0.2",
        "+4917012345",
        "+4930555200",
        &[Key::Pause(1500), Key::Press("1")],
        12_000,
    )
    .await;
    assert_eq!(final_answer(&carrier), Some(200), "{}", carrier.messages);
    let (alice, bob) = (alice.finish().await, bob.finish().await);
    assert!(rang(&alice), "Alice's phone rang:\n{}", alice.messages);
    assert!(rang(&bob), "Bob's phone rang:\n{}", bob.messages);

    // After hours (today a closed special day): the closed destination, busy; nobody rings.
    let (status, v) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/time-conditions/{office_id}"),
            Some(json!({"special_days": today_is(false)})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let alice = Ringing::start(&live.fs, &a_phone, Callee::Answers, 30).await;
    let carrier = carrier_dial_and_press(
        &live.fs,
        "127.0.0.2",
        "+4917012345",
        "+4930555200",
        &[],
        5_000,
    )
    .await;
    assert_eq!(final_answer(&carrier), Some(486), "{}", carrier.messages);
    let alice = alice.finish().await;
    assert!(
        !rang(&alice),
        "nobody rings after hours:\n{}",
        alice.messages
    );

    // Bob presses *361 on his phone: closed by the schedule, so the override opens it…
    let pressed = b_phone.dial_and_press(&b, "*361", &[], 20).await;
    assert!(
        crate::dtmf::answered_and_hung_up(&pressed),
        "{}",
        pressed.messages
    );
    let now = live
        .get(&format!(
            "/api/v1/domains/{domain}/time-conditions/{office_id}"
        ))
        .await;
    assert_eq!(now["override"], "open", "{now}");
    // …and the next call reaches the menu again (answered), nobody pressing: the menu's own
    // final destination after its tries.
    let carrier = carrier_dial_and_press(
        &live.fs,
        "127.0.0.2",
        "+4917012345",
        "+4930555200",
        &[],
        30_000,
    )
    .await;
    assert_eq!(final_answer(&carrier), Some(200), "{}", carrier.messages);
    assert!(
        requests(&received(&carrier.messages)).contains(&"BYE"),
        "the menu hung up after its tries:\n{}",
        carrier.messages
    );
    // The same key again puts the schedule back in charge.
    b_phone.dial_and_press(&b, "*361", &[], 20).await;
    let now = live
        .get(&format!(
            "/api/v1/domains/{domain}/time-conditions/{office_id}"
        ))
        .await;
    assert_eq!(now["override"], "auto", "{now}");
    let audit = live
        .get(&format!(
            "/api/v1/domains/{domain}/audit?action=time_condition.override"
        ))
        .await;
    assert!(
        audit["items"].as_array().is_some_and(|a| a.len() >= 2),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_and_round_robin_groups_ring_in_turn_and_nobody_answering_ends_at_the_final_destination()
 {
    let live = Live::start().await;
    let domain = live.domain("turns.live.test").await;
    let ((a_ext, _, a_phone), (b_ext, _, b_phone)) = two_people(&live, &domain).await;
    let (_, caller) = extension_with_phone(&live, &domain, "203", json!({})).await;
    let caller_phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &caller_phone, &caller).await;
    let members = json!([{"extension_id": a_ext["id"], "ring_secs": 5},
                         {"extension_id": b_ext["id"], "ring_secs": 5}]);
    create(
        &live,
        &domain,
        "ring-groups",
        json!({"name": "In turn", "number": "610", "strategy": "sequential", "ring_secs": 30,
               "members": members, "when_unanswered": {"type": "hang_up", "cause": "busy"}}),
    )
    .await;
    create(
        &live,
        &domain,
        "ring-groups",
        json!({"name": "Fair", "number": "620", "strategy": "round_robin", "ring_secs": 30,
               "members": members, "when_unanswered": {"type": "hang_up", "cause": "busy"}}),
    )
    .await;

    // Sequential, nobody answers: Alice first, Bob after her 5 s, then the final destination.
    let alice = Ringing::start(&live.fs, &a_phone, Callee::Rings, 60).await;
    let bob = Ringing::start(&live.fs, &b_phone, Callee::Rings, 60).await;
    let call = dial(&live.fs, &caller_phone, &caller, "610").await;
    assert_eq!(final_answer(&call), Some(486), "{}", call.messages);
    let (alice, bob) = (alice.finish().await, bob.finish().await);
    assert!(
        first_invite_at(&alice) < first_invite_at(&bob),
        "Alice rings before Bob:\n{}\n{}",
        alice.messages,
        bob.messages
    );

    // Round-robin, first call: Alice first, and she answers: Bob never rings.
    let alice = Ringing::start(&live.fs, &a_phone, Callee::Answers, 60).await;
    let bob = Ringing::start(&live.fs, &b_phone, Callee::Rings, 60).await;
    let call = dial(&live.fs, &caller_phone, &caller, "620").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    let (alice, bob) = (alice.finish().await, bob.finish().await);
    assert!(rang(&alice), "{}", alice.messages);
    assert!(!rang(&bob), "Bob waits his turn:\n{}", bob.messages);
    // The next call starts with Bob (who lets it ring), then Alice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alice = Ringing::start(&live.fs, &a_phone, Callee::Answers, 60).await;
    let bob = Ringing::start(&live.fs, &b_phone, Callee::Rings, 60).await;
    let call = dial(&live.fs, &caller_phone, &caller, "620").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    let (alice, bob) = (alice.finish().await, bob.finish().await);
    assert!(
        first_invite_at(&bob) < first_invite_at(&alice),
        "Bob first this time:\n{}\n{}",
        bob.messages,
        alice.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lamps_show_a_time_conditions_override_and_a_ring_group_nobody_can_answer() {
    let live = Live::start().await;
    let domain = live.domain("lamps.live.test").await;
    let (a_ext, a) = extension_with_phone(&live, &domain, "201", json!({})).await;
    let a_phone = Phone::new(&live.fs, "Yealink SIP-T54W 96.86.0.100");
    register(&live, &a_phone, &a).await;
    let (_, watcher) = extension_with_phone(&live, &domain, "203", json!({})).await;
    let a_id = a_ext["id"].as_str().unwrap().to_owned();
    create(
        &live,
        &domain,
        "ring-groups",
        json!({"name": "Support", "number": "630",
               "members": [{"extension_id": a_id}]}),
    )
    .await;
    let office = create(
        &live,
        &domain,
        "time-conditions",
        json!({"name": "Office", "override_code": "2"}),
    )
    .await;
    let office_id = office["id"].as_str().unwrap().to_owned();

    // The watcher's BLF keys: *362 (the override) and 630 (the group).
    let watch = |number: &'static str| {
        let phone = Phone::new(&live.fs, "LiveWatcher/1.0");
        let c = watcher.clone();
        tokio::spawn(async move { phone.watch(&c, number, 8000).await })
    };
    let override_lamp = watch("*362");
    let group_lamp = watch("630");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // The override on: its lamp lights. Alice on Do-Not-Disturb: nobody can answer the group.
    let (status, v) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/time-conditions/{office_id}/override"),
            Some(json!({"override": "closed"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/extensions/{a_id}"),
            Some(json!({"dnd": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // And off again: both lamps go dark.
    live.call(
        Method::PUT,
        &format!("/api/v1/domains/{domain}/time-conditions/{office_id}/override"),
        Some(json!({"override": "auto"})),
    )
    .await;
    live.call(
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{a_id}"),
        Some(json!({"dnd": false})),
    )
    .await;

    for (name, lamp) in [("*362", override_lamp), ("630", group_lamp)] {
        let seen = lamp.await.unwrap();
        let notifies = crate::dtmf::notifies(&seen);
        let lit = notifies
            .iter()
            .position(|n| n.contains("<rpid:on-the-phone/>"))
            .unwrap_or_else(|| panic!("{name}'s lamp lit: {}", seen.messages));
        assert!(
            notifies[lit + 1..]
                .iter()
                .any(|n| n.contains("<basic>open</basic>") && !n.contains("on-the-phone")),
            "{name}'s lamp went dark again: {}",
            seen.messages
        );
    }
}
