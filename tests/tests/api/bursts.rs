//! Limits under real parallel requests against the real server: a burst of wrong PINs or
//! passwords is evaluated at most up to the limit (the right secret inside the burst is not
//! let through past it), writes that collide on SQLite wait instead of answering 500, and a
//! pool too small for the burst answers 503 with `Retry-After`, never 500.

use futures_util::future::join_all;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::store::{audit_log, hotdesk_sessions};
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{PASSWORD, call, create_user, token_of};

both_databases!(
    a_burst_of_pins_is_evaluated_at_most_up_to_the_limit_on_both_api_routes,
    a_burst_of_passwords_is_evaluated_at_most_up_to_the_limit,
    concurrent_calling_settings_changes_all_succeed,
    a_race_onto_a_free_device_gives_the_losers_the_answer_of_the_state_they_lost_to,
    a_burst_on_a_tiny_pool_answers_503_with_retry_after_never_500 with |c| {
        c.database.max_connections = 1;
        c.database.acquire_timeout_secs = 1;
    },
);

const PIN: &str = "4711";

async fn count_audit(app: &TestApp, action: &str) -> u64 {
    audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(action))
        .count(&app.db)
        .await
        .unwrap()
}

fn statuses(answers: &[(u16, Value)], status: u16) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

async fn a_burst_of_pins_is_evaluated_at_most_up_to_the_limit_on_both_api_routes(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "burst1.example.net").await;
    let email = "member@burst1.example.net";
    let user = create_user(&app, &admin, &domain, email, &["member"]).await;
    let member = token_of(&app, email).await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Ada", "pin": PIN,
               "hotdesk_allowed": true, "user_id": user}),
    )
    .await;
    let device = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Desk", "mode": "hotdesk"}),
        )
        .await,
    );
    // 79 wrong PINs and the right one, all at once, over both routes that take a PIN.
    let requests = (0..80).map(|i| {
        let pin = if i == 79 { PIN } else { "1357" };
        let (path, body) = if i % 2 == 0 {
            (
                format!("/api/v1/domains/{domain}/devices/{device}/session"),
                json!({"extension": "201", "pin": pin}),
            )
        } else {
            (format!("/api/v1/me/hotdesk/{device}"), json!({"pin": pin}))
        };
        let (app, member) = (&app, &member);
        async move { call(app, member, Method::PUT, &path, Some(body)).await }
    });
    let answers = join_all(requests).await;
    for (status, body) in &answers {
        assert!(matches!(status, 200 | 422 | 423), "{status}: {body}");
        if *status == 423 {
            assert_eq!(body["code"], "locked", "{body}");
        }
    }
    let evaluated = statuses(&answers, 422) + statuses(&answers, 200);
    assert!(
        evaluated <= 5,
        "at most the limit (5) may be checked, {evaluated} were: {answers:?}"
    );
    assert!(statuses(&answers, 423) >= 75, "{answers:?}");
    assert!(count_audit(&app, "hotdesk.pin_failed").await <= 5);
    let right_accepted = statuses(&answers, 200) == 1;
    let sessions = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions, u64::from(right_accepted));
    if !right_accepted {
        // Locked: even the right PIN now waits for the window.
        let (status, body) = call(
            &app,
            &member,
            Method::PUT,
            &format!("/api/v1/me/hotdesk/{device}"),
            Some(json!({"pin": PIN})),
        )
        .await;
        assert_eq!(status, 423, "{body}");
    }
}

async fn a_burst_of_passwords_is_evaluated_at_most_up_to_the_limit(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "burst2.example.net").await;
    let email = "target@burst2.example.net";
    create_user(&app, &admin, &domain, email, &["member"]).await;
    let requests = (0..150).map(|i| {
        let password = if i == 149 {
            PASSWORD.to_owned()
        } else {
            format!("Wrong-Guess-Number-{i:03}")
        };
        let app = &app;
        async move {
            let response = app
                .post_json(
                    "/api/v1/auth/login",
                    &json!({"email": email, "password": password}),
                )
                .await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").is_some();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, json!({"body": body, "retry_after": retry_after}))
        }
    });
    let answers = join_all(requests).await;
    for (status, body) in &answers {
        assert!(matches!(status, 200 | 401 | 429), "{status}: {body}");
        if *status == 429 {
            assert_eq!(body["retry_after"], true, "{body}");
        }
    }
    let evaluated = statuses(&answers, 401) + statuses(&answers, 200);
    assert!(
        evaluated <= 5,
        "at most the limit (5) may be checked, {evaluated} were"
    );
    assert!(count_audit(&app, "auth.login_failed").await <= 5);
    assert!(count_audit(&app, "auth.login_throttled").await >= 145);
}

async fn concurrent_calling_settings_changes_all_succeed(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "burst3.example.net").await;
    let path = format!("/api/v1/domains/{domain}/calling-settings");
    let requests = (0..10).map(|i| {
        let (app, admin, path) = (&app, &admin, &path);
        async move {
            call(
                app,
                admin,
                Method::PUT,
                path,
                Some(json!({"default_ring_timeout_secs": 20 + i})),
            )
            .await
        }
    });
    let answers = join_all(requests).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(count_audit(&app, "calling_settings.update").await, 10);
}

async fn a_burst_on_a_tiny_pool_answers_503_with_retry_after_never_500(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "burst4.example.net").await;
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(id_of(
            &create(
                &app,
                &admin,
                &domain,
                "devices",
                json!({"label": format!("Desk {i}"), "mode": "hotdesk"}),
            )
            .await,
        ));
    }
    for n in 201..205 {
        create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": n.to_string(), "display_name": format!("Ext {n}"),
                   "pin": PIN, "hotdesk_allowed": true}),
        )
        .await;
    }
    let burst = || {
        join_all((0..40).map(|i| {
            let device = devices[i % devices.len()].clone();
            let number = (201 + (i / 4) % 4).to_string();
            let (app, admin, domain) = (&app, &admin, &domain);
            async move {
                let response = app
                    .send_as(
                        admin,
                        Method::PUT,
                        &format!("/api/v1/domains/{domain}/devices/{device}/session"),
                        Some(&json!({"extension": number})),
                    )
                    .await;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, retry_after, body)
            }
        }))
    };
    // The pool's only connection is taken (the test shares the server's pool): every request
    // of the burst waits the acquire timeout out and is told to come back.
    let held = sea_orm::TransactionTrait::begin(&app.db).await.unwrap();
    let answers = burst().await;
    drop(held);
    for (status, retry_after, body) in &answers {
        assert_eq!(*status, 503, "{body} (never 500)");
        assert_eq!(body["code"], "overloaded", "{body}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
    }
    // With the connection back, the same burst on one connection answers as a burst should.
    let answers = burst().await;
    for (status, _, body) in &answers {
        assert!(
            matches!(status, 200 | 409 | 503),
            "{status}: {body} (never 500)"
        );
    }
    assert!(answers.iter().any(|(s, _, _)| *s == 200));
}

async fn a_race_onto_a_free_device_gives_the_losers_the_answer_of_the_state_they_lost_to(
    app: TestApp,
) {
    let (domain, admin) = domain_with_admin(&app, "burst5.example.net").await;
    for n in 201..211 {
        create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": n.to_string(), "display_name": format!("Ext {n}"),
                   "hotdesk_allowed": true}),
        )
        .await;
    }
    let device = |label: &'static str| {
        let (app, admin, domain) = (&app, &admin, &domain);
        async move {
            id_of(
                &create(
                    app,
                    admin,
                    domain,
                    "devices",
                    json!({"label": label, "mode": "hotdesk"}),
                )
                .await,
            )
        }
    };
    let login = |device: String, number: String| {
        let (app, admin, domain) = (&app, &admin, &domain);
        async move {
            call(
                app,
                admin,
                Method::PUT,
                &format!("/api/v1/domains/{domain}/devices/{device}/session"),
                Some(json!({"extension": number})),
            )
            .await
        }
    };
    // The same person, ten times at once: one session, and every answer is it.
    let desk = device("Desk A").await;
    let answers = join_all((0..10).map(|_| login(desk.clone(), "201".into()))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["id"], answers[0].1["id"], "{body}");
    }
    // Ten admins onto one free phone at once, each for another Extension: an admin replaces
    // whoever is there, so every one of them is answered with a session, and one stays.
    let shared = device("Desk C").await;
    let answers = join_all((201..211).map(|n| login(shared.clone(), n.to_string()))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let on_shared = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .filter(hotdesk_sessions::Column::DeviceId.eq(uuid::Uuid::parse_str(&shared).unwrap()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(on_shared, 1);
    // Ten people onto one free phone at once, each with their own PIN: one wins, and every
    // other is told the phone is taken, as if they had come a moment later.
    let mut people = Vec::new();
    for n in 211..221 {
        let email = format!("p{n}@burst5.example.net");
        let user = create_user(&app, &admin, &domain, &email, &["member"]).await;
        create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": n.to_string(), "display_name": format!("Ext {n}"),
                   "hotdesk_allowed": true, "pin": PIN, "user_id": user}),
        )
        .await;
        people.push(token_of(&app, &email).await);
    }
    let other = device("Desk B").await;
    let answers = join_all(people.iter().map(|token| {
        let (app, other) = (&app, &other);
        async move {
            call(
                app,
                token,
                Method::PUT,
                &format!("/api/v1/me/hotdesk/{other}"),
                Some(json!({"pin": PIN})),
            )
            .await
        }
    }))
    .await;
    assert_eq!(statuses(&answers, 200), 1, "{answers:?}");
    let winner = answers.iter().find(|(s, _)| *s == 200).unwrap().1["extension_number"]
        .as_str()
        .unwrap()
        .to_owned();
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["code"], "device_in_use", "{body}");
        assert_eq!(
            body["detail"],
            format!("the device is in use by Extension {winner}"),
            "{body}"
        );
    }
}
