//! Read views over the bindings: ring plans (fixed device, Location) and calling identities
//! (fixed, logged-out hot-desk), with permission and tenant refusals.

use reqwest::Method;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::json;
use switchboard_domain::store::location_sign_ins;
use switchboard_tests::{TestApp, assert_problem, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, extension, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    a_fixed_device_and_a_signed_in_location_show_in_the_ring_plan,
    identities_follow_the_owner_and_a_logged_out_phone_is_restricted,
    views_need_read_permissions_and_stay_in_their_domain,
);

async fn a_fixed_device_and_a_signed_in_location_show_in_the_ring_plan(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "views.example").await;
    let ext = extension(&app, &admin, &domain, "201", false).await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk", "mode": "fixed", "owner_extension_id": ext}),
    )
    .await;
    let path = format!("/api/v1/domains/{domain}/extensions/{ext}/ring-plan");
    let (status, plan) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["extension_id"], ext.as_str());
    assert_eq!(plan["number"], "201");
    let target = &plan["hunts"][0]["steps"][0]["targets"][0];
    assert_eq!(target["sip_user"], desk["sip_username"]);
    assert_eq!(target["device_id"], desk["id"]);
    assert_eq!(target["device_label"], "Desk");
    assert_eq!(target["source"]["kind"], "fixed_device");
    assert!(
        target["reason"].as_str().unwrap().contains("fixed"),
        "{target}"
    );
    assert_eq!(plan["disposition"]["outcome"], "ring");
    assert!(plan["ring_timeout_secs"].as_u64().unwrap() > 0);
    let dial = plan["dial_string"].as_str().unwrap();
    assert!(
        dial.contains(&format!(
            "sofia_contact(*/{}@views.example)",
            desk["sip_username"].as_str().unwrap()
        )),
        "{dial}"
    );

    // A Location with a phone rings for whoever is signed in there.
    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Room 4", "ring_strategy": "simultaneous"}),
        )
        .await,
    );
    let room_phone = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Room 4 phone", "location_id": location}),
    )
    .await;
    location_sign_ins::ActiveModel {
        domain_id: Set(Uuid::parse_str(&domain).unwrap()),
        extension_id: Set(Uuid::parse_str(&ext).unwrap()),
        location_id: Set(Uuid::parse_str(&location).unwrap()),
        since: Set(chrono::Utc::now()),
        signed_in_by: Set("test".to_owned()),
    }
    .insert(&app.db)
    .await
    .unwrap();
    let (_, plan) = call(&app, &admin, Method::GET, &path, None).await;
    let targets: Vec<_> = plan["hunts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["steps"].as_array().unwrap().iter())
        .flat_map(|s| s["targets"].as_array().unwrap().iter())
        .cloned()
        .collect();
    let at_location = targets
        .iter()
        .find(|t| t["device_id"] == room_phone["id"])
        .unwrap_or_else(|| panic!("the Location's phone rings: {plan}"));
    assert_eq!(at_location["source"]["kind"], "location");
    assert_eq!(at_location["source"]["location_id"], location.as_str());
    assert!(targets.iter().any(|t| t["device_id"] == desk["id"]));

    // DND: busy, nothing rings, no dial string.
    call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{domain}/extensions/{ext}"),
        Some(json!({"dnd": true})),
    )
    .await;
    let (_, plan) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(plan["disposition"]["outcome"], "busy");
    assert_eq!(plan["dial_string"], serde_json::Value::Null);
}

async fn identities_follow_the_owner_and_a_logged_out_phone_is_restricted(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "identity.example").await;
    let ext = extension(&app, &admin, &domain, "301", false).await;
    let fixed = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Fixed", "mode": "fixed", "owner_extension_id": ext}),
        )
        .await,
    );
    let (status, id) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/devices/{fixed}/identity"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{id}");
    assert_eq!(id["binding"]["kind"], "fixed");
    assert_eq!(id["effective_extension"]["number"], "301");
    assert_eq!(id["caller_id"]["internal_number"], "301");
    assert_eq!(id["restricted"], false);
    assert_eq!(id["presence_id"], "301@identity.example");

    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Lobby", "emergency_caller_id_number": "+4930111222"}),
        )
        .await,
    );
    let hotdesk = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Lobby phone", "mode": "hotdesk", "logged_out_mode": "full", "location_id": location}),
        )
        .await,
    );
    let (status, id) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/devices/{hotdesk}/identity"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{id}");
    assert_eq!(id["binding"]["kind"], "logged_out_full");
    assert_eq!(id["restricted"], true);
    assert_eq!(id["context"], "switchboard-logged-out");
    assert_eq!(id["effective_extension"], serde_json::Value::Null);
    assert_eq!(id["toll_allow"], "");
    assert_eq!(id["emergency_caller_id"]["number"], "+4930111222");
    assert_eq!(id["emergency_caller_id"]["number_from"], "location");
}

async fn views_need_read_permissions_and_stay_in_their_domain(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "views-a.example").await;
    let (other, _) = domain_with_admin(&app, "views-b.example").await;
    let ext = extension(&app, &admin, &domain, "401", false).await;
    let device = id_of(&create(&app, &admin, &domain, "devices", json!({"label": "P"})).await);
    let plan = format!("/api/v1/domains/{domain}/extensions/{ext}/ring-plan");
    let identity = format!("/api/v1/domains/{domain}/devices/{device}/identity");

    assert_eq!(app.get(&plan).await.status(), 401);
    assert_eq!(app.get(&identity).await.status(), 401);

    // Only the other Domain: 404 (the same answer as for a Domain that does not exist).
    create_user(
        &app,
        &admin,
        &other,
        "outsider@views.example",
        &["domain_admin"],
    )
    .await;
    let outsider = token_of(&app, "outsider@views.example").await;
    for path in [&plan, &identity] {
        let response = app.send_as(&outsider, Method::GET, path, None).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    // Another Domain's id in my Domain's path: 404.
    let wrong = format!("/api/v1/domains/{other}/extensions/{ext}/ring-plan");
    assert_eq!(
        app.send_as(&admin, Method::GET, &wrong, None)
            .await
            .status(),
        404
    );

    // A member without the read permissions: 403.
    create_user(&app, &admin, &domain, "nobody@views.example", &["member"]).await;
    let nobody = token_of(&app, "nobody@views.example").await;
    for path in [&plan, &identity] {
        let response = app.send_as(&nobody, Method::GET, path, None).await;
        assert_problem(response, 403, "forbidden").await;
    }
}
