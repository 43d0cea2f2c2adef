//! Bulk import: 10 000 rows in one request, all or nothing, dry runs, CSV and JSON alike,
//! duplicates and collisions reported per row, references by number and name, Users with their
//! roles, Locations used by the Devices of the same file, hot-desk groups joined by the
//! Extensions of the same file, updates of matched records (only the fields given, reported per
//! row), concurrent imports, permissions and tenant isolation, and `switchboard import` through
//! a running server (and `--offline` on a SQLite file).

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::events::ChangeKind;
use switchboard_domain::store::{
    audit_log, devices, extension_groups, extensions, hotdesk_sessions, locations,
    role_assignments, users,
};
use switchboard_tests::{
    Backend, TEST_ENCRYPTION_KEY, TestApp, both_databases, switchboard_binary,
};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, extension, id_of, next_event};
use crate::users::{PASSWORD, call, create_user, token_of};

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
    users_are_imported_with_their_roles_and_an_unknown_role_names_its_field,
    locations_are_imported_and_used_by_the_devices_of_the_same_file,
    updates_by_number_mac_email_and_name_change_only_the_given_fields,
    on_existing_error_keeps_collisions_as_errors_and_update_refuses_what_a_patch_would,
    a_dry_run_with_updates_writes_nothing_and_reports_what_the_import_does,
    two_identical_update_imports_at_once_never_half_apply,
    an_update_ends_what_the_same_patch_would_end_and_tells_freeswitch,
    the_cli_imports_through_a_running_servers_api,
    groups_are_imported_with_a_placeholder_of_the_file_and_extensions_of_the_file_join_them,
    a_stored_group_matched_by_name_changes_only_the_given_fields,
    bad_group_rows_are_refused_naming_their_row_and_field,
    a_dry_run_with_groups_writes_nothing,
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
        (
            &after["created"]["extensions"],
            &after["created"]["devices"]
        ),
        (&json!(5_000), &json!(5_000))
    );
    assert_eq!(after["updated"]["extensions"], 0, "{after}");
    assert_eq!(
        (&report["totals"]["created"], &report["totals"]["updated"]),
        (&json!(10_000), &json!(0))
    );
    assert_eq!(report["results"].as_array().unwrap().len(), 10_000);
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

    // Each kind of row needs its own permission: a manager writes Extensions, not Users.
    create_user(&app, &admin, &domain, "manager@acme.test", &["manager"]).await;
    let manager = token_of(&app, "manager@acme.test").await;
    let with_users = json!({
        "extensions": [{"number": "201", "display_name": "Ada"}],
        "users": [{"email": "ada@acme.test", "display_name": "Ada", "roles": ["member"]}]
    });
    let (status, problem) = import_json(&app, &manager, &domain, &with_users).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("users.write"),
        "{problem}"
    );
    assert_eq!(stored(&app, &domain).await, (0, 0));
    let (status, report) = import_json(&app, &manager, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(stored(&app, &domain).await, (1, 0));

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

/// POSTs a JSON import with a query (`?on_existing=update`) and returns the status and body.
async fn import_json_with(
    app: &TestApp,
    token: &str,
    domain: &str,
    query: &str,
    body: &Value,
) -> (u16, Value) {
    call(
        app,
        token,
        Method::POST,
        &import_path(domain, query),
        Some(body.clone()),
    )
    .await
}

/// `(row, kind, key, action, changed)` of every result of a report.
fn results(report: &Value) -> Vec<(u64, String, String, String, Vec<String>)> {
    report["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {report}"))
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["kind"].as_str().unwrap().to_owned(),
                r["key"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["changed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn result(
    row: u64,
    kind: &str,
    key: &str,
    action: &str,
    changed: &[&str],
) -> (u64, String, String, String, Vec<String>) {
    (
        row,
        kind.to_owned(),
        key.to_owned(),
        action.to_owned(),
        changed.iter().map(|c| (*c).to_owned()).collect(),
    )
}

/// The Extension `number` of the Domain, as stored.
async fn stored_extension(app: &TestApp, domain: &str, number: &str) -> extensions::Model {
    extensions::Entity::find()
        .filter(extensions::Column::DomainId.eq(Uuid::parse_str(domain).unwrap()))
        .filter(extensions::Column::Number.eq(number))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no Extension {number}"))
}

/// The account with this email, as stored.
async fn stored_user(app: &TestApp, email: &str) -> Option<users::Model> {
    users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(&app.db)
        .await
        .unwrap()
}

/// The role keys the account holds in the Domain, sorted.
async fn role_keys_in(app: &TestApp, domain: &str, user: Uuid) -> Vec<String> {
    let mut keys: Vec<String> = role_assignments::Entity::find()
        .filter(role_assignments::Column::UserId.eq(user))
        .filter(role_assignments::Column::DomainId.eq(Uuid::parse_str(domain).unwrap()))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.role_key)
        .collect();
    keys.sort();
    keys
}

/// The audit entries of the Domain with this action.
async fn audited(app: &TestApp, domain: &str, action: &str) -> Vec<audit_log::Model> {
    audit_log::Entity::find()
        .filter(audit_log::Column::DomainId.eq(Uuid::parse_str(domain).unwrap()))
        .filter(audit_log::Column::Action.eq(action))
        .all(&app.db)
        .await
        .unwrap()
}

/// A custom role of the Domain; returns its key (its id).
async fn custom_role(app: &TestApp, token: &str, domain: &str, name: &str) -> String {
    let role = create(
        app,
        token,
        domain,
        "roles",
        json!({"name": name, "permissions": ["presence.read"]}),
    )
    .await;
    role["key"].as_str().expect("a key").to_owned()
}

async fn users_are_imported_with_their_roles_and_an_unknown_role_names_its_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let night = custom_role(&app, &admin, &domain, "Night shift").await;

    // A role that does not exist is an error of its row, naming the item; nothing is written.
    let bad = json!({
        "extensions": [{"number": "201", "display_name": "Bob"}],
        "users": [
            {"email": "ada@acme.test", "display_name": "Ada", "roles": ["manager"]},
            {"email": "bob@acme.test", "display_name": "Bob", "roles": ["member", "wizard"]},
            {"email": "cy@acme.test", "roles": ["member"]},
            {"email": "not an email", "display_name": "Dee", "roles": ["member"], "password": "short"}
        ]
    });
    let (status, problem) = import_json(&app, &admin, &domain, &bad).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(2, "user", "roles[1]", "unknown_role"),
            error(3, "user", "display_name", "required"),
            error(4, "user", "email", "invalid_email"),
            error(4, "user", "password", "too_short"),
        ]
    );
    assert!(stored_user(&app, "ada@acme.test").await.is_none());
    assert_eq!(stored(&app, &domain).await, (0, 0));

    // With a password the User is active; without one invited, with a token in the report.
    let file = json!({
        "extensions": [{"number": "201", "display_name": "Bob"}],
        "users": [
            {"email": "Ada@Acme.test", "display_name": "Ada", "password": PASSWORD,
             "roles": ["manager", "night SHIFT"]},
            {"email": "bob@acme.test", "display_name": "Bob", "roles": ["member"], "extension": "201"}
        ]
    });
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![
            result(1, "extension", "201", "created", &[]),
            result(1, "user", "ada@acme.test", "created", &[]),
            result(2, "user", "bob@acme.test", "created", &[]),
        ]
    );
    assert_eq!(report["totals"]["users"]["created"], 2, "{report}");
    let ada = stored_user(&app, "ada@acme.test").await.unwrap();
    assert_eq!(ada.status, "active");
    let mut wanted = vec!["manager".to_owned(), night.clone()];
    wanted.sort();
    assert_eq!(role_keys_in(&app, &domain, ada.id).await, wanted);
    token_of(&app, "ada@acme.test").await;
    assert!(report["results"][1].get("set_password_token").is_none());

    let bob = stored_user(&app, "bob@acme.test").await.unwrap();
    assert_eq!(bob.status, "invited");
    assert_eq!(report["results"][2]["id"], json!(bob.id));
    assert_eq!(
        stored_extension(&app, &domain, "201").await.user_id,
        Some(bob.id)
    );
    let token = report["results"][2]["set_password_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token for the invited User: {report}"));
    let response = app
        .post_json(
            "/api/v1/auth/set-password",
            &json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    token_of(&app, "bob@acme.test").await;

    // Audited as single creates, tied to the import; no password anywhere in the log.
    assert_eq!(audited(&app, &domain, "user.create").await.len(), 1);
    assert_eq!(audited(&app, &domain, "user.invite").await.len(), 1);
    let log = audit_log::Entity::find().all(&app.db).await.unwrap();
    for entry in &log {
        let text = format!("{:?} {:?}", entry.before, entry.after);
        assert!(
            !text.contains(PASSWORD),
            "a password reached the log: {text}"
        );
        assert!(!text.contains(token), "a token reached the log: {text}");
    }
    let summary = &audited(&app, &domain, "import.completed").await[0];
    assert_eq!(summary.after.as_ref().unwrap()["created"]["users"], 2);
}

async fn locations_are_imported_and_used_by_the_devices_of_the_same_file(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let header = "kind,name,ring_strategy,sign_in_policy,allowed_extensions,allowed_roles,short_code,number,display_name,label,mac_address,location,location_position\n";
    let bad = format!(
        "{header}\
location,Berlin 2F,sequential,listed,299,receptionist,412,,,,,,\n\
device,,,,,,,,,North 1,,Nowhere,\n"
    );
    let (status, problem) = import_csv(&app, &admin, &domain, "", &bad).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(2, "location", "allowed_extensions[0]", "not_found"),
            error(3, "device", "location", "not_found"),
        ]
    );

    let csv = format!(
        "{header}\
location,Berlin 2F,sequential,listed,201,receptionist,412,,,,,,\n\
location,Home office,,,,,,,,,,,\n\
extension,,,,,,,201,Ada,,,,\n\
device,,,,,,,,,North 1,00:15:65:00:00:01,Berlin 2F,\n\
device,,,,,,,,,North 2,00:15:65:00:00:02,Berlin 2F,\n\
device,,,,,,,,,Sofa,,Home office,5\n"
    );
    let (status, report) = import_csv(&app, &admin, &domain, "", &csv).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["locations"], 2);
    assert_eq!(report["totals"]["locations"]["created"], 2, "{report}");
    let (status, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/locations?q=Berlin"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let berlin = &page["items"][0];
    let ada = stored_extension(&app, &domain, "201").await;
    assert_eq!(
        (
            &berlin["ring_strategy"],
            &berlin["sign_in_policy"],
            &berlin["short_code"]
        ),
        (&json!("sequential"), &json!("listed"), &json!("412"))
    );
    assert_eq!(berlin["allowed_extension_ids"], json!([ada.id]));
    assert_eq!(berlin["allowed_roles"], json!(["receptionist"]));
    let ring: Vec<(&str, i64)> = berlin["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["label"].as_str().unwrap(),
                d["position"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ring, vec![("North 1", 0), ("North 2", 1)]);
    let sofa = devices::Entity::find()
        .filter(devices::Column::Label.eq("Sofa"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let home = locations::Entity::find()
        .filter(locations::Column::Name.eq("Home office"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (sofa.location_id, sofa.location_position),
        (Some(home.id), 5)
    );
    assert_eq!(audited(&app, &domain, "location.create").await.len(), 2);
}

async fn updates_by_number_mac_email_and_name_change_only_the_given_fields(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let ada_ext = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Ada", "pin": "2580",
                   "outbound_caller_id_number": "+4930123456", "dnd": true}),
        )
        .await,
    );
    extension(&app, &admin, &domain, "202", false).await;
    create(
        &app,
        &admin,
        &domain,
        "locations",
        json!({"name": "HQ", "description": "Main office"}),
    )
    .await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk", "mac_address": "00:15:65:00:00:07", "vendor": "Yealink",
               "mode": "fixed", "owner_extension_id": ada_ext}),
    )
    .await;
    let desk_user = desk["sip_username"].as_str().unwrap().to_owned();
    let ada = create_user(&app, &admin, &domain, "ada@acme.test", &["member"]).await;
    let ada = Uuid::parse_str(&ada).unwrap();
    let before = stored_extension(&app, &domain, "201").await;
    let mut events = app.events.subscribe();

    let file = json!({
        "on_existing": "update",
        "extensions": [
            {"number": "201", "display_name": "Ada Lovelace", "pin": "2580"},
            {"number": "202", "display_name": "Ext 202"},
            {"number": "203", "display_name": "Ada's softphone"}
        ],
        "devices": [{"mac_address": "001565000007", "label": "Reception desk"}],
        "users": [{"email": "ADA@acme.test", "roles": ["manager"], "extension": "203"}],
        "locations": [{"name": "HQ", "ring_strategy": "sequential"}]
    });
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["on_existing"], "update");
    assert_eq!(
        results(&report),
        vec![
            result(1, "extension", "201", "updated", &["display_name"]),
            result(1, "device", "00:15:65:00:00:07", "updated", &["label"]),
            result(
                1,
                "user",
                "ada@acme.test",
                "updated",
                &["roles", "extension"]
            ),
            result(1, "location", "HQ", "updated", &["ring_strategy"]),
            result(2, "extension", "202", "unchanged", &[]),
            result(3, "extension", "203", "created", &[]),
        ]
    );
    assert_eq!(
        (
            &report["totals"]["created"],
            &report["totals"]["updated"],
            &report["totals"]["unchanged"]
        ),
        (&json!(1), &json!(4), &json!(1))
    );

    // Only what the rows give changed.
    let after = stored_extension(&app, &domain, "201").await;
    assert_eq!(after.display_name, "Ada Lovelace");
    assert_eq!(
        (
            after.outbound_caller_id_number.as_deref(),
            after.dnd,
            &after.pin_hash
        ),
        (Some("+4930123456"), true, &before.pin_hash),
        "the same PIN is not hashed again"
    );
    let desk_now = devices::Entity::find_by_id(Uuid::parse_str(&id_of(&desk)).unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            desk_now.label.as_str(),
            desk_now.vendor.as_deref(),
            desk_now.mode.as_str(),
            desk_now.owner_extension_id
        ),
        (
            "Reception desk",
            Some("Yealink"),
            "fixed",
            Some(Uuid::parse_str(&ada_ext).unwrap())
        )
    );
    let hq = locations::Entity::find()
        .filter(locations::Column::Name.eq("HQ"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hq.ring_strategy.as_str(), hq.description.as_str()),
        ("sequential", "Main office")
    );
    let ada_now = stored_user(&app, "ada@acme.test").await.unwrap();
    assert_eq!(
        ada_now.display_name, "ada@acme.test",
        "not given, not changed"
    );
    assert_eq!(role_keys_in(&app, &domain, ada).await, vec!["manager"]);
    assert_eq!(
        stored_extension(&app, &domain, "203").await.user_id,
        Some(ada)
    );

    // FreeSWITCH is told: the renamed Extension and its phone, the relabelled phone, the new
    // Extension; the phones showing a new name re-read their configuration.
    let event = next_event(&mut events).await;
    assert_eq!(event.kind, ChangeKind::ImportCompleted);
    for user in ["201", "203", desk_user.as_str()] {
        assert!(event.sip_users.contains(&user.to_owned()), "{event:?}");
    }
    assert_eq!(event.check_sync, vec![desk_user.clone()]);
    assert!(event.drop_registrations.is_empty(), "{event:?}");

    // Each change audited as its single change, with the state before and after.
    let updates = audited(&app, &domain, "extension.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].before.as_ref().unwrap()["display_name"], "Ada");
    assert_eq!(
        updates[0].after.as_ref().unwrap()["display_name"],
        "Ada Lovelace"
    );
    for action in ["device.update", "location.update", "user.roles_replace"] {
        assert_eq!(audited(&app, &domain, action).await.len(), 1, "{action}");
    }

    // The same file again changes nothing and writes nothing but its summary.
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["totals"]["unchanged"], 6, "{report}");
    assert_eq!(audited(&app, &domain, "extension.update").await.len(), 1);

    // CSV: an empty cell leaves the field as it is; another PIN is a change.
    let csv = "kind,number,display_name,pin,dnd\nextension,201,,1357,\n";
    let (status, report) = import_csv(&app, &admin, &domain, "?on_existing=update", csv).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![result(2, "extension", "201", "updated", &["pin"])]
    );
    let after_pin = stored_extension(&app, &domain, "201").await;
    assert_ne!(after_pin.pin_hash, before.pin_hash);
    assert_eq!(
        (after_pin.display_name.as_str(), after_pin.dnd),
        ("Ada Lovelace", true)
    );

    assert_eq!(audited(&app, &domain, "extension.update").await.len(), 2);
}

async fn on_existing_error_keeps_collisions_as_errors_and_update_refuses_what_a_patch_would(
    app: TestApp,
) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let other = crate::users::create_domain(&app, &admin, "other.pbx.test").await;
    extension(&app, &admin, &domain, "201", false).await;
    create(&app, &admin, &domain, "locations", json!({"name": "HQ"})).await;
    create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Desk", "mac_address": "00:15:65:00:00:07"}),
    )
    .await;
    let ada = create_user(&app, &admin, &domain, "ada@acme.test", &["member"]).await;
    create_user(&app, &admin, &other, "bob@other.test", &["member"]).await;
    let (status, linked) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!(
            "/api/v1/domains/{domain}/extensions/{}",
            stored_extension(&app, &domain, "201").await.id
        ),
        Some(json!({"user_id": ada})),
    )
    .await;
    assert_eq!(status, 200, "{linked}");
    // Taking Ada's Extension for someone new needs on_existing=update.
    let steal = json!({"users": [{"email": "cy@acme.test", "display_name": "Cy", "roles": ["member"], "extension": "201"}]});
    let (status, problem) = import_json(&app, &admin, &domain, &steal).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![error(1, "user", "extension", "already_linked")]
    );
    // A row exactly as stored collides too: nobody updates by accident.
    let file = json!({
        "extensions": [{"number": "201", "display_name": "Ext 201"}],
        "devices": [{"label": "Desk", "mac_address": "00:15:65:00:00:07"}],
        "users": [{"email": "ada@acme.test", "display_name": "Ada", "roles": ["member"]}],
        "locations": [{"name": "HQ"}]
    });
    let expected = vec![
        error(1, "extension", "number", "already_exists"),
        error(1, "device", "mac_address", "already_exists"),
        error(1, "user", "email", "already_exists"),
        error(1, "location", "name", "already_exists"),
    ];
    let (status, problem) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(errors(&problem), expected);
    let (status, problem) =
        import_json_with(&app, &admin, &domain, "?on_existing=error", &file).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(errors(&problem), expected);

    // The body and the query may not disagree.
    let mut both = file.clone();
    both["on_existing"] = json!("update");
    let (status, problem) =
        import_json_with(&app, &admin, &domain, "?on_existing=error", &both).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "on_existing", "{problem}");

    // Updating never reaches another Domain's User, nor changes a password.
    let refused = json!({
        "on_existing": "update",
        "users": [
            {"email": "bob@other.test", "display_name": "Bob", "roles": ["member"]},
            {"email": "ada@acme.test", "password": PASSWORD}
        ],
        "extensions": [{"number": "201", "dnd": "yes"}]
    });
    let (status, problem) = import_json(&app, &admin, &domain, &refused).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(1, "extension", "dnd", "invalid_type"),
            error(1, "user", "email", "already_exists"),
            error(2, "user", "password", "not_updatable"),
        ]
    );
    assert_eq!(stored(&app, &domain).await, (1, 1));
    assert_eq!(audited(&app, &domain, "import.completed").await.len(), 0);
}

async fn a_dry_run_with_updates_writes_nothing_and_reports_what_the_import_does(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    extension(&app, &admin, &domain, "201", false).await;
    create(&app, &admin, &domain, "locations", json!({"name": "HQ"})).await;
    let mut events = app.events.subscribe();
    let file = json!({
        "on_existing": "update",
        "extensions": [
            {"number": "201", "display_name": "Changed", "voicemail_enabled": false},
            {"number": "202", "display_name": "New"}
        ],
        "locations": [{"name": "HQ", "description": "Main office"}],
        "users": [{"email": "new@acme.test", "display_name": "New", "roles": ["member"]}]
    });
    let (status, dry) = import_json_with(&app, &admin, &domain, "?dry_run=true", &file).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (&dry["valid"], &dry["dry_run"], &dry["imported"]),
        (&json!(true), &json!(true), &json!(false))
    );
    let expected = vec![
        result(
            1,
            "extension",
            "201",
            "updated",
            &["display_name", "voicemail_enabled"],
        ),
        result(1, "user", "new@acme.test", "created", &[]),
        result(1, "location", "HQ", "updated", &["description"]),
        result(2, "extension", "202", "created", &[]),
    ];
    assert_eq!(results(&dry), expected);
    assert_eq!(dry["results"][1]["id"], Value::Null, "nothing created yet");
    assert!(dry["results"][1].get("set_password_token").is_none());

    // Nothing written, nothing audited, nobody told.
    assert_eq!(
        stored_extension(&app, &domain, "201").await.display_name,
        "Ext 201"
    );
    assert_eq!(stored(&app, &domain).await, (1, 0));
    assert!(stored_user(&app, "new@acme.test").await.is_none());
    let hq = locations::Entity::find()
        .filter(locations::Column::Name.eq("HQ"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hq.description, "");
    assert_eq!(audited(&app, &domain, "import.completed").await.len(), 0);
    assert_eq!(audited(&app, &domain, "extension.update").await.len(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events.try_recv().is_err(), "a dry run publishes nothing");

    // The import does what the dry run said.
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(results(&report), expected);
    assert_eq!(dry["totals"], report["totals"]);
    assert_eq!(
        stored_extension(&app, &domain, "201").await.display_name,
        "Changed"
    );
}

async fn two_identical_update_imports_at_once_never_half_apply(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "race.pbx.test").await;
    let stock = json!({
        "extensions": (0..30).map(|i| json!({"number": format!("{}", 300 + i), "display_name": "Old"})).collect::<Vec<_>>(),
        "devices": (0..30).map(|i| json!({"label": "Old", "mac_address": mac(900 + i)})).collect::<Vec<_>>()
    });
    let (status, report) = import_json(&app, &admin, &domain, &stock).await;
    assert_eq!(status, 201, "{report}");

    // Odd rounds only update (the stale-row check settles them), even ones also create (the
    // unique constraints do).
    let mut written = 0;
    let mut created = 0;
    for round in 0..4 {
        let name = format!("Round {round}");
        let creates = round % 2 == 0;
        let mut extensions: Vec<Value> = (0..30)
            .map(|i| json!({"number": format!("{}", 300 + i), "display_name": name}))
            .collect();
        let mut users = Vec::new();
        if creates {
            extensions.push(json!({"number": format!("{}", 400 + round), "display_name": name}));
            users.push(json!({"email": format!("round{round}@race.test"), "display_name": name, "roles": ["member"]}));
            created += 1;
        }
        let file = json!({
            "on_existing": "update",
            "extensions": extensions,
            "devices": (0..30).map(|i| json!({"label": name, "mac_address": mac(900 + i)})).collect::<Vec<_>>(),
            "users": users
        });
        let (a, b) = tokio::join!(
            import_json(&app, &admin, &domain, &file),
            import_json(&app, &admin, &domain, &file)
        );
        let mut imported = 0;
        for (status, body) in [&a, &b] {
            match status {
                201 => imported += 1,
                409 => assert!(
                    ["concurrent_change", "already_exists"]
                        .contains(&body["code"].as_str().unwrap()),
                    "{body}"
                ),
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert!(imported >= 1, "round {round}: {a:?} {b:?}");
        written += imported;

        // All of it, once: every record as the file says, each update audited exactly once.
        let exts = extensions::Entity::find()
            .filter(extensions::Column::DomainId.eq(Uuid::parse_str(&domain).unwrap()))
            .all(&app.db)
            .await
            .unwrap();
        assert_eq!(exts.len(), 30 + created, "round {round}");
        assert!(
            exts.iter()
                .filter(|e| e.number.starts_with('3'))
                .all(|e| e.display_name == name),
            "round {round}"
        );
        if creates {
            assert_eq!(
                stored_extension(&app, &domain, &format!("{}", 400 + round))
                    .await
                    .display_name,
                name
            );
            assert!(
                stored_user(&app, &format!("round{round}@race.test"))
                    .await
                    .is_some()
            );
        }
        let devs = devices::Entity::find()
            .filter(devices::Column::DomainId.eq(Uuid::parse_str(&domain).unwrap()))
            .all(&app.db)
            .await
            .unwrap();
        assert!(devs.iter().all(|d| d.label == name), "round {round}");
        assert_eq!(
            audited(&app, &domain, "extension.update").await.len(),
            30 * (round + 1),
            "round {round}: an update written twice, or not at all"
        );
        assert_eq!(
            audited(&app, &domain, "device.update").await.len(),
            30 * (round + 1)
        );
        assert_eq!(
            audited(&app, &domain, "import.completed").await.len(),
            1 + written,
            "round {round}"
        );
    }
}

/// Runs the `switchboard` binary with `args` and only the SWITCHBOARD_* variables of `env`.
fn switchboard(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
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
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .env("SWITCHBOARD_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("running switchboard");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `switchboard import` off the async runtime.
async fn run_cli(env: Vec<(String, String)>, args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        switchboard(&env, &args)
    })
    .await
    .unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

async fn the_cli_imports_through_a_running_servers_api(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "cli.pbx.test").await;
    let (status, key) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/v1/domains/{domain}/api-keys"),
        Some(json!({"name": "provisioning", "role": "domain_admin"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();
    let key_env = vec![("SWITCHBOARD_API_KEY".to_owned(), secret.clone())];
    let dir = std::env::temp_dir().join(format!("switchboard-import-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = write(
        "phones.csv",
        "kind,email,display_name,roles,extension,name,number,pin,label,mode,owner_extension,location\n\
         user,ada@cli.test,Ada,manager,201,,,,,,,\n\
         location,,,,,Berlin 2F,,,,,,\n\
         extension,,Ada,,,,201,2580,,,,\n\
         extension,,Bob,,,,202,,,,,\n\
         device,,,,,,,,Ada's desk,fixed,201,Berlin 2F\n",
    );
    let bad = write(
        "bad.json",
        &json!({"extensions": [{"number": "201", "display_name": "Ada"}, {"number": "20x", "display_name": "Bad"}]})
            .to_string(),
    );
    let update = write(
        "update.csv",
        "kind,number,display_name\nextension,202,Reception\n",
    );
    let import = |file: &str, domain: &str, more: &[&str]| {
        let mut args = strings(&[
            "import",
            "--url",
            &app.address,
            "--domain",
            domain,
            "--file",
            file,
        ]);
        args.extend(strings(more));
        args
    };

    // A bad file: exit 1, the report on stdout naming the row and field, nothing written.
    let (code, stdout, stderr) = run_cli(key_env.clone(), import(&bad, "CLI.pbx.test", &[])).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        errors(&report),
        vec![error(2, "extension", "number", "invalid_number")]
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");

    // A dry run of the good file: exit 0, the report, nothing written.
    let (code, stdout, stderr) = run_cli(
        key_env.clone(),
        import(&good, "cli.pbx.test", &["--dry-run"]),
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert_eq!(stored(&app, &domain).await, (0, 0));

    // The import goes through the server: audited as the key, and FreeSWITCH is told.
    let mut events = app.events.subscribe();
    let (code, stdout, stderr) = run_cli(key_env.clone(), import(&good, "cli.pbx.test", &[])).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("imported 5 row(s) into cli.pbx.test: 5 created"),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["totals"]["created"], 5, "{report}");
    assert_eq!(stored(&app, &domain).await, (2, 1));
    let event = next_event(&mut events).await;
    assert_eq!(event.kind, ChangeKind::ImportCompleted);
    assert!(event.sip_users.contains(&"201".to_owned()), "{event:?}");
    let summary = audited(&app, &domain, "import.completed").await;
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].actor_label, "api_key:provisioning");
    let ada = stored_user(&app, "ada@cli.test").await.unwrap();
    assert_eq!(
        stored_extension(&app, &domain, "201").await.user_id,
        Some(ada.id)
    );

    // Updates only when asked; the Domain by id as well.
    let (code, stdout, _) = run_cli(key_env.clone(), import(&update, &domain, &[])).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("already_exists"), "{stdout}");
    let (code, stdout, stderr) = run_cli(
        key_env.clone(),
        import(&update, &domain, &["--on-existing", "update"]),
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        results(&report),
        vec![result(2, "extension", "202", "updated", &["display_name"])]
    );
    assert_eq!(
        stored_extension(&app, &domain, "202").await.display_name,
        "Reception"
    );

    // Clear refusals: an unknown Domain, no key, a wrong key, an unknown format.
    let (code, _, stderr) = run_cli(key_env.clone(), import(&good, "nowhere.test", &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no Domain"), "{stderr}");
    let (code, _, stderr) = run_cli(Vec::new(), import(&good, "cli.pbx.test", &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("SWITCHBOARD_API_KEY"), "{stderr}");
    let wrong = vec![("SWITCHBOARD_API_KEY".to_owned(), format!("{secret}x"))];
    let (code, _, stderr) = run_cli(wrong, import(&good, &domain, &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("401"), "{stderr}");
    let (code, _, stderr) = run_cli(key_env, import("phones.txt", "cli.pbx.test", &[])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--format"), "{stderr}");
    assert_eq!(audited(&app, &domain, "import.completed").await.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_cli_imports_a_file_into_a_sqlite_database_as_the_cli_actor() {
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
    let env = vec![
        (
            "SWITCHBOARD_DATABASE_URL".to_owned(),
            app.database_url.clone(),
        ),
        (
            "SWITCHBOARD_SECRETS__ENCRYPTION_KEY".to_owned(),
            TEST_ENCRYPTION_KEY.to_owned(),
        ),
    ];
    let path = good.display().to_string();
    let import = |more: &[&str]| {
        let mut args = strings(&["import", "--offline", "--file", &path]);
        args.extend(strings(more));
        args
    };

    // --offline and --url exclude each other; without either the server is missing.
    let (code, _, stderr) = run_cli(
        env.clone(),
        import(&["--domain", "cli.pbx.test", "--url", "http://127.0.0.1:9"]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_cli(
        env.clone(),
        strings(&["import", "--file", &path, "--domain", "cli.pbx.test"]),
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--url"), "{stderr}");

    // A dry run, then the import, straight on the database, with a warning.
    let (code, stdout, stderr) = run_cli(
        env.clone(),
        import(&["--domain", "cli.pbx.test", "--dry-run"]),
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stored(&app, &domain).await, (0, 0));
    let (code, stdout, stderr) = run_cli(env.clone(), import(&["--domain", "CLI.pbx.test"])).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--offline writes straight into the database"),
        "{stderr}"
    );
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

    // Updating by the Domain's id.
    std::fs::write(&good, "kind,number,display_name\nextension,202,Reception\n").unwrap();
    let (code, stdout, stderr) = run_cli(
        env.clone(),
        import(&["--domain", &domain, "--on-existing", "update"]),
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(
        stored_extension(&app, &domain, "202").await.display_name,
        "Reception"
    );
    let (code, _, stderr) = run_cli(env, import(&["--domain", "nowhere.test"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no Domain"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn an_update_ends_what_the_same_patch_would_end_and_tells_freeswitch(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    extension(&app, &admin, &domain, "201", false).await;
    create(
        &app,
        &admin,
        &domain,
        "extensions",
        json!({"number": "202", "display_name": "Softphone", "sip_registration": {"enabled": true}}),
    )
    .await;
    let desk = create(
        &app,
        &admin,
        &domain,
        "devices",
        json!({"label": "Hot 1", "mac_address": "00:15:65:00:00:21"}),
    )
    .await;
    let desk_user = desk["sip_username"].as_str().unwrap().to_owned();
    let (status, session) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/domains/{domain}/devices/{}/session", id_of(&desk)),
        Some(json!({"extension": "201"})),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let mut events = app.events.subscribe();

    let file = json!({
        "on_existing": "update",
        "devices": [{"mac_address": "00:15:65:00:00:21", "enabled": false}],
        "extensions": [{"number": "202", "enabled": false}]
    });
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![
            result(1, "extension", "202", "updated", &["enabled"]),
            result(1, "device", "00:15:65:00:00:21", "updated", &["enabled"]),
        ]
    );

    // The session on the disabled phone ended, audited, as a PATCH ends it.
    let active = hotdesk_sessions::Entity::find()
        .filter(hotdesk_sessions::Column::EndedAt.is_null())
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(active, 0);
    assert_eq!(audited(&app, &domain, "hotdesk.session.end").await.len(), 1);
    // FreeSWITCH drops the registrations of the disabled phone and Extension.
    let mut kinds = Vec::new();
    let event = loop {
        let event = next_event(&mut events).await;
        kinds.push(event.kind);
        if event.kind == ChangeKind::ImportCompleted {
            break event;
        }
    };
    assert!(kinds.contains(&ChangeKind::SessionEnded), "{kinds:?}");
    let mut dropped = event.drop_registrations.clone();
    dropped.sort();
    assert_eq!(dropped, vec!["202".to_owned(), desk_user.clone()]);
    assert!(event.sip_users.contains(&desk_user), "{event:?}");
    assert!(event.check_sync.is_empty(), "{event:?}");
}

/// The hot-desk group `name` of the Domain, as stored.
async fn stored_group(app: &TestApp, domain: &str, name: &str) -> Option<extension_groups::Model> {
    extension_groups::Entity::find()
        .filter(extension_groups::Column::DomainId.eq(Uuid::parse_str(domain).unwrap()))
        .filter(extension_groups::Column::Name.eq(name))
        .one(&app.db)
        .await
        .unwrap()
}

/// How many hot-desk groups the Domain has.
async fn group_count(app: &TestApp, domain: &str) -> u64 {
    extension_groups::Entity::find()
        .filter(extension_groups::Column::DomainId.eq(Uuid::parse_str(domain).unwrap()))
        .count(&app.db)
        .await
        .unwrap()
}

/// A hot-desk phone of the Domain (the default mode); returns its SIP user.
async fn hotdesk_phone(app: &TestApp, token: &str, domain: &str, mac: &str) -> String {
    let desk = create(
        app,
        token,
        domain,
        "devices",
        json!({"label": format!("Hot desk {mac}"), "mac_address": mac}),
    )
    .await;
    assert_eq!(desk["mode"], "hotdesk", "{desk}");
    desk["sip_username"].as_str().unwrap().to_owned()
}

/// The `import.completed` event, skipping any other event before it.
async fn import_event(
    events: &mut tokio::sync::broadcast::Receiver<
        std::sync::Arc<switchboard_domain::events::ChangeEvent>,
    >,
) -> switchboard_domain::events::ChangeEvent {
    loop {
        let event = next_event(events).await;
        if event.kind == ChangeKind::ImportCompleted {
            return event;
        }
    }
}

async fn groups_are_imported_with_a_placeholder_of_the_file_and_extensions_of_the_file_join_them(
    app: TestApp,
) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let phone = hotdesk_phone(&app, &admin, &domain, "00:15:65:00:00:31").await;
    let mut events = app.events.subscribe();

    // The group names a placeholder that only this file creates; Extensions of the file join
    // the groups of the file.
    let file = json!({
        "groups": [
            {"name": "Visitors", "description": "Guests of the house",
             "logged_out_mode": "placeholder", "placeholder_extension": 299},
            {"name": "Staff", "logged_out_mode": "full"}
        ],
        "extensions": [
            {"number": "299", "display_name": "Lobby", "placeholder": true, "hotdesk_allowed": false},
            {"number": "230", "display_name": "Guest", "group": "Visitors"},
            {"number": "201", "display_name": "Ada", "group": "Staff"}
        ]
    });
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![
            result(1, "extension", "299", "created", &[]),
            result(1, "group", "Visitors", "created", &[]),
            result(2, "extension", "230", "created", &[]),
            result(2, "group", "Staff", "created", &[]),
            result(3, "extension", "201", "created", &[]),
        ]
    );
    assert_eq!(report["groups"], 2, "{report}");
    assert_eq!(report["totals"]["groups"]["created"], 2, "{report}");
    assert_eq!(report["totals"]["created"], 5, "{report}");

    let lobby = stored_extension(&app, &domain, "299").await;
    let visitors = stored_group(&app, &domain, "Visitors").await.unwrap();
    let staff = stored_group(&app, &domain, "Staff").await.unwrap();
    assert_eq!(report["results"][1]["id"], json!(visitors.id));
    assert_eq!(
        (
            visitors.description.as_str(),
            visitors.logged_out_mode.as_str(),
            visitors.placeholder_extension_id
        ),
        ("Guests of the house", "placeholder", Some(lobby.id))
    );
    assert_eq!(
        (
            staff.logged_out_mode.as_str(),
            staff.placeholder_extension_id
        ),
        ("full", None)
    );
    assert_eq!(
        stored_extension(&app, &domain, "230").await.group_id,
        Some(visitors.id)
    );
    assert_eq!(
        stored_extension(&app, &domain, "201").await.group_id,
        Some(staff.id)
    );
    assert_eq!(lobby.group_id, None);
    // The API shows them as any group, members counted.
    let (status, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{domain}/extension-groups?q=visit"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["member_count"], 1, "{page}");

    // Audited as single creates, tied to the import, and counted in its summary.
    let created = audited(&app, &domain, "extension_group.create").await;
    assert_eq!(created.len(), 2);
    let summary = &audited(&app, &domain, "import.completed").await[0];
    let after = summary.after.as_ref().unwrap();
    assert_eq!(after["created"]["groups"], 2, "{after}");
    for entry in &created {
        assert_eq!(
            entry.after.as_ref().unwrap()["import_id"],
            json!(summary.target_id.as_ref().unwrap()),
        );
    }
    // The hot-desk phones re-read (their logged-out identity may follow a group), and the
    // placeholder.
    let event = import_event(&mut events).await;
    for user in [phone.as_str(), "299", "230", "201"] {
        assert!(
            event.sip_users.contains(&user.to_owned()),
            "{user}: {event:?}"
        );
    }

    // CSV alike: a stored placeholder by number, a stored group joined by name.
    let csv = "kind,name,description,logged_out_mode,placeholder_extension,number,display_name,group\n\
group,Night,Night shift,placeholder,299,,,\n\
extension,,,,,231,Night guest,Night\n\
extension,,,,,232,Day guest,Visitors\n";
    let (status, report) = import_csv(&app, &admin, &domain, "", csv).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![
            result(2, "group", "Night", "created", &[]),
            result(3, "extension", "231", "created", &[]),
            result(4, "extension", "232", "created", &[]),
        ]
    );
    let night = stored_group(&app, &domain, "Night").await.unwrap();
    assert_eq!(
        (night.description.as_str(), night.placeholder_extension_id),
        ("Night shift", Some(lobby.id))
    );
    assert_eq!(
        stored_extension(&app, &domain, "231").await.group_id,
        Some(night.id)
    );
    assert_eq!(
        stored_extension(&app, &domain, "232").await.group_id,
        Some(visitors.id)
    );
}

async fn a_stored_group_matched_by_name_changes_only_the_given_fields(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let old_lobby = extension(&app, &admin, &domain, "298", true).await;
    let new_lobby = extension(&app, &admin, &domain, "299", true).await;
    extension(&app, &admin, &domain, "201", false).await;
    let visitors = id_of(
        &create(
            &app,
            &admin,
            &domain,
            "extension-groups",
            json!({"name": "Visitors", "description": "Guests of the house",
                   "logged_out_mode": "placeholder", "placeholder_extension_id": old_lobby}),
        )
        .await,
    );
    create(
        &app,
        &admin,
        &domain,
        "extension-groups",
        json!({"name": "Staff", "logged_out_mode": "full"}),
    )
    .await;
    let phone = hotdesk_phone(&app, &admin, &domain, "00:15:65:00:00:32").await;
    let mut events = app.events.subscribe();

    let file = json!({
        "on_existing": "update",
        "groups": [
            {"name": "Visitors", "placeholder_extension": "299"},
            {"name": "Staff", "logged_out_mode": "full"},
            {"name": "Temps", "logged_out_mode": "inherit"}
        ],
        "extensions": [{"number": "201", "group": "Staff"}]
    });
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![
            result(1, "extension", "201", "updated", &["group_id"]),
            result(
                1,
                "group",
                "Visitors",
                "updated",
                &["placeholder_extension_id"]
            ),
            result(2, "group", "Staff", "unchanged", &[]),
            result(3, "group", "Temps", "created", &[]),
        ]
    );
    assert_eq!(
        (
            &report["totals"]["groups"]["created"],
            &report["totals"]["groups"]["updated"],
            &report["totals"]["groups"]["unchanged"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(report["results"][1]["id"], json!(visitors));
    let stored = stored_group(&app, &domain, "Visitors").await.unwrap();
    assert_eq!(
        (
            stored.id.to_string(),
            stored.description.as_str(),
            stored.logged_out_mode.as_str(),
            stored.placeholder_extension_id.map(|id| id.to_string())
        ),
        (
            visitors.clone(),
            "Guests of the house",
            "placeholder",
            Some(new_lobby.clone())
        ),
        "only the placeholder changed"
    );
    let updates = audited(&app, &domain, "extension_group.update").await;
    assert_eq!(updates.len(), 1, "the unchanged group is not written");
    assert_eq!(
        updates[0].before.as_ref().unwrap()["placeholder_extension_id"],
        json!(old_lobby)
    );
    assert_eq!(
        updates[0].after.as_ref().unwrap()["placeholder_extension_id"],
        json!(new_lobby)
    );
    // A new placeholder: the hot-desk phones and both placeholders re-read.
    let event = import_event(&mut events).await;
    for user in [phone.as_str(), "298", "299"] {
        assert!(
            event.sip_users.contains(&user.to_owned()),
            "{user}: {event:?}"
        );
    }

    // A description is no logout action: the phones are not bothered.
    let described = json!({"on_existing": "update",
        "groups": [{"name": "Staff", "description": "Everyone on the payroll"}]});
    let (status, report) = import_json(&app, &admin, &domain, &described).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![result(1, "group", "Staff", "updated", &["description"])]
    );
    let event = import_event(&mut events).await;
    assert!(!event.sip_users.contains(&phone), "{event:?}");
    let staff = stored_group(&app, &domain, "Staff").await.unwrap();
    assert_eq!(
        (staff.description.as_str(), staff.logged_out_mode.as_str()),
        ("Everyone on the payroll", "full")
    );

    // Leaving `placeholder` drops the placeholder, as a PATCH does.
    let csv = "kind,name,logged_out_mode\ngroup,Visitors,full\n";
    let (status, report) = import_csv(&app, &admin, &domain, "?on_existing=update", csv).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(
        results(&report),
        vec![result(
            2,
            "group",
            "Visitors",
            "updated",
            &["logged_out_mode", "placeholder_extension_id"]
        )]
    );
    let stored = stored_group(&app, &domain, "Visitors").await.unwrap();
    assert_eq!(
        (
            stored.logged_out_mode.as_str(),
            stored.placeholder_extension_id
        ),
        ("full", None)
    );
    assert_eq!(
        audited(&app, &domain, "extension_group.update").await.len(),
        3
    );
}

async fn bad_group_rows_are_refused_naming_their_row_and_field(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    let person = extension(&app, &admin, &domain, "201", false).await;
    extension(&app, &admin, &domain, "299", true).await;
    create(
        &app,
        &admin,
        &domain,
        "extension-groups",
        json!({"name": "Visitors"}),
    )
    .await;

    let file = json!({
        "groups": [
            {"name": "Night", "logged_out_mode": "placeholder"},
            {"name": "Day", "logged_out_mode": "placeholder", "placeholder_extension": "201"},
            {"name": "Late", "logged_out_mode": "placeholder", "placeholder_extension": "777"},
            {"name": "Night", "logged_out_mode": "full"},
            {"name": "Visitors", "description": "Guests"},
            {"name": "Early", "logged_out_mode": "full", "placeholder_extension": "299"},
            {"name": "Noon", "logged_out_mode": "placeholder", "placeholder_extension_id": person},
            {"name": "Eve", "logged_out_mode": "placeholder", "placeholder_extension": "230"},
            {"logged_out_mode": "sometimes"}
        ],
        "extensions": [
            {"number": "230", "display_name": "Not a placeholder"},
            {"number": "231", "display_name": "Guest", "group": "Nowhere"}
        ]
    });
    let (status, problem) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(1, "group", "placeholder_extension_id", "required"),
            error(2, "extension", "group", "not_found"),
            error(2, "group", "placeholder_extension", "not_a_placeholder"),
            error(3, "group", "placeholder_extension", "not_found"),
            error(4, "group", "name", "duplicate_in_file"),
            error(5, "group", "name", "already_exists"),
            error(6, "group", "placeholder_extension", "placeholder_mode_only"),
            error(7, "group", "placeholder_extension_id", "not_a_placeholder"),
            // The file's Extension as it will be: not a placeholder.
            error(8, "group", "placeholder_extension", "not_a_placeholder"),
            error(9, "group", "name", "required"),
            error(9, "group", "logged_out_mode", "invalid_choice"),
        ]
    );
    assert_eq!(group_count(&app, &domain).await, 1);
    assert_eq!(stored(&app, &domain).await, (2, 0));
    assert_eq!(audited(&app, &domain, "import.completed").await.len(), 0);

    // In CSV the rows are numbered by line; the collision stays an error by default.
    let csv = "kind,name,logged_out_mode,placeholder_extension\n\
group,Visitors,full,\n\
group,Night,placeholder,\n";
    let (status, problem) = import_csv(&app, &admin, &domain, "", csv).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        errors(&problem),
        vec![
            error(2, "group", "name", "already_exists"),
            error(3, "group", "placeholder_extension_id", "required"),
        ]
    );

    // Groups are the Extensions' logout action: they need extensions.write.
    let role = create(
        &app,
        &admin,
        &domain,
        "roles",
        json!({"name": "Facilities", "permissions": ["locations.read", "locations.write"]}),
    )
    .await;
    let key = role["key"].as_str().unwrap().to_owned();
    create_user(
        &app,
        &admin,
        &domain,
        "facilities@acme.test",
        &[key.as_str()],
    )
    .await;
    let facilities = token_of(&app, "facilities@acme.test").await;
    let (status, report) = import_json(
        &app,
        &facilities,
        &domain,
        &json!({"locations": [{"name": "HQ"}]}),
    )
    .await;
    assert_eq!(status, 201, "{report}");
    let (status, problem) = import_json(
        &app,
        &facilities,
        &domain,
        &json!({"groups": [{"name": "Night"}]}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("extensions.write"),
        "{problem}"
    );
    assert_eq!(group_count(&app, &domain).await, 1);
}

async fn a_dry_run_with_groups_writes_nothing(app: TestApp) {
    let (domain, admin) = domain_with_admin(&app, "acme.pbx.test").await;
    create(
        &app,
        &admin,
        &domain,
        "extension-groups",
        json!({"name": "Staff", "logged_out_mode": "full"}),
    )
    .await;
    hotdesk_phone(&app, &admin, &domain, "00:15:65:00:00:33").await;
    let mut events = app.events.subscribe();
    let file = json!({
        "on_existing": "update",
        "groups": [
            {"name": "Visitors", "logged_out_mode": "placeholder", "placeholder_extension": "299"},
            {"name": "Staff", "logged_out_mode": "inherit"}
        ],
        "extensions": [
            {"number": "299", "display_name": "Lobby", "placeholder": true, "hotdesk_allowed": false},
            {"number": "230", "display_name": "Guest", "group": "Visitors"}
        ]
    });
    let (status, dry) = import_json_with(&app, &admin, &domain, "?dry_run=true", &file).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        (&dry["valid"], &dry["imported"]),
        (&json!(true), &json!(false))
    );
    let expected = vec![
        result(1, "extension", "299", "created", &[]),
        result(1, "group", "Visitors", "created", &[]),
        result(2, "extension", "230", "created", &[]),
        result(2, "group", "Staff", "updated", &["logged_out_mode"]),
    ];
    assert_eq!(results(&dry), expected);
    assert_eq!(dry["results"][1]["id"], Value::Null, "nothing created yet");

    // Nothing written, nothing audited, nobody told.
    assert_eq!(group_count(&app, &domain).await, 1);
    assert_eq!(
        stored_group(&app, &domain, "Staff")
            .await
            .unwrap()
            .logged_out_mode,
        "full"
    );
    assert_eq!(stored(&app, &domain).await, (0, 1));
    assert_eq!(audited(&app, &domain, "import.completed").await.len(), 0);
    assert_eq!(
        audited(&app, &domain, "extension_group.update").await.len(),
        0
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events.try_recv().is_err(), "a dry run publishes nothing");

    // The import does what the dry run said.
    let (status, report) = import_json(&app, &admin, &domain, &file).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(results(&report), expected);
    assert_eq!(dry["totals"], report["totals"]);
    assert_eq!(group_count(&app, &domain).await, 2);
}
