//! Gateways and Outbound Routes through the API: ownership and grants, the write-only
//! password encrypted at rest, validation, conflicts under concurrency, and tenant scoping.

use futures_util::future::join_all;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use switchboard_domain::store::gateways;
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin};
use crate::users::{call, create_user, token_of};

async fn user_with_role(
    app: &TestApp,
    admin: &str,
    domain: &str,
    email: &str,
    role: &str,
) -> String {
    create_user(app, admin, domain, email, &[role]).await;
    token_of(app, email).await
}

both_databases!(
    a_domain_gateway_keeps_its_password_encrypted_and_never_shows_it,
    gateways_and_routes_refuse_what_is_invalid_naming_the_field,
    twenty_concurrent_creates_of_one_gateway_name_give_one_201,
    platform_gateways_are_granted_to_domains_and_revoking_takes_them_off_their_routes,
    other_domains_and_lesser_roles_are_refused,
    a_gateway_in_use_is_deleted_only_with_force,
);

async fn a_domain_gateway_keeps_its_password_encrypted_and_never_shows_it(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "gw1.example.net").await;
    let g = create(
        &app,
        &admin,
        &domain,
        "gateways",
        json!({"name": "carrier-a", "proxy": "sip.carrier.example:5060", "username": "acme",
               "password": "s3cret-pass", "register": true, "ping_secs": 30}),
    )
    .await;
    assert_eq!(g["has_password"], true);
    assert_eq!(g["register"], true);
    assert!(g["freeswitch_name"].as_str().unwrap().starts_with("sb_"));
    assert!(!g.to_string().contains("s3cret-pass"));
    let id = g["id"].as_str().unwrap();
    let row = gateways::Entity::find_by_id(uuid::Uuid::parse_str(id).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let stored = row.password_encrypted.unwrap();
    assert!(
        stored.starts_with("v1.") && !stored.contains("s3cret-pass"),
        "{stored}"
    );
    // The audit log says a password is set, never which.
    let (_, audit) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=gateway.create"),
        None,
    )
    .await;
    assert!(audit.to_string().contains("has_password"), "{audit}");
    assert!(!audit.to_string().contains("s3cret-pass"));
    // Removing the password while registering is refused; turning registration off first works.
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/gateways/{id}"),
        Some(json!({"password": null})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "register");
    let (status, changed) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/gateways/{id}"),
        Some(json!({"password": null, "register": false})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["has_password"], false);
}

async fn gateways_and_routes_refuse_what_is_invalid_naming_the_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "gw2.example.net").await;
    for (body, field) in [
        (
            json!({"name": "a", "proxy": "sip:carrier.example"}),
            "proxy",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example:70000"}),
            "proxy",
        ),
        (json!({"name": "a<b", "proxy": "carrier.example"}), "name"),
        (
            json!({"name": "a", "proxy": "carrier.example", "transport": "sctp"}),
            "transport",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example", "register": true}),
            "register",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example", "ping_secs": 1}),
            "ping_secs",
        ),
        (json!({"proxy": "carrier.example"}), "name"),
        (
            json!({"name": "a", "proxy": "carrier.example",
                   "inbound_addresses": ["192.0.2.7", "carrier.example"]}),
            "inbound_addresses[1]",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example", "inbound_addresses": ["0.0.0.0/0"]}),
            "inbound_addresses[0]",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example", "inbound_addresses": [""]}),
            "inbound_addresses[0]",
        ),
        (
            json!({"name": "a", "proxy": "carrier.example", "inbound_addresses": "192.0.2.7"}),
            "inbound_addresses",
        ),
    ] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/domains/{domain}/gateways"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let g = create(
        &app,
        &admin,
        &domain,
        "gateways",
        json!({"name": "ok", "proxy": "192.0.2.1"}),
    )
    .await;
    for (body, field) in [
        (
            json!({"name": "r", "patterns": ["0Z.", "9.9"], "toll_class": "national"}),
            "patterns[1]",
        ),
        (
            json!({"name": "r", "patterns": ["0Z."], "toll_class": "cheap"}),
            "toll_class",
        ),
        (
            json!({"name": "r", "patterns": ["0Z."], "toll_class": "local", "prepend": "x1"}),
            "prepend",
        ),
        (
            json!({"name": "r", "patterns": ["0Z."], "toll_class": "local",
                "gateway_ids": [g["id"], uuid::Uuid::now_v7()]}),
            "gateway_ids[1]",
        ),
        (
            json!({"name": "r", "patterns": [], "toll_class": "local"}),
            "patterns",
        ),
    ] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::POST,
            &format!("/api/v1/domains/{domain}/outbound-routes"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Nothing was written by the refusals.
    let (_, routes) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/outbound-routes"),
        None,
    )
    .await;
    assert_eq!(routes["items"], json!([]));
    // The numbering settings are checked too; the caller-ID freedom is the platform's.
    let (status, problem) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/calling-settings"),
        Some(json!({"country_code": "+049"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "country_code");
}

async fn twenty_concurrent_creates_of_one_gateway_name_give_one_201(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "gw3.example.net").await;
    let answers = join_all((0..20).map(|i| {
        let (app, admin, domain) = (&app, &admin, &domain);
        async move {
            call(
                app,
                admin,
                Method::POST,
                &format!("/api/v1/domains/{domain}/gateways"),
                Some(json!({"name": "same", "proxy": format!("192.0.2.{}", i + 1)})),
            )
            .await
        }
    }))
    .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let conflicts = answers.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!(created, 1, "{answers:?}");
    assert_eq!(
        conflicts + created + answers.iter().filter(|(s, _)| *s == 503).count(),
        20,
        "{answers:?}"
    );
    for (s, body) in &answers {
        if *s == 409 {
            assert_eq!(body["code"], "already_exists", "{body}");
        }
    }
}

async fn platform_gateways_are_granted_to_domains_and_revoking_takes_them_off_their_routes(
    app: TestApp,
) {
    let (domain, admin) = domain_with_admin(&app, "gw4.example.net").await;
    let (status, shared) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/gateways",
        Some(json!({"name": "shared", "proxy": "198.51.100.7"})),
    )
    .await;
    assert_eq!(status, 201, "{shared}");
    let id = shared["id"].as_str().unwrap().to_owned();
    // Not granted: a route cannot name it, and the Domain does not list it.
    let route =
        json!({"name": "Out", "patterns": ["0Z."], "toll_class": "national", "gateway_ids": [id]});
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/outbound-routes"),
        Some(route.clone()),
    )
    .await;
    assert_eq!(status, 422);
    let (status, granted) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/gateways/{id}/grants/{domain}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["granted_domain_ids"], json!([domain]));
    let (_, listed) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/gateways"),
        None,
    )
    .await;
    assert_eq!(listed["items"][0]["id"], shared["id"]);
    let r = create(&app, &admin, &domain, "outbound-routes", route).await;
    assert_eq!(r["gateway_ids"], json!([id]));
    // A domain admin cannot change a platform gateway through the Domain.
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/gateways/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 404);
    // Revoked: the route still names it, the explanation says it is skipped.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/gateways/{id}/grants/{domain}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ext = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "A", "toll_allow": ["domestic"]}),
    )
    .await;
    let (status, explained) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/calls/explain"),
        Some(json!({"extension_id": ext["id"], "digits": "030123"})),
    )
    .await;
    assert_eq!(status, 200, "{explained}");
    assert_eq!(explained["outcome"]["action"], "refused");
    assert_eq!(explained["outcome"]["cause"], "NORMAL_TEMPORARY_FAILURE");
}

async fn other_domains_and_lesser_roles_are_refused(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "gw5.example.net").await;
    let (other, _) = domain_with_admin(&app, "gw6.example.net").await;
    let g = create(
        &app,
        &admin,
        &domain,
        "gateways",
        json!({"name": "mine", "proxy": "192.0.2.9"}),
    )
    .await;
    let id = g["id"].as_str().unwrap();
    // Another Domain's path never finds it.
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{other}/gateways/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // A Domain admin of `other` only.
    let other_admin = user_with_role(
        &app,
        &admin,
        &other,
        "other-admin@example.net",
        "domain_admin",
    )
    .await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/domains/{domain}/gateways")),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/gateways/{id}"),
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/outbound-routes"),
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/calls/explain"),
        ),
    ] {
        let (status, body) = call(
            &app,
            &other_admin,
            method.clone(),
            &path,
            Some(json!({"digits": "1", "extension_id": uuid::Uuid::now_v7()})),
        )
        .await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    // Not a platform admin: no platform gateways, no caller-ID freedom.
    let (status, _) = call(
        &app,
        &other_admin,
        Method::POST,
        "/api/v1/gateways",
        Some(json!({"name": "x", "proxy": "192.0.2.1"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, problem) = call(
        &app,
        &other_admin,
        Method::PUT,
        &format!("/api/v1/domains/{other}/calling-settings"),
        Some(json!({"present_any_caller_id": true})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "platform_only");
    // A receptionist reads Numbers but not routing.
    let reception = user_with_role(&app, &admin, &domain, "desk@example.net", "receptionist").await;
    let (status, _) = call(
        &app,
        &reception,
        Method::GET,
        &format!("/api/v1/domains/{domain}/gateways"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &reception,
        Method::GET,
        &format!("/api/v1/domains/{domain}/numbers"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let unauthenticated = app.get(&format!("/api/v1/domains/{domain}/gateways")).await;
    assert_eq!(unauthenticated.status(), 401);
}

async fn a_gateway_in_use_is_deleted_only_with_force(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "gw7.example.net").await;
    let g = create(
        &app,
        &admin,
        &domain,
        "gateways",
        json!({"name": "busy", "proxy": "192.0.2.3"}),
    )
    .await;
    let id = g["id"].as_str().unwrap();
    let r = create(
        &app,
        &admin,
        &domain,
        "outbound-routes",
        json!({"name": "Uses it", "patterns": ["X."], "toll_class": "local", "gateway_ids": [id]}),
    )
    .await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/gateways/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "in_use");
    assert!(problem["detail"].as_str().unwrap().contains("Uses it"));
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/gateways/{id}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, route) = call(
        &app,
        &admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{domain}/outbound-routes/{}",
            r["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(route["gateway_ids"], json!([]), "{route}");
    let _: Value = route;
}
