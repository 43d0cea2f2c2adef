//! A disabled Domain is suspended: its members and its API keys lose access to it at once;
//! platform administrators keep it and can re-enable it.

use reqwest::Method;
use serde_json::json;
use switchboard_tests::{TestApp, both_databases};

use crate::users::{call, create_domain, create_user, token_of};

both_databases!(a_disabled_domain_is_closed_to_its_members_and_keys_until_re_enabled);

async fn a_disabled_domain_is_closed_to_its_members_and_keys_until_re_enabled(app: TestApp) {
    let admin = app.admin_token().await;
    let domain = create_domain(&app, &admin, "acme.pbx.test").await;
    create_user(&app, &admin, &domain, "boss@acme.test", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@acme.test").await;
    let (status, key) = call(
        &app,
        &boss,
        Method::POST,
        &format!("/api/v1/domains/{domain}/api-keys"),
        Some(json!({"name": "provisioning", "role": "manager"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key = key["secret"].as_str().unwrap().to_owned();
    let extensions = format!("/api/v1/domains/{domain}/extensions");
    for token in [&boss, &key] {
        let (status, _) = call(&app, token, Method::GET, &extensions, None).await;
        assert_eq!(status, 200);
    }

    let domain_path = format!("/api/v1/domains/{domain}");
    let set_enabled = |enabled: bool| {
        call(
            &app,
            &admin,
            Method::PATCH,
            &domain_path,
            Some(json!({"enabled": enabled})),
        )
    };
    assert_eq!(set_enabled(false).await.0, 200);
    let (status, _) = call(&app, &boss, Method::GET, &extensions, None).await;
    assert_eq!(
        status, 404,
        "a member of a suspended Domain no longer sees it"
    );
    let (status, _) = call(&app, &key, Method::GET, &extensions, None).await;
    assert_eq!(status, 401, "a key of a suspended Domain is refused");
    let (status, _) = call(&app, &admin, Method::GET, &extensions, None).await;
    assert_eq!(status, 200, "the platform keeps access");

    assert_eq!(set_enabled(true).await.0, 200);
    for token in [&boss, &key] {
        let (status, _) = call(&app, token, Method::GET, &extensions, None).await;
        assert_eq!(status, 200, "access returns with the Domain");
    }
}
