//! What every route shares: 404 and 405 as problems, and a request id on every response.

use std::collections::HashSet;

use reqwest::Method;
use reqwest::header::ALLOW;
use switchboard_tests::{TestApp, assert_problem, both_databases};

both_databases!(
    an_unknown_route_is_a_404_problem,
    a_known_route_with_the_wrong_method_is_a_405_that_names_the_allowed_methods,
    every_response_carries_its_own_request_id,
);

async fn an_unknown_route_is_a_404_problem(app: TestApp) {
    let problem = assert_problem(app.get("/no/such/route").await, 404, "route_not_found").await;
    assert_eq!(problem["type"], "urn:switchboard:problem:route_not_found");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("/no/such/route"),
        "{problem}"
    );
}

async fn a_known_route_with_the_wrong_method_is_a_405_that_names_the_allowed_methods(app: TestApp) {
    let response = app
        .request(Method::POST, "/health/live")
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get(ALLOW)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_problem(response, 405, "method_not_allowed").await;
    assert_eq!(allow.as_deref(), Some("GET"));

    let response = app.delete("/api/v1/auth/login").await;
    let allow = response
        .headers()
        .get(ALLOW)
        .map(|v| v.to_str().unwrap().to_owned());
    assert_problem(response, 405, "method_not_allowed").await;
    assert_eq!(allow.as_deref(), Some("POST"));
}

async fn every_response_carries_its_own_request_id(app: TestApp) {
    let mut ids = HashSet::new();
    for (method, path) in [
        (Method::GET, "/health/live"),
        (Method::GET, "/health/ready"),
        (Method::GET, "/no/such/route"),
        (Method::POST, "/health/live"),
        (Method::GET, "/api/openapi.json"),
        (Method::GET, "/api/docs"),
        (Method::GET, "/metrics"),
        (Method::POST, "/api/v1/auth/login"),
    ] {
        let response = app.request(method.clone(), path).send().await.unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{method} {path} has no x-request-id"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty(), "{method} {path} has an empty x-request-id");
        assert!(
            ids.insert(id.clone()),
            "{method} {path} reused the request id {id}"
        );
    }
}
