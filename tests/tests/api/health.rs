//! `/health/live` and `/health/ready`.

use switchboard_tests::{TestApp, both_databases, json_body};

both_databases!(
    liveness_answers_ok,
    readiness_reports_the_database_up_and_freeswitch_disabled,
);

async fn liveness_answers_ok(app: TestApp) {
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_body(response).await,
        serde_json::json!({ "status": "ok" })
    );
}

async fn readiness_reports_the_database_up_and_freeswitch_disabled(app: TestApp) {
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body = json_body(response).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"]["status"], "up", "{body}");
    assert_eq!(body["freeswitch"]["status"], "disabled", "{body}");
}
