//! The harness's own promise: the bootstrapped administrator can log in.

use reqwest::Method;
use serde_json::json;
use switchboard_tests::{TestApp, assert_problem, both_databases, json_body};

both_databases!(
    the_bootstrapped_administrator_can_log_in_and_see_themselves,
    a_wrong_password_is_a_401_problem,
);

async fn the_bootstrapped_administrator_can_log_in_and_see_themselves(app: TestApp) {
    let token = app.admin_token().await;
    let response = app.send_as(&token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(response.status(), 200);
    let me = json_body(response).await;
    assert_eq!(me["user"]["email"], app.admin_email, "{me}");
}

async fn a_wrong_password_is_a_401_problem(app: TestApp) {
    let body = json!({ "email": app.admin_email, "password": "Not-The-Right-Password-1" });
    assert_problem(
        app.post_json("/api/v1/auth/login", &body).await,
        401,
        "unauthenticated",
    )
    .await;
}
