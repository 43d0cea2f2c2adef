//! The API contract: the served document says what the server does, and bad input is a
//! problem+json 4xx on both databases: never a 500, never a destroyed pooled connection.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use switchboard_tests::{Backend, TestApp, assert_problem, both_databases, json_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::call;

both_databases!(
    the_document_describes_every_answer_once_under_unique_names,
    my_sessions_answer_the_schema_the_document_gives_them,
    nul_in_any_text_input_is_a_422_naming_the_field,
    a_json_array_is_not_an_object,
    like_wildcards_in_a_search_match_only_themselves,
    a_stalled_body_is_a_408_and_its_connection_is_closed with |c| c.http.body_timeout_secs = 1,
    a_refused_credential_is_answered_before_anything_about_the_body,
    refused_requests_do_not_destroy_pooled_connections,
    a_refused_cors_preflight_is_a_problem_document
        with |c| c.http.cors_allowed_origins = vec!["https://app.example.com".into()],
    every_answer_forbids_sniffing_referrers_and_framing,
    nobody_logged_in_answers_no_session,
    answers_name_no_rust_types_or_parser_messages,
);

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn served_document(app: &TestApp) -> Value {
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    json_body(response).await
}

/// Resolves a `$ref` to a component schema.
fn schema<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let name = reference["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
    &doc["components"]["schemas"][name]
}

async fn the_document_describes_every_answer_once_under_unique_names(app: TestApp) {
    let doc = served_document(&app).await;
    let mut operation_ids = HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let id = op["operationId"].as_str().unwrap().to_owned();
            assert!(
                operation_ids.insert(id.clone()),
                "the operationId {id} is used twice"
            );
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {status} has no description"
                );
            }
            if path.starts_with("/freeswitch/") {
                continue;
            }
            let mut expected = vec!["400"];
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                expected.push("401");
            }
            if op.get("requestBody").is_some() {
                expected.extend(["413", "415", "422"]);
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not list {status}"
                );
            }
            assert!(
                !responses.contains_key("default"),
                "{method} {path} hides its errors behind `default`"
            );
        }
    }
    // A list's items are the item schema itself, not a copy of it.
    let page = &doc["components"]["schemas"]["PageResponse_DomainDto"];
    assert_eq!(
        page["properties"]["items"]["items"]["$ref"], "#/components/schemas/DomainDto",
        "{page}"
    );
    // Enumerations are enums; no answer is an untyped object.
    let mode = &doc["components"]["schemas"]["DeviceDto"]["properties"]["mode"];
    assert_eq!(
        schema(&doc, mode)["enum"],
        json!(["fixed", "hotdesk"]),
        "{mode}"
    );
    assert_untyped_nowhere(&doc, "");
    // A field whose null is refused is not documented nullable.
    let display_name =
        &doc["components"]["schemas"]["ExtensionInput"]["properties"]["display_name"];
    assert_eq!(display_name["type"], "string", "{display_name}");
    // The refresh body may be omitted (the cookie), but it is never null.
    let refresh = &doc["paths"]["/api/v1/auth/refresh"]["post"]["requestBody"];
    assert_eq!(refresh["required"], false, "{refresh}");
    let body = &refresh["content"]["application/json"]["schema"];
    assert!(!body.to_string().contains("null"), "{body}");
}

/// Fails at any `{"type": "object"}` that says nothing of its content.
fn assert_untyped_nowhere(value: &Value, path: &str) {
    match value {
        Value::Object(map) => {
            let untyped = map.get("type") == Some(&json!("object"))
                && !["properties", "additionalProperties", "oneOf", "$ref"]
                    .iter()
                    .any(|k| map.contains_key(*k));
            assert!(!untyped, "{path} is an untyped object");
            for (key, item) in map {
                assert_untyped_nowhere(item, &format!("{path}/{key}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_untyped_nowhere(item, &format!("{path}[{i}]"));
            }
        }
        _ => {}
    }
}

async fn my_sessions_answer_the_schema_the_document_gives_them(app: TestApp) {
    let doc = served_document(&app).await;
    let token = app.admin_token().await;
    let (status, sessions) = call(&app, &token, Method::GET, "/api/v1/me/sessions", None).await;
    assert_eq!(status, 200, "{sessions}");
    let session = &sessions[0];

    let documented = &doc["paths"]["/api/v1/me/sessions"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["items"];
    let documented = schema(&doc, documented);
    let properties: BTreeSet<&String> = documented["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let answered: BTreeSet<&String> = session.as_object().unwrap().keys().collect();
    assert_eq!(answered, properties, "documented as {documented}");
}

/// Creates a Domain with an Extension 201 (PIN 4711), a hot-desk Device and a Location;
/// returns (domain, admin token, device).
async fn tenant(app: &TestApp, sip: &str) -> (String, String, String) {
    let (domain, admin) = domain_with_admin(app, sip).await;
    create(
        app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Ada", "pin": "4711"}),
    )
    .await;
    let device = id_of(
        &create(
            app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Desk", "mode": "hotdesk"}),
        )
        .await,
    );
    create(app, &admin, &domain, "locations", json!({"name": "HQ"})).await;
    (domain, admin, device)
}

/// Checks a 422 whose first error is `nul_character` on `field`.
async fn assert_nul_refused(response: reqwest::Response, field: &str, what: &str) {
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        problem["errors"][0]["code"], "nul_character",
        "{what}: {problem}"
    );
    assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
}

async fn nul_in_any_text_input_is_a_422_naming_the_field(app: TestApp) {
    let (domain, admin, device) = tenant(&app, "nul.example.net").await;
    let base = format!("/api/v1/domains/{domain}");
    let get = |path: String| {
        let app = &app;
        let admin = admin.clone();
        async move { app.send_as(&admin, Method::GET, &path, None).await }
    };
    for path in [
        "/api/v1/domains?q=a%00b".to_owned(),
        format!("{base}/users?q=%00"),
        format!("{base}/extensions?q=2%00"),
        format!("{base}/devices?q=%00"),
        format!("{base}/locations?q=H%00"),
        format!("{base}/audit?action=%00"),
        format!("{base}/audit?actor=%00"),
        "/api/v1/audit?target_kind=%00".to_owned(),
    ] {
        let field = path
            .split_once('?')
            .and_then(|(_, q)| q.split_once('='))
            .map(|(name, _)| name.to_owned())
            .unwrap();
        assert_nul_refused(get(path.clone()).await, &field, &path).await;
    }

    // A hot-desk logout's reason: refused before the session ends.
    let session = format!("{base}/devices/{device}/session");
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &session,
        Some(json!({"extension": "201"})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let response = app
        .send_as(
            &admin,
            Method::DELETE,
            &format!("{session}?reason=a%00b"),
            None,
        )
        .await;
    assert_nul_refused(response, "reason", "logout reason").await;
    let (status, body) = call(&app, &admin, Method::GET, &session, None).await;
    assert_eq!(status, 200, "the session was ended anyway: {body}");

    // JSON bodies, at any depth.
    let response = app
        .send_as(
            &admin,
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": "Nul\u{0}Corp", "sip_domain": "nul2.example.net", "timezone": "UTC"})),
        )
        .await;
    assert_nul_refused(response, "name", "a Domain's name").await;
    let response = app
        .send_as(
            &admin,
            Method::POST,
            &format!("{base}/import"),
            Some(&json!({"devices": [{"label": "Desk 2", "location": "H\u{0}Q"}]})),
        )
        .await;
    assert_nul_refused(response, "devices[0].location", "an import row").await;

    // A CSV import.
    let response = app
        .request(Method::POST, &format!("{base}/import"))
        .bearer_auth(&admin)
        .header(CONTENT_TYPE, "text/csv")
        .body("kind,label,location\ndevice,Desk 3,H\0Q\n")
        .send()
        .await
        .unwrap();
    assert_nul_refused(response, "file", "a CSV import").await;
}

async fn a_json_array_is_not_an_object(app: TestApp) {
    let admin = app.admin_token().await;
    let array = json!(["Array Corp", "array.example.net", "UTC", true]);
    let response = app
        .send_as(&admin, Method::POST, "/api/v1/domains", Some(&array))
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "body", "{problem}");
    let (_, page) = call(&app, &admin, Method::GET, "/api/v1/domains", None).await;
    assert!(
        !page.to_string().contains("Array Corp"),
        "an array created a Domain: {page}"
    );

    let login = json!([app.admin_email, app.admin_password]);
    let response = app.post_json("/api/v1/auth/login", &login).await;
    assert_problem(response, 422, "validation_failed").await;
}

async fn like_wildcards_in_a_search_match_only_themselves(app: TestApp) {
    let admin = app.admin_token().await;
    for (name, sip) in [
        ("Under_score", "under.example.net"),
        ("Plain", "plain.example.net"),
        ("Hundred%", "percent.example.net"),
    ] {
        let (status, body) = call(
            &app,
            &admin,
            Method::POST,
            "/api/v1/domains",
            Some(json!({"name": name, "sip_domain": sip, "timezone": "UTC"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let names = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = call(&app, &admin, Method::GET, "/api/v1/domains?q=_", None).await;
    assert_eq!(names(page), ["Under_score"]);
    let (_, page) = call(&app, &admin, Method::GET, "/api/v1/domains?q=%25", None).await;
    assert_eq!(names(page), ["Hundred%"]);
}

async fn a_stalled_body_is_a_408_and_its_connection_is_closed(app: TestApp) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection is still held after 15 s: {}",
        String::from_utf8_lossy(&answer)
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

async fn a_refused_credential_is_answered_before_anything_about_the_body(app: TestApp) {
    let path = format!("/api/v1/domains/{}", Uuid::new_v4());
    for token in [made_up_key().as_str(), "not-a-jwt"] {
        // A body of the wrong shape: 401, not 422.
        let response = app
            .send_as(token, Method::PATCH, &path, Some(&json!({"colour": 1})))
            .await;
        assert_unauthorized(response, token).await;
        // A body of the wrong type: 401, not 415.
        let response = app
            .request(Method::PATCH, &path)
            .bearer_auth(token)
            .header(CONTENT_TYPE, "text/plain")
            .body("colour")
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, token).await;
    }
}

async fn assert_unauthorized(response: reqwest::Response, token: &str) {
    let status = response.status().as_u16();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let text = response.text().await.unwrap();
    assert_eq!(status, 401, "{token}: {text}");
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{token}: {text}"
    );
}

/// A well-formed API key nobody issued: refusing it takes a database lookup.
fn made_up_key() -> String {
    format!("sk_{}_{}", Uuid::new_v4().simple(), "s3cr3t".repeat(6))
}

async fn refused_requests_do_not_destroy_pooled_connections(app: TestApp) {
    let admin = app.admin_token().await;
    let key = made_up_key();
    let domain = crate::users::create_domain(&app, &admin, "pool.example.net").await;
    let path = format!("/api/v1/domains/{domain}");

    // Fill the pool: concurrent requests open every connection it may have.
    let warm = (0..20).map(|_| app.send_as(&admin, Method::GET, &path, None));
    for response in join_all(warm).await {
        assert_eq!(response.status(), 200);
    }
    let before = server_backends(&app).await;

    let mut refused = Vec::new();
    for i in 0..60 {
        let request = match i % 3 {
            // Authenticated, but not JSON: 415 while the session lookup is in flight.
            0 => app
                .request(Method::PATCH, &path)
                .bearer_auth(&admin)
                .header(CONTENT_TYPE, "text/plain")
                .body("{\"name\": \"x\"}"),
            // A made-up API key, with a body that would be a 422.
            1 => app
                .request(Method::PATCH, &path)
                .bearer_auth(&key)
                .json(&json!({})),
            // A made-up API key, not JSON.
            _ => app
                .request(Method::PATCH, &path)
                .bearer_auth(&key)
                .header(CONTENT_TYPE, "text/plain")
                .body("x"),
        };
        refused.push(async move { (i % 3, request.send().await.unwrap()) });
    }
    for (kind, response) in join_all(refused).await {
        let expected = if kind == 0 { 415 } else { 401 };
        assert_eq!(response.status().as_u16(), expected, "kind {kind}");
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/problem+json");
    }
    // The server still answers at once.
    let (status, _) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = server_backends(&app).await;
    if app.backend == Backend::Postgres {
        assert!(!before.is_empty(), "the pool opened no connection");
        let destroyed: Vec<_> = before.difference(&after).collect();
        assert!(
            destroyed.is_empty(),
            "refused requests destroyed pooled connections {destroyed:?} (before {before:?}, after {after:?})"
        );
    }
}

/// The PostgreSQL backends serving the test server's database (empty on SQLite).
async fn server_backends(app: &TestApp) -> BTreeSet<(i32, String)> {
    if app.backend != Backend::Postgres {
        return BTreeSet::new();
    }
    let db = Database::connect(&app.database_url).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid, backend_start::text AS started FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .unwrap();
    let backends = rows
        .iter()
        .map(|row| {
            (
                row.try_get::<i32>("", "pid").unwrap(),
                row.try_get::<String>("", "started").unwrap(),
            )
        })
        .collect();
    db.close().await.unwrap();
    backends
}

async fn a_refused_cors_preflight_is_a_problem_document(app: TestApp) {
    let response = app
        .request(Method::OPTIONS, "/api/v1/domains")
        .header("Origin", "https://evil.example.com")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "cors_refused").await;
}

fn assert_protective_headers(headers: &HeaderMap, what: &str) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
}

async fn every_answer_forbids_sniffing_referrers_and_framing(app: TestApp) {
    for path in ["/health/live", "/api/docs/", "/api/v1/me", "/no/such/route"] {
        let response = app.get(path).await;
        assert_protective_headers(response.headers(), path);
    }
}

async fn nobody_logged_in_answers_no_session(app: TestApp) {
    let (domain, admin, device) = tenant(&app, "nosession.example.net").await;
    let response = app
        .send_as(
            &admin,
            Method::GET,
            &format!("/api/v1/domains/{domain}/devices/{device}/session"),
            None,
        )
        .await;
    assert_problem(response, 404, "no_session").await;
}

async fn answers_name_no_rust_types_or_parser_messages(app: TestApp) {
    let admin = app.admin_token().await;
    let response = app
        .send_as(&admin, Method::GET, "/api/v1/domains?limit=ten", None)
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["message"], "expected an integer");

    let response = app.get("/api/v1/domains/not-a-uuid").await;
    let problem = assert_problem(response, 404, "not_found").await;
    assert_eq!(problem["detail"], "no such resource");

    let response = app
        .post_raw("/api/v1/auth/login", "application/json", "{\"email\": ")
        .await;
    let problem = assert_problem(response, 400, "malformed_json").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.contains("EOF while parsing"), "{detail}");
    assert!(detail.contains("line 1"), "{detail}");

    let response = app
        .send_as(
            &admin,
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": {"a": 1}, "sip_domain": "x.example.net", "timezone": "UTC"})),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert!(
        !problem.to_string().contains("struct"),
        "a Rust type reached the answer: {problem}"
    );

    // An import file: where it breaks, not the parser's words.
    let (domain, _) = domain_with_admin(&app, "parser.example.net").await;
    let response = app
        .request(Method::POST, &format!("/api/v1/domains/{domain}/import"))
        .bearer_auth(&admin)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"extensions\": [")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 400, "malformed_json").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.contains("EOF while parsing"), "{detail}");
    assert!(detail.contains("line 1"), "{detail}");
}
