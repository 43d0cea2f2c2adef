//! The call history (issue 15): every call recorded once from FreeSWITCH's own CDRs
//! (mod_json_cdr, as shipped), named by the person, the Device and the Location; and no CDR
//! lost while switchboard is down.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Credentials, FreeSwitch, Live, Phone};
use crate::sipp_calls::{
    Callee, Ringing, dial, dial_with, extension_with_phone, final_answer, hot_desk_logged_in,
    register,
};

/// The Domain's calls once there are `count` with all of `legs` legs each (up to 20 s).
async fn calls_until(live: &Live, domain: &str, count: usize, legs: i64) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = live.get(&format!("/api/v1/domains/{domain}/calls")).await;
        let items = last["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= count && items.iter().all(|c| c["legs"].as_i64() >= Some(legs)) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("expected {count} calls with {legs} legs each, the history shows {last}");
}

/// A Location of the Domain; its id.
async fn location(live: &Live, domain: &str, name: &str) -> String {
    live.create(domain, "locations", json!({"name": name}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Puts the Device of `c` in the Location.
async fn place(live: &Live, domain: &str, c: &Credentials, location_id: &str) {
    let (status, body) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/devices/{}", c.device_id),
            Some(json!({"location_id": location_id})),
        )
        .await;
    assert_eq!(status, 200, "placing the device: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_recorded_once_with_the_person_the_device_and_the_location() {
    let live = Live::start().await;
    let domain = live.domain("history.live.test").await;
    let front = location(&live, &domain, "Front desk").await;
    let back = location(&live, &domain, "Back office").await;
    let (alice, alice_desk) = extension_with_phone(&live, &domain, "200", json!({})).await;
    let (bob, bob_desk) =
        extension_with_phone(&live, &domain, "201", json!({"voicemail_enabled": false})).await;
    let (carol, _) = extension_with_phone(
        &live,
        &domain,
        "202",
        json!({"hotdesk_allowed": true, "voicemail_enabled": false}),
    )
    .await;
    place(&live, &domain, &alice_desk, &front).await;
    place(&live, &domain, &bob_desk, &back).await;
    // Carol is logged in on a hot-desk phone: her calls from it are hers, not the phone's.
    let hot = hot_desk_logged_in(&live, &domain, "202").await;

    let alice_phone = Phone::new(&live.fs, "HistoryAlice/200");
    let bob_phone = Phone::new(&live.fs, "HistoryBob/201");
    let hot_phone = Phone::new(&live.fs, "HistoryHotDesk/202");
    register(&live, &alice_phone, &alice_desk).await;
    register(&live, &bob_phone, &bob_desk).await;
    register(&live, &hot_phone, &hot).await;

    // Alice calls Bob, who answers.
    let answers = Ringing::start(&live.fs, &bob_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &alice_phone, &alice_desk, "201").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    answers.finish().await;
    let calls = calls_until(&live, &domain, 1, 2).await;
    assert_eq!(calls.len(), 1, "one call, recorded once: {calls:?}");
    let c = &calls[0];
    assert_eq!(c["direction"], "internal");
    assert_eq!(c["caller"]["extension_id"], alice["id"]);
    assert_eq!(c["caller"]["extension_number"], "200");
    assert_eq!(
        c["caller"]["device_id"].as_str(),
        Some(alice_desk.device_id.as_str())
    );
    assert_eq!(c["caller"]["location_id"].as_str(), Some(front.as_str()));
    assert_eq!(c["callee"]["extension_id"], bob["id"]);
    assert_eq!(c["callee"]["number"], "201");
    assert_eq!(
        c["callee"]["device_id"].as_str(),
        Some(bob_desk.device_id.as_str())
    );
    assert_eq!(c["callee"]["location_id"].as_str(), Some(back.as_str()));
    assert_eq!(c["answered"], true);
    assert_eq!(c["hangup_cause"], "NORMAL_CLEARING");
    assert_eq!(c["emergency"], false);
    let detail = live
        .get(&format!(
            "/api/v1/domains/{domain}/calls/{}",
            c["id"].as_str().unwrap()
        ))
        .await;
    let legs = detail["leg_details"].as_array().unwrap();
    assert_eq!(
        legs.len(),
        2,
        "the caller's leg and Bob's phone's: {detail}"
    );
    assert!(legs[1]["parent"] == legs[0]["uuid"], "{detail}");

    // Carol, hot-desking, calls Bob: the call is hers, made from the hot-desk phone.
    let answers = Ringing::start(&live.fs, &bob_phone, Callee::Answers, 30).await;
    let call = dial(&live.fs, &hot_phone, &hot, "201").await;
    assert_eq!(final_answer(&call), Some(200), "{}", call.messages);
    answers.finish().await;
    let calls = calls_until(&live, &domain, 2, 2).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    let newest = &calls[0];
    assert_eq!(newest["caller"]["extension_id"], carol["id"]);
    assert_eq!(
        newest["caller"]["device_id"].as_str(),
        Some(hot.device_id.as_str())
    );
    assert_eq!(newest["callee"]["extension_id"], bob["id"]);

    // Filtered by person: Carol made one call, Bob took both.
    let carols = live
        .get(&format!(
            "/api/v1/domains/{domain}/calls?extension_id={}",
            carol["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(carols["items"].as_array().unwrap().len(), 1, "{carols}");
    let bobs = live
        .get(&format!(
            "/api/v1/domains/{domain}/calls?extension_id={}&answered=true",
            bob["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 2, "{bobs}");
    let front_desk = live
        .get(&format!(
            "/api/v1/domains/{domain}/calls?location_id={front}"
        ))
        .await;
    assert_eq!(front_desk["items"].as_array().unwrap().len(), 1);
}

/// How many CDRs wait in `fs`'s spool.
fn spooled(fs: &FreeSwitch) -> usize {
    std::fs::read_dir(FreeSwitch::cdr_spool_of(&fs.run))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".cdr.json"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until FreeSWITCH carries `n` channels (up to 10 s).
async fn channels_until(fs: &FreeSwitch, n: usize) {
    count_until(fs, "channels", n).await;
}

/// Waits (up to 10 s) until `n` channels are answered (`callstate` `ACTIVE`).
async fn answered_until(fs: &FreeSwitch, n: usize) {
    let mut shown = String::new();
    for _ in 0..100 {
        shown = fs.api("show channels").await;
        let mut lines = shown.lines();
        let state = lines
            .next()
            .and_then(|head| head.split(',').position(|c| c == "callstate"));
        let active = state.map_or(0, |i| {
            lines
                .filter(|l| l.split(',').nth(i) == Some("ACTIVE"))
                .count()
        });
        if active == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("FreeSWITCH does not carry {n} answered channels: {shown}");
}

/// Waits (up to 10 s) until FreeSWITCH holds `n` of `what` (`show <what> count`).
async fn count_until(fs: &FreeSwitch, what: &str, n: usize) {
    for _ in 0..100 {
        let out = fs.api(&format!("show {what} count")).await;
        let count = out
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<usize>().ok())
            .unwrap_or(0);
        if count == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "FreeSWITCH does not carry {n} {what}: {}",
        fs.api("show channels").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_end_while_switchboard_is_down_are_recorded_when_it_is_back() {
    let live = Live::start().await;
    let domain = live.domain("restart.history.live.test").await;
    let (_, a) = extension_with_phone(&live, &domain, "300", json!({})).await;
    let (_, b) = extension_with_phone(&live, &domain, "301", json!({})).await;
    let (_, c) = extension_with_phone(&live, &domain, "302", json!({})).await;
    let (_, d) = extension_with_phone(&live, &domain, "303", json!({})).await;
    let phones: Vec<Phone> = ["A/300", "B/301", "C/302", "D/303"]
        .iter()
        .map(|ua| Phone::new(&live.fs, ua))
        .collect();
    for (phone, creds) in phones.iter().zip([&a, &b, &c, &d]) {
        register(&live, phone, creds).await;
    }
    // Two calls, held up: 300 → 301 and 302 → 303.
    let b_answers = Ringing::start(&live.fs, &phones[1], Callee::Answers, 60).await;
    let d_answers = Ringing::start(&live.fs, &phones[3], Callee::Answers, 60).await;
    let fs = &live.fs;
    let first = dial_with(fs, &phones[0], &a, "301", "call_hold.xml");
    let second = dial_with(fs, &phones[2], &c, "303", "call_hold.xml");
    let hang_up = async {
        channels_until(fs, 4).await;
        // Answered, not just ringing: a ringing call whose ring fails needs switchboard for
        // its outcome.
        answered_until(fs, 4).await;
        // switchboard goes down with both calls up.
        live.app.stop().await;
        let first_call = fs.api("show channels like 300").await;
        let uuid = first_call
            .lines()
            .nth(1)
            .and_then(|l| l.split(',').next())
            .unwrap_or_default()
            .to_owned();
        assert!(!uuid.is_empty(), "{first_call}");
        // The first call ends: FreeSWITCH cannot post, retries, then spools both legs.
        fs.api(&format!("uuid_kill {uuid}")).await;
        for _ in 0..200 {
            if spooled(fs) >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(spooled(fs), 2, "both legs of the first call spooled");
        // The second call ends; switchboard is back while FreeSWITCH still retries.
        fs.api("hupall NORMAL_CLEARING").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        live.app.start_again().await;
    };
    let (first, second, ()) = tokio::join!(first, second, hang_up);
    assert_eq!(final_answer(&first), Some(200), "{}", first.messages);
    assert_eq!(final_answer(&second), Some(200), "{}", second.messages);
    b_answers.finish().await;
    d_answers.finish().await;

    // Every leg arrives: the spooled ones imported, the retried ones posted.
    let calls = calls_until(&live, &domain, 2, 2).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    let numbers: Vec<&str> = calls
        .iter()
        .map(|c| c["caller"]["extension_number"].as_str().unwrap_or_default())
        .collect();
    assert!(
        numbers.contains(&"300") && numbers.contains(&"302"),
        "{numbers:?}"
    );
    for _ in 0..50 {
        if spooled(fs) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spooled(fs), 0, "the spool is emptied once imported");
}
