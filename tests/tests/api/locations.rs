//! Locations: lifecycle with devices in ring order, who may sign in, validation and
//! references, force delete, change events, tenant isolation.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_domain::events::ChangeKind;
use switchboard_tests::{TestApp, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, extension, id_of, next_event};
use crate::users::{call, create_domain, create_user, token_of};

both_databases!(
    a_location_is_created_read_listed_changed_and_deleted,
    its_devices_are_listed_in_ring_order,
    bad_location_input_is_a_422_naming_every_field,
    a_location_with_devices_is_deleted_only_with_force,
    changing_a_location_refreshes_its_devices,
    another_domains_admin_gets_the_same_404_on_every_location_endpoint,
    a_deleted_custom_role_is_dropped_from_sign_in_lists,
);

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

fn device_labels(location: &Value) -> Vec<String> {
    location["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_location_is_created_read_listed_changed_and_deleted(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let base = format!("/api/v1/domains/{domain}/locations");
    let ada = extension(&app, &admin, &domain, "201", false).await;
    let grace = extension(&app, &admin, &domain, "202", false).await;
    let (status, role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/roles"),
        Some(json!({"name": "Night desk", "permissions": ["hotdesk.self"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let role_id = role["key"].as_str().unwrap().to_owned();

    let hq = create(
        &app,
        &admin,
        &domain,
        "locations",
        json!({
            "name": " Berlin HQ, desk 4.12 ", "description": "Window seat",
            "emergency_caller_id_name": "Acme Berlin", "emergency_caller_id_number": "+49 30 1234 5678",
            "emergency_address": "Main St 1\n10115 Berlin",
            "sign_in_policy": "listed", "allowed_extension_ids": [ada, ada],
            "allowed_roles": ["receptionist", role_id],
        }),
    )
    .await;
    let id = id_of(&hq);
    assert_eq!(hq["name"], "Berlin HQ, desk 4.12");
    assert_eq!(hq["emergency_caller_id_number"], "+493012345678");
    assert_eq!(hq["emergency_address"], "Main St 1\n10115 Berlin");
    assert_eq!(hq["ring_strategy"], "simultaneous", "the default");
    assert_eq!(hq["sign_in_policy"], "listed");
    assert_eq!(
        hq["allowed_extension_ids"],
        json!([ada]),
        "duplicates count once"
    );
    assert_eq!(hq["allowed_roles"], json!(["receptionist", role_id]));
    assert_eq!(hq["devices"], json!([]));

    let home = create(
        &app,
        &admin,
        &domain,
        "locations",
        json!({"name": "Home office"}),
    )
    .await;
    assert_eq!(home["sign_in_policy"], "everyone");
    assert_eq!(home["allowed_extension_ids"], json!([]));
    assert_eq!(home["allowed_roles"], json!([]));

    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &base,
        Some(json!({"name": "Home office"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "name");

    let (_, page) = call(&app, &admin, Method::GET, &base, None).await;
    assert_eq!(names(&page), ["Berlin HQ, desk 4.12", "Home office"]);
    let (_, page) = call(&app, &admin, Method::GET, &format!("{base}?q=HOME"), None).await;
    assert_eq!(names(&page), ["Home office"]);
    let (_, page) = call(&app, &admin, Method::GET, &format!("{base}?limit=1"), None).await;
    assert_eq!(names(&page), ["Berlin HQ, desk 4.12"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(names(&page), ["Home office"]);
    assert_eq!(page["next_cursor"], Value::Null);

    let path = format!("{base}/{id}");
    let (status, changed) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(
            json!({"ring_strategy": "sequential", "emergency_address": null,
                    "allowed_extension_ids": [grace]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["ring_strategy"], "sequential");
    assert_eq!(changed["emergency_address"], Value::Null);
    assert_eq!(
        changed["allowed_extension_ids"],
        json!([grace]),
        "the list is replaced"
    );
    assert_eq!(
        changed["allowed_roles"],
        json!(["receptionist", role_id]),
        "omitted fields stay"
    );
    assert_eq!(changed["description"], "Window seat");

    // Emptying both lists of a `listed` Location is refused; switching to `everyone` keeps them.
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"allowed_extension_ids": [], "allowed_roles": []})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "sign_in_policy");
    assert_eq!(problem["errors"][0]["code"], "nobody_listed");
    let (status, open) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"sign_in_policy": "everyone"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(open["allowed_extension_ids"], json!([grace]));

    // Deleting a listed Extension takes it off the list.
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/extensions/{grace}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, read) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(read["allowed_extension_ids"], json!([]));

    let (status, _) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 404);

    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=location.*"),
        None,
    )
    .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "location.delete",
            "location.update",
            "location.update",
            "location.create",
            "location.create"
        ]
    );
    let update = &log["items"][2];
    assert_eq!(update["after"]["allowed_extension_ids"], json!([grace]));
}

async fn its_devices_are_listed_in_ring_order(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Desk 7", "ring_strategy": "sequential"}),
        )
        .await,
    );
    let device = |label: &'static str, extra: Value| {
        let mut body = json!({"label": label, "location_id": location});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let app = &app;
        let admin = &admin;
        let domain = &domain;
        async move { create(app, admin, domain, "devices", body).await }
    };
    let a = device("A", json!({})).await;
    let b = device("B", json!({"location_ring_timeout_secs": 15})).await;
    let c = device("C", json!({"location_position": 0})).await;
    assert_eq!(
        (
            &a["location_position"],
            &b["location_position"],
            &c["location_position"]
        ),
        (&json!(0), &json!(1), &json!(0))
    );
    device("Elsewhere", json!({"location_id": null})).await;

    let path = format!("/api/v1/domains/{domain}/locations/{location}");
    let (_, read) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        device_labels(&read),
        ["A", "C", "B"],
        "by position, then creation"
    );
    assert_eq!(
        read["devices"][2],
        json!({"id": b["id"], "label": "B", "sip_username": b["sip_username"],
               "position": 1, "ring_timeout_secs": 15, "enabled": true})
    );

    // Moving A behind B reorders the ring.
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/devices/{}", id_of(&a)),
        Some(json!({"location_position": 5})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/locations"),
        None,
    )
    .await;
    assert_eq!(device_labels(&page["items"][0]), ["C", "B", "A"]);
}

async fn bad_location_input_is_a_422_naming_every_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    let person = extension(&app, &admin, &domain, "201", false).await;
    let placeholder = extension(&app, &admin, &domain, "900", true).await;
    let foreign = extension(&app, &admin, &other, "201", false).await;
    let (status, foreign_role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{other}/roles"),
        Some(json!({"name": "Theirs", "permissions": ["hotdesk.self"]})),
    )
    .await;
    assert_eq!(status, 201);
    let foreign_role = foreign_role["key"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/domains/{domain}/locations");

    let n = |extra: Value| {
        let mut body = json!({"name": "Desk"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let table: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!({}), vec![("name", "required")]),
        (json!({"name": "  "}), vec![("name", "invalid_name")]),
        (json!({"name": null}), vec![("name", "invalid_type")]),
        (
            n(json!({"allowed_roles": null})),
            vec![("allowed_roles", "invalid_type")],
        ),
        (
            n(json!({"description": "d".repeat(501)})),
            vec![("description", "invalid_text")],
        ),
        (
            n(json!({"emergency_caller_id_number": "112"})),
            vec![("emergency_caller_id_number", "invalid_e164")],
        ),
        (
            n(json!({"emergency_caller_id_name": "x".repeat(51)})),
            vec![("emergency_caller_id_name", "invalid_caller_id_name")],
        ),
        (
            n(json!({"ring_strategy": "round_robin"})),
            vec![("ring_strategy", "invalid_choice")],
        ),
        (
            n(json!({"sign_in_policy": "anyone"})),
            vec![("sign_in_policy", "invalid_choice")],
        ),
        (
            n(json!({"sign_in_policy": "listed"})),
            vec![("sign_in_policy", "nobody_listed")],
        ),
        (
            n(json!({"sign_in_policy": "listed", "allowed_extension_ids": [person, foreign]})),
            vec![("allowed_extension_ids[1]", "not_found")],
        ),
        (
            n(json!({"allowed_extension_ids": [placeholder]})),
            vec![("allowed_extension_ids[0]", "is_placeholder")],
        ),
        (
            n(json!({"allowed_extension_ids": ["not-a-uuid"]})),
            vec![("allowed_extension_ids[0]", "invalid_type")],
        ),
        (
            n(json!({"allowed_roles": ["platform_admin"]})),
            vec![("allowed_roles[0]", "wrong_scope")],
        ),
        (
            n(json!({"allowed_roles": ["member", "nonsense", foreign_role]})),
            vec![
                ("allowed_roles[1]", "unknown_role"),
                ("allowed_roles[2]", "unknown_role"),
            ],
        ),
        (
            n(json!({"devices": []})),
            vec![("devices", "unknown_field")],
        ),
    ];
    for (body, expected) in table {
        let (status, problem) = call(&app, &admin, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body} → {problem}");
        let got: Vec<(String, String)> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let got_fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        let expected_fields: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
        assert_eq!(got_fields, expected_fields, "{body} → {problem}");
        for ((_, got_code), (field, code)) in got.iter().zip(&expected) {
            if !matches!(*code, "unknown_field" | "invalid_type") {
                assert_eq!(got_code, code, "{field} in {body}");
            }
        }
    }
    let (_, page) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(page["items"], json!([]), "nothing was written");
}

async fn a_location_with_devices_is_deleted_only_with_force(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Desk 7"}),
        )
        .await,
    );
    let mut ids = Vec::new();
    for label in ["A", "B"] {
        let d = create(
            &app,
            &admin,
            &domain,
            "devices",
            json!({"label": label, "location_id": location, "location_ring_timeout_secs": 10}),
        )
        .await;
        ids.push(id_of(&d));
    }
    let path = format!("/api/v1/domains/{domain}/locations/{location}");
    let (status, problem) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "in_use");
    let (status, still) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(device_labels(&still), ["A", "B"]);

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
    for id in &ids {
        let (status, device) = call(
            &app,
            &admin,
            Method::GET,
            &format!("/api/v1/domains/{domain}/devices/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "the devices themselves stay");
        assert_eq!(device["location_id"], Value::Null);
        assert_eq!(device["location_position"], Value::Null);
        assert_eq!(device["location_ring_timeout_secs"], Value::Null);
    }
    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=location.delete"),
        None,
    )
    .await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        1,
        "the refused delete is not logged"
    );
    assert_eq!(
        log["items"][0]["after"],
        json!({"forced": true, "released_devices": 2})
    );

    // An empty Location needs no force.
    let empty = id_of(&create(&app, &admin, &domain, "locations", json!({"name": "Empty"})).await);
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/locations/{empty}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
}

async fn changing_a_location_refreshes_its_devices(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Desk 7"}),
        )
        .await,
    );
    let d = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "A", "location_id": location}),
    )
    .await;
    let user = d["sip_username"].as_str().unwrap().to_owned();
    let mut events = app.events.subscribe();
    let path = format!("/api/v1/domains/{domain}/locations/{location}");
    call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"emergency_caller_id_number": "+4930999"})),
    )
    .await;
    let updated = next_event(&mut events).await;
    assert_eq!(updated.kind, ChangeKind::LocationUpdated);
    assert_eq!(updated.entity_id, Uuid::parse_str(&location).unwrap());
    assert_eq!(
        updated.sip_users,
        [user.as_str()],
        "emergency identity follows the Location"
    );

    call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{path}?force=true"),
        None,
    )
    .await;
    let deleted = next_event(&mut events).await;
    assert_eq!(deleted.kind, ChangeKind::LocationDeleted);
    assert_eq!(deleted.sip_users, [user]);
}

async fn another_domains_admin_gets_the_same_404_on_every_location_endpoint(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    create_user(&app, &admin, &other, "boss@globex.test", &["domain_admin"]).await;
    let intruder = token_of(&app, "boss@globex.test").await;
    let location = create(&app, &admin, &domain, "locations", json!({"name": "HQ"})).await;
    let id = id_of(&location);
    let random = Uuid::now_v7();
    let cases = [
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/locations"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/locations"),
            Some(json!({"name": "Mine now"})),
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/locations/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/domains/{domain}/locations/{id}"),
            Some(json!({"name": "Renamed"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/domains/{domain}/locations/{id}?force=true"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let (status, problem) = call(&app, &intruder, method.clone(), &path, body.clone()).await;
        let fake = path.replace(&domain, &random.to_string());
        let (fake_status, fake_problem) = call(&app, &intruder, method.clone(), &fake, body).await;
        assert_eq!(status, 404, "{method} {path}: {problem}");
        assert_eq!(
            (status, &problem),
            (fake_status, &fake_problem),
            "{method} {path} must look like a missing Domain"
        );
    }
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "x"}));
        let path = format!("/api/v1/domains/{other}/locations/{id}");
        let (status, _) = call(&app, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    // Nor can the intruder's devices join it.
    let (status, problem) = call(
        &app,
        &intruder,
        Method::POST,
        &format!("/api/v1/domains/{other}/devices"),
        Some(json!({"label": "Sneaky", "location_id": id})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "location_id");
    let (_, still) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/locations/{id}"),
        None,
    )
    .await;
    assert_eq!(still["name"], "HQ", "untouched");
}

async fn a_deleted_custom_role_is_dropped_from_sign_in_lists(app: TestApp) {
    let admin = app.admin_token().await;
    let domain = create_domain(&app, &admin, "acme.pbx.test").await;
    let (status, role) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/roles"),
        Some(json!({"name": "Desk sharers", "description": "", "permissions": ["hotdesk.self"]})),
    )
    .await;
    assert_eq!(status, 201, "{role}");
    let role_key = role["key"].as_str().unwrap().to_owned();
    let (status, location) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/locations"),
        Some(json!({"name": "Desk 4", "sign_in_policy": "listed", "allowed_roles": [role_key, "receptionist"]})),
    )
    .await;
    assert_eq!(status, 201, "{location}");
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/roles/{role_key}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, after) = call(
        &app,
        &admin,
        Method::GET,
        &format!(
            "/api/v1/domains/{domain}/locations/{}",
            location["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(after["allowed_roles"], json!(["receptionist"]), "{after}");
}
