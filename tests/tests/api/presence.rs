//! Presence: the list over every Extension, setting one's own status, DND as the Extension's
//! own switch, audited and published.

use reqwest::Method;
use serde_json::json;
use switchboard_domain::events::ChangeKind;
use switchboard_tests::{TestApp, assert_problem, both_databases};

use crate::devices::{create, domain_with_admin, extension, next_event};
use crate::users::{call, create_user, token_of};

both_databases!(
    presence_lists_every_extension_and_my_status_sets_dnd_on_my_extension,
    presence_needs_presence_read_and_an_extension_of_mine,
    a_user_removed_from_a_domain_no_longer_sets_its_presence_and_learns_nothing,
);

async fn presence_lists_every_extension_and_my_status_sets_dnd_on_my_extension(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "presence.example").await;
    let user = create_user(&app, &admin, &domain, "alice@presence.example", &["agent"]).await;
    let ext = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Alice", "user_id": user}),
    )
    .await;
    let ext_id = ext["id"].as_str().unwrap().to_owned();
    extension(&app, &admin, &domain, "202", false).await;
    let phone = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Alice desk", "mode": "fixed", "owner_extension_id": ext_id}),
    )
    .await;

    let alice = token_of(&app, "alice@presence.example").await;
    let list_path = format!("/api/v1/domains/{domain}/presence");
    let (status, list) = call(&app, &alice, Method::GET, &list_path, None).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["number"], "201");
    assert_eq!(items[0]["status"], "available");
    assert_eq!(items[0]["telephone"], "offline");
    assert_eq!(items[0]["endpoints"][0]["sip_user"], phone["sip_username"]);
    assert_eq!(items[1]["number"], "202");

    let mut events = app.events.subscribe();
    let (status, me) = call(
        &app,
        &alice,
        Method::PUT,
        "/api/v1/me/presence",
        Some(json!({"domain_id": domain, "status": "dnd", "message": "in a meeting"})),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["status"], "dnd");
    assert_eq!(me["message"], "in a meeting");
    let event = next_event(&mut events).await;
    assert_eq!(event.kind, ChangeKind::PresenceChanged);
    assert_eq!(event.entity_id.to_string(), ext_id);
    assert_eq!(event.sip_users, vec!["201".to_owned()]);

    // The same switch as the Extension's DND.
    let ext_path = format!("/api/v1/domains/{domain}/extensions/{ext_id}");
    let (_, stored) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert_eq!(stored["dnd"], true);

    let (_, me) = call(
        &app,
        &alice,
        Method::PUT,
        "/api/v1/me/presence",
        Some(json!({"domain_id": domain, "status": "away"})),
    )
    .await;
    assert_eq!(me["status"], "away");
    assert_eq!(me["message"], serde_json::Value::Null);
    let (_, stored) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert_eq!(stored["dnd"], false);

    // The admin switching DND on shows as dnd in presence.
    call(
        &app,
        &admin,
        Method::PATCH,
        &ext_path,
        Some(json!({"dnd": true})),
    )
    .await;
    let (_, list) = call(&app, &alice, Method::GET, &list_path, None).await;
    assert_eq!(list["items"][0]["status"], "dnd");

    // Audited.
    let (_, audit) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=presence.update"),
        None,
    )
    .await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");

    // Invalid input.
    let response = app
        .send_as(
            &alice,
            Method::PUT,
            "/api/v1/me/presence",
            Some(&json!({"domain_id": domain, "status": "busy"})),
        )
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

async fn presence_needs_presence_read_and_an_extension_of_mine(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "presence-a.example").await;
    let (other, _) = domain_with_admin(&app, "presence-b.example").await;
    let list_path = format!("/api/v1/domains/{domain}/presence");
    assert_eq!(app.get(&list_path).await.status(), 401);

    create_user(
        &app,
        &admin,
        &domain,
        "member@presence.example",
        &["member"],
    )
    .await;
    let member = token_of(&app, "member@presence.example").await;
    let response = app.send_as(&member, Method::GET, &list_path, None).await;
    assert_problem(response, 403, "forbidden").await;
    let response = app
        .send_as(
            &member,
            Method::GET,
            &format!("/api/v1/domains/{other}/presence"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);

    // No Extension linked to me: 409.
    let response = app
        .send_as(
            &member,
            Method::PUT,
            "/api/v1/me/presence",
            Some(&json!({"domain_id": domain, "status": "away"})),
        )
        .await;
    assert_problem(response, 409, "no_extension").await;
}

async fn a_user_removed_from_a_domain_no_longer_sets_its_presence_and_learns_nothing(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use switchboard_domain::store::audit_log;

    let (domain, admin) = domain_with_admin(&app, "removed.example").await;
    let (elsewhere, _) = domain_with_admin(&app, "still-member.example").await;
    let user = create_user(&app, &admin, &domain, "bob@removed.example", &["agent"]).await;
    // Bob keeps his account through a role in another Domain.
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{elsewhere}/users/{user}/roles"),
        Some(json!({"roles": ["member"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ext = create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "201", "display_name": "Bob", "user_id": user}),
    )
    .await;
    let ext_path = format!(
        "/api/v1/domains/{domain}/extensions/{}",
        ext["id"].as_str().unwrap()
    );
    let bob = token_of(&app, "bob@removed.example").await;
    let set = |domain_id: String| {
        let bob = bob.clone();
        let app = &app;
        async move {
            app.send_as(
                &bob,
                Method::PUT,
                "/api/v1/me/presence",
                Some(&json!({"domain_id": domain_id, "status": "dnd"})),
            )
            .await
        }
    };

    // Removed from the Domain.
    let (status, body) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/domains/{domain}/users/{user}"),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");

    // His Extension there is no longer his (audited) ...
    let (_, stored) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert!(stored["user_id"].is_null(), "{stored}");
    let unlinked = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("extension.unlink_user"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0].target_id.as_deref(), ext["id"].as_str());

    // ... he cannot put it on DND, and the real Domain answers exactly like a made-up one.
    let real = assert_problem(set(domain.clone()).await, 404, "not_found").await;
    let made_up = assert_problem(
        set(uuid::Uuid::now_v7().to_string()).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(real["detail"], made_up["detail"]);
    let (_, stored) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert_eq!(stored["dnd"], false, "{stored}");

    // Where he is still a member, the usual answer: no Extension of his there.
    assert_problem(set(elsewhere.clone()).await, 409, "no_extension").await;
    // The other /me operations of the Domain are closed to him too.
    let (status, _) = call(
        &app,
        &bob,
        Method::PUT,
        "/api/v1/me/location",
        Some(json!({"domain_id": domain, "location_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, 404);
}
