//! Scenario 2 (REGISTER and INVITE): what a phone is refused. Seen from the phone (the final answer sipp
//! received) and from FreeSWITCH and the API (nothing registered).

use crate::harness::{Live, Phone, received};
use crate::sipp_calls::{Callee, Ringing, register};

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

/// F1, the cached case: once B's user sits in FreeSWITCH's user cache, FreeSWITCH checks the
/// digest without asking the directory, so the refusal above never runs. The bridge sees the
/// registration's realm differ from its To domain and has FreeSWITCH drop it at once; it is
/// never listed under either Domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_domain_registration_answered_from_the_cache_is_dropped_at_once() {
    let live = Live::start().await;
    let a = live.domain("a.cached.live.test").await;
    let b = live.domain("b.cached.live.test").await;
    let _desk_a = live.device(&a, "201").await;
    let desk_b = live.device(&b, "201").await;

    // B's own phone registers: B's user is now cached (cacheable, 5 minutes).
    let own = Phone::new(&live.fs, "LivePhone/2.2");
    let outcome = own.register(&desk_b, "own@live.test", 1).await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    live.registrations_until(&b, "B's phone", |r| r.len() == 1)
        .await;

    let intruder = Phone::new(&live.fs, "LivePhone/2.3");
    intruder
        .register_as(
            &desk_b.user,
            "a.cached.live.test",
            &desk_b.realm,
            &desk_b.user,
            &desk_b.password,
            "cross-tenant-cached@live.test",
            1,
            300,
        )
        .await;
    let under_a = format!("{}@a.cached.live.test", desk_b.user);
    let mut held = Vec::new();
    for _ in 0..50 {
        held = live.fs.registrations().await;
        if !held
            .iter()
            .any(|(user, _)| user.eq_ignore_ascii_case(&under_a))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !held
            .iter()
            .any(|(user, _)| user.eq_ignore_ascii_case(&under_a)),
        "FreeSWITCH still holds {under_a} after 5 s: {held:?}"
    );
    assert!(live.registrations(&a).await.is_empty());
    let rows_b = live.registrations(&b).await;
    assert!(
        rows_b
            .iter()
            .all(|r| r["call_id"] != "cross-tenant-cached@live.test"),
        "the intruder is not listed under B either: {rows_b:#?}"
    );
}

/// Scenario 2 for INVITE: a wrong password, and another Domain's user name calling as a user
/// of this one, are refused before anything rings (the callee's phone sees no INVITE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_a_wrong_password_or_another_domains_credentials_are_refused() {
    let live = Live::start().await;
    let a = live.domain("a.invite.live.test").await;
    let b = live.domain("b.invite.live.test").await;
    let callee = live.device(&a, "201").await;
    let desk_a = live.device(&a, "202").await;
    let desk_b = live.device(&b, "202").await;

    // 201's phone is registered and would ring.
    let ringing = Phone::new(&live.fs, "LiveCallee/2.4");
    let outcome = ringing
        .register(&callee, "invite-callee@live.test", 1)
        .await;
    assert_eq!(outcome.last_status, Some(200), "{}", outcome.messages);
    let watching = Ringing::start(&live.fs, &ringing, Callee::Rings, 30).await;

    let caller = Phone::new(&live.fs, "LiveCaller/2.4");
    let wrong = caller
        .place_call(
            &desk_a,
            "not-the-secret",
            &desk_a.realm,
            &desk_a.realm,
            "201",
        )
        .await;
    assert_eq!(wrong.last_status, Some(403), "{}", wrong.messages);

    // B's user name and secret, calling as a user of A (From A, so challenged in A's realm).
    let foreign = caller
        .place_call(
            &desk_b,
            &desk_b.password,
            &desk_a.realm,
            &desk_a.realm,
            "201",
        )
        .await;
    assert_eq!(foreign.last_status, Some(403), "{}", foreign.messages);

    let seen = watching.finish().await;
    assert!(
        !received(&seen.messages)
            .iter()
            .any(|m| m.starts_with("INVITE ")),
        "201's phone never rang: {}",
        seen.messages
    );
}

/// F1 for calls: B's phone sends its INVITE to A (request URI and To in A, From and digest realm
/// its own B). The call is B's: it runs in B's context, so "201" is B's 201; A's 201 never rings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_addressed_to_another_domain_stays_in_the_callers_own() {
    let live = Live::start().await;
    let a = live.domain("a.realm.live.test").await;
    let b = live.domain("b.realm.live.test").await;
    let a201 = live.device(&a, "201").await;
    let b201 = live.device(&b, "201").await;
    let b202 = live.device(&b, "202").await;
    let a_phone = Phone::new(&live.fs, "LiveA/201");
    let b_phone = Phone::new(&live.fs, "LiveB/201");
    register(&live, &a_phone, &a201).await;
    register(&live, &b_phone, &b201).await;
    let a_rings = Ringing::start(&live.fs, &a_phone, Callee::Rings, 30).await;
    let b_answers = Ringing::start(&live.fs, &b_phone, Callee::Answers, 30).await;

    // Twice: the second time B's 202 is in FreeSWITCH's user cache, where the directory's
    // checks do not run.
    let caller = Phone::new(&live.fs, "LiveB/202");
    for round in ["looked up", "cached"] {
        let call = caller
            .place_call(&b202, &b202.password, &b202.realm, &a201.realm, "201")
            .await;
        assert_eq!(call.last_status, Some(200), "{round}: {}", call.messages);
    }

    let b_saw = b_answers.finish().await;
    assert_eq!(
        received(&b_saw.messages)
            .iter()
            .filter(|m| m.starts_with("INVITE "))
            .count(),
        2,
        "B's own 201 rang both times: {}",
        b_saw.messages
    );
    let a_saw = a_rings.finish().await;
    assert!(
        !received(&a_saw.messages)
            .iter()
            .any(|m| m.starts_with("INVITE ")),
        "A's 201 never rang for B's phone: {}",
        a_saw.messages
    );
}
