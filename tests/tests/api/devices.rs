//! Devices: lifecycle, validation and references, MAC uniqueness across Domains and under
//! concurrency, secrets kept secret, change events, tenant isolation.

use std::time::Duration;

use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use switchboard_domain::events::{ChangeEvent, ChangeKind};
use switchboard_domain::store::devices;
use switchboard_tests::{TestApp, both_databases};
use tokio::sync::broadcast::Receiver;
use uuid::Uuid;

use crate::users::{call, create_domain, create_user, token_of};

both_databases!(
    a_device_is_created_read_listed_changed_and_deleted,
    bad_device_input_is_a_422_naming_every_field,
    a_mac_address_is_unique_across_every_domain,
    ten_concurrent_creates_of_one_mac_give_one_201_and_nine_409s,
    the_sip_secret_is_only_readable_with_secrets_read_and_every_read_is_audited,
    changes_publish_refreshes_and_credential_changes_drop_registrations,
    another_domains_admin_gets_the_same_404_on_every_device_endpoint,
    the_database_itself_refuses_what_validation_refuses,
);

/// A Domain created by the platform administrator, and their token.
pub(crate) async fn domain_with_admin(app: &TestApp, sip_domain: &str) -> (String, String) {
    let admin = app.admin_token().await;
    let domain = create_domain(app, &admin, sip_domain).await;
    (domain, admin)
}

/// POSTs `body` to `…/domains/{domain}/{what}` and returns the created resource (201).
pub(crate) async fn create(
    app: &TestApp,
    token: &str,
    domain: &str,
    what: &str,
    body: Value,
) -> Value {
    let (status, created) = call(
        app,
        token,
        Method::POST,
        &format!("/api/v1/domains/{domain}/{what}"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "creating {what} {body}: {created}");
    created
}

/// Creates an Extension (a placeholder when asked) and returns its id.
pub(crate) async fn extension(
    app: &TestApp,
    token: &str,
    domain: &str,
    number: &str,
    placeholder: bool,
) -> String {
    let body = json!({
        "number": number, "display_name": format!("Ext {number}"),
        "placeholder": placeholder, "hotdesk_allowed": !placeholder,
    });
    id_of(&create(app, token, domain, "extensions", body).await)
}

pub(crate) fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn items(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_device_is_created_read_listed_changed_and_deleted(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let base = format!("/api/v1/domains/{domain}/devices");
    let owner = extension(&app, &admin, &domain, "201", false).await;
    let location = id_of(&create(&app, &admin, &domain, "locations", json!({"name": "HQ"})).await);

    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": " Reception 2F ", "mac_address": "00-15-65-AB-CD-EF", "vendor": "Yealink", "model": "T54W"}),
    )
    .await;
    let id = id_of(&desk);
    assert_eq!(desk["label"], "Reception 2F");
    assert_eq!(desk["mac_address"], "00:15:65:ab:cd:ef");
    assert_eq!(desk["mode"], "hotdesk", "hot-desk by default");
    assert_eq!(desk["logged_out_mode"], "inherit");
    assert_eq!(desk["auto_logout"], "inherit");
    assert_eq!(desk["enabled"], true);
    assert_eq!(desk["location_id"], Value::Null);
    assert_eq!(desk["location_position"], Value::Null);
    let username = desk["sip_username"].as_str().unwrap().to_owned();
    assert!(
        username.len() == 12 && username.starts_with('d'),
        "{username}"
    );
    for hidden in ["sip_secret", "sip_secret_encrypted", "secret"] {
        assert!(desk.get(hidden).is_none(), "{hidden} in {desk}");
    }
    // Stored normalised: 12 lower-case hex digits.
    let row = devices::Entity::find_by_id(Uuid::parse_str(&id).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.mac_address.as_deref(), Some("001565abcdef"));

    let soft = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Ada's softphone", "mode": "fixed", "owner_extension_id": owner,
               "location_id": location, "location_ring_timeout_secs": 20,
               "emergency_caller_id_number": "+1 (555) 010-0199"}),
    )
    .await;
    let soft_id = id_of(&soft);
    assert_eq!(soft["mac_address"], Value::Null);
    assert_eq!(soft["owner_extension_id"], owner.as_str());
    assert_eq!(soft["location_position"], 0, "first in the Location");
    assert_eq!(soft["emergency_caller_id_number"], "+15550100199");
    assert_ne!(soft["sip_username"], desk["sip_username"]);

    let list = |query: &str| {
        let path = format!("{base}{query}");
        let app = &app;
        let admin = &admin;
        async move {
            let (status, page) = call(app, admin, Method::GET, &path, None).await;
            assert_eq!(status, 200, "{path}: {page}");
            page
        }
    };
    assert_eq!(items(&list("").await), ["Reception 2F", "Ada's softphone"]);
    assert_eq!(items(&list("?q=RECEPTION").await), ["Reception 2F"]);
    assert_eq!(items(&list("?q=AB:CD").await), ["Reception 2F"]);
    assert_eq!(items(&list("?q=65ab.cd").await), ["Reception 2F"]);
    assert_eq!(
        items(&list(&format!("?q={username}")).await),
        ["Reception 2F"]
    );
    assert_eq!(items(&list("?mode=fixed").await), ["Ada's softphone"]);
    assert_eq!(
        items(&list(&format!("?owner_extension_id={owner}")).await),
        ["Ada's softphone"]
    );
    assert_eq!(
        items(&list(&format!("?location_id={location}")).await),
        ["Ada's softphone"]
    );
    let first = list("?limit=1").await;
    assert_eq!(items(&first), ["Reception 2F"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(items(&second), ["Ada's softphone"]);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, problem) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}?mode=shared"),
        None,
    )
    .await;
    assert_eq!((status, fields(&problem)), (422, vec!["mode".to_owned()]));

    // hotdesk → fixed needs an owner; with one it is accepted.
    let path = format!("{base}/{id}");
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"mode": "fixed"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(fields(&problem), ["owner_extension_id"]);
    assert_eq!(problem["errors"][0]["code"], "required");
    let (status, fixed) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"mode": "fixed", "owner_extension_id": owner, "location_id": location, "vendor": null})),
    )
    .await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(fixed["owner_extension_id"], owner.as_str());
    assert_eq!(
        fixed["location_position"], 1,
        "joins at the end of the Location"
    );
    assert_eq!(fixed["vendor"], Value::Null);
    assert_eq!(fixed["model"], "T54W", "omitted fields stay");
    assert_eq!(
        fixed["sip_username"],
        username.as_str(),
        "the identity stays"
    );

    // fixed → hotdesk clears the owner; leaving the Location clears position and timeout.
    let (status, hotdesk) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{base}/{soft_id}"),
        Some(
            json!({"mode": "hotdesk", "location_id": null, "logged_out_mode": "full",
                    "auto_logout": "daily_at", "auto_logout_at": "02:30"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{hotdesk}");
    assert_eq!(hotdesk["owner_extension_id"], Value::Null);
    assert_eq!(hotdesk["location_id"], Value::Null);
    assert_eq!(hotdesk["location_position"], Value::Null);
    assert_eq!(hotdesk["location_ring_timeout_secs"], Value::Null);
    assert_eq!(
        (&hotdesk["auto_logout"], &hotdesk["auto_logout_at"]),
        (&json!("daily_at"), &json!("02:30"))
    );

    let (status, _) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, &admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);

    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=device.*"),
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
            "device.delete",
            "device.update",
            "device.update",
            "device.create",
            "device.create"
        ]
    );
}

async fn bad_device_input_is_a_422_naming_every_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    let person = extension(&app, &admin, &domain, "201", false).await;
    let placeholder = extension(&app, &admin, &domain, "900", true).await;
    let foreign = extension(&app, &admin, &other, "201", false).await;
    let foreign_placeholder = extension(&app, &admin, &other, "900", true).await;
    let foreign_location = id_of(
        &create(
            &app,
            &admin,
            &other,
            "locations",
            json!({"name": "Elsewhere"}),
        )
        .await,
    );
    let path = format!("/api/v1/domains/{domain}/devices");

    let l = |extra: Value| {
        let mut body = json!({"label": "Desk"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let table: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (json!({}), vec![("label", "required")]),
        (json!({"label": " "}), vec![("label", "invalid_label")]),
        (
            l(json!({"mac_address": "00:15:65:ab:cd"})),
            vec![("mac_address", "invalid_mac")],
        ),
        (
            l(json!({"mac_address": "gg:15:65:ab:cd:ef"})),
            vec![("mac_address", "invalid_mac")],
        ),
        (
            l(json!({"mac_address": "ff:ff:ff:ff:ff:ff"})),
            vec![("mac_address", "invalid_mac")],
        ),
        (
            l(json!({"mode": "shared"})),
            vec![("mode", "invalid_choice")],
        ),
        (
            l(json!({"mode": "fixed"})),
            vec![("owner_extension_id", "required")],
        ),
        (
            l(json!({"mode": "fixed", "owner_extension_id": foreign})),
            vec![("owner_extension_id", "not_found")],
        ),
        (
            l(json!({"mode": "fixed", "owner_extension_id": placeholder})),
            vec![("owner_extension_id", "is_placeholder")],
        ),
        (
            l(json!({"owner_extension_id": person})),
            vec![("owner_extension_id", "hotdesk_has_no_owner")],
        ),
        (
            l(json!({"logged_out_mode": "placeholder"})),
            vec![("placeholder_extension_id", "required")],
        ),
        (
            l(json!({"logged_out_mode": "placeholder", "placeholder_extension_id": person})),
            vec![("placeholder_extension_id", "not_a_placeholder")],
        ),
        (
            l(
                json!({"logged_out_mode": "placeholder", "placeholder_extension_id": foreign_placeholder}),
            ),
            vec![("placeholder_extension_id", "not_found")],
        ),
        (
            l(json!({"placeholder_extension_id": placeholder})),
            vec![("placeholder_extension_id", "placeholder_mode_only")],
        ),
        (
            l(json!({"mode": "fixed", "owner_extension_id": person, "logged_out_mode": "full"})),
            vec![("logged_out_mode", "hotdesk_only")],
        ),
        (
            l(json!({"mode": "fixed", "owner_extension_id": person, "auto_logout": "never"})),
            vec![("auto_logout", "hotdesk_only")],
        ),
        (
            l(json!({"location_id": foreign_location})),
            vec![("location_id", "not_found")],
        ),
        (
            l(json!({"location_ring_timeout_secs": 20})),
            vec![("location_ring_timeout_secs", "requires_location")],
        ),
        (
            l(json!({"location_position": 3})),
            vec![("location_position", "requires_location")],
        ),
        (
            l(json!({"auto_logout": "sometimes"})),
            vec![("auto_logout", "invalid_choice")],
        ),
        (
            l(json!({"auto_logout": "after_hours"})),
            vec![("auto_logout_hours", "out_of_range")],
        ),
        (
            l(json!({"auto_logout": "after_hours", "auto_logout_hours": 200})),
            vec![("auto_logout_hours", "out_of_range")],
        ),
        (
            l(json!({"auto_logout": "never", "auto_logout_hours": 8})),
            vec![("auto_logout_hours", "not_applicable")],
        ),
        (
            l(json!({"auto_logout": "daily_at"})),
            vec![("auto_logout_at", "required")],
        ),
        (
            l(json!({"auto_logout": "daily_at", "auto_logout_at": "24:00"})),
            vec![("auto_logout_at", "invalid_time")],
        ),
        (
            l(json!({"emergency_caller_id_number": "0301234"})),
            vec![("emergency_caller_id_number", "invalid_e164")],
        ),
        (
            l(json!({"vendor": "v".repeat(65)})),
            vec![("vendor", "invalid_text")],
        ),
        (
            l(json!({"sip_username": "mine"})),
            vec![("sip_username", "unknown_field")],
        ),
        (
            l(json!({"sip_secret": "letmein"})),
            vec![("sip_secret", "unknown_field")],
        ),
        (
            l(json!({"enabled": "yes"})),
            vec![("enabled", "invalid_type")],
        ),
        (json!({"label": null}), vec![("label", "invalid_type")]),
        (l(json!({"mode": null})), vec![("mode", "invalid_type")]),
        (
            json!({"label": "", "mac_address": "x", "mode": "fixed"}),
            vec![
                ("label", "invalid_label"),
                ("mac_address", "invalid_mac"),
                ("owner_extension_id", "required"),
            ],
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
        let fields_only: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        let expected_fields: Vec<&str> = expected.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields_only, expected_fields, "{body} → {problem}");
        // Extractor errors (unknown field, wrong type) have their own codes; domain rules
        // must give the documented ones.
        for ((_, got_code), (field, code)) in got.iter().zip(&expected) {
            if !matches!(*code, "unknown_field" | "invalid_type") {
                assert_eq!(got_code, code, "{field} in {body}");
            }
        }
    }

    // Changes are validated as a whole too.
    let desk = create(&app, &admin, &domain, "devices", json!({"label": "Desk"})).await;
    let desk_path = format!("{path}/{}", id_of(&desk));
    for (body, field) in [
        (json!({"mode": "fixed"}), "owner_extension_id"),
        (
            json!({"mode": "fixed", "owner_extension_id": foreign}),
            "owner_extension_id",
        ),
        (json!({"label": null}), "label"),
        (json!({"location_position": 1}), "location_position"),
    ] {
        let (status, problem) =
            call(&app, &admin, Method::PATCH, &desk_path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body} → {problem}");
        assert_eq!(fields(&problem), [field], "{body}");
    }

    let (_, page) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(items(&page), ["Desk"], "nothing else was written");
}

async fn a_mac_address_is_unique_across_every_domain(app: TestApp) {
    let (acme, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let globex = create_domain(&app, &admin, "globex.pbx.test").await;
    create_user(&app, &admin, &globex, "boss@globex.test", &["domain_admin"]).await;
    let boss = token_of(&app, "boss@globex.test").await;
    create(
        &app,
        &admin,
        &acme,
        "devices",
        json!({"label": "Acme desk", "mac_address": "00:15:65:AB:CD:EF"}),
    )
    .await;

    // Another Domain's admin, another notation: still the same phone.
    let path = format!("/api/v1/domains/{globex}/devices");
    let (status, problem) = call(
        &app,
        &boss,
        Method::POST,
        &path,
        Some(json!({"label": "Globex desk", "mac_address": "0015.65ab.cdef"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "already_exists");
    assert_eq!(fields(&problem), ["mac_address"]);
    assert!(
        !problem.to_string().contains(&acme),
        "the conflict does not reveal the other Domain: {problem}"
    );

    let mine = create(
        &app,
        &boss,
        &globex,
        "devices",
        json!({"label": "Globex desk", "mac_address": "00:15:65:ab:cd:00"}),
    )
    .await;
    let (status, problem) = call(
        &app,
        &boss,
        Method::PATCH,
        &format!("{path}/{}", id_of(&mine)),
        Some(json!({"mac_address": "001565abcdef"})),
    )
    .await;
    assert_eq!(
        (status, fields(&problem)),
        (409, vec!["mac_address".to_owned()])
    );

    // Softphones have none, and any number of them coexist.
    for label in ["Soft 1", "Soft 2"] {
        create(
            &app,
            &boss,
            &globex,
            "devices",
            json!({"label": label, "mac_address": null}),
        )
        .await;
    }
}

async fn ten_concurrent_creates_of_one_mac_give_one_201_and_nine_409s(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let path = format!("/api/v1/domains/{domain}/devices");
    let attempts = (0..10).map(|i| {
        let body = json!({"label": format!("Race {i}"), "mac_address": "00:15:65:12:34:56"});
        let app = &app;
        let admin = &admin;
        let path = &path;
        async move {
            app.send_as(admin, Method::POST, path, Some(&body))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "never a 500: {statuses:?}"
    );
    let (_, page) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

async fn the_sip_secret_is_only_readable_with_secrets_read_and_every_read_is_audited(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    create_user(&app, &admin, &domain, "manager@acme.test", &["manager"]).await;
    let manager = token_of(&app, "manager@acme.test").await;
    let device = create(
        &app,
        &manager,
        &domain,
        "devices",
        json!({"label": "Desk", "mac_address": "00:15:65:00:00:01"}),
    )
    .await;
    let id = id_of(&device);
    let base = format!("/api/v1/domains/{domain}/devices/{id}");

    let response = app
        .send_as(&admin, Method::GET, &format!("{base}/sip-secret"), None)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let creds: Value = response.json().await.unwrap();
    let secret = creds["sip_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 24, "a strong generated secret");
    assert_eq!(creds["sip_username"], device["sip_username"]);
    assert_eq!(creds["realm"], "acme.pbx.test");

    // A manager manages devices but may not read secrets.
    let (status, problem) = call(
        &app,
        &manager,
        Method::GET,
        &format!("{base}/sip-secret"),
        None,
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("secrets.read"));

    // The secret is nowhere else: reads, lists, the stored row, the audit log.
    let (_, one) = call(&app, &admin, Method::GET, &base, None).await;
    let (_, list) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/devices"),
        None,
    )
    .await;
    for body in [&one, &list] {
        let text = body.to_string();
        assert!(
            !text.contains(&secret) && !text.contains("sip_secret"),
            "{text}"
        );
    }
    let row = devices::Entity::find_by_id(Uuid::parse_str(&id).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(!row.sip_secret_encrypted.contains(&secret));

    // Rotating (devices.write: a manager may) gives a new secret.
    let (status, _) = call(
        &app,
        &manager,
        Method::POST,
        &format!("{base}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, rotated) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}/sip-secret"),
        None,
    )
    .await;
    let new_secret = rotated["sip_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        rotated["sip_username"], device["sip_username"],
        "same user name"
    );

    let (_, audit) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?limit=500"),
        None,
    )
    .await;
    let text = audit.to_string();
    for s in [&secret, &new_secret, &row.sip_secret_encrypted] {
        assert!(
            !text.contains(s.as_str()),
            "a secret or its ciphertext reached the audit log"
        );
    }
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.starts_with("device."))
        .collect();
    assert_eq!(
        actions,
        [
            "device.read_secret",
            "device.rotate_secret",
            "device.read_secret",
            "device.create"
        ],
        "every read is audited, the refused one is not"
    );
}

/// The next change event (within 5 s).
pub(crate) async fn next_event(events: &mut Receiver<std::sync::Arc<ChangeEvent>>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event")
        .expect("an open bus")
        .as_ref()
        .clone()
}

async fn changes_publish_refreshes_and_credential_changes_drop_registrations(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let owner = extension(&app, &admin, &domain, "201", false).await;
    let mut events = app.events.subscribe();
    let path = format!("/api/v1/domains/{domain}/devices");

    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        &path,
        Some(json!({"label": ""})),
    )
    .await;
    assert_eq!(status, 422);
    let device = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk", "mode": "fixed", "owner_extension_id": owner}),
    )
    .await;
    let user = device["sip_username"].as_str().unwrap().to_owned();
    let id = Uuid::parse_str(&id_of(&device)).unwrap();
    let created = next_event(&mut events).await;
    assert_eq!(
        created.kind,
        ChangeKind::DeviceCreated,
        "the refused create published nothing"
    );
    assert_eq!(created.entity_id, id);
    assert_eq!(created.sip_domain, "acme.pbx.test");
    assert_eq!(
        created.sip_users,
        [user.clone(), "201".to_owned()],
        "the device and its owner"
    );
    assert!(created.drop_registrations.is_empty());

    let dev = format!("{path}/{id}");
    call(
        &app,
        &admin,
        Method::PATCH,
        &dev,
        Some(json!({"label": "Desk 2"})),
    )
    .await;
    let updated = next_event(&mut events).await;
    assert_eq!(updated.kind, ChangeKind::DeviceUpdated);
    assert!(updated.sip_users.contains(&user));
    assert!(
        updated.drop_registrations.is_empty(),
        "a label change keeps registrations"
    );

    call(
        &app,
        &admin,
        Method::PATCH,
        &dev,
        Some(json!({"enabled": false})),
    )
    .await;
    let disabled = next_event(&mut events).await;
    assert_eq!(disabled.drop_registrations, [user.as_str()]);

    call(
        &app,
        &admin,
        Method::POST,
        &format!("{dev}/rotate-secret"),
        None,
    )
    .await;
    let rotated = next_event(&mut events).await;
    assert_eq!(rotated.kind, ChangeKind::DeviceUpdated);
    assert_eq!(rotated.drop_registrations, [user.as_str()]);

    call(&app, &admin, Method::DELETE, &dev, None).await;
    let deleted = next_event(&mut events).await;
    assert_eq!(deleted.kind, ChangeKind::DeviceDeleted);
    assert_eq!(deleted.drop_registrations, [user.as_str()]);
    assert!(
        deleted.sip_users.contains(&"201".to_owned()),
        "the owner's dial string changed"
    );
}

async fn another_domains_admin_gets_the_same_404_on_every_device_endpoint(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    create_user(&app, &admin, &other, "boss@globex.test", &["domain_admin"]).await;
    let intruder = token_of(&app, "boss@globex.test").await;
    let device = create(&app, &admin, &domain, "devices", json!({"label": "Desk"})).await;
    let id = id_of(&device);
    let random = Uuid::now_v7();
    let cases = [
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/devices"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/devices"),
            Some(json!({"label": "Mine now"})),
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/devices/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/domains/{domain}/devices/{id}"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/domains/{domain}/devices/{id}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/devices/{id}/rotate-secret"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/devices/{id}/sip-secret"),
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
    // The device's id through the intruder's own Domain is a 404 too, on every endpoint.
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::DELETE, ""),
        (Method::POST, "/rotate-secret"),
        (Method::GET, "/sip-secret"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"label": "x"}));
        let path = format!("/api/v1/domains/{other}/devices/{id}{suffix}");
        let (status, _) = call(&app, &intruder, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (_, still) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/devices/{id}"),
        None,
    )
    .await;
    assert_eq!(still["label"], "Desk", "untouched");
    assert_eq!(still["enabled"], true);
}

async fn the_database_itself_refuses_what_validation_refuses(app: TestApp) {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    let mine = Uuid::parse_str(&extension(&app, &admin, &domain, "201", false).await).unwrap();
    let theirs = Uuid::parse_str(&extension(&app, &admin, &other, "201", false).await).unwrap();
    let their_location = Uuid::parse_str(&id_of(
        &create(
            &app,
            &admin,
            &other,
            "locations",
            json!({"name": "Elsewhere"}),
        )
        .await,
    ))
    .unwrap();
    let existing = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk", "mac_address": "00:15:65:00:00:42"}),
    )
    .await;
    let template = devices::Entity::find_by_id(Uuid::parse_str(&id_of(&existing)).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();

    type Break = fn(&mut devices::Model, Uuid, Uuid, Uuid);
    let table: Vec<(&str, Break)> = vec![
        ("duplicate MAC", |_, _, _, _| {}),
        ("fixed without owner", |d, _, _, _| d.mode = "fixed".into()),
        ("hotdesk with owner", |d, mine, _, _| {
            d.owner_extension_id = Some(mine)
        }),
        ("unknown mode", |d, _, _, _| d.mode = "shared".into()),
        ("placeholder mode without placeholder", |d, _, _, _| {
            d.logged_out_mode = "placeholder".into()
        }),
        ("unknown auto-logout", |d, _, _, _| {
            d.auto_logout = "sometimes".into()
        }),
        ("owner of another Domain", |d, _, theirs, _| {
            d.mode = "fixed".into();
            d.owner_extension_id = Some(theirs);
        }),
        ("Location of another Domain", |d, _, _, location| {
            d.location_id = Some(location)
        }),
    ];
    for (case, break_it) in table {
        let mut row = template.clone();
        row.id = Uuid::now_v7();
        row.sip_username = format!("dtest{}", &row.id.simple().to_string()[20..]);
        if case != "duplicate MAC" {
            row.mac_address = None;
        }
        break_it(&mut row, mine, theirs, their_location);
        let inserted = devices::ActiveModel::from(row).insert(&app.db).await;
        assert!(inserted.is_err(), "the database accepted: {case}");
    }
    // The template itself, with a fresh identity, is fine: the refusals above are the rules.
    let mut row = template.clone();
    row.id = Uuid::now_v7();
    row.sip_username = "dtestvalid01".into();
    row.mac_address = None;
    assert!(row.into_active_model().insert(&app.db).await.is_ok());
}
