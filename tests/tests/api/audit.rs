//! Reading the audit log: a Domain's log and the platform's, filtered by actor, action (exact or
//! prefix), target and time, newest first across pages, closed to everyone else.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases};

use crate::users::{call, create_domain, create_user, token_of};

both_databases!(
    a_domains_log_shows_its_changes_newest_first_with_actor_target_and_before_after,
    the_log_filters_by_action_prefix_actor_target_and_time,
    pages_walk_every_entry_once_newest_first_even_while_entries_are_added,
    a_malformed_filter_is_a_422_naming_the_parameter,
    another_domains_admin_gets_404_and_a_member_without_audit_read_403,
    the_platform_log_shows_platform_entries_and_one_domain_on_request,
    changes_made_with_an_api_key_name_the_key_as_actor,
);

/// A Domain with a domain_admin: (Domain id, admin's email, admin's token).
async fn domain_with_admin(
    app: &TestApp,
    admin: &str,
    sip_domain: &str,
) -> (String, String, String) {
    let domain = create_domain(app, admin, sip_domain).await;
    let email = format!("admin@{sip_domain}");
    create_user(app, admin, &domain, &email, &["domain_admin"]).await;
    let token = token_of(app, &email).await;
    (domain, email, token)
}

fn log_of(domain: &str) -> String {
    format!("/api/v1/domains/{domain}/audit")
}

/// GETs `path` as `token`, expecting 200, and returns the items.
async fn entries(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let (status, page) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {page}");
    page["items"].as_array().expect("items").clone()
}

fn actions(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("an action").to_owned())
        .collect()
}

/// An RFC 3339 time for a query string (`Z`, so no `+` to encode).
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The current time, strictly between what happened before and what happens after: waits a
/// little on both sides so timestamps taken at different places cannot tie.
async fn instant_between() -> DateTime<Utc> {
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let now = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    now
}

async fn a_domains_log_shows_its_changes_newest_first_with_actor_target_and_before_after(
    app: TestApp,
) {
    let admin = app.admin_token().await;
    let (domain, email, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let user = create_user(&app, &owner, &domain, "ada@acme.example.net", &["member"]).await;
    let (status, _) = call(
        &app,
        &owner,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/users/{user}"),
        Some(json!({"display_name": "Ada Lovelace"})),
    )
    .await;
    assert_eq!(status, 200);

    let log = entries(&app, &owner, &log_of(&domain)).await;
    let ids: Vec<&str> = log.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    assert!(log.iter().all(|e| e["domain_id"] == domain.as_str()));

    let newest = &log[0];
    assert_eq!(newest["actor"]["kind"], "user");
    assert_eq!(newest["actor"]["label"], email.as_str());
    assert!(newest["actor"]["id"].is_string());
    assert_eq!(newest["target"], json!({"kind": "user", "id": user}));
    assert!(newest["action"].as_str().unwrap().starts_with("user."));
    assert!(newest["at"].is_string() && newest["request_id"].is_string());
    assert!(
        newest["before"].is_object() && newest["after"].is_object(),
        "{newest}"
    );
    assert_eq!(newest["after"]["display_name"], "Ada Lovelace", "{newest}");
    // The creation recorded no password, only that there is one.
    let created = log
        .iter()
        .find(|e| e["action"] == "user.create" && e["target"]["id"] == user.as_str())
        .expect("the user's creation");
    let text = created.to_string();
    assert!(!text.contains(crate::users::PASSWORD), "{text}");
    assert!(!text.contains("argon2"), "{text}");
}

async fn the_log_filters_by_action_prefix_actor_target_and_time(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, email, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let t0 = instant_between().await;
    let ada = create_user(&app, &owner, &domain, "ada@acme.example.net", &["member"]).await;
    let t1 = instant_between().await;
    let (_, key) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/v1/domains/{domain}/api-keys"),
        Some(json!({"name": "ci", "role": "member"})),
    )
    .await;
    let key_id = key["id"].as_str().unwrap().to_owned();
    call(
        &app,
        &owner,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/api-keys/{key_id}"),
        None,
    )
    .await;
    let t2 = instant_between().await;
    let bob = create_user(&app, &owner, &domain, "bob@acme.example.net", &["member"]).await;

    let log = log_of(&domain);
    let q = |query: &str| format!("{log}?{query}");
    let everything = entries(&app, &owner, &log).await;
    assert!(everything.len() >= 5, "{everything:?}");

    // Action: exact, and a prefix with a trailing `*` (whose `_` is not a wildcard).
    let by_prefix = entries(&app, &owner, &q("action=api_key.*")).await;
    assert_eq!(actions(&by_prefix), ["api_key.revoke", "api_key.create"]);
    let exact = entries(&app, &owner, &q("action=api_key.create")).await;
    assert_eq!(actions(&exact), ["api_key.create"]);
    let users = entries(&app, &owner, &q("action=user.*")).await;
    assert!(users.len() >= 3, "{users:?}");
    assert!(
        actions(&users).iter().all(|a| a.starts_with("user.")),
        "{users:?}"
    );
    assert!(
        entries(&app, &owner, &q("action=apixkey.*"))
            .await
            .is_empty()
    );
    assert_eq!(
        entries(&app, &owner, &q("action=*")).await.len(),
        everything.len()
    );

    // Actor: by label exactly, by id, by kind.
    let mine = entries(&app, &owner, &q(&format!("actor={email}"))).await;
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert!(mine.iter().all(|e| e["actor"]["label"] == email.as_str()));
    let owner_id = mine[0]["actor"]["id"].as_str().unwrap().to_owned();
    let by_id = entries(&app, &owner, &q(&format!("actor_id={owner_id}"))).await;
    assert_eq!(by_id, mine);
    assert_eq!(
        entries(&app, &owner, &q("actor=admin@acme.example")).await,
        Vec::<Value>::new(),
        "labels match exactly, not by substring"
    );
    let by_kind = entries(&app, &owner, &q("actor_kind=user")).await;
    assert_eq!(by_kind.len(), everything.len());
    assert!(
        entries(&app, &owner, &q("actor_kind=api_key"))
            .await
            .is_empty()
    );

    // Target: kind and id.
    let about_key = entries(
        &app,
        &owner,
        &q(&format!("target_kind=api_key&target_id={key_id}")),
    )
    .await;
    assert_eq!(actions(&about_key), ["api_key.revoke", "api_key.create"]);
    let about_ada = entries(&app, &owner, &q(&format!("target_id={ada}"))).await;
    assert_eq!(actions(&about_ada), ["user.create"]);

    // Time: `from` inclusive, `to` exclusive, and both together.
    let since_t1 = entries(&app, &owner, &q(&format!("from={}", stamp(t1)))).await;
    assert_eq!(
        since_t1
            .iter()
            .map(|e| e["target"]["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [bob.as_str(), &key_id, &key_id]
    );
    let before_t1 = entries(&app, &owner, &q(&format!("to={}", stamp(t1)))).await;
    assert_eq!(before_t1.len() + since_t1.len(), everything.len());
    let between = entries(
        &app,
        &owner,
        &q(&format!("from={}&to={}", stamp(t1), stamp(t2))),
    )
    .await;
    assert_eq!(actions(&between), ["api_key.revoke", "api_key.create"]);
    let window = entries(
        &app,
        &owner,
        &q(&format!(
            "from={}&to={}&action=user.*",
            stamp(t0),
            stamp(t1)
        )),
    )
    .await;
    assert_eq!(window.len(), 1);
    assert_eq!(window[0]["target"]["id"], ada.as_str());
    // An offset works too, its `+` encoded or form-decoded to a space.
    let t1_in_paris = t1
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    for plus in ["%2B", "+"] {
        let from = t1_in_paris.replace('+', plus);
        let found = entries(&app, &owner, &q(&format!("from={from}"))).await;
        assert_eq!(found, since_t1, "{from}");
    }
    // The range may be empty.
    let same = stamp(t1);
    assert!(
        entries(&app, &owner, &q(&format!("from={same}&to={same}")))
            .await
            .is_empty()
    );
}

async fn pages_walk_every_entry_once_newest_first_even_while_entries_are_added(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    for i in 0..6 {
        create_user(
            &app,
            &owner,
            &domain,
            &format!("user{i}@acme.example.net"),
            &["member"],
        )
        .await;
    }
    let all = entries(&app, &owner, &format!("{}?limit=500", log_of(&domain))).await;
    let all_ids: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(all_ids.len() >= 7);

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{}?limit=3&cursor={c}", log_of(&domain)),
            None => format!("{}?limit=3", log_of(&domain)),
        };
        let (status, page) = call(&app, &owner, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if pages == 1 {
            // A change between pages lands above the cursor: it neither shifts nor repeats rows.
            create_user(&app, &owner, &domain, "late@acme.example.net", &["member"]).await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, all_ids, "every entry once, in the same order");
    assert_eq!(pages, all_ids.len().div_ceil(3));

    // A filtered walk pages the same way.
    let first = entries(
        &app,
        &owner,
        &format!("{}?action=user.*&limit=2", log_of(&domain)),
    )
    .await;
    assert_eq!(first.len(), 2);
    assert!(first[0]["id"].as_str() > first[1]["id"].as_str());
}

fn error_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_malformed_filter_is_a_422_naming_the_parameter(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let log = log_of(&domain);
    let cases = [
        ("from=yesterday", vec![("from", "invalid_format")]),
        ("to=2026-01-01", vec![("to", "invalid_format")]),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            vec![("to", "before_from")],
        ),
        ("action=user.*.x*", vec![("action", "invalid_format")]),
        ("actor_id=someone", vec![("actor_id", "invalid_format")]),
        ("actor_kind=robot", vec![("actor_kind", "invalid_value")]),
        ("acton=user.*", vec![("acton", "unknown_field")]),
        (
            "domain_id=00000000-0000-0000-0000-000000000000",
            vec![("domain_id", "unknown_field")],
        ),
        (
            "from=soon&limit=0&cursor=nope",
            vec![
                ("from", "invalid_format"),
                ("limit", "out_of_range"),
                ("cursor", "invalid_cursor"),
            ],
        ),
        ("limit=many", vec![("limit", "invalid_type")]),
    ];
    for (query, expected) in cases {
        let problem = assert_problem(
            app.send_as(&owner, Method::GET, &format!("{log}?{query}"), None)
                .await,
            422,
            "validation_failed",
        )
        .await;
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
            .collect();
        assert_eq!(error_fields(&problem), expected, "{query}");
    }
    let problem = assert_problem(
        app.send_as(&admin, Method::GET, "/api/v1/audit?from=tomorrow", None)
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        error_fields(&problem),
        [("from".to_owned(), "invalid_format".to_owned())]
    );
}

async fn another_domains_admin_gets_404_and_a_member_without_audit_read_403(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, _) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let (_, _, stranger) = domain_with_admin(&app, &admin, "other.example.net").await;
    let log = log_of(&domain);

    // Another Domain's admin learns nothing: the same 404 as for a Domain that does not exist,
    // even with filters that would not parse.
    let missing = log_of(&uuid::Uuid::now_v7().to_string());
    for path in [
        log.clone(),
        format!("{log}?action=user.*"),
        format!("{log}?from=garbage&acton=x"),
        missing,
    ] {
        let problem = assert_problem(
            app.send_as(&stranger, Method::GET, &path, None).await,
            404,
            "not_found",
        )
        .await;
        assert_eq!(problem["detail"], "domain not found", "{path}");
    }

    // Members of the Domain: only roles holding audit.read may read it.
    for (role, allowed) in [
        ("member", false),
        ("agent", false),
        ("receptionist", false),
        ("supervisor", true),
        ("manager", true),
        ("domain_admin", true),
    ] {
        let email = format!("{role}@acme.example.net");
        create_user(&app, &admin, &domain, &email, &[role]).await;
        let token = token_of(&app, &email).await;
        let response = app.send_as(&token, Method::GET, &log, None).await;
        if allowed {
            assert_eq!(response.status(), 200, "{role}");
        } else {
            let problem = assert_problem(response, 403, "forbidden").await;
            assert!(
                problem["detail"].as_str().unwrap().contains("audit.read"),
                "{problem}"
            );
            // A bad filter does not change the answer to someone who may not read the log.
            assert_problem(
                app.send_as(&token, Method::GET, &format!("{log}?from=x"), None)
                    .await,
                403,
                "forbidden",
            )
            .await;
        }
        // Nobody but a platform role reads the platform log.
        assert_problem(
            app.send_as(&token, Method::GET, "/api/v1/audit", None)
                .await,
            403,
            "forbidden",
        )
        .await;
    }
    // Unauthenticated: 401.
    assert_problem(app.get(&log).await, 401, "unauthenticated").await;
    assert_problem(
        app.get("/api/v1/audit?acton=x").await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn the_platform_log_shows_platform_entries_and_one_domain_on_request(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, _) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let (other, _, _) = domain_with_admin(&app, &admin, "other.example.net").await;

    let platform = entries(&app, &admin, "/api/v1/audit?limit=500").await;
    assert!(
        platform.iter().all(|e| e["domain_id"].is_null()),
        "{platform:?}"
    );
    let logins = entries(&app, &admin, "/api/v1/audit?action=auth.login").await;
    assert!(
        logins.len() >= 3,
        "the admin and both Domain admins logged in"
    );
    assert!(
        logins
            .iter()
            .any(|e| e["actor"]["label"] == switchboard_tests::ADMIN_EMAIL)
    );

    // One Domain's entries, on request: the same as that Domain's own log.
    let via_platform = entries(&app, &admin, &format!("/api/v1/audit?domain_id={domain}")).await;
    let own = entries(&app, &admin, &log_of(&domain)).await;
    assert!(!own.is_empty());
    assert_eq!(via_platform, own);
    assert!(
        via_platform
            .iter()
            .all(|e| e["domain_id"] == domain.as_str())
    );
    let theirs = entries(
        &app,
        &admin,
        &format!("/api/v1/audit?domain_id={other}&action=domain.*"),
    )
    .await;
    assert_eq!(actions(&theirs), ["domain.create"]);
}

async fn changes_made_with_an_api_key_name_the_key_as_actor(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let (_, key) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/v1/domains/{domain}/api-keys"),
        Some(json!({"name": "provisioner", "role": "domain_admin"})),
    )
    .await;
    let secret = key["secret"].as_str().unwrap();
    let user = create_user(
        &app,
        secret,
        &domain,
        "bot-made@acme.example.net",
        &["member"],
    )
    .await;

    let by_keys = entries(
        &app,
        &owner,
        &format!("{}?actor_kind=api_key", log_of(&domain)),
    )
    .await;
    assert_eq!(by_keys.len(), 1, "{by_keys:?}");
    let entry = &by_keys[0];
    assert_eq!(entry["action"], "user.create");
    assert_eq!(entry["target"]["id"], user.as_str());
    assert_eq!(
        entry["actor"],
        json!({"kind": "api_key", "id": key["id"], "label": "api_key:provisioner"})
    );
    let by_label = entries(
        &app,
        &owner,
        &format!("{}?actor=api_key:provisioner", log_of(&domain)),
    )
    .await;
    assert_eq!(by_label, by_keys);
    // The key itself, a domain_admin key, may read its Domain's log.
    let (status, _) = call(&app, secret, Method::GET, &log_of(&domain), None).await;
    assert_eq!(status, 200);
}
