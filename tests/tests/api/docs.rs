//! The OpenAPI document and Swagger UI, served by the binary itself (offline).

use reqwest::header::{CONTENT_TYPE, LOCATION};
use switchboard_tests::{TestApp, both_databases};

both_databases!(
    the_openapi_document_is_served_as_valid_openapi_3_1,
    the_docs_path_redirects_to_the_trailing_slash,
    swagger_ui_and_its_assets_are_served_from_the_binary,
);

async fn the_openapi_document_is_served_as_valid_openapi_3_1(app: TestApp) {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();

    let spec =
        oas3::from_json(&text).unwrap_or_else(|e| panic!("not an OpenAPI 3.1 document: {e}"));
    assert_eq!(spec.openapi, "3.1.0");
    let paths = spec.paths.expect("the document has paths");
    for path in ["/health/live", "/health/ready", "/api/v1/auth/login"] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the document"
        );
    }

    // What is served is what the generator (and so the committed openapi.json) produces.
    let served: serde_json::Value = serde_json::from_str(&text).unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&switchboard_api::openapi::document_json().unwrap()).unwrap();
    assert_eq!(served, generated);
}

async fn the_docs_path_redirects_to_the_trailing_slash(app: TestApp) {
    let response = app.get("/api/docs").await;
    assert_eq!(response.status(), 301);
    assert_eq!(response.headers()[LOCATION], "/api/docs/");
}

async fn swagger_ui_and_its_assets_are_served_from_the_binary(app: TestApp) {
    let response = app.get("/api/docs/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("swagger-ui-bundle.js"),
        "the page does not load the bundle: {html}"
    );

    let response = app.get("/api/docs/swagger-ui-bundle.js").await;
    assert_eq!(response.status(), 200);
    let bundle = response.bytes().await.unwrap();
    assert!(
        bundle.len() > 100_000,
        "the bundle is suspiciously small ({} bytes)",
        bundle.len()
    );

    let response = app.get("/api/docs/swagger-initializer.js").await;
    assert_eq!(response.status(), 200);
    let initializer = response.text().await.unwrap();
    assert!(
        initializer.contains("/api/openapi.json"),
        "Swagger UI is not pointed at the document: {initializer}"
    );
}
