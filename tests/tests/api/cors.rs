//! Browsers may call the API only from the configured origins.

use reqwest::Method;
use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ORIGIN};
use switchboard_tests::{TestApp, both_databases};

const APP_ORIGIN: &str = "https://app.example.com";

both_databases!(
    a_preflight_from_a_configured_origin_is_allowed
        with |c| c.http.cors_allowed_origins = vec![APP_ORIGIN.to_owned()],
    another_origin_gets_no_cors_headers
        with |c| c.http.cors_allowed_origins = vec![APP_ORIGIN.to_owned()],
    without_configured_origins_there_are_no_cors_headers,
);

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.request(Method::OPTIONS, "/api/v1/auth/login")
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

async fn get_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.request(Method::GET, "/health/live")
        .header(ORIGIN, origin)
        .send()
        .await
        .unwrap()
}

async fn a_preflight_from_a_configured_origin_is_allowed(app: TestApp) {
    let response = preflight(&app, APP_ORIGIN).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], APP_ORIGIN);

    let response = get_from(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], APP_ORIGIN);
    let exposed = response.headers()[ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}

async fn another_origin_gets_no_cors_headers(app: TestApp) {
    let response = preflight(&app, "https://evil.example.net").await;
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        response.headers()
    );
    let response = get_from(&app, "https://evil.example.net").await;
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        response.headers()
    );
}

async fn without_configured_origins_there_are_no_cors_headers(app: TestApp) {
    let response = preflight(&app, APP_ORIGIN).await;
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        response.headers()
    );
    let response = get_from(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get(ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{:?}",
        response.headers()
    );
}
