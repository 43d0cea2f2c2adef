//! API keys: created with a role in one Domain or at platform level, shown once, used as
//! `Authorization: Bearer sk_…`, refused at once when revoked or expired, never reaching beyond
//! their scope or role, audited without their secret.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use switchboard_domain::identity::permissions::BuiltinRole;
use switchboard_domain::store::{api_keys, audit_log};
use switchboard_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, TEST_ENCRYPTION_KEY, TestApp, assert_problem, both_databases,
};

use crate::users::{call, create_domain, create_user, token_of};

both_databases!(
    a_domain_key_is_shown_once_acts_with_its_role_and_is_refused_as_soon_as_it_is_revoked,
    a_wrong_secret_for_a_real_key_and_a_malformed_key_are_401,
    a_key_is_refused_once_it_expires,
    a_domain_key_gets_404_in_another_domain_and_403_at_platform_level,
    a_key_creates_keys_only_in_its_own_domain_and_with_no_more_than_it_holds,
    nobody_creates_a_key_with_a_role_they_do_not_hold,
    roles_must_fit_the_scope_and_bad_input_is_a_422_naming_the_field,
    a_platform_key_acts_in_every_domain_and_is_listed_apart_from_domain_keys,
    keys_are_managed_only_in_their_own_scope,
    creating_and_revoking_are_audited_without_the_secret,
    keys_are_listed_oldest_first_across_pages,
    the_secret_never_reaches_the_server_logs,
    revoking_a_key_needs_every_permission_of_its_role,
);

/// A Domain with a domain_admin (returned: Domain id, admin's email, admin's token).
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

/// Creates a key under `base` (`/api/v1/api-keys` or a Domain's) as `token`; panics unless 201.
async fn create_key(app: &TestApp, token: &str, base: &str, body: Value) -> Value {
    let (status, created) = call(app, token, Method::POST, base, Some(body.clone())).await;
    assert_eq!(status, 201, "creating a key with {body}: {created}");
    created
}

fn keys_of(domain: &str) -> String {
    format!("/api/v1/domains/{domain}/api-keys")
}

fn secret_of(created: &Value) -> String {
    created["secret"].as_str().expect("a secret").to_owned()
}

/// The key with its secret part replaced by something of the same shape.
fn with_wrong_secret(secret: &str) -> String {
    // The id is hex, so the first `_` after `sk_` ends it; the secret may contain `_` itself.
    let cut = 3 + secret[3..].find('_').expect("sk_<id>_<secret>") + 1;
    let wrong: String = secret[cut..]
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    format!("{}{wrong}", &secret[..cut])
}

fn names(permissions: &Value) -> Vec<String> {
    permissions
        .as_array()
        .expect("a list of permissions")
        .iter()
        .map(|p| p.as_str().expect("a name").to_owned())
        .collect()
}

async fn a_domain_key_is_shown_once_acts_with_its_role_and_is_refused_as_soon_as_it_is_revoked(
    app: TestApp,
) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;

    let response = app
        .send_as(
            &owner,
            Method::POST,
            &keys_of(&domain),
            Some(&json!({"name": " provisioning ", "role": "manager", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = secret_of(&created);
    assert_eq!(location, format!("{}/{id}", keys_of(&domain)));
    assert!(
        secret.starts_with(created["prefix"].as_str().unwrap()),
        "{created}"
    );
    assert_eq!(created["prefix"], format!("sk_{}_", id.replace('-', "")));
    assert_eq!(created["name"], "provisioning");
    assert_eq!(
        created["role"],
        json!({"key": "manager", "name": "manager"})
    );
    assert_eq!(created["scope"], "domain");
    assert_eq!(created["domain_id"], domain);
    assert_eq!(created["status"], "active");
    assert!(created["created_by"].is_string(), "{created}");
    assert!(created["expires_at"].is_string(), "{created}");
    assert!(created["last_used_at"].is_null() && created["revoked_at"].is_null());

    // The key acts as itself, with exactly its role's permissions in its Domain.
    let (status, me) = call(&app, &secret, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["api_key"]["id"], id.as_str());
    assert!(me["user"].is_null(), "{me}");
    assert_eq!(me["platform_permissions"], json!([]));
    let domains = me["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 1, "{me}");
    assert_eq!(domains[0]["domain"]["id"], domain);
    let manager: Vec<String> = BuiltinRole::Manager
        .permissions()
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names(&domains[0]["permissions"]), manager);
    let (status, _) = call(
        &app,
        &secret,
        Method::GET,
        &format!("/api/v1/domains/{domain}/users"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Listing and reading never show the secret; they show that the key was used.
    for path in [keys_of(&domain), format!("{}/{id}", keys_of(&domain))] {
        let response = app.send_as(&owner, Method::GET, &path, None).await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(&secret[created["prefix"].as_str().unwrap().len()..]),
            "{text}"
        );
        assert!(!text.contains("\"secret\""), "{text}");
        assert!(
            !text.contains("secret_hash") && !text.contains("argon2"),
            "{text}"
        );
    }
    let (_, read) = call(
        &app,
        &owner,
        Method::GET,
        &format!("{}/{id}", keys_of(&domain)),
        None,
    )
    .await;
    assert!(read["last_used_at"].is_string(), "{read}");
    assert_eq!(read["status"], "active");

    // Revoked: the very next request is refused; revoking again changes nothing.
    let (status, body) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("{}/{id}", keys_of(&domain)),
        None,
    )
    .await;
    assert_eq!((status, body), (204, Value::Null));
    assert_problem(
        app.send_as(&secret, Method::GET, "/api/v1/me", None).await,
        401,
        "unauthenticated",
    )
    .await;
    let (status, _) = call(
        &app,
        &owner,
        Method::DELETE,
        &format!("{}/{id}", keys_of(&domain)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, read) = call(
        &app,
        &owner,
        Method::GET,
        &format!("{}/{id}", keys_of(&domain)),
        None,
    )
    .await;
    assert_eq!(read["status"], "revoked");
    assert!(read["revoked_at"].is_string(), "{read}");
    let revocations = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("api_key.revoke"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(
        revocations.len(),
        1,
        "a second revoke is not a second change"
    );
}

async fn a_wrong_secret_for_a_real_key_and_a_malformed_key_are_401(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let created = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "ci", "role": "member"}),
    )
    .await;
    let secret = secret_of(&created);
    let (status, _) = call(&app, &secret, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);

    let wrong = with_wrong_secret(&secret);
    assert_ne!(wrong, secret);
    for token in [
        wrong.as_str(),
        &secret[..secret.len() - 1],
        created["prefix"].as_str().unwrap(),
        "sk_not-a-key",
        "sk_00000000000000000000000000000000_abc",
    ] {
        let problem = assert_problem(
            app.send_as(token, Method::GET, "/api/v1/me", None).await,
            401,
            "unauthenticated",
        )
        .await;
        // The same answer whatever was wrong: nothing to probe key ids with.
        assert_eq!(
            problem["detail"], "the API key is invalid, revoked or expired",
            "{token}"
        );
    }
    // A failed attempt does not break the real key.
    let (status, _) = call(&app, &secret, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);
}

async fn a_key_is_refused_once_it_expires(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let expires_at = Utc::now() + chrono::Duration::seconds(3);
    let created = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "short-lived", "role": "member", "expires_at": expires_at.to_rfc3339()}),
    )
    .await;
    let secret = secret_of(&created);
    let (status, _) = call(&app, &secret, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);

    let wait = expires_at - Utc::now() + chrono::Duration::milliseconds(100);
    tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
    assert_problem(
        app.send_as(&secret, Method::GET, "/api/v1/me", None).await,
        401,
        "unauthenticated",
    )
    .await;
    let path = format!("{}/{}", keys_of(&domain), created["id"].as_str().unwrap());
    let (_, read) = call(&app, &owner, Method::GET, &path, None).await;
    assert_eq!(read["status"], "expired", "{read}");
}

async fn a_domain_key_gets_404_in_another_domain_and_403_at_platform_level(app: TestApp) {
    let admin = app.admin_token().await;
    let (mine, _, owner) = domain_with_admin(&app, &admin, "mine.example.net").await;
    let (theirs, _, other) = domain_with_admin(&app, &admin, "theirs.example.net").await;
    let their_key = create_key(
        &app,
        &other,
        &keys_of(&theirs),
        json!({"name": "theirs", "role": "member"}),
    )
    .await;
    let their_key = their_key["id"].as_str().unwrap();
    let key = create_key(
        &app,
        &owner,
        &keys_of(&mine),
        json!({"name": "full", "role": "domain_admin"}),
    )
    .await;
    let key = secret_of(&key);

    let (status, _) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/domains/{mine}/users"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let missing = uuid::Uuid::now_v7();
    for domain in [theirs.clone(), missing.to_string()] {
        let requests = [
            (Method::GET, format!("/api/v1/domains/{domain}"), None),
            (Method::GET, format!("/api/v1/domains/{domain}/users"), None),
            (Method::GET, keys_of(&domain), None),
            (
                Method::POST,
                keys_of(&domain),
                Some(json!({"name": "x", "role": "member"})),
            ),
            (
                Method::GET,
                format!("{}/{their_key}", keys_of(&domain)),
                None,
            ),
            (
                Method::DELETE,
                format!("{}/{their_key}", keys_of(&domain)),
                None,
            ),
            (Method::GET, format!("/api/v1/domains/{domain}/audit"), None),
        ];
        for (method, path, body) in requests {
            let problem = assert_problem(
                app.send_as(&key, method.clone(), &path, body.as_ref())
                    .await,
                404,
                "not_found",
            )
            .await;
            // Another Domain and no Domain at all answer alike.
            assert_eq!(problem["detail"], "domain not found", "{method} {path}");
        }
    }
    // Their key is untouched.
    let path = format!("{}/{their_key}", keys_of(&theirs));
    let (_, read) = call(&app, &other, Method::GET, &path, None).await;
    assert_eq!(read["status"], "active");

    let platform = [
        (
            Method::POST,
            "/api/v1/domains",
            Some(json!({"name": "x", "sip_domain": "x.example.net"})),
        ),
        (Method::GET, "/api/v1/api-keys", None),
        (
            Method::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "x", "role": "platform_admin"})),
        ),
        (Method::GET, "/api/v1/audit", None),
    ];
    for (method, path, body) in platform {
        assert_problem(
            app.send_as(&key, method, path, body.as_ref()).await,
            403,
            "forbidden",
        )
        .await;
    }
}

async fn a_key_creates_keys_only_in_its_own_domain_and_with_no_more_than_it_holds(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;

    // A custom role that may manage keys but holds little else.
    let (status, role) = call(
        &app,
        &owner,
        Method::POST,
        &format!("/api/v1/domains/{domain}/roles"),
        Some(json!({"name": "key manager", "permissions": ["domains.read", "api_keys.write", "presence.read"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let role_id = role["key"].as_str().unwrap().to_owned();
    let limited = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "limited", "role": role_id}),
    )
    .await;
    assert_eq!(
        limited["role"],
        json!({"key": role_id, "name": "key manager"})
    );
    let limited = secret_of(&limited);

    // Within its own role: allowed, and the new key works.
    let child = create_key(
        &app,
        &limited,
        &keys_of(&domain),
        json!({"name": "child", "role": role_id}),
    )
    .await;
    assert!(
        child["created_by"].is_null(),
        "a key is not a user: {child}"
    );
    let (status, _) = call(&app, &secret_of(&child), Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 200);

    // Beyond it: refused, naming a permission it lacks.
    for role in ["domain_admin", "member", "manager"] {
        let problem = assert_problem(
            app.send_as(
                &limited,
                Method::POST,
                &keys_of(&domain),
                Some(&json!({"name": "up", "role": role})),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains("permission"),
            "{problem}"
        );
    }

    // A member key holds no api_keys.write at all.
    let member = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "member", "role": "member"}),
    )
    .await;
    let member = secret_of(&member);
    for role in ["domain_admin", "member"] {
        assert_problem(
            app.send_as(
                &member,
                Method::POST,
                &keys_of(&domain),
                Some(&json!({"name": "up", "role": role})),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        app.send_as(&member, Method::GET, &keys_of(&domain), None)
            .await,
        403,
        "forbidden",
    )
    .await;

    // A domain_admin key may mint another domain_admin key, in its Domain only.
    let full = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "full", "role": "domain_admin"}),
    )
    .await;
    let full = secret_of(&full);
    create_key(
        &app,
        &full,
        &keys_of(&domain),
        json!({"name": "full 2", "role": "domain_admin"}),
    )
    .await;
    let keys = api_keys::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(keys.len(), 5);
    assert!(
        keys.iter()
            .all(|k| k.domain_id.map(|d| d.to_string()) == Some(domain.clone()))
    );
}

async fn nobody_creates_a_key_with_a_role_they_do_not_hold(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, _) = domain_with_admin(&app, &admin, "acme.example.net").await;
    create_user(
        &app,
        &admin,
        &domain,
        "manager@acme.example.net",
        &["manager"],
    )
    .await;
    let manager = token_of(&app, "manager@acme.example.net").await;
    // A manager lacks api_keys.write.
    assert_problem(
        app.send_as(
            &manager,
            Method::POST,
            &keys_of(&domain),
            Some(&json!({"name": "x", "role": "member"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // A custom role with api_keys.write but not users.write cannot mint domain_admin.
    let (status, role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/roles"),
        Some(json!({"name": "keys only", "permissions": ["domains.read", "api_keys.write"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    create_user(
        &app,
        &admin,
        &domain,
        "keys@acme.example.net",
        &[role["key"].as_str().unwrap()],
    )
    .await;
    let keys_only = token_of(&app, "keys@acme.example.net").await;
    let problem = assert_problem(
        app.send_as(
            &keys_only,
            Method::POST,
            &keys_of(&domain),
            Some(&json!({"name": "x", "role": "domain_admin"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("users.read"),
        "{problem}"
    );
    // And a Domain admin cannot mint a platform key.
    let (_, _, token) = domain_with_admin(&app, &admin, "other.example.net").await;
    assert_problem(
        app.send_as(
            &token,
            Method::POST,
            "/api/v1/api-keys",
            Some(&json!({"name": "x", "role": "platform_admin"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert!(
        api_keys::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
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

async fn roles_must_fit_the_scope_and_bad_input_is_a_422_naming_the_field(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, _) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let (other, _, other_admin) = domain_with_admin(&app, &admin, "other.example.net").await;
    let (_, other_role) = call(
        &app,
        &other_admin,
        Method::POST,
        &format!("/api/v1/domains/{other}/roles"),
        Some(json!({"name": "theirs", "permissions": ["domains.read"]})),
    )
    .await;
    let other_role = other_role["key"].as_str().unwrap();
    let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let future = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();

    let cases = [
        (
            keys_of(&domain),
            json!({"name": "x", "role": "platform_admin"}),
            vec![("role", "wrong_scope")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x", "role": "superuser"}),
            vec![("role", "unknown_role")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x", "role": other_role}),
            vec![("role", "unknown_role")],
        ),
        (
            "/api/v1/api-keys".to_owned(),
            json!({"name": "x", "role": "manager"}),
            vec![("role", "wrong_scope")],
        ),
        (
            "/api/v1/api-keys".to_owned(),
            json!({"name": "x", "role": other_role}),
            vec![("role", "unknown_role")],
        ),
        (
            keys_of(&domain),
            json!({"name": "  ", "role": "member", "expires_at": past}),
            vec![("name", "invalid_length"), ("expires_at", "not_in_future")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x".repeat(101), "role": "member", "expires_in_days": 0}),
            vec![
                ("name", "invalid_length"),
                ("expires_in_days", "out_of_range"),
            ],
        ),
        (
            keys_of(&domain),
            json!({"name": "x", "role": "member", "expires_at": future, "expires_in_days": 3}),
            vec![("expires_in_days", "conflicting_fields")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x", "role": "member", "expires_at": "tomorrow"}),
            vec![("expires_at", "invalid_type")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x"}),
            vec![("role", "required")],
        ),
        (
            keys_of(&domain),
            json!({"name": "x", "role": "member", "secret": "mine"}),
            vec![("secret", "unknown_field")],
        ),
    ];
    for (path, body, expected) in cases {
        let problem = assert_problem(
            app.send_as(&admin, Method::POST, &path, Some(&body)).await,
            422,
            "validation_failed",
        )
        .await;
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
            .collect();
        assert_eq!(error_fields(&problem), expected, "{path} {body}");
    }
    assert!(
        api_keys::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_platform_key_acts_in_every_domain_and_is_listed_apart_from_domain_keys(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let domain_key = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "domain", "role": "member"}),
    )
    .await;

    let created = create_key(
        &app,
        &admin,
        "/api/v1/api-keys",
        json!({"name": "provider", "role": "platform_admin"}),
    )
    .await;
    assert_eq!(created["scope"], "platform");
    assert!(created["domain_id"].is_null());
    assert_eq!(created["role"]["key"], "platform_admin");
    let key = secret_of(&created);

    let (_, me) = call(&app, &key, Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        names(&me["platform_permissions"]).len(),
        BuiltinRole::PlatformAdmin.permissions().names().len()
    );
    // It provisions like a platform administrator: a new Domain, a user in it, and reads both logs.
    let new_domain = create_domain(&app, &key, "new.example.net").await;
    create_user(
        &app,
        &key,
        &new_domain,
        "someone@new.example.net",
        &["member"],
    )
    .await;
    let (status, _) = call(
        &app,
        &key,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&app, &key, Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 200);
    // And it may mint Domain keys too (it holds every permission everywhere).
    create_key(
        &app,
        &key,
        &keys_of(&new_domain),
        json!({"name": "from provider", "role": "domain_admin"}),
    )
    .await;

    // Platform keys and Domain keys are listed in their own scopes only.
    let (_, platform) = call(&app, &admin, Method::GET, "/api/v1/api-keys", None).await;
    let ids: Vec<&str> = platform["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![created["id"].as_str().unwrap()]);
    let (_, in_domain) = call(&app, &admin, Method::GET, &keys_of(&domain), None).await;
    let ids: Vec<&str> = in_domain["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![domain_key["id"].as_str().unwrap()]);
}

async fn keys_are_managed_only_in_their_own_scope(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let (other, _, _) = domain_with_admin(&app, &admin, "other.example.net").await;
    let domain_key = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "d", "role": "member"}),
    )
    .await;
    let platform_key = create_key(
        &app,
        &admin,
        "/api/v1/api-keys",
        json!({"name": "p", "role": "platform_admin"}),
    )
    .await;
    let (d, p) = (
        domain_key["id"].as_str().unwrap(),
        platform_key["id"].as_str().unwrap(),
    );

    // Even the platform administrator finds a key only under its own scope's path.
    for path in [
        format!("/api/v1/api-keys/{d}"),
        format!("{}/{p}", keys_of(&domain)),
        format!("{}/{d}", keys_of(&other)),
        format!("{}/{}", keys_of(&domain), uuid::Uuid::now_v7()),
    ] {
        for method in [Method::GET, Method::DELETE] {
            assert_problem(
                app.send_as(&admin, method, &path, None).await,
                404,
                "not_found",
            )
            .await;
        }
    }
    let (status, me) = call(
        &app,
        &secret_of(&domain_key),
        Method::GET,
        "/api/v1/me",
        None,
    )
    .await;
    assert_eq!(status, 200, "the key still works: {me}");
    // A platform admin may manage a Domain's keys through the Domain's path.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{}/{d}", keys_of(&domain)),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &secret_of(&domain_key),
        Method::GET,
        "/api/v1/me",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

async fn creating_and_revoking_are_audited_without_the_secret(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, email, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let created = create_key(
        &app,
        &owner,
        &keys_of(&domain),
        json!({"name": "audited", "role": "supervisor"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let secret = secret_of(&created);
    call(&app, &secret, Method::GET, "/api/v1/me", None).await;
    call(
        &app,
        &owner,
        Method::DELETE,
        &format!("{}/{id}", keys_of(&domain)),
        None,
    )
    .await;
    let platform = create_key(
        &app,
        &admin,
        "/api/v1/api-keys",
        json!({"name": "p", "role": "platform_admin"}),
    )
    .await;
    call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/api-keys/{}", platform["id"].as_str().unwrap()),
        None,
    )
    .await;

    // Through the API: the Domain's log shows both changes, newest first, by the Domain admin.
    let (status, log) = call(
        &app,
        &owner,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?target_kind=api_key&target_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let entries = log["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
    for entry in entries {
        assert_eq!(entry["actor"]["kind"], "user");
        assert_eq!(entry["actor"]["label"], email.as_str());
        assert_eq!(entry["domain_id"], domain);
        assert!(entry["request_id"].is_string(), "{entry}");
    }
    assert_eq!(entries[1]["after"]["role"], "supervisor");
    assert_eq!(entries[1]["after"]["name"], "audited");
    assert!(entries[0]["before"]["revoked_at"].is_null());
    assert!(entries[0]["after"]["revoked_at"].is_string());
    // Platform keys are audited at platform level.
    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit?action=api_key.*",
        None,
    )
    .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_key.revoke", "api_key.create"]);

    // In the database: no row holds the secret, its random part, or the stored hash.
    let hashes: Vec<String> = api_keys::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.secret_hash)
        .collect();
    let random_part = &secret[created["prefix"].as_str().unwrap().len()..];
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    assert!(rows.len() >= 4);
    for row in rows {
        let text = format!("{row:?}");
        assert!(!text.contains(random_part), "the secret is in {text}");
        for hash in &hashes {
            assert!(!text.contains(hash.as_str()), "a hash is in {text}");
        }
        assert!(!text.contains("argon2"), "{text}");
    }
}

async fn keys_are_listed_oldest_first_across_pages(app: TestApp) {
    let admin = app.admin_token().await;
    let (domain, _, owner) = domain_with_admin(&app, &admin, "acme.example.net").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let key = create_key(
            &app,
            &owner,
            &keys_of(&domain),
            json!({"name": format!("key {i}"), "role": "member"}),
        )
        .await;
        made.push(key["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{}?limit=2&cursor={c}", keys_of(&domain)),
            None => format!("{}?limit=2", keys_of(&domain)),
        };
        let (status, page) = call(&app, &owner, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, made);
    assert_problem(
        app.send_as(
            &owner,
            Method::GET,
            &format!("{}?cursor=garbage", keys_of(&domain)),
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

/// A second server process on the test's database, logging at debug level into a pipe.
pub(crate) struct LoggedServer {
    child: Child,
    pub(crate) address: String,
    log: std::thread::JoinHandle<String>,
}

impl LoggedServer {
    pub(crate) fn start(app: &TestApp) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir();
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard-cli"));
        command
            .arg("serve")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key
                .to_string_lossy()
                .to_ascii_uppercase()
                .starts_with("SWITCHBOARD_")
            {
                command.env_remove(key);
            }
        }
        command
            .env("RUST_LOG", "debug")
            .env("SWITCHBOARD_DATABASE_URL", &app.database_url)
            .env("SWITCHBOARD_HTTP__HOST", "127.0.0.1")
            .env("SWITCHBOARD_HTTP__PORT", port.to_string())
            .env("SWITCHBOARD_HTTP__WORKERS", "1")
            .env("SWITCHBOARD_DATABASE__MAX_CONNECTIONS", "2")
            .env("SWITCHBOARD_SECRETS__ENCRYPTION_KEY", TEST_ENCRYPTION_KEY);
        let mut child = command.spawn().expect("starting the switchboard binary");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits until the server answers (panics with its log after 30 s).
    pub(crate) async fn wait_ready(self) -> Self {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/health/live", self.address))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "the second server did not start:\n{}",
                self.stop()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server (the process this test started) and returns everything it logged.
    pub(crate) fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.join().unwrap_or_default()
    }
}

async fn the_secret_never_reaches_the_server_logs(app: TestApp) {
    let server = LoggedServer::start(&app);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/health/live", server.address))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second server did not start:\n{}",
            server.stop()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = |path: &str| format!("{}{path}", server.address);

    let tokens: Value = client
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = tokens["access_token"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(url("/api/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "logged", "role": "platform_admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = secret_of(&created);
    let id = created["id"].as_str().unwrap();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            client
                .get(url("/api/v1/me"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            client
                .get(url("/api/v1/me"))
                .bearer_auth(with_wrong_secret(&secret))
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            client
                .delete(url(&format!("/api/v1/api-keys/{id}")))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap()
        ),
        204
    );
    assert_eq!(
        status(
            client
                .get(url("/api/v1/me"))
                .bearer_auth(&secret)
                .send()
                .await
                .unwrap()
        ),
        401
    );

    let log = server.stop();
    assert!(
        log.contains("http.target=/api/v1/me"),
        "the requests were not logged at all:\n{log}"
    );
    let random_part = &secret[created["prefix"].as_str().unwrap().len()..];
    assert!(
        !log.contains(random_part),
        "the API key secret reached the log:\n{log}"
    );
    assert!(!log.contains(&admin), "the access token reached the log");
}

async fn revoking_a_key_needs_every_permission_of_its_role(app: TestApp) {
    let platform = app.admin_token().await;
    let (domain, _, boss) = domain_with_admin(&app, &platform, "revoke-rights.example").await;
    let (status, role) = call(
        &app,
        &boss,
        Method::POST,
        &format!("/api/v1/domains/{domain}/roles"),
        Some(json!({"name": "Key clerk", "permissions": ["domains.read", "api_keys.write"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let clerk_role = role["key"].as_str().unwrap().to_owned();
    create_user(
        &app,
        &boss,
        &domain,
        "clerk@revoke-rights.example",
        &[&clerk_role],
    )
    .await;
    let clerk = token_of(&app, "clerk@revoke-rights.example").await;

    let strong = create_key(
        &app,
        &boss,
        &keys_of(&domain),
        json!({"name": "provisioning", "role": "domain_admin"}),
    )
    .await;
    let strong_path = format!("{}/{}", keys_of(&domain), strong["id"].as_str().unwrap());
    let (status, problem) = call(&app, &clerk, Method::DELETE, &strong_path, None).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "forbidden");
    // Still alive.
    let response = app
        .send_as(&secret_of(&strong), Method::GET, "/api/v1/me", None)
        .await;
    assert_eq!(response.status(), 200);
    let (_, read) = call(&app, &boss, Method::GET, &strong_path, None).await;
    assert_eq!(read["status"], "active");

    // A key within the clerk's own rights is theirs to revoke, and the boss revokes anything.
    let weak = create_key(
        &app,
        &clerk,
        &keys_of(&domain),
        json!({"name": "clerical", "role": clerk_role}),
    )
    .await;
    let weak_path = format!("{}/{}", keys_of(&domain), weak["id"].as_str().unwrap());
    let (status, body) = call(&app, &clerk, Method::DELETE, &weak_path, None).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(&app, &boss, Method::DELETE, &strong_path, None).await;
    assert_eq!(status, 204, "{body}");
}
