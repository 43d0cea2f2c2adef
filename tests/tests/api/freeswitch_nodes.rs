//! FreeSWITCH nodes registered through the API (platform `nodes.write`): a node registered at
//! run time gets a link at once (a scripted FreeSWITCH peer speaking the real Event Socket
//! protocol), only its Domains' commands reach it, a change restarts the link, removing it
//! closes the link; the password is encrypted at rest and never shown; the refusals.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, both_databases};

use crate::bridge::{NO_GATEWAYS, NO_REGISTRATIONS, Switch};
use crate::devices::{domain_with_admin, extension};
use crate::users::{call, create_domain, create_user, token_of};

const PASSWORD: &str = "ClueCon-test-0451";

both_databases!(
    a_node_registered_at_run_time_is_driven_and_removed_at_run_time with |c: &mut switchboard_tests::Config| c.freeswitch.outbound_socket = "127.0.0.1:0".to_owned(),
    a_node_serving_some_domains_takes_only_their_commands with |c: &mut switchboard_tests::Config| c.freeswitch.outbound_socket = "127.0.0.1:0".to_owned(),
    registering_nodes_is_for_platform_admins_with_valid_fields_and_unique_names,
);

/// The registered node's list entry.
async fn listed(app: &TestApp, admin: &str, name: &str) -> Option<Value> {
    let (status, list) = call(app, admin, Method::GET, "/api/v1/freeswitch/nodes", None).await;
    assert_eq!(status, 200, "{list}");
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|n| n["name"] == name).cloned())
}

async fn a_node_registered_at_run_time_is_driven_and_removed_at_run_time(app: TestApp) {
    let admin = app.admin_token().await;
    let switch = Switch::start().await;
    let (status, node) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/freeswitch/nodes",
        Some(
            json!({"name": "fs-api", "host": "127.0.0.1", "port": switch.server.port(),
                    "password": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{node}");
    assert_eq!(node["source"], "api");
    assert_eq!(node["profile"], "internal");
    assert_eq!(node["domains"], Value::Null);
    assert!(node.get("password").is_none(), "never shown: {node}");
    let id = node["id"].as_str().expect("an id").to_owned();

    // The link starts without a restart and resyncs.
    let mut fs = switch.accept().await;
    fs.resync_holding(NO_REGISTRATIONS, NO_GATEWAYS).await;
    let mut shown = Value::Null;
    for _ in 0..200 {
        shown = listed(&app, &admin, "fs-api").await.unwrap_or_default();
        if shown["state"] == "connected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shown["state"], "connected", "{shown}");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["driven_here"], true);
    assert!(shown["owner"].is_string(), "{shown}");

    // Encrypted at rest.
    let stored = {
        use sea_orm::{ConnectionTrait as _, Statement};
        app.db
            .query_one_raw(Statement::from_string(
                app.db.get_database_backend(),
                "SELECT password_encrypted AS p FROM freeswitch_nodes",
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get::<String>("", "p")
            .unwrap()
    };
    assert!(
        !stored.contains(PASSWORD),
        "the password is stored encrypted"
    );

    // A change of its profile restarts the link with the new settings.
    let (status, changed) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/freeswitch/nodes/{id}"),
        Some(json!({"profile": "desks"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["profile"], "desks");
    // Its resync reads the registrations of the new profile.
    let mut fs = switch.accept().await;
    loop {
        let command = fs.command().await;
        if command == "api sofia xmlstatus profile desks reg" {
            fs.conn.reply_api(NO_REGISTRATIONS).await.unwrap();
            break;
        }
        if command == "api sofia xmlstatus gateway" {
            fs.conn.reply_api(NO_GATEWAYS).await.unwrap();
        } else if command.starts_with("sendevent ") {
            fs.conn.reply_raw_text("+OK 1").await.unwrap();
        } else {
            fs.conn.reply_api("+OK\n").await.unwrap();
        }
    }

    // Removed: the link closes and the node is gone.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/freeswitch/nodes/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if fs.conn.read_command().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the link closes");
    assert!(listed(&app, &admin, "fs-api").await.is_none());
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/freeswitch/nodes/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, audit) = call(
        &app,
        &admin,
        Method::GET,
        "/api/v1/audit?action=freeswitch_node.delete",
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert!(
        audit["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|e| e["target"]["id"] == id.as_str())),
        "{audit}"
    );
}

async fn a_node_serving_some_domains_takes_only_their_commands(app: TestApp) {
    let (served, admin) = domain_with_admin(&app, "served.example.net").await;
    let other = create_domain(&app, &admin, "other.example.net").await;
    let switch = Switch::start().await;
    let (status, node) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/freeswitch/nodes",
        Some(
            json!({"name": "fs-served", "host": "127.0.0.1", "port": switch.server.port(),
                    "password": PASSWORD, "domains": [served]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{node}");
    assert_eq!(node["domains"], json!([served]));
    let mut fs = switch.accept().await;
    fs.resync_holding(NO_REGISTRATIONS, NO_GATEWAYS).await;
    let _ = fs.quiet().await;

    // A change in the other Domain sends nothing; one in the served Domain does.
    extension(&app, &admin, &other, "301", false).await;
    let quiet = fs.quiet().await;
    assert!(
        quiet.iter().all(|c| !c.contains("other.example.net")),
        "nothing of the other Domain: {quiet:?}"
    );
    extension(&app, &admin, &served, "201", false).await;
    let mut got = Vec::new();
    let flush = "xml_flush_cache id 201 served.example.net".to_owned();
    while !got.contains(&flush) {
        got.push(fs.api().await);
    }
}

async fn registering_nodes_is_for_platform_admins_with_valid_fields_and_unique_names(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.example.net").await;
    let path = "/api/v1/freeswitch/nodes";
    assert_eq!(app.post_json(path, &json!({})).await.status(), 401);
    create_user(
        &app,
        &admin,
        &domain,
        "boss@acme.example.net",
        &["domain_admin"],
    )
    .await;
    let boss = token_of(&app, "boss@acme.example.net").await;
    let valid = json!({"name": "fs9", "host": "10.0.0.9", "password": "secret"});
    let (status, _) = call(&app, &boss, Method::POST, path, Some(valid.clone())).await;
    assert_eq!(status, 403, "a Domain admin cannot");

    let (status, problem) = call(&app, &admin, Method::POST, path, Some(json!({}))).await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for field in ["name", "host", "password"] {
        assert!(fields.contains(&field), "{field} in {problem}");
    }
    for (body, field) in [
        (
            json!({"name": "fs 9", "host": "h", "password": "p"}),
            "name",
        ),
        (
            json!({"name": "fs9", "host": "a b", "password": "p"}),
            "host",
        ),
        (
            json!({"name": "fs9", "host": "h", "password": "p", "port": 70000}),
            "port",
        ),
        (
            json!({"name": "fs9", "host": "h", "password": "p", "domains": []}),
            "domains",
        ),
        (
            json!({"name": "fs9", "host": "h", "password": "p", "domains": [uuid::Uuid::now_v7()]}),
            "domains[0]",
        ),
    ] {
        let (status, problem) = call(&app, &admin, Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        path,
        Some(json!({"name": "fs9", "host": "h", "password": "p", "surprise": 1})),
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused: {problem}");

    // The same name registered by eight admins at once: one wins, the others are told.
    let attempts = (0..8).map(|_| call(&app, &admin, Method::POST, path, Some(valid.clone())));
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let taken = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!(
        (created, taken),
        (1, 7),
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    let id = results
        .iter()
        .find(|(s, _)| *s == 201)
        .and_then(|(_, b)| b["id"].as_str())
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &app,
        &boss,
        Method::GET,
        &format!("/api/v1/freeswitch/nodes/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/freeswitch/nodes/{}", uuid::Uuid::now_v7()),
        Some(json!({"host": "h2"})),
    )
    .await;
    assert_eq!(status, 404);
    // Unregister it before the test ends: its link would retry 10.0.0.9 forever otherwise.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/freeswitch/nodes/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
}
