//! Location sign-in from a phone: `*14<short code>` signs the Extension the phone calls as in
//! to the Location, `*15` signs it out, through the real FreeSWITCH's outbound socket; the
//! Location's phone rings for the Extension while it is signed in, and not after.

use reqwest::Method;
use serde_json::{Value, json};

use crate::dtmf::answered_and_hung_up;
use crate::harness::{Live, Outcome, Phone, received};
use crate::sipp_calls::{Callee, Ringing, dial, extension_with_phone, register, requests};

fn invited(outcome: &Outcome) -> bool {
    requests(&received(&outcome.messages)).contains(&"INVITE")
}

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(6000)..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn star14_signs_in_to_a_location_star15_out_and_its_phone_rings_only_in_between() {
    let live = Live::start().await;
    let domain = live.domain("where.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (ada, ada_desk) = extension_with_phone(
        &live,
        &domain,
        "201",
        json!({"voicemail_enabled": false, "ring_timeout_secs": 6}),
    )
    .await;
    let room = live
        .create(
            &domain,
            "locations",
            json!({"name": "Room 4", "short_code": "412"}),
        )
        .await;
    let room_device = live
        .create(
            &domain,
            "devices",
            json!({"label": "Room 4 phone", "location_id": room["id"]}),
        )
        .await;
    let room_credentials = live
        .credentials(&domain, room_device["id"].as_str().unwrap())
        .await;
    let room_phone = Phone::new(&live.fs, "LiveRoom/4");
    register(&live, &room_phone, &room_credentials).await;
    let desk_phone = Phone::new(&live.fs, "LiveDesk/201");
    let sign_ins = || {
        let live = &live;
        let domain = &domain;
        async move {
            let (status, body) = live
                .call(
                    Method::GET,
                    &format!("/api/v1/domains/{domain}/location-sign-ins"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            body["items"].as_array().cloned().unwrap_or_default()
        }
    };
    let from_desk = |code: &'static str| {
        let (live, desk_phone, ada_desk) = (&live, &desk_phone, &ada_desk);
        async move {
            let outcome = desk_phone.dial_and_press(ada_desk, code, &[], 30).await;
            assert!(
                answered_and_hung_up(&outcome),
                "{code}: answered and ended by FreeSWITCH: {}\nFreeSWITCH: {}",
                outcome.messages,
                tail(&live.fs.console())
            );
        }
    };
    let call_ada = || {
        let (live, room_phone, caller) = (&live, &room_phone, &caller);
        async move {
            let ringing = Ringing::start(&live.fs, room_phone, Callee::Rings, 30).await;
            let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
            let call = dial(&live.fs, &caller_phone, caller, "201").await;
            (call, ringing.finish().await)
        }
    };

    // Before: the room phone does not ring for 201.
    let (_, saw) = call_ada().await;
    assert!(!invited(&saw), "not signed in yet: {}", saw.messages);

    // A code no Location has signs nobody in.
    from_desk("*14999").await;
    assert!(sign_ins().await.is_empty());

    // *14412 from Ada's own desk phone: Ada is in Room 4, and its phone rings for her.
    from_desk("*14412").await;
    let signed: Vec<Value> = sign_ins().await;
    assert_eq!(signed.len(), 1, "{signed:?}");
    assert_eq!(signed[0]["extension_id"], ada["id"]);
    assert_eq!(signed[0]["location_id"], room["id"]);
    assert_eq!(signed[0]["location_name"], "Room 4");
    let (call, saw) = call_ada().await;
    assert!(
        invited(&saw),
        "the room phone rang for 201: {}\ncaller: {}",
        saw.messages,
        call.messages
    );

    // *15: out again, and the room phone stays quiet.
    from_desk("*15").await;
    assert!(sign_ins().await.is_empty());
    let (_, saw) = call_ada().await;
    assert!(!invited(&saw), "signed out: {}", saw.messages);

    // Each change audited as the phone that made it.
    let (status, audit) = live
        .call(
            Method::GET,
            &format!("/api/v1/domains/{domain}/audit?limit=50"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .unwrap_or("")
                .starts_with("location.sign")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["label"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|(a, by)| *a == "location.sign_in" && by.starts_with("*14 on ")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, by)| *a == "location.sign_out" && by.starts_with("*15 on ")),
        "{actions:?}"
    );
}
