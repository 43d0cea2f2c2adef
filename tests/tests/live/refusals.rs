//! Scenario 2 (REGISTER): what a phone is refused. Seen from the phone (the final answer sipp
//! received) and from FreeSWITCH and the API (nothing registered).

use crate::harness::{Live, Phone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_another_domains_user_name_are_refused() {
    let live = Live::start().await;
    let a = live.domain("a.refuse.live.test").await;
    let b = live.domain("b.refuse.live.test").await;
    let desk_a = live.device(&a, "201").await;
    let desk_b = live.device(&b, "201").await;
    let phone = Phone::new(&live.fs, "LivePhone/2.0");

    let wrong = phone
        .register_as(
            &desk_a.user,
            &desk_a.realm,
            &desk_a.realm,
            &desk_a.user,
            "not-the-secret",
            "wrong-password@live.test",
            1,
            300,
        )
        .await;
    assert_eq!(wrong.last_status, Some(403), "{}", wrong.messages);

    // B's SIP user with B's secret, in Domain A.
    let foreign = phone
        .register_as(
            &desk_b.user,
            &desk_a.realm,
            &desk_a.realm,
            &desk_b.user,
            &desk_b.password,
            "foreign-user@live.test",
            1,
            300,
        )
        .await;
    assert_eq!(foreign.last_status, Some(403), "{}", foreign.messages);

    assert!(live.fs.registrations().await.is_empty());
    assert!(live.registrations(&a).await.is_empty());
    assert!(live.registrations(&b).await.is_empty());
}

/// F1: FreeSWITCH checks the digest in the realm the phone answers in (here B, named by the
/// From) but stores the registration under the To domain (A): with B's credentials a phone
/// became `<user>@A` and would take A's calls. The directory now refuses a REGISTER whose
/// realm, To or From is not the user's own Domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_of_one_domain_cannot_register_as_a_user_of_another() {
    let live = Live::start().await;
    let a = live.domain("a.tenant.live.test").await;
    let b = live.domain("b.tenant.live.test").await;
    let _desk_a = live.device(&a, "201").await;
    let desk_b = live.device(&b, "201").await;
    let phone = Phone::new(&live.fs, "LivePhone/2.1");

    let outcome = phone
        .register_as(
            &desk_b.user,
            "a.tenant.live.test",
            &desk_b.realm,
            &desk_b.user,
            &desk_b.password,
            "cross-tenant@live.test",
            1,
            300,
        )
        .await;
    assert_eq!(
        outcome.last_status,
        Some(403),
        "a credential of B registered To A: {}",
        outcome.messages
    );
    let held = live.fs.registrations().await;
    assert!(held.is_empty(), "FreeSWITCH holds {held:?}");
    assert!(live.registrations(&a).await.is_empty());
}
