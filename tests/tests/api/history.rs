//! The call history through the real server: CDRs posted as FreeSWITCH's mod_json_cdr posts
//! them (`/freeswitch/cdr`), stored once whatever the order, the repetitions or the
//! parallelism; listed and filtered per Domain and per person; exported as CSV; recordings
//! downloaded with ranges; refusals (credentials, tenants, permissions, bad input); the purge
//! and the spool import. The live suite (`tests/live/history.rs`) proves the same against a
//! real FreeSWITCH.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone as _, Utc};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use switchboard_domain::history::cdr::LegFacts;
use switchboard_domain::services::history::{self, Ingested};
use switchboard_domain::store::{call_legs, calls};
use switchboard_tests::{TestApp, both_databases};
use uuid::Uuid;

use crate::devices::{create, domain_with_admin, id_of};
use crate::users::{call, create_user, token_of};

const CDR_PASSWORD: &str = "history-xml-curl-password";

/// FreeSWITCH's credentials, and a recordings folder of this server's own.
fn with_credentials(c: &mut switchboard_tests::Config) {
    c.freeswitch.xml_curl.password = Some(secrecy::SecretString::from(CDR_PASSWORD));
    c.history.recordings_dir = Some(std::env::temp_dir().join(format!(
        "switchboard-recordings-{}",
        Uuid::new_v4().simple()
    )));
}

both_databases!(
    calls_are_listed_newest_first_named_by_the_person_and_found_by_every_filter with with_credentials,
    a_cdr_posted_twice_or_before_its_first_leg_is_stored_once with with_credentials,
    legs_posted_in_parallel_are_all_kept_and_each_call_recorded_once with with_credentials,
    legs_stored_in_one_batch_make_the_same_call_in_any_order with with_credentials,
    a_cdr_naming_a_domain_that_is_gone_is_kept_without_it with with_credentials,
    a_full_cdr_queue_answers_503_and_loses_nothing with small_queue,
    the_cdr_endpoint_refuses_strangers_and_what_is_not_a_cdr with with_credentials,
    another_domains_calls_are_a_404_and_reading_needs_calls_read with with_credentials,
    the_csv_export_streams_every_call_with_the_filters with with_credentials,
    recordings_download_with_ranges_and_never_outside_their_folder with with_credentials,
    old_calls_are_purged_per_domain_retention with with_credentials,
    spooled_cdrs_are_imported_once_and_bad_files_set_aside with with_credentials,
);

fn small_queue(c: &mut switchboard_tests::Config) {
    with_credentials(c);
    c.history.cdr_queue = 4;
}

/// One leg as mod_json_cdr posts it (`encode-values=false`): FreeSWITCH's variable names.
#[derive(Clone, Debug)]
struct Leg {
    uuid: Uuid,
    call: Uuid,
    parent: Option<Uuid>,
    start: DateTime<Utc>,
    answered_after: Option<i64>,
    secs: i64,
    vars: Vec<(&'static str, String)>,
    destination: String,
    caller: String,
}

impl Leg {
    /// A call's first leg (a phone calling).
    fn first(start: DateTime<Utc>, caller: &str, destination: &str) -> Self {
        let uuid = Uuid::new_v4();
        Self {
            uuid,
            call: uuid,
            parent: None,
            start,
            answered_after: None,
            secs: 10,
            vars: Vec::new(),
            destination: destination.to_owned(),
            caller: caller.to_owned(),
        }
    }

    /// A leg bridged from `self` (the phone that rang).
    fn bridged(&self) -> Self {
        Self {
            uuid: Uuid::new_v4(),
            call: self.call,
            parent: Some(self.uuid),
            start: self.start + chrono::Duration::milliseconds(40),
            answered_after: self.answered_after,
            secs: self.secs,
            vars: Vec::new(),
            destination: self.destination.clone(),
            caller: self.caller.clone(),
        }
    }

    fn var(mut self, name: &'static str, value: impl ToString) -> Self {
        self.vars.push((name, value.to_string()));
        self
    }

    fn answered(mut self, after: i64) -> Self {
        self.answered_after = Some(after);
        self
    }

    fn json(&self) -> Value {
        let us = |t: DateTime<Utc>| t.timestamp_micros().to_string();
        let end = self.start + chrono::Duration::seconds(self.secs);
        let answer = self
            .answered_after
            .map(|a| self.start + chrono::Duration::seconds(a));
        let mut vars = json!({
            "uuid": self.uuid.to_string(),
            "call_uuid": self.call.to_string(),
            "direction": if self.parent.is_some() { "outbound" } else { "inbound" },
            "start_uepoch": us(self.start),
            "answer_uepoch": answer.map_or("0".to_owned(), us),
            "end_uepoch": us(end),
            "billsec": answer.map_or(0, |a| (end - a).num_seconds()).to_string(),
            "hangup_cause": if answer.is_some() { "NORMAL_CLEARING" } else { "NO_ANSWER" },
        });
        if let Some(p) = self.parent {
            vars["originating_leg_uuid"] = json!(p.to_string());
        }
        for (k, v) in &self.vars {
            vars[*k] = json!(v);
        }
        json!({
            "core-uuid": "3f6a1c9e-0000-4000-8000-000000000001",
            "switchname": "fs-test",
            "channel_data": {"state": "CS_REPORTING", "direction": vars["direction"].clone()},
            "variables": vars,
            "app_log": {"applications": []},
            "callflow": [{
                "dialplan": "XML",
                "profile_index": "1",
                "caller_profile": {
                    "caller_id_name": self.caller,
                    "caller_id_number": self.caller,
                    "destination_number": self.destination,
                    "context": "acme.test",
                    "uuid": self.uuid.to_string(),
                },
                "times": {"profile_created_time": us(self.start)}
            }]
        })
    }
}

async fn post_cdr(app: &TestApp, body: &Value) -> (u16, String) {
    let response = app
        .request(
            Method::POST,
            &format!(
                "/freeswitch/cdr?uuid={}",
                body["variables"]["uuid"].as_str().unwrap_or("")
            ),
        )
        .basic_auth("freeswitch", Some(CDR_PASSWORD))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn post_ok(app: &TestApp, leg: &Leg) {
    let (status, text) = post_cdr(app, &leg.json()).await;
    assert_eq!(status, 200, "{text}");
}

fn at(secs_ago: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(secs_ago)
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let (status, body) = call(app, token, Method::GET, path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// A Domain with Extensions 200 (linked to a User who may only hot-desk) and 201, a fixed
/// Device each, and a Location for 201's phone.
struct Acme {
    domain: String,
    admin: String,
    alice: String,
    alice_token: String,
    bob: String,
    alice_phone: String,
    bob_phone: String,
    office: String,
}

async fn acme(app: &TestApp, sip: &str) -> Acme {
    let (domain, admin) = domain_with_admin(app, sip).await;
    let email = format!("alice@{sip}");
    let user = create_user(app, &admin, &domain, &email, &["member"]).await;
    let alice_token = token_of(app, &email).await;
    let alice = id_of(
        &create(
            app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "200", "display_name": "Alice", "user_id": user}),
        )
        .await,
    );
    let bob = id_of(
        &create(
            app,
            &admin,
            &domain,
            "extensions",
            json!({"number": "201", "display_name": "Bob"}),
        )
        .await,
    );
    let office = id_of(&create(app, &admin, &domain, "locations", json!({"name": "Office"})).await);
    let alice_phone = id_of(
        &create(
            app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Alice desk", "mode": "fixed", "owner_extension_id": alice}),
        )
        .await,
    );
    let bob_phone = id_of(
        &create(
            app,
            &admin,
            &domain,
            "devices",
            json!({"label": "Bob desk", "mode": "fixed", "owner_extension_id": bob, "location_id": office}),
        )
        .await,
    );
    Acme {
        domain,
        admin,
        alice,
        alice_token,
        bob,
        alice_phone,
        bob_phone,
        office,
    }
}

impl Acme {
    /// Alice's desk calls 201, Bob's desk answers after `answer` seconds (or not).
    fn internal(&self, start: DateTime<Utc>, answer: Option<i64>) -> (Leg, Leg) {
        let mut a = Leg::first(start, "200", "201")
            .var("switchboard_domain_id", &self.domain)
            .var("switchboard_extension_id", &self.alice)
            .var("switchboard_extension", "200")
            .var("switchboard_device_id", &self.alice_phone)
            .var("effective_caller_id_name", "Alice")
            .var("effective_caller_id_number", "200")
            .var("switchboard_callee_extension_id", &self.bob)
            .var("switchboard_called_extension", "201");
        if let Some(s) = answer {
            a = a.answered(s);
        }
        let b = a
            .bridged()
            .var("switchboard_device_id", &self.bob_phone)
            .var("switchboard_location_id", &self.office)
            .var("callee_id_name", "Bob");
        (a, b)
    }

    /// Bob calls out through a route and a gateway: an emergency number.
    fn outbound(&self, start: DateTime<Utc>, route: Uuid, gateway: Uuid) -> (Leg, Leg) {
        let a = Leg::first(start, "201", "112")
            .var("switchboard_domain_id", &self.domain)
            .var("switchboard_extension_id", &self.bob)
            .var("switchboard_extension", "201")
            .var("switchboard_device_id", &self.bob_phone)
            .var("switchboard_location_id", &self.office)
            .var("switchboard_outbound_route_id", route)
            .var("switchboard_emergency", "true")
            .answered(1);
        let b = Leg {
            vars: vec![("sip_gateway_name", format!("sb_{}", gateway.simple()))],
            ..a.bridged()
        };
        (a, b)
    }

    /// A carrier calls the Number +4930555 for Alice; nobody answers.
    fn inbound(&self, start: DateTime<Utc>, gateway: Uuid) -> Leg {
        Leg::first(start, "+4915199", "+4930555")
            .var("switchboard_domain_id", &self.domain)
            .var("switchboard_gateway", format!("sb_{}", gateway.simple()))
            .var("switchboard_inbound_number", "+4930555")
            .var("switchboard_callee_extension_id", &self.alice)
            .var("switchboard_called_extension", "200")
    }
}

async fn calls_are_listed_newest_first_named_by_the_person_and_found_by_every_filter(app: TestApp) {
    let a = acme(&app, "acme.history.test").await;
    let (route, gateway) = (Uuid::new_v4(), Uuid::new_v4());
    let (i1, i2) = a.internal(at(300), Some(2));
    let (o1, o2) = a.outbound(at(200), route, gateway);
    let inbound = a.inbound(at(100), gateway);
    for leg in [&i1, &i2, &o1, &o2, &inbound] {
        post_ok(&app, leg).await;
    }
    let base = format!("/api/v1/domains/{}/calls", a.domain);
    let all = get(&app, &a.admin, &base).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    // Newest first.
    assert_eq!(items[0]["direction"], "inbound");
    assert_eq!(items[1]["direction"], "outbound");
    assert_eq!(items[2]["direction"], "internal");
    let internal = &items[2];
    assert_eq!(internal["caller"]["extension_id"], json!(a.alice));
    assert_eq!(internal["caller"]["extension_number"], "200");
    assert_eq!(internal["caller"]["name"], "Alice");
    assert_eq!(internal["caller"]["device_id"], json!(a.alice_phone));
    assert_eq!(internal["callee"]["extension_id"], json!(a.bob));
    assert_eq!(internal["callee"]["device_id"], json!(a.bob_phone));
    assert_eq!(internal["callee"]["location_id"], json!(a.office));
    assert_eq!(internal["callee"]["name"], "Bob");
    assert_eq!(internal["answered"], true);
    assert_eq!(internal["billed_secs"], 8);
    assert_eq!(internal["duration_secs"], 10);
    assert_eq!(internal["legs"], 2);
    assert_eq!(internal["node"], "fs-test");
    let outbound = &items[1];
    assert_eq!(outbound["route_id"], json!(route.to_string()));
    assert_eq!(outbound["gateway_id"], json!(gateway.to_string()));
    assert_eq!(outbound["emergency"], true);
    assert_eq!(outbound["caller"]["location_id"], json!(a.office));
    let inbound_call = &items[0];
    assert_eq!(inbound_call["callee"]["number"], "+4930555");
    assert_eq!(inbound_call["answered"], false);
    assert_eq!(inbound_call["hangup_cause"], "NO_ANSWER");
    assert_eq!(inbound_call["gateway_id"], json!(gateway.to_string()));

    let count = |page: &Value| page["items"].as_array().unwrap().len();
    for (query, expected) in [
        (format!("extension_id={}", a.alice), 2),
        (format!("extension_id={}", a.bob), 2),
        (format!("device_id={}", a.bob_phone), 2),
        (format!("location_id={}", a.office), 2),
        ("direction=outbound".to_owned(), 1),
        ("direction=internal".to_owned(), 1),
        ("number=4930".to_owned(), 1),
        ("number=201".to_owned(), 2),
        ("answered=true".to_owned(), 2),
        ("answered=false".to_owned(), 1),
        ("emergency=true".to_owned(), 1),
        (
            format!(
                "from={}&to={}",
                urlencoding(&at(250).to_rfc3339()),
                urlencoding(&at(150).to_rfc3339())
            ),
            1,
        ),
        (format!("from={}", urlencoding(&at(50).to_rfc3339())), 0),
        (format!("extension_id={}&answered=true", a.alice), 1),
    ] {
        let page = get(&app, &a.admin, &format!("{base}?{query}")).await;
        assert_eq!(count(&page), expected, "{query}: {page}");
    }

    // Cursor paging: one at a time, newest first, no repeats.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(&app, &a.admin, &format!("{base}?limit=1{cursor}")).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    // One call with its legs.
    let id = internal["id"].as_str().unwrap();
    let detail = get(&app, &a.admin, &format!("{base}/{id}")).await;
    let legs = detail["leg_details"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    assert_eq!(legs[0]["uuid"], json!(i1.uuid.to_string()));
    assert_eq!(legs[1]["parent"], json!(i1.uuid.to_string()));
    assert_eq!(legs[1]["device_id"], json!(a.bob_phone));

    // Alice sees her own calls (she made one, was called in another), not Bob's outbound call.
    let mine = get(&app, &a.alice_token, "/api/v1/me/calls").await;
    assert_eq!(count(&mine), 2, "{mine}");
    let (status, _) = call(
        &app,
        &a.alice_token,
        Method::GET,
        &format!("/api/v1/me/calls/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let outbound_id = outbound["id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        &a.alice_token,
        Method::GET,
        &format!("/api/v1/me/calls/{outbound_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Alice (a member) may not read the Domain's history.
    let (status, body) = call(&app, &a.alice_token, Method::GET, &base, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");

    // Bad filters are a 422 naming the field.
    for (query, field) in [
        ("direction=sideways", "direction"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("cursor=bogus", "cursor"),
    ] {
        let (status, body) = call(
            &app,
            &a.admin,
            Method::GET,
            &format!("{base}?{query}"),
            None,
        )
        .await;
        assert!(status == 422 || status == 400, "{query}: {status} {body}");
        assert_eq!(
            body["type"]
                .as_str()
                .map(|t| t.starts_with("urn:switchboard:problem:")),
            Some(true),
            "{body}"
        );
        if status == 422 && field != "from" && field != "direction" {
            assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
        }
    }
    let (status, body) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!(
            "{base}?from={}&to={}",
            urlencoding(&at(10).to_rfc3339()),
            urlencoding(&at(500).to_rfc3339())
        ),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "from");
}

fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn a_cdr_posted_twice_or_before_its_first_leg_is_stored_once(app: TestApp) {
    let a = acme(&app, "twice.history.test").await;
    let (first, second) = a.internal(at(60), Some(1));
    // The phone's leg first: no call yet, it waits for its first leg.
    post_ok(&app, &second).await;
    let base = format!("/api/v1/domains/{}/calls", a.domain);
    assert_eq!(ids(&get(&app, &a.admin, &base).await).len(), 0);
    post_ok(&app, &first).await;
    // FreeSWITCH retried both.
    let (status, text) = post_cdr(&app, &first.json()).await;
    assert_eq!((status, text.trim()), (200, "duplicate"));
    let (status, text) = post_cdr(&app, &second.json()).await;
    assert_eq!((status, text.trim()), (200, "duplicate"));
    let page = get(&app, &a.admin, &base).await;
    assert_eq!(ids(&page).len(), 1, "{page}");
    assert_eq!(page["items"][0]["legs"], 2);
    assert_eq!(page["items"][0]["callee"]["device_id"], json!(a.bob_phone));
    // A forward: a loopback leg of the first call, then a phone bridged from the loopback.
    let (loopback, from_loopback) = forwarded(&first);
    // The phone behind the loopback reports before the loopback itself.
    post_ok(&app, &from_loopback).await;
    post_ok(&app, &loopback).await;
    let page = get(&app, &a.admin, &base).await;
    assert_eq!(ids(&page).len(), 1, "still one call: {page}");
    assert_eq!(page["items"][0]["legs"], 4, "{page}");
}

async fn legs_posted_in_parallel_are_all_kept_and_each_call_recorded_once(app: TestApp) {
    let a = Arc::new(acme(&app, "parallel.history.test").await);
    let app = Arc::new(app);
    let mut legs = Vec::new();
    for i in 0..15 {
        let (x, y) = a.internal(at(1000 - i), Some(1));
        legs.push(y.clone());
        legs.push(x.clone());
        legs.push(x); // retried
    }
    let tasks: Vec<_> = legs
        .into_iter()
        .map(|leg| {
            let app = app.clone();
            tokio::spawn(async move { post_cdr(&app, &leg.json()).await })
        })
        .collect();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        assert_eq!(status, 200, "no leg refused, no 5xx: {text}");
    }
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls?limit=100", a.domain),
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 15, "{page}");
    assert!(
        items
            .iter()
            .all(|c| c["legs"] == 2 && c["callee"]["device_id"] == json!(a.bob_phone)),
        "every call has both legs: {page}"
    );
}

/// A forward's four legs (the caller, the phone that rang first, the loopback, the phone
/// behind the loopback), as mod_json_cdr would post them.
fn forward_legs(a: &Acme, start: DateTime<Utc>) -> Vec<Leg> {
    let (first, second) = a.internal(start, Some(1));
    let (loopback, from_loopback) = forwarded(&first);
    vec![first, second, loopback, from_loopback]
}

/// A forward of `first`'s call: the loopback leg FreeSWITCH makes for it, and the phone
/// bridged from the loopback.
fn forwarded(first: &Leg) -> (Leg, Leg) {
    let mut loopback = first.bridged();
    loopback.parent = None;
    loopback.call = loopback.uuid;
    let loopback = loopback
        .var("is_loopback", "1")
        .var("loopback_leg", "B")
        .var("other_loopback_from_uuid", first.uuid);
    let mut from_loopback = loopback.bridged();
    from_loopback.call = loopback.uuid;
    (loopback, from_loopback)
}

fn facts(leg: &Leg) -> LegFacts {
    LegFacts::from_json(leg.json().to_string().as_bytes()).unwrap()
}

/// The call's row without what differs between two calls made alike (ids, times of writing).
async fn call_of(app: &TestApp, root: Uuid) -> Value {
    let call = calls::Entity::find()
        .filter(calls::Column::RootUuid.eq(root))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no call for {root}"));
    let mut row = serde_json::to_value(call).unwrap();
    for k in ["id", "root_uuid", "updated_at"] {
        row.as_object_mut().unwrap().remove(k);
    }
    row
}

/// Group commit stores whatever CDRs arrived together in one transaction: whatever their
/// order inside it, the call is the one the legs make when they arrive one by one, and a leg
/// twice in a batch, or stored before, is a duplicate.
async fn legs_stored_in_one_batch_make_the_same_call_in_any_order(app: TestApp) {
    let a = acme(&app, "batch.history.test").await;
    let start = at(3600);
    let reference = forward_legs(&a, start);
    for leg in &reference {
        let answer = history::ingest(&app.db, &facts(leg), Utc::now())
            .await
            .unwrap();
        assert!(matches!(answer, Ingested::Stored { .. }), "{answer:?}");
    }
    let expected = call_of(&app, reference[0].uuid).await;
    assert_eq!(expected["legs"], 4, "{expected}");
    assert_eq!(
        expected["callee_device_id"],
        json!(a.bob_phone),
        "{expected}"
    );
    // Every order of the four legs in one batch.
    let mut orders = vec![vec![0usize, 1, 2, 3]];
    for i in 0..4 {
        for j in 0..4 {
            for k in 0..4 {
                for l in 0..4 {
                    let order = vec![i, j, k, l];
                    let mut seen = order.clone();
                    seen.sort_unstable();
                    seen.dedup();
                    if seen.len() == 4 && !orders.contains(&order) {
                        orders.push(order);
                    }
                }
            }
        }
    }
    assert_eq!(orders.len(), 24);
    for order in &orders {
        let legs = forward_legs(&a, start);
        let batch: Vec<LegFacts> = order.iter().map(|&i| facts(&legs[i])).collect();
        let answers = history::ingest_batch(&app.db, &batch, Utc::now())
            .await
            .unwrap();
        assert_eq!(answers.len(), 4);
        assert!(
            answers.iter().all(|x| matches!(x, Ingested::Stored { .. })),
            "{order:?}: {answers:?}"
        );
        // Once the first leg is in, every answer names the call.
        assert!(
            answers
                .iter()
                .all(|x| matches!(x, Ingested::Stored { call_id: Some(_) })),
            "{order:?}: {answers:?}"
        );
        assert_eq!(
            call_of(&app, legs[0].uuid).await,
            expected,
            "order {order:?}"
        );
    }
    // Split across two batches, the phone behind the loopback and the first leg first.
    let legs = forward_legs(&a, start);
    let first_half = [facts(&legs[3]), facts(&legs[1])];
    let answers = history::ingest_batch(&app.db, &first_half, Utc::now())
        .await
        .unwrap();
    assert_eq!(answers, vec![Ingested::Stored { call_id: None }; 2]);
    let second_half = [
        facts(&legs[2]),
        facts(&legs[0]),
        facts(&legs[2]),
        facts(&legs[3]),
    ];
    let answers = history::ingest_batch(&app.db, &second_half, Utc::now())
        .await
        .unwrap();
    assert!(
        matches!(answers[0], Ingested::Stored { call_id: Some(_) }),
        "{answers:?}"
    );
    assert!(
        matches!(answers[1], Ingested::Stored { call_id: Some(_) }),
        "{answers:?}"
    );
    assert_eq!(
        answers[2..],
        [Ingested::Duplicate, Ingested::Duplicate],
        "{answers:?}"
    );
    assert_eq!(call_of(&app, legs[0].uuid).await, expected);
    // 1 + 24 + 1 calls, 4 legs each, nothing else.
    let stored = call_legs::Entity::find()
        .filter(call_legs::Column::DomainId.eq(a.domain.parse::<Uuid>().unwrap()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 26 * 4);
    // An empty batch does nothing; an oversized one is refused whole.
    assert!(
        history::ingest_batch(&app.db, &[], Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let too_many: Vec<LegFacts> = (0..=history::MAX_BATCH)
        .map(|_| facts(&Leg::first(start, "200", "201")))
        .collect();
    assert!(
        history::ingest_batch(&app.db, &too_many, Utc::now())
            .await
            .is_err()
    );
    let after = call_legs::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(after, 26 * 4, "nothing of the refused batch is stored");
}

/// A CDR can outlive its Domain (deleted during the call) or name a Domain that never was:
/// it is stored without one (200, never a 503 that FreeSWITCH would retry for ever), and a
/// Domain's calls do not gain it.
async fn a_cdr_naming_a_domain_that_is_gone_is_kept_without_it(app: TestApp) {
    let a = acme(&app, "gone.history.test").await;
    let stray = Uuid::new_v4();
    let (first, second) = a.internal(at(30), Some(1));
    let first = first.var("switchboard_domain_id", stray);
    let second = second.var("switchboard_domain_id", stray);
    let (status, text) = post_cdr(&app, &first.json()).await;
    assert_eq!((status, text.trim()), (200, "stored"));
    let (status, text) = post_cdr(&app, &second.json()).await;
    assert_eq!((status, text.trim()), (200, "stored"));
    let call = call_of(&app, first.uuid).await;
    assert_eq!(call["domain_id"], Value::Null, "{call}");
    assert_eq!(call["legs"], 2, "{call}");
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await;
    assert_eq!(ids(&page).len(), 0, "{page}");
    let (status, text) = post_cdr(&app, &first.json()).await;
    assert_eq!((status, text.trim()), (200, "duplicate"));
}

/// While the database holds the writer up, CDRs queue behind it; once `history.cdr_queue` are
/// waiting, a post is answered 503 with `Retry-After` (FreeSWITCH retries it), never a 500 and
/// never a 200 for what was not stored. When the database is back, the queued ones are stored
/// and the retried ones too.
async fn a_full_cdr_queue_answers_503_and_loses_nothing(app: TestApp) {
    let a = acme(&app, "queue.history.test").await;
    let app = Arc::new(app);
    let mut legs = Vec::new();
    for i in 0..16 {
        let (x, y) = a.internal(at(500 - i), Some(1));
        legs.push(x);
        legs.push(y);
    }
    // Another transaction holds what the writer needs: SQLite's write lock, or on PostgreSQL
    // the lock of the first leg's call.
    let blocker = switchboard_domain::db::begin_write(&app.db).await.unwrap();
    switchboard_domain::db::lock_keys(&blocker, &[format!("cdr:{}", legs[0].uuid)])
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let post = |leg: Leg| {
        let app = app.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let response = app
                .request(Method::POST, &format!("/freeswitch/cdr?uuid={}", leg.uuid))
                .basic_auth("freeswitch", Some(CDR_PASSWORD))
                .header("content-type", "application/json")
                .body(leg.json().to_string())
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let _ = tx.send((leg, status, retry_after, text));
        });
    };
    post(legs[0].clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for leg in &legs[1..] {
        post(leg.clone());
    }
    drop(tx);
    // The first refusal comes while the writer is still held up.
    let mut answers = Vec::new();
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(answer) = rx.recv().await {
            let busy = answer.1 == 503;
            answers.push(answer);
            if busy {
                return true;
            }
        }
        false
    })
    .await
    .expect("no 503 while 31 CDRs wait behind a queue of 4");
    assert!(
        refused,
        "every CDR answered before the writer was let go: {answers:?}"
    );
    blocker.rollback().await.unwrap();
    while let Some(answer) = rx.recv().await {
        answers.push(answer);
    }
    assert_eq!(answers.len(), legs.len());
    let mut retried = 0;
    for (leg, status, retry_after, text) in answers {
        match status {
            200 => assert_eq!(text.trim(), "stored"),
            503 => {
                assert_eq!(retry_after.as_deref(), Some("5"), "{text}");
                // FreeSWITCH posts it again.
                let (status, text) = post_cdr(&app, &leg.json()).await;
                assert_eq!((status, text.trim()), (200, "stored"));
                retried += 1;
            }
            other => panic!("{other}: {text}"),
        }
    }
    assert!(retried >= 1);
    let stored = call_legs::Entity::find()
        .filter(call_legs::Column::DomainId.eq(a.domain.parse::<Uuid>().unwrap()))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 32, "every leg stored once");
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls?limit=100", a.domain),
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 16, "{page}");
    assert!(items.iter().all(|c| c["legs"] == 2), "{page}");
}

async fn the_cdr_endpoint_refuses_strangers_and_what_is_not_a_cdr(app: TestApp) {
    let a = acme(&app, "refuse.history.test").await;
    let (leg, _) = a.internal(at(30), None);
    let body = leg.json().to_string();
    let response = app
        .request(Method::POST, "/freeswitch/cdr")
        .basic_auth("freeswitch", Some("wrong-password-here"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = app
        .request(Method::POST, "/freeswitch/cdr")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    for (bad, why) in [
        (json!("cdr"), "not an object"),
        (json!({"callflow": []}), "no variables"),
        (json!({"variables": {"uuid": "nope"}}), "no uuid"),
        (
            json!({"variables": {"uuid": Uuid::new_v4().to_string(), "start_uepoch": "1700000000000000"}}),
            "no end",
        ),
    ] {
        let (status, text) = post_cdr(&app, &bad).await;
        assert_eq!(status, 400, "{why}: {text}");
    }
    let response = app
        .request(Method::POST, "/freeswitch/cdr")
        .basic_auth("freeswitch", Some(CDR_PASSWORD))
        .body("cdr=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        400,
        "a URL-encoded form is refused"
    );
    let huge = "x".repeat(5 * 1024 * 1024);
    let response = app
        .request(Method::POST, "/freeswitch/cdr")
        .basic_auth("freeswitch", Some(CDR_PASSWORD))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // Nothing was stored.
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await;
    assert_eq!(ids(&page).len(), 0);
}

async fn another_domains_calls_are_a_404_and_reading_needs_calls_read(app: TestApp) {
    let a = acme(&app, "one.history.test").await;
    let b = acme(&app, "two.history.test").await;
    let (x, y) = a.internal(at(30), Some(1));
    post_ok(&app, &x).await;
    post_ok(&app, &y).await;
    let id = ids(&get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await)[0]
        .clone();
    let email = "boss@two.history.test";
    create_user(&app, &b.admin, &b.domain, email, &["domain_admin"]).await;
    let other_admin = token_of(&app, email).await;
    for path in [
        format!("/api/v1/domains/{}/calls", a.domain),
        format!("/api/v1/domains/{}/calls/{id}", a.domain),
        format!("/api/v1/domains/{}/calls.csv", a.domain),
        format!("/api/v1/domains/{}/calls/{id}/recording", a.domain),
        format!("/api/v1/domains/{}/calls/{id}", b.domain),
        format!("/api/v1/me/calls/{id}"),
    ] {
        let (status, body) = call(&app, &other_admin, Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // Their own history is empty; a supervisor reads it, a member does not.
    assert_eq!(
        ids(&get(
            &app,
            &other_admin,
            &format!("/api/v1/domains/{}/calls", b.domain)
        )
        .await)
        .len(),
        0
    );
    let email = "watch@one.history.test";
    create_user(&app, &a.admin, &a.domain, email, &["supervisor"]).await;
    let supervisor = token_of(&app, email).await;
    assert_eq!(
        ids(&get(
            &app,
            &supervisor,
            &format!("/api/v1/domains/{}/calls", a.domain)
        )
        .await)
        .len(),
        1
    );
    let response = app
        .request(Method::GET, &format!("/api/v1/domains/{}/calls", a.domain))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

async fn the_csv_export_streams_every_call_with_the_filters(app: TestApp) {
    let a = acme(&app, "csv.history.test").await;
    // More calls than one export batch, so the stream spans several reads.
    let mut legs = Vec::new();
    for i in 0..1203 {
        let (x, _) = a.internal(at(5000 - i), (i % 2 == 0).then_some(1));
        legs.push(x);
    }
    let app = Arc::new(app);
    let chunks: Vec<Vec<Leg>> = legs.chunks(101).map(<[Leg]>::to_vec).collect();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let app = app.clone();
            tokio::spawn(async move {
                for leg in chunk {
                    post_ok(&app, &leg).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let response = app
        .send_as(
            &a.admin,
            Method::GET,
            &format!("/api/v1/domains/{}/calls.csv", a.domain),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("id,started_at,answered_at,ended_at,direction,"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 1204, "a header and every call");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1203);
    assert!(rows.iter().all(|r| r.get(8) == Some(a.alice.as_str())));
    let mut unique: Vec<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 1203, "no call twice across batches");
    let answered = app
        .send_as(
            &a.admin,
            Method::GET,
            &format!("/api/v1/domains/{}/calls.csv?answered=true", a.domain),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(answered.lines().count(), 1 + 602);
    let (status, body) = call(
        &app,
        &a.admin,
        Method::GET,
        &format!("/api/v1/domains/{}/calls.csv?direction=up", a.domain),
        None,
    )
    .await;
    assert!(status == 400 || status == 422, "{status} {body}");
}

async fn recordings_download_with_ranges_and_never_outside_their_folder(app: TestApp) {
    // The configuration of this server reads recordings from its recordings_dir.
    let folder = app
        .config
        .history
        .recordings_dir
        .clone()
        .unwrap_or_else(|| panic!("recordings_dir is set by the tweak"));
    let a = acme(&app, "rec.history.test").await;
    let day = "2026-12-04";
    let dir = folder.join("rec.history.test").join(day);
    std::fs::create_dir_all(&dir).unwrap();
    let wav: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let (x, y) = a.internal(at(40), Some(1));
    std::fs::write(dir.join(format!("{}.wav", x.uuid)), &wav).unwrap();
    // FreeSWITCH's own folder differs: only the last three parts are the recording's.
    let file = format!(
        "/var/lib/freeswitch/recordings/rec.history.test/{day}/{}.wav",
        x.uuid
    );
    let x = x
        .var("switchboard_recording", file)
        .var("record_ms", "9000");
    post_ok(&app, &x).await;
    post_ok(&app, &y).await;
    let (evil, _) = a.internal(at(30), Some(1));
    let evil = evil
        .var(
            "switchboard_recording",
            "/var/lib/freeswitch/recordings/../../../etc/passwd",
        )
        .var("record_ms", "9000");
    post_ok(&app, &evil).await;
    let (plain, _) = a.internal(at(20), Some(1));
    post_ok(&app, &plain).await;
    let base = format!("/api/v1/domains/{}/calls", a.domain);
    let page = get(&app, &a.admin, &base).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let recorded = &items[2];
    assert_eq!(recorded["recorded"], true);
    assert_eq!(recorded["recording_ms"], 9000);
    assert_eq!(items[0]["recorded"], false);
    let id = recorded["id"].as_str().unwrap();

    let response = app
        .send_as(
            &a.admin,
            Method::GET,
            &format!("{base}/{id}/recording"),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.bytes().await.unwrap().as_ref(), wav.as_slice());
    let response = app
        .request(Method::GET, &format!("{base}/{id}/recording"))
        .bearer_auth(&a.admin)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 206);
    assert_eq!(response.bytes().await.unwrap().as_ref(), &wav[100..200]);
    // Alice made the call: she downloads it under /me too.
    let response = app
        .send_as(
            &a.alice_token,
            Method::GET,
            &format!("/api/v1/me/calls/{id}/recording"),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    // Not recorded, or a path leaving the folder: 404, never the file.
    for call_id in [
        items[0]["id"].as_str().unwrap(),
        items[1]["id"].as_str().unwrap(),
    ] {
        let (status, body) = call(
            &app,
            &a.admin,
            Method::GET,
            &format!("{base}/{call_id}/recording"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{body}");
    }
}

async fn old_calls_are_purged_per_domain_retention(app: TestApp) {
    let a = acme(&app, "purge.history.test").await;
    let b = acme(&app, "keep.history.test").await;
    let day = 86_400;
    for (who, ago) in [(&a, 3 * day), (&a, 60), (&b, 3 * day)] {
        let (x, y) = who.internal(at(ago), Some(1));
        post_ok(&app, &x).await;
        post_ok(&app, &y).await;
    }
    let settings = format!("/api/v1/domains/{}/calling-settings", a.domain);
    let (status, body) = call(
        &app,
        &a.admin,
        Method::PUT,
        &settings,
        Some(json!({"call_history_days": 0})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "call_history_days");
    let (status, body) = call(
        &app,
        &a.admin,
        Method::PUT,
        &settings,
        Some(json!({"call_history_days": 2})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call_history_days"], 2);

    let purged = switchboard_domain::services::history::purge(&app.db, Utc::now())
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let left = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await;
    assert_eq!(ids(&left).len(), 1, "the recent call stays: {left}");
    let kept = get(
        &app,
        &b.admin,
        &format!("/api/v1/domains/{}/calls", b.domain),
    )
    .await;
    assert_eq!(ids(&kept).len(), 1, "the other Domain keeps a year: {kept}");
    // A year later everything goes.
    let later = Utc
        .timestamp_opt(Utc::now().timestamp() + 400 * day, 0)
        .unwrap();
    switchboard_domain::services::history::purge(&app.db, later)
        .await
        .unwrap();
    let kept = get(
        &app,
        &b.admin,
        &format!("/api/v1/domains/{}/calls", b.domain),
    )
    .await;
    assert_eq!(ids(&kept).len(), 0);
}

fn age(path: &Path) {
    let old = SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

async fn spooled_cdrs_are_imported_once_and_bad_files_set_aside(app: TestApp) {
    let a = acme(&app, "spool.history.test").await;
    let dir = std::env::temp_dir().join(format!("switchboard-spool-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("2026-12-04")).unwrap();
    let (x, y) = a.internal(at(120), Some(1));
    // One was posted before FreeSWITCH gave up on a later retry: importing it again is harmless.
    post_ok(&app, &x).await;
    let files = [
        dir.join(format!("a_{}.cdr.json", x.uuid)),
        dir.join("2026-12-04").join(format!("{}.cdr.json", y.uuid)),
    ];
    std::fs::write(&files[0], format!("{}\n", x.json())).unwrap();
    std::fs::write(&files[1], format!("{}\n", y.json())).unwrap();
    let bad = dir.join("broken.cdr.json");
    std::fs::write(&bad, "{\"variables\": ").unwrap();
    let fresh = dir.join("fresh.cdr.json");
    for f in files.iter().chain([&bad]) {
        age(f);
    }
    // Still being written: left for the next pass.
    let (z, _) = a.internal(at(10), None);
    std::fs::write(&fresh, z.json().to_string()).unwrap();

    let pass = switchboard_api::cdr_spool::import_once(&app.db, &dir).await;
    assert_eq!((pass.imported, pass.bad, pass.left), (2, 1, 1), "{pass:?}");
    assert!(!files[0].exists() && !files[1].exists());
    assert!(dir.join("broken.cdr.json.bad").exists());
    assert!(fresh.exists());
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await;
    assert_eq!(ids(&page).len(), 1, "{page}");
    assert_eq!(page["items"][0]["legs"], 2);
    age(&fresh);
    let pass = switchboard_api::cdr_spool::import_once(&app.db, &dir).await;
    assert_eq!(pass.imported, 1);
    let page = get(
        &app,
        &a.admin,
        &format!("/api/v1/domains/{}/calls", a.domain),
    )
    .await;
    assert_eq!(ids(&page).len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}
