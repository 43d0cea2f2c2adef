//! Scenario 1: Devices created through the API register with the credentials the API hands
//! out, and the registration list follows what FreeSWITCH really holds: listed with contact and
//! user agent, gone after an unregister, one row after a reboot with a new Call-ID.

use crate::harness::{Live, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_registers_with_its_api_credentials_is_listed_and_unregistering_removes_it() {
    let live = Live::start().await;
    let domain = live.domain("alpha.live.test").await;
    let desk = live.device(&domain, "201").await;
    let phone = Phone::new(&live.fs, "LivePhone/1.0");

    let outcome = phone.register(&desk, "boot-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let rows = live
        .registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;
    assert_eq!(rows[0]["sip_user"], desk.user.as_str());
    assert_eq!(rows[0]["call_id"], "boot-1@live.test");
    assert_eq!(rows[0]["user_agent"], "LivePhone/1.0");
    let contact = rows[0]["contact"].as_str().unwrap();
    assert!(
        contact.contains(&format!("{}@127.0.0.1:{}", desk.user, phone.port)),
        "the contact the phone registered: {contact}"
    );
    assert_eq!(live.fs.registrations().await.len(), 1);

    let outcome = phone.unregister(&desk, "boot-1@live.test", 10).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "no phone", |r| r.is_empty())
        .await;
    assert!(live.fs.registrations().await.is_empty());
}

/// F3: rows were keyed by Call-ID alone, so a phone that rebooted (same contact, new Call-ID)
/// left its old row behind although FreeSWITCH (`multiple-registrations=contact`) replaced it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebooted_phone_registering_with_a_new_call_id_replaces_its_row() {
    let live = Live::start().await;
    let domain = live.domain("beta.live.test").await;
    let desk = live.device(&domain, "202").await;
    let phone = Phone::new(&live.fs, "LivePhone/2.0");

    let outcome = phone.register(&desk, "before-reboot@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

    let outcome = phone.register(&desk, "after-reboot@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let held = live.fs.registrations().await;
    assert_eq!(
        held.len(),
        1,
        "FreeSWITCH replaced the registration: {held:?}"
    );
    live.registrations_until(&domain, "only the new registration", |r| {
        r.len() == 1 && r[0]["call_id"] == "after-reboot@live.test"
    })
    .await;
}
