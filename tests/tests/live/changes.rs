//! Scenario 5: changes made through the API reach FreeSWITCH on the very next REGISTER, with
//! no wait for its user cache to expire, and the registrations they end are gone from
//! FreeSWITCH and from the list.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Live, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_drops_the_registration_and_only_the_new_secret_registers() {
    let live = Live::start().await;
    let domain = live.domain("rotate.live.test").await;
    let desk = live.device(&domain, "301").await;
    let phone = Phone::new(&live.fs, "LivePhone/5.0");
    let outcome = phone.register(&desk, "rotate-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

    let (status, body) = live
        .call(
            Method::POST,
            &format!(
                "/api/v1/domains/{domain}/devices/{}/rotate-secret",
                desk.device_id
            ),
            None,
        )
        .await;
    assert!(status == 200 || status == 204, "rotating: {status} {body}");
    live.registrations_until(&domain, "the registration dropped", |r| r.is_empty())
        .await;
    assert!(live.fs.registrations().await.is_empty());

    let outcome = phone.register(&desk, "rotate-2@live.test", 1).await;
    assert_eq!(
        outcome.last_status,
        Some(403),
        "the old secret is refused at once (the cached user was flushed): {}",
        outcome.messages
    );
    let rotated = live.credentials(&domain, &desk.device_id).await;
    assert_ne!(rotated.password, desk.password);
    let outcome = phone.register(&rotated, "rotate-3@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_device_is_unregistered_and_refused() {
    let live = Live::start().await;
    let domain = live.domain("disable.live.test").await;
    let desk = live.device(&domain, "302").await;
    let phone = Phone::new(&live.fs, "LivePhone/5.1");
    let outcome = phone.register(&desk, "disable-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

    let (status, body) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}/devices/{}", desk.device_id),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "disabling: {body}");
    live.registrations_until(&domain, "the registration dropped", |r| r.is_empty())
        .await;
    assert!(live.fs.registrations().await.is_empty());

    let outcome = phone.register(&desk, "disable-2@live.test", 1).await;
    assert_eq!(
        outcome.last_status,
        Some(403),
        "a disabled Device is refused at once: {}",
        outcome.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_domain_drops_its_registrations_and_refuses_its_phones() {
    let live = Live::start().await;
    let domain = live.domain("off.live.test").await;
    let desk = live.device(&domain, "303").await;
    let phone = Phone::new(&live.fs, "LivePhone/5.2");
    let outcome = phone.register(&desk, "domain-off-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

    let (status, body) = live
        .call(
            Method::PATCH,
            &format!("/api/v1/domains/{domain}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200, "disabling the Domain: {body}");
    let mut held = Vec::new();
    for _ in 0..50 {
        held = live.fs.registrations().await;
        if held.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held.is_empty(), "FreeSWITCH still holds {held:?}");

    let outcome = phone.register(&desk, "domain-off-2@live.test", 1).await;
    assert_eq!(
        outcome.last_status,
        Some(403),
        "a phone of a disabled Domain is refused at once: {}",
        outcome.messages
    );
}
