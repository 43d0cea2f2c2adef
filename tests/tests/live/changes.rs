//! Scenario 5: changes made through the API reach FreeSWITCH on the very next REGISTER or
//! lookup, with no wait for its user cache to expire, and the registrations they end are gone
//! from FreeSWITCH and from the list: a rotated secret, a disabled Device, a disabled or deleted
//! Domain, a Location changed, a phone moved between Locations, the calling settings.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::harness::{Credentials, Live, Phone};

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
        tokio::time::sleep(Duration::from_millis(100)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_domain_drops_its_registrations_and_refuses_its_phones() {
    let live = Live::start().await;
    let domain = live.domain("deleted.live.test").await;
    let desk = live.device(&domain, "304").await;
    let phone = Phone::new(&live.fs, "LivePhone/5.3");
    let outcome = phone.register(&desk, "domain-deleted-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&domain, "the phone", |r| r.len() == 1)
        .await;

    let (status, body) = live
        .call(
            Method::DELETE,
            &format!("/api/v1/domains/{domain}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 204, "deleting the Domain: {body}");
    let mut held = Vec::new();
    for _ in 0..50 {
        held = live.fs.registrations().await;
        if held.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held.is_empty(), "FreeSWITCH still holds {held:?}");

    let outcome = phone.register(&desk, "domain-deleted-2@live.test", 1).await;
    assert_eq!(
        outcome.last_status,
        Some(403),
        "a phone of a deleted Domain is refused at once: {}",
        outcome.messages
    );
}

/// `user_data <user>@<domain> var <name>` as FreeSWITCH answers it now (from its user cache
/// when the entry is cached).
async fn user_var(live: &Live, c: &Credentials, name: &str) -> String {
    live.fs
        .api(&format!("user_data {}@{} var {name}", c.user, c.realm))
        .await
        .trim()
        .to_owned()
}

/// Waits (up to 5 s, far below the 5-minute cache) until FreeSWITCH's answer is `want`.
async fn user_var_until(live: &Live, c: &Credentials, name: &str, want: &str, after: &str) {
    let mut now = String::new();
    for _ in 0..50 {
        now = user_var(live, c, name).await;
        if now == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("after {after}, FreeSWITCH still answers {name}={now:?}, expected {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_and_calling_settings_changes_reach_freeswitch_without_waiting_for_its_cache() {
    let live = Live::start().await;
    let domain = live.domain("places.live.test").await;
    let location = |name: &str, number: &str| {
        json!({"name": name, "emergency_caller_id_name": name, "emergency_caller_id_number": number,
               "emergency_address": format!("{name} street 1")})
    };
    let first = live
        .create(&domain, "locations", location("Berlin", "+4930111111"))
        .await;
    let second = live
        .create(&domain, "locations", location("Hamburg", "+4940222222"))
        .await;
    let desk = live.device(&domain, "305").await;
    let patch = |path: String, body: serde_json::Value| {
        let live = &live;
        async move {
            let (status, answer) = live.call(Method::PATCH, &path, Some(body)).await;
            assert_eq!(status, 200, "PATCH {path}: {answer}");
        }
    };
    let device_path = format!("/api/v1/domains/{domain}/devices/{}", desk.device_id);
    patch(device_path.clone(), json!({"location_id": first["id"]})).await;

    // The phone registers: FreeSWITCH now holds its user in the cache (5 minutes).
    let phone = Phone::new(&live.fs, "LivePhone/5.4");
    let outcome = phone.register(&desk, "places-1@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let var = "emergency_caller_id_number";
    assert_eq!(user_var(&live, &desk, var).await, "+4930111111");

    // Moved to another Location: the next lookup has the new place.
    patch(device_path.clone(), json!({"location_id": second["id"]})).await;
    user_var_until(&live, &desk, var, "+4940222222", "moving the phone").await;

    // The Location itself changes.
    patch(
        format!(
            "/api/v1/domains/{domain}/locations/{}",
            second["id"].as_str().unwrap()
        ),
        json!({"emergency_caller_id_number": "+4940333333"}),
    )
    .await;
    user_var_until(&live, &desk, var, "+4940333333", "changing the Location").await;

    // Out of any Location: the Domain's calling settings decide, and a change there too.
    patch(device_path, json!({"location_id": null})).await;
    let (status, body) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/calling-settings"),
            Some(json!({"emergency_caller_id_number": "+4989444444"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    user_var_until(&live, &desk, var, "+4989444444", "the calling settings").await;
    let (status, body) = live
        .call(
            Method::PUT,
            &format!("/api/v1/domains/{domain}/calling-settings"),
            Some(json!({"emergency_caller_id_number": "+4989555555"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    user_var_until(&live, &desk, var, "+4989555555", "changing them again").await;
}
