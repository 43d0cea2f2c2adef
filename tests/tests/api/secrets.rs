//! SIP secrets at rest and change events: a wrong key is a clear start-up error, and changes
//! reach the event bus only after they committed.

use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;
use switchboard_api::Application;
use switchboard_domain::events::ChangeKind;
use switchboard_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, both_databases, test_config};

use crate::api_keys::LoggedServer;

use crate::users::{call, create_domain};

both_databases!(
    a_database_encrypted_with_another_key_is_refused_at_start_up_naming_both_keys,
    committed_changes_are_published_and_refused_ones_are_not,
    sip_secrets_and_pins_never_reach_the_server_logs,
);

async fn sip_secrets_and_pins_never_reach_the_server_logs(app: TestApp) {
    let server = LoggedServer::start(&app).wait_ready().await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);
    let tokens: serde_json::Value = client
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let send = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = client.request(method, url(path)).bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let (status, domain) = send(
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "Acme", "sip_domain": "acme.pbx.test"})),
    )
    .await;
    assert_eq!(status, 201, "{domain}");
    let base = format!(
        "/api/v1/domains/{}/extensions",
        domain["id"].as_str().unwrap()
    );
    let (status, ext) = send(
        Method::POST,
        &base,
        Some(json!({"number": "201", "display_name": "A", "pin": "739146", "sip_registration": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, 201, "{ext}");
    let id = ext["id"].as_str().unwrap();
    let (_, first) = send(Method::GET, &format!("{base}/{id}/sip-secret"), None).await;
    send(Method::POST, &format!("{base}/{id}/rotate-secret"), None).await;
    let (_, second) = send(Method::GET, &format!("{base}/{id}/sip-secret"), None).await;
    let (status, _) = send(
        Method::PATCH,
        &format!("{base}/{id}"),
        Some(json!({"pin": "1234"})),
    )
    .await;
    assert_eq!(
        status, 422,
        "a trivial PIN is refused (and must not be logged either)"
    );

    let devices = base.replace("/extensions", "/devices");
    let (status, device) = send(
        Method::POST,
        &devices,
        Some(json!({"label": "Desk", "mode": "hotdesk"})),
    )
    .await;
    assert_eq!(status, 201, "{device}");
    let (_, device_secret) = send(
        Method::GET,
        &format!("{devices}/{}/sip-secret", device["id"].as_str().unwrap()),
        None,
    )
    .await;
    let device_secret = device_secret["sip_secret"].as_str().unwrap().to_owned();

    let log = server.stop();
    assert!(
        log.contains("trivial_pin"),
        "the refused change was logged (so the log is being read):\n{log}"
    );
    for secret in [
        first["sip_secret"].as_str().unwrap(),
        second["sip_secret"].as_str().unwrap(),
        &device_secret,
        "739146",
        "\"1234\"",
    ] {
        assert!(!log.contains(secret), "{secret} reached the logs");
    }
}

async fn a_database_encrypted_with_another_key_is_refused_at_start_up_naming_both_keys(
    app: TestApp,
) {
    let admin = app.admin_token().await;
    let domain = create_domain(&app, &admin, "acme.pbx.test").await;
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/extensions"),
        Some(json!({"number": "201", "display_name": "A", "sip_registration": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, 201);

    let mut config = test_config(&app.database_url);
    config.secrets.encryption_key = Some(SecretString::from(
        "bm90LXRoZS1zYW1lLWtleS1hdC1hbGwtMzItYnl0ZXM=",
    ));
    let error = match Application::build(config).await {
        Ok(_) => panic!("a second server with another key must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains("secrets.encryption_key"), "{error}");
    assert!(error.contains("was encrypted with key"), "{error}");

    // The right key still starts.
    assert!(
        Application::build(test_config(&app.database_url))
            .await
            .is_ok()
    );
}

async fn committed_changes_are_published_and_refused_ones_are_not(app: TestApp) {
    let admin = app.admin_token().await;
    let domain = create_domain(&app, &admin, "acme.pbx.test").await;
    let mut events = app.events.subscribe();
    let path = format!("/api/v1/domains/{domain}/extensions");

    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"number": "2x", "display_name": "A"})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, created) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"number": "201", "display_name": "A"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"number": "201", "display_name": "B"})),
    )
    .await;
    assert_eq!(status, 409, "a duplicate is rolled back");

    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("open bus");
    assert_eq!(event.kind, ChangeKind::ExtensionCreated);
    assert_eq!(event.entity_id.to_string(), created["id"].as_str().unwrap());
    assert_eq!(event.sip_domain, "acme.pbx.test");
    assert_eq!(event.sip_users, vec!["201".to_owned()]);
    assert!(
        events.try_recv().is_err(),
        "the refused and rolled-back creates published nothing"
    );

    let id = created["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{path}/{id}"),
        Some(json!({"sip_registration": {"enabled": true}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("{path}/{id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let enabled = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("open bus");
    assert_eq!(
        (enabled.kind, enabled.drop_registrations.len()),
        (ChangeKind::ExtensionUpdated, 0)
    );
    let rotated = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("open bus");
    assert_eq!(
        rotated.drop_registrations,
        vec!["201".to_owned()],
        "rotating drops the registrations"
    );
    let (status, _) = call(&app, &admin, Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, 204);
    let deleted = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("open bus");
    assert_eq!(
        (deleted.kind, deleted.drop_registrations.clone()),
        (ChangeKind::ExtensionDeleted, vec!["201".to_owned()])
    );
}
