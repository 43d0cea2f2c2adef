//! Call flows end to end: ring groups, IVR menus and time conditions of a Domain through the real
//! server.
//!
//! - CRUD of each kind with its defaults, JSON merge patches (left out: kept; `null`: reset) and
//!   the time condition's override on its own endpoint;
//! - refusals naming the field: bad settings, unknown and read-only fields, references to
//!   flows and Extensions that are missing or another Domain's;
//! - the destination graph: loops no caller's key press leaves are a 409 `loop`, loops through
//!   a menu key are allowed;
//! - uniqueness of names (per kind), numbers (against flows and Extensions) and override codes;
//! - deletes refused while something points at the flow, and an Extension leaving the flows
//!   that name it when deleted with `?force=true`;
//! - tenant isolation, permissions by role and API key, audit entries and live events;
//! - what a call does: "explain a call" from a carrier through a time condition, a menu and a
//!   ring group, and the mod_xml_curl dialplan answers FreeSWITCH gets;
//! - races on the real server: one number, two halves of a loop, a flow against an Extension,
//!   a delete against a Number pointed at the flow.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use switchboard_tests::{TestApp, assert_problem, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, extension, id_of};
use crate::events::Reader;
use crate::users::{call, create_domain, create_user, token_of};
use crate::xmlcurl::fixture;

both_databases!(
    a_ring_group_is_created_read_listed_patched_and_deleted,
    ivr_menus_and_time_conditions_keep_their_settings_and_the_override_has_its_own_endpoint,
    bad_bodies_are_a_422_naming_the_field,
    references_must_name_flows_and_extensions_of_the_same_domain,
    loops_without_a_key_press_are_refused_and_loops_through_a_menu_key_are_allowed,
    names_numbers_and_override_codes_are_unique_in_the_domain,
    a_flow_in_use_is_not_deleted_and_the_refusal_names_its_users,
    a_member_extension_is_deleted_only_with_force_and_then_leaves_the_flows,
    another_domain_gets_404_and_roles_without_the_permission_403,
    changes_are_audited_and_reach_the_live_stream,
    explain_follows_a_number_through_time_condition_menu_and_ring_group,
    freeswitch_gets_a_bridge_for_a_ring_group_and_a_menu_for_an_ivr,
    parallel_creates_of_one_number_give_one_201_and_only_409s,
    two_patches_closing_a_loop_together_never_both_succeed,
    a_flow_and_an_extension_racing_for_one_number_never_both_win,
    deleting_a_group_while_a_number_is_pointed_at_it_never_both_succeed,
    a_flows_number_follows_the_extension_number_rules_and_an_import_cannot_take_it,
    call_flows_are_imported_all_or_nothing_pointing_at_each_other,
);

const SIP: &str = "acme.example.net";
const RG: &str = "ring-groups";
const IVR: &str = "ivr-menus";
const TC: &str = "time-conditions";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A Domain with its own domain_admin, and the platform administrator.
struct Pbx {
    domain: String,
    platform: String,
    admin: String,
}

async fn pbx(app: &TestApp, sip_domain: &str) -> Pbx {
    let (domain, platform) = domain_with_admin(app, sip_domain).await;
    let email = format!("admin@{sip_domain}");
    create_user(app, &platform, &domain, &email, &["domain_admin"]).await;
    let admin = token_of(app, &email).await;
    Pbx {
        domain,
        platform,
        admin,
    }
}

impl Pbx {
    /// `/api/v1/domains/{domain}/{rest}`.
    fn path(&self, rest: &str) -> String {
        format!("/api/v1/domains/{}/{rest}", self.domain)
    }

    /// The path of one flow of `kind`.
    fn item(&self, kind: &str, id: &str) -> String {
        self.path(&format!("{kind}/{id}"))
    }

    /// Sends as the Domain admin.
    async fn send(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(app, &self.admin, method, path, body).await
    }

    /// Creates a flow of `kind` (201) and returns it.
    async fn create(&self, app: &TestApp, kind: &str, body: Value) -> Value {
        create(app, &self.admin, &self.domain, kind, body).await
    }

    /// Patches a flow (200) and returns it.
    async fn patch(&self, app: &TestApp, kind: &str, id: &str, body: Value) -> Value {
        let (status, changed) = self
            .send(app, Method::PATCH, &self.item(kind, id), Some(body.clone()))
            .await;
        assert_eq!(status, 200, "patching {kind} {id} with {body}: {changed}");
        changed
    }

    /// Reads a flow (200).
    async fn get(&self, app: &TestApp, kind: &str, id: &str) -> Value {
        let (status, read) = self
            .send(app, Method::GET, &self.item(kind, id), None)
            .await;
        assert_eq!(status, 200, "reading {kind} {id}: {read}");
        read
    }

    /// A Number of the stock assigned to the Domain, pointing at `destination`.
    async fn number(&self, app: &TestApp, e164: &str, destination: Value) -> Value {
        let (status, created) = call(
            app,
            &self.platform,
            Method::POST,
            "/api/v1/numbers",
            Some(json!({"number": e164, "domain_id": self.domain, "destination": destination})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// The actions of the Domain's audit log matching `filter` (e.g. `ring_group.*`), newest
    /// first.
    async fn audit(&self, app: &TestApp, filter: &str) -> Vec<Value> {
        let (status, page) = self
            .send(
                app,
                Method::GET,
                &self.path(&format!("audit?action={filter}")),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().expect("items").clone()
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect()
}

/// `(field, code)` of every field error of a problem.
fn field_errors(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default().to_owned(),
                e["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts a 422 `validation_failed` naming `field` with `code`.
fn assert_invalid(answer: &(u16, Value), field: &str, code: &str, what: &str) {
    let (status, problem) = answer;
    assert_eq!(*status, 422, "{what}: {problem}");
    assert_eq!(problem["code"], "validation_failed", "{what}: {problem}");
    let errors = field_errors(problem);
    assert!(
        errors.iter().any(|(f, c)| f == field && c == code),
        "{what}: expected {field} {code} in {errors:?}"
    );
}

/// Asserts a 409 with `code` (and the field, when given).
fn assert_conflict(answer: &(u16, Value), code: &str, field: Option<&str>, what: &str) {
    let (status, problem) = answer;
    assert_eq!(*status, 409, "{what}: {problem}");
    assert_eq!(problem["code"], code, "{what}: {problem}");
    if let Some(field) = field {
        assert_eq!(problem["errors"][0]["field"], field, "{what}: {problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{what}: {problem}");
    }
}

/// Asserts that `read` is the flow `expected`: every field equal, the timestamps the same
/// instant to the microsecond (what PostgreSQL stores; a write's answer may carry nanoseconds).
fn assert_same_flow(read: &Value, expected: &Value, what: &str) {
    let without_times = |v: &Value| {
        let mut v = v.clone();
        let fields = v.as_object_mut().expect("a flow object");
        fields.remove("created_at");
        fields.remove("updated_at");
        v
    };
    assert_eq!(without_times(read), without_times(expected), "{what}");
    for at in ["created_at", "updated_at"] {
        assert_eq!(micros(read, at), micros(expected, at), "{what}: {at}");
    }
}

/// The timestamp `at` of `v`, in microseconds.
fn micros(v: &Value, at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v[at].as_str().expect("a timestamp"))
        .unwrap_or_else(|e| panic!("{at} is no RFC 3339 time ({e}): {v}"))
        .timestamp_micros()
}

fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap_or_default()
}

fn hang_up(cause: &str) -> Value {
    json!({"type": "hang_up", "cause": cause})
}

fn to_group(id: &str) -> Value {
    json!({"type": "ring_group", "ring_group_id": id})
}

fn to_ivr(id: &str) -> Value {
    json!({"type": "ivr", "ivr_id": id})
}

fn to_condition(id: &str) -> Value {
    json!({"type": "time_condition", "time_condition_id": id})
}

/// Monday to Friday, 09:00–17:00.
fn office_hours() -> Value {
    json!([{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}])
}

/// One answer of a request sent in a race: status, `Retry-After`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

async fn race_send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let response = app.send_as(token, method, path, body.as_ref()).await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("reading the body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        status,
        retry_after,
        body,
    }
}

/// Checks that an answer of a race is one of `allowed`, or the overload answer (503 with
/// `Retry-After`); never a 500.
fn assert_race_answer(a: &Answer, allowed: &[u16]) {
    assert_ne!(a.status, 500, "never a 500: {a:?}");
    if a.status == 503 {
        assert!(a.retry_after.is_some(), "a 503 says when to retry: {a:?}");
        return;
    }
    assert!(allowed.contains(&a.status), "{a:?} not in {allowed:?}");
}

// ---------------------------------------------------------------------------------------------
// CRUD
// ---------------------------------------------------------------------------------------------

async fn a_ring_group_is_created_read_listed_patched_and_deleted(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;
    let bob = extension(&app, &p.admin, &p.domain, "202", false).await;

    let body = json!({
        "name": "Sales", "number": "600", "strategy": "sequential",
        "members": [{"extension_id": alice, "ring_secs": 15}, {"number": " +4930987654 "}],
        "caller_id_prefix": "Sales: ",
        "when_unanswered": {"type": "voicemail", "extension_id": alice},
    });
    let response = app
        .send_as(&p.admin, Method::POST, &p.path(RG), Some(&body))
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let sales: Value = response.json().await.unwrap();
    let id = id_of(&sales);
    assert_eq!(location, p.item(RG, &id));
    assert_eq!(sales["domain_id"], p.domain.as_str());
    assert_eq!(sales["name"], "Sales");
    assert_eq!(sales["number"], "600");
    assert_eq!(sales["strategy"], "sequential");
    assert_eq!(sales["ring_secs"], 60, "the default");
    assert_eq!(
        sales["members"],
        json!([{"extension_id": alice, "ring_secs": 15}, {"number": "+4930987654", "ring_secs": 20}]),
        "trimmed, with the default ring time"
    );
    assert_eq!(sales["skip_busy"], true);
    assert_eq!(sales["caller_id_prefix"], "Sales: ");
    assert_eq!(
        sales["when_unanswered"],
        json!({"type": "voicemail", "extension_id": alice})
    );
    assert!(sales["created_at"].is_string() && sales["updated_at"].is_string());
    assert!(
        sales.get("override").is_none(),
        "only time conditions have one"
    );

    // A name alone: every default.
    let support = p.create(&app, RG, json!({"name": "Support"})).await;
    assert_eq!(support["number"], Value::Null);
    assert_eq!(support["strategy"], "simultaneous");
    assert_eq!(support["ring_secs"], 60);
    assert_eq!(support["members"], json!([]));
    assert_eq!(support["skip_busy"], true);
    assert_eq!(support["caller_id_prefix"], "");
    assert_eq!(support["when_unanswered"], hang_up("unallocated"));
    p.create(&app, RG, json!({"name": "Accounts"})).await;

    // Listed by name; read as created.
    let (status, list) = p.send(&app, Method::GET, &p.path(RG), None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Accounts", "Sales", "Support"]);
    assert_same_flow(&p.get(&app, RG, &id).await, &sales, "read as created");
    // Not an IVR menu nor a time condition.
    for other in [IVR, TC] {
        let (status, _) = p.send(&app, Method::GET, &p.item(other, &id), None).await;
        assert_eq!(status, 404, "a ring group under {other}");
    }

    // A merge patch: what is left out stays.
    let changed = p
        .patch(&app, RG, &id, json!({"ring_secs": 30, "skip_busy": false}))
        .await;
    assert_eq!(
        (&changed["ring_secs"], &changed["skip_busy"]),
        (&json!(30), &json!(false))
    );
    for kept in [
        "name",
        "number",
        "strategy",
        "members",
        "caller_id_prefix",
        "when_unanswered",
    ] {
        assert_eq!(changed[kept], sales[kept], "{kept} is kept");
    }
    assert_eq!(micros(&changed, "created_at"), micros(&sales, "created_at"));
    assert!(micros(&changed, "updated_at") >= micros(&sales, "updated_at"));
    // `null` resets a field to its default.
    let reset = p
        .patch(
            &app,
            RG,
            &id,
            json!({"caller_id_prefix": null, "number": null, "strategy": null, "when_unanswered": null}),
        )
        .await;
    assert_eq!(reset["caller_id_prefix"], "");
    assert_eq!(reset["number"], Value::Null);
    assert_eq!(reset["strategy"], "simultaneous");
    assert_eq!(reset["when_unanswered"], hang_up("unallocated"));
    assert_eq!(reset["ring_secs"], 30, "still as patched before");
    // A list is replaced whole.
    let replaced = p
        .patch(
            &app,
            RG,
            &id,
            json!({"members": [{"extension_id": bob}], "name": "Sales team"}),
        )
        .await;
    assert_eq!(
        replaced["members"],
        json!([{"extension_id": bob, "ring_secs": 20}])
    );
    assert_eq!(replaced["name"], "Sales team");
    assert_same_flow(&p.get(&app, RG, &id).await, &replaced, "stored as answered");

    // Deleted: gone.
    let (status, body) = p.send(&app, Method::DELETE, &p.item(RG, &id), None).await;
    assert_eq!((status, body), (204, Value::Null));
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .send_as(&p.admin, method.clone(), &p.item(RG, &id), None)
            .await;
        assert_problem(response, 404, "not_found").await;
    }
    let response = app
        .send_as(
            &p.admin,
            Method::PATCH,
            &p.item(RG, &id),
            Some(&json!({"ring_secs": 20})),
        )
        .await;
    assert_problem(response, 404, "not_found").await;

    assert_eq!(
        actions(&p.audit(&app, "ring_group.*").await),
        [
            "ring_group.delete",
            "ring_group.update",
            "ring_group.update",
            "ring_group.update",
            "ring_group.create",
            "ring_group.create",
            "ring_group.create",
        ]
    );
}

async fn ivr_menus_and_time_conditions_keep_their_settings_and_the_override_has_its_own_endpoint(
    app: TestApp,
) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;

    // An IVR menu with every field, and one with the defaults.
    let main = p
        .create(
            &app,
            IVR,
            json!({
                "name": "Main", "number": "500",
                "greeting": {"type": "builtin", "prompt": "welcome"},
                "options": [
                    {"digits": "1", "destination": {"type": "extension", "extension_id": alice}},
                    {"digits": "*9", "destination": hang_up("normal")},
                    {"digits": "#", "destination": {"type": "external", "number": "+4930999888"}},
                ],
                "direct_dial": true, "timeout_secs": 7, "max_tries": 2,
                "when_no_choice": {"type": "voicemail", "extension_id": alice},
            }),
        )
        .await;
    let main_id = id_of(&main);
    assert_eq!(
        main["greeting"],
        json!({"type": "builtin", "prompt": "welcome"})
    );
    assert_eq!(main["options"].as_array().unwrap().len(), 3);
    assert_eq!(main["options"][1]["digits"], "*9");
    assert_eq!(
        main["options"][2]["destination"],
        json!({"type": "external", "number": "+4930999888"})
    );
    assert_eq!(
        (
            &main["direct_dial"],
            &main["timeout_secs"],
            &main["max_tries"]
        ),
        (&json!(true), &json!(7), &json!(2))
    );
    assert_eq!(
        main["when_no_choice"],
        json!({"type": "voicemail", "extension_id": alice})
    );
    let bare = p.create(&app, IVR, json!({"name": "Bare"})).await;
    assert_eq!(
        bare["greeting"],
        json!({"type": "builtin", "prompt": "beep"})
    );
    assert_eq!(bare["options"], json!([]));
    assert_eq!(bare["direct_dial"], false);
    assert_eq!(bare["timeout_secs"], 5);
    assert_eq!(bare["max_tries"], 3);
    assert_eq!(bare["when_no_choice"], hang_up("unallocated"));
    assert!(bare.get("override").is_none());

    // A nested object is merged; a list reset with null.
    let changed = p
        .patch(
            &app,
            IVR,
            &main_id,
            json!({"greeting": {"prompt": "make_a_choice"}, "options": null}),
        )
        .await;
    assert_eq!(
        changed["greeting"],
        json!({"type": "builtin", "prompt": "make_a_choice"})
    );
    assert_eq!(changed["options"], json!([]));
    assert_eq!(changed["timeout_secs"], 7, "kept");
    assert_same_flow(
        &p.get(&app, IVR, &main_id).await,
        &changed,
        "stored as answered",
    );

    // A time condition: its schedule, normalised, and the override `auto`.
    let hours = p
        .create(
            &app,
            TC,
            json!({
                "name": "Office hours", "time_zone": "America/New_York",
                "weekly": [{"days": ["Mon", " tue "], "from": "09:00", "to": "17:00"},
                           {"days": ["sat"], "from": "10:00", "to": "24:00"}],
                "special_days": [{"name": "Christmas", "date": "2026-12-25", "every_year": true},
                                 {"date": "2026-12-05", "hours": [{"from": "10:00", "to": "12:00"}]}],
                "override_code": " 1 ",
                "when_open": to_ivr(&main_id),
                "when_closed": {"type": "voicemail", "extension_id": alice},
            }),
        )
        .await;
    let hours_id = id_of(&hours);
    assert_eq!(hours["time_zone"], "America/New_York");
    assert_eq!(
        hours["weekly"],
        json!([{"days": ["mon", "tue"], "from": "09:00", "to": "17:00"},
               {"days": ["sat"], "from": "10:00", "to": "24:00"}])
    );
    assert_eq!(
        hours["special_days"],
        json!([{"name": "Christmas", "date": "2026-12-25", "every_year": true, "hours": []},
               {"name": "", "date": "2026-12-05", "every_year": false,
                "hours": [{"from": "10:00", "to": "12:00"}]}])
    );
    assert_eq!(hours["override_code"], "1", "trimmed");
    assert_eq!(hours["override"], "auto");
    assert_eq!(hours["when_open"], to_ivr(&main_id));
    let defaults = p.create(&app, TC, json!({"name": "Always"})).await;
    assert!(defaults["time_zone"].is_null(), "the Domain's: {defaults}");
    assert_eq!(defaults["weekly"], json!([]));
    assert_eq!(defaults["special_days"], json!([]));
    assert!(defaults["override_code"].is_null());
    assert_eq!(defaults["when_open"], hang_up("unallocated"));
    assert_eq!(defaults["when_closed"], hang_up("unallocated"));

    // The time zone back to the Domain's; the rest kept.
    let changed = p
        .patch(&app, TC, &hours_id, json!({"time_zone": null}))
        .await;
    assert!(changed["time_zone"].is_null(), "{changed}");
    assert_eq!(changed["weekly"], hours["weekly"]);

    // The override: its own endpoint, never a field of a patch.
    let override_path = format!("{}/override", p.item(TC, &hours_id));
    for mode in ["closed", "open", "auto", "closed"] {
        let (status, switched) = p
            .send(
                &app,
                Method::PUT,
                &override_path,
                Some(json!({"override": mode})),
            )
            .await;
        assert_eq!(status, 200, "{switched}");
        assert_eq!(switched["override"], mode);
        assert_eq!(switched["weekly"], hours["weekly"], "nothing else changes");
    }
    assert_eq!(p.get(&app, TC, &hours_id).await["override"], "closed");
    for bad in [
        json!({"override": "sideways"}),
        json!({"override": "open", "why": "x"}),
        json!({}),
    ] {
        let response = app
            .send_as(&p.admin, Method::PUT, &override_path, Some(&bad))
            .await;
        assert_eq!(response.status(), 422, "{bad}");
    }
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(TC, &hours_id),
            Some(json!({"override": "open"})),
        )
        .await;
    assert_invalid(&answer, "override", "read_only", "override in a patch");
    // Only a time condition has an override.
    let (status, _) = p
        .send(
            &app,
            Method::PUT,
            &format!("{}/override", p.item(TC, &main_id)),
            Some(json!({"override": "open"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(p.get(&app, TC, &hours_id).await["override"], "closed");

    let log = p.audit(&app, "time_condition.override").await;
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0]["before"], json!({"override": "auto"}));
    assert_eq!(log[0]["after"], json!({"override": "closed"}));
    assert_eq!(
        log[0]["target"],
        json!({"kind": "time_condition", "id": hours_id})
    );
    assert_eq!(
        actions(&p.audit(&app, "ivr.*").await),
        ["ivr.update", "ivr.create", "ivr.create"]
    );
    assert_eq!(
        actions(&p.audit(&app, "time_condition.*").await),
        [
            "time_condition.override",
            "time_condition.override",
            "time_condition.override",
            "time_condition.override",
            "time_condition.update",
            "time_condition.create",
            "time_condition.create",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

async fn bad_bodies_are_a_422_naming_the_field(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;
    let name = |extra: Value| {
        let mut body = json!({"name": "X"});
        for (k, v) in extra.as_object().unwrap() {
            body[k.as_str()] = v.clone();
        }
        body
    };
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        // Common to every kind.
        (RG, json!({}), "name", "invalid_name"),
        (RG, json!({"name": "   "}), "name", "invalid_name"),
        (
            IVR,
            json!({"name": "x".repeat(101)}),
            "name",
            "invalid_name",
        ),
        (TC, json!({"name": 7}), "name", "invalid"),
        (
            RG,
            name(json!({"number": "60a"})),
            "number",
            "invalid_number",
        ),
        (
            IVR,
            name(json!({"number": "12345678901"})),
            "number",
            "invalid_number",
        ),
        (RG, name(json!({"colour": "red"})), "colour", "invalid"),
        (IVR, name(json!({"colour": "red"})), "colour", "invalid"),
        (TC, name(json!({"colour": "red"})), "colour", "invalid"),
        (RG, name(json!({"id": Uuid::now_v7()})), "id", "read_only"),
        (
            IVR,
            name(json!({"domain_id": p.domain})),
            "domain_id",
            "read_only",
        ),
        (
            TC,
            name(json!({"override": "open"})),
            "override",
            "read_only",
        ),
        (
            RG,
            name(json!({"created_at": "2026-01-01T00:00:00Z"})),
            "created_at",
            "read_only",
        ),
        (RG, json!([]), "body", "invalid_type"),
        // Ring groups.
        (
            RG,
            name(json!({"ring_secs": 4})),
            "ring_secs",
            "out_of_range",
        ),
        (
            RG,
            name(json!({"ring_secs": 601})),
            "ring_secs",
            "out_of_range",
        ),
        (
            RG,
            name(json!({"members": [{"extension_id": alice, "number": "+4930111"}]})),
            "members[0]",
            "invalid_member",
        ),
        (
            RG,
            name(json!({"members": [{}]})),
            "members[0]",
            "invalid_member",
        ),
        (
            RG,
            name(
                json!({"members": [{"number": "+4930111"}, {"number": "+4930222", "ring_secs": 4}]}),
            ),
            "members[1].ring_secs",
            "out_of_range",
        ),
        (
            RG,
            name(json!({"members": [{"number": "+4930111", "ring_secs": 301}]})),
            "members[0].ring_secs",
            "out_of_range",
        ),
        (
            RG,
            name(json!({"members": [{"extension_id": alice}, {"extension_id": alice}]})),
            "members[1].extension_id",
            "duplicate",
        ),
        (
            RG,
            name(json!({"members": [{"number": "sip:x@example.com"}]})),
            "members[0].number",
            "invalid_number",
        ),
        (
            RG,
            name(json!({"caller_id_prefix": "p".repeat(31)})),
            "caller_id_prefix",
            "invalid_prefix",
        ),
        (
            RG,
            name(json!({"when_unanswered": {"type": "external", "number": "1"}})),
            "when_unanswered.number",
            "invalid_number",
        ),
        // IVR menus.
        (
            IVR,
            name(json!({"greeting": {"type": "builtin", "prompt": "nope"}})),
            "greeting.prompt",
            "invalid_choice",
        ),
        (
            IVR,
            name(json!({"timeout_secs": 0})),
            "timeout_secs",
            "out_of_range",
        ),
        (
            IVR,
            name(json!({"timeout_secs": 61})),
            "timeout_secs",
            "out_of_range",
        ),
        (
            IVR,
            name(json!({"max_tries": 0})),
            "max_tries",
            "out_of_range",
        ),
        (
            IVR,
            name(json!({"max_tries": 11})),
            "max_tries",
            "out_of_range",
        ),
        (
            IVR,
            name(json!({"options": [{"digits": "1234", "destination": hang_up("busy")}]})),
            "options[0].digits",
            "invalid_digits",
        ),
        (
            IVR,
            name(json!({"options": [{"digits": "a", "destination": hang_up("busy")}]})),
            "options[0].digits",
            "invalid_digits",
        ),
        (
            IVR,
            name(
                json!({"options": [{"digits": "1", "destination": hang_up("busy")},
                                   {"digits": "1", "destination": hang_up("normal")}]}),
            ),
            "options[1].digits",
            "duplicate",
        ),
        (
            IVR,
            name(
                json!({"options": [{"digits": "1", "destination": hang_up("busy")},
                                   {"digits": "12", "destination": hang_up("normal")}]}),
            ),
            "options[1].digits",
            "unreachable",
        ),
        (
            IVR,
            name(
                json!({"options": [{"digits": "*1", "destination": hang_up("busy")},
                                   {"digits": "*", "destination": hang_up("normal")}]}),
            ),
            "options[0].digits",
            "unreachable",
        ),
        (
            IVR,
            name(
                json!({"options": [{"digits": "2", "destination": {"type": "external", "number": "x"}}]}),
            ),
            "options[0].destination.number",
            "invalid_number",
        ),
        // Time conditions.
        (
            TC,
            name(json!({"time_zone": "Mars/Olympus"})),
            "time_zone",
            "invalid_time_zone",
        ),
        (
            TC,
            name(json!({"weekly": [{"days": ["funday"], "from": "09:00", "to": "17:00"}]})),
            "weekly[0].days[0]",
            "invalid_day",
        ),
        (
            TC,
            name(json!({"weekly": [{"days": [], "from": "09:00", "to": "17:00"}]})),
            "weekly[0].days",
            "required",
        ),
        (
            TC,
            name(json!({"weekly": [{"days": ["mon"], "from": "9:00", "to": "17:00"}]})),
            "weekly[0].from",
            "invalid_time",
        ),
        (
            TC,
            name(json!({"weekly": [{"days": ["mon"], "from": "17:00", "to": "09:00"}]})),
            "weekly[0].to",
            "invalid_span",
        ),
        (
            TC,
            name(json!({"special_days": [{"date": "2026-13-01"}]})),
            "special_days[0].date",
            "invalid_date",
        ),
        (
            TC,
            name(
                json!({"special_days": [{"date": "2026-12-24", "hours": [{"from": "10:00", "to": "25:00"}]}]}),
            ),
            "special_days[0].hours[0].to",
            "invalid_time",
        ),
        (
            TC,
            name(json!({"override_code": "1234"})),
            "override_code",
            "invalid_code",
        ),
        (
            TC,
            name(json!({"override_code": "1a"})),
            "override_code",
            "invalid_code",
        ),
    ];
    for (kind, body, field, code) in &cases {
        let answer = p
            .send(&app, Method::POST, &p.path(kind), Some(body.clone()))
            .await;
        assert_invalid(&answer, field, code, &format!("POST {kind} {body}"));
    }
    // Values of the wrong type or an unknown choice: refused, never stored. (Only a 422 is
    // asserted: serde's errors name such a field `body`, or a nested key without its path.)
    for (kind, body) in [
        (RG, name(json!({"strategy": "sideways"}))),
        (RG, name(json!({"ring_secs": "sixty"}))),
        (
            RG,
            name(json!({"members": [{"extension_id": "not-a-uuid"}]})),
        ),
        (RG, name(json!({"when_unanswered": {"type": "fax"}}))),
        (RG, name(json!({"when_unanswered": hang_up("politely")}))),
        (
            IVR,
            name(json!({"greeting": {"type": "upload", "prompt": "x"}})),
        ),
        (IVR, name(json!({"options": [{"digits": "1"}]}))),
        (TC, name(json!({"weekly": "always"}))),
    ] {
        let (status, problem) = p
            .send(&app, Method::POST, &p.path(kind), Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["code"], "validation_failed", "{body}");
        assert!(!field_errors(&problem).is_empty(), "{problem}");
    }
    for kind in [RG, IVR, TC] {
        let (_, list) = p.send(&app, Method::GET, &p.path(kind), None).await;
        assert_eq!(list["items"], json!([]), "nothing was stored under {kind}");
    }

    // A patch is checked as a whole object, and changes nothing when refused.
    let group = p
        .create(&app, RG, json!({"name": "Sales", "ring_secs": 30}))
        .await;
    let id = id_of(&group);
    for (body, field, code) in [
        (json!({"ring_secs": 700}), "ring_secs", "out_of_range"),
        (json!({"name": null}), "name", "invalid_name"),
        (
            json!({"updated_at": "2026-01-01T00:00:00Z"}),
            "updated_at",
            "read_only",
        ),
        (json!({"id": Uuid::now_v7()}), "id", "read_only"),
        (
            json!({"members": [{"number": "+4930111", "extension_id": alice}]}),
            "members[0]",
            "invalid_member",
        ),
        (json!({"colour": "red"}), "colour", "invalid"),
    ] {
        let answer = p
            .send(&app, Method::PATCH, &p.item(RG, &id), Some(body.clone()))
            .await;
        assert_invalid(&answer, field, code, &format!("PATCH {body}"));
    }
    assert_same_flow(&p.get(&app, RG, &id).await, &group, "unchanged");
    // Malformed JSON: the usual problem.
    let response = app
        .request(Method::POST, &p.path(RG))
        .bearer_auth(&p.admin)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 400 | 422),
        "{}",
        response.status()
    );
}

async fn references_must_name_flows_and_extensions_of_the_same_domain(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let globex = create_domain(&app, &p.platform, "globex.example.net").await;
    let theirs_ext = extension(&app, &p.platform, &globex, "201", false).await;
    let theirs_group =
        id_of(&create(&app, &p.platform, &globex, RG, json!({"name": "Theirs"})).await);
    let theirs_ivr =
        id_of(&create(&app, &p.platform, &globex, IVR, json!({"name": "Theirs"})).await);
    let ours_ext = extension(&app, &p.admin, &p.domain, "201", false).await;
    let ours_group = id_of(&p.create(&app, RG, json!({"name": "Ours"})).await);
    let missing = Uuid::now_v7().to_string();

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            RG,
            json!({"members": [{"extension_id": ours_ext}, {"extension_id": theirs_ext}]}),
            "members[1].extension_id",
        ),
        (
            RG,
            json!({"members": [{"extension_id": missing}]}),
            "members[0].extension_id",
        ),
        (
            RG,
            json!({"when_unanswered": {"type": "voicemail", "extension_id": theirs_ext}}),
            "when_unanswered.extension_id",
        ),
        (
            RG,
            json!({"when_unanswered": to_group(&missing)}),
            "when_unanswered.ring_group_id",
        ),
        (
            RG,
            json!({"when_unanswered": to_group(&theirs_group)}),
            "when_unanswered.ring_group_id",
        ),
        // One of my flows, but not of the kind named.
        (
            RG,
            json!({"when_unanswered": to_ivr(&ours_group)}),
            "when_unanswered.ivr_id",
        ),
        (
            IVR,
            json!({"options": [{"digits": "1", "destination": to_ivr(&theirs_ivr)}]}),
            "options[0].destination.ivr_id",
        ),
        (
            IVR,
            json!({"options": [{"digits": "1", "destination": to_condition(&missing)}]}),
            "options[0].destination.time_condition_id",
        ),
        (
            IVR,
            json!({"when_no_choice": {"type": "extension", "extension_id": theirs_ext}}),
            "when_no_choice.extension_id",
        ),
        (
            TC,
            json!({"when_open": to_group(&theirs_group)}),
            "when_open.ring_group_id",
        ),
        (
            TC,
            json!({"when_closed": {"type": "voicemail", "extension_id": missing}}),
            "when_closed.extension_id",
        ),
    ];
    let mut answers = Vec::new();
    for (kind, mut body, field) in cases {
        body["name"] = json!("New");
        let answer = p
            .send(&app, Method::POST, &p.path(kind), Some(body.clone()))
            .await;
        assert_invalid(&answer, field, "not_found", &format!("{kind} {body}"));
        answers.push(answer.1);
    }
    // Another Domain's Extension is indistinguishable from a missing one.
    assert_eq!(
        answers[0]["errors"][0]["message"],
        answers[1]["errors"][0]["message"]
    );
    assert_eq!(answers[3]["errors"], answers[4]["errors"]);
    // A patch is checked the same way.
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &ours_group),
            Some(json!({"when_unanswered": to_group(&theirs_group)})),
        )
        .await;
    assert_invalid(
        &answer,
        "when_unanswered.ring_group_id",
        "not_found",
        "patch",
    );

    // Numbers point at flows of their own Domain only.
    let n = p.number(&app, "+4930555100", Value::Null).await;
    let number_path = p.path(&format!("numbers/{}", id_of(&n)));
    for (destination, field) in [
        (to_group(&theirs_group), "destination.ring_group_id"),
        (to_ivr(&missing), "destination.ivr_id"),
        (to_condition(&ours_group), "destination.time_condition_id"),
    ] {
        let answer = p
            .send(
                &app,
                Method::PATCH,
                &number_path,
                Some(json!({"destination": destination})),
            )
            .await;
        assert_invalid(&answer, field, "not_found", &format!("{destination}"));
    }
    let (status, pointed) = p
        .send(
            &app,
            Method::PATCH,
            &number_path,
            Some(json!({"destination": to_group(&ours_group)})),
        )
        .await;
    assert_eq!(status, 200, "{pointed}");
    assert_eq!(pointed["destination"], to_group(&ours_group));
    let (_, read) = p.send(&app, Method::GET, &number_path, None).await;
    assert_eq!(
        read["destination"],
        to_group(&ours_group),
        "stored as given"
    );
}

async fn loops_without_a_key_press_are_refused_and_loops_through_a_menu_key_are_allowed(
    app: TestApp,
) {
    let p = pbx(&app, SIP).await;
    let a = id_of(&p.create(&app, RG, json!({"name": "Alpha"})).await);
    let b = id_of(
        &p.create(
            &app,
            RG,
            json!({"name": "Bravo", "when_unanswered": to_group(&a)}),
        )
        .await,
    );

    // Alpha → Bravo → Alpha, nobody answering anywhere.
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &a),
            Some(json!({"when_unanswered": to_group(&b)})),
        )
        .await;
    assert_conflict(&answer, "loop", None, "Alpha → Bravo → Alpha");
    assert!(
        detail(&answer.1).contains("\"Alpha\"") && detail(&answer.1).contains("\"Bravo\""),
        "the loop is named: {}",
        answer.1
    );
    assert_eq!(
        p.get(&app, RG, &a).await["when_unanswered"],
        hang_up("unallocated"),
        "unchanged"
    );
    // A group to itself.
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &a),
            Some(json!({"when_unanswered": to_group(&a)})),
        )
        .await;
    assert_conflict(&answer, "loop", None, "Alpha → Alpha");

    // A menu whose key 9 repeats the menu: the caller chooses, allowed.
    let menu = id_of(&p.create(&app, IVR, json!({"name": "Main"})).await);
    let again = p
        .patch(
            &app,
            IVR,
            &menu,
            json!({"options": [{"digits": "9", "destination": to_ivr(&menu)}]}),
        )
        .await;
    assert_eq!(again["options"][0]["destination"], to_ivr(&menu));
    // …but "no choice" back to itself loops by itself.
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(IVR, &menu),
            Some(json!({"when_no_choice": to_ivr(&menu)})),
        )
        .await;
    assert_conflict(&answer, "loop", None, "menu → itself without a key");

    // Charlie → Main, whose key 1 goes back to Charlie: allowed.
    let c = id_of(
        &p.create(
            &app,
            RG,
            json!({"name": "Charlie", "when_unanswered": to_ivr(&menu)}),
        )
        .await,
    );
    p.patch(
        &app,
        IVR,
        &menu,
        json!({"options": [{"digits": "1", "destination": to_group(&c)},
                           {"digits": "9", "destination": to_ivr(&menu)}]}),
    )
    .await;
    // Main's "no choice" to Charlie: Main → Charlie → Main without a key.
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(IVR, &menu),
            Some(json!({"when_no_choice": to_group(&c)})),
        )
        .await;
    assert_conflict(&answer, "loop", None, "Main → Charlie → Main");
    assert!(detail(&answer.1).contains("\"Main\""), "{}", answer.1);
    // A new menu created straight into such a loop.
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(IVR),
            Some(json!({"name": "Second", "when_no_choice": to_group(&c)})),
        )
        .await;
    assert_eq!(
        answer.0, 201,
        "Second → Charlie → Main: Main waits for a key: {}",
        answer.1
    );

    // A time condition's branches are taken without the caller too.
    let hours = id_of(
        &p.create(
            &app,
            TC,
            json!({"name": "Hours", "when_open": to_group(&a), "when_closed": to_group(&b)}),
        )
        .await,
    );
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &a),
            Some(json!({"when_unanswered": to_condition(&hours)})),
        )
        .await;
    assert_conflict(&answer, "loop", None, "Alpha → Hours → Alpha");
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(TC),
            Some(
                json!({"name": "Self", "when_open": to_group(&b), "when_closed": hang_up("busy")}),
            ),
        )
        .await;
    assert_eq!(answer.0, 201, "Self → Bravo → Alpha ends: {}", answer.1);
    assert_eq!(
        p.get(&app, RG, &a).await["when_unanswered"],
        hang_up("unallocated"),
        "no refused change was stored"
    );
}

async fn names_numbers_and_override_codes_are_unique_in_the_domain(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;
    let sales = id_of(
        &p.create(&app, RG, json!({"name": "Sales", "number": "600"}))
            .await,
    );

    // A name once per kind (whatever the case); another kind may use it.
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(RG),
            Some(json!({"name": "SALES"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("name"),
        "a second Sales group",
    );
    let menu = id_of(
        &p.create(&app, IVR, json!({"name": "Sales", "number": "601"}))
            .await,
    );
    let support = id_of(&p.create(&app, RG, json!({"name": "Support"})).await);
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &support),
            Some(json!({"name": "sales"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("name"),
        "renamed onto Sales",
    );
    // Renaming to itself is no conflict.
    p.patch(&app, RG, &sales, json!({"name": "Sales", "number": "600"}))
        .await;

    // A number once among every flow of the Domain…
    for (kind, body) in [
        (RG, json!({"name": "Other", "number": "600"})),
        (TC, json!({"name": "Hours", "number": "601"})),
        (IVR, json!({"name": "Menu", "number": "600"})),
    ] {
        let answer = p
            .send(&app, Method::POST, &p.path(kind), Some(body.clone()))
            .await;
        assert_conflict(
            &answer,
            "already_exists",
            Some("number"),
            &format!("{kind} {body}"),
        );
    }
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(RG, &support),
            Some(json!({"number": "601"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("number"),
        "patched onto the menu's",
    );
    assert!(
        detail(&answer.1).contains("Sales"),
        "names the owner: {}",
        answer.1
    );
    // …and never an Extension's, either way round.
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(RG),
            Some(json!({"name": "Other", "number": "201"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("number"),
        "an Extension's number",
    );
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.item(IVR, &menu),
            Some(json!({"number": "201"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("number"),
        "patched onto 201",
    );
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path("extensions"),
            Some(json!({"number": "600", "display_name": "Clash"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("number"),
        "an Extension on 600",
    );
    assert!(detail(&answer.1).contains("Sales"), "{}", answer.1);
    let answer = p
        .send(
            &app,
            Method::PATCH,
            &p.path(&format!("extensions/{alice}")),
            Some(json!({"number": "601"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("number"),
        "201 renumbered to 601",
    );
    // A number freed is free again.
    p.patch(&app, RG, &sales, json!({"number": null})).await;
    let (status, ext) = p
        .send(
            &app,
            Method::POST,
            &p.path("extensions"),
            Some(json!({"number": "600", "display_name": "Now free"})),
        )
        .await;
    assert_eq!(status, 201, "{ext}");

    // An override code once per Domain.
    p.create(&app, TC, json!({"name": "Hours", "override_code": "1"}))
        .await;
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(TC),
            Some(json!({"name": "Lunch", "override_code": "1"})),
        )
        .await;
    assert_conflict(
        &answer,
        "already_exists",
        Some("override_code"),
        "code 1 twice",
    );
    p.create(&app, TC, json!({"name": "Lunch", "override_code": "2"}))
        .await;

    // Another Domain has names and numbers of its own.
    let globex = create_domain(&app, &p.platform, "globex.example.net").await;
    create(
        &app,
        &p.platform,
        &globex,
        RG,
        json!({"name": "Sales", "number": "601"}),
    )
    .await;
    create(
        &app,
        &p.platform,
        &globex,
        TC,
        json!({"name": "Hours", "override_code": "1"}),
    )
    .await;
}

async fn a_flow_in_use_is_not_deleted_and_the_refusal_names_its_users(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let overflow = id_of(&p.create(&app, RG, json!({"name": "Overflow"})).await);
    let sales = id_of(
        &p.create(
            &app,
            RG,
            json!({"name": "Sales", "when_unanswered": to_group(&overflow)}),
        )
        .await,
    );
    let menu = id_of(&p.create(&app, IVR, json!({"name": "Main"})).await);
    p.patch(
        &app,
        IVR,
        &menu,
        json!({"options": [{"digits": "1", "destination": to_group(&sales)},
                           {"digits": "9", "destination": to_ivr(&menu)}]}),
    )
    .await;
    let hours = id_of(
        &p.create(
            &app,
            TC,
            json!({"name": "Office hours", "weekly": office_hours(),
                   "when_open": to_ivr(&menu), "when_closed": hang_up("busy")}),
        )
        .await,
    );
    let n = p.number(&app, "+4930555100", to_condition(&hours)).await;

    for (kind, id, user) in [
        (TC, &hours, "the Number +4930555100"),
        (IVR, &menu, "the time condition \"Office hours\""),
        (RG, &sales, "the IVR menu \"Main\""),
        (RG, &overflow, "the ring group \"Sales\""),
    ] {
        let answer = p.send(&app, Method::DELETE, &p.item(kind, id), None).await;
        assert_conflict(&answer, "in_use", None, &format!("deleting {kind} {id}"));
        assert!(detail(&answer.1).contains(user), "{user} in {}", answer.1);
        p.get(&app, kind, id).await;
    }
    // The menu's own "repeat" key does not keep it.
    let (_, refused) = p
        .send(&app, Method::DELETE, &p.item(IVR, &menu), None)
        .await;
    assert!(!detail(&refused).contains("\"Main\" ("), "{refused}");

    // Pointed elsewhere, one after the other they go.
    let (status, _) = p
        .send(
            &app,
            Method::PATCH,
            &p.path(&format!("numbers/{}", id_of(&n))),
            Some(json!({"destination": hang_up("busy")})),
        )
        .await;
    assert_eq!(status, 200);
    for (kind, id) in [(TC, &hours), (IVR, &menu), (RG, &sales), (RG, &overflow)] {
        let (status, body) = p.send(&app, Method::DELETE, &p.item(kind, id), None).await;
        assert_eq!(status, 204, "{kind} {id}: {body}");
        let (status, _) = p.send(&app, Method::GET, &p.item(kind, id), None).await;
        assert_eq!(status, 404);
    }
}

async fn a_member_extension_is_deleted_only_with_force_and_then_leaves_the_flows(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;
    let bob = extension(&app, &p.admin, &p.domain, "202", false).await;
    let sales = id_of(
        &p.create(
            &app,
            RG,
            json!({"name": "Sales",
                   "members": [{"extension_id": alice}, {"extension_id": bob, "ring_secs": 25}],
                   "when_unanswered": {"type": "voicemail", "extension_id": alice}}),
        )
        .await,
    );
    let menu = id_of(
        &p.create(
            &app,
            IVR,
            json!({"name": "Main", "options": [
                {"digits": "1", "destination": {"type": "extension", "extension_id": alice}},
                {"digits": "2", "destination": {"type": "extension", "extension_id": bob}}]}),
        )
        .await,
    );

    let ext_path = p.path(&format!("extensions/{alice}"));
    let answer = p.send(&app, Method::DELETE, &ext_path, None).await;
    assert_conflict(&answer, "in_use", None, "deleting a member");
    assert!(
        detail(&answer.1).contains("the ring group \"Sales\""),
        "{}",
        answer.1
    );
    assert!(
        detail(&answer.1).contains("the IVR menu \"Main\""),
        "{}",
        answer.1
    );
    assert_eq!(
        p.get(&app, RG, &sales).await["members"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing changed"
    );

    let (status, body) = p
        .send(
            &app,
            Method::DELETE,
            &format!("{ext_path}?force=true"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let group = p.get(&app, RG, &sales).await;
    assert_eq!(
        group["members"],
        json!([{"extension_id": bob, "ring_secs": 25}]),
        "only Bob is left"
    );
    assert_eq!(group["when_unanswered"], hang_up("unallocated"));
    let menu_now = p.get(&app, IVR, &menu).await;
    assert_eq!(
        menu_now["options"][0]["destination"],
        hang_up("unallocated")
    );
    assert_eq!(
        menu_now["options"][1]["destination"],
        json!({"type": "extension", "extension_id": bob})
    );
    let log = p.audit(&app, "ring_group.update").await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["after"]["reason"], "extension_deleted", "{}", log[0]);
    assert_eq!(p.audit(&app, "ivr.update").await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Tenants, roles, audit, events
// ---------------------------------------------------------------------------------------------

async fn another_domain_gets_404_and_roles_without_the_permission_403(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let globex = pbx(&app, "globex.example.net").await;
    let sales = p
        .create(&app, RG, json!({"name": "Sales", "number": "600"}))
        .await;
    let sales_id = id_of(&sales);
    let menu_id = id_of(&p.create(&app, IVR, json!({"name": "Main"})).await);
    let hours = p.create(&app, TC, json!({"name": "Hours"})).await;
    let hours_id = id_of(&hours);

    // Globex's admin never finds Acme's flows: not under Acme, not under Globex.
    for domain in [&p.domain, &globex.domain] {
        for (kind, id) in [(RG, &sales_id), (IVR, &menu_id), (TC, &hours_id)] {
            let path = format!("/api/v1/domains/{domain}/{kind}/{id}");
            for (method, body) in [
                (Method::GET, None),
                (Method::PATCH, Some(json!({"name": "Stolen"}))),
                (Method::DELETE, None),
            ] {
                let response = app
                    .send_as(&globex.admin, method.clone(), &path, body.as_ref())
                    .await;
                assert_problem(response, 404, "not_found").await;
            }
        }
        let response = app
            .send_as(
                &globex.admin,
                Method::PUT,
                &format!("/api/v1/domains/{domain}/{TC}/{hours_id}/override"),
                Some(&json!({"override": "open"})),
            )
            .await;
        assert_problem(response, 404, "not_found").await;
    }
    let (status, _) = call(&app, &globex.admin, Method::GET, &p.path(RG), None).await;
    assert_eq!(status, 404, "another Domain's list");
    let (status, _) = call(
        &app,
        &globex.admin,
        Method::POST,
        &p.path(RG),
        Some(json!({"name": "Planted"})),
    )
    .await;
    assert_eq!(status, 404);
    let (_, theirs) = call(&app, &globex.admin, Method::GET, &globex.path(RG), None).await;
    assert_eq!(theirs["items"], json!([]));
    assert_same_flow(&p.get(&app, RG, &sales_id).await, &sales, "untouched");
    assert_same_flow(&p.get(&app, TC, &hours_id).await, &hours, "untouched");

    // Roles of Acme.
    let role = |r: &'static str| {
        let (app, p) = (&app, &p);
        async move {
            let email = format!("{r}@{SIP}");
            create_user(app, &p.admin, &p.domain, &email, &[r]).await;
            token_of(app, &email).await
        }
    };
    let agent = role("agent").await;
    let member = role("member").await;
    let supervisor = role("supervisor").await;
    let receptionist = role("receptionist").await;
    let manager = role("manager").await;
    let override_path = format!("{}/override", p.item(TC, &hours_id));
    let create_body = json!({"name": "New"});
    let patch_body = json!({"ring_secs": 30});
    let open = json!({"override": "open"});
    // (token, may read, may write, may override)
    for (who, token, read, write, switch) in [
        ("agent", &agent, false, false, false),
        ("member", &member, false, false, false),
        ("supervisor", &supervisor, true, false, false),
        ("receptionist", &receptionist, true, false, true),
    ] {
        for (method, path, body, allowed) in [
            (Method::GET, p.path(RG), None, read),
            (Method::GET, p.item(IVR, &menu_id), None, read),
            (Method::GET, p.path(TC), None, read),
            (Method::POST, p.path(RG), Some(&create_body), write),
            (
                Method::PATCH,
                p.item(RG, &sales_id),
                Some(&patch_body),
                write,
            ),
            (Method::DELETE, p.item(IVR, &menu_id), None, write),
            (Method::PUT, override_path.clone(), Some(&open), switch),
        ] {
            let response = app.send_as(token, method.clone(), &path, body).await;
            if allowed {
                assert_eq!(response.status(), 200, "{who}: {method} {path}");
            } else {
                assert_problem(response, 403, "forbidden").await;
            }
        }
    }
    assert_eq!(
        p.get(&app, TC, &hours_id).await["override"],
        "open",
        "the receptionist's"
    );
    // A manager writes.
    let (status, made) = call(
        &app,
        &manager,
        Method::POST,
        &p.path(RG),
        Some(create_body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (status, _) = call(
        &app,
        &manager,
        Method::DELETE,
        &p.item(RG, &id_of(&made)),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // An API key with the agent role: 403; with domain_admin: allowed.
    for (key_role, status) in [("agent", 403), ("domain_admin", 200)] {
        let (created, key) = call(
            &app,
            &p.admin,
            Method::POST,
            &p.path("api-keys"),
            Some(json!({"name": format!("ci-{key_role}"), "role": key_role})),
        )
        .await;
        assert_eq!(created, 201, "{key}");
        let secret = key["secret"].as_str().unwrap();
        let response = app.send_as(secret, Method::GET, &p.path(RG), None).await;
        assert_eq!(response.status(), status, "a key of {key_role}");
        let response = app
            .send_as(
                secret,
                Method::POST,
                &p.path(IVR),
                Some(&json!({"name": format!("By {key_role}")})),
            )
            .await;
        assert_eq!(response.status(), if status == 200 { 201 } else { 403 });
    }

    // Nobody at all: 401.
    for (method, path) in [
        (Method::GET, p.path(RG)),
        (Method::GET, p.item(RG, &sales_id)),
        (Method::POST, p.path(IVR)),
        (Method::PATCH, p.item(RG, &sales_id)),
        (Method::DELETE, p.item(RG, &sales_id)),
        (Method::PUT, override_path.clone()),
    ] {
        let response = app
            .request(method.clone(), &path)
            .json(&json!({"name": "x", "override": "auto"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    assert_same_flow(
        &p.get(&app, RG, &sales_id).await,
        &sales,
        "untouched by the refused requests",
    );
}

async fn changes_are_audited_and_reach_the_live_stream(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let mut stream = Reader::open(&app, &p.admin, &p.domain, None).await;
    // The next call-flow event on the stream (other kinds skipped).
    async fn next_flow_event(stream: &mut Reader) -> crate::events::Sse {
        loop {
            let e = stream
                .next_within(Duration::from_secs(10))
                .await
                .expect("a call flow event within 10 s");
            if e.event.starts_with("call_flow.") {
                return e;
            }
        }
    }

    let group = p
        .create(&app, RG, json!({"name": "Sales", "number": "600"}))
        .await;
    let id = id_of(&group);
    let e = next_flow_event(&mut stream).await;
    assert_eq!(e.event, "call_flow.created");
    assert_eq!(e.data["kind"], "call_flow.created");
    assert_eq!(e.data["entity_id"], id.as_str());
    assert_eq!(e.data["domain_id"], p.domain.as_str());
    assert_eq!(e.data["detail"]["kind"], "ring_group");
    assert_eq!(e.data["detail"]["name"], "Sales");
    assert_eq!(e.data["detail"]["number"], "600");

    p.patch(&app, RG, &id, json!({"name": "Sales team"})).await;
    let e = next_flow_event(&mut stream).await;
    assert_eq!(e.event, "call_flow.updated");
    assert_eq!(e.data["entity_id"], id.as_str());
    assert_eq!(e.data["detail"]["name"], "Sales team");

    let hours = id_of(&p.create(&app, TC, json!({"name": "Hours"})).await);
    assert_eq!(
        next_flow_event(&mut stream).await.data["detail"]["kind"],
        "time_condition"
    );
    let (status, _) = p
        .send(
            &app,
            Method::PUT,
            &format!("{}/override", p.item(TC, &hours)),
            Some(json!({"override": "closed"})),
        )
        .await;
    assert_eq!(status, 200);
    let e = next_flow_event(&mut stream).await;
    assert_eq!(e.event, "call_flow.updated");
    assert_eq!(e.data["entity_id"], hours.as_str());
    assert_eq!(e.data["detail"]["override"], "closed");

    let (status, _) = p.send(&app, Method::DELETE, &p.item(RG, &id), None).await;
    assert_eq!(status, 204);
    let e = next_flow_event(&mut stream).await;
    assert_eq!(e.event, "call_flow.deleted");
    assert_eq!(e.data["entity_id"], id.as_str());
    // A refused change publishes nothing.
    let (status, _) = p
        .send(&app, Method::POST, &p.path(IVR), Some(json!({"name": ""})))
        .await;
    assert_eq!(status, 422);
    let menu = id_of(&p.create(&app, IVR, json!({"name": "Main"})).await);
    let e = next_flow_event(&mut stream).await;
    assert_eq!(
        (e.event.as_str(), e.data["entity_id"].as_str()),
        ("call_flow.created", Some(menu.as_str()))
    );
    let (status, _) = p
        .send(&app, Method::DELETE, &p.item(IVR, &menu), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        next_flow_event(&mut stream).await.event,
        "call_flow.deleted"
    );

    // The audit log: every change with its actor, target and before/after.
    let log = p.audit(&app, "ring_group.*").await;
    assert_eq!(
        actions(&log),
        [
            "ring_group.delete",
            "ring_group.update",
            "ring_group.create"
        ]
    );
    assert_eq!(log[1]["target"], json!({"kind": "ring_group", "id": id}));
    assert_eq!(log[1]["before"]["name"], "Sales");
    assert_eq!(log[1]["after"]["name"], "Sales team");
    assert_eq!(log[1]["actor"]["label"], format!("admin@{SIP}"));
    assert_eq!(log[0]["before"]["name"], "Sales team");
    assert!(log[0]["after"].is_null());
    assert_eq!(log[2]["after"]["number"], "600");
    assert_eq!(
        actions(&p.audit(&app, "ivr.*").await),
        ["ivr.delete", "ivr.create"]
    );
    assert_eq!(
        actions(&p.audit(&app, "time_condition.*").await),
        ["time_condition.override", "time_condition.create"]
    );
}

// ---------------------------------------------------------------------------------------------
// Calls: explain and the FreeSWITCH answers
// ---------------------------------------------------------------------------------------------

/// A Domain whose Number +4930555100 reaches "Office hours": open, the menu "Main" (1: the
/// ring group "Sales" of 201 and 202, each with a desk phone; 2: 203); closed, 203's voicemail.
struct Office {
    p: Pbx,
    alice_desk: Value,
    bob_desk: Value,
    gateway: String,
    sales: String,
    menu: String,
    hours: String,
}

async fn office(app: &TestApp) -> Office {
    let p = pbx(app, SIP).await;
    let alice = extension(app, &p.admin, &p.domain, "201", false).await;
    let bob = extension(app, &p.admin, &p.domain, "202", false).await;
    let carol = extension(app, &p.admin, &p.domain, "203", false).await;
    let desk = |owner: String, label: &'static str| {
        let p = &p;
        async move {
            create(
                app,
                &p.admin,
                &p.domain,
                "devices",
                json!({"label": label, "mode": "fixed", "owner_extension_id": owner}),
            )
            .await
        }
    };
    let alice_desk = desk(alice.clone(), "Alice's desk").await;
    let bob_desk = desk(bob.clone(), "Bob's desk").await;
    let gateway = id_of(
        &create(
            app,
            &p.admin,
            &p.domain,
            "gateways",
            json!({"name": "carrier", "proxy": "127.0.0.2:5080"}),
        )
        .await,
    );
    let sales = id_of(
        &p.create(
            app,
            RG,
            json!({"name": "Sales", "number": "600", "caller_id_prefix": "Sales: ",
                   "members": [{"extension_id": alice}, {"extension_id": bob}],
                   "when_unanswered": {"type": "voicemail", "extension_id": carol}}),
        )
        .await,
    );
    let menu = id_of(
        &p.create(
            app,
            IVR,
            json!({"name": "Main", "greeting": {"type": "builtin", "prompt": "welcome"},
                   "options": [{"digits": "1", "destination": to_group(&sales)},
                               {"digits": "2", "destination": {"type": "extension", "extension_id": carol}}],
                   "when_no_choice": {"type": "voicemail", "extension_id": carol}}),
        )
        .await,
    );
    let hours = id_of(
        &p.create(
            app,
            TC,
            json!({"name": "Office hours", "weekly": office_hours(),
                   "when_open": to_ivr(&menu),
                   "when_closed": {"type": "voicemail", "extension_id": carol}}),
        )
        .await,
    );
    p.number(app, "+4930555100", to_condition(&hours)).await;
    Office {
        p,
        alice_desk,
        bob_desk,
        gateway,
        sales,
        menu,
        hours,
    }
}

fn steps(explained: &Value) -> Vec<(&str, &str)> {
    explained["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {explained}"))
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["detail"].as_str().unwrap()))
        .collect()
}

fn step_names(explained: &Value) -> Vec<&str> {
    steps(explained).into_iter().map(|(s, _)| s).collect()
}

fn step_detail<'a>(explained: &'a Value, name: &str) -> &'a str {
    steps(explained)
        .into_iter()
        .find(|(s, _)| *s == name)
        .unwrap_or_else(|| panic!("no {name} step: {explained}"))
        .1
}

async fn explain_follows_a_number_through_time_condition_menu_and_ring_group(app: TestApp) {
    let o = office(&app).await;
    let p = &o.p;
    let explain = |body: Value| {
        let (app, p) = (&app, p);
        async move {
            let (status, explained) = p
                .send(app, Method::POST, &p.path("calls/explain"), Some(body))
                .await;
            assert_eq!(status, 200, "{explained}");
            explained
        }
    };
    // Wednesday 2 December 2026, 11:00 and 23:00 in Berlin (the Domain's time zone).
    let day = "2026-12-02T10:00:00Z";
    let night = "2026-12-02T22:00:00Z";

    // Business hours, key 1: the ring group rings Alice and Bob.
    let e = explain(
        json!({"gateway_id": o.gateway, "digits": "+4930555100", "at": day, "keys": ["1"]}),
    )
    .await;
    let names = step_names(&e);
    for want in [
        "number",
        "number_destination",
        "time_condition",
        "ivr",
        "ivr_keys",
        "ring_group",
        "unanswered",
    ] {
        assert!(names.contains(&want), "{want} missing: {e}");
    }
    let order: Vec<usize> = ["time_condition", "ivr", "ivr_keys", "ring_group"]
        .iter()
        .map(|s| names.iter().position(|n| n == s).unwrap())
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in call order: {names:?}"
    );
    assert!(
        step_detail(&e, "time_condition").contains("\"Office hours\""),
        "{e}"
    );
    assert!(
        step_detail(&e, "time_condition").contains("open (when_open)"),
        "{e}"
    );
    assert!(step_detail(&e, "ivr").contains("\"Main\""), "{e}");
    assert!(step_detail(&e, "ivr_keys").contains("key 1"), "{e}");
    assert!(step_detail(&e, "ring_group").contains("\"Sales\""), "{e}");
    assert_eq!(e["outcome"]["action"], "ring", "{e}");
    assert_eq!(
        e["outcome"]["ringing"],
        json!(["Extension 201", "Extension 202"]),
        "{e}"
    );
    assert_eq!(e["context"], "public");
    assert!(
        e["freeswitch_xml"].as_str().unwrap().contains("transfer"),
        "{e}"
    );

    // No key at the menu: its final destination.
    let e =
        explain(json!({"gateway_id": o.gateway, "digits": "+4930555100", "at": day, "keys": []}))
            .await;
    assert!(step_detail(&e, "ivr_keys").contains("no valid key"), "{e}");
    assert_eq!(e["outcome"]["action"], "voicemail", "{e}");
    assert_eq!(e["outcome"]["number"], "203", "{e}");

    // At night: closed, 203's voicemail, no menu.
    let e = explain(
        json!({"gateway_id": o.gateway, "digits": "+4930555100", "at": night, "keys": ["1"]}),
    )
    .await;
    assert!(
        step_detail(&e, "time_condition").contains("closed (when_closed)"),
        "{e}"
    );
    let names = step_names(&e);
    assert!(
        !names.contains(&"ivr") && !names.contains(&"ring_group"),
        "{e}"
    );
    assert_eq!(e["outcome"]["action"], "voicemail", "{e}");
    assert_eq!(e["outcome"]["number"], "203", "{e}");

    // The override wins over the schedule, both ways.
    let override_path = format!("{}/override", p.item(TC, &o.hours));
    for (mode, at, action) in [("open", night, "ring"), ("closed", day, "voicemail")] {
        let (status, _) = p
            .send(
                &app,
                Method::PUT,
                &override_path,
                Some(json!({"override": mode})),
            )
            .await;
        assert_eq!(status, 200);
        let e = explain(
            json!({"gateway_id": o.gateway, "digits": "+4930555100", "at": at, "keys": ["1"]}),
        )
        .await;
        assert!(
            step_detail(&e, "time_condition").contains(&format!("the override says {mode}")),
            "{e}"
        );
        assert_eq!(e["outcome"]["action"], action, "{mode}: {e}");
    }

    // A phone of the Domain dialling the group's number.
    let e = explain(json!({"device_id": id_of(&o.alice_desk), "digits": "600"})).await;
    assert!(
        step_detail(&e, "flow").contains("ring group \"Sales\""),
        "{e}"
    );
    assert!(step_names(&e).contains(&"ring_group"), "{e}");
    assert_eq!(e["outcome"]["action"], "ring", "{e}");
    assert_eq!(
        e["outcome"]["ringing"],
        json!(["Extension 201", "Extension 202"]),
        "{e}"
    );
    assert_eq!(e["context"], SIP);

    // Keys are keys.
    let (status, problem) = p
        .send(
            &app,
            Method::POST,
            &p.path("calls/explain"),
            Some(json!({"gateway_id": o.gateway, "digits": "+4930555100", "keys": ["1", "abc"]})),
        )
        .await;
    assert_invalid(
        &(status, problem),
        "keys[1]",
        "invalid_digits",
        "a key that is no key",
    );
}

/// The dialplan answer for `destination` dialled in the Domain's context: its actions as
/// `application data` lines.
async fn dialplan_actions(app: &TestApp, destination: &str) -> Vec<String> {
    let body = fixture(
        "dialplan-not-found-202",
        &[
            ("Caller-Destination-Number", destination),
            ("Caller-Context", SIP),
            ("Hunt-Destination-Number", destination),
            ("Hunt-Context", SIP),
            ("variable_switchboard_domain", SIP),
            ("variable_domain_name", SIP),
        ],
    );
    let response = app
        .request(Method::POST, "/freeswitch/xml")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("User-Agent", "freeswitch-xml/1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc = response.text().await.unwrap();
    let parsed =
        roxmltree::Document::parse(&doc).unwrap_or_else(|e| panic!("not XML ({e}): {doc}"));
    let context = parsed
        .descendants()
        .find(|n| n.has_tag_name("context"))
        .and_then(|n| n.attribute("name"))
        .unwrap_or_else(|| panic!("no context: {doc}"));
    assert_eq!(context, SIP, "{doc}");
    parsed
        .descendants()
        .filter(|n| n.has_tag_name("action"))
        .map(|n| {
            format!(
                "{} {}",
                n.attribute("application").unwrap_or_default(),
                n.attribute("data").unwrap_or_default()
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

async fn freeswitch_gets_a_bridge_for_a_ring_group_and_a_menu_for_an_ivr(app: TestApp) {
    let o = office(&app).await;
    let contact = |device: &Value| {
        format!(
            "${{sofia_contact(*/{}@{SIP})}}",
            device["sip_username"].as_str().unwrap()
        )
    };

    // The group's number: both desks at once, then "nobody answered".
    let actions = dialplan_actions(&app, "600").await;
    let bridge = actions
        .iter()
        .find(|a| a.starts_with("bridge "))
        .unwrap_or_else(|| panic!("no bridge: {actions:#?}"));
    assert!(bridge.contains(&contact(&o.alice_desk)), "{bridge}");
    assert!(bridge.contains(&contact(&o.bob_desk)), "{bridge}");
    assert!(bridge.contains("leg_timeout=20"), "{bridge}");
    assert!(
        actions.contains(&format!("set switchboard_ring_group_id={}", o.sales)),
        "{actions:#?}"
    );
    assert!(
        actions.contains(&"set effective_caller_id_name=Sales: ${caller_id_name}".to_owned()),
        "{actions:#?}"
    );
    assert_eq!(
        actions.last().unwrap(),
        &format!(
            "transfer switchboard-flow-{}-unanswered-${{originate_disposition}} XML {SIP}",
            o.sales
        )
    );
    // Nobody answered: 203's voicemail; the caller hung up: the end.
    let actions = dialplan_actions(
        &app,
        &format!("switchboard-flow-{}-unanswered-NO_ANSWER", o.sales),
    )
    .await;
    assert!(
        actions.contains(&format!("voicemail default {SIP} 203")),
        "{actions:#?}"
    );
    let actions = dialplan_actions(
        &app,
        &format!("switchboard-flow-{}-unanswered-ORIGINATOR_CANCEL", o.sales),
    )
    .await;
    assert!(
        !actions.iter().any(|a| a.starts_with("voicemail")),
        "{actions:#?}"
    );

    // The menu: answer, play the greeting and collect a key, then ask again with the key.
    let actions = dialplan_actions(&app, &format!("switchboard-flow-{}", o.menu)).await;
    assert!(actions.contains(&"answer".to_owned()), "{actions:#?}");
    let play = actions
        .iter()
        .find(|a| a.starts_with("play_and_get_digits "))
        .unwrap_or_else(|| panic!("no play_and_get_digits: {actions:#?}"));
    assert!(play.contains("ivr/ivr-welcome.wav"), "{play}");
    assert!(play.contains("^(1|2)$"), "{play}");
    assert_eq!(
        actions.last().unwrap(),
        &format!(
            "transfer switchboard-flow-{}-key-${{switchboard_ivr_choice}} XML {SIP}",
            o.menu
        )
    );
    let actions = dialplan_actions(&app, &format!("switchboard-flow-{}-key-1", o.menu)).await;
    assert_eq!(
        actions.last().unwrap(),
        &format!("transfer switchboard-flow-{} XML {SIP}", o.sales),
        "{actions:#?}"
    );
    let actions = dialplan_actions(&app, &format!("switchboard-flow-{}-key-", o.menu)).await;
    assert!(
        actions.contains(&format!("voicemail default {SIP} 203")),
        "{actions:#?}"
    );

    // The time condition forced closed: 203's voicemail, the branch noted for the history.
    let (status, _) =
        o.p.send(
            &app,
            Method::PUT,
            &format!("{}/override", o.p.item(TC, &o.hours)),
            Some(json!({"override": "closed"})),
        )
        .await;
    assert_eq!(status, 200);
    let actions = dialplan_actions(&app, &format!("switchboard-flow-{}", o.hours)).await;
    assert!(
        actions.contains(&format!(
            "set switchboard_time_condition={}:closed",
            o.hours
        )),
        "{actions:#?}"
    );
    assert!(
        actions.contains(&format!("voicemail default {SIP} 203")),
        "{actions:#?}"
    );
    // Open: into the menu.
    let (status, _) =
        o.p.send(
            &app,
            Method::PUT,
            &format!("{}/override", o.p.item(TC, &o.hours)),
            Some(json!({"override": "open"})),
        )
        .await;
    assert_eq!(status, 200);
    let actions = dialplan_actions(&app, &format!("switchboard-flow-{}", o.hours)).await;
    assert_eq!(
        actions.last().unwrap(),
        &format!("transfer switchboard-flow-{} XML {SIP}", o.menu),
        "{actions:#?}"
    );
    // A flow that does not exist is no number.
    let stranger = dialplan_actions(&app, &format!("switchboard-flow-{}", Uuid::now_v7())).await;
    assert_eq!(stranger, ["hangup UNALLOCATED_NUMBER"]);
}

// ---------------------------------------------------------------------------------------------
// Races
// ---------------------------------------------------------------------------------------------

async fn parallel_creates_of_one_number_give_one_201_and_only_409s(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let answers = join_all((0..8).map(|i| {
        let (app, p) = (&app, &p);
        async move {
            race_send(
                app,
                &p.admin,
                Method::POST,
                &p.path(RG),
                Some(json!({"name": format!("Group {i}"), "number": "700"})),
            )
            .await
        }
    }))
    .await;
    for a in &answers {
        assert_race_answer(a, &[201, 409]);
        if a.status == 409 {
            assert_eq!(a.body["code"], "already_exists", "{a:?}");
            assert_eq!(a.body["errors"][0]["field"], "number", "{a:?}");
        }
    }
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    let (_, list) = p.send(&app, Method::GET, &p.path(RG), None).await;
    let stored: Vec<&Value> = list["items"].as_array().unwrap().iter().collect();
    assert_eq!(stored.len(), 1, "{list}");
    assert_eq!(stored[0]["number"], "700");
}

async fn two_patches_closing_a_loop_together_never_both_succeed(app: TestApp) {
    let p = pbx(&app, SIP).await;
    for round in 0..6 {
        let a = id_of(
            &p.create(&app, RG, json!({"name": format!("A{round}")}))
                .await,
        );
        let b = id_of(
            &p.create(&app, RG, json!({"name": format!("B{round}")}))
                .await,
        );
        let (a_path, b_path) = (p.item(RG, &a), p.item(RG, &b));
        let (first, second) = tokio::join!(
            race_send(
                &app,
                &p.admin,
                Method::PATCH,
                &a_path,
                Some(json!({"when_unanswered": to_group(&b)})),
            ),
            race_send(
                &app,
                &p.admin,
                Method::PATCH,
                &b_path,
                Some(json!({"when_unanswered": to_group(&a)})),
            ),
        );
        for x in [&first, &second] {
            assert_race_answer(x, &[200, 409]);
            if x.status == 409 {
                assert_eq!(x.body["code"], "loop", "{x:?}");
            }
        }
        assert!(
            !(first.status == 200 && second.status == 200),
            "round {round}: both halves of the loop were saved: {first:?} {second:?}"
        );
        assert!(
            first.status == 200
                || second.status == 200
                || first.status == 503
                || second.status == 503,
            "round {round}: each alone is fine, so one wins: {first:?} {second:?}"
        );
        // What is stored has no loop.
        let a_next = p.get(&app, RG, &a).await["when_unanswered"].clone();
        let b_next = p.get(&app, RG, &b).await["when_unanswered"].clone();
        assert!(
            !(a_next == to_group(&b) && b_next == to_group(&a)),
            "round {round}: a loop is stored"
        );
    }
}

async fn a_flow_and_an_extension_racing_for_one_number_never_both_win(app: TestApp) {
    let p = pbx(&app, SIP).await;
    for round in 0..4 {
        let number = format!("8{round}0");
        let mut requests = Vec::new();
        for (i, kind) in [RG, IVR, TC, RG].into_iter().enumerate() {
            requests.push((
                p.path(kind),
                json!({"name": format!("Flow {round}-{i}"), "number": number}),
            ));
            requests.push((
                p.path("extensions"),
                json!({"number": number, "display_name": format!("Ext {round}-{i}")}),
            ));
        }
        let answers =
            join_all(requests.iter().map(|(path, body)| {
                race_send(&app, &p.admin, Method::POST, path, Some(body.clone()))
            }))
            .await;
        for a in &answers {
            assert_race_answer(a, &[201, 409]);
            if a.status == 409 {
                assert_eq!(a.body["code"], "already_exists", "{a:?}");
            }
        }
        let winners = answers.iter().filter(|a| a.status == 201).count();
        assert_eq!(winners, 1, "round {round}: {answers:?}");
        // Stored: exactly one holder of the number.
        let mut holders = 0;
        for kind in [RG, IVR, TC] {
            let (_, list) = p.send(&app, Method::GET, &p.path(kind), None).await;
            holders += list["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["number"] == number.as_str())
                .count();
        }
        let (_, exts) = p.send(&app, Method::GET, &p.path("extensions"), None).await;
        holders += exts["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{exts}"))
            .iter()
            .filter(|e| e["number"] == number.as_str())
            .count();
        assert_eq!(holders, 1, "round {round}");
    }
}

async fn deleting_a_group_while_a_number_is_pointed_at_it_never_both_succeed(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let n = p.number(&app, "+4930555100", hang_up("busy")).await;
    let number_path = p.path(&format!("numbers/{}", id_of(&n)));
    for round in 0..6 {
        let group = id_of(
            &p.create(&app, RG, json!({"name": format!("Group {round}")}))
                .await,
        );
        let group_path = p.item(RG, &group);
        let (deleted, pointed) = tokio::join!(
            race_send(&app, &p.admin, Method::DELETE, &group_path, None),
            race_send(
                &app,
                &p.admin,
                Method::PATCH,
                &number_path,
                Some(json!({"destination": to_group(&group)})),
            ),
        );
        assert_race_answer(&deleted, &[204, 409]);
        assert_race_answer(&pointed, &[200, 422]);
        if deleted.status == 409 {
            assert_eq!(deleted.body["code"], "in_use", "{deleted:?}");
        }
        if pointed.status == 422 {
            assert_eq!(
                field_errors(&pointed.body),
                [(
                    "destination.ring_group_id".to_owned(),
                    "not_found".to_owned()
                )],
                "{pointed:?}"
            );
        }
        assert!(
            !(deleted.status == 204 && pointed.status == 200),
            "round {round}: the Number points at a deleted group: {deleted:?} {pointed:?}"
        );
        // What is stored agrees: a Number pointing at the group means the group is there.
        let (_, number) = p.send(&app, Method::GET, &number_path, None).await;
        let (group_status, _) = p.send(&app, Method::GET, &p.item(RG, &group), None).await;
        if number["destination"] == to_group(&group) {
            assert_eq!(group_status, 200, "round {round}: {number}");
        }
        // Back to a clean state for the next round.
        let (status, _) = p
            .send(
                &app,
                Method::PATCH,
                &number_path,
                Some(json!({"destination": hang_up("busy")})),
            )
            .await;
        assert_eq!(status, 200);
        if group_status == 200 {
            let (status, body) = p
                .send(&app, Method::DELETE, &p.item(RG, &group), None)
                .await;
            assert_eq!(status, 204, "{body}");
        }
    }
}

/// A flow's number is dialled where Extensions are: the same rules (no emergency number, no
/// leading 0 that would hide an outbound number), and a bulk import of Extensions cannot take
/// a flow's number either. Nested field errors name their path.
async fn a_flows_number_follows_the_extension_number_rules_and_an_import_cannot_take_it(
    app: TestApp,
) {
    let p = pbx(&app, SIP).await;
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(RG),
            Some(json!({"name": "Emergency", "number": "112"})),
        )
        .await;
    assert_invalid(&answer, "number", "emergency_number", "an emergency number");
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(IVR),
            Some(json!({"name": "Outside", "number": "0301234"})),
        )
        .await;
    assert_eq!(
        answer.0, 422,
        "a leading 0 is the outbound prefix: {}",
        answer.1
    );
    assert!(
        field_errors(&answer.1).iter().any(|(f, _)| f == "number"),
        "{}",
        answer.1
    );
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(RG),
            Some(json!({"name": "Odd", "members": [{"ring_secs": 5, "colour": "red"}]})),
        )
        .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert!(
        field_errors(&answer.1)
            .iter()
            .any(|(f, _)| f == "members[0].colour"),
        "{}",
        answer.1
    );
    let answer = p
        .send(
            &app,
            Method::POST,
            &p.path(RG),
            Some(json!({"name": "Odd", "ring_secs": "sixty"})),
        )
        .await;
    assert!(
        field_errors(&answer.1)
            .iter()
            .any(|(f, _)| f == "ring_secs"),
        "{}",
        answer.1
    );

    p.create(&app, RG, json!({"name": "Sales", "number": "600"}))
        .await;
    let (status, report) = p
        .send(
            &app,
            Method::POST,
            &p.path("import"),
            Some(json!({"extensions": [
                {"number": "600", "display_name": "Taken"},
                {"number": "601", "display_name": "Free"}
            ]})),
        )
        .await;
    assert_eq!(status, 422, "the import is all or nothing: {report}");
    assert!(
        report.to_string().contains("ring group"),
        "the refusal names the group: {report}"
    );
    let (status, list) = p.send(&app, Method::GET, &p.path("extensions"), None).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.is_empty()),
        "nothing was imported: {list}"
    );
}

/// `POST …/call-flows/import`: rows point at each other by the ids they give themselves; a dry
/// run writes nothing; one bad row (named by its path) or a loop in the file keeps every row
/// out; `on_existing=update` replaces a flow matched by kind and name.
async fn call_flows_are_imported_all_or_nothing_pointing_at_each_other(app: TestApp) {
    let p = pbx(&app, SIP).await;
    let alice = extension(&app, &p.admin, &p.domain, "201", false).await;
    let group_id = Uuid::now_v7().to_string();
    let menu_id = Uuid::now_v7().to_string();
    let file = json!({
        "ring_groups": [{"id": group_id, "name": "Sales", "number": "600",
                         "members": [{"extension_id": alice}],
                         "when_unanswered": to_ivr(&menu_id)}],
        "ivr_menus": [{"id": menu_id, "name": "Main",
                       "options": [{"digits": "1", "destination": to_group(&group_id)}]}],
        "time_conditions": [{"name": "Office", "weekly": [{"days": ["mon"], "from": "09:00", "to": "17:00"}],
                             "when_open": to_ivr(&menu_id), "when_closed": hang_up("busy")}]
    });
    let import = p.path("call-flows/import");
    let mut dry = file.clone();
    dry["dry_run"] = json!(true);
    let (status, report) = p.send(&app, Method::POST, &import, Some(dry)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report, json!({"created": 3, "updated": 0, "dry_run": true}));
    let (_, list) = p.send(&app, Method::GET, &p.path(RG), None).await;
    assert_eq!(list["items"], json!([]), "a dry run writes nothing");

    // A bad row: nothing at all is written, the row is named.
    let mut bad = file.clone();
    bad["ring_groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "Broken", "number": "600"}));
    let answer = p.send(&app, Method::POST, &import, Some(bad)).await;
    assert_invalid(
        &answer,
        "ring_groups[1].number",
        "already_exists",
        "two rows with one number",
    );
    let (_, list) = p.send(&app, Method::GET, &p.path(IVR), None).await;
    assert_eq!(list["items"], json!([]), "all or nothing");

    // A loop inside the file (the group's "unanswered" to the menu, the menu's "no choice" back).
    let mut looped = file.clone();
    looped["ivr_menus"][0]["when_no_choice"] = to_group(&group_id);
    let answer = p.send(&app, Method::POST, &import, Some(looped)).await;
    assert_conflict(&answer, "loop", None, "a loop in the file");

    let (status, report) = p
        .send(&app, Method::POST, &import, Some(file.clone()))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"created": 3, "updated": 0, "dry_run": false})
    );
    let group = p.get(&app, RG, &group_id).await;
    assert_eq!(group["when_unanswered"], to_ivr(&menu_id));
    assert_eq!(p.audit(&app, "ring_group.create").await.len(), 1);

    // Again: the names exist; with on_existing=update the group is changed in place.
    let answer = p
        .send(&app, Method::POST, &import, Some(file.clone()))
        .await;
    assert_invalid(
        &answer,
        "ring_groups[0].name",
        "already_exists",
        "a second import",
    );
    let update = json!({"on_existing": "update",
                        "ring_groups": [{"name": "Sales", "number": "600", "ring_secs": 45}]});
    let (status, report) = p.send(&app, Method::POST, &import, Some(update)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["updated"], 1);
    let group = p.get(&app, RG, &group_id).await;
    assert_eq!(group["ring_secs"], 45);
    assert_eq!(
        group["members"],
        json!([]),
        "an update replaces the settings"
    );
}
