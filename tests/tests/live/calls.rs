//! Internal calls (issue 14, first part): switchboard answers each Domain's own dialplan
//! context, so a phone dials an Extension on a stock FreeSWITCH with the configuration we ship.
//! Seen from the phones' side: which phones got the INVITE, what the caller was answered, and
//! that answered calls end with BYE/200 on both sides.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{Credentials, Live, Phone, received};
use crate::sipp_calls::{
    Callee, Ringing, dial, extension_with_phone, final_answer, hot_desk_logged_in, reason_line,
    register, requests, sent,
};

/// Requests a phone received, e.g. `["INVITE", "ACK", "BYE"]` (NOTIFYs left out: FreeSWITCH
/// sends message-waiting NOTIFYs whenever it likes).
fn got(outcome: &crate::harness::Outcome) -> Vec<String> {
    requests(&received(&outcome.messages))
        .into_iter()
        .filter(|m| *m != "NOTIFY" && *m != "OPTIONS")
        .map(str::to_owned)
        .collect()
}

/// Whether the caller hung up an answered call and got its BYE answered 200.
fn hung_up_cleanly(caller: &crate::harness::Outcome) -> bool {
    let sent_bye = requests(&sent(&caller.messages)).contains(&"BYE");
    let got_bye = requests(&received(&caller.messages)).contains(&"BYE");
    // Either the caller sent BYE and got 200, or FreeSWITCH sent BYE and the caller said 200.
    (sent_bye && caller.last_status == Some(200)) || got_bye
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_an_extension_rings_exactly_its_phones_and_ends_cleanly() {
    let live = Live::start().await;
    let domain = live.domain("ring.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (alice, desk) = extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"hotdesk_allowed": true, "voicemail_enabled": false}),
    )
    .await;
    let (_, other) =
        extension_with_phone(&live, &domain, "202", json!({"voicemail_enabled": false})).await;
    // A hot-desk phone Alice is logged in to rings for her as well.
    let hot_desk = hot_desk_logged_in(&live, &domain, "201").await;
    assert!(alice["id"].is_string());

    let desk_phone = Phone::new(&live.fs, "LiveDesk/201");
    let hot_phone = Phone::new(&live.fs, "LiveHotDesk/201");
    let other_phone = Phone::new(&live.fs, "LiveDesk/202");
    register(&live, &desk_phone, &desk).await;
    register(&live, &hot_phone, &hot_desk).await;
    register(&live, &other_phone, &other).await;

    let answers = Ringing::start(&live.fs, &desk_phone, Callee::Answers, 30).await;
    let also_rings = Ringing::start(&live.fs, &hot_phone, Callee::Rings, 30).await;
    let bystander = Ringing::start(&live.fs, &other_phone, Callee::Rings, 8).await;

    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
    let call = dial(&live.fs, &caller_phone, &caller, "201").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    assert!(hung_up_cleanly(&call), "{}", call.messages);

    let answered = answers.finish().await;
    assert_eq!(
        got(&answered),
        ["INVITE", "ACK", "BYE"],
        "{}",
        answered.messages
    );
    assert!(
        sent(&answered.messages)
            .last()
            .is_some_and(|m| m.starts_with("SIP/2.0 200")),
        "the answering phone said 200 to the BYE: {}",
        answered.messages
    );
    let cancelled = also_rings.finish().await;
    assert_eq!(
        got(&cancelled),
        ["INVITE", "CANCEL", "ACK"],
        "the hot-desk phone rang and was cancelled when the desk answered: {}",
        cancelled.messages
    );
    let untouched = bystander.finish().await;
    assert!(
        got(&untouched).is_empty(),
        "202's phone is not in 201's ring plan: {}",
        untouched.messages
    );
    let _ = caller;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ring_timeout_cancels_the_ring_and_the_no_answer_forward_rings_the_next_extension() {
    let live = Live::start().await;
    let domain = live.domain("timeout.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (_, slow) = extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"ring_timeout_secs": 5, "voicemail_enabled": false,
               "forwarding": {"no_answer": {"enabled": true, "destination": "202"}}}),
    )
    .await;
    let (_, next) =
        extension_with_phone(&live, &domain, "202", json!({"voicemail_enabled": false})).await;
    let slow_phone = Phone::new(&live.fs, "LiveDesk/201");
    let next_phone = Phone::new(&live.fs, "LiveDesk/202");
    register(&live, &slow_phone, &slow).await;
    register(&live, &next_phone, &next).await;
    let rings = Ringing::start(&live.fs, &slow_phone, Callee::Rings, 40).await;
    let answers = Ringing::start(&live.fs, &next_phone, Callee::Answers, 40).await;

    let started = std::time::Instant::now();
    let call = dial(
        &live.fs,
        &Phone::new(&live.fs, "LiveCaller/200"),
        &caller,
        "201",
    )
    .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    assert!(hung_up_cleanly(&call), "{}", call.messages);

    let rang_out = rings.finish().await;
    assert_eq!(
        got(&rang_out),
        ["INVITE", "CANCEL", "ACK"],
        "201 rang and FreeSWITCH cancelled it: {}",
        rang_out.messages
    );
    // A generous bound: the 5 s ring timeout ended it, not sipp's 40 s.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the ring was not cut short: {:?}",
        started.elapsed()
    );
    let forwarded = answers.finish().await;
    assert_eq!(
        got(&forwarded),
        ["INVITE", "ACK", "BYE"],
        "the no-answer forward rang 202, which answered: {}",
        forwarded.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_and_a_busy_phone_give_the_caller_busy() {
    let live = Live::start().await;
    let domain = live.domain("busy.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (dnd, dnd_desk) = extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"voicemail_enabled": false, "dnd": true}),
    )
    .await;
    let (_, busy_desk) =
        extension_with_phone(&live, &domain, "202", json!({"voicemail_enabled": false})).await;
    assert_eq!(dnd["dnd"], true, "{dnd}");
    let dnd_phone = Phone::new(&live.fs, "LiveDesk/201");
    let busy_phone = Phone::new(&live.fs, "LiveDesk/202");
    register(&live, &dnd_phone, &dnd_desk).await;
    register(&live, &busy_phone, &busy_desk).await;
    let quiet = Ringing::start(&live.fs, &dnd_phone, Callee::Rings, 8).await;
    let busy = Ringing::start(&live.fs, &busy_phone, Callee::Busy, 30).await;
    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");

    let call = dial(&live.fs, &caller_phone, &caller, "201").await;
    assert_eq!(
        final_answer(&call),
        Some(486),
        "DND is busy: {}",
        call.messages
    );
    let call = dial(&live.fs, &caller_phone, &caller, "202").await;
    assert_eq!(
        final_answer(&call),
        Some(486),
        "a busy phone is busy for the caller: {}",
        call.messages
    );

    let untouched = quiet.finish().await;
    assert!(
        got(&untouched).is_empty(),
        "a phone on DND does not ring: {}",
        untouched.messages
    );
    let was_busy = busy.finish().await;
    assert_eq!(got(&was_busy), ["INVITE", "ACK"], "{}", was_busy.messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_extension_goes_to_voicemail_or_its_not_registered_forward() {
    let live = Live::start().await;
    let domain = live.domain("absent.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    // 201's phone never registers; its voicemail takes the call.
    extension_with_phone(&live, &domain, "201", json!({"voicemail_enabled": true})).await;
    // 202's phone never registers either; it forwards to 203, whose phone answers.
    extension_with_phone(
        &live,
        &domain,
        "202",
        json!({"voicemail_enabled": false,
               "forwarding": {"not_registered": {"enabled": true, "destination": "203"}}}),
    )
    .await;
    let (_, present) =
        extension_with_phone(&live, &domain, "203", json!({"voicemail_enabled": false})).await;
    let present_phone = Phone::new(&live.fs, "LiveDesk/203");
    register(&live, &present_phone, &present).await;
    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");

    let call = dial(&live.fs, &caller_phone, &caller, "201").await;
    assert_eq!(
        final_answer(&call),
        Some(200),
        "mod_voicemail answers for the absent 201: {}",
        call.messages
    );
    assert!(hung_up_cleanly(&call), "{}", call.messages);

    let answers = Ringing::start(&live.fs, &present_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &caller_phone, &caller, "202").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    assert!(hung_up_cleanly(&call), "{}", call.messages);
    let forwarded = answers.finish().await;
    assert_eq!(
        got(&forwarded),
        ["INVITE", "ACK", "BYE"],
        "202's not-registered forward rang 203: {}",
        forwarded.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_extensions_forwarding_to_each_other_end_with_too_many_hops() {
    let live = Live::start().await;
    let domain = live.domain("loop.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"forwarding": {"always": {"enabled": true, "destination": "202"}}}),
    )
    .await;
    extension_with_phone(
        &live,
        &domain,
        "202",
        json!({"forwarding": {"always": {"enabled": true, "destination": "201"}}}),
    )
    .await;
    let call = dial(
        &live.fs,
        &Phone::new(&live.fs, "LiveCaller/200"),
        &caller,
        "201",
    )
    .await;
    assert_eq!(
        final_answer(&call),
        Some(483),
        "the loop ends with EXCHANGE_ROUTING_ERROR (483 Too Many Hops): {}",
        call.messages
    );
    assert!(
        reason_line(&call, 483).contains("EXCHANGE_ROUTING_ERROR"),
        "the cause is named in the answer's Reason: {}",
        call.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_nothing_answers_to_is_unallocated() {
    let live = Live::start().await;
    let domain = live.domain("unknown.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let call = dial(
        &live.fs,
        &Phone::new(&live.fs, "LiveCaller/200"),
        &caller,
        "299",
    )
    .await;
    assert_eq!(
        final_answer(&call),
        Some(404),
        "UNALLOCATED_NUMBER is SIP 404: {}",
        call.messages
    );
    assert!(
        reason_line(&call, 404).contains("UNALLOCATED_NUMBER"),
        "answered by switchboard's dialplan (not NO_ROUTE_DESTINATION from a missing context): {}",
        call.messages
    );
}

/// When sipp logged each message it received, with the message's first line.
fn received_at(outcome: &crate::harness::Outcome) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stamp = String::new();
    let mut lines = outcome.messages.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("-----------------------------------------------") {
            stamp = rest.trim().to_owned();
        } else if line.contains("message received") {
            // A blank line, then the start line.
            for next in lines.by_ref() {
                if !next.trim().is_empty() {
                    found.push((stamp.clone(), next.trim().to_owned()));
                    break;
                }
            }
        }
    }
    found
}

fn first_at(outcome: &crate::harness::Outcome, method: &str) -> String {
    received_at(outcome)
        .into_iter()
        .find(|(_, line)| line.starts_with(method))
        .map(|(at, _)| at)
        .unwrap_or_else(|| panic!("no {method}: {}", outcome.messages))
}

/// Scenario 3, the rest of the ring plan: an Extension that registers directly and is signed in
/// to a sequential Location rings its own registration at once and the Location's phones in
/// their order, the second after the first one's ring time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_registration_and_a_sequential_location_ring_in_the_ring_plans_order() {
    let live = Live::start().await;
    let domain = live.domain("order.calls.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let ada = live
        .create(
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Ada", "voicemail_enabled": false,
                   "ring_timeout_secs": 12, "sip_registration": {"enabled": true}}),
        )
        .await;
    let ada_id = ada["id"].as_str().unwrap();
    let secret = live
        .get(&format!(
            "/api/v1/domains/{domain}/extensions/{ada_id}/sip-secret"
        ))
        .await;
    let direct = Credentials {
        device_id: String::new(),
        user: secret["sip_username"].as_str().unwrap().to_owned(),
        password: secret["sip_secret"].as_str().unwrap().to_owned(),
        realm: secret["realm"].as_str().unwrap().to_owned(),
    };
    let location = live
        .create(
            &domain,
            "locations",
            json!({"name": "Pool", "ring_strategy": "sequential"}),
        )
        .await;
    let pool_device = |label: &'static str, position: i32| {
        let live = &live;
        let domain = &domain;
        let location = location["id"].clone();
        async move {
            let d = live
                .create(
                    domain,
                    "devices",
                    json!({"label": label, "location_id": location, "location_position": position,
                           "location_ring_timeout_secs": 5}),
                )
                .await;
            live.credentials(domain, d["id"].as_str().unwrap()).await
        }
    };
    let first = pool_device("Pool 1", 0).await;
    let second = pool_device("Pool 2", 1).await;
    let (status, body) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/extensions/{ada_id}/location"),
            Some(json!({"location_id": location["id"]})),
        )
        .await;
    assert!(
        status == 200 || status == 201,
        "signing in: {status} {body}"
    );

    let direct_phone = Phone::new(&live.fs, "LiveSoftphone/201");
    let first_phone = Phone::new(&live.fs, "LivePool/1");
    let second_phone = Phone::new(&live.fs, "LivePool/2");
    register(&live, &direct_phone, &direct).await;
    register(&live, &first_phone, &first).await;
    register(&live, &second_phone, &second).await;
    let direct_rings = Ringing::start(&live.fs, &direct_phone, Callee::Rings, 40).await;
    let first_rings = Ringing::start(&live.fs, &first_phone, Callee::Rings, 40).await;
    let second_rings = Ringing::start(&live.fs, &second_phone, Callee::Rings, 40).await;

    let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
    let call = dial(&live.fs, &caller_phone, &caller, "201").await;
    assert_ne!(
        final_answer(&call),
        Some(200),
        "nobody answered: {}",
        call.messages
    );

    let direct_saw = direct_rings.finish().await;
    let first_saw = first_rings.finish().await;
    let second_saw = second_rings.finish().await;
    for (who, saw) in [
        ("the direct registration", &direct_saw),
        ("the first Location phone", &first_saw),
        ("the second Location phone", &second_saw),
    ] {
        let got = got(saw);
        assert!(
            got.first().is_some_and(|m| m == "INVITE") && got.contains(&"CANCEL".to_owned()),
            "{who} rang and was cancelled: {}",
            saw.messages
        );
    }
    // The first Location phone rang with the direct registration; the second only after the
    // first one's ring time ended it.
    let first_cancelled = first_at(&first_saw, "CANCEL");
    let second_invited = first_at(&second_saw, "INVITE");
    assert!(
        first_cancelled <= second_invited,
        "the first ({first_cancelled}) is cancelled before the second rings ({second_invited})"
    );
    assert!(
        first_at(&direct_saw, "INVITE") < second_invited,
        "the direct registration rang from the start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_leaves_a_voicemail_and_the_phone_is_told_a_message_waits() {
    let live = Live::start().await;
    let sip = "vm.calls.live.test";
    let domain = live.domain(sip).await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (_, absent) = extension_with_phone(
        &live,
        &domain,
        "204",
        json!({"voicemail_enabled": true, "ring_timeout_secs": 5}),
    )
    .await;
    let absent_phone = Phone::new(&live.fs, "LiveDesk/204");
    register(&live, &absent_phone, &absent).await;
    let storage = live.fs.api("global_getvar storage_dir").await;
    let mailbox = std::path::Path::new(storage.trim()).join(format!("voicemail/default/{sip}/204"));

    // 204 rings out; mod_voicemail answers, plays its tones and records what the caller says.
    let rings = Ringing::start(&live.fs, &absent_phone, Callee::Rings, 60).await;
    let call = Phone::new(&live.fs, "LiveCaller/200")
        .dial_press_and_hang_up(
            &caller,
            "204",
            &[crate::dtmf::Key::Pause(1500), crate::dtmf::Key::Speak(4500)],
            7000,
        )
        .await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    let mut kept = Vec::new();
    for _ in 0..50 {
        kept = std::fs::read_dir(&mailbox)
            .map(|d| {
                d.flatten()
                    .map(|f| f.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                    .collect()
            })
            .unwrap_or_default();
        if !kept.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kept.len(), 1, "one message in {}", mailbox.display());
    // The phone's lamp: FreeSWITCH tells the registered phone a message waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rang = rings.finish().await;
    let lamp = received(&rang.messages)
        .into_iter()
        .filter(|m| m.starts_with("NOTIFY "))
        .any(|m| m.to_ascii_lowercase().contains("messages-waiting: yes"));
    assert!(lamp, "no message-waiting NOTIFY: {}", rang.messages);
}
