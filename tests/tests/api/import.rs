//! Bulk import: 10 000 rows in one request, all or nothing, dry runs, CSV and JSON alike,
//! duplicates and collisions reported per row, references by number and name, permissions and
//! tenant isolation, and `switchboard import` on a SQLite file.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::events::ChangeKind;
use switchboard_domain::store::{audit_log, devices, extensions};
use switchboard_tests::{
    Backend, TEST_ENCRYPTION_KEY, TestApp, both_databases, switchboard_binary,
};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, extension, id_of};
use crate::users::{call, create_user, token_of};

both_databases!(
    ten_thousand_extensions_and_devices_import_in_one_request,
    one_bad_row_writes_nothing_and_the_report_names_its_row_and_field,
    a_dry_run_reports_and_writes_nothing,
    csv_and_json_files_import_the_same_rows,
    duplicates_inside_the_file_are_reported_on_the_later_rows,
    collisions_with_existing_numbers_users_and_mac_addresses_are_error_rows,
    devices_name_extensions_by_number_and_locations_by_name,
    a_member_gets_403_another_domains_admin_404_and_bad_files_their_problem,
    a_body_over_max_import_bytes_is_a_413 with |c| c.http.max_import_bytes = 2048,
);

/// The import path of a Domain, with an optional query.
fn import_path(domain: &str, query: &str) -> String {
    format!("/api/v1/domains/{domain}/import{query}")
}

/// POSTs a JSON import and returns the status and body.
async fn import_json(app: &TestApp, token: &str, domain: &str, body: &Value) -> (u16, Value) {
    call(
        app,
        token,
        Method::POST,
        &import_path(domain, ""),
        Some(body.clone()),
    )
    .await
}

/// POSTs a CSV import (`query` like `?dry_run=true`) and returns the status and body.
async fn import_csv(
    app: &TestApp,
    token: &str,
    domain: &str,
    query: &str,
    csv: &str,
) -> (u16, Value) {
    let response = app
        .request(Method::POST, &import_path(domain, query))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("sending the import");
    let status = response.status().as_u16();
    let text = response.text().await.expect("reading the body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// `(row, kind, field, code)` of every error of a report or problem.
fn errors(report: &Value) -> Vec<(u64, String, String, String)> {
    report["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list in {report}"))
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["kind"].as_str().unwrap_or("?").to_owned(),
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn error(row: u64, kind: &str, field: &str, code: &str) -> (u64, String, String, String) {
    (row, kind.to_owned(), field.to_owned(), code.to_owned())
}

/// Extensions and Devices stored in the Domain.
async fn stored(app: &TestApp, domain: &str) -> (u64, u64) {
    let id = Uuid::parse_str(domain).unwrap();
    let e = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(id))
        .count(&app.db)
        .await
        .unwrap();
    let d = devices::Entity::find()
        .filter(devices::Column::DomainId.eq(id))
        .count(&app.db)
        .await
        .unwrap();
    (e, d)
}

/// A unicast MAC address made from `i`.
fn mac(i: usize) -> String {
    format!(
        "00:15:65:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

async fn ten_thousand_extensions_and_devices_import_in_one_request(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "bulk.pbx.test").await;
    let mut events = app.events.subscribe();
    let extensions: Vec<Value> = (0..5_000)
        .map(
            |i| json!({"number": format!("{}", 20_000 + i), "display_name": format!("Person {i}")}),
        )
        .collect();
    let devices: Vec<Value> = (0..5_000)
        .map(|i| {
            json!({
                "label": format!("Desk {i}"), "mac_address": mac(i), "vendor": "Yealink",
                "mode": "fixed", "owner_extension": format!("{}", 20_000 + i)
            })
        })
        .collect();
    let (status, report) = import_json(
        &app,
        &admin,
        &domain,
        &json!({"extensions": extensions, "devices": devices}),
    )
    .await;
    assert_eq!(
        status,
        201,
        "{}",
        &report.to_string()[..2000.min(report.to_string().len())]
    );
    assert_eq!(
        (&report["valid"], &report["imported"], &report["rows"]),
        (&json!(true), &json!(true), &json!(10_000))
    );
    assert_eq!(
        (&report["extensions"], &report["devices"]),
        (&json!(5_000), &json!(5_000))
    );
    assert_eq!(stored(&app, &domain).await, (5_000, 5_000));

    // Device 4321 belongs to Extension 24321, found by number within the same file.
    let device = devices::Entity::find()
        .filter(devices::Column::MacAddress.eq(mac(4321).replace(':', "")))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the device");
    let owner = extensions::Entity::find_by_id(device.owner_extension_id.expect("an owner"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the owner");
    assert_eq!(owner.number, "24321");
    assert!(device.sip_username.starts_with('d') && device.sip_secret_encrypted.starts_with("v1."));

    // Every created row is audited as its single create would be, tied to the import's
    // summary entry; one event goes out for the whole import.
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::DomainId.eq(Uuid::parse_str(&domain).unwrap()))
        .filter(audit_log::Column::Action.is_in([
            "import.completed",
            "extension.create",
            "device.create",
        ]))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(entries.len(), 10_001);
    let summary: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "import.completed")
        .collect();
    assert_eq!(summary.len(), 1);
    let after = summary[0].after.clone().unwrap();
    assert_eq!(
        (&after["extensions"], &after["devices"]),
        (&json!(5_000), &json!(5_000))
    );
    let import_id = json!(summary[0].target_id.clone().unwrap());
    let created = |action: &str| {
        entries
            .iter()
            .filter(|e| e.action == action)
            .filter(|e| {
                e.after
                    .as_ref()
                    .is_some_and(|a| a["import_id"] == import_id)
            })
            .count()
    };
    assert_eq!(
        (created("extension.create"), created("device.create")),
        (5_000, 5_000)
    );
    let device_entry = entries
        .iter()
        .find(|e| e.target_id.as_deref() == Some(device.id.to_string().as_str()))
        .expect("the device's own entry");
    let text = device_entry.after.clone().unwrap().to_string();
    assert!(
        !text.contains(&device.sip_secret_encrypted),
        "no secret in the log"
    );
    let event = crate::devices::next_event(&mut events).await;
    assert_eq!(event.kind, ChangeKind::ImportCompleted);
    assert_eq!(event.sip_users.len(), 10_000);
    assert!(event.sip_users.contains(&"24321".to_owned()));
    assert!(event.sip_users.contains(&device.sip_username));
}

async fn one_bad_row_writes_nothing_and_the_report_names_its_row_and_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let extensions: Vec<Value> = (0..30)
        .map(|i| json!({"number": format!("{}", 200 + i), "display_name": format!("P{i}")}))
        .collect();
    let mut devices: Vec<Value> = (0..30)
        .map(|i| json!({"label": format!("Desk {i}"), "mac_address": mac(i)}))
        .collect();
    devices[11]["mac_address"] = json!("00:15:65:zz:00:01");
    let (status, problem) = import_json(
        &app,
        &admin,
        &domain,
        &json!({"extensions": extensions, "devices": devices}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(problem["status"], 422);
    assert_eq!(
        (&problem["valid"], &problem["imported"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(problem["rows"], 60);
    assert_eq!(
        errors(&problem),
        vec![error(12, "device", "mac_address", "invalid_mac")]
    );
    assert_eq!(
        stored(&app, &domain).await,
        (0, 0),
        "nothing may be written"
    );

    // The same in CSV: the row is the file's line (header = line 1).
    let mut csv = String::from("kind,number,display_name,label,mac_address\n");
    for i in 0..5 {
        csv.push_str(&format!("extension,{},P{i},,\n", 300 + i));
    }
    csv.push_str("extension,3x1,Bad,,\n");
    let (status, problem) = import_csv(&app, &admin, &domain, "", &csv).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![error(7, "extension", "number", "invalid_number")]
    );
    assert_eq!(stored(&app, &domain).await, (0, 0));
}

async fn a_dry_run_reports_and_writes_nothing(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let good = json!({
        "extensions": [{"number": "201", "display_name": "Ada", "pin": "2580"}],
        "devices": [{"label": "Desk", "mode": "fixed", "owner_extension": "201"}],
        "dry_run": true
    });
    let (status, report) = import_json(&app, &admin, &domain, &good).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["valid"],
            &report["dry_run"],
            &report["imported"],
            &report["rows"]
        ),
        (&json!(true), &json!(true), &json!(false), &json!(2))
    );
    assert_eq!(errors(&report), vec![]);
    assert_eq!(stored(&app, &domain).await, (0, 0));

    // An invalid file on a dry run is still a 200: the report is the answer asked for.
    let csv = "kind,number,display_name,pin\nextension,201,Ada,1234\nextension,202,,\n";
    let (status, report) = import_csv(&app, &admin, &domain, "?dry_run=true", csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["valid"], false);
    assert_eq!(
        errors(&report),
        vec![
            error(2, "extension", "pin", "trivial_pin"),
            error(3, "extension", "display_name", "required"),
        ]
    );
    assert_eq!(stored(&app, &domain).await, (0, 0));
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("import.completed"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(audit, 0, "a dry run is not audited as an import");
}

/// An Extension or Device as the API shows it, without what differs between two imports.
fn comparable(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        for key in [
            "id",
            "domain_id",
            "created_at",
            "updated_at",
            "sip_username",
            "owner_extension_id",
        ] {
            map.remove(key);
        }
    }
    v
}

/// The Domain's Extensions or Devices as [`comparable`] values, sorted by `key`.
async fn list(app: &TestApp, token: &str, domain: &str, what: &str, key: &str) -> Vec<Value> {
    let (status, page) = call(
        app,
        token,
        Method::GET,
        &format!("/api/v1/domains/{domain}/{what}?limit=500"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let mut items: Vec<Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(comparable)
        .collect();
    items.sort_by_key(|v| v[key].as_str().unwrap_or_default().to_owned());
    items
}

async fn csv_and_json_files_import_the_same_rows(app: TestApp) {
    let (from_json, admin) = domain_with_admin(&app, "json.pbx.test").await;
    let from_csv = crate::users::create_domain(&app, &admin, "csv.pbx.test").await;
    let json_file = json!({
        "extensions": [
            {"number": "201", "display_name": "Ada Lovelace", "pin": "2580",
             "outbound_caller_id_number": "+49 30 123456", "voicemail_enabled": false,
             "forwarding": {"busy": {"enabled": true, "destination": "+4930999"}},
             "recording": {"inbound": "always"}, "toll_allow": ["local", "international"],
             "sip_registration": {"enabled": true, "max_registrations": 2}},
            {"number": "202", "display_name": "Reception", "ring_timeout_secs": 45, "dnd": true,
             "call_group": "Sales"}
        ],
        "devices": [
            {"label": "Ada's desk", "mac_address": "00-15-65-AB-CD-EF", "vendor": "Yealink",
             "model": "T54W", "mode": "fixed", "owner_extension": "201"},
            {"label": "Hot desk", "auto_logout": "after_hours", "auto_logout_hours": 10,
             "emergency_caller_id_number": "+4930112"}
        ]
    });
    let (status, report) = import_json(&app, &admin, &from_json, &json_file).await;
    assert_eq!(status, 201, "{report}");

    let csv = "\
kind;number;display_name;pin;outbound_caller_id_number;voicemail_enabled;forwarding.busy.enabled;forwarding.busy.destination;recording.inbound;toll_allow;sip_registration.enabled;sip_registration.max_registrations;ring_timeout_secs;dnd;call_group;label;mac_address;vendor;model;mode;owner_extension;auto_logout;auto_logout_hours;emergency_caller_id_number
extension;201;Ada Lovelace;2580;+49 30 123456;no;yes;+4930999;always;local,international;true;2;;;;;;;;;;;;
extension;202;Reception;;;;;;;;;;45;1;Sales;;;;;;;;;
device;;;;;;;;;;;;;;;Ada's desk;00-15-65-AB-CD-EF;Yealink;T54W;fixed;201;;;
device;;;;;;;;;;;;;;;Hot desk;;;;;;after_hours;10;+4930112
";
    // The MAC address is unique platform-wide: give the CSV's device its own.
    let csv = csv.replace("00-15-65-AB-CD-EF", "00-15-65-AB-CD-EE");
    let (status, report) = import_csv(&app, &admin, &from_csv, "", &csv).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        (&report["extensions"], &report["devices"]),
        (&json!(2), &json!(2))
    );

    let json_exts = list(&app, &admin, &from_json, "extensions", "number").await;
    let csv_exts = list(&app, &admin, &from_csv, "extensions", "number").await;
    assert_eq!(json_exts, csv_exts);
    assert_eq!(json_exts[0]["pin_set"], true);
    assert_eq!(json_exts[0]["outbound_caller_id_number"], "+4930123456");
    let mut json_devs = list(&app, &admin, &from_json, "devices", "label").await;
    let mut csv_devs = list(&app, &admin, &from_csv, "devices", "label").await;
    assert_eq!(
        json_devs[0]["mac_address"], "00:15:65:ab:cd:ef",
        "{json_devs:?}"
    );
    for d in json_devs.iter_mut().chain(csv_devs.iter_mut()) {
        d.as_object_mut().unwrap().remove("mac_address");
    }
    assert_eq!(json_devs, csv_devs);

    // The imported Extension registers directly with a generated, readable secret.
    let id = extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(Uuid::parse_str(&from_csv).unwrap()))
        .filter(extensions::Column::Number.eq("201"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let (status, secret) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{from_csv}/extensions/{id}/sip-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["sip_secret"].as_str().unwrap().len(), 24);
}

async fn duplicates_inside_the_file_are_reported_on_the_later_rows(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let user = create_user(&app, &admin, &domain, "ada@acme.test", &["member"]).await;
    let file = json!({
        "extensions": [
            {"number": "201", "display_name": "A", "user_id": user},
            {"number": "202", "display_name": "B"},
            {"number": " 201 ", "display_name": "C"},
            {"number": "203", "display_name": "D", "user_id": user}
        ],
        "devices": [
            {"label": "One", "mac_address": "00:15:65:00:00:01"},
            {"label": "Two", "mac_address": "001565000001"},
            {"label": "Three", "mac_address": "00:15:65:00:00:03"}
        ]
    });
    let (status, problem) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(2, "device", "mac_address", "duplicate_in_file"),
            error(3, "extension", "number", "duplicate_in_file"),
            error(4, "extension", "user_id", "duplicate_in_file"),
        ]
    );
    let first = &problem["errors"][0]["message"];
    assert!(first.as_str().unwrap().contains("row 1"), "{first}");
    assert_eq!(stored(&app, &domain).await, (0, 0));
}

async fn collisions_with_existing_numbers_users_and_mac_addresses_are_error_rows(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = crate::users::create_domain(&app, &admin, "other.pbx.test").await;
    extension(&app, &admin, &domain, "201", false).await;
    create(
        &app,
        &admin,
        &other,
        "devices",
        json!({"label": "Elsewhere", "mac_address": "00:15:65:00:00:09"}),
    )
    .await;
    let linked = create_user(&app, &admin, &domain, "ada@acme.test", &["member"]).await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "210", "display_name": "Ada", "user_id": linked}),
    )
    .await;
    let outsider = create_user(&app, &admin, &other, "bob@other.test", &["member"]).await;
    let file = json!({
        "extensions": [
            {"number": "201", "display_name": "Taken"},
            {"number": "202", "display_name": "Free"},
            {"number": "203", "display_name": "Linked twice", "user_id": linked},
            {"number": "204", "display_name": "Not a member", "user_id": outsider}
        ],
        "devices": [
            {"label": "Taken MAC", "mac_address": "00-15-65-00-00-09"},
            {"label": "Owner nowhere", "mode": "fixed", "owner_extension": "299"},
            {"label": "Other Domain's owner", "mode": "fixed", "owner_extension_id": Uuid::now_v7()}
        ]
    });
    let (status, problem) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(1, "extension", "number", "already_exists"),
            error(1, "device", "mac_address", "already_exists"),
            error(2, "device", "owner_extension", "not_found"),
            error(3, "extension", "user_id", "already_exists"),
            error(3, "device", "owner_extension_id", "not_found"),
            error(4, "extension", "user_id", "not_found"),
        ]
    );
    assert_eq!(
        stored(&app, &domain).await,
        (2, 0),
        "only the two made before"
    );
}

async fn devices_name_extensions_by_number_and_locations_by_name(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let stored_owner = extension(&app, &admin, &domain, "301", false).await;
    let location = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "locations",
            json!({"name": "Berlin 2F"}),
        )
        .await,
    );
    create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Already there", "location_id": location}),
    )
    .await;
    let csv = "\
kind,number,display_name,placeholder,hotdesk_allowed,pin,label,mode,owner_extension,logged_out_mode,placeholder_extension,location
extension,201,Ada,,,2580,,,,,,
extension,299,Logged out,true,false,,,,,,,
device,,,,,,Ada's desk,fixed,201,,,
device,,,,,,Stored owner's desk,fixed,301,,,
device,,,,,,Hot desk 1,,,placeholder,299,Berlin 2F
device,,,,,,Hot desk 2,,,,,Berlin 2F
device,,,,,,Placeholder owns nothing,fixed,299,,,
";
    let (status, problem) = import_csv(&app, &admin, &domain, "", csv).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![error(8, "device", "owner_extension", "is_placeholder")]
    );
    let csv: String = csv.lines().take(7).map(|l| format!("{l}\n")).collect();
    let (status, report) = import_csv(&app, &admin, &domain, "", &csv).await;
    assert_eq!(status, 201, "{report}");

    let by_label = |label: &'static str| {
        let db = app.db.clone();
        async move {
            devices::Entity::find()
                .filter(devices::Column::Label.eq(label))
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let number_of = |id: Option<Uuid>| {
        let db = app.db.clone();
        async move {
            extensions::Entity::find_by_id(id.unwrap())
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .number
        }
    };
    assert_eq!(
        number_of(by_label("Ada's desk").await.owner_extension_id).await,
        "201"
    );
    assert_eq!(
        by_label("Stored owner's desk").await.owner_extension_id,
        Some(Uuid::parse_str(&stored_owner).unwrap())
    );
    let hot1 = by_label("Hot desk 1").await;
    assert_eq!(number_of(hot1.placeholder_extension_id).await, "299");
    assert_eq!(hot1.location_id, Some(Uuid::parse_str(&location).unwrap()));
    // Devices joining a Location without a position go to its end, in file order.
    assert_eq!(hot1.location_position, 1);
    assert_eq!(by_label("Hot desk 2").await.location_position, 2);
    let (status, ada) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/extensions?q=201"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ada["items"][0]["pin_set"], true, "{ada}");
}

async fn a_member_gets_403_another_domains_admin_404_and_bad_files_their_problem(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = crate::users::create_domain(&app, &admin, "other.pbx.test").await;
    create_user(&app, &admin, &domain, "member@acme.test", &["member"]).await;
    create_user(&app, &admin, &other, "boss@other.test", &["domain_admin"]).await;
    let member = token_of(&app, "member@acme.test").await;
    let stranger = token_of(&app, "boss@other.test").await;
    let file = json!({"extensions": [{"number": "201", "display_name": "Ada"}]});

    let (status, problem) = import_json(&app, &member, &domain, &file).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );
    let (status, problem) = import_json(&app, &stranger, &domain, &file).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("not_found")),
        "{problem}"
    );
    let (status, _) = import_csv(&app, &stranger, &domain, "", "kind,number\n").await;
    assert_eq!(status, 404);
    assert_eq!(stored(&app, &domain).await, (0, 0));

    let response = app
        .post_raw(&import_path(&domain, ""), "text/plain", "kind,number\n")
        .await;
    assert_eq!(response.status(), 401);
    let response = app
        .request(Method::POST, &import_path(&domain, ""))
        .bearer_auth(&admin)
        .header(CONTENT_TYPE, "text/plain")
        .body("kind,number\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let (status, problem) =
        import_csv(&app, &admin, &domain, "", "kind,colour\nextension,red\n").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "colour");
    assert_eq!(problem["errors"][0]["code"], "unknown_column");
    let (status, problem) = import_csv(&app, &admin, &domain, "", "kind,number\n").await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "empty", "{problem}");
    let (status, problem) =
        import_csv(&app, &admin, &domain, "", "kind,number\n\"unterminated\n").await;
    assert!(status == 400 || status == 422, "{status} {problem}");
    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        &import_path(&domain, ""),
        Some(json!({"extensions": [], "colour": "red"})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "colour");
}

async fn a_body_over_max_import_bytes_is_a_413(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let extensions: Vec<Value> = (0..100)
        .map(|i| json!({"number": format!("{}", 200 + i), "display_name": "Someone"}))
        .collect();
    let (status, problem) =
        import_json(&app, &admin, &domain, &json!({"extensions": extensions})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (413, Some("payload_too_large")),
        "{problem}"
    );
    assert_eq!(stored(&app, &domain).await, (0, 0));
}

/// Runs `switchboard import` against `database_url` with the test encryption key.
fn switchboard_import(database_url: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(switchboard_binary());
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("SWITCHBOARD_")
        {
            command.env_remove(key);
        }
    }
    let output = command
        .arg("import")
        .args(args)
        .env_remove("RUST_LOG")
        .env("SWITCHBOARD_LOG__LEVEL", "warn")
        .env("SWITCHBOARD_DATABASE_URL", database_url)
        .env("SWITCHBOARD_SECRETS__ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
        .stdin(Stdio::null())
        .output()
        .expect("running switchboard import");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_a_file_into_a_sqlite_database_as_the_cli_actor() {
    let app = switchboard_tests::spawn_app(Backend::Sqlite).await;
    let (domain, admin) = domain_with_admin(&app, "cli.pbx.test").await;
    let dir = std::env::temp_dir().join(format!("switchboard-import-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("phones.csv");
    std::fs::write(
        &good,
        "kind,number,display_name,pin,label,mode,owner_extension\n\
         extension,201,Ada,2580,,,\n\
         extension,202,Bob,,,,\n\
         device,,,,Ada's desk,fixed,201\n",
    )
    .unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        json!({"extensions": [{"number": "201", "display_name": "Ada"}, {"number": "20x", "display_name": "Bad"}]})
            .to_string(),
    )
    .unwrap();
    let url = app.database_url.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            switchboard_import(&url, &args)
        })
    };
    let path = |p: &std::path::Path| p.display().to_string();

    // A bad file: exit 1, the report on stdout naming the row and field, nothing written.
    let (code, stdout, stderr) = run(vec![path(&bad), "--domain".into(), "CLI.pbx.test".into()])
        .await
        .unwrap();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        errors(&report),
        vec![error(2, "extension", "number", "invalid_number")]
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    // A dry run of the good file: exit 0, nothing written.
    let (code, stdout, stderr) = run(vec![
        path(&good),
        "--domain".into(),
        "cli.pbx.test".into(),
        "--dry-run".into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stored(&app, &domain).await, (0, 0));

    // The import itself.
    let (code, stdout, stderr) = run(vec![path(&good), "--domain".into(), "cli.pbx.test".into()])
        .await
        .unwrap();
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("imported 3 row(s)"), "{stderr}");
    assert_eq!(stored(&app, &domain).await, (2, 1));
    let (status, audit) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/audit?action=import.completed"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["items"][0]["actor"]["label"], "cli", "{audit}");

    // An unknown Domain and an unknown format are clear errors.
    let (code, _, stderr) = run(vec![path(&good), "--domain".into(), "nowhere.test".into()])
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("no Domain"), "{stderr}");
    let (code, _, stderr) = run(vec![
        "phones.txt".into(),
        "--domain".into(),
        "cli.pbx.test".into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("--format"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
