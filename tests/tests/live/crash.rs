//! Scenario 6: FreeSWITCH killed with SIGKILL and restarted while a phone is registered: the
//! link comes back within 5 s, the registration list matches what FreeSWITCH holds, and a
//! registration dropped before the crash does not come back. While FreeSWITCH is down, no lamp
//! stays on a call it took with it (F7).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::harness::{Live, Phone};
use crate::sipp_calls::{Callee, Ringing};

/// The telephone status of Extension `number` as `GET …/presence` shows it.
async fn telephone(live: &Live, domain: &str, number: &str) -> String {
    let all = live
        .get(&format!("/api/v1/domains/{domain}/presence"))
        .await;
    let items = all["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .find(|p| p["number"] == number)
        .map(|p| p["telephone"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{number} in the presence list: {all}"))
}

/// Waits (up to 15 s) until Extension `number`'s telephone status is `want`.
async fn telephone_until(live: &Live, domain: &str, number: &str, want: &str) {
    let mut now = String::new();
    for _ in 0..150 {
        now = telephone(live, domain, number).await;
        if now == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{number} stayed {now}, expected {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_phone_does_not_stay_ringing_while_freeswitch_is_down() {
    let mut live = Live::start().await;
    let domain = live.domain("ringing.live.test").await;
    let desk = live.device(&domain, "402").await;
    let phone = Phone::new(&live.fs, "LivePhone/6.1");
    let outcome = phone.register(&desk, "ringing-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    telephone_until(&live, &domain, "402", "available").await;

    let ringing = Ringing::start(&live.fs, &phone, Callee::Rings, 60).await;
    let job = live
        .fs
        .api(&format!(
            "bgapi originate {{originate_timeout=60}}user/{}@{} &park()",
            desk.user, desk.realm
        ))
        .await;
    assert!(job.contains("+OK"), "{job}");
    telephone_until(&live, &domain, "402", "ringing").await;

    // FreeSWITCH dies with the call: the lamp does not go on ringing while it is down.
    live.fs.kill().await;
    telephone_until(&live, &domain, "402", "available").await;
    let nodes = live.get("/api/v1/freeswitch/nodes").await;
    assert_ne!(nodes["items"][0]["state"], "connected", "{nodes}");
    assert!(nodes["items"][0]["last_error"].is_string(), "{nodes}");
    drop(ringing);

    live.fs.restart().await;
    live.wait_connected().await;
    let nodes = live.get("/api/v1/freeswitch/nodes").await;
    assert!(
        nodes["items"][0]["last_error"].is_null(),
        "connected again, no error shown: {nodes}"
    );
    assert!(
        nodes["items"][0]["last_disconnect_reason"].is_string(),
        "why it went down is kept: {nodes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_freeswitch_is_killed_and_restarted_the_link_and_registrations_come_back() {
    let mut live = Live::start().await;
    let domain = live.domain("crash.live.test").await;
    let desk = live.device(&domain, "401").await;
    let phone = Phone::new(&live.fs, "LivePhone/6.0");
    let outcome = phone.register(&desk, "crash-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    // A second phone, registered and then disabled before the crash.
    let gone = live.device(&domain, "402").await;
    let gone_phone = Phone::new(&live.fs, "LivePhone/6.2");
    let outcome = gone_phone.register(&gone, "crash-2@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "both phones", |r| r.len() == 2)
        .await;
    let (status, body) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/devices/{}", gone.device_id),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    live.registrations_until(&domain, "the disabled phone dropped", |r| r.len() == 1)
        .await;
    assert_eq!(live.fs.registrations().await.len(), 1);

    live.fs.kill().await;
    live.fs.restart().await;
    // The bound: the link is back within 5 s of FreeSWITCH being ready.
    let ready = Instant::now();
    live.wait_connected().await;
    assert!(
        ready.elapsed() < Duration::from_secs(5),
        "the link took {:?} to come back",
        ready.elapsed()
    );

    let held = live.fs.registrations().await;
    let rows = live
        .registrations_until(&domain, "FreeSWITCH's list after the restart", |r| {
            r.len() == held.len()
        })
        .await;
    assert_eq!(
        held.len(),
        1,
        "the phone dropped before the crash stays gone: {held:?}"
    );
    assert!(
        !rows.iter().any(|r| r["sip_user"] == gone.user.as_str()),
        "and is not listed: {rows:#?}"
    );
    for (user, _) in &held {
        assert!(
            rows.iter()
                .any(|r| format!("{}@{}", r["sip_user"].as_str().unwrap(), desk.realm) == *user),
            "{user}, held by FreeSWITCH, is listed: {rows:#?}"
        );
    }
}
