//! Location sign-in: one Location per Extension, signing in elsewhere replaces, the Location's
//! `listed` policy refuses others (422 `sign_in_not_allowed`), self-service under `/me`, and
//! someone else's Extension needs `hotdesk.others` (403).

use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::json;
use switchboard_domain::store::location_sign_ins;
use switchboard_tests::{TestApp, both_databases};

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    signing_in_elsewhere_replaces_and_signing_out_is_idempotent,
    a_listed_location_refuses_others_and_members_only_sign_in_themselves,
);

async fn signing_in_elsewhere_replaces_and_signing_out_is_idempotent(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "si1.example.net").await;
    let email = "ada@si1.example.net";
    let user = create_user(&app, &admin, &domain, email, &["member"]).await;
    let member = token_of(&app, email).await;
    let ext = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Ada", "user_id": user}),
        )
        .await,
    );
    let a = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Office A"}),
        )
        .await,
    );
    let b = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Office B"}),
        )
        .await,
    );
    let path = format!("/api/v1/domains/{domain}/extensions/{ext}/location");
    let (status, s) = call(
        &app,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"location_id": a})),
    )
    .await;
    assert_eq!((status, &s["location_id"]), (200, &json!(a)), "{s}");
    let (status, s) = call(
        &app,
        &member,
        Method::PUT,
        "/api/v1/me/location",
        Some(json!({"domain_id": domain, "location_id": b})),
    )
    .await;
    assert_eq!((status, &s["location_id"]), (200, &json!(b)), "{s}");
    let rows = location_sign_ins::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].location_id.to_string(), b);
    let (status, _) = call(
        &app,
        &member,
        Method::DELETE,
        &format!("/api/v1/me/location?domain_id={domain}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(
        location_sign_ins::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty()
    );
    let (status, body) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?limit=100"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "location.sign_in").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "location.sign_out")
            .count(),
        1,
        "{actions:?}"
    );
}

async fn a_listed_location_refuses_others_and_members_only_sign_in_themselves(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "si2.example.net").await;
    let email = "bob@si2.example.net";
    let user = create_user(&app, &admin, &domain, email, &["member"]).await;
    let member = token_of(&app, email).await;
    let own = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Bob", "user_id": user}),
        )
        .await,
    );
    let other = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "202", "display_name": "Eve"}),
        )
        .await,
    );
    let listed = id_of(&create(&app, &admin, &domain, "locations",
        json!({"name": "Boardroom", "sign_in_policy": "listed", "allowed_extension_ids": [other]})).await);
    let open = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Open space"}),
        )
        .await,
    );
    let (status, p) = call(
        &app,
        &member,
        Method::PUT,
        "/api/v1/me/location",
        Some(json!({"domain_id": domain, "location_id": listed})),
    )
    .await;
    assert_eq!(
        (status, &p["errors"][0]["code"]),
        (422, &json!("sign_in_not_allowed")),
        "{p}"
    );
    let (status, p) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/extensions/{other}/location"),
        Some(json!({"location_id": listed})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    // A member may not sign someone else's Extension in.
    let (status, p) = call(
        &app,
        &member,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/extensions/{other}/location"),
        Some(json!({"location_id": open})),
    )
    .await;
    assert_eq!(status, 403, "{p}");
    let (status, p) = call(
        &app,
        &member,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/extensions/{own}/location"),
        Some(json!({"location_id": open})),
    )
    .await;
    assert_eq!(status, 200, "{p}");
}
