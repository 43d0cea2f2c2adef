//! Extensions: lifecycle, validation, uniqueness races, secrets kept secret, tenant isolation.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::store::{audit_log, extensions};
use switchboard_tests::{TestApp, both_databases};
use uuid::Uuid;

use crate::users::{call, create_domain, create_user, token_of};

async fn domain_with_admin(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let domain = create_domain(app, &admin, "acme.pbx.test").await;
    (domain, admin)
}

async fn create_extension(app: &TestApp, token: &str, domain: &str, body: Value) -> Value {
    let (status, body) = call(
        app,
        token,
        Method::POST,
        &format!("/api/v1/domains/{domain}/extensions"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

both_databases!(
    an_extension_is_created_read_listed_changed_and_deleted,
    bad_extension_input_is_a_422_naming_every_field,
    ten_concurrent_creates_of_one_number_give_one_201_and_nine_409s,
    the_sip_secret_is_only_readable_with_secrets_read_and_every_read_is_audited,
    another_domains_admin_gets_the_same_404_on_every_extension_endpoint,
    calling_settings_have_defaults_and_are_validated_as_a_whole,
    a_person_with_phones_cannot_become_a_placeholder_and_null_cannot_clear_required_fields,
    a_domain_can_ask_for_longer_pins,
);

async fn an_extension_is_created_read_listed_changed_and_deleted(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let base = format!("/api/v1/domains/{domain}/extensions");
    let created = create_extension(
        &app,
        &admin,
        &domain,
        json!({
            "number": "201", "display_name": "Ada Lovelace", "pin": "2580739164",
            "outbound_caller_id_number": "+49 30 123456",
            "forwarding": {"busy": {"enabled": true, "destination": "+4930999"}},
            "toll_allow": ["Local", "international"], "call_group": "Sales"
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["outbound_caller_id_number"], "+4930123456");
    assert_eq!(created["pin_set"], true);
    assert_eq!(
        created["forwarding"]["busy"],
        json!({"enabled": true, "destination": "+4930999"})
    );
    assert_eq!(created["toll_allow"], json!(["local", "international"]));
    assert_eq!(created["call_group"], "sales");
    assert_eq!(
        created["recording"],
        json!({"inbound": "never", "outbound": "never"})
    );
    assert!(created.get("pin").is_none() && created.get("pin_hash").is_none());

    // The PIN is stored as an argon2id hash, never in clear.
    let row = extensions::Entity::find_by_id(Uuid::parse_str(&id).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.pin_hash
            .as_deref()
            .unwrap_or_default()
            .starts_with("$argon2id$")
    );

    create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "202", "display_name": "Grace Hopper"}),
    )
    .await;
    let (status, page) = call(&app, &admin, Method::GET, &format!("{base}?q=gra"), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["number"], "202");
    let (_, page) = call(&app, &admin, Method::GET, &format!("{base}?limit=1"), None).await;
    assert_eq!(page["items"][0]["number"], "201");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(page["items"][0]["number"], "202");
    assert_eq!(page["next_cursor"], Value::Null);

    let (status, changed) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{base}/{id}"),
        Some(json!({"dnd": true, "outbound_caller_id_number": null, "forwarding": {"busy": {"enabled": false}}, "pin": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["dnd"], true);
    assert_eq!(changed["outbound_caller_id_number"], Value::Null);
    assert_eq!(
        changed["forwarding"]["busy"],
        json!({"enabled": false, "destination": "+4930999"})
    );
    assert_eq!(changed["pin_set"], false);
    assert_eq!(
        changed["display_name"], "Ada Lovelace",
        "omitted fields stay"
    );

    let (status, _) = call(&app, &admin, Method::DELETE, &format!("{base}/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &format!("{base}/{id}"), None).await;
    assert_eq!(status, 404);
    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=extension.*"),
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
            "extension.delete",
            "extension.update",
            "extension.create",
            "extension.create"
        ]
    );
    assert!(
        !log.to_string().contains("2580739164"),
        "the PIN must not reach the audit log"
    );
}

async fn bad_extension_input_is_a_422_naming_every_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let path = format!("/api/v1/domains/{domain}/extensions");
    let table: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["number", "display_name"]),
        (
            json!({"number": "2x1", "display_name": "A"}),
            vec!["number"],
        ),
        (
            json!({"number": "911", "display_name": "A"}),
            vec!["number"],
        ),
        (
            json!({"number": "201", "display_name": ""}),
            vec!["display_name"],
        ),
        (
            json!({"number": "201", "display_name": "A", "outbound_caller_id_number": "030123"}),
            vec!["outbound_caller_id_number"],
        ),
        (
            json!({"number": "201", "display_name": "A", "pin": "1234"}),
            vec!["pin"],
        ),
        (
            json!({"number": "201", "display_name": "A", "pin": "201"}),
            vec!["pin"],
        ),
        (
            json!({"number": "201", "display_name": "A", "forwarding": {"always": {"enabled": true}}}),
            vec!["forwarding.always.destination"],
        ),
        (
            json!({"number": "201", "display_name": "A", "recording": {"inbound": "sometimes"}}),
            vec!["recording.inbound"],
        ),
        (
            json!({"number": "201", "display_name": "A", "ring_timeout_secs": 2}),
            vec!["ring_timeout_secs"],
        ),
        (
            json!({"number": "201", "display_name": "A", "placeholder": true}),
            vec!["hotdesk_allowed"],
        ),
        (
            json!({"number": "201", "display_name": "A", "user_id": Uuid::now_v7()}),
            vec!["user_id"],
        ),
        (
            json!({"number": "201", "display_name": "A", "colour": "red"}),
            vec!["colour"],
        ),
        (json!({"number": 201, "display_name": "A"}), vec!["number"]),
    ];
    for (body, fields) in table {
        let (status, problem) = call(&app, &admin, Method::POST, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body} → {problem}");
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    let (_, page) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(page["items"], json!([]), "nothing was written");
}

async fn ten_concurrent_creates_of_one_number_give_one_201_and_nine_409s(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let path = format!("/api/v1/domains/{domain}/extensions");
    let body = json!({"number": "300", "display_name": "Race"});
    let attempts = (0..10).map(|_| app.send_as(&admin, Method::POST, &path, Some(&body)));
    let statuses: Vec<u16> = futures_join(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
    let (status, problem) = call(&app, &admin, Method::POST, &path, Some(body)).await;
    assert_eq!(status, 409);
    assert_eq!(problem["errors"][0]["field"], "number");
}

async fn futures_join(
    requests: impl Iterator<Item = impl std::future::Future<Output = reqwest::Response>>,
) -> Vec<u16> {
    futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect()
}

async fn the_sip_secret_is_only_readable_with_secrets_read_and_every_read_is_audited(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    create_user(&app, &admin, &domain, "manager@acme.test", &["manager"]).await;
    let manager = token_of(&app, "manager@acme.test").await;
    let ext = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "201", "display_name": "Soft", "sip_registration": {"enabled": true}}),
    )
    .await;
    let id = ext["id"].as_str().unwrap();
    let base = format!("/api/v1/domains/{domain}/extensions/{id}");
    assert_eq!(
        ext["sip_registration"],
        json!({"enabled": true, "max_registrations": 3})
    );

    let (status, creds) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}/sip-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let secret = creds["sip_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 24);
    assert_eq!(creds["sip_username"], "201");
    assert_eq!(creds["realm"], "acme.pbx.test");

    // Nowhere else: not in reads, lists, the stored row, or the audit log.
    for path in [base.clone(), format!("/api/v1/domains/{domain}/extensions")] {
        let (_, body) = call(&app, &admin, Method::GET, &path, None).await;
        assert!(!body.to_string().contains(&secret), "{path}");
    }
    let row = extensions::Entity::find_by_id(Uuid::parse_str(id).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.sip_secret_encrypted
            .unwrap_or_default()
            .contains(&secret)
    );
    let audit = audit_log::Entity::find().all(&app.db).await.unwrap();
    assert!(audit.iter().all(|e| !format!("{e:?}").contains(&secret)));
    let reads = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("extension.read_secret"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(reads.len(), 1);

    let (status, _) = call(
        &app,
        &manager,
        Method::GET,
        &format!("{base}/sip-secret"),
        None,
    )
    .await;
    assert_eq!(status, 403, "a manager lacks secrets.read");

    let (status, _) = call(
        &app,
        &manager,
        Method::POST,
        &format!("{base}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 204, "a manager may rotate (extensions.write)");
    let (_, rotated) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{base}/sip-secret"),
        None,
    )
    .await;
    assert_ne!(rotated["sip_secret"].as_str().unwrap(), secret);

    let other = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "202", "display_name": "Desk"}),
    )
    .await;
    let other_id = other["id"].as_str().unwrap();
    let (status, problem) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/extensions/{other_id}/sip-secret"),
        None,
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("no_sip_registration"))
    );
}

async fn another_domains_admin_gets_the_same_404_on_every_extension_endpoint(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let other = create_domain(&app, &admin, "globex.pbx.test").await;
    create_user(&app, &admin, &other, "boss@globex.test", &["domain_admin"]).await;
    let intruder = token_of(&app, "boss@globex.test").await;
    let ext = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "201", "display_name": "A", "sip_registration": {"enabled": true}}),
    )
    .await;
    let id = ext["id"].as_str().unwrap();
    let random = Uuid::now_v7();
    let cases = [
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/extensions"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/extensions"),
            Some(json!({"number": "209", "display_name": "X"})),
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/extensions/{id}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/domains/{domain}/extensions/{id}"),
            Some(json!({"dnd": true})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/domains/{domain}/extensions/{id}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/domains/{domain}/extensions/{id}/rotate-secret"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/extensions/{id}/sip-secret"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/domains/{domain}/calling-settings"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/domains/{domain}/calling-settings"),
            Some(json!({"one_phone_at_a_time": false})),
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
    // An Extension id of another Domain, reached through one's own Domain, is also a 404.
    let (status, _) = call(
        &app,
        &intruder,
        Method::GET,
        &format!("/api/v1/domains/{other}/extensions/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

async fn calling_settings_have_defaults_and_are_validated_as_a_whole(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let path = format!("/api/v1/domains/{domain}/calling-settings");
    let (status, defaults) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(defaults["emergency_numbers"], json!(["911", "112", "999"]));
    assert_eq!(defaults["logged_out_mode"], "full");
    assert_eq!(defaults["one_phone_at_a_time"], true);
    assert_eq!(defaults["default_ring_timeout_secs"], 30);

    let table: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"logged_out_mode": "placeholder"}),
            vec!["placeholder_extension_id"],
        ),
        (
            json!({"logged_out_mode": "inherit"}),
            vec!["logged_out_mode"],
        ),
        (
            json!({"auto_logout": "after_hours"}),
            vec!["auto_logout_hours"],
        ),
        (
            json!({"auto_logout": "daily_at", "auto_logout_at": "25:00"}),
            vec!["auto_logout_at"],
        ),
        (json!({"emergency_numbers": []}), vec!["emergency_numbers"]),
        (
            json!({"emergency_numbers": ["9"]}),
            vec!["emergency_numbers"],
        ),
        (
            json!({"emergency_caller_id_number": "112"}),
            vec!["emergency_caller_id_number"],
        ),
        (
            json!({"default_ring_timeout_secs": 1, "pin_max_failures": 0, "pin_window_secs": 5}),
            vec![
                "default_ring_timeout_secs",
                "pin_max_failures",
                "pin_window_secs",
            ],
        ),
    ];
    for (body, fields) in table {
        let (status, problem) = call(&app, &admin, Method::PUT, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body} → {problem}");
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }

    let person = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "201", "display_name": "A"}),
    )
    .await;
    let (status, problem) = call(
        &app,
        &admin,
        Method::PUT,
        &path,
        Some(json!({"logged_out_mode": "placeholder", "placeholder_extension_id": person["id"]})),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("not_a_placeholder"))
    );

    let placeholder = create_extension(&app, &admin, &domain, json!({"number": "299", "display_name": "Lobby", "placeholder": true, "hotdesk_allowed": false})).await;
    let (status, saved) = call(
        &app,
        &admin,
        Method::PUT,
        &path,
        Some(json!({
            "logged_out_mode": "placeholder", "placeholder_extension_id": placeholder["id"],
            "auto_logout": "daily_at", "auto_logout_at": "02:30", "emergency_numbers": ["112", "110"],
            "emergency_caller_id_number": "+4930110"
        })),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["emergency_numbers"], json!(["112", "110"]));
    let (_, again) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(again["placeholder_extension_id"], placeholder["id"]);

    // A placeholder in use cannot stop being one, and cannot be deleted without force.
    let placeholder_path = format!(
        "/api/v1/domains/{domain}/extensions/{}",
        placeholder["id"].as_str().unwrap()
    );
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &placeholder_path,
        Some(json!({"placeholder": false})),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("in_use")));
    let (status, _) = call(&app, &admin, Method::DELETE, &placeholder_path, None).await;
    assert_eq!(status, 409);
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{placeholder_path}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, after) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        (
            after["logged_out_mode"].as_str(),
            &after["placeholder_extension_id"]
        ),
        (Some("full"), &Value::Null)
    );

    // The new emergency number is no longer available as an extension number.
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/extensions"),
        Some(json!({"number": "110", "display_name": "X"})),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("emergency_number"))
    );

    // A supervisor may read but not change the settings.
    create_user(&app, &admin, &domain, "sup@acme.test", &["supervisor"]).await;
    let sup = token_of(&app, "sup@acme.test").await;
    let (status, _) = call(&app, &sup, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        &sup,
        Method::PUT,
        &path,
        Some(json!({"one_phone_at_a_time": false})),
    )
    .await;
    assert_eq!(status, 403);
}

async fn a_person_with_phones_cannot_become_a_placeholder_and_null_cannot_clear_required_fields(
    app: TestApp,
) {
    let (domain, admin) = domain_with_admin(&app).await;
    let ext = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "201", "display_name": "Ada"}),
    )
    .await;
    let id = ext["id"].as_str().unwrap();
    let path = format!("/api/v1/domains/{domain}/extensions/{id}");
    let (status, device) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/devices"),
        Some(json!({"label": "Desk", "mode": "fixed", "owner_extension_id": id})),
    )
    .await;
    assert_eq!(status, 201, "{device}");
    let (status, problem) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"placeholder": true, "hotdesk_allowed": false})),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("in_use")),
        "{problem}"
    );

    for field in ["number", "display_name", "dnd", "toll_allow", "forwarding"] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::PATCH,
            &path,
            Some(json!({field: null})),
        )
        .await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field);
    }
    let (_, unchanged) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(
        (
            unchanged["number"].as_str(),
            unchanged["placeholder"].as_bool()
        ),
        (Some("201"), Some(false))
    );
}

async fn a_domain_can_ask_for_longer_pins(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app).await;
    let settings = format!("/api/v1/domains/{domain}/calling-settings");
    let (status, got) = call(&app, &admin, Method::GET, &settings, None).await;
    assert_eq!((status, &got["pin_min_length"]), (200, &json!(4)), "{got}");
    for bad in [3, 13] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::PUT,
            &settings,
            Some(json!({"pin_min_length": bad})),
        )
        .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "pin_min_length", "{problem}");
    }
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &settings,
        Some(json!({"pin_min_length": 6})),
    )
    .await;
    assert_eq!(
        (status, &body["pin_min_length"]),
        (200, &json!(6)),
        "{body}"
    );
    let base = format!("/api/v1/domains/{domain}/extensions");
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &base,
        Some(json!({"number": "201", "display_name": "Ada", "pin": "2580"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        (
            &problem["errors"][0]["field"],
            &problem["errors"][0]["code"]
        ),
        (&json!("pin"), &json!("pin_too_short")),
        "{problem}"
    );
    let created = create_extension(
        &app,
        &admin,
        &domain,
        json!({"number": "201", "display_name": "Ada", "pin": "258013"}),
    )
    .await;
    assert_eq!(created["pin_set"], true, "{created}");
}
