//! Dashboard users of a Domain: invitations, changes, disabling, admin resets, removal, role
//! assignments in a Domain and at platform level, and the escalations they must refuse.
//!
//! The fixtures at the top (a Domain, a user with roles, a login) are shared with the domains
//! and roles modules.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases};
use uuid::Uuid;

/// The password every test user is created with.
pub(crate) const PASSWORD: &str = "Plenty-Long-Test-Password-7";

/// Sends `method path` as `token` and returns the status with the JSON body (`null` when
/// there is none).
pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = app.send_as(token, method, path, body.as_ref()).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("reading the body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

/// Creates a Domain as `token` (a platform administrator) and returns its id.
pub(crate) async fn create_domain(app: &TestApp, token: &str, sip_domain: &str) -> String {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": sip_domain, "sip_domain": sip_domain, "timezone": "Europe/Berlin"})),
    )
    .await;
    assert_eq!(status, 201, "creating the Domain {sip_domain}: {body}");
    body["id"].as_str().expect("an id").to_owned()
}

/// Creates a user with [`PASSWORD`] and `roles` in `domain_id` as `token`; returns the id.
pub(crate) async fn create_user(
    app: &TestApp,
    token: &str,
    domain_id: &str,
    email: &str,
    roles: &[&str],
) -> String {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        &format!("/api/v1/domains/{domain_id}/users"),
        Some(json!({"email": email, "display_name": email, "password": PASSWORD, "roles": roles})),
    )
    .await;
    assert_eq!(status, 201, "creating the user {email}: {body}");
    body["id"].as_str().expect("an id").to_owned()
}

/// Logs in as `email` with [`PASSWORD`] and returns the access token.
pub(crate) async fn token_of(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// Asserts that logging in as `email` with `password` is refused with 401.
pub(crate) async fn assert_login_refused(app: &TestApp, email: &str, password: &str) {
    let response = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await;
    assert_problem(response, 401, "unauthenticated").await;
}

fn role_keys(user: &Value) -> Vec<String> {
    user["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["key"].as_str().expect("a key").to_owned())
        .collect()
}

fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .map(|e| e["field"].as_str().expect("a field").to_owned())
        .collect()
}

both_databases!(
    an_invited_user_sets_a_password_with_the_single_use_token_and_logs_in,
    a_user_is_created_listed_read_renamed_given_roles_and_removed,
    disabling_a_user_ends_their_sessions_at_once_and_blocks_login,
    an_admin_reset_ends_sessions_and_hands_out_a_fresh_single_use_token,
    nobody_disables_resets_or_removes_themselves,
    bad_user_input_is_a_422_naming_every_field,
    a_duplicate_email_is_a_409_whatever_its_case,
    nobody_grants_a_role_with_permissions_they_lack,
    a_domain_admin_cannot_make_anyone_platform_admin,
    a_domain_admin_cannot_act_on_an_account_that_is_more_powerful_elsewhere,
    platform_roles_are_granted_and_the_last_platform_admin_is_kept,
    a_user_can_hold_roles_in_two_domains,
    another_domains_admin_gets_the_same_404_on_every_user_endpoint,
);

async fn an_invited_user_sets_a_password_with_the_single_use_token_and_logs_in(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let (status, invited) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{d}/users"),
        Some(json!({"email": "Ada@Example.COM", "display_name": "Ada", "roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 201, "{invited}");
    assert_eq!(invited["email"], "ada@example.com");
    assert_eq!(invited["status"], "invited");
    let token = invited["set_password_token"]
        .as_str()
        .expect("an invitation token");
    assert!(invited["set_password_expires_at"].is_string(), "{invited}");

    assert_login_refused(&app, "ada@example.com", PASSWORD).await;
    let set = json!({"token": token, "password": PASSWORD});
    let response = app.post_json("/api/v1/auth/set-password", &set).await;
    assert_eq!(response.status(), 204);
    let again = json!({"token": token, "password": "Another-Long-Password-8"});
    let problem = assert_problem(
        app.post_json("/api/v1/auth/set-password", &again).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&problem), vec!["token"]);

    let ada = token_of(&app, "ada@example.com").await;
    let (status, me) = call(&app, &ada, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    let id = invited["id"].as_str().unwrap();
    let (_, user) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{d}/users/{id}"),
        None,
    )
    .await;
    assert_eq!(user["status"], "active", "{user}");
}

async fn a_user_is_created_listed_read_renamed_given_roles_and_removed(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let boss = create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let boss_token = token_of(&app, "boss@acme.example").await;
    let users = format!("/api/v1/domains/{d}/users");

    let (status, created) = call(
        &app,
        &boss_token,
        Method::POST,
        &users,
        Some(
            json!({"email": "grace@acme.example", "display_name": "Grace Hopper",
                    "password": PASSWORD, "roles": ["agent", "member"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "active");
    assert!(created.get("set_password_token").is_none(), "{created}");
    assert_eq!(role_keys(&created), vec!["agent", "member"]);
    let grace = created["id"].as_str().unwrap().to_owned();
    let one = format!("{users}/{grace}");

    let (_, page) = call(&app, &boss_token, Method::GET, &users, None).await;
    let emails: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["boss@acme.example", "grace@acme.example"]);
    let (_, found) = call(
        &app,
        &boss_token,
        Method::GET,
        &format!("{users}?q=HOPPER"),
        None,
    )
    .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    let (_, page1) = call(
        &app,
        &boss_token,
        Method::GET,
        &format!("{users}?limit=1"),
        None,
    )
    .await;
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let (_, page2) = call(
        &app,
        &boss_token,
        Method::GET,
        &format!("{users}?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(page2["items"][0]["id"], grace.as_str());
    assert!(page2["next_cursor"].is_null());
    let (_, invited) = call(
        &app,
        &boss_token,
        Method::GET,
        &format!("{users}?status=invited"),
        None,
    )
    .await;
    assert_eq!(invited["items"].as_array().unwrap().len(), 0);

    let (status, renamed) = call(
        &app,
        &boss_token,
        Method::PATCH,
        &one,
        Some(json!({"display_name": "  Rear Admiral Hopper "})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["display_name"], "Rear Admiral Hopper");

    let (status, changed) = call(
        &app,
        &boss_token,
        Method::PUT,
        &format!("{one}/roles"),
        Some(json!({"roles": ["supervisor", "member", "member"]})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let (_, held) = call(
        &app,
        &boss_token,
        Method::GET,
        &format!("{one}/roles"),
        None,
    )
    .await;
    let mut keys = role_keys(&held);
    keys.sort();
    assert_eq!(keys, vec!["member", "supervisor"]);

    let (status, _) = call(&app, &boss_token, Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &boss_token, Method::GET, &one, None).await;
    assert_eq!(status, 404);
    // Their only membership is gone, so the account is too.
    assert_login_refused(&app, "grace@acme.example", PASSWORD).await;

    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    use switchboard_domain::store::audit_log;
    let actions: Vec<String> = audit_log::Entity::find()
        .filter(audit_log::Column::TargetId.eq(grace.clone()))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            "user.create",
            "user.update",
            "user.roles_replace",
            "user.delete"
        ]
    );
    let _ = boss;
}

async fn disabling_a_user_ends_their_sessions_at_once_and_blocks_login(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let id = create_user(&app, &admin, &d, "ada@acme.example", &["manager"]).await;
    let ada = token_of(&app, "ada@acme.example").await;
    let (status, _) = call(&app, &ada, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);

    let one = format!("/api/v1/domains/{d}/users/{id}");
    let (status, disabled) = call(
        &app,
        &admin,
        Method::PATCH,
        &one,
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["status"], "disabled");
    let response = app.send_as(&ada, Method::GET, "/api/v1/me", None).await;
    assert_problem(response, 401, "unauthenticated").await;
    assert_login_refused(&app, "ada@acme.example", PASSWORD).await;

    let (status, enabled) = call(
        &app,
        &admin,
        Method::PATCH,
        &one,
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["status"], "active");
    token_of(&app, "ada@acme.example").await;

    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &one,
        Some(json!({"status": "invited"})),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("status"))
    );
}

async fn an_admin_reset_ends_sessions_and_hands_out_a_fresh_single_use_token(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@acme.example").await;
    let id = create_user(&app, &boss, &d, "ada@acme.example", &["member"]).await;
    let ada = token_of(&app, "ada@acme.example").await;

    let (status, reset) = call(
        &app,
        &boss,
        Method::POST,
        &format!("/api/v1/domains/{d}/users/{id}/reset-password"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reset}");
    let token = reset["set_password_token"].as_str().expect("a token");
    assert!(reset["set_password_expires_at"].is_string());

    let response = app.send_as(&ada, Method::GET, "/api/v1/me", None).await;
    assert_problem(response, 401, "unauthenticated").await;
    assert_login_refused(&app, "ada@acme.example", PASSWORD).await;

    let new_password = "Brand-New-Long-Password-9";
    let set = json!({"token": token, "password": new_password});
    assert_eq!(
        app.post_json("/api/v1/auth/set-password", &set)
            .await
            .status(),
        204
    );
    assert_problem(
        app.post_json("/api/v1/auth/set-password", &set).await,
        422,
        "validation_failed",
    )
    .await;
    app.login("ada@acme.example", new_password).await;
}

async fn nobody_disables_resets_or_removes_themselves(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let id = create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@acme.example").await;
    let one = format!("/api/v1/domains/{d}/users/{id}");
    for (method, path, body) in [
        (
            Method::PATCH,
            one.clone(),
            Some(json!({"status": "disabled"})),
        ),
        (Method::POST, format!("{one}/reset-password"), None),
        (Method::DELETE, one.clone(), None),
    ] {
        let (status, problem) = call(&app, &boss, method.clone(), &path, body).await;
        assert_eq!(status, 409, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "cannot_target_self");
    }
    // Renaming oneself is fine.
    let (status, _) = call(
        &app,
        &boss,
        Method::PATCH,
        &one,
        Some(json!({"display_name": "The Boss"})),
    )
    .await;
    assert_eq!(status, 200);
}

async fn bad_user_input_is_a_422_naming_every_field(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let users = format!("/api/v1/domains/{d}/users");
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &users,
        Some(
            json!({"email": "not-an-email", "display_name": " ", "password": "short",
                    "roles": ["member", "chief", "platform_admin", Uuid::now_v7()]}),
        ),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        error_fields(&problem),
        vec![
            "email",
            "display_name",
            "password",
            "roles[1]",
            "roles[2]",
            "roles[3]"
        ]
    );
    let codes: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "invalid_email",
            "invalid_length",
            "too_short",
            "unknown_role",
            "wrong_scope",
            "unknown_role"
        ]
    );

    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &users,
        Some(json!({"email": "ada@acme.example", "display_name": "Ada", "roles": []})),
    )
    .await;
    assert_eq!(
        (status, error_fields(&problem)),
        (422, vec!["roles".to_owned()])
    );
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &users,
        Some(json!({"email": "ada@acme.example", "display_name": "Ada", "roles": ["member"], "admin": true})),
    )
    .await;
    assert_eq!(
        (status, error_fields(&problem)),
        (422, vec!["admin".to_owned()])
    );

    let id = create_user(&app, &admin, &d, "ada@acme.example", &["member"]).await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("{users}/{id}/roles"),
        Some(json!({"roles": ["member", "wizard"]})),
    )
    .await;
    assert_eq!(
        (status, error_fields(&problem)),
        (422, vec!["roles[1]".to_owned()])
    );
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{users}/{id}"),
        Some(json!({"display_name": "x".repeat(101)})),
    )
    .await;
    assert_eq!(
        (status, error_fields(&problem)),
        (422, vec!["display_name".to_owned()])
    );
}

async fn a_duplicate_email_is_a_409_whatever_its_case(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let other = create_domain(&app, &admin, "other.example.net").await;
    create_user(&app, &admin, &d, "ada@acme.example", &["member"]).await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{other}/users"),
        Some(
            json!({"email": " ADA@Acme.Example", "display_name": "Ada again", "roles": ["member"]}),
        ),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "already_exists");
    assert_eq!(error_fields(&problem), vec!["email"]);
}

async fn nobody_grants_a_role_with_permissions_they_lack(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let users = format!("/api/v1/domains/{d}/users");
    // A custom role that may manage users but holds little else.
    let (status, role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{d}/roles"),
        Some(json!({"name": "User desk", "permissions": ["domains.read", "users.read", "users.write"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let user_desk = role["key"].as_str().unwrap().to_owned();
    create_user(&app, &admin, &d, "desk@acme.example", &[&user_desk]).await;
    create_user(&app, &admin, &d, "manager@acme.example", &["manager"]).await;
    let target = create_user(&app, &admin, &d, "ada@acme.example", &[&user_desk]).await;
    let desk = token_of(&app, "desk@acme.example").await;
    let manager = token_of(&app, "manager@acme.example").await;

    // A manager may not write users at all.
    let (status, problem) = call(
        &app,
        &manager,
        Method::PUT,
        &format!("{users}/{target}/roles"),
        Some(json!({"roles": ["domain_admin"]})),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));

    // The user desk may, but only grant and take away what it holds itself.
    for roles in [
        json!(["domain_admin"]),
        json!(["member"]),
        json!([user_desk, "agent"]),
    ] {
        let (status, problem) = call(
            &app,
            &desk,
            Method::PUT,
            &format!("{users}/{target}/roles"),
            Some(json!({"roles": roles})),
        )
        .await;
        assert_eq!(status, 403, "granting {roles}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("permission"),
            "{problem}"
        );
    }
    let (status, problem) = call(
        &app,
        &desk,
        Method::POST,
        &users,
        Some(json!({"email": "eve@acme.example", "display_name": "Eve", "roles": ["manager"]})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let (status, created) = call(
        &app,
        &desk,
        Method::POST,
        &users,
        Some(json!({"email": "eve@acme.example", "display_name": "Eve", "roles": [user_desk]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // Nor can it strip a role it could not grant.
    let powerful = create_user(&app, &admin, &d, "pat@acme.example", &["supervisor"]).await;
    let (status, _) = call(
        &app,
        &desk,
        Method::PUT,
        &format!("{users}/{powerful}/roles"),
        Some(json!({"roles": [user_desk]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &desk,
        Method::DELETE,
        &format!("{users}/{powerful}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
}

async fn a_domain_admin_cannot_make_anyone_platform_admin(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let boss_id = create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let other = create_user(&app, &admin, &d, "ada@acme.example", &["member"]).await;
    let boss = token_of(&app, "boss@acme.example").await;
    for id in [&boss_id, &other] {
        let (status, problem) = call(
            &app,
            &boss,
            Method::PUT,
            &format!("/api/v1/users/{id}/platform-roles"),
            Some(json!({"roles": ["platform_admin"]})),
        )
        .await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (403, Some("forbidden")),
            "{problem}"
        );
        let (status, problem) = call(
            &app,
            &boss,
            Method::PUT,
            &format!("/api/v1/domains/{d}/users/{id}/roles"),
            Some(json!({"roles": ["platform_admin"]})),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["code"], "wrong_scope");
    }
    let (status, _) = call(
        &app,
        &boss,
        Method::GET,
        &format!("/api/v1/users/{boss_id}/platform-roles"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &boss,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "Mine", "sip_domain": "mine.example.net"})),
    )
    .await;
    assert_eq!(status, 403);
}

async fn a_domain_admin_cannot_act_on_an_account_that_is_more_powerful_elsewhere(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let other = create_domain(&app, &admin, "other.example.net").await;
    create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@acme.example").await;
    // Ada is a member here and admin of another Domain.
    let ada = create_user(&app, &admin, &other, "ada@acme.example", &["domain_admin"]).await;
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{d}/users/{ada}/roles"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The platform administrator is a member here too.
    let (_, me) = call(&app, &admin, Method::GET, "/api/v1/me", None).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{d}/users/{admin_id}/roles"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 200);

    for id in [&ada, &admin_id] {
        let one = format!("/api/v1/domains/{d}/users/{id}");
        for (method, path, body) in [
            (
                Method::PATCH,
                one.clone(),
                Some(json!({"status": "disabled"})),
            ),
            (
                Method::PATCH,
                one.clone(),
                Some(json!({"display_name": "Pwned"})),
            ),
            (Method::POST, format!("{one}/reset-password"), None),
        ] {
            let (status, problem) = call(&app, &boss, method.clone(), &path, body).await;
            assert_eq!(status, 403, "{method} {path}: {problem}");
            assert!(
                problem["detail"].as_str().unwrap().contains("every Domain"),
                "{problem}"
            );
        }
        // Seeing them is fine: they are a member here.
        let (status, _) = call(&app, &boss, Method::GET, &one, None).await;
        assert_eq!(status, 200);
    }
    // A platform administrator may disable Ada: that ends her sessions everywhere.
    let ada_token = token_of(&app, "ada@acme.example").await;
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{d}/users/{ada}"),
        Some(json!({"status": "disabled"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &ada_token,
        Method::GET,
        &format!("/api/v1/domains/{other}"),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Removing her from this Domain keeps her account (she is still in the other one).
    let (status, _) = call(
        &app,
        &boss,
        Method::DELETE,
        &format!("/api/v1/domains/{d}/users/{ada}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{other}/users/{ada}"),
        None,
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("disabled")));
}

async fn platform_roles_are_granted_and_the_last_platform_admin_is_kept(app: TestApp) {
    let admin = app.admin_token().await;
    let (_, me) = call(&app, &admin, Method::GET, "/api/v1/me", None).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_owned();
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let ada = create_user(&app, &admin, &d, "ada@acme.example", &["member"]).await;

    let last = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/users/{admin_id}/platform-roles"),
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(
        (last.0, last.1["code"].as_str()),
        (409, Some("last_platform_admin"))
    );

    let platform = format!("/api/v1/users/{ada}/platform-roles");
    let (status, problem) = call(
        &app,
        &admin,
        Method::PUT,
        &platform,
        Some(json!({"roles": ["domain_admin", "nope"]})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(error_fields(&problem), vec!["roles[0]", "roles[1]"]);

    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &platform,
        Some(json!({"roles": ["platform_admin"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(role_keys(&body), vec!["platform_admin"]);
    let (_, body) = call(&app, &admin, Method::GET, &platform, None).await;
    assert_eq!(role_keys(&body), vec!["platform_admin"]);
    let ada_token = token_of(&app, "ada@acme.example").await;
    let (status, _) = call(
        &app,
        &ada_token,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "New", "sip_domain": "new.example.net"})),
    )
    .await;
    assert_eq!(status, 201);

    // Now there are two, so the first may step down; then Ada is the last one.
    let (status, _) = call(
        &app,
        &ada_token,
        Method::PUT,
        &format!("/api/v1/users/{admin_id}/platform-roles"),
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, problem) = call(
        &app,
        &ada_token,
        Method::PUT,
        &platform,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("last_platform_admin"))
    );
    let (status, _) = call(
        &app,
        &ada_token,
        Method::GET,
        &format!("/api/v1/users/{}/platform-roles", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn a_user_can_hold_roles_in_two_domains(app: TestApp) {
    let admin = app.admin_token().await;
    let a = create_domain(&app, &admin, "a.example.net").await;
    let b = create_domain(&app, &admin, "b.example.net").await;
    let ada = create_user(&app, &admin, &a, "ada@acme.example", &["domain_admin"]).await;
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{b}/users/{ada}/roles"),
        Some(json!({"roles": ["receptionist"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = token_of(&app, "ada@acme.example").await;
    let (_, me) = call(&app, &token, Method::GET, "/api/v1/me", None).await;
    let mut held: Vec<(String, String)> = me["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["domain"]["sip_domain"].as_str().unwrap().to_owned(),
                m["roles"][0]["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    held.sort();
    assert_eq!(
        held,
        vec![
            ("a.example.net".to_owned(), "domain_admin".to_owned()),
            ("b.example.net".to_owned(), "receptionist".to_owned())
        ]
    );
    let (_, list) = call(&app, &token, Method::GET, "/api/v1/domains", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    // Admin in A, but only a receptionist in B: B's users are out of reach.
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/domains/{b}/users"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/domains/{a}/users"),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

async fn another_domains_admin_gets_the_same_404_on_every_user_endpoint(app: TestApp) {
    let admin = app.admin_token().await;
    let theirs = create_domain(&app, &admin, "theirs.example.net").await;
    let mine = create_domain(&app, &admin, "mine.example.net").await;
    let victim = create_user(&app, &admin, &theirs, "victim@theirs.example", &["member"]).await;
    create_user(&app, &admin, &mine, "boss@mine.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@mine.example").await;
    let random_domain = Uuid::now_v7().to_string();
    let random_user = Uuid::now_v7().to_string();

    let probes = |d: &str, u: &str| -> Vec<(Method, String, Option<Value>)> {
        let one = format!("/api/v1/domains/{d}/users/{u}");
        vec![
            (Method::GET, format!("/api/v1/domains/{d}/users"), None),
            (
                Method::POST,
                format!("/api/v1/domains/{d}/users"),
                Some(json!({"email": "new@x.example", "display_name": "New", "roles": ["member"]})),
            ),
            (Method::GET, one.clone(), None),
            (
                Method::PATCH,
                one.clone(),
                Some(json!({"status": "disabled"})),
            ),
            (Method::DELETE, one.clone(), None),
            (Method::POST, format!("{one}/reset-password"), None),
            (Method::GET, format!("{one}/roles"), None),
            (
                Method::PUT,
                format!("{one}/roles"),
                Some(json!({"roles": ["member"]})),
            ),
        ]
    };
    // Their Domain, with a real user, answers exactly like a Domain that does not exist.
    for ((method, real, body), (_, fake, fake_body)) in probes(&theirs, &victim)
        .into_iter()
        .zip(probes(&random_domain, &random_user))
    {
        let (status, answer) = call(&app, &boss, method.clone(), &real, body).await;
        let (fake_status, fake_answer) = call(&app, &boss, method.clone(), &fake, fake_body).await;
        assert_eq!(status, 404, "{method} {real}: {answer}");
        assert_eq!(
            (status, &answer),
            (fake_status, &fake_answer),
            "{method} {real}"
        );
    }
    // Their user, addressed through my Domain, answers like a user that does not exist.
    for ((method, real, body), (_, fake, fake_body)) in probes(&mine, &victim)
        .into_iter()
        .zip(probes(&mine, &random_user))
        .skip(2)
    {
        let (status, answer) = call(&app, &boss, method.clone(), &real, body).await;
        let (fake_status, fake_answer) = call(&app, &boss, method.clone(), &fake, fake_body).await;
        assert_eq!(status, 404, "{method} {real}: {answer}");
        assert_eq!(
            (status, &answer),
            (fake_status, &fake_answer),
            "{method} {real}"
        );
    }
    // And the victim was not touched.
    let (_, victim_now) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{theirs}/users/{victim}"),
        None,
    )
    .await;
    assert_eq!(victim_now["status"], "active");
    assert_eq!(role_keys(&victim_now), vec!["member"]);
}
