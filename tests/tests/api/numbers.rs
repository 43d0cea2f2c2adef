//! Numbers (DIDs): the platform's stock, assignment to Domains, destinations set by the Domain,
//! refusals, races on one number, what Domain and Extension deletes do to Numbers, the bulk
//! import, audit entries and change events.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_domain::events::{ChangeEvent, ChangeKind};
use switchboard_tests::{TestApp, both_databases};
use tokio::sync::broadcast::Receiver;
use uuid::Uuid;

use crate::devices::{domain_with_admin, extension, id_of};
use crate::users::{call, create_domain, create_user, token_of};

both_databases!(
    a_platform_admin_adds_and_assigns_a_number_and_the_domain_points_it_anywhere,
    a_domain_admin_cannot_manage_the_stock_nor_see_another_domains_numbers,
    bad_numbers_and_destinations_are_a_422_naming_the_field,
    twenty_parallel_creates_of_one_number_give_one_201_and_only_409s,
    a_number_leaving_its_domain_loses_its_destination,
    deleting_a_domain_returns_its_numbers_to_the_stock,
    an_extension_a_number_points_at_is_deleted_only_with_force,
    an_import_dry_run_writes_nothing_and_one_bad_row_rejects_the_batch,
    an_import_creates_and_updates_numbers_from_json_and_csv,
);

/// A Domain (as the platform admin) with a Domain admin; returns (domain id, platform admin
/// token, Domain admin token).
async fn domain_and_admins(app: &TestApp, sip_domain: &str) -> (String, String, String) {
    let (domain, platform) = domain_with_admin(app, sip_domain).await;
    let email = format!("admin@{sip_domain}");
    create_user(app, &platform, &domain, &email, &["domain_admin"]).await;
    let admin = token_of(app, &email).await;
    (domain, platform, admin)
}

/// Adds a Number as the platform admin (201) and returns it.
async fn add_number(app: &TestApp, platform: &str, body: Value) -> Value {
    let (status, created) = call(app, platform, Method::POST, "/api/v1/numbers", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

fn numbers_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap().to_owned())
        .collect()
}

fn field_of(problem: &Value) -> String {
    problem["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The Number events published so far, as (Domain, kind, Number).
async fn number_events(rx: &mut Receiver<Arc<ChangeEvent>>) -> Vec<(Uuid, ChangeKind, Uuid)> {
    let mut out = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        if matches!(
            e.kind,
            ChangeKind::NumberCreated | ChangeKind::NumberUpdated | ChangeKind::NumberDeleted
        ) {
            out.push((e.domain_id, e.kind, e.entity_id));
        }
    }
    out
}

async fn audit_actions(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let (status, log) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "{log}");
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_platform_admin_adds_and_assigns_a_number_and_the_domain_points_it_anywhere(
    app: TestApp,
) {
    let (domain, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let ada = extension(&app, &admin, &domain, "201", false).await;
    let mut events = app.events.subscribe();

    let n = add_number(
        &app,
        &platform,
        json!({"number": "+49 (30) 123-456", "description": "Main line"}),
    )
    .await;
    let id = id_of(&n);
    assert_eq!(n["number"], "+4930123456", "stored normalised");
    assert_eq!(n["domain_id"], Value::Null, "in the stock");
    assert_eq!(n["destination"], Value::Null);
    add_number(&app, &platform, json!({"number": "+4940555"})).await;

    let (_, stock) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?assigned=false",
        None,
    )
    .await;
    assert_eq!(numbers_of(&stock), ["+4930123456", "+4940555"]);
    let (_, found) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?q=30 12",
        None,
    )
    .await;
    assert_eq!(numbers_of(&found), ["+4930123456"]);
    let (_, page) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?limit=1",
        None,
    )
    .await;
    assert_eq!(numbers_of(&page), ["+4930123456"]);
    assert!(page["next_cursor"].is_string());

    // The Domain sees nothing until the Number is assigned.
    let domain_base = format!("/api/v1/domains/{domain}/numbers");
    let (_, mine) = call(&app, &admin, Method::GET, &domain_base, None).await;
    assert_eq!(numbers_of(&mine), Vec::<String>::new());
    let (status, assigned) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/numbers/{id}"),
        Some(json!({"domain_id": domain})),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["domain_id"], domain.as_str());
    let (_, assigned_list) = call(
        &app,
        &platform,
        Method::GET,
        &format!("/api/v1/numbers?assigned=true&domain_id={domain}"),
        None,
    )
    .await;
    assert_eq!(numbers_of(&assigned_list), ["+4930123456"]);
    let (_, mine) = call(&app, &admin, Method::GET, &domain_base, None).await;
    assert_eq!(numbers_of(&mine), ["+4930123456"]);

    let path = format!("{domain_base}/{id}");
    for destination in [
        json!({"type": "extension", "extension_id": ada}),
        json!({"type": "voicemail", "extension_id": ada}),
        json!({"type": "external", "number": "+4930999888"}),
        json!({"type": "hang_up", "cause": "busy"}),
    ] {
        let (status, changed) = call(
            &app,
            &admin,
            Method::PATCH,
            &path,
            Some(json!({"destination": destination})),
        )
        .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["destination"], destination);
        let (_, read) = call(&app, &admin, Method::GET, &path, None).await;
        assert_eq!(read["destination"], destination, "stored as given");
    }
    let (_, busy) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{domain_base}?destination_type=hang_up"),
        None,
    )
    .await;
    assert_eq!(numbers_of(&busy), ["+4930123456"]);
    let (_, none) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{domain_base}?extension_id={ada}"),
        None,
    )
    .await;
    assert_eq!(numbers_of(&none), Vec::<String>::new());
    let (status, cleared) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"destination": {"type": "voicemail", "extension_id": ada}, "description": "Sales"})),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["description"], "Sales");
    let (_, by_extension) = call(
        &app,
        &admin,
        Method::GET,
        &format!("{domain_base}?extension_id={ada}"),
        None,
    )
    .await;
    assert_eq!(numbers_of(&by_extension), ["+4930123456"]);
    let (status, nowhere) = call(
        &app,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"destination": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(nowhere["destination"], Value::Null);
    assert_eq!(nowhere["description"], "Sales", "untouched");

    let d = Uuid::parse_str(&domain).unwrap();
    let n = Uuid::parse_str(&id).unwrap();
    let seen = number_events(&mut events).await;
    assert_eq!(seen[0], (d, ChangeKind::NumberCreated, n), "{seen:?}");
    assert_eq!(seen.len(), 7, "assigned, then six changes: {seen:?}");
    assert!(
        seen[1..]
            .iter()
            .all(|e| *e == (d, ChangeKind::NumberUpdated, n))
    );
    assert_eq!(
        audit_actions(
            &app,
            &admin,
            &format!("/api/v1/domains/{domain}/audit?action=number.*")
        )
        .await,
        [
            "number.update",
            "number.update",
            "number.update",
            "number.update",
            "number.update",
            "number.update",
            "number.assign",
        ]
    );
    let platform_log = audit_actions(&app, &platform, "/api/v1/audit?action=number.create").await;
    assert_eq!(platform_log.len(), 2);

    let (status, _) = call(
        &app,
        &platform,
        Method::DELETE,
        &format!("/api/v1/numbers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    assert_eq!(
        number_events(&mut events).await,
        [(d, ChangeKind::NumberDeleted, n)]
    );
}

async fn a_domain_admin_cannot_manage_the_stock_nor_see_another_domains_numbers(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let globex = create_domain(&app, &platform, "globex.pbx.test").await;
    let theirs = add_number(
        &app,
        &platform,
        json!({"number": "+4930111", "domain_id": globex}),
    )
    .await;
    let ours = add_number(
        &app,
        &platform,
        json!({"number": "+4930222", "domain_id": acme}),
    )
    .await;
    let theirs_id = id_of(&theirs);

    let (status, problem) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"number": "+4930333"})),
    )
    .await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")));
    for (method, path, body) in [
        (Method::GET, "/api/v1/numbers".to_owned(), None),
        (
            Method::GET,
            format!("/api/v1/numbers/{}", id_of(&ours)),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/numbers/{}", id_of(&ours)),
            Some(json!({"domain_id": acme})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/numbers/{}", id_of(&ours)),
            None,
        ),
    ] {
        let (status, _) = call(&app, &admin, method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}");
    }
    let response = app
        .request(Method::POST, "/api/v1/numbers/import")
        .bearer_auth(&admin)
        .json(&json!({"rows": [{"number": "+4930444"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Another Domain's Number is a 404 through my Domain, and its Domain is a 404 for me.
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/numbers/{theirs_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/api/v1/domains/{acme}/numbers/{theirs_id}"),
        Some(json!({"destination": {"type": "hang_up", "cause": "busy"}})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{globex}/numbers"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, page) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/numbers"),
        None,
    )
    .await;
    assert_eq!(numbers_of(&page), ["+4930222"]);
    let (_, still) = call(
        &app,
        &platform,
        Method::GET,
        &format!("/api/v1/numbers/{theirs_id}"),
        None,
    )
    .await;
    assert_eq!(still["destination"], Value::Null, "unchanged");

    // Without credentials: 401.
    let response = app.get("/api/v1/numbers").await;
    assert_eq!(response.status(), 401);
    let response = app.get(&format!("/api/v1/domains/{acme}/numbers")).await;
    assert_eq!(response.status(), 401);
}

async fn bad_numbers_and_destinations_are_a_422_naming_the_field(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let globex = create_domain(&app, &platform, "globex.pbx.test").await;
    let foreign_ext = extension(&app, &platform, &globex, "201", false).await;
    let n = add_number(
        &app,
        &platform,
        json!({"number": "+4930222", "domain_id": acme}),
    )
    .await;
    let path = format!("/api/v1/domains/{acme}/numbers/{}", id_of(&n));

    for bad in ["030123456", "+0301", "+49abc", "", "+1234567890123456"] {
        let (status, problem) = call(
            &app,
            &platform,
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": bad})),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {problem}");
        assert_eq!(field_of(&problem), "number", "{bad}");
        assert_eq!(problem["errors"][0]["code"], "invalid_e164");
    }
    let (status, problem) = call(
        &app,
        &platform,
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"number": "+4930333", "destination": {"type": "hang_up", "cause": "busy"}})),
    )
    .await;
    assert_eq!((status, field_of(&problem).as_str()), (422, "destination"));
    let (status, problem) = call(
        &app,
        &platform,
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"number": "+4930333", "domain_id": Uuid::now_v7()})),
    )
    .await;
    assert_eq!((status, field_of(&problem).as_str()), (422, "domain_id"));
    let (status, problem) = call(
        &app,
        &platform,
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"number": "+49 30 222"})),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "number_taken");

    // Another Domain's Extension and a missing one: the same answer.
    let mut answers = Vec::new();
    for ext in [foreign_ext.clone(), Uuid::now_v7().to_string()] {
        for kind in ["extension", "voicemail"] {
            let (status, problem) = call(
                &app,
                &admin,
                Method::PATCH,
                &path,
                Some(json!({"destination": {"type": kind, "extension_id": ext}})),
            )
            .await;
            assert_eq!(status, 422, "{problem}");
            assert_eq!(field_of(&problem), "destination.extension_id");
            answers.push((problem["errors"].clone(), problem["detail"].clone()));
        }
    }
    assert_eq!(answers[0], answers[2], "indistinguishable");
    // Neither may the platform point a Number at another Domain's Extension.
    let (status, problem) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/numbers/{}", id_of(&n)),
        Some(json!({"destination": {"type": "extension", "extension_id": foreign_ext}})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(field_of(&problem), "destination.extension_id");
    for (destination, field) in [
        (
            json!({"type": "external", "number": "sip:evil@example.com"}),
            "destination.number",
        ),
        (
            json!({"type": "external", "number": "1"}),
            "destination.number",
        ),
        (json!({"type": "hang_up", "cause": "maybe"}), "destination"),
        (json!({"type": "ivr", "id": "x"}), "destination"),
    ] {
        let (status, problem) = call(
            &app,
            &admin,
            Method::PATCH,
            &path,
            Some(json!({"destination": destination})),
        )
        .await;
        assert_eq!(status, 422, "{destination}: {problem}");
        assert!(
            field_of(&problem).starts_with(field),
            "{destination}: {problem}"
        );
    }
    let (_, unchanged) = call(&app, &admin, Method::GET, &path, None).await;
    assert_eq!(unchanged["destination"], Value::Null);
}

async fn twenty_parallel_creates_of_one_number_give_one_201_and_only_409s(app: TestApp) {
    let platform = app.admin_token().await;
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        let token = platform.clone();
        // Spelled differently, normalised to the same number.
        let number = if i % 2 == 0 {
            "+4930765432"
        } else {
            "+49 30 765432"
        };
        tasks.push(tokio::spawn(async move {
            call(
                &app,
                &token,
                Method::POST,
                "/api/v1/numbers",
                Some(json!({"number": number})),
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 409 {
            assert_eq!(body["code"], "number_taken", "{body}");
        }
        statuses.push(status);
    }
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );
    let (_, all) = call(&app, &platform, Method::GET, "/api/v1/numbers", None).await;
    assert_eq!(numbers_of(&all), ["+4930765432"]);
}

async fn a_number_leaving_its_domain_loses_its_destination(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let globex = create_domain(&app, &platform, "globex.pbx.test").await;
    let ada = extension(&app, &admin, &acme, "201", false).await;
    let n = add_number(
        &app,
        &platform,
        json!({"number": "+4930222", "domain_id": acme,
               "destination": {"type": "extension", "extension_id": ada}}),
    )
    .await;
    assert_eq!(n["destination"]["extension_id"], ada.as_str());
    let id = id_of(&n);
    let mut events = app.events.subscribe();

    let (status, moved) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/numbers/{id}"),
        Some(json!({"domain_id": globex})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["domain_id"], globex.as_str());
    assert_eq!(moved["destination"], Value::Null, "Ada is not in globex");
    let (a, g, nid) = (
        Uuid::parse_str(&acme).unwrap(),
        Uuid::parse_str(&globex).unwrap(),
        Uuid::parse_str(&id).unwrap(),
    );
    assert_eq!(
        number_events(&mut events).await,
        [
            (a, ChangeKind::NumberDeleted, nid),
            (g, ChangeKind::NumberCreated, nid)
        ]
    );
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/numbers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "no longer acme's");

    let (_, pointed) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/domains/{globex}/numbers/{id}"),
        Some(json!({"destination": {"type": "hang_up", "cause": "rejected"}})),
    )
    .await;
    assert_eq!(pointed["destination"]["cause"], "rejected");
    let (status, unassigned) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/numbers/{id}"),
        Some(json!({"domain_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{unassigned}");
    assert_eq!(unassigned["domain_id"], Value::Null);
    assert_eq!(unassigned["destination"], Value::Null);
    let seen = number_events(&mut events).await;
    assert_eq!(
        seen,
        [
            (g, ChangeKind::NumberUpdated, nid),
            (g, ChangeKind::NumberDeleted, nid)
        ]
    );
    let actions = audit_actions(
        &app,
        &platform,
        &format!("/api/v1/domains/{globex}/audit?action=number.*"),
    )
    .await;
    assert_eq!(
        actions,
        ["number.unassign", "number.update", "number.assign"]
    );
}

async fn deleting_a_domain_returns_its_numbers_to_the_stock(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let ada = extension(&app, &admin, &acme, "201", false).await;
    let n = add_number(
        &app,
        &platform,
        json!({"number": "+4930222", "domain_id": acme,
               "destination": {"type": "voicemail", "extension_id": ada}}),
    )
    .await;
    add_number(
        &app,
        &platform,
        json!({"number": "+4930333", "domain_id": acme}),
    )
    .await;

    let (status, body) = call(
        &app,
        &platform,
        Method::DELETE,
        &format!("/api/v1/domains/{acme}?force=true"),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let (_, stock) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?assigned=false",
        None,
    )
    .await;
    assert_eq!(numbers_of(&stock), ["+4930222", "+4930333"]);
    let (_, back) = call(
        &app,
        &platform,
        Method::GET,
        &format!("/api/v1/numbers/{}", id_of(&n)),
        None,
    )
    .await;
    assert_eq!(back["domain_id"], Value::Null);
    assert_eq!(back["destination"], Value::Null);
    let actions = audit_actions(&app, &platform, "/api/v1/audit?action=number.unassign").await;
    assert_eq!(actions.len(), 2, "one entry per Number, at platform level");

    // It can be assigned again.
    let other = create_domain(&app, &platform, "other.pbx.test").await;
    let (status, _) = call(
        &app,
        &platform,
        Method::PATCH,
        &format!("/api/v1/numbers/{}", id_of(&n)),
        Some(json!({"domain_id": other})),
    )
    .await;
    assert_eq!(status, 200);
}

async fn an_extension_a_number_points_at_is_deleted_only_with_force(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let ada = extension(&app, &admin, &acme, "201", false).await;
    let grace = extension(&app, &admin, &acme, "202", false).await;
    let a = add_number(
        &app,
        &platform,
        json!({"number": "+4930222", "domain_id": acme,
               "destination": {"type": "extension", "extension_id": ada}}),
    )
    .await;
    let b = add_number(
        &app,
        &platform,
        json!({"number": "+4930333", "domain_id": acme,
               "destination": {"type": "voicemail", "extension_id": ada}}),
    )
    .await;
    let c = add_number(
        &app,
        &platform,
        json!({"number": "+4930444", "domain_id": acme,
               "destination": {"type": "extension", "extension_id": grace}}),
    )
    .await;
    let ext_path = format!("/api/v1/domains/{acme}/extensions/{ada}");

    let (status, problem) = call(&app, &admin, Method::DELETE, &ext_path, None).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "in_use");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("+4930222") && detail.contains("+4930333") && !detail.contains("+4930444"),
        "{detail}"
    );
    let (status, _) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert_eq!(status, 200, "still there");

    let mut events = app.events.subscribe();
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{ext_path}?force=true"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, &admin, Method::GET, &ext_path, None).await;
    assert_eq!(status, 404);
    for (n, expected) in [
        (&a, Value::Null),
        (&b, Value::Null),
        (&c, json!({"type": "extension", "extension_id": grace})),
    ] {
        let (_, now) = call(
            &app,
            &admin,
            Method::GET,
            &format!("/api/v1/domains/{acme}/numbers/{}", id_of(n)),
            None,
        )
        .await;
        assert_eq!(now["destination"], expected, "{}", n["number"]);
    }
    let d = Uuid::parse_str(&acme).unwrap();
    let mut seen = number_events(&mut events).await;
    seen.sort_by_key(|e| e.2);
    let mut expected = vec![
        (
            d,
            ChangeKind::NumberUpdated,
            Uuid::parse_str(&id_of(&a)).unwrap(),
        ),
        (
            d,
            ChangeKind::NumberUpdated,
            Uuid::parse_str(&id_of(&b)).unwrap(),
        ),
    ];
    expected.sort_by_key(|e| e.2);
    assert_eq!(seen, expected);
    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/audit?action=number.update"),
        None,
    )
    .await;
    let reasons: Vec<&Value> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["after"]["reason"])
        .collect();
    assert_eq!(
        reasons,
        [&json!("extension_deleted"), &json!("extension_deleted")]
    );
    let (_, log) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/audit?action=extension.delete"),
        None,
    )
    .await;
    assert_eq!(
        log["items"][0]["after"]["cleared_numbers"],
        json!(["+4930222", "+4930333"])
    );
}

async fn import_json(app: &TestApp, token: &str, query: &str, body: Value) -> (u16, Value) {
    let response = app
        .request(Method::POST, &format!("/api/v1/numbers/import{query}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn an_import_dry_run_writes_nothing_and_one_bad_row_rejects_the_batch(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    extension(&app, &admin, &acme, "201", false).await;
    let rows = json!({"rows": [
        {"number": "+4930100", "domain": "ACME.pbx.test", "destination_type": "extension", "destination": "201"},
        {"number": "+4930101", "description": "spare"},
    ]});
    let (status, report) = import_json(&app, &platform, "?dry_run=true", rows.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["valid"], true);
    assert_eq!(report["imported"], false);
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(2), Some(0))
    );
    let (_, all) = call(&app, &platform, Method::GET, "/api/v1/numbers", None).await;
    assert_eq!(
        numbers_of(&all),
        Vec::<String>::new(),
        "a dry run writes nothing"
    );

    let mut events = app.events.subscribe();
    let (status, problem) = import_json(
        &app,
        &platform,
        "",
        json!({"rows": [
            {"number": "+4930100", "domain": "acme.pbx.test"},
            {"number": "+4930101", "domain": "acme.pbx.test", "destination_type": "extension", "destination": "299"},
            {"number": "0301"},
            {"number": "+4930100"},
            {"number": "+4930104", "domain": "nowhere.pbx.test"},
            {"number": "+4930105", "destination_type": "hang_up", "destination": "busy"},
        ]}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "validation_failed");
    let errors: Vec<(u64, String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (2, "destination".to_owned(), "not_found".to_owned()),
            (3, "number".to_owned(), "invalid_e164".to_owned()),
            (4, "number".to_owned(), "duplicate_in_file".to_owned()),
            (5, "domain".to_owned(), "not_found".to_owned()),
            (6, "destination_type".to_owned(), "unassigned".to_owned()),
        ]
    );
    let (_, all) = call(&app, &platform, Method::GET, "/api/v1/numbers", None).await;
    assert_eq!(numbers_of(&all), Vec::<String>::new(), "all or nothing");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err(),
        "nothing published"
    );
}

async fn an_import_creates_and_updates_numbers_from_json_and_csv(app: TestApp) {
    let (acme, platform, admin) = domain_and_admins(&app, "acme.pbx.test").await;
    let globex = create_domain(&app, &platform, "globex.pbx.test").await;
    let ada = extension(&app, &admin, &acme, "201", false).await;
    let existing = add_number(
        &app,
        &platform,
        json!({"number": "+4930100", "domain_id": globex, "description": "old"}),
    )
    .await;
    add_number(&app, &platform, json!({"number": "+4930109"})).await;
    let mut events = app.events.subscribe();

    let (status, report) = import_json(
        &app,
        &platform,
        "",
        json!({"rows": [
            {"number": "+4930100", "domain": "acme.pbx.test", "description": "Main", "destination_type": "extension", "destination": "201"},
            {"number": "+49 30 101", "domain": "acme.pbx.test", "destination_type": "voicemail", "destination": "201"},
            {"number": "+4930102", "domain": "acme.pbx.test", "destination_type": "external", "destination": "+4940999"},
            {"number": "+4930103", "domain": "acme.pbx.test", "destination_type": "hang_up", "destination": "busy"},
            {"number": "+4930109"},
        ]}),
    )
    .await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["imported"], true);
    assert_eq!(
        (
            report["created"].as_u64(),
            report["updated"].as_u64(),
            report["unchanged"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    let (_, mine) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/domains/{acme}/numbers"),
        None,
    )
    .await;
    let by_number = |n: &str| -> Value {
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["number"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        by_number("+4930100")["id"],
        existing["id"],
        "updated in place"
    );
    assert_eq!(by_number("+4930100")["description"], "Main");
    assert_eq!(
        by_number("+4930100")["destination"],
        json!({"type": "extension", "extension_id": ada})
    );
    assert_eq!(
        by_number("+4930101")["destination"],
        json!({"type": "voicemail", "extension_id": ada})
    );
    assert_eq!(
        by_number("+4930102")["destination"],
        json!({"type": "external", "number": "+4940999"})
    );
    assert_eq!(
        by_number("+4930103")["destination"],
        json!({"type": "hang_up", "cause": "busy"})
    );
    // One event per Domain touched: acme (arrivals) and globex (the move away).
    let mut touched = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        if e.kind == ChangeKind::ImportCompleted {
            touched.push(e.domain_id.to_string());
        }
    }
    touched.sort();
    let mut expected = vec![acme.clone(), globex.clone()];
    expected.sort();
    assert_eq!(touched, expected);
    // The import itself at platform level; each Number in the log of the Domain it is in.
    let actions = audit_actions(&app, &platform, "/api/v1/audit?action=number.*").await;
    assert_eq!(actions, ["number.import", "number.create"]);
    let mut actions = audit_actions(
        &app,
        &admin,
        &format!("/api/v1/domains/{acme}/audit?action=number.*"),
    )
    .await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "number.assign",
            "number.create",
            "number.create",
            "number.create"
        ]
    );

    // CSV: the same columns; moves +4930103 back to the stock, a dry run first.
    let csv = "number;domain;description;destination_type;destination\n\
               +4930103;;;;\n\
               +4930110;acme.pbx.test;Fax;hang_up;unallocated\n";
    let send_csv = |query: &'static str| {
        app.request(Method::POST, &format!("/api/v1/numbers/import{query}"))
            .bearer_auth(&platform)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
    };
    let response = send_csv("?dry_run=true").await.unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let response = send_csv("").await.unwrap();
    assert_eq!(response.status(), 201);
    let (_, stock) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?assigned=false",
        None,
    )
    .await;
    assert_eq!(
        numbers_of(&stock),
        ["+4930109", "+4930103"],
        "in creation order"
    );
    let (_, fax) = call(
        &app,
        &platform,
        Method::GET,
        "/api/v1/numbers?q=4930110",
        None,
    )
    .await;
    assert_eq!(
        fax["items"][0]["destination"],
        json!({"type": "hang_up", "cause": "unallocated"})
    );

    let response = app
        .request(Method::POST, "/api/v1/numbers/import")
        .bearer_auth(&platform)
        .header("content-type", "text/csv")
        .body("number,owner\n+4930111,x\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}
