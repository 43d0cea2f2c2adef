//! Hot-desking through the real FreeSWITCH: a phone logged out to a placeholder calls as the
//! placeholder (reception yes, anyone else refused), and a visitor's `*12` returns a desk to
//! its home Extension, whose calls ring there again.

use reqwest::Method;
use serde_json::json;

use crate::dtmf::answered_and_hung_up;
use crate::harness::{Live, Outcome, Phone, received};
use crate::sipp_calls::{
    Callee, Ringing, dial, extension_with_phone, final_answer, reason_line, register, requests,
};

fn tail(text: &str) -> &str {
    &text[text.len().saturating_sub(6000)..]
}

fn invite_from(outcome: &Outcome) -> Option<String> {
    let messages = received(&outcome.messages);
    let invite = messages.iter().find(|m| m.starts_with("INVITE "))?;
    invite
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("from:"))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_logged_out_to_a_placeholder_calls_reception_and_nobody_else() {
    let live = Live::start().await;
    let domain = live.domain("lobby.live.test").await;
    let (_, reception) =
        extension_with_phone(&live, &domain, "100", json!({"voicemail_enabled": false})).await;
    let (_, alice) =
        extension_with_phone(&live, &domain, "201", json!({"voicemail_enabled": false})).await;
    let lobby = live
        .create(
            &domain,
            "extensions",
            json!({"number": "299", "display_name": "Lobby", "placeholder": true,
                   "hotdesk_allowed": false, "voicemail_enabled": false, "toll_allow": [],
                   "internal_allow": ["100"]}),
        )
        .await;
    let (status, body) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/calling-settings"),
            Some(
                json!({"logged_out_mode": "placeholder", "placeholder_extension_id": lobby["id"]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hot = live
        .create(
            &domain,
            "devices",
            json!({"label": "Lobby phone", "mode": "hotdesk"}),
        )
        .await;
    let creds = live.credentials(&domain, hot["id"].as_str().unwrap()).await;
    let phone = Phone::new(&live.fs, "LiveLobby/1.0");
    register(&live, &phone, &creds).await;
    let reception_phone = Phone::new(&live.fs, "LiveReception/1.0");
    register(&live, &reception_phone, &reception).await;
    let alice_phone = Phone::new(&live.fs, "LiveAlice/1.0");
    register(&live, &alice_phone, &alice).await;

    // Reception: the placeholder may call it, and it sees the Lobby calling.
    let answering = Ringing::start(&live.fs, &reception_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &phone, &creds, "100").await;
    assert_eq!(
        final_answer(&call),
        Some(200),
        "{}\nFreeSWITCH: {}",
        call.messages,
        tail(&live.fs.console())
    );
    let answered = answering.finish().await;
    let from = invite_from(&answered).unwrap_or_default();
    assert!(from.contains("299"), "the Lobby calls as 299: {from}");

    // Alice: not on the placeholder's list, refused before her phone rings.
    let ringing = Ringing::start(&live.fs, &alice_phone, Callee::Rings, 15).await;
    let call = dial(&live.fs, &phone, &creds, "201").await;
    assert_eq!(final_answer(&call), Some(403), "{}", call.messages);
    assert!(
        reason_line(&call, 403).contains("OUTGOING_CALL_BARRED"),
        "{}",
        call.messages
    );
    let saw = ringing.finish().await;
    assert!(
        !requests(&received(&saw.messages)).contains(&"INVITE"),
        "Alice's phone stayed quiet: {}",
        saw.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitors_star12_returns_the_desk_to_its_home_extension_and_its_calls_ring_there() {
    let live = Live::start().await;
    let domain = live.domain("home.live.test").await;
    let (_, caller) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let home = live
        .create(
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Ada", "voicemail_enabled": false,
                   "ring_timeout_secs": 6, "hotdesk_allowed": true}),
        )
        .await;
    live.create(
        &domain,
        "extensions",
        json!({"number": "202", "display_name": "Visitor", "pin": "4711", "hotdesk_allowed": true}),
    )
    .await;
    let desk = live
        .create(
            &domain,
            "devices",
            json!({"label": "Ada's desk", "mode": "hotdesk", "home_extension_id": home["id"]}),
        )
        .await;
    let desk_id = desk["id"].as_str().unwrap().to_owned();
    let creds = live.credentials(&domain, &desk_id).await;
    let desk_phone = Phone::new(&live.fs, "LiveDesk/201");
    register(&live, &desk_phone, &creds).await;
    let session = || {
        let (live, domain, desk_id) = (&live, &domain, &desk_id);
        async move {
            let (status, body) = live
                .call(
                    Method::GET,
                    &format!("/api/v1/domains/{domain}/devices/{desk_id}/session"),
                    None,
                )
                .await;
            (status == 200).then(|| {
                format!(
                    "{} via {}",
                    body["extension_number"].as_str().unwrap_or("?"),
                    body["started_via"].as_str().unwrap_or("?")
                )
            })
        }
    };
    let call_ada = || {
        let (live, desk_phone, caller) = (&live, &desk_phone, &caller);
        async move {
            let ringing = Ringing::start(&live.fs, desk_phone, Callee::Rings, 30).await;
            let caller_phone = Phone::new(&live.fs, "LiveCaller/200");
            let call = dial(&live.fs, &caller_phone, caller, "201").await;
            (call, ringing.finish().await)
        }
    };
    // A new desk with a home: Ada sits there, and her calls ring it.
    assert_eq!(session().await.as_deref(), Some("201 via home"));
    let (call, saw) = call_ada().await;
    assert!(
        requests(&received(&saw.messages)).contains(&"INVITE"),
        "Ada's desk rang: {}\ncaller: {}",
        saw.messages,
        call.messages
    );

    // A visitor takes the desk: Ada's calls no longer ring it.
    let (status, body) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/devices/{desk_id}/session"),
            Some(json!({"extension": "202", "pin": "4711"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, saw) = call_ada().await;
    assert!(
        !requests(&received(&saw.messages)).contains(&"INVITE"),
        "the visitor's desk: {}",
        saw.messages
    );

    // *12 on the phone: the visitor leaves, the desk is Ada's again and rings for her.
    let outcome = desk_phone.dial_and_press(&creds, "*12", &[], 30).await;
    assert!(
        answered_and_hung_up(&outcome),
        "*12: {}\nFreeSWITCH: {}",
        outcome.messages,
        tail(&live.fs.console())
    );
    assert_eq!(session().await.as_deref(), Some("201 via home"));
    let (call, saw) = call_ada().await;
    assert!(
        requests(&received(&saw.messages)).contains(&"INVITE"),
        "Ada's desk rang again: {}\ncaller: {}",
        saw.messages,
        call.messages
    );
}
