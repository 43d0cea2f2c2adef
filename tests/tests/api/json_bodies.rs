//! Malformed request bodies are answered with problems that say what is wrong, through the
//! JSON extractor every endpoint uses (exercised on `POST /api/v1/auth/login`).

use serde_json::json;
use switchboard_tests::{TestApp, assert_problem, both_databases};

const LOGIN: &str = "/api/v1/auth/login";

both_databases!(
    a_body_that_is_not_json_is_a_400_malformed_json,
    a_body_sent_as_text_plain_is_a_415,
    a_body_over_the_configured_limit_is_a_413 with |c| c.http.max_body_bytes = 4096,
    an_unknown_field_is_a_422_naming_the_field,
    a_field_of_the_wrong_type_is_a_422_naming_the_field,
    a_missing_field_is_a_422_saying_it_is_required,
);

async fn a_body_that_is_not_json_is_a_400_malformed_json(app: TestApp) {
    let response = app
        .post_raw(LOGIN, "application/json", r#"{"email": "a@example.com", "#)
        .await;
    assert_problem(response, 400, "malformed_json").await;

    let body = r#"{"email": "a@example.com", "password": "Long-Enough-Password-1"} and more"#;
    let response = app.post_raw(LOGIN, "application/json", body).await;
    assert_problem(response, 400, "malformed_json").await;
}

async fn a_body_sent_as_text_plain_is_a_415(app: TestApp) {
    let body = json!({ "email": app.admin_email, "password": app.admin_password }).to_string();
    let response = app.post_raw(LOGIN, "text/plain", body).await;
    assert_problem(response, 415, "unsupported_media_type").await;
}

async fn a_body_over_the_configured_limit_is_a_413(app: TestApp) {
    let body = json!({ "email": "a@example.com", "password": "x".repeat(8 * 1024) }).to_string();
    let response = app.post_raw(LOGIN, "application/json", body).await;
    assert_problem(response, 413, "payload_too_large").await;

    // Just under the limit is read (and then refused for its content, not its size).
    let body = json!({ "email": "a@example.com", "password": "x".repeat(3 * 1024) });
    let response = app.post_json(LOGIN, &body).await;
    assert_ne!(response.status(), 413);
}

async fn an_unknown_field_is_a_422_naming_the_field(app: TestApp) {
    let body =
        json!({ "email": app.admin_email, "password": app.admin_password, "remember_me": true });
    let problem = assert_problem(app.post_json(LOGIN, &body).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "remember_me", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "unknown_field", "{problem}");
}

async fn a_field_of_the_wrong_type_is_a_422_naming_the_field(app: TestApp) {
    let body = json!({ "email": 42, "password": app.admin_password });
    let problem = assert_problem(app.post_json(LOGIN, &body).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "invalid_type", "{problem}");

    // Not an object at all: the body as a whole is of the wrong type.
    let problem = assert_problem(
        app.post_json(LOGIN, &json!("hello")).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "invalid_type", "{problem}");
}

async fn a_missing_field_is_a_422_saying_it_is_required(app: TestApp) {
    let body = json!({ "email": app.admin_email });
    let problem = assert_problem(app.post_json(LOGIN, &body).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "password", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "required", "{problem}");
}
