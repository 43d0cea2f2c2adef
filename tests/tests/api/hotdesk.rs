//! Hot-desk sessions: login/logout with the PIN, admin login, refusals, one phone at a time,
//! PIN lockout across attempts, 100 concurrent logins against the database invariants,
//! auto-logout with an injected clock, audit entries and tenant isolation.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::bindings::lockout::SCOPE_PIN_EXTENSION;
use switchboard_domain::services::scheduler;
use switchboard_domain::store::{auth_failures, hotdesk_sessions};
use switchboard_tests::{TestApp, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    a_member_logs_in_and_out_with_the_pin,
    an_admin_logs_in_without_a_pin_and_replaces_whoever_is_there,
    refusals_fixed_device_placeholder_and_not_allowed,
    one_phone_at_a_time_ends_the_previous_session,
    five_wrong_pins_lock_out_even_the_right_one_until_the_window_passes,
    a_hundred_concurrent_logins_keep_one_session_per_device_and_extension,
    the_scheduler_ends_sessions_after_hours_and_daily_at,
    another_domains_admin_gets_404_on_every_hotdesk_endpoint,
    logins_and_logouts_are_published_after_commit_for_freeswitch_and_clients,
    making_the_device_fixed_or_disabled_ends_its_session_for_good,
    disabling_or_deleting_the_extension_ends_its_sessions_and_sign_ins_audited,
    deleting_a_device_audits_the_end_of_its_session,
    turning_one_phone_at_a_time_on_keeps_each_extension_on_its_newest_phone,
);

const PIN: &str = "4711";

/// A Domain with an admin token, and a member linked to Extension 201 (PIN 4711).
struct Fixture {
    domain: String,
    admin: String,
    member: String,
    ext201: String,
}

async fn extension_with_pin(
    app: &TestApp,
    token: &str,
    domain: &str,
    number: &str,
    user: Option<&str>,
) -> String {
    let mut body = json!({"number": number, "display_name": format!("Ext {number}"),
        "pin": PIN, "hotdesk_allowed": true});
    if let Some(u) = user {
        body["user_id"] = json!(u);
    }
    id_of(&create(app, token, domain, "extensions", body).await)
}

async fn hotdesk_device(app: &TestApp, token: &str, domain: &str, label: &str) -> String {
    id_of(
        &create(
            app,
            token,
            domain,
            "devices",
            json!({"label": label, "mode": "hotdesk"}),
        )
        .await,
    )
}

async fn fixture(app: &TestApp, sip: &str) -> Fixture {
    let (domain, admin) = domain_with_admin(app, sip).await;
    let email = format!("member@{sip}");
    let user = create_user(app, &admin, &domain, &email, &["member"]).await;
    let member = token_of(app, &email).await;
    let ext201 = extension_with_pin(app, &admin, &domain, "201", Some(&user)).await;
    Fixture {
        domain,
        admin,
        member,
        ext201,
    }
}

fn session_path(f: &Fixture, device: &str) -> String {
    format!("/api/v1/domains/{}/devices/{device}/session", f.domain)
}

async fn login(
    app: &TestApp,
    token: &str,
    f: &Fixture,
    device: &str,
    number: &str,
    pin: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"extension": number});
    if let Some(p) = pin {
        body["pin"] = json!(p);
    }
    call(
        app,
        token,
        Method::PUT,
        &session_path(f, device),
        Some(body),
    )
    .await
}

async fn active(app: &TestApp) -> Vec<hotdesk_sessions::Model> {
    hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .all(&app.db)
        .await
        .unwrap()
}

async fn audit_actions(app: &TestApp, f: &Fixture) -> Vec<Value> {
    let (status, body) = call(
        app,
        &f.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/audit?limit=100", f.domain),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_member_logs_in_and_out_with_the_pin(app: TestApp) {
    let f = fixture(&app, "hd1.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 1").await;
    let (status, _) = call(&app, &f.member, Method::GET, &session_path(&f, &desk), None).await;
    assert_eq!(status, 404);
    let (status, session) = login(&app, &f.member, &f, &desk, "201", Some(PIN)).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["extension_id"], json!(f.ext201));
    assert_eq!(session["started_via"], "api");
    // Idempotent: the same session.
    let (status, again) = login(&app, &f.member, &f, &desk, "201", Some(PIN)).await;
    assert_eq!((status, &again["id"]), (200, &session["id"]));
    let (status, got) = call(&app, &f.member, Method::GET, &session_path(&f, &desk), None).await;
    assert_eq!((status, &got["id"]), (200, &session["id"]));
    // A member without the PIN is refused.
    let (status, problem) = login(&app, &f.member, &f, &desk, "201", None).await;
    assert_eq!(status, 422, "{problem}");
    // Self-service logout, then login through /me.
    let (status, _) = call(
        &app,
        &f.member,
        Method::DELETE,
        &format!("/api/v1/me/hotdesk/{desk}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(active(&app).await.is_empty());
    let (status, me) = call(
        &app,
        &f.member,
        Method::PUT,
        &format!("/api/v1/me/hotdesk/{desk}"),
        Some(json!({"pin": PIN})),
    )
    .await;
    assert_eq!(
        (status, &me["extension_number"]),
        (200, &json!("201")),
        "{me}"
    );
    let (status, _) = call(
        &app,
        &f.member,
        Method::DELETE,
        &session_path(&f, &desk),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let entries = audit_actions(&app, &f).await;
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"hotdesk.session.start"), "{actions:?}");
    assert!(actions.contains(&"hotdesk.session.end"), "{actions:?}");
    assert!(actions.contains(&"hotdesk.pin_failed"), "{actions:?}");
    let end = entries
        .iter()
        .find(|e| e["action"] == "hotdesk.session.end")
        .unwrap();
    assert_eq!(end["after"]["ended_reason"], "logged_out", "{end}");
    assert_eq!(
        end["actor"]["label"],
        json!("member@hd1.example.net"),
        "{end}"
    );
}

async fn an_admin_logs_in_without_a_pin_and_replaces_whoever_is_there(app: TestApp) {
    let f = fixture(&app, "hd2.example.net").await;
    extension_with_pin(&app, &f.admin, &f.domain, "202", None).await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 2").await;
    let (status, s) = login(&app, &f.member, &f, &desk, "201", Some(PIN)).await;
    assert_eq!(status, 200, "{s}");
    // A member may not take the device over ...
    let (status, problem) = login(&app, &f.member, &f, &desk, "202", Some(PIN)).await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("device_in_use")),
        "{problem}"
    );
    // ... an admin replaces, without a PIN.
    let (status, s) = login(&app, &f.admin, &f, &desk, "202", None).await;
    assert_eq!((status, &s["started_via"]), (200, &json!("admin")), "{s}");
    // The member may not log someone else out.
    let (status, problem) = call(
        &app,
        &f.member,
        Method::DELETE,
        &session_path(&f, &desk),
        None,
    )
    .await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("device_in_use")),
        "{problem}"
    );
    let (status, _) = call(
        &app,
        &f.admin,
        Method::DELETE,
        &format!("{}?reason=end%20of%20shift", session_path(&f, &desk)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let entries = audit_actions(&app, &f).await;
    let reasons: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "hotdesk.session.end")
        .filter_map(|e| e["after"]["ended_reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"replaced_by_admin") && reasons.contains(&"forced_by_admin"),
        "{reasons:?}"
    );
    let forced = entries
        .iter()
        .find(|e| e["after"]["ended_reason"] == "forced_by_admin")
        .unwrap();
    assert!(
        forced["after"]["why"]
            .as_str()
            .unwrap()
            .contains("end of shift"),
        "{forced}"
    );
}

async fn refusals_fixed_device_placeholder_and_not_allowed(app: TestApp) {
    let f = fixture(&app, "hd3.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 3").await;
    let fixed = id_of(
        &create(
            &app,
            &f.admin,
            &f.domain,
            "devices",
            json!({"label": "Fixed", "mode": "fixed", "owner_extension_id": f.ext201}),
        )
        .await,
    );
    let (status, p) = login(&app, &f.admin, &f, &fixed, "201", None).await;
    assert_eq!(
        (status, &p["code"]),
        (409, &json!("device_not_hotdesk")),
        "{p}"
    );
    create(
        &app,
        &f.admin,
        &f.domain,
        "extensions",
        json!({"number": "299", "display_name": "Placeholder", "placeholder": true, "hotdesk_allowed": false}),
    )
    .await;
    create(
        &app,
        &f.admin,
        &f.domain,
        "extensions",
        json!({"number": "298", "display_name": "No desk", "hotdesk_allowed": false}),
    )
    .await;
    for number in ["299", "298", "404"] {
        let (status, p) = login(&app, &f.admin, &f, &desk, number, None).await;
        assert_eq!(status, 422, "{number}: {p}");
    }
    let (status, _) = login(&app, &f.admin, &f, &Uuid::now_v7().to_string(), "201", None).await;
    assert_eq!(status, 404);
}

async fn one_phone_at_a_time_ends_the_previous_session(app: TestApp) {
    let f = fixture(&app, "hd4.example.net").await;
    let a = hotdesk_device(&app, &f.admin, &f.domain, "Desk A").await;
    let b = hotdesk_device(&app, &f.admin, &f.domain, "Desk B").await;
    assert_eq!(
        login(&app, &f.member, &f, &a, "201", Some(PIN)).await.0,
        200
    );
    assert_eq!(
        login(&app, &f.member, &f, &b, "201", Some(PIN)).await.0,
        200
    );
    let now = active(&app).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].device_id.to_string(), b);
    let (status, _) = call(&app, &f.member, Method::GET, &session_path(&f, &a), None).await;
    assert_eq!(status, 404);
    // With the setting off, both phones may be used.
    let (status, body) = call(
        &app,
        &f.admin,
        Method::PUT,
        &format!("/api/v1/domains/{}/calling-settings", f.domain),
        Some(json!({"one_phone_at_a_time": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        login(&app, &f.member, &f, &a, "201", Some(PIN)).await.0,
        200
    );
    assert_eq!(active(&app).await.len(), 2);
}

async fn five_wrong_pins_lock_out_even_the_right_one_until_the_window_passes(app: TestApp) {
    let f = fixture(&app, "hd5.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 5").await;
    for _ in 0..5 {
        let (status, p) = login(&app, &f.member, &f, &desk, "201", Some("0000")).await;
        assert_eq!(
            (status, &p["errors"][0]["code"]),
            (422, &json!("wrong_pin")),
            "{p}"
        );
    }
    let response = app
        .send_as(
            &f.member,
            Method::PUT,
            &session_path(&f, &desk),
            Some(&json!({"extension": "201", "pin": PIN})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 423);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 800 && wait <= 900, "{wait}");
    // Let the window pass: move the recorded failures 16 minutes into the past.
    let rows = auth_failures::Entity::find().all(&app.db).await.unwrap();
    assert!(
        rows.iter()
            .filter(|r| r.scope == SCOPE_PIN_EXTENSION)
            .count()
            == 5
    );
    for r in rows {
        let mut m: auth_failures::ActiveModel = r.clone().into();
        m.at = sea_orm::Set(r.at - Duration::minutes(16));
        sea_orm::ActiveModelTrait::update(m, &app.db).await.unwrap();
    }
    let (status, s) = login(&app, &f.member, &f, &desk, "201", Some(PIN)).await;
    assert_eq!(status, 200, "{s}");
    // Success cleared the Extension's counter.
    let left = auth_failures::Entity::find()
        .filter(auth_failures::Column::Scope.eq(SCOPE_PIN_EXTENSION))
        .all(&app.db)
        .await
        .unwrap();
    assert!(left.is_empty());
    let actions: Vec<String> = audit_actions(&app, &f)
        .await
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    assert!(
        actions.iter().any(|a| a == "hotdesk.pin_locked"),
        "{actions:?}"
    );
}

async fn a_hundred_concurrent_logins_keep_one_session_per_device_and_extension(app: TestApp) {
    let f = fixture(&app, "hd6.example.net").await;
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(hotdesk_device(&app, &f.admin, &f.domain, &format!("Desk {i}")).await);
    }
    for n in 202..206 {
        extension_with_pin(&app, &f.admin, &f.domain, &n.to_string(), None).await;
    }
    let numbers = ["201", "202", "203", "204", "205"];
    let requests = (0..100).map(|i| {
        let device = devices[i % devices.len()].clone();
        let number = numbers[(i / 3) % numbers.len()];
        // Admins replace, members need the device free; members know 201's PIN only.
        let (token, pin) = if i % 2 == 0 {
            (f.admin.clone(), None)
        } else {
            (f.member.clone(), Some(PIN))
        };
        let number = if pin.is_some() { "201" } else { number };
        let f = &f;
        let app = &app;
        async move { login(app, &token, f, &device, number, pin).await }
    });
    let answers = join_all(requests).await;
    // A loaded machine may answer some with 503 `overloaded` (the pool or a lock timed out):
    // the overload answer, never a 500, and never a second session.
    for (status, body) in &answers {
        assert!(matches!(status, 200 | 409 | 423 | 503), "{status}: {body}");
        if *status == 503 {
            assert_eq!(body["code"], "overloaded", "{body}");
        }
    }
    assert!(answers.iter().any(|(s, _)| *s == 200));
    let sessions = active(&app).await;
    let mut per_device = std::collections::HashMap::new();
    let mut per_extension = std::collections::HashMap::new();
    for s in &sessions {
        *per_device.entry(s.device_id).or_insert(0) += 1;
        *per_extension.entry(s.extension_id).or_insert(0) += 1;
    }
    assert!(per_device.values().all(|n| *n == 1), "{sessions:?}");
    assert!(per_extension.values().all(|n| *n == 1), "{sessions:?}");
}

async fn the_scheduler_ends_sessions_after_hours_and_daily_at(app: TestApp) {
    let f = fixture(&app, "hd7.example.net").await;
    let eight = id_of(&create(&app, &f.admin, &f.domain, "devices",
        json!({"label": "Eight", "mode": "hotdesk", "auto_logout": "after_hours", "auto_logout_hours": 8})).await);
    let evening = id_of(&create(&app, &f.admin, &f.domain, "devices",
        json!({"label": "Evening", "mode": "hotdesk", "auto_logout": "daily_at", "auto_logout_at": "18:00"})).await);
    extension_with_pin(&app, &f.admin, &f.domain, "202", None).await;
    assert_eq!(login(&app, &f.admin, &f, &eight, "201", None).await.0, 200);
    assert_eq!(
        login(&app, &f.admin, &f, &evening, "202", None).await.0,
        200
    );
    let started = Utc::now();
    assert_eq!(
        scheduler::run_once(&app.db, &app.events, started)
            .await
            .unwrap(),
        0
    );
    // 18:00 Berlin comes within a day; 8 hours pass after it at the latest tomorrow.
    let after_eight = started + Duration::hours(8) + Duration::minutes(1);
    let ended = scheduler::run_once(&app.db, &app.events, after_eight)
        .await
        .unwrap();
    assert!(ended >= 1, "{ended}");
    assert!(
        active(&app)
            .await
            .iter()
            .all(|s| s.device_id.to_string() != eight)
    );
    let next_day = started + Duration::hours(24) + Duration::minutes(1);
    scheduler::run_once(&app.db, &app.events, next_day)
        .await
        .unwrap();
    assert!(active(&app).await.is_empty());
    let entries = audit_actions(&app, &f).await;
    let auto: Vec<&Value> = entries
        .iter()
        .filter(|e| e["after"]["ended_reason"] == "auto_logout")
        .collect();
    assert_eq!(auto.len(), 2, "{entries:?}");
    assert!(
        auto.iter().all(
            |e| e["actor"]["kind"] == "system" && e["actor"]["label"] == scheduler::ACTOR_LABEL
        )
    );
}

async fn another_domains_admin_gets_404_on_every_hotdesk_endpoint(app: TestApp) {
    let f = fixture(&app, "hd8.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 8").await;
    let other = fixture(&app, "hd8-other.example.net").await;
    let intruder = &other.admin;
    // The platform admin sees every Domain; a Domain admin of the other Domain is the intruder.
    let email = "intruder@hd8-other.example.net";
    create_user(&app, intruder, &other.domain, email, &["domain_admin"]).await;
    let intruder = token_of(&app, email).await;
    let cases = [
        (Method::GET, session_path(&f, &desk), None),
        (
            Method::PUT,
            session_path(&f, &desk),
            Some(json!({"extension": "201"})),
        ),
        (Method::DELETE, session_path(&f, &desk), None),
        (
            Method::PUT,
            format!("/api/v1/me/hotdesk/{desk}"),
            Some(json!({"pin": PIN})),
        ),
        (Method::DELETE, format!("/api/v1/me/hotdesk/{desk}"), None),
        (
            Method::PUT,
            format!(
                "/api/v1/domains/{}/extensions/{}/location",
                f.domain, f.ext201
            ),
            Some(json!({"location_id": Uuid::now_v7()})),
        ),
        (
            Method::DELETE,
            format!(
                "/api/v1/domains/{}/extensions/{}/location",
                f.domain, f.ext201
            ),
            None,
        ),
        (
            Method::PUT,
            "/api/v1/me/location".to_owned(),
            Some(json!({"domain_id": f.domain, "location_id": Uuid::now_v7()})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/me/location?domain_id={}", f.domain),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let (status, problem) = call(&app, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {problem}");
    }
}

async fn logins_and_logouts_are_published_after_commit_for_freeswitch_and_clients(app: TestApp) {
    use switchboard_domain::events::ChangeKind;
    let f = fixture(&app, "hd-events.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 9").await;
    let (_, device) = call(
        &app,
        &f.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/devices/{desk}", f.domain),
        None,
    )
    .await;
    let sip_user = device["sip_username"].as_str().unwrap().to_owned();
    let mut events = app.events.subscribe();
    let next = |events: &mut tokio::sync::broadcast::Receiver<_>| {
        let received = events.try_recv();
        received.map_err(|e| format!("{e:?}"))
    };

    let (status, _) = login(&app, &f.member, &f, &desk, "201", Some("0000")).await;
    assert_eq!(status, 422, "a wrong PIN");
    assert!(
        next(&mut events).is_err(),
        "a refused login publishes nothing"
    );

    let (status, _) = login(&app, &f.member, &f, &desk, "201", Some(PIN)).await;
    assert_eq!(status, 200);
    let started: std::sync::Arc<switchboard_domain::events::ChangeEvent> =
        next(&mut events).unwrap();
    assert_eq!(started.kind, ChangeKind::SessionStarted);
    assert!(started.sip_users.contains(&sip_user), "{started:?}");
    assert!(
        started.sip_users.contains(&"201".to_owned()),
        "the Extension's dial string changed: {started:?}"
    );
    assert!(started.drop_registrations.is_empty());

    let (status, _) = call(
        &app,
        &f.member,
        Method::DELETE,
        &session_path(&f, &desk),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let ended = next(&mut events).unwrap();
    assert_eq!(ended.kind, ChangeKind::SessionEnded);
    assert_eq!(
        ended.drop_registrations,
        vec![sip_user],
        "a phone logged out in full mode re-registers"
    );
}

async fn patch(app: &TestApp, f: &Fixture, what: &str, id: &str, body: Value) {
    let (status, answer) = call(
        app,
        &f.admin,
        Method::PATCH,
        &format!("/api/v1/domains/{}/{what}/{id}", f.domain),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

/// The `ended_reason`s of the audit log's session ends, newest first.
async fn ended_reasons(app: &TestApp, f: &Fixture) -> Vec<String> {
    audit_actions(app, f)
        .await
        .iter()
        .filter(|e| e["action"] == "hotdesk.session.end")
        .map(|e| e["after"]["ended_reason"].as_str().unwrap().to_owned())
        .collect()
}

async fn making_the_device_fixed_or_disabled_ends_its_session_for_good(app: TestApp) {
    let f = fixture(&app, "hd10.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 10").await;
    assert_eq!(login(&app, &f.admin, &f, &desk, "201", None).await.0, 200);
    patch(&app, &f, "devices", &desk, json!({"enabled": false})).await;
    assert!(active(&app).await.is_empty(), "disabling ends the session");
    patch(&app, &f, "devices", &desk, json!({"enabled": true})).await;
    assert!(active(&app).await.is_empty(), "and it does not come back");
    let (status, _) = call(&app, &f.admin, Method::GET, &session_path(&f, &desk), None).await;
    assert_eq!(status, 404);

    assert_eq!(login(&app, &f.admin, &f, &desk, "201", None).await.0, 200);
    let ext202 = extension_with_pin(&app, &f.admin, &f.domain, "202", None).await;
    patch(
        &app,
        &f,
        "devices",
        &desk,
        json!({"mode": "fixed", "owner_extension_id": ext202}),
    )
    .await;
    assert!(
        active(&app).await.is_empty(),
        "making it fixed ends the session"
    );
    patch(&app, &f, "devices", &desk, json!({"mode": "hotdesk"})).await;
    assert!(active(&app).await.is_empty(), "and it does not come back");
    let (status, plan) = call(
        &app,
        &f.admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{}/extensions/{}/ring-plan",
            f.domain, f.ext201
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        !plan.to_string().contains(&desk),
        "the phone no longer rings for 201: {plan}"
    );
    assert_eq!(
        ended_reasons(&app, &f).await,
        vec!["device_fixed", "device_disabled"]
    );
}

async fn disabling_or_deleting_the_extension_ends_its_sessions_and_sign_ins_audited(app: TestApp) {
    let f = fixture(&app, "hd11.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 11").await;
    let location = id_of(
        &create(
            &app,
            &f.admin,
            &f.domain,
            "locations",
            json!({"name": "HQ"}),
        )
        .await,
    );
    let sign_in = |ext: String| {
        let (app, f, location) = (&app, &f, &location);
        async move {
            let (status, body) = call(
                app,
                &f.admin,
                Method::PUT,
                &format!("/api/v1/domains/{}/extensions/{ext}/location", f.domain),
                Some(json!({"location_id": location})),
            )
            .await;
            assert!(matches!(status, 200 | 204), "{status}: {body}");
        }
    };
    assert_eq!(login(&app, &f.admin, &f, &desk, "201", None).await.0, 200);
    sign_in(f.ext201.clone()).await;
    patch(&app, &f, "extensions", &f.ext201, json!({"enabled": false})).await;
    assert!(active(&app).await.is_empty());
    patch(&app, &f, "extensions", &f.ext201, json!({"enabled": true})).await;
    assert!(active(&app).await.is_empty(), "nothing comes back");
    let entries = audit_actions(&app, &f).await;
    let sign_out = entries
        .iter()
        .find(|e| e["action"] == "location.sign_out")
        .expect("the sign-in's end is audited");
    assert_eq!(
        sign_out["after"]["reason"], "extension_disabled",
        "{sign_out}"
    );
    assert_eq!(ended_reasons(&app, &f).await, vec!["extension_disabled"]);

    // Deleting the Extension: its session and sign-in are ended and audited, not cascaded away.
    let ext202 = extension_with_pin(&app, &f.admin, &f.domain, "202", None).await;
    assert_eq!(login(&app, &f.admin, &f, &desk, "202", None).await.0, 200);
    sign_in(ext202.clone()).await;
    let (status, _) = call(
        &app,
        &f.admin,
        Method::DELETE,
        &format!("/api/v1/domains/{}/extensions/{ext202}", f.domain),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        ended_reasons(&app, &f).await,
        vec!["extension_deleted", "extension_disabled"]
    );
    let sign_outs: Vec<Value> = audit_actions(&app, &f)
        .await
        .into_iter()
        .filter(|e| e["action"] == "location.sign_out")
        .map(|e| e["after"]["reason"].clone())
        .collect();
    assert_eq!(
        sign_outs,
        vec![json!("extension_deleted"), json!("extension_disabled")]
    );
}

async fn deleting_a_device_audits_the_end_of_its_session(app: TestApp) {
    let f = fixture(&app, "hd12.example.net").await;
    let desk = hotdesk_device(&app, &f.admin, &f.domain, "Desk 12").await;
    assert_eq!(login(&app, &f.admin, &f, &desk, "201", None).await.0, 200);
    let (status, _) = call(
        &app,
        &f.admin,
        Method::DELETE,
        &format!("/api/v1/domains/{}/devices/{desk}", f.domain),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let entries = audit_actions(&app, &f).await;
    let end = entries
        .iter()
        .find(|e| e["action"] == "hotdesk.session.end")
        .expect("the session's end is audited");
    assert_eq!(end["after"]["ended_reason"], "device_deleted", "{end}");
    assert_eq!(end["before"]["extension_number"], "201", "{end}");
}

async fn turning_one_phone_at_a_time_on_keeps_each_extension_on_its_newest_phone(app: TestApp) {
    let f = fixture(&app, "hd13.example.net").await;
    let settings = format!("/api/v1/domains/{}/calling-settings", f.domain);
    let (status, body) = call(
        &app,
        &f.admin,
        Method::PUT,
        &settings,
        Some(json!({"one_phone_at_a_time": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut desks = Vec::new();
    for i in 0..3 {
        let desk = hotdesk_device(&app, &f.admin, &f.domain, &format!("Desk {i}")).await;
        assert_eq!(login(&app, &f.admin, &f, &desk, "201", None).await.0, 200);
        desks.push(desk);
    }
    assert_eq!(active(&app).await.len(), 3);
    let (status, body) = call(
        &app,
        &f.admin,
        Method::PUT,
        &settings,
        Some(json!({"one_phone_at_a_time": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let left = active(&app).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].device_id.to_string(), desks[2], "the newest stays");
    assert_eq!(
        ended_reasons(&app, &f).await,
        vec!["one_phone_at_a_time", "one_phone_at_a_time"]
    );
}
