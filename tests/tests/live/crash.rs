//! Scenario 6: FreeSWITCH killed with SIGKILL and restarted while a phone is registered: the
//! link comes back within 5 s and the registration list matches what FreeSWITCH holds.

use std::time::{Duration, Instant};

use crate::harness::{Live, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_freeswitch_is_killed_and_restarted_the_link_and_registrations_come_back() {
    let mut live = Live::start().await;
    let domain = live.domain("crash.live.test").await;
    let desk = live.device(&domain, "401").await;
    let phone = Phone::new(&live.fs, "LivePhone/6.0");
    let outcome = phone.register(&desk, "crash-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

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
    for (user, _) in &held {
        assert!(
            rows.iter()
                .any(|r| format!("{}@{}", r["sip_user"].as_str().unwrap(), desk.realm) == *user),
            "{user}, held by FreeSWITCH, is listed: {rows:#?}"
        );
    }
}
