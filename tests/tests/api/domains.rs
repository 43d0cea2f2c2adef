//! Domains (tenants): the platform administrator's lifecycle, validation, uniqueness of the SIP
//! domain, forced deletion, and what Domain members may see and do.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use switchboard_domain::store::audit_log;
use switchboard_tests::{TestApp, assert_problem, both_databases};
use uuid::Uuid;

use crate::users::{PASSWORD, assert_login_refused, call, create_domain, create_user, token_of};

fn error_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .expect("field errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().expect("a field").to_owned(),
                e["code"].as_str().expect("a code").to_owned(),
            )
        })
        .collect()
}

async fn audit_actions(app: &TestApp, target: &str) -> Vec<(String, Option<Uuid>)> {
    audit_log::Entity::find()
        .filter(audit_log::Column::TargetId.eq(target))
        .order_by_asc(audit_log::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.domain_id))
        .collect()
}

both_databases!(
    a_platform_admin_creates_reads_lists_changes_and_deletes_a_domain,
    bad_domain_input_is_a_422_naming_every_field,
    a_duplicate_sip_domain_is_a_409_whatever_its_case,
    a_domain_that_owns_users_is_deleted_only_with_force_and_takes_its_own_users_along,
    members_see_only_their_domains_and_cannot_manage_them,
    domains_need_authentication,
);

async fn a_platform_admin_creates_reads_lists_changes_and_deletes_a_domain(app: TestApp) {
    let admin = app.admin_token().await;
    let response = app
        .send_as(
            &admin,
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": " Acme Corp ", "sip_domain": " Acme.PBX.Example.NET", "timezone": "America/New_York"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], "Acme Corp");
    assert_eq!(created["sip_domain"], "acme.pbx.example.net");
    assert_eq!(created["timezone"], "America/New_York");
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/domains/{id}"));

    let (status, read) = call(&app, &admin, Method::GET, &location, None).await;
    assert_eq!((status, &read), (200, &created));
    let (_, defaults) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "Beta", "sip_domain": "beta.example.net", "enabled": false})),
    )
    .await;
    assert_eq!(defaults["timezone"], "UTC");
    assert_eq!(defaults["enabled"], false);

    let (_, all) = call(&app, &admin, Method::GET, "/api/v1/domains", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, found) = call(&app, &admin, Method::GET, "/api/v1/domains?q=PBX", None).await;
    assert_eq!(found["items"][0]["id"], id.as_str());
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, disabled) = call(
        &app,
        &admin,
        Method::GET,
        "/api/v1/domains?enabled=false",
        None,
    )
    .await;
    assert_eq!(disabled["items"][0]["name"], "Beta");
    let (_, first) = call(&app, &admin, Method::GET, "/api/v1/domains?limit=1", None).await;
    assert!(first["next_cursor"].is_string(), "{first}");

    let (status, changed) = call(
        &app,
        &admin,
        Method::PATCH,
        &location,
        Some(json!({"name": "Acme Inc", "sip_domain": "ACME.example.org", "timezone": "Europe/Paris", "enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Acme Inc");
    assert_eq!(changed["sip_domain"], "acme.example.org");
    assert_eq!(changed["timezone"], "Europe/Paris");
    assert_eq!(changed["enabled"], false);

    let (status, _) = call(&app, &admin, Method::DELETE, &location, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &location, None).await;
    assert_eq!(status, 404);

    assert_eq!(
        audit_actions(&app, &id).await,
        vec![
            // The Domain's own entries went with it; its deletion is kept at platform level.
            ("domain.delete".to_owned(), None),
        ]
    );
}

async fn bad_domain_input_is_a_422_naming_every_field(app: TestApp) {
    let admin = app.admin_token().await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "", "sip_domain": "-bad-.example.net", "timezone": "Europe/Atlantis"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        error_fields(&problem),
        vec![
            ("name".to_owned(), "invalid_length".to_owned()),
            ("sip_domain".to_owned(), "invalid_fqdn".to_owned()),
            ("timezone".to_owned(), "unknown_timezone".to_owned()),
        ]
    );
    for bad in [
        "localhost",
        "acme..example.net",
        "acme_corp.example.net",
        "10.0.0.1",
        "acme.example.net:5060",
    ] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::POST,
            "/api/v1/domains",
            Some(json!({"name": "Acme", "sip_domain": bad})),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert_eq!(
            error_fields(&problem),
            vec![("sip_domain".to_owned(), "invalid_fqdn".to_owned())],
            "{bad}"
        );
    }
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "Acme"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        error_fields(&problem),
        vec![("sip_domain".to_owned(), "required".to_owned())]
    );

    let id = create_domain(&app, &admin, "acme.example.net").await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{id}"),
        Some(json!({"sip_domain": "nope", "timezone": "", "colour": "red"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        error_fields(&problem),
        vec![("colour".to_owned(), "unknown_field".to_owned())]
    );
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{id}"),
        Some(json!({"sip_domain": "nope", "timezone": ""})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        error_fields(&problem),
        vec![
            ("sip_domain".to_owned(), "invalid_fqdn".to_owned()),
            ("timezone".to_owned(), "unknown_timezone".to_owned()),
        ]
    );
}

async fn a_duplicate_sip_domain_is_a_409_whatever_its_case(app: TestApp) {
    let admin = app.admin_token().await;
    create_domain(&app, &admin, "acme.example.net").await;
    let other = create_domain(&app, &admin, "other.example.net").await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/domains",
        Some(json!({"name": "Copycat", "sip_domain": "ACME.example.NET"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "already_exists");
    assert_eq!(
        error_fields(&problem),
        vec![("sip_domain".to_owned(), "already_exists".to_owned())]
    );
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{other}"),
        Some(json!({"sip_domain": "acme.example.net"})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("already_exists"))
    );
    // Keeping one's own SIP domain is not a conflict.
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{other}"),
        Some(json!({"sip_domain": "other.example.net", "name": "Other"})),
    )
    .await;
    assert_eq!(status, 200);
}

async fn a_domain_that_owns_users_is_deleted_only_with_force_and_takes_its_own_users_along(
    app: TestApp,
) {
    let admin = app.admin_token().await;
    let doomed = create_domain(&app, &admin, "doomed.example.net").await;
    let kept = create_domain(&app, &admin, "kept.example.net").await;
    let only_here = create_user(
        &app,
        &admin,
        &doomed,
        "only@doomed.example",
        &["domain_admin"],
    )
    .await;
    let both = create_user(&app, &admin, &kept, "both@kept.example", &["manager"]).await;
    let (status, _) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{doomed}/users/{both}/roles"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{doomed}/roles"),
        Some(json!({"name": "Night desk", "permissions": ["domains.read"]})),
    )
    .await;
    assert_eq!(status, 201);
    let only_token = token_of(&app, "only@doomed.example").await;

    let path = format!("/api/v1/domains/{doomed}");
    let response = app.send_as(&admin, Method::DELETE, &path, None).await;
    let problem = assert_problem(response, 409, "domain_not_empty").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("2 user(s)") && detail.contains("1 custom role(s)"),
        "{detail}"
    );
    let response = app
        .send_as(&admin, Method::DELETE, &format!("{path}?force=false"), None)
        .await;
    assert_problem(response, 409, "domain_not_empty").await;

    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{path}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 404);

    // The Domain's only member is gone, sessions and all.
    let (status, _) = call(&app, &only_token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, 401);
    assert_login_refused(&app, "only@doomed.example", PASSWORD).await;
    // The member of another Domain stays, with only that membership.
    let both_token = token_of(&app, "both@kept.example").await;
    let (_, me) = call(&app, &both_token, Method::GET, "/api/v1/me", None).await;
    let domains = me["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 1, "{me}");
    assert_eq!(domains[0]["domain"]["id"], kept.as_str());

    let deletion = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("domain.delete"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the deletion is audited");
    assert_eq!(deletion.domain_id, None);
    assert_eq!(deletion.target_id.as_deref(), Some(doomed.as_str()));
    let after = deletion.after.unwrap();
    assert_eq!(after["forced"], true);
    assert_eq!(after["deleted_users"], json!([only_here]));
}

async fn members_see_only_their_domains_and_cannot_manage_them(app: TestApp) {
    let admin = app.admin_token().await;
    let mine = create_domain(&app, &admin, "mine.example.net").await;
    let theirs = create_domain(&app, &admin, "theirs.example.net").await;
    create_user(&app, &admin, &mine, "boss@mine.example", &["domain_admin"]).await;
    create_user(&app, &admin, &mine, "member@mine.example", &["member"]).await;
    let boss = token_of(&app, "boss@mine.example").await;
    let member = token_of(&app, "member@mine.example").await;

    for token in [&boss, &member] {
        let (_, list) = call(&app, token, Method::GET, "/api/v1/domains", None).await;
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![mine.as_str()]);
        let (status, _) = call(
            &app,
            token,
            Method::GET,
            &format!("/api/v1/domains/{mine}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }

    let create = json!({"name": "Mine too", "sip_domain": "mine2.example.net"});
    let (status, problem) = call(&app, &boss, Method::POST, "/api/v1/domains", Some(create)).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
    let own = format!("/api/v1/domains/{mine}");
    let (status, _) = call(
        &app,
        &boss,
        Method::PATCH,
        &own,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &boss,
        Method::DELETE,
        &format!("{own}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Another Domain answers exactly like one that does not exist.
    let random = Uuid::now_v7();
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"enabled": false}))),
        (Method::DELETE, None),
    ] {
        let real = call(
            &app,
            &boss,
            method.clone(),
            &format!("/api/v1/domains/{theirs}"),
            body.clone(),
        )
        .await;
        let fake = call(
            &app,
            &boss,
            method.clone(),
            &format!("/api/v1/domains/{random}"),
            body,
        )
        .await;
        assert_eq!(real.0, 404, "{method}: {}", real.1);
        assert_eq!(real, fake, "{method}");
    }
    let (status, still) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{theirs}"),
        None,
    )
    .await;
    assert_eq!((status, &still["enabled"]), (200, &json!(true)));
}

async fn domains_need_authentication(app: TestApp) {
    assert_problem(app.get("/api/v1/domains").await, 401, "unauthenticated").await;
    let body = json!({"name": "Acme", "sip_domain": "acme.example.net"});
    assert_problem(
        app.post_json("/api/v1/domains", &body).await,
        401,
        "unauthenticated",
    )
    .await;
}
