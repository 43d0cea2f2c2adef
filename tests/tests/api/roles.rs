//! Roles: the built-in role × permission matrix driven through HTTP, custom roles and their
//! rules, the permission catalogue, and tenant isolation of role endpoints.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_domain::identity::permissions::{BuiltinRole, Permission};
use switchboard_tests::{TestApp, assert_problem, both_databases};
use uuid::Uuid;

use crate::users::{call, create_domain, create_user, token_of};

/// The built-in Domain roles, in the order of the matrix below.
const ROLES: [&str; 6] = [
    "domain_admin",
    "manager",
    "receptionist",
    "supervisor",
    "agent",
    "member",
];

/// For each permission one endpoint that needs it, which built-in Domain roles
/// must be let through (2xx); every other role must get 403. Written out by hand (not derived
/// from the code) so a change to a role's permission set has to change this table too.
const MATRIX: &[(&str, &[&str])] = &[
    (
        "domains.read",
        &[
            "domain_admin",
            "manager",
            "receptionist",
            "supervisor",
            "agent",
            "member",
        ],
    ),
    ("users.read", &["domain_admin", "manager", "supervisor"]),
    ("users.write", &["domain_admin"]),
    ("roles.read", &["domain_admin", "manager", "supervisor"]),
    ("roles.write", &["domain_admin"]),
    ("audit.read", &["domain_admin", "manager", "supervisor"]),
    ("api_keys.write", &["domain_admin"]),
    ("domains.manage", &[]),
];

/// One request that needs `permission` in Domain `d`, made by the holder of `role`.
fn probe(permission: &str, role: &str, d: &str, target: &str) -> (Method, String, Option<Value>) {
    match permission {
        "domains.read" => (Method::GET, format!("/api/v1/domains/{d}"), None),
        "users.read" => (Method::GET, format!("/api/v1/domains/{d}/users"), None),
        "users.write" => (
            Method::PATCH,
            format!("/api/v1/domains/{d}/users/{target}"),
            Some(json!({"display_name": format!("Renamed by {role}")})),
        ),
        "roles.read" => (Method::GET, format!("/api/v1/domains/{d}/roles"), None),
        "roles.write" => (
            Method::POST,
            format!("/api/v1/domains/{d}/roles"),
            Some(json!({"name": format!("made by {role}"), "permissions": ["domains.read"]})),
        ),
        "audit.read" => (Method::GET, format!("/api/v1/domains/{d}/audit"), None),
        "api_keys.write" => (Method::GET, format!("/api/v1/domains/{d}/api-keys"), None),
        "domains.manage" => (
            Method::POST,
            "/api/v1/domains".to_owned(),
            Some(
                json!({"name": role, "sip_domain": format!("{}.example.net", role.replace('_', "-"))}),
            ),
        ),
        other => panic!("no probe for {other}"),
    }
}

both_databases!(
    each_builtin_role_is_allowed_exactly_what_the_matrix_says,
    a_custom_role_is_listed_read_changed_assigned_and_deleted,
    bad_role_input_is_a_422_naming_every_field,
    a_duplicate_role_name_is_a_409_whatever_its_case,
    nobody_creates_or_changes_a_role_beyond_their_own_permissions,
    the_permission_catalogue_lists_every_permission_and_builtin_role,
    another_domains_admin_gets_the_same_404_on_every_role_endpoint,
);

async fn each_builtin_role_is_allowed_exactly_what_the_matrix_says(app: TestApp) {
    // The table agrees with the code's role definitions (so the README table can be trusted).
    for (permission, allowed) in MATRIX {
        let p: Permission = permission.parse().unwrap();
        for role in ROLES {
            let holds = BuiltinRole::parse(role).unwrap().permissions().contains(p);
            assert_eq!(holds, allowed.contains(&role), "{role} × {permission}");
        }
    }

    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "matrix.example.net").await;
    let target = create_user(&app, &admin, &d, "target@matrix.example", &["member"]).await;
    let mut tokens = Vec::new();
    for role in ROLES {
        let email = format!("{role}@matrix.example");
        create_user(&app, &admin, &d, &email, &[role]).await;
        tokens.push((role, token_of(&app, &email).await));
    }
    let mut failures = Vec::new();
    for (permission, allowed) in MATRIX {
        for (role, token) in &tokens {
            let (method, path, body) = probe(permission, role, &d, &target);
            let (status, answer) = call(&app, token, method.clone(), &path, body).await;
            let expected_ok = allowed.contains(role);
            let ok = if expected_ok {
                (200..300).contains(&status)
            } else {
                status == 403 && answer["code"] == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{role} × {permission} ({method} {path}): expected {}, got {status} {answer}",
                    if expected_ok { "2xx" } else { "403" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn a_custom_role_is_listed_read_changed_assigned_and_deleted(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    create_user(&app, &admin, &d, "boss@acme.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@acme.example").await;
    let roles = format!("/api/v1/domains/{d}/roles");

    let (_, list) = call(&app, &boss, Method::GET, &roles, None).await;
    let keys: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ROLES.to_vec(), "platform_admin is not a Domain role");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["builtin"] == true)
    );

    let response = app
        .send_as(
            &boss,
            Method::POST,
            &roles,
            Some(&json!({"name": " Night desk ", "description": "Covers the night shift",
                          "permissions": ["presence.read", "domains.read", "hotdesk.others", "presence.read"]})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let role: Value = response.json().await.unwrap();
    assert_eq!(role["name"], "Night desk");
    assert_eq!(role["builtin"], false);
    assert_eq!(
        role["permissions"],
        json!(["domains.read", "hotdesk.others", "presence.read"])
    );
    let key = role["key"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{roles}/{key}"));
    let (status, read) = call(&app, &boss, Method::GET, &location, None).await;
    assert_eq!((status, &read), (200, &role));
    let (status, builtin) = call(
        &app,
        &boss,
        Method::GET,
        &format!("{roles}/receptionist"),
        None,
    )
    .await;
    assert_eq!((status, &builtin["builtin"]), (200, &json!(true)));
    let (_, list) = call(&app, &boss, Method::GET, &roles, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 7);

    let (status, changed) = call(
        &app,
        &boss,
        Method::PATCH,
        &location,
        Some(json!({"name": "Night shift", "permissions": ["domains.read", "presence.read"]})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Night shift");
    assert_eq!(changed["description"], "Covers the night shift");
    assert_eq!(
        changed["permissions"],
        json!(["domains.read", "presence.read"])
    );

    // A holder of the role gets exactly its permissions.
    let ada = create_user(&app, &boss, &d, "ada@acme.example", &[&key, "member"]).await;
    let ada_token = token_of(&app, "ada@acme.example").await;
    let (_, me) = call(&app, &ada_token, Method::GET, "/api/v1/me", None).await;
    assert_eq!(
        me["domains"][0]["permissions"],
        json!(["domains.read", "hotdesk.self", "presence.read"])
    );
    let mut names: Vec<&str> = me["domains"][0]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Night shift", "member"]);

    let response = app.send_as(&boss, Method::DELETE, &location, None).await;
    let problem = assert_problem(response, 409, "role_in_use").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("force=true"),
        "{problem}"
    );
    let (status, _) = call(
        &app,
        &boss,
        Method::DELETE,
        &format!("{location}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &boss, Method::GET, &location, None).await;
    assert_eq!(status, 404);
    let (_, held) = call(
        &app,
        &boss,
        Method::GET,
        &format!("/api/v1/domains/{d}/users/{ada}/roles"),
        None,
    )
    .await;
    assert_eq!(held["roles"], json!([{"key": "member", "name": "member"}]));

    // Built-in roles cannot be changed or deleted: they are not custom roles of the Domain.
    let (status, _) = call(
        &app,
        &boss,
        Method::PATCH,
        &format!("{roles}/manager"),
        Some(json!({"name": "Boss"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &boss,
        Method::DELETE,
        &format!("{roles}/manager"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn bad_role_input_is_a_422_naming_every_field(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let roles = format!("/api/v1/domains/{d}/roles");
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &roles,
        Some(json!({"name": "Manager", "description": "x".repeat(501),
                    "permissions": ["users.read", "users.delete", "domains.manage", "nodes.read"]})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let errors: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("name", "reserved_name"),
            ("description", "too_long"),
            ("permissions[1]", "unknown_permission"),
            ("permissions[2]", "platform_only"),
            ("permissions[3]", "platform_only"),
        ]
    );
    for (body, field) in [
        (json!({"name": "", "permissions": ["users.read"]}), "name"),
        (
            json!({"name": "x".repeat(65), "permissions": ["users.read"]}),
            "name",
        ),
        (json!({"name": "Empty", "permissions": []}), "permissions"),
        (json!({"name": "No list"}), "permissions"),
    ] {
        let (status, problem) = call(&app, &admin, Method::POST, &roles, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let (_, role) = call(
        &app,
        &admin,
        Method::POST,
        &roles,
        Some(json!({"name": "Desk", "permissions": ["users.read"]})),
    )
    .await;
    let key = role["key"].as_str().unwrap();
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{roles}/{key}"),
        Some(json!({"permissions": ["users.read", "secrets.write"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "permissions[1]");
}

async fn a_duplicate_role_name_is_a_409_whatever_its_case(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let other = create_domain(&app, &admin, "other.example.net").await;
    let body = json!({"name": "Night desk", "permissions": ["domains.read"]});
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{d}/roles"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{d}/roles"),
        Some(json!({"name": "NIGHT DESK", "permissions": ["domains.read"]})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "name");
    // Names are per Domain.
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{other}/roles"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201);
    let (_, second) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{d}/roles"),
        Some(json!({"name": "Day desk", "permissions": ["domains.read"]})),
    )
    .await;
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!(
            "/api/v1/domains/{d}/roles/{}",
            second["key"].as_str().unwrap()
        ),
        Some(json!({"name": "night desk"})),
    )
    .await;
    assert_eq!(status, 409);
}

async fn nobody_creates_or_changes_a_role_beyond_their_own_permissions(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    let roles = format!("/api/v1/domains/{d}/roles");
    // A role manager who holds little else.
    let (_, role_desk) = call(
        &app,
        &admin,
        Method::POST,
        &roles,
        Some(json!({"name": "Role desk", "permissions": ["domains.read", "roles.read", "roles.write", "presence.read"]})),
    )
    .await;
    let role_desk = role_desk["key"].as_str().unwrap().to_owned();
    create_user(&app, &admin, &d, "desk@acme.example", &[&role_desk]).await;
    let desk = token_of(&app, "desk@acme.example").await;

    let (status, problem) = call(
        &app,
        &desk,
        Method::POST,
        &roles,
        Some(json!({"name": "Escalator", "permissions": ["presence.read", "users.write"]})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("users.write"),
        "{problem}"
    );
    let (status, mine) = call(
        &app,
        &desk,
        Method::POST,
        &roles,
        Some(json!({"name": "Watcher", "permissions": ["presence.read"]})),
    )
    .await;
    assert_eq!(status, 201);
    let mine = mine["key"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &app,
        &desk,
        Method::PATCH,
        &format!("{roles}/{mine}"),
        Some(json!({"permissions": ["presence.read", "secrets.read"]})),
    )
    .await;
    assert_eq!(status, 403);

    // A role granting more than the desk holds can be neither changed nor deleted by it.
    let (_, strong) = call(
        &app,
        &admin,
        Method::POST,
        &roles,
        Some(json!({"name": "Strong", "permissions": ["presence.read", "secrets.read"]})),
    )
    .await;
    let strong = format!("{roles}/{}", strong["key"].as_str().unwrap());
    let (status, _) = call(
        &app,
        &desk,
        Method::PATCH,
        &strong,
        Some(json!({"permissions": ["presence.read"]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &desk,
        Method::PATCH,
        &strong,
        Some(json!({"description": "mine now"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, &desk, Method::DELETE, &strong, None).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &desk,
        Method::DELETE,
        &format!("{roles}/{mine}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
}

async fn the_permission_catalogue_lists_every_permission_and_builtin_role(app: TestApp) {
    let admin = app.admin_token().await;
    let d = create_domain(&app, &admin, "acme.example.net").await;
    create_user(&app, &admin, &d, "member@acme.example", &["member"]).await;
    let member = token_of(&app, "member@acme.example").await;
    let (status, catalogue) = call(&app, &member, Method::GET, "/api/v1/permissions", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = catalogue["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(names, expected);
    let platform_only: Vec<&str> = catalogue["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["scope"] == "platform")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        platform_only,
        vec![
            "domains.manage",
            "nodes.read",
            "nodes.write",
            "numbers.manage",
            "gateways.manage"
        ]
    );
    assert!(
        catalogue["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["description"].as_str().is_some_and(|d| !d.is_empty()))
    );
    let roles = catalogue["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 7);
    assert_eq!(roles[0]["key"], "platform_admin");
    assert_eq!(roles[0]["scope"], "platform");
    assert_eq!(
        roles[0]["permissions"].as_array().unwrap().len(),
        Permission::ALL.len()
    );
    assert_eq!(roles[6]["key"], "member");
    assert_eq!(
        roles[6]["permissions"],
        json!(["domains.read", "hotdesk.self"])
    );
    assert_problem(app.get("/api/v1/permissions").await, 401, "unauthenticated").await;
}

async fn another_domains_admin_gets_the_same_404_on_every_role_endpoint(app: TestApp) {
    let admin = app.admin_token().await;
    let theirs = create_domain(&app, &admin, "theirs.example.net").await;
    let mine = create_domain(&app, &admin, "mine.example.net").await;
    let (_, role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{theirs}/roles"),
        Some(json!({"name": "Secret desk", "permissions": ["domains.read"]})),
    )
    .await;
    let role = role["key"].as_str().unwrap().to_owned();
    create_user(&app, &admin, &mine, "boss@mine.example", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@mine.example").await;
    let random_domain = Uuid::now_v7().to_string();
    let random_role = Uuid::now_v7().to_string();

    let probes = |d: &str, r: &str| -> Vec<(Method, String, Option<Value>)> {
        let one = format!("/api/v1/domains/{d}/roles/{r}");
        vec![
            (Method::GET, format!("/api/v1/domains/{d}/roles"), None),
            (
                Method::POST,
                format!("/api/v1/domains/{d}/roles"),
                Some(json!({"name": "Probe", "permissions": ["domains.read"]})),
            ),
            (Method::GET, one.clone(), None),
            (
                Method::PATCH,
                one.clone(),
                Some(json!({"name": "Taken over"})),
            ),
            (Method::DELETE, format!("{one}?force=true"), None),
        ]
    };
    for ((method, real, body), (_, fake, fake_body)) in probes(&theirs, &role)
        .into_iter()
        .zip(probes(&random_domain, &random_role))
    {
        let answer = call(&app, &boss, method.clone(), &real, body).await;
        let fake_answer = call(&app, &boss, method.clone(), &fake, fake_body).await;
        assert_eq!(answer.0, 404, "{method} {real}: {}", answer.1);
        assert_eq!(answer, fake_answer, "{method} {real}");
    }
    // Their role, addressed through my Domain, is a role that does not exist.
    for ((method, real, body), (_, fake, fake_body)) in probes(&mine, &role)
        .into_iter()
        .zip(probes(&mine, &random_role))
        .skip(2)
    {
        let answer = call(&app, &boss, method.clone(), &real, body).await;
        let fake_answer = call(&app, &boss, method.clone(), &fake, fake_body).await;
        assert_eq!(answer.0, 404, "{method} {real}: {}", answer.1);
        assert_eq!(answer, fake_answer, "{method} {real}");
    }
    // Nor can their custom role be handed out in my Domain.
    let (status, problem) = call(
        &app,
        &boss,
        Method::POST,
        &format!("/api/v1/domains/{mine}/users"),
        Some(json!({"email": "x@mine.example", "display_name": "X", "roles": [role]})),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("unknown_role"))
    );
    let (status, still) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{theirs}/roles/{role}"),
        None,
    )
    .await;
    assert_eq!((status, still["name"].as_str()), (200, Some("Secret desk")));
}
