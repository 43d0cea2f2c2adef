//! The token-signing key at rest (issue 11, D5): without `auth.jwt_secret` the generated key is
//! stored encrypted with the secrets key, so what the database holds cannot sign a token; a key
//! an earlier version stored in clear is encrypted on the next start and keeps working; a new
//! SQLite file is readable by its owner only.

use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::json;
use switchboard_api::Application;
use switchboard_domain::store::{server_settings, sessions};
use switchboard_tests::{Backend, TestApp, both_databases, test_config};

both_databases!(
    the_database_alone_cannot_sign_an_access_token,
    a_key_stored_in_clear_by_an_earlier_version_is_encrypted_on_start_and_keeps_working,
    a_new_sqlite_database_is_readable_by_its_owner_only,
);

const SETTING: &str = "jwt_signing_key";

async fn stored_key(app: &TestApp) -> String {
    server_settings::Entity::find_by_id(SETTING.to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .expect("the generated key is stored")
        .value
}

/// An access token for the platform administrator's session, signed with `key`.
fn forge(key: &str, user: &str, session: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": user, "sid": session, "iat": now, "exp": now + 600, "typ": "access"}),
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// The administrator's user id and live session id, as an attacker reading the database sees
/// them.
async fn admin_session(app: &TestApp) -> (String, String) {
    app.admin_token().await;
    let session = sessions::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .pop()
        .expect("a session");
    (session.user_id.to_string(), session.id.to_string())
}

async fn a_platform_domain_can_be_created_with(app: &TestApp, token: &str) -> u16 {
    app.send_as(
        token,
        Method::POST,
        "/api/v1/domains",
        Some(&json!({"name": "Forged", "sip_domain": "forged.example"})),
    )
    .await
    .status()
    .as_u16()
}

async fn the_database_alone_cannot_sign_an_access_token(app: TestApp) {
    let (user, session) = admin_session(&app).await;
    let stored = stored_key(&app).await;
    assert!(stored.starts_with("v1."), "stored in clear: {stored}");

    // What the database holds does not sign a valid token.
    let forged = forge(&stored, &user, &session);
    assert_eq!(
        a_platform_domain_can_be_created_with(&app, &forged).await,
        401
    );
    // Nor does its encrypted payload, whatever part of it an attacker tries.
    for part in stored.split('.') {
        let forged = forge(part, &user, &session);
        assert_eq!(
            a_platform_domain_can_be_created_with(&app, &forged).await,
            401
        );
    }
    // The server's own tokens work, of course.
    let token = app.admin_token().await;
    assert_eq!(
        a_platform_domain_can_be_created_with(&app, &token).await,
        201
    );
}

async fn a_key_stored_in_clear_by_an_earlier_version_is_encrypted_on_start_and_keeps_working(
    app: TestApp,
) {
    // What an earlier version left behind: the key in clear.
    let legacy = "bGVnYWN5LXBsYWludGV4dC1zaWduaW5nLWtleS0xMjM0NQ";
    server_settings::Entity::update(server_settings::ActiveModel {
        key: sea_orm::Set(SETTING.to_owned()),
        value: sea_orm::Set(legacy.to_owned()),
        updated_at: sea_orm::Set(chrono::Utc::now()),
    })
    .exec(&app.db)
    .await
    .unwrap();

    // The upgraded server starts on that database ...
    let upgraded = Application::build(test_config(&app.database_url))
        .await
        .expect("the upgraded server starts");
    let address = format!("http://127.0.0.1:{}", upgraded.port());
    tokio::spawn(upgraded.run_until_stopped());

    // ... encrypts the key where it is ...
    let stored = stored_key(&app).await;
    assert!(stored.starts_with("v1."), "still in clear: {stored}");
    assert!(!stored.contains(legacy));

    // ... and keeps using it: tokens signed before the upgrade still work (nobody is logged out).
    let (user, session) = admin_session(&app).await;
    let issued_before = forge(legacy, &user, &session);
    let response = app
        .client
        .get(format!("{address}/api/v1/me"))
        .bearer_auth(&issued_before)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A third start reads the encrypted form.
    let again = Application::build(test_config(&app.database_url))
        .await
        .expect("starts again");
    let address = format!("http://127.0.0.1:{}", again.port());
    tokio::spawn(again.run_until_stopped());
    let response = app
        .client
        .get(format!("{address}/api/v1/me"))
        .bearer_auth(&issued_before)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        stored_key(&app).await,
        stored,
        "encrypted once, then left alone"
    );
}

async fn a_new_sqlite_database_is_readable_by_its_owner_only(app: TestApp) {
    use std::os::unix::fs::PermissionsExt;
    if app.backend != Backend::Sqlite {
        // PostgreSQL's files are the PostgreSQL server's business.
        return;
    }
    let path = app
        .database_url
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_owned();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        if let Ok(meta) = std::fs::metadata(&file) {
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{file} is readable by others"
            );
        } else {
            assert!(!suffix.is_empty(), "the database file {file} is missing");
        }
    }
}
